//! placeholder
pub mod config;
pub mod customers;
pub mod event;
pub mod expr;
pub mod io;
pub mod trigger;
pub mod value;
