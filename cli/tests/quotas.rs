//! End-to-end tests of quotas in the `fusebox` binary: `run --quotas` (held.jsonl,
//! notifications.jsonl, reconciliation, determinism, a ledger kept across runs),
//! `quota status|raise|resume|reset`, a corrupt ledger, and `check` on quota files.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;

mod common;
use common::{assert_exit, fusebox, gen, jsonl, ok};

fn run_args(input: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--customers".into(),
        input.join("customers.parquet").display().to_string(),
        "--events".into(),
        input.join("events.jsonl").display().to_string(),
        "--triggers".into(),
        input.join("triggers.yaml").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quotas".into(),
        input.join("quotas.yaml").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let args = run_args(input, out, extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_run_with_quotas_holds_the_runaway_sync_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 500, 20_000, 7);
    let out = dir.path().join("out");
    let stdout = run(&input, &out, &["--executor", "sequential"]);
    let stdout = String::from_utf8_lossy(&stdout.stdout);

    let events = jsonl(&input.join("events.jsonl"));
    let outcomes = jsonl(&out.join("outcomes.jsonl"));
    let held = jsonl(&out.join("held.jsonl"));
    let notifications = jsonl(&out.join("notifications.jsonl"));
    let effects = jsonl(&out.join("effects.jsonl"));
    assert!(!held.is_empty(), "the runaway sync must be held");
    assert!(!notifications.is_empty());

    // Every input event has one outcome; processed + rejected + held = events in.
    assert_eq!(outcomes.len(), events.len());
    let count = |s: &str| outcomes.iter().filter(|o| o["status"] == s).count();
    let (processed, rejected, n_held) = (count("processed"), count("rejected"), count("held"));
    assert_eq!(processed + rejected + n_held, events.len());
    assert_eq!(n_held, held.len());
    let report: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["events"]["held"], held.len() as u64);
    assert_eq!(report["events"]["processed"], processed as u64);
    assert_eq!(report["held_by_process"]["crm-sync"], held.len() as u64);
    assert!(
        stdout.contains(&format!(
            "quotas: {} held: crm-sync {}",
            held.len(),
            held.len()
        )),
        "{stdout}"
    );

    // Each held line is its input event, charged its canonical size, and was not executed.
    let held_ids: HashSet<&str> = held
        .iter()
        .map(|h| h["event_id"].as_str().unwrap())
        .collect();
    for h in &held {
        let line = h["line"].as_u64().unwrap() as usize;
        assert_eq!(outcomes[line - 1]["status"], "held");
        assert_eq!(outcomes[line - 1]["reason"], h["message"]);
        assert_eq!(events[line - 1], h["event"], "held.jsonl keeps the event");
        assert_eq!(h["process"], "crm-sync");
        assert!(
            h["reason"] == "exhausted" || h["reason"] == "stopped",
            "{h}"
        );
        assert_eq!(
            h["bytes"].as_u64().unwrap(),
            serde_json::to_string(&h["event"]).unwrap().len() as u64
        );
    }
    assert!(effects
        .iter()
        .all(|e| !held_ids.contains(e["event_id"].as_str().unwrap())));
    // Other processes and process-less events are never held.
    for (o, e) in outcomes.iter().zip(&events) {
        if e["process"] != "crm-sync" {
            assert_ne!(o["status"], "held", "{e}");
        }
    }

    // The owner hears once per day: warned, then exhausted; the shadow tracker is reported
    // but never held.
    let mut exhausted_days = HashMap::new();
    for n in &notifications {
        if n["kind"] == "exhausted" {
            assert_eq!(n["owner"], "data-team@shop.example");
            assert_eq!(n["subject"]["type"], "process");
            assert_eq!(n["subject"]["id"], "crm-sync");
            let f = &n["figures"];
            assert!(f["used_records"].as_u64().unwrap() <= f["limit_records"].as_u64().unwrap());
            assert_eq!(f["time_zone"], "Europe/Berlin");
            assert!(n["reason"].as_str().unwrap().contains("daily"), "{n}");
            *exhausted_days
                .entry(f["quota_day"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    assert!(exhausted_days.len() > 20, "{exhausted_days:?}");
    assert!(exhausted_days.values().all(|&n| n == 1));
    assert!(notifications
        .iter()
        .any(|n| n["kind"] == "shadow_would_deny"
            && n["subject"] == serde_json::json!({"type": "process", "id": "web-tracker"})));

    // Nothing is lost: the held events, fed back as an events file, run.
    let retry_in = dir.path().join("retry");
    std::fs::create_dir_all(&retry_in).unwrap();
    for f in ["customers.parquet", "triggers.yaml", "quotas.yaml"] {
        std::fs::copy(input.join(f), retry_in.join(f)).unwrap();
    }
    let retry_log: String = held.iter().map(|h| format!("{}\n", h["event"])).collect();
    std::fs::write(retry_in.join("events.jsonl"), retry_log).unwrap();
    let retry_out = dir.path().join("retry-out");
    ok(&[
        "run",
        "--customers",
        retry_in.join("customers.parquet").to_str().unwrap(),
        "--events",
        retry_in.join("events.jsonl").to_str().unwrap(),
        "--triggers",
        retry_in.join("triggers.yaml").to_str().unwrap(),
        "--out",
        retry_out.to_str().unwrap(),
        "--quiet",
    ]);
    let retried = jsonl(&retry_out.join("outcomes.jsonl"));
    assert_eq!(retried.len(), held.len());
    assert!(retried.iter().all(|o| o["status"] == "processed"));

    // Same held set and notifications with the parallel executor.
    let par = dir.path().join("par");
    run(
        &input,
        &par,
        &["--executor", "parallel", "--threads", "4", "--quiet"],
    );
    for f in ["held.jsonl", "notifications.jsonl", "outcomes.jsonl"] {
        assert!(
            std::fs::read(out.join(f)).unwrap() == std::fs::read(par.join(f)).unwrap(),
            "{f} differs between sequential and parallel"
        );
    }
}

fn status_json(ledger: &Path, process: &str, at: &str) -> Json {
    let out = ok(&[
        "quota",
        "status",
        "--ledger",
        ledger.to_str().unwrap(),
        "--process",
        process,
        "--at",
        at,
        "--json",
    ]);
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn a_ledger_persists_across_runs_and_operators_can_adjust_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 200, 6_000, 3);
    // Cut the log right after the first held event, so that the ledger's newest day for
    // crm-sync is the day it was stopped.
    let probe = dir.path().join("probe");
    run(&input, &probe, &["--quiet"]);
    let first_held = jsonl(&probe.join("held.jsonl"))[0]["line"]
        .as_u64()
        .unwrap() as usize;
    let log = std::fs::read_to_string(input.join("events.jsonl")).unwrap();
    let prefix: String = log
        .lines()
        .take(first_held)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(input.join("events.jsonl"), prefix).unwrap();

    let ledger = dir.path().join("quota.ledger");
    let ledger_s = ledger.to_str().unwrap();
    let (o1, o2) = (dir.path().join("o1"), dir.path().join("o2"));
    run(&input, &o1, &["--ledger", ledger_s, "--quiet"]);
    let held1 = jsonl(&o1.join("held.jsonl"));
    assert_eq!(held1.len(), 1);
    let at = held1[0]["event"]["timestamp"].as_str().unwrap().to_string();
    let s = status_json(&ledger, "crm-sync", &at);
    assert_eq!(s["state"], "exhausted", "{s}");
    let limit = s["limit"]["records"].as_u64().unwrap();
    assert_eq!(s["used"]["records"].as_u64().unwrap(), limit);
    let table = ok(&["quota", "status", "--ledger", ledger_s, "--at", &at]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("PROCESS"), "{table}");
    for p in [
        "crm-sync",
        "shop-orders-import",
        "web-tracker",
        "loyalty-export",
    ] {
        assert!(table.contains(p), "{table}");
    }

    // A second run over the same log finds the first run's usage in the ledger: crm-sync is
    // still stopped on that day, so every one of its events is held.
    run(&input, &o2, &["--ledger", ledger_s, "--quiet"]);
    let crm_events = log
        .lines()
        .take(first_held)
        .filter(|l| l.contains(r#""process":"crm-sync""#))
        .count();
    assert!(crm_events > 1);
    let held2 = jsonl(&o2.join("held.jsonl"));
    assert_eq!(held2.len(), crm_events);
    assert!(held2.iter().all(|h| h["reason"] == "stopped"));

    // Raise: active again with the new limit, owner notified.
    let raised = ok(&[
        "quota",
        "raise",
        "--ledger",
        ledger_s,
        "--process",
        "crm-sync",
        "--records",
        &(limit * 2).to_string(),
        "--at",
        &at,
    ]);
    assert!(String::from_utf8_lossy(&raised.stdout).contains("notify data-team@shop.example"));
    let s = status_json(&ledger, "crm-sync", &at);
    assert_eq!(s["state"], "active");
    assert_eq!(s["raised"], true);
    assert_eq!(s["limit"]["records"].as_u64().unwrap(), limit * 2);

    // Resume keeps usage; reset zeroes it.
    ok(&[
        "quota",
        "resume",
        "--ledger",
        ledger_s,
        "--process",
        "crm-sync",
        "--at",
        &at,
    ]);
    assert_eq!(
        status_json(&ledger, "crm-sync", &at)["used"]["records"].as_u64(),
        Some(limit)
    );
    ok(&[
        "quota",
        "reset",
        "--ledger",
        ledger_s,
        "--process",
        "crm-sync",
        "--at",
        &at,
    ]);
    let s = status_json(&ledger, "crm-sync", &at);
    assert_eq!(s["used"]["records"], 0);
    assert_eq!(s["state"], "active");

    // Lowering a limit and unknown processes are refused.
    let low = fusebox(&[
        "quota",
        "raise",
        "--ledger",
        ledger_s,
        "--process",
        "crm-sync",
        "--records",
        "1",
        "--at",
        &at,
    ]);
    assert_exit(&low, 2);
    assert!(String::from_utf8_lossy(&low.stderr).contains("would lower"));
    let unknown = fusebox(&["quota", "resume", "--ledger", ledger_s, "--process", "nope"]);
    assert_exit(&unknown, 2);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown process `nope`"));

    // After the raise and the reset the same log fits: nothing is held.
    let o3 = dir.path().join("o3");
    run(&input, &o3, &["--ledger", ledger_s, "--quiet"]);
    assert!(jsonl(&o3.join("held.jsonl")).is_empty());
}

#[test]
fn a_corrupt_ledger_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 5);
    let ledger = dir.path().join("quota.ledger");
    let ledger_s = ledger.to_str().unwrap();
    run(
        &input,
        &dir.path().join("o1"),
        &["--ledger", ledger_s, "--quiet"],
    );
    let mut bytes = std::fs::read(&ledger).unwrap();
    assert!(bytes.len() > 2_000);
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0xA5;
    }
    std::fs::write(&ledger, &bytes).unwrap();

    let out = fusebox(&["quota", "status", "--ledger", ledger_s]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("corrupt") && stderr.contains("Refusing to start"),
        "{stderr}"
    );

    let o2 = dir.path().join("o2");
    let args = run_args(&input, &o2, &["--ledger", ledger_s]);
    let out = fusebox(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert!(!o2.exists(), "nothing may be written");
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        bytes,
        "the ledger is left as found"
    );

    let missing = fusebox(&["quota", "status", "--ledger", "/nonexistent/q.ledger"]);
    assert_exit(&missing, 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no quota ledger"));
}

/// Record boundaries of a version-2 ledger file (80-byte header and superblock, then
/// `len | !len | crc | payload` frames), per the format documented in `fusebox_quotas`.
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut at = 80;
    let mut ends = vec![at];
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 12 + len > bytes.len() {
            break;
        }
        at += 12 + len;
        ends.push(at);
    }
    ends
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_ledger_that_lost_its_tail_is_refused_by_run_and_status_alike_and_recovered_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 5);
    let ledger = dir.path().join("quota.ledger");
    let ledger_s = ledger.to_str().unwrap();
    let first = run(&input, &dir.path().join("o1"), &["--ledger", ledger_s]);
    assert!(
        stdout(&first).contains(&format!("ledger file:{ledger_s} (new ledger)")),
        "{}",
        stdout(&first)
    );
    let second = run(&input, &dir.path().join("o2"), &["--ledger", ledger_s]);
    assert!(
        stdout(&second).contains("(closed cleanly: "),
        "{}",
        stdout(&second)
    );
    let full = std::fs::read(&ledger).unwrap();
    let ends = record_ends(&full);
    assert_eq!(
        *ends.last().unwrap(),
        full.len(),
        "a clean ledger ends on a record"
    );

    let refused = |what: &str| {
        let status = fusebox(&["quota", "status", "--ledger", ledger_s]);
        assert_exit(&status, 2);
        assert!(
            stderr(&status).contains("lost acknowledged usage")
                && stderr(&status).contains("fusebox quota recover"),
            "{what}: {}",
            stderr(&status)
        );
        let o = dir.path().join("refused");
        let args = run_args(&input, &o, &["--ledger", ledger_s]);
        let r = fusebox(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_exit(&r, 2);
        assert!(stderr(&r).contains("lost acknowledged usage"), "{what}");
        assert!(!o.exists(), "{what}: nothing may be written");
    };
    // Cut at a record boundary in the middle; zero-filled from there; cut to the superblock.
    let cut = ends[ends.len() / 2];
    std::fs::write(&ledger, &full[..cut]).unwrap();
    refused("cut at a record boundary");
    let mut zeroed = full.clone();
    zeroed[cut..].fill(0);
    std::fs::write(&ledger, &zeroed).unwrap();
    refused("zero-filled from a record boundary");
    std::fs::write(&ledger, &full[..80]).unwrap();
    refused("header and superblock only");
    // Cut to the 16-byte header, the superblock gone too: refused as corrupt by both.
    std::fs::write(&ledger, &full[..16]).unwrap();
    let status = fusebox(&["quota", "status", "--ledger", ledger_s]);
    assert_exit(&status, 2);
    let args = run_args(&input, &dir.path().join("o16"), &["--ledger", ledger_s]);
    assert_exit(
        &fusebox(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        2,
    );

    // recover without --accept-loss shows what is known and changes nothing.
    std::fs::write(&ledger, &full[..cut]).unwrap();
    let look = fusebox(&["quota", "recover", "--ledger", ledger_s]);
    assert_exit(&look, 2);
    let shown = stdout(&look);
    for want in [
        "format version 2",
        &format!("acknowledged up to byte {}", full.len()),
        &format!("up to byte {cut}"),
        "refused: ",
        "crm-sync",
        "--accept-loss",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }
    assert_eq!(std::fs::read(&ledger).unwrap(), &full[..cut]);

    // --accept-loss rewrites it and records who, when, why and what was lost.
    let fixed = ok(&[
        "quota",
        "recover",
        "--ledger",
        ledger_s,
        "--accept-loss",
        "--reason",
        "INC-42 truncated copy",
        "--operator",
        "alice",
    ]);
    let shown = stdout(&fixed);
    assert!(
        shown.contains("recovered: ") && shown.contains("by alice"),
        "{shown}"
    );
    let audit_line = shown
        .lines()
        .find_map(|l| l.strip_prefix("audit record (kept in the ledger): "))
        .expect("audit record printed");
    let audit: Json = serde_json::from_str(audit_line).unwrap();
    assert_eq!(audit["cause"], "tail_lost");
    assert_eq!(audit["lost_bytes"], (full.len() - cut) as u64);
    assert_eq!(audit["reason"], "INC-42 truncated copy");

    // From now on the recovery is visible: in status, and in every run summary.
    let status = ok(&["quota", "status", "--ledger", ledger_s]);
    assert!(
        stdout(&status).contains("ledger recovered by an operator: ")
            && stdout(&status).contains("INC-42"),
        "{}",
        stdout(&status)
    );
    let json = ok(&["quota", "status", "--ledger", ledger_s, "--json"]);
    assert!(stdout(&json).lines().all(|l| l.starts_with('{')));
    assert!(stderr(&json).contains("note: ledger recovered by an operator"));
    let again = run(&input, &dir.path().join("o3"), &["--ledger", ledger_s]);
    assert!(
        stdout(&again).contains("recovered by an operator 1 time"),
        "{}",
        stdout(&again)
    );
    let healthy = ok(&["quota", "recover", "--ledger", ledger_s]);
    assert!(stdout(&healthy).contains("nothing to recover"));
}

/// The log plus one crm-sync event stamped `at` (a copy of the last crm-sync line).
fn with_event_at(input: &Path, id: &str, at: &str) {
    let log = std::fs::read_to_string(input.join("events.jsonl")).unwrap();
    let last: Json = log
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|e| e["process"] == "crm-sync")
        .unwrap();
    let mut far = last.clone();
    far["id"] = id.into();
    far["timestamp"] = at.into();
    std::fs::write(input.join("events.jsonl"), format!("{log}{far}\n")).unwrap();
}

