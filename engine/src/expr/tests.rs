use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::*;
use crate::customers::Schema;
use crate::event::Event;
use crate::value::{parse_timestamp, AttrType, Map, Value};

struct TestScope {
    attrs: Vec<Value>,
    event: Event,
    reads: usize,
}

impl Scope for TestScope {
    fn attr(&mut self, attr: u16) -> Result<Value, EvalError> {
        self.reads += 1;
        Ok(self.attrs[attr as usize].clone())
    }
    fn counter(&mut self, _: CounterId) -> Result<Value, EvalError> {
        Ok(Value::Int(41))
    }
    fn event(&self) -> &Event {
        &self.event
    }
    fn coupon(&self) -> Option<Value> {
        Some(Value::str("C-1"))
    }
}

fn schema() -> Schema {
    Schema::new([
        ("city".to_string(), AttrType::String),
        ("points".to_string(), AttrType::Int),
        ("age".to_string(), AttrType::Int),
        ("last_order_at".to_string(), AttrType::Timestamp),
        ("tags".to_string(), AttrType::StringList),
    ])
    .unwrap()
}

fn counters() -> FxHashMap<String, (CounterId, Ty)> {
    let mut c = FxHashMap::default();
    c.insert("orders_total".to_string(), (0, Ty::Int));
    c
}

fn scope() -> TestScope {
    let props = Map::from_entries([
        (Arc::from("total"), Value::Float(99.5)),
        (Arc::from("items"), Value::Int(3)),
        (
            Arc::from("sku"),
            Value::List(vec![Value::str("a"), Value::str("b")].into()),
        ),
        (
            Arc::from("meta"),
            Value::Map(Arc::new(Map::from_entries([(
                Arc::from("src"),
                Value::str("app"),
            )]))),
        ),
    ]);
    TestScope {
        attrs: vec![
            Value::str("Berlin"),
            Value::Int(120),
            Value::Null,
            Value::Timestamp(parse_timestamp("2026-01-01T00:00:00Z").unwrap()),
            Value::List(vec![Value::str("vip")].into()),
        ],
        event: Event {
            id: Arc::from("e1"),
            customer_id: 7,
            event_type: Arc::from("order.completed"),
            timestamp: parse_timestamp("2026-03-01T10:30:00Z").unwrap(),
            process: None,
            properties: Arc::new(props),
        },
        reads: 0,
    }
}

fn compile(src: &str) -> Result<CompiledExpr, ExprError> {
    let schema = schema();
    let counters = counters();
    CompiledExpr::compile(
        src,
        &ExprEnv {
            schema: &schema,
            counters: &counters,
            coupon_available: true,
            lenient_customer: false,
        },
    )
}

fn eval(src: &str) -> Result<Value, EvalError> {
    compile(src)
        .unwrap_or_else(|e| panic!("{src}: {e:?}"))
        .eval(&mut scope())
}

