//! The slow lane: a throttled trigger's firings past its allowance are recorded as
//! `deferred` and run later, once each, in turns at fixed stream positions that use a
//! bounded share of the fast lane's fuel — identically on every executor, thread count and
//! chunking of the stream, while the other triggers run in place, never deferred.

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::outcome::{RecordOutcome, RecordStatus, TriggerResult};
use fusebox_engine::slow_lane::STRIDE;
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{BatchCollector, BatchResult, Engine, ExecutorKind, RunOptions};

const CUSTOMERS: u64 = 40;

fn table() -> CustomerTable {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("note".to_string(), AttrType::String),
    ])
    .unwrap();
    let n = CUSTOMERS as usize;
    CustomerTable::new(
        schema,
        (1..=CUSTOMERS).collect(),
        vec![Column::Int(vec![Some(0); n]), Column::String(vec![None; n])],
    )
    .unwrap()
}

/// `n` events 50 ms apart (200 per 10 s window), each with a list of `items` to scan.
fn events(n: usize, items: usize) -> Vec<EventRecord> {
    let list: Vec<String> = (0..items).map(|i| i.to_string()).collect();
    let jsonl: String = (0..n)
        .map(|i| {
            let micros = 1_767_225_600_000_000i64 + 50_000 * i as i64;
            let ts = chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .to_rfc3339();
            format!(
                "{{\"id\":\"e{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"{ts}\",\"properties\":{{\"items\":[{}]}}}}\n",
                1 + (i as u64 * 7) % CUSTOMERS,
                list.join(",")
            )
        })
        .collect();
    read_jsonl(jsonl.as_bytes()).unwrap()
}

/// `heavy` scans the event's list and writes what it saw; `reader` reads that write (so
/// where a deferred execution runs is visible in the state); `light` only adds points.
const TRIGGERS: &str = r#"
settings: { budget_window: 10, SHARE }
triggers:
  - id: heavy
    owner: growth@x
    on: a
    budget: { fuel: 20000, hard_fuel: 100000000 }
    condition: "event.properties.items.all(i, i >= 0)"
    actions:
      - set: { attribute: note, value: "event.id" }
      - send_message: { channel: sms, template: spam }
  - id: reader
    owner: crm@x
    on: a
    condition: "customer.note != ''"
    actions:
      - award_points: { amount: "10" }
  - id: light
    owner: loyalty@x
    on: a
    actions:
      - award_points: { amount: "1" }
"#;

fn engine(share: &str, executor: ExecutorKind) -> Engine {
    let yaml = TRIGGERS.replace("SHARE", share);
    let set =
        compile_triggers(&yaml, "t.yaml", Some(table().schema())).unwrap_or_else(|e| panic!("{e}"));
    Engine::builder(set).executor(executor).build().unwrap()
}

/// Runs the stream in chunks of the given sizes (cycled); one chunk when empty.
fn run(engine: &Engine, records: &[EventRecord], chunks: &[usize]) -> (BatchResult, State) {
    let mut state = State::new(table(), engine.triggers());
    let options = RunOptions::default();
    let result = if chunks.is_empty() {
        engine.run_batch(&mut state, records, &options).unwrap()
    } else {
        let mut collector = BatchCollector::new(engine.triggers());
        let mut session = engine.session(&mut state, &options).unwrap();
        let mut start = 0;
        for size in chunks.iter().cycle() {
            if start >= records.len() {
                break;
            }
            let end = (start + size).min(records.len());
            session.push(&records[start..end], &mut collector).unwrap();
            start = end;
        }
        let summary = session.finish(&mut collector).unwrap();
        collector.finish(summary)
    };
    (result, state)
}

fn state_values(state: &State) -> Vec<Value> {
    (0..state.customers.len())
        .flat_map(|row| (0..2).map(move |attr| (row, attr)))
        .map(|(row, attr)| state.customers.get(row as _, attr as _))
        .collect()
}

fn triggers_of(o: &RecordOutcome) -> &[fusebox_engine::outcome::TriggerOutcome] {
    match &o.status {
        RecordStatus::Processed { triggers } => triggers,
        _ => &[],
    }
}

fn fuel_of(o: &RecordOutcome) -> u64 {
    triggers_of(o).iter().map(|t| t.fuel).sum()
}

