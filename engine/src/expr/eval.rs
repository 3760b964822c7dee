//! Evaluation of compiled [`Node`]s.
//!
//! Reads of mutable state (customer attributes, counters) go through [`Scope`], so an executor
//! can record them (read-sets for validation) or stop an execution that must wait for another
//! one ([`EvalError::Halt`]). Everything else is pure.
//!
//! Invariants kept here:
//! - every timestamp an operation produces is within CEL's range (`0001-01-01T00:00:00Z` to
//!   `9999-12-31T23:59:59.999999Z`) and every duration within an `int64` of nanoseconds
//!   (about ±292 years, as the CEL language definition says), checked in one place
//!   ([`timestamp_value`], [`duration_value`]); outside them is a range error;
//! - integer arithmetic (`int` and `uint`) is checked, conversions are checked;
//! - a comprehension's accumulator may hold an error, so `all` / `exists` absorb an element's
//!   error when another element decides the result, as `&&` / `||` do;
//! - nothing here panics: every index and every conversion is checked.

use std::cmp::Ordering;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike, Utc};

use super::compile::{parse_duration, BinOp, Comprehension, EventField, Func, Node};
use super::CounterId;
use crate::customers::AttrId;
use crate::event::Event;
use crate::value::{
    format_duration, format_timestamp, Map, MapKey, Value, MAX_TIMESTAMP, MIN_TIMESTAMP,
};

/// Local slots of an evaluation (comprehension variables). An accumulator may hold an error,
/// which is raised only if the comprehension's result reads it.
pub(crate) type Locals = Vec<Result<Value, EvalError>>;

/// Longest duration CEL allows (an `int64` of nanoseconds), in whole microseconds.
pub(crate) const MAX_DURATION: i64 = 9_223_372_036_854_775;

/// A timestamp value, or a range error.
pub(crate) fn timestamp_value(micros: i128) -> Result<Value, EvalError> {
    if (i128::from(MIN_TIMESTAMP)..=i128::from(MAX_TIMESTAMP)).contains(&micros) {
        Ok(Value::Timestamp(micros as i64))
    } else {
        Err(EvalError::Arithmetic(
            "timestamp out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z)".into(),
        ))
    }
}

/// A duration value, or a range error.
pub(crate) fn duration_value(micros: i128) -> Result<Value, EvalError> {
    if (-i128::from(MAX_DURATION)..=i128::from(MAX_DURATION)).contains(&micros) {
        Ok(Value::Duration(micros as i64))
    } else {
        Err(EvalError::Arithmetic(
            "duration out of range (about ±292 years: an int64 of nanoseconds)".into(),
        ))
    }
}

/// Why an evaluation did not produce a value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Operand kinds that no operator or function accepts.
    #[error("type error: {0}")]
    Type(String),
    /// Integer overflow, division by zero, out-of-range conversion, timestamp or duration
    /// out of range.
    #[error("arithmetic error: {0}")]
    Arithmetic(String),
    /// A map key or list index that is not there.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// The executor stopped the evaluation (e.g. it must wait for another transaction).
    /// Not an error of the expression: it is never recorded as an outcome.
    #[error("evaluation halted by the executor")]
    Halt,
    /// The execution used up its fuel (see `exec::txn`, "Fuel"). Never absorbed by `||`,
    /// `&&` or a comprehension: it ends the execution.
    #[error("fuel limit {max} exceeded (used {used})")]
    FuelExhausted {
        /// Fuel used when the limit was crossed.
        used: u64,
        /// The limit.
        max: u64,
    },
}

