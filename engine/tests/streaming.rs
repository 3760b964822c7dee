//! The streaming core: a stream cut into chunks gives exactly the results of one batch, on
//! every executor; the sink sees every record once, in order; a chunk reads one membership
//! snapshot, whatever is published while it runs.

use std::sync::Arc;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::exec::parallel::ParallelConfig;
use fusebox_engine::expr::segments::Memberships;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::outcome::{RecordStatus, TriggerResult};
use fusebox_engine::state::State;
use fusebox_engine::value::AttrType;
use fusebox_engine::{BatchCollector, Engine, ExecutorKind, RecordResult, RunOptions, StreamTally};
use proptest::prelude::*;

const TRIGGERS: &str = r#"
event_types: [a, b]
pools:
  - id: p
    generate: { prefix: "P-", count: 30 }
counters:
  - id: hits
triggers:
  - id: count
    owner: o@x
    on: a
    actions:
      - increment: { counter: hits }
      - award_points: { amount: "1" }
  - id: reward
    owner: o@x
    on: a
    condition: "customer.points % 3 == 0"
    actions:
      - issue_coupon: { pool: p }
      - send_message: { channel: sms, template: c, args: { code: "coupon", hits: "counters.hits" } }
      - emit_event: { type: b }
  - id: chained
    owner: o@x
    on: b
    actions:
      - start_feed: { feed: f, args: { p: "customer.points" } }
"#;

fn table() -> CustomerTable {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    CustomerTable::new(
        schema,
        (1..=5).collect(),
        vec![Column::Int(vec![Some(0); 5])],
    )
    .unwrap()
}

/// Events for customers 1..=5, with some bad lines, duplicates and unknown customers.
fn records(n: usize) -> Vec<EventRecord> {
    let jsonl: String = (0..n)
        .map(|i| match i % 11 {
            7 => "not json\n".to_string(),
            9 => format!("{{\"id\":\"e{}\",\"customer_id\":1,\"type\":\"a\",\"timestamp\":\"2026-03-01T12:00:00Z\"}}\n", i - 1),
            10 => format!("{{\"id\":\"e{i}\",\"customer_id\":99,\"type\":\"a\",\"timestamp\":\"2026-03-01T12:00:00Z\"}}\n"),
            _ => format!("{{\"id\":\"e{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"2026-03-01T12:00:00Z\"}}\n", 1 + i % 5),
        })
        .collect();
    read_jsonl(jsonl.as_bytes()).unwrap()
}

fn engine(executor: ExecutorKind) -> (Engine, CustomerTable) {
    let customers = table();
    let set = compile_triggers(TRIGGERS, "t.yaml", Some(customers.schema())).unwrap();
    (
        Engine::builder(set).executor(executor).build().unwrap(),
        customers,
    )
}

