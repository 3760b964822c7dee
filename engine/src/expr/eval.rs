//! Evaluation of compiled [`Node`]s.
//!
//! Reads of mutable state (customer attributes, counters) go through [`Scope`], so an executor
//! can record them (read-sets for validation) or stop an execution that must wait for another
//! one ([`EvalError::Halt`]). Everything else is pure.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::compile::{
    parse_duration, parse_timestamp_value, BinOp, Comprehension, EventField, Func, Node,
};
use super::CounterId;
use crate::customers::AttrId;
use crate::event::Event;
use crate::value::{format_timestamp, Map, Value};

/// Why an evaluation did not produce a value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Operand kinds that no operator or function accepts.
    #[error("type error: {0}")]
    Type(String),
    /// Integer overflow, division by zero, out-of-range conversion.
    #[error("arithmetic error: {0}")]
    Arithmetic(String),
    /// A map key or list index that is not there.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// The executor stopped the evaluation (e.g. it must wait for another transaction).
    /// Not an error of the expression: it is never recorded as an outcome.
    #[error("evaluation halted by the executor")]
    Halt,
}

/// The state an expression reads.
pub trait Scope {
    /// An attribute of the event's customer.
    fn attr(&mut self, attr: AttrId) -> Result<Value, EvalError>;
    /// A shared counter.
    fn counter(&mut self, counter: CounterId) -> Result<Value, EvalError>;
    /// The event being processed.
    fn event(&self) -> &Event;
    /// The code issued by the latest `issue_coupon` action of this execution.
    fn coupon(&self) -> Option<Value>;
}

/// A scope with nothing in it: used to fold constant subtrees at compile time.
pub(crate) struct NoScope;

impl Scope for NoScope {
    fn attr(&mut self, _: AttrId) -> Result<Value, EvalError> {
        Err(EvalError::Halt)
    }
    fn counter(&mut self, _: CounterId) -> Result<Value, EvalError> {
        Err(EvalError::Halt)
    }
    fn event(&self) -> &Event {
        // Constant folding never reaches event nodes: they are not constants.
        unreachable_event()
    }
    fn coupon(&self) -> Option<Value> {
        None
    }
}

fn unreachable_event() -> &'static Event {
    static EMPTY: std::sync::OnceLock<Event> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Event {
        id: Arc::from(""),
        customer_id: 0,
        event_type: Arc::from(""),
        timestamp: 0,
        process: None,
        properties: Arc::new(Map::default()),
    })
}

fn type_err(msg: String) -> EvalError {
    EvalError::Type(msg)
}

