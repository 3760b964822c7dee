//! One module per subcommand.

pub mod check;
pub mod demo;
pub mod gen;
pub mod quota;
pub mod run;
pub mod run_pipeline;
pub mod segment;
pub mod segment_refresh;
