//! The durable embedded ledger: exact per-process state in memory, every
//! change appended to a checksummed log file (see `ledger::wal` for the
//! format and recovery rules).
//!
//! # Durability guarantee
//!
//! *After a crash at any moment, the usage recorded on restart is never
//! lower than what was granted — or the ledger refuses to open.* Precisely:
//!
//! * A reserve is acknowledged (returns granted) only after the log record
//!   carrying its charge is durable at the configured [`Durability`]:
//!   handed to the OS (survives `kill -9`) or `fdatasync`ed (survives power
//!   loss), *and* covered by the superblock's mark. The same holds for
//!   operator actions and for the STOPPED / WARNED flags, so "notify once"
//!   also survives a restart.
//! * Refunds (commit of less than reserved, dropped reservations) are
//!   appended but not waited for; a crash can lose the last of them, which
//!   leaves usage *higher* than true, never lower.
//! * A record that was not completely written (a torn tail past the mark)
//!   was never acknowledged and is dropped on open.
//! * Acknowledged records that are gone — the file cut or zero-filled below
//!   its mark, by a truncating copy, a bad restore, a file system that lost
//!   data — refuse to open with [`LedgerError::TailLost`]; any other damage
//!   (bad checksum, bad structure, a state for an undeclared process) with
//!   [`LedgerError::Corrupt`]; a version-1 file, which has no mark, with
//!   [`LedgerError::OldFormat`]. The ledger is never silently reset or
//!   shortened, and every opener (`fusebox run`, `fusebox quota …`) goes
//!   through this one open path.
//!
//! # Explicit recovery
//!
//! A refused file is left as found. [`DurableLedger::inspect`] reads it
//! without changing it: the readable records, the state they replay to, the
//! mark, and what is wrong. [`DurableLedger::recover`] — `fusebox quota
//! recover --ledger PATH --accept-loss` — is the operator's deliberate way
//! out: it rewrites the ledger (atomically, as a sealed version-2 log) from
//! the readable records, and appends a [`RecoveryAudit`] record saying when,
//! by whom, why, what was lost and which usage was kept (possibly
//! under-counted). Audit records survive compaction and are reported by
//! every later open ([`RecoveryReport::audits`]), so the recovery stays
//! visible in `fusebox quota status` and in run summaries.
//!
//! # Cost
//!
//! Each state record is 58 bytes plus a 12-byte frame. A grant costs one mutex
//! round on its process, a buffer copy, and a share of one group commit:
//! one `write(2)` and one 32-byte mark `pwrite` under `ProcessCrash` (a few
//! µs, shared by every thread that appended meanwhile), plus one
//! `fdatasync` under `PowerLoss`. The bench (`benches/reserve_commit.rs`)
//! reports the measured figures.
//!
//! # Records
//!
//! ```text
//! Declare = 0x01 | slot: u32 | ProcessConfig as JSON (rest of payload)
//! State   = 0x02 | slot: u32 | day: i32 | seq: u32 | used_records: u64 | used_bytes: u64
//!                | flags: u8 | raised_day: i32 | raised_records: u64 | raised_bytes: u64
//! Audit   = 0x03 | RecoveryAudit as JSON (rest of payload)
//! ```
//!
//! A State record is the complete post-state of one process's period, so
//! replay is "last record wins" per slot. Because a process's state changes
//! and its appends happen under the same mutex, log order equals state order
//! for every process. The log is compacted (rewritten as one Declare + one
//! State per process, then the Audit records, atomically via rename) when
//! it passes [`DurableOptions::compact_at_bytes`].
//!
//! One process at a time: the file is locked exclusively
//! ([`LedgerError::Locked`] for a second opener), so operator tools run
//! against it while the engine is stopped — or in-process via the library.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::wal::{Locked, Problem, Scanned, Survey, Wal};
use super::{Ledger, LedgerError};
use crate::config::ProcessConfig;
use crate::day::QuotaDay;
use crate::state::{
    Operation, Period, PeriodState, QuotaState, ReserveOutcome, ReserveRequest, SlotSnapshot,
};
use crate::usage::Usage;

pub use super::wal::Durability;

const DECLARE: u8 = 1;
const STATE: u8 = 2;
const AUDIT: u8 = 3;
const STATE_LEN: usize = 1 + 4 + 4 + 4 + 8 + 8 + 1 + 4 + 8 + 8;
/// Refunds are not waited for, but are flushed once this much is buffered.
const REFUND_FLUSH_BYTES: usize = 256 * 1024;

