//! A tiny HTTP/1.1 server on `127.0.0.1:0` for the webhook tests: it answers
//! each request as a script says (by arrival number) and records every
//! request — when, its headers and body, and the status it got.
//!
//! One request per connection (`Connection: close`), a thread per connection;
//! hanging replies hold the connection open until the server is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// This status, with a short body.
    Status(u16),
    /// Wait this long, then answer this status.
    Slow(Duration, u16),
    /// Read the request and never answer.
    Hang,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Arrival time.
    pub at: Instant,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What it was answered (`None`: left hanging).
    pub status: Option<u16>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Script = dyn Fn(usize) -> Reply + Send + Sync;

pub struct TestServer {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server answering request `i` (0-based, in arrival order) with `script(i)`.
    pub fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut handlers = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (requests, stop, script) = (requests.clone(), stop.clone(), script.clone());
                    handlers.push(std::thread::spawn(move || {
                        handle(stream, &requests, &stop, &*script)
                    }));
                }
                for h in handlers {
                    let _ = h.join();
                }
            })
        };
        TestServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Always answers `status`.
    pub fn always(status: u16) -> TestServer {
        TestServer::start(move |_| Reply::Status(status))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/owners?token=secret", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Bodies of the requests answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .map(Request::text)
            .collect()
    }

    /// Waits until at least `n` requests were answered 2xx (or `timeout`).
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.accepted();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(stream: TcpStream, requests: &Mutex<Vec<Request>>, stop: &AtomicBool, script: &Script) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut headers = Vec::new();
    let mut first = true;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return, // closed before a whole request (e.g. the wake-up)
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if first {
            first = false;
            continue; // the request line
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let at = Instant::now();
    let (index, reply) = {
        let mut all = requests.lock().unwrap();
        let index = all.len();
        let reply = script(index);
        all.push(Request {
            at,
            headers,
            body,
            status: match reply {
                Reply::Status(s) | Reply::Slow(_, s) => Some(s),
                Reply::Hang => None,
            },
        });
        (index, reply)
    };
    let mut stream = stream;
    match reply {
        Reply::Status(code) | Reply::Slow(_, code) => {
            if let Reply::Slow(wait, _) = reply {
                std::thread::sleep(wait);
            }
            let text = format!("answer {index}: {code}");
            let _ = write!(
                stream,
                "HTTP/1.1 {code} Scripted\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.flush();
        }
        Reply::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
