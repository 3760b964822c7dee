//! Fuzz targets for the triggers and quotas YAML front ends (issue #10 §3: the CLI must never
//! exit 101, whatever the file).
//!
//! Structure-aware, on the stable toolchain: files are generated from a grammar of the real
//! schema, then mutated (keys deleted, duplicated, misspelt; values retyped, huge numbers,
//! long and unicode strings, deep nesting; CEL expressions from a CEL grammar, some very
//! deep), rendered in mixed block and flow styles, their text mutated; plus pure noise (see
//! `yaml_gen`). For every file:
//!
//! - compiling never panics (nor overflows the stack);
//! - an error is *located*: every diagnostic has a message and a line, column and span inside
//!   the text that agree, or is one of the documented file-level diagnostics;
//! - compiling twice gives the same result (success or the same diagnostics).
//!
//! `compile_triggers` runs with and without a customer schema; `QuotaConfig::from_yaml_str`
//! runs on an 8 MiB stack, the size of the CLI's main thread, which is where `fusebox check`
//! calls it.
//!
//! The default budget is a few hundred cases (seconds in a debug build). A long campaign:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p fusebox-engine --test fuzz_config
//! ```

mod yaml_gen;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::Schema;
use fusebox_engine::value::AttrType;
use fusebox_quotas::QuotaConfig;
use proptest::prelude::*;
use yaml_gen::{assert_located, cel_expr, config_text, fuzz, map, weird_scalar, Y};

/// Unlocated diagnostics the triggers front end documents.
const TRIGGERS_FILE_LEVEL: &[&str] = &["the triggers file is empty", "stopped after"];

fn schema() -> Schema {
    Schema::new([
        ("city".to_string(), AttrType::String),
        ("points".to_string(), AttrType::Int),
        ("orders_count".to_string(), AttrType::Int),
        ("tier".to_string(), AttrType::String),
        ("last_coupon".to_string(), AttrType::String),
        ("score".to_string(), AttrType::Float),
    ])
    .unwrap()
}

fn flow() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.3)
}

/// A name from a small set, so that references often resolve (and sometimes do not). The
/// documents lean valid; the mutations make them wrong.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => prop_oneof![
            Just("welcome"), Just("spring"), Just("orders"), Just("total"), Just("t1"),
            Just("t2"), Just("a"), Just("points"), Just("tier"), Just("city"), Just("score"),
            Just("last_coupon"), Just("pionts"),
        ]
        .prop_map(String::from),
        1 => "[a-z][a-z0-9_.-]{0,8}",
    ]
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => prop_oneof![
            Just("order.completed"), Just("page.viewed"), Just("points.milestone"),
            Just("ping"), Just("pong"),
        ]
        .prop_map(String::from),
        1 => "[a-z]{1,6}\\.[a-z]{1,6}",
    ]
}

fn number() -> impl Strategy<Value = Y> {
    prop_oneof![
        9 => (1i64..2000).prop_map(|i| Y::s(i.to_string())),
        1 => weird_scalar().prop_map(Y::Scalar),
    ]
}

/// A CEL expression of the kind `kind` (`bool`, `int` or anything), well typed for the
/// schema most of the time, from the CEL grammar otherwise.
fn expr(kind: &'static str) -> impl Strategy<Value = Y> {
    let typed: Vec<&'static str> = match kind {
        "bool" => vec![
            "customer.points > 3",
            "event.properties.total > 50",
            "customer.tier == 'gold' || customer.city != 'Paris'",
            "has(event.properties.code) && size(customer.city) < 10",
            "counters.orders > 100",
        ],
        "int" => vec![
            "1",
            "customer.points + 1",
            "int(event.properties.total / 10)",
            "counters.orders % 7",
        ],
        _ => vec![
            "customer.points",
            "'thanks'",
            "event.properties.total",
            "string(customer.points) + '!'",
        ],
    };
    prop_oneof![
        8 => prop::sample::select(typed).prop_map(Y::s),
        1 => cel_expr().prop_map(Y::Scalar),
    ]
}

fn named_exprs() -> impl Strategy<Value = Y> {
    (prop::collection::vec((name(), expr("any")), 0..3), flow()).prop_map(|(v, f)| Y::Map(v, f))
}