impl Node {
    pub(crate) fn eval(
        &self,
        scope: &mut dyn Scope,
        locals: &mut Vec<Value>,
    ) -> Result<Value, EvalError> {
        Ok(match self {
            Node::Const(v) => v.clone(),
            Node::Attr(a) => scope.attr(*a)?,
            Node::Counter(c) => scope.counter(*c)?,
            Node::Now => Value::Timestamp(scope.event().timestamp),
            Node::Event(f) => {
                let e = scope.event();
                match f {
                    EventField::Id => Value::Str(e.id.clone()),
                    EventField::Type => Value::Str(e.event_type.clone()),
                    EventField::Timestamp => Value::Timestamp(e.timestamp),
                    EventField::CustomerId => Value::Int(e.customer_id as i64),
                    EventField::Process => e.process.clone().map_or(Value::Null, Value::Str),
                    EventField::Properties => Value::Map(e.properties.clone()),
                }
            }
            Node::EventProp(key) => match scope.event().properties.get(key) {
                Some(v) => v.clone(),
                None => return Err(EvalError::NoSuchKey(format!("event.properties.{key}"))),
            },
            Node::Coupon => scope
                .coupon()
                .ok_or_else(|| EvalError::NoSuchKey("coupon (no coupon issued yet)".into()))?,
            Node::Local(slot) => locals[*slot].clone(),
            Node::Segment(slot) => {
                Value::Bool(slot.contains(scope.event().customer_id).ok_or_else(|| {
                    EvalError::NoSuchKey(format!(
                        "segment('{}') (no membership published yet)",
                        slot.id()
                    ))
                })?)
            }
            Node::Select(inner, field) => match inner.eval(scope, locals)? {
                Value::Map(m) => m
                    .get(field)
                    .cloned()
                    .ok_or_else(|| EvalError::NoSuchKey(field.to_string()))?,
                other => {
                    return Err(type_err(format!(
                        "cannot select `{field}` of a {}",
                        other.kind()
                    )))
                }
            },
            Node::HasKey(inner, field) => match inner.eval(scope, locals)? {
                Value::Map(m) => Value::Bool(m.get(field).is_some()),
                Value::Null => Value::Bool(false),
                other => return Err(type_err(format!("has() on a {}", other.kind()))),
            },
            Node::NotNull(inner) => match inner.eval(scope, locals) {
                Ok(v) => Value::Bool(!v.is_null()),
                Err(EvalError::NoSuchKey(_)) => Value::Bool(false),
                Err(e) => return Err(e),
            },
            Node::Not(a) => match a.eval(scope, locals)? {
                Value::Bool(b) => Value::Bool(!b),
                other => return Err(type_err(format!("`!` on a {}", other.kind()))),
            },
            Node::Neg(a) => {
                match a.eval(scope, locals)? {
                    Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| {
                        EvalError::Arithmetic("integer overflow in negation".into())
                    })?),
                    Value::Float(x) => Value::Float(-x),
                    Value::Duration(d) => Value::Duration(
                        d.checked_neg()
                            .ok_or_else(|| EvalError::Arithmetic("duration overflow".into()))?,
                    ),
                    other => return Err(type_err(format!("cannot negate a {}", other.kind()))),
                }
            }
            Node::And(a, b) => logic(a, b, scope, locals, false)?,
            Node::Or(a, b) => logic(a, b, scope, locals, true)?,
            Node::Cond(parts) => match parts.0.eval(scope, locals)? {
                Value::Bool(true) => parts.1.eval(scope, locals)?,
                Value::Bool(false) => parts.2.eval(scope, locals)?,
                other => return Err(type_err(format!("`?:` condition is a {}", other.kind()))),
            },
            Node::Bin(op, a, b) => {
                let x = a.eval(scope, locals)?;
                let y = b.eval(scope, locals)?;
                binary(*op, &x, &y)?
            }
            Node::Index(a, b) => {
                let container = a.eval(scope, locals)?;
                let key = b.eval(scope, locals)?;
                index(&container, &key)?
            }
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(item.eval(scope, locals)?);
                }
                Value::List(out.into())
            }
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = match k.eval(scope, locals)? {
                        Value::Str(s) => s,
                        other => return Err(type_err(format!("map key is a {}", other.kind()))),
                    };
                    out.push((key, v.eval(scope, locals)?));
                }
                Value::Map(Arc::new(Map::from_entries(out)))
            }
            Node::Call(func, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(scope, locals)?);
                }
                call(*func, &values)?
            }
            Node::Matches(subject, re) => match subject.eval(scope, locals)? {
                Value::Str(s) => Value::Bool(re.is_match(&s)),
                other => return Err(type_err(format!("matches() on a {}", other.kind()))),
            },
            Node::NotStrictlyFalse(a) => match a.eval(scope, locals) {
                Ok(Value::Bool(false)) => Value::Bool(false),
                Err(EvalError::Halt) => return Err(EvalError::Halt),
                _ => Value::Bool(true),
            },
            Node::Comprehension(c) => comprehension(c, scope, locals)?,
        })
    }
}

fn logic(
    a: &Node,
    b: &Node,
    scope: &mut dyn Scope,
    locals: &mut Vec<Value>,
    is_or: bool,
) -> Result<Value, EvalError> {
    // CEL: the result is decided by whichever side decides it; an error on one side is
    // absorbed when the other side decides (`false && err == false`).
    let left = match a.eval(scope, locals) {
        Ok(Value::Bool(x)) if x == is_or => return Ok(Value::Bool(is_or)),
        Ok(Value::Bool(_)) => None,
        Ok(other) => Some(type_err(format!("logical operand is a {}", other.kind()))),
        Err(EvalError::Halt) => return Err(EvalError::Halt),
        Err(e) => Some(e),
    };
    match b.eval(scope, locals)? {
        Value::Bool(x) if x == is_or => Ok(Value::Bool(is_or)),
        Value::Bool(x) => match left {
            None => Ok(Value::Bool(x)),
            Some(e) => Err(e),
        },
        other => {
            Err(left.unwrap_or_else(|| type_err(format!("logical operand is a {}", other.kind()))))
        }
    }
}

fn comprehension(
    c: &Comprehension,
    scope: &mut dyn Scope,
    locals: &mut Vec<Value>,
) -> Result<Value, EvalError> {
    let range = c.range.eval(scope, locals)?;
    let items: Vec<Value> = match range {
        Value::List(l) => l.to_vec(),
        Value::Map(m) => m
            .entries()
            .iter()
            .map(|(k, _)| Value::Str(k.clone()))
            .collect(),
        other => return Err(type_err(format!("cannot iterate over a {}", other.kind()))),
    };
    locals[c.accu_slot] = c.init.eval(scope, locals)?;
    for item in items {
        locals[c.iter_slot] = item;
        match c.cond.eval(scope, locals)? {
            Value::Bool(false) => break,
            Value::Bool(true) => {}
            other => return Err(type_err(format!("loop condition is a {}", other.kind()))),
        }
        locals[c.accu_slot] = c.step.eval(scope, locals)?;
    }
    c.result.eval(scope, locals)
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// Equality as CEL `==` sees it: numbers compare across int/float; lists and maps element-wise.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            as_f64(a) == as_f64(b)
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.entries()
                    .iter()
                    .zip(y.entries())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && values_equal(v1, v2))
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    let incomparable = || type_err(format!("cannot order {} and {}", a.kind(), b.kind()));
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (as_f64(a).unwrap_or(f64::NAN), as_f64(b).unwrap_or(f64::NAN));
            x.partial_cmp(&y)
                .ok_or_else(|| EvalError::Arithmetic("comparison with NaN".into()))
        }
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) | (Value::Duration(x), Value::Duration(y)) => {
            Ok(x.cmp(y))
        }
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => Err(incomparable()),
    }
}

