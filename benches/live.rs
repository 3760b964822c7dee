//! The live engine (`fusebox::engine::live`) against `Engine::run_batch` on the same events:
//! sustained throughput, submit-to-outcome latency (closed and open loop) and peak RSS.
//!
//! **Workload.** The customer table and event generator of `common/workloads.rs`: customers
//! with `points`, `orders`, `spent`, `tier`, `name`; `order.completed` events with unique ids
//! (`e0`, `e1`, …), a uniform random customer and a `total` uniform in 5–405, from a fixed seed.
//! Two customer counts: **1k** (each customer has ~100 events per 100k: hot rows) and **100k**
//! (mostly disjoint rows). Trigger set ([`TRIGGERS`]), firing on every event:
//! - `points` (every event): `award_points`, `increment` of `orders` and `spent`, `increment`
//!   of two global counters (`orders_total`, float `revenue`), a receipt `send_message`;
//! - `promo` (`total > 300`, ~26% of events): `issue_coupon` from one shared pool and an sms;
//! - `tier` (priority 200, `points > 1500 && tier != 'gold'`): `set` of `tier`.
//!
//! Both sides run the parallel executor on 2 threads (`ExecutorKind::parallel(2)`), each run
//! on a fresh engine (its worker threads start inside the timed run, as a one-shot
//! `fusebox run` does) and a fresh copy of the state. The tokio runtime has 2 workers.
//!
//! **1. Sustained throughput** (closed loop, every event of the workload, interleaved sides,
//! medians): `run_batch` in one call; live with 256 submitter tasks each keeping one event in
//! flight (`submit().await`); live with 64 tasks each keeping a window of 64 events in flight
//! (`try_submit` + tickets, 4,096 in flight); each at `max_delay` 1 ms (the default) and 0,
//! `max_batch` 1024. Timed from the first submit to the last answer (engine start and shutdown
//! excluded). Ratio live ÷ run_batch; the mean batch size comes from `status()`.
//!
//! **2. Latency** (Instant before `submit` → answer, per event, in the submitter):
//! p50/p99/p99.9 for `max_delay` 0/1/5 ms × `max_batch` 64/1024 × customers 1k/100k ×
//! 1/16/256 closed-loop submitters; each setting runs until `LIVE_LAT_EVENTS` events or
//! `LIVE_LAT_SECS` seconds, after a 64-event warm-up. Then an **open loop** at half of the
//! best measured sustained live throughput: events issued at a fixed rate (a 1 ms tokio
//! interval issues every event due by then), each submitted and awaited in its own spawned
//! task; p99 from submit, and from the event's scheduled time (which also counts pacing lag).
//! Each open-loop run starts after a 2,000-event warm-up; `LIVE_OPEN_REPS` (default 3)
//! interleaved repetitions, reported as medians with the range of p99 (one stall of a few
//! tens of ms backs up enough events to move a single run's p99 by 4–8×).
//!
//! The process uses mimalloc with the `fusebox` CLI's purge delay (`common/allocator.rs`).
//!
//! **3. Peak RSS** of the bench process (`VmHWM`). After each section the bench prints where the
//! machine's CPU went meanwhile (this bench, other processes, idle; from `/proc/stat`): the
//! machine is shared, and a section measured while others were busy says so.
//!
//! **Correctness (asserted; no timing is).** Every submitted event is answered and processed;
//! with one submitter (a window of 64 over all events, and every 1-submitter latency run) the
//! live outcomes, effects and final state equal `run_batch`'s over the same events in the
//! same order; with many submitters the order-independent figures (effects count, the
//! `orders_total` counter, coupons issued) equal `run_batch`'s.
//!
//! Run: `cargo bench --bench live` (about 2 minutes after the build). Environment:
//! `LIVE_EVENTS` (events per throughput and open-loop run, default 100000), `LIVE_REPS`
//! (interleaved throughput repetitions, default 5), `LIVE_LAT_EVENTS` (per latency setting,
//! default 20000), `LIVE_LAT_SECS` (time cap per latency setting, default 2), `LIVE_ONLY`
//! (`throughput`, `latency` or `open`: that section alone), `LIVE_OPEN_REPS`, `LIVE_SUSTAINED` (`R1K,R100K`:
//! the sustained live throughput, events/s, the open loop halves when the throughput section
//! did not run).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use fusebox::engine::config::compile_triggers;
use fusebox::engine::event::{Event, EventRecord};
use fusebox::engine::live::{FinalReport, LiveConfig, LiveEngine, SubmitError, Submitted};
use fusebox::engine::outcome::{Effect, RecordOutcome, RecordStatus};
use fusebox::engine::state::State;
use fusebox::engine::{Engine, ExecutorKind, RunOptions};