fn pool_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => Just("welcome".to_string()), 1 => Just("spring".to_string()), 1 => name()]
}

fn counter_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => Just("orders".to_string()), 1 => Just("total".to_string()), 1 => name()]
}

fn pool() -> impl Strategy<Value = Y> {
    (
        prop_oneof![Just("spring".to_string()), name()],
        prop_oneof![
            prop::collection::vec(name().prop_map(Y::Scalar), 1..4)
                .prop_map(|c| (Some(Y::Seq(c, true)), None)),
            (
                "[A-Z]{0,3}-?",
                number(),
                prop::option::of(number()),
                prop::option::of(number()),
                flow()
            )
                .prop_map(|(prefix, count, start, width, f)| {
                    let g = map(
                        vec![
                            ("prefix", Some(Y::s(prefix))),
                            ("count", Some(count)),
                            ("start", start),
                            ("width", width),
                        ],
                        f,
                    );
                    (None, Some(g))
                }),
        ],
        flow(),
    )
        .prop_map(|(id, (codes, generate), f)| {
            map(
                vec![
                    ("id", Some(Y::s(id))),
                    ("codes", codes),
                    ("generate", generate),
                ],
                f,
            )
        })
}

fn counter() -> impl Strategy<Value = Y> {
    (
        prop_oneof![Just("total".to_string()), name()],
        prop::option::of(prop_oneof![Just("int"), Just("float"), Just("text")]),
        prop::option::of(number()),
        flow(),
    )
        .prop_map(|(id, kind, initial, f)| {
            map(
                vec![
                    ("id", Some(Y::s(id))),
                    ("kind", kind.map(Y::s)),
                    ("initial", initial),
                ],
                f,
            )
        })
}

fn action() -> impl Strategy<Value = Y> {
    let fields = prop_oneof![
        (name(), expr("any")).prop_map(|(a, v)| (
            "set",
            vec![("attribute", Some(Y::s(a))), ("value", Some(v))]
        )),
        (
            prop_oneof![
                name().prop_map(|a| ("attribute", a)),
                counter_name().prop_map(|c| ("counter", c)),
            ],
            prop::option::of(expr("int"))
        )
            .prop_map(|((target, t), by)| ("increment", vec![(target, Some(Y::s(t))), ("by", by)])),
        (expr("int"), prop::option::of(name())).prop_map(|(amount, a)| (
            "award_points",
            vec![("amount", Some(amount)), ("attribute", a.map(Y::s))]
        )),
        (pool_name(), prop::option::of(name())).prop_map(|(p, s)| (
            "issue_coupon",
            vec![("pool", Some(Y::s(p))), ("store_in", s.map(Y::s))]
        )),
        (
            prop_oneof![
                Just("sms"),
                Just("email"),
                Just("push"),
                Just("webhook"),
                Just("fax")
            ],
            name(),
            prop::option::of(named_exprs())
        )
            .prop_map(|(c, t, args)| (
                "send_message",
                vec![
                    ("channel", Some(Y::s(c))),
                    ("template", Some(Y::s(t))),
                    ("args", args)
                ]
            )),
        (name(), prop::option::of(named_exprs())).prop_map(|(feed, args)| (
            "start_feed",
            vec![("feed", Some(Y::s(feed))), ("args", args)]
        )),
        (event_type(), prop::option::of(named_exprs())).prop_map(|(t, p)| (
            "emit_event",
            vec![("type", Some(Y::s(t))), ("properties", p)]
        )),
    ];
    (fields, flow(), flow()).prop_map(|((kind, fields), f_inner, f_outer)| {
        map(vec![(kind, Some(map(fields, f_inner)))], f_outer)
    })
}

