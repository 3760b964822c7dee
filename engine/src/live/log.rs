//! The accepted-event log: every event a live engine accepted, in acceptance order, one
//! JSON object per line in the `fusebox run --events` format.
//!
//! Line *n* of the log is the event the engine numbered *n* (its outcome's `line`), so
//! `fusebox run --events LOG` over the same starting customers and triggers replays the live
//! run: the same final state, effects and outcomes, byte for byte (tested in
//! `engine/tests/live.rs`). Each event is written in its canonical form
//! ([`crate::gate::canonical_json`]), which the events reader reads back as the same event.
//!
//! A batch's lines are written and flushed to the operating system **before** the batch
//! runs (write-ahead): an event whose effects were delivered is always in the log. A write
//! failure stops the engine before the batch runs (see [`super::LiveError::Log`]).
//! Appending to an existing log continues its numbering, so one file holds one engine's
//! whole history; start a new file for a new starting state.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::event::Event;
use crate::gate::canonical_json;

/// An open accepted-event log.
#[derive(Debug)]
pub struct AcceptedLog {
    path: PathBuf,
    out: BufWriter<File>,
    /// Lines in the file so far.
    lines: u64,
}

impl AcceptedLog {
    /// Opens (creating, or appending to) the log at `path`. An existing file's lines are
    /// counted so numbering continues after them.
    pub fn open(path: &Path) -> std::io::Result<AcceptedLog> {
        let lines = match File::open(path) {
            Ok(f) => {
                let mut n = 0u64;
                for line in BufReader::new(f).lines() {
                    line?;
                    n += 1;
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AcceptedLog {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            lines,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written so far (including those found when opened).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Appends a batch's events and flushes them to the operating system.
    pub fn append<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e Event>,
    ) -> std::io::Result<()> {
        for event in events {
            self.out.write_all(canonical_json(event).as_bytes())?;
            self.out.write_all(b"\n")?;
            self.lines += 1;
        }
        self.out.flush()
    }
}
