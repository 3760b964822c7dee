use super::*;
use crate::customers::Schema;
use crate::value::AttrType;

fn schema() -> Schema {
    Schema::new([
        ("city".to_string(), AttrType::String),
        ("points".to_string(), AttrType::Int),
        ("orders_count".to_string(), AttrType::Int),
        ("tier".to_string(), AttrType::String),
        ("last_coupon".to_string(), AttrType::String),
    ])
    .unwrap()
}

fn compile(text: &str) -> Result<TriggerSet, ConfigError> {
    compile_triggers(text, "triggers.yaml", Some(&schema()))
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match compile(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.errors().cloned().collect(),
    }
}

const GOOD: &str = r#"
event_types: [order.completed, points.milestone, page.viewed]
settings: { max_chain_depth: 4 }
pools:
  - id: welcome
    codes: [A, B]
  - id: spring
    generate: { prefix: "S-", count: 100 }
counters:
  - id: orders_total
triggers:
  - id: z-late
    owner: a@x
    on: order.completed
    priority: 200
    actions:
      - increment: { counter: orders_total }
  - id: points
    owner: a@x
    on: order.completed
    condition: "event.properties.total > 50"
    limits: { max_points: 1000 }
    actions:
      - award_points: { amount: "int(event.properties.total / 10)" }
      - increment: { attribute: orders_count }
      - issue_coupon: { pool: welcome, store_in: last_coupon }
      - send_message: { channel: sms, template: thanks, args: { code: "coupon" } }
      - emit_event: { type: points.milestone, properties: { points: "customer.points" } }
  - id: a-first
    owner: b@x
    on: order.completed
    enabled: false
    actions:
      - set: { attribute: tier, value: "'gold'" }
"#;

