//! Parquet events: the JSONL fields as columns, one event per row.
//!
//! | column | types read | notes |
//! |---|---|---|
//! | `id` (required) | text, integer | integers become their decimal string |
//! | `customer_id` (required) | integer | a negative value or any float (even `1.0`, as in JSONL) rejects the row |
//! | `type` (required) | text | |
//! | `timestamp` (required) | datetime (any unit, any time zone), date, RFC 3339 text | must be exact in microseconds and within 0001–9999 |
//! | `process` | text | null: no process |
//! | `properties` | text holding a JSON object | null: no properties |
//!
//! Problems with the file as a whole — not Parquet, a required column missing, a column that
//! is not one of these (the JSONL reader refuses unknown fields too) — are errors of the read.
//! A known column of a type it does not take (a float `customer_id`, a decimal `id`) is not:
//! it rejects its rows, each with its row number and the reason, like a bad JSONL line, and
//! the run goes on. Rows are numbered from 1, as JSONL lines are.
//!
//! The schema is read and checked before any data, and only understood types are decoded,
//! through [`crate::io::parquet`], so no file makes the reader panic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use super::jsonl::parse_properties;
use super::EventIoError;
use crate::event::{Event, EventRecord};
use crate::io::parquet::{self, ColumnKind};
use crate::io::temporal::timestamp_cells;
use crate::value::parse_timestamp_explained;

const REQUIRED: [&str; 4] = ["id", "customer_id", "type", "timestamp"];
const OPTIONAL: [&str; 2] = ["process", "properties"];

/// One value per row, or why that row's field cannot be read.
type Cells<T> = Vec<Result<T, String>>;

pub(super) fn read_parquet(path: &Path) -> Result<Vec<EventRecord>, EventIoError> {
    let file = EventsFile::open(path)?;
    let block = file.read(None)?;
    Ok(records_of(&block, 0))
}

/// The records of a block whose first row is row `first + 1` of the file.
pub(super) fn records_of(block: &Block<'_>, first: u64) -> Vec<EventRecord> {
    let cells = block.cells();
    let mut records = Vec::with_capacity(cells.len());
    for i in 0..cells.len() {
        let event = cells.row(i).and_then(|row| {
            Ok(Event {
                id: Arc::from(row.id.as_str().as_ref()),
                customer_id: row.customer_id,
                event_type: Arc::from(row.event_type),
                timestamp: row.timestamp,
                process: row.process.map(Arc::from),
                properties: Arc::new(match row.properties {
                    None => Default::default(),
                    Some(json) => {
                        parse_properties(json).map_err(|e| format!("field `properties`: {e}"))?
                    }
                }),
            })
        });
        records.push(EventRecord {
            line: first + i as u64 + 1,
            event,
        });
    }
    records
}

/// An events Parquet file whose schema and counts were checked: what each column is and which
/// ones are read.
pub(crate) struct EventsFile {
    path: PathBuf,
    kinds: Vec<(String, Result<ColumnKind, String>)>,
    readable: Vec<String>,
    rows: usize,
}

impl EventsFile {
    /// Reads the schema and refuses a file that is not an events file (an unexpected or missing
    /// column, damaged counts); no data is decoded.
    pub(crate) fn open(path: &Path) -> Result<EventsFile, EventIoError> {
        let bad = |detail: String| EventIoError::Parquet {
            path: path.to_path_buf(),
            detail,
        };
        let fields = parquet::schema(path).map_err(bad)?;
        for (name, _) in &fields {
            if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
                return Err(bad(format!(
                    "unexpected column `{name}` (an events file has the columns id, customer_id, \
                     type, timestamp and optionally process and properties; put other data in \
                     `properties`)"
                )));
            }
        }
        for name in REQUIRED {
            if !fields.iter().any(|(n, _)| n == name) {
                return Err(bad(format!("missing column `{name}`")));
            }
        }
        // Decode only the columns of a kind a field takes; the others reject their rows.
        let kinds: Vec<(String, Result<ColumnKind, String>)> = fields
            .iter()
            .map(|(name, dtype)| (name.clone(), ColumnKind::of(dtype)))
            .collect();
        let readable = kinds
            .iter()
            .filter(|(_, k)| k.is_ok())
            .map(|(n, _)| n.clone())
            .collect();
        parquet::check(path).map_err(bad)?;
        let rows = parquet::num_rows(path).map_err(bad)?;
        Ok(EventsFile {
            path: path.to_path_buf(),
            kinds,
            readable,
            rows,
        })
    }

    /// Number of rows in the file.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes rows `offset..offset + len` (`None`: all of them).
    pub(crate) fn read(&self, slice: Option<(usize, usize)>) -> Result<Block<'_>, EventIoError> {
        let bad = |detail: String| EventIoError::Parquet {
            path: self.path.clone(),
            detail,
        };
        let mut df = parquet::read_rows(&self.path, &self.readable, slice).map_err(bad)?;
        // Text of any encoding as `String`, so cells can borrow it.
        for (name, kind) in &self.kinds {
            if *kind != Ok(ColumnKind::Text) {
                continue;
            }
            let Ok(column) = df.column(name) else {
                continue;
            };
            if column.dtype() != &DataType::String {
                let cast = column
                    .cast(&DataType::String)
                    .map_err(|e| bad(e.to_string()))?;
                df.with_column(cast).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(Block { file: self, df })
    }
}

