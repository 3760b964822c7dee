//! Owner notifications: what happened to a process's quota, delivered
//! through a [`Notifier`] the embedding application supplies.
//!
//! Notifications are produced on the thread that caused the transition,
//! synchronously, after the ledger has recorded it, so a notifier should be
//! quick (append to a buffer, send on a channel). Each transition is
//! reported once: the ledger tells exactly one caller that it caused it.

use std::sync::mpsc;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::day::QuotaDay;
use crate::usage::{Limits, Usage};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Usage reached the warning threshold (once per period).
    Warned,
    /// A reserve exceeded the limit; the process is stopped until the next
    /// quota day or an operator raise / resume (once per period).
    Exhausted,
    /// Shadow mode: the limit was exceeded and the process *would* have been
    /// stopped; it keeps running (once per period).
    ShadowWouldDeny,
    /// The first reserve of a new quota day found the process stopped from
    /// the previous day; it is active again.
    RolledOver,
    /// An operator resumed the process.
    Resumed,
    /// An operator raised the limit for the rest of the quota day.
    LimitRaised,
    /// An operator reset the day's usage to zero.
    Reset,
    /// An operator set the day's usage by hand (e.g. after a recovery).
    UsageSet,
    /// An operator moved the process back from a day it was pinned to (by
    /// an event stamped far ahead) to an earlier one, keeping its usage.
    Rewound,
    /// The ledger backend failed and the reserve was denied (fail closed).
    /// Once per outage per process.
    BackendUnavailableDenied,
    /// The ledger backend failed and the reserve was granted unmetered
    /// (fail open). Once per outage per process.
    BackendUnavailableAllowed,
    /// The backend answered again after an outage.
    BackendRecovered,
}

/// One notification for a process owner. Serializes to one JSON object, as
/// written to `notifications.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaNotification {
    /// Process id.
    pub process: String,
    /// Process owner (who to tell).
    pub owner: String,
    /// What happened.
    pub kind: NotificationKind,
    /// The quota day concerned, in the process's zone.
    pub quota_day: QuotaDay,
    /// The process's time zone (IANA name).
    pub time_zone: String,
    /// Usage of the day at the time.
    pub used: Usage,
    /// Effective limits at the time.
    pub limit: Limits,
    /// The caller-supplied instant of the triggering call.
    pub at: DateTime<Utc>,
    /// A sentence for humans.
    pub message: String,
}

/// Receives notifications. Implementations must be cheap and must not call
/// back into the [`crate::Quotas`] that notifies them.
pub trait Notifier: Send + Sync {
    /// Delivers one notification.
    fn notify(&self, notification: QuotaNotification);
}

/// Drops every notification.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullNotifier;

impl Notifier for NullNotifier {
    fn notify(&self, _: QuotaNotification) {}
}

/// Collects notifications in memory; [`CollectingNotifier::take`] drains them.
#[derive(Debug, Default)]
pub struct CollectingNotifier {
    items: Mutex<Vec<QuotaNotification>>,
}

impl CollectingNotifier {
    /// An empty collector.
    pub fn new() -> CollectingNotifier {
        CollectingNotifier::default()
    }

    /// Removes and returns everything collected so far, in delivery order.
    pub fn take(&self) -> Vec<QuotaNotification> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of everything collected so far.
    pub fn snapshot(&self) -> Vec<QuotaNotification> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<QuotaNotification>> {
        // A panic while pushing cannot leave the Vec inconsistent.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Notifier for CollectingNotifier {
    fn notify(&self, n: QuotaNotification) {
        self.lock().push(n);
    }
}

/// Sends notifications on a channel (e.g. to a writer thread). Sending to a
/// dropped receiver discards the notification.
#[derive(Debug)]
pub struct ChannelNotifier {
    tx: mpsc::Sender<QuotaNotification>,
}

impl ChannelNotifier {
    /// A notifier and the receiving end.
    pub fn new() -> (ChannelNotifier, mpsc::Receiver<QuotaNotification>) {
        let (tx, rx) = mpsc::channel();
        (ChannelNotifier { tx }, rx)
    }
}

impl Notifier for ChannelNotifier {
    fn notify(&self, n: QuotaNotification) {
        if self.tx.send(n).is_err() {
            tracing::debug!("quota notification dropped: receiver gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QuotaNotification {
        QuotaNotification {
            process: "crm-sync".into(),
            owner: "data@example.com".into(),
            kind: NotificationKind::Exhausted,
            quota_day: QuotaDay::from_days_since_epoch(20_000),
            time_zone: "Europe/Berlin".into(),
            used: Usage::new(5, 6),
            limit: Limits::new(Some(5), None),
            at: DateTime::from_timestamp(1_728_000_000, 0).unwrap(),
            message: "stopped".into(),
        }
    }

    #[test]
    fn serializes_as_one_flat_json_object() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["kind"], "exhausted");
        assert_eq!(v["quota_day"], "2024-10-04");
        assert_eq!(v["used"]["records"], 5);
        assert!(v["limit"].get("bytes").is_none());
    }

    #[test]
    fn collecting_and_channel_notifiers_deliver() {
        let c = CollectingNotifier::new();
        c.notify(sample());
        assert_eq!(c.snapshot().len(), 1);
        assert_eq!(c.take().len(), 1);
        assert!(c.take().is_empty());
        let (n, rx) = ChannelNotifier::new();
        n.notify(sample());
        assert_eq!(rx.recv().unwrap().kind, NotificationKind::Exhausted);
        drop(rx);
        n.notify(sample());
    }
}
