//! The embedding API: an [`Engine`] runs a stream of input records, chunk by chunk, through
//! a [`Session`] into a [`CommitSink`]; [`Engine::run_batch`] is that with one chunk and a
//! [`BatchCollector`].
//!
//! Each chunk goes through three stages, in one direction:
//! 1. **admission** — every input record is checked (parsed? a valid id? known customer?
//!    known event type? an id not seen before in the whole stream?) and either admitted in
//!    input order or rejected with a precise reason; then, when [`RunOptions::quotas`] is set,
//!    the quota gate ([`crate::gate`]) charges each admitted event that carries a `process`,
//!    in input order, and holds those its process's quota denies;
//! 2. **execution** — admitted events run through the engine's executor against the state
//!    carried from the previous chunk, committing in input order; every transaction of the
//!    chunk reads the segment memberships of one snapshot taken when the chunk started;
//! 3. **delivery** — each record's [`RecordResult`] goes to the sink, in input order, as soon as
//!    it is final (see [`crate::sink`]).
//!
//! The engine owns its resources: the executor's worker threads are started once, on the
//! first chunk that needs them, and kept with what the executor has learnt about the workload
//! (see `exec::parallel`), so a live engine can run a chunk every few milliseconds.
//!
//! Invariant: every record of the stream reaches the sink exactly once, in input order —
//! nothing is lost silently: every record is processed, rejected or held.

use std::sync::Arc;
use std::time::Instant;

use fusebox_quotas::Quotas;

use crate::event::{check_input_id, EventRecord};
use crate::exec::parallel::{self, ParallelConfig, ParallelStats, Workers};
use crate::exec::sequential::{self, InvariantViolation};
use crate::exec::txn::TxnOutput;
use crate::exec::{Admitted, Participation};
use crate::expr::segments::{MembershipSnapshot, Memberships};
use crate::gate::HeldEvent;
use crate::governor::Governor;
use crate::outcome::{Effect, RecordOutcome, RecordStatus, RejectKind, TriggerResult};
use crate::report::{Report, Timings};
use crate::seen_ids::SeenIds;
use crate::sink::{BatchCollector, CommitSink, RecordResult};
use crate::slow_lane::{self, SlowItem};
use crate::state::State;
use crate::trigger::TriggerSet;

/// Which executor runs a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    /// The reference executor: one event at a time.
    #[default]
    Sequential,
    /// Parallel execution: partitioned by customer where no event reads shared state,
    /// optimistic (Block-STM) or sequential elsewhere; same results as sequential.
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

/// Options of a stream (or batch) run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Called now and then with the number of records done so far (for progress bars).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Daily per-process quotas to charge before execution (see [`crate::gate`]). `None`:
    /// no event is charged or held.
    pub quotas: Option<&'a Quotas>,
    /// Where the trigger governor tells owners their trigger was throttled, stopped or
    /// recovered (see [`crate::governor`]). `None`: transitions are only reported.
    pub notifier: Option<&'a dyn fusebox_quotas::notify::Notifier>,
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

/// Wall-clock figures and executor statistics of a stream (not deterministic).
#[derive(Clone, Debug, Default)]
pub struct SessionSummary {
    /// Records seen.
    pub records: u64,
    /// Admission, execution and delivery times.
    pub timings: Timings,
    /// What the parallel executor did, summed over the chunks.
    pub parallel: ParallelStats,
    /// The trigger governor's transitions, in order (deterministic).
    pub governor: Vec<crate::governor::Transition>,
}

/// Builds an [`Engine`]: its executor and the membership registry its conditions read.
pub struct EngineBuilder {
    triggers: TriggerSet,
    executor: ExecutorKind,
    memberships: Option<Arc<Memberships>>,
}

impl EngineBuilder {
    /// The executor (default: the sequential reference executor).
    pub fn executor(mut self, executor: ExecutorKind) -> EngineBuilder {
        self.executor = executor;
        self
    }

