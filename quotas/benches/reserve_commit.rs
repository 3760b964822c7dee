//! Reserve + commit throughput per ledger backend.
//!
//! Workload: one operation = `reserve_handle(process, 1 record, 100 bytes,
//! at)` followed by `commit(1, 60)` — a grant plus a partial refund, the
//! full round trip an engine makes per event. Limits are large enough never
//! to be reached, the clock is fixed inside one quota day, and notifications
//! go to a `NullNotifier`. Throughput is in operations per second summed over
//! all threads ("elements" in criterion's output).
//!
//! * `memory/1t`, `memory/2t-distinct` (each thread its own process),
//!   `memory/2t-same` (both threads on one process: the contended worst case)
//! * `durable/1t`, `durable/2t-same` — `Durability::ProcessCrash` (a
//!   group-committed `write(2)` plus the 32-byte superblock mark `pwrite`
//!   per grant), file in a temp dir
//! * `durable-fsync/1t` — `Durability::PowerLoss` (an `fdatasync` per group)
//! * `redis/1t`, `redis/4t` — one Lua round trip per reserve and per refund,
//!   4 client threads in parallel; needs `redis-server` on the PATH (started
//!   on a free 127.0.0.1 port, skipped with a notice otherwise)
//! * `durable-batched/batch64`, `durable-fsync-batched/batch64`,
//!   `redis-batched/batch64` — one
//!   thread, 64 operations per `reserve_many` + `commit_many` (one group
//!   commit, or one pipelined round trip, per 64 reserves and per 64 refunds)
//!
//! Run: `cargo bench -p fusebox-quotas --bench reserve_commit` (redis cases need
//! `redis-server` on the PATH).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fusebox_quotas::{
    Durability, DurableLedger, DurableOptions, Ledger, MemoryLedger, NullNotifier, QuotaConfig,
    Quotas, RedisLedger, RedisOptions, ReserveItem,
};

const CONFIG: &str = "\
default_time_zone: Europe/Berlin
processes:
  - id: p0
    owner: bench@example.com
    limits: { records: 281474976710655, bytes: 281474976710655 }
  - id: p1
    owner: bench@example.com
    limits: { records: 281474976710655, bytes: 281474976710655 }
";

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).expect("fixed instant")
}

fn quotas(ledger: Box<dyn Ledger>) -> Quotas {
    let cfg = QuotaConfig::from_yaml_str(CONFIG, "bench.yaml").expect("bench config");
    Quotas::new(cfg, ledger, Arc::new(NullNotifier)).expect("quotas")
}

/// Runs `iters` operations on each of `threads` threads (thread i on
/// process `processes[i % len]`) and returns the wall time.
fn run(q: &Quotas, threads: usize, processes: &[&str], iters: u64) -> Duration {
    let handles: Vec<_> = processes
        .iter()
        .map(|p| q.process_handle(p).expect("process"))
        .collect();
    let t = at();
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..threads {
            let h = handles[i % handles.len()];
            s.spawn(move || {
                for _ in 0..iters {
                    let r = q.reserve_handle(h, 1, 100, t).expect("never exhausted");
                    std::hint::black_box(r.commit(1, 60));
                }
            });
        }
    });
    start.elapsed()
}

/// Like [`run`] on one thread, but in batches of `batch` through
/// `reserve_many` + `commit_many` (one round trip / group commit each).
fn run_batched(q: &Quotas, batch: usize, iters: u64) -> Duration {
    let h = q.process_handle("p0").expect("process");
    let item = ReserveItem {
        process: h,
        records: 1,
        bytes: 100,
        at: at(),
    };
    let items = vec![item; batch];
    let start = Instant::now();
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(batch);
        let granted: Vec<_> = q
            .reserve_many(&items[..n])
            .into_iter()
            .map(|r| (r.expect("never exhausted"), 1, 60))
            .collect();
        std::hint::black_box(q.commit_many(granted));
        left -= n;
    }
    start.elapsed()
}

fn bench_batched(c: &mut Criterion, group: &str, q: &Quotas, batch: usize) {
    // Criterion drops a second group of the same name silently.
    let mut g = c.benchmark_group(format!("{group}-batched"));
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter(format!("batch{batch}")), |b| {
        b.iter_custom(|iters| run_batched(q, batch, iters))
    });
    g.finish();
}

fn bench_backend(c: &mut Criterion, group: &str, q: &Quotas, cases: &[(&str, usize, &[&str])]) {
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, threads, processes) in cases {
        g.throughput(Throughput::Elements(*threads as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| run(q, *threads, processes, iters))
        });
    }
    g.finish();
}

fn memory(c: &mut Criterion) {
    let q = quotas(Box::new(MemoryLedger::new()));
    bench_backend(
        c,
        "memory",
        &q,
        &[
            ("1t", 1, &["p0"]),
            ("2t-distinct", 2, &["p0", "p1"]),
            ("2t-same", 2, &["p0"]),
        ],
    );
}

fn durable(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = quotas(Box::new(
        DurableLedger::open(dir.path().join("bench.ledger")).expect("ledger"),
    ));
    bench_backend(
        c,
        "durable",
        &q,
        &[("1t", 1, &["p0"]), ("2t-same", 2, &["p0"])],
    );
    bench_batched(c, "durable", &q, 64);
    drop(q);
    let opts = DurableOptions {
        durability: Durability::PowerLoss,
        ..DurableOptions::default()
    };
    let q = quotas(Box::new(
        DurableLedger::open_with(dir.path().join("fsync.ledger"), opts).expect("ledger"),
    ));
    bench_backend(c, "durable-fsync", &q, &[("1t", 1, &["p0"])]);
    bench_batched(c, "durable-fsync", &q, 64);
}

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<Server> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn redis(c: &mut Criterion) {
    let Some(server) = start_redis() else {
        eprintln!("NOTICE: redis-server not available; skipping the Redis benchmarks");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/0", server.1);
    let ledger = RedisLedger::connect(&url, RedisOptions::default()).expect("redis ledger");
    let q = quotas(Box::new(ledger));
    bench_backend(
        c,
        "redis",
        &q,
        &[("1t", 1, &["p0"]), ("4t", 4, &["p0", "p1"])],
    );
    bench_batched(c, "redis", &q, 64);
}

criterion_group!(benches, memory, durable, redis);
criterion_main!(benches);
