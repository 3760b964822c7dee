//! File formats: customers (Parquet/CSV through Polars) and events (JSONL/Parquet).
//!
//! This is the only part of the engine that touches files; executors work on the in-memory
//! [`CustomerTable`](crate::customers::CustomerTable) and [`Event`](crate::event::Event)s.

pub mod columnar;
pub mod customers;
pub mod events;
pub(crate) mod parquet;
pub(crate) mod temporal;
