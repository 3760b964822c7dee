//! The cost of the quota gate in a batch run: the same batch with and without quotas, side by
//! side, interleaved run by run.
//!
//! Workload: `low_contention` from `common/workloads.rs` (100,000 `order.completed` events,
//! 100,000 customers, four actions per event) with every event sent by process `crm-sync`, so
//! every event is charged (1 record + its canonical JSON bytes). The quota is generous —
//! nothing is held — so both sides execute the same events and the difference is the gate:
//! sizing each event, the reserve + commit, the ledger write. Sides, all on the sequential
//! executor (the gate runs before any executor, in input order, so the executor does not
//! change its cost):
//! - `no quotas` — `RunOptions::quotas = None`;
//! - `memory ledger` — quotas over `MemoryLedger`;
//! - `durable ledger` — quotas over a `DurableLedger` (write-ahead log in a temp dir, group
//!   commit, no fsync per grant).
//!
//! Prints medians of the whole `run_batch` and of its admission stage (where the gate runs),
//! and the gate's cost per charged event.
//!
//! Run: `cargo bench --bench gate -- [REPETITIONS]` (default 7).

use std::sync::Arc;

use fusebox::engine::{ExecutorKind, RunOptions};
use fusebox::quotas::{DurableLedger, Ledger, MemoryLedger, NullNotifier, QuotaConfig, Quotas};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::workloads;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUOTAS: &str = "processes:
  - { id: crm-sync, owner: data@example.com, time_zone: Europe/Berlin, limits: { records: 100000000, bytes: 100000000000 } }
";

#[path = "common/stats.rs"]
mod stats;
use stats::median;

fn main() {
    let reps: usize = std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let w = workloads()
        .into_iter()
        .find(|w| w.name == "low_contention")
        .expect("workload");
    let records: Vec<_> = w
        .records
        .iter()
        .cloned()
        .map(|mut r| {
            if let Ok(e) = &mut r.event {
                e.process = Some(Arc::from("crm-sync"));
            }
            r
        })
        .collect();
    let config = QuotaConfig::from_yaml_str(QUOTAS, "gate-bench.yaml").expect("config");
    let dir = tempfile::tempdir().expect("tempdir");
    let sides = ["no quotas", "memory ledger", "durable ledger"];
    // [side][rep] = (total ms, admit ms)
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); sides.len()];
    for rep in 0..reps {
        for (k, _) in sides.iter().enumerate() {
            // A fresh ledger per run: every run starts from an unused quota.
            let ledger: Option<Box<dyn Ledger>> = match k {
                0 => None,
                1 => Some(Box::new(MemoryLedger::new())),
                _ => Some(Box::new(
                    DurableLedger::open(dir.path().join(format!("ledger-{rep}.wal")))
                        .expect("ledger"),
                )),
            };
            let quotas = ledger
                .map(|l| Quotas::new(config.clone(), l, Arc::new(NullNotifier)).expect("quotas"));
            let (total, r) = w.timed_run(
                &records,
                ExecutorKind::Sequential,
                &RunOptions {
                    quotas: quotas.as_ref(),
                    ..RunOptions::default()
                },
            );
            assert!(r.held.is_empty(), "the bench quota must not hold anything");
            runs[k].push((total, r.timings.admit_ms));
        }
    }
    let n = records.len() as f64;
    let base_total = median(runs[0].iter().map(|r| r.0).collect());
    let base_admit = median(runs[0].iter().map(|r| r.1).collect());
    println!(
        "gate bench: {} events, all charged to one process, {reps} interleaved runs, sequential executor",
        records.len()
    );
    for (k, name) in sides.iter().enumerate() {
        let total = median(runs[k].iter().map(|r| r.0).collect());
        let admit = median(runs[k].iter().map(|r| r.1).collect());
        println!(
            "{name:15} run_batch median {total:7.1} ms (x{:.2} of no quotas) | admission median {admit:6.1} ms | gate cost {:.2} µs per event",
            total / base_total,
            (admit - base_admit) * 1e3 / n
        );
    }
}