#[test]
fn arithmetic_comparison_and_logic() {
    assert_eq!(eval("1 + 2 * 3"), Ok(Value::Int(7)));
    assert_eq!(eval("event.properties.total > 50"), Ok(Value::Bool(true)));
    assert_eq!(eval("event.properties.items * 2.5"), Ok(Value::Float(7.5)));
    assert_eq!(
        eval("customer.city == 'Berlin' && customer.points >= 100"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval("customer.city in ['Paris', 'Berlin']"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("'vip' in customer.tags"), Ok(Value::Bool(true)));
    assert_eq!(
        eval("customer.points > 100 ? 'gold' : 'silver'"),
        Ok(Value::str("gold"))
    );
    assert_eq!(eval("counters.orders_total + 1"), Ok(Value::Int(42)));
    assert_eq!(eval("coupon"), Ok(Value::str("C-1")));
    assert_eq!(
        eval("int(event.properties.total / 10.0)"),
        Ok(Value::Int(9))
    );
    assert_eq!(
        eval("event.properties['items'] == 3"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("event.properties.meta.src"), Ok(Value::str("app")));
}

#[test]
fn nulls_and_has() {
    assert_eq!(eval("has(customer.age)"), Ok(Value::Bool(false)));
    assert_eq!(eval("has(customer.city)"), Ok(Value::Bool(true)));
    assert_eq!(eval("customer.age == null"), Ok(Value::Bool(true)));
    assert!(matches!(eval("customer.age > 30"), Err(EvalError::Type(_))));
    assert_eq!(
        eval("has(customer.age) && customer.age > 30"),
        Ok(Value::Bool(false))
    );
    assert_eq!(eval("has(event.properties.total)"), Ok(Value::Bool(true)));
    assert_eq!(eval("has(event.properties.nope)"), Ok(Value::Bool(false)));
    assert_eq!(eval("has(event.process)"), Ok(Value::Bool(false)));
    assert!(matches!(
        eval("event.properties.nope > 1"),
        Err(EvalError::NoSuchKey(_))
    ));
}

#[test]
fn errors_are_absorbed_like_cel() {
    assert_eq!(
        eval("event.properties.nope > 1 || true"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval("false && event.properties.nope > 1"),
        Ok(Value::Bool(false))
    );
    assert!(eval("true && event.properties.nope > 1").is_err());
}

#[test]
fn checked_integer_arithmetic() {
    assert!(matches!(
        eval("9223372036854775807 + 1"),
        Err(EvalError::Arithmetic(_))
    ));
    assert!(matches!(
        eval("customer.points / 0"),
        Err(EvalError::Arithmetic(_))
    ));
    assert_eq!(eval("-7 / 2"), Ok(Value::Int(-3)));
}

#[test]
fn time_functions() {
    assert_eq!(
        eval("now - customer.last_order_at > duration('720h')"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("now.getHours()"), Ok(Value::Int(10)));
    assert_eq!(eval("now.getDayOfWeek()"), Ok(Value::Int(0)));
    assert_eq!(
        eval("timestamp('2026-01-01T00:00:00Z') < now"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval("duration('1h30m') == duration('90m')"),
        Ok(Value::Bool(true))
    );
}

#[test]
fn strings_and_macros() {
    assert_eq!(
        eval("customer.city.startsWith('Ber') && customer.city.lowerAscii() == 'berlin'"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval("customer.city.matches('^B.*n$')"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("size(event.properties.sku)"), Ok(Value::Int(2)));
    assert_eq!(
        eval("event.properties.sku.exists(s, s == 'b')"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        eval("event.properties.sku.all(s, s.size() == 1)"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("[1, 2, 3].filter(x, x > 1).size()"), Ok(Value::Int(2)));
    assert_eq!(
        eval("[1, 2].map(x, x * 10)"),
        Ok(Value::List(vec![Value::Int(10), Value::Int(20)].into()))
    );
    assert_eq!(eval("{'a': customer.points}.a"), Ok(Value::Int(120)));
}

#[test]
fn compile_errors_are_located_and_helpful() {
    let e = compile("customer.pionts > 3").unwrap_err();
    assert!(
        e.message.contains("unknown customer attribute `pionts`"),
        "{e:?}"
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `customer.points`?"));
    let (s, _) = e.span.unwrap();
    assert!(s <= 8, "{e:?}");

    let e = compile("customer.points > \"abc\"").unwrap_err();
    assert!(e.message.contains("cannot combine int and string"), "{e:?}");

    let e = compile("customer.points >").unwrap_err();
    assert!(e.message.starts_with("syntax error"), "{e:?}");
    assert!(e.span.is_some(), "{e:?}");

    assert!(compile("duration('3 fortnights')")
        .unwrap_err()
        .message
        .contains("not a duration"));
    assert!(compile("customer.city.matches('(')")
        .unwrap_err()
        .message
        .contains("regular expression"));
    assert!(compile("frobnicate(1)")
        .unwrap_err()
        .message
        .contains("unknown function"));
    assert!(compile("evnt.type")
        .unwrap_err()
        .help
        .unwrap()
        .contains("event"));
    assert!(compile("").is_err());
}

#[test]
fn coupon_needs_an_issue_action_first() {
    let schema = schema();
    let counters = counters();
    let env = ExprEnv {
        schema: &schema,
        counters: &counters,
        coupon_available: false,
        lenient_customer: false,
    };
    assert!(CompiledExpr::compile("coupon", &env)
        .unwrap_err()
        .message
        .contains("issue_coupon"));
}

#[test]
fn static_types_are_inferred() {
    assert_eq!(compile("customer.points + 1").unwrap().ty(), Ty::Int);
    assert_eq!(compile("customer.points + 1.0").unwrap().ty(), Ty::Float);
    assert_eq!(compile("event.properties.total").unwrap().ty(), Ty::Dyn);
    assert_eq!(compile("customer.city == 'x'").unwrap().ty(), Ty::Bool);
}

#[test]
fn reads_only_what_it_needs() {
    let expr = compile("false && customer.points > 1").unwrap();
    let mut s = scope();
    assert_eq!(expr.eval(&mut s), Ok(Value::Bool(false)));
    assert_eq!(s.reads, 0, "short-circuit must not read the attribute");
}

#[test]
fn float_division_by_zero_is_ieee_and_never_null_in_json() {
    // CEL: `1.0 / 0.0` is +infinity (not an error); the JSON of an output spells it out.
    let v = eval("1.0 / 0.0").unwrap();
    assert_eq!(v, Value::Float(f64::INFINITY));
    assert_eq!(serde_json::to_string(&v).unwrap(), r#""Infinity""#);
    let nan = eval("0.0 / 0.0").unwrap();
    assert_eq!(serde_json::to_string(&nan).unwrap(), r#""NaN""#);
    // NaN is unordered: every ordering comparison is false, `!=` is true.
    assert_eq!(eval("0.0 / 0.0 < 1.0"), Ok(Value::Bool(false)));
    assert_eq!(eval("0.0 / 0.0 >= 1.0"), Ok(Value::Bool(false)));
    assert_eq!(eval("0.0 / 0.0 != 0.0 / 0.0"), Ok(Value::Bool(true)));
    // Integer division by zero stays an error.
    assert!(matches!(eval("1 / 0"), Err(EvalError::Arithmetic(_))));
}

#[test]
fn uint_is_a_distinct_checked_type() {
    assert_eq!(eval("1u"), Ok(Value::Uint(1)));
    assert_eq!(eval("2u * 3u"), Ok(Value::Uint(6)));
    // Was `-1` when `u` literals were read as ints.
    assert!(matches!(eval("0u - 1u"), Err(EvalError::Arithmetic(_))));
    assert!(matches!(
        eval("18446744073709551615u + 1u"),
        Err(EvalError::Arithmetic(_))
    ));
    // No mixing without a conversion, with a located error and a hint.
    let e = compile("customer.points + 1u").unwrap_err();
    assert!(e.message.contains("cannot combine int and uint"), "{e:?}");
    assert!(e.help.unwrap().contains("convert"));
    assert!(e.span.is_some());
    assert!(compile("-(1u)").is_err());
    assert_eq!(eval("customer.points + int(1u)"), Ok(Value::Int(121)));
    assert_eq!(eval("uint(customer.points) + 1u"), Ok(Value::Uint(121)));
    // Comparisons and equality across numeric kinds are by value.
    assert_eq!(eval("customer.points > 100u"), Ok(Value::Bool(true)));
    assert_eq!(eval("customer.points == 120u"), Ok(Value::Bool(true)));
    // Out of range conversions.
    assert!(compile("uint(-1)").unwrap_err().message.contains("range"));
    assert!(compile("int(18446744073709551615u)").is_err());
    assert!(matches!(
        eval("uint(customer.points - 121)"),
        Err(EvalError::Arithmetic(_))
    ));
    assert_eq!(compile("1u + 2u").unwrap().ty(), Ty::Uint);
}

#[test]
fn map_literals_take_int_uint_bool_and_string_keys() {
    assert_eq!(eval("{1: 'one'}[1]"), Ok(Value::str("one")));
    assert_eq!(eval("{true: 5}[true]"), Ok(Value::Int(5)));
    assert_eq!(eval("{1u: 'a', 'b': 2}[1]"), Ok(Value::str("a")));
    assert_eq!(eval("2 in {2u: 0}"), Ok(Value::Bool(true)));
    assert_eq!(
        eval("{1: 'a', 2: 'b'}.map(k, k * 10)").unwrap().to_string(),
        "[10, 20]"
    );
    assert!(compile("{1.5: 'x'}").is_err());
    assert!(eval("{1: 'a', 1u: 'b'}[1]").is_err());
    // Such a map works inside an expression but cannot be a result: outputs are JSON, whose
    // keys are strings.
    let e = eval("{1: 'one'}").unwrap_err();
    assert!(e.to_string().contains("non-string key"), "{e}");
    assert!(eval("[{true: 1}]").is_err());
    assert!(eval("{'k': 1}").is_ok());
}

#[test]
fn timestamps_and_durations_stay_in_range() {
    // The issue's example: this used to give +10000-01-01T00:00:00Z.
    let e = eval("timestamp('9999-12-31T23:59:59Z') + duration('1s')").unwrap_err();
    assert!(e.to_string().contains("range"), "{e}");
    assert!(eval("now - timestamp('0001-01-01T00:00:00Z')").is_err()); // > 292 years
    assert!(compile("timestamp('0000-01-01T00:00:00Z')").is_err());
    assert!(compile("duration('320000000000s')").is_err());
    assert!(eval("-duration('1s')").is_ok());
    // timestamp(int): seconds since the epoch.
    assert_eq!(
        eval("timestamp(1234567890)"),
        Ok(Value::Timestamp(1_234_567_890_000_000))
    );
    assert!(compile("timestamp(253402300800)").is_err());
    assert_eq!(
        eval("timestamp(customer.points) == timestamp('1970-01-01T00:02:00Z')"),
        Ok(Value::Bool(true))
    );
}

#[test]
fn duration_strings_are_exact_and_microsecond_precise() {
    let d = |s: &str| eval(&format!("duration('{s}')"));
    assert_eq!(d("1h30m"), Ok(Value::Duration(5_400_000_000)));
    assert_eq!(d("-1.5h"), Ok(Value::Duration(-5_400_000_000)));
    assert_eq!(d(".5s"), Ok(Value::Duration(500_000)));
    assert_eq!(d("1000ns"), Ok(Value::Duration(1)));
    assert_eq!(d("3µs"), Ok(Value::Duration(3)));
    assert_eq!(d("0"), Ok(Value::Duration(0)));
    // Exact beyond f64's integers.
    assert_eq!(
        d("9223372036.854775s"),
        Ok(Value::Duration(9_223_372_036_854_775))
    );
    // Finer than a microsecond: refused, not rounded.
    let e = compile("duration('1ns')").unwrap_err();
    assert!(e.message.contains("microsecond"), "{e:?}");
    assert!(compile("timestamp('2026-01-01T00:00:00.000000001Z')").is_err());
    for bad in ["", "h", "1", "1x", "1.5.5s", "--1s", "1h 30m"] {
        assert!(
            compile(&format!("duration('{bad}')")).is_err(),
            "{bad:?} should be refused"
        );
    }
    assert_eq!(eval("string(duration('1.5s'))"), Ok(Value::str("1.5s")));
}

#[test]
fn timestamp_getters_take_a_time_zone_and_durations_have_getters() {
    // now is 2026-03-01T10:30:00Z.
    assert_eq!(eval("now.getHours('Europe/Berlin')"), Ok(Value::Int(11)));
    assert_eq!(eval("now.getHours('-05:30')"), Ok(Value::Int(5)));
    assert_eq!(eval("now.getMinutes('-05:30')"), Ok(Value::Int(0)));
    assert_eq!(
        eval("now.getDayOfWeek('Pacific/Kiritimati')"),
        Ok(Value::Int(1))
    );
    assert_eq!(eval("now.getDate()"), Ok(Value::Int(1)));
    assert_eq!(eval("now.getDayOfYear()"), Ok(Value::Int(59)));
    assert_eq!(eval("now.getSeconds()"), Ok(Value::Int(0)));
    assert_eq!(
        eval("(now - customer.last_order_at).getHours()"),
        Ok(Value::Int(1426))
    );
    // A literal zone is checked when compiling, with its location.
    let e = compile("now.getHours('Mars/Olympus')").unwrap_err();
    assert!(e.message.contains("time zone"), "{e:?}");
    assert_eq!(e.span.map(|s| s.0), Some(13));
    // A zone from data is checked when evaluating.
    assert!(matches!(
        eval("now.getHours(customer.city)"),
        Err(EvalError::Type(_))
    ));
    assert!(compile("duration('1h').getDayOfWeek()").is_err());
    assert!(compile("duration('1h').getHours('UTC')").is_err());
}

#[test]
fn all_and_exists_absorb_errors_like_and_and_or() {
    assert_eq!(
        eval("[1, 2, 3].all(e, 6 / (2 - e) == 6)"),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        eval("[1, 2, 3].exists(e, 6 / (2 - e) == -6)"),
        Ok(Value::Bool(true))
    );
    // No element decides: the error stands.
    assert!(eval("[1, 2, 3].all(e, e / 0 != 17)").is_err());
    assert!(eval("[1, 2].exists(e, e / 0 == 17)").is_err());
}

/// A scope whose every attribute read halts, as an executor that must wait does.
struct Halting(TestScope);

impl Scope for Halting {
    fn attr(&mut self, _: u16) -> Result<Value, EvalError> {
        Err(EvalError::Halt)
    }
    fn counter(&mut self, c: CounterId) -> Result<Value, EvalError> {
        self.0.counter(c)
    }
    fn event(&self) -> &Event {
        self.0.event()
    }
    fn coupon(&self) -> Option<Value> {
        self.0.coupon()
    }
}

#[test]
fn a_halt_is_never_absorbed() {
    for src in [
        "[1, 2, 3].all(e, e > customer.points)",
        "[1, 2, 3].exists(e, e == customer.points)",
        "[0, 1].all(e, 1 / e > 0 && customer.points > 0)",
        "false || customer.points > 0",
    ] {
        let expr = compile(src).unwrap();
        assert_eq!(
            expr.eval(&mut Halting(scope())),
            Err(EvalError::Halt),
            "{src}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_or_a_value_never_a_stack_overflow() {
    // Within the parser's depth limit: compiles, and evaluates on a 2 MiB thread.
    // Not constant, so the evaluation recurses as deep as the expression.
    let nested = format!("{}customer.points{}", "[".repeat(60), "]".repeat(60));
    let parens = format!("{}7{}", "(".repeat(90), ")".repeat(90));
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let list = eval(&format!("size({nested})"));
            let parens = eval(&parens);
            (list, parens)
        })
        .unwrap();
    let (list, parens) = handle.join().unwrap();
    assert_eq!(list, Ok(Value::Int(1)));
    assert_eq!(parens, Ok(Value::Int(7)));
    // Beyond it: a compile error.
    let deep = format!("{}7{}", "(".repeat(500), ")".repeat(500));
    assert!(compile(&deep).is_err());
}

#[test]
fn langdef_examples() {
    // Examples of the CEL language definition's standard definitions.
    assert_eq!(
        eval("[1, 2, 3, 4].map(num, num % 2 == 0, num * 2)")
            .unwrap()
            .to_string(),
        "[4, 8]"
    );
    assert_eq!(eval("matches('foobar', 'foo.*')"), Ok(Value::Bool(true)));
    assert_eq!(eval("bool('true')"), Ok(Value::Bool(true)));
    assert_eq!(eval("bool('FALSE')"), Ok(Value::Bool(false)));
    assert_eq!(eval("bool(true)"), Ok(Value::Bool(true)));
    assert!(compile("bool('yes')").is_err());
    assert_eq!(
        eval("duration('1.234s').getMilliseconds()"),
        Ok(Value::Int(234))
    );
    assert_eq!(eval("duration('1h30m').getMinutes()"), Ok(Value::Int(90)));
    assert_eq!(eval("string(duration('1m1ms'))"), Ok(Value::str("60.001s")));
    assert_eq!(
        eval("timestamp('2023-12-25T00:00:00Z').getDate('America/Los_Angeles')"),
        Ok(Value::Int(24))
    );
    assert_eq!(
        eval("timestamp('2023-12-25T12:00:00.500Z').getMilliseconds()"),
        Ok(Value::Int(500))
    );
    assert_eq!(
        eval("timestamp('2023-12-25T12:00:00Z').getDayOfYear()"),
        Ok(Value::Int(358))
    );
    assert_eq!(eval("3 in {1: 'one', 2: 'two'}"), Ok(Value::Bool(false)));
    assert_eq!(eval("-1 < dyn(1u)"), Ok(Value::Bool(true)));
    assert_eq!(
        eval("1 >= dyn(18446744073709551615u)"),
        Ok(Value::Bool(false))
    );
    assert_eq!(eval("size({1: true, 2: false})"), Ok(Value::Int(2)));
    assert_eq!(
        eval("[{'a': 10, 'b': 5, 'c': 20}].map(m, m.filter(key, m[key] > 10))")
            .unwrap()
            .to_string(),
        r#"[["c"]]"#
    );
}

mod never_panics {
    use proptest::prelude::*;

    use super::{compile, scope};

    const LEAVES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615u",
        "0u",
        "1u",
        "1.5",
        "0.0",
        "-0.0",
        "1e308",
        "'a'",
        "''",
        "'2009-02-13T23:31:30Z'",
        "'9999-12-31T23:59:59Z'",
        "'0001-01-01T00:00:00Z'",
        "'1h'",
        "'-1ns'",
        "'320000000000s'",
        "'UTC'",
        "'+02:00'",
        "'Nowhere/City'",
        "true",
        "false",
        "null",
        "customer.points",
        "customer.tags",
        "customer.age",
        "customer.last_order_at",
        "event.properties.total",
        "event.properties.meta",
        "event.properties.sku",
        "now",
        "x",
        "[]",
        "{}",
    ];
    const BINARY: &[&str] = &[
        "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in",
    ];
    const CALLS: &[&str] = &[
        "duration",
        "timestamp",
        "int",
        "uint",
        "double",
        "string",
        "bool",
        "size",
        "dyn",
    ];
    const METHODS: &[&str] = &[
        "getHours()",
        "getDayOfYear()",
        "getMilliseconds()",
        "getDate('UTC')",
        "getMinutes('Asia/Kathmandu')",
        "size()",
        "startsWith('a')",
    ];
    const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];

    fn expr() -> impl Strategy<Value = String> {
        // `dyn(..)` half of the time, so that more soups get past the compile-time checks.
        let leaf = (prop::sample::select(LEAVES), any::<bool>()).prop_map(|(l, hide)| {
            if hide {
                format!("dyn({l})")
            } else {
                l.to_string()
            }
        });
        leaf.prop_recursive(5, 48, 3, |inner| {
            prop_oneof![
                (inner.clone(), prop::sample::select(BINARY), inner.clone())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                inner.clone().prop_map(|a| format!("-({a})")),
                inner.clone().prop_map(|a| format!("dyn({a})")),
                inner.clone().prop_map(|a| format!("!({a})")),
                (prop::sample::select(CALLS), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
                (inner.clone(), prop::sample::select(METHODS))
                    .prop_map(|(a, m)| format!("({a}).{m}")),
                (inner.clone(), prop::sample::select(MACROS), inner.clone())
                    .prop_map(|(r, m, body)| format!("[{r}, 1, 'b'].{m}(x, {body})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(k, v, k2)| format!("{{{k}: {v}, {k2}: 0}}")),
                (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("({a})[{i}]")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("({c}) ? ({a}) : ({b})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]
        /// Whatever the expression, compiling gives an expression or an error, and evaluating
        /// a compiled one gives a value or an error: never a panic.
        #[test]
        fn compile_and_eval_never_panic(src in expr()) {
            if let Ok(expr) = compile(&src) {
                let _ = expr.eval(&mut scope());
            }
        }
    }
}

#[test]
fn an_expression_past_the_parser_depth_limit_is_reported_in_words() {
    let deep = format!("{}true{}", "(".repeat(120), ")".repeat(120));
    let err = compile(&deep).unwrap_err();
    assert!(err.message.contains("nests too deep"), "{}", err.message);
    assert!(!err.message.contains("ParseError"), "{}", err.message);
}
