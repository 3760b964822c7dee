//! A command refuses overlapping input, output and ledger paths before any work, and finds an
//! unusable output directory before charging anything.

mod common;

use std::path::Path;

use common::{assert_exit, fusebox, gen, ok};

fn run_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--customers",
        input.join("customers.parquet").to_str().unwrap(),
        "--events",
        input.join("events.jsonl").to_str().unwrap(),
        "--triggers",
        input.join("triggers.yaml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fusebox(&args)
}

#[test]
fn out_pointing_at_the_input_directory_is_refused_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 40, 200, 1);
    let before = std::fs::read(input.join("customers.parquet")).unwrap();
    let out = run(&run_args(&input, &input, &[]));
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--customers") && stderr.contains("--out"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(input.join("customers.parquet")).unwrap(),
        before
    );
    assert!(!input.join("effects.jsonl").exists());
}

#[test]
fn a_ledger_that_is_an_output_or_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 40, 200, 1);
    let out_dir = dir.path().join("out");
    let quotas = input.join("quotas.yaml");
    for ledger in [out_dir.join("effects.jsonl"), input.join("events.jsonl")] {
        let events_before = std::fs::read(input.join("events.jsonl")).unwrap();
        let out = run(&run_args(
            &input,
            &out_dir,
            &[
                "--quotas",
                quotas.to_str().unwrap(),
                "--ledger",
                ledger.to_str().unwrap(),
            ],
        ));
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--ledger"), "{stderr}");
        assert_eq!(
            std::fs::read(input.join("events.jsonl")).unwrap(),
            events_before
        );
        assert!(!out_dir.exists(), "nothing is created");
    }
}

#[test]
fn an_output_directory_that_cannot_be_created_is_found_before_any_quota_is_charged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 40, 300, 1);
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let ledger = dir.path().join("q.ledger");
    let quotas = input.join("quotas.yaml");
    let quota_args = [
        "--quotas",
        quotas.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ];
    let out = run(&run_args(&input, &blocker.join("out"), &quota_args));
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));
    // The ledger holds no usage: a run into a good directory is charged as a first run is.
    let fresh = dir.path().join("fresh.ledger");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    succeeded(&run(&run_args(&input, &a, &quota_args)));
    let fresh_args = [
        "--quotas",
        quotas.to_str().unwrap(),
        "--ledger",
        fresh.to_str().unwrap(),
    ];
    succeeded(&run(&run_args(&input, &b, &fresh_args)));
    let held = std::fs::read_to_string(a.join("held.jsonl")).unwrap();
    assert!(!held.is_empty(), "the workload exhausts a quota");
    assert_eq!(
        held,
        std::fs::read_to_string(b.join("held.jsonl")).unwrap(),
        "the refused run charged nothing"
    );
}

fn succeeded(out: &std::process::Output) {
    common::succeeded(out);
}

#[test]
fn outputs_are_written_atomically_leaving_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 40, 200, 1);
    let out_dir = dir.path().join("out");
    ok(&run_args(&input, &out_dir, &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "customers.parquet",
            "effects.jsonl",
            "outcomes.jsonl",
            "report.json",
            "timings.json"
        ]
    );
}

#[test]
fn gen_refuses_zero_customers_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--customers", "--events"] {
        let out = fusebox(&[
            "gen",
            "--out",
            dir.path().join("g").to_str().unwrap(),
            flag,
            "0",
        ]);
        assert_exit(&out, 2);
    }
}