fn trigger() -> impl Strategy<Value = Y> {
    (
        (name(), name(), event_type()),
        (
            prop::option::of(number()),
            prop::option::of(prop_oneof![Just("true"), Just("false")]),
            prop::option::of(expr("bool")),
        ),
        prop::option::of(
            (
                prop::option::of(number()),
                prop::option::of(number()),
                prop::option::of(number()),
                flow(),
            )
                .prop_map(|(e, p, m, f)| {
                    map(
                        vec![
                            ("max_effects", e),
                            ("max_points", p),
                            ("max_emitted_events", m),
                        ],
                        f,
                    )
                }),
        ),
        (prop::collection::vec(action(), 1..4), flow(), flow()),
    )
        .prop_map(
            |((id, owner, on), (priority, enabled, condition), limits, (actions, fa, f))| {
                map(
                    vec![
                        ("id", Some(Y::s(id))),
                        ("owner", Some(Y::s(owner))),
                        ("on", Some(Y::s(on))),
                        ("priority", priority),
                        ("enabled", enabled.map(Y::s)),
                        ("condition", condition),
                        ("limits", limits),
                        ("actions", Some(Y::Seq(actions, fa))),
                    ],
                    f,
                )
            },
        )
}

const EVENT_TYPES: [&str; 5] = [
    "order.completed",
    "page.viewed",
    "points.milestone",
    "ping",
    "pong",
];

/// A triggers file from the schema of `engine::config::raw`: coherent (declared pools and
/// counters, declared event types) more often than not, so that valid files are common.
fn triggers_doc() -> impl Strategy<Value = Y> + Clone {
    let declared_types = prop_oneof![
        3 => Just(None),
        2 => Just(Some(EVENT_TYPES.iter().map(|t| Y::s(*t)).collect::<Vec<_>>())),
        1 => prop::option::of(prop::collection::vec(event_type().prop_map(Y::Scalar), 0..4)),
    ];
    let welcome = map(
        vec![
            ("id", Some(Y::s("welcome"))),
            ("codes", Some(Y::Seq(vec![Y::s("A"), Y::s("B")], true))),
        ],
        false,
    );
    let orders = map(
        vec![("id", Some(Y::s("orders"))), ("kind", Some(Y::s("int")))],
        true,
    );
    (
        (
            prop::option::of(prop_oneof![9 => Just("1"), 1 => Just("2")]),
            prop::option::of(prop_oneof![
                9 => (1i64..=1000).prop_map(|i| Y::s(i.to_string())),
                1 => number(),
            ]),
            declared_types,
        ),
        (
            prop::collection::vec(pool(), 0..2),
            prop::collection::vec(counter(), 0..2),
            prop::collection::vec(trigger(), 1..4),
        ),
        flow(),
    )
        .prop_map(
            move |((version, depth, types), (mut pools, mut counters, triggers), f)| {
                pools.insert(0, welcome.clone());
                counters.insert(0, orders.clone());
                map(
                    vec![
                        ("version", version.map(Y::s)),
                        (
                            "settings",
                            depth.map(|d| map(vec![("max_chain_depth", Some(d))], true)),
                        ),
                        ("event_types", types.map(|t| Y::Seq(t, f))),
                        ("pools", Some(Y::Seq(pools, false))),
                        ("counters", Some(Y::Seq(counters, false))),
                        ("triggers", Some(Y::Seq(triggers, false))),
                    ],
                    false,
                )
            },
        )
        .boxed()
}

fn check_triggers(text: &str, schema: Option<&Schema>) {
    let first = compile_triggers(text, "t.yaml", schema);
    let again = compile_triggers(text, "t.yaml", schema);
    match (&first, &again) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "not deterministic");
            assert_eq!(a.is_runnable(), schema.is_some());
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.diagnostics, b.diagnostics, "not deterministic");
            assert_located(text, a, TRIGGERS_FILE_LEVEL);
        }
        _ => panic!("not deterministic: {first:?} then {again:?}"),
    }
}

