//! The validated filter tree: what a segment means, independent of how it is computed.
//!
//! Values here are already resolved against the customer schema (attribute ids and types are
//! known, literals have the column's type), so the planner, the executor and the oracle never
//! re-check names or types.
//!
//! ## Three-valued semantics
//! Every predicate is TRUE, FALSE or UNKNOWN for a customer:
//! - an attribute predicate on a null attribute is UNKNOWN — except `exists` / `missing`,
//!   which are always TRUE or FALSE; a NaN float counts as null;
//! - event predicates and `in_segment` are never UNKNOWN (no events means a count of 0);
//! - `and` / `or` / `not` follow Kleene logic: FALSE wins an `and`, TRUE wins an `or`, and
//!   `not UNKNOWN` is UNKNOWN;
//! - a customer is a member of a segment only when its filter is TRUE.
//!
//! So `not: {attribute: points, gt: 100}` does *not* include customers whose `points` is null,
//! while `not: {in_segment: vip}` includes everyone who is not a member of `vip` (membership is
//! two-valued).

use std::fmt;
use std::sync::Arc;

use fusebox_engine::customers::AttrId;
use fusebox_engine::value::{AttrType, Value};

/// Microseconds per unit of the duration syntax.
const UNITS: &[(&str, i64)] = &[
    ("w", 7 * 86_400_000_000),
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
];

/// Parses a duration such as `30d`, `2w`, `12h`, `90m`, `45s` or `1d12h` into microseconds.
/// Returns `None` for anything else (including zero or negative durations).
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, micros) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(*micros)?)?;
    }
    (total > 0).then_some(total)
}

/// Formats microseconds back in the duration syntax (largest exact unit).
pub fn format_duration(micros: i64) -> String {
    for (unit, m) in UNITS {
        if micros % m == 0 {
            return format!("{}{unit}", micros / m);
        }
    }
    format!("{micros}us")
}

/// A point in time: absolute, or relative to the computation's `as_of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeRef {
    /// Microseconds since the epoch, UTC.
    Abs(i64),
    /// `as_of + offset` (offset in microseconds; negative is the past), written `now-30d`.
    Rel(i64),
}

impl TimeRef {
    /// Resolves against `as_of`.
    pub fn at(self, as_of: i64) -> i64 {
        match self {
            TimeRef::Abs(t) => t,
            TimeRef::Rel(d) => as_of.saturating_add(d),
        }
    }

    /// Whether the value depends on `as_of`.
    pub fn is_relative(self) -> bool {
        matches!(self, TimeRef::Rel(_))
    }

    /// Parses `now`, `now-30d`, `now+1h` or an RFC 3339 timestamp.
    pub fn parse(text: &str) -> Option<TimeRef> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("now") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Some(TimeRef::Rel(0));
            }
            if let Some(d) = rest.strip_prefix('-') {
                return parse_duration(d.trim()).map(|d| TimeRef::Rel(-d));
            }
            if let Some(d) = rest.strip_prefix('+') {
                return parse_duration(d.trim()).map(TimeRef::Rel);
            }
            return None;
        }
        fusebox_engine::value::parse_timestamp(t).map(TimeRef::Abs)
    }
}

impl fmt::Display for TimeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeRef::Abs(t) => f.write_str(&fusebox_engine::value::format_timestamp(t)),
            TimeRef::Rel(0) => f.write_str("now"),
            TimeRef::Rel(d) if d < 0 => write!(f, "now-{}", format_duration(-d)),
            TimeRef::Rel(d) => write!(f, "now+{}", format_duration(d)),
        }
    }
}

/// A literal compared with an attribute or an event property.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text.
    Str(Arc<str>),
    /// Boolean.
    Bool(bool),
    /// A point in time (timestamp attributes only).
    Time(TimeRef),
}

impl Scalar {
    /// The numeric value of a number literal.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Float(x) => Some(x),
            _ => None,
        }
    }

    fn is_relative(&self) -> bool {
        matches!(self, Scalar::Time(t) if t.is_relative())
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Time(t) => write!(f, "{t}"),
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator that is TRUE exactly where this one is FALSE (for non-null operands).
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    /// The YAML key.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }

    /// Applies the operator to an ordering.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// What a predicate asks of one value.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueOp {
    /// Compare with a literal.
    Cmp(CmpOp, Scalar),
    /// `low <= v <= high` (inclusive).
    Between(Scalar, Scalar),
    /// Equal to one of the literals (for string lists: contains one of them).
    In(Vec<Scalar>),
    /// Substring (strings) or element (string lists).
    Contains(Arc<str>),
    /// Prefix (strings).
    StartsWith(Arc<str>),
    /// The value is present (never UNKNOWN).
    Exists,
    /// The value is null / absent (never UNKNOWN).
    Missing,
}

