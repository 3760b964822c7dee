//! The executor workloads shared by `executors.rs` (criterion, side by side) and
//! `breakdown.rs` (per-stage timings): 100,000 events each, built from a fixed seed.
//! Each workload is described in `executors.rs`. `live.rs` reuses the customer table and the
//! event generator ([`customers`], [`order_events`]) with a trigger set of its own.

use fusebox::engine::config::compile_triggers;
use fusebox::engine::customers::{Column, CustomerTable, Schema};
use fusebox::engine::event::{Event, EventRecord};
use fusebox::engine::state::State;
use fusebox::engine::value::{AttrType, Map, Value};
use fusebox::engine::{BatchResult, Engine, ExecutorKind, RunOptions};

const EVENTS: usize = 100_000;

pub struct Workload {
    pub name: &'static str,
    pub engine: Engine,
    pub state: State,
    pub records: Vec<EventRecord>,
}

impl Workload {
    /// Runs `records` on a fresh copy of the workload's state: wall milliseconds and the result.
    #[allow(dead_code)] // `executors.rs` (criterion) times its runs itself.
    /// A fresh engine per run (its executor starts its threads inside the timed run, as a
    /// one-shot `fusebox run` does).
    pub fn timed_run(
        &self,
        records: &[EventRecord],
        executor: ExecutorKind,
        options: &RunOptions,
    ) -> (f64, BatchResult) {
        let mut state = self.state.clone();
        let engine = self.engine.with_executor(executor);
        let t = std::time::Instant::now();
        let r = engine
            .run_batch(&mut state, records, options)
            .expect("runs");
        (t.elapsed().as_secs_f64() * 1e3, r)
    }
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

/// `n` customers (ids `1..=n`): `points` (0..499), `orders`, `spent`, `tier` (`bronze`), `name`.
#[allow(dead_code)] // Public for `live.rs`; the other benches use it through `workloads()`.
pub fn customers(n: u64) -> CustomerTable {
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
    order_events(EVENTS, customers, seed)
}

/// `count` `order.completed` events (ids `e0…`, unique; one second apart; a uniform customer
/// of `1..=customers`; `total` uniform in 5.00..404.99), from `seed`.
#[allow(dead_code)] // Public for `live.rs`.
pub fn order_events(count: usize, customers: u64, seed: u64) -> Vec<EventRecord> {
    let mut rng = Rng(seed);
    (0..count)
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

pub fn workloads() -> Vec<Workload> {
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

/// The live bench's trigger set, firing on every `order.completed`: `points` (points,
/// `orders`, `spent`, two global counters, a receipt), `promo` (`total > 300`: a coupon from
/// one shared pool and an sms), `tier` (a tier upgrade). The `runaway` bench uses it as its
/// innocent triggers.
#[allow(dead_code)] // Used by `live.rs` and `runaway.rs`.
pub const LIVE_TRIGGERS: &str = r#"
counters:
  - id: orders_total
  - id: revenue
    kind: float
pools:
  - id: promo
    generate: { prefix: "P-", count: 100000000 }
triggers:
  - id: points
    owner: o@x
    on: order.completed
    actions:
      - award_points: { amount: "int(event.properties.total / 10.0)" }
      - increment: { attribute: orders }
      - increment: { attribute: spent, by: "event.properties.total" }
      - increment: { counter: orders_total }
      - increment: { counter: revenue, by: "event.properties.total" }
      - send_message: { channel: email, template: receipt, args: { name: "customer.name", total: "event.properties.total" } }
  - id: promo
    owner: o@x
    on: order.completed
    condition: "event.properties.total > 300.0"
    actions:
      - issue_coupon: { pool: promo }
      - send_message: { channel: sms, template: promo, args: { code: "coupon", name: "customer.name" } }
  - id: tier
    owner: o@x
    on: order.completed
    priority: 200
    condition: "customer.points > 1500 && customer.tier != 'gold'"
    actions:
      - set: { attribute: tier, value: "'gold'" }
"#;