/// Tuning of a [`DurableLedger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableOptions {
    /// What an acknowledged grant survives.
    pub durability: Durability,
    /// Compact the log once the file passes this size.
    pub compact_at_bytes: u64,
    /// How long `open` waits for another holder of the file lock to let go
    /// before failing with [`LedgerError::Locked`].
    pub lock_wait: Duration,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            durability: Durability::ProcessCrash,
            compact_at_bytes: 64 * 1024 * 1024,
            lock_wait: Duration::from_millis(500),
        }
    }
}

/// What opening the ledger found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Valid records replayed.
    pub records: u64,
    /// Bytes of an unacknowledged torn tail that were dropped.
    pub truncated_bytes: u64,
    /// Processes declared in the file.
    pub processes: usize,
    /// The superblock's mark: every record before this byte had been
    /// acknowledged (and was found).
    pub durable_end: u64,
    /// The previous session closed the ledger cleanly. `false` after a
    /// crash (or a kill): nothing acknowledged was lost, but the last
    /// refunds may have been (usage over-counted).
    pub clean_close: bool,
    /// The file did not exist and was created.
    pub created: bool,
    /// Operator recoveries recorded in the ledger, oldest first.
    pub audits: Vec<RecoveryAudit>,
}

impl fmt::Display for RecoveryReport {
    /// One line for run summaries and `quota status`, e.g. `opened after a
    /// crash: 1240 records, torn tail of 18 unacknowledged bytes truncated`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created {
            f.write_str("new ledger")?;
        } else {
            let how = if self.clean_close {
                "closed cleanly"
            } else {
                "opened after a crash (the last refunds may be lost: usage over-counted, never under)"
            };
            write!(f, "{how}: {} records", self.records)?;
            if self.truncated_bytes > 0 {
                write!(
                    f,
                    ", torn tail of {} unacknowledged bytes truncated",
                    self.truncated_bytes
                )?;
            }
        }
        if let Some(last) = self.audits.last() {
            write!(
                f,
                "; recovered by an operator {} time{} (last: {})",
                self.audits.len(),
                if self.audits.len() == 1 { "" } else { "s" },
                last.summary()
            )?;
        }
        Ok(())
    }
}

/// Why a ledger needed an operator's recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryCause {
    /// Acknowledged records were missing ([`LedgerError::TailLost`]).
    TailLost,
    /// The file was damaged ([`LedgerError::Corrupt`]).
    Corrupt,
    /// The file was in a format without a mark ([`LedgerError::OldFormat`]).
    OldFormat,
}

/// One process's state as a recovery kept it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditedProcess {
    /// Process id.
    pub process: String,
    /// The quota day of its entry (`None`: never charged).
    pub quota_day: Option<QuotaDay>,
    /// Usage kept for that day (possibly lower than what was granted).
    pub used: Usage,
    /// State kept.
    pub state: QuotaState,
}

/// The audit record of an operator's recovery, stored in the ledger
/// (record type 0x03) and kept by every later compaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryAudit {
    /// When the recovery ran.
    pub at: DateTime<Utc>,
    /// Who ran it (as given to [`DurableLedger::recover`]).
    pub operator: String,
    /// The operator's reason, if given.
    pub reason: Option<String>,
    /// What was wrong.
    pub cause: RecoveryCause,
    /// The refusal the ledger gave, verbatim.
    pub problem: String,
    /// Format version of the file recovered.
    pub format_version: u32,
    /// The superblock's mark, when the file had one.
    pub durable_end: Option<u64>,
    /// End of the records kept.
    pub readable_end: u64,
    /// The file's length before the recovery.
    pub file_len: u64,
    /// Acknowledged bytes known to be lost (`durable_end - readable_end`);
    /// `None` when unknown (no usable mark).
    pub lost_bytes: Option<u64>,
    /// Bytes of the file that were not kept (`file_len - readable_end`).
    pub dropped_bytes: u64,
    /// Records kept.
    pub records_kept: u64,
    /// Each process's state as kept: usage on these days may be lower than
    /// what was granted (see `fusebox quota set` to correct it).
    pub processes: Vec<AuditedProcess>,
}

