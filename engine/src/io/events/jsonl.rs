//! JSONL events: one JSON object a line.
//!
//! Every non-blank line yields exactly one [`EventRecord`] — the event, or why the line is
//! rejected — so `records == non-blank lines` and line numbers are 1-based positions in the
//! file. Blank lines are skipped. A UTF-8 byte-order mark at the start of the file is skipped
//! (editors on Windows write one).
//!
//! A line is rejected (never the whole file) when it is not valid UTF-8, not JSON, not a JSON
//! *object* (an array would otherwise be read positionally by serde), has a field of the
//! wrong type (the message names the field), a repeated field or property, an unknown field,
//! a missing required field, or a timestamp that is not RFC 3339.
//!
//! The record types borrow from the line, so a well-formed event costs one parse and the
//! allocations of its own strings and properties.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::event::{Event, EventRecord};
use crate::value::{parse_timestamp_explained, Map, Value};

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses JSONL from any reader; see the module docs for the record rules.
pub fn read_jsonl(mut reader: impl BufRead) -> std::io::Result<Vec<EventRecord>> {
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let mut bytes = trim_line_end(&buf);
        if line == 1 {
            bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = line_text(bytes).and_then(parse_event);
        records.push(EventRecord { line, event });
    }
    Ok(records)
}

/// A non-blank line as text, or why it is not UTF-8.
pub(crate) fn line_text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 (invalid byte at column {})",
            e.valid_up_to() + 1
        )
    })
}

/// A line without its trailing `\n` and `\r`s.
pub(crate) fn trim_line_end(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

/// Parses one line into an event, or says precisely why it cannot be one.
pub(crate) fn parse_event(text: &str) -> Result<Event, String> {
    let fields = parse_fields::<Properties>(text)?;
    Ok(Event {
        id: Arc::from(fields.id.as_str().as_ref()),
        customer_id: fields.customer_id,
        event_type: Arc::from(fields.event_type.as_ref()),
        timestamp: fields.timestamp,
        process: fields.process.map(|p| Arc::from(p.as_ref())),
        properties: Arc::new(fields.properties.map(|p| p.0).unwrap_or_default()),
    })
}

/// The fields of one valid event line, borrowed from the line where they have no escapes;
/// `properties` is whatever `P` reads the object into (a [`Map`] for [`parse_event`], column
/// cells for the columnar reader).
pub(crate) struct EventFields<'a, P> {
    /// The event id (a numeric id stays a number until asked for).
    pub(crate) id: RawId<'a>,
    /// The customer id.
    pub(crate) customer_id: u64,
    /// The event type (non-empty).
    pub(crate) event_type: Cow<'a, str>,
    /// Microseconds since the epoch, UTC.
    pub(crate) timestamp: i64,
    /// The producing process, if any.
    pub(crate) process: Option<Cow<'a, str>>,
    /// The properties, if the line has them.
    pub(crate) properties: Option<P>,
}

/// Parses and checks one line: every rule of the module docs. The one definition of a valid
/// JSONL event, shared by [`parse_event`] and the columnar reader.
pub(crate) fn parse_fields<'a, P: Deserialize<'a>>(
    text: &'a str,
) -> Result<EventFields<'a, P>, String> {
    let start = text.len() - text.trim_start().len();
    match text[start..].chars().next() {
        Some('{') => {}
        found => {
            return Err(format!(
                "an event must be a JSON object (`{{...}}`), found {} at column {}",
                match found {
                    Some('[') => "an array".to_string(),
                    Some(c) => format!("`{c}`"),
                    None => "nothing".to_string(),
                },
                start + 1
            ))
        }
    }
    let raw: RawEvent<'a, P> = serde_json::from_str(text).map_err(|e| {
        format!(
            "malformed event JSON at column {}: {}",
            e.column(),
            strip_position(&e)
        )
    })?;
    if raw.id.is_empty() {
        return Err("field `id` is empty".into());
    }
    if raw.event_type.0.is_empty() {
        return Err("field `type` is empty".into());
    }
    let timestamp = parse_timestamp_explained(&raw.timestamp.0)
        .map_err(|e| format!("field `timestamp`: {e}"))?;
    Ok(EventFields {
        id: raw.id,
        customer_id: raw.customer_id.0,
        event_type: raw.event_type.0,
        timestamp,
        process: raw.process.map(|p| p.0),
        properties: raw.properties,
    })
}

