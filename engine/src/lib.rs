//! placeholder
pub mod config;
pub mod customers;
pub mod engine;
pub mod event;
pub mod exec;
pub mod expr;
pub mod io;
pub mod outcome;
pub mod report;
pub mod state;
pub mod trigger;
pub mod value;

pub use engine::{BatchResult, Engine, EngineError, ExecutorKind, RunOptions};