impl ValueOp {
    /// Whether evaluating depends on `as_of` (`now-30d` literals).
    pub fn is_relative(&self) -> bool {
        match self {
            ValueOp::Cmp(_, s) => s.is_relative(),
            ValueOp::Between(a, b) => a.is_relative() || b.is_relative(),
            ValueOp::In(items) => items.iter().any(Scalar::is_relative),
            _ => false,
        }
    }
}

impl fmt::Display for ValueOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueOp::Cmp(op, s) => write!(f, "{} {s}", op.name()),
            ValueOp::Between(a, b) => write!(f, "between {a} and {b}"),
            ValueOp::In(items) => {
                f.write_str("in [")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str("]")
            }
            ValueOp::Contains(s) => write!(f, "contains {s:?}"),
            ValueOp::StartsWith(s) => write!(f, "starts_with {s:?}"),
            ValueOp::Exists => f.write_str("exists"),
            ValueOp::Missing => f.write_str("missing"),
        }
    }
}

/// A predicate on a customer attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrPred {
    /// Column in the customer schema.
    pub attr: AttrId,
    /// Column name (for display).
    pub name: Arc<str>,
    /// Column type; literals in `op` fit it.
    pub ty: AttrType,
    /// The test.
    pub op: ValueOp,
}

/// A predicate on one property of an event (inside an event predicate's `where`).
#[derive(Clone, Debug, PartialEq)]
pub struct PropPred {
    /// Property name.
    pub name: Arc<str>,
    /// The test; numbers compare across int and float, mismatched kinds are UNKNOWN.
    pub op: ValueOp,
}

/// A numeric condition on a count or a sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumCond {
    /// `>= x`
    Ge(f64),
    /// `<= x`
    Le(f64),
    /// `== x`
    Eq(f64),
    /// `a <= v <= b`
    Between(f64, f64),
}

impl NumCond {
    /// Whether `v` satisfies the condition.
    pub fn holds(self, v: f64) -> bool {
        match self {
            NumCond::Ge(x) => v >= x,
            NumCond::Le(x) => v <= x,
            NumCond::Eq(x) => v == x,
            NumCond::Between(a, b) => a <= v && v <= b,
        }
    }
}

impl fmt::Display for NumCond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumCond::Ge(x) => write!(f, ">= {x}"),
            NumCond::Le(x) => write!(f, "<= {x}"),
            NumCond::Eq(x) => write!(f, "== {x}"),
            NumCond::Between(a, b) => write!(f, "between {a} and {b}"),
        }
    }
}

/// Which events an event predicate looks at, besides type and properties. Events after
/// `as_of` are never seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// Every event up to `as_of`.
    All,
    /// `as_of - d < ts <= as_of` ("in the last 30 days").
    Last(i64),
    /// `from <= ts < to` (either bound optional), and `ts <= as_of`.
    Range(Option<i64>, Option<i64>),
}

impl Window {
    /// The earliest timestamp inside the window at `as_of` (`None`: unbounded below): the
    /// lower bound of [`Self::contains`] as an inclusive value.
    pub fn start(self, as_of: i64) -> Option<i64> {
        match self {
            Window::All => None,
            Window::Last(d) => Some(as_of.saturating_sub(d).saturating_add(1)),
            Window::Range(from, _) => from,
        }
    }

