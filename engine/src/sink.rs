//! The commit sink: the one way results leave the engine.
//!
//! Every input record ends in exactly one [`RecordResult`] — processed (with the effects its
//! transaction committed), rejected or held — and the engine hands each to a
//! [`CommitSink`] exactly once, **in input order**, as soon as it is final. For a processed
//! record that is right after its transaction committed: its writes are in the state, and its
//! effects are released here and nowhere else, so a sink that delivers them (to a webhook, a
//! queue, a live submitter waiting on its outcome) delivers each exactly once. A re-executed
//! speculative transaction never reaches the sink twice; only its final incarnation commits.
//!
//! Besides the records' own results, the sink receives **slow-lane results**
//! (`outcome.lane == Some("slow")`, see [`crate::slow_lane`]): a throttled trigger's deferred
//! execution, run later as its own transaction, reaches the sink once, at its turn, carrying
//! its event's line and position.
//!
//! This is the attachment point for everything downstream — like aptos' commit hook or
//! ripgrep's `Sink`: [`BatchCollector`] collects a [`BatchResult`] (what
//! `Engine::run_batch` returns and `fusebox run` writes), a live engine answers its
//! submitters, metrics count. A closure `FnMut(RecordResult)` is a sink too.
//!
//! Invariants:
//! - the records' own results (`lane` `None`) arrive with `position`s 0, 1, 2, … with no gap
//!   and no repeat, over the whole stream; a slow-lane result repeats its event's position;
//! - effects arrive in commit order: input order, with slow-lane runs at their turns;
//! - the sink is called on the thread that drives the stream, never from an executor's
//!   worker threads.

use std::collections::BTreeMap;

use crate::engine::BatchResult;
use crate::exec::parallel::ParallelStats;
use crate::gate::HeldEvent;
use crate::health::{BatchHealth, HealthTally};
use crate::outcome::{Effect, RecordOutcome, RecordStatus};
use crate::report::{Report, ReportBuilder, Timings};
use crate::trigger::{TriggerIdx, TriggerSet};

/// What one input record became.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordResult {
    /// Position of the record in the stream: 0 for the first record of the first chunk,
    /// counting every record (blank lines are not records).
    pub position: u64,
    /// Its outcome (the line of `outcomes.jsonl`).
    pub outcome: RecordOutcome,
    /// The effects its transaction committed, in order (empty unless processed).
    pub effects: Vec<Effect>,
    /// For a held record, what the quota gate held and why.
    pub held: Option<HeldEvent>,
    /// Chained events its transaction processed.
    pub chained_events: u64,
    /// Every state key its transaction wrote, in first-write order (empty unless processed).
    /// Their values are in the state when the record reaches the sink; a state store
    /// persists them from there (see `live::StateStore`).
    pub written: Vec<crate::state::Key>,
    /// Wall time of each of its trigger executions: trigger index and nanoseconds, in the
    /// order of the outcome's trigger list. Diagnostic only: never deterministic.
    pub timings: Vec<(TriggerIdx, u64)>,
}

impl RecordResult {
    /// The result of a record that did not run (rejected or held): no effects, no writes.
    pub fn not_run(position: u64, outcome: RecordOutcome, held: Option<HeldEvent>) -> RecordResult {
        RecordResult {
            position,
            outcome,
            effects: Vec::new(),
            held,
            chained_events: 0,
            written: Vec::new(),
            timings: Vec::new(),
        }
    }
}

/// Receives every record's result, in input order, exactly once, and each slow-lane result
/// at its turn (see the module docs).
pub trait CommitSink {
    /// One record's final result.
    fn record(&mut self, result: RecordResult);
}

impl<F: FnMut(RecordResult)> CommitSink for F {
    fn record(&mut self, result: RecordResult) {
        self(result)
    }
}

/// A stream's deterministic report and health, counted result by result without keeping
/// the results: what a sink that writes results out as they come (a streamed `fusebox run`)
/// keeps. It counts the report exactly as [`BatchCollector`] does (one `count` for both).
pub struct StreamTally {
    report: ReportBuilder,
    health: HealthTally,
    held_by_process: BTreeMap<String, u64>,
}

/// What a [`StreamTally`] adds up to.
#[derive(Debug)]
pub struct StreamTotals {
    /// The deterministic report (`report.json`).
    pub report: Report,
    /// Wall-clock timings, with the per-trigger ones (`timings.json`).
    pub timings: Timings,
    /// What the parallel executor did.
    pub parallel: ParallelStats,
    /// Is something broken, and where ([`crate::health`]).
    pub health: BatchHealth,
    /// Events held by the quota gate.
    pub held: u64,
}

impl StreamTally {
    /// An empty tally for a stream run with `triggers`.
    pub fn new(triggers: &TriggerSet) -> StreamTally {
        StreamTally {
            report: ReportBuilder::new(triggers),
            health: HealthTally::default(),
            held_by_process: BTreeMap::new(),
        }
    }

    /// Counts one result (a record's own or a slow-lane one), in the order the sink got it.
    pub fn record(&mut self, r: &RecordResult) {
        count(&mut self.report, r);
        self.health.outcome(&r.outcome);
        if let Some(h) = &r.held {
            self.health.held(h);
            *self
                .held_by_process
                .entry(h.process.to_string())
                .or_default() += 1;
        }
    }

    /// The totals, with the stream's summary (see [`crate::Session::finish`]).
    pub fn finish(self, summary: crate::engine::SessionSummary) -> StreamTotals {
        let (mut report, timings) = self.report.finish(summary.timings);
        report.governor = summary.governor;
        let held = self.held_by_process.values().sum();
        report.held_by_process = self.held_by_process;
        StreamTotals {
            report,
            timings,
            parallel: summary.parallel,
            health: self.health.finish(),
            held,
        }
    }
}

/// The sink that collects a whole stream into a [`BatchResult`]: outcomes, effects, held
/// events, the deterministic report and the per-trigger timings.
pub struct BatchCollector {
    outcomes: Vec<RecordOutcome>,
    effects: Vec<Effect>,
    held: Vec<HeldEvent>,
    report: ReportBuilder,
}

impl BatchCollector {
    /// An empty collector for a stream run with `triggers`.
    pub fn new(triggers: &TriggerSet) -> BatchCollector {
        BatchCollector {
            outcomes: Vec::new(),
            effects: Vec::new(),
            held: Vec::new(),
            report: ReportBuilder::new(triggers),
        }
    }

    /// The collected result, with the stream's summary (see [`crate::Session::finish`]);
    /// its timings are completed here with the per-trigger ones.
    pub fn finish(self, summary: crate::engine::SessionSummary) -> BatchResult {
        let (mut report, timings) = self.report.finish(summary.timings);
        report.governor = summary.governor;
        for h in &self.held {
            *report
                .held_by_process
                .entry(h.process.to_string())
                .or_default() += 1;
        }
        BatchResult {
            outcomes: self.outcomes,
            effects: self.effects,
            report,
            timings,
            parallel: summary.parallel,
            held: self.held,
        }
    }
}

impl CommitSink for BatchCollector {
    fn record(&mut self, r: RecordResult) {
        count(&mut self.report, &r);
        self.outcomes.push(r.outcome);
        self.effects.extend(r.effects);
        self.held.extend(r.held);
    }
}

/// Counts one result into a report.
fn count(report: &mut ReportBuilder, r: &RecordResult) {
    if let RecordStatus::Processed { triggers } = &r.outcome.status {
        report.transaction(triggers, &r.timings, &r.effects, r.chained_events);
    }
    report.record(&r.outcome);
}
