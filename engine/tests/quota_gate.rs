//! The quota gate inside `Engine::run_batch`: held events are not executed, other processes
//! and process-less events are untouched, the replayed clock crosses quota days, every
//! executor sees the same held set and notifications.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::EventRecord;
use fusebox_engine::gate::{canonical_json, charged_bytes};
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::outcome::RecordStatus;
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{BatchResult, Engine, ExecutorKind, RunOptions};
use fusebox_quotas::{
    CollectingNotifier, Denial, Dimension, MemoryLedger, Notification, NotificationKind,
    QuotaConfig, Quotas, ReferenceClock,
};

const TRIGGERS: &str = r#"
triggers:
  - id: count-updates
    owner: data@example.com
    on: customer.updated
    actions:
      - award_points: { amount: "1" }
      - send_message: { channel: email, template: t }
"#;

fn customers(n: u64) -> CustomerTable {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    CustomerTable::new(
        schema,
        (1..=n).collect(),
        vec![Column::Int(vec![Some(0); n as usize])],
    )
    .unwrap()
}

fn quotas(yaml: &str) -> (Quotas, Arc<CollectingNotifier>) {
    let config = QuotaConfig::from_yaml_str(yaml, "quotas.yaml").unwrap_or_else(|e| panic!("{e}"));
    let notifier = Arc::new(CollectingNotifier::new());
    let q = Quotas::new(config, Box::new(MemoryLedger::new()), notifier.clone()).unwrap();
    (q, notifier)
}