fn overflow(what: &str) -> EvalError {
    EvalError::Arithmetic(format!("integer overflow in {what}"))
}

pub(crate) fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    use Value::*;
    let mismatch = || {
        type_err(format!(
            "no operator `{}` for {} and {}",
            op_symbol(op),
            a.kind(),
            b.kind()
        ))
    };
    Ok(match op {
        BinOp::Eq => Bool(values_equal(a, b)),
        BinOp::Ne => Bool(!values_equal(a, b)),
        BinOp::Lt => Bool(compare(a, b)? == Ordering::Less),
        BinOp::Le => Bool(compare(a, b)? != Ordering::Greater),
        BinOp::Gt => Bool(compare(a, b)? == Ordering::Greater),
        BinOp::Ge => Bool(compare(a, b)? != Ordering::Less),
        BinOp::In => match b {
            List(items) => Bool(items.iter().any(|x| values_equal(a, x))),
            Map(m) => match a {
                Str(k) => Bool(m.get(k).is_some()),
                _ => Bool(false),
            },
            _ => return Err(mismatch()),
        },
        BinOp::Add => match (a, b) {
            (Int(x), Int(y)) => Int(x.checked_add(*y).ok_or_else(|| overflow("addition"))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                Float(as_f64(a).unwrap_or_default() + as_f64(b).unwrap_or_default())
            }
            (Str(x), Str(y)) => Str(Arc::from(format!("{x}{y}"))),
            (List(x), List(y)) => List(x.iter().chain(y.iter()).cloned().collect()),
            (Timestamp(t), Duration(d)) | (Duration(d), Timestamp(t)) => Timestamp(
                t.checked_add(*d)
                    .ok_or_else(|| overflow("timestamp arithmetic"))?,
            ),
            (Duration(x), Duration(y)) => Duration(
                x.checked_add(*y)
                    .ok_or_else(|| overflow("duration arithmetic"))?,
            ),
            _ => return Err(mismatch()),
        },
        BinOp::Sub => match (a, b) {
            (Int(x), Int(y)) => Int(x.checked_sub(*y).ok_or_else(|| overflow("subtraction"))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                Float(as_f64(a).unwrap_or_default() - as_f64(b).unwrap_or_default())
            }
            (Timestamp(x), Timestamp(y)) => Duration(
                x.checked_sub(*y)
                    .ok_or_else(|| overflow("timestamp arithmetic"))?,
            ),
            (Timestamp(t), Duration(d)) => Timestamp(
                t.checked_sub(*d)
                    .ok_or_else(|| overflow("timestamp arithmetic"))?,
            ),
            (Duration(x), Duration(y)) => Duration(
                x.checked_sub(*y)
                    .ok_or_else(|| overflow("duration arithmetic"))?,
            ),
            _ => return Err(mismatch()),
        },
        BinOp::Mul => match (a, b) {
            (Int(x), Int(y)) => Int(x
                .checked_mul(*y)
                .ok_or_else(|| overflow("multiplication"))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                Float(as_f64(a).unwrap_or_default() * as_f64(b).unwrap_or_default())
            }
            _ => return Err(mismatch()),
        },
        BinOp::Div => match (a, b) {
            (Int(_), Int(0)) => return Err(EvalError::Arithmetic("division by zero".into())),
            (Int(x), Int(y)) => Int(x.checked_div(*y).ok_or_else(|| overflow("division"))?),
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                Float(as_f64(a).unwrap_or_default() / as_f64(b).unwrap_or_default())
            }
            _ => return Err(mismatch()),
        },
        BinOp::Rem => match (a, b) {
            (Int(_), Int(0)) => return Err(EvalError::Arithmetic("modulus by zero".into())),
            (Int(x), Int(y)) => Int(x.checked_rem(*y).ok_or_else(|| overflow("modulus"))?),
            _ => return Err(mismatch()),
        },
    })
}

fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Rem => "%",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::In => "in",
    }
}

