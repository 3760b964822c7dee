//! End-to-end tests of the `fusebox` binary: generate, run, reconcile, check determinism and
//! error handling exactly as a user sees them (exit codes, files, messages).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Output;

use fusebox_engine::io::customers::load_customers;
use serde_json::Value as Json;

mod common;
use common::{assert_exit, fusebox, gen, jsonl, ok};

fn run(input: &Path, out: &Path) -> Output {
    run_with(input, out, &[])
}

fn run_with(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let (c, e, t) = (
        input.join("customers.parquet"),
        input.join("events.jsonl"),
        input.join("triggers.yaml"),
    );
    let mut args = vec![
        "run",
        "--customers",
        c.to_str().unwrap(),
        "--events",
        e.to_str().unwrap(),
    ];
    args.extend([
        "--triggers",
        t.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    args.extend_from_slice(extra);
    ok(&args)
}

/// The reference is one chunk (the default chunk is larger than the file) on the sequential
/// executor; the others stream in chunks of every size down to one event.
#[test]
fn outputs_are_byte_identical_across_executors_thread_counts_and_chunk_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 200, 30_000, 11);
    let reference = dir.path().join("seq");
    run_with(&input, &reference, &["--executor", "sequential"]);
    let runs = [
        ("parallel", "1", "65536"),
        ("parallel", "2", "65536"),
        ("parallel", "4", "65536"),
        ("parallel", "8", "65536"),
        ("speculative", "2", "65536"),
        ("speculative", "4", "65536"),
        ("locking", "2", "65536"),
        ("parallel", "2", "1000"),
        ("parallel", "2", "7"),
        ("sequential", "1", "1"),
    ];
    for (executor, threads, chunk) in runs {
        let out = dir.path().join(format!("{executor}{threads}-{chunk}"));
        run_with(
            &input,
            &out,
            &[
                "--executor",
                executor,
                "--threads",
                threads,
                "--chunk",
                chunk,
            ],
        );
        for f in [
            "effects.jsonl",
            "outcomes.jsonl",
            "customers.parquet",
            "report.json",
        ] {
            assert!(
                std::fs::read(reference.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(),
                "{f} differs between sequential and {executor} with {threads} threads, chunks of {chunk}"
            );
        }
    }
}

#[test]
fn generated_workload_runs_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    gen(&input, 500, 20_000, 7);
    run(&input, &out);

    // Every input event appears exactly once in outcomes, in input order.
    let events = jsonl(&input.join("events.jsonl"));
    let outcomes = jsonl(&out.join("outcomes.jsonl"));
    assert_eq!(outcomes.len(), events.len());
    for (i, (o, e)) in outcomes.iter().zip(&events).enumerate() {
        assert_eq!(o["line"], (i + 1) as u64);
        assert_eq!(o["event_id"], e["id"]);
    }

    // Coupon codes are unique, and each matches a committed execution.
    let effects = jsonl(&out.join("effects.jsonl"));
    let codes: Vec<&str> = effects
        .iter()
        .filter(|e| e["kind"] == "coupon")
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(!codes.is_empty());
    assert_eq!(
        codes.iter().collect::<HashSet<_>>().len(),
        codes.len(),
        "a coupon code was issued twice"
    );
    let keys: HashSet<&str> = effects.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), effects.len(), "idempotency keys must be unique");

    // Points: final balance = initial balance + the deltas of committed award_points actions,
    // recomputed independently from the events (order-points: int(total / 10); welcome: 100).
    let by_id: HashMap<&str, &Json> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let mut awarded: HashMap<u64, i64> = HashMap::new();
    for o in &outcomes {
        let Some(triggers) = o["triggers"].as_array() else {
            continue;
        };
        for t in triggers.iter().filter(|t| t["result"] == "committed") {
            let Some(ev) = by_id.get(t["event_id"].as_str().unwrap()) else {
                continue;
            };
            let customer = ev["customer_id"].as_u64().unwrap();
            let delta = match t["trigger"].as_str().unwrap() {
                "order-points" => (ev["properties"]["total"].as_f64().unwrap() / 10.0) as i64,
                "welcome" => 100,
                _ => 0,
            };
            *awarded.entry(customer).or_default() += delta;
        }
    }
    let before = load_customers(&input.join("customers.parquet")).unwrap();
    let after = load_customers(&out.join("customers.parquet")).unwrap();
    let (points, _) = after.schema().attr("points").unwrap();
    let mut checked = 0;
    for row in 0..after.len() as u32 {
        let id = after.id_at(row);
        let b = before.get(before.row_of(id).unwrap(), points);
        let a = after.get(row, points);
        let (fusebox_engine::value::Value::Int(b), fusebox_engine::value::Value::Int(a)) = (b, a)
        else {
            panic!("points not int")
        };
        assert_eq!(
            a,
            b + awarded.get(&id).copied().unwrap_or(0),
            "customer {id}"
        );
        checked += 1;
    }
    assert_eq!(checked, 500);

    // The report agrees with the files.
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["events"]["input"], events.len() as u64);
    assert_eq!(report["effects"]["total"], effects.len() as u64);
    assert_eq!(report["effects"]["coupons"], codes.len() as u64);
}

