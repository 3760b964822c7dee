//! JSONL into columns: blocks read while the previous one is parsed, each block parsed in
//! parallel pieces cut at line ends.
//!
//! Lines are what [`crate::io::events::jsonl::read_jsonl`] calls lines: split at `\n`, each
//! without its trailing `\r`s, a UTF-8 byte-order mark skipped at the start of the file only,
//! blank lines skipped but counted. Each line goes through the same
//! [`parse_fields`](crate::io::events::jsonl::parse_fields) as `read_events`.

use std::io::Read;

use rayon::prelude::*;

use super::builder::Builder;
use super::props::Captured;
use super::{EventColumns, PropertySelection};
use crate::io::events::jsonl::{line_text, parse_fields, trim_line_end, BOM};

/// Bytes read per block (a line longer than this grows the block until it fits).
pub(crate) const BLOCK_BYTES: usize = 16 << 20;
/// Bytes per piece parsed by one task.
const PIECE_BYTES: usize = 1 << 20;

/// Reads every line of `reader` into columns.
pub(crate) fn read(
    mut reader: impl Read + Send,
    selection: &PropertySelection,
) -> std::io::Result<EventColumns> {
    let mut columns = EventColumns::default();
    let mut lines_before: u64 = 0;
    // `pending`: bytes read but not parsed yet (an incomplete last line).
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut first = true;
    while !eof || !pending.is_empty() {
        let mut block = std::mem::take(&mut pending);
        if !eof {
            eof = fill(&mut reader, &mut block, BLOCK_BYTES)?;
        }
        // Parse up to the last line end; keep the rest for the next block.
        let cut = if eof {
            block.len()
        } else {
            match memchr::memrchr(b'\n', &block) {
                Some(i) => i + 1,
                // A line longer than the block: read more before parsing.
                None => {
                    pending = block;
                    continue;
                }
            }
        };
        let rest = block.split_off(cut);
        let mut text: &[u8] = &block;
        if first {
            text = text.strip_prefix(BOM).unwrap_or(text);
            first = false;
        }
        // Parse this block while the next one is read.
        let mut next = rest;
        let (parsed, read) = rayon::join(
            || parse_block(text, selection),
            || -> std::io::Result<bool> {
                if eof {
                    return Ok(true);
                }
                fill(&mut reader, &mut next, BLOCK_BYTES)
            },
        );
        eof = read?;
        for (piece, lines) in parsed {
            columns.append(piece, lines_before)?;
            lines_before += lines;
        }
        pending = next;
    }
    Ok(columns)
}

/// Reads until `buf` holds at least `want` bytes or the input ends; `true` at the end.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let start = buf.len();
    let target = start + want;
    buf.resize(target, 0);
    let mut filled = start;
    while filled < target {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(true);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(false)
}

/// Cuts `text` (whole lines) into pieces and parses them in parallel; per piece its columns
/// and the number of lines it spans.
fn parse_block(text: &[u8], selection: &PropertySelection) -> Vec<(EventColumns, u64)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = if text.len() - start <= PIECE_BYTES {
            text.len()
        } else {
            memchr::memchr(b'\n', &text[start + PIECE_BYTES..])
                .map_or(text.len(), |i| start + PIECE_BYTES + i + 1)
        };
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
        .into_par_iter()
        .map(|piece| parse_piece(piece, selection))
        .collect()
}

fn parse_piece(piece: &[u8], selection: &PropertySelection) -> (EventColumns, u64) {
    let mut builder = Builder::new(selection);
    let mut line: u64 = 0;
    for raw in piece.split_inclusive(|&b| b == b'\n') {
        line += 1;
        let bytes = trim_line_end(raw);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = line_text(bytes).and_then(parse_fields::<Captured>);
        match parsed {
            Ok(f) => builder.push(f.customer_id, &f.event_type, f.timestamp, f.properties),
            Err(reason) => builder.reject(line, reason),
        }
    }
    (builder.finish(), line)
}
