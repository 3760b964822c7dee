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
//! under its line (or row) number and carries on. Only problems with the file as a whole
//! (cannot open, not Parquet, a missing or unexpected column, empty) are errors of the read
//! itself. The format rules are in [`jsonl`] and [`parquet`].
//!
//! [`crate::io::columnar`] reads the same files into columns instead of one [`Event`] per
//! record, through the same checks (`jsonl::parse_fields`, `parquet::BlockCells::row`), so both
//! readers accept and reject exactly the same records.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::event::{Event, EventRecord};

mod chunks;
pub mod jsonl;
pub mod parquet;

pub use chunks::{EventChunks, ReadProgress};
pub use jsonl::read_jsonl;
use parquet::read_parquet;

/// Why an events file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EventIoError {
    /// Cannot open / read the file.
    #[error("cannot read {path}: {error}")]
    Open {
        /// File path.
        path: PathBuf,
        /// OS error.
        error: std::io::Error,
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

/// The two events file formats, told by the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.jsonl`, `.ndjson` or `.json`.
    Jsonl,
    /// `.parquet`.
    Parquet,
}

impl Format {
    /// The format of `path`, or [`EventIoError::UnknownFormat`].
    pub(crate) fn of(path: &Path) -> Result<Format, EventIoError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
            Some("parquet") => Ok(Format::Parquet),
            _ => Err(EventIoError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads events from a `.jsonl` (or `.ndjson`) or `.parquet` file (all at once; see
/// [`EventChunks`] to read it chunk by chunk).
pub fn read_events(path: &Path) -> Result<Vec<EventRecord>, EventIoError> {
    let records = match Format::of(path)? {
        Format::Jsonl => {
            let file = File::open(path).map_err(|error| EventIoError::Open {
                path: path.to_path_buf(),
                error,
            })?;
            read_jsonl(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
                EventIoError::Open {
                    path: path.to_path_buf(),
                    error: source,
                }
            })?
        }
        Format::Parquet => read_parquet(path)?,
    };
    if records.is_empty() {
        return Err(EventIoError::Empty {
            path: path.to_path_buf(),
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
    let file = File::create(path).map_err(|error| EventIoError::Open {
        path: path.to_path_buf(),
        error,
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