#[test]
fn same_seed_same_files_and_same_run_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    gen(&a, 300, 5_000, 42);
    gen(&b, 300, 5_000, 42);
    for f in [
        "customers.parquet",
        "events.jsonl",
        "triggers.yaml",
        "segments.yaml",
        "quotas.yaml",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let (o1, o2) = (dir.path().join("o1"), dir.path().join("o2"));
    run(&a, &o1);
    run(&a, &o2);
    for f in [
        "effects.jsonl",
        "outcomes.jsonl",
        "customers.parquet",
        "report.json",
    ] {
        assert_eq!(
            std::fs::read(o1.join(f)).unwrap(),
            std::fs::read(o2.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let c = dir.path().join("c");
    gen(&c, 300, 5_000, 43);
    assert_ne!(
        std::fs::read(a.join("events.jsonl")).unwrap(),
        std::fs::read(c.join("events.jsonl")).unwrap()
    );
}

#[test]
fn bad_event_lines_are_reported_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 10, 1);
    let mut events = std::fs::read(input.join("events.jsonl")).unwrap();
    events.extend_from_slice(b"{\"id\": \"broken\"\n\xff\xfe\n{\"id\":\"x1\",\"customer_id\":1,\"type\":\"order.completed\",\"timestamp\":\"yesterday\"}\n");
    std::fs::write(input.join("events.jsonl"), events).unwrap();
    let out = dir.path().join("out");
    run(&input, &out);
    let outcomes = jsonl(&out.join("outcomes.jsonl"));
    assert_eq!(outcomes.len(), 13);
    assert_eq!(outcomes[10]["line"], 11);
    assert_eq!(outcomes[10]["status"], "rejected");
    assert!(outcomes[10]["error"]
        .as_str()
        .unwrap()
        .contains("malformed event JSON"));
    assert!(outcomes[11]["error"].as_str().unwrap().contains("UTF-8"));
    assert!(outcomes[12]["error"].as_str().unwrap().contains("RFC 3339"));
}

#[test]
fn config_errors_stop_before_any_work_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 10, 1);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "triggers:\n  - id: t\n    owner: o\n    on: order.completed\n    condition: \"customer.pionts > 'x'\"\n    actions:\n      - issue_coupon: { pool: nope }\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = fusebox(&[
        "run",
        "--customers",
        input.join("customers.parquet").to_str().unwrap(),
        "--events",
        input.join("events.jsonl").to_str().unwrap(),
        "--triggers",
        bad.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:"), "{stderr}");
    assert!(
        stderr.contains("unknown customer attribute `pionts`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `customer.points`?"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.yaml:7:"), "{stderr}");
    assert!(stderr.contains("unknown coupon pool `nope`"), "{stderr}");
    assert!(
        !out_dir.exists(),
        "nothing may be written when the configuration is invalid"
    );
}

#[test]
fn check_reports_every_error_and_accepts_good_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 10, 1);
    let triggers = input.join("triggers.yaml");
    let customers = input.join("customers.parquet");
    let out = ok(&[
        "check",
        triggers.to_str().unwrap(),
        "--customers",
        customers.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 triggers (7 enabled)"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "triggers:\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - send_message: { channel: fax, template: t }\n  - id: t\n    owner: o\n    on: x\n    actions:\n      - increment: { attribute: points }\n").unwrap();
    let out = fusebox(&["check", bad.to_str().unwrap()]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:6:") && stderr.contains("unknown channel `fax`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:7:") && stderr.contains("duplicate trigger id `t`"),
        "{stderr}"
    );

    let binary = dir.path().join("bin.yaml");
    std::fs::write(&binary, b"triggers:\n  - id: \xff\n").unwrap();
    assert_eq!(
        fusebox(&["check", binary.to_str().unwrap()]).status.code(),
        Some(2)
    );
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        fusebox(&["check", empty.to_str().unwrap()]).status.code(),
        Some(2)
    );
}

