//! Trigger conditions on segment membership: `segment('id')` reads the latest membership
//! published to `expr::segments::Memberships::global()`.

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::expr::segments::Memberships;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::state::State;
use fusebox_engine::value::AttrType;
use fusebox_engine::{Engine, RunOptions};

const TRIGGERS: &str = r#"
triggers:
  - id: vip-thanks
    owner: crm@example.com
    on: order.completed
    condition: "segment('membership-test-vip') && event.properties.total > 10"
    actions:
      - send_message: { channel: sms, template: vip-thanks }
"#;

fn run() -> (usize, String) {
    run_with(TRIGGERS)
}

fn run_with(triggers: &str) -> (usize, String) {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    let customers = CustomerTable::new(
        schema,
        vec![1, 2],
        vec![Column::Int(vec![Some(1), Some(2)])],
    )
    .unwrap();
    let set = compile_triggers(triggers, "t.yaml", Some(customers.schema())).unwrap();
    let engine = Engine::new(set).unwrap();
    let mut state = State::new(customers, engine.triggers());
    let events = read_jsonl(
        &br#"{"id":"a","customer_id":1,"type":"order.completed","timestamp":"2026-03-01T12:00:00Z","properties":{"total":50}}
{"id":"b","customer_id":2,"type":"order.completed","timestamp":"2026-03-01T12:01:00Z","properties":{"total":50}}"#[..],
    )
    .unwrap();
    let result = engine
        .run_batch(&mut state, &events, &RunOptions::default())
        .unwrap();
    let outcomes = format!("{:?}", result.outcomes);
    (result.effects.len(), outcomes)
}

#[test]
fn conditions_read_the_latest_published_membership() {
    // Not published yet: an evaluation error recorded in the outcome, not a silent false.
    let (effects, outcomes) = run();
    assert_eq!(effects, 0);
    assert!(
        outcomes.contains("no membership published yet"),
        "{outcomes}"
    );

    Memberships::global().publish("membership-test-vip", vec![2]);
    let (effects, _) = run();
    assert_eq!(effects, 1);

    // The spelled-out form reads the same membership; so does its negation.
    let spelled = TRIGGERS.replace(
        "segment('membership-test-vip')",
        "customer in segment('membership-test-vip')",
    );
    assert_eq!(run_with(&spelled).0, 1);
    let negated = TRIGGERS.replace(
        "segment('membership-test-vip')",
        "!(customer in segment('membership-test-vip'))",
    );
    assert_eq!(run_with(&negated).0, 1);

    Memberships::global().publish("membership-test-vip", vec![1, 2]);
    assert_eq!(run().0, 2);
    assert_eq!(run_with(&spelled).0, 2);
    assert_eq!(run_with(&negated).0, 0);
    assert_eq!(
        Memberships::global().contains("membership-test-vip", 3),
        Some(false)
    );
}

#[test]
fn segment_takes_a_literal_id() {
    let bad = TRIGGERS.replace("segment('membership-test-vip')", "segment(event.type)");
    let err = compile_triggers(&bad, "t.yaml", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("segment() takes the segment id as a string literal"),
        "{err}"
    );
}
