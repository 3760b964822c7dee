//! Parquet into columns: a slice of rows decoded by Polars while the previous slice is
//! parsed in parallel pieces; each row goes through the same cell checks as `read_events`
//! ([`crate::io::events::parquet::BlockCells::row`]) and its `properties` text through the
//! same object reader.

use std::path::Path;

use rayon::prelude::*;

use super::builder::Builder;
use super::props::Captured;
use super::{EventColumns, PropertySelection};
use crate::io::events::jsonl::parse_properties_as;
use crate::io::events::parquet::{Block, EventsFile};
use crate::io::events::EventIoError;

/// Rows decoded at a time.
const SLICE_ROWS: usize = 1 << 20;
/// Rows per piece parsed by one task.
const PIECE_ROWS: usize = 1 << 15;

/// Reads every row of an events Parquet file into columns.
pub(crate) fn read(
    path: &Path,
    selection: &PropertySelection,
) -> Result<EventColumns, EventIoError> {
    let file = EventsFile::open(path)?;
    let rows = file.rows();
    let slice = |start: usize| (start, SLICE_ROWS.min(rows - start));
    let mut columns = EventColumns::default();
    let mut start = 0;
    let mut current = if rows > 0 {
        Some(file.read(Some(slice(0)))?)
    } else {
        None
    };
    while let Some(block) = current.take() {
        let next_start = start + block.len();
        // Parse this slice while the next one is decoded.
        let (pieces, next) = rayon::join(
            || parse_block(&block, selection),
            || (next_start < rows).then(|| file.read(Some(slice(next_start)))),
        );
        drop(block);
        for (offset, piece) in pieces {
            columns
                .append(piece, (start + offset) as u64)
                .map_err(|e| EventIoError::Parquet {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
        }
        start = next_start;
        current = next.transpose()?;
    }
    Ok(columns)
}

/// The block's pieces parsed in parallel: each with its first row's offset in the block.
fn parse_block(block: &Block<'_>, selection: &PropertySelection) -> Vec<(usize, EventColumns)> {
    let offsets: Vec<usize> = (0..block.len()).step_by(PIECE_ROWS).collect();
    offsets
        .into_par_iter()
        .map(|offset| {
            let piece = block.slice(offset, PIECE_ROWS.min(block.len() - offset));
            (offset, parse_piece(&piece, selection))
        })
        .collect()
}

fn parse_piece(piece: &Block<'_>, selection: &PropertySelection) -> EventColumns {
    let cells = piece.cells();
    let mut builder = Builder::new(selection);
    for i in 0..cells.len() {
        let parsed = cells.row(i).and_then(|row| {
            let properties = match row.properties {
                None => None,
                Some(json) => Some(
                    parse_properties_as::<Captured>(json)
                        .map_err(|e| format!("field `properties`: {e}"))?,
                ),
            };
            Ok((row, properties))
        });
        match parsed {
            Ok((row, properties)) => {
                builder.push(row.customer_id, row.event_type, row.timestamp, properties)
            }
            Err(reason) => builder.reject(i as u64 + 1, reason),
        }
    }
    builder.finish()
}
