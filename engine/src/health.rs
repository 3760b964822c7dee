//! "Is something broken, and where?" for a finished batch: the status `fusebox run` prints
//! at the end and writes into `report.json` (the live engine's `status()` answers the same
//! question while it runs).
//!
//! A problem names its component (`trigger:<id>`, `process:<id>`, `input`), says what is
//! wrong with the figure that says so, and since when: the first input line where it
//! showed. The assessment reads only outcomes and held events, so it is deterministic:
//! the same on every executor and thread count.
//!
//! Rules: a trigger that aborted any execution is a problem (*failing* when more than half
//! of its executions aborted), and so is a trigger an operator stopped (`stopped:`); a
//! process with held events is one; rejected input records are one. Health is `ok` with no problem, `degraded` otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::engine::BatchResult;
use crate::gate::HeldEvent;
use crate::outcome::{RecordOutcome, RecordStatus, TriggerResult};

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchProblem {
    /// `trigger:<id>`, `process:<id>` or `input`.
    pub component: String,
    /// What is wrong, with its figures.
    pub what: String,
    /// The first input line (or row) where it showed.
    pub since_line: u64,
}

/// The health of a finished batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchHealth {
    /// `ok` or `degraded`.
    pub health: &'static str,
    /// Every problem, triggers first, then processes, then input.
    pub problems: Vec<BatchProblem>,
}

#[derive(Default)]
struct Tally {
    executions: u64,
    aborted: u64,
    /// Firings skipped because an operator stopped the trigger, the first reason, and line.
    stopped: u64,
    stop_reason: Option<String>,
    stopped_since: Option<u64>,
    reasons: BTreeMap<&'static str, u64>,
    first: Option<u64>,
}

