//! `status()`: a health summary that answers "is something broken, and where?".
//!
//! The engine thread updates a [`Tracker`] after every batch; [`Status`] is a copy of it
//! taken under a short lock, so asking never waits for a batch. Every entry that says
//! something is wrong carries *since when* and *the figure that says so*.
//!
//! Health rules (documented in the README's "Embedding" section):
//! - `stopped`: the engine stopped (store or log failure, engine bug); nothing runs;
//! - `degraded`: the intake is over 90% full, or a trigger aborted more than half of its
//!   executions in the last [`WINDOW`] batches (at least 10 executions), or the p99
//!   submit-to-outcome latency of the last [`LATENCY_SAMPLES`] events is over 1 s, or a quota
//!   process is exhausted (its events are held), or a trigger's p99 execution time over its
//!   last [`TRIGGER_SAMPLES`] executions is over [`SLOW_TRIGGER_MS`], or a segment's
//!   membership was last published longer ago than `LiveConfig::segment_max_age`;
//! - `ok` otherwise.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fusebox_quotas::notify::DeliveryStatus;
use serde::Serialize;

use crate::expr::segments::PublishedSegment;
use crate::outcome::{RecordStatus, TriggerResult};
use crate::sink::RecordResult;

/// Batches a trigger's recent abort rate is computed over.
pub const WINDOW: usize = 64;
/// Submit-to-outcome latencies kept for percentiles.
pub const LATENCY_SAMPLES: usize = 8192;

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Nothing wrong.
    Ok,
    /// Running, but something needs a look (see the entries).
    Degraded,
    /// Not running.
    Stopped,
}

/// Where the engine is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// Taking and running events.
    Running,
    /// Shutting down: no new events, draining the accepted ones.
    Draining,
    /// Stopped, with the reason (`shut down` after a graceful shutdown).
    Stopped {
        /// Why.
        reason: String,
    },
}

/// An operator's pause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    /// Why, as the operator said.
    pub reason: String,
    /// Since when (seconds since the Unix epoch).
    pub since_unix_s: f64,
}

/// A problem, with where, since when and the figure that says so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// `engine`, `intake`, `store`, `log`, `latency`, `notifier`, `trigger:<id>`,
    /// `process:<id>` or `segment:<id>`.
    pub component: String,
    /// What is wrong, in words, with its figure.
    pub what: String,
    /// When it started (seconds since the Unix epoch).
    pub since_unix_s: f64,
}

/// Submit-to-outcome latency percentiles over the last [`LATENCY_SAMPLES`] events, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Worst.
    pub max_ms: f64,
    /// Events the figures are over.
    pub samples: usize,
}

/// One trigger's figures since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TriggerFigures {
    /// Executions (committed + skipped + aborted).
    pub executions: u64,
    /// Committed executions.
    pub committed: u64,
    /// Aborted executions, by reason kind.
    pub aborted: BTreeMap<String, u64>,
    /// Executions and aborts in the last [`WINDOW`] batches.
    pub recent_executions: u64,
    /// Aborts in the last [`WINDOW`] batches.
    pub recent_aborts: u64,
    /// Fuel used by all its executions (see `exec::txn`, "Fuel").
    pub fuel: u64,
    /// Median wall time of its last [`TRIGGER_SAMPLES`] executions, ms.
    pub p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub p99_ms: f64,
    /// Firings moved to the slow lane while it was throttled (see `slow_lane`).
    pub deferred: u64,
}

/// Executions per trigger its latency percentiles are over.
pub const TRIGGER_SAMPLES: usize = 1024;
/// A trigger whose p99 execution time is over this (with at least 20 samples) is slow.
pub const SLOW_TRIGGER_MS: f64 = 20.0;

/// One quota process's figures on its current quota day (polled at most once a second).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessFigures {
    /// Process id.
    pub process: String,
    /// Its owner.
    pub owner: String,
    /// `active`, `warned` or `exhausted`.
    pub state: String,
    /// Records used today.
    pub used_records: u64,
    /// Bytes used today.
    pub used_bytes: u64,
    /// Records allowed today (`None`: unmetered).
    pub limit_records: Option<u64>,
    /// Bytes allowed today (`None`: unmetered).
    pub limit_bytes: Option<u64>,
}