impl RecoveryAudit {
    /// One line: when, who, what.
    pub fn summary(&self) -> String {
        let cause = match self.cause {
            RecoveryCause::TailLost => "acknowledged tail lost",
            RecoveryCause::Corrupt => "corrupt",
            RecoveryCause::OldFormat => "format version 1 upgraded",
        };
        let lost = match self.lost_bytes {
            Some(n) => format!("{n} acknowledged bytes lost"),
            None if self.dropped_bytes > 0 => {
                format!("{} bytes dropped, loss unknown", self.dropped_bytes)
            }
            None => "loss unknown".to_string(),
        };
        let mut s = format!(
            "{} by {}: {cause}, {lost}, {} records kept",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.operator,
            self.records_kept
        );
        if let Some(r) = &self.reason {
            s.push_str(&format!(" (reason: {r})"));
        }
        s
    }
}

/// What [`DurableLedger::inspect`] finds in a ledger file, without changing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Format version (0 when the header is unreadable).
    pub format_version: u32,
    /// File length.
    pub file_len: u64,
    /// The superblock's mark, if readable.
    pub durable_end: Option<u64>,
    /// Whether the last session closed the file cleanly, if known.
    pub clean_close: Option<bool>,
    /// End of the readable records (what a recovery keeps).
    pub readable_end: u64,
    /// Readable records.
    pub records: u64,
    /// For a healthy file: bytes of unacknowledged torn tail an open truncates.
    pub torn_bytes: u64,
    /// Why an open refuses the file; `None` when it opens.
    pub cause: Option<RecoveryCause>,
    /// The refusal, as an open reports it.
    pub problem: Option<String>,
    /// Each declared process's state as the readable records give it.
    pub processes: Vec<AuditedProcess>,
    /// Earlier recoveries recorded in the readable records.
    pub audits: Vec<RecoveryAudit>,
}

struct Slot {
    /// Slot number used in this file's records.
    id: u32,
    meta: ProcessConfig,
    state: Mutex<PeriodState>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, PeriodState> {
        // PeriodState methods do not panic; a poisoned lock holds a valid state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The durable ledger. See the module docs for the guarantee and its cost.
pub struct DurableLedger {
    wal: Wal,
    opts: DurableOptions,
    /// After bind: bound processes in binding order, then processes found in
    /// the file but not bound (kept so compaction preserves them).
    slots: OnceLock<Vec<Slot>>,
    /// Before bind: what recovery found.
    recovered: Mutex<Vec<Slot>>,
    compacting: AtomicBool,
    report: RecoveryReport,
}

impl std::fmt::Debug for DurableLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableLedger")
            .field("path", &self.wal.path())
            .field("opts", &self.opts)
            .field("report", &self.report)
            .finish()
    }
}

fn encode_state(slot: u32, s: &PeriodState) -> Vec<u8> {
    let mut b = Vec::with_capacity(STATE_LEN);
    b.push(STATE);
    b.extend_from_slice(&slot.to_le_bytes());
    b.extend_from_slice(&s.day.days_since_epoch().to_le_bytes());
    b.extend_from_slice(&s.seq.to_le_bytes());
    b.extend_from_slice(&s.used.records.to_le_bytes());
    b.extend_from_slice(&s.used.bytes.to_le_bytes());
    b.push(s.flags);
    let (rd, rc) = match s.raised {
        Some((d, caps)) => (d.days_since_epoch(), caps),
        None => (i32::MIN, Usage::ZERO),
    };
    b.extend_from_slice(&rd.to_le_bytes());
    b.extend_from_slice(&rc.records.to_le_bytes());
    b.extend_from_slice(&rc.bytes.to_le_bytes());
    b
}

fn encode_declare(slot: u32, meta: &ProcessConfig) -> Result<Vec<u8>, LedgerError> {
    let mut b = vec![DECLARE];
    b.extend_from_slice(&slot.to_le_bytes());
    serde_json::to_writer(&mut b, meta)
        .map_err(|e| LedgerError::Protocol(format!("cannot encode process config: {e}")))?;
    Ok(b)
}

fn encode_audit(audit: &RecoveryAudit) -> Result<Vec<u8>, LedgerError> {
    let mut b = vec![AUDIT];
    serde_json::to_writer(&mut b, audit)
        .map_err(|e| LedgerError::Protocol(format!("cannot encode recovery audit: {e}")))?;
    Ok(b)
}