    /// Whether an event at `ts` is inside the window.
    pub fn contains(self, ts: i64, as_of: i64) -> bool {
        if ts > as_of {
            return false;
        }
        match self {
            Window::All => true,
            Window::Last(d) => ts > as_of.saturating_sub(d),
            Window::Range(from, to) => from.is_none_or(|f| ts >= f) && to.is_none_or(|t| ts < t),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fusebox_engine::value::format_timestamp as ts;
        match *self {
            Window::All => f.write_str("ever"),
            Window::Last(d) => write!(f, "last {}", format_duration(d)),
            Window::Range(a, b) => write!(
                f,
                "[{}, {})",
                a.map_or("-inf".into(), ts),
                b.map_or("+inf".into(), ts)
            ),
        }
    }
}

/// What an event predicate asks of the matching events.
#[derive(Clone, Debug, PartialEq)]
pub enum EventTest {
    /// Count (and/or sum of a property) conditions; with neither, "at least once".
    Performed {
        /// Condition on the number of matching events.
        count: Option<NumCond>,
        /// Condition on the sum of a numeric property (non-numbers are skipped).
        sum: Option<(Arc<str>, NumCond)>,
    },
    /// The earliest matching event is before (`true`) / after (`false`) the time.
    First {
        /// `before` (`<`) if true, `after` (`>`) if false.
        before: bool,
        /// The bound.
        at: TimeRef,
    },
    /// The latest matching event is before / after the time.
    Last {
        /// `before` (`<`) if true, `after` (`>`) if false.
        before: bool,
        /// The bound.
        at: TimeRef,
    },
}

/// A predicate over a customer's events.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPred {
    /// Event type.
    pub event_type: Arc<str>,
    /// Property filters an event must pass (all TRUE) to count.
    pub filters: Vec<PropPred>,
    /// Time window.
    pub window: Window,
    /// The test.
    pub test: EventTest,
}

impl EventPred {
    /// Whether evaluating depends on `as_of` beyond "events after `as_of` are invisible".
    pub fn is_relative(&self) -> bool {
        matches!(self.window, Window::Last(_))
            || matches!(self.test, EventTest::First { at, .. } | EventTest::Last { at, .. } if at.is_relative())
            || self.filters.iter().any(|p| p.op.is_relative())
    }
}

/// A filter tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// All children TRUE.
    And(Vec<Filter>),
    /// Any child TRUE.
    Or(Vec<Filter>),
    /// Kleene negation.
    Not(Box<Filter>),
    /// Attribute predicate.
    Attr(AttrPred),
    /// Event predicate.
    Event(EventPred),
    /// Member of another segment of the group.
    InSegment(Arc<str>),
}

impl Filter {
    /// Ids of the segments this filter references, in order of appearance.
    pub fn references(&self, out: &mut Vec<Arc<str>>) {
        match self {
            Filter::And(c) | Filter::Or(c) => c.iter().for_each(|f| f.references(out)),
            Filter::Not(f) => f.references(out),
            Filter::InSegment(id) => out.push(id.clone()),
            Filter::Attr(_) | Filter::Event(_) => {}
        }
    }

    /// Appends the names of the event properties this filter reads (in `where` filters and
    /// sums), in order of appearance.
    pub fn event_properties(&self, out: &mut Vec<Arc<str>>) {
        match self {
            Filter::And(c) | Filter::Or(c) => c.iter().for_each(|f| f.event_properties(out)),
            Filter::Not(f) => f.event_properties(out),
            Filter::Event(e) => {
                out.extend(e.filters.iter().map(|p| p.name.clone()));
                if let EventTest::Performed {
                    sum: Some((name, _)),
                    ..
                } = &e.test
                {
                    out.push(name.clone());
                }
            }
            Filter::Attr(_) | Filter::InSegment(_) => {}
        }
    }
}

/// One segment of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Unique id within the group.
    pub id: Arc<str>,
    /// Who owns it (notified on failures).
    pub owner: Arc<str>,
    /// Membership filter.
    pub filter: Filter,
}

/// Segments computed together. Invariants (established by [`crate::config`]): ids are unique,
/// every `in_segment` names a segment of the group, and references form no cycle.
#[derive(Clone, Debug, Default)]
pub struct SegmentGroup {
    /// The segments, in file order.
    pub segments: Vec<Segment>,
    /// Warnings found while validating (unknown event types, …).
    pub warnings: Vec<fusebox_engine::config::Diagnostic>,
}