impl EvalError {
    /// Errors no CEL rule may absorb: the executor's halt and fuel exhaustion.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, EvalError::Halt | EvalError::FuelExhausted { .. })
    }
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
    /// Whether the event's customer is in segment `id`, in the batch's membership snapshot;
    /// `None` if nothing was published for it.
    fn segment(&self, id: &str) -> Option<bool> {
        let _ = id;
        None
    }
    /// Charges `fuel` units of evaluation work; `Err(FuelExhausted)` ends the evaluation.
    /// An expression charges its static size when it starts and a comprehension its
    /// iterations times its body's size before it loops, so a condition over a 10k-element
    /// list costs 10k bodies and is stopped before doing them when that is too much.
    fn burn(&mut self, fuel: u64) -> Result<(), EvalError> {
        let _ = fuel;
        Ok(())
    }
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
        locals: &mut Locals,
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
            Node::Local(slot) => match locals.get(*slot) {
                Some(v) => v.clone()?,
                None => return Err(type_err(format!("unbound local slot {slot}"))),
            },
            Node::Segment(id) => Value::Bool(scope.segment(id).ok_or_else(|| {
                EvalError::NoSuchKey(format!("segment('{id}') (no membership published yet)"))
            })?),
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
            Node::Neg(a) => match a.eval(scope, locals)? {
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| overflow("negation"))?),
                Value::Float(x) => Value::Float(-x),
                Value::Duration(d) => duration_value(-i128::from(d))?,
                other => return Err(type_err(format!("cannot negate a {}", other.kind()))),
            },
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
                    let key = k.eval(scope, locals)?;
                    out.push((key, v.eval(scope, locals)?));
                }
                Value::Map(Arc::new(Map::from_cel_entries(out).map_err(
                    |e| match e {
                        crate::value::MapBuildError::UnsupportedKey(_) => type_err(e.to_string()),
                        crate::value::MapBuildError::RepeatedKey(_) => {
                            EvalError::Arithmetic(e.to_string())
                        }
                    },
                )?))
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
                Err(e) if e.is_fatal() => return Err(e),
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
    locals: &mut Locals,
    is_or: bool,
) -> Result<Value, EvalError> {
    // CEL: the result is decided by whichever side decides it; an error on one side is
    // absorbed when the other side decides (`false && err == false`).
    let left = match a.eval(scope, locals) {
        Ok(Value::Bool(x)) if x == is_or => return Ok(Value::Bool(is_or)),
        Ok(Value::Bool(_)) => None,
        Ok(other) => Some(type_err(format!("logical operand is a {}", other.kind()))),
        Err(e) if e.is_fatal() => return Err(e),
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
    locals: &mut Locals,
) -> Result<Value, EvalError> {
    let range = c.range.eval(scope, locals)?;
    let items: Vec<Value> = match range {
        Value::List(l) => l.to_vec(),
        Value::Map(m) => m
            .keyed_entries()
            .iter()
            .map(|(k, _)| k.to_value())
            .chain(m.entries().iter().map(|(k, _)| Value::Str(k.clone())))
            .collect(),
        other => return Err(type_err(format!("cannot iterate over a {}", other.kind()))),
    };
    let slot = |locals: &mut Locals, i: usize| -> Result<(), EvalError> {
        if i < locals.len() {
            Ok(())
        } else {
            Err(type_err(format!("unbound local slot {i}")))
        }
    };
    slot(locals, c.accu_slot)?;
    slot(locals, c.iter_slot)?;
    scope.burn((items.len() as u64).saturating_mul(c.body_cost))?;
    locals[c.accu_slot] = Ok(c.init.eval(scope, locals)?);
    for item in items {
        locals[c.iter_slot] = Ok(item);
        match c.cond.eval(scope, locals)? {
            Value::Bool(false) => break,
            Value::Bool(true) => {}
            other => return Err(type_err(format!("loop condition is a {}", other.kind()))),
        }
        // An error in one step is kept in the accumulator, not raised: a later element may
        // still decide the result (`[1, 2, 3].all(e, 6 / (2 - e) == 6)` is false).
        locals[c.accu_slot] = match c.step.eval(scope, locals) {
            Err(e) if e.is_fatal() => return Err(e),
            step => step,
        };
    }
    c.result.eval(scope, locals)
}

/// A number as a float (the lossy conversion CEL uses when comparing across kinds).
fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// An integer (`int` or `uint`) exactly.
fn as_i128(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::Uint(u) => Some(i128::from(*u)),
        _ => None,
    }
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Uint(_) | Value::Float(_))
}

