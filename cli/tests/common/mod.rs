//! Helpers shared by the end-to-end tests of the `fusebox` binary.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;

/// Runs the binary.
pub fn fusebox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusebox"))
        .args(args)
        .output()
        .expect("run fusebox")
}

/// Runs the binary and asserts it succeeded (stderr in the failure message).
pub fn ok(args: &[&str]) -> Output {
    let out = fusebox(args);
    assert!(
        out.status.success(),
        "fusebox {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts a run succeeded (stderr in the failure message).
pub fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a run exited with `code` (stderr in the failure message).
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fusebox gen` into `dir`.
pub fn gen(dir: &Path, customers: u64, events: u64, seed: u64) {
    ok(&[
        "gen",
        "--out",
        dir.to_str().unwrap(),
        "--customers",
        &customers.to_string(),
        "--events",
        &events.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
}

/// Every line of a JSONL file.
pub fn jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
