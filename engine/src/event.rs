//! Events: what happened to a customer, in the order the run must respect.
//!
//! The position of an event in the input is its place in the serial order of a run: the
//! executors produce exactly the result of applying events one by one in that order.
//! Chained events (emitted by triggers) are not in the input; they are created during
//! execution and processed right after the event that caused them (see `exec`).

use std::sync::Arc;

use crate::value::Map;

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique id of the event (from the producer; chained events derive theirs).
    pub id: Arc<str>,
    /// The customer the event is about.
    pub customer_id: u64,
    /// Event type, e.g. `order.completed`.
    pub event_type: Arc<str>,
    /// When it happened: microseconds since the epoch, UTC. This is also `now` for the
    /// triggers it fires, so replaying a log gives the same result on any day.
    pub timestamp: i64,
    /// The integration / sync process that produced the event, if any.
    pub process: Option<Arc<str>>,
    /// Free-form properties (a JSON object).
    pub properties: Arc<Map>,
}

/// Where an input event came from, for error messages and outcomes.
pub type LineNo = u64;

/// One record of the event input: the parsed event or why it could not be parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// 1-based line (JSONL) or row (Parquet) in the input.
    pub line: LineNo,
    /// The event, or the reason the record is rejected.
    pub event: Result<Event, String>,
}
