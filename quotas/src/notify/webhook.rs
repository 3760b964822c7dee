//! [`WebhookNotifier`]: each notification POSTed as JSON to an HTTP(S)
//! endpoint from a background thread, with retries (feature `webhook`).
//!
//! ## Design
//!
//! `notify` appends the notification to a bounded in-memory queue and
//! returns; it takes one short mutex and never touches the network. A
//! dedicated thread (`fusebox-webhook`) owns a small current-thread tokio
//! runtime and an async `reqwest` client and delivers the queue **one
//! notification at a time, in order**: a POST of the [`Notification`] JSON
//! object with `Content-Type: application/json`, an `Idempotency-Key` (a hash
//! of the body, the same on every attempt) and `X-Fusebox-Attempt` (1, 2, …).
//!
//! * **Success** is any 2xx answer. Redirects are not followed (a 3xx is a
//!   refusal: point the URL at the final address).
//! * **Retried**: connection errors, timeouts, 408, 425, 429 and 5xx. The
//!   wait before attempt *k + 1* is drawn uniformly from
//!   `[b/2, b]` with `b = min(initial_backoff · 2^(k−1), max_backoff)`
//!   (exponential backoff with "equal jitter": always growing, never in
//!   lockstep with other senders); a `Retry-After: <seconds>` answer
//!   lengthens it, up to `max_backoff`.
//! * **Given up** after `max_attempts`, when the next wait would end past
//!   `max_elapsed` since the first attempt, or at once on any other answer
//!   (4xx: the receiver refused this body; retrying would not change it).
//!   A given-up notification counts as `failed`, with the last error.
//! * **Queue full** (`queue_capacity` waiting): the **oldest** waiting
//!   notification is dropped to make room, counted as `dropped` with its
//!   kind and subject as the last error. The newest are kept because they
//!   carry the current state (a process stopped *now*).
//!
//! ## Invariants
//!
//! * `notify` never blocks on the network, the receiver or the retries
//!   (the queue mutex is held for a push or a pop, nothing else).
//! * Every accepted notification is in exactly one of delivered, failed,
//!   dropped or pending ([`WebhookNotifier::status`]); failures are also
//!   logged (`tracing`, target `fusebox_quotas::notify`: a warning at the
//!   1st, 2nd, 4th, 8th … loss, the rest and every retry at debug level).
//! * Order: a notification is attempted only after every earlier one was
//!   delivered, failed or dropped.
//! * At-least-once: an answer lost after the receiver acted makes it see the
//!   body again, with the same `Idempotency-Key`.
//! * [`WebhookNotifier::flush`] waits, up to its timeout, until nothing is
//!   pending; dropping the notifier stops the thread promptly (an attempt in
//!   flight is abandoned) and logs how many notifications were left
//!   undelivered, so flush first at shutdown.
//! * The URL's secret parts (credentials, path, query — webhook URLs often
//!   carry their token in the path) appear in no message: errors and
//!   [`WebhookNotifier::endpoint`] name only scheme, host and port.

use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;
use tokio::sync::watch;

use super::{Counters, DeliveryStatus, Notification, NotificationKind, Notifier, Subject};

/// Most of an error answer's body kept for the error message.
const BODY_SNIPPET: usize = 200;
/// Most of an answer's body read (and thrown away) to reuse the connection.
const BODY_DRAIN: usize = 64 * 1024;

/// How a [`WebhookNotifier`] queues and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Notifications waiting at most (≥ 1); past it the oldest is dropped.
    pub queue_capacity: usize,
    /// Attempts per notification at most (≥ 1), the first included.
    pub max_attempts: u32,
    /// Time per notification at most, from its first attempt: no retry
    /// starts after it.
    pub max_elapsed: Duration,
    /// The first backoff (the jitter draws from half of it to all of it).
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// One request at most, from connecting to the end of the answer.
    pub request_timeout: Duration,
    /// Connecting at most.
    pub connect_timeout: Duration,
}

