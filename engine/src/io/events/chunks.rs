//! Reading an events file chunk by chunk, for streams: a run's memory holds one chunk of
//! events (plus the ones in flight), not the file.
//!
//! [`EventChunks`] yields the records of [`super::read_events`], in order, in chunks of at most
//! `chunk` records: concatenated, the chunks *are* what `read_events` returns (same lines or
//! rows, same events, same rejections). JSONL lines are cut from the file serially (a chunk's
//! lines are one buffer) and parsed in parallel on the Rayon pool, each by the same
//! `jsonl::parse_event` as the whole-file reader; Parquet chunks are row slices of the file,
//! decoded through the same checked cells as `parquet::read_parquet`.
//!
//! Invariants: line and row numbers are positions in the whole file (1-based, blank JSONL
//! lines counted but yielding no record); the file-level errors of `read_events` (cannot
//! open, not Parquet, wrong columns, no record at all) come from [`EventChunks::open`], before
//! any chunk, so a caller can refuse a bad file before it creates anything; an I/O error in
//! the middle of the file ends the stream with that error.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::jsonl::{line_text, parse_event, trim_line_end, BOM};
use super::parquet::EventsFile;
use super::EventIoError;
use crate::event::EventRecord;

/// Chunks of an events file's records (see the module docs).
pub struct EventChunks {
    path: PathBuf,
    chunk: usize,
    source: Source,
    /// The first chunk, read by `open` to refuse an empty file.
    first: Option<Vec<EventRecord>>,
}

enum Source {
    Jsonl {
        reader: BufReader<File>,
        /// Lines read so far.
        line: u64,
        /// Bytes read so far.
        bytes: u64,
        done: bool,
    },
    Parquet {
        file: Box<EventsFile>,
        next: usize,
    },
}

/// How far a stream of chunks has read, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadProgress {
    /// JSONL: bytes read of the file's size.
    Bytes {
        /// Read so far.
        done: u64,
        /// The file's size.
        total: u64,
    },
    /// Parquet: rows read of the file's rows.
    Rows {
        /// Read so far.
        done: u64,
        /// Rows in the file.
        total: u64,
    },
}

impl EventChunks {
    /// Opens `path` (`.jsonl`/`.ndjson`/`.json` or `.parquet`) and reads its first chunk of at
    /// most `chunk` records (at least 1). Every file-level error of
    /// [`super::read_events`] is returned here.
    pub fn open(path: &Path, chunk: usize) -> Result<EventChunks, EventIoError> {
        let open_error = |error| EventIoError::Open {
            path: path.to_path_buf(),
            error,
        };
        let source = match super::Format::of(path)? {
            super::Format::Jsonl => Source::Jsonl {
                reader: BufReader::with_capacity(1 << 20, File::open(path).map_err(open_error)?),
                line: 0,
                bytes: 0,
                done: false,
            },
            super::Format::Parquet => Source::Parquet {
                file: Box::new(EventsFile::open(path)?),
                next: 0,
            },
        };
        let mut chunks = EventChunks {
            path: path.to_path_buf(),
            chunk: chunk.max(1),
            source,
            first: None,
        };
        match chunks.read_chunk()? {
            Some(first) => chunks.first = Some(first),
            None => {
                return Err(EventIoError::Empty {
                    path: path.to_path_buf(),
                })
            }
        }
        Ok(chunks)
    }

    /// How far the reading is (what was read, not what was consumed).
    pub fn progress(&self) -> ReadProgress {
        match &self.source {
            Source::Jsonl { reader, bytes, .. } => ReadProgress::Bytes {
                done: *bytes,
                total: reader.get_ref().metadata().map_or(*bytes, |m| m.len()),
            },
            Source::Parquet { file, next } => ReadProgress::Rows {
                done: *next as u64,
                total: file.rows() as u64,
            },
        }
    }

    /// The next chunk, `None` at the end of the file.
    fn read_chunk(&mut self) -> Result<Option<Vec<EventRecord>>, EventIoError> {
        let chunk = self.chunk;
        match &mut self.source {
            Source::Jsonl {
                reader,
                line,
                bytes,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                // The chunk's non-blank lines, one buffer: (line number, start, end).
                let mut buf = Vec::new();
                let mut lines: Vec<(u64, usize, usize)> = Vec::with_capacity(chunk);
                while lines.len() < chunk {
                    let start = buf.len();
                    let n =
                        reader
                            .read_until(b'\n', &mut buf)
                            .map_err(|error| EventIoError::Open {
                                path: self.path.clone(),
                                error,
                            })?;
                    if n == 0 {
                        *done = true;
                        break;
                    }
                    *bytes += n as u64;
                    *line += 1;
                    let whole = &buf[start..];
                    let mut text = trim_line_end(whole);
                    if *line == 1 {
                        text = text.strip_prefix(BOM).unwrap_or(text);
                    }
                    if text.iter().all(u8::is_ascii_whitespace) {
                        buf.truncate(start);
                        continue;
                    }
                    let from = start + offset_in(whole, text);
                    lines.push((*line, from, from + text.len()));
                }
                if lines.is_empty() {
                    return Ok(None);
                }
                let records = lines
                    .par_iter()
                    .map(|&(line, from, to)| EventRecord {
                        line,
                        event: line_text(&buf[from..to]).and_then(parse_event),
                    })
                    .collect();
                Ok(Some(records))
            }
            Source::Parquet { file, next } => {
                let rows = file.rows();
                if *next >= rows {
                    return Ok(None);
                }
                let len = chunk.min(rows - *next);
                let block = file.read(Some((*next, len)))?;
                let records = super::parquet::records_of(&block, *next as u64);
                *next += len;
                Ok(Some(records))
            }
        }
    }
}

/// Where `part` (a sub-slice of `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

impl Iterator for EventChunks {
    type Item = Result<Vec<EventRecord>, EventIoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        self.read_chunk().transpose()
    }
}
