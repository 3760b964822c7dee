//! Owner notifications: one record ([`Notification`]), one extension point
//! ([`Notifier`]), ready-made sinks and two combinators.
//!
//! Quotas tell a process's owner that it was warned, stopped, rolled over
//! or adjusted by an operator; the trigger runaway control will tell a
//! trigger's owner that it was throttled, stopped or paused. Both produce
//! the same [`Notification`] — owner, [`Subject`] (process or trigger),
//! [`NotificationKind`], a one-sentence reason, ordered [`Figures`] (used,
//! limit, quota day, fuel, budget, window …), the instant and a message —
//! and hand it to a [`Notifier`].
//!
//! ## Design
//!
//! * **Producers** build a notification at the moment of a transition and
//!   call [`Notifier::notify`] on the thread that caused it, after the
//!   transition is recorded (for quotas: after the ledger recorded it).
//! * **Sinks** take it somewhere: [`NullNotifier`] (nowhere),
//!   [`CollectingNotifier`] (a `Vec`, for tests and summaries),
//!   [`ChannelNotifier`] (a bounded tokio channel, for an embedding
//!   service), [`JsonlNotifier`] (one JSON line per notification in a file)
//!   and, with the `webhook` feature, `WebhookNotifier` (an HTTP POST per
//!   notification from a background thread, with retries).
//! * **Combinators**: [`Dedup`] lets one notification per (subject, kind)
//!   through per window; [`Fanout`] hands each notification to several sinks
//!   in order.
//!
//! Sinks that can fail or drop report it through `status()` — a
//! [`DeliveryStatus`] of delivered / failed / dropped / pending counts and
//! the last error with its (wall-clock) time — never through `notify`.
//!
//! ## Invariants
//!
//! 1. **`notify` cannot fail the caller.** It returns nothing, panics on no
//!    input, and never waits on a consumer: the channel sink uses
//!    `try_send`, the webhook sink queues and returns. The one sink that does
//!    I/O on the caller's thread is [`JsonlNotifier`] — one `write(2)` per
//!    line to a local file, like the durable ledger's own writes; put it on a
//!    file that cannot stall (not a FIFO or a hung network mount).
//! 2. **Nothing is lost silently.** Every notification a sink accepts ends in
//!    exactly one of its counters: delivered, failed (given up after
//!    retries, or refused by the receiver), or dropped (a full channel or
//!    queue) — or is still pending, which `status()` shows.
//! 3. **Order.** Each sink delivers in `notify` order. The webhook sink sends
//!    one request at a time and starts the next notification only when the
//!    previous one was delivered or given up.
//! 4. **Deduplication is on the event clock.** [`Dedup`] compares the
//!    notifications' own `at`, not the wall clock, so a replay of a log
//!    suppresses exactly what the live run suppressed.
//! 5. **Quotas already notify once per transition.** The ledger tells exactly
//!    one caller that it caused a transition, and each transition happens at
//!    most once per quota day; a [`Dedup`] in front of quota notifications is
//!    a safety net, not a requirement (and a window longer than a quota day
//!    would suppress the next day's real transitions).
//! 6. **Webhooks are at-least-once.** A retry after a lost response can
//!    deliver a notification twice; every request carries an
//!    `Idempotency-Key` header (a hash of its body, the same on every
//!    attempt) so a receiver can drop repeats.

mod dedup;
mod jsonl;
mod memory;
mod notification;
#[cfg(feature = "webhook")]
pub mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use dedup::Dedup;
pub use jsonl::JsonlNotifier;
pub use memory::{ChannelNotifier, CollectingNotifier, Fanout, NullNotifier};
pub use notification::{Figure, Figures, Notification, NotificationKind, Subject};
#[cfg(feature = "webhook")]
pub use webhook::{WebhookError, WebhookNotifier, WebhookOptions};

/// Receives notifications: the one extension point for telling owners.
///
/// Implementations must return quickly, must not panic, and must not call
/// back into whatever notifies them (the [`crate::Quotas`] holds no lock
/// while notifying, but a re-entrant reserve would notify again). Failures
/// are the sink's to record, not the caller's to handle.
pub trait Notifier: Send + Sync {
    /// Delivers (or queues) one notification.
    fn notify(&self, notification: Notification);

    /// How delivery is going, for sinks that can fail (a file, a channel, a webhook);
    /// `None` for sinks that cannot. A status page shows it, so a notification that was
    /// never delivered is visible.
    fn delivery(&self) -> Option<DeliveryStatus> {
        None
    }
}

impl<N: Notifier + ?Sized> Notifier for Arc<N> {
    fn notify(&self, notification: Notification) {
        (**self).notify(notification)
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        (**self).delivery()
    }
}

impl<N: Notifier + ?Sized> Notifier for Box<N> {
    fn notify(&self, notification: Notification) {
        (**self).notify(notification)
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        (**self).delivery()
    }
}

