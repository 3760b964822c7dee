//! Property objects read into sparse columns.
//!
//! [`Captured`] is what a `properties` object deserializes into on the columnar path: its
//! entries borrowed from the text (no allocation for up to [`INLINE`] entries without escapes),
//! checked for repeated keys exactly as [`crate::io::events::jsonl`]'s map reader checks them
//! (same error, raised at the same place, so the same message and column). Values become the
//! same [`Value`] kinds as [`Value::from_json`] gives: integers that fit `i64` are `Int`, other
//! numbers `Float`, lists and objects nested values.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;

use crate::io::events::jsonl::REPEATED_KEY;
use crate::value::Value;

/// Entries kept inline before a property object spills to the heap.
pub(crate) const INLINE: usize = 8;

/// One property value as read: scalars inline, text borrowed where it has no escapes.
pub(crate) enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// A list or an object.
    Nested(Value),
}

/// A `properties` object's entries, in text order.
pub(crate) struct Captured<'a>(pub(crate) SmallVec<[(Cow<'a, str>, Cell<'a>); INLINE]>);

struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a property name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Cell<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CellVisitor;
        impl<'de> Visitor<'de> for CellVisitor {
            type Value = Cell<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Cell::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Cell::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                // As `Value::from_json`: an integer that does not fit `i64` is a float.
                Ok(i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Cell::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let json =
                    serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Cell::Nested(Value::from_json(&json)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let json =
                    serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Cell::Nested(Value::from_json(&json)))
            }
        }
        d.deserialize_any(CellVisitor)
    }
}

impl<'de> Deserialize<'de> for Captured<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CapturedVisitor;
        impl<'de> Visitor<'de> for CapturedVisitor {
            type Value = Captured<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The same expectation as the object reader of `read_events`.
                f.write_str("field `properties` as a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: SmallVec<[(Cow<'de, str>, Cell<'de>); INLINE]> = SmallVec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: Cell<'de> = map.next_value()?;
                    entries.push((key, value));
                }
                if has_repeated_key(&entries) {
                    return Err(de::Error::custom(REPEATED_KEY));
                }
                Ok(Captured(entries))
            }
        }
        d.deserialize_map(CapturedVisitor)
    }
}

fn has_repeated_key(entries: &[(Cow<'_, str>, Cell<'_>)]) -> bool {
    if entries.len() <= INLINE {
        return entries
            .iter()
            .enumerate()
            .any(|(i, (k, _))| entries[..i].iter().any(|(other, _)| other == k));
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// A stored property value: scalars inline, strings and nested values by index into their
/// column's side tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PropertyValue {
    /// JSON `null` (the key is present).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string: index into [`PropertyColumn::strings`].
    Str(u32),
    /// A list or object: index into [`PropertyColumn::nested`].
    Nested(u32),
}

/// One property over the events that have it (see the module docs of [`super`]).
#[derive(Clone, Debug, Default)]
pub struct PropertyColumn {
    /// The property name.
    pub name: Arc<str>,
    /// Indices of the events that have this key, ascending.
    pub events: Vec<u32>,
    /// The value per entry of `events`.
    pub values: Vec<PropertyValue>,
    /// Distinct strings, by first appearance.
    pub strings: Vec<Arc<str>>,
    /// Lists and objects, by appearance.
    pub nested: Vec<Value>,
    string_index: FxHashMap<Arc<str>, u32>,
}

impl PropertyColumn {
    /// An empty column.
    pub(crate) fn new(name: Arc<str>) -> PropertyColumn {
        PropertyColumn {
            name,
            ..PropertyColumn::default()
        }
    }

    /// The dynamic value of entry `k` (as [`Value::from_json`] gives it).
    pub fn value(&self, k: usize) -> Value {
        match self.values[k] {
            PropertyValue::Null => Value::Null,
            PropertyValue::Bool(b) => Value::Bool(b),
            PropertyValue::Int(i) => Value::Int(i),
            PropertyValue::Float(x) => Value::Float(x),
            PropertyValue::Str(s) => Value::Str(self.strings[s as usize].clone()),
            PropertyValue::Nested(n) => self.nested[n as usize].clone(),
        }
    }

    /// The value of event `event`, if it has this key (a binary search).
    pub fn value_of_event(&self, event: usize) -> Option<Value> {
        let k = self.events.binary_search(&(event as u32)).ok()?;
        Some(self.value(k))
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&code) = self.string_index.get(s) {
            return code;
        }
        let code = self.strings.len() as u32;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.string_index.insert(s, code);
        code
    }

    /// Appends event `event`'s value.
    pub(crate) fn push(&mut self, event: u32, cell: Cell<'_>) {
        let value = match cell {
            Cell::Null => PropertyValue::Null,
            Cell::Bool(b) => PropertyValue::Bool(b),
            Cell::Int(i) => PropertyValue::Int(i),
            Cell::Float(x) => PropertyValue::Float(x),
            Cell::Str(s) => PropertyValue::Str(self.intern(&s)),
            Cell::Nested(v) => {
                self.nested.push(v);
                PropertyValue::Nested((self.nested.len() - 1) as u32)
            }
        };
        self.events.push(event);
        self.values.push(value);
    }

    /// Appends `other`'s entries, whose event indices are shifted by `offset` (they all come
    /// after this column's).
    pub(crate) fn append(&mut self, other: PropertyColumn, offset: u32) {
        let codes: Vec<u32> = other.strings.iter().map(|s| self.intern(s)).collect();
        let nested_base = self.nested.len() as u32;
        self.nested.extend(other.nested);
        self.events.extend(other.events.iter().map(|&e| e + offset));
        self.values.extend(other.values.iter().map(|v| match *v {
            PropertyValue::Str(s) => PropertyValue::Str(codes[s as usize]),
            PropertyValue::Nested(n) => PropertyValue::Nested(n + nested_base),
            v => v,
        }));
    }
}