/// Little-endian field reader over a payload.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

enum Record {
    Declare(u32, ProcessConfig),
    State(u32, PeriodState),
    Audit(Box<RecoveryAudit>),
}

fn decode(path: &Path, rec: &Scanned) -> Result<Record, LedgerError> {
    let bad = |reason: String| LedgerError::Corrupt {
        path: path.to_path_buf(),
        offset: rec.offset,
        reason,
    };
    let mut f = Fields(&rec.payload);
    match f.u8() {
        Some(DECLARE) => {
            let slot = f
                .u32()
                .ok_or_else(|| bad("truncated declare record".into()))?;
            let meta: ProcessConfig = serde_json::from_slice(f.0)
                .map_err(|e| bad(format!("invalid process declaration: {e}")))?;
            Ok(Record::Declare(slot, meta))
        }
        Some(STATE) => {
            if rec.payload.len() != STATE_LEN {
                return Err(bad(format!(
                    "state record of {} bytes, expected {STATE_LEN}",
                    rec.payload.len()
                )));
            }
            let short = || bad("truncated state record".into());
            let slot = f.u32().ok_or_else(short)?;
            let day = f.i32().ok_or_else(short)?;
            let seq = f.u32().ok_or_else(short)?;
            let used = Usage::new(f.u64().ok_or_else(short)?, f.u64().ok_or_else(short)?);
            let flags = f.u8().ok_or_else(short)?;
            let rd = f.i32().ok_or_else(short)?;
            let rc = Usage::new(f.u64().ok_or_else(short)?, f.u64().ok_or_else(short)?);
            if flags & !(crate::state::WARNED | crate::state::STOPPED) != 0 {
                return Err(bad(format!("unknown state flags {flags:#x}")));
            }
            let raised = (rd != i32::MIN).then(|| (QuotaDay::from_days_since_epoch(rd), rc));
            Ok(Record::State(
                slot,
                PeriodState {
                    day: QuotaDay::from_days_since_epoch(day),
                    seq,
                    used,
                    flags,
                    raised,
                },
            ))
        }
        Some(AUDIT) => serde_json::from_slice(f.0)
            .map(|a| Record::Audit(Box::new(a)))
            .map_err(|e| bad(format!("invalid recovery audit record: {e}"))),
        Some(t) => Err(bad(format!("unknown record type {t}"))),
        None => Err(bad("empty record".into())),
    }
}

/// The state a log's records replay to.
#[derive(Default)]
struct Replayed {
    slots: BTreeMap<u32, (ProcessConfig, PeriodState)>,
    audits: Vec<RecoveryAudit>,
}

impl Replayed {
    fn apply(&mut self, path: &Path, rec: &Scanned) -> Result<(), LedgerError> {
        match decode(path, rec)? {
            Record::Declare(slot, meta) => {
                if let Some((_, other)) = self
                    .slots
                    .iter()
                    .find(|(s, (m, _))| **s != slot && m.id == meta.id)
                {
                    return Err(LedgerError::Corrupt {
                        path: path.to_path_buf(),
                        offset: rec.offset,
                        reason: format!(
                            "process `{}` declared in two slots ({slot} and another)",
                            other.0.id
                        ),
                    });
                }
                let state = self.slots.remove(&slot).map(|(_, s)| s).unwrap_or_default();
                self.slots.insert(slot, (meta, state));
            }
            Record::State(slot, state) => match self.slots.get_mut(&slot) {
                Some(entry) => entry.1 = state,
                None => {
                    return Err(LedgerError::Corrupt {
                        path: path.to_path_buf(),
                        offset: rec.offset,
                        reason: format!("state for undeclared slot {slot}"),
                    })
                }
            },
            Record::Audit(a) => self.audits.push(*a),
        }
        Ok(())
    }
}

/// A surveyed file replayed as far as its records are readable and valid.
struct Examined {
    replayed: Replayed,
    /// Records replayed (a prefix of the survey's).
    kept: usize,
    /// End of the records replayed.
    readable_end: u64,
    /// Why an open refuses the file.
    problem: Option<(RecoveryCause, LedgerError)>,
}

