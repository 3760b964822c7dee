//! Fuzz target for the segments YAML front end (issue #10 §3: the CLI must never exit 101,
//! whatever the file).
//!
//! Structure-aware, on the stable toolchain, with the generators the triggers and quotas
//! targets use (`engine/tests/yaml_gen`): segment files from a grammar of the real schema
//! (filter trees of `and`/`or`/`not`, attribute predicates with every operator, event
//! predicates with windows, counts, sums and `where` lists, `in_segment` references that may
//! be unknown or cyclic, `cel:` filters from the supported CEL subset and from a general CEL
//! grammar, some very deep), then mutated, rendered in mixed block and flow styles, their
//! text mutated; plus pure noise. For every file, `compile_segments` with and without a
//! customer schema and the data's event types:
//!
//! - never panics (nor overflows the stack);
//! - on error, locates every diagnostic (a line, column and span inside the text that
//!   agree) or gives one of the documented file-level diagnostics;
//! - gives the same result when run twice.
//!
//! The default budget is a few hundred cases (seconds in a debug build). A long campaign:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p fusebox-segment --test fuzz_config
//! ```

#[path = "../../engine/tests/yaml_gen/mod.rs"]
mod yaml_gen;

use std::sync::Arc;

use fusebox_engine::customers::Schema;
use fusebox_engine::value::AttrType;
use fusebox_segment::compile_segments;
use proptest::prelude::*;
use yaml_gen::{assert_located, cel_expr, config_text, fuzz, map, weird_scalar, Y};

/// Unlocated diagnostics the segments front end documents.
const SEGMENTS_FILE_LEVEL: &[&str] = &["the segments file is empty", "stopped after"];

fn schema() -> Schema {
    Schema::new([
        ("points".to_string(), AttrType::Int),
        ("score".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("tags".to_string(), AttrType::StringList),
        ("last_order_at".to_string(), AttrType::Timestamp),
        ("opt_in".to_string(), AttrType::Bool),
    ])
    .unwrap()
}

fn event_types() -> Vec<Arc<str>> {
    vec![Arc::from("order.completed"), Arc::from("page.viewed")]
}

fn flow() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.4)
}

fn segment_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop_oneof![Just("a"), Just("b"), Just("c"), Just("vip"), Just("lapsed")]
            .prop_map(String::from),
        1 => "[a-z][a-z0-9_-]{0,6}",
    ]
}

fn column() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop_oneof![
            Just("points"), Just("score"), Just("tier"), Just("tags"), Just("last_order_at"),
            Just("opt_in"),
        ]
        .prop_map(String::from),
        1 => Just("pionts".to_string()),
        1 => "[a-z_]{1,8}",
    ]
}

fn literal() -> impl Strategy<Value = Y> {
    prop_oneof![
        6 => prop_oneof![
            Just("100"), Just("-3"), Just("2.5"), Just("gold"), Just("true"), Just("false"),
            Just("now"), Just("now-30d"), Just("now+1h"), Just("2026-01-01T00:00:00Z"),
            Just("vip"), Just("''"),
        ]
        .prop_map(Y::s),
        1 => weird_scalar().prop_map(Y::Scalar),
    ]
}

fn operator() -> impl Strategy<Value = (&'static str, Y)> {
    prop_oneof![
        6 => (
            prop_oneof![Just("eq"), Just("ne"), Just("lt"), Just("le"), Just("gt"), Just("ge")],
            literal()
        ),
        1 => prop::collection::vec(literal(), 0..4).prop_map(|v| ("between", Y::Seq(v, true))),
        1 => prop::collection::vec(literal(), 0..4).prop_map(|v| ("in", Y::Seq(v, true))),
        1 => prop_oneof![Just("contains"), Just("starts_with")].prop_map(|o| (o, Y::s("vi"))),
        1 => (prop_oneof![Just("exists"), Just("missing")], any::<bool>())
            .prop_map(|(o, b)| (o, Y::s(b.to_string()))),
    ]
}

