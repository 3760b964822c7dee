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

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use super::jsonl::parse_properties;
use super::EventIoError;
use crate::event::{Event, EventRecord};
use crate::io::parquet::{self, ColumnKind};
use crate::io::temporal::timestamp_cells;
use crate::value::{parse_timestamp_explained, Map};

const REQUIRED: [&str; 4] = ["id", "customer_id", "type", "timestamp"];
const OPTIONAL: [&str; 2] = ["process", "properties"];

/// One value per row, or why that row's field cannot be read.
type Cells<T> = Vec<Result<T, String>>;

pub(super) fn read_parquet(path: &Path) -> Result<Vec<EventRecord>, EventIoError> {
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
    let readable: Vec<String> = kinds
        .iter()
        .filter(|(_, k)| k.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    let df = parquet::read(path, &readable).map_err(bad)?;
    let rows = df.height();
    let column = |name: &str| -> Result<Option<(&Series, ColumnKind)>, String> {
        match kinds.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Err(ty))) => Err(format!("column has type {ty}")),
            Some((_, Ok(kind))) => df
                .column(name)
                .map(|c| Some((c.as_materialized_series(), kind.clone())))
                .map_err(|e| e.to_string()),
        }
    };
    let ids = field(rows, "id", column("id"), read_id);
    let customers = field(rows, "customer_id", column("customer_id"), read_customer_id);
    let types = field(rows, "type", column("type"), read_text);
    let timestamps = field(rows, "timestamp", column("timestamp"), read_timestamp);
    let processes = field(rows, "process", column("process"), read_text);
    let properties = field(rows, "properties", column("properties"), read_properties);

    let mut records = Vec::with_capacity(rows);
    let zipped = ids
        .into_iter()
        .zip(customers)
        .zip(types)
        .zip(timestamps)
        .zip(processes)
        .zip(properties);
    for (row, (((((id, customer_id), event_type), timestamp), process), props)) in
        zipped.enumerate()
    {
        let event = (|| {
            let id = id?.ok_or("field `id` is null")?;
            if id.is_empty() {
                return Err("field `id` is empty".to_string());
            }
            let event_type = event_type?.ok_or("field `type` is null")?;
            if event_type.is_empty() {
                return Err("field `type` is empty".to_string());
            }
            Ok(Event {
                id: Arc::from(id),
                customer_id: customer_id?.ok_or("field `customer_id` is null")?,
                event_type: Arc::from(event_type),
                timestamp: timestamp?.ok_or("field `timestamp` is null")?,
                process: process?.map(Arc::from),
                properties: Arc::new(props?.unwrap_or_default()),
            })
        })();
        records.push(EventRecord {
            line: row as u64 + 1,
            event,
        });
    }
    Ok(records)
}

/// The cells of a field: the column's values (`None` = null; an absent optional column is all
/// null), or every row rejected with the column-level reason.
fn field<T: Clone>(
    rows: usize,
    name: &str,
    column: Result<Option<(&Series, ColumnKind)>, String>,
    read: impl Fn(&Series, &ColumnKind) -> Result<Cells<Option<T>>, String>,
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

fn read_text(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<String>>, String> {
    if *kind != ColumnKind::Text {
        return Err(expected(series, "text"));
    }
    let s = series.cast(&DataType::String).map_err(|e| e.to_string())?;
    let ca = s.str().map_err(|e| e.to_string())?;
    Ok(ca.iter().map(|v| Ok(v.map(str::to_string))).collect())
}

fn read_id(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<String>>, String> {
    match kind {
        ColumnKind::Text => read_text(series, kind),
        ColumnKind::Int | ColumnKind::UInt => Ok(read_unsigned(series, kind)?
            .into_iter()
            .map(|c| c.map(|v| v.map(|n| n.to_string())))
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
            Some(t) => parse_timestamp_explained(&t).map(Some),
        })
        .collect())
}

fn read_properties(series: &Series, kind: &ColumnKind) -> Result<Cells<Option<Map>>, String> {
    if *kind != ColumnKind::Text {
        return Err(expected(series, "text holding a JSON object"));
    }
    Ok(read_text(series, kind)?
        .into_iter()
        .map(|c| match c? {
            None => Ok(None),
            Some(json) => parse_properties(&json).map(Some),
        })
        .collect())
}