#[path = "common/workloads.rs"]
#[allow(dead_code)] // Only its customer table and event generator are used here.
mod workloads;

#[path = "common/stats.rs"]
mod stats;

#[path = "common/machine.rs"]
mod machine;

#[path = "common/open_loop.rs"]
mod open_loop;

#[path = "common/allocator.rs"]
mod allocator;
use machine::{pct, vm_hwm_kb, CpuMeter};
use stats::median;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The trigger set (shared with the `runaway` bench as its innocent triggers).
const TRIGGERS: &str = workloads::LIVE_TRIGGERS;

/// Both sides' executor.
fn executor() -> ExecutorKind {
    ExecutorKind::parallel(2)
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One customer count: the engine (sequential executor; every run takes a fresh parallel one),
/// the initial state and the events.
struct Setup {
    name: &'static str,
    engine: Engine,
    state: State,
    events: Vec<Event>,
}

impl Setup {
    fn new(name: &'static str, customers: u64, events: usize) -> Setup {
        let table = workloads::customers(customers);
        let set = compile_triggers(TRIGGERS, "live.yaml", Some(table.schema()))
            .unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new(set).unwrap();
        let state = State::new(table, engine.triggers());
        let events = workloads::order_events(events, customers, 7)
            .into_iter()
            .map(|r| r.event.expect("generated events parse"))
            .collect();
        Setup {
            name,
            engine,
            state,
            events,
        }
    }

    fn fresh_engine(&self) -> Engine {
        self.engine.with_executor(executor())
    }
}

fn records(events: &[Event]) -> Vec<EventRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| EventRecord {
            line: i as u64 + 1,
            event: Ok(e.clone()),
        })
        .collect()
}

/// What a `run_batch` gives, for the checks.
struct Reference {
    ms: f64,
    outcomes: Vec<RecordOutcome>,
    effects: Vec<Effect>,
    state: State,
}

fn run_batch(setup: &Setup, records: &[EventRecord]) -> Reference {
    let mut state = setup.state.clone();
    let engine = setup.fresh_engine();
    let t = Instant::now();
    let r = engine
        .run_batch(&mut state, records, &RunOptions::default())
        .expect("run_batch");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Reference {
        ms,
        outcomes: r.outcomes,
        effects: r.effects,
        state,
    }
}

/// What one submitter saw.
#[derive(Default)]
struct SubmitterOut {
    answered: usize,
    effects: usize,
    /// Submit → answer, ns, one per answered event.
    latencies: Vec<u64>,
    /// The answers themselves, when asked to keep them.
    answers: Vec<Submitted>,
}

impl SubmitterOut {
    fn take(&mut self, started: Instant, answer: Result<Submitted, SubmitError>, keep: bool) {
        let answer = answer.unwrap_or_else(|e| panic!("an accepted event was not run: {e}"));
        self.latencies.push(started.elapsed().as_nanos() as u64);
        assert!(
            matches!(answer.outcome.status, RecordStatus::Processed { .. }),
            "not processed: {:?}",
            answer.outcome
        );
        self.answered += 1;
        self.effects += answer.effects.len();
        if keep {
            self.answers.push(answer);
        }
    }
}

/// Submits `events` in order, keeping `window` in flight (1: `submit().await`; more:
/// `try_submit` tickets, oldest awaited first), until they are all sent or `stop_at`.
async fn submitter(
    live: LiveEngine,
    events: Vec<Event>,
    window: usize,
    stop_at: Option<Instant>,
    keep: bool,
) -> SubmitterOut {
    let mut out = SubmitterOut {
        latencies: Vec::with_capacity(events.len()),
        ..SubmitterOut::default()
    };
    let mut in_flight: VecDeque<(Instant, fusebox::engine::live::Ticket)> = VecDeque::new();
    for event in events {
        if stop_at.is_some_and(|s| Instant::now() >= s) {
            break;
        }
        if window <= 1 {
            let t = Instant::now();
            let answer = live.submit(event).await;
            out.take(t, answer, keep);
            continue;
        }
        loop {
            if in_flight.len() >= window {
                let (t, ticket) = in_flight.pop_front().expect("non-empty");
                out.take(t, ticket.await, keep);
            }
            let t = Instant::now();
            match live.try_submit(event.clone()) {
                Ok(ticket) => {
                    in_flight.push_back((t, ticket));
                    break;
                }
                Err(SubmitError::Full { .. }) => match in_flight.pop_front() {
                    Some((t0, ticket)) => out.take(t0, ticket.await, keep),
                    None => {
                        let answer = live.submit(event).await;
                        out.take(t, answer, keep);
                        break;
                    }
                },
                Err(e) => panic!("refused: {e}"),
            }
        }
    }
    while let Some((t, ticket)) = in_flight.pop_front() {
        out.take(t, ticket.await, keep);
    }
    out
}