/// Parses a `properties` JSON object given as text (the Parquet layout), with the same rules
/// as in a JSONL line: an object, no repeated key.
pub(crate) fn parse_properties(json: &str) -> Result<Map, String> {
    parse_properties_as::<Properties>(json).map(|p| p.0)
}

/// [`parse_properties`] into any reader of the object (the columnar reader's cells).
pub(crate) fn parse_properties_as<'a, P: Deserialize<'a>>(json: &'a str) -> Result<P, String> {
    serde_json::from_str::<P>(json)
        .map_err(|e| format!("{} (at column {})", strip_position(&e), e.column()))
}

/// serde_json appends " at line L column C"; the caller reports the position itself.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

#[derive(serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "P: Deserialize<'de>, 'de: 'a")
)]
struct RawEvent<'a, P> {
    #[serde(borrow)]
    id: RawId<'a>,
    customer_id: CustomerId,
    #[serde(rename = "type", borrow)]
    event_type: Text<'a, TypeField>,
    #[serde(borrow)]
    timestamp: Text<'a, TimestampField>,
    #[serde(default, borrow)]
    process: Option<Text<'a, ProcessField>>,
    #[serde(default)]
    properties: Option<P>,
}

/// An event id: a string, or a non-negative integer (which becomes its decimal string).
pub(crate) enum RawId<'a> {
    /// A string id.
    Text(Cow<'a, str>),
    /// A numeric id.
    Number(u64),
}

impl RawId<'_> {
    /// Whether the id is the empty string.
    fn is_empty(&self) -> bool {
        matches!(self, RawId::Text(s) if s.is_empty())
    }

    /// The id as text (a number as its decimal string).
    pub(crate) fn as_str(&self) -> Cow<'_, str> {
        match self {
            RawId::Text(s) => Cow::Borrowed(s.as_ref()),
            RawId::Number(n) => Cow::Owned(n.to_string()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = RawId<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field `id` as a string or a non-negative integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawId::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawId::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawId::Text(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawId::Number(v))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// `customer_id`: a non-negative integer (a float such as `1.0` is refused, not truncated).
struct CustomerId(u64);

impl<'de> Deserialize<'de> for CustomerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CustomerIdVisitor;
        impl Visitor<'_> for CustomerIdVisitor {
            type Value = CustomerId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field `customer_id` as a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(CustomerId(v))
            }
        }
        d.deserialize_any(CustomerIdVisitor)
    }
}

/// The name a string field reports in type errors.
trait FieldName {
    const NAME: &'static str;
}
struct TypeField;
impl FieldName for TypeField {
    const NAME: &'static str = "type";
}
struct TimestampField;
impl FieldName for TimestampField {
    const NAME: &'static str = "timestamp";
}
struct ProcessField;
impl FieldName for ProcessField {
    const NAME: &'static str = "process";
}

/// A string field, borrowed from the line where it has no escapes.
struct Text<'a, F>(Cow<'a, str>, std::marker::PhantomData<F>);

impl<'de: 'a, 'a, F: FieldName> Deserialize<'de> for Text<'a, F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<F>(std::marker::PhantomData<F>);
        impl<'de, F: FieldName> Visitor<'de> for TextVisitor<F> {
            type Value = Text<'de, F>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "field `{}` as a string", F::NAME)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v), std::marker::PhantomData))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string()), std::marker::PhantomData))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v), std::marker::PhantomData))
            }
        }
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// `properties`: a JSON object whose keys are unique (a repeated key is an error, not "last
/// one wins", so no property is dropped silently).
pub(crate) struct Properties(pub(crate) Map);