    /// The registry `segment('id')` conditions read (default: [`Memberships::global`]).
    pub fn memberships(mut self, memberships: Arc<Memberships>) -> EngineBuilder {
        self.memberships = Some(memberships);
        self
    }

    /// The engine; fails if the triggers were compiled without a customer schema.
    pub fn build(self) -> Result<Engine, EngineError> {
        if !self.triggers.is_runnable() {
            return Err(EngineError::NotRunnable);
        }
        Ok(Engine {
            triggers: Arc::new(self.triggers),
            executor: self.executor,
            workers: Arc::new(Workers::default()),
            memberships: self
                .memberships
                .unwrap_or_else(|| Memberships::global().clone()),
        })
    }
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
#[derive(Clone)]
pub struct Engine {
    triggers: Arc<TriggerSet>,
    executor: ExecutorKind,
    /// The executor's threads and learnt state; shared by clones of this engine.
    workers: Arc<Workers>,
    memberships: Arc<Memberships>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("triggers", &self.triggers.triggers.len())
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the sequential executor and the global membership registry.
    pub fn new(triggers: TriggerSet) -> Result<Engine, EngineError> {
        Engine::builder(triggers).build()
    }

    /// A builder for `triggers`.
    pub fn builder(triggers: TriggerSet) -> EngineBuilder {
        EngineBuilder {
            triggers,
            executor: ExecutorKind::default(),
            memberships: None,
        }
    }

    /// The same triggers and registry with another executor (and workers of its own).
    pub fn with_executor(&self, executor: ExecutorKind) -> Engine {
        Engine {
            triggers: self.triggers.clone(),
            executor,
            workers: Arc::new(Workers::default()),
            memberships: self.memberships.clone(),
        }
    }

    /// The trigger set.
    pub fn triggers(&self) -> &TriggerSet {
        &self.triggers
    }

    /// The executor.
    pub fn executor(&self) -> ExecutorKind {
        self.executor
    }

    /// The membership registry `segment('id')` conditions read.
    pub fn memberships(&self) -> &Arc<Memberships> {
        &self.memberships
    }

    /// Whether this engine can run on `state`: its counters and pools are this trigger
    /// set's.
    pub fn check_state(&self, state: &State) -> Result<(), EngineError> {
        if state.counters.len() != self.triggers.counters.len()
            || state.pool_cursors.len() != self.triggers.pools.len()
        {
            return Err(EngineError::SchemaMismatch(
                "state was built for another trigger set".into(),
            ));
        }
        Ok(())
    }

    /// Starts a stream over `state` (see [`Session`]).
    pub fn session<'s>(
        &'s self,
        state: &'s mut State,
        options: &'s RunOptions<'s>,
    ) -> Result<Session<'s>, EngineError> {
        self.resume(state, options, StreamCursor::default())
    }

    /// Continues a stream suspended by [`Session::suspend`] — possibly on another engine,
    /// e.g. one with reloaded triggers: the ids seen and the position carry over.
    pub fn resume<'s>(
        &'s self,
        state: &'s mut State,
        options: &'s RunOptions<'s>,
        cursor: StreamCursor,
    ) -> Result<Session<'s>, EngineError> {
        self.check_state(state)?;
        let mut governor = cursor.governor;
        if governor.stops().len() != self.triggers.triggers.len() {
            governor.fit(&self.triggers, None);
        }
        Ok(Session {
            engine: self,
            state,
            options,
            seen: cursor.seen,
            position: cursor.position,
            governor,
            summary: SessionSummary {
                timings: Timings {
                    executor: self.executor.name().to_string(),
                    ..Timings::default()
                },
                ..SessionSummary::default()
            },
        })
    }

    /// Runs a batch of input records against `state`, in record order: a [`Session`] with
    /// one chunk, collected by a [`BatchCollector`].
    pub fn run_batch(
        &self,
        state: &mut State,
        records: &[EventRecord],
        options: &RunOptions<'_>,
    ) -> Result<BatchResult, EngineError> {
        let mut collector = BatchCollector::new(&self.triggers);
        let mut session = self.session(state, options)?;
        session.push(records, &mut collector)?;
        let summary = session.finish(&mut collector)?;
        Ok(collector.finish(summary))
    }
}

