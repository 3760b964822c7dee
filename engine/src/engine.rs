//! The embedding API: [`Engine::run_batch`].
//!
//! A batch goes through three stages, in one direction:
//! 1. **admission** — every input record is checked (parsed? known customer? known event
//!    type? unique id?) and either admitted in input order or rejected with a precise reason;
//!    then, when [`RunOptions::quotas`] is set, the quota gate ([`crate::gate`]) charges each
//!    admitted event that carries a `process`, in input order, and holds those its process's
//!    quota denies;
//! 2. **execution** — admitted events run through an executor, committing in input order;
//! 3. **reporting** — one [`RecordOutcome`] per input record (in input order), effects in
//!    commit order, a deterministic [`Report`] and wall-clock [`Timings`].
//!
//! Invariant: `outcomes.len() == records.len()` and `outcomes[i]` describes `records[i]` —
//! nothing is lost silently: every record is processed, rejected or held.

use std::sync::Arc;
use std::time::Instant;

use fusebox_quotas::Quotas;
use rustc_hash::FxHashMap;

use crate::event::{check_input_id, EventRecord};
use crate::exec::parallel::{self, ParallelConfig, ParallelStats};
use crate::exec::sequential::{self, InvariantViolation};
use crate::exec::Admitted;
use crate::gate::HeldEvent;
use crate::outcome::{Effect, RecordOutcome, RecordStatus, RejectKind};
use crate::report::{Report, ReportBuilder, Timings};
use crate::state::State;
use crate::trigger::TriggerSet;

/// Which executor runs a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    /// The reference executor: one event at a time.
    #[default]
    Sequential,
    /// Optimistic parallel execution (Block-STM); same results as sequential.
    Parallel(ParallelConfig),
    /// Pessimistic per-key locks granted in event order: the benchmark baseline.
    Locking {
        /// Worker threads.
        threads: usize,
    },
}

impl ExecutorKind {
    /// The parallel executor with default tuning for `threads` workers.
    pub fn parallel(threads: usize) -> ExecutorKind {
        ExecutorKind::Parallel(ParallelConfig::with_threads(threads))
    }

    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Sequential => "sequential",
            ExecutorKind::Parallel(_) => "parallel",
            ExecutorKind::Locking { .. } => "locking",
        }
    }
}

/// Options of a batch run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// The executor.
    pub executor: ExecutorKind,
    /// Called now and then with the number of records done so far (for progress bars).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Daily per-process quotas to charge before execution (see [`crate::gate`]). `None`:
    /// no event is charged or held.
    pub quotas: Option<&'a Quotas>,
}

/// Why an engine could not be built or a batch could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The trigger set was compiled without a customer schema (for checking only).
    #[error("the trigger set was compiled without a customer schema and cannot run")]
    NotRunnable,
    /// The state's customer schema is not the one the triggers were compiled against.
    #[error("the customer schema differs from the one the triggers were compiled against: {0}")]
    SchemaMismatch(String),
    /// An engine bug.
    #[error(transparent)]
    Invariant(#[from] InvariantViolation),
}

/// Everything a batch produced.
#[derive(Clone, Debug, Default)]
pub struct BatchResult {
    /// One per input record, in input order.
    pub outcomes: Vec<RecordOutcome>,
    /// Effects of committed executions, in commit order.
    pub effects: Vec<Effect>,
    /// Deterministic totals.
    pub report: Report,
    /// Wall-clock timings.
    pub timings: Timings,
    /// What the parallel executor did (all zero for the sequential one).
    pub parallel: ParallelStats,
    /// Events held by the quota gate, in input order (empty without quotas). Their
    /// outcomes are [`RecordStatus::Held`]; the caller persists them for a later run.
    pub held: Vec<HeldEvent>,
}

/// A compiled trigger set, ready to run batches.
///
/// ```
/// use fusebox_engine::{config::compile_triggers, customers::*, engine::*, io::events::read_jsonl,
///                      state::State, value::AttrType};
///
/// let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
/// let customers = CustomerTable::new(schema, vec![1], vec![Column::Int(vec![Some(0)])]).unwrap();
/// let triggers = compile_triggers(r#"
/// triggers:
///   - id: welcome-points
///     owner: loyalty@example.com
///     on: customer.registered
///     actions:
///       - award_points: { amount: "50" }
/// "#, "triggers.yaml", Some(customers.schema())).unwrap();
/// let engine = Engine::new(triggers).unwrap();
/// let mut state = State::new(customers, engine.triggers());
/// let events = read_jsonl(&br#"{"id":"e1","customer_id":1,"type":"customer.registered","timestamp":"2026-01-01T00:00:00Z"}"#[..]).unwrap();
/// let result = engine.run_batch(&mut state, &events, &RunOptions::default()).unwrap();
/// assert_eq!(state.customers.get(0, 0), fusebox_engine::value::Value::Int(50));
/// assert_eq!(result.report.triggers["welcome-points"].committed, 1);
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    triggers: Arc<TriggerSet>,
}

impl Engine {
    /// Wraps a trigger set compiled against a customer schema.
    pub fn new(triggers: TriggerSet) -> Result<Engine, EngineError> {
        if !triggers.is_runnable() {
            return Err(EngineError::NotRunnable);
        }
        Ok(Engine {
            triggers: Arc::new(triggers),
        })
    }

    /// The trigger set.
    pub fn triggers(&self) -> &TriggerSet {
        &self.triggers
    }

