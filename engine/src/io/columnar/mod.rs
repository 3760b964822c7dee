//! Events read straight into columns, in parallel, with no object per event.
//!
//! [`read_event_columns`] reads the same files as [`crate::io::events::read_events`] — JSONL
//! or Parquet — and accepts exactly the same events: every record goes through the same
//! checks ([`crate::io::events::jsonl`]'s line rules, [`crate::io::events::parquet`]'s cell
//! rules), so a record is valid here if and only if `read_events` gives an `Ok` event for it,
//! and a rejected record keeps its line (or row) number and the same reason. Bad records never
//! stop the read.
//!
//! ## Layout
//! Valid events, in input order, as columns: customer id, type code (into a dictionary of type
//! names in first-appearance order) and timestamp. Properties are sparse columns, one per
//! property name: the indices of the events that have the key (ascending) and their values as
//! small `Copy` cells (strings interned per column, nested lists and objects kept as
//! [`Value`]s on the side). Which properties are kept is the caller's choice
//! ([`PropertySelection`]): every property object is still parsed and checked in full (a
//! malformed or repeated-key object rejects its record, as in `read_events`), but only the
//! selected keys are stored. Event ids and processes are checked, not kept.
//!
//! ## Parallelism and memory
//! JSONL is read in blocks of [`jsonl::BLOCK_BYTES`]; each block is cut at line ends into
//! pieces parsed on Rayon's pool into per-piece builders, which are then appended in input
//! order (so the result does not depend on the number of threads), while the next block is
//! read. Parquet is decoded a slice of rows at a time (Polars decodes the columns), each slice
//! cut into pieces parsed in parallel the same way; a slice is dropped once its rows are in
//! the columns. Peak memory is the columns plus about two blocks or slices in flight.
//!
//! ## Invariants
//! - `customer_ids`, `type_codes` and `timestamps` have one entry per valid event, in input
//!   order; `type_codes[i] < types.len()`.
//! - every [`PropertyColumn`] has strictly ascending `events`, each below the number of
//!   events, and one value per entry; at most one column per name.
//! - `rejected` is in input order, by line.
//! - Event indices are `u32`: a file of more than `u32::MAX` valid events is refused.

mod builder;
mod jsonl;
mod parquet;
mod props;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::io::events::{EventIoError, Format};
use crate::value::Value;

pub use props::{PropertyColumn, PropertyValue};

/// Which properties [`read_event_columns`] keeps (all are checked either way).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PropertySelection {
    /// Every property.
    #[default]
    All,
    /// Only these names.
    Only(Vec<Arc<str>>),
}

impl PropertySelection {
    /// Whether property `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        match self {
            PropertySelection::All => true,
            PropertySelection::Only(names) => names.iter().any(|n| n.as_ref() == name),
        }
    }
}

/// A record that is not an event: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line (JSONL) or row (Parquet).
    pub line: u64,
    /// Why it is rejected (the same text as [`crate::event::EventRecord`]'s error).
    pub reason: String,
}

/// Valid events as columns, plus the rejected records (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct EventColumns {
    /// Customer id per event.
    pub customer_ids: Vec<u64>,
    /// Type code per event: an index into [`Self::types`].
    pub type_codes: Vec<u32>,
    /// Type names by code.
    pub types: Vec<Arc<str>>,
    /// Timestamp per event: microseconds since the epoch, UTC.
    pub timestamps: Vec<i64>,
    /// The kept properties, one sparse column per name.
    pub properties: Vec<PropertyColumn>,
    /// Records that are not events, in input order.
    pub rejected: Vec<Rejected>,
}

impl EventColumns {
    /// Number of valid events.
    pub fn len(&self) -> usize {
        self.customer_ids.len()
    }

    /// Whether there is no valid event.
    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty()
    }

    /// The latest timestamp of a valid event.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.timestamps.iter().copied().max()
    }

    /// The property column `name`, if kept and present.
    pub fn property(&self, name: &str) -> Option<&PropertyColumn> {
        self.properties.iter().find(|c| c.name.as_ref() == name)
    }

    /// The properties of event `i` as `(name, value)` pairs, sorted by name (a lookup per
    /// column: for tests and diagnostics, not for hot loops).
    pub fn properties_of(&self, i: usize) -> Vec<(Arc<str>, Value)> {
        let mut out: Vec<(Arc<str>, Value)> = self
            .properties
            .iter()
            .filter_map(|c| c.value_of_event(i).map(|v| (c.name.clone(), v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Reads a `.jsonl` (`.ndjson`, `.json`) or `.parquet` events file into columns; the same
/// file-level errors as [`crate::io::events::read_events`] (cannot open, not an events
/// Parquet file, unknown format, no record at all).
pub fn read_event_columns(
    path: &Path,
    selection: &PropertySelection,
) -> Result<EventColumns, EventIoError> {
    let columns = match Format::of(path)? {
        Format::Jsonl => {
            let open_error = |error| EventIoError::Open {
                path: path.to_path_buf(),
                error,
            };
            let file = File::open(path).map_err(open_error)?;
            jsonl::read(file, selection).map_err(open_error)?
        }
        Format::Parquet => parquet::read(path, selection)?,
    };
    if columns.is_empty() && columns.rejected.is_empty() {
        return Err(EventIoError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(columns)
}

/// Reads JSONL events from any reader into columns (see [`read_event_columns`]).
pub fn read_jsonl_columns(
    reader: impl std::io::Read + Send,
    selection: &PropertySelection,
) -> std::io::Result<EventColumns> {
    jsonl::read(reader, selection)
}
