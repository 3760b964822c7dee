//! The live engine: an async handle for a backend that receives events as they happen and
//! wants each event's outcome back in milliseconds (feature `live`).
//!
//! ```text
//!  submitters (tokio tasks)            engine thread ("fusebox-live")           worker pool
//!  submit / try_submit / submit_many   ──────────────────────────────           ───────────
//!    │ permit (bounded intake)         gather a micro-batch (max size, delay)
//!    └─► channel (acceptance order) ─► log it (write-ahead) ─► load customers ─► executor
//!          ▲                           persist writes (one store call) ◄──────── commit order
//!          └── outcome + effects ◄──── answer each submitter, in order
//! ```
//!
//! **Design.** Submitters never run engine code: `submit` takes a permit of the bounded
//! intake (waiting when it is full; `try_submit` fails at once with [`SubmitError::Full`]),
//! puts the event on a channel and awaits a oneshot answer. The channel's order is the
//! *acceptance order*, and that is the serial order. One dedicated OS thread owns the
//! [`Engine`], the [`State`] and the [`StateStore`]; it gathers accepted events into
//! micro-batches ([`LiveConfig::max_batch`] events, or whatever arrived within
//! [`LiveConfig::max_delay`] of the first one's acceptance, ending early once the batch
//! holds every event accepted so far: waiting longer could only delay them) and pushes each
//! through a [`crate::Session`] — admission, the quota gate, the executor on the engine's
//! own worker threads, the commit sink — so CPU work never runs on a tokio worker. A second
//! thread delivers the answers, so waking submitters overlaps the next batch. The session's [`crate::StreamCursor`]
//! carries the ids seen and the position from batch to batch, so a live run is one stream:
//! the same results as `fusebox run` over the same events in acceptance order.
//!
//! **Invariants.**
//! - Every accepted event gets exactly one answer: its [`Submitted`] outcome (processed,
//!   rejected or held) or, if the engine stopped first, [`SubmitError::Stopped`]. Nothing is
//!   dropped silently; an event refused at the door (`Full`, `ShuttingDown`) was never
//!   accepted.
//! - A batch's events are written to the accepted-event log ([`LiveConfig::accepted_log`])
//!   before it runs; replaying the log with `fusebox run` gives the same state, effects and
//!   outcomes byte for byte (see [`log`]).
//! - A batch's writes are persisted (one [`StateStore::persist`] call) before any of its
//!   effects is delivered; if persisting fails, the engine stops (see [`store`]).
//! - A reload applies between two batches: in-flight work finishes on the old triggers.
//!
//! **Pause.** [`LiveEngine::pause`] (the big red button) stops the engine thread from
//! running batches at the next batch boundary; accepted events wait in a backlog, the intake
//! stays bounded (back-pressure), nothing is dropped. [`LiveEngine::resume`] drains the
//! backlog first, in acceptance order, at most [`LiveConfig::resume_rate`] events per
//! second. Both notify the operator. A shutdown while paused drains the backlog too.
//!
//! **Shutdown.** [`LiveEngine::shutdown`] stops intake (later submits get
//! [`SubmitError::ShuttingDown`]), runs everything accepted before it, delivers every
//! outcome and returns a [`FinalReport`] with the final state. **Dropping** every handle
//! without `shutdown` closes the intake the same way: the engine thread still runs and
//! answers every accepted event, then ends — but nobody waits for it, so a process that
//! exits right after dropping may cut that short. Call `shutdown` to be sure.

mod answer;
mod log;
mod metrics;
mod status;
mod store;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam::channel;
use fusebox_quotas::notify::Notifier;
use fusebox_quotas::Quotas;
use tokio::sync::{oneshot, Semaphore, TryAcquireError};

use crate::config::ConfigError;
use crate::engine::{Engine, EngineError};
use crate::event::Event;
use crate::gate::HeldEvent;
use crate::outcome::{Effect, RecordOutcome};
use crate::state::State;
use crate::trigger::TriggerSet;

pub use log::AcceptedLog;
pub use status::{
    Health, Latency, Pause, Problem, ProcessFigures, RunState, SlowLaneFigures, Status,
    TriggerFigures,
};
pub use store::{
    BatchWrites, InMemoryStore, MapContents, MapStore, StateStore, StoreError, StoredCustomer,
};

