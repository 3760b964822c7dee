//! Reading events from JSONL or Parquet.
//!
//! One JSON object a line:
//! `{"id":"e1","customer_id":42,"type":"order.completed","timestamp":"2026-03-01T12:00:00Z",
//!   "process":"shop-sync","properties":{"total":99.5}}` — `process` and `properties` are
//! optional; `timestamp` is RFC 3339. Parquet files carry the same fields as columns, with
//! `properties` as a JSON string column and `timestamp` as a datetime or RFC 3339 string.
//!
//! A bad record never stops the read: it becomes an [`EventRecord`] whose `event` is the
//! error (with its column for JSON syntax errors), so the run reports it in `outcomes.jsonl`
//! under its line number and carries on. Only problems with the file as a whole (cannot open,
//! not Parquet, empty) are errors of the read itself. Blank lines are skipped; every other line
//! yields exactly one record, so `records == non-blank lines`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use serde::Deserialize;

use crate::event::{Event, EventRecord};
use crate::value::{parse_timestamp, Map, Value};

/// Why an events file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EventIoError {
    /// Cannot open / read the file.
    #[error("cannot read {path}: {source}")]
    Open {
        /// File path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Not a readable Parquet file, or a required column is missing or mistyped.
    #[error("cannot read {path} as parquet events: {detail}")]
    Parquet {
        /// File path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// No events at all.
    #[error("{path}: the events file is empty")]
    Empty {
        /// File path.
        path: PathBuf,
    },
    /// The extension is neither `.jsonl`/`.ndjson`/`.json` nor `.parquet`.
    #[error("{path}: unknown events file format (expected .jsonl or .parquet)")]
    UnknownFormat {
        /// File path.
        path: PathBuf,
    },
}

/// Reads events from a `.jsonl` (or `.ndjson`) or `.parquet` file.
pub fn read_events(path: &Path) -> Result<Vec<EventRecord>, EventIoError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let records = match ext.as_deref() {
        Some("jsonl" | "ndjson" | "json") => {
            let file = File::open(path).map_err(|source| EventIoError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            read_jsonl(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
                EventIoError::Open {
                    path: path.to_path_buf(),
                    source,
                }
            })?
        }
        Some("parquet") => read_parquet(path)?,
        _ => {
            return Err(EventIoError::UnknownFormat {
                path: path.to_path_buf(),
            })
        }
    };
    if records.is_empty() {
        return Err(EventIoError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(records)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(borrow)]
    id: RawId<'a>,
    customer_id: u64,
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    process: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawId<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Number(u64),
}

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
        let bytes = trim_line_end(&buf);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = match std::str::from_utf8(bytes) {
            Err(e) => Err(format!(
                "not valid UTF-8 (invalid byte at column {})",
                e.valid_up_to() + 1
            )),
            Ok(text) => parse_json_event(text),
        };
        records.push(EventRecord { line, event });
    }
    Ok(records)
}

fn trim_line_end(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

fn parse_json_event(text: &str) -> Result<Event, String> {
    let raw: RawEvent = serde_json::from_str(text).map_err(|e| {
        format!(
            "malformed event JSON at column {}: {}",
            e.column(),
            strip_position(&e)
        )
    })?;
    let id: Arc<str> = match raw.id {
        RawId::Text(s) if s.is_empty() => return Err("field `id` is empty".into()),
        RawId::Text(s) => Arc::from(s.as_ref()),
        RawId::Number(n) => Arc::from(n.to_string()),
    };
    if raw.event_type.is_empty() {
        return Err("field `type` is empty".into());
    }
    let timestamp = parse_timestamp(&raw.timestamp).ok_or_else(|| {
        format!(
            "field `timestamp`: {:?} is not an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z)",
            raw.timestamp
        )
    })?;
    let properties = raw
        .properties
        .map(|obj| {
            Map::from_entries(
                obj.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))),
            )
        })
        .unwrap_or_default();
    Ok(Event {
        id,
        customer_id: raw.customer_id,
        event_type: Arc::from(raw.event_type.as_ref()),
        timestamp,
        process: raw.process.map(|p| Arc::from(p.as_ref())),
        properties: Arc::new(properties),
    })
}