#[test]
fn good_file_compiles_in_priority_then_id_order() {
    let set = compile(GOOD).unwrap();
    let order: Vec<&str> = set.triggers.iter().map(|t| t.id.as_ref()).collect();
    assert_eq!(
        order,
        ["a-first", "points", "z-late"],
        "priority first, then id"
    );
    let enabled: Vec<&str> = set
        .for_event_type("order.completed")
        .iter()
        .map(|&i| set.trigger(i).id.as_ref())
        .collect();
    assert_eq!(
        enabled,
        ["points", "z-late"],
        "disabled triggers do not run"
    );
    assert_eq!(set.settings.max_chain_depth, 4);
    assert!(set.is_known_event_type("page.viewed"));
    assert!(!set.is_known_event_type("page.clicked"));
    assert_eq!(set.pools[1].code(99).as_deref(), Some("S-100"));
    assert!(set.is_runnable());
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn every_error_is_reported_with_its_line() {
    let text = r#"
event_types: [order.completed]
pools:
  - id: welcome
    codes: [A, A]
triggers:
  - id: t1
    owner: a@x
    on: order.complete
    condition: "customer.pionts > 3"
    actions:
      - issue_coupon: { pool: welcom }
  - id: t1
    owner: a@x
    on: order.completed
    actions:
      - set: { attribute: points, value: "'many'" }
      - increment: { counter: nope }
"#;
    let errs = errors(text);
    let msgs: Vec<String> = errs
        .iter()
        .map(|d| format!("{}: {}", d.line, d.message))
        .collect();
    let has = |line: u64, needle: &str| {
        errs.iter()
            .any(|d| d.line == line && d.message.contains(needle))
    };
    assert!(has(5, "code `A` twice"), "{msgs:#?}");
    assert!(has(9, "unknown event type `order.complete`"), "{msgs:#?}");
    assert!(has(10, "unknown customer attribute `pionts`"), "{msgs:#?}");
    assert!(has(12, "unknown coupon pool `welcom`"), "{msgs:#?}");
    assert!(
        has(13, "duplicate trigger id `t1` (first defined at line 7)"),
        "{msgs:#?}"
    );
    assert!(
        has(17, "attribute `points` is int, but the value is a string"),
        "{msgs:#?}"
    );
    assert!(has(18, "unknown counter `nope`"), "{msgs:#?}");
    let typo = errs
        .iter()
        .find(|d| d.message.contains("order.complete`"))
        .unwrap();
    assert_eq!(
        typo.help.as_deref(),
        Some("did you mean `order.completed`?")
    );
}

#[test]
fn cel_errors_point_inside_the_expression() {
    let text = "triggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"customer.points > 'abc'\"\n    actions:\n      - increment: { attribute: points }\n";
    let err = compile(text).unwrap_err();
    let d = err.errors().next().unwrap();
    assert_eq!(d.line, 5);
    assert!(d.message.contains("cannot combine int and string"), "{d:?}");
    let (start, _) = d.span.unwrap();
    let expr_start = text.find("customer.points").unwrap();
    assert!(
        start >= expr_start && start < expr_start + 26,
        "span {start} not inside the expression at {expr_start}"
    );
}

#[test]
fn unknown_keys_and_syntax_errors_are_located() {
    let err = compile(
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    conditon: \"true\"\n    actions: []\n",
    )
    .unwrap_err();
    let d = &err.diagnostics[0];
    assert!(d.message.contains("conditon"), "{d:?}");
    assert!(d.line >= 2, "{d:?}");

    let err = compile("triggers: [\n").unwrap_err();
    assert!(err.diagnostics[0].line >= 1, "{:?}", err.diagnostics);
    let err = compile("   \n").unwrap_err();
    assert!(err.diagnostics[0].message.contains("empty"));
}

#[test]
fn unconditional_chain_cycles_are_errors_and_conditional_ones_warnings() {
    let cyc = |cond: &str| {
        format!(
            "triggers:\n  - id: a\n    owner: o\n    on: ping\n{cond}    actions:\n      - emit_event: {{ type: pong }}\n  - id: b\n    owner: o\n    on: pong\n    actions:\n      - emit_event: {{ type: ping }}\n"
        )
    };
    let errs = errors(&cyc(""));
    assert!(
        errs.iter()
            .any(|d| d.message.contains("cyclic event chain") && d.line > 0),
        "{errs:?}"
    );
    let set = compile(&cyc("    condition: \"customer.points < 10\"\n")).unwrap();
    assert!(
        set.warnings
            .iter()
            .any(|d| d.message.contains("cyclic event chain")),
        "{:?}",
        set.warnings
    );
}

#[test]
fn action_shapes_are_checked() {
    let base = |action: &str| {
        format!("triggers:\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - {action}\n")
    };
    assert!(errors(&base("increment: { attribute: city }"))[0]
        .message
        .contains("is string"));
    assert!(
        errors(&base("increment: { attribute: points, counter: c }"))[0]
            .message
            .contains("exactly one")
    );
    assert!(
        errors(&base("send_message: { channel: fax, template: t }"))[0]
            .message
            .contains("unknown channel")
    );
    assert!(errors(&base(
        "send_message: { channel: sms, template: t, args: { c: coupon } }"
    ))[0]
        .message
        .contains("issue_coupon"));
    assert!(errors(&base("award_points: { amount: \"1.5\" }"))[0]
        .message
        .contains("must be an int"));
    assert!(errors(&base("teleport: {}"))[0]
        .message
        .contains("teleport"));
    assert!(errors("triggers:\n  - id: \"a:b\"\n    owner: o\n    on: x\n    actions:\n      - increment: { attribute: points }\n")[0].message.contains("invalid trigger id"));
    assert!(errors("settings: { max_chain_depth: 0 }\ntriggers:\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - increment: { attribute: points }\n")[0].message.contains("max_chain_depth"));
}

#[test]
fn without_a_schema_attributes_are_not_checked_and_the_set_cannot_run() {
    let text = "triggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"customer.anything > 1\"\n    actions:\n      - set: { attribute: whatever, value: \"1\" }\n";
    let set = compile_triggers(text, "t.yaml", None).unwrap();
    assert!(!set.is_runnable());
}

#[test]
fn fresh_names_copy_equals_the_original_but_shares_no_name() {
    let set = compile(GOOD).unwrap();
    let copy = set.with_fresh_names();
    let names = |s: &TriggerSet| -> Vec<std::sync::Arc<str>> {
        let mut out = Vec::new();
        for t in &s.triggers {
            out.extend([t.id.clone(), t.owner.clone(), t.on.clone()]);
            for a in &t.actions {
                match a {
                    crate::trigger::Action::SendMessage { template, args, .. } => {
                        out.push(template.clone());
                        out.extend(args.iter().map(|(n, _)| n.clone()));
                    }
                    crate::trigger::Action::EmitEvent {
                        event_type,
                        properties,
                    } => {
                        out.push(event_type.clone());
                        out.extend(properties.iter().map(|(n, _)| n.clone()));
                    }
                    _ => {}
                }
            }
        }
        out.extend(s.pools.iter().map(|p| p.id.clone()));
        out
    };
    let (a, b) = (names(&set), names(&copy));
    assert_eq!(a, b, "same names, same order");
    assert!(a.len() > 10);
    for (x, y) in a.iter().zip(&b) {
        assert!(!std::sync::Arc::ptr_eq(x, y), "`{x}` is shared");
    }
    assert_eq!(
        copy.for_event_type("order.completed"),
        set.for_event_type("order.completed")
    );
}

/// Issue #10 §5: the first shape error used to stop checking. Three items with shape errors
/// (an unknown key, a wrong type, a missing field) and one at the top level are all reported,
/// located, in file order, followed by the semantic problems of the parts that did parse; a
/// reference to a broken pool adds no noise. (serde-saphyr places "missing field" on the
/// mapping's last key.)
#[test]
fn every_shape_error_is_reported_then_the_semantic_ones() {
    let text = r#"version: 1
colour: blue
pools:
  - id: welcome
    codez: [A, B]
triggers:
  - id: t1
    owner: a@x
    on: order.completed
    priority: high
    actions:
      - increment: { attribute: points }
  - id: t2
    owner: a@x
    on: order.completed
    actions:
      - issue_coupon: { pool: welcome }
      - set: { attribute: pionts, value: "1" }
  - id: t3
    on: order.completed
    actions:
      - increment: { attribute: points }
"#;
    let err = compile(text).unwrap_err();
    let got: Vec<(u64, u64, &str)> = err
        .diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(),
        [(2, 1), (5, 5), (10, 15), (21, 5), (18, 27)],
        "{got:#?}"
    );
    assert!(got[0].2.contains("unknown field `colour`"), "{got:#?}");
    assert!(got[1].2.contains("unknown field `codez`"), "{got:#?}");
    assert!(got[2].2.contains("i32"), "{got:#?}");
    assert!(got[3].2.contains("missing field `owner`"), "{got:#?}");
    assert_eq!(got[4].2, "unknown customer attribute `pionts`");
    for d in &err.diagnostics {
        let (start, end) = d.span.expect("every shape problem has a span");
        assert!(start < end && end <= text.len(), "{d:?}");
        assert!(
            !d.message.contains("line "),
            "no location inside the message: {d:?}"
        );
    }
    assert!(
        !got.iter()
            .any(|(_, _, m)| m.contains("welcome") || m.contains("no triggers")),
        "no follow-on noise: {got:#?}"
    );
}