/// The error of a `properties` object with a repeated key.
pub(crate) const REPEATED_KEY: &str = "field `properties` has a repeated key";

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PropertiesVisitor;
        impl<'de> Visitor<'de> for PropertiesVisitor {
            type Value = Properties;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field `properties` as a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(Arc<str>, Value)> = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: serde_json::Value = map.next_value()?;
                    entries.push((Arc::from(key.as_ref()), Value::from_json(&value)));
                }
                let n = entries.len();
                let props = Map::from_entries(entries);
                if props.len() != n {
                    return Err(de::Error::custom(REPEATED_KEY));
                }
                Ok(Properties(props))
            }
        }
        d.deserialize_map(PropertiesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<EventRecord> {
        read_jsonl(text.as_bytes()).unwrap()
    }

    fn error_of(line: &str) -> String {
        parse(line)[0].event.clone().unwrap_err()
    }

    const GOOD: &str = r#"{"id":"e1","customer_id":1,"type":"order.completed","timestamp":"2026-01-01T00:00:00Z","properties":{"total":10.5}}"#;

    #[test]
    fn good_lines_parse_and_bad_lines_become_records() {
        let input = format!(
            "{GOOD}\n\n{}\n{}\n{}\n",
            r#"{"id":"e2","customer_id":1,"type":"x""#,
            r#"{"id":7,"customer_id":2,"type":"x","timestamp":"noon"}"#,
            r#"{"id":"e4","customer_id":2,"type":"x","timestamp":"2026-01-01T00:00:00Z","colour":1}"#,
        );
        let recs = parse(&input);
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].line, 1);
        let e = recs[0].event.as_ref().unwrap();
        assert_eq!(e.properties.get("total"), Some(&Value::Float(10.5)));
        assert_eq!(recs[1].line, 3);
        assert!(recs[1].event.as_ref().unwrap_err().contains("malformed"));
        assert!(recs[2].event.as_ref().unwrap_err().contains("RFC 3339"));
        assert!(recs[3].event.as_ref().unwrap_err().contains("colour"));
    }

    #[test]
    fn non_utf8_lines_are_reported_not_fatal() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"\n{\"id\":\"\xff\"}\n");
        let recs = read_jsonl(&bytes[..]).unwrap();
        assert!(recs[0].event.is_ok());
        assert!(recs[1].event.as_ref().unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn only_json_objects_are_events() {
        let array = r#"["e1",1,"order.completed","2026-01-01T00:00:00Z"]"#;
        let err = error_of(array);
        assert!(
            err.contains("must be a JSON object") && err.contains("array"),
            "{err}"
        );
        assert!(error_of("  42").contains("column 3"));
        assert!(error_of("null").contains("JSON object"));
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let recs = parse(&format!("\u{feff}{GOOD}\n"));
        assert!(recs[0].event.is_ok(), "{:?}", recs[0].event);
        // Only at the start of the file.
        let recs = parse(&format!("{GOOD}\n\u{feff}{}\n", GOOD.replace("e1", "e2")));
        assert!(recs[1].event.is_err());
    }

    #[test]
    fn type_errors_name_the_field() {
        let with = |field: &str, value: &str| {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v[field] = serde_json::from_str(value).unwrap();
            error_of(&v.to_string())
        };
        for (field, value) in [
            ("id", "true"),
            ("id", "-3"),
            ("id", "1.5"),
            ("customer_id", "1.0"),
            ("customer_id", "-1"),
            ("customer_id", "\"42\""),
            ("type", "5"),
            ("timestamp", "1700000000"),
            ("process", "[]"),
            ("properties", "[1]"),
        ] {
            let err = with(field, value);
            assert!(
                err.contains(&format!("field `{field}`")),
                "{field}={value}: {err}"
            );
        }
    }

    #[test]
    fn repeated_fields_and_properties_are_rejected() {
        let err = error_of(&GOOD.replace(r#""id":"e1","#, r#""id":"e1","id":"e2","#));
        assert!(err.contains("duplicate field `id`"), "{err}");
        let err = error_of(&GOOD.replace(r#"{"total":10.5}"#, r#"{"total":1,"total":2}"#));
        assert!(err.contains("repeated key"), "{err}");
    }

    #[test]
    fn numeric_ids_become_their_decimal_string() {
        let recs = parse(&GOOD.replace(r#""e1""#, "5"));
        assert_eq!(recs[0].event.as_ref().unwrap().id.as_ref(), "5");
    }
}
