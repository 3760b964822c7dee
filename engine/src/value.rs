//! Dynamic values shared by customer attributes, event properties and expressions.
//!
//! A [`Value`] is cheap to clone: strings, lists and maps sit behind `Arc`, so passing a value
//! from storage into an expression or an effect never copies its payload.
//!
//! Invariants:
//! - Timestamps are microseconds since the Unix epoch, UTC; durations are microseconds.
//!   (Expressions keep the ones they produce within CEL's ranges, see `expr`; values read
//!   from data are taken as they are.)
//! - [`Map`] keys are unique and sorted, so lookups are a binary search and two maps with the
//!   same entries compare (and serialise) identically — output is deterministic. Maps read
//!   from JSON (event properties, effect arguments) have string keys only; a CEL map literal
//!   may also have `bool`, `int` and `uint` keys ([`MapKey`]), kept apart from the string
//!   keys so that every string-keyed use of a map is unchanged. Such a map never leaves an
//!   expression (`CompiledExpr::eval` refuses it as a result), because JSON keys are strings.
//! - Equality is structural; `Int(1) != Float(1.0)` and `Int(1) != Uint(1)` here, while
//!   expression-level comparisons (`==` in CEL) compare numbers across kinds (see `expr::eval`).
//!
//! # JSON serialisation (outputs: effect arguments, outcomes, customers written back)
//! Every value serialises to JSON without loss of meaning, and nothing silently becomes
//! `null`:
//! - `Int` and `Uint` are JSON numbers; a finite `Float` is a JSON number.
//! - A non-finite `Float` (from data, e.g. a Parquet float column, or from CEL arithmetic such
//!   as `1.0 / 0.0`, which is IEEE infinity as in CEL) has no JSON number: it serialises as
//!   the string `"NaN"`, `"Infinity"` or `"-Infinity"` (the spelling JavaScript and most JSON
//!   producers use), never as `null`. Reading such JSON back gives a string, not a float.
//! - Timestamps are RFC 3339 strings (UTC), durations are CEL duration strings (`"90s"`,
//!   `"1.5s"`).
//! - Map keys are strings. A map with non-string keys cannot be an expression's result, so
//!   it does not reach an output; should one be serialised anyway, its keys are written as
//!   their decimal / `true` / `false` text, and a key that would then repeat a string key of
//!   the same map is a serialisation error, never a duplicate or a dropped entry.

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
    /// Unsigned 64-bit integer (CEL `uint`: only from expressions, e.g. `5u`, `uint(x)`).
    Uint(u64),
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
            Value::Uint(_) => "uint",
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
                a.entries.len() == b.entries.len()
                    && a.keyed.len() == b.keyed.len()
                    && a.entries
                        .iter()
                        .zip(&b.entries)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.identical(v2))
                    && a.keyed
                        .iter()
                        .zip(&b.keyed)
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