fn number_test() -> impl Strategy<Value = Y> {
    (
        prop_oneof![Just("ge"), Just("le"), Just("eq"), Just("between")],
        prop_oneof![
            8 => (0i64..10).prop_map(|i| Y::s(i.to_string())),
            1 => weird_scalar().prop_map(Y::Scalar),
        ],
    )
        .prop_map(|(op, v)| {
            let v = if op == "between" {
                Y::Seq(vec![v.clone(), v], true)
            } else {
                v
            };
            map(vec![(op, Some(v))], true)
        })
}

fn event_predicate() -> impl Strategy<Value = Y> {
    (
        prop_oneof![
            4 => prop_oneof![Just("order.completed"), Just("page.viewed")].prop_map(String::from),
            1 => "[a-z]{1,6}\\.[a-z]{1,8}",
        ],
        prop_oneof![
            Just((None, None, None)),
            prop_oneof![
                4 => prop_oneof![Just("30d"), Just("12h"), Just("1d12h")],
                1 => prop_oneof![Just("0d"), Just("30 days")],
            ]
            .prop_map(|w| (Some(w), None, None)),
            (
                prop::option::of(prop_oneof![
                    4 => Just("2026-01-01T00:00:00Z"),
                    1 => Just("yesterday")
                ]),
                prop::option::of(Just("2026-02-01T00:00:00Z")),
            )
                .prop_map(|(f, t)| (None, f, t)),
        ],
        prop::option::of(number_test()),
        prop::option::of(
            (prop_oneof![Just("total"), Just("amount")], number_test()).prop_map(
                |(p, t)| match t {
                    Y::Map(mut e, f) => {
                        e.insert(0, ("property".to_string(), Y::s(p)));
                        Y::Map(e, f)
                    }
                    other => other,
                },
            ),
        ),
        prop::option::of(prop::collection::vec(
            (prop_oneof![Just("channel"), Just("total")], operator()).prop_map(|(p, (op, v))| {
                map(vec![("property", Some(Y::s(p))), (op, Some(v))], true)
            }),
            0..3,
        )),
        flow(),
    )
        .prop_map(|(event, (within, from, to), count, sum, filters, f)| {
            map(
                vec![
                    ("event", Some(Y::s(event))),
                    ("within", within.map(Y::s)),
                    ("from", from.map(Y::s)),
                    ("to", to.map(Y::s)),
                    ("count", count),
                    ("sum", sum),
                    ("where", filters.map(|w| Y::Seq(w, true))),
                ],
                f,
            )
        })
}

/// A `cel:` filter: from the supported subset mostly, from the general CEL grammar or very
/// deep otherwise.
fn segment_cel() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("customer.points > 100"),
        Just("100 < customer.points"),
        Just("customer.tier in ['gold', 'silver']"),
        Just("'vip' in customer.tags"),
        Just("customer.tags.contains('vip')"),
        Just("customer.tier.startsWith('g')"),
        Just("has(customer.tier)"),
        Just("customer.tier != null"),
        Just("customer.tier == null"),
        Just("customer.last_order_at < now - duration('30d')"),
        Just("customer.last_order_at >= timestamp('2026-01-01T00:00:00Z')"),
        Just("in_segment('a')"),
        Just("segment('vip')"),
        Just("performed('order.completed')"),
        Just("performed('order.completed', '30d')"),
        Just("count('order.completed', '30d') >= 3"),
        Just("count('page.viewed') < 2"),
        Just("sum('order.completed', 'total', '30d') >= 100"),
    ];
    let wrong = prop_oneof![
        Just("customer.points > 'abc'"),
        Just("customer.nope == 1"),
        Just("true"),
        Just("customer.points > 18446744073709551615u"),
        Just("now > customer.tier"),
        Just("count('e', 'forever') >= 1"),
        Just("customer.last_order_at < now - duration('1.5h')"),
    ];
    let atom = prop_oneof![9 => atom, 1 => wrong].prop_map(String::from);
    let tree = atom.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    });
    prop_oneof![
        6 => tree,
        2 => cel_expr(),
        1 => (1usize..300).prop_map(|n| format!("{}customer.points > 1{}", "(".repeat(n), ")".repeat(n))),
        1 => (1usize..300).prop_map(|n| format!("{}has(customer.tier)", "!".repeat(n))),
    ]
}

