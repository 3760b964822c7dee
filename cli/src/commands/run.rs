//! `fusebox run`: load, check, execute, write outputs, summarise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use fusebox_engine::config::compile_triggers;
use fusebox_engine::health;
use fusebox_engine::io::customers::{load_customers, save_customers};
use fusebox_engine::io::events::{EventChunks, ReadProgress};
use fusebox_engine::state::State;
use fusebox_engine::{Engine, ExecutorKind, RunOptions, StreamTotals};

use super::run_pipeline;
use crate::diagnostics::{print_config_error, print_diagnostics};
use crate::files::{read_text, write_json};
use crate::outputs::{self, Input};
use crate::progress;
use crate::quotas::{LedgerChoice, QuotaSetup};
use crate::Failure;

/// Inputs and options of a run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Customer file (.parquet / .csv).
    pub customers: PathBuf,
    /// Events file (.jsonl / .parquet).
    pub events: PathBuf,
    /// Triggers file (.yaml).
    pub triggers: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Executor.
    pub executor: ExecutorKind,
    /// Records read, executed and written per chunk (see [`run_pipeline`]).
    pub chunk: usize,
    /// Print the summary.
    pub quiet: bool,
    /// Daily per-process quotas, if any (see `crate::quotas`).
    pub quotas: Option<QuotaSetup>,
}

/// Runs and writes `effects.jsonl`, `customers.parquet`, `outcomes.jsonl`, `report.json`,
/// `timings.json` into `spec.out` (and `held.jsonl`, `notifications.jsonl` with quotas).
/// Events stream through in chunks (see [`run_pipeline`]): memory holds the customers and a
/// few chunks, not the events file.
pub fn run(spec: &RunSpec) -> Result<StreamTotals, Failure> {
    let started = Instant::now();
    check_paths(spec)?;
    let triggers_text = read_text(&spec.triggers)?;
    let customers = progress::stage(format!("loading {}", spec.customers.display()), || {
        load_customers(&spec.customers)
    })
    .map_err(|e| Failure::Input(e.into()))?;
    let file = spec.triggers.display().to_string();
    let set = compile_triggers(&triggers_text, &file, Some(customers.schema())).map_err(|e| {
        print_config_error(&e);
        Failure::Reported
    })?;
    print_diagnostics(&file, &triggers_text, &set.warnings);
    let engine = Engine::builder(set)
        .executor(spec.executor)
        .build()
        .map_err(|e| Failure::Input(e.into()))?;
    let quotas = spec
        .quotas
        .as_ref()
        .map(crate::quotas::prepare)
        .transpose()?;
    // Opening reads the first chunk: a file that cannot be read at all is refused here,
    // before any output exists.
    let chunks = progress::stage(format!("reading {}", spec.events.display()), || {
        EventChunks::open(&spec.events, spec.chunk)
    })
    .map_err(|e| Failure::Input(e.into()))?;
    let loaded_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut state = State::new(customers, engine.triggers());
    // The number of events is known once the file is read: until then the bar's length is
    // an estimate from the share of the file read so far.
    let bar = progress::bar(0, "events");
    let tick = |done: u64| bar.set_position(done);
    let records_read = std::cell::Cell::new(0u64);
    let on_read = |read: ReadProgress, records: usize| {
        records_read.set(records_read.get() + records as u64);
        bar.set_length(estimated_records(read, records_read.get()));
    };
    // Owners hear of governed triggers through the same notifier as quota owners (with
    // `--quotas`: notifications.jsonl and the webhook).
    let notifier = quotas.as_ref().map(|q| q.notifications.notifier());
    let options = RunOptions {
        progress: Some(&tick),
        quotas: quotas.as_ref().map(|q| &q.quotas),
        notifier: notifier.as_deref(),
    };
    // After every input is validated (a bad input creates nothing), before anything is
    // charged: the gate charges quotas as the stream runs.
    outputs::create(&spec.out)?;
    if let Some(q) = &quotas {
        q.notifications.open_file(&spec.out)?;
    }
    let files =
        run_pipeline::OutputFiles::create(&spec.out, quotas.is_some()).map_err(Failure::Runtime)?;
    let exec_started = Instant::now();
    let session = engine
        .session(&mut state, &options)
        .map_err(|e| Failure::Runtime(e.into()))?;
    let totals = run_pipeline::stream(session, engine.triggers(), chunks, files, &on_read)?;
    let exec_ms = exec_started.elapsed().as_secs_f64() * 1e3;
    bar.finish_and_clear();

    write_outputs(&spec.out, &totals, &state).map_err(Failure::Runtime)?;
    let notifications = match &quotas {
        Some(q) => {
            q.quotas
                .sync()
                .context("cannot persist the quota ledger")
                .map_err(Failure::Runtime)?;
            // The file is complete and synced; the webhook gets its bounded wait.
            let webhook = q.notifications.finish()?;
            Some((
                q.notifications.take(),
                crate::quotas::ledger_summary(&q.quotas),
                webhook,
            ))
        }
        None => None,
    };
    if !spec.quiet {
        print_summary(&totals, loaded_ms, exec_ms, &spec.out);
        if let Some((notifications, ledger, _)) = &notifications {
            crate::quotas::print_summary(&totals.report, notifications, ledger);
        }
    }
    if let Some((_, _, Some(webhook))) = &notifications {
        webhook.print(spec.quiet);
    }
    if !spec.quiet {
        print_status(&totals);
    }
    Ok(totals)
}