fn listed(reasons: &BTreeMap<&'static str, u64>) -> String {
    reasons
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Assesses a batch from its outcomes and held events.
pub fn assess(result: &BatchResult) -> BatchHealth {
    let mut tally = HealthTally::default();
    result.outcomes.iter().for_each(|o| tally.outcome(o));
    result.held.iter().for_each(|h| tally.held(h));
    tally.finish()
}

/// The same assessment, built record by record from a stream (what a streamed `fusebox run`
/// does instead of keeping every outcome): feed it every record's outcome and held event, in
/// input order, then [`HealthTally::finish`]. Its memory is per trigger and per process, not
/// per record.
#[derive(Default)]
pub struct HealthTally {
    triggers: BTreeMap<Arc<str>, Tally>,
    processes: BTreeMap<Arc<str>, Tally>,
    rejected: Tally,
}

impl HealthTally {
    /// Counts one outcome.
    pub fn outcome(&mut self, o: &RecordOutcome) {
        match &o.status {
            RecordStatus::Processed { triggers: ts } => {
                for t in ts {
                    // Counted when it runs in the slow lane.
                    if let TriggerResult::Deferred { .. } = t.result {
                        continue;
                    }
                    let tally = match self.triggers.get_mut(&t.trigger) {
                        Some(tally) => tally,
                        None => self.triggers.entry(t.trigger.clone()).or_default(),
                    };
                    tally.executions += 1;
                    match &t.result {
                        TriggerResult::Aborted(reason) => {
                            tally.aborted += 1;
                            *tally.reasons.entry(reason.kind()).or_default() += 1;
                            tally.first.get_or_insert(o.line);
                        }
                        TriggerResult::Stopped { reason, .. } => {
                            tally.stopped += 1;
                            tally.stop_reason.get_or_insert_with(|| reason.to_string());
                            tally.stopped_since.get_or_insert(o.line);
                        }
                        TriggerResult::Committed
                        | TriggerResult::Skipped
                        | TriggerResult::Deferred { .. } => {}
                    }
                }
            }
            RecordStatus::Rejected { kind, .. } => {
                self.rejected.aborted += 1;
                *self.rejected.reasons.entry(kind.name()).or_default() += 1;
                self.rejected.first.get_or_insert(o.line);
            }
            RecordStatus::Held { .. } => {}
        }
    }

    /// Counts one held event.
    pub fn held(&mut self, h: &HeldEvent) {
        let tally = self.processes.entry(h.process.clone()).or_default();
        tally.aborted += 1;
        *tally.reasons.entry(h.denial.kind()).or_default() += 1;
        tally.first.get_or_insert(h.line);
    }

    /// The assessment of everything counted.
    pub fn finish(self) -> BatchHealth {
        let mut problems = Vec::new();
        for (id, t) in &self.triggers {
            if let Some(since) = t.stopped_since {
                problems.push(BatchProblem {
                    component: format!("trigger:{id}"),
                    what: match t.stop_reason.as_deref().unwrap_or("") {
                        // The governor's reasons say so themselves.
                        r if r.starts_with("stopped by") => {
                            format!("{r}: {} firings skipped", t.stopped)
                        }
                        r => format!(
                            "stopped by an operator ({r}): {} firings skipped",
                            t.stopped
                        ),
                    },
                    since_line: since,
                });
            }
            let Some(first) = t.first else { continue };
            let failing = if t.aborted * 2 > t.executions {
                "failing: "
            } else {
                ""
            };
            problems.push(BatchProblem {
                component: format!("trigger:{id}"),
                what: format!(
                    "{failing}{} of {} executions aborted ({})",
                    t.aborted,
                    t.executions,
                    listed(&t.reasons)
                ),
                since_line: first,
            });
        }
        for (id, t) in &self.processes {
            problems.push(BatchProblem {
                component: format!("process:{id}"),
                what: format!("{} events held ({})", t.aborted, listed(&t.reasons)),
                since_line: t.first.unwrap_or(0),
            });
        }
        if let Some(first) = self.rejected.first {
            problems.push(BatchProblem {
                component: "input".into(),
                what: format!(
                    "{} records rejected ({})",
                    self.rejected.aborted,
                    listed(&self.rejected.reasons)
                ),
                since_line: first,
            });
        }
        BatchHealth {
            health: if problems.is_empty() {
                "ok"
            } else {
                "degraded"
            },
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_triggers;
    use crate::customers::{Column, CustomerTable, Schema};
    use crate::engine::{Engine, RunOptions};
    use crate::io::events::read_jsonl;
    use crate::state::State;
    use crate::value::AttrType;

    #[test]
    fn names_the_failing_trigger_and_the_rejected_input_with_their_first_lines() {
        let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
        let table = CustomerTable::new(schema, vec![1], vec![Column::Int(vec![Some(0)])]).unwrap();
        let set = compile_triggers(
            "pools:\n  - id: p\n    codes: [A]\ntriggers:\n  - id: coupon\n    owner: o@x\n    on: a\n    actions:\n      - issue_coupon: { pool: p }\n  - id: fine\n    owner: o@x\n    on: a\n    actions:\n      - award_points: { amount: \"1\" }\n",
            "t.yaml",
            Some(table.schema()),
        )
        .unwrap();
        let engine = Engine::new(set).unwrap();
        let mut state = State::new(table, engine.triggers());
        let lines: String = (1..=4)
            .map(|i| {
                let customer = if i == 2 { 9 } else { 1 };
                format!("{{\"id\":\"e{i}\",\"customer_id\":{customer},\"type\":\"a\",\"timestamp\":\"2026-01-01T00:00:00Z\"}}\n")
            })
            .collect();
        let records = read_jsonl(lines.as_bytes()).unwrap();
        let result = engine
            .run_batch(&mut state, &records, &RunOptions::default())
            .unwrap();
        let h = assess(&result);
        assert_eq!(h.health, "degraded");
        assert_eq!(
            h.problems,
            vec![
                BatchProblem {
                    component: "trigger:coupon".into(),
                    what: "failing: 2 of 3 executions aborted (pool_exhausted 2)".into(),
                    since_line: 3,
                },
                BatchProblem {
                    component: "input".into(),
                    what: "1 records rejected (unknown_customer 1)".into(),
                    since_line: 2,
                },
            ]
        );
    }
}
