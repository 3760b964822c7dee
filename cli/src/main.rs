//! `fusebox`: the command-line face of the Fusebox engine.
//!
//! Thin glue over the libraries: parse arguments, call the engine, render errors.
//! Exit codes: `0` success, `1` a runtime failure (I/O, internal), `2` invalid input or
//! configuration (nothing was run).

/// mimalloc: the executors allocate small objects on several threads at once, where glibc's
/// allocator spends much of its time in arena locks and consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;
mod diagnostics;
mod files;
mod logging;
mod notify;
mod outputs;
mod panics;
mod progress;
mod quotas;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use fusebox_engine::exec::parallel::ParallelConfig;
use fusebox_engine::ExecutorKind;

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or configuration (exit 2).
    Input(anyhow::Error),
    /// Bad input whose diagnostics were already printed (exit 2).
    Reported,
    /// Something else went wrong (exit 1).
    Runtime(anyhow::Error),
}

#[derive(Parser)]
#[command(name = "fusebox", version, about = "Run marketing-automation triggers safely at scale", long_about = None)]
struct Cli {
    /// More log output on stderr: `-v` info, `-vv` debug, `-vvv` trace (default: warnings
    /// only). `RUST_LOG` (e.g. `RUST_LOG=fusebox_quotas=debug`) overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExecutorArg {
    /// Parallel execution; identical results to `sequential`. A block in which no event's
    /// triggers read shared state (a counter, a stored coupon code) runs partitioned by
    /// customer; any other block speculates (Block-STM) or runs sequentially, whichever is
    /// measured faster on this workload.
    Parallel,
    /// Block-STM on every block, never partitioned, without the throughput-based choice
    /// (contended blocks are still given up): to measure or exercise speculation.
    Speculative,
    /// One event after another (the reference executor).
    Sequential,
    /// Pessimistic per-key locks in event order (a baseline for comparison).
    Locking,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic synthetic workload (customers, events, triggers, …).
    Gen {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Number of customers (at least 1).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        customers: u64,
        /// Number of events (at least 1).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        events: u64,
        /// Random seed: the same seed writes identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write a misbehaving trigger (a loop of chained events on every page view,
        /// under a fuel budget) for the governor to throttle, defer and stop.
        #[arg(long)]
        runaway: bool,
    },
    /// Run triggers over events and write effects, outcomes, final customers and a report.
    Run {
        /// Customers (.parquet or .csv).
        #[arg(long)]
        customers: PathBuf,
        /// Events (.jsonl or .parquet).
        #[arg(long)]
        events: PathBuf,
        /// Triggers (.yaml).
        #[arg(long)]
        triggers: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Worker threads; default: the number of cores.
        #[arg(long)]
        threads: Option<usize>,
        /// Executor. Outputs are byte-identical whichever is used.
        #[arg(long, value_enum, default_value_t = ExecutorArg::Parallel)]
        executor: ExecutorArg,
        /// Events read, executed and written per chunk: memory holds a few chunks, not the
        /// events file. Outputs are byte-identical whatever the size.
        #[arg(long, default_value_t = commands::run_pipeline::DEFAULT_CHUNK, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        chunk: usize,
        /// Do not print the summary.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        quotas: quotas::QuotaRunArgs,
    },
    /// Validate configuration files; every problem is reported with file, line and column.
    Check {
        /// Files to check: triggers, quotas or segments (told apart by their top-level keys).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check attribute names and types against this customer file.
        #[arg(long)]
        customers: Option<PathBuf>,
    },
    /// Inspect and adjust daily process quotas in a ledger (status, raise, resume, reset).
    Quota(commands::quota::QuotaArgs),
    /// Generate a small built-in workload, run its triggers (with quotas) and compute its segments.
    Demo {
        /// Keep the demo's inputs and outputs in this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compute a segment group: members.parquet, segments.json and a summary table.
    Segment(SegmentArgs),
}

/// Arguments of `fusebox segment`.
#[derive(clap::Args)]
struct SegmentArgs {
    /// Customers (.parquet or .csv).
    #[arg(long)]
    customers: PathBuf,
    /// Events (.jsonl or .parquet).
    #[arg(long)]
    events: PathBuf,
    /// Segment group (.yaml).
    #[arg(long)]
    segments: PathBuf,
    /// The time windows and `now` refer to (RFC 3339); default: the latest event.
    #[arg(long)]
    as_of: Option<String>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Print the plan with estimated vs actual rows and timings.
    #[arg(long)]
    explain: bool,
    /// Worker threads; default: the number of cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this many seconds; finished segments are still written (exit 1). A value
    /// too large to represent (over ~584 billion years) means no limit.
    #[arg(long)]
    timeout: Option<f64>,
    /// Then refresh incrementally: new customers (.parquet or .csv, attribute columns).
    #[arg(long, help_heading = "Incremental refresh")]
    new_customers: Option<PathBuf>,
    /// Then refresh incrementally: attribute updates, JSONL
    /// `{"customer_id": 42, "attribute": "points", "value": 900}`.
    #[arg(long, help_heading = "Incremental refresh")]
    updates: Option<PathBuf>,
    /// Then refresh incrementally: new events (.jsonl or .parquet).
    #[arg(long, help_heading = "Incremental refresh")]
    new_events: Option<PathBuf>,
    /// Then refresh incrementally at this later as-of (RFC 3339).
    #[arg(long, help_heading = "Incremental refresh")]
    refresh_as_of: Option<String>,
}

/// `mi_option_purge_delay` in mimalloc's option enum (the same index in its v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory before returning it to the OS. Its default (10 ms)
/// is shorter than a chunk of `fusebox run` takes, so each chunk's buffers went back to the
/// OS and came back as fresh pages the kernel had to zero (15% of a run's CPU samples in
/// `clear_page_erms`, half that with the delay); a second keeps them for the next chunk.
const PURGE_DELAY_MS: std::os::raw::c_long = 1000;

fn main() -> ExitCode {
    // SAFETY: sets a process-wide allocator option; called before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    // Long messages stay on one line so they can be grepped in logs; snippets still render.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    panics::install_hook();
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match std::panic::catch_unwind(|| execute(cli)) {
        Ok(code) => code,
        Err(payload) => panics::exit_code(payload.as_ref()),
    }
}

fn execute(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Gen {
            out,
            customers,
            events,
            seed,
            runaway,
        } => {
            let spec = commands::gen::GenSpec {
                out,
                customers,
                events,
                seed,
                runaway,
            };
            if let Err(e) = outputs::prepare(&spec.out, &[], &[]) {
                return exit_code(Err(e));
            }
            let bar = progress::bar(events, "generate");
            let r = commands::gen::generate(&spec, &bar).map_err(Failure::Runtime);
            bar.finish_and_clear();
            r.map(|w| {
                println!(
                    "wrote {}, {}, {}, {}, {}",
                    w.customers.display(),
                    w.events.display(),
                    w.triggers.display(),
                    w.segments.display(),
                    w.quotas.display()
                )
            })
        }
        Command::Run {
            customers,
            events,
            triggers,
            out,
            threads,
            executor,
            chunk,
            quiet,
            quotas,
        } => {
            let threads = match worker_threads(threads) {
                Ok(n) => n,
                Err(e) => return exit_code(Err(e)),
            };
            let executor = match executor {
                ExecutorArg::Sequential => ExecutorKind::Sequential,
                ExecutorArg::Parallel => ExecutorKind::parallel(threads),
                ExecutorArg::Speculative => ExecutorKind::Parallel(ParallelConfig {
                    self_tuning: false,
                    partition: false,
                    ..ParallelConfig::with_threads(threads)
                }),
                ExecutorArg::Locking => ExecutorKind::Locking { threads },
            };
            let spec = commands::run::RunSpec {
                customers,
                events,
                triggers,
                out,
                executor,
                chunk,
                quiet,
                quotas: quotas.setup(),
            };
            commands::run::run(&spec).map(|_| ())
        }
        Command::Check { files, customers } => commands::check::check(&files, customers.as_ref()),
        Command::Demo { out } => commands::demo::demo(out),
        Command::Quota(args) => commands::quota::quota(args),
        Command::Segment(a) => segment_command(a),
    };
    exit_code(result)
}