/// Where a stream stands between two [`Session`]s: every event id seen so far and the
/// number of records pushed (see [`Session::suspend`] and [`Engine::resume`]).
#[derive(Debug, Default)]
pub struct StreamCursor {
    seen: SeenIds,
    position: u64,
    governor: Governor,
}

impl StreamCursor {
    /// Records pushed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Distinct event ids remembered (each costs its id's length plus ~24 bytes).
    pub fn ids_seen(&self) -> usize {
        self.seen.len()
    }

    /// The trigger governor's state (transitions so far).
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// Clears a governor stop of trigger `index` (an operator's resume): it starts over as
    /// active.
    pub fn resume_trigger(&mut self, index: usize) {
        self.governor.resume(index);
    }

    /// Moves the stream to another trigger set (a reload): governed triggers keep their
    /// state by id.
    pub fn refit(&mut self, set: &TriggerSet, previous: &TriggerSet) {
        self.governor.fit(set, Some(previous));
    }
}

/// One stream of input records through an engine: records arrive in chunks
/// ([`Session::push`]), the state carries from chunk to chunk, and every record's result
/// reaches the sink in input order. Event ids are unique over the whole stream.
///
/// The chunks are the serial order: pushing records in two chunks gives exactly the results
/// of pushing them in one (the only difference: a segment membership published between the
/// two pushes is seen by the second chunk, since each chunk reads a snapshot taken when it
/// starts).
pub struct Session<'s> {
    engine: &'s Engine,
    state: &'s mut State,
    options: &'s RunOptions<'s>,
    /// Every id seen so far, with the line it was first seen at.
    seen: SeenIds,
    /// Records pushed so far.
    position: u64,
    governor: Governor,
    summary: SessionSummary,
}

