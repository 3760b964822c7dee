//! Test helpers shared by the segment engine's integration tests (and, through `#[path]`, the
//! workspace's cross-crate segment → trigger test).

use std::sync::Arc;

use fusebox_engine::event::Event;
use fusebox_engine::value::{parse_timestamp, Map, Value};

/// An `order.completed` event at `at` (RFC 3339), with property `total` if given.
pub fn order_event(id: &str, customer: u64, at: &str, total: Option<f64>) -> Event {
    Event {
        id: Arc::from(id),
        customer_id: customer,
        event_type: Arc::from("order.completed"),
        timestamp: parse_timestamp(at).unwrap(),
        process: None,
        properties: Arc::new(Map::from_entries(
            total.map(|t| (Arc::from("total"), Value::Float(t))),
        )),
    }
}