impl DeliveryStatus {
    /// Adds another sink's figures (the most recent error of either wins, by time).
    pub fn merge(mut self, other: DeliveryStatus) -> DeliveryStatus {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.pending += other.pending;
        self.retries += other.retries;
        self.last_error = match (self.last_error, other.last_error) {
            (Some(a), Some(b)) => Some(if b.at >= a.at { b } else { a }),
            (a, b) => a.or(b),
        };
        self
    }
}

/// How a sink is doing. Every notification a sink accepted is counted in
/// exactly one of `delivered`, `failed`, `dropped` or `pending`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    /// Delivered: written, sent on the channel, or answered 2xx.
    pub delivered: u64,
    /// Given up: the receiver refused it, retries ran out, or a write failed.
    pub failed: u64,
    /// Never attempted: a full channel or queue, or a closed receiver.
    pub dropped: u64,
    /// Accepted and not settled yet (queued or in flight).
    pub pending: u64,
    /// Attempts that failed and were retried (webhook).
    pub retries: u64,
    /// The most recent failure of any kind, if any.
    pub last_error: Option<LastError>,
}

impl DeliveryStatus {
    /// Whether nothing failed or was dropped.
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.dropped == 0
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} delivered, {} failed, {} dropped, {} pending",
            self.delivered, self.failed, self.dropped, self.pending
        )?;
        if self.retries > 0 {
            write!(f, " ({} retries)", self.retries)?;
        }
        if let Some(e) = &self.last_error {
            write!(f, "; last error at {}: {}", e.at.to_rfc3339(), e.message)?;
        }
        Ok(())
    }
}

/// A sink's most recent failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// When it happened (wall clock).
    pub at: DateTime<Utc>,
    /// What happened.
    pub message: String,
}

/// Opening a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The notification file could not be opened or created.
    #[error("cannot open notification file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why a sink could not deliver one notification (recorded as
/// [`LastError::message`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkFailure {
    #[error("channel full ({capacity} notifications waiting): {kind} for {subject} dropped")]
    ChannelFull {
        capacity: usize,
        kind: NotificationKind,
        subject: Subject,
    },
    #[error("channel receiver dropped: {kind} for {subject} discarded")]
    ChannelClosed {
        kind: NotificationKind,
        subject: Subject,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize {kind} for {subject}: {source}")]
    Serialize {
        kind: NotificationKind,
        subject: Subject,
        #[source]
        source: serde_json::Error,
    },
}

/// How a failure is logged.
#[derive(Clone, Copy)]
enum Log {
    /// A notification lost; `total` such so far.
    Lost { total: u64, what: &'static str },
    /// An attempt that will be retried.
    Retry,
}

/// The counters behind a sink's [`DeliveryStatus`]; `pending` is the sink's
/// to supply.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

impl Counters {
    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, why: &dyn fmt::Display) {
        let total = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        self.record(
            why,
            Log::Lost {
                total,
                what: "failed",
            },
        );
    }

    pub(crate) fn dropped(&self, why: &dyn fmt::Display) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        self.record(
            why,
            Log::Lost {
                total,
                what: "dropped",
            },
        );
    }

    #[cfg_attr(not(feature = "webhook"), allow(dead_code))]
    pub(crate) fn retried(&self, why: &dyn fmt::Display) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.record(why, Log::Retry);
    }

    /// Keeps `why` as the last error and logs it: a lost notification as a
    /// warning when its count is 1, 2, 4, 8, … (a sink dropping thousands
    /// must not flood the log from the notifying thread; `status()` has
    /// the exact counts), otherwise and for retries at debug level.
    fn record(&self, why: &dyn fmt::Display, log: Log) {
        let message = why.to_string();
        match log {
            Log::Lost { total, what } if total.is_power_of_two() => {
                tracing::warn!(error = %message, total, "notification {what}");
            }
            Log::Lost { what, .. } => tracing::debug!(error = %message, "notification {what}"),
            Log::Retry => tracing::debug!(error = %message, "notification attempt failed"),
        }
        *self.last_error_lock() = Some(LastError {
            at: Utc::now(),
            message,
        });
    }

    pub(crate) fn snapshot(&self, pending: u64) -> DeliveryStatus {
        // A failure is counted before it is recorded, and the last error is
        // read (under its mutex) before the counters: a shown error is
        // always counted.
        let last_error = self.last_error_lock().clone();
        DeliveryStatus {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            pending,
            retries: self.retries.load(Ordering::Relaxed),
            last_error,
        }
    }

    fn last_error_lock(&self) -> MutexGuard<'_, Option<LastError>> {
        // Replacing an Option cannot leave it inconsistent.
        self.last_error.lock().unwrap_or_else(|p| p.into_inner())
    }
}
