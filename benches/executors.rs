//! Executors side by side on the same workloads (issue 3).
//!
//! Workloads (each 100,000 events in one batch; customers loaded in memory; built from a fixed
//! seed so every executor sees identical input):
//! - `low_contention` — 100,000 customers, events spread uniformly; each event awards points,
//!   bumps two attributes and sends a message: transactions almost never share a key.
//! - `medium_pool` — 1,000 customers and one shared coupon pool: every order awards points and
//!   takes a code from the pool (passed through to an SMS), plus a tier check that reads points.
//! - `fully_dependent` — every execution reads and writes the same counter (`counters.seq`
//!   in the condition, then increments it): a single dependency chain.
//! - `hot_counter` — 100,000 customers; every event blindly increments one global counter (a
//!   commutative delta) and awards points.
//!
//! Executors: `sequential` (the reference), `parallel` (Block-STM, 2 threads, default tuning
//! with adaptive fallback) and `locking` (pessimistic per-key locks granted in event order,
//! 2 threads) — the "wait for the other trigger" baseline.
//!
//! Run: `cargo bench --bench executors` (add `-- --quick` for a fast look). Each iteration runs
//! the whole batch on a fresh clone of the state (cloning is outside the measured time).
//! Results and ratios: `benches/README.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fusebox::engine::config::compile_triggers;
use fusebox::engine::customers::{Column, CustomerTable, Schema};
use fusebox::engine::event::{Event, EventRecord};
use fusebox::engine::state::State;
use fusebox::engine::value::{AttrType, Map, Value};
use fusebox::engine::{Engine, ExecutorKind, RunOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 100_000;

struct Workload {
    name: &'static str,
    engine: Engine,
    state: State,
    records: Vec<EventRecord>,
}

/// A small deterministic PRNG (splitmix64), so inputs do not depend on a crate version.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn customers(n: u64) -> CustomerTable {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("orders".to_string(), AttrType::Int),
        ("spent".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("name".to_string(), AttrType::String),
    ])
    .unwrap();
    let len = n as usize;
    CustomerTable::new(
        schema,
        (1..=n).collect(),
        vec![
            Column::Int((0..n).map(|i| Some((i % 500) as i64)).collect()),
            Column::Int(vec![Some(0); len]),
            Column::Float(vec![Some(0.0); len]),
            Column::String(vec![Some("bronze".into()); len]),
            Column::String(
                (0..n)
                    .map(|i| Some(format!("customer-{i}").into()))
                    .collect(),
            ),
        ],
    )
    .unwrap()
}

fn events(customers: u64, seed: u64) -> Vec<EventRecord> {
    let mut rng = Rng(seed);
    (0..EVENTS)
        .map(|i| {
            let total = 5.0 + rng.below(40_000) as f64 / 100.0;
            let props = Map::from_entries([("total".into(), Value::Float(total))]);
            EventRecord {
                line: i as u64 + 1,
                event: Ok(Event {
                    id: format!("e{i}").into(),
                    customer_id: 1 + rng.below(customers),
                    event_type: "order.completed".into(),
                    timestamp: 1_772_366_400_000_000 + i as i64 * 1_000_000,
                    process: None,
                    properties: std::sync::Arc::new(props),
                }),
            }
        })
        .collect()
}

fn workload(name: &'static str, n_customers: u64, triggers: &str) -> Workload {
    let table = customers(n_customers);
    let set =
        compile_triggers(triggers, name, Some(table.schema())).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(set).unwrap();
    let state = State::new(table, engine.triggers());
    Workload {
        name,
        engine,
        state,
        records: events(n_customers, 7),
    }
}

fn workloads() -> Vec<Workload> {
    vec![
        workload(
            "low_contention",
            100_000,
            r#"
triggers:
  - id: points
    owner: o@x
    on: order.completed
    actions:
      - award_points: { amount: "int(event.properties.total / 10.0)" }
      - increment: { attribute: orders }
      - increment: { attribute: spent, by: "event.properties.total" }
      - send_message: { channel: email, template: receipt, args: { name: "customer.name", total: "event.properties.total" } }
"#,
        ),
        workload(
            "medium_pool",
            1_000,
            r#"
pools:
  - id: promo
    generate: { prefix: "P-", count: 1000000 }
triggers:
  - id: points
    owner: o@x
    on: order.completed
    actions:
      - award_points: { amount: "int(event.properties.total / 10.0)" }
  - id: promo
    owner: o@x
    on: order.completed
    condition: "event.properties.total > 100.0"
    actions:
      - issue_coupon: { pool: promo }
      - send_message: { channel: sms, template: promo, args: { code: "coupon", name: "customer.name" } }
  - id: tier
    owner: o@x
    on: order.completed
    priority: 200
    condition: "customer.points > 100000 && customer.tier != 'gold'"
    actions:
      - set: { attribute: tier, value: "'gold'" }
"#,
        ),
        workload(
            "fully_dependent",
            100_000,
            r#"
counters:
  - id: seq
triggers:
  - id: sequence
    owner: o@x
    on: order.completed
    condition: "counters.seq >= 0"
    actions:
      - increment: { counter: seq }
      - send_message: { channel: webhook, template: seq, args: { n: "counters.seq" } }
"#,
        ),
        workload(
            "hot_counter",
            100_000,
            r#"
counters:
  - id: orders_total
  - id: revenue
    kind: float
triggers:
  - id: totals
    owner: o@x
    on: order.completed
    actions:
      - increment: { counter: orders_total }
      - increment: { counter: revenue, by: "event.properties.total" }
      - award_points: { amount: "int(event.properties.total / 10.0)" }
      - send_message: { channel: email, template: receipt, args: { total: "event.properties.total" } }
"#,
        ),
    ]
}

fn executors() -> Vec<(&'static str, ExecutorKind)> {
    vec![
        ("sequential", ExecutorKind::Sequential),
        ("parallel", ExecutorKind::parallel(2)),
        ("locking", ExecutorKind::Locking { threads: 2 }),
    ]
}

fn bench(c: &mut Criterion) {
    for w in workloads() {
        // Sanity first: every executor must produce the sequential result on this workload.
        let reference = run_once(&w, ExecutorKind::Sequential);
        for (name, kind) in executors() {
            let (effects, state) = run_once(&w, kind);
            assert!(
                effects == reference.0
                    && state.customers.columns() == reference.1.customers.columns(),
                "{name} differs on {}",
                w.name
            );
        }
        let mut group = c.benchmark_group(w.name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
        for (name, kind) in executors() {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || w.state.clone(),
                    |mut state| {
                        let result = w
                            .engine
                            .run_batch(
                                &mut state,
                                &w.records,
                                &RunOptions {
                                    executor: kind,
                                    progress: None,
                                    quotas: None,
                                },
                            )
                            .unwrap();
                        black_box(result.effects.len())
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

fn run_once(w: &Workload, kind: ExecutorKind) -> (Vec<fusebox::engine::outcome::Effect>, State) {
    let mut state = w.state.clone();
    let result = w
        .engine
        .run_batch(
            &mut state,
            &w.records,
            &RunOptions {
                executor: kind,
                progress: None,
                quotas: None,
            },
        )
        .unwrap();
    (result.effects, state)
}

criterion_group!(benches, bench);
criterion_main!(benches);
