//! Checking a command's files before it does any work.
//!
//! A command that charges quotas or computes for minutes must not find out at the end that
//! its output directory cannot be created, or that `--out` is the directory its events came
//! from. [`check`] runs before anything is read, [`create`] before anything is charged or
//! computed (after the inputs are validated, so an invalid input creates nothing); together
//! they refuse:
//! - an output file that is one of the command's inputs (`--out` pointing at the input
//!   directory, so `customers.parquet` would be overwritten while being the input);
//! - a file the command *writes* as it runs (the quota ledger) that is also an input or an
//!   output (`--ledger out/effects.jsonl`, `--ledger events.jsonl`);
//! - an output directory that cannot be created or written.
//!
//! Paths are compared as the same file (device and inode where both exist, canonical paths
//! otherwise), so `./a/../events.jsonl`, symbolic links and hard links are caught.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::Failure;

/// A file a command reads or updates, named by the flag that gave it.
pub struct Input<'a> {
    /// The flag, e.g. `--events`.
    pub flag: &'a str,
    /// The path given.
    pub path: &'a Path,
    /// Whether the command writes it too (a ledger).
    pub written: bool,
}

impl<'a> Input<'a> {
    /// A file only read.
    pub fn read(flag: &'a str, path: &'a Path) -> Input<'a> {
        Input {
            flag,
            path,
            written: false,
        }
    }

    /// A file read and updated in place.
    pub fn updated(flag: &'a str, path: &'a Path) -> Input<'a> {
        Input {
            flag,
            path,
            written: true,
        }
    }
}

/// [`check`], then [`create`].
pub fn prepare(dir: &Path, outputs: &[&str], inputs: &[Input<'_>]) -> Result<(), Failure> {
    check(dir, outputs, inputs)?;
    create(dir)
}

/// Checks that none of `outputs` (file names in `dir`) is an input and that no updated input
/// is another input or an output. Creates nothing.
pub fn check(dir: &Path, outputs: &[&str], inputs: &[Input<'_>]) -> Result<(), Failure> {
    for (i, a) in inputs.iter().enumerate() {
        for b in &inputs[i + 1..] {
            if (a.written || b.written) && same_file(a.path, b.path) {
                return Err(Failure::Input(anyhow!(
                    "{} {} and {} {} are the same file; the first would be overwritten",
                    writer(a, b).flag,
                    writer(a, b).path.display(),
                    other(a, b).flag,
                    other(a, b).path.display()
                )));
            }
        }
    }
    for name in outputs {
        let output = dir.join(name);
        if let Some(input) = inputs.iter().find(|i| same_file(i.path, &output)) {
            return Err(Failure::Input(anyhow!(
                "{} {} is also the output file {}: choose another --out directory",
                input.flag,
                input.path.display(),
                output.display()
            )));
        }
    }
    Ok(())
}

/// Creates `dir` (with parents) and checks a file can be created in it.
pub fn create(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Runtime(anyhow!("cannot create {}: {e}", dir.display())))?;
    tempfile::Builder::new()
        .prefix(".fusebox-probe-")
        .tempfile_in(dir)
        .map_err(|e| Failure::Runtime(anyhow!("cannot write into {}: {e}", dir.display())))?;
    Ok(())
}

fn writer<'x, 'a>(a: &'x Input<'a>, b: &'x Input<'a>) -> &'x Input<'a> {
    if a.written {
        a
    } else {
        b
    }
}

fn other<'x, 'a>(a: &'x Input<'a>, b: &'x Input<'a>) -> &'x Input<'a> {
    if a.written {
        b
    } else {
        a
    }
}

/// Whether two paths name the same file. A path that does not exist yet is compared through
/// its longest existing ancestor.
fn same_file(a: &Path, b: &Path) -> bool {
    if let Ok(true) = same_file::is_same_file(a, b) {
        return true;
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The canonical form of `p`: its longest existing ancestor canonicalized, with the rest of
/// the path (which does not exist yet) appended.
fn canonical(p: &Path) -> Option<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut missing = Vec::new();
    let mut existing = p.as_path();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return Some(missing.iter().rev().fold(c, |acc, part| acc.join(part)));
        }
        missing.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<(), Failure>) -> String {
        match r {
            Err(Failure::Input(e)) => e.to_string(),
            Err(Failure::Runtime(e)) => format!("runtime: {e}"),
            Err(Failure::Reported) => "reported".into(),
            Ok(()) => panic!("must be refused"),
        }
    }

    #[test]
    fn an_output_that_is_an_input_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("effects.jsonl");
        std::fs::write(&events, "").unwrap();
        let msg = refused(prepare(
            dir.path(),
            &["effects.jsonl"],
            &[Input::read("--events", &events)],
        ));
        assert!(msg.contains("--events") && msg.contains("--out"), "{msg}");
        // Through another spelling of the same path.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let spelled = sub.join("../effects.jsonl");
        let msg = refused(prepare(
            dir.path(),
            &["effects.jsonl"],
            &[Input::read("--events", &spelled)],
        ));
        assert!(msg.contains("--events"), "{msg}");
    }

    #[test]
    fn a_ledger_may_not_be_an_output_or_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let ledger = out.join("outcomes.jsonl");
        let msg = refused(prepare(
            &out,
            &["outcomes.jsonl"],
            &[Input::updated("--ledger", &ledger)],
        ));
        assert!(msg.contains("--ledger"), "{msg}");
        assert!(!out.exists(), "nothing is created for a refused command");
        let events = dir.path().join("events.jsonl");
        std::fs::write(&events, "").unwrap();
        let msg = refused(prepare(
            &out,
            &[],
            &[
                Input::read("--events", &events),
                Input::updated("--ledger", &events),
            ],
        ));
        assert!(msg.starts_with("--ledger"), "{msg}");
    }

    #[test]
    fn an_unwritable_output_directory_is_a_runtime_failure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let msg = refused(prepare(&file.join("out"), &["a.json"], &[]));
        assert!(msg.starts_with("runtime: cannot create"), "{msg}");
    }

    #[test]
    fn distinct_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl");
        std::fs::write(&events, "").unwrap();
        prepare(
            &dir.path().join("out"),
            &["effects.jsonl"],
            &[Input::read("--events", &events)],
        )
        .unwrap();
    }
}
