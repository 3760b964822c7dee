//! `fusebox segment` / `check` / `gen` for segment groups, as a user sees them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use fusebox_engine::io::customers::load_customers;
use fusebox_engine::io::events::read_events;
use fusebox_segment::{compile_segments, oracle, EventStore, SegmentData, SegmentGroup};
use polars::prelude::*;
use serde_json::Value as Json;

mod common;
use common::{assert_exit, fusebox, succeeded};

/// The small workload every test here starts from.
fn gen(dir: &Path) {
    common::gen(dir, 300, 6000, 4);
}

fn segment(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let (c, e, s) = (
        input.join("customers.parquet"),
        input.join("events.jsonl"),
        input.join("segments.yaml"),
    );
    let mut args = vec![
        "segment",
        "--customers",
        c.to_str().unwrap(),
        "--events",
        e.to_str().unwrap(),
    ];
    args.extend([
        "--segments",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    fusebox(&args)
}

/// The generated group and data, loaded the way the library's users would, for the oracle.
fn oracle_input(input: &Path) -> (SegmentGroup, SegmentData) {
    let customers = load_customers(&input.join("customers.parquet")).unwrap();
    let events: Vec<_> = read_events(&input.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| r.event.ok())
        .collect();
    let store = EventStore::from_events(&customers, &events);
    let text = std::fs::read_to_string(input.join("segments.yaml")).unwrap();
    let group = compile_segments(
        &text,
        "segments.yaml",
        Some(customers.schema()),
        Some(&store.types()),
    )
    .unwrap();
    (group, SegmentData::new(customers, store))
}

/// The oracle's members at the tests' as-of, as customer ids.
fn oracle_members(
    group: &SegmentGroup,
    data: &SegmentData,
) -> Vec<(std::sync::Arc<str>, Vec<u64>)> {
    oracle_members_at(group, data, "2026-03-31T00:00:00Z")
}

/// The oracle's members at `as_of` (RFC 3339), as customer ids.
fn oracle_members_at(
    group: &SegmentGroup,
    data: &SegmentData,
    as_of: &str,
) -> Vec<(std::sync::Arc<str>, Vec<u64>)> {
    let as_of = fusebox_engine::value::parse_timestamp(as_of).unwrap();
    let ids = data.customers().ids();
    oracle::evaluate(group, data, as_of)
        .into_iter()
        .map(|(id, rows)| (id, rows.iter().map(|&r| ids[r as usize]).collect()))
        .collect()
}

fn members(path: &Path) -> BTreeMap<String, Vec<u64>> {
    let file = std::fs::File::open(path).unwrap();
    let df = ParquetReader::new(file).finish().unwrap();
    let seg = df.column("segment_id").unwrap().str().unwrap().clone();
    let ids = df.column("customer_id").unwrap().u64().unwrap().clone();
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (s, id) in seg.iter().zip(ids.iter()) {
        out.entry(s.unwrap().to_string())
            .or_default()
            .push(id.unwrap());
    }
    out
}

#[test]
fn segment_writes_members_and_summary_that_match_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input);
    let out1 = dir.path().join("o1");
    let r = segment(
        &input,
        &out1,
        &[
            "--threads",
            "1",
            "--explain",
            "--as-of",
            "2026-03-31T00:00:00Z",
        ],
    );
    succeeded(&r);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("segment ") && stdout.contains("members"),
        "{stdout}"
    );
    assert!(stdout.contains("plan: 13 segments"), "{stdout}");
    assert!(
        stdout.contains("est ") && stdout.contains("actual "),
        "{stdout}"
    );

    let got = members(&out1.join("members.parquet"));
    let summary: Json =
        serde_json::from_str(&std::fs::read_to_string(out1.join("segments.json")).unwrap())
            .unwrap();
    let segs = summary["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 13);
    for s in segs {
        let id = s["id"].as_str().unwrap();
        let n = got.get(id).map_or(0, Vec::len) as u64;
        assert_eq!(s["count"].as_u64(), Some(n), "{id}");
        assert_eq!(s["finished"], Json::Bool(true));
    }
    assert!(got.values().any(|m| !m.is_empty()));

    // The naive oracle on the same files agrees.
    let (group, data) = oracle_input(&input);
    for (id, expect) in oracle_members(&group, &data) {
        assert_eq!(
            got.get(id.as_ref()).cloned().unwrap_or_default(),
            expect,
            "{id}"
        );
    }

    // Same members with more threads.
    let out2 = dir.path().join("o2");
    let r = segment(
        &input,
        &out2,
        &["--threads", "3", "--as-of", "2026-03-31T00:00:00Z"],
    );
    succeeded(&r);
    assert_eq!(members(&out2.join("members.parquet")), got);
}

