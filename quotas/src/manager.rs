//! [`Quotas`]: the quota manager the engine and the CLI talk to.
//!
//! It owns the validated configuration, one ledger backend and a notifier.
//! It turns a caller's `(process, amount, at)` into a ledger request (the
//! quota day of `at` in the process's zone, the configured caps and warning
//! thresholds), turns the ledger's answer into a [`Reservation`] or a
//! [`Denial`], applies the backend-failure policy, and reports transitions
//! to the notifier.
//!
//! It also guards the ledger against the future: a request stamped more
//! than the configured `max_event_lead` after the [`ReferenceClock`] is
//! denied ([`Denial::AheadOfClock`]) before any ledger call, and an operator
//! action at such an instant is refused. The check costs one relaxed atomic
//! load per request: the manager caches the *horizon* (reference now + lead)
//! and reads the clock again only for a request beyond it; the horizon only
//! grows, so a request within the cached one is within the current one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use crate::config::{
    format_duration, valid_id, BackendPolicy, ProcessConfig, QuotaConfig, UnknownProcess,
    UNKNOWN_BUCKET_ID,
};
use crate::day::{DayCache, QuotaDay};
use crate::ledger::{Ledger, LedgerError};
use crate::notify::{Figures, Notification, NotificationKind, Notifier, Subject};
use crate::state::{
    Events, Operation, Period, QuotaState, ReserveOutcome, ReserveRequest, SlotSnapshot, Verdict,
};
use crate::usage::{Dimension, Limits, Usage, MAX_AMOUNT};

/// One request of a [`Quotas::reserve_many`] batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveItem {
    /// The process (from [`Quotas::process_handle`]).
    pub process: ProcessHandle,
    /// Records to reserve.
    pub records: u64,
    /// Bytes to reserve.
    pub bytes: u64,
    /// The caller's clock for this request.
    pub at: DateTime<Utc>,
}

/// The clock against which a [`Quotas`] bounds how far ahead an event may be
/// stamped (`max_event_lead` in [`crate::config`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReferenceClock {
    /// The system's wall clock. The default.
    #[default]
    Wall,
    /// A fixed instant: deterministic replays and tests (`fusebox run
    /// --quota-now`).
    Fixed(DateTime<Utc>),
}

impl ReferenceClock {
    /// The clock's current instant.
    pub fn now(self) -> DateTime<Utc> {
        match self {
            ReferenceClock::Wall => Utc::now(),
            ReferenceClock::Fixed(t) => t,
        }
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A pre-resolved process: [`Quotas::reserve_handle`] skips the id lookup.
/// Valid only for the [`Quotas`] that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessHandle(u32);

/// Why a reservation was refused. Serializes with a `reason` tag, e.g.
/// `{"reason":"stopped","process":"crm-sync",...}`, for `held.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denial {
    /// This request would take usage past the limit; the process is now
    /// stopped for the rest of the quota day.
    #[error("process `{process}` quota exhausted on {quota_day}: {requested} more {dimension} would exceed the limit {limit} (used {used})")]
    Exhausted {
        /// Process id.
        process: String,
        /// The dimension that does not fit.
        dimension: Dimension,
        /// The amount requested in that dimension.
        requested: u64,
        /// Usage in that dimension.
        used: u64,
        /// The limit in that dimension.
        limit: u64,
        /// The quota day.
        quota_day: QuotaDay,
    },
    /// The process was stopped earlier this quota day (exhausted); it stays
    /// stopped until the next quota day or an operator raise / resume.
    #[error("process `{process}` is stopped for {quota_day} (quota exhausted; used {used}, limit {limit})")]
    Stopped {
        /// Process id.
        process: String,
        /// The quota day.
        quota_day: QuotaDay,
        /// Usage of the day.
        used: Usage,
        /// Effective limits.
        limit: Limits,
    },
    /// The process is not configured and `unknown_process` is `deny`.
    #[error("unknown process `{process}` (not in the quota configuration; unknown processes are denied)")]
    UnknownProcess {
        /// The id as given.
        process: String,
    },
    /// The ledger backend failed and the process fails closed.
    #[error("quota ledger unavailable for process `{process}` (failing closed): {error}")]
    BackendUnavailable {
        /// Process id.
        process: String,
        /// The backend error.
        error: String,
    },
    /// The request is stamped more than `max_event_lead` after the
    /// reference clock. Nothing was charged and the ledger was not touched:
    /// charging it would move the process's quota day to that far day and,
    /// since a ledger never moves backwards, keep it there. Applies to
    /// shadow processes too (a timestamp that far ahead is bad input, not a
    /// quota decision); hold the event and replay it when its time comes.
    #[error(
        "event of process `{process}` is stamped {}, more than {max_lead} ahead of the clock ({}); \
         held without touching the quota ledger (max_event_lead in the quota configuration)",
        rfc3339(.at), rfc3339(.now)
    )]
    AheadOfClock {
        /// Process id.
        process: String,
        /// The request's instant.
        at: DateTime<Utc>,
        /// The reference clock when it was checked.
        now: DateTime<Utc>,
        /// The configured bound, e.g. `1d`.
        max_lead: String,
    },
}

impl Denial {
    /// The snake_case reason tag (as in `held.jsonl`).
    pub fn kind(&self) -> &'static str {
        match self {
            Denial::Exhausted { .. } => "exhausted",
            Denial::Stopped { .. } => "stopped",
            Denial::UnknownProcess { .. } => "unknown_process",
            Denial::BackendUnavailable { .. } => "backend_unavailable",
            Denial::AheadOfClock { .. } => "ahead_of_clock",
        }
    }
}

