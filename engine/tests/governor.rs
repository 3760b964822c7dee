//! Governor limits and the kill switch: deterministic fuel (a comprehension over 10k
//! elements costs 10k bodies, on every executor), `max_fuel` and `max_writes` aborting an
//! execution with a typed reason and leaving no trace, `stopped:` recording every firing as
//! `trigger_stopped`, and `fusebox check`-style located errors for bad values.

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::outcome::{AbortReason, RecordStatus, TriggerResult};
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{BatchResult, Engine, ExecutorKind, RunOptions};

fn table() -> CustomerTable {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("note".to_string(), AttrType::String),
    ])
    .unwrap();
    CustomerTable::new(
        schema,
        vec![1, 2],
        vec![
            Column::Int(vec![Some(0), Some(0)]),
            Column::String(vec![None, None]),
        ],
    )
    .unwrap()
}

fn events(n_items: usize) -> Vec<EventRecord> {
    let items: Vec<String> = (0..n_items).map(|i| i.to_string()).collect();
    let jsonl: String = (0..6)
        .map(|i| {
            format!(
                "{{\"id\":\"e{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"properties\":{{\"items\":[{}]}}}}\n",
                1 + i % 2,
                items.join(",")
            )
        })
        .collect();
    read_jsonl(jsonl.as_bytes()).unwrap()
}

fn run(yaml: &str, records: &[EventRecord], executor: ExecutorKind) -> (BatchResult, State) {
    let t = table();
    let set = compile_triggers(yaml, "t.yaml", Some(t.schema())).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::builder(set).executor(executor).build().unwrap();
    let mut state = State::new(t, engine.triggers());
    let result = engine
        .run_batch(&mut state, records, &RunOptions::default())
        .unwrap();
    (result, state)
}