/// An attribute predicate that fits the column's type (for the schema of [`schema`]).
fn typed_attribute() -> impl Strategy<Value = (String, &'static str, Y)> {
    let seq = |v: &[&str]| Y::Seq(v.iter().map(|x| Y::s(*x)).collect(), true);
    let cases: Vec<(&str, &str, Y)> = vec![
        ("points", "gt", Y::s("100")),
        ("points", "le", Y::s("-3")),
        ("points", "between", seq(&["1", "5"])),
        ("points", "in", seq(&["1", "2"])),
        ("score", "ge", Y::s("2.5")),
        ("score", "missing", Y::s("true")),
        ("tier", "eq", Y::s("gold")),
        ("tier", "in", seq(&["gold", "silver"])),
        ("tier", "starts_with", Y::s("g")),
        ("tier", "exists", Y::s("false")),
        ("tags", "contains", Y::s("vip")),
        ("tags", "in", seq(&["vip"])),
        ("last_order_at", "lt", Y::s("now-30d")),
        ("last_order_at", "ge", Y::s("2026-01-01T00:00:00Z")),
        (
            "last_order_at",
            "between",
            seq(&["2026-01-01T00:00:00Z", "now"]),
        ),
        ("opt_in", "eq", Y::s("true")),
        ("opt_in", "ne", Y::s("false")),
    ];
    prop::sample::select(cases).prop_map(|(c, op, v)| (c.to_string(), op, v))
}

fn filter() -> impl Strategy<Value = Y> {
    let leaf = prop_oneof![
        6 => (
            prop_oneof![
                4 => typed_attribute(),
                1 => (column(), operator()).prop_map(|(c, (op, v))| (c, op, v)),
            ],
            flow()
        )
            .prop_map(|((c, op, v), f)| {
                map(vec![("attribute", Some(Y::s(c))), (op, Some(v))], f)
            }),
        3 => (
            prop_oneof![Just("performed"), Just("not_performed")],
            event_predicate(),
            flow()
        )
            .prop_map(|(k, e, f)| map(vec![(k, Some(e))], f)),
        2 => (
            prop_oneof![Just("first_performed"), Just("last_performed")],
            prop_oneof![Just("order.completed"), Just("page.viewed")],
            prop_oneof![Just("before"), Just("after")],
            prop_oneof![
                4 => prop_oneof![Just("now-90d"), Just("2026-01-01T00:00:00Z")],
                1 => Just("soon"),
            ],
            flow()
        )
            .prop_map(|(k, e, when, t, f)| {
                let inner = map(
                    vec![("event", Some(Y::s(e))), (when, Some(Y::s(t)))],
                    true,
                );
                map(vec![(k, Some(inner))], f)
            }),
        2 => (segment_id(), flow())
            .prop_map(|(id, f)| map(vec![("in_segment", Some(Y::s(id)))], f)),
        2 => (segment_cel(), flow())
            .prop_map(|(c, f)| map(vec![("cel", Some(Y::Scalar(c)))], f)),
    ];
    leaf.prop_recursive(5, 24, 3, |inner| {
        prop_oneof![
            (
                prop_oneof![Just("and"), Just("or")],
                prop::collection::vec(inner.clone(), 1..4),
                flow(),
                flow()
            )
                .prop_map(|(k, kids, fl, f)| map(vec![(k, Some(Y::Seq(kids, fl)))], f)),
            (inner, flow()).prop_map(|(kid, f)| map(vec![("not", Some(kid))], f)),
        ]
    })
}

fn segment() -> impl Strategy<Value = Y> {
    (
        segment_id(),
        prop_oneof![4 => Just("crm@shop.example"), 4 => Just("team"), 1 => Just("")],
        prop::option::of(Just("a segment")),
        filter(),
        flow(),
    )
        .prop_map(|(id, owner, description, filter, f)| {
            map(
                vec![
                    ("id", Some(Y::s(id))),
                    ("owner", Some(Y::s(owner))),
                    ("description", description.map(Y::s)),
                    ("filter", Some(filter)),
                ],
                f,
            )
        })
}