impl SegmentGroup {
    /// The event properties the group reads, sorted and without repeats: a store holding only
    /// these gives every segment the same members as one holding all of them.
    pub fn event_properties(&self) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        for s in &self.segments {
            s.filter.event_properties(&mut out);
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Kleene OR over optional truth values.
fn any3(items: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for v in items {
        match v {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

fn compare(value: &Value, lit: &Scalar, as_of: i64) -> Option<std::cmp::Ordering> {
    match (value, lit) {
        (Value::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Scalar::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Scalar::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Scalar::Float(b)) => a.partial_cmp(b),
        (Value::Str(a), Scalar::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
        (Value::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Value::Timestamp(a), Scalar::Time(t)) => Some(a.cmp(&t.at(as_of))),
        _ => None,
    }
}

impl ValueOp {
    /// The three-valued result of this test on one value (`None` = UNKNOWN): null and NaN are
    /// UNKNOWN except for `exists`/`missing`; a literal of another kind is UNKNOWN too.
    ///
    /// This is the single definition of predicate semantics; the column kernels of
    /// [`crate::kernels`] are tested against it.
    pub fn test(&self, value: &Value, as_of: i64) -> Option<bool> {
        let null = matches!(value, Value::Null) || matches!(value, Value::Float(x) if x.is_nan());
        match self {
            ValueOp::Exists => return Some(!null),
            ValueOp::Missing => return Some(null),
            _ if null => return None,
            _ => {}
        }
        match self {
            ValueOp::Cmp(op, lit) => compare(value, lit, as_of).map(|o| op.holds(o)),
            ValueOp::Between(a, b) => {
                let lo = compare(value, a, as_of).map(|o| o.is_ge());
                let hi = compare(value, b, as_of).map(|o| o.is_le());
                match (lo, hi) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }
            }
            ValueOp::In(items) => match value {
                Value::List(list) => Some(items.iter().any(|s| {
                    list.iter()
                        .any(|v| compare(v, s, as_of) == Some(std::cmp::Ordering::Equal))
                })),
                _ => any3(
                    items
                        .iter()
                        .map(|s| compare(value, s, as_of).map(|o| o.is_eq())),
                ),
            },
            ValueOp::Contains(needle) => match value {
                Value::Str(s) => Some(s.contains(needle.as_ref())),
                Value::List(list) => Some(
                    list.iter()
                        .any(|v| matches!(v, Value::Str(s) if s.as_ref() == needle.as_ref())),
                ),
                _ => None,
            },
            ValueOp::StartsWith(prefix) => match value {
                Value::Str(s) => Some(s.starts_with(prefix.as_ref())),
                _ => None,
            },
            ValueOp::Exists | ValueOp::Missing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("30d"), Some(30 * 86_400_000_000));
        assert_eq!(parse_duration("1d12h"), Some(36 * 3_600_000_000));
        assert_eq!(parse_duration("0d"), None);
        assert_eq!(parse_duration("30 days"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(format_duration(14 * 86_400_000_000), "2w");
        assert_eq!(
            TimeRef::parse("now-90d"),
            Some(TimeRef::Rel(-90 * 86_400_000_000))
        );
        assert_eq!(TimeRef::parse("now"), Some(TimeRef::Rel(0)));
        assert_eq!(TimeRef::parse("tomorrow"), None);
        assert!(matches!(
            TimeRef::parse("2026-03-01T00:00:00Z"),
            Some(TimeRef::Abs(_))
        ));
    }

    #[test]
    fn windows_exclude_the_future_and_respect_bounds() {
        let day = 86_400_000_000;
        let w = Window::Last(30 * day);
        assert!(w.contains(100 * day, 100 * day));
        assert!(!w.contains(70 * day, 100 * day));
        assert!(w.contains(70 * day + 1, 100 * day));
        assert!(!w.contains(100 * day + 1, 100 * day));
        let r = Window::Range(Some(10), Some(20));
        assert!(r.contains(10, 100) && !r.contains(20, 100) && !r.contains(15, 12));
    }

    #[test]
    fn value_tests_are_three_valued() {
        let gt = ValueOp::Cmp(CmpOp::Gt, Scalar::Int(5));
        assert_eq!(gt.test(&Value::Int(6), 0), Some(true));
        assert_eq!(gt.test(&Value::Float(4.5), 0), Some(false));
        assert_eq!(gt.test(&Value::Null, 0), None);
        assert_eq!(gt.test(&Value::Float(f64::NAN), 0), None);
        assert_eq!(gt.test(&Value::str("x"), 0), None);
        assert_eq!(ValueOp::Missing.test(&Value::Null, 0), Some(true));
        assert_eq!(
            ValueOp::Exists.test(&Value::Float(f64::NAN), 0),
            Some(false)
        );
        let tags = Value::List(vec![Value::str("a"), Value::str("b")].into());
        assert_eq!(ValueOp::Contains("b".into()).test(&tags, 0), Some(true));
        assert_eq!(
            ValueOp::In(vec![Scalar::Str("z".into()), Scalar::Str("a".into())]).test(&tags, 0),
            Some(true)
        );
        let old = ValueOp::Cmp(CmpOp::Lt, Scalar::Time(TimeRef::Rel(-10)));
        assert_eq!(old.test(&Value::Timestamp(89), 100), Some(true));
        assert_eq!(old.test(&Value::Timestamp(90), 100), Some(false));
    }
}