impl Examined {
    fn of(path: &Path, survey: &Survey) -> Examined {
        let mut replayed = Replayed::default();
        let mut problem = survey.error(path).map(|e| {
            let cause = match survey.problem {
                Some(Problem::TailLost { .. }) => RecoveryCause::TailLost,
                Some(Problem::OldFormat { .. }) => RecoveryCause::OldFormat,
                _ => RecoveryCause::Corrupt,
            };
            (cause, e)
        });
        let mut kept = 0;
        let mut readable_end = survey.readable_end;
        for rec in &survey.records {
            if let Err(e) = replayed.apply(path, rec) {
                // A record that does not decode ends what is usable, as
                // damage there would.
                problem = Some((RecoveryCause::Corrupt, e));
                readable_end = rec.offset;
                break;
            }
            kept += 1;
        }
        Examined {
            replayed,
            kept,
            readable_end,
            problem,
        }
    }

    fn inspection(&self, path: &Path, survey: &Survey) -> Inspection {
        let processes = self
            .replayed
            .slots
            .values()
            .map(|(meta, st)| AuditedProcess {
                process: meta.id.clone(),
                quota_day: (*st != PeriodState::default()).then_some(st.day),
                used: st.used,
                state: QuotaState::from_flags(st.flags),
            })
            .collect();
        Inspection {
            path: path.to_path_buf(),
            format_version: survey.version,
            file_len: survey.file_len,
            durable_end: survey.mark.map(|m| m.durable_end),
            clean_close: survey.mark.map(|m| m.sealed),
            readable_end: self.readable_end,
            records: self.kept as u64,
            torn_bytes: if self.problem.is_none() {
                survey.file_len - survey.readable_end
            } else {
                0
            },
            cause: self.problem.as_ref().map(|(c, _)| *c),
            problem: self.problem.as_ref().map(|(_, e)| e.to_string()),
            processes,
            audits: self.replayed.audits.clone(),
        }
    }
}