/// A health summary of a live engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Overall health.
    pub health: Health,
    /// Running, draining or stopped.
    #[serde(flatten)]
    pub state: RunState,
    /// Set while an operator has paused the engine: why and since when.
    pub paused: Option<Pause>,
    /// Everything that is wrong (empty when healthy).
    pub problems: Vec<Problem>,
    /// Events accepted and not yet answered.
    pub queue_depth: usize,
    /// Bound of the intake.
    pub capacity: usize,
    /// Events accepted since start.
    pub accepted: u64,
    /// Events answered (processed, rejected or held) since start.
    pub completed: u64,
    /// Batches run.
    pub batches: u64,
    /// Events in the last batch.
    pub last_batch_events: usize,
    /// Execution time of the last batch, ms.
    pub last_batch_ms: f64,
    /// Submit-to-outcome latency.
    pub latency: Latency,
    /// Version of the configuration (1, then +1 per trigger or quota reload).
    pub triggers_version: u64,
    /// Per trigger, since start.
    pub triggers: BTreeMap<String, TriggerFigures>,
    /// Per quota process (empty without quotas).
    pub processes: Vec<ProcessFigures>,
    /// The slow lane: deferred executions of throttled triggers.
    pub slow_lane: SlowLaneFigures,
    /// How the notifier's deliveries are going (`None` if its sink cannot fail).
    pub notifications: Option<DeliveryStatus>,
    /// The segment memberships conditions read: size, when published, compute time.
    pub segments: Vec<PublishedSegment>,
}

/// What a status is taken from besides the tracker: read by the caller, outside its lock.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Events accepted and not yet answered.
    pub queue_depth: usize,
    /// Events accepted since start.
    pub accepted: u64,
    /// How the notifier's deliveries are going.
    pub notifications: Option<DeliveryStatus>,
    /// The published segment memberships.
    pub segments: Vec<PublishedSegment>,
}

/// The slow lane's figures (see `slow_lane`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SlowLaneFigures {
    /// Deferred executions waiting for their turn.
    pub queued: usize,
    /// Deferred executions run so far.
    pub ran: u64,
}

/// What the engine thread keeps up to date.
#[derive(Debug)]
pub(crate) struct Tracker {
    pub state: RunState,
    pub stopped_since: Option<SystemTime>,
    pub capacity: usize,
    pub completed: u64,
    pub batches: u64,
    pub last_batch_events: usize,
    pub last_batch_ms: f64,
    pub triggers_version: u64,
    latencies: VecDeque<f64>,
    triggers: BTreeMap<Arc<str>, TriggerFigures>,
    /// Per batch in the window: per trigger (executions, aborts).
    recent: VecDeque<BTreeMap<Arc<str>, (u64, u64)>>,
    /// When each currently-failing trigger started failing.
    failing_since: BTreeMap<Arc<str>, SystemTime>,
    intake_full_since: Option<SystemTime>,
    slow_since: Option<SystemTime>,
    pub processes: Vec<ProcessFigures>,
    pub paused: Option<(String, SystemTime)>,
    pub slow_lane: SlowLaneFigures,
    /// Since when notifications are failing.
    undelivered_since: Option<SystemTime>,
    /// Per trigger: wall times (ms) of its last executions, and since when it is slow.
    trigger_times: BTreeMap<Arc<str>, VecDeque<f64>>,
    slow_triggers_since: BTreeMap<Arc<str>, SystemTime>,
    /// When each currently exhausted process was first seen exhausted.
    exhausted_since: BTreeMap<String, SystemTime>,
    /// A segment published longer ago than this is stale (`None`: never).
    segment_max_age: Option<Duration>,
}