fn ev(id: &str, customer: u64, process: Option<&str>, at: &str) -> String {
    let process = process
        .map(|p| format!(r#","process":"{p}""#))
        .unwrap_or_default();
    format!(
        r#"{{"id":"{id}","customer_id":{customer},"type":"customer.updated","timestamp":"{at}"{process},"properties":{{"fields":3}}}}"#
    ) + "\n"
}

fn run(
    records: &[EventRecord],
    n_customers: u64,
    quotas: Option<&Quotas>,
    executor: ExecutorKind,
) -> (BatchResult, State) {
    let table = customers(n_customers);
    let set = compile_triggers(TRIGGERS, "t.yaml", Some(table.schema())).unwrap();
    let engine = Engine::builder(set).executor(executor).build().unwrap();
    let mut state = State::new(table, engine.triggers());
    let options = RunOptions {
        quotas,
        ..RunOptions::default()
    };
    let result = engine.run_batch(&mut state, records, &options).unwrap();
    (result, state)
}

fn points(state: &State, customer: u64) -> i64 {
    match state
        .customers
        .get(state.customers.row_of(customer).unwrap(), 0)
    {
        Value::Int(p) => p,
        other => panic!("points: {other:?}"),
    }
}

fn statuses(r: &BatchResult) -> Vec<&'static str> {
    r.outcomes
        .iter()
        .map(|o| match o.status {
            RecordStatus::Processed { .. } => "processed",
            RecordStatus::Rejected { .. } => "rejected",
            RecordStatus::Held { .. } => "held",
        })
        .collect()
}

#[test]
fn an_exhausted_process_is_held_and_nothing_else_is_touched() {
    let (q, notifier) = quotas(
        "processes:
  - { id: crm-sync, owner: data@example.com, time_zone: UTC, limits: { records: 3 } }
  - { id: shop-import, owner: shop@example.com, time_zone: UTC, limits: { records: 100 } }
",
    );
    let t = "2026-03-01T12:00:00Z";
    let mut input = String::new();
    for i in 0..6 {
        input += &ev(&format!("c{i}"), 1, Some("crm-sync"), t);
        if i % 2 == 0 {
            input += &ev(&format!("s{i}"), 2, Some("shop-import"), t);
            input += &ev(&format!("n{i}"), 3, None, t);
        }
    }
    // A rejected record is not charged, even with a process.
    input += &ev("ghost", 99, Some("shop-import"), t);
    let records = read_jsonl(input.as_bytes()).unwrap();
    let (r, state) = run(&records, 3, Some(&q), ExecutorKind::Sequential);

    assert_eq!(r.outcomes.len(), records.len());
    assert_eq!(points(&state, 1), 3, "held crm-sync events must not run");
    assert_eq!(points(&state, 2), 3, "shop-import is untouched");
    assert_eq!(
        points(&state, 3),
        3,
        "events without a process are never held"
    );

    let held_ids: Vec<&str> = r.held.iter().map(|h| &*h.event_id).collect();
    assert_eq!(held_ids, ["c3", "c4", "c5"]);
    assert!(r.held.iter().all(|h| &*h.process == "crm-sync"));
    assert!(matches!(
        r.held[0].denial,
        Denial::Exhausted {
            dimension: Dimension::Records,
            used: 3,
            limit: 3,
            ..
        }
    ));
    assert!(matches!(r.held[1].denial, Denial::Stopped { .. }));
    for h in &r.held {
        let o = &r.outcomes[h.record];
        assert_eq!(o.line, h.line);
        assert_eq!(o.event_id.as_deref(), Some(&*h.event_id));
        let RecordStatus::Held { reason } = &o.status else {
            panic!("{o:?}")
        };
        assert_eq!(reason, &h.denial.to_string());
    }
    // Effects only from events that ran.
    assert_eq!(r.effects.len(), 9);
    assert!(r.effects.iter().all(|e| !held_ids.contains(&&*e.event_id)));

    let e = &r.report.events;
    assert_eq!((e.processed, e.rejected, e.held), (9, 1, 3));
    assert_eq!(e.processed + e.rejected + e.held, e.input);
    assert_eq!(r.report.held_by_process.get("crm-sync"), Some(&3));
    assert_eq!(r.report.held_by_process.len(), 1);

    let kinds: Vec<(String, NotificationKind)> = notifier
        .take()
        .into_iter()
        .map(|n| (n.subject.id().to_string(), n.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("crm-sync".to_string(), NotificationKind::Warned),
            ("crm-sync".to_string(), NotificationKind::Exhausted),
        ]
    );
    let at: DateTime<Utc> = t.parse().unwrap();
    let shop = &q.status(Some("shop-import"), at).unwrap()[0];
    assert_eq!(shop.used.records, 3, "the rejected record was not charged");
}

#[test]
fn without_quotas_nothing_is_held() {
    let input = (0..5)
        .map(|i| {
            ev(
                &format!("c{i}"),
                1,
                Some("crm-sync"),
                "2026-03-01T12:00:00Z",
            )
        })
        .collect::<String>();
    let records = read_jsonl(input.as_bytes()).unwrap();
    let (r, state) = run(&records, 1, None, ExecutorKind::Sequential);
    assert!(r.held.is_empty());
    assert_eq!(points(&state, 1), 5);
}

#[test]
fn bytes_are_the_canonical_json_length() {
    let line = ev("b0", 1, Some("feed"), "2026-03-01T12:00:00Z");
    let records = read_jsonl(line.as_bytes()).unwrap();
    let event = records[0].event.as_ref().unwrap();
    assert_eq!(canonical_json(event), line.trim_end());
    let size = charged_bytes(event);
    assert_eq!(size, line.trim_end().len() as u64);

    // A bytes limit of exactly two events' worth lets two through and holds the third.
    let (q, _) = quotas(&format!(
        "processes:\n  - {{ id: feed, owner: o, time_zone: UTC, limits: {{ bytes: {} }} }}\n",
        2 * size
    ));
    let input: String = ["b0", "b1", "b2"]
        .iter()
        .map(|id| ev(id, 1, Some("feed"), "2026-03-01T12:00:00Z"))
        .collect();
    let records = read_jsonl(input.as_bytes()).unwrap();
    let (r, _) = run(&records, 1, Some(&q), ExecutorKind::Sequential);
    assert_eq!(statuses(&r), ["processed", "processed", "held"]);
    assert!(matches!(
        r.held[0].denial,
        Denial::Exhausted { dimension: Dimension::Bytes, used, requested, .. }
            if used == 2 * size && requested == size
    ));
    assert_eq!(r.held[0].bytes, size);
    // Exact accounting: what ran stays charged, the held event costs nothing.
    let at: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
    let used = q.status(Some("feed"), at).unwrap()[0].used;
    assert_eq!((used.records, used.bytes), (2, 2 * size));
}

#[test]
fn the_replayed_clock_rolls_over_at_local_midnight_in_two_zones() {
    // Berlin is UTC+1 in March: its 2026-03-02 starts at 2026-03-01T23:00Z.
    // New York is UTC-5 before 2026-03-08: its 2026-03-02 starts at 2026-03-02T05:00Z.
    let (q, notifier) = quotas(
        "processes:
  - { id: berlin, owner: b@example.com, time_zone: Europe/Berlin, limits: { records: 2 } }
  - { id: nyc, owner: n@example.com, time_zone: America/New_York, limits: { records: 2 } }
",
    );
    let plan = [
        ("b1", "berlin", "2026-03-01T20:00:00Z", "processed"),
        ("b2", "berlin", "2026-03-01T21:00:00Z", "processed"),
        ("b3", "berlin", "2026-03-01T22:59:59Z", "held"),
        ("b4", "berlin", "2026-03-01T23:00:00Z", "processed"),
        ("n1", "nyc", "2026-03-01T23:00:00Z", "processed"),
        ("n2", "nyc", "2026-03-02T01:00:00Z", "processed"),
        ("n3", "nyc", "2026-03-02T04:59:59Z", "held"),
        ("n4", "nyc", "2026-03-02T05:00:00Z", "processed"),
        ("b5", "berlin", "2026-03-02T05:00:00Z", "processed"),
        ("b6", "berlin", "2026-03-02T06:00:00Z", "held"),
    ];
    let input: String = plan
        .iter()
        .map(|(id, p, at, _)| ev(id, 1, Some(p), at))
        .collect();
    let records = read_jsonl(input.as_bytes()).unwrap();
    let (r, state) = run(&records, 1, Some(&q), ExecutorKind::Sequential);
    let expected: Vec<&str> = plan.iter().map(|p| p.3).collect();
    assert_eq!(statuses(&r), expected);
    assert_eq!(points(&state, 1), 7);
    let rolled: Vec<String> = notifier
        .take()
        .into_iter()
        .filter(|n| n.kind == NotificationKind::RolledOver)
        .map(|n| {
            let day = n.figure("quota_day").map(|d| d.to_string());
            format!("{} {}", n.subject.id(), day.unwrap_or_default())
        })
        .collect();
    assert_eq!(rolled, ["berlin 2026-03-02", "nyc 2026-03-02"]);
}

#[test]
fn unknown_processes_follow_the_configured_policy() {
    let input = ev("u1", 1, Some("legacy-ftp"), "2026-03-01T12:00:00Z")
        + &ev("u2", 1, Some("other-legacy"), "2026-03-01T12:00:00Z")
        + &ev("k1", 1, Some("known"), "2026-03-01T12:00:00Z");
    let records = read_jsonl(input.as_bytes()).unwrap();
    let known = "  - { id: known, owner: o, time_zone: UTC, limits: { records: 10 } }\n";

    let (deny, _) = quotas(&format!("processes:\n{known}"));
    let (r, _) = run(&records, 1, Some(&deny), ExecutorKind::Sequential);
    assert_eq!(statuses(&r), ["held", "held", "processed"]);
    assert!(
        matches!(&r.held[0].denial, Denial::UnknownProcess { process } if process == "legacy-ftp")
    );

    // `default`: unknown ids share one bucket of 1 record a day.
    let (shared, _) = quotas(&format!(
        "unknown_process: default\ndefault_limits: {{ records: 1 }}\nprocesses:\n{known}"
    ));
    let (r, _) = run(&records, 1, Some(&shared), ExecutorKind::Sequential);
    assert_eq!(statuses(&r), ["processed", "held", "processed"]);
    assert_eq!(&*r.held[0].process, "other-legacy");
}

/// A mixed workload: three processes (one runaway, one shadow), process-less events,
/// an unknown process and unknown customers, over three days.
fn mixed_workload(n: usize) -> String {
    let start: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut out = String::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = start + chrono::Duration::seconds((i as i64) * 3 * 86_400 / n as i64);
        let process = match x % 10 {
            0..=4 => Some("runaway-sync"),
            5 => Some("shop-import"),
            6 => Some("tracker"),
            7 => Some("mystery"),
            _ => None,
        };
        let customer = 1 + (x >> 8) % 21; // 21 does not exist: rejected
        out += &ev(
            &format!("e{i}"),
            customer,
            process,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    out
}

const MIXED_QUOTAS: &str = "processes:
  - { id: runaway-sync, owner: data@example.com, time_zone: Europe/Berlin, limits: { records: 150, bytes: 30000 } }
  - { id: shop-import, owner: shop@example.com, time_zone: America/New_York, limits: { records: 100000 } }
  - { id: tracker, owner: web@example.com, time_zone: Asia/Tokyo, limits: { records: 20 }, shadow: true }
";

#[test]
fn held_set_and_notifications_are_the_same_for_every_executor() {
    let records = read_jsonl(mixed_workload(3000).as_bytes()).unwrap();
    let baseline = |executor| {
        let (q, notifier) = quotas(MIXED_QUOTAS);
        let (r, state) = run(&records, 20, Some(&q), executor);
        let notes: Vec<Notification> = notifier.take();
        (r, state, notes)
    };
    let (seq, seq_state, seq_notes) = baseline(ExecutorKind::Sequential);
    assert!(
        seq.held.len() > 100,
        "the runaway must be held: {}",
        seq.held.len()
    );
    assert!(seq.report.held_by_process.contains_key("mystery"));
    assert!(
        !seq.report.held_by_process.contains_key("tracker"),
        "shadow never holds"
    );
    assert!(!seq.report.held_by_process.contains_key("shop-import"));
    assert!(seq_notes
        .iter()
        .any(|n| n.kind == NotificationKind::ShadowWouldDeny && n.process() == Some("tracker")));
    assert_eq!(
        seq_notes
            .iter()
            .filter(|n| n.kind == NotificationKind::Exhausted)
            .count(),
        3,
        "runaway-sync is exhausted once on each of the three days"
    );
    for executor in [
        ExecutorKind::parallel(1),
        ExecutorKind::parallel(4),
        ExecutorKind::Locking { threads: 3 },
    ] {
        let (par, par_state, par_notes) = baseline(executor);
        assert_eq!(seq.outcomes, par.outcomes, "{}", executor.name());
        assert_eq!(seq.held, par.held, "{}", executor.name());
        assert_eq!(seq.effects, par.effects, "{}", executor.name());
        assert_eq!(seq.report, par.report, "{}", executor.name());
        assert_eq!(seq_notes, par_notes, "{}", executor.name());
        assert_eq!(
            seq_state.customers.columns(),
            par_state.customers.columns(),
            "{}",
            executor.name()
        );
    }
}

mod model {
    //! The gate against an independent reference: per process, one quota day at a time
    //! (never moving backwards), a stop that lasts the day, shadow processes never held.

    use super::*;
    use fusebox_quotas::QuotaDay;
    use proptest::prelude::*;

    const PROCESSES: [Option<&str>; 5] = [
        Some("records-only"),
        Some("both"),
        Some("shadow"),
        Some("unlisted"),
        None,
    ];

    #[derive(Default)]
    struct Period {
        day: Option<QuotaDay>,
        records: u64,
        bytes: u64,
        stopped: bool,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_gate_matches_a_reference_model(
            steps in proptest::collection::vec((0usize..5, 0i64..5 * 3600, any::<bool>()), 1..250),
            records_a in 1u64..15,
            records_b in 1u64..15,
            bytes_b in 300u64..2500,
        ) {
            let yaml = format!("processes:
  - {{ id: records-only, owner: o, time_zone: UTC, limits: {{ records: {records_a} }} }}
  - {{ id: both, owner: o, time_zone: Europe/Berlin, limits: {{ records: {records_b}, bytes: {bytes_b} }} }}
  - {{ id: shadow, owner: o, time_zone: America/New_York, limits: {{ records: 3 }}, shadow: true }}
");
            let config = QuotaConfig::from_yaml_str(&yaml, "q.yaml").unwrap();
            let (q, _) = quotas(&yaml);
            let start: DateTime<Utc> = "2026-03-07T00:00:00Z".parse().unwrap();
            let mut t = start;
            let mut input = String::new();
            for (i, &(p, delta, back)) in steps.iter().enumerate() {
                t += chrono::Duration::seconds(delta);
                // Now and then a late event, stamped before the newest one seen.
                let at = if back { t - chrono::Duration::hours(3) } else { t };
                input += &ev(&format!("e{i}"), 1, PROCESSES[p], &at.to_rfc3339());
            }
            let records = read_jsonl(input.as_bytes()).unwrap();
            let (r, _) = run(&records, 1, Some(&q), ExecutorKind::Sequential);

            let mut periods: Vec<Period> = (0..3).map(|_| Period::default()).collect();
            let mut expected = Vec::new();
            for rec in &records {
                let e = rec.event.as_ref().unwrap();
                let Some(process) = e.process.as_deref() else {
                    expected.push("processed");
                    continue;
                };
                let Some(i) = config.processes.iter().position(|p| p.id == process) else {
                    expected.push("held");
                    continue;
                };
                let cfg = &config.processes[i];
                let at = DateTime::<Utc>::from_timestamp_micros(e.timestamp).unwrap();
                let m = &mut periods[i];
                let day = QuotaDay::of(at, cfg.time_zone);
                if m.day.is_none_or(|d| day > d) {
                    *m = Period { day: Some(day), ..Period::default() };
                }
                if m.stopped && !cfg.shadow {
                    expected.push("held");
                    continue;
                }
                let (want_r, want_b) = (m.records + 1, m.bytes + charged_bytes(e));
                let over = cfg.limits.records.is_some_and(|l| want_r > l)
                    || cfg.limits.bytes.is_some_and(|l| want_b > l);
                if over {
                    m.stopped = true;
                    if !cfg.shadow {
                        expected.push("held");
                        continue;
                    }
                }
                (m.records, m.bytes) = (want_r, want_b);
                expected.push("processed");
            }
            prop_assert_eq!(statuses(&r), expected);
            for (i, p) in config.processes.iter().enumerate() {
                if let Some(day) = periods[i].day {
                    let noon = day.start(p.time_zone).unwrap() + chrono::Duration::hours(12);
                    let s = &q.status(Some(&p.id), noon).unwrap()[0];
                    prop_assert_eq!((s.used.records, s.used.bytes), (periods[i].records, periods[i].bytes));
                }
            }
        }
    }
}

/// The gate reserves in chunks of `gate::CHUNK`; holding must equal reserving event by event,
/// in order, with one call each — including when a process runs out inside a chunk, right at
/// a chunk boundary, or in a later chunk than the one it started in.
#[test]
fn chunked_reservations_equal_reserving_one_by_one_across_chunk_boundaries() {
    use fusebox_engine::gate::CHUNK;
    let n = 3 * CHUNK + 17;
    // Three known processes in a fixed pattern over one day; `edge` runs out exactly at the
    // first chunk boundary (its limit is the number of its events in the first chunk).
    let process_of = |i: usize| match i % 4 {
        0 | 1 => "bulk",
        2 => "edge",
        _ => "small",
    };
    let edge_in_first_chunk = (0..CHUNK).filter(|&i| process_of(i) == "edge").count();
    let yaml = format!(
        "default_time_zone: UTC
processes:
  - {{ id: bulk, owner: a@example.com, limits: {{ records: {} }} }}
  - {{ id: edge, owner: b@example.com, limits: {{ records: {edge_in_first_chunk} }} }}
  - {{ id: small, owner: c@example.com, limits: {{ bytes: 40000 }} }}
",
        CHUNK + CHUNK / 3
    );
    let mut text = String::new();
    for i in 0..n {
        let at = format!("2026-03-01T{:02}:{:02}:00Z", i / 60 % 24, i % 60);
        text += &ev(
            &format!("e{i}"),
            1 + (i as u64 % 20),
            Some(process_of(i)),
            &at,
        );
    }
    let records = read_jsonl(text.as_bytes()).unwrap();

    // Reference: one `reserve` per event, in order, on a fresh ledger.
    let (reference, _) = quotas(&yaml);
    let mut expected: Vec<(String, Denial)> = Vec::new();
    for r in &records {
        let e = r.event.as_ref().unwrap();
        let bytes = charged_bytes(e);
        let at = DateTime::<Utc>::from_timestamp_micros(e.timestamp).unwrap();
        match reference.reserve(e.process.as_deref().unwrap(), 1, bytes, at) {
            Ok(reservation) => {
                reservation.commit(1, bytes);
            }
            Err(denial) => expected.push((e.id.to_string(), denial)),
        }
    }
    let (q, _) = quotas(&yaml);
    let (result, _) = run(&records, 20, Some(&q), ExecutorKind::Sequential);
    let got: Vec<(String, Denial)> = result
        .held
        .iter()
        .map(|h| (h.event_id.to_string(), h.denial.clone()))
        .collect();
    assert_eq!(got, expected);
    // The workload does what it says: every process is held, `edge` from its first event
    // after the first chunk on, `bulk` and `small` partway through later chunks.
    let first_held = |p: &str| {
        got.iter()
            .filter_map(|(id, _)| {
                let i: usize = id[1..].parse().unwrap();
                (process_of(i) == p).then_some(i)
            })
            .min()
            .unwrap()
    };
    assert_eq!(
        first_held("edge"),
        (CHUNK..n).find(|&i| process_of(i) == "edge").unwrap()
    );
    assert!(first_held("bulk") > CHUNK && first_held("bulk") % CHUNK != 0);
    assert!(first_held("small") > CHUNK && first_held("small") % CHUNK != 0);
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const BERLIN_SYNC: &str = "processes:
  - { id: crm-sync, owner: data@example.com, time_zone: Europe/Berlin, limits: { records: 2 } }
";

/// The reported panic: a Parquet event at `i64::MAX` µs for a process in a zone east of UTC
/// ("Local time out of range for NaiveDateTime"). Far beyond any clock, it is held without
/// touching the ledger; and where a clock that far lets it through, its quota day is still
/// computed.
#[test]
fn an_event_at_the_end_of_time_in_berlin_is_held_not_a_panic() {
    let mut records =
        read_jsonl(ev("end", 1, Some("crm-sync"), "2026-03-01T12:00:00Z").as_bytes()).unwrap();
    if let Ok(e) = &mut records[0].event {
        e.timestamp = i64::MAX; // what a Parquet file can carry
    }
    let (q, notifier) = quotas(BERLIN_SYNC);
    let (r, _) = run(&records, 1, Some(&q), ExecutorKind::Sequential);
    assert_eq!(statuses(&r), ["held"]);
    assert!(
        matches!(&r.held[0].denial, Denial::AheadOfClock { process, .. } if process == "crm-sync"),
        "{:?}",
        r.held[0].denial
    );
    assert!(notifier.take().is_empty());

    let (q, _) = quotas(BERLIN_SYNC);
    let q = q.with_reference_clock(ReferenceClock::Fixed(DateTime::<Utc>::MAX_UTC));
    let (r, _) = run(&records, 1, Some(&q), ExecutorKind::Sequential);
    assert!(r.held.is_empty(), "{:?}", r.held);
    let st = &q
        .status(Some("crm-sync"), DateTime::<Utc>::MAX_UTC)
        .unwrap()[0];
    assert_eq!(st.used.records, 1);
    assert!(st.quota_day.date().is_none(), "a day past NaiveDate::MAX");
}

/// One event stamped 9999-12-31 used to move crm-sync's quota day there for good: the rest of
/// the day's events were charged to 9999-12-31 and held as "stopped" once two had run. Now it
/// is held as ahead of the clock, and the others are charged on their own days.
#[test]
fn a_far_future_event_is_held_and_does_not_pin_its_process() {
    let (q, _) = quotas(BERLIN_SYNC);
    let q = q.with_reference_clock(ReferenceClock::Fixed(utc("2026-03-02T00:00:00Z")));
    let input = ev("far", 1, Some("crm-sync"), "9999-12-31T00:00:00Z")
        + &ev("a", 1, Some("crm-sync"), "2026-03-01T10:00:00Z")
        + &ev("b", 1, Some("crm-sync"), "2026-03-01T11:00:00Z")
        + &ev("c", 1, Some("crm-sync"), "2026-03-01T12:00:00Z")
        // 00:30 on March 2nd in Berlin: a new quota day.
        + &ev("d", 1, Some("crm-sync"), "2026-03-01T23:30:00Z");
    let records = read_jsonl(input.as_bytes()).unwrap();
    let (r, state) = run(&records, 1, Some(&q), ExecutorKind::Sequential);
    assert_eq!(
        statuses(&r),
        ["held", "processed", "processed", "held", "processed"]
    );
    assert_eq!(points(&state, 1), 3);
    match &r.held[0].denial {
        Denial::AheadOfClock { at, max_lead, .. } => {
            assert_eq!(
                (*at, max_lead.as_str()),
                (utc("9999-12-31T00:00:00Z"), "1d")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&r.held[1].denial, Denial::Exhausted { quota_day, .. } if quota_day.to_string() == "2026-03-01")
    );
    let st = &q
        .status(Some("crm-sync"), utc("2026-03-01T23:30:00Z"))
        .unwrap()[0];
    assert_eq!(
        (st.quota_day.to_string(), st.used.records),
        ("2026-03-02".to_string(), 1)
    );
}
