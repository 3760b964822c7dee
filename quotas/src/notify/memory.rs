//! In-process sinks: [`NullNotifier`], [`CollectingNotifier`],
//! [`ChannelNotifier`], and the [`Fanout`] combinator.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{Counters, DeliveryStatus, Notification, Notifier, SinkFailure};

/// Drops every notification.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullNotifier;

impl Notifier for NullNotifier {
    fn notify(&self, _: Notification) {}
}

/// Collects notifications in memory; [`CollectingNotifier::take`] drains
/// them. Unbounded: for tests, summaries and short runs.
#[derive(Debug, Default)]
pub struct CollectingNotifier {
    items: Mutex<Vec<Notification>>,
}

impl CollectingNotifier {
    /// An empty collector.
    pub fn new() -> CollectingNotifier {
        CollectingNotifier::default()
    }

    /// Removes and returns everything collected so far, in delivery order.
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of everything collected so far.
    pub fn snapshot(&self) -> Vec<Notification> {
        self.lock().clone()
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Notification>> {
        // A panic while pushing cannot leave the Vec inconsistent.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Notifier for CollectingNotifier {
    fn notify(&self, n: Notification) {
        self.lock().push(n);
    }
}

/// Sends notifications on a bounded tokio channel, for an embedding
/// service that consumes them in a task (`while let Some(n) = rx.recv().await`).
///
/// `notify` uses `try_send`: it never waits. A full channel drops the
/// notification and a dropped receiver discards it; both count as
/// `dropped` in [`ChannelNotifier::status`], with the last one's subject and
/// kind as the last error. `pending` is what sits in the channel unread.
pub struct ChannelNotifier {
    tx: mpsc::Sender<Notification>,
    counters: Counters,
}

impl fmt::Debug for ChannelNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelNotifier")
            .field("capacity", &self.tx.max_capacity())
            .field("status", &self.status())
            .finish()
    }
}

impl ChannelNotifier {
    /// A notifier and the receiving end of a channel holding up to
    /// `capacity` notifications (at least 1).
    pub fn new(capacity: usize) -> (ChannelNotifier, mpsc::Receiver<Notification>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            ChannelNotifier {
                tx,
                counters: Counters::default(),
            },
            rx,
        )
    }

    /// Sent, dropped (full or closed) and unread counts.
    pub fn status(&self) -> DeliveryStatus {
        let unread = if self.tx.is_closed() {
            0
        } else {
            self.tx.max_capacity() - self.tx.capacity()
        };
        self.counters.snapshot(unread as u64)
    }
}

impl Notifier for ChannelNotifier {
    fn notify(&self, n: Notification) {
        match self.tx.try_send(n) {
            Ok(()) => self.counters.delivered(),
            Err(mpsc::error::TrySendError::Full(n)) => {
                self.counters.dropped(&SinkFailure::ChannelFull {
                    capacity: self.tx.max_capacity(),
                    kind: n.kind,
                    subject: n.subject,
                })
            }
            Err(mpsc::error::TrySendError::Closed(n)) => {
                self.counters.dropped(&SinkFailure::ChannelClosed {
                    kind: n.kind,
                    subject: n.subject,
                })
            }
        }
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        Some(self.status())
    }
}

/// Hands each notification to several sinks, in the order they were added
/// (e.g. a [`super::JsonlNotifier`] log and a webhook). Each sink sees every
/// notification; one sink's failure is its own and does not affect the
/// others.
#[derive(Clone, Default)]
pub struct Fanout {
    sinks: Vec<Arc<dyn Notifier>>,
}

impl fmt::Debug for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fanout")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Fanout {
    /// No sinks yet (notifications go nowhere).
    pub fn new() -> Fanout {
        Fanout::default()
    }

    /// Adds a sink, builder style.
    pub fn with(mut self, sink: Arc<dyn Notifier>) -> Fanout {
        self.sinks.push(sink);
        self
    }

    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn Notifier>) {
        self.sinks.push(sink);
    }

    /// How many sinks there are.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl Notifier for Fanout {
    fn notify(&self, n: Notification) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for sink in rest {
                sink.notify(n.clone());
            }
            last.notify(n);
        }
    }

    /// The sum over the sinks that report delivery.
    fn delivery(&self) -> Option<DeliveryStatus> {
        self.sinks
            .iter()
            .filter_map(|s| s.delivery())
            .reduce(DeliveryStatus::merge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Figures, NotificationKind, Subject};
    use chrono::DateTime;

    fn sample(id: &str) -> Notification {
        Notification {
            owner: "o@example.com".into(),
            subject: Subject::process(id),
            kind: NotificationKind::Warned,
            reason: "r".into(),
            figures: Figures::new(),
            at: DateTime::from_timestamp(1_728_000_000, 0).expect("in range"),
            message: "m".into(),
        }
    }

    #[test]
    fn channel_counts_full_and_closed_as_dropped() {
        let (n, mut rx) = ChannelNotifier::new(1);
        n.notify(sample("a"));
        n.notify(sample("b"));
        let s = n.status();
        assert_eq!((s.delivered, s.dropped, s.pending), (1, 1, 1));
        assert!(s.last_error.unwrap().message.contains("process b"));
        assert_eq!(rx.try_recv().unwrap().subject, Subject::process("a"));
        drop(rx);
        n.notify(sample("c"));
        let s = n.status();
        assert_eq!((s.delivered, s.dropped, s.pending), (1, 2, 0));
    }

    #[test]
    fn fanout_hands_every_notification_to_every_sink() {
        let a = Arc::new(CollectingNotifier::new());
        let b = Arc::new(CollectingNotifier::new());
        let f = Fanout::new().with(a.clone()).with(b.clone());
        f.notify(sample("x"));
        f.notify(sample("y"));
        assert_eq!(a.snapshot(), b.snapshot());
        assert_eq!(a.len(), 2);
        Fanout::new().notify(sample("nowhere"));
    }
}