/// Decoded rows of an [`EventsFile`].
pub(crate) struct Block<'f> {
    file: &'f EventsFile,
    df: DataFrame,
}

/// An event id cell: text, or a non-negative integer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IdCell<'a> {
    /// A text id.
    Text(&'a str),
    /// An integer id (its decimal string is the id).
    Number(u64),
}

impl IdCell<'_> {
    /// The id as text.
    pub(crate) fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            IdCell::Text(s) => std::borrow::Cow::Borrowed(s),
            IdCell::Number(n) => std::borrow::Cow::Owned(n.to_string()),
        }
    }
}

/// The fields of one readable row; `properties` is the JSON text, not parsed yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowRef<'a> {
    pub(crate) id: IdCell<'a>,
    pub(crate) customer_id: u64,
    pub(crate) event_type: &'a str,
    pub(crate) timestamp: i64,
    pub(crate) process: Option<&'a str>,
    pub(crate) properties: Option<&'a str>,
}

/// A block's cells, column by column.
pub(crate) struct BlockCells<'a> {
    ids: Cells<Option<IdCell<'a>>>,
    customers: Cells<Option<u64>>,
    types: Cells<Option<&'a str>>,
    timestamps: Cells<Option<i64>>,
    processes: Cells<Option<&'a str>>,
    properties: Cells<Option<&'a str>>,
}

impl<'f> Block<'f> {
    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.df.height()
    }

    /// Rows `offset..offset + len` of this block (shares the buffers).
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Block<'f> {
        Block {
            file: self.file,
            df: self.df.slice(offset as i64, len),
        }
    }

    /// Reads every cell (text is borrowed from the block).
    pub(crate) fn cells(&self) -> BlockCells<'_> {
        let rows = self.df.height();
        let column = |name: &str| -> Result<Option<(&Series, ColumnKind)>, String> {
            match self.file.kinds.iter().find(|(n, _)| n == name) {
                None => Ok(None),
                Some((_, Err(ty))) => Err(format!("column has type {ty}")),
                Some((_, Ok(kind))) => self
                    .df
                    .column(name)
                    .map(|c| Some((c.as_materialized_series(), kind.clone())))
                    .map_err(|e| e.to_string()),
            }
        };
        BlockCells {
            ids: field(rows, "id", column("id"), read_id),
            customers: field(rows, "customer_id", column("customer_id"), read_customer_id),
            types: field(rows, "type", column("type"), read_text),
            timestamps: field(rows, "timestamp", column("timestamp"), read_timestamp),
            processes: field(rows, "process", column("process"), read_text),
            properties: field(rows, "properties", column("properties"), read_properties),
        }
    }
}

impl<'a> BlockCells<'a> {
    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Row `i`'s fields, or the first reason (in column order) it is rejected. The properties
    /// are still text: a caller parses them, and a parse error rejects the row last.
    pub(crate) fn row(&self, i: usize) -> Result<RowRef<'a>, String> {
        let id = self.ids[i].clone()?.ok_or("field `id` is null")?;
        if matches!(id, IdCell::Text("")) {
            return Err("field `id` is empty".to_string());
        }
        let event_type = self.types[i].clone()?.ok_or("field `type` is null")?;
        if event_type.is_empty() {
            return Err("field `type` is empty".to_string());
        }
        Ok(RowRef {
            id,
            customer_id: self.customers[i]
                .clone()?
                .ok_or("field `customer_id` is null")?,
            event_type,
            timestamp: self.timestamps[i]
                .clone()?
                .ok_or("field `timestamp` is null")?,
            process: self.processes[i].clone()?,
            properties: self.properties[i].clone()?,
        })
    }
}