/// The results of `records` pushed in chunks cut at `cuts`.
fn chunked(
    engine: &Engine,
    customers: &CustomerTable,
    records: &[EventRecord],
    cuts: &[usize],
) -> (Vec<RecordResult>, State) {
    let mut state = State::new(customers.clone(), engine.triggers());
    let mut results = Vec::new();
    let options = RunOptions::default();
    let mut session = engine.session(&mut state, &options).unwrap();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (records.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(records.len());
    for end in bounds {
        let mut sink = |r: RecordResult| results.push(r);
        session
            .push(&records[start..end.max(start)], &mut sink)
            .unwrap();
        start = end.max(start);
    }
    drop(session);
    (results, state)
}

fn executors() -> Vec<ExecutorKind> {
    vec![
        ExecutorKind::Sequential,
        ExecutorKind::Parallel(ParallelConfig::always_parallel(2, 4)),
        ExecutorKind::parallel(2),
        ExecutorKind::Locking { threads: 2 },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn chunks_give_the_results_of_one_batch(n in 1usize..80, cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let records = records(n);
        let (reference_engine, customers) = engine(ExecutorKind::Sequential);
        let (reference, reference_state) = chunked(&reference_engine, &customers, &records, &[]);
        for executor in executors() {
            let (engine, _) = engine(executor);
            let (results, state) = chunked(&engine, &customers, &records, &cuts);
            prop_assert_eq!(&results.iter().map(|r| (r.position, &r.outcome, &r.effects)).collect::<Vec<_>>(),
                &reference.iter().map(|r| (r.position, &r.outcome, &r.effects)).collect::<Vec<_>>(),
                "{:?}", executor);
            prop_assert_eq!(state.customers.columns(), reference_state.customers.columns());
            prop_assert_eq!(&state.counters, &reference_state.counters);
            prop_assert_eq!(&state.pool_cursors, &reference_state.pool_cursors);
        }
    }
}

#[test]
fn the_sink_sees_every_record_once_in_order() {
    let records = records(200);
    for executor in executors() {
        let (engine, customers) = engine(executor);
        let (results, _) = chunked(&engine, &customers, &records, &[17, 60, 60, 133]);
        let positions: Vec<u64> = results.iter().map(|r| r.position).collect();
        assert_eq!(positions, (0..200).collect::<Vec<u64>>(), "{executor:?}");
        let lines: Vec<u64> = results.iter().map(|r| r.outcome.line).collect();
        assert_eq!(lines, records.iter().map(|r| r.line).collect::<Vec<_>>());
    }
}

#[test]
fn a_duplicate_id_is_found_across_chunks() {
    let records = records(20);
    let (engine, customers) = engine(ExecutorKind::Sequential);
    // Record 9 repeats record 8's id; cutting between them must not hide it.
    let (results, _) = chunked(&engine, &customers, &records, &[9]);
    assert!(matches!(
        &results[9].outcome.status,
        RecordStatus::Rejected { error, .. } if error.contains("duplicate event id `e8`")
    ));
}

#[test]
fn run_batch_equals_the_collector_over_a_session() {
    let records = records(100);
    let (engine, customers) = engine(ExecutorKind::parallel(2));
    let mut a = State::new(customers.clone(), engine.triggers());
    let batch = engine
        .run_batch(&mut a, &records, &RunOptions::default())
        .unwrap();
    let mut b = State::new(customers, engine.triggers());
    let options = RunOptions::default();
    let mut collector = BatchCollector::new(engine.triggers());
    let mut session = engine.session(&mut b, &options).unwrap();
    session.push(&records[..50], &mut collector).unwrap();
    session.push(&records[50..], &mut collector).unwrap();
    let summary = session.finish(&mut collector).unwrap();
    let streamed = collector.finish(summary);
    assert_eq!(batch.outcomes, streamed.outcomes);
    assert_eq!(batch.effects, streamed.effects);
    assert_eq!(batch.report, streamed.report);
}

/// A streamed run keeps no outcomes: its [`StreamTally`], fed result by result over chunks,
/// gives the report and the health a whole batch gives (`fusebox run` writes both).
#[test]
fn a_stream_tally_equals_the_batch_report_and_health() {
    let records = records(200);
    let (engine, customers) = engine(ExecutorKind::parallel(2));
    let mut a = State::new(customers.clone(), engine.triggers());
    let batch = engine
        .run_batch(&mut a, &records, &RunOptions::default())
        .unwrap();
    let mut b = State::new(customers, engine.triggers());
    let options = RunOptions::default();
    let mut tally = StreamTally::new(engine.triggers());
    let mut session = engine.session(&mut b, &options).unwrap();
    for chunk in records.chunks(37) {
        session
            .push(chunk, &mut |r: RecordResult| tally.record(&r))
            .unwrap();
    }
    let summary = session
        .finish(&mut |r: RecordResult| tally.record(&r))
        .unwrap();
    let totals = tally.finish(summary);
    assert_eq!(totals.report, batch.report);
    let health = fusebox_engine::health::assess(&batch);
    assert_eq!(totals.health, health);
    assert_eq!(
        health.health, "degraded",
        "the records include rejected ones"
    );
    assert_eq!(totals.held, batch.held.len() as u64);
}

const SEGMENT_TRIGGERS: &str = r#"
event_types: [a]
triggers:
  - id: vip-only
    owner: o@x
    on: a
    condition: "segment('vip')"
    actions:
      - award_points: { amount: "1" }
"#;

/// A membership published while a chunk runs — here by the sink, after the chunk's first
/// result — applies from the next chunk: every transaction of a chunk reads the snapshot
/// taken when it started, on every executor and whatever the threads' timing.
#[test]
fn a_membership_published_mid_chunk_applies_from_the_next_chunk() {
    for executor in executors() {
        let customers = table();
        let registry = Arc::new(Memberships::new());
        registry.publish("vip", vec![1, 2, 3, 4, 5]);
        let set = compile_triggers(SEGMENT_TRIGGERS, "t.yaml", Some(customers.schema())).unwrap();
        let engine = Engine::builder(set)
            .executor(executor)
            .memberships(registry.clone())
            .build()
            .unwrap();
        let jsonl: String = (0..400)
            .map(|i| format!("{{\"id\":\"e{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"2026-03-01T12:00:00Z\"}}\n", 1 + i % 5))
            .collect();
        let records = read_jsonl(jsonl.as_bytes()).unwrap();
        let mut state = State::new(customers, engine.triggers());
        let options = RunOptions::default();
        let mut session = engine.session(&mut state, &options).unwrap();
        let mut committed = Vec::new();
        let mut sink = |r: RecordResult| {
            if r.position == 0 {
                registry.publish("vip", vec![]);
            }
            let RecordStatus::Processed { triggers } = &r.outcome.status else {
                panic!("processed")
            };
            committed.push(matches!(triggers[0].result, TriggerResult::Committed));
        };
        session.push(&records[..200], &mut sink).unwrap();
        session.push(&records[200..], &mut sink).unwrap();
        drop(session);
        assert!(
            committed[..200].iter().all(|c| *c),
            "{executor:?}: the first chunk sees its snapshot"
        );
        assert!(
            committed[200..].iter().all(|c| !*c),
            "{executor:?}: the next chunk sees the publication"
        );
    }
}

/// The per-trigger timings of a run carry execution-time percentiles (what `timings.json`
/// shows): for every trigger that ran, 0 < p50 ≤ p99 ≤ about the slowest execution.
#[test]
fn trigger_timings_carry_p50_and_p99() {
    let records = records(200);
    let (engine, customers) = engine(ExecutorKind::Sequential);
    let mut state = State::new(customers, engine.triggers());
    let batch = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    assert!(!batch.timings.triggers.is_empty());
    for (id, t) in &batch.timings.triggers {
        assert!(t.p50_us > 0.0, "{id}: {t:?}");
        assert!(t.p50_us <= t.p99_us, "{id}: {t:?}");
        // The histogram keeps 2 significant digits: within 1% of the slowest.
        assert!(t.p99_us <= t.max_us * 1.01 + 0.001, "{id}: {t:?}");
    }
}