#[test]
fn empty_or_missing_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 10, 1);
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let args = |events: &Path| {
        fusebox(&[
            "run",
            "--customers",
            input.join("customers.parquet").to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--triggers",
            input.join("triggers.yaml").to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ])
    };
    let out = args(&empty);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert_eq!(
        args(&dir.path().join("missing.jsonl")).status.code(),
        Some(2)
    );
}

#[test]
fn demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&["demo", "--out", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("events: 50000 in"), "{stdout}");
    assert!(dir.path().join("output/effects.jsonl").exists());
    // The generated quotas hold the runaway CRM sync.
    assert!(stdout.contains(" held: crm-sync "), "{stdout}");
    // Then it computes the generated segment group over the same input.
    assert!(stdout.contains("13 segments in"), "{stdout}");
    assert!(dir.path().join("segments/members.parquet").exists());
    // And refreshes it a week later: customers leave and enter segments.
    assert!(
        stdout.contains("refresh as of 2026-04-07T00:00:00Z"),
        "{stdout}"
    );
    let refresh: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("segments/refresh.json")).unwrap(),
    )
    .unwrap();
    let moved: u64 = refresh["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entered"].as_u64().unwrap() + s["left"].as_u64().unwrap())
        .sum();
    assert!(moved > 0, "{refresh}");
    assert!(refresh["revisited_customers"].as_u64().unwrap() > 0);
    assert!(
        std::fs::metadata(dir.path().join("output/held.jsonl"))
            .unwrap()
            .len()
            > 0
    );
}

/// `fusebox gen --runaway` adds a misbehaving trigger (a loop of chained events on every
/// page view) under a budget; `fusebox run` throttles it, defers it to the slow lane, stops
/// it, and its summary and report say which trigger, when and why; every executor writes
/// the same outputs, and the events are those of a plain `gen`.
#[test]
fn a_generated_runaway_is_throttled_deferred_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let plain = dir.path().join("plain");
    ok(&[
        "gen",
        "--out",
        input.to_str().unwrap(),
        "--customers",
        "500",
        "--events",
        "20000",
        "--seed",
        "3",
        "--runaway",
    ]);
    gen(&plain, 500, 20_000, 3);
    assert_eq!(
        std::fs::read(input.join("events.jsonl")).unwrap(),
        std::fs::read(plain.join("events.jsonl")).unwrap()
    );
    let out = dir.path().join("out");
    let (c, e, t) = (
        input.join("customers.parquet"),
        input.join("events.jsonl"),
        input.join("triggers.yaml"),
    );
    let run = ok(&[
        "run",
        "--customers",
        c.to_str().unwrap(),
        "--events",
        e.to_str().unwrap(),
        "--triggers",
        t.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    for says in [
        "governor: trigger page-rescan throttled after the window from 2026-03-01T00:00:00+00:00",
        "governor: trigger page-rescan stopped after the window from",
        "(deferred to the slow lane: ",
        "trigger:page-rescan      stopped by the governor",
    ] {
        assert!(stdout.contains(says), "missing {says:?} in:\n{stdout}");
    }
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let to: Vec<&str> = report["governor"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["trigger"] == "page-rescan")
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["throttled", "stopped"]);
    let outcomes = std::fs::read_to_string(out.join("outcomes.jsonl")).unwrap();
    assert!(outcomes.contains(r#""result":"deferred","lane":"slow""#));
    assert!(outcomes.contains(r#""lane":"slow""#));
    for (executor, chunk) in [
        ("sequential", "65536"),
        ("locking", "65536"),
        ("parallel", "5"),
    ] {
        let other = dir.path().join(format!("{executor}-{chunk}"));
        run_with(&input, &other, &["--executor", executor, "--chunk", chunk]);
        for file in ["outcomes.jsonl", "effects.jsonl", "report.json"] {
            assert!(
                std::fs::read(other.join(file)).unwrap() == std::fs::read(out.join(file)).unwrap(),
                "{executor}, chunks of {chunk}: {file} differs"
            );
        }
    }
}