/// One live run.
struct LiveRun {
    /// First submit → last answer.
    secs: f64,
    answered: usize,
    effects: usize,
    latencies: Vec<u64>,
    /// Sorted by line (acceptance order), when kept.
    answers: Vec<Submitted>,
    report: FinalReport,
}

impl LiveRun {
    fn throughput(&self) -> f64 {
        self.answered as f64 / self.secs
    }

    fn mean_batch(&self) -> f64 {
        self.report.status.completed as f64 / self.report.status.batches.max(1) as f64
    }
}

fn live_config(max_batch: usize, max_delay_ms: u64) -> LiveConfig {
    LiveConfig {
        max_batch,
        max_delay: Duration::from_millis(max_delay_ms),
        ..LiveConfig::default()
    }
}

/// Starts a live engine on a fresh engine and state; `warm` events (ids `warm-*`) are run
/// through it first with `submit_many`.
async fn start(setup: &Setup, config: LiveConfig, warm: usize) -> LiveEngine {
    let live = LiveEngine::builder(setup.fresh_engine(), setup.state.clone())
        .config(config)
        .start()
        .expect("live engine starts");
    if warm > 0 {
        let events = warm_events(setup, warm);
        for a in live.submit_many(events).await.expect("warm-up accepted") {
            a.expect("warm-up answered");
        }
    }
    live
}

fn warm_events(setup: &Setup, n: usize) -> Vec<Event> {
    setup.events[..n]
        .iter()
        .map(|e| Event {
            id: format!("warm-{}", e.id).into(),
            ..e.clone()
        })
        .collect()
}

/// How a closed-loop run submits.
#[derive(Clone, Copy)]
struct Load {
    /// Submitter tasks.
    submitters: usize,
    /// Events each keeps in flight.
    window: usize,
    /// Warm-up events run first (not measured, answers not kept).
    warm: usize,
    /// Submitters stop taking new events after this long.
    stop_after: Option<Duration>,
    /// Keep every answer (for the equivalence checks).
    keep: bool,
}

impl Load {
    fn new(submitters: usize, window: usize) -> Load {
        Load {
            submitters,
            window,
            warm: 0,
            stop_after: None,
            keep: false,
        }
    }
}

/// A closed-loop run: `events` dealt round-robin to the submitter tasks.
async fn closed_loop(setup: &Setup, config: LiveConfig, events: &[Event], load: Load) -> LiveRun {
    let Load {
        submitters,
        window,
        warm,
        stop_after,
        keep,
    } = load;
    let mut dealt: Vec<Vec<Event>> = (0..submitters)
        .map(|_| Vec::with_capacity(events.len() / submitters + 1))
        .collect();
    for (i, e) in events.iter().enumerate() {
        dealt[i % submitters].push(e.clone());
    }
    let live = start(setup, config, warm).await;
    let t = Instant::now();
    let stop_at = stop_after.map(|d| t + d);
    let tasks: Vec<_> = dealt
        .into_iter()
        .map(|evs| tokio::spawn(submitter(live.clone(), evs, window, stop_at, keep)))
        .collect();
    let (mut answered, mut effects) = (0, 0);
    let (mut latencies, mut answers) = (Vec::new(), Vec::new());
    for task in tasks {
        let out = task.await.expect("submitter task");
        answered += out.answered;
        effects += out.effects;
        latencies.extend(out.latencies);
        answers.extend(out.answers);
    }
    let secs = t.elapsed().as_secs_f64();
    let report = live.shutdown().await.expect("clean shutdown");
    answers.sort_by_key(|a: &Submitted| a.line);
    LiveRun {
        secs,
        answered,
        effects,
        latencies,
        answers,
        report,
    }
}