/// Equality as CEL `==` sees it: numbers compare across int/uint/float by value (NaN equals
/// nothing); lists element-wise; maps by keys (`1` and `1u` are the same key) and values.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(_) | Value::Uint(_), Value::Int(_) | Value::Uint(_)) => {
            as_i128(a) == as_i128(b)
        }
        _ if is_number(a) && is_number(b) => as_f64(a) == as_f64(b),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.entries().len() == y.entries().len()
                && x.entries()
                    .iter()
                    .zip(y.entries())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && values_equal(v1, v2))
                && x.keyed_entries()
                    .iter()
                    .zip(y.keyed_entries())
                    .all(|((k1, v1), (k2, v2))| k1.same_key(*k2) && values_equal(v1, v2))
        }
        _ => a == b,
    }
}

/// Ordering for `<`, `<=`, `>`, `>=`. `None`: unordered (a NaN is involved), and every
/// ordering comparison is then false, as in IEEE 754 and CEL.
fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    let incomparable = || type_err(format!("cannot order {} and {}", a.kind(), b.kind()));
    match (a, b) {
        (Value::Int(_) | Value::Uint(_), Value::Int(_) | Value::Uint(_)) => {
            Ok(as_i128(a).zip(as_i128(b)).map(|(x, y)| x.cmp(&y)))
        }
        // Across int/uint and float, CEL compares as doubles (so 2^63 - 1 is not below 2^63).
        _ if is_number(a) && is_number(b) => Ok(as_f64(a)
            .zip(as_f64(b))
            .and_then(|(x, y)| x.partial_cmp(&y))),
        (Value::Str(x), Value::Str(y)) => Ok(Some(x.cmp(y))),
        (Value::Timestamp(x), Value::Timestamp(y)) | (Value::Duration(x), Value::Duration(y)) => {
            Ok(Some(x.cmp(y)))
        }
        (Value::Bool(x), Value::Bool(y)) => Ok(Some(x.cmp(y))),
        _ => Err(incomparable()),
    }
}

fn overflow(what: &str) -> EvalError {
    EvalError::Arithmetic(format!("integer overflow in {what}"))
}

fn uint_overflow(what: &str) -> EvalError {
    EvalError::Arithmetic(format!("uint overflow in {what}"))
}

fn divide_by_zero() -> EvalError {
    EvalError::Arithmetic("division by zero".into())
}