fn quota_day_of(ledger: &str, at: &str) -> String {
    status_json(Path::new(ledger), "crm-sync", at)["quota_day"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_far_future_event_is_held_and_a_pinned_ledger_is_rewound() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 5);
    with_event_at(&input, "from-the-future", "9999-12-30T00:00:00Z");
    let day = "2026-03-31T12:00:00Z";

    // With the wall clock as reference (default max_event_lead: 1d) it is held, untouched.
    let l1 = dir.path().join("l1.ledger");
    let out = dir.path().join("o1");
    run(&input, &out, &["--ledger", l1.to_str().unwrap(), "--quiet"]);
    let held = jsonl(&out.join("held.jsonl"));
    let far = held
        .iter()
        .find(|h| h["event_id"] == "from-the-future")
        .expect("held");
    assert_eq!(far["reason"], "ahead_of_clock");
    assert_eq!(far["max_lead"], "1d");
    assert_eq!(far["at"], "9999-12-30T00:00:00Z");
    assert!(far["message"].as_str().unwrap().contains("max_event_lead"));
    assert_eq!(quota_day_of(l1.to_str().unwrap(), day), "2026-03-31");

    // A reference clock that far ahead (as before the bound) lets it pin crm-sync ...
    let l2 = dir.path().join("l2.ledger");
    let l2s = l2.to_str().unwrap();
    let out = dir.path().join("o2");
    run(
        &input,
        &out,
        &[
            "--ledger",
            l2s,
            "--quota-now",
            "9999-12-31T00:00:00Z",
            "--quiet",
        ],
    );
    assert!(jsonl(&out.join("held.jsonl"))
        .iter()
        .all(|h| h["event_id"] != "from-the-future"));
    assert_eq!(quota_day_of(l2s, day), "9999-12-30");
    // ... and `reset` cannot undo it: it resets the pinned day.
    ok(&[
        "quota",
        "reset",
        "--ledger",
        l2s,
        "--process",
        "crm-sync",
        "--at",
        day,
    ]);
    assert_eq!(quota_day_of(l2s, day), "9999-12-30");
    // An operator action that far ahead is refused.
    let refused = fusebox(&[
        "quota",
        "resume",
        "--ledger",
        l2s,
        "--process",
        "crm-sync",
        "--at",
        "9999-12-30T12:00:00Z",
    ]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("ahead of the clock"),
        "{}",
        stderr(&refused)
    );

    // rewind moves it back to the quota day of --at, logged as an operator action.
    let rewound = ok(&[
        "quota",
        "rewind",
        "--ledger",
        l2s,
        "--process",
        "crm-sync",
        "--at",
        day,
    ]);
    let shown = stdout(&rewound);
    assert!(
        shown.contains("notify data-team@shop.example: an operator moved crm-sync back from quota day 9999-12-30 to 2026-03-31"),
        "{shown}"
    );
    assert_eq!(quota_day_of(l2s, day), "2026-03-31");
    let again = fusebox(&[
        "quota",
        "rewind",
        "--ledger",
        l2s,
        "--process",
        "crm-sync",
        "--to-day",
        "2026-03-31",
    ]);
    assert_exit(&again, 2);
    assert!(stderr(&again).contains("earlier day"), "{}", stderr(&again));

    // set: the day's usage by hand.
    let set = ok(&[
        "quota",
        "set",
        "--ledger",
        l2s,
        "--process",
        "crm-sync",
        "--records",
        "7",
        "--at",
        day,
    ]);
    assert!(
        stdout(&set).contains("set the day's usage to 7 records"),
        "{}",
        stdout(&set)
    );
    let s = status_json(&l2, "crm-sync", day);
    assert_eq!(
        (s["used"]["records"].as_u64(), s["state"].as_str()),
        (Some(7), Some("active"))
    );
}