/// How a live engine batches, bounds and records.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Most events in one micro-batch.
    pub max_batch: usize,
    /// How long after its first event was accepted a batch may wait for more events; it
    /// stops waiting as soon as it holds every event accepted so far. Zero: a batch is
    /// whatever is queued when the engine thread gets to it.
    pub max_delay: Duration,
    /// Events accepted and not yet answered, at most (the intake's bound).
    pub capacity: usize,
    /// Where to record every accepted event (see [`log`]); `None`: not recorded.
    pub accepted_log: Option<PathBuf>,
    /// Retries of a failed `persist` (or `load`) before the engine stops.
    pub store_retries: u32,
    /// Wait before the first retry; doubles each time.
    pub store_backoff: Duration,
    /// Events per second, at most, while the backlog of a pause drains after `resume`
    /// (`None`: as fast as the engine runs), so the resume spike does not overload what
    /// receives the effects.
    pub resume_rate: Option<u32>,
    /// The engine's name in notifications (`{"type":"engine","id":…}`).
    pub name: String,
    /// Who is told when the engine is paused and resumed.
    pub operator: String,
    /// A segment membership published longer ago than this makes `status()` degraded
    /// (`segment:<id>` problem); `None`: no freshness rule.
    pub segment_max_age: Option<Duration>,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            max_batch: 1024,
            max_delay: Duration::from_millis(1),
            capacity: 65_536,
            accepted_log: None,
            store_retries: 3,
            store_backoff: Duration::from_millis(10),
            resume_rate: None,
            name: "fusebox".into(),
            operator: "operator".into(),
            segment_max_age: None,
        }
    }
}

/// One accepted event's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// Its number in acceptance order (1-based): its line in the accepted-event log.
    pub line: u64,
    /// Its outcome: processed (every trigger execution), rejected or held.
    pub outcome: RecordOutcome,
    /// The effects its transaction committed, in order — delivered here exactly once.
    pub effects: Vec<Effect>,
    /// For a held event, what the quota gate held and why.
    pub held: Option<HeldEvent>,
}

impl From<crate::sink::RecordResult> for Submitted {
    fn from(r: crate::sink::RecordResult) -> Submitted {
        Submitted {
            line: r.outcome.line,
            outcome: r.outcome,
            effects: r.effects,
            held: r.held,
        }
    }
}

/// Why an event was not accepted, or accepted but never run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The intake is full (only from `try_submit`; `submit` waits instead).
    #[error("the engine's intake is full ({capacity} events waiting); retry later")]
    Full {
        /// The intake's bound.
        capacity: usize,
    },
    /// More events in one `submit_many` than the intake can ever hold.
    #[error("{asked} events in one call, but the intake holds at most {capacity}")]
    TooMany {
        /// Events in the call.
        asked: usize,
        /// The intake's bound.
        capacity: usize,
    },
    /// The engine is shutting down and takes no new events.
    #[error("the engine is shutting down and takes no new events")]
    ShuttingDown,
    /// The engine stopped before running the event (the reason says why).
    #[error("the engine stopped: {0}")]
    Stopped(String),
}

/// Why the live engine could not start, reload or shut down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The accepted-event log could not be opened or written.
    #[error("accepted-event log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state store failed (after retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine refused the state or hit a bug.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A reloaded triggers file has errors; the old triggers keep running.
    #[error("{0}")]
    Config(Box<ConfigError>),
    /// A reloaded trigger set cannot take over this engine's state.
    #[error("cannot reload: {0}")]
    Reload(String),
    /// The engine has stopped (the reason says why) or shut down.
    #[error("the engine stopped: {0}")]
    Stopped(String),
    /// The engine thread could not be started.
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
    /// A stop or resume named a trigger the running set does not have.
    #[error("no trigger `{id}` (triggers: {known})")]
    UnknownTrigger {
        /// The id asked for.
        id: String,
        /// The running set's trigger ids, comma-separated.
        known: String,
    },
}

