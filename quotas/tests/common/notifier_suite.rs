//! Behaviour every `Notifier` sink must show, written once and run against
//! each one by `tests/notifiers.rs` (collecting, channel, JSONL, dedup,
//! fanout) and `tests/webhook.rs` (the HTTP webhook):
//!
//! * delivery in `notify` order, each notification exactly once;
//! * the delivered JSON is the self-describing `Notification` object (field
//!   and figure order kept) and reads back equal;
//! * concurrent notifiers lose nothing and keep each thread's order;
//! * `notify` returns quickly (< 50 ms each) — and, for sinks that can be
//!   stuck, also while they are ([`stays_quick_when_stuck`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use fusebox_quotas::{Figures, Notification, NotificationKind, Notifier, Subject};
use serde_json::Value as Json;

/// The most one `notify` may take.
pub const QUICK: Duration = Duration::from_millis(50);
/// How long a sink may take to deliver what it was given.
pub const SETTLE: Duration = Duration::from_secs(10);

/// A sink under test and a way to see what it delivered.
pub trait Sink {
    fn notifier(&self) -> Arc<dyn Notifier>;
    /// Everything delivered so far as raw JSON texts, in delivery order,
    /// waiting up to `timeout` until there are at least `n`.
    fn delivered(&self, n: usize, timeout: Duration) -> Vec<String>;
}

pub type MakeSink<'a> = &'a dyn Fn() -> Box<dyn Sink>;

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("base time")
        .with_timezone(&Utc)
}

/// Notification `i`: kinds and figures vary with `i`, the subject's id is
/// unique to `i` (so a `Dedup` in front lets every sample through), and `at`
/// is `i` minutes after a base instant.
pub fn sample(i: usize) -> Notification {
    let kind = NotificationKind::ALL[i % NotificationKind::ALL.len()];
    let subject = if i % 2 == 0 {
        Subject::process(format!("proc-{i}"))
    } else {
        Subject::trigger(format!("trigger-{i}"))
    };
    Notification {
        owner: format!("owner-{}@example.com", i % 3),
        subject,
        kind,
        reason: format!("reason {i}: \"quoted\", ünïcode"),
        figures: Figures::new()
            .with("used_records", i as u64 * 10)
            .with("limit_records", 1000u64)
            .with("quota_day", "2026-03-01")
            .with("share", i as f64 / 8.0)
            .with("window", "1h"),
        at: base() + TimeDelta::minutes(i as i64),
        message: format!("message {i}\nwith a newline"),
    }
}

fn parse(text: &str) -> Notification {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a notification ({e}): {text}"))
}

/// Notifies `samples` from one thread and checks each is delivered once, in
/// order, and nothing more arrives afterwards.
pub fn delivers_in_order_exactly_once(make: MakeSink) {
    let sink = make();
    let n = sink.notifier();
    let sent: Vec<Notification> = (0..40).map(sample).collect();
    for s in &sent {
        n.notify(s.clone());
    }
    let got = sink.delivered(sent.len(), SETTLE);
    let got: Vec<Notification> = got.iter().map(|t| parse(t)).collect();
    assert_eq!(got, sent, "delivered in order, each once");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        sink.delivered(sent.len() + 1, Duration::ZERO).len(),
        sent.len(),
        "nothing delivered twice"
    );
    // A sink that reports delivery counts every notification once, all delivered.
    if let Some(d) = n.delivery() {
        assert_eq!(
            (d.delivered, d.failed, d.dropped, d.pending),
            (sent.len() as u64, 0, 0, 0),
            "{d}"
        );
        assert!(d.is_clean());
    }
}

/// The delivered text is one self-describing JSON object per notification.
pub fn delivers_the_self_describing_json_object(make: MakeSink) {
    let sink = make();
    sink.notifier().notify(sample(1));
    let got = sink.delivered(1, SETTLE);
    assert_eq!(got.len(), 1);
    let text = &got[0];
    assert!(!text.contains('\n'), "one line: {text}");
    let v: Json = serde_json::from_str(text).expect("JSON");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected = vec![
        "at", "figures", "kind", "message", "owner", "reason", "subject",
    ];
    expected.sort();
    assert_eq!(keys, expected, "{text}");
    assert_eq!(
        v["subject"],
        serde_json::json!({"type": "trigger", "id": "trigger-1"})
    );
    assert_eq!(v["kind"], "exhausted");
    assert_eq!(v["at"], "2026-03-01T00:01:00Z");
    assert_eq!(v["figures"]["used_records"], 10);
    assert_eq!(v["figures"]["share"], 0.125);
    // Field and figure order as declared / inserted.
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
    assert!(pos("\"owner\"") < pos("\"subject\"") && pos("\"subject\"") < pos("\"kind\""));
    assert!(pos("\"kind\"") < pos("\"reason\"") && pos("\"figures\"") < pos("\"at\""));
    assert!(
        pos("\"used_records\"") < pos("\"limit_records\"")
            && pos("\"quota_day\"") < pos("\"window\"")
    );
    assert_eq!(parse(text), sample(1));
}

/// Four threads notify at once: every notification arrives exactly once and
/// each thread's notifications keep their order.
pub fn concurrent_notifies_lose_nothing(make: MakeSink) {
    let sink = make();
    let n = sink.notifier();
    let (threads, each) = (4usize, 25usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let n = n.clone();
            s.spawn(move || {
                for i in 0..each {
                    n.notify(sample(t * 1000 + i));
                }
            });
        }
    });
    let got: Vec<Notification> = sink
        .delivered(threads * each, SETTLE)
        .iter()
        .map(|t| parse(t))
        .collect();
    assert_eq!(got.len(), threads * each);
    for t in 0..threads {
        let mine: Vec<&Notification> = got
            .iter()
            .filter(|n| (n.at - base()).num_minutes() as usize / 1000 == t)
            .collect();
        let expected: Vec<Notification> = (0..each).map(|i| sample(t * 1000 + i)).collect();
        assert_eq!(mine.len(), each, "thread {t}");
        assert!(
            mine.iter().zip(&expected).all(|(a, b)| *a == b),
            "thread {t}'s order kept"
        );
    }
}

/// `notify` returns within [`QUICK`] every time.
pub fn notify_is_quick(make: MakeSink) {
    let sink = make();
    stays_quick_when_stuck(&*sink.notifier(), 200);
}

/// Notifies `count` times and checks no call took [`QUICK`] or longer. For a
/// sink that cannot deliver (a full channel, a receiver that never answers).
pub fn stays_quick_when_stuck(n: &dyn Notifier, count: usize) {
    let mut slowest = Duration::ZERO;
    for i in 0..count {
        let started = Instant::now();
        n.notify(sample(i));
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < QUICK, "slowest notify took {slowest:?}");
}

/// Every check above.
pub fn all(make: MakeSink) {
    delivers_in_order_exactly_once(make);
    delivers_the_self_describing_json_object(make);
    concurrent_notifies_lose_nothing(make);
    notify_is_quick(make);
}