/// Formats a microsecond duration the way CEL writes durations: seconds, with the fractional
/// digits that are needed (`90s`, `1.5s`, `-0.000001s`). Exact for every `i64`.
pub fn format_duration(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let (secs, frac) = (abs / 1_000_000, abs % 1_000_000);
    if frac == 0 {
        format!("{sign}{secs}s")
    } else {
        let digits = format!("{frac:06}");
        format!("{sign}{secs}.{}s", digits.trim_end_matches('0'))
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
            Value::Uint(u) => write!(f, "{u}u"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Timestamp(t) => f.write_str(&format_timestamp(*t)),
            Value::Duration(d) => f.write_str(&format_duration(*d)),
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
                let mut first = true;
                for (k, v) in &map.keyed {
                    if !first {
                        f.write_str(", ")?;
                    }
                    first = false;
                    write!(f, "{k}: {v}")?;
                }
                for (k, v) in &map.entries {
                    if !first {
                        f.write_str(", ")?;
                    }
                    first = false;
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
            Value::Uint(u) => s.serialize_u64(*u),
            Value::Float(x) if x.is_finite() => s.serialize_f64(*x),
            // JSON has no number for these: an explicit string, never serde_json's `null`.
            Value::Float(x) if x.is_nan() => s.serialize_str("NaN"),
            Value::Float(x) if *x > 0.0 => s.serialize_str("Infinity"),
            Value::Float(_) => s.serialize_str("-Infinity"),
            Value::Str(text) => s.serialize_str(text),
            Value::Timestamp(t) => s.serialize_str(&format_timestamp(*t)),
            Value::Duration(d) => s.serialize_str(&format_duration(*d)),
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

/// A map key other than a string: CEL map literals may use `bool`, `int` and `uint` keys.
///
/// Numeric keys are compared by value across `int` and `uint` (CEL's heterogeneous equality):
/// `1` and `1u` are the same key, so a map never holds both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKey {
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer key.
    Int(i64),
    /// An unsigned integer key.
    Uint(u64),
}

impl MapKey {
    /// The key as a value.
    pub fn to_value(self) -> Value {
        match self {
            MapKey::Bool(b) => Value::Bool(b),
            MapKey::Int(i) => Value::Int(i),
            MapKey::Uint(u) => Value::Uint(u),
        }
    }

    /// Sort order: `false`, `true`, then numbers by value (an `int` before an equal `uint`,
    /// which cannot occur in one map).
    fn rank(self) -> (u8, i128) {
        match self {
            MapKey::Bool(b) => (0, i128::from(b)),
            MapKey::Int(i) => (1, i128::from(i)),
            MapKey::Uint(u) => (1, i128::from(u)),
        }
    }

    /// Whether two keys are the same CEL key (`1 == 1u`).
    pub fn same_key(self, other: MapKey) -> bool {
        self.rank() == other.rank()
    }
}

impl fmt::Display for MapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapKey::Bool(b) => write!(f, "{b}"),
            MapKey::Int(i) => write!(f, "{i}"),
            MapKey::Uint(u) => write!(f, "{u}"),
        }
    }
}

/// A map with sorted, unique keys: string keys (every map read from JSON) and, for CEL map
/// literals only, [`MapKey`]s, kept in a separate sorted list.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Map {
    entries: Vec<(Arc<str>, Value)>,
    keyed: Vec<(MapKey, Value)>,
}

/// Why a CEL map literal cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapBuildError {
    /// A key of a kind maps do not accept (CEL map keys are `bool`, `int`, `uint`, `string`).
    UnsupportedKey(&'static str),
    /// The same key twice (`{1: 'a', 1u: 'b'}` repeats a key too).
    RepeatedKey(String),
}

impl fmt::Display for MapBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapBuildError::UnsupportedKey(kind) => write!(
                f,
                "unsupported map key type {kind} (keys are bool, int, uint or string)"
            ),
            MapBuildError::RepeatedKey(k) => write!(f, "repeated map key {k}"),
        }
    }
}