fn quotas_doc() -> impl Strategy<Value = Y> + Clone {
    let limits = || {
        (
            prop::option::of(number()),
            prop::option::of(number()),
            flow(),
        )
            .prop_map(|(r, b, f)| map(vec![("records", r), ("bytes", b)], f))
    };
    let zone = || {
        prop_oneof![
            Just("UTC"),
            Just("Europe/Berlin"),
            Just("europe/berlin"),
            Just("Mars/Olympus"),
            Just("America/New_York"),
        ]
        .prop_map(Y::s)
    };
    let process = (
        (name(), name(), prop::option::of(zone())),
        (
            prop::option::of(limits()),
            prop::option::of(prop_oneof![
                (0u32..=12).prop_map(|x| Y::s(format!("{}", x as f64 / 10.0))),
                weird_scalar().prop_map(Y::Scalar),
            ]),
            prop::option::of(prop_oneof![Just("true"), Just("false"), Just("maybe")]),
            prop::option::of(prop_oneof![
                Just("fail_closed"),
                Just("fail_open"),
                Just("retry")
            ]),
        ),
        flow(),
    )
        .prop_map(|((id, owner, tz), (limits, warn, shadow, backend), f)| {
            map(
                vec![
                    ("id", Some(Y::s(id))),
                    ("owner", Some(Y::s(owner))),
                    ("time_zone", tz),
                    ("limits", limits),
                    ("warn_at", warn),
                    ("shadow", shadow.map(Y::s)),
                    ("on_backend_unavailable", backend.map(Y::s)),
                ],
                f,
            )
        });
    (
        prop::option::of(prop_oneof![Just("deny"), Just("default"), Just("allow")]),
        prop::option::of(limits()),
        prop::option::of(name()),
        prop::option::of(zone()),
        prop::option::of(prop::collection::vec(process, 0..4)),
    )
        .prop_map(|(unknown, limits, owner, tz, processes)| {
            map(
                vec![
                    ("unknown_process", unknown.map(Y::s)),
                    ("default_limits", limits),
                    ("default_owner", owner.map(Y::s)),
                    ("default_time_zone", tz),
                    ("processes", processes.map(|p| Y::Seq(p, false))),
                ],
                false,
            )
        })
        .boxed()
}

/// Runs `f` on a thread with the stack of the CLI's main thread.
fn on_main_sized_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, f)
            .expect("spawn")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn check_quotas(text: &str) {
    let (first, again) = on_main_sized_stack(|| {
        (
            QuotaConfig::from_yaml_str(text, "q.yaml"),
            QuotaConfig::from_yaml_str(text, "q.yaml"),
        )
    });
    assert_eq!(first, again, "not deterministic");
    if let Err(e) = first {
        assert!(!e.diagnostics.is_empty(), "an Err without a diagnostic");
        for d in &e.diagnostics {
            assert!(!d.message.trim().is_empty(), "{d:?}");
            if let Some(line) = d.line {
                assert!(line >= 1 && d.column.is_some_and(|c| c >= 1), "{d:?}");
            }
            if let Some(offset) = d.byte_offset {
                let end = offset + d.byte_len.unwrap_or(0);
                assert!(end as usize <= text.len(), "span outside the text: {d:?}");
            }
        }
    }
}

#[test]
fn triggers_front_end_never_panics_and_locates_every_error() {
    let schema = schema();
    fuzz(
        || (config_text(triggers_doc()), any::<bool>()),
        160,
        |(text, with_schema)| check_triggers(&text, with_schema.then_some(&schema)),
    );
}

#[test]
fn quotas_front_end_never_panics_and_locates_every_error() {
    fuzz(
        || config_text(quotas_doc()),
        160,
        |text| check_quotas(&text),
    );
}

/// The shapes the generators reach only by luck, every time.
#[test]
fn known_hostile_triggers_files() {
    let deep_expr = format!("{}1{}", "(".repeat(300), ")".repeat(300));
    let files = [
        String::new(),
        "\u{feff}".into(),
        "triggers:".into(),
        "triggers: ~".into(),
        "- a\n- b\n".into(),
        "42".into(),
        "triggers: []\ntriggers: []\n".into(),
        format!("triggers:\n  - id: t\n    owner: o\n    on: x\n    condition: \"{deep_expr}\"\n    actions:\n      - increment: {{ attribute: points }}\n"),
        format!("triggers:\n  - id: {}\n", "x".repeat(70_000)),
        format!("{}1{}", "[".repeat(70), "]".repeat(70)),
        "triggers:\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - set: { attribute: points, value: \"1\" }\n    actions: []\n".into(),
        "x: &a { id: t }\ntriggers:\n  - *a\n  - <<: *a\n    owner: o\n".into(),
        "triggers:\n- id: t\n  owner: \"\\uD800\"\n".into(),
        "triggers:\r  - id: t\r    owner: o\r".into(),
    ];
    let schema = schema();
    for text in &files {
        check_triggers(text, None);
        check_triggers(text, Some(&schema));
        check_quotas(text);
    }
}
