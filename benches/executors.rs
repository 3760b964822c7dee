//! Executors side by side on the same workloads (issue 3).
//!
//! Workloads (each 100,000 events in one batch; customers loaded in memory; built from a fixed
//! seed so every executor sees identical input):
//! - `low_contention` — 100,000 customers, events spread uniformly; each event awards points,
//!   bumps two attributes and sends a message: transactions almost never share a key.
//! - `medium_pool` — 1,000 customers and one shared coupon pool: every order awards points and
//!   takes a code from the pool (passed through to an SMS), plus a tier check that reads points.
//! - `fully_dependent` — every execution reads and writes the same counter (`counters.seq`
//!   in the condition, then increments it): a single dependency chain.
//! - `hot_counter` — 100,000 customers; every event blindly increments one global counter (a
//!   commutative delta) and awards points.
//!
//! Executors: `sequential` (the reference), `parallel` (Block-STM, 2 threads, default
//! tuning: contended blocks given up, each block speculated or run sequentially by measured
//! throughput), `speculative` (Block-STM on every block, 2 threads) and `locking`
//! (pessimistic per-key locks granted in event order, 2 threads) — the "wait for the other
//! trigger" baseline.
//!
//! Run: `cargo bench --bench executors` (add `-- --quick` for a fast look). Each iteration runs
//! the whole batch on a fresh clone of the state (cloning is outside the measured time).
//! Results and ratios: `benches/README.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fusebox::engine::state::State;
use fusebox::engine::{ExecutorKind, RunOptions};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::{workloads, Workload};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn executors() -> Vec<(&'static str, ExecutorKind)> {
    vec![
        ("sequential", ExecutorKind::Sequential),
        ("parallel", ExecutorKind::parallel(2)),
        // Block-STM on every block: the executor without its throughput-based choice.
        (
            "speculative",
            ExecutorKind::Parallel(fusebox::engine::exec::parallel::ParallelConfig {
                self_tuning: false,
                partition: false,
                ..fusebox::engine::exec::parallel::ParallelConfig::with_threads(2)
            }),
        ),
        ("locking", ExecutorKind::Locking { threads: 2 }),
    ]
}

fn bench(c: &mut Criterion) {
    for w in workloads() {
        // Sanity first: every executor must produce the sequential result on this workload.
        let reference = run_once(&w, ExecutorKind::Sequential);
        for (name, kind) in executors() {
            let (effects, state) = run_once(&w, kind);
            assert!(
                effects == reference.0
                    && state.customers.columns() == reference.1.customers.columns(),
                "{name} differs on {}",
                w.name
            );
        }
        let mut group = c.benchmark_group(w.name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
        for (name, kind) in executors() {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || w.state.clone(),
                    |mut state| {
                        let result = w
                            .engine
                            .with_executor(kind)
                            .run_batch(&mut state, &w.records, &RunOptions::default())
                            .unwrap();
                        black_box(result.effects.len())
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

fn run_once(w: &Workload, kind: ExecutorKind) -> (Vec<fusebox::engine::outcome::Effect>, State) {
    let mut state = w.state.clone();
    let result = w
        .engine
        .with_executor(kind)
        .run_batch(&mut state, &w.records, &RunOptions::default())
        .unwrap();
    (result.effects, state)
}

criterion_group!(benches, bench);
criterion_main!(benches);