/// serde_json appends " at line L column C"; the caller reports the position itself.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn read_parquet(path: &Path) -> Result<Vec<EventRecord>, EventIoError> {
    let bad = |detail: String| EventIoError::Parquet {
        path: path.to_path_buf(),
        detail,
    };
    let file = File::open(path).map_err(|source| EventIoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| bad(e.to_string()))?;
    let column = |name: &str| {
        df.column(name)
            .map(|c| c.as_materialized_series().clone())
            .map_err(|_| bad(format!("missing column `{name}`")))
    };
    let text = |s: &Series| -> Result<Vec<Option<String>>, EventIoError> {
        let s = s.cast(&DataType::String).map_err(|e| bad(e.to_string()))?;
        let ca = s.str().map_err(|e| bad(e.to_string()))?;
        Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
    };
    let ids = text(&column("id")?)?;
    let customers = column("customer_id")?
        .strict_cast(&DataType::UInt64)
        .map_err(|e| bad(format!("column `customer_id`: {e}")))?;
    let customers: Vec<Option<u64>> = customers
        .u64()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .collect();
    let types = text(&column("type")?)?;
    let ts_col = column("timestamp")?;
    let timestamps: Vec<Result<i64, String>> = match ts_col.dtype() {
        DataType::Datetime(_, _) => ts_col
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .and_then(|s| s.cast(&DataType::Int64))
            .map_err(|e| bad(e.to_string()))?
            .i64()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .map(|v| v.ok_or_else(|| "field `timestamp` is null".to_string()))
            .collect(),
        _ => text(&ts_col)?
            .iter()
            .map(|v| match v {
                None => Err("field `timestamp` is null".to_string()),
                Some(t) => parse_timestamp(t)
                    .ok_or_else(|| format!("field `timestamp`: {t:?} is not RFC 3339")),
            })
            .collect(),
    };
    let processes = match df.column("process") {
        Ok(c) => text(c.as_materialized_series())?,
        Err(_) => vec![None; df.height()],
    };
    let properties = match df.column("properties") {
        Ok(c) => text(c.as_materialized_series())?,
        Err(_) => vec![None; df.height()],
    };

    let mut records = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        let event = (|| {
            let id = ids[row].clone().ok_or("field `id` is null")?;
            let customer_id = customers[row].ok_or("field `customer_id` is null")?;
            let event_type = types[row].clone().ok_or("field `type` is null")?;
            let timestamp = timestamps[row].clone()?;
            let props = match &properties[row] {
                None => Map::default(),
                Some(json) => match serde_json::from_str::<serde_json::Value>(json) {
                    Ok(serde_json::Value::Object(obj)) => Map::from_entries(
                        obj.iter()
                            .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))),
                    ),
                    Ok(other) => {
                        return Err(format!(
                            "field `properties` must be a JSON object, got {other}"
                        ))
                    }
                    Err(e) => return Err(format!("field `properties` is not valid JSON: {e}")),
                },
            };
            Ok::<Event, String>(Event {
                id: Arc::from(id),
                customer_id,
                event_type: Arc::from(event_type),
                timestamp,
                process: processes[row].as_deref().map(Arc::from),
                properties: Arc::new(props),
            })
        })()
        .map_err(|e| e.to_string());
        records.push(EventRecord {
            line: row as u64 + 1,
            event,
        });
    }
    Ok(records)
}

/// Writes events as Parquet (the layout [`read_events`] reads back).
pub fn write_events_parquet(events: &[Event], path: &Path) -> Result<(), EventIoError> {
    let bad = |detail: String| EventIoError::Parquet {
        path: path.to_path_buf(),
        detail,
    };
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_ref()).collect();
    let customers: Vec<u64> = events.iter().map(|e| e.customer_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_ref()).collect();
    let ts: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
    let process: Vec<Option<&str>> = events.iter().map(|e| e.process.as_deref()).collect();
    let props: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e.properties.as_ref()).unwrap_or_else(|_| "{}".into()))
        .collect();
    let timestamps = Series::new("timestamp".into(), ts)
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .map_err(|e| bad(e.to_string()))?;
    let mut df = DataFrame::new(
        events.len(),
        vec![
            Series::new("id".into(), ids).into_column(),
            Series::new("customer_id".into(), customers).into_column(),
            Series::new("type".into(), types).into_column(),
            timestamps.into_column(),
            Series::new("process".into(), process).into_column(),
            Series::new("properties".into(), props).into_column(),
        ],
    )
    .map_err(|e| bad(e.to_string()))?;
    let file = File::create(path).map_err(|source| EventIoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    ParquetWriter::new(file)
        .finish(&mut df)
        .map_err(|e| bad(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<EventRecord> {
        read_jsonl(text.as_bytes()).unwrap()
    }

    #[test]
    fn good_lines_parse_and_bad_lines_become_records() {
        let input = concat!(
            r#"{"id":"e1","customer_id":1,"type":"order.completed","timestamp":"2026-01-01T00:00:00Z","properties":{"total":10.5}}"#,
            "\n\n",
            r#"{"id":"e2","customer_id":1,"type":"x""#,
            "\n",
            r#"{"id":7,"customer_id":2,"type":"x","timestamp":"noon"}"#,
            "\n",
            r#"{"id":"e4","customer_id":2,"type":"x","timestamp":"2026-01-01T00:00:00Z","colour":1}"#,
            "\n"
        );
        let recs = parse(input);
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
        let mut bytes =
            br#"{"id":"e1","customer_id":1,"type":"t","timestamp":"2026-01-01T00:00:00Z"}"#
                .to_vec();
        bytes.extend_from_slice(b"\n{\"id\":\"\xff\"}\n");
        let recs = read_jsonl(&bytes[..]).unwrap();
        assert!(recs[0].event.is_ok());
        assert!(recs[1].event.as_ref().unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.parquet");
        let recs = parse(concat!(
            r#"{"id":"e1","customer_id":1,"type":"a","timestamp":"2026-01-01T00:00:00Z","process":"sync","properties":{"k":[1,2]}}"#,
            "\n",
            r#"{"id":"e2","customer_id":2,"type":"b","timestamp":"2026-01-02T00:00:00Z"}"#,
        ));
        let events: Vec<Event> = recs.into_iter().map(|r| r.event.unwrap()).collect();
        write_events_parquet(&events, &p).unwrap();
        let back: Vec<Event> = read_events(&p)
            .unwrap()
            .into_iter()
            .map(|r| r.event.unwrap())
            .collect();
        assert_eq!(back, events);
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.jsonl");
        std::fs::write(&p, "\n\n").unwrap();
        assert!(matches!(read_events(&p), Err(EventIoError::Empty { .. })));
    }
}