/// Errors of construction and operator actions.
#[derive(Debug, thiserror::Error)]
pub enum QuotasError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// No such process.
    #[error("unknown process `{0}`")]
    UnknownProcess(String),
    /// A configuration built in code breaks a rule the YAML validator enforces.
    #[error("invalid quota configuration: {0}")]
    InvalidConfig(String),
    /// `raise` was given a limit below the current one.
    #[error("raise would lower the {dimension} limit of `{process}` from {current} to {requested}; change the configuration to lower a limit")]
    NotARaise {
        /// Process id.
        process: String,
        /// The dimension.
        dimension: Dimension,
        /// The current effective limit.
        current: String,
        /// The requested limit.
        requested: u64,
    },
    /// An operator action at an instant (or on a day) more than
    /// `max_event_lead` after the reference clock: it would move the process
    /// to that day and pin it there.
    #[error(
        "`{process}`: {} is more than {max_lead} ahead of the clock ({}); acting on that quota \
         day would move the process there for good. Pass an earlier --at",
        rfc3339(.at), rfc3339(.now)
    )]
    AheadOfClock {
        /// Process id.
        process: String,
        /// The instant given.
        at: DateTime<Utc>,
        /// The reference clock.
        now: DateTime<Utc>,
        /// The configured bound, e.g. `1d`.
        max_lead: String,
    },
    /// `rewind` to a day that is not earlier than the process's current one.
    #[error("`{process}` is on quota day {current}; rewind moves it to an earlier day, and {requested} is not")]
    NotARewind {
        /// Process id.
        process: String,
        /// The entry's current day.
        current: QuotaDay,
        /// The day asked for.
        requested: QuotaDay,
    },
    /// `set_usage` was given an amount above [`MAX_AMOUNT`].
    #[error("usage {value} {dimension} for `{process}` is above the maximum {MAX_AMOUNT}")]
    InvalidUsage {
        /// Process id.
        process: String,
        /// The dimension.
        dimension: Dimension,
        /// The value given.
        value: u64,
    },
    /// `raise` was given a zero or too large limit.
    #[error("invalid {dimension} limit {value} for `{process}`: must be 1..={MAX_AMOUNT}")]
    InvalidLimit {
        /// Process id.
        process: String,
        /// The dimension.
        dimension: Dimension,
        /// The value given.
        value: u64,
    },
}

/// One process's quota as seen on a quota day. Serializable for `fusebox
/// quota status --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessStatus {
    /// Process id.
    pub process: String,
    /// Owner.
    pub owner: String,
    /// IANA zone of the quota day.
    pub time_zone: String,
    /// The quota day described.
    pub quota_day: QuotaDay,
    /// Active / warned / exhausted.
    pub state: QuotaState,
    /// Shadow mode (never denies).
    pub shadow: bool,
    /// Usage of the day.
    pub used: Usage,
    /// Effective limits (an operator raise included).
    pub limit: Limits,
    /// Limits from the configuration.
    pub configured_limit: Limits,
    /// An operator raise is in effect for the day.
    pub raised: bool,
    /// Headroom per dimension (`None` = unmetered).
    pub remaining: Limits,
    /// When the quota day ends and usage resets.
    pub resets_at: Option<DateTime<Utc>>,
    /// The ledger backend.
    pub backend: String,
}

/// How a reservation was settled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// Usage that stays charged.
    pub committed: Usage,
    /// Usage given back.
    pub refunded: Usage,
    /// Actual usage beyond the reservation. It is *not* charged (that could
    /// pass the limit); reserve the real size up front to avoid it.
    pub overrun: Usage,
    /// The backend could not take the refund; usage stays higher than true
    /// (conservative), never lower.
    pub refund_error: Option<String>,
}

struct Entry {
    cfg: ProcessConfig,
    caps: Usage,
    warn: Usage,
    days: DayCache,
    backend_down: AtomicBool,
    /// A request of this process was held as ahead of the clock (logged once).
    ahead_logged: AtomicBool,
}

/// What a quota notification reports, besides who and what: its figures.
struct Facts {
    quota_day: QuotaDay,
    /// `None` when unknown (the backend is down).
    used: Option<Usage>,
    limit: Limits,
    /// Figures after the standard ones (`backend`, `dimension`, …).
    extra: Figures,
}

impl Facts {
    fn of(quota_day: QuotaDay, used: Usage, limit: Limits) -> Facts {
        Facts {
            quota_day,
            used: Some(used),
            limit,
            extra: Figures::new(),
        }
    }

    /// `used_records`, `limit_records`, `used_bytes`, `limit_bytes` (a limit
    /// only when set; usage only when known), `quota_day`, `time_zone`, then
    /// the extra ones.
    fn figures(self, time_zone: &str) -> Figures {
        let mut f = Figures::new();
        for dim in [Dimension::Records, Dimension::Bytes] {
            if let Some(used) = self.used {
                f.insert(format!("used_{dim}"), used.get(dim));
            }
            if let Some(limit) = self.limit.get(dim) {
                f.insert(format!("limit_{dim}"), limit);
            }
        }
        f.insert("quota_day", self.quota_day.to_string());
        f.insert("time_zone", time_zone);
        for (name, value) in self.extra.iter() {
            f.insert(name, value.clone());
        }
        f
    }
}

