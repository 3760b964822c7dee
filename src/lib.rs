//! # Fusebox
//!
//! An in-process engine that runs a marketing-automation backend's customer triggers,
//! segments and per-process quotas safely at scale. This crate is the facade: it re-exports
//! the member crates under short names so an embedding backend depends on one crate.
//!
//! - [`engine`] — data model, triggers files, compiled CEL conditions, executors
//!   (`Engine::run_batch`);
//! - [`segment`] — the segment engine;
//! - [`quotas`] — daily per-process transfer quotas.
//!
//! ```
//! use fusebox::engine::{config::compile_triggers, customers::*, value::AttrType};
//!
//! let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
//! let set = compile_triggers(
//!     "triggers:\n  - id: t\n    owner: o@x\n    on: order.completed\n    actions:\n      - award_points: { amount: \"5\" }\n",
//!     "triggers.yaml",
//!     Some(&schema),
//! )
//! .unwrap();
//! assert_eq!(set.triggers.len(), 1);
//! ```

pub use fusebox_engine as engine;
pub use fusebox_quotas as quotas;
pub use fusebox_segment as segment;