fn index(container: &Value, key: &Value) -> Result<Value, EvalError> {
    match (container, key) {
        (Value::List(items), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or_else(|| EvalError::NoSuchKey(format!("index {i} of a list of {}", items.len()))),
        (Value::Map(m), Value::Str(k)) => m
            .get(k)
            .cloned()
            .ok_or_else(|| EvalError::NoSuchKey(k.to_string())),
        _ => Err(type_err(format!(
            "cannot index a {} with a {}",
            container.kind(),
            key.kind()
        ))),
    }
}

fn datetime(v: &Value) -> Result<DateTime<Utc>, EvalError> {
    match v {
        Value::Timestamp(t) => DateTime::<Utc>::from_timestamp_micros(*t)
            .ok_or_else(|| EvalError::Arithmetic("timestamp out of range".into())),
        other => Err(type_err(format!(
            "expected a timestamp, got {}",
            other.kind()
        ))),
    }
}

fn string_arg(v: &Value) -> Result<&str, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(type_err(format!("expected a string, got {}", other.kind()))),
    }
}

fn call(func: Func, args: &[Value]) -> Result<Value, EvalError> {
    let a = &args[0];
    Ok(match func {
        Func::Size => Value::Int(match a {
            Value::Str(s) => s.chars().count() as i64,
            Value::List(l) => l.len() as i64,
            Value::Map(m) => m.len() as i64,
            other => return Err(type_err(format!("size() of a {}", other.kind()))),
        }),
        Func::Int => Value::Int(match a {
            Value::Int(i) => *i,
            Value::Float(x) => {
                if x.is_finite() && *x >= -9.223_372_036_854_776e18 && *x < 9.223_372_036_854_776e18
                {
                    x.trunc() as i64
                } else {
                    return Err(EvalError::Arithmetic(format!("{x} does not fit an int")));
                }
            }
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| type_err(format!("cannot convert {s:?} to int")))?,
            Value::Bool(b) => i64::from(*b),
            Value::Timestamp(t) => t.div_euclid(1_000_000),
            other => return Err(type_err(format!("int() of a {}", other.kind()))),
        }),
        Func::Double => Value::Float(match a {
            Value::Int(i) => *i as f64,
            Value::Float(x) => *x,
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| type_err(format!("cannot convert {s:?} to double")))?,
            other => return Err(type_err(format!("double() of a {}", other.kind()))),
        }),
        Func::String => match a {
            Value::Str(_) => a.clone(),
            Value::Int(i) => Value::Str(Arc::from(i.to_string())),
            Value::Float(x) => Value::Str(Arc::from(x.to_string())),
            Value::Bool(b) => Value::Str(Arc::from(b.to_string())),
            Value::Timestamp(t) => Value::Str(Arc::from(format_timestamp(*t))),
            Value::Duration(d) => Value::Str(Arc::from(format!("{}s", *d as f64 / 1e6))),
            Value::Null => Value::str("null"),
            other => return Err(type_err(format!("string() of a {}", other.kind()))),
        },
        Func::Timestamp => match a {
            Value::Timestamp(_) => a.clone(),
            Value::Str(s) => Value::Timestamp(
                parse_timestamp_value(s)
                    .ok_or_else(|| type_err(format!("{s:?} is not an RFC 3339 timestamp")))?,
            ),
            other => return Err(type_err(format!("timestamp() of a {}", other.kind()))),
        },
        Func::Duration => match a {
            Value::Duration(_) => a.clone(),
            Value::Str(s) => Value::Duration(parse_duration(s).ok_or_else(|| {
                type_err(format!(
                    "{s:?} is not a duration (e.g. \"720h\", \"1h30m\", \"90s\")"
                ))
            })?),
            other => return Err(type_err(format!("duration() of a {}", other.kind()))),
        },
        Func::StartsWith => Value::Bool(string_arg(a)?.starts_with(string_arg(&args[1])?)),
        Func::EndsWith => Value::Bool(string_arg(a)?.ends_with(string_arg(&args[1])?)),
        Func::Contains => Value::Bool(string_arg(a)?.contains(string_arg(&args[1])?)),
        Func::LowerAscii => Value::Str(Arc::from(string_arg(a)?.to_ascii_lowercase())),
        Func::UpperAscii => Value::Str(Arc::from(string_arg(a)?.to_ascii_uppercase())),
        Func::GetHours => Value::Int(i64::from(datetime(a)?.hour())),
        Func::GetMinutes => Value::Int(i64::from(datetime(a)?.minute())),
        Func::GetDayOfWeek => Value::Int(i64::from(datetime(a)?.weekday().num_days_from_sunday())),
        Func::GetDayOfMonth => Value::Int(i64::from(datetime(a)?.day0())),
        Func::GetMonth => Value::Int(i64::from(datetime(a)?.month0())),
        Func::GetFullYear => Value::Int(i64::from(datetime(a)?.year())),
    })
}
