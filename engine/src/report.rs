//! Run reports: deterministic counts (`report.json`) and wall-clock timings (`timings.json`).
//!
//! Counts and timings are kept apart on purpose: everything in [`Report`] is a function of the
//! input alone, so `report.json` is byte-identical across runs, executors and thread counts,
//! like the other outputs. Timings are not, and live in [`Timings`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::outcome::{
    Effect, EffectKind, RecordOutcome, RecordStatus, TriggerOutcome, TriggerResult,
};
use crate::trigger::{TriggerIdx, TriggerSet};

/// Deterministic totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Input records by status.
    pub events: EventCounts,
    /// Rejected records by reason.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Events held by the quota gate, by process (omitted when none were held).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub held_by_process: BTreeMap<String, u64>,
    /// Effects by kind.
    pub effects: EffectCounts,
    /// Per trigger, by id.
    pub triggers: BTreeMap<String, TriggerStats>,
    /// The trigger governor's transitions (throttled, stopped, recovered), in order;
    /// omitted when there were none (see `governor`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub governor: Vec<crate::governor::Transition>,
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
    /// Slow-lane records: runs of deferred executions (not input records; omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub slow_lane_runs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// Firings not run because an operator stopped the trigger (`trigger_stopped`).
    pub stopped: u64,
    /// Fuel used by all its executions (deterministic; see `exec::txn`, "Fuel").
    pub fuel: u64,
    /// Firings moved to the slow lane while it was throttled; each is counted again (as
    /// committed, skipped, aborted or stopped) when it runs there. Omitted when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub deferred: u64,
}

/// Wall-clock timings (not deterministic).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Executor used.
    pub executor: String,
    /// Time spent admitting input records (stage 1), in milliseconds.
    pub admit_ms: f64,
    /// Time spent executing and committing (stage 2), in milliseconds.
    pub execute_ms: f64,
    /// Time spent assembling outcomes and the report (stage 3), in milliseconds.
    pub report_ms: f64,
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
    /// Median execution, in microseconds (within 1%).
    pub p50_us: f64,
    /// 99th percentile execution, in microseconds (within 1%).
    pub p99_us: f64,
}

/// Accumulates a [`Report`] and [`Timings`] during a run without allocating per execution:
/// per-trigger counters are indexed by trigger position, and turned into the id-keyed maps
/// once, by [`ReportBuilder::finish`].
pub struct ReportBuilder {
    ids: Vec<String>,
    index: rustc_hash::FxHashMap<std::sync::Arc<str>, usize>,
    stats: Vec<TriggerStats>,
    times: Vec<TriggerTiming>,
    /// Per trigger: execution times in ns (2 significant digits; allocated once).
    histograms: Vec<Option<hdrhistogram::Histogram<u64>>>,
    report: Report,
}

impl ReportBuilder {
    /// An empty builder listing every trigger of `set`.
    pub fn new(set: &TriggerSet) -> ReportBuilder {
        ReportBuilder {
            ids: set.triggers.iter().map(|t| t.id.to_string()).collect(),
            index: set
                .triggers
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect(),
            stats: set
                .triggers
                .iter()
                .map(|t| TriggerStats {
                    owner: t.owner.to_string(),
                    ..TriggerStats::default()
                })
                .collect(),
            times: vec![TriggerTiming::default(); set.triggers.len()],
            histograms: (0..set.triggers.len())
                .map(|_| hdrhistogram::Histogram::new(2).ok())
                .collect(),
            report: Report::default(),
        }
    }

    /// Counts one committed transaction: its trigger executions, effects and chained events.
    pub fn transaction(
        &mut self,
        triggers: &[TriggerOutcome],
        timings: &[(TriggerIdx, u64)],
        effects: &[Effect],
        chained_events: u64,
    ) {
        self.report.events.chained += chained_events;
        for (outcome, &(ti, nanos)) in triggers.iter().zip(timings) {
            let i = ti as usize;
            let stats = &mut self.stats[i];
            if let TriggerResult::Deferred { .. } = outcome.result {
                stats.deferred += 1;
                continue;
            }
            stats.fired += 1;
            stats.fuel += outcome.fuel;
            match &outcome.result {
                TriggerResult::Committed => stats.committed += 1,
                TriggerResult::Skipped => stats.skipped += 1,
                TriggerResult::Stopped { .. } => stats.stopped += 1,
                TriggerResult::Deferred { .. } => {}
                TriggerResult::Aborted(reason) => {
                    stats.aborted += 1;
                    *stats.aborted_by_reason.entry(reason.kind()).or_default() += 1;
                }
            }
            let t = &mut self.times[i];
            t.total_ms += nanos as f64 / 1e6;
            t.max_us = t.max_us.max(nanos as f64 / 1e3);
            if let Some(h) = self.histograms.get_mut(i).and_then(Option::as_mut) {
                h.saturating_record(nanos.max(1));
            }
        }
        for e in effects {
            let effects = &mut self.report.effects;
            effects.total += 1;
            match e.kind {
                EffectKind::Message { .. } => effects.messages += 1,
                EffectKind::Feed { .. } => effects.feeds += 1,
                EffectKind::Coupon { .. } => effects.coupons += 1,
            }
            if let Some(&i) = self.index.get(&e.trigger) {
                self.stats[i].effects += 1;
            }
        }
    }

    /// Counts one input record's status (processed / rejected / held).
    pub fn record(&mut self, outcome: &RecordOutcome) {
        let r = &mut self.report;
        if outcome.lane.is_some() {
            r.events.slow_lane_runs += 1;
            return;
        }
        r.events.input += 1;
        match &outcome.status {
            RecordStatus::Processed { .. } => r.events.processed += 1,
            RecordStatus::Rejected { kind, .. } => {
                r.events.rejected += 1;
                *r.rejected_by_reason.entry(kind.name()).or_default() += 1;
            }
            RecordStatus::Held { .. } => r.events.held += 1,
        }
    }

    /// The finished report and the per-trigger timings.
    pub fn finish(self, mut timings: Timings) -> (Report, Timings) {
        let mut report = self.report;
        let histograms = self.histograms;
        for (i, ((id, stats), mut time)) in self
            .ids
            .into_iter()
            .zip(self.stats)
            .zip(self.times)
            .enumerate()
        {
            if let Some(h) = histograms
                .get(i)
                .and_then(Option::as_ref)
                .filter(|h| !h.is_empty())
            {
                time.p50_us = h.value_at_quantile(0.5) as f64 / 1e3;
                time.p99_us = h.value_at_quantile(0.99) as f64 / 1e3;
            }
            if time.total_ms > 0.0 {
                timings.triggers.insert(id.clone(), time);
            }
            report.triggers.insert(id, stats);
        }
        (report, timings)
    }
}
