//! Quotas in the CLI: loading `quotas.yaml`, opening a ledger, rendering quota
//! configuration errors, and the quota outputs of `fusebox run` (`held.jsonl`, the summary
//! line; the owners' notifications are `crate::notify`'s).
//!
//! Shared by `run`, `demo`, `check` and `quota`; the rules themselves live in
//! `fusebox-quotas` and the gate in `fusebox_engine::gate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use fusebox_engine::config::{Diagnostic, Severity};
use fusebox_engine::event::Event;
use fusebox_engine::gate::{Canonical, HeldEvent};
use fusebox_engine::report::Report;
use fusebox_quotas::{
    ConfigError, Denial, DurableLedger, Ledger, LedgerError, MemoryLedger, Notification,
    QuotaConfig, Quotas, QuotasError, RedisLedger, RedisOptions, ReferenceClock,
};
use serde::Serialize;

use crate::diagnostics::print_diagnostics;
use crate::notify::{RunNotifier, WebhookSetup};
use crate::Failure;

/// The quota options of `fusebox run`.
#[derive(Args, Clone, Debug, Default)]
pub struct QuotaRunArgs {
    /// Daily per-process quotas (quotas.yaml): events carrying a `process` are charged
    /// before they run; an exhausted process's events are held (held.jsonl) and its owner
    /// notified (notifications.jsonl).
    #[arg(long, value_name = "FILE")]
    pub quotas: Option<PathBuf>,
    /// Durable quota ledger file, created if missing and kept across runs. Without
    /// --ledger or --redis, usage is counted in memory for this run only.
    #[arg(
        long,
        value_name = "PATH",
        requires = "quotas",
        conflicts_with = "redis"
    )]
    pub ledger: Option<PathBuf>,
    /// Redis server shared by several engine instances, e.g. redis://127.0.0.1:6379/.
    #[arg(long, value_name = "URL", requires = "quotas")]
    pub redis: Option<String>,
    /// The quotas' reference clock (RFC 3339), default: the wall clock. Events stamped more
    /// than `max_event_lead` (quotas.yaml, default 1d) after it are held (reason
    /// ahead_of_clock) without touching the ledger. Fix it for a deterministic replay.
    #[arg(long, value_name = "TIME", requires = "quotas", value_parser = parse_time)]
    pub quota_now: Option<DateTime<Utc>>,
    /// Also POST each owner notification as JSON to this http:// or https:// URL, from a
    /// background thread, retried with backoff on failure (the run never waits for it).
    /// At the end the run waits up to --notify-timeout for deliveries and prints how many
    /// were delivered and failed; every notification is in notifications.jsonl regardless.
    #[arg(
        long,
        value_name = "URL",
        requires = "quotas",
        value_parser = crate::notify::parse_webhook_url
    )]
    pub notify_webhook: Option<String>,
    /// Seconds the end of the run waits for webhook deliveries (default 30).
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "notify_webhook",
        value_parser = crate::notify::parse_timeout
    )]
    pub notify_timeout: Option<Duration>,
}

/// Parses an RFC 3339 instant for a command-line option.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); e.g. 2026-03-05T12:00:00Z"))
}

impl QuotaRunArgs {
    /// The quota setup requested, if any.
    pub fn setup(&self) -> Option<QuotaSetup> {
        let config = self.quotas.clone()?;
        let ledger = match (&self.ledger, &self.redis) {
            (Some(path), _) => LedgerChoice::File(path.clone()),
            (None, Some(url)) => LedgerChoice::Redis(url.clone()),
            (None, None) => LedgerChoice::Memory,
        };
        let webhook = self.notify_webhook.clone().map(|url| WebhookSetup {
            url,
            timeout: self
                .notify_timeout
                .unwrap_or(Duration::from_secs_f64(crate::notify::DEFAULT_TIMEOUT_SECS)),
        });
        Some(QuotaSetup {
            config,
            ledger,
            reference_now: self.quota_now,
            webhook,
        })
    }
}

