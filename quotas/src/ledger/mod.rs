//! Ledger backends: where usage lives.
//!
//! Every backend implements [`Ledger`] with the semantics of
//! [`crate::state::PeriodState`]; they differ in where the numbers live and
//! what survives:
//!
//! | backend | shared by | survives | per-op cost |
//! |---|---|---|---|
//! | [`MemoryLedger`] | threads of one process | nothing | a few atomic CAS |
//! | [`DurableLedger`] | one process at a time (file lock) | `kill -9`; power loss with [`Durability::PowerLoss`]; refuses to open if acknowledged records were cut off | one group-committed `write` and mark `pwrite` (or `fdatasync`) per grant |
//! | [`RedisLedger`] | many engine instances | whatever the Redis server's persistence gives | one Lua round trip |
//!
//! Slots: [`Ledger::bind`] receives the process list once; afterwards a
//! process is addressed by its position in that list (`slot`), so the hot
//! path never hashes a string.

use std::path::PathBuf;

use crate::config::ProcessConfig;
use crate::day::QuotaDay;
use crate::state::{Operation, Period, ReserveOutcome, ReserveRequest, SlotSnapshot};
use crate::usage::Usage;

pub mod durable;
pub mod memory;
pub mod redis;
mod wal;

pub use durable::{
    AuditedProcess, Durability, DurableLedger, DurableOptions, Inspection, RecoveryAudit,
    RecoveryCause, RecoveryReport,
};
pub use memory::MemoryLedger;
pub use redis::{RedisLedger, RedisOptions};

/// A ledger backend failure. Carried into denials and notifications as text.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The backend could not be reached (connection refused, timeout).
    #[error("ledger backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something that is not a valid ledger reply.
    #[error("ledger backend returned an invalid reply: {0}")]
    Protocol(String),
    /// The ledger file fails its checksums or structure. The ledger refuses to
    /// open: usage is never silently reset.
    #[error(
        "ledger file {path} is corrupt at byte {offset}: {reason}. Refusing to start: \
         usage would otherwise be lost. Restore the file from a backup, or inspect it with \
         `fusebox quota recover --ledger {path}` and keep the records before the damage \
         with `--accept-loss` (the recovery is recorded in the ledger)"
    )]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Records the ledger had acknowledged are missing from the end of the
    /// file: it is shorter than, or zero-filled below, its superblock's
    /// durable end (see `ledger::wal`). The ledger refuses to open: the
    /// missing records hold granted usage.
    #[error(
        "ledger file {path} lost acknowledged usage: its superblock marks the log durable up to \
         byte {durable_end}, but its complete records end at byte {readable_end} (the file is \
         {file_len} bytes: cut or zero-filled below the mark). Refusing to start: the missing \
         records hold usage already granted, so quotas would be over-granted. Restore the file \
         from a backup, or inspect it with `fusebox quota recover --ledger {path}` and accept \
         the loss with `--accept-loss` (the recovery is recorded in the ledger)"
    )]
    TailLost {
        /// The ledger file.
        path: PathBuf,
        /// Where the superblock says acknowledged records end.
        durable_end: u64,
        /// Where the complete records actually end.
        readable_end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The file is in an older format without a superblock, which cannot
    /// prove that no acknowledged records were cut off its end.
    #[error(
        "ledger file {path} is in format version {version}, which cannot tell a torn tail from \
         acknowledged records cut off its end. Refusing to start rather than certify it: inspect \
         it with `fusebox quota recover --ledger {path}` and upgrade it with `--accept-loss` \
         (the upgrade is recorded in the ledger)"
    )]
    OldFormat {
        /// The ledger file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// Another process holds the ledger file.
    #[error("ledger file {path} is in use by another process (it is locked exclusively)")]
    Locked {
        /// The ledger file.
        path: PathBuf,
    },
    /// An I/O error on the ledger file. After a failed write the ledger
    /// refuses further grants (see [`LedgerError::Failed`]).
    #[error("I/O error on ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A previous write failed; the durable ledger can no longer promise
    /// durability and denies until reopened.
    #[error("ledger {0} failed earlier and accepts no more writes; reopen it")]
    Failed(PathBuf),
    /// The ledger was used before [`Ledger::bind`], or bound twice.
    #[error("ledger binding: {0}")]
    Binding(String),
    /// A slot outside the bound process list.
    #[error("no ledger slot {0}")]
    NoSuchSlot(u32),
}

/// A store of per-process quota periods. Implementations are `Send + Sync`
/// and linearizable per slot; see [`crate::state`] for the rules.
pub trait Ledger: Send + Sync {
    /// Declares the processes; slot `i` is `processes[i]`. Persistent
    /// ledgers store the configs so operators can inspect the ledger without
    /// the YAML ([`crate::Quotas::from_ledger`]). May be called once.
    fn bind(&self, processes: &[ProcessConfig]) -> Result<(), LedgerError>;

    /// The process configs stored in the ledger (the latest bound ones);
    /// empty for a new ledger.
    fn declared(&self) -> Result<Vec<ProcessConfig>, LedgerError>;

    /// Atomically evaluates and, if granted, charges a reservation.
    fn reserve(&self, slot: u32, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError>;

    /// Gives back `amount` of a charge made in `period` (ignored if the
    /// period has ended).
    fn refund(&self, slot: u32, period: Period, amount: Usage) -> Result<(), LedgerError>;

    /// Reads the entry as of `day`.
    fn snapshot(&self, slot: u32, day: QuotaDay) -> Result<SlotSnapshot, LedgerError>;

    /// Applies an operator action for `day`.
    fn operate(&self, slot: u32, day: QuotaDay, op: Operation)
        -> Result<SlotSnapshot, LedgerError>;

    /// Reserves a batch, in order, with the result of each. Backends
    /// override this to save round trips; the outcome must equal calling
    /// [`Ledger::reserve`] on each request in order.
    fn reserve_many(
        &self,
        reqs: &[(u32, ReserveRequest)],
    ) -> Vec<Result<ReserveOutcome, LedgerError>> {
        reqs.iter()
            .map(|(slot, req)| self.reserve(*slot, req))
            .collect()
    }

    /// Applies a batch of refunds; stops at (and returns) the first error.
    fn refund_many(&self, refunds: &[(u32, Period, Usage)]) -> Result<(), LedgerError> {
        refunds
            .iter()
            .try_for_each(|(slot, period, amount)| self.refund(*slot, *period, *amount))
    }

    /// Makes everything recorded so far durable (refunds included).
    fn sync(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// A short description for status output, e.g. `memory` or `file:/var/lib/q.ledger`.
    fn describe(&self) -> String;

    /// What opening a persistent ledger found (torn tail truncated, clean
    /// close or crash, operator recoveries); `None` for backends without
    /// a recovery step.
    fn recovery(&self) -> Option<RecoveryReport> {
        None
    }
}
