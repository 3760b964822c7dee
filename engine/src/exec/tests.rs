//! Behaviour of the reference executor (trigger semantics).

use crate::config::compile_triggers;
use crate::engine::{BatchResult, Engine, RunOptions};
use crate::exec::test_support::customers;
use crate::io::events::read_jsonl;
use crate::outcome::{AbortReason, EffectKind, RecordStatus, RejectKind, TriggerResult};
use crate::state::State;
use crate::value::Value;

fn run(triggers: &str, events: &str) -> (BatchResult, State) {
    let table = customers(3);
    let set = compile_triggers(triggers, "t.yaml", Some(table.schema()))
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(set).unwrap();
    let mut state = State::new(table, engine.triggers());
    let records = read_jsonl(events.as_bytes()).unwrap();
    let result = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    (result, state)
}

fn ev(id: &str, customer: u64, ty: &str, props: &str) -> String {
    format!(
        r#"{{"id":"{id}","customer_id":{customer},"type":"{ty}","timestamp":"2026-03-01T12:00:00Z","properties":{props}}}"#
    ) + "\n"
}

fn results(r: &BatchResult, line: usize) -> Vec<TriggerResult> {
    match &r.outcomes[line].status {
        RecordStatus::Processed { triggers } => triggers.iter().map(|t| t.result.clone()).collect(),
        other => panic!("line {line} not processed: {other:?}"),
    }
}

const POOL_TRIGGERS: &str = r#"
pools:
  - id: tiny
    codes: [C1, C2]
triggers:
  - id: a-points
    owner: o
    on: order
    actions:
      - award_points: { amount: "10" }
      - issue_coupon: { pool: tiny, store_in: last_coupon }
      - send_message: { channel: sms, template: t, args: { code: "coupon", points: "customer.points" } }
  - id: b-tier
    owner: o
    on: order
    condition: "customer.points >= 20"
    actions:
      - set: { attribute: tier, value: "'gold'" }
"#;

