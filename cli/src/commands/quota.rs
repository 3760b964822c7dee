//! `fusebox quota status|raise|resume|reset|set|rewind|recover`: an operator's view of a quota
//! ledger.
//!
//! The ledger is a durable file (`--ledger PATH`, as written by `fusebox run --ledger`) or a
//! Redis server (`--redis URL`). The process configuration comes from `--quotas FILE` or,
//! without it, from the configuration the ledger stored on its last run. Every command acts
//! on the quota day of `--at` (RFC 3339; default: now) in each process's time zone; use the
//! events' dates when inspecting a replayed log.
//!
//! `recover` is the one command that works on a ledger file the others refuse (corrupt,
//! acknowledged records lost, format version 1): it shows what is readable and, with
//! `--accept-loss`, rewrites the ledger from it and records the recovery in the ledger, where
//! `status` and run summaries show it from then on.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use fusebox_quotas::{
    AuditedProcess, CollectingNotifier, DurableLedger, Inspection, Limits, ProcessStatus, QuotaDay,
    Quotas, Usage,
};

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
    /// Set a process's usage for its quota day by hand, e.g. after `recover` accepted a loss:
    /// a new period with this usage (a dimension not given keeps its usage), active until a
    /// request does not fit.
    Set {
        #[command(flatten)]
        target: Target,
        /// The process.
        #[arg(long)]
        process: String,
        /// Records used on the day.
        #[arg(long)]
        records: Option<u64>,
        /// Bytes used on the day.
        #[arg(long)]
        bytes: Option<u64>,
    },
    /// Move a process back from the quota day it is on to an earlier one, keeping its usage:
    /// the way out when an event stamped far in the future pinned it to that day (a ledger
    /// never moves backwards by itself, and `reset` acts on the pinned day).
    Rewind {
        #[command(flatten)]
        target: Target,
        /// The process.
        #[arg(long)]
        process: String,
        /// The day to move to (YYYY-MM-DD); default: the process's quota day of --at.
        #[arg(long, value_name = "DATE")]
        to_day: Option<String>,
    },
    /// Inspect a ledger file that is refused (corrupt, acknowledged records lost, format
    /// version 1) and, with --accept-loss, rewrite it from its readable records. The recovery
    /// is recorded in the ledger (when, who, why, what was lost) and shown by `status`. Exit 0
    /// when the ledger is usable (afterwards), 2 when it still needs recovery.
    Recover {
        /// The ledger file.
        #[arg(long, value_name = "PATH")]
        ledger: PathBuf,
        /// Rewrite the ledger from the readable records, accepting that the usage in the
        /// lost part is no longer counted (check the processes listed, and correct their
        /// usage with `quota set` if needed).
        #[arg(long)]
        accept_loss: bool,
        /// Why, for the audit record (e.g. a ticket number).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Who, for the audit record; default: $USER.
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
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
            print_recovery_notes(&quotas, json);
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
        Action::Set {
            target,
            process,
            records,
            bytes,
        } => {
            if records.is_none() && bytes.is_none() {
                return Err(Failure::Input(anyhow::anyhow!(
                    "set needs --records N and/or --bytes N"
                )));
            }
            let (quotas, notifier, at) = target.open()?;
            let current = quotas
                .status(Some(&process), at)
                .map_err(quotas_failure)?
                .into_iter()
                .next()
                .map_or(Usage::ZERO, |s| s.used);
            let used = Usage::new(
                records.unwrap_or(current.records),
                bytes.unwrap_or(current.bytes),
            );
            let status = quotas
                .set_usage(&process, used, at)
                .map_err(quotas_failure)?;
            finish(&quotas, &notifier, status)
        }
        Action::Rewind {
            target,
            process,
            to_day,
        } => {
            let (quotas, notifier, at) = target.open()?;
            let to = match &to_day {
                Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(QuotaDay::from_date)
                    .map_err(|e| {
                        Failure::Input(anyhow::anyhow!(
                            "--to-day {text:?}: not a date ({e}); e.g. 2026-03-05"
                        ))
                    })?,
                None => quotas.quota_day(&process, at).map_err(quotas_failure)?,
            };
            let status = quotas.rewind(&process, to).map_err(quotas_failure)?;
            finish(&quotas, &notifier, status)
        }
        Action::Recover {
            ledger,
            accept_loss,
            reason,
            operator,
        } => recover(&ledger, accept_loss, reason.as_deref(), operator),
    }
}

