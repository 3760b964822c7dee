//! `fusebox run` end to end, as a user waits for it: the whole command from its input files,
//! with its peak memory, against the floor of merely parsing the same events file.
//!
//! Workload: `fusebox gen --customers RUN_CUSTOMERS --events RUN_EVENTS --seed 1` (default
//! 100,000 customers, 1,000,000 events, no quotas). Each repetition runs, interleaved, in
//! this order:
//! - `fusebox run --threads 1` and `--threads 2` (the default parallel executor),
//! - `fusebox run --executor sequential`,
//! - `taskset -c 0 fusebox run --threads 1`: the whole process on one core (skipped without
//!   `taskset`), since reading and writing overlap execution on threads of their own,
//! - the **floor**: read the same events file and parse every line into a `serde_json::Value`
//!   on a Rayon pool of 2 threads (in this process; nothing else).
//!
//! Reported: medians of wall time and peak RSS (each child's `ru_maxrss`, from `wait4`), the
//! `execute` part the CLI prints, and the ratios the issue asks for — threads 2 ÷ threads 1
//! speed-up, wall ÷ floor. Then one run on RUN_BIG_EVENTS (default 10,000,000; `0` skips it)
//! for the memory bound: peak RSS at 10× the events ÷ peak RSS at 1×.
//!
//! Needs `target/release/fusebox` (`cargo build --release -p fusebox-cli`). Run:
//! `cargo bench --bench run_e2e` (env: RUN_EVENTS, RUN_CUSTOMERS, RUN_REPS, RUN_BIG_EVENTS,
//! RUN_DATA to keep generated inputs in a directory between runs).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/machine.rs"]
#[allow(dead_code)]
mod machine;
#[path = "common/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cli::{fusebox_binary, run_args};
use machine::CpuMeter;
use rayon::prelude::*;
use stats::median;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One finished child: wall seconds, peak RSS in kB, stdout.
struct Child {
    wall: f64,
    rss_kb: u64,
    stdout: String,
}

/// Runs `cmd` to its end; its own peak RSS from `wait4`.
// The child is reaped by `wait4` (std's `wait` would not give its rusage).
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Child {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let mut status = 0;
    // SAFETY: `rusage` is plain data; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(
        waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed ({status}): {stderr}"
    );
    Child {
        wall,
        rss_kb: usage.ru_maxrss as u64,
        stdout,
    }
}

/// The `execute N ms` figure of a run's summary.
fn execute_ms(stdout: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("time: "))
        .and_then(|l| l.split("execute ").nth(1))
        .and_then(|l| l.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn gen(bin: &Path, dir: &Path, customers: u64, events: u64) -> PathBuf {
    let out = dir.join(format!("gen-{customers}-{events}"));
    if !out.join("events.jsonl").exists() {
        let status = Command::new(bin)
            .args(["gen", "--seed", "1", "--customers"])
            .arg(customers.to_string())
            .arg("--events")
            .arg(events.to_string())
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("gen");
        assert!(status.success());
    }
    out
}

fn run(bin: &Path, input: &Path, out: &Path, extra: &[&str]) -> Child {
    run_on(bin, input, out, extra, None)
}

/// [`run`], pinned to the given CPUs (`taskset -c`) when `cpus` is set.
fn run_on(bin: &Path, input: &Path, out: &Path, extra: &[&str], cpus: Option<&str>) -> Child {
    let _ = std::fs::remove_dir_all(out);
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    run_args(&mut cmd, input, out).args(extra);
    let child = measure(&mut cmd);
    let _ = std::fs::remove_dir_all(out);
    child
}

/// The floor: read the events file and parse every line with serde_json on 2 threads.
fn floor(pool: &rayon::ThreadPool, events: &Path) -> f64 {
    let started = Instant::now();
    let bytes = std::fs::read(events).expect("events file");
    let parsed = pool.install(|| {
        bytes
            .par_split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice::<serde_json::Value>(l).map_or(0, |_| 1))
            .sum::<u64>()
    });
    assert!(parsed > 0);
    started.elapsed().as_secs_f64()
}

