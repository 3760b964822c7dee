//! `fusebox run`: load, check, execute, write outputs, summarise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use fusebox_engine::config::compile_triggers;
use fusebox_engine::health;
use fusebox_engine::io::customers::{load_customers, save_customers};
use fusebox_engine::io::events::read_events;
use fusebox_engine::state::State;
use fusebox_engine::{BatchResult, Engine, ExecutorKind, RunOptions};

use crate::diagnostics::{print_config_error, print_diagnostics};
use crate::files::{read_text, write_json, write_jsonl};
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
    /// Print the summary.
    pub quiet: bool,
    /// Daily per-process quotas, if any (see `crate::quotas`).
    pub quotas: Option<QuotaSetup>,
}

/// Runs and writes `effects.jsonl`, `customers.parquet`, `outcomes.jsonl`, `report.json`,
/// `timings.json` into `spec.out` (and `held.jsonl`, `notifications.jsonl` with quotas).
pub fn run(spec: &RunSpec) -> Result<BatchResult, Failure> {
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
    let records = progress::stage(format!("reading {}", spec.events.display()), || {
        read_events(&spec.events)
    })
    .map_err(|e| Failure::Input(e.into()))?;
    let loaded_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut state = State::new(customers, engine.triggers());
    let bar = progress::bar(records.len() as u64, "events");
    let tick = |done: u64| bar.set_position(done);
    // Owners hear of governed triggers through the same notifier as quota owners (with
    // `--quotas`: notifications.jsonl and the webhook).
    let notifier = quotas.as_ref().map(|q| q.notifications.notifier());
    let options = RunOptions {
        progress: Some(&tick),
        quotas: quotas.as_ref().map(|q| &q.quotas),
        notifier: notifier.as_deref(),
    };
    // After every input is validated (a bad input creates nothing), before anything is
    // charged: the gate charges quotas inside `run_batch`.
    outputs::create(&spec.out)?;
    if let Some(q) = &quotas {
        q.notifications.open_file(&spec.out)?;
    }
    let exec_started = Instant::now();
    let result = engine
        .run_batch(&mut state, &records, &options)
        .map_err(|e| Failure::Runtime(e.into()))?;
    let exec_ms = exec_started.elapsed().as_secs_f64() * 1e3;
    bar.finish_and_clear();

    write_outputs(&spec.out, &result, &state).map_err(Failure::Runtime)?;
    let notifications = match &quotas {
        Some(q) => {
            crate::quotas::write_outputs(&spec.out, &records, &result).map_err(Failure::Runtime)?;
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
        print_summary(&result, loaded_ms, exec_ms, &spec.out);
        if let Some((notifications, ledger, _)) = &notifications {
            crate::quotas::print_summary(&result, notifications, ledger);
        }
    }
    if let Some((_, _, Some(webhook))) = &notifications {
        webhook.print(spec.quiet);
    }
    if !spec.quiet {
        print_status(&result);
    }
    Ok(result)
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

fn write_outputs(out: &Path, result: &BatchResult, state: &State) -> Result<()> {
    write_jsonl(&out.join("effects.jsonl"), &result.effects)?;
    write_jsonl(&out.join("outcomes.jsonl"), &result.outcomes)?;
    write_json(
        &out.join("report.json"),
        &ReportFile {
            report: &result.report,
            status: health::assess(result),
        },
    )?;
    write_json(&out.join("timings.json"), &result.timings)?;
    save_customers(&state.customers, &out.join("customers.parquet"))?;
    Ok(())
}

/// `report.json`: the deterministic report plus the run's health (see
/// [`fusebox_engine::health`]).
#[derive(serde::Serialize)]
struct ReportFile<'a> {
    #[serde(flatten)]
    report: &'a fusebox_engine::report::Report,
    status: health::BatchHealth,
}

/// The status lines: `status: ok`, or `status: degraded` and one line per problem; then the
/// trigger governor's transitions, if any.
pub fn print_status(result: &BatchResult) {
    for t in &result.report.governor {
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
    let h = health::assess(result);
    println!("status: {}", h.health);
    for p in &h.problems {
        println!(
            "  {:<24} {} (since line {})",
            p.component, p.what, p.since_line
        );
    }
}

/// The human summary printed after a run.
pub fn print_summary(result: &BatchResult, loaded_ms: f64, exec_ms: f64, out: &Path) {
    let r = &result.report;
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
        let ms = result.timings.triggers.get(id).map_or(0.0, |x| x.total_ms);
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
    let p = &result.parallel;
    if p.parallel_blocks + p.sequential_blocks > 0 {
        println!(
            "parallel: {} blocks speculated, {} run sequentially; {} executions, {} validations, {} aborts, {} dependency waits, {} re-executed at commit; speculate {} ms, commit {} ms",
            p.parallel_blocks, p.sequential_blocks, p.executions, p.validations, p.aborts, p.dependency_waits, p.commit_reexecutions,
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
        result.timings.executor,
        out.display()
    );
}