impl Session<'_> {
    /// The state as of the last committed record.
    pub fn state(&self) -> &State {
        self.state
    }

    /// Records pushed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Runs one chunk: admits, charges, executes and hands every record's result to `sink`,
    /// in order, before returning. Fails only on an engine bug (a broken invariant), after
    /// which the session must not be used.
    pub fn push(
        &mut self,
        records: &[EventRecord],
        sink: &mut dyn CommitSink,
    ) -> Result<(), EngineError> {
        let set = &*self.engine.triggers;
        if !Governor::applies(set) {
            return self.push_chunk(records, sink);
        }
        // Each budget window runs as its own chunk, so a stop decided when a window closes
        // applies from the next window's first event, on every executor. While the slow
        // lane is in use, chunks also end at its turns (multiples of `slow_lane::STRIDE`).
        let mut start = 0;
        while start < records.len() {
            // The first record moves the stream to its window (closing the previous one,
            // whose records have all run), then the chunk extends to the next later window.
            if let Ok(e) = &records[start].event {
                let window = Governor::window_of(set, e.timestamp);
                self.governor.advance(set, window, self.options.notifier);
            }
            let current = self.governor.current_window();
            let mut end = start + 1;
            while end < records.len() {
                if let (Ok(e), Some(current)) = (&records[end].event, current) {
                    if Governor::window_of(set, e.timestamp) > current {
                        break;
                    }
                }
                end += 1;
            }
            let lane = self.governor.lane_active();
            if lane {
                let to_turn = slow_lane::STRIDE - self.position % slow_lane::STRIDE;
                end = end.min(start.saturating_add(usize::try_from(to_turn).unwrap_or(usize::MAX)));
            }
            let chunk = &records[start..end];
            let (table, picks) = self.governor.participation(set, chunk);
            // `push_chunk_with` borrows the session: the governor is moved out for the chunk.
            let mut taken = std::mem::take(&mut self.governor);
            let base = self.position;
            let mut counting = |r: RecordResult| {
                taken.count(set, &r);
                defer(&mut taken, chunk, base, &r);
                sink.record(r);
            };
            self.push_chunk_with(chunk, &mut counting, &table, &picks)?;
            self.governor = taken;
            start = end;
            if lane && self.position % slow_lane::STRIDE == 0 {
                self.slow_lane_turn(sink, false)?;
            }
        }
        Ok(())
    }

    /// Runs a turn of the slow lane (see [`slow_lane`]): queued deferred executions in
    /// order, each a transaction of its own on the sequential executor, until they used the
    /// turn's fuel (at least one); with `drain`, all of them.
    fn slow_lane_turn(
        &mut self,
        sink: &mut dyn CommitSink,
        drain: bool,
    ) -> Result<(), EngineError> {
        let set = &*self.engine.triggers;
        let share = set.settings.slow_lane_percent;
        let budget = self.governor.slow_lane_mut().start_turn(share);
        let memberships = self.engine.memberships.snapshot();
        let (mut used, mut ran) = (0u64, 0u64);
        // Per deferred trigger, built on first use: it runs (or is stopped), the rest are
        // excluded from the input event.
        let mut only: Vec<Option<Vec<Participation>>> = vec![None; set.triggers.len()];
        while drain || ran == 0 || used < budget {
            let Some(item) = self.governor.slow_lane_mut().pop() else {
                break;
            };
            ran += 1;
            let ti = item.trigger as usize;
            let stops = self.governor.stops();
            let participation = only
                .get_mut(ti)
                .map(|slot| {
                    &*slot.get_or_insert_with(|| {
                        (0..set.triggers.len())
                            .map(|i| match stops.get(i).cloned().flatten() {
                                Some(reason) if i == ti => Participation::Stopped(reason),
                                _ if i == ti => Participation::Run,
                                _ => Participation::Excluded,
                            })
                            .collect()
                    })
                })
                .map_or(&[][..], |p| &p[..]);
            let outcome = |status| RecordOutcome {
                line: item.line,
                event_id: Some(item.event.id.clone()),
                lane: Some("slow"),
                status,
            };
            let Some(row) = self.state.customers.row_of(item.event.customer_id) else {
                // Customers are never removed while a stream runs; reported, not dropped.
                sink.record(RecordResult::not_run(
                    item.position,
                    outcome(RecordStatus::Rejected {
                        kind: RejectKind::UnknownCustomer,
                        error: format!("unknown customer {}", item.event.customer_id),
                    }),
                    None,
                ));
                continue;
            };
            let admitted = [Admitted {
                record: 0,
                line: item.line,
                event: &item.event,
                row,
                memberships: &memberships,
                participation,
            }];
            let mut output = None;
            sequential::run(set, self.state, &admitted, |_, o| output = Some(o))?;
            let output = output.ok_or_else(|| {
                InvariantViolation(format!(
                    "slow-lane run of event {} left no output",
                    item.event.id
                ))
            })?;
            used = used.saturating_add(output.triggers.iter().map(|t| t.fuel).sum::<u64>());
            let result = committed_result(item.position, outcome, output);
            self.governor.count(set, &result);
            sink.record(result);
        }
        Ok(())
    }

    fn push_chunk(
        &mut self,
        records: &[EventRecord],
        sink: &mut dyn CommitSink,
    ) -> Result<(), EngineError> {
        self.push_chunk_with(records, sink, &[], &[])
    }

    /// Runs one chunk; `participation[picks[i]]` says how each trigger takes part in
    /// record `i` (no picks: the first entry, if any, for every record).
    fn push_chunk_with(
        &mut self,
        records: &[EventRecord],
        sink: &mut dyn CommitSink,
        participation: &[Vec<Participation>],
        picks: &[u32],
    ) -> Result<(), EngineError> {
        let engine = self.engine;
        let _chunk =
            tracing::info_span!("chunk", position = self.position, records = records.len())
                .entered();
        let admit_started = Instant::now();
        let memberships = engine.memberships.snapshot();
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        let admitted = self.admit(records, &memberships, participation, picks, &mut outcomes);
        let (admitted, held) = match self.options.quotas {
            Some(quotas) => crate::gate::charge(quotas, admitted, &mut outcomes),
            None => (admitted, Vec::new()),
        };
        let mut held_at: Vec<Option<HeldEvent>> = vec![None; records.len()];
        for mut h in held {
            let i = h.record;
            h.record = (self.position + i as u64) as usize;
            held_at[i] = Some(h);
        }
        self.summary.timings.admit_ms += admit_started.elapsed().as_secs_f64() * 1e3;

        let started = Instant::now();
        let mut emitter = Emitter {
            records,
            outcomes,
            held: held_at,
            next: 0,
            base: self.position,
            sink,
            progress: self.options.progress,
            delivery_ns: 0,
        };
        let set = &*engine.triggers;
        let mut on_commit = |a: &Admitted<'_>, output: TxnOutput| emitter.committed(a, output);
        match engine.executor {
            ExecutorKind::Sequential => {
                sequential::run(set, self.state, &admitted, &mut on_commit)?;
            }
            ExecutorKind::Parallel(config) => {
                let stats = parallel::run(
                    set,
                    self.state,
                    &admitted,
                    config,
                    &engine.workers,
                    &mut on_commit,
                )?;
                self.summary.parallel.add(&stats);
            }
            ExecutorKind::Locking { threads } => {
                crate::exec::locking::run(set, self.state, &admitted, threads, &mut on_commit)?;
            }
        }
        emitter.flush_to(records.len());
        let delivery_ms = emitter.delivery_ns as f64 / 1e6;
        self.summary.timings.execute_ms += started.elapsed().as_secs_f64() * 1e3 - delivery_ms;
        self.summary.timings.report_ms += delivery_ms;
        self.position += records.len() as u64;
        self.summary.records = self.position;
        if let Some(progress) = self.options.progress {
            progress(self.position);
        }
        Ok(())
    }

    /// Ends the stream: runs every execution still waiting in the slow lane (their results
    /// go to `sink`, as a push's do), then returns the wall-clock figures and executor
    /// statistics.
    pub fn finish(mut self, sink: &mut dyn CommitSink) -> Result<SessionSummary, EngineError> {
        self.drain_slow_lane(sink)?;
        let mut summary = self.summary;
        summary.governor = self.governor.transitions().to_vec();
        Ok(summary)
    }

    /// Runs every execution waiting in the slow lane now (e.g. before a live engine shuts
    /// down); [`Session::finish`] does it too.
    pub fn drain_slow_lane(&mut self, sink: &mut dyn CommitSink) -> Result<(), EngineError> {
        if !self.governor.slow_lane().is_empty() {
            self.slow_lane_turn(sink, true)?;
        }
        Ok(())
    }

    /// The trigger governor's state.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// Ends this session but not the stream: the figures so far, and the cursor to continue
    /// with [`Engine::resume`].
    pub fn suspend(self) -> (SessionSummary, StreamCursor) {
        (
            self.summary,
            StreamCursor {
                seen: self.seen,
                position: self.position,
                governor: self.governor,
            },
        )
    }

    /// Stage 1: decides which records of a chunk run. Rejections are written into
    /// `outcomes`.
    fn admit<'r>(
        &mut self,
        records: &'r [EventRecord],
        memberships: &'r MembershipSnapshot,
        participation: &'r [Vec<Participation>],
        picks: &[u32],
        outcomes: &mut [Option<RecordOutcome>],
    ) -> Vec<Admitted<'r>> {
        let mut admitted = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let reject = |kind: RejectKind, error: String| RecordOutcome {
                line: record.line,
                event_id: record.event.as_ref().ok().map(|e| e.id.clone()),
                lane: None,
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
            if let Some(first) = self.seen.first_line_or_insert(&event.id, record.line) {
                outcomes[i] = Some(reject(
                    RejectKind::DuplicateEventId,
                    format!(
                        "duplicate event id `{}` (first seen at line {first})",
                        event.id
                    ),
                ));
                continue;
            }
            if !self.engine.triggers.is_known_event_type(&event.event_type) {
                outcomes[i] = Some(reject(
                    RejectKind::UnknownEventType,
                    format!("unknown event type `{}`", event.event_type),
                ));
                continue;
            }
            let Some(row) = self.state.customers.row_of(event.customer_id) else {
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
                memberships,
                participation: participation
                    .get(picks.get(i).map_or(0, |p| *p as usize))
                    .map_or(&[][..], |p| &p[..]),
            });
        }
        admitted
    }
}

