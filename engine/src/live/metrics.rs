//! Metrics through the [`metrics`] facade: the engine records, the embedder chooses the
//! exporter (the example service installs `metrics-exporter-prometheus`). With no recorder
//! installed every call is a no-op.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `fusebox_events_total` | counter | `status` (processed, rejected, held) | answered events |
//! | `fusebox_trigger_executions_total` | counter | `trigger`, `result` (committed, skipped, stopped, aborted, deferred) | trigger firings |
//! | `fusebox_trigger_aborts_total` | counter | `trigger`, `reason` | aborts by reason kind |
//! | `fusebox_trigger_execution_seconds` | histogram | `trigger` | wall time of one execution |
//! | `fusebox_submit_to_outcome_seconds` | histogram | | accepted → answered |
//! | `fusebox_batch_events` | histogram | | events per micro-batch |
//! | `fusebox_batch_seconds` | histogram | | admission + execution + delivery of a batch |
//! | `fusebox_reexecutions_total` | counter | | speculative executions aborted by validation |
//! | `fusebox_queue_depth` | gauge | | accepted, not yet answered |
//! | `fusebox_effects_total` | counter | | effects delivered |
//! | `fusebox_store_failures_total` | counter | | failed `persist`/`load` calls |
//! | `fusebox_quota_used` / `fusebox_quota_limit` | gauge | `process`, `dimension` | quota day usage and limit (polled ≤ 1/s) |
//! | `fusebox_quota_exhausted` | gauge | `process` | 1 while the process's events are held |

//!
//! The hot-path handles (engine-wide and per trigger) are registered once per trigger set
//! ([`BatchMetrics::new`], again after a reload), not per event: label strings are built
//! once, and a batch adds its per-trigger counts with one increment each. Handles bind to
//! the recorder installed when they are registered, so install the exporter before
//! starting the engine (with none, they are no-ops).

use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram};

use crate::outcome::{RecordStatus, TriggerResult};
use crate::sink::RecordResult;
use crate::trigger::TriggerSet;

/// One trigger's handles.
struct TriggerHandles {
    id: String,
    /// Firings by result: committed, skipped, stopped, aborted, deferred.
    executions: [Counter; 5],
    seconds: Histogram,
}

/// Handles for one trigger set's batches.
pub(crate) struct BatchMetrics {
    triggers: Vec<TriggerHandles>,
    batch_events: Histogram,
    batch_seconds: Histogram,
    reexecutions: Counter,
    /// Events by status: processed, rejected, held.
    events: [Counter; 3],
    effects: Counter,
}

const RESULTS: [&str; 5] = ["committed", "skipped", "stopped", "aborted", "deferred"];

impl BatchMetrics {
    pub fn new(set: &TriggerSet) -> BatchMetrics {
        let triggers = set
            .triggers
            .iter()
            .map(|t| {
                let id = t.id.to_string();
                TriggerHandles {
                    executions: RESULTS.map(|result| {
                        counter!("fusebox_trigger_executions_total", "trigger" => id.clone(), "result" => result)
                    }),
                    seconds: histogram!("fusebox_trigger_execution_seconds", "trigger" => id.clone()),
                    id,
                }
            })
            .collect();
        BatchMetrics {
            triggers,
            batch_events: histogram!("fusebox_batch_events"),
            batch_seconds: histogram!("fusebox_batch_seconds"),
            reexecutions: counter!("fusebox_reexecutions_total"),
            events: ["processed", "rejected", "held"]
                .map(|status| counter!("fusebox_events_total", "status" => status)),
            effects: counter!("fusebox_effects_total"),
        }
    }

    /// Records one batch's figures.
    pub fn batch(&self, results: &[RecordResult], elapsed: Duration, reexecutions: u64) {
        self.batch_events.record(results.len() as f64);
        self.batch_seconds.record(elapsed.as_secs_f64());
        if reexecutions > 0 {
            self.reexecutions.increment(reexecutions);
        }
        let mut events = [0u64; 3];
        let mut effects = 0u64;
        let mut executions = vec![[0u64; 5]; self.triggers.len()];
        for r in results {
            effects += r.effects.len() as u64;
            let RecordStatus::Processed { triggers: outcomes } = &r.outcome.status else {
                let status = if matches!(r.outcome.status, RecordStatus::Rejected { .. }) {
                    1
                } else {
                    2
                };
                events[status] += 1;
                continue;
            };
            events[0] += 1;
            // The timings list the trigger index of each outcome, in the same order.
            for (t, (idx, ns)) in outcomes.iter().zip(&r.timings) {
                let Some(handles) = self.triggers.get(*idx as usize) else {
                    continue;
                };
                let result = match &t.result {
                    TriggerResult::Committed => 0,
                    TriggerResult::Skipped => 1,
                    TriggerResult::Stopped { .. } => 2,
                    TriggerResult::Deferred { .. } => 4,
                    TriggerResult::Aborted(reason) => {
                        counter!("fusebox_trigger_aborts_total", "trigger" => handles.id.clone(), "reason" => reason.kind())
                            .increment(1);
                        3
                    }
                };
                executions[*idx as usize][result] += 1;
                handles.seconds.record(*ns as f64 / 1e9);
            }
        }
        for (handles, counts) in self.triggers.iter().zip(&executions) {
            for (counter, n) in handles.executions.iter().zip(counts) {
                if *n > 0 {
                    counter.increment(*n);
                }
            }
        }
        for (counter, n) in self.events.iter().zip(events) {
            counter.increment(n);
        }
        self.effects.increment(effects);
    }
}

/// The intake's depth.
pub(crate) fn queue_depth(depth: usize) {
    gauge!("fusebox_queue_depth").set(depth as f64);
}

/// A quota process's usage and limits.
pub(crate) fn quota(f: &super::status::ProcessFigures) {
    let p = f.process.clone();
    gauge!("fusebox_quota_used", "process" => p.clone(), "dimension" => "records")
        .set(f.used_records as f64);
    gauge!("fusebox_quota_used", "process" => p.clone(), "dimension" => "bytes")
        .set(f.used_bytes as f64);
    if let Some(l) = f.limit_records {
        gauge!("fusebox_quota_limit", "process" => p.clone(), "dimension" => "records")
            .set(l as f64);
    }
    if let Some(l) = f.limit_bytes {
        gauge!("fusebox_quota_limit", "process" => p.clone(), "dimension" => "bytes").set(l as f64);
    }
    gauge!("fusebox_quota_exhausted", "process" => p).set(if f.state == "exhausted" {
        1.0
    } else {
        0.0
    });
}

/// A store call failed.
pub(crate) fn store_failure() {
    counter!("fusebox_store_failures_total").increment(1);
}
