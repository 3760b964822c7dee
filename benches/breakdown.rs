//! Where the time of a batch goes, per executor and stage (admission, execution with its
//! speculate and commit phases, reporting), on the workloads of `executors.rs`.
//!
//! `stm-1thread` is the parallel executor forced to speculate with a single worker: the
//! cost of the Block-STM machinery itself, with no second core to win it back.
//!
//! Not a criterion bench: it interleaves the executors run by run, so all of them see the same
//! background noise, and prints medians and the speed-up over the sequential executor.
//!
//! Run: `cargo bench --bench breakdown -- [WORKLOAD-FILTER] [REPETITIONS] [EXECUTOR]`,
//! e.g. `cargo bench --bench breakdown -- low_contention 9`.

use fusebox::engine::{ExecutorKind, RunOptions};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::workloads;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/stats.rs"]
mod stats;
use stats::median;

fn main() {
    // `cargo bench` passes `--bench`; keep the positional arguments only.
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let which = args.get(1).cloned().unwrap_or_default();
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let only = args.get(3).cloned();
    let kinds = [
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
        // The speculation machinery alone: one worker, no other core to conflict with.
        (
            "stm-1thread",
            ExecutorKind::Parallel(
                fusebox::engine::exec::parallel::ParallelConfig::always_parallel(1, 4096),
            ),
        ),
    ];
    for w in workloads() {
        if !which.is_empty() && !w.name.contains(which.as_str()) {
            continue;
        }
        // [executor][rep] = (total, admit, execute, report, speculate, commit)
        let mut runs: Vec<Vec<[f64; 6]>> = vec![Vec::new(); kinds.len()];
        for _ in 0..reps {
            // Interleaved, so every executor sees the same background noise.
            for (k, (name, kind)) in kinds.iter().enumerate() {
                // The sequential baseline (index 0) always runs: every row is a ratio to it.
                if k != 0 && only.as_deref().is_some_and(|o| o != *name) {
                    continue;
                }
                let (total, r) = w.timed_run(&w.records, *kind, &RunOptions::default());
                runs[k].push([
                    total,
                    r.timings.admit_ms,
                    r.timings.execute_ms,
                    r.timings.report_ms,
                    r.parallel.speculate_us as f64 / 1e3,
                    r.parallel.commit_us as f64 / 1e3,
                ]);
            }
        }
        let seq = runs[0].iter().map(|r| r[0]).collect::<Vec<_>>();
        let seq_median = if seq.is_empty() {
            f64::NAN
        } else {
            median(seq)
        };
        for (k, (name, _)) in kinds.iter().enumerate() {
            if runs[k].is_empty() {
                continue;
            }
            let col = |c: usize| median(runs[k].iter().map(|r| r[c]).collect());
            println!(
                "{:16} {:10} median {:7.1} ms (x{:.2} vs seq) | admit {:5.1} execute {:6.1} report {:5.1} | speculate {:6.1} commit {:6.1}",
                w.name, name, col(0), seq_median / col(0), col(1), col(2), col(3), col(4), col(5)
            );
        }
    }
}
