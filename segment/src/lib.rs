//! # fusebox-segment
//!
//! Computes **segment groups**: many segments (customer sets defined by filter trees) at once,
//! sharing work between them, in parallel, and keeps them fresh incrementally.
//!
//! ## The pipeline
//! Data flows one way: YAML/CEL text → validated tree ([`config`], [`text`], [`model`]) →
//! shared plan ([`plan`]) → parallel execution ([`exec`], [`kernels`]) → memberships, explain
//! ([`explain`]) and entered/left diffs ([`refresh`]). Nothing downstream reaches back.
//!
//! - [`model`] — the filter tree (`and`/`or`/`not` over attribute predicates, event
//!   predicates with count/sum/first/last conditions and windows, and segment references) and
//!   its **three-valued semantics**: a predicate on a null attribute is UNKNOWN, `not UNKNOWN`
//!   is UNKNOWN, and only TRUE makes a member — so `not (points > 100)` never silently includes
//!   customers without points.
//! - [`config`] — segment files, validated against the customer schema with located
//!   diagnostics (file:line:column + hint) before any work; [`text`] translates the CEL form.
//! - [`data`] — customers plus events grouped per type in a customer-major (CSR) layout, with
//!   per-input versions.
//! - [`plan`] — pushes `not` to the leaves, flattens, interns identical sub-filters across the
//!   whole group (common sub-expression elimination), shares event aggregates, estimates
//!   rows/cost on a sample and orders `and` children cheap/selective first.
//! - [`kernels`] — leaves: Polars column kernels for attributes, one shared scan per event
//!   aggregate; row-wise variants for incremental refresh.
//! - [`exec`] — [`SegmentEngine`]: leaves in parallel on a Rayon pool, results as roaring
//!   bitmaps, combined with and/or/andnot; a sub-query cache keyed by (normalised filter,
//!   input versions); deadlines.
//! - [`refresh`] — change sets (attribute updates, new events, a later `as_of`) recompute only
//!   the dirty rows of the affected leaves — event aggregates are carried from result to
//!   result and only the new events folded in — and report who entered/left each segment, as
//!   `segment.entered` / `segment.left` engine events.
//! - `advance` (private) — a later `as_of`: the customers with events in the time slices the
//!   move shifts, found through a per-type time index; carried aggregates brought forward.
//! - [`oracle`] — a naive row-by-row evaluator, the reference for the property tests.
//!
//! ## Invariants
//! - **Equivalence.** For any group and data, [`SegmentEngine::compute`] returns exactly the
//!   members [`oracle::evaluate`] returns, whatever the thread count; a refresh returns exactly
//!   what a full recompute on the changed data returns. Both are property-tested
//!   (`tests/equivalence.rs`).
//! - **One computation per distinct sub-filter per group**: plan nodes are interned by a
//!   canonical key, so a sub-filter shared by ten segments is one node.
//! - **Topological plan**: a node's children have smaller ids; combining in id order never
//!   reads a missing input except after a deadline, and then the node is reported unfinished.
//! - **One thread pool**: segment work runs on the engine's own Rayon pool; the Polars kernels
//!   it calls run on the calling worker and never start Polars' own pool (see [`kernels`];
//!   `tests/pools.rs`), so the two pools never oversubscribe the cores or wait on each other.
//! - **No panics on input**: bad files are located diagnostics; bad change sets are typed
//!   errors ([`SegmentError`]).
//!
//! ## Example
//! ```
//! use fusebox_engine::{customers::*, io::events::read_jsonl, value::{AttrType, parse_timestamp}};
//! use fusebox_segment::{compile_segments, ComputeOptions, EventStore, SegmentData, SegmentEngine};
//!
//! let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
//! let customers = CustomerTable::new(schema, vec![1, 2, 3],
//!     vec![Column::Int(vec![Some(500), None, Some(20)])]).unwrap();
//! let events: Vec<_> = read_jsonl(&br#"{"id":"o1","customer_id":3,"type":"order.completed","timestamp":"2026-03-01T12:00:00Z","properties":{"total":120.0}}"#[..])
//!     .unwrap().into_iter().filter_map(|r| r.event.ok()).collect();
//! let store = EventStore::from_events(&customers, &events);
//! let group = compile_segments(r#"
//! segments:
//!   - id: rich
//!     owner: crm@example.com
//!     filter: { attribute: points, ge: 100 }
//!   - id: buyers-not-rich
//!     owner: crm@example.com
//!     filter:
//!       and:
//!         - performed: { event: order.completed, within: 30d, sum: { property: total, ge: 100 } }
//!         - not: { in_segment: rich }
//!   - id: not-rich
//!     owner: crm@example.com
//!     filter: { cel: "!(customer.points >= 100)" }
//! "#, "segments.yaml", Some(customers.schema()), Some(&store.types())).unwrap();
//! let data = SegmentData::new(customers, store);
//! let as_of = parse_timestamp("2026-03-02T00:00:00Z").unwrap();
//! let engine = SegmentEngine::new(group, &data, as_of, Some(2)).unwrap();
//! let result = engine.compute(&data, &ComputeOptions::at(as_of)).unwrap();
//! let ids = engine.member_ids(&data, &result);
//! assert_eq!(ids[0].1, vec![1]);
//! assert_eq!(ids[1].1, vec![3]);
//! // Customer 2 has no points: UNKNOWN, so not in `not-rich` either.
//! assert_eq!(ids[2].1, vec![3]);
//! ```

#![warn(missing_docs)]

mod advance;
pub mod config;
pub mod data;
pub mod exec;
pub mod explain;
pub mod kernels;
pub mod model;
pub mod oracle;
pub mod plan;
pub mod refresh;
mod telemetry;
pub mod text;

pub use config::compile_segments;
pub use data::{EventStore, SegmentData};
pub use exec::{ComputeOptions, GroupResult, SegmentEngine, SegmentError, SegmentResult};
pub use model::{Filter, SegmentGroup};
pub use refresh::{AttrUpdate, Changes, Refresh, SegmentDiff};