fn modulus_by_zero() -> EvalError {
    EvalError::Arithmetic("modulus by zero".into())
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
    // Ints and floats mix (a Fusebox convenience); uint mixes with nothing, as in CEL.
    let floats = || match (a, b) {
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            Some((as_f64(a).unwrap_or_default(), as_f64(b).unwrap_or_default()))
        }
        _ => None,
    };
    let ordered = |want: fn(Ordering) -> bool| -> Result<Value, EvalError> {
        Ok(Bool(compare(a, b)?.is_some_and(want)))
    };
    Ok(match op {
        BinOp::Eq => Bool(values_equal(a, b)),
        BinOp::Ne => Bool(!values_equal(a, b)),
        BinOp::Lt => ordered(|o| o == Ordering::Less)?,
        BinOp::Le => ordered(|o| o != Ordering::Greater)?,
        BinOp::Gt => ordered(|o| o == Ordering::Greater)?,
        BinOp::Ge => ordered(|o| o != Ordering::Less)?,
        BinOp::In => match b {
            List(items) => Bool(items.iter().any(|x| values_equal(a, x))),
            Map(m) => Bool(map_lookup(m, a).is_some()),
            _ => return Err(mismatch()),
        },
        BinOp::Add => match (a, b) {
            (Int(x), Int(y)) => Int(x.checked_add(*y).ok_or_else(|| overflow("addition"))?),
            (Uint(x), Uint(y)) => Uint(x.checked_add(*y).ok_or_else(|| uint_overflow("addition"))?),
            (Str(x), Str(y)) => Str(Arc::from(format!("{x}{y}"))),
            (List(x), List(y)) => List(x.iter().chain(y.iter()).cloned().collect()),
            (Timestamp(t), Duration(d)) | (Duration(d), Timestamp(t)) => {
                timestamp_value(i128::from(*t) + i128::from(*d))?
            }
            (Duration(x), Duration(y)) => duration_value(i128::from(*x) + i128::from(*y))?,
            _ => match floats() {
                Some((x, y)) => Float(x + y),
                None => return Err(mismatch()),
            },
        },
        BinOp::Sub => match (a, b) {
            (Int(x), Int(y)) => Int(x.checked_sub(*y).ok_or_else(|| overflow("subtraction"))?),
            (Uint(x), Uint(y)) => Uint(
                x.checked_sub(*y)
                    .ok_or_else(|| uint_overflow("subtraction"))?,
            ),
            (Timestamp(x), Timestamp(y)) => duration_value(i128::from(*x) - i128::from(*y))?,
            (Timestamp(t), Duration(d)) => timestamp_value(i128::from(*t) - i128::from(*d))?,
            (Duration(x), Duration(y)) => duration_value(i128::from(*x) - i128::from(*y))?,
            _ => match floats() {
                Some((x, y)) => Float(x - y),
                None => return Err(mismatch()),
            },
        },
        BinOp::Mul => match (a, b) {
            (Int(x), Int(y)) => Int(x
                .checked_mul(*y)
                .ok_or_else(|| overflow("multiplication"))?),
            (Uint(x), Uint(y)) => Uint(
                x.checked_mul(*y)
                    .ok_or_else(|| uint_overflow("multiplication"))?,
            ),
            _ => match floats() {
                Some((x, y)) => Float(x * y),
                None => return Err(mismatch()),
            },
        },
        BinOp::Div => match (a, b) {
            (Int(_), Int(0)) | (Uint(_), Uint(0)) => return Err(divide_by_zero()),
            (Int(x), Int(y)) => Int(x.checked_div(*y).ok_or_else(|| overflow("division"))?),
            (Uint(x), Uint(y)) => Uint(x / y),
            // IEEE 754, as in CEL: `1.0 / 0.0` is infinity, `0.0 / 0.0` is NaN.
            _ => match floats() {
                Some((x, y)) => Float(x / y),
                None => return Err(mismatch()),
            },
        },
        BinOp::Rem => match (a, b) {
            (Int(_), Int(0)) | (Uint(_), Uint(0)) => return Err(modulus_by_zero()),
            (Int(x), Int(y)) => Int(x.checked_rem(*y).ok_or_else(|| overflow("modulus"))?),
            (Uint(x), Uint(y)) => Uint(x % y),
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

/// A float that is exactly an integer, as an integer (for list indexes and map keys).
fn integral(x: f64) -> Option<i128> {
    // Beyond ±2^64 no list index or map key can match; the bound also keeps the cast exact.
    (x.fract() == 0.0 && x.abs() <= 1.8446744073709552e19).then_some(x as i128)
}

/// A map entry by CEL key: strings, bools, and numbers by value (`1`, `1u` and `1.0` find the
/// same key). `None` also for keys of other kinds.
fn map_lookup<'m>(m: &'m Map, key: &Value) -> Option<&'m Value> {
    let number = |n: i128| {
        if let Ok(i) = i64::try_from(n) {
            m.get_key(MapKey::Int(i))
        } else if let Ok(u) = u64::try_from(n) {
            m.get_key(MapKey::Uint(u))
        } else {
            None
        }
    };
    match key {
        Value::Str(k) => m.get(k),
        Value::Bool(b) => m.get_key(MapKey::Bool(*b)),
        Value::Int(i) => number(i128::from(*i)),
        Value::Uint(u) => number(i128::from(*u)),
        Value::Float(x) => integral(*x).and_then(number),
        _ => None,
    }
}

fn index(container: &Value, key: &Value) -> Result<Value, EvalError> {
    match (container, key) {
        (Value::List(items), Value::Int(_) | Value::Uint(_) | Value::Float(_)) => {
            let i = match key {
                Value::Float(x) => integral(*x).ok_or_else(|| {
                    EvalError::NoSuchKey(format!("list index {x} is not an integer"))
                })?,
                _ => as_i128(key).unwrap_or(-1),
            };
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    EvalError::NoSuchKey(format!("index {i} of a list of {}", items.len()))
                })
        }
        (
            Value::Map(m),
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Uint(_) | Value::Float(_),
        ) => map_lookup(m, key)
            .cloned()
            .ok_or_else(|| EvalError::NoSuchKey(key.to_string())),
        _ => Err(type_err(format!(
            "cannot index a {} with a {}",
            container.kind(),
            key.kind()
        ))),
    }
}

