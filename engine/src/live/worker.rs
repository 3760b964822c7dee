//! The engine thread: gathers micro-batches in acceptance order and runs each through a
//! session, then answers its submitters (see the parent module for the invariants).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crossbeam::channel::{self, RecvTimeoutError, TryRecvError};
use fusebox_quotas::notify::{Figures, Notification, NotificationKind, Notifier, Subject};
use fusebox_quotas::Quotas;
use tokio::sync::oneshot;

use super::answer::{Answerer, Waiter};
use super::log::AcceptedLog;
use super::metrics::BatchMetrics;
use super::status::{ProcessFigures, RunState};
use super::store::{add_loaded, BatchWrites, StateStore, StoreError};
use super::{metrics, FinalReport, LiveConfig, LiveError, Monitor, SubmitError, Submitted};
use crate::engine::{Engine, RunOptions, StreamCursor};
use crate::event::{Event, EventRecord};
use crate::sink::RecordResult;
use crate::state::State;
use crate::trigger::TriggerSet;

/// What the handle sends the engine thread.
pub(crate) enum Msg {
    /// An accepted event (its intake permit is taken).
    Event(Pending),
    /// An operator's request, handled between batches.
    Control(Control),
}

/// An operator's request.
pub(crate) enum Control {
    /// A new trigger set, answered with its version.
    Reload(Reload, oneshot::Sender<Result<u64, LiveError>>),
    /// Drain and stop.
    Shutdown(oneshot::Sender<Result<FinalReport, LiveError>>),
    /// The global pause, with the operator's reason.
    Pause(String, oneshot::Sender<Result<u64, LiveError>>),
    /// Release the pause.
    Resume(oneshot::Sender<Result<u64, LiveError>>),
}

/// What the engine thread owns besides the engine and its state.
pub(crate) struct Resources {
    pub store: Box<dyn StateStore>,
    pub log: Option<AcceptedLog>,
    pub quotas: Option<Quotas>,
    pub notifier: std::sync::Arc<dyn Notifier>,
    /// Where slow-lane results go (see [`super::LiveEngine::slow_lane_outcomes`]).
    pub slow_lane: tokio::sync::mpsc::UnboundedSender<Submitted>,
}

/// A new trigger set, compiled or to compile, or new quotas.
pub(crate) enum Reload {
    Compiled(Box<TriggerSet>),
    Yaml {
        text: String,
        file: String,
    },
    Quotas(Option<Box<Quotas>>),
    /// The runtime kill switch.
    StopTrigger {
        id: String,
        reason: String,
    },
    /// Undo an operator's or the governor's stop.
    ResumeTrigger {
        id: String,
    },
}

/// An accepted event waiting for its answer.
pub(crate) struct Pending {
    pub event: Event,
    pub accepted: Instant,
    pub reply: oneshot::Sender<Result<Submitted, SubmitError>>,
}

pub(crate) struct Worker {
    engine: Engine,
    state: State,
    cursor: Option<StreamCursor>,
    store: Box<dyn StateStore>,
    log: Option<AcceptedLog>,
    quotas: Option<Quotas>,
    notifier: std::sync::Arc<dyn Notifier>,
    slow_lane: tokio::sync::mpsc::UnboundedSender<Submitted>,
    config: LiveConfig,
    rx: channel::Receiver<Msg>,
    /// Accepted events waiting while paused or draining after a resume, in acceptance order.
    backlog: VecDeque<Pending>,
    /// Why and since when an operator paused the engine.
    paused: Option<String>,
    monitor: std::sync::Arc<Monitor>,
    /// Line number of the last accepted event.
    line: u64,
    /// Events taken off the channel (compared with [`Monitor::announced`]).
    received: u64,
    /// Metric handles for the current trigger set.
    metrics: BatchMetrics,
    /// Hands answers to the delivery thread.
    answers: Answerer,
    batches: u64,
    version: u64,
    /// Why the engine stopped, once it has.
    stopped: Option<String>,
    /// When quota figures were last read, and the newest event time seen (the quota clock).
    quotas_polled: Option<Instant>,
    newest_event: i64,
}

impl Worker {
    pub fn new(
        engine: Engine,
        state: State,
        resources: Resources,
        config: LiveConfig,
        rx: channel::Receiver<Msg>,
        monitor: std::sync::Arc<Monitor>,
    ) -> Worker {
        let Resources {
            store,
            log,
            quotas,
            notifier,
            slow_lane,
        } = resources;
        let line = log.as_ref().map_or(0, AcceptedLog::lines);
        let metrics = BatchMetrics::new(engine.triggers());
        let answers = Answerer::start(monitor.clone());
        Worker {
            engine,
            state,
            cursor: Some(StreamCursor::default()),
            store,
            log,
            quotas,
            notifier,
            slow_lane,
            config,
            rx,
            backlog: VecDeque::new(),
            paused: None,
            monitor,
            line,
            received: 0,
            metrics,
            answers,
            batches: 0,
            version: 1,
            stopped: None,
            quotas_polled: None,
            newest_event: i64::MIN,
        }
    }

