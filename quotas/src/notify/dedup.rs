//! [`Dedup`]: one notification per (subject, kind) per window.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{DeliveryStatus, Notification, NotificationKind, Notifier, Subject};

/// Past this many remembered keys, keys whose window has ended are forgotten.
const PRUNE_AT: usize = 4096;

/// Lets one notification per (subject, kind) through per `window` and
/// counts the rest.
///
/// Windows are on the **notifications' own clock** (`at`), not the wall
/// clock, so a replay suppresses exactly what the live run suppressed. A
/// notification is forwarded when its key has not been forwarded yet, or
/// when its `at` is at least `window` after the last forwarded one of that
/// key; otherwise it is suppressed. An `at` earlier than the last forwarded
/// one counts as inside its window: a clock going backwards never reopens
/// one. The first notification forwarded after suppressions carries a
/// `suppressed` figure: how many of its key were suppressed since the
/// previous one. [`Dedup::suppressed`] is the total.
///
/// The inner sink is called under the dedup lock, so it sees notifications
/// in the order the decisions were made.
pub struct Dedup<N> {
    inner: N,
    window: TimeDelta,
    seen: Mutex<HashMap<(Subject, NotificationKind), Seen>>,
    suppressed: AtomicU64,
}

#[derive(Clone, Copy)]
struct Seen {
    /// When the last forwarded notification of the key happened.
    at: DateTime<Utc>,
    /// Suppressed since.
    suppressed: u64,
}

impl<N> fmt::Debug for Dedup<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedup")
            .field("window", &self.window)
            .field("suppressed", &self.suppressed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<N: Notifier> Dedup<N> {
    /// Wraps `inner`. A zero window suppresses nothing; a window too long for
    /// the clock (over about 292 billion years) never reopens.
    pub fn new(inner: N, window: Duration) -> Dedup<N> {
        Dedup {
            inner,
            window: TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX),
            seen: Mutex::new(HashMap::new()),
            suppressed: AtomicU64::new(0),
        }
    }

    /// How many notifications were suppressed so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// The window.
    pub fn window(&self) -> TimeDelta {
        self.window
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(Subject, NotificationKind), Seen>> {
        // Every update is a single insert: a panic cannot leave a half-made entry.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<N: Notifier> Notifier for Dedup<N> {
    fn notify(&self, mut n: Notification) {
        let mut seen = self.lock();
        let key = (n.subject.clone(), n.kind);
        if let Some(s) = seen.get_mut(&key) {
            // Saturating: an end beyond the clock's range never comes.
            let open_until =
                s.at.checked_add_signed(self.window)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if n.at < open_until {
                s.suppressed += 1;
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(subject = %n.subject, kind = %n.kind, "notification suppressed (dedup window)");
                return;
            }
            if s.suppressed > 0 {
                n.figures.insert("suppressed", s.suppressed);
            }
        }
        if seen.len() >= PRUNE_AT {
            let window = self.window;
            let now = n.at;
            seen.retain(|_, s| s.at.checked_add_signed(window).is_none_or(|end| end > now));
        }
        seen.insert(
            key,
            Seen {
                at: n.at,
                suppressed: 0,
            },
        );
        self.inner.notify(n);
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        self.inner.delivery()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{CollectingNotifier, Figures};

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).expect("in range")
    }

    fn note(id: &str, kind: NotificationKind, minute: i64) -> Notification {
        Notification {
            owner: "o".into(),
            subject: Subject::trigger(id),
            kind,
            reason: "r".into(),
            figures: Figures::new(),
            at: at(minute),
            message: "m".into(),
        }
    }

    #[test]
    fn one_per_subject_and_kind_per_window_on_the_event_clock() {
        let d = Dedup::new(CollectingNotifier::new(), Duration::from_secs(600));
        d.notify(note("a", NotificationKind::Throttled, 0));
        d.notify(note("a", NotificationKind::Throttled, 5)); // suppressed
        d.notify(note("a", NotificationKind::Stopped, 5)); // other kind
        d.notify(note("b", NotificationKind::Throttled, 5)); // other subject
        d.notify(note("a", NotificationKind::Throttled, -30)); // backwards: inside
        d.notify(note("a", NotificationKind::Throttled, 10)); // window over
        d.notify(note("a", NotificationKind::Throttled, 19)); // suppressed
        assert_eq!(d.suppressed(), 3);
        let got: Vec<(String, NotificationKind, i64, Option<u64>)> = d
            .inner()
            .take()
            .into_iter()
            .map(|n| {
                (
                    n.subject.id().to_string(),
                    n.kind,
                    (n.at - at(0)).num_minutes(),
                    n.figure("suppressed").and_then(|f| f.as_u64()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), NotificationKind::Throttled, 0, None),
                ("a".into(), NotificationKind::Stopped, 5, None),
                ("b".into(), NotificationKind::Throttled, 5, None),
                ("a".into(), NotificationKind::Throttled, 10, Some(2)),
            ]
        );
    }

    #[test]
    fn zero_and_endless_windows() {
        let d = Dedup::new(CollectingNotifier::new(), Duration::ZERO);
        d.notify(note("a", NotificationKind::Paused, 0));
        d.notify(note("a", NotificationKind::Paused, 0));
        assert_eq!((d.inner().len(), d.suppressed()), (2, 0));
        let d = Dedup::new(CollectingNotifier::new(), Duration::MAX);
        d.notify(note("a", NotificationKind::Paused, 0));
        d.notify(note("a", NotificationKind::Paused, 1_000_000));
        assert_eq!((d.inner().len(), d.suppressed()), (1, 1));
    }
}