/// The quota manager. `Send + Sync`; share it with `Arc`.
///
/// Invariants: `entries[i]` is ledger slot `i`; the unknown bucket, if any,
/// is the last entry; `index` maps every configured id to its slot.
pub struct Quotas {
    config: QuotaConfig,
    entries: Vec<Entry>,
    index: HashMap<String, u32>,
    unknown: Option<u32>,
    ledger: Box<dyn Ledger>,
    notifier: Arc<dyn Notifier>,
    clock: ReferenceClock,
    /// The latest accepted instant (reference now + `max_event_lead`) as of
    /// the last clock read, in µs since the epoch; `i64::MIN` before the
    /// first. Only grows.
    horizon: AtomicI64,
}

impl fmt::Debug for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quotas")
            .field("processes", &self.index.len())
            .field("unknown_bucket", &self.unknown.is_some())
            .field("ledger", &self.ledger.describe())
            .finish()
    }
}

fn check_process(p: &ProcessConfig) -> Result<(), QuotasError> {
    let bad = |m: String| Err(QuotasError::InvalidConfig(m));
    if !valid_id(&p.id) && p.id != UNKNOWN_BUCKET_ID {
        return bad(format!("invalid process id `{}`", p.id));
    }
    if p.limits.records.is_none() && p.limits.bytes.is_none() {
        return bad(format!("process `{}` has no limit", p.id));
    }
    for v in [p.limits.records, p.limits.bytes].into_iter().flatten() {
        if v == 0 || v > MAX_AMOUNT {
            return bad(format!(
                "process `{}`: limit {v} outside 1..={MAX_AMOUNT}",
                p.id
            ));
        }
    }
    if !(p.warn_at > 0.0 && p.warn_at <= 1.0) {
        return bad(format!(
            "process `{}`: warn_at {} outside (0, 1]",
            p.id, p.warn_at
        ));
    }
    Ok(())
}