/// Events run through a fresh engine before an open-loop run's clock starts: its first
/// batches (threads waking, the customer table and the allocator's pages coming in) took
/// 4–15 ms each on a 64-event warm-up and backed the first second's queue up behind them.
const OPEN_LOOP_WARM_UP: usize = 2_000;

/// One open-loop run's figures (latencies in ms).
#[derive(Clone, Copy)]
struct OpenRun {
    achieved: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    p99_schedule: f64,
    mean_batch: f64,
}

/// An open-loop run: `events` issued at `rate` per second, each awaited in its own task.
/// Latencies from submit and from the scheduled time, ns.
async fn open_loop(
    setup: &Setup,
    config: LiveConfig,
    events: &[Event],
    rate: f64,
) -> (Vec<u64>, Vec<u64>, f64, FinalReport) {
    let live = start(setup, config, OPEN_LOOP_WARM_UP).await;
    let (answered, secs) = open_loop::run(&live, events, rate).await;
    let mut from_submit = Vec::with_capacity(answered.len());
    let mut from_schedule = Vec::with_capacity(answered.len());
    for a in answered {
        assert!(matches!(
            a.answer.outcome.status,
            RecordStatus::Processed { .. }
        ));
        from_submit.push(a.from_submit);
        from_schedule.push(a.from_schedule);
    }
    let report = live.shutdown().await.expect("clean shutdown");
    (
        from_submit,
        from_schedule,
        events.len() as f64 / secs,
        report,
    )
}

/// The same final state: customers (every cell), counters, pool cursors.
fn assert_same_state(live: &State, batch: &State, what: &str) {
    assert_eq!(live.customers.ids(), batch.customers.ids(), "{what}: ids");
    assert!(
        live.customers.columns() == batch.customers.columns(),
        "{what}: customer attributes differ"
    );
    assert_eq!(live.counters, batch.counters, "{what}: counters");
    assert_eq!(
        live.pool_cursors, batch.pool_cursors,
        "{what}: pool cursors"
    );
}

/// One submitter, in order: outcomes, effects and state equal `run_batch`'s over `events`.
fn assert_equals_batch(setup: &Setup, run: &LiveRun, events: &[Event], what: &str) {
    let reference = run_batch(setup, &records(events));
    assert_eq!(
        run.answers.len(),
        events.len(),
        "{what}: every event answered"
    );
    let outcomes: Vec<&RecordOutcome> = run.answers.iter().map(|a| &a.outcome).collect();
    assert!(
        outcomes.iter().copied().eq(reference.outcomes.iter()),
        "{what}: outcomes differ from run_batch"
    );
    let effects: Vec<&Effect> = run.answers.iter().flat_map(|a| &a.effects).collect();
    assert_eq!(
        effects.len(),
        reference.effects.len(),
        "{what}: effects count"
    );
    assert!(
        effects.iter().copied().eq(reference.effects.iter()),
        "{what}: effects differ from run_batch"
    );
    assert_same_state(&run.report.state, &reference.state, what);
}

/// A 1-submitter latency run (the warm-up, whose answers were not kept, then `sent`, in this
/// order) against `run_batch` over the same events.
fn check_one_submitter(setup: &Setup, run: &LiveRun, sent: &[Event], warm: usize) {
    let mut all = warm_events(setup, warm);
    all.extend_from_slice(sent);
    let reference = run_batch(setup, &records(&all));
    assert_eq!(run.answers.len(), sent.len(), "1 submitter: every event");
    assert!(
        run.answers
            .iter()
            .map(|a| &a.outcome)
            .eq(reference.outcomes[warm..].iter()),
        "1 submitter: outcomes differ from run_batch"
    );
    let live_effects: usize = run.answers.iter().map(|a| a.effects.len()).sum();
    let warm_effects = reference
        .effects
        .len()
        .checked_sub(live_effects)
        .expect("1 submitter: more effects than run_batch");
    assert!(
        run.answers
            .iter()
            .flat_map(|a| &a.effects)
            .eq(reference.effects[warm_effects..].iter()),
        "1 submitter: effects differ from run_batch"
    );
    assert_same_state(&run.report.state, &reference.state, "1 submitter");
}