    /// Runs until shut down, or until every handle is dropped and the intake is drained.
    pub fn run(mut self) {
        loop {
            let draining = self.paused.is_none() && !self.backlog.is_empty();
            let msg = if draining {
                self.rx.try_recv().ok()
            } else {
                match self.rx.recv() {
                    Ok(msg) => Some(msg),
                    // Every handle dropped: nobody can resume, so a paused backlog drains.
                    Err(_) if !self.backlog.is_empty() => {
                        self.paused = None;
                        None
                    }
                    Err(_) => break,
                }
            };
            let control = match msg {
                // Behind a backlog (paused, or still draining), an event waits its turn.
                Some(Msg::Event(p)) if self.paused.is_some() || !self.backlog.is_empty() => {
                    self.received += 1;
                    self.backlog.push_back(p);
                    None
                }
                Some(Msg::Event(first)) => {
                    let (batch, control) = self.gather(first);
                    self.run_batch(batch);
                    control
                }
                Some(Msg::Control(control)) => Some(control),
                None => {
                    self.drain_backlog_batch();
                    None
                }
            };
            if let Some(control) = control {
                if let Some(done) = self.control(control) {
                    self.paused = None;
                    self.monitor.tracker().paused = None;
                    while !self.backlog.is_empty() {
                        self.drain_backlog_batch();
                    }
                    done.finish(self);
                    return;
                }
            }
        }
        // Every handle dropped: the intake is closed and drained.
        self.drain_slow_lane();
        self.answers.finish();
        let mut tracker = self.monitor.tracker();
        tracker.stop(
            self.stopped
                .clone()
                .unwrap_or_else(|| "every handle was dropped".into()),
        );
    }

    /// Runs the next batch of the backlog, at most `resume_rate` events per second.
    fn drain_backlog_batch(&mut self) {
        let started = Instant::now();
        let mut n = self.config.max_batch.min(self.backlog.len());
        if let Some(rate) = self.config.resume_rate {
            // Batches of about 20 ms of the allowed rate.
            n = n.min((rate as usize / 50).max(1));
        }
        let batch: Vec<Pending> = self.backlog.drain(..n).collect();
        self.run_batch(batch);
        if let Some(rate) = self.config.resume_rate {
            let due = Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }

    /// Tells the operator the engine was paused or resumed.
    fn notify_pause(&self, kind: NotificationKind, reason: &str) {
        let backlog = self.backlog.len() as u64;
        let what = if kind == NotificationKind::Paused {
            "paused"
        } else {
            "resumed"
        };
        self.notifier.notify(Notification {
            owner: self.config.operator.clone(),
            subject: Subject::Engine {
                id: self.config.name.clone(),
            },
            kind,
            reason: reason.to_string(),
            figures: Figures::new().with("backlog", backlog),
            at: chrono::Utc::now(),
            message: format!(
                "engine {} {what}: {reason}; {backlog} accepted events waiting",
                self.config.name
            ),
        });
    }

    /// The first event plus whatever follows it within the batch's size and delay (counted
    /// from the first event's acceptance); stops early at a control message, returned to
    /// run after the batch, and once the batch holds every announced event (nothing else
    /// is on its way, so waiting could only delay these).
    fn gather(&mut self, first: Pending) -> (Vec<Pending>, Option<Control>) {
        let deadline = first.accepted + self.config.max_delay;
        let mut batch = vec![first];
        self.received += 1;
        while batch.len() < self.config.max_batch {
            let everything_in = self.received >= self.monitor.announced.load(Ordering::SeqCst);
            let next = if self.config.max_delay.is_zero() || everything_in {
                self.rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                self.rx.recv_deadline(deadline)
            };
            match next {
                Ok(Msg::Event(p)) => {
                    self.received += 1;
                    batch.push(p);
                }
                Ok(Msg::Control(control)) => return (batch, Some(control)),
                Err(_) => break,
            }
        }
        (batch, None)
    }

    fn run_batch(&mut self, batch: Vec<Pending>) {
        let n = batch.len();
        let (events, waiters): (Vec<Event>, Vec<Waiter>) = batch
            .into_iter()
            .map(|p| {
                (
                    p.event,
                    Waiter {
                        accepted: p.accepted,
                        reply: p.reply,
                    },
                )
            })
            .unzip();
        if let Some(reason) = &self.stopped {
            let reason = reason.clone();
            self.answer_all(waiters, SubmitError::Stopped(reason));
            return;
        }
        self.batches += 1;
        let span = tracing::info_span!("batch", batch = self.batches, events = n);
        let _entered = span.enter();
        let started = Instant::now();
        match self.execute(events) {
            Ok((results, reexecutions)) => {
                let elapsed = started.elapsed();
                // Before answering, so a submitter that asks `status()` next sees the batch.
                self.poll_quotas();
                self.monitor
                    .tracker()
                    .batch(&results, elapsed.as_secs_f64() * 1e3);
                self.metrics.batch(&results, elapsed, reexecutions);
                let answers = waiters
                    .into_iter()
                    .zip(results)
                    .map(|(waiter, result)| (waiter, Ok(Submitted::from(result))))
                    .collect();
                self.answers.deliver(answers);
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "live engine stopped");
                self.stopped = Some(reason.clone());
                self.monitor.tracker().stop(reason.clone());
                self.answer_all(waiters, SubmitError::Stopped(reason));
            }
        }
    }

