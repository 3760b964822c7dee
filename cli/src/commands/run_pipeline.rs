//! The streamed part of `fusebox run`: read, execute and write in bounded, overlapping chunks.
//!
//! # Design
//! Three stages on three threads, joined by bounded channels:
//! 1. **read** (a thread of its own): [`EventChunks`] cuts the events file into chunks of at
//!    most `chunk` records and parses each one in parallel; one parsed chunk waits in the
//!    channel while the next is read, so parsing overlaps execution;
//! 2. **execute** (the calling thread, which drives the engine's workers): each chunk goes
//!    through one [`Session`] — the engine's streaming core, the same one `run_batch` and the
//!    live engine use — into a [`StreamSink`], which counts the report and health
//!    ([`StreamTally`]) and hands the chunk's outcomes, effects and held lines on;
//! 3. **write** (a thread of its own): serializes them into `outcomes.jsonl`,
//!    `effects.jsonl` and `held.jsonl` as they come.
//!
//! # Invariants
//! - **Same bytes as a whole-file run.** A session pushed chunk by chunk gives exactly the
//!   results of one batch (`engine/tests/streaming.rs`), the chunks are exactly the
//!   whole-file read (`engine/tests/fuzz_readers.rs`), results reach the sink in input order
//!   and the writer keeps that order; lines are serialized as `write_jsonl` does. So the
//!   output files are byte-identical to a run that reads everything first, for every chunk
//!   size, executor and thread count (`cli/tests/cli.rs`).
//! - **Bounded memory.** At most four chunks of events and results are alive (one being
//!   read, one waiting, one executing, one being written) besides the customer table and the
//!   engine state: memory grows with the chunk size and the customers, not with the events.
//!   (The ids seen so far, for duplicate detection, are the one per-event cost left; see
//!   `fusebox_engine::engine`.)
//! - **Nothing half-written.** Output files are temporary files until the stream ends; an
//!   error in any stage stops the others (their channels close) and leaves no output file.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant};

use anyhow::Result;
use fusebox_engine::event::EventRecord;
use fusebox_engine::gate::HeldEvent;
use fusebox_engine::io::events::{EventChunks, EventIoError, ReadProgress};
use fusebox_engine::outcome::{Effect, RecordOutcome};
use fusebox_engine::trigger::TriggerSet;
use fusebox_engine::{CommitSink, RecordResult, Session, StreamTally, StreamTotals};

use crate::files::JsonlFile;
use crate::Failure;

/// Records per chunk unless `--chunk` says otherwise.
pub const DEFAULT_CHUNK: usize = 65_536;

/// What the executing stage hands the writer for one chunk.
struct Written {
    outcomes: Vec<RecordOutcome>,
    effects: Vec<Effect>,
    /// `held.jsonl` lines, serialized.
    held: Vec<String>,
}

enum ToWriter {
    Chunk(Written),
    /// The stream ended well: put the files in place.
    Commit,
}

/// The sink of a streamed run: tallies every result, keeps the current chunk's for the writer.
pub struct StreamSink {
    tally: StreamTally,
    outcomes: Vec<RecordOutcome>,
    effects: Vec<Effect>,
    held: Vec<HeldEvent>,
}

impl StreamSink {
    fn new(triggers: &TriggerSet) -> StreamSink {
        StreamSink {
            tally: StreamTally::new(triggers),
            outcomes: Vec::new(),
            effects: Vec::new(),
            held: Vec::new(),
        }
    }

    /// The results gathered since the last call; `chunk` (whose first record is at stream
    /// position `base`) holds the events of the held records.
    fn take(&mut self, chunk: &[EventRecord], base: u64) -> Result<Written> {
        let held = std::mem::take(&mut self.held)
            .iter()
            .map(|h| {
                let event = (h.record as u64)
                    .checked_sub(base)
                    .and_then(|i| chunk.get(usize::try_from(i).ok()?))
                    .and_then(|r| r.event.as_ref().ok());
                crate::quotas::held_line(h, event)
            })
            .collect::<Result<_>>()?;
        Ok(Written {
            outcomes: std::mem::take(&mut self.outcomes),
            effects: std::mem::take(&mut self.effects),
            held,
        })
    }
}

impl CommitSink for StreamSink {
    fn record(&mut self, r: RecordResult) {
        self.tally.record(&r);
        self.outcomes.push(r.outcome);
        self.effects.extend(r.effects);
        self.held.extend(r.held);
    }
}

/// Where a streamed run writes (`held` only with quotas).
pub struct OutputFiles {
    outcomes: JsonlFile,
    effects: JsonlFile,
    held: Option<JsonlFile>,
}

