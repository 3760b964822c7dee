//! The shipped examples (`examples/`) stay valid and do what the README says they do.

use std::path::Path;

use fusebox::engine::config::compile_triggers;
use fusebox::engine::io::{customers::load_customers, events::read_events};
use fusebox::engine::outcome::{EffectKind, RecordStatus, RejectKind};
use fusebox::engine::state::State;
use fusebox::engine::value::Value;
use fusebox::engine::{Engine, RunOptions};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn example_triggers_run_as_documented() {
    let customers = load_customers(&example("customers.csv")).unwrap();
    let text = std::fs::read_to_string(example("triggers.yaml")).unwrap();
    let set = compile_triggers(&text, "examples/triggers.yaml", Some(customers.schema())).unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    let engine = Engine::new(set).unwrap();
    let mut state = State::new(customers, engine.triggers());
    let records = read_events(&example("events.jsonl")).unwrap();
    let result = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();

    // Anna (990 points) orders for 300: +30 points → 1020, a VIP coupon by SMS, tier gold,
    // and the chained tier.upgraded event starts the gold feed.
    let schema = state.customers.schema().clone();
    let anna = state.customers.row_of(1).unwrap();
    let attr = |name: &str| schema.attr(name).unwrap().0;
    assert_eq!(state.customers.get(anna, attr("points")), Value::Int(1020));
    assert_eq!(state.customers.get(anna, attr("tier")), Value::str("gold"));
    assert_eq!(
        state.customers.get(anna, attr("last_coupon")),
        Value::str("VIP-7Q2")
    );
    let kinds: Vec<&str> = result
        .effects
        .iter()
        .map(|e| match &e.kind {
            EffectKind::Message { .. } => "message",
            EffectKind::Feed { .. } => "feed",
            EffectKind::Coupon { .. } => "coupon",
        })
        .collect();
    assert_eq!(kinds, ["coupon", "message", "feed", "coupon", "message"]);
    assert_eq!(result.effects[2].event_id.as_ref(), "e1/tier-upgrade#1");

    // The event for unknown customer 42 is rejected, with its line.
    assert_eq!(result.outcomes.len(), 4);
    assert!(matches!(
        &result.outcomes[3].status,
        RecordStatus::Rejected {
            kind: RejectKind::UnknownCustomer,
            ..
        }
    ));
    assert_eq!(result.outcomes[3].line, 4);
}