fn main() {
    let Some(bin) = fusebox_binary() else {
        println!("run_e2e skipped: build target/release/fusebox first (cargo build --release -p fusebox-cli)");
        return;
    };
    let customers: u64 = env("RUN_CUSTOMERS", 100_000);
    let events: u64 = env("RUN_EVENTS", 1_000_000);
    let big: u64 = env("RUN_BIG_EVENTS", 10_000_000);
    let reps: usize = env("RUN_REPS", 3);
    let temp = tempfile::tempdir().expect("temp dir");
    let data = std::env::var_os("RUN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&data).expect("data dir");
    let input = gen(&bin, &data, customers, events);
    let out = temp.path().join("out");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");

    // `--threads` sets the executor's workers; reading and writing overlap execution on
    // threads of their own, so `--threads 1` still uses more than one core. The last
    // variant pins the whole process to one core: the one-core baseline.
    let pinned = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mut variants: Vec<(&str, &[&str], Option<&str>)> = vec![
        ("`--threads 1`", &["--threads", "1"], None),
        (
            "`--threads 2` (default executor)",
            &["--threads", "2"],
            None,
        ),
        (
            "`--executor sequential`",
            &["--executor", "sequential"],
            None,
        ),
    ];
    if pinned {
        variants.push((
            "`--threads 1` on one core (`taskset -c 0`)",
            &["--threads", "1"],
            Some("0"),
        ));
    }
    let mut runs: Vec<Vec<Child>> = variants.iter().map(|_| Vec::new()).collect();
    let mut floors = Vec::new();
    let cpu = CpuMeter::start();
    for _ in 0..reps {
        for (i, (_, extra, cpus)) in variants.iter().enumerate() {
            runs[i].push(run_on(&bin, &input, &out, extra, *cpus));
        }
        floors.push(floor(&pool, &input.join("events.jsonl")));
    }
    let floor_s = median(floors.clone());
    println!(
        "\n## `fusebox run` end to end: {events} events, {customers} customers (medians of {reps}, interleaved)"
    );
    println!("| command | wall s | execute ms | peak RSS MB | ÷ floor (wall) |");
    println!("|---|---|---|---|---|");
    let mut walls = Vec::new();
    for ((name, _, _), children) in variants.iter().zip(&runs) {
        let wall = median(children.iter().map(|c| c.wall).collect());
        let exec = median(children.iter().map(|c| execute_ms(&c.stdout)).collect());
        let rss = median(children.iter().map(|c| c.rss_kb).collect());
        walls.push(wall);
        println!(
            "| {name} | {wall:.2} | {exec:.0} | {:.0} | {:.2} |",
            rss as f64 / 1024.0,
            wall / floor_s
        );
    }
    println!("| floor: read + serde_json::Value per line, 2 threads | {floor_s:.2} | | | 1.00 |");
    if pinned {
        println!(
            "\ntwo cores (`--threads 2`) ÷ one core (`taskset -c 0 … --threads 1`) speed-up (wall): **{:.2}×**",
            walls[3] / walls[1]
        );
    }
    println!(
        "threads 2 ÷ threads 1 speed-up (wall): **{:.2}×**; all walls: t1 {:?}, t2 {:?}, floor {:?}",
        walls[0] / walls[1],
        runs[0].iter().map(|c| (c.wall * 100.0).round() / 100.0).collect::<Vec<_>>(),
        runs[1].iter().map(|c| (c.wall * 100.0).round() / 100.0).collect::<Vec<_>>(),
        floors.iter().map(|w| (w * 100.0).round() / 100.0).collect::<Vec<_>>(),
    );
    cpu.report("the interleaved runs");

    if big > 0 {
        let big_input = gen(&bin, &data, customers, big);
        let small = run(&bin, &input, &out, &["--threads", "2"]);
        let large = run(&bin, &big_input, &out, &["--threads", "2"]);
        println!(
            "\n## Memory bound: peak RSS on {big} events ÷ on {events} events (`--threads 2`)"
        );
        println!(
            "{} kB ÷ {} kB = **{:.2}×** (walls {:.1} s and {:.1} s)",
            large.rss_kb,
            small.rss_kb,
            large.rss_kb as f64 / small.rss_kb as f64,
            large.wall,
            small.wall
        );
    }
}
