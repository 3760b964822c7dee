//! Every executor equals the sequential reference on workloads built to find type-path bugs.
//!
//! `parallel_equivalence.rs` stresses scheduling (contention, block sizes, fallbacks) with a
//! fixed set of trigger shapes. This file stresses *values*: triggers are assembled from
//! random conditions and actions over attributes of every type, most of them null at the
//! start, so that
//! - increments and sets meet nulls of every type, ints meet floats (an int amount into a
//!   float attribute or counter, an int expression `set` into a float attribute);
//! - amounts are computed (`customer.visits % 3`, `event.properties.x`, `customer.points`);
//! - what one trigger writes is read by a later trigger of the same event, by the effects of
//!   that trigger, by chained events, and by later events — through arithmetic whose result
//!   depends on the type it reads (`customer.spent / 8`: `0` for an int, `0.125` for a float);
//! - evaluation errors abort executions (a null read in arithmetic, a float into an int).
//!
//! Each workload runs through the sequential executor, the parallel executor (speculating
//! every block, at several thread counts and block sizes, and self-tuning) and the locking
//! executor; effects, outcomes, report and the final state (compared value by value,
//! bit-for-bit, kinds included) must be identical.
//!
//! Default run: 3,000 workloads. Longer: `PROPTEST_CASES=100000 cargo test -p fusebox-engine
//! --test executor_equivalence`.

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::exec::parallel::ParallelConfig;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{BatchResult, Engine, ExecutorKind, RunOptions};
use proptest::prelude::*;

/// Conditions: each reads something a trigger may have written, through a type-sensitive
/// path, or errors on a null.
const CONDITIONS: &[&str] = &[
    "customer.points > 2",
    "customer.spent / 8 > 0.1",
    "has(customer.spent) && customer.spent / 8 < 1.0",
    "has(customer.visits) && customer.visits / 2 >= 1",
    "counters.hits > 3",
    "counters.total / 4 < 3.0",
    "has(customer.flag) && customer.flag",
    "customer.tier == 'gold'",
    "size(customer.tags) > 0",
    "has(customer.seen_at) && customer.seen_at <= now",
    "event.properties.x > 1",
    "has(event.properties.p) && event.properties.p != null",
    "string(customer.spent) != '1'",
];

/// Actions; `{t}` is a chained event type.
const ACTIONS: &[&str] = &[
    "award_points: { amount: \"2\" }",
    "increment: { attribute: points, by: \"1\" }",
    "increment: { attribute: points, by: \"customer.visits % 3\" }",
    "increment: { attribute: points, by: \"event.properties.x\" }",
    "increment: { attribute: spent, by: \"1\" }",
    "increment: { attribute: spent, by: \"event.properties.x\" }",
    "increment: { attribute: spent, by: \"customer.points\" }",
    "increment: { attribute: spent, by: \"2.5\" }",
    "increment: { attribute: visits }",
    "increment: { attribute: score, by: \"customer.spent / 8\" }",
    "increment: { counter: hits }",
    "increment: { counter: hits, by: \"customer.points\" }",
    "increment: { counter: total, by: \"1\" }",
    "increment: { counter: total, by: \"event.properties.x\" }",
    "increment: { counter: total, by: \"customer.spent\" }",
    "set: { attribute: spent, value: \"customer.points\" }",
    "set: { attribute: spent, value: \"customer.spent * 2.0\" }",
    "set: { attribute: score, value: \"counters.total / 8\" }",
    "set: { attribute: points, value: \"customer.points + 1\" }",
    "set: { attribute: visits, value: \"int(customer.spent)\" }",
    "set: { attribute: tier, value: \"'gold'\" }",
    "set: { attribute: tier, value: \"customer.tier + 'x'\" }",
    "set: { attribute: flag, value: \"!(has(customer.flag) && customer.flag)\" }",
    "set: { attribute: seen_at, value: \"now\" }",
    "set: { attribute: tags, value: \"['vip']\" }",
    "issue_coupon: { pool: small, store_in: last_coupon }",
    "send_message: { channel: sms, template: m, args: { a: \"customer.spent / 8\", b: \"customer.points / 2\" } }",
    "send_message: { channel: email, template: n, args: { c: \"counters.total\", d: \"string(customer.spent)\", h: \"counters.hits / 2\" } }",
    "start_feed: { feed: f, args: { s: \"customer.spent\", t: \"customer.tier\", w: \"customer.seen_at\", v: \"customer.visits\" } }",
    "start_feed: { feed: g, args: { k: \"has(customer.score) ? customer.score / 8 : -1.0\", l: \"customer.tags\" } }",
    "emit_event: { type: {t}, properties: { p: \"customer.spent\", q: \"customer.points\" } }",
    "emit_event: { type: {t}, properties: { x: \"event.properties.x\" } }",
];