impl OutputFiles {
    /// Starts the files in `out` (temporary until the stream ends well).
    pub fn create(out: &Path, quotas: bool) -> Result<OutputFiles> {
        Ok(OutputFiles {
            outcomes: JsonlFile::create(&out.join("outcomes.jsonl"))?,
            effects: JsonlFile::create(&out.join("effects.jsonl"))?,
            held: if quotas {
                Some(JsonlFile::create(&out.join("held.jsonl"))?)
            } else {
                None
            },
        })
    }
}

/// Streams `chunks` through `session` into `files`; `on_read` hears how far the reading is
/// and how many records each chunk had. Returns the stream's totals (after the slow lane
/// drained).
pub fn stream(
    mut session: Session<'_>,
    triggers: &TriggerSet,
    chunks: EventChunks,
    files: OutputFiles,
    on_read: &dyn Fn(ReadProgress, usize),
) -> Result<StreamTotals, Failure> {
    std::thread::scope(|scope| {
        let (chunk_tx, chunk_rx) = sync_channel(1);
        scope.spawn(move || read(chunks, chunk_tx));
        let (out_tx, out_rx) = sync_channel(1);
        let writer = scope.spawn(move || write(out_rx, files));

        let mut sink = StreamSink::new(triggers);
        // Where the executing stage waited: for the reader (input-bound) and for the writer
        // (output-bound); with `-v`, the run logs both.
        let (mut waited_input, mut waited_output) = (Duration::ZERO, Duration::ZERO);
        let executed = (|| -> Result<(), Failure> {
            loop {
                let asked = Instant::now();
                let Ok(item) = chunk_rx.recv() else {
                    return Ok(());
                };
                waited_input += asked.elapsed();
                let (chunk, progress) = item.map_err(|e| Failure::Input(e.into()))?;
                on_read(progress, chunk.len());
                let base = session.position();
                session
                    .push(&chunk, &mut sink)
                    .map_err(|e| Failure::Runtime(e.into()))?;
                let written = sink.take(&chunk, base).map_err(Failure::Runtime)?;
                drop(chunk);
                let sent = Instant::now();
                if out_tx.send(ToWriter::Chunk(written)).is_err() {
                    // The writer failed: its error is reported below.
                    return Ok(());
                }
                waited_output += sent.elapsed();
            }
        })();
        tracing::info!(
            waited_for_input_ms = waited_input.as_millis() as u64,
            waited_for_writer_ms = waited_output.as_millis() as u64,
            "stream pipeline"
        );
        let finished = executed.and_then(|()| {
            let summary = session
                .finish(&mut sink)
                .map_err(|e| Failure::Runtime(e.into()))?;
            let written = sink.take(&[], 0).map_err(Failure::Runtime)?;
            // A failed send means the writer failed; `join` below says why.
            let _ = out_tx.send(ToWriter::Chunk(written));
            let _ = out_tx.send(ToWriter::Commit);
            Ok(summary)
        });
        drop(out_tx);
        let wrote = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let summary = finished?;
        match wrote {
            Ok(true) => Ok(sink.tally.finish(summary)),
            Ok(false) => Err(Failure::Runtime(anyhow::anyhow!(
                "the output writer stopped before the end of the stream"
            ))),
            Err(e) => Err(Failure::Runtime(e)),
        }
    })
}

/// The read stage: every chunk with the progress after it, until the end, an error, or
/// nobody listening.
fn read(
    mut chunks: EventChunks,
    tx: SyncSender<Result<(Vec<EventRecord>, ReadProgress), EventIoError>>,
) {
    while let Some(item) = chunks.next() {
        let failed = item.is_err();
        if tx.send(item.map(|c| (c, chunks.progress()))).is_err() || failed {
            return;
        }
    }
}

/// The write stage: writes every chunk's lines; commits the files on `Commit`. Returns
/// whether it committed (the channel closing first means the stream failed: nothing is put
/// in place).
fn write(rx: Receiver<ToWriter>, mut files: OutputFiles) -> Result<bool> {
    for message in rx {
        match message {
            ToWriter::Chunk(w) => {
                for o in &w.outcomes {
                    files.outcomes.item(o)?;
                }
                for e in &w.effects {
                    files.effects.item(e)?;
                }
                if let Some(held) = &mut files.held {
                    for line in &w.held {
                        held.line(line)?;
                    }
                }
            }
            ToWriter::Commit => {
                files.outcomes.commit()?;
                files.effects.commit()?;
                if let Some(held) = files.held {
                    held.commit()?;
                }
                return Ok(true);
            }
        }
    }
    Ok(false)
}
