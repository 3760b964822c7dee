//! The in-process notifier sinks — collecting, tokio channel, JSONL file,
//! dedup, fanout — through the shared suite (`common/notifier_suite.rs`),
//! plus what is particular to each, and the quota manager's notifications
//! in their general shape.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::notifier_suite::{self as suite, sample, Sink};
use fusebox_quotas::{
    ChannelNotifier, CollectingNotifier, Dedup, Fanout, JsonlNotifier, MemoryLedger,
    NotificationKind, Notifier, NullNotifier, QuotaConfig, Quotas, Subject,
};
use tokio::sync::mpsc;

fn to_json(n: &fusebox_quotas::Notification) -> String {
    serde_json::to_string(n).expect("serializable")
}

struct Collecting(Arc<CollectingNotifier>);

impl Sink for Collecting {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.0.clone()
    }
    fn delivered(&self, _: usize, _: Duration) -> Vec<String> {
        self.0.snapshot().iter().map(to_json).collect()
    }
}

struct Channel {
    tx: Arc<ChannelNotifier>,
    rx: Mutex<mpsc::Receiver<fusebox_quotas::Notification>>,
    got: Mutex<Vec<String>>,
}

impl Sink for Channel {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.tx.clone()
    }
    fn delivered(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = self.got.lock().unwrap();
        let mut rx = self.rx.lock().unwrap();
        loop {
            while let Ok(x) = rx.try_recv() {
                got.push(to_json(&x));
            }
            if got.len() >= n || Instant::now() >= deadline {
                return got.clone();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

struct File {
    sink: Arc<dyn Notifier>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl File {
    fn new() -> File {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.jsonl");
        File {
            sink: Arc::new(JsonlNotifier::create(&path).unwrap()),
            path,
            _dir: dir,
        }
    }
}

impl Sink for File {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.sink.clone()
    }
    fn delivered(&self, _: usize, _: Duration) -> Vec<String> {
        let text = std::fs::read_to_string(&self.path).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "whole lines only");
        text.lines().map(str::to_string).collect()
    }
}

/// A sink wrapped by a combinator; what is delivered is read from the inner one.
struct Wrapped<S> {
    outer: Arc<dyn Notifier>,
    inner: S,
}

impl<S: Sink> Sink for Wrapped<S> {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.outer.clone()
    }
    fn delivered(&self, n: usize, timeout: Duration) -> Vec<String> {
        self.inner.delivered(n, timeout)
    }
}

#[test]
fn collecting_notifier_passes_the_suite() {
    suite::all(&|| Box::new(Collecting(Arc::new(CollectingNotifier::new()))));
}

#[test]
fn channel_notifier_passes_the_suite() {
    suite::all(&|| {
        let (tx, rx) = ChannelNotifier::new(1024);
        Box::new(Channel {
            tx: Arc::new(tx),
            rx: Mutex::new(rx),
            got: Mutex::new(Vec::new()),
        })
    });
}

#[test]
fn jsonl_notifier_passes_the_suite() {
    suite::all(&|| Box::new(File::new()));
}

#[test]
fn dedup_passes_the_suite() {
    // Every sample has its own subject: an hour's window lets all through.
    suite::all(&|| {
        let inner = Arc::new(CollectingNotifier::new());
        Box::new(Wrapped {
            outer: Arc::new(Dedup::new(inner.clone(), Duration::from_secs(3600))),
            inner: Collecting(inner),
        })
    });
}

#[test]
fn fanout_passes_the_suite_for_each_of_its_sinks() {
    suite::all(&|| {
        let file = File::new();
        Box::new(Wrapped {
            outer: Arc::new(
                Fanout::new()
                    .with(Arc::new(CollectingNotifier::new()))
                    .with(file.notifier()),
            ),
            inner: file,
        })
    });
    suite::all(&|| {
        let first = Arc::new(CollectingNotifier::new());
        Box::new(Wrapped {
            outer: Arc::new(
                Fanout::new()
                    .with(first.clone())
                    .with(Arc::new(CollectingNotifier::new())),
            ),
            inner: Collecting(first),
        })
    });
}

#[test]
fn null_notifier_is_quick_and_delivers_nothing() {
    suite::stays_quick_when_stuck(&NullNotifier, 1000);
}

#[test]
fn a_full_channel_drops_and_counts_without_blocking() {
    // Nobody reads: the channel fills after 4, every later notify is a drop.
    let (tx, rx) = ChannelNotifier::new(4);
    suite::stays_quick_when_stuck(&tx, 500);
    let s = tx.status();
    assert_eq!((s.delivered, s.dropped, s.pending), (4, 496, 4));
    let last = s.last_error.expect("the drop is recorded");
    assert!(last.message.contains("channel full"), "{}", last.message);
    // The receiver gone: discarded, counted too.
    drop(rx);
    tx.notify(sample(0));
    assert_eq!(tx.status().dropped, 497);
    assert_eq!(tx.status().pending, 0);
}

#[test]
fn a_fanout_with_a_stuck_sink_still_feeds_the_others() {
    let (stuck, _rx) = ChannelNotifier::new(1);
    let stuck = Arc::new(stuck);
    let log = Arc::new(CollectingNotifier::new());
    let fanout = Fanout::new().with(stuck.clone()).with(log.clone());
    suite::stays_quick_when_stuck(&fanout, 300);
    assert_eq!(log.len(), 300);
    assert_eq!(stuck.status().dropped, 299);
}

#[test]
fn a_dedup_in_front_of_a_stuck_sink_stays_quick() {
    let (stuck, _rx) = ChannelNotifier::new(1);
    let d = Dedup::new(stuck, Duration::from_secs(60));
    suite::stays_quick_when_stuck(&d, 300);
    assert_eq!(d.suppressed(), 0);
    assert_eq!(d.inner().status().dropped, 299);
}

#[test]
fn dedup_suppresses_a_flapping_trigger_and_says_how_many() {
    let inner = Arc::new(CollectingNotifier::new());
    let d = Dedup::new(inner.clone(), Duration::from_secs(3600));
    let mut n = sample(0);
    n.subject = Subject::trigger("welcome");
    n.kind = NotificationKind::Throttled;
    // Every 10 minutes for 3 hours: one per hour gets through.
    for i in 0..18 {
        let mut x = n.clone();
        x.at = n.at + chrono::TimeDelta::minutes(10 * i);
        d.notify(x);
    }
    let got = inner.take();
    assert_eq!(got.len(), 3);
    assert_eq!(d.suppressed(), 15);
    assert_eq!(got[0].figure("suppressed"), None);
    assert_eq!(
        got[1].figure("suppressed").and_then(|f| f.as_u64()),
        Some(5)
    );
    assert_eq!(
        got[2].figure("suppressed").and_then(|f| f.as_u64()),
        Some(5)
    );
}

#[test]
fn jsonl_append_keeps_what_is_there_and_create_empties() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let n = JsonlNotifier::append(&path).unwrap();
    n.notify(sample(3));
    n.sync().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with("{\"earlier\":true}\n"));
    let n = JsonlNotifier::create(&path).unwrap();
    n.notify(sample(4));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert_eq!(n.status().delivered, 1);
    assert!(n.status().is_clean());
}

