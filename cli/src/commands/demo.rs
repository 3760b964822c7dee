//! `fusebox demo`: generate a small built-in workload, run its triggers (with quotas), compute
//! its segment group and refresh it a week later (incrementally: who entered and who left
//! each segment), print the summaries.

use std::path::PathBuf;

use anyhow::Context;
use fusebox_engine::ExecutorKind;

use super::gen::{generate, GenSpec};
use super::run::{run, RunSpec};
use super::segment::{segment, SegmentSpec};
use super::segment_refresh::ChangeFiles;
use crate::quotas::{LedgerChoice, QuotaSetup};
use crate::{progress, Failure};

/// The demo's segment as-of: about the end of the generated month (`gen` starts on 2026-03-01
/// and its clock advances about 30 days for any event count; the few hours of events that may
/// come after this become visible in the refresh).
const DEMO_AS_OF: &str = "2026-03-31T00:00:00Z";
/// The demo refreshes its segments a week later.
const DEMO_REFRESH_AS_OF: &str = "2026-04-07T00:00:00Z";

/// Runs the demo; outputs go to `out` or to a temporary directory that is removed afterwards.
pub fn demo(out: Option<PathBuf>) -> Result<(), Failure> {
    let temp = tempfile::tempdir()
        .context("cannot create a temporary directory")
        .map_err(Failure::Runtime)?;
    let dir = out.unwrap_or_else(|| temp.path().to_path_buf());
    let spec = GenSpec {
        out: dir.join("input"),
        customers: 2_000,
        events: 50_000,
        seed: 42,
        runaway: false,
    };
    println!(
        "fusebox demo: {} customers, {} events (seed {}), generated in {}",
        spec.customers,
        spec.events,
        spec.seed,
        spec.out.display()
    );
    let bar = progress::bar(spec.events, "generate");
    let workload = generate(&spec, &bar).map_err(Failure::Runtime)?;
    bar.finish_and_clear();
    // Segments are computed over the generated input (the customers before the run), as of the
    // end of the generated month, then refreshed a week later: windows slide, customers leave
    // "active" segments and enter "lapsed" ones.
    let segment_spec = SegmentSpec {
        customers: workload.customers.clone(),
        events: workload.events.clone(),
        segments: workload.segments.clone(),
        as_of: Some(DEMO_AS_OF.to_string()),
        out: dir.join("segments"),
        explain: false,
        threads: None,
        timeout: None,
        changes: ChangeFiles {
            as_of: Some(DEMO_REFRESH_AS_OF.to_string()),
            ..Default::default()
        },
    };
    let run_spec = RunSpec {
        customers: workload.customers,
        events: workload.events,
        triggers: workload.triggers,
        out: dir.join("output"),
        executor: ExecutorKind::parallel(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        chunk: super::run_pipeline::DEFAULT_CHUNK,
        quiet: false,
        // The generated quotas include a runaway CRM sync: the demo shows it being held.
        quotas: Some(QuotaSetup {
            config: workload.quotas,
            ledger: LedgerChoice::Memory,
            reference_now: None,
            webhook: None,
        }),
    };
    run(&run_spec)?;
    println!();
    segment(&segment_spec)?;
    if dir == temp.path() {
        println!("(demo files were in a temporary directory, now removed; `fusebox demo --out DIR` keeps them)");
    }
    Ok(())
}