#[derive(Clone, Debug)]
struct Workload {
    triggers: String,
    events: String,
    customers: CustomerSpec,
}

/// Initial attributes per customer: `None` (null) or a seed for a value of the column's type.
#[derive(Clone, Debug)]
struct CustomerSpec(Vec<[Option<u8>; 8]>);

fn trigger_strategy() -> impl Strategy<Value = (usize, Option<usize>, Vec<(usize, usize)>, i64)> {
    (
        0usize..3,
        prop::option::weighted(0.6, 0..CONDITIONS.len()),
        prop::collection::vec((0..ACTIONS.len(), 0usize..3), 1..4),
        0i64..4,
    )
}

fn event_strategy() -> impl Strategy<Value = (u64, usize, Option<(bool, u8)>)> {
    (
        0u64..1000,
        0usize..3,
        prop::option::weighted(0.85, (any::<bool>(), 0u8..24)),
    )
}

fn workload(max_customers: u64) -> impl Strategy<Value = Workload> {
    let customers = (1..=max_customers).prop_flat_map(|n| {
        prop::collection::vec(
            prop::array::uniform8(prop::option::weighted(0.3, any::<u8>())),
            n as usize,
        )
    });
    (
        customers,
        prop::collection::vec(trigger_strategy(), 1..7),
        prop::collection::vec(event_strategy(), 1..40),
        0u64..30,
    )
        .prop_map(|(customers, triggers, events, pool_size)| {
            let types = ["a", "b", "c"];
            let mut yaml = format!(
                "settings: {{ max_chain_depth: 3 }}\nevent_types: [a, b, c]\npools:\n  - id: small\n    generate: {{ prefix: \"S-\", count: {} }}\ncounters:\n  - id: hits\n  - id: total\n    kind: float\ntriggers:\n",
                pool_size + 1
            );
            for (i, (on, condition, actions, priority)) in triggers.iter().enumerate() {
                yaml.push_str(&format!(
                    "  - id: t{i}\n    owner: o@x\n    on: {}\n    priority: {priority}\n",
                    types[*on]
                ));
                // A chained event goes to a later type, or back to an earlier one only from a
                // conditional trigger: cycles reach the depth limit, yet none is unconditional
                // (a configuration error).
                let chained = |t: usize| (*on + 1 + t) % 3;
                let emits_back = actions
                    .iter()
                    .any(|(a, t)| ACTIONS[*a].contains("{t}") && chained(*t) <= *on);
                let condition = condition.or(emits_back.then_some(0));
                if let Some(c) = condition {
                    yaml.push_str(&format!("    condition: \"{}\"\n", CONDITIONS[c]));
                }
                yaml.push_str("    actions:\n");
                for (a, t) in actions {
                    yaml.push_str(&format!(
                        "      - {}\n",
                        ACTIONS[*a].replace("{t}", types[chained(*t)])
                    ));
                }
            }
            let n = customers.len() as u64;
            let mut jsonl = String::new();
            for (i, (c, ty, x)) in events.iter().enumerate() {
                let customer = if c % 2 == 0 { 1 } else { 1 + c % n };
                let properties = match x {
                    None => String::new(),
                    Some((true, v)) => format!(",\"properties\":{{\"x\":{v}}}"),
                    Some((false, v)) => format!(",\"properties\":{{\"x\":{}}}", f64::from(*v) / 8.0 + 0.5),
                };
                jsonl.push_str(&format!(
                    "{{\"id\":\"e{i}\",\"customer_id\":{customer},\"type\":\"{}\",\"timestamp\":\"2026-03-01T12:00:{:02}Z\"{properties}}}\n",
                    types[*ty],
                    i % 60
                ));
            }
            Workload {
                triggers: yaml,
                events: jsonl,
                customers: CustomerSpec(customers),
            }
        })
}