impl Tracker {
    pub fn new(capacity: usize, segment_max_age: Option<Duration>) -> Tracker {
        Tracker {
            state: RunState::Running,
            stopped_since: None,
            capacity,
            completed: 0,
            batches: 0,
            last_batch_events: 0,
            last_batch_ms: 0.0,
            triggers_version: 1,
            latencies: VecDeque::with_capacity(LATENCY_SAMPLES),
            triggers: BTreeMap::new(),
            recent: VecDeque::with_capacity(WINDOW),
            failing_since: BTreeMap::new(),
            intake_full_since: None,
            slow_since: None,
            trigger_times: BTreeMap::new(),
            slow_triggers_since: BTreeMap::new(),
            processes: Vec::new(),
            paused: None,
            slow_lane: SlowLaneFigures::default(),
            undelivered_since: None,
            exhausted_since: BTreeMap::new(),
            segment_max_age,
        }
    }

    pub fn stop(&mut self, reason: String) {
        if !matches!(self.state, RunState::Stopped { .. }) {
            self.state = RunState::Stopped { reason };
            self.stopped_since = Some(SystemTime::now());
        }
    }

    pub fn latency(&mut self, elapsed: Duration) {
        if self.latencies.len() == LATENCY_SAMPLES {
            self.latencies.pop_front();
        }
        self.latencies.push_back(elapsed.as_secs_f64() * 1e3);
    }

    /// Counts one batch's results.
    pub fn batch(&mut self, results: &[RecordResult], execute_ms: f64) {
        self.batches += 1;
        self.completed += results.len() as u64;
        self.last_batch_events = results.len();
        self.last_batch_ms = execute_ms;
        let mut this: BTreeMap<Arc<str>, (u64, u64)> = BTreeMap::new();
        for r in results {
            let RecordStatus::Processed { triggers } = &r.outcome.status else {
                continue;
            };
            for (i, t) in triggers.iter().enumerate() {
                if let TriggerResult::Deferred { .. } = t.result {
                    entry(&mut self.triggers, &t.trigger).deferred += 1;
                    continue;
                }
                let figures = entry(&mut self.triggers, &t.trigger);
                figures.executions += 1;
                figures.fuel += t.fuel;
                if let Some((_, ns)) = r.timings.get(i) {
                    let times = entry(&mut self.trigger_times, &t.trigger);
                    if times.len() == TRIGGER_SAMPLES {
                        times.pop_front();
                    }
                    times.push_back(*ns as f64 / 1e6);
                }
                let recent = entry(&mut this, &t.trigger);
                recent.0 += 1;
                match &t.result {
                    TriggerResult::Committed => figures.committed += 1,
                    TriggerResult::Skipped
                    | TriggerResult::Stopped { .. }
                    | TriggerResult::Deferred { .. } => {}
                    TriggerResult::Aborted(reason) => {
                        *figures
                            .aborted
                            .entry(reason.kind().to_string())
                            .or_default() += 1;
                        recent.1 += 1;
                    }
                }
            }
        }
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(this);
        let mut window: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for batch in &self.recent {
            for (id, (n, a)) in batch {
                let w = window.entry(id).or_default();
                w.0 += n;
                w.1 += a;
            }
        }
        for (id, figures) in &mut self.triggers {
            let (n, a) = window.get(&**id).copied().unwrap_or_default();
            figures.recent_executions = n;
            figures.recent_aborts = a;
            if n >= 10 && a * 2 > n {
                self.failing_since
                    .entry(id.clone())
                    .or_insert_with(SystemTime::now);
            } else {
                self.failing_since.remove(id);
            }
        }
    }