#[test]
fn executions_are_atomic_and_see_earlier_writes() {
    let events = [
        ev("e1", 1, "order", "{}"),
        ev("e2", 1, "order", "{}"),
        ev("e3", 1, "order", "{}"),
    ]
    .concat();
    let (r, state) = run(POOL_TRIGGERS, &events);
    // e1: points 10, coupon C1; tier condition false. e2: points 20, C2; tier gold (sees a-points' write).
    assert_eq!(
        results(&r, 0),
        vec![TriggerResult::Committed, TriggerResult::Skipped]
    );
    assert_eq!(
        results(&r, 1),
        vec![TriggerResult::Committed, TriggerResult::Committed]
    );
    // e3: pool exhausted → a-points aborts entirely: no points, no message; b-tier still runs.
    let r3 = results(&r, 2);
    assert!(
        matches!(
            &r3[0],
            TriggerResult::Aborted(AbortReason::PoolExhausted { action: 1, .. })
        ),
        "{r3:?}"
    );
    assert_eq!(r3[1], TriggerResult::Committed);
    assert_eq!(
        state.customers.get(0, 0),
        Value::Int(20),
        "aborted award must not stick"
    );
    assert_eq!(state.customers.get(0, 3), Value::str("C2"));
    let messages: Vec<_> = r
        .effects
        .iter()
        .filter_map(|e| match &e.kind {
            EffectKind::Message { args, .. } => {
                Some((args.get("code").cloned(), args.get("points").cloned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            (Some(Value::str("C1")), Some(Value::Int(10))),
            (Some(Value::str("C2")), Some(Value::Int(20)))
        ]
    );
    let keys: std::collections::HashSet<&str> = r.effects.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys.len(), r.effects.len(), "idempotency keys are unique");
    assert!(keys.contains("e1:a-points:2"));
}

#[test]
fn bad_records_are_rejected_with_reasons_and_nothing_is_lost() {
    let events = [
        ev("e1", 1, "order", "{}"),
        "{not json}\n".to_string(),
        ev("e1", 2, "order", "{}"),
        ev("e3", 99, "order", "{}"),
        ev("e4", 1, "nope", "{}"),
    ]
    .concat();
    let (r, _) = run(POOL_TRIGGERS, &events);
    assert_eq!(r.outcomes.len(), 5);
    let kinds: Vec<Option<RejectKind>> = r
        .outcomes
        .iter()
        .map(|o| match &o.status {
            RecordStatus::Rejected { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some(RejectKind::Malformed),
            Some(RejectKind::DuplicateEventId),
            Some(RejectKind::UnknownCustomer),
            Some(RejectKind::UnknownEventType)
        ]
    );
    assert_eq!(
        r.outcomes.iter().map(|o| o.line).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(r.report.events.rejected, 4);
    assert_eq!(r.report.rejected_by_reason["unknown_customer"], 1);
}

#[test]
fn chained_events_run_after_their_parent_and_the_depth_limit_aborts() {
    let triggers = r#"
settings: { max_chain_depth: 3 }
triggers:
  - id: bump
    owner: o
    on: ping
    condition: "customer.points < 100"
    actions:
      - increment: { attribute: points }
      - emit_event: { type: ping, properties: { n: "customer.points" } }
"#;
    let (r, state) = run(triggers, &ev("e1", 2, "ping", "{}"));
    let RecordStatus::Processed { triggers } = &r.outcomes[0].status else {
        panic!()
    };
    let ids: Vec<(&str, u32)> = triggers
        .iter()
        .map(|t| (t.event_id.as_ref(), t.depth))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("e1", 0),
            ("e1/bump#1", 1),
            ("e1/bump#1/bump#1", 2),
            ("e1/bump#1/bump#1/bump#1", 3)
        ]
    );
    assert!(matches!(
        triggers[3].result,
        TriggerResult::Aborted(AbortReason::ChainDepthExceeded {
            emitted_depth: 4,
            max: 3,
            ..
        })
    ));
    assert_eq!(
        state.customers.get(1, 0),
        Value::Int(3),
        "the aborted 4th execution did not increment"
    );
    assert_eq!(r.report.events.chained, 3);
}

#[test]
fn limits_abort_only_the_offending_execution() {
    let triggers = r#"
triggers:
  - id: spammy
    owner: o
    on: order
    limits: { max_effects: 1 }
    actions:
      - send_message: { channel: sms, template: a }
      - send_message: { channel: email, template: b }
  - id: generous
    owner: o
    on: order
    limits: { max_points: 50 }
    actions:
      - award_points: { amount: "int(event.properties.total)" }
"#;
    let events = [
        ev("e1", 1, "order", r#"{"total": 30}"#),
        ev("e2", 1, "order", r#"{"total": 80.0}"#),
    ]
    .concat();
    let (r, state) = run(triggers, &events);
    // Same priority: `generous` runs before `spammy` (id order).
    assert_eq!(results(&r, 0)[0], TriggerResult::Committed);
    assert!(matches!(
        &results(&r, 0)[1],
        TriggerResult::Aborted(AbortReason::LimitExceeded {
            limit: "max_effects",
            ..
        })
    ));
    assert!(matches!(
        &results(&r, 1)[0],
        TriggerResult::Aborted(AbortReason::LimitExceeded {
            limit: "max_points",
            ..
        })
    ));
    assert_eq!(state.customers.get(0, 0), Value::Int(30));
    assert!(r.effects.is_empty());
    assert_eq!(
        r.report.triggers["spammy"].aborted_by_reason["limit_exceeded"],
        2
    );
}

#[test]
fn evaluation_and_type_errors_are_recorded() {
    let triggers = r#"
triggers:
  - id: t
    owner: o
    on: order
    condition: "event.properties.total > 10"
    actions:
      - set: { attribute: spent, value: "event.properties.total" }
      - set: { attribute: tier, value: "event.properties.total" }
"#;
    let events = [
        ev("e1", 1, "order", "{}"),
        ev("e2", 1, "order", r#"{"total": 12}"#),
    ]
    .concat();
    let (r, state) = run(triggers, &events);
    assert!(matches!(
        &results(&r, 0)[0],
        TriggerResult::Aborted(AbortReason::ConditionError { .. })
    ));
    let TriggerResult::Aborted(AbortReason::ActionError { action: 1, message }) =
        &results(&r, 1)[0]
    else {
        panic!("{:?}", results(&r, 1))
    };
    assert!(message.contains("attribute `tier` is string"), "{message}");
    assert_eq!(
        state.customers.get(0, 2),
        Value::Null,
        "the first set was rolled back with the execution"
    );
}
