//! Driving the release `fusebox` binary from a bench (`runaway`, `run_e2e`): where it is, and
//! the arguments of a `fusebox run` over a directory `fusebox gen` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/release/fusebox`, if it was built (`cargo build --release -p fusebox-cli`).
pub fn fusebox_binary() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/fusebox");
    bin.exists().then_some(bin)
}

/// Adds `run --customers … --events … --triggers … --out OUT` for the files of `input`.
pub fn run_args<'c>(cmd: &'c mut Command, input: &Path, out: &Path) -> &'c mut Command {
    cmd.arg("run")
        .arg("--customers")
        .arg(input.join("customers.parquet"))
        .arg("--events")
        .arg(input.join("events.jsonl"))
        .arg("--triggers")
        .arg(input.join("triggers.yaml"))
        .arg("--out")
        .arg(out)
}