    /// Runs a batch of input records against `state`, in record order.
    pub fn run_batch(
        &self,
        state: &mut State,
        records: &[EventRecord],
        options: &RunOptions<'_>,
    ) -> Result<BatchResult, EngineError> {
        if state.counters.len() != self.triggers.counters.len()
            || state.pool_cursors.len() != self.triggers.pools.len()
        {
            return Err(EngineError::SchemaMismatch(
                "state was built for another trigger set".into(),
            ));
        }
        let admit_started = Instant::now();
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        let admitted = self.admit(state, records, &mut outcomes);
        let (admitted, held) = match options.quotas {
            Some(quotas) => crate::gate::charge(quotas, admitted, &mut outcomes),
            None => (admitted, Vec::new()),
        };
        let admit_ms = admit_started.elapsed().as_secs_f64() * 1e3;

        let mut report = ReportBuilder::new(&self.triggers);
        let mut timings = Timings {
            executor: options.executor.name().to_string(),
            admit_ms,
            ..Timings::default()
        };
        let mut effects = Vec::new();
        let started = Instant::now();
        let set = &self.triggers;
        let mut done: u64 = 0;
        let total_rejected = (records.len() - admitted.len()) as u64;
        let mut on_commit = |a: &Admitted<'_>, output: crate::exec::txn::TxnOutput| {
            report.transaction(&output);
            effects.extend(output.effects);
            outcomes[a.record] = Some(RecordOutcome {
                line: a.line,
                event_id: Some(a.event.id.clone()),
                status: RecordStatus::Processed {
                    triggers: output.triggers,
                },
            });
            done += 1;
            if done % 4096 == 0 {
                if let Some(progress) = options.progress {
                    progress(done + total_rejected);
                }
            }
        };
        let parallel_stats = match options.executor {
            ExecutorKind::Sequential => {
                sequential::run(set, state, &admitted, &mut on_commit)?;
                ParallelStats::default()
            }
            ExecutorKind::Parallel(config) => {
                parallel::run(set, state, &admitted, config, &mut on_commit)?
            }
            ExecutorKind::Locking { threads } => {
                crate::exec::locking::run(set, state, &admitted, threads, &mut on_commit)?;
                ParallelStats::default()
            }
        };
        timings.execute_ms = started.elapsed().as_secs_f64() * 1e3;
        let report_started = Instant::now();
        if let Some(progress) = options.progress {
            progress(records.len() as u64);
        }
        let outcomes: Vec<RecordOutcome> = outcomes
            .into_iter()
            .zip(records)
            .map(|(o, r)| {
                o.unwrap_or_else(|| RecordOutcome {
                    line: r.line,
                    event_id: r.event.as_ref().ok().map(|e| e.id.clone()),
                    status: RecordStatus::Rejected {
                        kind: RejectKind::Malformed,
                        error: "internal: record neither admitted nor rejected".into(),
                    },
                })
            })
            .collect();
        for o in &outcomes {
            report.record(o);
        }
        timings.report_ms = report_started.elapsed().as_secs_f64() * 1e3;
        let (mut report, timings) = report.finish(timings);
        for h in &held {
            *report
                .held_by_process
                .entry(h.process.to_string())
                .or_default() += 1;
        }
        Ok(BatchResult {
            outcomes,
            effects,
            report,
            timings,
            parallel: parallel_stats,
            held,
        })
    }

    /// Stage 1: decides which records run. Rejections are written into `outcomes`.
    fn admit<'r>(
        &self,
        state: &State,
        records: &'r [EventRecord],
        outcomes: &mut [Option<RecordOutcome>],
    ) -> Vec<Admitted<'r>> {
        let mut admitted = Vec::with_capacity(records.len());
        let mut first_line: FxHashMap<&str, u64> = FxHashMap::default();
        for (i, record) in records.iter().enumerate() {
            let reject = |kind: RejectKind, error: String| RecordOutcome {
                line: record.line,
                event_id: record.event.as_ref().ok().map(|e| e.id.clone()),
                status: RecordStatus::Rejected { kind, error },
            };
            let event = match &record.event {
                Ok(e) => e,
                Err(msg) => {
                    outcomes[i] = Some(reject(RejectKind::Malformed, msg.clone()));
                    continue;
                }
            };
            // Checked here, not only by the readers, so events built in code obey it too: it
            // is what makes chained ids and idempotency keys unique (see `event`).
            if let Err(msg) = check_input_id(&event.id) {
                outcomes[i] = Some(reject(RejectKind::Malformed, msg));
                continue;
            }
            if let Some(first) = first_line.get(event.id.as_ref()) {
                outcomes[i] = Some(reject(
                    RejectKind::DuplicateEventId,
                    format!(
                        "duplicate event id `{}` (first seen at line {first})",
                        event.id
                    ),
                ));
                continue;
            }
            first_line.insert(event.id.as_ref(), record.line);
            if !self.triggers.is_known_event_type(&event.event_type) {
                outcomes[i] = Some(reject(
                    RejectKind::UnknownEventType,
                    format!("unknown event type `{}`", event.event_type),
                ));
                continue;
            }
            let Some(row) = state.customers.row_of(event.customer_id) else {
                outcomes[i] = Some(reject(
                    RejectKind::UnknownCustomer,
                    format!("unknown customer {}", event.customer_id),
                ));
                continue;
            };
            admitted.push(Admitted {
                record: i,
                line: record.line,
                event,
                row,
            });
        }
        admitted
    }
}