/// What a graceful shutdown returns.
#[derive(Debug)]
pub struct FinalReport {
    /// The last status: every figure since start.
    pub status: Status,
    /// The final state (customers, counters, pool cursors).
    pub state: State,
}

/// Starts a live engine: an [`Engine`] and the [`State`] it runs on, plus options.
pub struct LiveBuilder {
    engine: Engine,
    state: State,
    config: LiveConfig,
    store: Box<dyn StateStore>,
    quotas: Option<Quotas>,
    notifier: Arc<dyn Notifier>,
}

impl LiveBuilder {
    /// Where owner notifications go (the pause and resume of the engine); default none.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> LiveBuilder {
        self.notifier = notifier;
        self
    }

    /// Batching, bounds and the accepted-event log.
    pub fn config(mut self, config: LiveConfig) -> LiveBuilder {
        self.config = config;
        self
    }

    /// Where customers come from and writes go (default [`InMemoryStore`]).
    pub fn store(mut self, store: impl StateStore + 'static) -> LiveBuilder {
        self.store = Box::new(store);
        self
    }

    /// Like [`LiveBuilder::store`], for a store already boxed.
    pub fn store_boxed(mut self, store: Box<dyn StateStore>) -> LiveBuilder {
        self.store = store;
        self
    }

    /// Daily per-process quotas charged before events run (see [`crate::gate`]).
    pub fn quotas(mut self, quotas: Quotas) -> LiveBuilder {
        self.quotas = Some(quotas);
        self
    }

    /// Starts the engine thread. Needs no tokio runtime; the handle's futures run on any.
    pub fn start(self) -> Result<LiveEngine, LiveError> {
        let LiveBuilder {
            engine,
            state,
            mut config,
            store,
            quotas,
            notifier,
        } = self;
        config.max_batch = config.max_batch.max(1);
        config.capacity = config.capacity.clamp(1, Semaphore::MAX_PERMITS);
        // The state must fit the triggers now, not on the first batch.
        engine.check_state(&state)?;
        let log = match &config.accepted_log {
            Some(path) => Some(AcceptedLog::open(path).map_err(|source| LiveError::Log {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let monitor = Arc::new(Monitor {
            permits: Semaphore::new(config.capacity),
            accepted: AtomicU64::new(0),
            announced: AtomicU64::new(0),
            notifier: notifier.clone(),
            tracker: Mutex::new(status::Tracker::new(
                config.capacity,
                config.segment_max_age,
            )),
            memberships: engine.memberships().clone(),
        });
        let (tx, rx) = channel::unbounded();
        let (slow_tx, slow_rx) = tokio::sync::mpsc::unbounded_channel();
        let schema = state.customers.schema().clone();
        let worker = worker::Worker::new(
            engine,
            state,
            worker::Resources {
                store,
                log,
                quotas,
                notifier,
                slow_lane: slow_tx,
            },
            config.clone(),
            rx,
            monitor.clone(),
        );
        std::thread::Builder::new()
            .name("fusebox-live".into())
            .spawn(move || worker.run())
            .map_err(LiveError::Thread)?;
        Ok(LiveEngine {
            shared: Arc::new(Shared {
                tx,
                monitor,
                accepting: AtomicBool::new(true),
                capacity: config.capacity,
                schema,
                slow_lane: Mutex::new(Some(slow_rx)),
            }),
        })
    }
}

/// What the handle and the engine thread share (the thread holds no sender, so dropping
/// every handle closes the intake).
pub(crate) struct Monitor {
    pub permits: Semaphore,
    /// Events accepted since start.
    pub accepted: AtomicU64,
    /// Events accepted or about to be sent to the engine thread (counted before the send):
    /// while it is ahead of what the engine thread has received, more events are on their
    /// way and a batch being gathered waits for them (up to its deadline).
    pub announced: AtomicU64,
    pub tracker: Mutex<status::Tracker>,
    /// The owners' notifier (its delivery figures are part of the status).
    pub notifier: Arc<dyn Notifier>,
    /// The segment registry the engine's conditions read (reloads keep it).
    pub memberships: Arc<crate::expr::segments::Memberships>,
}

impl Monitor {
    pub(crate) fn tracker(&self) -> std::sync::MutexGuard<'_, status::Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A status, given the queue depth: what is observed outside the tracker is read
    /// before its lock is taken.
    pub(crate) fn status(&self, queue_depth: usize) -> Status {
        let observed = status::Observed {
            queue_depth,
            accepted: self.accepted.load(Ordering::Relaxed),
            notifications: self.notifier.delivery(),
            segments: self.memberships.snapshot().published(),
        };
        self.tracker().status(observed)
    }
}

struct Shared {
    tx: channel::Sender<worker::Msg>,
    monitor: Arc<Monitor>,
    accepting: AtomicBool,
    capacity: usize,
    schema: Arc<crate::customers::Schema>,
    /// Until an embedder takes it: where slow-lane results wait.
    slow_lane: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Submitted>>>,
}

/// A handle to a running live engine; cheap to clone, usable from any task or thread.
///
/// ```
/// # use fusebox_engine::{config::compile_triggers, customers::*, engine::Engine,
/// #     event::Event, live::*, outcome::RecordStatus, state::State, value::AttrType};
/// # let rt = tokio::runtime::Runtime::new().unwrap();
/// # rt.block_on(async {
/// let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
/// let customers = CustomerTable::new(schema, vec![1], vec![Column::Int(vec![Some(0)])]).unwrap();
/// let triggers = compile_triggers(
///     "triggers:\n  - id: welcome\n    owner: crm@example.com\n    on: customer.registered\n    actions:\n      - award_points: { amount: \"50\" }\n",
///     "triggers.yaml", Some(customers.schema())).unwrap();
/// let engine = Engine::new(triggers).unwrap();
/// let state = State::new(customers, engine.triggers());
/// let live = LiveEngine::builder(engine, state).start().unwrap();
///
/// let event = Event::new("e1", 1, "customer.registered", 1_767_225_600_000_000);
/// let answer = live.submit(event).await.unwrap();
/// assert!(matches!(answer.outcome.status, RecordStatus::Processed { .. }));
///
/// let report = live.shutdown().await.unwrap();
/// assert_eq!(report.state.customers.get(0, 0), fusebox_engine::value::Value::Int(50));
/// # });
/// ```
#[derive(Clone)]
pub struct LiveEngine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LiveEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEngine")
            .field("capacity", &self.shared.capacity)
            .field("queue_depth", &self.queue_depth())
            .finish()
    }
}

impl LiveEngine {
    /// A builder over `engine` running on `state`.
    pub fn builder(engine: Engine, state: State) -> LiveBuilder {
        LiveBuilder {
            engine,
            state,
            config: LiveConfig::default(),
            store: Box::new(InMemoryStore),
            quotas: None,
            notifier: Arc::new(fusebox_quotas::notify::NullNotifier),
        }
    }

    /// The big red button: the engine stops taking work. Accepted events queue up (the
    /// intake stays bounded, so submitters wait or get `Full`; nothing is dropped), the
    /// operator is notified, and `status()` shows the pause and the backlog. Takes effect at
    /// the next batch boundary: a batch already running finishes.
    pub async fn pause(&self, reason: impl Into<String>) -> Result<(), LiveError> {
        let reason = reason.into();
        self.control(|reply| worker::Control::Pause(reason, reply))
            .await
            .map(|_| ())
    }

    /// Releases the pause: the backlog drains first, in acceptance order, at most
    /// [`LiveConfig::resume_rate`] events per second; the operator is notified.
    pub async fn resume(&self) -> Result<(), LiveError> {
        self.control(worker::Control::Resume).await.map(|_| ())
    }

    /// Submits one event and waits for its outcome. Waits for a place when the intake is
    /// full (back-pressure).
    pub async fn submit(&self, event: Event) -> Result<Submitted, SubmitError> {
        self.check_accepting()?;
        let permit = self
            .shared
            .monitor
            .permits
            .acquire()
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        permit.forget();
        self.enqueue(event)?.await
    }

    /// Submits one event if the intake has room, at once: `Err(Full)` otherwise. The
    /// returned [`Ticket`] resolves to its outcome; the event is accepted whether or not
    /// the ticket is awaited.
    pub fn try_submit(&self, event: Event) -> Result<Ticket, SubmitError> {
        self.check_accepting()?;
        match self.shared.monitor.permits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => {
                return Err(SubmitError::Full {
                    capacity: self.shared.capacity,
                })
            }
            Err(TryAcquireError::Closed) => return Err(SubmitError::ShuttingDown),
        }
        self.enqueue(event)
    }

    /// Submits events in order (waiting for room for all of them at once) and waits for
    /// every outcome. They are accepted one after another, so other submitters' events may
    /// fall between them.
    pub async fn submit_many(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Submitted, SubmitError>>, SubmitError> {
        self.check_accepting()?;
        let n = events.len();
        if n > self.shared.capacity || u32::try_from(n).is_err() {
            return Err(SubmitError::TooMany {
                asked: n,
                capacity: self.shared.capacity,
            });
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let permits = self
            .shared
            .monitor
            .permits
            .acquire_many(n as u32)
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        permits.forget();
        // All of them at once, so a batch started by the first waits for the rest.
        self.shared
            .monitor
            .announced
            .fetch_add(n as u64, Ordering::SeqCst);
        let mut tickets = Vec::with_capacity(n);
        let mut events = events.into_iter();
        for event in events.by_ref() {
            match self.enqueue_announced(event) {
                Ok(t) => tickets.push(Ok(t)),
                Err(e) => {
                    tickets.push(Err(e));
                    break;
                }
            }
        }
        // Not enqueued (the engine thread is gone): give their places back.
        let left = events.len();
        if left > 0 {
            self.shared
                .monitor
                .announced
                .fetch_sub(left as u64, Ordering::SeqCst);
            self.shared.monitor.permits.add_permits(left);
        }
        let mut out = Vec::with_capacity(n);
        for t in tickets {
            out.push(match t {
                Ok(t) => t.await,
                Err(e) => Err(e),
            });
        }
        while out.len() < n {
            out.push(Err(SubmitError::Stopped("engine thread ended".into())));
        }
        Ok(out)
    }

    /// The slow lane's results, for the first caller (later calls get `None`): a throttled
    /// trigger's executions past its allowance are answered in the event's own
    /// [`Submitted`] as `"result":"deferred"` and run later in the slow lane (see
    /// [`crate::slow_lane`]); each such run arrives here as a [`Submitted`] whose outcome
    /// has `lane: Some("slow")`, with its effects — delivered exactly once, after the batch
    /// that ran it was persisted. Until taken they wait in memory (unbounded; the status's
    /// `slow_lane` shows how many ran).
    pub fn slow_lane_outcomes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Submitted>> {
        self.shared
            .slow_lane
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A health summary (see [`Status`]). Never waits for a batch.
    pub fn status(&self) -> Status {
        let depth = self.queue_depth();
        metrics::queue_depth(depth);
        self.shared.monitor.status(depth)
    }

    /// Events accepted and not yet answered.
    pub fn queue_depth(&self) -> usize {
        self.shared
            .capacity
            .saturating_sub(self.shared.monitor.permits.available_permits())
    }

    /// Replaces the trigger set from the next batch on; in-flight work finishes on the old
    /// one. Counters and pools keep their values where the new set has one of the same name
    /// and kind; new ones start fresh. Returns the new version. The customer schema must be
    /// the one the engine runs on.
    pub async fn reload(&self, triggers: TriggerSet) -> Result<u64, LiveError> {
        self.control(|reply| {
            worker::Control::Reload(worker::Reload::Compiled(Box::new(triggers)), reply)
        })
        .await
    }

    /// Compiles a triggers file against the engine's schema (on the engine thread) and
    /// reloads it. An invalid file is refused with the same located diagnostics as
    /// `fusebox check` ([`LiveError::Config`]); the old triggers keep running.
    pub async fn reload_yaml(&self, text: String, file: String) -> Result<u64, LiveError> {
        self.control(|reply| worker::Control::Reload(worker::Reload::Yaml { text, file }, reply))
            .await
    }

    /// Replaces the quotas (or removes them, with `None`) from the next batch on; the
    /// batch in flight finishes under the old ones. Build the new [`Quotas`] over the same
    /// ledger to keep the day's usage. Returns the new configuration version.
    pub async fn reload_quotas(&self, quotas: Option<Quotas>) -> Result<u64, LiveError> {
        self.control(|reply| {
            worker::Control::Reload(worker::Reload::Quotas(quotas.map(Box::new)), reply)
        })
        .await
    }

    /// The kill switch, at runtime: from the next batch on, `trigger`'s firings are recorded
    /// as skipped (`trigger_stopped`) with `reason` and nothing of it runs; its owner is
    /// notified. Stays stopped until [`LiveEngine::resume_trigger`] (or a reload of a file
    /// without `stopped:`). Returns the new configuration version.
    pub async fn stop_trigger(
        &self,
        trigger: &str,
        reason: impl Into<String>,
    ) -> Result<u64, LiveError> {
        let (id, reason) = (trigger.to_string(), reason.into());
        self.control(|reply| {
            worker::Control::Reload(worker::Reload::StopTrigger { id, reason }, reply)
        })
        .await
    }

    /// Resumes a trigger stopped by an operator ([`LiveEngine::stop_trigger`] or `stopped:`
    /// in the file) or by the governor (see [`crate::governor`]; it starts over as active,
    /// its window counts cleared), from the next batch on; its owner is notified. Returns
    /// the new configuration version.
    pub async fn resume_trigger(&self, trigger: &str) -> Result<u64, LiveError> {
        let id = trigger.to_string();
        self.control(|reply| worker::Control::Reload(worker::Reload::ResumeTrigger { id }, reply))
            .await
    }

    /// The customer schema the engine runs on (what a reloaded trigger set must use).
    pub fn schema(&self) -> &Arc<crate::customers::Schema> {
        &self.shared.schema
    }

    /// Stops intake, runs and answers everything accepted, and returns the final report.
    /// Later calls on any clone get `ShuttingDown` / `Stopped`.
    pub async fn shutdown(&self) -> Result<FinalReport, LiveError> {
        self.shared.accepting.store(false, Ordering::SeqCst);
        let (reply, rx) = oneshot::channel();
        self.shared
            .tx
            .send(worker::Msg::Control(worker::Control::Shutdown(reply)))
            .map_err(|_| LiveError::Stopped("the engine thread has ended".into()))?;
        rx.await
            .map_err(|_| LiveError::Stopped("the engine thread has ended".into()))?
    }

    async fn control(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<u64, LiveError>>) -> worker::Control,
    ) -> Result<u64, LiveError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .tx
            .send(worker::Msg::Control(msg(reply)))
            .map_err(|_| LiveError::Stopped("the engine thread has ended".into()))?;
        rx.await
            .map_err(|_| LiveError::Stopped("the engine thread has ended".into()))?
    }

    fn check_accepting(&self) -> Result<(), SubmitError> {
        if self.shared.accepting.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(SubmitError::ShuttingDown)
        }
    }

    /// Puts an event with a permit already taken on the channel.
    fn enqueue(&self, event: Event) -> Result<Ticket, SubmitError> {
        self.shared.monitor.announced.fetch_add(1, Ordering::SeqCst);
        self.enqueue_announced(event)
    }

    /// [`Self::enqueue`] for an event already counted in `announced` (the engine thread
    /// keeps gathering a batch while an announced event is on its way).
    fn enqueue_announced(&self, event: Event) -> Result<Ticket, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let pending = worker::Pending {
            event,
            accepted: Instant::now(),
            reply,
        };
        if self.shared.tx.send(worker::Msg::Event(pending)).is_err() {
            self.shared.monitor.announced.fetch_sub(1, Ordering::SeqCst);
            self.shared.monitor.permits.add_permits(1);
            return Err(SubmitError::Stopped("the engine thread has ended".into()));
        }
        self.shared.monitor.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket(rx))
    }
}

/// The answer to an accepted event, to await (see [`LiveEngine::try_submit`]).
#[derive(Debug)]
pub struct Ticket(oneshot::Receiver<Result<Submitted, SubmitError>>);

impl Future for Ticket {
    type Output = Result<Submitted, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| Err(SubmitError::Stopped("the engine thread has ended".into())))
        })
    }
}