impl Quotas {
    /// Builds the manager and binds the ledger to the configured processes
    /// (plus the unknown bucket under `unknown_process: default`).
    pub fn new(
        config: QuotaConfig,
        ledger: Box<dyn Ledger>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Quotas, QuotasError> {
        let mut procs: Vec<ProcessConfig> = config.processes.clone();
        let mut unknown = None;
        if config.unknown_process == UnknownProcess::Default {
            let bucket = config.unknown_bucket().ok_or_else(|| {
                QuotasError::InvalidConfig(
                    "`unknown_process: default` needs `default_limits`".into(),
                )
            })?;
            unknown = Some(procs.len() as u32);
            procs.push(bucket);
        }
        let mut index = HashMap::with_capacity(procs.len());
        for (i, p) in procs.iter().enumerate() {
            check_process(p)?;
            if index.insert(p.id.clone(), i as u32).is_some() {
                return Err(QuotasError::InvalidConfig(format!(
                    "duplicate process id `{}`",
                    p.id
                )));
            }
        }
        if procs.len() > u32::MAX as usize {
            return Err(QuotasError::InvalidConfig("too many processes".into()));
        }
        if config.max_event_lead <= TimeDelta::zero() {
            return Err(QuotasError::InvalidConfig(
                "max_event_lead must be positive".into(),
            ));
        }
        ledger.bind(&procs)?;
        let entries = procs
            .into_iter()
            .map(|cfg| Entry {
                caps: cfg.limits.caps(),
                warn: cfg.limits.warn_thresholds(cfg.warn_at),
                cfg,
                days: DayCache::new(),
                backend_down: AtomicBool::new(false),
                ahead_logged: AtomicBool::new(false),
            })
            .collect();
        Ok(Quotas {
            config,
            entries,
            index,
            unknown,
            ledger,
            notifier,
            clock: ReferenceClock::Wall,
            horizon: AtomicI64::new(i64::MIN),
        })
    }

    /// Replaces the reference clock (default [`ReferenceClock::Wall`]).
    pub fn with_reference_clock(mut self, clock: ReferenceClock) -> Quotas {
        self.clock = clock;
        self.horizon = AtomicI64::new(i64::MIN);
        self
    }

    /// The reference clock.
    pub fn reference_clock(&self) -> ReferenceClock {
        self.clock
    }

    /// How far ahead of the reference clock a request may be stamped.
    pub fn max_event_lead(&self) -> TimeDelta {
        self.config.max_event_lead
    }

    /// The latest instant accepted right now: the reference clock plus
    /// [`Quotas::max_event_lead`] (saturating at chrono's range).
    pub fn horizon(&self) -> DateTime<Utc> {
        self.horizon_of(self.clock.now())
    }

    fn horizon_of(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(self.config.max_event_lead)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// `Some(reference now)` when `at` is beyond the horizon. One relaxed
    /// load when it is not (see the module docs).
    #[inline]
    fn beyond_horizon(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if at.timestamp_micros() <= self.horizon.load(Ordering::Relaxed) {
            return None;
        }
        self.recheck_horizon(at)
    }

    #[cold]
    fn recheck_horizon(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let horizon = self.horizon_of(now);
        self.horizon
            .fetch_max(horizon.timestamp_micros(), Ordering::Relaxed);
        (at > horizon).then_some(now)
    }

    #[cold]
    fn ahead_of_clock(&self, e: &Entry, at: DateTime<Utc>, now: DateTime<Utc>) -> Denial {
        if !e.ahead_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(process = %e.cfg.id, at = %rfc3339(&at), now = %rfc3339(&now), "request stamped beyond max_event_lead denied without touching the quota ledger (logged once per process)");
        }
        Denial::AheadOfClock {
            process: e.cfg.id.clone(),
            at,
            now,
            max_lead: format_duration(self.config.max_event_lead),
        }
    }

    /// Refuses an operator action at `at` beyond the horizon.
    fn check_operator_instant(&self, process: &str, at: DateTime<Utc>) -> Result<(), QuotasError> {
        match self.beyond_horizon(at) {
            None => Ok(()),
            Some(now) => Err(QuotasError::AheadOfClock {
                process: process.to_string(),
                at,
                now,
                max_lead: format_duration(self.config.max_event_lead),
            }),
        }
    }

    /// Builds the manager from the process configs stored in a persistent
    /// ledger — for operator tools that have the ledger but not the YAML.
    pub fn from_ledger(
        ledger: Box<dyn Ledger>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Quotas, QuotasError> {
        let declared = ledger.declared()?;
        let mut config = QuotaConfig {
            unknown_process: UnknownProcess::Deny,
            default_limits: None,
            default_owner: None,
            default_time_zone: None,
            processes: Vec::new(),
            max_event_lead: crate::config::DEFAULT_MAX_EVENT_LEAD,
        };
        for p in declared {
            if p.id == UNKNOWN_BUCKET_ID {
                config.unknown_process = UnknownProcess::Default;
                config.default_limits = Some(p.limits);
                config.default_owner = Some(p.owner).filter(|o| !o.is_empty());
                config.default_time_zone = Some(p.time_zone);
            } else {
                config.processes.push(p);
            }
        }
        Quotas::new(config, ledger, notifier)
    }

    /// The configuration in force.
    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// The ledger backend.
    pub fn ledger(&self) -> &dyn Ledger {
        &*self.ledger
    }

    /// What opening the ledger found ([`Ledger::recovery`]).
    pub fn recovery(&self) -> Option<crate::ledger::RecoveryReport> {
        self.ledger.recovery()
    }

    /// Resolves an id once for [`Quotas::reserve_handle`]. Unknown ids
    /// resolve to the shared unknown bucket under `unknown_process: default`,
    /// and to `None` under `deny`.
    pub fn process_handle(&self, process: &str) -> Option<ProcessHandle> {
        self.index
            .get(process)
            .copied()
            .or(self.unknown)
            .map(ProcessHandle)
    }

    /// The id a handle stands for.
    pub fn process_id(&self, handle: ProcessHandle) -> Option<&str> {
        self.entries
            .get(handle.0 as usize)
            .map(|e| e.cfg.id.as_str())
    }

    /// Reserves `records` and `bytes` for `process` at instant `at` (the
    /// caller's clock: event time when replaying). See [`Quotas::reserve_handle`].
    pub fn reserve(
        &self,
        process: &str,
        records: u64,
        bytes: u64,
        at: DateTime<Utc>,
    ) -> Result<Reservation<'_>, Denial> {
        match self.process_handle(process) {
            Some(h) => self.reserve_handle(h, records, bytes, at),
            None => Err(Denial::UnknownProcess {
                process: process.to_string(),
            }),
        }
    }

    /// Reserves on a resolved process. On success the amount is charged
    /// against the quota day of `at` in the process's zone until the
    /// [`Reservation`] is committed (unused part refunded) or dropped (all
    /// refunded). Transitions (warned, exhausted, rolled over, backend
    /// failure) are notified before this returns.
    #[inline]
    pub fn reserve_handle(
        &self,
        handle: ProcessHandle,
        records: u64,
        bytes: u64,
        at: DateTime<Utc>,
    ) -> Result<Reservation<'_>, Denial> {
        let Some(e) = self.entries.get(handle.0 as usize) else {
            return Err(Denial::UnknownProcess {
                process: format!("#{}", handle.0),
            });
        };
        if let Some(now) = self.beyond_horizon(at) {
            return Err(self.ahead_of_clock(e, at, now));
        }
        let req = Self::request(e, records, bytes, at);
        let result = self.ledger.reserve(handle.0, &req);
        self.finish(handle.0, e, &req, Usage::new(records, bytes), result, at)
    }