    /// Logs, loads, runs and persists one batch; its results in order, and the speculative
    /// re-executions it cost.
    fn execute(&mut self, events: Vec<Event>) -> Result<(Vec<RecordResult>, u64), LiveError> {
        let first_line = self.line + 1;
        if let Some(log) = &mut self.log {
            log.append(&events).map_err(|source| LiveError::Log {
                path: log.path().to_path_buf(),
                source,
            })?;
        }
        self.line += events.len() as u64;
        if let Some(newest) = events.iter().map(|e| e.timestamp).max() {
            self.newest_event = self.newest_event.max(newest);
        }
        self.load_missing(&events)?;
        let records: Vec<EventRecord> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| EventRecord {
                line: first_line + i as u64,
                event: Ok(event),
            })
            .collect();
        self.run_session(&records, false)
    }

    /// Pushes `records` (and with `drain`, everything waiting in the slow lane) through a
    /// session resumed from the cursor, persists the writes, and sends slow-lane results
    /// on; the records' own results in order, and the re-executions it cost.
    fn run_session(
        &mut self,
        records: &[EventRecord],
        drain: bool,
    ) -> Result<(Vec<RecordResult>, u64), LiveError> {
        let options = RunOptions {
            progress: None,
            quotas: self.quotas.as_ref(),
            notifier: Some(&*self.notifier),
        };
        let cursor = self.cursor.take().unwrap_or_default();
        let mut session = self.engine.resume(&mut self.state, &options, cursor)?;
        let mut results = Vec::with_capacity(records.len());
        let mut slow = Vec::new();
        let mut sink = |r: RecordResult| {
            if r.outcome.lane.is_some() {
                slow.push(r);
            } else {
                results.push(r);
            }
        };
        let mut pushed = session.push(records, &mut sink);
        if drain && pushed.is_ok() {
            pushed = session.drain_slow_lane(&mut sink);
        }
        let (summary, cursor) = session.suspend();
        {
            let lane = cursor.governor().slow_lane();
            let mut tracker = self.monitor.tracker();
            tracker.slow_lane.queued = lane.queued();
            tracker.slow_lane.ran = lane.ran();
        }
        self.cursor = Some(cursor);
        pushed?;
        if self.store.wants_writes() {
            let writes = BatchWrites::collect(
                self.batches,
                results
                    .iter()
                    .chain(&slow)
                    .flat_map(|r| r.written.iter().copied()),
                &self.state,
                self.engine.triggers(),
            );
            if !writes.is_empty() {
                let store = &mut self.store;
                retry(&self.config, "persist", || store.persist(&writes))?;
            }
        }
        for r in slow {
            // Nobody listening (the receiver was dropped): the results stay in the status.
            let _ = self.slow_lane.send(Submitted::from(r));
        }
        Ok((results, summary.parallel.aborts))
    }

    /// Runs everything waiting in the slow lane (before the engine ends).
    fn drain_slow_lane(&mut self) {
        let waiting = self
            .cursor
            .as_ref()
            .map_or(0, |c| c.governor().slow_lane().queued());
        if waiting == 0 || self.stopped.is_some() {
            return;
        }
        if let Err(e) = self.run_session(&[], true) {
            let reason = e.to_string();
            tracing::error!(error = %reason, "live engine stopped while draining the slow lane");
            self.stopped = Some(reason.clone());
            self.monitor.tracker().stop(reason);
        }
    }

    /// Reads every quota process's figures into the status and metrics, at most once a
    /// second (a ledger read per process), on the quota clock: the newest event time.
    fn poll_quotas(&mut self) {
        let Some(quotas) = &self.quotas else { return };
        if self
            .quotas_polled
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.quotas_polled = Some(Instant::now());
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(self.newest_event)
            .unwrap_or_else(chrono::Utc::now);
        match quotas.status(None, at) {
            Ok(all) => {
                let figures: Vec<ProcessFigures> = all
                    .into_iter()
                    .map(|p| ProcessFigures {
                        process: p.process,
                        owner: p.owner,
                        state: serde_json::to_value(p.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        used_records: p.used.records,
                        used_bytes: p.used.bytes,
                        limit_records: p.limit.records,
                        limit_bytes: p.limit.bytes,
                    })
                    .collect();
                figures.iter().for_each(metrics::quota);
                self.monitor.tracker().processes = figures;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read quota figures"),
        }
    }

    /// Asks the store for the batch's customers the table does not hold.
    fn load_missing(&mut self, events: &[Event]) -> Result<(), LiveError> {
        let mut missing: Vec<u64> = events
            .iter()
            .map(|e| e.customer_id)
            .filter(|id| self.state.customers.row_of(*id).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let store = &mut self.store;
        let loaded = retry(&self.config, "load", || store.load(&missing))?;
        add_loaded(&mut self.state.customers, &loaded)?;
        Ok(())
    }

    fn answer_all(&self, waiters: Vec<Waiter>, error: SubmitError) {
        let answers = waiters
            .into_iter()
            .map(|w| (w, Err(error.clone())))
            .collect();
        self.answers.deliver(answers);
    }

    /// Handles a control message; `Some` when the engine must end.
    fn control(&mut self, control: Control) -> Option<Shutdown> {
        match control {
            Control::Reload(reload, reply) => {
                let _ = reply.send(self.reload(reload));
                None
            }
            Control::Shutdown(reply) => Some(Shutdown(reply)),
            Control::Pause(reason, reply) => {
                if self.paused.is_none() {
                    tracing::warn!(%reason, "engine paused by an operator");
                    self.notify_pause(NotificationKind::Paused, &reason);
                    self.monitor.tracker().paused = Some((reason.clone(), SystemTime::now()));
                    self.paused = Some(reason);
                }
                let _ = reply.send(Ok(self.version));
                None
            }
            Control::Resume(reply) => {
                if let Some(reason) = self.paused.take() {
                    tracing::warn!(
                        backlog = self.backlog.len(),
                        "engine resumed by an operator"
                    );
                    self.notify_pause(
                        NotificationKind::Unpaused,
                        &format!("resumed after: {reason}"),
                    );
                    self.monitor.tracker().paused = None;
                }
                let _ = reply.send(Ok(self.version));
                None
            }
        }
    }

    /// A copy of the running trigger set and the index of trigger `id` in it.
    fn current_with(&self, id: &str) -> Result<(TriggerSet, usize), LiveError> {
        let running = self.engine.triggers();
        match running.triggers.iter().position(|t| &*t.id == id) {
            Some(i) => Ok((running.clone(), i)),
            None => Err(LiveError::UnknownTrigger {
                id: id.to_string(),
                known: running
                    .triggers
                    .iter()
                    .map(|t| t.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Tells trigger `i`'s owner about an operator's stop or resume.
    fn notify_trigger(&self, set: &TriggerSet, i: usize, kind: NotificationKind, reason: &str) {
        let t = &set.triggers[i];
        tracing::warn!(trigger = %t.id, %reason, "trigger kill switch");
        self.notifier.notify(Notification {
            owner: t.owner.to_string(),
            subject: Subject::trigger(t.id.to_string()),
            kind,
            reason: reason.to_string(),
            figures: Figures::new().with("version", self.version + 1),
            at: chrono::Utc::now(),
            message: format!("trigger {} {reason}", t.id),
        });
    }

    fn reload(&mut self, reload: Reload) -> Result<u64, LiveError> {
        if let Some(reason) = &self.stopped {
            return Err(LiveError::Stopped(reason.clone()));
        }
        let set = match reload {
            Reload::Quotas(quotas) => {
                self.quotas = quotas.map(|q| *q);
                self.quotas_polled = None;
                self.version += 1;
                self.monitor.tracker().triggers_version = self.version;
                tracing::info!(version = self.version, "quotas reloaded");
                return Ok(self.version);
            }
            Reload::StopTrigger { id, reason } => {
                let (mut set, i) = self.current_with(&id)?;
                let reason: std::sync::Arc<str> = reason.into();
                set.triggers[i].stopped = Some(reason.clone());
                self.notify_trigger(
                    &set,
                    i,
                    NotificationKind::Stopped,
                    &format!("stopped by an operator: {reason}"),
                );
                set
            }
            Reload::ResumeTrigger { id } => {
                let (mut set, i) = self.current_with(&id)?;
                set.triggers[i].stopped = None;
                if let Some(cursor) = &mut self.cursor {
                    cursor.resume_trigger(i);
                }
                self.notify_trigger(&set, i, NotificationKind::Resumed, "resumed by an operator");
                set
            }
            Reload::Compiled(set) => *set,
            Reload::Yaml { text, file } => {
                crate::config::compile_triggers(&text, &file, Some(self.state.customers.schema()))
                    .map_err(|e| LiveError::Config(Box::new(e)))?
            }
        };
        let engine = Engine::builder(set)
            .executor(self.engine.executor())
            .memberships(self.engine.memberships().clone())
            .build()?;
        carry_over(self.engine.triggers(), engine.triggers(), &mut self.state);
        if let Some(cursor) = &mut self.cursor {
            cursor.refit(engine.triggers(), self.engine.triggers());
        }
        self.metrics = BatchMetrics::new(engine.triggers());
        self.engine = engine;
        self.version += 1;
        self.monitor.tracker().triggers_version = self.version;
        tracing::info!(version = self.version, "triggers reloaded");
        Ok(self.version)
    }
}

/// A shutdown in progress.
struct Shutdown(oneshot::Sender<Result<FinalReport, LiveError>>);

impl Shutdown {
    /// Runs everything accepted before the shutdown, refuses what came after, and answers.
    fn finish(self, mut worker: Worker) {
        loop {
            match worker.rx.try_recv() {
                Ok(Msg::Event(p)) => {
                    // Sent after the shutdown was: not accepted.
                    let _ = p.reply.send(Err(SubmitError::ShuttingDown));
                    worker.monitor.permits.add_permits(1);
                }
                Ok(Msg::Control(Control::Reload(_, reply))) => {
                    let _ = reply.send(Err(LiveError::Stopped("shut down".into())));
                }
                Ok(Msg::Control(Control::Shutdown(reply))) => {
                    let _ = reply.send(Err(LiveError::Stopped("shut down".into())));
                }
                Ok(Msg::Control(Control::Pause(_, reply) | Control::Resume(reply))) => {
                    let _ = reply.send(Err(LiveError::Stopped("shut down".into())));
                }
                Err(_) => break,
            }
        }
        // Every deferred execution runs and every answer is delivered before the report.
        worker.drain_slow_lane();
        worker.answers.finish();
        worker.monitor.permits.close();
        let reason = worker.stopped.clone();
        {
            let mut tracker = worker.monitor.tracker();
            match &reason {
                Some(r) => tracker.stop(r.clone()),
                None => {
                    tracker.state = RunState::Stopped {
                        reason: "shut down".into(),
                    }
                }
            }
        }
        let status = worker.monitor.status(0);
        let _ = self.0.send(match reason {
            Some(r) => Err(LiveError::Stopped(r)),
            None => Ok(FinalReport {
                status,
                state: worker.state,
            }),
        });
    }
}

/// Calls a store operation, retrying with doubling waits; the last error after
/// `config.store_retries` retries.
fn retry<T>(
    config: &LiveConfig,
    what: &str,
    mut call: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut wait = config.store_backoff;
    let mut attempt = 0;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) => {
                metrics::store_failure();
                if attempt >= config.store_retries || matches!(e, StoreError::BadCustomer { .. }) {
                    tracing::error!(error = %e, attempts = attempt + 1, "state store {what} failed");
                    return Err(e);
                }
                tracing::warn!(error = %e, attempt = attempt + 1, "state store {what} failed; retrying");
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// Carries counter values and pool cursors from `old` to `new` by name (and kind, for
/// counters); the rest start fresh.
fn carry_over(old: &TriggerSet, new: &TriggerSet, state: &mut State) {
    let counters = new
        .counters
        .iter()
        .map(|c| {
            old.counters
                .iter()
                .position(|o| o.id == c.id && o.ty == c.ty)
                .map_or_else(|| c.initial.clone(), |i| state.counters[i].clone())
        })
        .collect();
    let pools = new
        .pools
        .iter()
        .map(|p| {
            old.pools
                .iter()
                .position(|o| o.id == p.id)
                .map_or(0, |i| state.pool_cursors[i])
        })
        .collect();
    state.counters = counters;
    state.pool_cursors = pools;
}