/// A parsed CEL time zone: `UTC`, an IANA name (`Europe/Paris`, `US/Central`) or a fixed
/// offset `+HH:MM` / `-HH:MM` (the sign may be left out: `02:00`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

/// Parses a time zone argument of the timestamp getters.
pub(crate) fn parse_zone(text: &str) -> Result<Zone, EvalError> {
    let bad = || {
        type_err(format!("unknown time zone {text:?} (use an IANA name such as \"Europe/Paris\", \"UTC\", or an offset such as \"+02:00\")"))
    };
    let offset = text
        .strip_prefix('+')
        .map(|r| (1, r))
        .or_else(|| text.strip_prefix('-').map(|r| (-1, r)))
        .unwrap_or((1, text));
    let (sign, rest) = offset;
    let b = rest.as_bytes();
    if b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        let num = |i: usize| i32::from(b[i] - b'0') * 10 + i32::from(b[i + 1] - b'0');
        let (h, m) = (num(0), num(3));
        if h > 23 || m > 59 {
            return Err(bad());
        }
        return FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .map(Zone::Fixed)
            .ok_or_else(bad);
    }
    chrono_tz::Tz::from_str(text)
        .map(Zone::Named)
        .map_err(|_| bad())
}

/// The local date and time of a timestamp, in UTC or in a zone.
fn local_time(v: &Value, zone: Option<&Value>) -> Result<NaiveDateTime, EvalError> {
    let t = match v {
        Value::Timestamp(t) => DateTime::<Utc>::from_timestamp_micros(*t)
            .ok_or_else(|| EvalError::Arithmetic("timestamp out of range".into()))?,
        other => {
            return Err(type_err(format!(
                "expected a timestamp, got {}",
                other.kind()
            )))
        }
    };
    Ok(match zone {
        None => t.naive_utc(),
        Some(z) => match parse_zone(string_arg(z)?)? {
            Zone::Fixed(offset) => t.with_timezone(&offset).naive_local(),
            Zone::Named(tz) => t.with_timezone(&tz).naive_local(),
        },
    })
}

fn string_arg(v: &Value) -> Result<&str, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(type_err(format!("expected a string, got {}", other.kind()))),
    }
}

/// `int(x)` for a float: truncation toward zero, defined only strictly inside the int range
/// (CEL: "(minInt, maxInt) non-inclusive"; `int(-9223372036854775808.0)` is a range error).
fn float_to_int(x: f64) -> Result<i64, EvalError> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if x.is_finite() && x > -LIMIT && x < LIMIT {
        Ok(x.trunc() as i64)
    } else {
        Err(EvalError::Arithmetic(format!(
            "{x} is out of the int range"
        )))
    }
}

