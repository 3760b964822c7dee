//! `fusebox quota status|raise|resume|reset`: an operator's view of a quota ledger.
//!
//! The ledger is a durable file (`--ledger PATH`, as written by `fusebox run --ledger`) or a
//! Redis server (`--redis URL`). The process configuration comes from `--quotas FILE` or,
//! without it, from the configuration the ledger stored on its last run. Every command acts
//! on the quota day of `--at` (RFC 3339; default: now) in each process's time zone; use the
//! events' dates when inspecting a replayed log.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use fusebox_quotas::{CollectingNotifier, Limits, ProcessStatus, Quotas};

use crate::quotas::{ledger_failure, load_config, open_ledger, quotas_failure, LedgerChoice};
use crate::Failure;

/// `fusebox quota …`
#[derive(Args, Debug)]
pub struct QuotaArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Usage, limit and state of every process (or one) on its quota day.
    Status {
        #[command(flatten)]
        target: Target,
        /// Only this process.
        #[arg(long)]
        process: Option<String>,
        /// One JSON object per process instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Raise a process's limits for the rest of its quota day; clears a stop.
    Raise {
        #[command(flatten)]
        target: Target,
        /// The process.
        #[arg(long)]
        process: String,
        /// New daily record limit (not lower than the current one).
        #[arg(long)]
        records: Option<u64>,
        /// New daily byte limit (not lower than the current one).
        #[arg(long)]
        bytes: Option<u64>,
    },
    /// Let a stopped process run again (usage and limit unchanged).
    Resume {
        #[command(flatten)]
        target: Target,
        /// The process.
        #[arg(long)]
        process: String,
    },
    /// Zero a process's usage for its quota day and make it active.
    Reset {
        #[command(flatten)]
        target: Target,
        /// The process.
        #[arg(long)]
        process: String,
    },
}

/// Which ledger, which configuration, which instant.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("backend").required(true).args(["ledger", "redis"])))]
struct Target {
    /// Durable ledger file (as written by `fusebox run --ledger`).
    #[arg(long, value_name = "PATH")]
    ledger: Option<PathBuf>,
    /// Redis server holding the shared ledger.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Quota configuration; default: the one stored in the ledger. Like a run, this stores
    /// the file's process configuration in the ledger (usage is kept).
    #[arg(long, value_name = "FILE")]
    quotas: Option<PathBuf>,
    /// The instant whose quota day is meant (RFC 3339, e.g. 2026-03-05T12:00:00Z); default: now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl Target {
    fn open(&self) -> Result<(Quotas, Arc<CollectingNotifier>, DateTime<Utc>), Failure> {
        let at = match &self.at {
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    Failure::Input(anyhow::anyhow!(
                        "--at {text:?}: not an RFC 3339 time ({e}); e.g. 2026-03-05T12:00:00Z"
                    ))
                })?
                .with_timezone(&Utc),
            None => Utc::now(),
        };
        let choice = match (&self.ledger, &self.redis) {
            (Some(path), _) => LedgerChoice::File(path.clone()),
            (None, Some(url)) => LedgerChoice::Redis(url.clone()),
            (None, None) => {
                return Err(Failure::Input(anyhow::anyhow!(
                    "pass --ledger PATH or --redis URL"
                )))
            }
        };
        let config = self.quotas.as_deref().map(load_config).transpose()?;
        let ledger = open_ledger(&choice, false)?;
        let notifier = Arc::new(CollectingNotifier::new());
        let quotas = match config {
            Some(config) => Quotas::new(config, ledger, notifier.clone()),
            None => {
                let declared = ledger.declared().map_err(ledger_failure)?;
                if declared.is_empty() {
                    return Err(Failure::Input(anyhow::anyhow!(
                        "the ledger declares no processes yet; pass --quotas FILE"
                    )));
                }
                Quotas::from_ledger(ledger, notifier.clone())
            }
        }
        .map_err(quotas_failure)?;
        Ok((quotas, notifier, at))
    }
}

/// Runs a `fusebox quota` command.
pub fn quota(args: QuotaArgs) -> Result<(), Failure> {
    match args.action {
        Action::Status {
            target,
            process,
            json,
        } => {
            let (quotas, _, at) = target.open()?;
            let statuses = quotas
                .status(process.as_deref(), at)
                .map_err(quotas_failure)?;
            if json {
                for s in &statuses {
                    let line = serde_json::to_string(s)
                        .map_err(|e| Failure::Runtime(anyhow::Error::new(e)))?;
                    println!("{line}");
                }
            } else {
                print_table(&statuses);
            }
            Ok(())
        }
        Action::Raise {
            target,
            process,
            records,
            bytes,
        } => {
            if records.is_none() && bytes.is_none() {
                return Err(Failure::Input(anyhow::anyhow!(
                    "raise needs --records N and/or --bytes N"
                )));
            }
            let (quotas, notifier, at) = target.open()?;
            let status = quotas
                .raise(&process, Limits::new(records, bytes), at)
                .map_err(quotas_failure)?;
            finish(&quotas, &notifier, status)
        }
        Action::Resume { target, process } => {
            let (quotas, notifier, at) = target.open()?;
            let status = quotas.resume(&process, at).map_err(quotas_failure)?;
            finish(&quotas, &notifier, status)
        }
        Action::Reset { target, process } => {
            let (quotas, notifier, at) = target.open()?;
            let status = quotas.reset(&process, at).map_err(quotas_failure)?;
            finish(&quotas, &notifier, status)
        }
    }
}

/// Persists an operator action and shows its result and the owner's notification.
fn finish(
    quotas: &Quotas,
    notifier: &CollectingNotifier,
    status: ProcessStatus,
) -> Result<(), Failure> {
    quotas.sync().map_err(ledger_failure)?;
    print_table(std::slice::from_ref(&status));
    for n in notifier.take() {
        println!("notify {}: {}", n.owner, n.message);
    }
    Ok(())
}

fn amount(used: u64, limit: Option<u64>) -> String {
    match limit {
        Some(l) => format!("{used}/{l}"),
        None => format!("{used}/-"),
    }
}

fn print_table(statuses: &[ProcessStatus]) {
    let rows: Vec<[String; 8]> = statuses
        .iter()
        .map(|s| {
            let mut notes = Vec::new();
            if s.shadow {
                notes.push("shadow".to_string());
            }
            if s.raised {
                notes.push(format!("raised from {}", s.configured_limit));
            }
            [
                s.process.clone(),
                serde_json::to_value(s.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                amount(s.used.records, s.limit.records),
                amount(s.used.bytes, s.limit.bytes),
                s.quota_day.to_string(),
                s.time_zone.clone(),
                s.resets_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                notes.join(", "),
            ]
        })
        .collect();
    let header = [
        "PROCESS",
        "STATE",
        "RECORDS",
        "BYTES",
        "QUOTA DAY",
        "TIME ZONE",
        "RESETS AT",
        "NOTES",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