fn table(spec: &CustomerSpec) -> CustomerTable {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("spent".to_string(), AttrType::Float),
        ("visits".to_string(), AttrType::Int),
        ("score".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("flag".to_string(), AttrType::Bool),
        ("seen_at".to_string(), AttrType::Timestamp),
        ("tags".to_string(), AttrType::StringList),
        ("last_coupon".to_string(), AttrType::String),
    ])
    .unwrap();
    let rows = &spec.0;
    let col = |i: usize| rows.iter().map(move |r| r[i]);
    CustomerTable::new(
        schema,
        (1..=rows.len() as u64).collect(),
        vec![
            Column::Int(col(0).map(|v| v.map(|v| i64::from(v % 9))).collect()),
            Column::Float(col(1).map(|v| v.map(|v| f64::from(v) / 16.0)).collect()),
            Column::Int(col(2).map(|v| v.map(|v| i64::from(v % 5))).collect()),
            Column::Float(col(3).map(|v| v.map(|v| f64::from(v) / 3.0)).collect()),
            Column::String(
                col(4)
                    .map(|v| {
                        v.map(|v| {
                            if v % 2 == 0 {
                                "gold".into()
                            } else {
                                "x".into()
                            }
                        })
                    })
                    .collect(),
            ),
            Column::Bool(col(5).map(|v| v.map(|v| v % 2 == 0)).collect()),
            Column::Timestamp(
                col(6)
                    .map(|v| v.map(|v| 1_772_366_400_000_000 + i64::from(v) * 1_000_000))
                    .collect(),
            ),
            Column::StringList(
                col(7)
                    .map(|v| v.map(|v| (0..v % 3).map(|i| Value::str(&format!("t{i}"))).collect()))
                    .collect(),
            ),
            Column::String(vec![None; rows.len()]),
        ],
    )
    .unwrap()
}

fn run(
    engine: &Engine,
    customers: &CustomerTable,
    records: &[EventRecord],
    executor: ExecutorKind,
) -> (BatchResult, State) {
    let mut state = State::new(customers.clone(), engine.triggers());
    let result = engine
        .with_executor(executor)
        .run_batch(&mut state, records, &RunOptions::default())
        .unwrap();
    (result, state)
}

/// Every value of the final state, compared bit for bit (an int where a float is expected
/// differs, and so does NaN from another NaN payload).
fn assert_same_state(seq: &State, other: &State, what: &str) -> Result<(), TestCaseError> {
    let (a, b) = (&seq.customers, &other.customers);
    for row in 0..a.len() as u32 {
        for attr in 0..a.schema().len() as u16 {
            let (x, y) = (a.get(row, attr), b.get(row, attr));
            prop_assert!(
                x.identical(&y),
                "customer row {} attribute {}: {:?} vs {:?} ({})",
                row,
                a.schema().name(attr),
                x,
                y,
                what
            );
        }
    }
    for (i, (x, y)) in seq.counters.iter().zip(&other.counters).enumerate() {
        prop_assert!(
            x.identical(y),
            "counter {}: {:?} vs {:?} ({})",
            i,
            x,
            y,
            what
        );
    }
    prop_assert_eq!(
        &seq.pool_cursors,
        &other.pool_cursors,
        "pool cursors ({})",
        what
    );
    Ok(())
}