fn results_of(result: &BatchResult, trigger: &str) -> Vec<TriggerResult> {
    result
        .outcomes
        .iter()
        .flat_map(|o| match &o.status {
            RecordStatus::Processed { triggers } => triggers
                .iter()
                .filter(|t| &*t.trigger == trigger)
                .map(|t| t.result.clone())
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

const SCAN: &str = r#"
triggers:
  - id: scan
    owner: o@x
    on: a
    condition: "event.properties.items.exists(i, i == -1) || true"
    limits: { max_fuel: LIMIT }
    actions:
      - award_points: { amount: "1" }
  - id: cheap
    owner: o@x
    on: a
    actions:
      - set: { attribute: note, value: "'seen'" }
"#;

#[test]
fn a_comprehension_costs_its_length_and_max_fuel_stops_it_on_every_executor() {
    let records = events(10_000);
    let fuel = |records: &[EventRecord]| {
        let (generous, _) = run(
            &SCAN.replace("LIMIT", "1000000"),
            records,
            ExecutorKind::Sequential,
        );
        generous.report.triggers["scan"].fuel / 6
    };
    let (small, large) = (fuel(&events(1_000)), fuel(&records));
    // At least one unit per element, and linear in the length: 10× the elements, ~10× fuel.
    assert!(large >= 10_000, "{large}");
    let ratio = large as f64 / small as f64;
    assert!((9.0..=10.0).contains(&ratio), "1k: {small}, 10k: {large}");
    for executor in [
        ExecutorKind::Sequential,
        ExecutorKind::parallel(2),
        ExecutorKind::Locking { threads: 2 },
    ] {
        let (tight, state) = run(&SCAN.replace("LIMIT", "5000"), &records, executor);
        for r in results_of(&tight, "scan") {
            match r {
                TriggerResult::Aborted(AbortReason::FuelExhausted { used, max }) => {
                    assert_eq!(max, 5000);
                    assert!(used > 5000, "{used}");
                }
                other => panic!("{executor:?}: expected fuel_exhausted, got {other:?}"),
            }
        }
        // Nothing of the aborted executions is kept; the cheap trigger still ran.
        assert_eq!(state.customers.get(0, 0), Value::Int(0), "{executor:?}");
        assert_eq!(state.customers.get(0, 1), Value::Str("seen".into()));
        assert_eq!(tight.report.triggers["cheap"].committed, 6);
        assert_eq!(
            tight.report.triggers["scan"].aborted_by_reason["fuel_exhausted"],
            6
        );
    }
}

#[test]
fn fuel_is_the_same_on_every_executor() {
    let records = events(300);
    let yaml = SCAN.replace("LIMIT", "1000000");
    let (seq, _) = run(&yaml, &records, ExecutorKind::Sequential);
    for executor in [
        ExecutorKind::parallel(2),
        ExecutorKind::Locking { threads: 2 },
    ] {
        let (other, _) = run(&yaml, &records, executor);
        assert_eq!(
            other.outcomes, seq.outcomes,
            "{executor:?}: outcomes and their fuel"
        );
        assert_eq!(other.report, seq.report, "{executor:?}");
    }
    assert!(seq.report.triggers["cheap"].fuel > 0);
}

#[test]
fn max_writes_aborts_at_the_action_that_crosses_it_and_settings_give_defaults() {
    let yaml = r#"
settings: { max_writes: 2 }
triggers:
  - id: three-writes
    owner: o@x
    on: a
    actions:
      - award_points: { amount: "1" }
      - set: { attribute: note, value: "'x'" }
      - award_points: { amount: "1" }
  - id: own-limit
    owner: o@x
    on: a
    limits: { max_writes: 5 }
    actions:
      - award_points: { amount: "10" }
      - award_points: { amount: "10" }
      - award_points: { amount: "10" }
"#;
    let (result, state) = run(yaml, &events(1), ExecutorKind::parallel(2));
    for r in results_of(&result, "three-writes") {
        assert_eq!(
            r,
            TriggerResult::Aborted(AbortReason::LimitExceeded {
                action: 2,
                limit: "max_writes",
                max: 2
            })
        );
    }
    assert_eq!(state.customers.get(0, 1), Value::Null, "rolled back");
    assert_eq!(
        state.customers.get(0, 0),
        Value::Int(90),
        "3 events × 30 points"
    );
}

#[test]
fn a_stopped_trigger_records_every_firing_with_its_reason_and_runs_nothing() {
    let yaml = r#"
triggers:
  - id: runaway
    owner: o@x
    on: a
    stopped: "fires on every event (INC-42)"
    actions:
      - award_points: { amount: "1000" }
  - id: innocent
    owner: o@x
    on: a
    actions:
      - award_points: { amount: "1" }
"#;
    let (result, state) = run(yaml, &events(1), ExecutorKind::Sequential);
    let stopped = results_of(&result, "runaway");
    assert_eq!(stopped.len(), 6);
    assert!(stopped.iter().all(|r| matches!(r, TriggerResult::Stopped { skip: "trigger_stopped", reason } if &**reason == "fires on every event (INC-42)")));
    assert_eq!(result.report.triggers["runaway"].stopped, 6);
    assert_eq!(state.customers.get(0, 0), Value::Int(3));
    let line = serde_json::to_string(&result.outcomes[0]).unwrap();
    assert!(
        line.contains(r#""trigger":"runaway","event_id":"e0","depth":0,"result":"skipped","skip":"trigger_stopped","reason":"fires on every event (INC-42)""#),
        "{line}"
    );
}

#[test]
fn bad_limits_and_an_empty_stop_reason_are_located_errors() {
    let t = table();
    for (yaml, says) in [
        ("settings: { max_fuel: 0 }\ntriggers:\n  - { id: t, owner: o, on: a, actions: [ { award_points: { amount: \"1\" } } ] }\n", "max_fuel must be at least 1"),
        ("triggers:\n  - { id: t, owner: o, on: a, limits: { max_writes: -3 }, actions: [ { award_points: { amount: \"1\" } } ] }\n", "max_writes must be at least 1"),
        ("triggers:\n  - { id: t, owner: o, on: a, stopped: \" \", actions: [ { award_points: { amount: \"1\" } } ] }\n", "needs the reason"),
    ] {
        let err = compile_triggers(yaml, "t.yaml", Some(t.schema())).unwrap_err().to_string();
        assert!(err.contains(says), "{yaml}: {err}");
        assert!(err.contains("t.yaml:"), "located: {err}");
    }
}

#[test]
fn a_loop_of_chained_events_is_reported_naming_its_cycle() {
    let yaml = r#"
settings: { max_chain_depth: 5 }
triggers:
  - id: ping
    owner: o@x
    on: a
    condition: "customer.points < 1000"
    actions:
      - award_points: { amount: "1" }
      - emit_event: { type: b }
  - id: pong
    owner: o@x
    on: b
    condition: "customer.points < 1000"
    actions:
      - emit_event: { type: a }
"#;
    let (result, _) = run(yaml, &events(1), ExecutorKind::parallel(2));
    let line = serde_json::to_string(&result.outcomes[0]).unwrap();
    assert!(
        line.contains(r#""reason":"chain_depth_exceeded","action":0,"emitted_depth":6,"max":5,"cycle":["pong","ping","pong"]"#),
        "{line}"
    );
    let health = fusebox_engine::health::assess(&result);
    assert!(
        health.problems[0].what.contains("chain_depth_exceeded"),
        "{health:?}"
    );
}

#[test]
fn the_batch_status_names_a_stopped_trigger() {
    let yaml = "triggers:\n  - { id: t, owner: o, on: a, stopped: \"INC-7\", actions: [ { award_points: { amount: \"1\" } } ] }\n";
    let (result, _) = run(yaml, &events(1), ExecutorKind::Sequential);
    let health = fusebox_engine::health::assess(&result);
    assert_eq!(health.health, "degraded");
    assert_eq!(
        health.problems[0].what,
        "stopped by an operator (INC-7): 6 firings skipped"
    );
}

/// `n` events, customers 1 and 2 alternating, 10 s apart (six per 60 s window), each with a
/// 200-element list.
fn timed_events(n: usize) -> Vec<EventRecord> {
    let items: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let jsonl: String = (0..n)
        .map(|i| {
            let secs = 1_767_225_600 + 10 * i as i64;
            let ts = chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339();
            format!(
                "{{\"id\":\"t{i}\",\"customer_id\":{},\"type\":\"a\",\"timestamp\":\"{ts}\",\"properties\":{{\"items\":[{}]}}}}\n",
                1 + i % 2,
                items.join(",")
            )
        })
        .collect();
    read_jsonl(jsonl.as_bytes()).unwrap()
}

const RUNAWAY: &str = r#"
settings: { budget_window: 60, stop_after_windows: 3, recover_after_windows: 2 }
triggers:
  - id: runaway
    owner: growth@x
    on: a
    budget: { fuel: 1000, hard_fuel: 2000 }
    condition: "event.properties.items.all(i, i >= 0)"
    actions:
      - send_message: { channel: sms, template: spam }
  - id: innocent
    owner: loyalty@x
    on: a
    budget: { fuel: 1000000 }
    actions:
      - award_points: { amount: "1" }
"#;

fn run_governed(
    yaml: &str,
    records: &[EventRecord],
    executor: ExecutorKind,
) -> (
    BatchResult,
    State,
    Vec<fusebox_quotas::notify::Notification>,
) {
    let t = table();
    let set = compile_triggers(yaml, "t.yaml", Some(t.schema())).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::builder(set).executor(executor).build().unwrap();
    let mut state = State::new(t, engine.triggers());
    let notifier = fusebox_quotas::notify::CollectingNotifier::new();
    let options = RunOptions {
        notifier: Some(&notifier),
        ..RunOptions::default()
    };
    let result = engine.run_batch(&mut state, records, &options).unwrap();
    (result, state, notifier.take())
}

/// A runaway trigger over its budget is throttled after its first window and stopped after
/// three windows over its hard budget, its owner told once per transition; from then on its
/// firings are recorded as `trigger_stopped`; the innocent trigger's outcomes are those of a
/// run without the runaway; all of it identical on every executor and thread count.
#[test]
fn a_runaway_trigger_is_throttled_then_stopped_and_innocents_are_untouched() {
    use fusebox_quotas::notify::NotificationKind;
    let records = timed_events(60); // 10 windows of 6 events
    let (seq, seq_state, notes) = run_governed(RUNAWAY, &records, ExecutorKind::Sequential);
    let kinds: Vec<(NotificationKind, String)> = notes
        .iter()
        .map(|n| (n.kind, n.subject.id().to_string()))
        .collect();
    assert_eq!(
        kinds,
        [
            (NotificationKind::Throttled, "runaway".to_string()),
            (NotificationKind::Stopped, "runaway".to_string())
        ]
    );
    assert_eq!(notes[1].owner, "growth@x");
    assert!(
        notes[1]
            .figure("fuel_used")
            .and_then(|f| f.as_u64())
            .unwrap()
            > 2000
    );
    let transitions = &seq.report.governor;
    assert_eq!(
        transitions.iter().map(|t| t.to).collect::<Vec<_>>(),
        ["throttled", "stopped"]
    );
    // Window 1 (lines 1-6) ran in place. Throttled in windows 2 and 3 (lines 7-18): in
    // place up to its allowance, then deferred to the slow lane. Stopped when the third
    // window closed: from the fourth window's first event (line 19) on.
    let fast: Vec<(u64, TriggerResult)> = lane_results(&seq, "runaway", None);
    assert_eq!(fast.len(), 60);
    assert!(fast[..6]
        .iter()
        .all(|(_, r)| *r == TriggerResult::Committed));
    let deferred = TriggerResult::Deferred { lane: "slow" };
    for window in [&fast[6..12], &fast[12..18]] {
        let in_place = window
            .iter()
            .take_while(|(_, r)| *r == TriggerResult::Committed)
            .count();
        assert!(in_place < 6, "{window:?}");
        assert!(
            window[in_place..].iter().all(|(_, r)| *r == deferred),
            "{window:?}"
        );
    }
    assert!(fast[18..].iter().all(|(_, r)| matches!(r, TriggerResult::Stopped { skip: "trigger_stopped", reason } if reason.contains("governor"))), "{:?}", &fast[17..20]);
    // 60 records never reach a slow-lane turn: the deferred firings run when the stream
    // ends, each once, after the stop — so they are recorded as stopped, never lost.
    let slow = lane_results(&seq, "runaway", Some("slow"));
    let deferred_lines: Vec<u64> = fast
        .iter()
        .filter(|(_, r)| *r == deferred)
        .map(|(line, _)| *line)
        .collect();
    assert_eq!(
        slow.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        deferred_lines
    );
    assert!(slow
        .iter()
        .all(|(_, r)| matches!(r, TriggerResult::Stopped { .. })));
    assert!(transitions[1].deferred > 0, "{transitions:?}");
    // The innocent trigger does exactly what it does alone.
    let alone = RUNAWAY.replace(
        "  - id: runaway",
        "  - id: runaway\n    stopped: \"not in this run\"",
    );
    let (solo, solo_state, _) = run_governed(&alone, &records, ExecutorKind::Sequential);
    assert_eq!(results_of(&seq, "innocent"), results_of(&solo, "innocent"));
    assert_eq!(
        seq_state.customers.get(0, 0),
        solo_state.customers.get(0, 0)
    );
    for executor in [
        ExecutorKind::parallel(2),
        ExecutorKind::parallel(8),
        ExecutorKind::Locking { threads: 2 },
    ] {
        let (other, _, other_notes) = run_governed(RUNAWAY, &records, executor);
        assert_eq!(other.outcomes, seq.outcomes, "{executor:?}");
        assert_eq!(other.report, seq.report, "{executor:?}");
        assert_eq!(other_notes, notes, "{executor:?}");
    }
}

/// The (line, result) of `trigger` in every record of `lane` (`None`: the records' own
/// outcomes, `Some("slow")`: slow-lane runs), in output order.
fn lane_results(
    result: &BatchResult,
    trigger: &str,
    lane: Option<&str>,
) -> Vec<(u64, TriggerResult)> {
    result
        .outcomes
        .iter()
        .filter(|o| o.lane == lane)
        .flat_map(|o| match &o.status {
            RecordStatus::Processed { triggers } => triggers
                .iter()
                .filter(|t| &*t.trigger == trigger && t.depth == 0)
                .map(|t| (o.line, t.result.clone()))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn bad_budgets_are_located_errors() {
    let t = table();
    for (yaml, says) in [
        ("triggers:\n  - { id: t, owner: o, on: a, budget: { fuel: 0 }, actions: [ { award_points: { amount: \"1\" } } ] }\n", "budget fuel must be at least 1"),
        ("triggers:\n  - { id: t, owner: o, on: a, budget: { fuel: 10, hard_fuel: 5 }, actions: [ { award_points: { amount: \"1\" } } ] }\n", "hard_fuel 5 is below the budget fuel 10"),
        ("settings: { budget_window: -1 }\ntriggers:\n  - { id: t, owner: o, on: a, actions: [ { award_points: { amount: \"1\" } } ] }\n", "budget_window must be at least 1"),
    ] {
        let err = compile_triggers(yaml, "t.yaml", Some(t.schema())).unwrap_err().to_string();
        assert!(err.contains(says), "{yaml}: {err}");
    }
}

/// A cheap trigger that starts an expensive cascade of chained events is charged for it:
/// the governor throttles and stops the trigger that starts the cascade, even though the
/// fuel is spent by the trigger on the chained events — on every executor.
#[test]
fn a_trigger_is_charged_for_the_cascade_it_starts() {
    const CASCADE: &str = r#"
settings: { budget_window: 60, stop_after_windows: 2 }
event_types: [a, b]
triggers:
  - id: starter
    owner: growth@x
    on: a
    budget: { fuel: 1000, hard_fuel: 2000 }
    actions:
      - emit_event: { type: b, properties: { items: "event.properties.items" } }
  - id: worker
    owner: data@x
    on: b
    condition: "event.properties.items.all(i, i >= 0)"
    actions:
      - award_points: { amount: "1" }
"#;
    let records = timed_events(60); // 10 windows of 6 events
    let (seq, _, notes) = run_governed(CASCADE, &records, ExecutorKind::Sequential);
    let transitions: Vec<(&str, &str)> = seq
        .report
        .governor
        .iter()
        .map(|t| (&*t.trigger, t.to))
        .collect();
    assert_eq!(
        transitions,
        [("starter", "throttled"), ("starter", "stopped")]
    );
    // Its own executions cost a few units; the cascade's condition scans 200 items.
    assert!(
        seq.report.triggers["starter"].fuel < 200,
        "{:?}",
        seq.report.triggers["starter"]
    );
    assert!(
        seq.report.governor[0].fuel_used > 2000,
        "{:?}",
        seq.report.governor[0]
    );
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|n| n.owner == "growth@x"));
    for executor in [
        ExecutorKind::parallel(2),
        ExecutorKind::Locking { threads: 2 },
    ] {
        let (other, _, other_notes) = run_governed(CASCADE, &records, executor);
        assert_eq!(other.outcomes, seq.outcomes, "{executor:?}");
        assert_eq!(other.report, seq.report, "{executor:?}");
        assert_eq!(other_notes, notes, "{executor:?}");
    }
}

/// `settings.window_fuel` derives a budget for every enabled trigger without one: twice its
/// fair share of the set's fuel per window, four times as the hard budget; a trigger's own
/// `budget:` wins; a bad value is a located error.
#[test]
fn window_fuel_derives_budgets_from_the_trigger_set() {
    let t = table();
    let yaml = r#"
settings: { window_fuel: 9000 }
triggers:
  - { id: a1, owner: o, on: a, actions: [ { award_points: { amount: "1" } } ] }
  - { id: a2, owner: o, on: a, budget: { fuel: 5 }, actions: [ { award_points: { amount: "1" } } ] }
  - { id: a3, owner: o, on: a, actions: [ { award_points: { amount: "1" } } ] }
  - { id: off, owner: o, on: a, enabled: false, actions: [ { award_points: { amount: "1" } } ] }
"#;
    let set = compile_triggers(yaml, "t.yaml", Some(t.schema())).unwrap_or_else(|e| panic!("{e}"));
    let budget = |id: &str| {
        let t = set.triggers.iter().find(|t| &*t.id == id).unwrap();
        t.budget.as_ref().map(|b| (b.fuel, b.hard_fuel))
    };
    // Three enabled triggers: a fair share of 3000 each.
    assert_eq!(budget("a1"), Some((6000, 12000)));
    assert_eq!(budget("a2"), Some((5, 10)));
    assert_eq!(budget("a3"), Some((6000, 12000)));
    assert_eq!(budget("off"), None);
    let bad = "settings: { window_fuel: 0 }\ntriggers:\n  - { id: t, owner: o, on: a, actions: [ { award_points: { amount: \"1\" } } ] }\n";
    let err = compile_triggers(bad, "t.yaml", Some(t.schema()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("window_fuel must be at least 1") && err.contains("t.yaml:1"),
        "{err}"
    );
}