/// The records of a file, estimated from how much of it was read and how many records that
/// was (exact once it is all read).
fn estimated_records(read: ReadProgress, records_read: u64) -> u64 {
    match read {
        ReadProgress::Rows { total, .. } => total,
        ReadProgress::Bytes { done, total } if done > 0 && done < total => {
            let per_byte = records_read as f64 / done as f64;
            ((total as f64 * per_byte) as u64).max(records_read)
        }
        ReadProgress::Bytes { .. } => records_read,
    }
}

/// The files a run writes into `--out` (the quota ones only with `--quotas`).
const OUTPUTS: [&str; 5] = [
    "effects.jsonl",
    "outcomes.jsonl",
    "report.json",
    "timings.json",
    "customers.parquet",
];
const QUOTA_OUTPUTS: [&str; 2] = ["held.jsonl", crate::notify::FILE];

/// Before anything is read: no output file is an input, and the ledger is neither an input
/// nor an output.
fn check_paths(spec: &RunSpec) -> Result<(), Failure> {
    let mut inputs = vec![
        Input::read("--customers", &spec.customers),
        Input::read("--events", &spec.events),
        Input::read("--triggers", &spec.triggers),
    ];
    let mut outputs = OUTPUTS.to_vec();
    if let Some(q) = &spec.quotas {
        inputs.push(Input::read("--quotas", &q.config));
        if let LedgerChoice::File(ledger) = &q.ledger {
            inputs.push(Input::updated("--ledger", ledger));
        }
        outputs.extend(QUOTA_OUTPUTS);
    }
    outputs::check(&spec.out, &outputs, &inputs)
}

fn write_outputs(out: &Path, totals: &StreamTotals, state: &State) -> Result<()> {
    write_json(
        &out.join("report.json"),
        &ReportFile {
            report: &totals.report,
            status: &totals.health,
        },
    )?;
    write_json(&out.join("timings.json"), &totals.timings)?;
    save_customers(&state.customers, &out.join("customers.parquet"))?;
    Ok(())
}

/// `report.json`: the deterministic report plus the run's health (see
/// [`fusebox_engine::health`]).
#[derive(serde::Serialize)]
struct ReportFile<'a> {
    #[serde(flatten)]
    report: &'a fusebox_engine::report::Report,
    status: &'a health::BatchHealth,
}

/// The status lines: `status: ok`, or `status: degraded` and one line per problem; then the
/// trigger governor's transitions, if any.
pub fn print_status(totals: &StreamTotals) {
    for t in &totals.report.governor {
        println!(
            "governor: trigger {} {} after the window from {}: {} fuel (budget {}, hard {}), {} executions, {:.0}% of all fuel",
            t.trigger,
            t.to,
            t.window_start,
            t.fuel_used,
            t.budget,
            t.hard_budget,
            t.executions,
            t.share * 100.0
        );
    }
    let h = &totals.health;
    println!("status: {}", h.health);
    for p in &h.problems {
        println!(
            "  {:<24} {} (since line {})",
            p.component, p.what, p.since_line
        );
    }
}

/// The human summary printed after a run.
pub fn print_summary(totals: &StreamTotals, loaded_ms: f64, exec_ms: f64, out: &Path) {
    let r = &totals.report;
    let e = &r.events;
    println!(
        "events: {} in, {} processed, {} rejected, {} held; {} chained events",
        e.input, e.processed, e.rejected, e.held, e.chained
    );
    if !r.rejected_by_reason.is_empty() {
        let parts: Vec<String> = r
            .rejected_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "rejected: {} (details with line numbers in outcomes.jsonl)",
            parts.join(", ")
        );
    }
    println!(
        "effects: {} ({} messages, {} feeds, {} coupons)",
        r.effects.total, r.effects.messages, r.effects.feeds, r.effects.coupons
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>10} {:>9}  aborted by reason",
        "trigger", "fired", "committed", "skipped", "aborted", "ms"
    );
    // Stopped and deferred firings are shown only when a run has them.
    for (id, t) in &r.triggers {
        let ms = totals.timings.triggers.get(id).map_or(0.0, |x| x.total_ms);
        let mut reasons: Vec<String> = t
            .aborted_by_reason
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if t.stopped > 0 {
            reasons.push(format!("(stopped: {} firings skipped)", t.stopped));
        }
        if t.deferred > 0 {
            reasons.push(format!("(deferred to the slow lane: {})", t.deferred));
        }
        println!(
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>9.1}  {}",
            id,
            t.fired,
            t.committed,
            t.skipped,
            t.aborted,
            ms,
            reasons.join(" ")
        );
    }
    let p = &totals.parallel;
    if p.parallel_blocks + p.sequential_blocks + p.partitioned_blocks > 0 {
        println!(
            "parallel: {} blocks partitioned by customer ({} fell back), {} speculated, {} run sequentially; {} executions, {} validations, {} aborts, {} dependency waits, {} re-executed at commit; speculate {} ms, commit {} ms",
            p.partitioned_blocks, p.partition_fallbacks, p.parallel_blocks, p.sequential_blocks, p.executions, p.validations, p.aborts, p.dependency_waits, p.commit_reexecutions,
            p.speculate_us / 1000,
            p.commit_us / 1000
        );
    }
    let rate = if exec_ms > 0.0 {
        e.input as f64 / (exec_ms / 1e3)
    } else {
        0.0
    };
    println!(
        "time: load {:.0} ms, execute {:.0} ms ({:.0} events/s, {} executor); outputs in {}",
        loaded_ms,
        exec_ms,
        rate,
        totals.timings.executor,
        out.display()
    );
}