    /// Reserves several amounts in one backend round trip where the backend
    /// supports it (a Redis pipeline, one durable group commit). The
    /// outcome is exactly that of calling [`Quotas::reserve_handle`] on each
    /// item in order; results are in item order.
    pub fn reserve_many(&self, items: &[ReserveItem]) -> Vec<Result<Reservation<'_>, Denial>> {
        let mut out: Vec<Option<Result<Reservation<'_>, Denial>>> = Vec::with_capacity(items.len());
        let mut batch = Vec::with_capacity(items.len());
        let mut positions = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            match self.entries.get(it.process.0 as usize) {
                Some(e) => match self.beyond_horizon(it.at) {
                    Some(now) => out.push(Some(Err(self.ahead_of_clock(e, it.at, now)))),
                    None => {
                        batch.push((it.process.0, Self::request(e, it.records, it.bytes, it.at)));
                        positions.push(i);
                        out.push(None);
                    }
                },
                None => out.push(Some(Err(Denial::UnknownProcess {
                    process: format!("#{}", it.process.0),
                }))),
            }
        }
        let results = self.ledger.reserve_many(&batch);
        for (((slot, req), result), i) in batch.iter().zip(results).zip(positions) {
            let it = &items[i];
            let e = &self.entries[*slot as usize];
            out[i] = Some(self.finish(
                *slot,
                e,
                req,
                Usage::new(it.records, it.bytes),
                result,
                it.at,
            ));
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Denial::BackendUnavailable {
                        process: String::new(),
                        error: "ledger returned fewer results than requests".into(),
                    })
                })
            })
            .collect()
    }

    /// Commits several reservations, sending their refunds to the backend in
    /// one batch. `actual` is `(records, bytes)` per reservation.
    pub fn commit_many<'q>(&'q self, items: Vec<(Reservation<'q>, u64, u64)>) -> Vec<Settlement> {
        let mut settlements = Vec::with_capacity(items.len());
        let mut refunds = Vec::new();
        for (mut r, records, bytes) in items {
            let (settlement, refund) = r.settle(Usage::new(records, bytes));
            if let (Some(period), false) = (r.period, refund.is_zero()) {
                refunds.push((r.slot, period, refund));
            }
            settlements.push(settlement);
        }
        if !refunds.is_empty() {
            if let Err(e) = self.ledger.refund_many(&refunds) {
                tracing::warn!(error = %e, "batched refund lost; usage stays over-counted");
                for s in &mut settlements {
                    if !s.refunded.is_zero() {
                        s.refunded = Usage::ZERO;
                        s.refund_error = Some(e.to_string());
                    }
                }
            }
        }
        settlements
    }

    #[inline]
    fn request(e: &Entry, records: u64, bytes: u64, at: DateTime<Utc>) -> ReserveRequest {
        // Anything above MAX_AMOUNT can never fit; clamping keeps every
        // backend's arithmetic exact.
        ReserveRequest {
            day: e.days.day_of(at, e.cfg.time_zone),
            amount: Usage::new(records.min(MAX_AMOUNT + 1), bytes.min(MAX_AMOUNT + 1)),
            caps: e.caps,
            warn: e.warn,
            shadow: e.cfg.shadow,
        }
    }

    /// Turns a ledger answer into a reservation or a denial, notifying
    /// transitions and applying the backend-failure policy.
    #[inline]
    fn finish(
        &self,
        slot: u32,
        e: &Entry,
        req: &ReserveRequest,
        requested: Usage,
        result: Result<ReserveOutcome, LedgerError>,
        at: DateTime<Utc>,
    ) -> Result<Reservation<'_>, Denial> {
        match result {
            Ok(o) => {
                if e.backend_down.load(Ordering::Relaxed) {
                    self.backend_recovered(e, &o, at);
                }
                if o.events.0 != 0 {
                    self.notify_events(e, &o, at);
                }
                match o.verdict {
                    Verdict::Granted => Ok(Reservation {
                        quotas: self,
                        slot,
                        period: Some(o.period),
                        amount: req.amount,
                    }),
                    Verdict::Stopped => Err(Denial::Stopped {
                        process: e.cfg.id.clone(),
                        quota_day: o.period.day,
                        used: o.used,
                        limit: Limits::from_caps(o.caps),
                    }),
                    Verdict::Exceeded(dim) => Err(Denial::Exhausted {
                        process: e.cfg.id.clone(),
                        dimension: dim,
                        requested: requested.get(dim),
                        used: o.used.get(dim),
                        limit: o.caps.get(dim),
                        quota_day: o.period.day,
                    }),
                }
            }
            Err(err) => self.backend_failed(slot, e, req.day, err, at),
        }
    }

    #[cold]
    fn backend_failed(
        &self,
        slot: u32,
        e: &Entry,
        day: QuotaDay,
        err: LedgerError,
        at: DateTime<Utc>,
    ) -> Result<Reservation<'_>, Denial> {
        let open = e.cfg.on_backend_unavailable == BackendPolicy::FailOpen;
        if !e.backend_down.swap(true, Ordering::AcqRel) {
            tracing::warn!(process = %e.cfg.id, error = %err, fail_open = open, "quota ledger unavailable");
            let kind = if open {
                NotificationKind::BackendUnavailableAllowed
            } else {
                NotificationKind::BackendUnavailableDenied
            };
            let what = if open {
                "transfers continue unmetered (fail_open)"
            } else {
                "transfers are denied (fail_closed)"
            };
            let backend = self.ledger.describe();
            self.emit(
                e,
                kind,
                Facts {
                    quota_day: day,
                    used: None,
                    limit: e.cfg.limits,
                    extra: Figures::new().with("backend", backend.clone()),
                },
                at,
                format!("the quota ledger {backend} is unavailable: {err}"),
                format!("quota ledger {backend} unavailable: {err}; {what}"),
            );
        }
        if open {
            Ok(Reservation {
                quotas: self,
                slot,
                period: None,
                amount: Usage::ZERO,
            })
        } else {
            Err(Denial::BackendUnavailable {
                process: e.cfg.id.clone(),
                error: err.to_string(),
            })
        }
    }

    #[cold]
    fn backend_recovered(&self, e: &Entry, o: &ReserveOutcome, at: DateTime<Utc>) {
        if e.backend_down.swap(false, Ordering::AcqRel) {
            let backend = self.ledger.describe();
            self.emit(
                e,
                NotificationKind::BackendRecovered,
                Facts {
                    quota_day: o.period.day,
                    used: Some(o.used),
                    limit: Limits::from_caps(o.caps),
                    extra: Figures::new().with("backend", backend.clone()),
                },
                at,
                format!("the quota ledger {backend} answered again"),
                format!("quota ledger {backend} reachable again; metering resumed"),
            );
        }
    }

    #[cold]
    fn notify_events(&self, e: &Entry, o: &ReserveOutcome, at: DateTime<Utc>) {
        let limit = Limits::from_caps(o.caps);
        let day = o.period.day;
        let id = &e.cfg.id;
        if o.events.has(Events::ROLLED_OVER) {
            self.emit(
                e,
                NotificationKind::RolledOver,
                Facts::of(day, o.used, limit),
                at,
                format!("a new quota day began ({day})"),
                format!(
                    "{id}: new quota day {day} ({}); the process is active again",
                    e.cfg.time_zone.name()
                ),
            );
        }
        if o.events.has(Events::WARNED) {
            self.emit(
                e,
                NotificationKind::Warned,
                Facts::of(day, o.used, limit),
                at,
                format!(
                    "usage reached {:.0}% of the daily quota",
                    e.cfg.warn_at * 100.0
                ),
                format!(
                    "{id} reached {:.0}% of its daily quota on {day}: used {}, limit {limit}",
                    e.cfg.warn_at * 100.0,
                    o.used
                ),
            );
        }
        if o.events.has(Events::STOPPED) {
            let dim = match o.verdict {
                Verdict::Exceeded(d) => d,
                _ if o.used.records > o.caps.records => Dimension::Records,
                _ => Dimension::Bytes,
            };
            let (kind, what) = if e.cfg.shadow {
                (
                    NotificationKind::ShadowWouldDeny,
                    "shadow mode: it would have been stopped and keeps running",
                )
            } else {
                (
                    NotificationKind::Exhausted,
                    "it is stopped until the next quota day or an operator raises the limit or resumes it",
                )
            };
            let mut facts = Facts::of(day, o.used, limit);
            facts.extra.insert("dimension", dim.to_string());
            self.emit(
                e,
                kind,
                facts,
                at,
                format!("a transfer would exceed the daily {dim} limit"),
                format!("{id} exhausted its daily {dim} quota on {day} (used {}, limit {limit}); {what}", o.used),
            );
        }
    }

    /// Hands one notification about `e` to the notifier.
    fn emit(
        &self,
        e: &Entry,
        kind: NotificationKind,
        facts: Facts,
        at: DateTime<Utc>,
        reason: String,
        message: String,
    ) {
        tracing::info!(process = %e.cfg.id, %kind, quota_day = %facts.quota_day, "quota notification");
        self.notifier.notify(Notification {
            owner: e.cfg.owner.clone(),
            subject: Subject::process(e.cfg.id.clone()),
            kind,
            reason,
            figures: facts.figures(e.cfg.time_zone.name()),
            at,
            message,
        });
    }

    fn slot_of(&self, process: &str) -> Result<u32, QuotasError> {
        self.index
            .get(process)
            .copied()
            .ok_or_else(|| QuotasError::UnknownProcess(process.to_string()))
    }

    fn status_of(&self, slot: u32, snap: SlotSnapshot) -> ProcessStatus {
        let e = &self.entries[slot as usize];
        let caps = snap.raised.unwrap_or(e.caps);
        let limit = Limits::from_caps(caps);
        let remaining = Limits::new(
            limit.records.map(|l| l.saturating_sub(snap.used.records)),
            limit.bytes.map(|l| l.saturating_sub(snap.used.bytes)),
        );
        ProcessStatus {
            process: e.cfg.id.clone(),
            owner: e.cfg.owner.clone(),
            time_zone: e.cfg.time_zone.name().to_string(),
            quota_day: snap.day,
            state: QuotaState::from_flags(snap.flags),
            shadow: e.cfg.shadow,
            used: snap.used,
            limit,
            configured_limit: e.cfg.limits,
            raised: snap.raised.is_some(),
            remaining,
            resets_at: snap.day.end(e.cfg.time_zone),
            backend: self.ledger.describe(),
        }
    }

    /// The quota day `at` falls on for `process` (in its time zone).
    pub fn quota_day(&self, process: &str, at: DateTime<Utc>) -> Result<QuotaDay, QuotasError> {
        let e = &self.entries[self.slot_of(process)? as usize];
        Ok(e.days.day_of(at, e.cfg.time_zone))
    }

    /// Status of one process (`Some(id)`) or of all, in configuration order,
    /// on the quota day of `at` in each process's zone.
    pub fn status(
        &self,
        process: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vec<ProcessStatus>, QuotasError> {
        let slots: Vec<u32> = match process {
            Some(p) => vec![self.slot_of(p)?],
            None => (0..self.entries.len() as u32).collect(),
        };
        slots
            .into_iter()
            .map(|slot| {
                let e = &self.entries[slot as usize];
                let snap = self
                    .ledger
                    .snapshot(slot, e.days.day_of(at, e.cfg.time_zone))?;
                Ok(self.status_of(slot, snap))
            })
            .collect()
    }

    fn operate(
        &self,
        process: &str,
        at: DateTime<Utc>,
        op: Operation,
        kind: NotificationKind,
    ) -> Result<ProcessStatus, QuotasError> {
        let slot = self.slot_of(process)?;
        self.check_operator_instant(process, at)?;
        let e = &self.entries[slot as usize];
        let snap = self
            .ledger
            .operate(slot, e.days.day_of(at, e.cfg.time_zone), op)?;
        let status = self.status_of(slot, snap);
        let verb = match kind {
            NotificationKind::LimitRaised => format!("raised the limit to {}", status.limit),
            NotificationKind::Reset => "reset the day's usage to zero".to_string(),
            NotificationKind::UsageSet => format!("set the day's usage to {}", status.used),
            _ => "resumed the process".to_string(),
        };
        let reason = match kind {
            NotificationKind::LimitRaised => "an operator raised the limit",
            NotificationKind::Reset => "an operator reset the day's usage",
            NotificationKind::UsageSet => "an operator set the day's usage",
            _ => "an operator resumed the process",
        };
        self.emit(
            e,
            kind,
            Facts::of(status.quota_day, status.used, status.limit),
            at,
            reason.to_string(),
            format!("an operator {verb} for {} on {}", process, status.quota_day),
        );
        Ok(status)
    }

    /// Raises `process`'s limits for the rest of the quota day of `at`
    /// (`None` keeps a dimension as is). Clears the stop, re-arms the
    /// warning, notifies `LimitRaised`. The raise lapses at the next quota
    /// day; change the configuration for a lasting change. Lowering a limit
    /// is refused ([`QuotasError::NotARaise`]).
    pub fn raise(
        &self,
        process: &str,
        new_limits: Limits,
        at: DateTime<Utc>,
    ) -> Result<ProcessStatus, QuotasError> {
        let slot = self.slot_of(process)?;
        let e = &self.entries[slot as usize];
        let snap = self
            .ledger
            .snapshot(slot, e.days.day_of(at, e.cfg.time_zone))?;
        let current = snap.raised.unwrap_or(e.caps);
        let mut caps = current;
        for dim in [Dimension::Records, Dimension::Bytes] {
            let Some(v) = new_limits.get(dim) else {
                continue;
            };
            if v == 0 || v > MAX_AMOUNT {
                return Err(QuotasError::InvalidLimit {
                    process: process.to_string(),
                    dimension: dim,
                    value: v,
                });
            }
            let cur = current.get(dim);
            if v < cur {
                return Err(QuotasError::NotARaise {
                    process: process.to_string(),
                    dimension: dim,
                    current: if cur >= MAX_AMOUNT {
                        "unlimited".into()
                    } else {
                        cur.to_string()
                    },
                    requested: v,
                });
            }
            match dim {
                Dimension::Records => caps.records = v,
                Dimension::Bytes => caps.bytes = v,
            }
        }
        self.operate(
            process,
            at,
            Operation::Raise(caps),
            NotificationKind::LimitRaised,
        )
    }

    /// Lets a stopped process run again on the quota day of `at` (usage and
    /// limit unchanged, so it stops again at the next request that does
    /// not fit). Notifies `Resumed`.
    pub fn resume(&self, process: &str, at: DateTime<Utc>) -> Result<ProcessStatus, QuotasError> {
        self.operate(process, at, Operation::Resume, NotificationKind::Resumed)
    }

    /// Zeroes the usage of the quota day of `at` and returns the process to
    /// active. Reservations still open keep their grant but their refunds
    /// are dropped (they belong to the forgiven period). Notifies `Reset`.
    pub fn reset(&self, process: &str, at: DateTime<Utc>) -> Result<ProcessStatus, QuotasError> {
        self.operate(process, at, Operation::Reset, NotificationKind::Reset)
    }

    /// Sets the usage of the quota day of `at` by hand — an operator's
    /// correction, e.g. after a recovery lost part of the day
    /// ([`crate::DurableLedger::recover`]): a new period with this usage,
    /// active (the next request that does not fit stops it). Reservations
    /// still open keep their grant but their refunds are dropped, as after a
    /// reset. Notifies `UsageSet`.
    pub fn set_usage(
        &self,
        process: &str,
        used: Usage,
        at: DateTime<Utc>,
    ) -> Result<ProcessStatus, QuotasError> {
        for dim in [Dimension::Records, Dimension::Bytes] {
            if used.get(dim) > MAX_AMOUNT {
                return Err(QuotasError::InvalidUsage {
                    process: process.to_string(),
                    dimension: dim,
                    value: used.get(dim),
                });
            }
        }
        self.operate(
            process,
            at,
            Operation::SetUsage(used),
            NotificationKind::UsageSet,
        )
    }

    /// Moves `process` back to quota day `to`: the way out when an event
    /// stamped far ahead (before `max_event_lead` held such events, or with
    /// a generous one) pinned it to a far day, where every later request is
    /// charged because a ledger never moves backwards. The usage, state and
    /// a raise of the day it leaves are kept, charged to `to`: usage never
    /// goes down (follow with `reset` or `set_usage` if it should). `to`
    /// must be earlier than the process's current day and not beyond the
    /// horizon. Notifies `Rewound`.
    pub fn rewind(&self, process: &str, to: QuotaDay) -> Result<ProcessStatus, QuotasError> {
        let slot = self.slot_of(process)?;
        let e = &self.entries[slot as usize];
        let tz = e.cfg.time_zone;
        let now = self.clock.now();
        if to > QuotaDay::of(self.horizon_of(now), tz) {
            return Err(QuotasError::AheadOfClock {
                process: process.to_string(),
                at: to.start(tz).unwrap_or(DateTime::<Utc>::MAX_UTC),
                now,
                max_lead: format_duration(self.config.max_event_lead),
            });
        }
        let current = self.ledger.snapshot(slot, to)?.day;
        if current <= to {
            return Err(QuotasError::NotARewind {
                process: process.to_string(),
                current,
                requested: to,
            });
        }
        let snap = self.ledger.operate(slot, to, Operation::Rewind(to))?;
        let status = self.status_of(slot, snap);
        let mut facts = Facts::of(status.quota_day, status.used, status.limit);
        facts.extra.insert("from_quota_day", current.to_string());
        self.emit(
            e,
            NotificationKind::Rewound,
            facts,
            now,
            format!("an operator moved the process back from quota day {current}"),
            format!(
                "an operator moved {process} back from quota day {current} to {to}; the usage \
                 charged since ({}) is kept, on {to}",
                status.used
            ),
        );
        Ok(status)
    }

    /// Makes everything recorded so far durable (see [`Ledger::sync`]).
    pub fn sync(&self) -> Result<(), LedgerError> {
        self.ledger.sync()
    }
}