/// The reported panic (exit 101): a Parquet event at i64::MAX µs for a process in a non-UTC
/// zone. The reader now rejects that row (outside 0001–9999, like any other reader), and an
/// event at the far end of the range is held as ahead of the clock; the run exits 0.
#[test]
fn a_parquet_event_at_the_end_of_time_is_rejected_or_held_not_a_panic() {
    use fusebox_engine::event::Event;
    use fusebox_engine::io::events::write_events_parquet;
    use fusebox_engine::value::{Map, MAX_TIMESTAMP};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 100, 2);
    let known = jsonl(&input.join("events.jsonl"))[0]["customer_id"]
        .as_u64()
        .unwrap();
    let event = |id: &str, timestamp: i64| Event {
        id: id.into(),
        customer_id: known,
        event_type: "customer.updated".into(),
        timestamp,
        process: Some("crm-sync".into()),
        properties: std::sync::Arc::new(Map::default()),
    };
    write_events_parquet(
        &[
            event("end-of-time", i64::MAX),
            event("last-day", MAX_TIMESTAMP),
        ],
        &input.join("end.parquet"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut args = run_args(&input, &out, &[]);
    let at = args.iter().position(|a| a == "--events").unwrap() + 1;
    args[at] = input.join("end.parquet").display().to_string();
    let r = fusebox(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&r, 0);
    let outcomes = jsonl(&out.join("outcomes.jsonl"));
    assert_eq!(outcomes[0]["status"].as_str(), Some("rejected"));
    assert!(outcomes[0]["error"]
        .as_str()
        .unwrap()
        .contains("outside the supported range"));
    let held = jsonl(&out.join("held.jsonl"));
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0]["event_id"].as_str(), held[0]["reason"].as_str()),
        (Some("last-day"), Some("ahead_of_clock"))
    );
}