/// Hands a chunk's results to the sink in input order: a committed transaction first
/// releases every rejected or held record before it.
struct Emitter<'c> {
    records: &'c [EventRecord],
    /// Outcomes of records that do not run (rejected, held), by chunk index.
    outcomes: Vec<Option<RecordOutcome>>,
    held: Vec<Option<HeldEvent>>,
    /// The next chunk index to deliver.
    next: usize,
    /// Stream position of the chunk's first record.
    base: u64,
    sink: &'c mut dyn CommitSink,
    progress: Option<&'c (dyn Fn(u64) + Sync)>,
    delivery_ns: u64,
}

impl Emitter<'_> {
    fn committed(&mut self, a: &Admitted<'_>, output: TxnOutput) {
        self.flush_to(a.record);
        let outcome = |status| RecordOutcome {
            line: a.line,
            event_id: Some(a.event.id.clone()),
            lane: None,
            status,
        };
        let result = committed_result(self.base + a.record as u64, outcome, output);
        self.deliver(result);
        self.next = a.record + 1;
    }

    /// Delivers every not-run record before chunk index `end`.
    fn flush_to(&mut self, end: usize) {
        while self.next < end {
            let i = self.next;
            let record = &self.records[i];
            let outcome = self.outcomes[i].take().unwrap_or_else(|| RecordOutcome {
                line: record.line,
                event_id: record.event.as_ref().ok().map(|e| e.id.clone()),
                lane: None,
                status: RecordStatus::Rejected {
                    kind: RejectKind::Malformed,
                    error: "internal: record neither admitted nor rejected".into(),
                },
            });
            let result = RecordResult::not_run(self.base + i as u64, outcome, self.held[i].take());
            self.deliver(result);
            self.next = i + 1;
        }
    }

    fn deliver(&mut self, result: RecordResult) {
        let started = Instant::now();
        let position = result.position;
        self.sink.record(result);
        self.delivery_ns += started.elapsed().as_nanos() as u64;
        if (position + 1) % 4096 == 0 {
            if let Some(progress) = self.progress {
                progress(position + 1);
            }
        }
    }
}

