//! Runaway control, measured: what a runaway trigger costs the innocent triggers in the live
//! engine (submit-to-outcome latency at a fixed offered load, with the runaway absent,
//! ungoverned, throttled into the slow lane, and stopped), how soon the governor acts, and
//! the wall time of `fusebox run` with and without the runaway of `fusebox gen --runaway`.
//!
//! **Live workload.** The customer table and events of `common/workloads.rs` (100k
//! customers, `order.completed` one second of event time apart) and the innocent triggers
//! of the `live` bench (points + counters + a receipt; a coupon on ~26%; a tier upgrade). The
//! runaway (`rescan`) fires on every order and emits `page.rescan`, whose trigger emits it
//! again: a loop of 16 chained executions per event, cut at the chain depth limit each time.
//! Variants, each on a fresh engine with the parallel executor on 2 threads and tokio 2
//! workers, `budget_window` 10 s of event time (10 events):
//! - **absent**: the innocent triggers alone;
//! - **ungoverned**: plus the runaway, no budget;
//! - **throttled**: budget 1/5 of its demand, hard budget out of reach: throttled after the
//!   first window, its executions past the allowance deferred to the slow lane (25% share);
//! - **stopped**: budget 1/5, hard 2/5: throttled, then stopped after 3 windows.
//!
//! Open loop: `RUNAWAY_EVENTS` events (default 20000) issued at `RUNAWAY_RATE` per second
//! (default 5000), each submitted and awaited in its own task; latency from submit to answer
//! (the answer carries the innocent triggers' outcomes, so it is their latency). Variants
//! interleaved, `RUNAWAY_REPS` repetitions (default 3), medians. Time to throttle / stop:
//! wall time from the first submit to the owner's notification, and the events before it.
//!
//! **Batch.** `fusebox gen --customers 10000 --events RUNAWAY_GEN_EVENTS (default 200000)
//! --seed 1` with and without `--runaway` (same events), then `target/release/fusebox run`
//! on each, interleaved, `RUNAWAY_REPS` times: wall time of the whole command (build the
//! release binary first: `cargo build --release -p fusebox-cli`; the section is skipped if
//! it is missing).
//!
//! **Correctness (asserted).** Every event is answered and processed; the innocent triggers'
//! effects are the same with the runaway absent, throttled and stopped; the governor
//! notifications say what the variant expects.
//!
//! Run: `cargo bench --bench runaway`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fusebox::engine::config::compile_triggers;
use fusebox::engine::event::Event;
use fusebox::engine::live::{LiveConfig, LiveEngine};
use fusebox::engine::outcome::RecordStatus;
use fusebox::engine::state::State;
use fusebox::engine::{Engine, ExecutorKind};
use fusebox_quotas::notify::{Notification, NotificationKind, Notifier};

#[path = "common/workloads.rs"]
#[allow(dead_code)] // Only its customer table and event generator are used here.
mod workloads;

#[path = "common/stats.rs"]
mod stats;
use stats::median;

#[path = "common/machine.rs"]
#[allow(dead_code)]
mod machine;

#[path = "common/cli.rs"]
mod cli;
use cli::{fusebox_binary, run_args};

#[path = "common/open_loop.rs"]
#[allow(dead_code)] // `from_schedule` is only read by `live`.
mod open_loop;
use machine::{pct, vm_hwm_kb, CpuMeter};

#[path = "common/allocator.rs"]
mod allocator;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Settings and event types, then the `live` bench's triggers as the innocent ones.
const HEADER: &str =
    "settings: { budget_window: 10 }\nevent_types: [order.completed, page.rescan]\n";

/// The runaway pair; `BUDGET` is replaced by the variant's budget line (or nothing).
const RUNAWAY: &str = r#"
  - id: rescan
    owner: growth@x
    on: order.completed
BUDGET
    actions:
      - emit_event: { type: page.rescan, properties: { total: "event.properties.total" } }
  - id: rescan-loop
    owner: growth@x
    on: page.rescan
    condition: "event.properties.total > 0.0"
    actions:
      - emit_event: { type: page.rescan, properties: { total: "event.properties.total" } }