/// The cells of a field: the column's values (`None` = null; an absent optional column is all
/// null), or every row rejected with the column-level reason.
fn field<'s, T: Clone>(
    rows: usize,
    name: &str,
    column: Result<Option<(&'s Series, ColumnKind)>, String>,
    read: impl Fn(&'s Series, &ColumnKind) -> Result<Cells<Option<T>>, String>,
) -> Cells<Option<T>> {
    let cells = match column {
        // Absent required columns were refused above; absent optional ones are all null.
        Ok(None) => Ok(vec![Ok(None); rows]),
        Ok(Some((series, kind))) => read(series, &kind),
        Err(e) => Err(e),
    };
    match cells {
        Ok(cells) => cells
            .into_iter()
            .map(|c| c.map_err(|e| format!("field `{name}`: {e}")))
            .collect(),
        Err(e) => vec![Err(format!("field `{name}`: {e}")); rows],
    }
}

fn expected(series: &Series, what: &str) -> String {
    format!("column has type {}, expected {what}", series.dtype())
}

/// Text cells borrowed from a column of kind [`ColumnKind::Text`] (the block cast it to
/// `String` when it was read).
fn read_text<'s>(series: &'s Series, kind: &ColumnKind) -> Result<Cells<Option<&'s str>>, String> {
    if *kind != ColumnKind::Text {
        return Err(expected(series, "text"));
    }
    let ca = series.str().map_err(|e| e.to_string())?;
    Ok(ca.iter().map(Ok).collect())
}

fn read_id<'s>(series: &'s Series, kind: &ColumnKind) -> Result<Cells<Option<IdCell<'s>>>, String> {
    match kind {
        ColumnKind::Text => Ok(read_text(series, kind)?
            .into_iter()
            .map(|c| c.map(|v| v.map(IdCell::Text)))
            .collect()),
        ColumnKind::Int | ColumnKind::UInt => Ok(read_unsigned(series, kind)?
            .into_iter()
            .map(|c| c.map(|v| v.map(IdCell::Number)))
            .collect()),
        _ => Err(expected(series, "text or a non-negative integer")),
    }
}

fn read_customer_id(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<u64>>, String> {
    match kind {
        ColumnKind::Int | ColumnKind::UInt => read_unsigned(series, kind),
        // Refused per row with the value, as JSONL refuses `1.0`: never truncated.
        ColumnKind::Float => {
            let s = series.cast(&DataType::Float64).map_err(|e| e.to_string())?;
            Ok(s.f64()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|v| match v {
                    None => Ok(None),
                    Some(x) => Err(format!(
                        "{x:?} is a float; a customer id is a non-negative integer"
                    )),
                })
                .collect())
        }
        _ => Err(expected(series, "a non-negative integer")),
    }
}

/// Integer cells as `u64`; a negative value rejects its row.
fn read_unsigned(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<u64>>, String> {
    if *kind == ColumnKind::UInt {
        let s = series.cast(&DataType::UInt64).map_err(|e| e.to_string())?;
        return Ok(s.u64().map_err(|e| e.to_string())?.iter().map(Ok).collect());
    }
    let s = series.cast(&DataType::Int64).map_err(|e| e.to_string())?;
    Ok(s.i64()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|v| match v {
            Some(n) if n < 0 => Err(format!("{n} is negative")),
            v => Ok(v.map(|n| n as u64)),
        })
        .collect())
}

fn read_timestamp(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<i64>>, String> {
    if let Some(cells) = timestamp_cells(series).map_err(|e| e.to_string())? {
        return Ok(cells);
    }
    if *kind != ColumnKind::Text {
        return Err(expected(series, "a datetime, a date or RFC 3339 text"));
    }
    Ok(read_text(series, kind)?
        .into_iter()
        .map(|c| match c? {
            None => Ok(None),
            Some(t) => parse_timestamp_explained(t).map(Some),
        })
        .collect())
}

/// The JSON text of each row's properties; it is parsed by the caller.
fn read_properties<'s>(
    series: &'s Series,
    kind: &ColumnKind,
) -> Result<Cells<Option<&'s str>>, String> {
    if *kind != ColumnKind::Text {
        return Err(expected(series, "text holding a JSON object"));
    }
    read_text(series, kind)
}