/// The quota manager notifies in the general shape: subject `process`, the
/// quota fields as figures, a reason and a message.
#[test]
fn quota_transitions_become_general_notifications() {
    let config = QuotaConfig::from_yaml_str(
        "processes:\n  - { id: crm-sync, owner: data@example.com, time_zone: Europe/Berlin, limits: { records: 10 } }\n",
        "quotas.yaml",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notifications.jsonl");
    let collected = Arc::new(CollectingNotifier::new());
    let fanout = Fanout::new()
        .with(collected.clone())
        .with(Arc::new(JsonlNotifier::create(&path).unwrap()));
    let q = Quotas::new(config, Box::new(MemoryLedger::new()), Arc::new(fanout)).unwrap();
    let at = common::utc("2026-11-23T10:00:00Z");
    q.reserve("crm-sync", 8, 100, at).unwrap().commit(8, 100);
    assert!(q.reserve("crm-sync", 5, 0, at).is_err());
    let got = collected.take();
    let kinds: Vec<NotificationKind> = got.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NotificationKind::Warned, NotificationKind::Exhausted]
    );
    let e = &got[1];
    assert_eq!(e.subject, Subject::process("crm-sync"));
    assert_eq!(e.owner, "data@example.com");
    assert_eq!(e.reason, "a transfer would exceed the daily records limit");
    assert_eq!(e.at, at);
    let figures: Vec<(String, String)> = e
        .figures
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let expected = [
        ("used_records", "8"),
        ("limit_records", "10"),
        ("used_bytes", "100"),
        ("quota_day", "2026-11-23"),
        ("time_zone", "Europe/Berlin"),
        ("dimension", "records"),
    ];
    assert_eq!(
        figures,
        expected.map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert!(
        e.message
            .contains("crm-sync exhausted its daily records quota"),
        "{}",
        e.message
    );
    // The file has the same two, as JSON lines.
    let lines: Vec<fusebox_quotas::Notification> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, got);
    let line = std::fs::read_to_string(&path).unwrap();
    assert!(
        line.lines().nth(1).unwrap().starts_with(
            r#"{"owner":"data@example.com","subject":{"type":"process","id":"crm-sync"},"kind":"exhausted","#
        ),
        "{line}"
    );
}