"#;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Absent,
    Ungoverned,
    Throttled,
    Stopped,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Absent,
        Variant::Ungoverned,
        Variant::Throttled,
        Variant::Stopped,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Absent => "absent",
            Variant::Ungoverned => "ungoverned",
            Variant::Throttled => "throttled (slow lane)",
            Variant::Stopped => "stopped",
        }
    }

    /// The triggers file: the loop costs ~250 fuel an event, 2,500 a window of 10 events.
    fn triggers(self) -> String {
        let budget = match self {
            Variant::Absent => return format!("{HEADER}{}", workloads::LIVE_TRIGGERS),
            Variant::Ungoverned => "",
            Variant::Throttled => "    budget: { fuel: 500, hard_fuel: 100000000 }",
            Variant::Stopped => "    budget: { fuel: 500, hard_fuel: 1000 }",
        };
        format!(
            "{HEADER}{}{}",
            workloads::LIVE_TRIGGERS,
            RUNAWAY.replace("BUDGET", budget)
        )
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records when each notification arrived.
#[derive(Default)]
struct Timed(Mutex<Vec<(Instant, Notification)>>);

impl Notifier for Timed {
    fn notify(&self, n: Notification) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Instant::now(), n));
    }
}

struct Run {
    latencies: Vec<u64>,
    /// Innocent triggers' effects (sorted keys), for the equality check.
    innocent_effects: Vec<String>,
    /// (kind, seconds after the first submit, events issued by then).
    transitions: Vec<(NotificationKind, f64, usize)>,
    secs: f64,
}

async fn open_loop(variant: Variant, events: &[Event], rate: f64) -> Run {
    let table = workloads::customers(100_000);
    let set = compile_triggers(&variant.triggers(), "runaway.yaml", Some(table.schema()))
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::builder(set)
        .executor(ExecutorKind::parallel(2))
        .build()
        .expect("engine");
    let state = State::new(table, engine.triggers());
    let notes = Arc::new(Timed::default());
    let live = LiveEngine::builder(engine, state)
        .notifier(notes.clone())
        .config(LiveConfig {
            max_delay: Duration::from_millis(1),
            ..LiveConfig::default()
        })
        .start()
        .expect("live engine");
    let mut slow = live.slow_lane_outcomes().expect("first taker");
    let start = Instant::now();
    let (answered, secs) = open_loop::run(&live, events, rate).await;
    let mut latencies = Vec::with_capacity(answered.len());
    let mut innocent_effects = Vec::new();
    for a in answered {
        assert!(matches!(
            a.answer.outcome.status,
            RecordStatus::Processed { .. }
        ));
        latencies.push(a.from_submit);
        innocent_effects.extend(
            a.answer
                .effects
                .iter()
                .filter(|e| !e.trigger.starts_with("rescan"))
                .map(|e| e.key.clone()),
        );
    }
    live.shutdown().await.expect("shutdown");
    while let Ok(s) = slow.try_recv() {
        innocent_effects.extend(
            s.effects
                .iter()
                .filter(|e| !e.trigger.starts_with("rescan"))
                .map(|e| e.key.clone()),
        );
    }
    innocent_effects.sort();
    latencies.sort_unstable();
    let transitions = notes
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, n)| n.subject.id() == "rescan")
        .map(|(at, n)| {
            let s = at.duration_since(start).as_secs_f64();
            (n.kind, s, ((s * rate) as usize).min(events.len()))
        })
        .collect();
    Run {
        latencies,
        innocent_effects,
        transitions,
        secs,
    }
}

