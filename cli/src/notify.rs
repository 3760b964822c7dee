//! Owner notifications in `fusebox run`: where they go during the run and what the run says
//! about them at the end.
//!
//! Every notification goes, in the order they happen, to
//! 1. a collector, for the summary line (`notifications to owners: exhausted 30, …`);
//! 2. `DIR/notifications.jsonl` ([`JsonlNotifier`]): one JSON line per notification, written
//!    and flushed as it happens, so a long run can be followed with `tail -f`. Unlike the
//!    other outputs it is a log, not an atomically replaced file: a run killed midway leaves
//!    the lines of the notifications sent so far (each a transition the ledger recorded);
//! 3. with `--notify-webhook URL`, the webhook ([`WebhookNotifier`]): POSTed from a
//!    background thread, retried with backoff; the engine never waits for it.
//!
//! The file can only be opened once the output directory exists, which is after every input
//! is validated (a bad input creates nothing) but after the quota manager was built with its
//! notifier; so the file sink is a slot filled by [`RunNotifier::open_file`]. Nothing
//! notifies before the run starts; should anything, it is kept and written first.
//!
//! At the end ([`RunNotifier::finish`]): the file is synced, and a failed write fails the run
//! (exit 1) as for any output; the webhook is flushed for at most `--notify-timeout` and its
//! tally printed. Webhook failures do not fail the run: they are counted in that line (and
//! every notification is in `notifications.jsonl` anyway).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::anyhow;
use fusebox_quotas::{
    CollectingNotifier, DeliveryStatus, Fanout, JsonlNotifier, Notification, Notifier,
    WebhookNotifier, WebhookOptions,
};

use crate::Failure;

/// The file every run's notifications are written to, in `--out`.
pub const FILE: &str = "notifications.jsonl";

/// `--notify-webhook URL` and `--notify-timeout SECONDS`.
#[derive(Clone, Debug)]
pub struct WebhookSetup {
    /// The validated URL.
    pub url: String,
    /// How long the end of the run waits for deliveries.
    pub timeout: Duration,
}

/// The default of `--notify-timeout`.
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// Validates `--notify-webhook` while the arguments are parsed (a bad URL: exit 2, nothing
/// run).
pub fn parse_webhook_url(text: &str) -> Result<String, String> {
    fusebox_quotas::notify::webhook::parse_url(text)
        .map(|u| u.to_string())
        .map_err(|e| e.to_string())
}

/// Validates `--notify-timeout`: a positive number of seconds; one too large to represent
/// waits without limit.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err("must be a positive number of seconds".into());
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The notifier of one run and the sinks behind it.
pub struct RunNotifier {
    fanout: Arc<Fanout>,
    collected: Arc<CollectingNotifier>,
    file: Arc<FileSlot>,
    webhook: Option<(Arc<WebhookNotifier>, Duration)>,
}

impl RunNotifier {
    /// The sinks of a run; starts the webhook's delivery thread.
    pub fn new(webhook: Option<&WebhookSetup>) -> Result<RunNotifier, Failure> {
        let collected = Arc::new(CollectingNotifier::new());
        let file = Arc::new(FileSlot::default());
        let mut fanout = Fanout::new().with(collected.clone()).with(file.clone());
        let webhook = match webhook {
            Some(w) => {
                let options = WebhookOptions {
                    // A notification is settled (delivered or failed) within the wait at the
                    // end, when it is not queued behind others.
                    max_elapsed: w.timeout.min(WebhookOptions::default().max_elapsed),
                    ..WebhookOptions::default()
                };
                let sink = WebhookNotifier::new(&w.url, options)
                    .map_err(|e| Failure::Input(anyhow!(e).context("--notify-webhook")))?;
                let sink = Arc::new(sink);
                fanout.push(sink.clone());
                Some((sink, w.timeout))
            }
            None => None,
        };
        Ok(RunNotifier {
            fanout: Arc::new(fanout),
            collected,
            file,
            webhook,
        })
    }

