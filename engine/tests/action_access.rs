//! Every action's one description of what it touches (`Action::access`): what the locking
//! executor's footprints and `max_writes` are built from.

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::Schema;
use fusebox_engine::trigger::{Action, StateRef};
use fusebox_engine::value::AttrType;

/// Reads, writes, emitted event type, effect.
type Described = (Vec<StateRef>, Vec<StateRef>, Option<String>, bool);

#[test]
fn each_action_describes_its_reads_writes_emits_and_effects() {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("code".to_string(), AttrType::String),
    ])
    .unwrap();
    let yaml = r#"
event_types: [a, b]
counters: [ { id: hits } ]
pools: [ { id: p, generate: { prefix: "P-", count: 5 } } ]
triggers:
  - id: t
    owner: o@x
    on: a
    actions:
      - set: { attribute: code, value: "'x'" }
      - increment: { attribute: points }
      - increment: { counter: hits }
      - award_points: { amount: "1" }
      - issue_coupon: { pool: p, store_in: code }
      - send_message: { channel: sms, template: m }
      - start_feed: { feed: f }
      - emit_event: { type: b }
"#;
    let set = compile_triggers(yaml, "t.yaml", Some(&schema)).unwrap_or_else(|e| panic!("{e}"));
    let (points, code) = (
        schema.attr("points").unwrap().0,
        schema.attr("code").unwrap().0,
    );
    let actions: &[Action] = &set.triggers[0].actions;
    let described: Vec<Described> = actions
        .iter()
        .map(|a| {
            let x = a.access();
            (
                x.reads.to_vec(),
                x.writes.to_vec(),
                x.emits.map(|t| t.to_string()),
                x.effect,
            )
        })
        .collect();
    let (c, p) = (0, 0);
    assert_eq!(
        described,
        vec![
            (vec![], vec![StateRef::Attr(code)], None, false),
            (vec![], vec![StateRef::Attr(points)], None, false),
            (vec![], vec![StateRef::Counter(c)], None, false),
            (vec![], vec![StateRef::Attr(points)], None, false),
            (
                vec![StateRef::PoolCursor(p)],
                vec![StateRef::PoolCursor(p), StateRef::Attr(code)],
                None,
                true
            ),
            (vec![], vec![], None, true),
            (vec![], vec![], None, true),
            (vec![], vec![], Some("b".to_string()), false),
        ]
    );
    // `max_writes` counts exactly the described writes.
    let writes: Vec<u32> = actions.iter().map(Action::writes).collect();
    assert_eq!(writes, [1, 1, 1, 1, 2, 0, 0, 0]);
}