/// A segment file: segments `a`, `b`, `c`, `vip`, `lapsed` (a prefix of them), so that
/// references often resolve; the mutations duplicate and rename.
fn segments_doc() -> impl Strategy<Value = Y> + Clone {
    (
        prop::option::of(prop_oneof![9 => Just("1"), 1 => Just("x")]),
        prop::collection::vec(segment(), 1..6),
    )
        .prop_map(|(version, mut segments)| {
            for (s, id) in segments.iter_mut().zip(["a", "b", "c", "vip", "lapsed"]) {
                if let Y::Map(entries, _) = s {
                    entries[0].1 = Y::s(id);
                }
            }
            map(
                vec![
                    ("version", version.map(Y::s)),
                    ("segments", Some(Y::Seq(segments, false))),
                ],
                false,
            )
        })
        .boxed()
}

fn check_segments(text: &str, schema: Option<&Schema>, events: Option<&[Arc<str>]>) {
    let first = compile_segments(text, "s.yaml", schema, events);
    let again = compile_segments(text, "s.yaml", schema, events);
    match (&first, &again) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "not deterministic");
            assert!(!a.segments.is_empty());
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.diagnostics, b.diagnostics, "not deterministic");
            assert_located(text, a, SEGMENTS_FILE_LEVEL);
        }
        _ => panic!("not deterministic: {first:?} then {again:?}"),
    }
}

#[test]
fn segments_front_end_never_panics_and_locates_every_error() {
    let schema = schema();
    let types = event_types();
    fuzz(
        || (config_text(segments_doc()), any::<bool>(), any::<bool>()),
        200,
        |(text, with_schema, with_types)| {
            check_segments(
                &text,
                with_schema.then_some(&schema),
                with_types.then_some(types.as_slice()),
            )
        },
    );
}

/// The shapes the generators reach only by luck, every time.
#[test]
fn known_hostile_segments_files() {
    let nested = |depth: usize, open: &str, close: &str| {
        format!(
            "segments:\n  - id: a\n    owner: x\n    filter: {}{{ attribute: points, gt: 1 }}{}\n",
            open.repeat(depth),
            close.repeat(depth)
        )
    };
    let files = [
        String::new(),
        "segments:".into(),
        "segments: []".into(),
        "segments:\n  - id: a\n".into(),
        nested(20, "{ not: ", " }"),
        nested(62, "{ not: ", " }"),
        nested(300, "{ not: ", " }"),
        nested(30, "{ and: [ ", " ] }"),
        format!(
            "segments:\n  - id: a\n    owner: x\n    filter: {{ cel: \"{}customer.points > 1{}\" }}\n",
            "(".repeat(400),
            ")".repeat(400)
        ),
        format!(
            "segments:\n  - id: a\n    owner: x\n    filter: {{ cel: \"{}has(customer.tier)\" }}\n",
            "!".repeat(2000)
        ),
        format!(
            "segments:\n  - id: a\n    owner: x\n    filter: {{ attribute: {}, gt: 1 }}\n",
            "p".repeat(70_000)
        ),
        "segments:\n  - id: a\n    owner: x\n    filter: { attribute: last_order_at, gt: \"now-99999999999999999d\" }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: e, within: 99999999999999999999d }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter:\n      performed: { event: e, count: { between: [1e308, 1e309] } }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter: { cel: \"count('e', '30d') > 9.223372036854776e18\" }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter: { cel: \"customer.points > -9223372036854775808\" }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter: { cel: \"customer.last_order_at > timestamp('9999-12-31T23:59:59Z') \" }\n".into(),
        "segments:\n  - id: a\n    owner: x\n    filter: { in_segment: b }\n  - id: b\n    owner: x\n    filter: { in_segment: a }\n".into(),
    ];
    let schema = schema();
    let types = event_types();
    for text in &files {
        check_segments(text, None, None);
        check_segments(text, Some(&schema), Some(&types));
    }
    let too_deep = compile_segments(&files[8], "s.yaml", None, None).unwrap_err();
    assert!(
        too_deep.diagnostics[0].message.contains("nests too deep"),
        "{too_deep:?}"
    );
}
