//! Executors: turn admitted events into committed state, effects and outcomes.
//!
//! - [`txn`]: the semantics of one transaction (an input event and its cascade), shared by
//!   every executor;
//! - [`delta`]: numeric addition on a key (eager or deferred), defined once;
//! - [`sequential`]: the reference executor — obviously correct, one event after another.
//!   Every other executor is tested against it.

pub mod commit;
pub mod delta;
pub mod locking;
pub mod mvmemory;
pub mod parallel;
pub mod scheduler;
pub mod sequential;
pub mod tuner;
pub mod txn;

#[cfg(test)]
mod tests;

use crate::customers::Row;
use crate::event::{Event, LineNo};

/// An input event that passed admission and will run, in serial order.
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
}
