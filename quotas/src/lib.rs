//! # fusebox-quotas: daily per-process transfer quotas
//!
//! Every automated process — a CRM sync, an import, an export — gets a daily
//! budget of **records** and **bytes**. A process that blows through it is
//! **stopped** for the rest of its day and its **owner is notified**, so a
//! sync that was meant to run once a day but runs every ten minutes starves
//! nobody else.
//!
//! ## The model
//!
//! * A **process** has an id, an owner, a time zone and limits on records,
//!   bytes or both ([`ProcessConfig`], parsed and validated from YAML by
//!   [`QuotaConfig::from_yaml_str`], which reports *every* problem with line,
//!   column and a hint).
//! * Before transferring, the caller **reserves** the amount
//!   ([`Quotas::reserve`]); it gets a [`Reservation`] or a typed [`Denial`].
//!   After the transfer it **commits** the actual amount, and the unused part
//!   is refunded; dropping a reservation uncommitted refunds all of it. This
//!   is the reserve-the-estimate, refund-the-difference scheme of Shopify's
//!   query cost, applied to a calendar-day budget.
//! * The hot path has a fast form: resolve the id once with
//!   [`Quotas::process_handle`] and call [`Quotas::reserve_handle`] — no
//!   string hashing per call.
//!
//! ## The quota day (time-zone rule)
//!
//! **The quota day is the calendar day in the process's configured time
//! zone**, not a rolling 24 hours and not the UTC day. Days change at local
//! midnight, so they last 23 or 25 hours across DST changes (see
//! [`day`]). The clock is always the caller's `at` argument — event
//! timestamps when replaying a log — so a replay crosses day boundaries
//! exactly as the live run did. A request stamped earlier than the newest
//! day a process has seen counts against that newest day: a ledger never
//! moves backwards. Every instant has a day — any `DateTime<Utc>`, any `i64`
//! microsecond timestamp, in any zone ([`QuotaDay::of_timestamp_micros`]).
//!
//! ## Requests from the future
//!
//! Because a ledger never moves backwards, one request stamped `9999-12-31`
//! would move its process's quota day there and charge every later request
//! to it. So a request stamped more than `max_event_lead` (configuration,
//! default one day) after the [`ReferenceClock`] — the wall clock, or a
//! fixed instant for deterministic replays ([`Quotas::with_reference_clock`])
//! — is denied with [`Denial::AheadOfClock`] *before* any ledger call, and an
//! operator action at such an instant is refused. A process pinned anyway
//! (by a clock set that far, or by a ledger written before the bound
//! existed) is moved back by [`Quotas::rewind`], which keeps its usage.
//!
//! ## States
//!
//! ```text
//!  Active ──(usage ≥ warn_at·limit)──▶ Warned ──(a reserve would exceed)──▶ Exhausted
//!    ▲            notify once               stop + notify owner once          │
//!    └────────── next quota day · operator raise · resume · reset ────────────┘
//! ```
//!
//! Once exhausted, *every* reserve of that process is denied
//! ([`Denial::Stopped`]) until its next quota day or an operator acts
//! ([`Quotas::raise`], [`Quotas::resume`], [`Quotas::reset`]) — the process is
//! switched off, not throttled. Other processes carry on untouched. A
//! **shadow** process goes through the same states and notifications but is
//! never denied, to try a limit before enforcing it. Each transition becomes a
//! [`Notification`] — owner, subject (the process), kind, reason, figures
//! (`used_records`, `limit_records`, `used_bytes`, `limit_bytes`,
//! `quota_day`, `time_zone`), time, message — handed to a [`Notifier`]: the
//! one extension point owners are told through, shared with the trigger
//! runaway control. [`CollectingNotifier`], [`ChannelNotifier`] (tokio),
//! [`JsonlNotifier`], `WebhookNotifier` (feature `webhook`), [`Dedup`] and
//! [`Fanout`] are ready-made (see [`notify`]). The rules live in one place,
//! [`state::PeriodState`]; every backend is held to them by shared tests.
//!
//! ## The concurrency invariant: zero over-grant
//!
//! For an enforcing process, **no interleaving of reserves, commits and
//! drops, from any number of threads or engine instances, lets the usage
//! charged for a quota day exceed its limit**. Usage is charged at reserve
//! time by one atomic step that checks and adds together (a CAS per counter
//! in memory, a mutex-guarded update in the durable ledger, one Lua script in
//! Redis); refunds carry the period they were charged in and are dropped if
//! that period has ended, so they can never hand out credit a later period
//! did not grant.
//!
//! ## Backends ([`ledger`])
//!
//! * [`MemoryLedger`] — lock-free atomics, one cache line per process; tens of
//!   millions of reserve+commit per second. Lost on exit.
//! * [`DurableLedger`] — an embedded, checksummed write-ahead log with group
//!   commit. **Durability guarantee: after a crash at any moment (including
//!   `kill -9`), the usage recorded on restart is never lower than what was
//!   granted — or the ledger refuses to open**, because a grant is
//!   acknowledged only once its record is written (and `fdatasync`ed under
//!   [`Durability::PowerLoss`]) and covered by the superblock's *mark*, the
//!   acknowledged end of the log. Lost refunds can only over-count. A file
//!   cut or zero-filled below its mark refuses to open
//!   ([`LedgerError::TailLost`]), as does a damaged one
//!   ([`LedgerError::Corrupt`]) and one in the old format without a mark
//!   ([`LedgerError::OldFormat`]): usage is never silently reset or
//!   shortened. The way out is explicit and logged: [`DurableLedger::inspect`]
//!   shows what is readable, [`DurableLedger::recover`] rewrites the ledger
//!   from it and keeps an audit record that every later open reports
//!   ([`RecoveryReport`]). Cost: one group-committed `write(2)` and one
//!   32-byte mark `pwrite` per grant (≈1.6 µs here, ≈1.1 µs without the
//!   mark), or one shared `fdatasync` under `PowerLoss`.
//! * [`RedisLedger`] — one quota per process shared by many engine
//!   instances; every state change is an atomic Lua script. When Redis is
//!   unreachable or answers garbage, each process fails closed (the default)
//!   or open as configured ([`BackendPolicy`]), and its owner is notified.
//!
//! Operators inspect and adjust a persisted ledger from a separate process
//! with [`Quotas::from_ledger`] (the ledger stores each process's config),
//! [`Quotas::status`], [`Quotas::raise`], [`Quotas::resume`],
//! [`Quotas::reset`], [`Quotas::set_usage`] (a day's usage by hand, e.g.
//! after a recovery) and [`Quotas::rewind`]; each is notified to the owner.
//!
//! ## In the engine
//!
//! `fusebox_engine::gate` charges every event that carries a `process` — 1
//! record and the length of its canonical JSON, at the event's timestamp —
//! between admission and execution of `Engine::run_batch`, and holds the
//! events this crate denies; `fusebox run --quotas` writes them to
//! `held.jsonl` and the notifications to `notifications.jsonl`, and `fusebox
//! quota status|raise|resume|reset|set|rewind|recover` is the operator's view
//! of a ledger.
//!
//! ## Modules
//!
//! [`config`] (YAML → validated config) → [`day`] (instant → quota day) →
//! [`state`] (the rules) → [`ledger`] (where usage lives) → [`manager`]
//! (reservations, denials, policies) → [`notify`] (what owners hear).
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use chrono::{DateTime, Utc};
//! use fusebox_quotas::{CollectingNotifier, Denial, MemoryLedger, NotificationKind, QuotaConfig, Quotas};
//!
//! let yaml = "
//! processes:
//!   - id: crm-sync
//!     owner: data-team@example.com
//!     time_zone: Europe/Berlin
//!     limits: { records: 1000 }
//! ";
//! let config = QuotaConfig::from_yaml_str(yaml, "quotas.yaml")?;
//! let notifier = Arc::new(CollectingNotifier::new());
//! let quotas = Quotas::new(config, Box::new(MemoryLedger::new()), notifier.clone())?;
//!
//! let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse()?;
//! // Reserve an estimate, commit what was really sent: 100 records are refunded.
//! let r = quotas.reserve("crm-sync", 900, 0, at).expect("within quota");
//! r.commit(800, 0);
//! // 800 of 1000 is the 80% warning; 300 more does not fit: the sync is stopped.
//! let denied = quotas.reserve("crm-sync", 300, 0, at).unwrap_err();
//! assert!(matches!(denied, Denial::Exhausted { used: 800, limit: 1000, .. }));
//! assert!(matches!(quotas.reserve("crm-sync", 1, 0, at), Err(Denial::Stopped { .. })));
//! let kinds: Vec<_> = notifier.take().into_iter().map(|n| n.kind).collect();
//! assert_eq!(kinds, [NotificationKind::Warned, NotificationKind::Exhausted]);
//!
//! // Local midnight in Berlin (23:00 UTC in November) starts a new quota day.
//! let next_day: DateTime<Utc> = "2026-11-23T23:00:00Z".parse()?;
//! assert!(quotas.reserve("crm-sync", 300, 0, next_day).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod day;
pub mod ledger;
pub mod manager;
pub mod notify;
pub mod state;
pub mod usage;

pub use config::{
    BackendPolicy, ConfigDiagnostic, ConfigError, ProcessConfig, QuotaConfig, UnknownProcess,
    UNKNOWN_BUCKET_ID,
};
pub use day::QuotaDay;
pub use ledger::{
    AuditedProcess, Durability, DurableLedger, DurableOptions, Inspection, Ledger, LedgerError,
    MemoryLedger, RecoveryAudit, RecoveryCause, RecoveryReport, RedisLedger, RedisOptions,
};
pub use manager::{
    Denial, ProcessHandle, ProcessStatus, Quotas, QuotasError, ReferenceClock, Reservation,
    ReserveItem, Settlement,
};
pub use notify::{
    ChannelNotifier, CollectingNotifier, Dedup, DeliveryStatus, Fanout, Figure, Figures,
    JsonlNotifier, LastError, Notification, NotificationKind, Notifier, NotifyError, NullNotifier,
    Subject,
};
#[cfg(feature = "webhook")]
pub use notify::{WebhookError, WebhookNotifier, WebhookOptions};
pub use state::QuotaState;
pub use usage::{Dimension, Limits, Usage, MAX_AMOUNT};
