//! Run reports: deterministic counts (`report.json`) and wall-clock timings (`timings.json`).
//!
//! Counts and timings are kept apart on purpose: everything in [`Report`] is a function of the
//! input alone, so `report.json` is byte-identical across runs, executors and thread counts,
//! like the other outputs. Timings are not, and live in [`Timings`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::exec::txn::TxnOutput;
use crate::outcome::{EffectKind, RecordOutcome, RecordStatus, TriggerResult};
use crate::trigger::TriggerSet;

/// Deterministic totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Input records by status.
    pub events: EventCounts,
    /// Rejected records by reason.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Effects by kind.
    pub effects: EffectCounts,
    /// Per trigger, by id.
    pub triggers: BTreeMap<String, TriggerStats>,
}

/// Input records by status.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventCounts {
    /// Records read.
    pub input: u64,
    /// Records that ran.
    pub processed: u64,
    /// Records rejected before running.
    pub rejected: u64,
    /// Records held back (quota).
    pub held: u64,
    /// Chained events created by committed executions.
    pub chained: u64,
}

/// Effects by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EffectCounts {
    /// All effects.
    pub total: u64,
    /// Messages.
    pub messages: u64,
    /// Feeds started.
    pub feeds: u64,
    /// Coupons issued.
    pub coupons: u64,
}

/// Counts for one trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TriggerStats {
    /// Owner, for notifications.
    pub owner: String,
    /// Executions started (= committed + skipped + aborted).
    pub fired: u64,
    /// Executions whose actions all applied.
    pub committed: u64,
    /// Executions whose condition was false.
    pub skipped: u64,
    /// Executions aborted.
    pub aborted: u64,
    /// Aborted executions by reason.
    pub aborted_by_reason: BTreeMap<&'static str, u64>,
    /// Effects produced by committed executions.
    pub effects: u64,
}

/// Wall-clock timings (not deterministic).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Executor used.
    pub executor: String,
    /// Time spent executing, in milliseconds.
    pub execute_ms: f64,
    /// Per trigger: total and worst execution time.
    pub triggers: BTreeMap<String, TriggerTiming>,
}

/// Time spent in one trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TriggerTiming {
    /// Sum over executions, in milliseconds.
    pub total_ms: f64,
    /// Slowest execution, in microseconds.
    pub max_us: f64,
}

impl Report {
    /// An empty report listing every trigger of `set`.
    pub fn new(set: &TriggerSet) -> Report {
        let mut report = Report::default();
        for t in &set.triggers {
            report.triggers.insert(
                t.id.to_string(),
                TriggerStats {
                    owner: t.owner.to_string(),
                    ..TriggerStats::default()
                },
            );
        }
        report
    }

    /// Counts one record's outcome.
    pub fn record(&mut self, outcome: &RecordOutcome) {
        self.events.input += 1;
        match &outcome.status {
            RecordStatus::Processed { triggers } => {
                self.events.processed += 1;
                for t in triggers {
                    let Some(stats) = self.triggers.get_mut(t.trigger.as_ref()) else {
                        continue;
                    };
                    stats.fired += 1;
                    match &t.result {
                        TriggerResult::Committed => stats.committed += 1,
                        TriggerResult::Skipped => stats.skipped += 1,
                        TriggerResult::Aborted(reason) => {
                            stats.aborted += 1;
                            *stats.aborted_by_reason.entry(reason.kind()).or_default() += 1;
                        }
                    }
                }
            }
            RecordStatus::Rejected { kind, .. } => {
                self.events.rejected += 1;
                *self.rejected_by_reason.entry(kind.name()).or_default() += 1;
            }
            RecordStatus::Held { .. } => self.events.held += 1,
        }
    }

    /// Counts the effects and chained events of one committed transaction.
    pub fn transaction(&mut self, output: &TxnOutput) {
        self.events.chained += output.chained_events;
        for e in &output.effects {
            self.effects.total += 1;
            match e.kind {
                EffectKind::Message { .. } => self.effects.messages += 1,
                EffectKind::Feed { .. } => self.effects.feeds += 1,
                EffectKind::Coupon { .. } => self.effects.coupons += 1,
            }
            if let Some(stats) = self.triggers.get_mut(e.trigger.as_ref()) {
                stats.effects += 1;
            }
        }
    }
}

impl Timings {
    /// Adds one transaction's per-trigger timings.
    pub fn transaction(&mut self, set: &TriggerSet, output: &TxnOutput) {
        for &(ti, nanos) in &output.timings {
            let t = self
                .triggers
                .entry(set.trigger(ti).id.to_string())
                .or_default();
            t.total_ms += nanos as f64 / 1e6;
            t.max_us = t.max_us.max(nanos as f64 / 1e3);
        }
    }
}