impl Default for WebhookOptions {
    /// 1024 queued; 8 attempts within 60 s; backoff from 200 ms, at most
    /// 10 s; 10 s per request, 5 s to connect.
    fn default() -> WebhookOptions {
        WebhookOptions {
            queue_capacity: 1024,
            max_attempts: 8,
            max_elapsed: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Setting up a [`WebhookNotifier`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL cannot be used.
    #[error("invalid webhook URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (or its endpoint, when it parsed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An option is out of range.
    #[error("invalid webhook options: {0}")]
    InvalidOptions(String),
    /// The HTTP client could not be built (e.g. TLS roots).
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The runtime or the thread could not be started.
    #[error("cannot start the webhook thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Checks a webhook URL: absolute, `http` or `https`, with a host. For
/// command-line parsing before any work is done.
pub fn parse_url(text: &str) -> Result<Url, WebhookError> {
    let invalid = |reason: &str| WebhookError::InvalidUrl {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text.trim()).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(&format!(
            "scheme `{}` is not supported; use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(url)
}

/// `scheme://host[:port]` of a URL: safe to print.
fn endpoint_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    // IPv6 hosts come bracketed: `[::1]`.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Posts each notification to an HTTP(S) endpoint from a background thread.
/// See the [module documentation](self) for the queue, retry and order rules.
pub struct WebhookNotifier {
    shared: Arc<Shared>,
    endpoint: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when an item is queued or the notifier closes.
    work: Condvar,
    /// Signalled when the queue empties with nothing in flight.
    idle: Condvar,
    counters: Counters,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Notification>,
    in_flight: bool,
    closed: bool,
}

impl Queue {
    fn pending(&self) -> u64 {
        self.items.len() as u64 + u64::from(self.in_flight)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Each critical section is a push, a pop or a flag update.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("endpoint", &self.endpoint)
            .field("status", &self.status())
            .finish()
    }
}

impl WebhookNotifier {
    /// Validates `url` and `options`, builds the client and starts the
    /// delivery thread.
    pub fn new(url: &str, options: WebhookOptions) -> Result<WebhookNotifier, WebhookError> {
        let url = parse_url(url)?;
        if options.queue_capacity == 0 {
            return Err(WebhookError::InvalidOptions(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if options.max_attempts == 0 {
            return Err(WebhookError::InvalidOptions(
                "max_attempts must be at least 1".into(),
            ));
        }
        if options.request_timeout.is_zero() || options.connect_timeout.is_zero() {
            return Err(WebhookError::InvalidOptions(
                "request_timeout and connect_timeout must be positive".into(),
            ));
        }
        let mut client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fusebox/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&url) {
            // A proxy cannot reach this machine's loopback.
            client = client.no_proxy();
        }
        let client = client.build().map_err(WebhookError::Client)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(WebhookError::Thread)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
            counters: Counters::default(),
            capacity: options.queue_capacity,
        });
        let (stop, stopped) = watch::channel(false);
        let endpoint = endpoint_of(&url);
        let worker = Worker {
            shared: shared.clone(),
            client,
            url,
            endpoint: endpoint.clone(),
            options,
            stopped,
            jitter: Jitter::new(),
        };
        let thread = std::thread::Builder::new()
            .name("fusebox-webhook".into())
            .spawn(move || worker.run(runtime))
            .map_err(WebhookError::Thread)?;
        Ok(WebhookNotifier {
            shared,
            endpoint,
            stop,
            thread: Some(thread),
        })
    }

    /// Where notifications go, as `scheme://host[:port]` (no path, query or
    /// credentials: safe to print).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Delivered, failed, dropped and pending counts, retries, and the last
    /// error with its time.
    pub fn status(&self) -> DeliveryStatus {
        let pending = self.shared.lock().pending();
        self.shared.counters.snapshot(pending)
    }

    /// Waits until nothing is pending (every notification delivered, given
    /// up or dropped) or `timeout` passed, and returns the status then:
    /// `pending > 0` means the timeout came first. Retries go on during the
    /// wait; notifications may still be queued by other threads meanwhile.
    pub fn flush(&self, timeout: Duration) -> DeliveryStatus {
        let deadline = Instant::now().checked_add(timeout);
        let mut q = self.shared.lock();
        while q.pending() > 0 {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break,
                },
                // A timeout too long to represent: wait in long steps.
                None => Duration::from_secs(3600),
            };
            q = self
                .shared
                .idle
                .wait_timeout(q, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let pending = q.pending();
        drop(q);
        self.shared.counters.snapshot(pending)
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, n: Notification) {
        let mut q = self.shared.lock();
        if q.closed {
            drop(q);
            return self.shared.counters.dropped(&QueueFailure::Closed {
                kind: n.kind,
                subject: n.subject,
            });
        }
        let evicted = if q.items.len() >= self.shared.capacity {
            q.items.pop_front()
        } else {
            None
        };
        q.items.push_back(n);
        drop(q);
        self.shared.work.notify_one();
        if let Some(old) = evicted {
            self.shared.counters.dropped(&QueueFailure::Full {
                capacity: self.shared.capacity,
                kind: old.kind,
                subject: old.subject,
            });
        }
    }

    fn delivery(&self) -> Option<DeliveryStatus> {
        Some(self.status())
    }
}

impl Drop for WebhookNotifier {
    fn drop(&mut self) {
        let left = {
            let mut q = self.shared.lock();
            q.closed = true;
            q.pending()
        };
        if left > 0 {
            tracing::warn!(
                endpoint = %self.endpoint,
                left,
                "webhook notifier dropped with undelivered notifications (flush first)"
            );
        }
        // Ends a request or a backoff in flight, then the thread.
        let _ = self.stop.send(true);
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Why the queue did not take or keep a notification.
#[derive(Debug, thiserror::Error)]
enum QueueFailure {
    #[error("webhook queue full ({capacity} waiting): dropped the oldest, {kind} for {subject}")]
    Full {
        capacity: usize,
        kind: NotificationKind,
        subject: Subject,
    },
    #[error("webhook notifier closed: {kind} for {subject} dropped")]
    Closed {
        kind: NotificationKind,
        subject: Subject,
    },
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("{endpoint} answered HTTP {code}{}", snippet(body))]
    Status {
        endpoint: String,
        code: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("{endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    #[error("cannot serialize the notification: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn snippet(body: &str) -> String {
    if body.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", body.trim())
    }
}

impl AttemptError {
    fn retryable(&self) -> bool {
        match self {
            AttemptError::Status { code, .. } => {
                matches!(code, 408 | 425 | 429) || (500..=599).contains(code)
            }
            AttemptError::Transport { .. } => true,
            AttemptError::Serialize(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A notification given up on.
#[derive(Debug, thiserror::Error)]
#[error("gave up on {kind} for {subject} after {attempts} attempt(s) in {elapsed_ms} ms: {last}")]
struct GaveUp {
    kind: NotificationKind,
    subject: Subject,
    attempts: u32,
    elapsed_ms: u128,
    last: AttemptError,
}

/// An attempt that failed and will be retried.
#[derive(Debug, thiserror::Error)]
#[error("attempt {attempt} of {kind} for {subject} failed, retrying in {wait_ms} ms: {error}")]
struct Retrying<'a> {
    attempt: u32,
    kind: NotificationKind,
    subject: &'a Subject,
    wait_ms: u128,
    error: &'a AttemptError,
}

enum Outcome {
    Delivered,
    Failed(GaveUp),
    /// The notifier is being dropped.
    Abandoned,
}

/// The delivery thread's state.
struct Worker {
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: Url,
    endpoint: String,
    options: WebhookOptions,
    stopped: watch::Receiver<bool>,
    jitter: Jitter,
}

impl Worker {
    fn run(mut self, runtime: tokio::runtime::Runtime) {
        while let Some(n) = self.next() {
            let outcome = runtime.block_on(self.deliver(&n));
            match outcome {
                Outcome::Delivered => self.shared.counters.delivered(),
                Outcome::Failed(why) => self.shared.counters.failed(&why),
                Outcome::Abandoned => {}
            }
            let mut q = self.shared.lock();
            q.in_flight = false;
            if q.items.is_empty() {
                self.shared.idle.notify_all();
            }
        }
        // A lookup on the blocking pool must not hold the thread's exit.
        runtime.shutdown_background();
    }

    /// The next notification, marked in flight; `None` once closed.
    fn next(&self) -> Option<Notification> {
        let mut q = self.shared.lock();
        loop {
            if q.closed {
                return None;
            }
            if let Some(n) = q.items.pop_front() {
                q.in_flight = true;
                return Some(n);
            }
            q = self.shared.work.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    async fn deliver(&mut self, n: &Notification) -> Outcome {
        let started = Instant::now();
        let gave_up = |attempts: u32, last: AttemptError| {
            Outcome::Failed(GaveUp {
                kind: n.kind,
                subject: n.subject.clone(),
                attempts,
                elapsed_ms: started.elapsed().as_millis(),
                last,
            })
        };
        let body = match serde_json::to_vec(n) {
            Ok(body) => body,
            Err(e) => return gave_up(0, AttemptError::Serialize(e)),
        };
        let key = idempotency_key(&body);
        let mut attempt: u32 = 1;
        loop {
            let mut stopped = self.stopped.clone();
            let result = tokio::select! {
                r = self.attempt(&body, &key, attempt) => r,
                _ = stopped.wait_for(|s| *s) => return Outcome::Abandoned,
            };
            let error = match result {
                Ok(()) => return Outcome::Delivered,
                Err(e) => e,
            };
            if !error.retryable() || attempt >= self.options.max_attempts {
                return gave_up(attempt, error);
            }
            let wait = self.backoff(attempt, error.retry_after());
            if started.elapsed().saturating_add(wait) > self.options.max_elapsed {
                return gave_up(attempt, error);
            }
            self.shared.counters.retried(&Retrying {
                attempt,
                kind: n.kind,
                subject: &n.subject,
                wait_ms: wait.as_millis(),
                error: &error,
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|s| *s) => return Outcome::Abandoned,
            }
            attempt += 1;
        }
    }

    async fn attempt(&self, body: &[u8], key: &str, attempt: u32) -> Result<(), AttemptError> {
        let transport = |e: reqwest::Error| AttemptError::Transport {
            endpoint: self.endpoint.clone(),
            message: error_chain(&e.without_url()),
        };
        let mut response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("idempotency-key", key)
            .header("x-fusebox-attempt", attempt.to_string())
            .body(body.to_vec())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read (a bounded part of) the answer: the connection can be reused,
        // and an error body explains the refusal.
        let mut text = Vec::new();
        let mut read = 0usize;
        while read < BODY_DRAIN {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if text.len() < BODY_SNIPPET {
                        let room = BODY_SNIPPET - text.len();
                        text.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                }
                Ok(None) => break,
                // The status is what counts; a cut body changes nothing.
                Err(_) => break,
            }
        }
        if status.is_success() {
            return Ok(());
        }
        Err(AttemptError::Status {
            endpoint: self.endpoint.clone(),
            code: status.as_u16(),
            retry_after,
            body: String::from_utf8_lossy(&text).into_owned(),
        })
    }

    /// The wait after failed attempt `attempt` (1-based): uniform in
    /// `[b/2, b]`, `b = min(initial · 2^(attempt−1), max)`, at least a
    /// `Retry-After` (itself at most `max`).
    fn backoff(&mut self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let cap = self
            .options
            .initial_backoff
            .saturating_mul(factor)
            .min(self.options.max_backoff);
        let half = cap / 2;
        let wait = half + (cap - half).mul_f64(self.jitter.unit());
        match retry_after {
            Some(r) => wait.max(r.min(self.options.max_backoff)),
            None => wait,
        }
    }
}

/// An error and its sources, `a: b: c` (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// FNV-1a (64 bit) of the body, as `fbx-<16 hex digits>`: the same for the
/// same notification on every attempt and in every process.
fn idempotency_key(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fbx-{h:016x}")
}

/// SplitMix64 seeded from the process's random hasher keys: jitter only, not
/// cryptography.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Jitter(h.finish())
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for bad in [
            "",
            "not a url",
            "ftp://example.com/hook",
            "file:///tmp/x",
            "http://",
            "mailto:a@b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let u = parse_url("https://user:pw@hooks.example.com:8443/services/SECRET?x=1").unwrap();
        assert_eq!(endpoint_of(&u), "https://hooks.example.com:8443");
        assert!(is_loopback(&parse_url("http://127.0.0.1:9/").unwrap()));
        assert!(is_loopback(&parse_url("http://[::1]:9/").unwrap()));
        assert!(is_loopback(&parse_url("http://LOCALHOST/").unwrap()));
        assert!(!is_loopback(&parse_url("http://10.0.0.1/").unwrap()));
    }

    #[test]
    fn backoff_grows_with_jitter_within_bounds() {
        let (stop, stopped) = watch::channel(false);
        let options = WebhookOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..WebhookOptions::default()
        };
        let mut w = Worker {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                work: Condvar::new(),
                idle: Condvar::new(),
                counters: Counters::default(),
                capacity: 1,
            }),
            client: reqwest::Client::new(),
            url: parse_url("http://127.0.0.1:9/").unwrap(),
            endpoint: String::new(),
            options,
            stopped,
            jitter: Jitter::new(),
        };
        for _ in 0..200 {
            for (attempt, cap) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1000),
                (40, 1000),
            ] {
                let b = w.backoff(attempt, None);
                let cap = Duration::from_millis(cap);
                assert!(b >= cap / 2 && b <= cap, "attempt {attempt}: {b:?}");
            }
            let b = w.backoff(1, Some(Duration::from_secs(5)));
            assert_eq!(b, Duration::from_millis(1000), "Retry-After is capped");
        }
        drop(stop);
    }

    #[test]
    fn idempotency_keys_are_stable() {
        assert_eq!(idempotency_key(b""), "fbx-cbf29ce484222325");
        assert_ne!(idempotency_key(b"a"), idempotency_key(b"b"));
    }

    #[test]
    fn options_are_checked() {
        let bad = |o: WebhookOptions| WebhookNotifier::new("http://127.0.0.1:9/", o).is_err();
        assert!(bad(WebhookOptions {
            queue_capacity: 0,
            ..WebhookOptions::default()
        }));
        assert!(bad(WebhookOptions {
            max_attempts: 0,
            ..WebhookOptions::default()
        }));
        assert!(bad(WebhookOptions {
            request_timeout: Duration::ZERO,
            ..WebhookOptions::default()
        }));
    }
}
