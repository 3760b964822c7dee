//! A small HTTP service embedding the Fusebox live engine: a backend's event intake.
//!
//! ```text
//! cargo run --release --example service -- [--listen 127.0.0.1:8080]
//!     [--customers examples/customers.csv] [--triggers examples/triggers.yaml]
//!     [--log accepted.jsonl] [--threads 2] [--max-delay-ms 1] [--max-batch 1024]
//! ```
//!
//! Routes are in `app.rs`: `POST /events`, `PUT /triggers`, `GET /status`, `GET /metrics`.
//! SIGTERM or Ctrl-C shuts down gracefully: no new requests, every accepted event is run
//! and answered, then the final figures are printed. With `--log`, every accepted event is
//! recorded; `fusebox run --customers … --triggers … --events LOG --out DIR` replays the
//! session exactly.

mod app;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fusebox::engine::config::compile_triggers;
use fusebox::engine::io::customers::load_customers;
use fusebox::engine::live::{LiveConfig, LiveEngine};
use fusebox::engine::state::State;
use fusebox::engine::{Engine, ExecutorKind};

struct Args {
    listen: String,
    customers: PathBuf,
    triggers: PathBuf,
    log: Option<PathBuf>,
    threads: usize,
    max_delay_ms: u64,
    max_batch: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:8080".into(),
        customers: "examples/customers.csv".into(),
        triggers: "examples/triggers.yaml".into(),
        log: None,
        threads: 2,
        max_delay_ms: 1,
        max_batch: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?,
            "--customers" => args.customers = value()?.into(),
            "--triggers" => args.triggers = value()?.into(),
            "--log" => args.log = Some(value()?.into()),
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--max-delay-ms" => {
                args.max_delay_ms = value()?
                    .parse()
                    .map_err(|e| format!("--max-delay-ms: {e}"))?
            }
            "--max-batch" => {
                args.max_batch = value()?.parse().map_err(|e| format!("--max-batch: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = parse_args()?;
    // Loading is CPU and file work: done before the async runtime starts.
    let customers = load_customers(&args.customers)?;
    let text = std::fs::read_to_string(&args.triggers)
        .map_err(|e| format!("cannot read {}: {e}", args.triggers.display()))?;
    let triggers = compile_triggers(
        &text,
        &args.triggers.display().to_string(),
        Some(customers.schema()),
    )?;
    let engine = Engine::builder(triggers)
        .executor(ExecutorKind::parallel(args.threads.max(1)))
        .build()?;
    let state = State::new(customers, engine.triggers());
    let live = LiveEngine::builder(engine, state)
        .config(LiveConfig {
            max_batch: args.max_batch,
            max_delay: Duration::from_millis(args.max_delay_ms),
            accepted_log: args.log.clone(),
            ..LiveConfig::default()
        })
        .start()?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        eprintln!(
            "fusebox service listening on http://{}",
            listener.local_addr()?
        );
        let app = app::App {
            live,
            metrics: Some(Arc::new(metrics)),
        };
        let report = app::serve(listener, app, shutdown_signal()).await?;
        let s = &report.status;
        eprintln!(
            "shut down: {} events accepted, {} answered in {} batches; p50 {:.2} ms, p99 {:.2} ms",
            s.accepted, s.completed, s.batches, s.latency.p50_ms, s.latency.p99_ms
        );
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: draining accepted events");
}