    /// Takes a [`Status`], given what the caller observed outside the tracker.
    pub fn status(&mut self, observed: Observed) -> Status {
        let Observed {
            queue_depth,
            accepted,
            notifications,
            segments,
        } = observed;
        let now = SystemTime::now();
        let unix = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        };
        let latency = percentiles(&self.latencies);
        let mut problems = Vec::new();
        match notifications.as_ref().filter(|d| !d.is_clean()) {
            Some(d) => {
                let since = *self.undelivered_since.get_or_insert(now);
                let last = d
                    .last_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("; last error: {}", e.message));
                problems.push(Problem {
                    component: "notifier".into(),
                    what: format!(
                        "{} notification(s) failed and {} dropped (never delivered){last}",
                        d.failed, d.dropped
                    ),
                    since_unix_s: unix(since),
                });
            }
            None => self.undelivered_since = None,
        }
        if let RunState::Stopped { reason } = &self.state {
            problems.push(Problem {
                component: "engine".into(),
                what: format!("stopped: {reason}"),
                since_unix_s: unix(self.stopped_since.unwrap_or(now)),
            });
        }
        if let Some((reason, since)) = &self.paused {
            problems.push(Problem {
                component: "engine".into(),
                what: format!("paused by an operator ({reason}): {queue_depth} events waiting"),
                since_unix_s: unix(*since),
            });
        }
        if queue_depth * 10 > self.capacity * 9 {
            let since = *self.intake_full_since.get_or_insert(now);
            problems.push(Problem {
                component: "intake".into(),
                what: format!(
                    "{queue_depth} of {} places taken: submitters are waiting",
                    self.capacity
                ),
                since_unix_s: unix(since),
            });
        } else {
            self.intake_full_since = None;
        }
        if latency.p99_ms > 1000.0 {
            let since = *self.slow_since.get_or_insert(now);
            problems.push(Problem {
                component: "latency".into(),
                what: format!(
                    "p99 submit-to-outcome {:.0} ms over the last {} events",
                    latency.p99_ms, latency.samples
                ),
                since_unix_s: unix(since),
            });
        } else {
            self.slow_since = None;
        }
        for (id, times) in &self.trigger_times {
            let l = percentiles(times);
            if let Some(f) = self.triggers.get_mut(id) {
                f.p50_ms = l.p50_ms;
                f.p99_ms = l.p99_ms;
            }
            if l.samples >= 20 && l.p99_ms > SLOW_TRIGGER_MS {
                let since = *self.slow_triggers_since.entry(id.clone()).or_insert(now);
                problems.push(Problem {
                    component: format!("trigger:{id}"),
                    what: format!(
                        "slow: p99 {:.1} ms per execution over its last {} executions",
                        l.p99_ms, l.samples
                    ),
                    since_unix_s: unix(since),
                });
            } else {
                self.slow_triggers_since.remove(id);
            }
        }
        for (id, since) in &self.failing_since {
            let f = &self.triggers[id];
            problems.push(Problem {
                component: format!("trigger:{id}"),
                what: format!(
                    "{} of its last {} executions aborted ({})",
                    f.recent_aborts,
                    f.recent_executions,
                    f.aborted
                        .iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                since_unix_s: unix(*since),
            });
        }
        self.exhausted_since.retain(|p, _| {
            self.processes
                .iter()
                .any(|f| &f.process == p && f.state == "exhausted")
        });
        for f in self.processes.iter().filter(|f| f.state == "exhausted") {
            let since = *self.exhausted_since.entry(f.process.clone()).or_insert(now);
            problems.push(Problem {
                component: format!("process:{}", f.process),
                what: format!(
                    "quota exhausted: {} records of {}, {} bytes of {}; its events are held",
                    f.used_records,
                    f.limit_records
                        .map_or("unlimited".into(), |l| l.to_string()),
                    f.used_bytes,
                    f.limit_bytes.map_or("unlimited".into(), |l| l.to_string()),
                ),
                since_unix_s: unix(since),
            });
        }
        if let Some(max_age) = self.segment_max_age {
            for segment in &segments {
                let age = unix(now) - segment.published_unix_s;
                if age > max_age.as_secs_f64() {
                    problems.push(Problem {
                        component: format!("segment:{}", segment.id),
                        what: format!(
                            "stale: last published {age:.0} s ago (at most {} s expected)",
                            max_age.as_secs_f64()
                        ),
                        since_unix_s: segment.published_unix_s + max_age.as_secs_f64(),
                    });
                }
            }
        }
        let health = match (&self.state, problems.is_empty()) {
            (RunState::Stopped { .. }, _) => Health::Stopped,
            (_, true) => Health::Ok,
            (_, false) => Health::Degraded,
        };
        Status {
            health,
            state: self.state.clone(),
            paused: self.paused.as_ref().map(|(reason, since)| Pause {
                reason: reason.clone(),
                since_unix_s: unix(*since),
            }),
            problems,
            queue_depth,
            capacity: self.capacity,
            accepted,
            completed: self.completed,
            batches: self.batches,
            last_batch_events: self.last_batch_events,
            last_batch_ms: self.last_batch_ms,
            latency,
            triggers_version: self.triggers_version,
            triggers: self
                .triggers
                .iter()
                .map(|(id, f)| (id.to_string(), f.clone()))
                .collect(),
            processes: self.processes.clone(),
            slow_lane: self.slow_lane,
            notifications,
            segments,
        }
    }
}

