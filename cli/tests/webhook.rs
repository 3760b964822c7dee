//! `fusebox run --quotas … --notify-webhook URL` against a real HTTP server on loopback: the
//! owners' notifications reach it exactly once each despite failed attempts, match
//! `notifications.jsonl`, and the run says how the deliveries went; a bad URL is a usage
//! error before any work; an unreachable receiver does not fail the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value as Json;

mod common;
use common::{assert_exit, fusebox, gen, jsonl, ok};

/// A loopback HTTP server answering request `i` with `status(i)`; records (status, body).
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<(u16, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(status: fn(usize) -> u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        answer(stream, &seen, status);
                    }
                }
            })
        };
        Receiver {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/owners/T0KEN", self.port)
    }

    fn accepted(&self) -> Vec<Json> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (one per connection) and answers it.
fn answer(stream: TcpStream, seen: &Mutex<Vec<(u16, String)>>, status: fn(usize) -> u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let code = {
        let mut seen = seen.lock().unwrap();
        let code = status(seen.len());
        seen.push((code, String::from_utf8_lossy(&body).into_owned()));
        code
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn run_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--customers".into(),
        input.join("customers.parquet").display().to_string(),
        "--events".into(),
        input.join("events.jsonl").display().to_string(),
        "--triggers".into(),
        input.join("triggers.yaml").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quotas".into(),
        input.join("quotas.yaml").display().to_string(),
        "--executor".into(),
        "sequential".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn run_posts_every_notification_once_despite_failed_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 4);
    // The first two requests fail with 500; the retries get through.
    let receiver = Receiver::start(|i| if i < 2 { 500 } else { 200 });
    let out = dir.path().join("out");
    let url = receiver.url();
    let output = ok(&strs(&run_args(
        &input,
        &out,
        &["--notify-webhook", &url, "--notify-timeout", "20"],
    )));
    let stdout = String::from_utf8_lossy(&output.stdout);

    let written = jsonl(&out.join("notifications.jsonl"));
    assert!(!written.is_empty(), "the runaway sync notifies its owner");
    // Every notification of the file reached the receiver, once, in order.
    assert_eq!(receiver.accepted(), written);
    assert_eq!(receiver.requests(), written.len() + 2);
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    assert!(
        stdout.contains(&format!(
            "webhook {endpoint}: {} notifications delivered, 0 failed; 2 retries\n",
            written.len()
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("T0KEN"),
        "the URL's path is not printed: {stdout}"
    );
    // The summary still counts them, and the line shapes are the general ones.
    assert!(
        stdout.contains(&format!("{} notifications to owners", written.len())),
        "{stdout}"
    );
    assert!(written
        .iter()
        .all(|n| n["subject"]["type"] == "process" && n["figures"]["quota_day"].is_string()));
}

#[test]
fn a_bad_webhook_url_is_a_usage_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 20, 200, 1);
    let out = dir.path().join("out");
    for url in ["ftp://example.com/hook", "example.com/hook", "http://"] {
        let r = fusebox(&strs(&run_args(&input, &out, &["--notify-webhook", url])));
        assert_exit(&r, 2);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains("invalid webhook URL"), "{url}: {stderr}");
        assert!(!out.exists(), "nothing was run or written");
    }
    // It needs --quotas (the owners' notifications come from quotas).
    let r = fusebox(&[
        "run",
        "--customers",
        input.join("customers.parquet").to_str().unwrap(),
        "--events",
        input.join("events.jsonl").to_str().unwrap(),
        "--triggers",
        input.join("triggers.yaml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--notify-webhook",
        "http://127.0.0.1:9/hook",
    ]);
    assert_exit(&r, 2);
    let r = fusebox(&strs(&run_args(
        &input,
        &out,
        &[
            "--notify-webhook",
            "http://127.0.0.1:9/",
            "--notify-timeout",
            "0",
        ],
    )));
    assert_exit(&r, 2);
    assert!(!out.exists());
}

#[test]
fn an_unreachable_webhook_does_not_fail_the_run_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 4);
    // A port nobody listens on any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = dir.path().join("out");
    let url = format!("http://127.0.0.1:{port}/hook");
    let output = ok(&strs(&run_args(
        &input,
        &out,
        &["--notify-webhook", &url, "--notify-timeout", "2", "--quiet"],
    )));
    let written = jsonl(&out.join("notifications.jsonl"));
    assert!(written.len() > 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("warning: webhook"))
        .unwrap_or_else(|| panic!("a warning line: {stderr}"));
    assert!(
        line.starts_with(&format!(
            "warning: webhook http://127.0.0.1:{port}: 0 notifications delivered, "
        )),
        "{line}"
    );
    // Within 2 s the first is given up or still retrying; the rest wait behind it.
    assert!(
        line.contains("not delivered within 2s (abandoned)"),
        "{line}"
    );
    assert!(line.contains("(all are in notifications.jsonl)"), "{line}");
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "--quiet"
    );
}