#[test]
fn check_validates_segment_files_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input);
    let seg = input.join("segments.yaml");
    let customers = input.join("customers.parquet");
    let r = fusebox(&[
        "check",
        seg.to_str().unwrap(),
        "--customers",
        customers.to_str().unwrap(),
    ]);
    succeeded(&r);
    assert!(String::from_utf8_lossy(&r.stdout).contains("13 segments"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "segments:\n  - id: a\n    owner: x\n    filter: { attribute: points, gt: \"abc\" }\n  - id: b\n    owner: x\n    filter:\n      performed: { event: order.completed, within: 30 days }\n",
    )
    .unwrap();
    let r = fusebox(&[
        "check",
        bad.to_str().unwrap(),
        "--customers",
        customers.to_str().unwrap(),
    ]);
    assert_exit(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("bad.yaml:4:"), "{err}");
    assert!(err.contains("type mismatch: `points` is int"), "{err}");
    assert!(err.contains("bad.yaml:8:"), "{err}");
    assert!(err.contains("malformed window `30 days`"), "{err}");

    // `segment` refuses the same file before doing any work: exit 2, no outputs.
    let out = dir.path().join("never");
    let (c, e) = (input.join("customers.parquet"), input.join("events.jsonl"));
    let r = fusebox(&[
        "segment",
        "--customers",
        c.to_str().unwrap(),
        "--events",
        e.to_str().unwrap(),
        "--segments",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&r, 2);
    assert!(!out.exists());
    let r = segment(&input, &out, &["--as-of", "yesterday"]);
    assert_exit(&r, 2);
    assert!(String::from_utf8_lossy(&r.stderr).contains("--as-of"));
}

#[test]
fn segment_refreshes_a_change_set_and_its_events_drive_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input);
    let customers = load_customers(&input.join("customers.parquet")).unwrap();
    let ids = customers.ids().to_vec();
    // 30 customers get rich, 30 lose their points, 40 order big, 2 new customers join.
    let updates = dir.path().join("updates.jsonl");
    let mut text = String::new();
    for (k, id) in ids.iter().take(60).enumerate() {
        let points = if k < 30 { 5000 } else { 0 };
        text +=
            &format!("{{\"customer_id\": {id}, \"attribute\": \"points\", \"value\": {points}}}\n");
    }
    std::fs::write(&updates, &text).unwrap();
    let new_events = dir.path().join("new.jsonl");
    let mut text = String::new();
    for (k, id) in ids[100..140].iter().enumerate() {
        text += &format!(
            "{{\"id\":\"new-{k}\",\"customer_id\":{id},\"type\":\"order.completed\",\"timestamp\":\"2026-03-30T12:00:00Z\",\"properties\":{{\"total\":500.0}}}}\n"
        );
    }
    std::fs::write(&new_events, &text).unwrap();
    let new_customers = dir.path().join("new_customers.csv");
    // `total_spent` (a float attribute) holds whole numbers, so the CSV reads it as int; `tier`
    // is empty in every row, so it reads untyped: both are accepted.
    std::fs::write(
        &new_customers,
        "id,points,total_spent,tier\n100001,7000,120,\n100002,,,\n",
    )
    .unwrap();

    let out = dir.path().join("out");
    let r = segment(
        &input,
        &out,
        &[
            "--as-of",
            "2026-03-31T00:00:00Z",
            "--updates",
            updates.to_str().unwrap(),
            "--new-events",
            new_events.to_str().unwrap(),
            "--new-customers",
            new_customers.to_str().unwrap(),
        ],
    );
    succeeded(&r);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(
            "refresh as of 2026-03-31T00:00:00Z: 2 new customers, 62 updates, 40 new events"
        ),
        "{stdout}"
    );

    // refresh.json matches the two member files; the refreshed members match the oracle on
    // the changed data.
    let before = members(&out.join("members.parquet"));
    let after = members(&out.join("members-refreshed.parquet"));
    let summary: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("refresh.json")).unwrap()).unwrap();
    let mut moved = 0;
    for s in summary["segments"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let (b, a) = (
            before.get(id).cloned().unwrap_or_default(),
            after.get(id).cloned().unwrap_or_default(),
        );
        let entered = a.iter().filter(|x| !b.contains(x)).count() as u64;
        let left = b.iter().filter(|x| !a.contains(x)).count() as u64;
        assert_eq!(s["before"].as_u64(), Some(b.len() as u64), "{id}");
        assert_eq!(s["after"].as_u64(), Some(a.len() as u64), "{id}");
        assert_eq!(
            (s["entered"].as_u64(), s["left"].as_u64()),
            (Some(entered), Some(left)),
            "{id}"
        );
        moved += entered + left;
    }
    assert!(moved > 0);
    let (group, mut data) = oracle_input(&input);
    let (points, _) = data.customers().schema().attr("points").unwrap();
    let added = data.add_customers(&[100001, 100002]).unwrap();
    data.set_row(added.start, points, fusebox_engine::value::Value::Int(7000));
    let (spent, _) = data.customers().schema().attr("total_spent").unwrap();
    data.set_row(
        added.start,
        spent,
        fusebox_engine::value::Value::Float(120.0),
    );
    for (k, id) in ids.iter().take(60).enumerate() {
        let row = data.customers().row_of(*id).unwrap();
        let v = if k < 30 { 5000 } else { 0 };
        data.set_row(row, points, fusebox_engine::value::Value::Int(v));
    }
    for r in read_events(&new_events).unwrap() {
        data.append_event(r.event.as_ref().unwrap());
    }
    for (id, expect) in oracle_members(&group, &data) {
        assert_eq!(
            after.get(id.as_ref()).cloned().unwrap_or_default(),
            expect,
            "{id}"
        );
    }

    // segment-events.jsonl: one event per customer who moved, readable by `fusebox run`.
    let seg_events = out.join("segment-events.jsonl");
    let records = read_events(&seg_events).unwrap();
    assert_eq!(records.len() as u64, moved);
    let entered_known = records
        .iter()
        .map(|r| r.event.as_ref().unwrap())
        .filter(|e| e.event_type.as_ref() == "segment.entered" && e.customer_id < 100001)
        .count();
    assert!(entered_known > 0);
    let triggers = dir.path().join("t.yaml");
    std::fs::write(
        &triggers,
        "triggers:\n  - id: congrats\n    owner: crm@example.com\n    on: segment.entered\n    actions:\n      - send_message: { channel: email, template: welcome }\n",
    )
    .unwrap();
    let run_out = dir.path().join("run");
    let c = input.join("customers.parquet");
    let r = fusebox(&[
        "run",
        "--customers",
        c.to_str().unwrap(),
        "--events",
        seg_events.to_str().unwrap(),
        "--triggers",
        triggers.to_str().unwrap(),
        "--out",
        run_out.to_str().unwrap(),
    ]);
    succeeded(&r);
    let effects = std::fs::read_to_string(run_out.join("effects.jsonl")).unwrap();
    assert_eq!(effects.lines().count(), entered_known);

    // Bad updates are refused before any work, every one with its file and line: a
    // mistyped value, an array line (once read positionally), an unknown attribute.
    std::fs::write(
        &updates,
        "\u{feff}{\"customer_id\": 1, \"attribute\": \"points\", \"value\": 5}\n{\"customer_id\": 1, \"attribute\": \"points\", \"value\": \"abc\"}\n[1, \"points\", 5]\n{\"customer_id\": 1, \"attribute\": \"pionts\", \"value\": 5}\n",
    )
    .unwrap();
    let never = dir.path().join("never");
    let r = segment(&input, &never, &["--updates", updates.to_str().unwrap()]);
    assert_exit(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("3 bad update line(s)"), "{err}");
    assert!(
        err.contains("updates.jsonl:2: attribute `points` is int"),
        "{err}"
    );
    assert!(err.contains("updates.jsonl:3: not a JSON object"), "{err}");
    assert!(
        err.contains("updates.jsonl:4: unknown attribute `pionts`"),
        "{err}"
    );
    assert!(!never.join("members.parquet").exists());
    // A "new" customer that already exists is refused, naming the file and row.
    std::fs::write(
        &new_customers,
        format!("id,points\n100003,1\n{},5\n", ids[0]),
    )
    .unwrap();
    let r = segment(
        &input,
        &never,
        &["--new-customers", new_customers.to_str().unwrap()],
    );
    assert_exit(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("new_customers.csv: customer"), "{err}");
    assert!(
        err.contains("(data row 2) is already in the customer table"),
        "{err}"
    );
    // New events after the refresh's as-of are warned about, not silently invisible.
    let r = segment(
        &input,
        &never,
        &[
            "--as-of",
            "2026-03-29T00:00:00Z",
            "--new-events",
            new_events.to_str().unwrap(),
        ],
    );
    succeeded(&r);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("40 new event(s) are after the refresh's as-of 2026-03-29T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn a_later_refresh_as_of_matches_the_oracle_and_an_earlier_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input);
    // Only the as-of moves, by five days: windows slide, `now`-relative bounds move.
    let out = dir.path().join("out");
    let r = segment(
        &input,
        &out,
        &[
            "--as-of",
            "2026-03-26T00:00:00Z",
            "--refresh-as-of",
            "2026-03-31T00:00:00Z",
        ],
    );
    succeeded(&r);
    let (group, data) = oracle_input(&input);
    let before = members(&out.join("members.parquet"));
    for (id, expect) in oracle_members_at(&group, &data, "2026-03-26T00:00:00Z") {
        assert_eq!(
            before.get(id.as_ref()).cloned().unwrap_or_default(),
            expect,
            "{id}"
        );
    }
    let after = members(&out.join("members-refreshed.parquet"));
    for (id, expect) in oracle_members_at(&group, &data, "2026-03-31T00:00:00Z") {
        assert_eq!(
            after.get(id.as_ref()).cloned().unwrap_or_default(),
            expect,
            "{id}"
        );
    }
    assert_ne!(before, after, "the move changes some segment");

    // Backwards: refused before any work, nothing written.
    let never = dir.path().join("never");
    let r = segment(
        &input,
        &never,
        &[
            "--as-of",
            "2026-03-26T00:00:00Z",
            "--refresh-as-of",
            "2026-03-20T00:00:00Z",
        ],
    );
    assert_exit(&r, 2);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("may only advance"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!never.exists());
}

#[test]
fn an_expired_timeout_exits_1_and_says_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    gen(&input);
    let out = dir.path().join("out");
    let r = segment(&input, &out, &["--timeout", "0.000001"]);
    assert_exit(&r, 1);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("deadline expired"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let summary: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("segments.json")).unwrap()).unwrap();
    assert_eq!(summary["timed_out"], Json::Bool(true));
    // Unfinished segments have no count; finished ones (if a leaf beat the clock) do.
    let segments = summary["segments"].as_array().unwrap();
    assert!(segments.iter().any(|s| s["finished"] == Json::Bool(false)));
    for s in segments {
        assert_eq!(
            s["finished"] == Json::Bool(false),
            s["count"].is_null(),
            "{s}"
        );
    }
}