fn main() {
    allocator::keep_freed_memory();
    let events: usize = env("LIVE_EVENTS", 100_000).max(1_000);
    let reps: usize = env("LIVE_REPS", 5).max(1);
    let lat_events: usize = env("LIVE_LAT_EVENTS", 20_000).max(100);
    let lat_secs: f64 = env("LIVE_LAT_SECS", 2.0);
    let only: String = env("LIVE_ONLY", String::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime");
    let setups = [
        Setup::new("1k", 1_000, events),
        Setup::new("100k", 100_000, events),
    ];
    println!(
        "live bench: {events} events per throughput run, {reps} interleaved repetitions, \
         executor parallel(2), tokio 2 workers"
    );

    let section = |name: &str| only.is_empty() || only == name;
    // Best sustained live throughput per setup, for the open loop.
    let given: Vec<f64> = env("LIVE_SUSTAINED", String::new())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let mut sustained: Vec<f64> = (0..setups.len())
        .map(|i| given.get(i).copied().unwrap_or(0.0))
        .collect();

    if section("throughput") {
        let cpu = CpuMeter::start();
        println!("\n## Sustained throughput (closed loop, {events} events, medians of {reps})");
        println!("| customers | side | median run | events/s | ÷ run_batch | mean batch |");
        println!("|---|---|---|---|---|---|");
        for (si, setup) in setups.iter().enumerate() {
            let recs = records(&setup.events);
            // One submitter, in order, a window of 64: equal to run_batch, event by event.
            let check = rt.block_on(closed_loop(
                setup,
                LiveConfig::default(),
                &setup.events,
                Load {
                    keep: true,
                    ..Load::new(1, 64)
                },
            ));
            assert_equals_batch(setup, &check, &setup.events, "1 submitter × window 64");
            let check_rate = check.throughput();
            drop(check);

            // (label, submitters, window, max_delay ms)
            let sides: [(&str, usize, usize, u64); 4] = [
                ("live 256 tasks × 1, delay 1 ms", 256, 1, 1),
                ("live 256 tasks × 1, delay 0", 256, 1, 0),
                ("live 64 tasks × window 64, delay 1 ms", 64, 64, 1),
                ("live 64 tasks × window 64, delay 0", 64, 64, 0),
            ];
            let mut batch_ms = Vec::new();
            let mut live_secs: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
            let mut live_batch: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
            for _ in 0..reps {
                let reference = run_batch(setup, &recs);
                batch_ms.push(reference.ms);
                for (k, &(label, n, window, delay)) in sides.iter().enumerate() {
                    let run = rt.block_on(closed_loop(
                        setup,
                        live_config(1024, delay),
                        &setup.events,
                        Load::new(n, window),
                    ));
                    assert_eq!(run.answered, setup.events.len(), "{label}: every event");
                    assert_eq!(run.effects, reference.effects.len(), "{label}: effects");
                    assert_eq!(
                        run.report.state.counters[0], reference.state.counters[0],
                        "{label}: orders_total"
                    );
                    assert_eq!(
                        run.report.state.pool_cursors, reference.state.pool_cursors,
                        "{label}: coupons issued"
                    );
                    live_secs[k].push(run.secs);
                    live_batch[k].push(run.mean_batch());
                }
            }
            let n = setup.events.len() as f64;
            let batch_median = median(batch_ms);
            let batch_rate = n / (batch_median / 1e3);
            println!(
                "| {} | run_batch (one call) | {:.1} ms | {:.0} | 1.00 | {} |",
                setup.name,
                batch_median,
                batch_rate,
                setup.events.len()
            );
            for (k, (label, ..)) in sides.iter().enumerate() {
                let secs = median(live_secs[k].clone());
                let rate = n / secs;
                sustained[si] = sustained[si].max(rate);
                println!(
                    "| {} | {} | {:.1} ms | {:.0} | **{:.2}** | {:.0} |",
                    setup.name,
                    label,
                    secs * 1e3,
                    rate,
                    rate / batch_rate,
                    median(live_batch[k].clone())
                );
            }
            println!(
                "| {} | (check: 1 task × window 64, delay 1 ms, one run) | {:.1} ms | {:.0} | {:.2} | — |",
                setup.name,
                n / check_rate * 1e3,
                check_rate,
                check_rate / batch_rate
            );
        }
        cpu.report("the throughput runs");
    }

    if section("latency") {
        let cpu = CpuMeter::start();
        println!(
            "\n## Latency, closed loop (submit → answer; up to {lat_events} events or {lat_secs} s per setting)"
        );
        println!(
            "| customers | max_delay | max_batch | submitters | events | p50 ms | p99 ms | p99.9 ms | max ms | events/s | mean batch |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for setup in &setups {
            let sample = &setup.events[..lat_events.min(setup.events.len())];
            for delay in [0u64, 1, 5] {
                for max_batch in [64usize, 1024] {
                    for submitters in [1usize, 16, 256] {
                        let warm = 64;
                        let run = rt.block_on(closed_loop(
                            setup,
                            live_config(max_batch, delay),
                            sample,
                            Load {
                                warm,
                                stop_after: Some(Duration::from_secs_f64(lat_secs)),
                                keep: submitters == 1,
                                ..Load::new(submitters, 1)
                            },
                        ));
                        assert_eq!(run.latencies.len(), run.answered);
                        if submitters == 1 {
                            check_one_submitter(setup, &run, &sample[..run.answered], warm);
                        }
                        let mut lat = run.latencies.clone();
                        lat.sort_unstable();
                        println!(
                            "| {} | {} ms | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} |",
                            setup.name,
                            delay,
                            max_batch,
                            submitters,
                            run.answered,
                            pct(&lat, 50.0),
                            pct(&lat, 99.0),
                            pct(&lat, 99.9),
                            lat.last().copied().unwrap_or(0) as f64 / 1e6,
                            run.throughput(),
                            run.mean_batch()
                        );
                    }
                }
            }
        }

        cpu.report("the latency runs");
    }

    if section("open") {
        let open_reps: usize = env("LIVE_OPEN_REPS", 3).max(1);
        let cpu = CpuMeter::start();
        println!(
            "\n## Open loop at half the best sustained live throughput ({events} events, \
             {OPEN_LOOP_WARM_UP}-event warm-up, medians of {open_reps} interleaved runs)"
        );
        println!(
            "| customers | max_delay | max_batch | target rate ev/s | achieved ev/s | p50 ms | p99 ms | p99.9 ms | p99 from schedule ms | p99 range ms | mean batch |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        const DELAYS: [u64; 3] = [0, 1, 5];
        // runs[setup][delay] = one OpenRun per repetition.
        let mut runs: Vec<Vec<Vec<OpenRun>>> = vec![vec![Vec::new(); DELAYS.len()]; setups.len()];
        for _ in 0..open_reps {
            for (si, setup) in setups.iter().enumerate() {
                if sustained[si] <= 0.0 {
                    continue;
                }
                for (di, delay) in DELAYS.into_iter().enumerate() {
                    let (mut a, mut b, achieved, report) = rt.block_on(open_loop(
                        setup,
                        live_config(1024, delay),
                        &setup.events,
                        sustained[si] / 2.0,
                    ));
                    assert_eq!(a.len(), setup.events.len(), "open loop: every event");
                    a.sort_unstable();
                    b.sort_unstable();
                    runs[si][di].push(OpenRun {
                        achieved,
                        p50: pct(&a, 50.0),
                        p99: pct(&a, 99.0),
                        p999: pct(&a, 99.9),
                        p99_schedule: pct(&b, 99.0),
                        mean_batch: report.status.completed as f64
                            / report.status.batches.max(1) as f64,
                    });
                }
            }
        }
        for (si, setup) in setups.iter().enumerate() {
            if sustained[si] <= 0.0 {
                println!(
                    "| {} | (no sustained throughput measured: set LIVE_SUSTAINED) |",
                    setup.name
                );
                continue;
            }
            for (di, delay) in DELAYS.into_iter().enumerate() {
                let reps = &runs[si][di];
                let of = |f: fn(&OpenRun) -> f64| median(reps.iter().map(f).collect());
                let p99s = reps.iter().map(|r| r.p99);
                println!(
                    "| {} | {} ms | 1024 | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}–{:.1} | {:.1} |",
                    setup.name,
                    delay,
                    sustained[si] / 2.0,
                    of(|r| r.achieved),
                    of(|r| r.p50),
                    of(|r| r.p99),
                    of(|r| r.p999),
                    of(|r| r.p99_schedule),
                    p99s.clone().fold(f64::INFINITY, f64::min),
                    p99s.fold(0.0, f64::max),
                    of(|r| r.mean_batch),
                );
            }
        }
        cpu.report("the open-loop runs");
    }

    match vm_hwm_kb() {
        Some(kb) => println!("\npeak RSS (VmHWM): {kb} kB ({:.1} MB)", kb as f64 / 1024.0),
        None => println!("\npeak RSS (VmHWM): unavailable"),
    }
}