/// Where quota usage lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerChoice {
    /// In memory, for one run.
    Memory,
    /// A durable ledger file.
    File(PathBuf),
    /// A Redis server.
    Redis(String),
}

/// Quotas for a run: the configuration file and the ledger.
#[derive(Clone, Debug)]
pub struct QuotaSetup {
    /// quotas.yaml
    pub config: PathBuf,
    /// The ledger.
    pub ledger: LedgerChoice,
    /// A fixed reference clock (`--quota-now`); `None`: the wall clock.
    pub reference_now: Option<DateTime<Utc>>,
    /// Where else owners' notifications go (`--notify-webhook`).
    pub webhook: Option<WebhookSetup>,
}

/// A quota manager ready for a run, with where its notifications go.
pub struct Prepared {
    /// The manager.
    pub quotas: Quotas,
    /// The owners' notifications: collected, `notifications.jsonl`, the webhook.
    pub notifications: RunNotifier,
}

/// Loads the configuration and opens the ledger. Configuration problems are printed with
/// file, line and column (`Failure::Reported`); a corrupt or unreadable ledger is refused.
pub fn prepare(setup: &QuotaSetup) -> Result<Prepared, Failure> {
    let config = load_config(&setup.config)?;
    let ledger = open_ledger(&setup.ledger, true)?;
    let notifications = RunNotifier::new(setup.webhook.as_ref())?;
    let mut quotas =
        Quotas::new(config, ledger, notifications.notifier()).map_err(quotas_failure)?;
    if let Some(now) = setup.reference_now {
        quotas = quotas.with_reference_clock(ReferenceClock::Fixed(now));
    }
    Ok(Prepared {
        quotas,
        notifications,
    })
}

/// Reads and validates a quota file, printing every problem located.
pub fn load_config(path: &Path) -> Result<QuotaConfig, Failure> {
    let text = crate::files::read_text(path)?;
    QuotaConfig::from_yaml_str(&text, &path.display().to_string()).map_err(|e| {
        print_config_error(&e, &text);
        Failure::Reported
    })
}

/// Validates quota YAML for `fusebox check`; prints the result. Returns whether it is valid.
pub fn check_text(name: &str, text: &str) -> bool {
    match QuotaConfig::from_yaml_str(text, name) {
        Ok(cfg) => {
            let shadow = cfg.processes.iter().filter(|p| p.shadow).count();
            println!(
                "ok: {name}: {} processes ({shadow} shadow), events more than {} ahead of the \
                 clock held, unknown processes: {}",
                cfg.processes.len(),
                fusebox_quotas::config::format_duration(cfg.max_event_lead),
                match cfg.unknown_process {
                    fusebox_quotas::UnknownProcess::Deny => "denied".to_string(),
                    fusebox_quotas::UnknownProcess::Default => format!(
                        "share the default bucket ({})",
                        cfg.default_limits
                            .map(|l| l.to_string())
                            .unwrap_or_default()
                    ),
                }
            );
            true
        }
        Err(e) => {
            print_config_error(&e, text);
            false
        }
    }
}

/// Prints a quota configuration error as located miette reports.
pub fn print_config_error(err: &ConfigError, text: &str) {
    let diagnostics: Vec<Diagnostic> = err
        .diagnostics
        .iter()
        .map(|d| {
            let message = if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            };
            let span = d.byte_offset.map(|o| {
                let start = o as usize;
                (start, start + d.byte_len.unwrap_or(0) as usize)
            });
            let mut diagnostic = Diagnostic {
                severity: Severity::Error,
                message,
                line: d.line.unwrap_or(0),
                column: d.column.unwrap_or(0),
                span,
                help: d.help.clone(),
            };
            // Syntax errors come with a line and column but no byte offset: the snippet is
            // placed from those, as for the other configuration files.
            diagnostic.locate_in(text);
            diagnostic
        })
        .collect();
    print_diagnostics(&err.source_name, text, &diagnostics);
}