/// Queues a fast-lane result's deferred executions (depth 0) in the slow lane.
fn defer(governor: &mut Governor, chunk: &[EventRecord], base: u64, result: &RecordResult) {
    let RecordStatus::Processed { triggers } = &result.outcome.status else {
        return;
    };
    for (outcome, (ti, _)) in triggers.iter().zip(&result.timings) {
        if !matches!(outcome.result, TriggerResult::Deferred { .. }) || outcome.depth != 0 {
            continue;
        }
        let index = result.position.saturating_sub(base);
        let event = usize::try_from(index)
            .ok()
            .and_then(|i| chunk.get(i))
            .and_then(|r| r.event.as_ref().ok());
        if let Some(event) = event {
            governor.slow_lane_mut().defer(SlowItem {
                line: result.outcome.line,
                position: result.position,
                event: event.clone(),
                trigger: *ti,
            });
        }
    }
}

/// The result of a committed transaction at stream `position`; `outcome` wraps its status
/// into the record's outcome (line, id, lane).
fn committed_result(
    position: u64,
    outcome: impl FnOnce(RecordStatus) -> RecordOutcome,
    output: TxnOutput,
) -> RecordResult {
    RecordResult {
        position,
        outcome: outcome(RecordStatus::Processed {
            triggers: output.triggers,
        }),
        effects: output.effects,
        held: None,
        chained_events: output.chained_events,
        written: output.writes.into_iter().map(|(key, _)| key).collect(),
        timings: output.timings,
    }
}