/// Granted quota, charged until settled. Commit it with the actual amount
/// transferred; dropping it uncommitted refunds everything.
#[must_use = "dropping a reservation refunds it; call commit() after the transfer"]
pub struct Reservation<'q> {
    quotas: &'q Quotas,
    slot: u32,
    /// `None`: granted unmetered by a fail-open policy.
    period: Option<Period>,
    amount: Usage,
}

impl fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("process", &self.process())
            .field("amount", &self.amount)
            .field("period", &self.period)
            .finish()
    }
}

impl Reservation<'_> {
    /// The process charged.
    pub fn process(&self) -> &str {
        self.quotas.entries[self.slot as usize].cfg.id.as_str()
    }

    /// The amount charged (zero when unmetered).
    pub fn amount(&self) -> Usage {
        self.amount
    }

    /// The quota day charged; `None` when granted unmetered (fail open).
    pub fn quota_day(&self) -> Option<QuotaDay> {
        self.period.map(|p| p.day)
    }

    /// False when granted without metering because the backend was down
    /// and the process fails open.
    pub fn is_metered(&self) -> bool {
        self.period.is_some()
    }

    /// Settles: keeps `min(actual, reserved)` charged and refunds the rest.
    pub fn commit(mut self, actual_records: u64, actual_bytes: u64) -> Settlement {
        let (mut settlement, refund) = self.settle(Usage::new(actual_records, actual_bytes));
        if let Some(e) = self.give_back(refund) {
            settlement.refunded = Usage::ZERO;
            settlement.refund_error = Some(e);
        }
        settlement
    }

    /// Computes the settlement and disarms the drop refund; the caller sends
    /// the returned refund.
    fn settle(&mut self, actual: Usage) -> (Settlement, Usage) {
        let committed = actual.min(self.amount);
        let refund = self.amount.saturating_sub(committed);
        let overrun = actual.saturating_sub(self.amount);
        if !overrun.is_zero() && self.period.is_some() {
            tracing::warn!(process = self.process(), %overrun, "transfer exceeded its reservation; overrun not charged");
        }
        self.amount = Usage::ZERO;
        let metered = self.period.is_some();
        let settlement = Settlement {
            committed: if metered { committed } else { Usage::ZERO },
            refunded: if metered { refund } else { Usage::ZERO },
            overrun,
            refund_error: None,
        };
        (settlement, refund)
    }

    /// Cancels: refunds everything now (same as dropping, with the result).
    pub fn cancel(mut self) -> Settlement {
        let refund = std::mem::take(&mut self.amount);
        let refund_error = self.give_back(refund);
        Settlement {
            refunded: if refund_error.is_none() {
                refund
            } else {
                Usage::ZERO
            },
            refund_error,
            ..Settlement::default()
        }
    }

    fn give_back(&self, amount: Usage) -> Option<String> {
        let period = self.period?;
        if amount.is_zero() {
            return None;
        }
        match self.quotas.ledger.refund(self.slot, period, amount) {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(process = self.process(), error = %e, "refund lost; usage stays over-counted");
                Some(e.to_string())
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let amount = std::mem::take(&mut self.amount);
        let _ = self.give_back(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn shareable_across_threads() {
        assert_send_sync::<Quotas>();
        assert_send::<Reservation<'static>>();
        assert_send_sync::<Denial>();
    }

    #[test]
    fn denials_serialize_with_a_reason_tag() {
        let d = Denial::Stopped {
            process: "crm-sync".into(),
            quota_day: QuotaDay::from_days_since_epoch(20_415),
            used: Usage::new(10, 20),
            limit: Limits::new(Some(10), None),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["reason"], "stopped");
        assert_eq!(v["process"], "crm-sync");
        assert_eq!(v["quota_day"], "2025-11-23");
        let u = serde_json::to_value(Denial::UnknownProcess {
            process: "x".into(),
        })
        .unwrap();
        assert_eq!(u["reason"], "unknown_process");
        assert!(d.to_string().contains("stopped for 2025-11-23"));
    }

    #[test]
    fn programmatic_configs_are_checked() {
        let tz = chrono_tz::UTC;
        let mut p = ProcessConfig::new("a", "o", tz, Limits::new(Some(0), None));
        let cfg = |ps: Vec<ProcessConfig>| QuotaConfig {
            unknown_process: UnknownProcess::Deny,
            default_limits: None,
            default_owner: None,
            default_time_zone: None,
            processes: ps,
            max_event_lead: crate::config::DEFAULT_MAX_EVENT_LEAD,
        };
        let new = |c| {
            Quotas::new(
                c,
                Box::new(crate::MemoryLedger::new()),
                Arc::new(crate::NullNotifier),
            )
        };
        assert!(matches!(
            new(cfg(vec![p.clone()])),
            Err(QuotasError::InvalidConfig(_))
        ));
        p.limits = Limits::new(Some(5), None);
        assert!(matches!(
            new(cfg(vec![p.clone(), p.clone()])),
            Err(QuotasError::InvalidConfig(_))
        ));
        let mut c = cfg(vec![p]);
        c.unknown_process = UnknownProcess::Default;
        assert!(matches!(new(c), Err(QuotasError::InvalidConfig(_))));
    }
}