    /// What the quota manager notifies.
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        self.fanout.clone()
    }

    /// Creates (or empties) `out/notifications.jsonl` and starts writing to it.
    pub fn open_file(&self, out: &Path) -> Result<(), Failure> {
        let sink = JsonlNotifier::create(out.join(FILE)).map_err(|e| Failure::Runtime(e.into()))?;
        self.file.open(sink);
        Ok(())
    }

    /// The notifications so far, in order (drained).
    pub fn take(&self) -> Vec<Notification> {
        self.collected.take()
    }

    /// Ends the run's notifications: syncs the file (a failed write is an error), then waits
    /// for the webhook (at most its timeout) and returns its tally.
    pub fn finish(&self) -> Result<Option<WebhookReport>, Failure> {
        self.file.finish()?;
        Ok(self.webhook.as_ref().map(|(sink, timeout)| WebhookReport {
            endpoint: sink.endpoint().to_string(),
            status: sink.flush(*timeout),
            timeout: *timeout,
        }))
    }
}

/// How the webhook did, at the end of a run.
pub struct WebhookReport {
    /// `scheme://host[:port]`.
    pub endpoint: String,
    /// The counts after the flush.
    pub status: DeliveryStatus,
    /// How long the flush could wait.
    pub timeout: Duration,
}

impl WebhookReport {
    /// Whether everything was delivered.
    pub fn complete(&self) -> bool {
        self.status.is_clean() && self.status.pending == 0
    }

    /// Prints the tally: on stdout, or (`quiet`) on stderr and only if something was not
    /// delivered.
    pub fn print(&self, quiet: bool) {
        let s = &self.status;
        let mut line = format!(
            "webhook {}: {} notifications delivered, {} failed",
            self.endpoint, s.delivered, s.failed
        );
        if s.dropped > 0 {
            line.push_str(&format!(", {} dropped (queue full)", s.dropped));
        }
        if s.pending > 0 {
            line.push_str(&format!(
                ", {} not delivered within {:.0?} (abandoned)",
                s.pending, self.timeout
            ));
        }
        if s.retries > 0 {
            line.push_str(&format!("; {} retries", s.retries));
        }
        if !self.complete() {
            if let Some(e) = &s.last_error {
                line.push_str(&format!("; last error: {}", e.message));
            }
            line.push_str(&format!(" (all are in {FILE})"));
        }
        if !quiet {
            println!("{line}");
        } else if !self.complete() {
            eprintln!("warning: {line}");
        }
    }
}

/// `notifications.jsonl` once the output directory exists; until then, what arrives is kept.
#[derive(Default)]
struct FileSlot {
    state: Mutex<Slot>,
}

#[derive(Default)]
enum Slot {
    #[default]
    Closed,
    Waiting(Vec<Notification>),
    Open(JsonlNotifier),
}

impl FileSlot {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every update replaces the whole state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, sink: JsonlNotifier) {
        let mut slot = self.lock();
        if let Slot::Waiting(early) = std::mem::take(&mut *slot) {
            for n in early {
                sink.notify(n);
            }
        }
        *slot = Slot::Open(sink);
    }

    fn finish(&self) -> Result<(), Failure> {
        let slot = self.lock();
        let Slot::Open(sink) = &*slot else {
            return Ok(());
        };
        let status = sink.status();
        if let Some(e) = status.last_error.filter(|_| status.failed > 0) {
            return Err(Failure::Runtime(anyhow!(
                "{} of {} notifications could not be written to {}: {}",
                status.failed,
                status.failed + status.delivered,
                sink.path().display(),
                e.message
            )));
        }
        sink.sync()
            .map_err(|e| Failure::Runtime(anyhow!("cannot write {}: {e}", sink.path().display())))
    }
}

impl Notifier for FileSlot {
    fn notify(&self, n: Notification) {
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Open(sink) => sink.notify(n),
            Slot::Waiting(early) => early.push(n),
            Slot::Closed => *slot = Slot::Waiting(vec![n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("1e30"), Ok(Duration::MAX));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert!(parse_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        for bad in ["ftp://x/y", "127.0.0.1:8080", "http://"] {
            assert!(parse_webhook_url(bad).is_err(), "{bad}");
        }
    }
}