impl Map {
    /// Builds a string-keyed map; on duplicate keys the last one wins (as in JSON parsers).
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
        Map {
            entries: deduped,
            keyed: Vec::new(),
        }
    }

    /// Builds a map the way a CEL map literal does: keys may be strings, bools, ints or uints;
    /// any other kind of key, and a repeated key, is an error (CEL has no "last wins").
    pub fn from_cel_entries(entries: Vec<(Value, Value)>) -> Result<Map, MapBuildError> {
        let mut strings: Vec<(Arc<str>, Value)> = Vec::new();
        let mut keyed: Vec<(MapKey, Value)> = Vec::new();
        for (k, v) in entries {
            match k {
                Value::Str(s) => strings.push((s, v)),
                Value::Bool(b) => keyed.push((MapKey::Bool(b), v)),
                Value::Int(i) => keyed.push((MapKey::Int(i), v)),
                Value::Uint(u) => keyed.push((MapKey::Uint(u), v)),
                other => return Err(MapBuildError::UnsupportedKey(other.kind())),
            }
        }
        strings.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = strings.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(MapBuildError::RepeatedKey(format!("{:?}", w[0].0)));
        }
        keyed.sort_by_key(|(k, _)| k.rank());
        if let Some(w) = keyed.windows(2).find(|w| w[0].0.same_key(w[1].0)) {
            return Err(MapBuildError::RepeatedKey(w[1].0.to_value().to_string()));
        }
        Ok(Map {
            entries: strings,
            keyed,
        })
    }

    /// Looks a string key up.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Looks a non-string key up (`1` finds a `1u` key and the other way round).
    pub fn get_key(&self, key: MapKey) -> Option<&Value> {
        self.keyed
            .binary_search_by(|(k, _)| k.rank().cmp(&key.rank()))
            .ok()
            .map(|i| &self.keyed[i].1)
    }

    /// The string-keyed entries in key order: all the entries of a map read from JSON.
    pub fn entries(&self) -> &[(Arc<str>, Value)] {
        &self.entries
    }

    /// The entries with non-string keys (only CEL map literals have any), in key order.
    pub fn keyed_entries(&self) -> &[(MapKey, Value)] {
        &self.keyed
    }

    /// Whether every key is a string (true of every map read from JSON).
    pub fn has_string_keys_only(&self) -> bool {
        self.keyed.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len() + self.keyed.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.keyed.is_empty()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in &self.keyed {
            let text = k.to_string();
            if self.get(&text).is_some() {
                return Err(serde::ser::Error::custom(format!(
                    "map key {} and string key {text:?} would be the same JSON key",
                    k.to_value()
                )));
            }
            map.serialize_entry(&text, v)?;
        }
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

    #[test]
    fn non_finite_floats_serialise_as_explicit_strings_never_null() {
        let v = Value::List(
            vec![
                Value::Float(f64::NAN),
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY),
                Value::Float(-0.5),
            ]
            .into(),
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["NaN","Infinity","-Infinity",-0.5]"#
        );
    }

    #[test]
    fn uint_serialises_as_a_number() {
        assert_eq!(
            serde_json::to_string(&Value::Uint(u64::MAX)).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(Value::Uint(3).to_string(), "3u");
    }

    #[test]
    fn durations_format_exactly() {
        assert_eq!(format_duration(90_000_000), "90s");
        assert_eq!(format_duration(1_500_000), "1.5s");
        assert_eq!(format_duration(-1), "-0.000001s");
        // Beyond f64's exact integers: still exact.
        assert_eq!(format_duration(9_223_372_036_854_775), "9223372036.854775s");
        assert_eq!(
            serde_json::to_string(&Value::Duration(1_000_000_000_000)).unwrap(),
            r#""1000000s""#
        );
    }

    #[test]
    fn cel_maps_take_scalar_keys_and_refuse_repeats() {
        let m = Map::from_cel_entries(vec![
            (Value::Int(2), Value::str("two")),
            (Value::str("k"), Value::Int(0)),
            (Value::Bool(true), Value::Int(1)),
            (Value::Uint(1), Value::str("one")),
        ])
        .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m.get_key(MapKey::Int(1)), Some(&Value::str("one")));
        assert_eq!(m.get_key(MapKey::Uint(2)), Some(&Value::str("two")));
        assert_eq!(m.get("k"), Some(&Value::Int(0)));
        assert!(!m.has_string_keys_only());
        assert_eq!(
            serde_json::to_string(&Value::Map(Arc::new(m))).unwrap(),
            r#"{"true":1,"1":"one","2":"two","k":0}"#
        );
        assert!(matches!(
            Map::from_cel_entries(vec![
                (Value::Int(0), Value::Int(1)),
                (Value::Uint(0), Value::Int(2)),
            ]),
            Err(MapBuildError::RepeatedKey(_))
        ));
        assert!(matches!(
            Map::from_cel_entries(vec![(Value::Float(1.0), Value::Int(1))]),
            Err(MapBuildError::UnsupportedKey("float"))
        ));
        // A number key that reads like a string key of the same map is not written twice.
        let clash = Map::from_cel_entries(vec![
            (Value::Int(1), Value::Int(1)),
            (Value::str("1"), Value::Int(2)),
        ])
        .unwrap();
        assert!(serde_json::to_string(&Value::Map(Arc::new(clash))).is_err());
    }
}