impl DurableLedger {
    /// Opens or creates the ledger at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<DurableLedger, LedgerError> {
        DurableLedger::open_with(path, DurableOptions::default())
    }

    /// Opens or creates the ledger at `path`: locks it, replays it, and
    /// refuses corrupt, tail-lost and version-1 files (see the module docs).
    pub fn open_with(
        path: impl AsRef<Path>,
        opts: DurableOptions,
    ) -> Result<DurableLedger, LedgerError> {
        let path = path.as_ref();
        let (wal, records, scan) = Wal::open(path, opts.durability, opts.lock_wait)?;
        let mut replayed = Replayed::default();
        for rec in &records {
            replayed.apply(path, rec)?;
        }
        let report = RecoveryReport {
            records: scan.records,
            truncated_bytes: scan.truncated_bytes,
            processes: replayed.slots.len(),
            durable_end: scan.durable_end,
            clean_close: scan.clean_close,
            created: scan.created,
            audits: replayed.audits,
        };
        if !report.clean_close {
            tracing::warn!(path = %path.display(), %report, "quota ledger was not closed cleanly");
        }
        let recovered = replayed
            .slots
            .into_iter()
            .map(|(id, (meta, state))| Slot {
                id,
                meta,
                state: Mutex::new(state),
            })
            .collect();
        Ok(DurableLedger {
            wal,
            opts,
            slots: OnceLock::new(),
            recovered: Mutex::new(recovered),
            compacting: AtomicBool::new(false),
            report,
        })
    }

    /// Reads the ledger at `path` without changing it (it must exist and not
    /// be in use): what is readable, the state it replays to, and why an
    /// open would refuse it. For `fusebox quota recover`.
    pub fn inspect(path: impl AsRef<Path>, lock_wait: Duration) -> Result<Inspection, LedgerError> {
        let path = path.as_ref();
        let locked = Locked::open(path, lock_wait)?;
        Ok(Examined::of(path, &locked.survey).inspection(path, &locked.survey))
    }

    /// The operator's explicit recovery of a refused ledger (`fusebox quota
    /// recover --accept-loss`): rewrites it atomically as a sealed version-2
    /// log of the readable records — the ones [`DurableLedger::inspect`]
    /// lists — followed by the earlier audit records and a new
    /// [`RecoveryAudit`] (`at`, `operator`, `reason`), which it returns.
    /// Returns `Ok(None)`, changing nothing, when the ledger opens as it is.
    pub fn recover(
        path: impl AsRef<Path>,
        lock_wait: Duration,
        at: DateTime<Utc>,
        operator: &str,
        reason: Option<&str>,
    ) -> Result<Option<RecoveryAudit>, LedgerError> {
        let path = path.as_ref();
        let locked = Locked::open(path, lock_wait)?;
        let examined = Examined::of(path, &locked.survey);
        let inspection = examined.inspection(path, &locked.survey);
        let (Some(cause), Some(problem)) = (inspection.cause, inspection.problem.clone()) else {
            return Ok(None);
        };
        let audit = RecoveryAudit {
            at,
            operator: operator.to_string(),
            reason: reason.map(str::to_string),
            cause,
            problem,
            format_version: inspection.format_version,
            durable_end: inspection.durable_end,
            readable_end: inspection.readable_end,
            file_len: inspection.file_len,
            lost_bytes: match (cause, inspection.durable_end) {
                (RecoveryCause::TailLost, Some(end)) => {
                    Some(end.saturating_sub(inspection.readable_end))
                }
                _ => None,
            },
            dropped_bytes: inspection.file_len.saturating_sub(inspection.readable_end),
            records_kept: inspection.records,
            processes: inspection.processes,
        };
        let mut payloads = Vec::new();
        for (id, (meta, state)) in &examined.replayed.slots {
            payloads.push(encode_declare(*id, meta)?);
            if *state != PeriodState::default() {
                payloads.push(encode_state(*id, state));
            }
        }
        for a in examined.replayed.audits.iter().chain([&audit]) {
            payloads.push(encode_audit(a)?);
        }
        locked.replace(&payloads)?;
        tracing::warn!(path = %path.display(), audit = %audit.summary(), "quota ledger recovered by an operator");
        Ok(Some(audit))
    }

    /// Fault injection for crash tests (`tests/ledger_model.rs`): the ledger
    /// behaves as if its process died once `bytes` more bytes have been
    /// written to the log — mid-record, between a group's records and their
    /// mark, or inside a compaction — and fails from then on. Not for
    /// production use.
    #[doc(hidden)]
    pub fn crash_after(&self, bytes: u64) {
        self.wal.crash_after(bytes);
    }

    /// The exact state of a bound slot, for tests and tools.
    #[doc(hidden)]
    pub fn period_state(&self, slot: u32) -> Result<PeriodState, LedgerError> {
        Ok(*self.slot(slot)?.lock())
    }

    /// What recovery found when the ledger was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        self.wal.path()
    }

    #[inline]
    fn slot(&self, slot: u32) -> Result<&Slot, LedgerError> {
        let slots = self
            .slots
            .get()
            .ok_or_else(|| LedgerError::Binding("durable ledger used before bind".into()))?;
        slots
            .get(slot as usize)
            .ok_or(LedgerError::NoSuchSlot(slot))
    }

    fn after_append(&self, lsn: u64) -> Result<(), LedgerError> {
        self.wal.wait_durable(lsn)?;
        if self.wal.file_len() > self.opts.compact_at_bytes
            && !self.compacting.swap(true, Ordering::AcqRel)
        {
            let r = self.compact();
            self.compacting.store(false, Ordering::Release);
            r?;
        }
        Ok(())
    }

    /// Rewrites the log as one declaration and one state per process.
    /// Blocks all ledger operations while it runs.
    pub fn compact(&self) -> Result<(), LedgerError> {
        let Some(slots) = self.slots.get() else {
            return Ok(());
        };
        // Slot locks in index order, then the log: the same order every
        // operation uses, so this cannot deadlock.
        let guards: Vec<_> = slots.iter().map(|s| s.lock()).collect();
        let mut payloads = Vec::with_capacity(slots.len() * 2);
        for (s, g) in slots.iter().zip(&guards) {
            payloads.push(encode_declare(s.id, &s.meta)?);
            if **g != PeriodState::default() {
                payloads.push(encode_state(s.id, g));
            }
        }
        for a in &self.report.audits {
            payloads.push(encode_audit(a)?);
        }
        let r = self.wal.rewrite(&payloads);
        drop(guards);
        if r.is_ok() {
            tracing::debug!(path = %self.wal.path().display(), records = payloads.len(), "quota ledger compacted");
        }
        r
    }

    fn describe_path(&self) -> PathBuf {
        self.wal.path().to_path_buf()
    }
}

