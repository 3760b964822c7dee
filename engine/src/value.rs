//! Dynamic values shared by customer attributes, event properties and expressions.
//!
//! A [`Value`] is cheap to clone: strings, lists and maps sit behind `Arc`, so passing a value
//! from storage into an expression or an effect never copies its payload.
//!
//! Invariants:
//! - Timestamps are microseconds since the Unix epoch, UTC; durations are microseconds.
//! - [`Map`] keys are unique and sorted, so lookups are a binary search and two maps with the
//!   same entries compare (and serialise) identically — output is deterministic.
//! - Equality is structural; `Int(1) != Float(1.0)` here, while expression-level comparisons
//!   (`==` in CEL) compare numbers across the two kinds (see `expr::eval`).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// The type of a customer attribute column. Every attribute has exactly one type; `null` is a
/// value of every type ("unknown / not set").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// `true` / `false`.
    Bool,
    /// A point in time (UTC, microsecond precision).
    Timestamp,
    /// A list of strings (tags, interests, …).
    StringList,
}

impl AttrType {
    /// Whether `value` may be stored in an attribute of this type (`null` always may).
    /// Integers widen into float attributes; nothing narrows.
    pub fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (_, Value::Null)
                | (AttrType::String, Value::Str(_))
                | (AttrType::Int, Value::Int(_))
                | (AttrType::Float, Value::Float(_) | Value::Int(_))
                | (AttrType::Bool, Value::Bool(_))
                | (AttrType::Timestamp, Value::Timestamp(_))
                | (AttrType::StringList, Value::List(_))
        )
    }

    /// The canonical name used in configuration and error messages.
    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Int => "int",
            AttrType::Float => "float",
            AttrType::Bool => "bool",
            AttrType::Timestamp => "timestamp",
            AttrType::StringList => "string list",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dynamically typed value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Absent / unknown.
    #[default]
    Null,
    /// Boolean.
    Bool(bool),
    /// Signed 64-bit integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// UTF-8 string.
    Str(Arc<str>),
    /// Microseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// A span of time in microseconds.
    Duration(i64),
    /// An ordered list.
    List(Arc<[Value]>),
    /// A string-keyed map (JSON object).
    Map(Arc<Map>),
}

impl Value {
    /// Builds a string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// The name of this value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// Bit-for-bit identity: like `==`, but floats compare by their bits, so `NaN` is identical
    /// to itself. Validation uses this, so a NaN cannot make a read look forever stale.
    pub fn identical(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.identical(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.entries()
                        .iter()
                        .zip(b.entries())
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.identical(v2))
            }
            _ => self == other,
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Converts a JSON value. Integers that fit `i64` become `Int`, other numbers `Float`;
    /// objects become sorted [`Map`]s.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(obj) => Value::Map(Arc::new(Map::from_entries(
                obj.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))),
            ))),
        }
    }
}

/// Formats a microsecond UTC timestamp as RFC 3339 (`2026-03-01T12:00:00Z`, with fractional
/// seconds only when non-zero).
pub fn format_timestamp(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("{micros}us"),
    }
}

/// The earliest timestamp Fusebox represents: `0001-01-01T00:00:00Z` (CEL's lower bound).
pub const MIN_TIMESTAMP: i64 = -62_135_596_800_000_000;

/// The latest timestamp Fusebox represents: `9999-12-31T23:59:59.999999Z` (the last
/// microsecond RFC 3339 can write, CEL's upper bound).
pub const MAX_TIMESTAMP: i64 = 253_402_300_799_999_999;

/// Whether `micros` lies in [`MIN_TIMESTAMP`]`..=`[`MAX_TIMESTAMP`]. Every reader refuses
/// timestamps outside it, so every timestamp in a run formats as RFC 3339 and round-trips.
pub fn timestamp_in_range(micros: i64) -> bool {
    (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&micros)
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch (UTC); `None` if it is
/// malformed, finer than a microsecond, or outside [`timestamp_in_range`].
pub fn parse_timestamp(text: &str) -> Option<i64> {
    parse_timestamp_explained(text).ok()
}

/// Like [`parse_timestamp`], with the reason a text is refused (for error messages).
pub fn parse_timestamp_explained(text: &str) -> Result<i64, String> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("{text:?} is not an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z)"))?
        .with_timezone(&Utc);
    if t.timestamp_subsec_nanos() % 1000 != 0 {
        return Err(format!(
            "{text:?} has digits finer than a microsecond, which Fusebox does not keep"
        ));
    }
    check_timestamp_range(t.timestamp_micros()).map_err(|e| format!("{text:?} {e}"))
}

