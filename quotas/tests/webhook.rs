//! The HTTP webhook sink against a real HTTP server on loopback
//! (`common/http_server.rs`): the shared notifier suite, a receiver that
//! fails and then recovers (every notification arrives exactly once, after
//! backoff, and the failures show in `status()`), one that never recovers
//! or refuses (reported failed, not lost), one that is unreachable, and one
//! that is stuck (notify stays quick, the queue drops the oldest, flush and
//! drop are bounded).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::http_server::{Reply, TestServer};
use common::notifier_suite::{self as suite, sample, Sink};
use fusebox_quotas::{Notification, Notifier, WebhookError, WebhookNotifier, WebhookOptions};

/// Short backoffs so the tests take milliseconds: 40 ms, 80 ms, 160 ms, …
fn fast() -> WebhookOptions {
    WebhookOptions {
        queue_capacity: 1024,
        max_attempts: 6,
        max_elapsed: Duration::from_secs(20),
        initial_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    }
}

const FLUSH: Duration = Duration::from_secs(20);

fn parse(text: &str) -> Notification {
    serde_json::from_str(text).expect("a notification")
}

struct Hook {
    // Dropped before the server.
    sink: Arc<WebhookNotifier>,
    server: TestServer,
}

impl Sink for Hook {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.sink.clone()
    }
    fn delivered(&self, n: usize, timeout: Duration) -> Vec<String> {
        self.server.wait_accepted(n, timeout)
    }
}

#[test]
fn webhook_passes_the_suite() {
    suite::all(&|| {
        let server = TestServer::always(200);
        let sink = Arc::new(WebhookNotifier::new(&server.url(), fast()).unwrap());
        Box::new(Hook { sink, server })
    });
}

#[test]
fn a_failing_then_recovering_receiver_gets_every_notification_exactly_once() {
    let started = Utc::now();
    // The first three requests fail with 500, then everything is accepted.
    let server = TestServer::start(|i| Reply::Status(if i < 3 { 500 } else { 200 }));
    let sink = WebhookNotifier::new(&server.url(), fast()).unwrap();
    let sent: Vec<Notification> = (0..5).map(sample).collect();
    for n in &sent {
        sink.notify(n.clone());
    }
    let status = sink.flush(FLUSH);
    assert_eq!(
        (
            status.delivered,
            status.failed,
            status.dropped,
            status.pending,
            status.retries
        ),
        (5, 0, 0, 0, 3),
        "{status}"
    );
    // The failures are visible: the last error, its time, and no secret of the URL.
    let last = status.last_error.expect("the failed attempts are recorded");
    assert!(last.at >= started && last.at <= Utc::now());
    assert!(last.message.contains("HTTP 500"), "{}", last.message);
    assert!(last.message.contains("retrying"), "{}", last.message);
    assert!(
        !last.message.contains("secret") && !last.message.contains("/hooks"),
        "the URL's path and query stay out of messages: {}",
        last.message
    );

    // Exactly once each, in order, as accepted by the receiver.
    let accepted: Vec<Notification> = server.accepted().iter().map(|t| parse(t)).collect();
    assert_eq!(accepted, sent);

    // The first notification took four attempts, same body and key, numbered.
    let requests = server.requests();
    assert_eq!(requests.len(), 8);
    let first = &requests[..4];
    assert!(first.iter().all(|r| r.body == requests[0].body));
    let key = requests[0]
        .header("idempotency-key")
        .expect("key")
        .to_string();
    assert!(key.starts_with("fbx-"), "{key}");
    assert!(first
        .iter()
        .all(|r| r.header("idempotency-key") == Some(&key)));
    assert_ne!(requests[4].header("idempotency-key"), Some(key.as_str()));
    let attempts: Vec<&str> = first
        .iter()
        .filter_map(|r| r.header("x-fusebox-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert!(requests[0]
        .header("user-agent")
        .is_some_and(|u| u.starts_with("fusebox/")));

    // Backoff happened and grew: wait k is at least half of 40 ms · 2^(k-1).
    for (k, pair) in first.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let floor = Duration::from_millis(20 << k);
        assert!(gap >= floor, "wait {} was {gap:?}, below {floor:?}", k + 1);
    }
}