fn assert_same(
    seq: &(BatchResult, State),
    other: &(BatchResult, State),
    what: &str,
) -> Result<(), TestCaseError> {
    // Serialised outputs: what a user sees, and where an int and a float differ (`1` / `1.0`).
    let lines = |r: &BatchResult| -> (Vec<String>, Vec<String>) {
        (
            r.effects
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect(),
            r.outcomes
                .iter()
                .map(|o| serde_json::to_string(o).unwrap())
                .collect(),
        )
    };
    let (seq_effects, seq_outcomes) = lines(&seq.0);
    let (effects, outcomes) = lines(&other.0);
    prop_assert_eq!(seq_effects, effects, "effects ({})", what);
    prop_assert_eq!(seq_outcomes, outcomes, "outcomes ({})", what);
    prop_assert_eq!(&seq.0.report, &other.0.report, "report ({})", what);
    // In memory too: each execution's fuel (not serialised) must match, since the limits
    // and budgets it drives must decide the same on every executor.
    prop_assert_eq!(
        &seq.0.outcomes,
        &other.0.outcomes,
        "outcomes with fuel ({})",
        what
    );
    assert_same_state(&seq.1, &other.1, what)
}

fn check(w: &Workload, block_size: usize) -> Result<(), TestCaseError> {
    let customers = table(&w.customers);
    let set = compile_triggers(&w.triggers, "t.yaml", Some(customers.schema())).map_err(|e| {
        TestCaseError::fail(format!(
            "generated triggers must compile: {e}\n{}",
            w.triggers
        ))
    })?;
    let engine = Engine::new(set).unwrap();
    let records = read_jsonl(w.events.as_bytes()).unwrap();
    let seq = run(&engine, &customers, &records, ExecutorKind::Sequential);
    let executors = [
        ExecutorKind::Parallel(ParallelConfig::always_parallel(1, block_size)),
        ExecutorKind::Parallel(ParallelConfig::always_parallel(2, block_size)),
        ExecutorKind::Parallel(ParallelConfig::always_parallel(4, block_size)),
        ExecutorKind::Parallel(ParallelConfig {
            block_size,
            ..ParallelConfig::with_threads(2)
        }),
        ExecutorKind::Locking { threads: 1 },
        ExecutorKind::Locking { threads: 3 },
    ];
    for executor in executors {
        let other = run(&engine, &customers, &records, executor);
        assert_same(
            &seq,
            &other,
            &format!(
                "{executor:?}, block {block_size}\n{}\n{}",
                w.triggers, w.events
            ),
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn typed_workloads_equal_sequential_on_every_executor(
        w in workload(6),
        block_size in prop_oneof![1usize..6, Just(64)],
    ) {
        check(&w, block_size)?;
    }
}

/// The reported case: `increment spent by 1` on a null float attribute, then a read that
/// divides it — as a float (`0.125`), in the same event and in later ones, on every executor.
#[test]
fn increment_of_a_null_float_attribute_stays_a_float() {
    let spec = CustomerSpec(vec![[None; 8]; 2]);
    let customers = table(&spec);
    let triggers = "triggers:
  - id: add
    owner: o@x
    on: a
    priority: 1
    actions:
      - increment: { attribute: spent, by: \"1\" }
  - id: read
    owner: o@x
    on: a
    priority: 2
    actions:
      - send_message: { channel: sms, template: t, args: { eighth: \"customer.spent / 8\" } }
";
    let set = compile_triggers(triggers, "t.yaml", Some(customers.schema())).unwrap();
    let engine = Engine::new(set).unwrap();
    let events: String = (0..6)
        .map(|i| format!("{{\"id\":\"e{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"2026-03-01T12:00:00Z\"}}\n", 1 + i % 2))
        .collect();
    let records = read_jsonl(events.as_bytes()).unwrap();
    for executor in [
        ExecutorKind::Sequential,
        ExecutorKind::Parallel(ParallelConfig::always_parallel(2, 6)),
        ExecutorKind::Locking { threads: 2 },
    ] {
        let (result, state) = run(&engine, &customers, &records, executor);
        let eighths: Vec<String> = result
            .effects
            .iter()
            .map(|e| serde_json::to_value(e).unwrap()["args"]["eighth"].to_string())
            .collect();
        assert_eq!(
            eighths,
            ["0.125", "0.125", "0.25", "0.25", "0.375", "0.375"],
            "{executor:?}"
        );
        assert_eq!(state.customers.get(0, 1), Value::Float(3.0), "{executor:?}");
    }
}
