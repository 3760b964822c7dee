//! # fusebox-engine
//!
//! Runs a marketing-automation backend's customer triggers: *on order completed → award
//! points, issue a coupon from a pool, send an SMS, start an email feed*.
//!
//! ## The model
//! - **Customers** ([`customers`]) are rows of a typed, columnar table keyed by a `u64` id,
//!   loaded from Parquet or CSV through Polars ([`io::customers`]).
//! - **Events** ([`event`]) are read from JSONL or Parquet ([`io::events`]); their order in the
//!   input is the serial order of a run, and their timestamp is the run's clock.
//! - **Triggers** ([`trigger`]) come from a YAML file ([`config`]): an event type, an
//!   optional condition, ordered actions, a priority, limits, an owner. Conditions and
//!   computed arguments are CEL, compiled once into slot-resolved trees ([`expr`]).
//! - **Shared resources** — coupon pools and counters — live with the customer attributes in
//!   [`state::State`], addressed by [`state::Key`].
//!
//! ## The pipeline
//! Data flows one way: parse/validate → admit → execute → commit → report.
//! [`Engine::run_batch`] admits every input record (or rejects it with a reason), runs the
//! admitted events through an executor ([`exec`]), and returns effects in commit order, one
//! outcome per input record and a deterministic report ([`report`]). With
//! [`RunOptions::quotas`], the quota gate ([`gate`]) charges events that carry a `process`
//! against that process's daily quota between admission and execution, and holds the events
//! an exhausted process sends.
//!
//! ## Invariants
//! - **Serial semantics.** The result of a run is the result of applying events one by one in
//!   input order; within an event, enabled triggers run in `(priority, id)` order, then chained
//!   events breadth-first. [`exec::txn`] is the only implementation of these semantics; every
//!   executor calls it and differs only in scheduling and commit.
//! - **Atomic executions.** A trigger execution keeps all of its writes, effects and chained
//!   events, or none (a failing action aborts that execution only, with a recorded reason).
//! - **Exactly-once effects.** Effects are returned by executions, never sent by them; the
//!   committer emits them once, each with the idempotency key
//!   `{event_id}:{trigger_id}:{action_index}`.
//! - **Nothing lost.** Every input record has exactly one outcome: processed, rejected or
//!   held.
//! - **Determinism.** Outputs (effects, outcomes, final state, report) are a function of the
//!   inputs alone; wall-clock timings are kept apart in [`report::Timings`].
//! - **No panics on input.** Bad input becomes a located [`config::Diagnostic`], a typed
//!   error, or a rejected record.
//!
//! ## Example
//! ```
//! use fusebox_engine::{config::compile_triggers, customers::*, io::events::read_jsonl,
//!                      state::State, value::{AttrType, Value}, Engine, RunOptions};
//!
//! let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
//! let customers = CustomerTable::new(schema, vec![7], vec![Column::Int(vec![Some(10)])]).unwrap();
//! let triggers = compile_triggers(r#"
//! triggers:
//!   - id: order-points
//!     owner: loyalty@example.com
//!     on: order.completed
//!     condition: "event.properties.total > 50"
//!     actions:
//!       - award_points: { amount: "int(event.properties.total / 10)" }
//!       - send_message: { channel: sms, template: thanks, args: { points: "customer.points" } }
//! "#, "triggers.yaml", Some(customers.schema())).unwrap();
//! let engine = Engine::new(triggers).unwrap();
//! let mut state = State::new(customers, engine.triggers());
//! let events = read_jsonl(&br#"{"id":"o1","customer_id":7,"type":"order.completed","timestamp":"2026-03-01T12:00:00Z","properties":{"total":120.0}}"#[..]).unwrap();
//! let result = engine.run_batch(&mut state, &events, &RunOptions::default()).unwrap();
//! assert_eq!(state.customers.get(0, 0), Value::Int(22));
//! assert_eq!(result.effects[0].key, "o1:order-points:1");
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod customers;
pub mod engine;
pub mod event;
pub mod exec;
pub mod expr;
pub mod gate;
pub mod governor;
pub mod health;
pub mod io;
#[cfg(feature = "live")]
pub mod live;
pub mod outcome;
pub mod report;
mod seen_ids;
pub mod sink;
pub mod slow_lane;
pub mod state;
pub mod trigger;
pub mod value;

pub use engine::{
    BatchResult, Engine, EngineBuilder, EngineError, ExecutorKind, RunOptions, Session,
    SessionSummary, StreamCursor,
};
pub use sink::{BatchCollector, CommitSink, RecordResult, StreamTally, StreamTotals};