#[test]
fn a_receiver_that_never_recovers_is_reported_failed_not_lost() {
    let server = TestServer::always(503);
    let options = WebhookOptions {
        max_attempts: 3,
        ..fast()
    };
    let sink = WebhookNotifier::new(&server.url(), options).unwrap();
    sink.notify(sample(0));
    sink.notify(sample(1));
    let status = sink.flush(FLUSH);
    assert_eq!(
        (
            status.delivered,
            status.failed,
            status.dropped,
            status.pending,
            status.retries
        ),
        (0, 2, 0, 0, 4),
        "{status}"
    );
    let last = status.last_error.expect("recorded");
    assert!(
        last.message
            .contains("gave up on warned for process proc-0")
            || last
                .message
                .contains("gave up on exhausted for trigger trigger-1"),
        "{}",
        last.message
    );
    assert!(
        last.message.contains("after 3 attempt(s)") && last.message.contains("HTTP 503"),
        "{}",
        last.message
    );
    assert_eq!(server.requests().len(), 6);
    assert!(server.accepted().is_empty());
}

#[test]
fn a_refusal_is_not_retried() {
    let server = TestServer::always(400);
    let sink = WebhookNotifier::new(&server.url(), fast()).unwrap();
    sink.notify(sample(0));
    let status = sink.flush(FLUSH);
    assert_eq!((status.failed, status.retries), (1, 0), "{status}");
    assert!(status
        .last_error
        .unwrap()
        .message
        .contains("HTTP 400: answer 0: 400"));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_unreachable_receiver_is_retried_then_reported() {
    // A port nobody listens on any more: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = WebhookOptions {
        max_attempts: 2,
        ..fast()
    };
    let sink = WebhookNotifier::new(&format!("http://127.0.0.1:{port}/hook"), options).unwrap();
    assert_eq!(sink.endpoint(), format!("http://127.0.0.1:{port}"));
    sink.notify(sample(0));
    let status = sink.flush(FLUSH);
    assert_eq!(
        (status.delivered, status.failed, status.retries),
        (0, 1, 1),
        "{status}"
    );
    let message = status.last_error.unwrap().message;
    assert!(
        message.contains(&format!("http://127.0.0.1:{port}")),
        "{message}"
    );
}

#[test]
fn a_stuck_receiver_never_blocks_notify_and_the_queue_keeps_the_newest() {
    // The first request is answered after a while; the queue holds 8.
    let server = TestServer::start(|i| {
        if i == 0 {
            Reply::Slow(Duration::from_millis(1500), 200)
        } else {
            Reply::Status(200)
        }
    });
    let options = WebhookOptions {
        queue_capacity: 8,
        ..fast()
    };
    let sink = WebhookNotifier::new(&server.url(), options).unwrap();
    sink.notify(sample(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(server.requests().len(), 1, "the first is in flight");
    // 19 more while it is: each notify is quick; the oldest 11 make room.
    let mut slowest = Duration::ZERO;
    for i in 1..20 {
        let t = Instant::now();
        sink.notify(sample(i));
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < suite::QUICK, "{slowest:?}");
    let s = sink.status();
    assert_eq!((s.dropped, s.pending), (11, 9), "{s}");
    assert!(s
        .last_error
        .unwrap()
        .message
        .contains("queue full (8 waiting): dropped the oldest"));
    let s = sink.flush(FLUSH);
    assert_eq!(
        (s.delivered, s.dropped, s.failed, s.pending),
        (9, 11, 0, 0),
        "{s}"
    );
    let got: Vec<Notification> = server.accepted().iter().map(|t| parse(t)).collect();
    let expected: Vec<Notification> = [0].into_iter().chain(12..20).map(sample).collect();
    assert_eq!(got, expected);
}

#[test]
fn flush_and_drop_are_bounded_when_the_receiver_hangs() {
    let server = TestServer::start(|_| Reply::Hang);
    let options = WebhookOptions {
        request_timeout: Duration::from_secs(60),
        ..fast()
    };
    let sink = WebhookNotifier::new(&server.url(), options).unwrap();
    suite::stays_quick_when_stuck(&sink, 100);
    let started = Instant::now();
    let s = sink.flush(Duration::from_millis(300));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(s.dropped + s.pending, 100, "{s}");
    assert!(s.pending >= 1);
    // Dropping abandons the request in flight at once.
    let started = Instant::now();
    drop(sink);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_urls_and_options_are_refused() {
    for url in ["ftp://example.com/x", "example.com/hook", "http://", "::"] {
        assert!(
            matches!(
                WebhookNotifier::new(url, fast()),
                Err(WebhookError::InvalidUrl { .. })
            ),
            "{url}"
        );
    }
    let zero = WebhookOptions {
        queue_capacity: 0,
        ..fast()
    };
    assert!(matches!(
        WebhookNotifier::new("http://127.0.0.1:9/", zero),
        Err(WebhookError::InvalidOptions(_))
    ));
}