#[test]
fn check_validates_quota_files_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 50, 10, 1);
    let good = ok(&["check", input.join("quotas.yaml").to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("5 processes (1 shadow)"),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "processes:\n  - id: crm-sync\n    owner: a@example.com\n    time_zone: Europe/Berln\n    limits: { records: 0 }\n  - id: crm-sync\n    owner: b@example.com\n    time_zone: UTC\n    limits: { records: -5 }\n",
    )
    .unwrap();
    let out = fusebox(&["check", bad.to_str().unwrap()]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:4:") && stderr.contains("unknown time zone `Europe/Berln`"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.yaml:5:"), "{stderr}");
    assert!(stderr.contains("bad.yaml:6:"), "{stderr}");
    assert!(stderr.contains("bad.yaml:9:"), "{stderr}");

    // The same file stops a run before any work.
    let out_dir = dir.path().join("out");
    let mut args = run_args(&input, &out_dir, &[]);
    let n = args.len();
    args[n - 1] = bad.display().to_string();
    let out = fusebox(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:4:"));
    assert!(!out_dir.exists());
}

/// A throwaway `redis-server` on a free loopback port (no persistence), shut down on drop
/// and bounded by `timeout` even if the test process dies.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

fn redis_ping(port: u16, cmd: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    Ok(line)
}