#[test]
fn deferred_executions_run_once_in_bounded_turns_on_every_executor_and_chunking() {
    let records = events(3000, 100);
    let reference = engine("slow_lane_share: 25", ExecutorKind::Sequential);
    let (seq, seq_state) = run(&reference, &records, &[]);
    let deferred = TriggerResult::Deferred { lane: "slow" };

    // Each deferred firing runs exactly once in the slow lane, in the order deferred.
    let mut deferred_lines = Vec::new();
    let mut slow_lines = Vec::new();
    for o in &seq.outcomes {
        for t in triggers_of(o).iter().filter(|t| t.depth == 0) {
            match (o.lane, &*t.trigger) {
                (None, "heavy") if t.result == deferred => deferred_lines.push(o.line),
                (None, _) => assert_ne!(t.result, deferred, "only the throttled trigger defers"),
                (Some("slow"), "heavy") => slow_lines.push(o.line),
                (lane, trigger) => panic!("{trigger} in lane {lane:?}"),
            }
        }
    }
    assert!(deferred_lines.len() > 100, "{}", deferred_lines.len());
    assert_eq!(slow_lines, deferred_lines);
    assert_eq!(
        seq.report.events.slow_lane_runs,
        deferred_lines.len() as u64
    );
    assert_eq!(
        seq.report.triggers["heavy"].deferred,
        deferred_lines.len() as u64
    );
    assert!(seq.report.governor.iter().any(|t| t.to == "throttled"));

    // Turns come only at multiples of STRIDE (or at the end), each within its fuel share:
    // 25% of the fast lane's fuel since the previous turn, plus the one run that crosses it.
    let last_fast = seq.outcomes.iter().rposition(|o| o.lane.is_none()).unwrap();
    let mut fast_fuel = 0u64;
    let mut turns = 0;
    let mut i = 0;
    while i <= last_fast {
        let o = &seq.outcomes[i];
        if o.lane.is_none() {
            fast_fuel += fuel_of(o);
            i += 1;
            continue;
        }
        let previous = &seq.outcomes[i - 1];
        assert_eq!(
            previous.line % STRIDE,
            0,
            "a turn after line {}",
            previous.line
        );
        let turn: Vec<&RecordOutcome> = seq.outcomes[i..]
            .iter()
            .take_while(|o| o.lane.is_some())
            .collect();
        let fuels: Vec<u64> = turn.iter().map(|o| fuel_of(o)).collect();
        let used: u64 = fuels.iter().sum();
        let last = fuels.last().copied().unwrap_or(0);
        assert!(
            used - last < fast_fuel / 4 || fuels.len() == 1,
            "turn after line {}: {used} fuel for a share of {}",
            previous.line,
            fast_fuel / 4
        );
        turns += 1;
        fast_fuel = 0;
        i += turn.len();
    }
    assert!(turns >= 3, "{turns} turns");

    // Same outcomes (with fuel), effects, report and state everywhere.
    for (executor, chunks) in [
        (ExecutorKind::Sequential, vec![1, 7, 300, 1000]),
        (ExecutorKind::parallel(2), vec![]),
        (ExecutorKind::parallel(8), vec![]),
        (ExecutorKind::parallel(2), vec![64, 1024, 5]),
        (ExecutorKind::Locking { threads: 2 }, vec![]),
    ] {
        let engine = engine("slow_lane_share: 25", executor);
        let (other, state) = run(&engine, &records, &chunks);
        assert_eq!(other.outcomes, seq.outcomes, "{executor:?} {chunks:?}");
        assert_eq!(other.effects, seq.effects, "{executor:?} {chunks:?}");
        assert_eq!(other.report, seq.report, "{executor:?} {chunks:?}");
        assert_eq!(
            state_values(&state),
            state_values(&seq_state),
            "{executor:?}"
        );
    }

    // A bigger share drains the lane sooner: fewer runs left for the end of the stream.
    let at_end = |r: &BatchResult| {
        let last_fast = r.outcomes.iter().rposition(|o| o.lane.is_none()).unwrap();
        r.outcomes.len() - 1 - last_fast
    };
    let (generous, _) = run(
        &engine("slow_lane_share: 100", ExecutorKind::Sequential),
        &records,
        &[],
    );
    assert!(
        at_end(&generous) < at_end(&seq),
        "{} vs {}",
        at_end(&generous),
        at_end(&seq)
    );
}

#[test]
fn slow_lane_share_must_be_a_percentage() {
    for share in ["0", "101", "-5"] {
        let yaml = TRIGGERS.replace("SHARE", &format!("slow_lane_share: {share}"));
        let err = compile_triggers(&yaml, "t.yaml", Some(table().schema()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "slow_lane_share is a percentage between 1 and 100, got {share}"
            )),
            "{err}"
        );
        assert!(err.contains("t.yaml:2"), "{err}");
    }
}