impl Ledger for DurableLedger {
    fn bind(&self, processes: &[ProcessConfig]) -> Result<(), LedgerError> {
        let mut recovered =
            std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|p| p.into_inner()));
        if self.slots.get().is_some() {
            return Err(LedgerError::Binding("durable ledger bound twice".into()));
        }
        let mut next_id = recovered
            .iter()
            .map(|s| s.id.saturating_add(1))
            .max()
            .unwrap_or(0);
        let mut slots = Vec::with_capacity(processes.len() + recovered.len());
        let mut declare = Vec::new();
        for p in processes {
            let slot = match recovered.iter().position(|s| s.meta.id == p.id) {
                Some(pos) => {
                    let mut s = recovered.swap_remove(pos);
                    if s.meta != *p {
                        s.meta = p.clone();
                        declare.push(encode_declare(s.id, p)?);
                    }
                    s
                }
                None => {
                    let s = Slot {
                        id: next_id,
                        meta: p.clone(),
                        state: Mutex::new(PeriodState::default()),
                    };
                    next_id = next_id
                        .checked_add(1)
                        .ok_or_else(|| LedgerError::Binding("too many slots".into()))?;
                    declare.push(encode_declare(s.id, p)?);
                    s
                }
            };
            slots.push(slot);
        }
        slots.extend(recovered);
        let mut lsn = self.wal.appended();
        for d in &declare {
            lsn = self.wal.append(d)?;
        }
        self.wal.wait_durable(lsn)?;
        self.slots
            .set(slots)
            .map_err(|_| LedgerError::Binding("durable ledger bound twice".into()))
    }

    fn declared(&self) -> Result<Vec<ProcessConfig>, LedgerError> {
        Ok(match self.slots.get() {
            Some(slots) => slots.iter().map(|s| s.meta.clone()).collect(),
            None => self
                .recovered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|s| s.meta.clone())
                .collect(),
        })
    }

    fn reserve(&self, slot: u32, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        let s = self.slot(slot)?;
        let (outcome, lsn) = {
            let mut st = s.lock();
            let before = *st;
            let outcome = st.reserve(req);
            let lsn = if *st != before {
                Some(self.wal.append(&encode_state(s.id, &st))?)
            } else {
                None
            };
            (outcome, lsn)
        };
        if let Some(lsn) = lsn {
            self.after_append(lsn)?;
        }
        Ok(outcome)
    }

    /// Applies the batch under per-process locks in order, then waits for
    /// one group commit covering all of it.
    fn reserve_many(
        &self,
        reqs: &[(u32, ReserveRequest)],
    ) -> Vec<Result<ReserveOutcome, LedgerError>> {
        let mut out = Vec::with_capacity(reqs.len());
        let mut last = None;
        for (slot, req) in reqs {
            let r = self.slot(*slot).and_then(|s| {
                let mut st = s.lock();
                let before = *st;
                let outcome = st.reserve(req);
                if *st != before {
                    last = Some(self.wal.append(&encode_state(s.id, &st))?);
                }
                Ok(outcome)
            });
            out.push(r);
        }
        if let Some(lsn) = last {
            if let Err(e) = self.after_append(lsn) {
                // Nothing in the batch is acknowledged; the log is now failed.
                let mut first = Some(e);
                for r in &mut out {
                    if r.is_ok() {
                        *r = Err(first
                            .take()
                            .unwrap_or_else(|| LedgerError::Failed(self.describe_path())));
                    }
                }
            }
        }
        out
    }

    fn refund_many(&self, refunds: &[(u32, Period, Usage)]) -> Result<(), LedgerError> {
        let mut last = None;
        for (slot, period, amount) in refunds {
            let s = self.slot(*slot)?;
            let mut st = s.lock();
            if st.refund(*period, *amount) {
                last = Some(self.wal.append(&encode_state(s.id, &st))?);
            }
        }
        match last {
            Some(lsn) if self.wal.buffered() > REFUND_FLUSH_BYTES => self.after_append(lsn),
            _ => Ok(()),
        }
    }

    fn refund(&self, slot: u32, period: Period, amount: Usage) -> Result<(), LedgerError> {
        let s = self.slot(slot)?;
        let lsn = {
            let mut st = s.lock();
            if !st.refund(period, amount) {
                return Ok(());
            }
            self.wal.append(&encode_state(s.id, &st))?
        };
        if self.wal.buffered() > REFUND_FLUSH_BYTES {
            self.after_append(lsn)?;
        }
        Ok(())
    }

    fn snapshot(&self, slot: u32, day: QuotaDay) -> Result<SlotSnapshot, LedgerError> {
        Ok(self.slot(slot)?.lock().snapshot(day))
    }

    fn operate(
        &self,
        slot: u32,
        day: QuotaDay,
        op: Operation,
    ) -> Result<SlotSnapshot, LedgerError> {
        let s = self.slot(slot)?;
        let (snap, lsn) = {
            let mut st = s.lock();
            let snap = st.operate(day, op);
            (snap, self.wal.append(&encode_state(s.id, &st))?)
        };
        self.after_append(lsn)?;
        Ok(snap)
    }

    fn sync(&self) -> Result<(), LedgerError> {
        self.wal.sync()
    }

    fn describe(&self) -> String {
        format!("file:{}", self.describe_path().display())
    }

    fn recovery(&self) -> Option<RecoveryReport> {
        Some(self.report.clone())
    }
}