/// Nearest-rank percentiles of `samples` (ms).
pub(crate) fn percentiles(samples: &VecDeque<f64>) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    let mut sorted: Vec<f64> = samples.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: sorted[sorted.len() - 1],
        samples: sorted.len(),
    }
}

/// The map's value for `key`, inserting a default; allocates nothing when it is there.
fn entry<'a, V: Default>(map: &'a mut BTreeMap<Arc<str>, V>, key: &Arc<str>) -> &'a mut V {
    if !map.contains_key(&**key) {
        map.insert(key.clone(), V::default());
    }
    map.get_mut(&**key).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executions(trigger: &str, ms: u64, n: usize) -> Vec<RecordResult> {
        use crate::outcome::{RecordOutcome, TriggerOutcome};
        use std::sync::Arc;
        (0..n)
            .map(|i| RecordResult {
                position: i as u64,
                outcome: RecordOutcome {
                    line: i as u64 + 1,
                    event_id: Some(Arc::from(format!("e{i}"))),
                    lane: None,
                    status: RecordStatus::Processed {
                        triggers: vec![TriggerOutcome {
                            trigger: Arc::from(trigger),
                            event_id: Arc::from(format!("e{i}")),
                            depth: 0,
                            result: TriggerResult::Committed,
                            fuel: 3,
                            root: None,
                        }],
                    },
                },
                effects: Vec::new(),
                held: None,
                chained_events: 0,
                timings: vec![(0, ms * 1_000_000)],
                written: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_slow_trigger_is_a_problem_with_its_p99_and_fuel() {
        let mut t = Tracker::new(100, None);
        t.batch(&executions("fast", 1, 30), 1.0);
        assert_eq!(t.status(observed(30, Vec::new())).health, Health::Ok);
        t.batch(&executions("slow", 50, 30), 1.0);
        let s = t.status(observed(60, Vec::new()));
        assert_eq!(s.health, Health::Degraded);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].component, "trigger:slow");
        assert!(
            s.problems[0].what.contains("p99 50.0 ms"),
            "{}",
            s.problems[0].what
        );
        assert_eq!(
            (s.triggers["slow"].fuel, s.triggers["slow"].p99_ms),
            (90, 50.0)
        );
    }

    fn observed(accepted: u64, segments: Vec<PublishedSegment>) -> Observed {
        Observed {
            accepted,
            segments,
            ..Observed::default()
        }
    }

    fn published(id: &str, seconds_ago: f64) -> PublishedSegment {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        PublishedSegment {
            id: id.into(),
            members: 7,
            published_unix_s: now - seconds_ago,
            compute_ms: Some(1.5),
        }
    }

    #[test]
    fn a_segment_not_published_for_longer_than_its_max_age_is_stale() {
        let mut t = Tracker::new(100, Some(Duration::from_secs(60)));
        let s = t.status(observed(
            0,
            vec![published("fresh", 10.0), published("old", 300.0)],
        ));
        assert_eq!(s.health, Health::Degraded);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].component, "segment:old");
        assert!(
            s.problems[0].what.contains("300 s ago"),
            "{}",
            s.problems[0].what
        );
        assert_eq!(s.segments.len(), 2);
        // Without a rule, age alone is never a problem; the figures are still shown.
        let mut t = Tracker::new(100, None);
        let s = t.status(observed(0, vec![published("old", 1e6)]));
        assert_eq!((s.health, s.segments.len()), (Health::Ok, 1));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: VecDeque<f64> = (1..=1000).map(f64::from).collect();
        let l = percentiles(&samples);
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms),
            (500.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(percentiles(&VecDeque::new()), Latency::default());
    }
}