/// `uint(x)` for a float: truncation, defined only strictly inside (-1, 2^64).
fn float_to_uint(x: f64) -> Result<u64, EvalError> {
    const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if x.is_finite() && x > -1.0 && x < LIMIT {
        Ok(x.trunc() as u64)
    } else {
        Err(EvalError::Arithmetic(format!(
            "{x} is out of the uint range"
        )))
    }
}

/// Parses a CEL timestamp string (RFC 3339) into microseconds, refusing what Fusebox cannot
/// represent exactly (sub-microsecond digits) and what CEL's range excludes.
pub(crate) fn parse_timestamp_text(s: &str) -> Result<Value, EvalError> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|_| type_err(format!("{s:?} is not an RFC 3339 timestamp")))?;
    if t.nanosecond() % 1000 != 0 {
        return Err(EvalError::Arithmetic(format!(
            "{s:?} has sub-microsecond digits; Fusebox timestamps have microsecond precision"
        )));
    }
    let micros = i128::from(t.timestamp()) * 1_000_000 + i128::from(t.nanosecond() / 1000);
    timestamp_value(micros)
}

fn call(func: Func, args: &[Value]) -> Result<Value, EvalError> {
    let Some(a) = args.first() else {
        return Err(type_err("function called without arguments".into()));
    };
    let zone = args.get(1);
    Ok(match func {
        Func::Size => Value::Int(match a {
            Value::Str(s) => s.chars().count() as i64,
            Value::List(l) => l.len() as i64,
            Value::Map(m) => m.len() as i64,
            other => return Err(type_err(format!("size() of a {}", other.kind()))),
        }),
        // The spellings CEL's reference implementation accepts.
        Func::Bool => Value::Bool(match a {
            Value::Bool(b) => *b,
            Value::Str(s) => match s.as_ref() {
                "1" | "t" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "false" | "FALSE" | "False" => false,
                _ => return Err(type_err(format!("cannot convert {s:?} to bool"))),
            },
            other => return Err(type_err(format!("bool() of a {}", other.kind()))),
        }),
        Func::Int => Value::Int(match a {
            Value::Int(i) => *i,
            Value::Uint(u) => i64::try_from(*u)
                .map_err(|_| EvalError::Arithmetic(format!("{u}u is out of the int range")))?,
            Value::Float(x) => float_to_int(*x)?,
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| type_err(format!("cannot convert {s:?} to int")))?,
            Value::Bool(b) => i64::from(*b),
            Value::Timestamp(t) => t.div_euclid(1_000_000),
            other => return Err(type_err(format!("int() of a {}", other.kind()))),
        }),
        Func::Uint => Value::Uint(match a {
            Value::Uint(u) => *u,
            Value::Int(i) => u64::try_from(*i)
                .map_err(|_| EvalError::Arithmetic(format!("{i} is out of the uint range")))?,
            Value::Float(x) => float_to_uint(*x)?,
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| type_err(format!("cannot convert {s:?} to uint")))?,
            other => return Err(type_err(format!("uint() of a {}", other.kind()))),
        }),
        Func::Double => Value::Float(match a {
            Value::Int(i) => *i as f64,
            Value::Uint(u) => *u as f64,
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
            Value::Uint(u) => Value::Str(Arc::from(u.to_string())),
            Value::Float(x) => Value::Str(Arc::from(x.to_string())),
            Value::Bool(b) => Value::Str(Arc::from(b.to_string())),
            Value::Timestamp(t) => Value::Str(Arc::from(format_timestamp(*t))),
            Value::Duration(d) => Value::Str(Arc::from(format_duration(*d))),
            Value::Null => Value::str("null"),
            other => return Err(type_err(format!("string() of a {}", other.kind()))),
        },
        Func::Timestamp => match a {
            Value::Timestamp(t) => timestamp_value(i128::from(*t))?,
            // Seconds since the Unix epoch.
            Value::Int(secs) => timestamp_value(i128::from(*secs) * 1_000_000)?,
            Value::Str(s) => parse_timestamp_text(s)?,
            other => return Err(type_err(format!("timestamp() of a {}", other.kind()))),
        },
        Func::Duration => match a {
            Value::Duration(d) => duration_value(i128::from(*d))?,
            Value::Str(s) => parse_duration(s)?,
            other => return Err(type_err(format!("duration() of a {}", other.kind()))),
        },
        Func::Dyn => a.clone(),
        Func::StartsWith => Value::Bool(string_arg(a)?.starts_with(string_arg(arg(args, 1)?)?)),
        Func::EndsWith => Value::Bool(string_arg(a)?.ends_with(string_arg(arg(args, 1)?)?)),
        Func::Contains => Value::Bool(string_arg(a)?.contains(string_arg(arg(args, 1)?)?)),
        Func::LowerAscii => Value::Str(Arc::from(string_arg(a)?.to_ascii_lowercase())),
        Func::UpperAscii => Value::Str(Arc::from(string_arg(a)?.to_ascii_uppercase())),
        // On a duration, the getters convert the whole duration (`duration('3730s')
        // .getMinutes()` is 62); `getMilliseconds` is the millisecond part, as in CEL.
        Func::GetHours | Func::GetMinutes | Func::GetSeconds | Func::GetMilliseconds
            if matches!(a, Value::Duration(_)) =>
        {
            let Value::Duration(d) = a else {
                return Err(type_err("expected a duration".into()));
            };
            if zone.is_some() {
                return Err(type_err("duration getters take no time zone".into()));
            }
            Value::Int(match func {
                Func::GetHours => d / 3_600_000_000,
                Func::GetMinutes => d / 60_000_000,
                Func::GetSeconds => d / 1_000_000,
                _ => (d % 1_000_000) / 1000,
            })
        }
        Func::GetHours => Value::Int(i64::from(local_time(a, zone)?.hour())),
        Func::GetMinutes => Value::Int(i64::from(local_time(a, zone)?.minute())),
        Func::GetSeconds => Value::Int(i64::from(local_time(a, zone)?.second())),
        Func::GetMilliseconds => {
            Value::Int(i64::from(local_time(a, zone)?.nanosecond() / 1_000_000))
        }
        Func::GetDayOfWeek => Value::Int(i64::from(
            local_time(a, zone)?.weekday().num_days_from_sunday(),
        )),
        Func::GetDate => Value::Int(i64::from(local_time(a, zone)?.day())),
        Func::GetDayOfMonth => Value::Int(i64::from(local_time(a, zone)?.day0())),
        Func::GetDayOfYear => Value::Int(i64::from(local_time(a, zone)?.ordinal0())),
        Func::GetMonth => Value::Int(i64::from(local_time(a, zone)?.month0())),
        Func::GetFullYear => Value::Int(i64::from(local_time(a, zone)?.year())),
    })
}

fn arg(args: &[Value], i: usize) -> Result<&Value, EvalError> {
    args.get(i)
        .ok_or_else(|| type_err(format!("missing argument {}", i + 1)))
}

/// Checks that an expression's result can leave the expression (become an effect argument,
/// an attribute, a counter, a chained event's property): maps with non-string keys cannot,
/// since JSON object keys are strings.
pub(crate) fn check_output(v: &Value) -> Result<(), EvalError> {
    match v {
        Value::List(items) => items.iter().try_for_each(check_output),
        Value::Map(m) => {
            if let Some((k, _)) = m.keyed_entries().first() {
                return Err(type_err(format!(
                    "a map with a non-string key ({}) cannot be a result: JSON object keys are strings (convert keys with string(...))",
                    k.to_value()
                )));
            }
            m.entries().iter().try_for_each(|(_, v)| check_output(v))
        }
        _ => Ok(()),
    }
}
