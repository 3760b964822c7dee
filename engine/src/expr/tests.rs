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