/// How long `recover` waits for the ledger's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn recover(
    path: &std::path::Path,
    accept_loss: bool,
    reason: Option<&str>,
    operator: Option<String>,
) -> Result<(), Failure> {
    if !path.exists() {
        return Err(Failure::Input(anyhow::anyhow!(
            "no quota ledger at {}",
            path.display()
        )));
    }
    let seen = DurableLedger::inspect(path, LOCK_WAIT).map_err(ledger_failure)?;
    print_inspection(&seen);
    if seen.problem.is_none() {
        println!("nothing to recover: the ledger opens as it is");
        return Ok(());
    }
    if !accept_loss {
        println!(
            "to rewrite the ledger from the readable records, accepting the loss:\n  \
             fusebox quota recover --ledger {} --accept-loss [--reason TEXT]",
            path.display()
        );
        return Err(Failure::Input(anyhow::anyhow!(
            "{} needs recovery (see above); nothing was changed",
            path.display()
        )));
    }
    let operator = operator
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let audit = DurableLedger::recover(path, LOCK_WAIT, Utc::now(), &operator, reason)
        .map_err(ledger_failure)?
        .ok_or_else(|| {
            Failure::Runtime(anyhow::anyhow!(
                "the ledger changed while it was inspected; run recover again"
            ))
        })?;
    println!("recovered: {}", audit.summary());
    let line = serde_json::to_string(&audit).map_err(|e| Failure::Runtime(e.into()))?;
    println!("audit record (kept in the ledger): {line}");
    println!(
        "usage in the lost part is no longer counted; if the processes above ran more on \
         those days, correct them with `fusebox quota set`"
    );
    Ok(())
}

/// What `recover` found, for the operator to judge.
fn print_inspection(seen: &Inspection) {
    println!(
        "ledger {}: format version {}, {} bytes",
        seen.path.display(),
        seen.format_version,
        seen.file_len
    );
    match (seen.durable_end, seen.clean_close) {
        (Some(end), Some(clean)) => println!(
            "  acknowledged up to byte {end} (superblock mark); last session {}",
            if clean {
                "closed cleanly"
            } else {
                "did not close cleanly"
            }
        ),
        _ => println!("  no superblock mark: how much was acknowledged is unknown"),
    }
    println!(
        "  readable: {} records, up to byte {}",
        seen.records, seen.readable_end
    );
    if seen.torn_bytes > 0 {
        println!(
            "  a torn tail of {} unacknowledged bytes is truncated when the ledger is opened",
            seen.torn_bytes
        );
    }
    if let Some(problem) = &seen.problem {
        println!("  refused: {problem}");
    }
    if !seen.processes.is_empty() {
        println!(
            "state in the readable records{}:",
            if seen.problem.is_some() {
                " (usage on these days may be under-counted)"
            } else {
                ""
            }
        );
        print_audited(&seen.processes);
    }
    for a in &seen.audits {
        println!("earlier recovery: {}", a.summary());
    }
}

fn print_audited(processes: &[AuditedProcess]) {
    let rows: Vec<[String; 5]> = processes
        .iter()
        .map(|p| {
            [
                p.process.clone(),
                state_name(p.state),
                p.used.records.to_string(),
                p.used.bytes.to_string(),
                p.quota_day
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_rows(
        &["PROCESS", "STATE", "RECORDS", "BYTES", "QUOTA DAY"],
        &rows,
    );
}

/// After `status`: how the ledger was found when opened, if that is news (an unclean close, a
/// truncated tail, an operator's recovery). On stderr with `--json`, so stdout stays one
/// object per process.
fn print_recovery_notes(quotas: &Quotas, json: bool) {
    let Some(report) = quotas.recovery() else {
        return;
    };
    let mut notes = Vec::new();
    if !report.clean_close || report.truncated_bytes > 0 {
        notes.push(format!("ledger {}: {report}", quotas.ledger().describe()));
    }
    for (i, a) in report.audits.iter().enumerate() {
        notes.push(format!("ledger recovered by an operator: {}", a.summary()));
        if i + 1 < report.audits.len() {
            continue;
        }
        for p in &a.processes {
            if let Some(day) = p.quota_day {
                notes.push(format!(
                    "  {} kept {} on {day} (may be under-counted)",
                    p.process, p.used
                ));
            }
        }
    }
    for n in notes {
        if json {
            eprintln!("note: {n}");
        } else {
            println!("{n}");
        }
    }
}

fn state_name(state: fusebox_quotas::QuotaState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
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
                state_name(s.state),
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
    print_rows(&header, &rows);
}

/// A left-aligned table with a header row.
fn print_rows<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
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
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
