//! Segment diffs drive triggers: a refresh's entered/left sets, turned into engine events with
//! `SegmentDiff::to_events`, fire `on: segment.entered` / `on: segment.left` triggers exactly
//! once per customer, and a replayed diff is rejected as a duplicate rather than firing again.

use fusebox::engine::config::compile_triggers;
use fusebox::engine::customers::{Column, CustomerTable, Schema};
use fusebox::engine::event::EventRecord;
use fusebox::engine::outcome::{EffectKind, RecordStatus, RejectKind};
use fusebox::engine::state::State;
use fusebox::engine::value::{parse_timestamp, AttrType, Value};
use fusebox::engine::{Engine, RunOptions};
#[path = "../segment/tests/common/mod.rs"]
mod common;
use common::order_event;

use fusebox::segment::{
    compile_segments, AttrUpdate, Changes, ComputeOptions, EventStore, SegmentData, SegmentEngine,
};

const SEGMENTS: &str = r#"
segments:
  - id: vip
    owner: crm@example.com
    filter:
      or:
        - { attribute: points, ge: 1000 }
        - performed: { event: order.completed, within: 30d, sum: { property: total, ge: 500 } }
"#;

const TRIGGERS: &str = r#"
triggers:
  - id: welcome-vip
    owner: crm@example.com
    on: segment.entered
    condition: "event.properties.segment == 'vip'"
    actions:
      - send_message: { channel: email, template: welcome-vip }
  - id: miss-you
    owner: crm@example.com
    on: segment.left
    condition: "event.properties.segment == 'vip'"
    actions:
      - send_message: { channel: sms, template: miss-you }
"#;

fn customers() -> CustomerTable {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    CustomerTable::new(
        schema,
        vec![1, 2, 3, 4],
        vec![Column::Int(vec![
            Some(1500),
            Some(10),
            Some(10),
            Some(1200),
        ])],
    )
    .unwrap()
}

/// `(template, customer id)` of every message the run sent, in order.
fn messages(result: &fusebox::engine::BatchResult) -> Vec<(String, u64)> {
    result
        .effects
        .iter()
        .filter_map(|e| match &e.kind {
            EffectKind::Message { template, .. } => Some((template.to_string(), e.customer_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn entered_and_left_diffs_fire_triggers_once() {
    let as_of = parse_timestamp("2026-03-31T00:00:00Z").unwrap();
    let table = customers();
    let history = [order_event("o1", 3, "2026-03-20T10:00:00Z", Some(300.0))];
    let store = EventStore::from_events(&table, &history);
    let group = compile_segments(SEGMENTS, "vip.yaml", Some(table.schema()), None).unwrap();
    let mut data = SegmentData::new(table, store);
    let segments = SegmentEngine::new(group, &data, as_of, Some(2)).unwrap();
    let before = segments.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    assert_eq!(segments.member_ids(&data, &before)[0].1, vec![1, 4]);

    // Customer 3 orders for 250 more (550 in 30 days: enters), customer 2 reaches 1000
    // points (enters), customer 4 drops to 100 points (leaves).
    let changes = Changes {
        updates: vec![
            AttrUpdate {
                customer: 2,
                attribute: "points".into(),
                value: Value::Int(1000),
            },
            AttrUpdate {
                customer: 4,
                attribute: "points".into(),
                value: Value::Int(100),
            },
        ],
        events: vec![order_event("o2", 3, "2026-03-30T09:00:00Z", Some(250.0))],
        as_of: None,
        new_customers: vec![],
    };
    let refresh = segments
        .refresh(&mut data, &before, &changes, None)
        .unwrap();
    let records: Vec<EventRecord> = refresh
        .diffs
        .iter()
        .flat_map(|d| d.to_events(&data, as_of))
        .collect();
    assert_eq!(records.len(), 3);

    // The trigger engine runs over its own customer state; the diff events are ordinary
    // records to it.
    let set = compile_triggers(TRIGGERS, "triggers.yaml", Some(customers().schema())).unwrap();
    let engine = Engine::new(set).unwrap();
    let mut state = State::new(customers(), engine.triggers());
    let result = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    assert_eq!(
        messages(&result),
        [
            ("welcome-vip".to_string(), 2),
            ("welcome-vip".to_string(), 3),
            ("miss-you".to_string(), 4),
        ]
    );

    // A replayed diff (same deterministic ids) in the same input is rejected, not re-sent.
    let mut replay = records.clone();
    replay.extend(records.iter().cloned().map(|mut r| {
        r.line += 3;
        r
    }));
    let mut state = State::new(customers(), engine.triggers());
    let result = engine
        .run_batch(&mut state, &replay, &RunOptions::default())
        .unwrap();
    assert_eq!(messages(&result).len(), 3);
    let duplicates = result
        .outcomes
        .iter()
        .filter(|o| {
            matches!(
                &o.status,
                RecordStatus::Rejected {
                    kind: RejectKind::DuplicateEventId,
                    ..
                }
            )
        })
        .count();
    assert_eq!(duplicates, 3);
}
