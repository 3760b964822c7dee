//! Executors: turn admitted events into committed state, effects and outcomes.
//!
//! - [`txn`]: the semantics of one transaction (an input event and its cascade), shared by
//!   every executor;
//! - [`delta`]: numeric addition on a key (eager or deferred), defined once;
//! - [`sequential`]: the reference executor — obviously correct, one event after another.
//!   Every other executor is tested against it;
//! - [`parallel`]: the default executor; runs each block partitioned by customer
//!   ([`partition`]) when no transaction in it reads shared state, otherwise with Block-STM
//!   or sequentially;
//! - [`footprint`]: what a transaction of each event type may read and write, statically;
//! - [`locking`]: deterministic per-key locking, the pessimistic baseline.

pub(crate) mod commit;
pub(crate) mod delta;
pub(crate) mod footprint;
pub(crate) mod locking;
pub(crate) mod mvmemory;
pub mod parallel;
pub(crate) mod partition;
pub(crate) mod scheduler;
pub(crate) mod sequential;
pub(crate) mod tuner;
pub(crate) mod txn;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use crate::customers::Row;
use crate::event::{Event, LineNo};
use crate::expr::segments::MembershipSnapshot;

/// An input event that passed admission and will run, in serial order, with everything it
/// reads from outside the engine state.
#[derive(Clone, Copy, Debug)]
pub struct Admitted<'a> {
    /// Position in the input records.
    pub record: usize,
    /// Input line.
    pub line: LineNo,
    /// The event.
    pub event: &'a Event,
    /// Its customer's row.
    pub row: Row,
    /// The segment memberships of its batch (a snapshot taken when the batch started).
    pub memberships: &'a MembershipSnapshot,
    /// Per trigger index, how it takes part in this transaction (decided before the chunk
    /// runs; see `governor` and `slow_lane`). Empty: every trigger runs.
    pub participation: &'a [Participation],
}

/// How a trigger takes part in an input event's transaction. Decided before execution from
/// the stream alone, so every executor sees the same.
#[derive(Clone, Debug, PartialEq)]
pub enum Participation {
    /// Runs as usual.
    Run,
    /// Stopped by the governor: at every depth, recorded as skipped (`trigger_stopped`)
    /// with the reason.
    Stopped(std::sync::Arc<str>),
    /// Throttled past its allowance: on the input event (depth 0) it is recorded as
    /// `deferred` and runs later in the slow lane; on chained events it runs as usual.
    Deferred,
    /// The transaction is a slow-lane run of another trigger: on the input event it does
    /// not run and leaves no outcome (it already has one); on chained events it runs.
    Excluded,
}