fn live_section(rt: &tokio::runtime::Runtime, reps: usize) {
    let n: usize = env("RUNAWAY_EVENTS", 20_000).max(1_000);
    let rate: f64 = env("RUNAWAY_RATE", 5_000.0);
    let events: Vec<Event> = workloads::order_events(n, 100_000, 11)
        .into_iter()
        .map(|r| r.event.expect("generated"))
        .collect();
    println!("\n## Live: innocent triggers' latency with a runaway ({n} events at {rate} ev/s, open loop, medians of {reps})");
    let cpu = CpuMeter::start();
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut achieved: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut transitions: Vec<Vec<(NotificationKind, f64, usize)>> = vec![Vec::new(); 4];
    let mut reference: Option<Vec<String>> = None;
    for _ in 0..reps {
        for (k, v) in Variant::ALL.iter().enumerate() {
            let run = rt.block_on(open_loop(*v, &events, rate));
            assert_eq!(run.latencies.len(), n);
            if *v != Variant::Ungoverned {
                // Innocent work is the same whatever happens to the runaway.
                match &reference {
                    None => reference = Some(run.innocent_effects.clone()),
                    Some(r) => {
                        assert!(*r == run.innocent_effects, "{}: innocent effects", v.name())
                    }
                }
            }
            match v {
                Variant::Throttled => assert!(run
                    .transitions
                    .iter()
                    .any(|t| t.0 == NotificationKind::Throttled)),
                Variant::Stopped => assert!(run
                    .transitions
                    .iter()
                    .any(|t| t.0 == NotificationKind::Stopped)),
                _ => assert!(run.transitions.is_empty()),
            }
            p50[k].push(pct(&run.latencies, 50.0));
            p99[k].push(pct(&run.latencies, 99.0));
            achieved[k].push(n as f64 / run.secs);
            transitions[k] = run.transitions;
        }
    }
    println!("| runaway | p50 ms | p99 ms | p99 ÷ absent | achieved ev/s |");
    println!("|---|---|---|---|---|");
    let absent_p99 = median(p99[0].clone());
    for (k, v) in Variant::ALL.iter().enumerate() {
        let p = median(p99[k].clone());
        println!(
            "| {} | {:.3} | {:.3} | **{:.2}** | {:.0} |",
            v.name(),
            median(p50[k].clone()),
            p,
            p / absent_p99,
            median(achieved[k].clone())
        );
    }
    for (k, v) in Variant::ALL.iter().enumerate() {
        for (kind, s, events) in &transitions[k] {
            println!(
                "{}: `rescan` {kind:?} {:.0} ms after the first submit (~{events} events issued)",
                v.name(),
                s * 1e3
            );
        }
    }
    cpu.report("the live section");
}

fn batch_section(reps: usize) {
    let Some(bin) = fusebox_binary() else {
        println!("\n(batch section skipped: build target/release/fusebox first)");
        return;
    };
    let events: u64 = env("RUNAWAY_GEN_EVENTS", 200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let gen = |name: &str, runaway: bool| {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([
            "gen",
            "--customers",
            "10000",
            "--events",
            &events.to_string(),
            "--seed",
            "1",
            "--out",
        ])
        .arg(&out);
        if runaway {
            cmd.arg("--runaway");
        }
        assert!(cmd.output().expect("gen").status.success());
        out
    };
    let (plain, runaway) = (gen("plain", false), gen("runaway", true));
    let run = |input: &std::path::Path, out: &str| {
        let t = Instant::now();
        let o = run_args(
            &mut std::process::Command::new(&bin),
            input,
            &dir.path().join(out),
        )
        .arg("--quiet")
        .output()
        .expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t.elapsed().as_secs_f64()
    };
    let cpu = CpuMeter::start();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        a.push(run(&plain, "out-plain"));
        b.push(run(&runaway, "out-runaway"));
    }
    let (a, b) = (median(a), median(b));
    println!("\n## Batch: `fusebox run` on `fusebox gen --events {events}` with and without `--runaway` (medians of {reps}, interleaved)");
    println!("| triggers | wall s | ÷ without |");
    println!("|---|---|---|");
    println!("| without runaway | {a:.2} | 1.00 |");
    println!(
        "| with `--runaway` (throttled, deferred, stopped) | {b:.2} | **{:.2}** |",
        b / a
    );
    let report =
        std::fs::read_to_string(dir.path().join("out-runaway/report.json")).expect("report");
    let report: serde_json::Value = serde_json::from_str(&report).expect("json");
    for t in report["governor"].as_array().into_iter().flatten() {
        println!(
            "governor: {} {} after the window from {} ({} fuel, budget {})",
            t["trigger"], t["to"], t["window_start"], t["fuel_used"], t["budget"]
        );
    }
    cpu.report("the batch section");
}

fn main() {
    allocator::keep_freed_memory();
    let reps: usize = env("RUNAWAY_REPS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime");
    println!(
        "runaway bench: {reps} interleaved repetitions, executor parallel(2), tokio 2 workers"
    );
    live_section(&rt, reps);
    batch_section(reps);
    if let Some(kb) = vm_hwm_kb() {
        println!("\npeak RSS (VmHWM) of the bench process: {kb} kB");
    }
}