/// `Ok(micros)` if [`timestamp_in_range`], else why not.
pub fn check_timestamp_range(micros: i64) -> Result<i64, String> {
    if timestamp_in_range(micros) {
        Ok(micros)
    } else {
        Err(
            "is outside the supported range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
                .to_string(),
        )
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
            Value::Duration(d) => write!(f, "{}s", *d as f64 / 1e6),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.entries().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(text) => s.serialize_str(text),
            Value::Timestamp(t) => s.serialize_str(&format_timestamp(*t)),
            Value::Duration(d) => s.serialize_str(&format!("{}s", *d as f64 / 1e6)),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(map) => map.serialize(s),
        }
    }
}

/// A string-keyed map with sorted, unique keys.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Map {
    entries: Vec<(Arc<str>, Value)>,
}

impl Map {
    /// Builds a map; on duplicate keys the last one wins (as in JSON parsers).
    pub fn from_entries(entries: impl IntoIterator<Item = (Arc<str>, Value)>) -> Map {
        let mut entries: Vec<(Arc<str>, Value)> = entries.into_iter().collect();
        // Stable sort keeps insertion order among equal keys, so "last wins" is well defined.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Arc<str>, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match deduped.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => deduped.push((k, v)),
            }
        }
        Map { entries: deduped }
    }

    /// Looks a key up.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The entries in key order.
    pub fn entries(&self) -> &[(Arc<str>, Value)] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_sorted_and_last_duplicate_wins() {
        let m = Map::from_entries([
            (Arc::from("b"), Value::Int(1)),
            (Arc::from("a"), Value::Int(2)),
            (Arc::from("b"), Value::Int(3)),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.entries()[0].0.as_ref(), "a");
        assert_eq!(m.get("b"), Some(&Value::Int(3)));
        assert_eq!(m.get("c"), None);
    }

    #[test]
    fn json_numbers_keep_their_kind() {
        let v = Value::from_json(&serde_json::json!({"n": 3, "x": 2.5, "t": [true]}));
        let Value::Map(m) = v else {
            panic!("expected map")
        };
        assert_eq!(m.get("n"), Some(&Value::Int(3)));
        assert_eq!(m.get("x"), Some(&Value::Float(2.5)));
        assert_eq!(
            serde_json::to_string(&Value::Map(m)).unwrap(),
            r#"{"n":3,"t":[true],"x":2.5}"#
        );
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = parse_timestamp("2026-03-01T12:00:00.5+01:00").unwrap();
        assert_eq!(format_timestamp(t), "2026-03-01T11:00:00.500Z");
        assert_eq!(parse_timestamp("yesterday"), None);
        // Sub-microsecond digits would be dropped silently: refused instead.
        assert_eq!(parse_timestamp("2026-03-01T12:00:00.0000001Z"), None);
        assert!(parse_timestamp("2026-03-01T12:00:00.000001000Z").is_some());
        // RFC 3339 can write year 0; CEL (and Fusebox) start at year 1.
        assert_eq!(parse_timestamp("0000-12-31T23:59:59Z"), None);
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), Some(MIN_TIMESTAMP));
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59.999999Z"),
            Some(MAX_TIMESTAMP)
        );
        assert_eq!(
            format_timestamp(MAX_TIMESTAMP),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn attribute_types_accept_only_their_values() {
        assert!(AttrType::Float.accepts(&Value::Int(1)));
        assert!(!AttrType::Int.accepts(&Value::Float(1.0)));
        assert!(AttrType::Bool.accepts(&Value::Null));
        assert!(!AttrType::String.accepts(&Value::Bool(true)));
    }
}