impl RedisServer {
    /// `None` (with a visible notice) when `redis-server` is not installed, outside CI.
    fn start() -> Option<RedisServer> {
        if !on_path("redis-server") || !on_path("timeout") {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
            assert!(!ci, "redis-server and timeout must be on the PATH under CI");
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: redis-server not on the PATH; skipping the CLI Redis test"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new("timeout")
            .args(["-s", "KILL", "300", "redis-server", "--port"])
            .arg(port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if redis_ping(port, "PING").is_ok_and(|l| l.starts_with("+PONG")) {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server did not come up on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = redis_ping(self.port, "SHUTDOWN NOSAVE");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_instances_on_one_redis_share_each_quota() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 300, 6_000, 9);
    // One Berlin quota day (2026-03-01 starts at 2026-02-28T23:00Z and ends at 23:00Z),
    // split between two instances line by line.
    let log = std::fs::read_to_string(input.join("events.jsonl")).unwrap();
    let day: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""timestamp":"2026-03-01T"#) && !l.contains("T23:"))
        .collect();
    let crm_events = day.iter().filter(|l| l.contains("crm-sync")).count();
    let (a_in, b_in) = (dir.path().join("a"), dir.path().join("b"));
    for (i, d) in [&a_in, &b_in].into_iter().enumerate() {
        std::fs::create_dir_all(d).unwrap();
        for f in ["customers.parquet", "triggers.yaml", "quotas.yaml"] {
            std::fs::copy(input.join(f), d.join(f)).unwrap();
        }
        let half: String = day
            .iter()
            .skip(i)
            .step_by(2)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(d.join("events.jsonl"), half).unwrap();
    }
    let (a_out, b_out) = (dir.path().join("ao"), dir.path().join("bo"));
    let spawn = |input: &Path, out: &Path| {
        let args = run_args(input, out, &["--redis", &url, "--quiet"]);
        Command::new(env!("CARGO_BIN_EXE_fusebox"))
            .args(&args)
            .spawn()
            .expect("spawn fusebox")
    };
    let (mut a, mut b) = (spawn(&a_in, &a_out), spawn(&b_in, &b_out));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());

    // Zero over-grant across instances: together they ran exactly the limit.
    let s = {
        let out = ok(&[
            "quota",
            "status",
            "--redis",
            &url,
            "--process",
            "crm-sync",
            "--at",
            "2026-03-01T12:00:00Z",
            "--json",
        ]);
        serde_json::from_str::<Json>(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
    };
    let limit = s["limit"]["records"].as_u64().unwrap() as usize;
    assert!(crm_events > limit, "{crm_events} <= {limit}");
    let ran = |out: &Path| {
        jsonl(&out.join("outcomes.jsonl"))
            .iter()
            .filter(|o| o["status"] == "processed")
            .filter(|o| {
                let id = o["event_id"].as_str().unwrap();
                day.iter()
                    .any(|l| l.contains(&format!(r#""id":"{id}""#)) && l.contains("crm-sync"))
            })
            .count()
    };
    assert_eq!(ran(&a_out) + ran(&b_out), limit);
    assert_eq!(s["used"]["records"].as_u64().unwrap() as usize, limit);
    let held = jsonl(&a_out.join("held.jsonl")).len() + jsonl(&b_out.join("held.jsonl")).len();
    assert_eq!(held, crm_events - limit);
}

#[test]
fn an_unreachable_redis_holds_fail_closed_processes_and_lets_fail_open_ones_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input, 100, 2_000, 4);
    let out = dir.path().join("out");
    // Nothing listens on port 1: every ledger call fails.
    run(
        &input,
        &out,
        &["--redis", "redis://127.0.0.1:1/0", "--quiet"],
    );
    let held = jsonl(&out.join("held.jsonl"));
    assert!(!held.is_empty());
    assert!(held.iter().all(|h| h["reason"] == "backend_unavailable"));
    let error = held[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("ledger backend unavailable: ")
            && error.matches("unavailable").count() == 1,
        "{error}"
    );
    let held_processes: HashSet<&str> = held
        .iter()
        .map(|h| h["process"].as_str().unwrap())
        .collect();
    assert!(held_processes.contains("crm-sync"));
    assert!(
        !held_processes.contains("web-tracker"),
        "web-tracker is fail_open"
    );
    let events = jsonl(&input.join("events.jsonl"));
    let outcomes = jsonl(&out.join("outcomes.jsonl"));
    for (o, e) in outcomes.iter().zip(&events) {
        if e["process"] == "web-tracker" || e["process"].is_null() {
            assert_ne!(o["status"], "held", "{e}");
        }
    }
    let notifications = jsonl(&out.join("notifications.jsonl"));
    assert!(notifications
        .iter()
        .any(|n| n["subject"]["id"] == "web-tracker"
            && n["kind"] == "backend_unavailable_allowed"
            && n["figures"]["backend"].is_string()));
    assert!(notifications
        .iter()
        .any(|n| n["subject"]["id"] == "crm-sync"
            && n["kind"] == "backend_unavailable_denied"
            && n["figures"].get("used_records").is_none()));
}
