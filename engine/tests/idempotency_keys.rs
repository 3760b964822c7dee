//! Idempotency keys and event ids are unique by construction, whatever ids the input uses.
//!
//! Input ids are drawn from an alphabet rich in the characters the id schemes use (`/`, `#`,
//! `:`) and often copy the id a chained event would get (`e0/up#0`); triggers emit chained
//! events and effects at several depths. Every effect key and every event id a run reports
//! must be unique, and an input id that could collide must be rejected, not run.

use std::collections::HashSet;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::outcome::{RecordStatus, RejectKind};
use fusebox_engine::state::State;
use fusebox_engine::value::AttrType;
use fusebox_engine::{Engine, RunOptions};
use proptest::prelude::*;

const TRIGGERS: &str = "settings: { max_chain_depth: 3 }
event_types: [a, b]
triggers:
  - id: up
    owner: o@x
    on: a
    actions:
      - emit_event: { type: b }
      - send_message: { channel: sms, template: t }
  - id: notify
    owner: o@x
    on: b
    condition: \"true\"
    actions:
      - send_message: { channel: sms, template: n }
      - emit_event: { type: b }
";

fn engine() -> (Engine, CustomerTable) {
    let schema = Schema::new([("n".to_string(), AttrType::Int)]).unwrap();
    let customers =
        CustomerTable::new(schema, vec![1, 2], vec![Column::Int(vec![None, None])]).unwrap();
    let set = compile_triggers(TRIGGERS, "t.yaml", Some(customers.schema())).unwrap();
    (Engine::new(set).unwrap(), customers)
}

fn run_ids(ids: &[String]) -> fusebox_engine::BatchResult {
    let (engine, customers) = engine();
    let jsonl: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "customer_id": 1 + i % 2, "type": if i % 3 == 0 { "b" } else { "a" }, "timestamp": "2026-03-01T12:00:00Z"})
            )
        })
        .collect();
    let records = read_jsonl(jsonl.as_bytes()).unwrap();
    let mut state = State::new(customers, engine.triggers());
    engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap()
}

fn assert_unique(result: &fusebox_engine::BatchResult) -> Result<(), TestCaseError> {
    let mut keys = HashSet::new();
    for e in &result.effects {
        prop_assert!(
            keys.insert(e.key.clone()),
            "idempotency key {} twice",
            e.key
        );
    }
    // Every event that ran (input or chained) is named once across the whole run.
    let mut events = HashSet::new();
    for o in &result.outcomes {
        if let RecordStatus::Processed { triggers } = &o.status {
            let ran: HashSet<&str> = triggers.iter().map(|t| t.event_id.as_ref()).collect();
            for id in ran {
                prop_assert!(events.insert(id.to_string()), "event id {} twice", id);
            }
        }
    }
    Ok(())
}

/// Ids built from the id schemes' own characters, often copying a chained id.
fn id_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[eo1/#:up]{1,8}",
        (0u32..4, 0u32..3).prop_map(|(e, a)| format!("e{e}/up#{a}")),
        (0u32..4).prop_map(|e| format!("e{e}/up#0/notify#1")),
        (0u32..4).prop_map(|e| format!("e{e}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn keys_and_event_ids_are_unique_for_any_input_ids(ids in prop::collection::vec(id_strategy(), 1..12)) {
        let result = run_ids(&ids);
        assert_unique(&result)?;
    }
}

/// The reported case: an input event whose id equals an earlier chained id.
#[test]
fn an_input_id_equal_to_a_chained_id_is_rejected() {
    let result = run_ids(&["x".into(), "o1".into(), "o1/up#0".into()]);
    let third = &result.outcomes[2];
    match &third.status {
        RecordStatus::Rejected { kind, error } => {
            assert_eq!(*kind, RejectKind::Malformed);
            assert!(error.contains("reserved"), "{error}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let keys: HashSet<&str> = result.effects.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys.len(), result.effects.len());
    assert!(keys.contains("o1/up#0:notify:0"));
}