#[test]
fn a_list_whose_items_all_broke_is_not_reported_empty() {
    let err = compile(
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    actions: 5\n  - id: u\n    on: x\n    actions: []\n",
    )
    .unwrap_err();
    let lines: Vec<u64> = err.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [5, 8], "{:?}", err.diagnostics);
    let err = compile("version: x\ntriggers: 3\n").unwrap_err();
    assert_eq!(err.diagnostics.len(), 2, "{:?}", err.diagnostics);
    assert!(!err.diagnostics[1].message.contains("missing field"));
}

#[test]
fn references_to_broken_counters_add_no_noise() {
    let err = compile(
        "counters:\n  - id: c\n    kind: int\n    initial: lots\ntriggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"counters.c > 3\"\n    actions:\n      - increment: { counter: c }\n",
    )
    .unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{:?}", err.diagnostics);
    assert_eq!(err.diagnostics[0].line, 4);
}

/// serde-saphyr gives syntax errors a line and column but no byte offset: the span is rebuilt
/// from them, on the right line, inside the text (the CLI draws its snippet from it).
#[test]
fn syntax_errors_get_a_span_on_their_line() {
    for text in [
        "settings: {max_chain_depth: 0}---\n\ntriggers: []\n",
        "é: [\n",
        "triggers:\r\n  - id: t\r\n   owner: [\r\n",
        "\u{feff}",
    ] {
        let err = compile(text).unwrap_err();
        for d in &err.diagnostics {
            let (s, e) = d.span.unwrap_or_else(|| panic!("{text:?}: no span: {d:?}"));
            assert!(s <= e && e <= text.len(), "{text:?}: {d:?}");
            let line = text[..s].matches('\n').count() as u64 + 1;
            assert_eq!(line, d.line, "{text:?}: {d:?}");
            assert!(d.column >= 1, "{d:?}");
        }
    }
}

#[test]
fn pools_that_can_issue_the_same_code_are_refused() {
    let text = r#"
pools:
  - id: spring
    generate: { prefix: "SAVE-", count: 1000, width: 4 }
  - id: vip
    codes: [GOLD-1, SAVE-0042]
  - id: autumn
    generate: { prefix: "SAVE-0", count: 10, width: 3 }
  - id: other
    generate: { prefix: "OTHER-", count: 1000 }
triggers:
  - id: t
    owner: o
    on: order.completed
    actions:
      - issue_coupon: { pool: other }
"#;
    let errs = errors(text);
    let messages: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("pools `spring` and `vip` can both issue the code `SAVE-0042`")),
        "{messages:?}"
    );
    // "SAVE-0" + "001" is how `spring` writes 1 as well.
    assert!(
        messages
            .iter()
            .any(|m| m.contains("pools `spring` and `autumn` can both issue the code `SAVE-0001`")),
        "{messages:?}"
    );
    assert_eq!(errs[0].line, 5, "located at the later pool's id");
}