impl Drop for DurableLedger {
    fn drop(&mut self) {
        if let Err(e) = self.wal.close() {
            tracing::warn!(error = %e, "quota ledger: final sync failed; buffered refunds may be lost (usage over-counted)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Limits;

    fn meta(id: &str) -> ProcessConfig {
        ProcessConfig::new(id, "o", chrono_tz::UTC, Limits::new(Some(100), None))
    }

    fn req(day: i32, r: u64) -> ReserveRequest {
        ReserveRequest {
            day: QuotaDay::from_days_since_epoch(day),
            amount: Usage::new(r, 0),
            caps: Usage::new(100, crate::MAX_AMOUNT),
            warn: Usage::new(80, crate::MAX_AMOUNT),
            shadow: false,
        }
    }

    #[test]
    fn state_survives_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        let opts = DurableOptions {
            compact_at_bytes: 4096,
            ..DurableOptions::default()
        };
        {
            let l = DurableLedger::open_with(&p, opts).unwrap();
            l.bind(&[meta("a"), meta("b")]).unwrap();
            for _ in 0..200 {
                let o = l.reserve(0, &req(10, 0)).unwrap();
                l.refund(0, o.period, Usage::ZERO).unwrap();
            }
            for _ in 0..90 {
                let o = l.reserve(1, &req(10, 1)).unwrap();
                assert_eq!(o.verdict, crate::state::Verdict::Granted);
            }
            l.operate(
                1,
                QuotaDay::from_days_since_epoch(10),
                Operation::Raise(Usage::new(500, crate::MAX_AMOUNT)),
            )
            .unwrap();
            assert!(
                std::fs::metadata(&p).unwrap().len() < 4096 + 200,
                "compacted"
            );
        }
        let l = DurableLedger::open_with(&p, opts).unwrap();
        assert_eq!(l.recovery().processes, 2);
        let declared: Vec<String> = l.declared().unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(declared, vec!["a", "b"]);
        // Bound in a different order: state follows the id, not the position.
        l.bind(&[meta("b"), meta("c")]).unwrap();
        let snap = l.snapshot(0, QuotaDay::from_days_since_epoch(10)).unwrap();
        assert_eq!(snap.used.records, 90);
        assert_eq!(snap.raised.map(|c| c.records), Some(500));
        assert_eq!(
            l.snapshot(1, QuotaDay::from_days_since_epoch(10))
                .unwrap()
                .used,
            Usage::ZERO
        );
        // "a" is kept as an unbound slot.
        assert_eq!(l.declared().unwrap().len(), 3);
    }

    #[test]
    fn undeclared_state_and_unknown_records_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.ledger");
        {
            let (w, _, _) = Wal::open(&p, Durability::ProcessCrash, Duration::ZERO).unwrap();
            let lsn = w.append(&encode_state(7, &PeriodState::default())).unwrap();
            w.wait_durable(lsn).unwrap();
        }
        let e = DurableLedger::open(&p).unwrap_err();
        assert!(e.to_string().contains("undeclared slot 7"), "{e}");
        std::fs::remove_file(&p).unwrap();
        {
            let (w, _, _) = Wal::open(&p, Durability::ProcessCrash, Duration::ZERO).unwrap();
            let lsn = w.append(&[9, 9, 9]).unwrap();
            w.wait_durable(lsn).unwrap();
        }
        assert!(matches!(
            DurableLedger::open(&p),
            Err(LedgerError::Corrupt { .. })
        ));
    }
}
