//! Events: what happened to a customer, in the order the run must respect.
//!
//! The position of an event in the input is its place in the serial order of a run: the
//! executors produce exactly the result of applying events one by one in that order.
//! Chained events (emitted by triggers) are not in the input; they are created during
//! execution and processed right after the event that caused them (see `exec`).
//!
//! ## Event ids and idempotency keys are unique by construction
//! A chained event's id is `{parent_id}/{trigger_id}#{action_index}` ([`chained_id`]) and an
//! effect's idempotency key is `{event_id}:{trigger_id}:{action_index}`. Input ids may not
//! contain `#` ([`check_input_id`]; admission rejects such records), so:
//! - an input id never equals a chained id (every chained id has a `#`);
//! - a chained id splits back uniquely into its parts: the last `#` starts the action index,
//!   the last `/` before it starts the trigger id (trigger ids have neither `/`, `#` nor
//!   `:`), the rest is the parent id — so two chained ids are equal only when they come from
//!   the same action of the same trigger on the same event, which runs once;
//! - likewise an idempotency key splits back from its right end (trigger ids have no `:`).
//!
//! Input ids are unique within a run (duplicates are rejected), hence so are all event ids
//! and all idempotency keys of a run.

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

impl Event {
    /// An event with no process and no properties; `timestamp` in microseconds since the
    /// epoch, UTC.
    pub fn new(
        id: impl Into<Arc<str>>,
        customer_id: u64,
        event_type: impl Into<Arc<str>>,
        timestamp: i64,
    ) -> Event {
        Event {
            id: id.into(),
            customer_id,
            event_type: event_type.into(),
            timestamp,
            process: None,
            properties: Arc::new(Map::default()),
        }
    }

    /// The same event, produced by `process`.
    pub fn with_process(mut self, process: impl Into<Arc<str>>) -> Event {
        self.process = Some(process.into());
        self
    }

    /// Parses one event from a JSON object in the `fusebox run --events` format; the error
    /// names the field at fault.
    ///
    /// ```
    /// let e = fusebox_engine::event::Event::from_json(
    ///     r#"{"id":"e1","customer_id":7,"type":"order.completed","timestamp":"2026-03-01T10:00:00Z","properties":{"total":12.5}}"#,
    /// ).unwrap();
    /// assert_eq!((e.customer_id, &*e.event_type), (7, "order.completed"));
    /// assert!(fusebox_engine::event::Event::from_json(r#"{"id":"e1"}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<Event, String> {
        crate::io::events::jsonl::parse_event(text)
    }
}

/// Marks a chained event id; reserved, so no input id contains it.
pub const CHAINED_ID_MARK: char = '#';

/// The id of the event that action `action` of trigger `trigger` emits while processing
/// event `parent` (see the module docs for why these never collide).
pub fn chained_id(parent: &str, trigger: &str, action: u32) -> String {
    format!("{parent}/{trigger}{CHAINED_ID_MARK}{action}")
}

/// Checks an id given to an input event: non-empty and free of the reserved
/// [`CHAINED_ID_MARK`]. The error says why, for the record's `rejected` outcome.
pub fn check_input_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("field `id` is empty".into());
    }
    if id.contains(CHAINED_ID_MARK) {
        return Err(format!(
            "field `id`: {id:?} contains `{CHAINED_ID_MARK}`, which is reserved for the ids of \
             chained events (`{{parent}}/{{trigger}}{CHAINED_ID_MARK}{{action}}`)"
        ));
    }
    Ok(())
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
