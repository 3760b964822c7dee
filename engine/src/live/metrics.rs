//! Metrics through the [`metrics`] facade: the engine records, the embedder chooses the
//! exporter (the example service installs `metrics-exporter-prometheus`). With no recorder
//! installed every call is a no-op.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `fusebox_events_total` | counter | `status` (processed, rejected, held) | answered events |
//! | `fusebox_trigger_executions_total` | counter | `trigger`, `result` (committed, skipped, aborted) | trigger executions |
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

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::outcome::{RecordStatus, TriggerResult};
use crate::sink::RecordResult;
use crate::trigger::TriggerSet;

/// Records one batch's figures.
pub(crate) fn batch(
    triggers: &TriggerSet,
    results: &[RecordResult],
    elapsed: Duration,
    reexecutions: u64,
) {
    histogram!("fusebox_batch_events").record(results.len() as f64);
    histogram!("fusebox_batch_seconds").record(elapsed.as_secs_f64());
    if reexecutions > 0 {
        counter!("fusebox_reexecutions_total").increment(reexecutions);
    }
    let (mut processed, mut rejected, mut held, mut effects) = (0u64, 0u64, 0u64, 0u64);
    for r in results {
        effects += r.effects.len() as u64;
        match &r.outcome.status {
            RecordStatus::Processed { triggers: outcomes } => {
                processed += 1;
                for t in outcomes {
                    let trigger = t.trigger.to_string();
                    match &t.result {
                        TriggerResult::Committed => counter!("fusebox_trigger_executions_total", "trigger" => trigger, "result" => "committed").increment(1),
                        TriggerResult::Skipped => counter!("fusebox_trigger_executions_total", "trigger" => trigger, "result" => "skipped").increment(1),
                        TriggerResult::Stopped { .. } => counter!("fusebox_trigger_executions_total", "trigger" => trigger, "result" => "stopped").increment(1),
                        TriggerResult::Aborted(reason) => {
                            counter!("fusebox_trigger_executions_total", "trigger" => trigger.clone(), "result" => "aborted").increment(1);
                            counter!("fusebox_trigger_aborts_total", "trigger" => trigger, "reason" => reason.kind()).increment(1);
                        }
                    }
                }
                for (idx, ns) in &r.timings {
                    let id = triggers.triggers[*idx as usize].id.to_string();
                    histogram!("fusebox_trigger_execution_seconds", "trigger" => id)
                        .record(*ns as f64 / 1e9);
                }
            }
            RecordStatus::Held { .. } => held += 1,
            RecordStatus::Rejected { .. } => rejected += 1,
        }
    }
    counter!("fusebox_events_total", "status" => "processed").increment(processed);
    counter!("fusebox_events_total", "status" => "rejected").increment(rejected);
    counter!("fusebox_events_total", "status" => "held").increment(held);
    counter!("fusebox_effects_total").increment(effects);
}

/// One event answered, `elapsed` after it was accepted.
pub(crate) fn answered(elapsed: Duration) {
    histogram!("fusebox_submit_to_outcome_seconds").record(elapsed.as_secs_f64());
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