/// Opens a ledger backend. `create`: a missing ledger file is created (runs); otherwise it
/// must exist (operator commands).
pub fn open_ledger(choice: &LedgerChoice, create: bool) -> Result<Box<dyn Ledger>, Failure> {
    match choice {
        LedgerChoice::Memory => Ok(Box::new(MemoryLedger::new())),
        LedgerChoice::File(path) => {
            if !create && !path.exists() {
                return Err(Failure::Input(anyhow::anyhow!(
                    "no quota ledger at {} (`fusebox run --quotas FILE --ledger {}` creates it)",
                    path.display(),
                    path.display()
                )));
            }
            DurableLedger::open(path)
                .map(|l| Box::new(l) as Box<dyn Ledger>)
                .map_err(ledger_failure)
        }
        LedgerChoice::Redis(url) => RedisLedger::connect(url, RedisOptions::default())
            .map(|l| Box::new(l) as Box<dyn Ledger>)
            .map_err(ledger_failure),
    }
}

/// A ledger the open refuses — corrupt, acknowledged records lost, an old format — is bad
/// input (exit 2: restore the file or recover it with `fusebox quota recover`); anything else
/// is a runtime failure (exit 1).
pub fn ledger_failure(e: LedgerError) -> Failure {
    let e = anyhow::Error::new(e).context("cannot open the quota ledger");
    match e.downcast_ref::<LedgerError>() {
        Some(
            LedgerError::Corrupt { .. }
            | LedgerError::TailLost { .. }
            | LedgerError::OldFormat { .. },
        ) => Failure::Input(e),
        _ => Failure::Runtime(e),
    }
}

/// The ledger as the run summary names it: its description and, for a persistent ledger,
/// what opening it found, e.g. `file:q.ledger (opened after a crash: 120 records, torn tail of
/// 18 unacknowledged bytes truncated)`.
pub fn ledger_summary(quotas: &Quotas) -> String {
    let ledger = quotas.ledger().describe();
    match quotas.recovery() {
        Some(report) => format!("{ledger} ({report})"),
        None => ledger,
    }
}

/// A ledger failure as [`ledger_failure`] classifies it; any other quota error is bad input
/// (exit 2).
pub fn quotas_failure(e: QuotasError) -> Failure {
    match e {
        QuotasError::Ledger(e) => ledger_failure(e),
        other => Failure::Input(anyhow::Error::new(other).context("cannot set up quotas")),
    }
}

/// One line of `held.jsonl`.
#[derive(Serialize)]
struct HeldLine<'a> {
    line: u64,
    event_id: &'a str,
    /// `reason` (exhausted / stopped / unknown_process / backend_unavailable /
    /// ahead_of_clock), `process` and the reason's details.
    #[serde(flatten)]
    denial: &'a Denial,
    bytes: u64,
    message: String,
    /// The event as charged: its compact form is `bytes` long.
    event: Option<Canonical<'a>>,
}

/// One line of `held.jsonl` for `held` (without its newline): `event` is the held record's
/// event, if it parsed. `notifications.jsonl` is written as the run goes.
pub fn held_line(held: &HeldEvent, event: Option<&Event>) -> Result<String> {
    let line = HeldLine {
        line: held.line,
        event_id: &held.event_id,
        denial: &held.denial,
        bytes: held.bytes,
        message: held.denial.to_string(),
        event: event.map(Canonical::of),
    };
    Ok(serde_json::to_string(&line)?)
}

/// The quota lines of the run summary.
pub fn print_summary(report: &Report, notifications: &[Notification], ledger: &str) {
    let held: u64 = report.held_by_process.values().sum();
    let by_process: Vec<String> = report
        .held_by_process
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for n in notifications {
        *kinds.entry(n.kind.as_str()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "quotas: {} held{} (held.jsonl); {} notifications to owners{} (notifications.jsonl); ledger {ledger}",
        held,
        if by_process.is_empty() {
            String::new()
        } else {
            format!(": {}", by_process.join(", "))
        },
        notifications.len(),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(": {}", kinds.join(", "))
        },
    );
}