fn exit_code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Reported) => ExitCode::from(2),
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// More worker threads than this many per core only add switching: requests above are
/// clamped, with a message.
const MAX_THREADS_PER_CORE: usize = 4;

/// The worker threads to use for `--threads` (default: the number of cores), also given to
/// Polars' pool. `0` is an input error; more than [`MAX_THREADS_PER_CORE`] per core is clamped
/// with a warning (thousands of threads would only slow a run down).
fn worker_threads(requested: Option<usize>) -> Result<usize, Failure> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match requested {
        None => cores,
        Some(0) => {
            return Err(Failure::Input(anyhow::anyhow!(
                "--threads must be at least 1"
            )))
        }
        Some(n) if n > cores * MAX_THREADS_PER_CORE => {
            let max = cores * MAX_THREADS_PER_CORE;
            eprintln!(
                "warning: --threads {n} is more than {MAX_THREADS_PER_CORE} per core on this \
                 {cores}-core machine; using {max}"
            );
            max
        }
        Some(n) => n,
    };
    // Polars reads this when its pool starts (first use), so it is set before any I/O.
    std::env::set_var("POLARS_MAX_THREADS", threads.to_string());
    Ok(threads)
}

fn segment_command(a: SegmentArgs) -> Result<(), Failure> {
    let threads = worker_threads(a.threads)?;
    let timeout = match a.timeout {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return Err(Failure::Input(anyhow::anyhow!(
                "--timeout must be a positive number of seconds"
            )))
        }
        // A timeout too long to represent never expires.
        t => t.and_then(|t| std::time::Duration::try_from_secs_f64(t).ok()),
    };
    commands::segment::segment(&commands::segment::SegmentSpec {
        customers: a.customers,
        events: a.events,
        segments: a.segments,
        as_of: a.as_of,
        out: a.out,
        explain: a.explain,
        threads: Some(threads),
        timeout,
        changes: commands::segment_refresh::ChangeFiles {
            new_customers: a.new_customers,
            updates: a.updates,
            new_events: a.new_events,
            as_of: a.refresh_as_of,
        },
    })
}
