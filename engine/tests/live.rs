//! The live engine against the batch reference: concurrent submitters, back-pressure,
//! shutdown and drop, reloads, a failing store, and the accepted-event log replayed as a
//! batch run (what `fusebox run --events LOG` does) giving the same outcomes, effects and
//! final state, byte for byte.

#[path = "common/store_suite.rs"]
mod store_suite;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::Event;
use fusebox_engine::io::events::read_jsonl;
use fusebox_engine::live::{
    BatchWrites, Health, InMemoryStore, LiveBuilder, LiveConfig, LiveEngine, LiveError, MapStore,
    RunState, StateStore, StoreError, StoredCustomer, SubmitError, Submitted,
};
use fusebox_engine::outcome::RecordStatus;
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{Engine, ExecutorKind, RunOptions};

const TRIGGERS: &str = r#"
event_types: [a, b]
pools:
  - id: p
    generate: { prefix: "P-", count: 40 }
counters:
  - id: hits
triggers:
  - id: count
    owner: o@x
    on: a
    actions:
      - increment: { counter: hits }
      - award_points: { amount: "1" }
  - id: reward
    owner: o@x
    on: a
    condition: "customer.points % 3 == 0"
    actions:
      - issue_coupon: { pool: p }
      - send_message: { channel: sms, template: c, args: { code: "coupon", hits: "counters.hits" } }
      - emit_event: { type: b }
  - id: chained
    owner: o@x
    on: b
    actions:
      - start_feed: { feed: f, args: { p: "customer.points" } }
"#;

const CUSTOMERS: u64 = 8;

fn schema() -> Schema {
    Schema::new([("points".to_string(), AttrType::Int)]).unwrap()
}

fn table(ids: impl IntoIterator<Item = u64>) -> CustomerTable {
    let ids: Vec<u64> = ids.into_iter().collect();
    let n = ids.len();
    CustomerTable::new(schema(), ids, vec![Column::Int(vec![Some(0); n])]).unwrap()
}

fn engine(executor: ExecutorKind) -> Engine {
    let set = compile_triggers(TRIGGERS, "triggers.yaml", Some(&schema())).unwrap();
    Engine::builder(set).executor(executor).build().unwrap()
}

/// Event `i` of submitter `s`: mostly `a`, some for unknown customers or of unknown types.
fn event(s: u64, i: u64) -> Event {
    let customer = match (s * 31 + i) % 23 {
        0 => 99, // unknown
        k => 1 + k % CUSTOMERS,
    };
    let ty = if (s + i) % 17 == 0 { "zzz" } else { "a" };
    Event::new(
        format!("s{s}-{i}"),
        customer,
        ty,
        1_767_225_600_000_000 + i as i64,
    )
}

/// A live engine on the sequential executor and a fresh table, to configure and start.
fn sequential_builder() -> LiveBuilder {
    let engine = engine(ExecutorKind::Sequential);
    let state = State::new(table(1..=CUSTOMERS), engine.triggers());
    LiveEngine::builder(engine, state)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The batch reference over the log: outcomes and effects as JSON lines, and the state.
fn replay(log: &std::path::Path) -> (Vec<String>, Vec<String>, State) {
    let records = read_jsonl(std::io::BufReader::new(std::fs::File::open(log).unwrap())).unwrap();
    let engine = engine(ExecutorKind::Sequential);
    let mut state = State::new(table(1..=CUSTOMERS), engine.triggers());
    let result = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    let outcomes = result
        .outcomes
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect();
    let effects = result
        .effects
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    (outcomes, effects, state)
}

fn state_fingerprint(state: &State) -> (Vec<u64>, Vec<Value>, Vec<Value>, Vec<u64>) {
    let rows = state.customers.len() as u32;
    (
        state.customers.ids().to_vec(),
        (0..rows).map(|r| state.customers.get(r, 0)).collect(),
        state.counters.clone(),
        state.pool_cursors.clone(),
    )
}

/// Many concurrent submitters, every executor: each accepted event is answered once, and
/// the log replayed as a batch gives the same outcomes, effects and state byte for byte.
#[test]
fn concurrent_submitters_equal_the_batch_replay_of_the_log() {
    for (executor, max_delay, max_batch) in [
        (ExecutorKind::Sequential, Duration::ZERO, 64),
        (ExecutorKind::parallel(2), Duration::from_millis(1), 1024),
        (ExecutorKind::parallel(4), Duration::from_millis(2), 7),
        (
            ExecutorKind::Locking { threads: 2 },
            Duration::from_millis(1),
            128,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("accepted.jsonl");
        let rt = runtime();
        let (answers, report) = rt.block_on(async {
            let engine = engine(executor);
            let state = State::new(table(1..=CUSTOMERS), engine.triggers());
            let live = LiveEngine::builder(engine, state)
                .config(LiveConfig {
                    max_batch,
                    max_delay,
                    capacity: 50,
                    accepted_log: Some(log.clone()),
                    ..LiveConfig::default()
                })
                .start()
                .unwrap();
            let mut tasks = Vec::new();
            for s in 0..16u64 {
                let live = live.clone();
                tasks.push(tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for i in 0..40u64 {
                        let answer = if i % 10 == 9 {
                            let batch = (0..3).map(|k| event(s, 1000 + i * 10 + k)).collect();
                            live.submit_many(batch).await.unwrap()
                        } else {
                            vec![live.submit(event(s, i)).await]
                        };
                        answers.extend(answer.into_iter().map(|a| a.unwrap()));
                    }
                    answers
                }));
            }
            // A duplicate id: rejected in the live run as in the replay.
            let mut answers: Vec<Submitted> = vec![live.submit(event(0, 0)).await.unwrap()];
            for t in tasks {
                answers.extend(t.await.unwrap());
            }
            let report = live.shutdown().await.unwrap();
            (answers, report)
        });
        let n = answers.len();
        assert_eq!(n, 1 + 16 * (36 + 4 * 3), "{executor:?}");
        let mut by_line: BTreeMap<u64, Submitted> = BTreeMap::new();
        for a in answers {
            assert!(
                by_line.insert(a.line, a).is_none(),
                "two answers for one line"
            );
        }
        assert_eq!(
            by_line.keys().copied().collect::<Vec<_>>(),
            (1..=n as u64).collect::<Vec<_>>(),
            "{executor:?}: lines are acceptance order without gaps"
        );
        let (outcomes, effects, state) = replay(&log);
        let live_outcomes: Vec<String> = by_line
            .values()
            .map(|a| serde_json::to_string(&a.outcome).unwrap())
            .collect();
        let live_effects: Vec<String> = by_line
            .values()
            .flat_map(|a| a.effects.iter().map(|e| serde_json::to_string(e).unwrap()))
            .collect();
        assert_eq!(live_outcomes, outcomes, "{executor:?}");
        assert_eq!(live_effects, effects, "{executor:?}");
        assert_eq!(
            state_fingerprint(&report.state),
            state_fingerprint(&state),
            "{executor:?}"
        );
        assert!(by_line
            .values()
            .any(|a| matches!(a.outcome.status, RecordStatus::Rejected { .. })));
        assert_eq!(report.status.accepted, n as u64);
        assert_eq!(report.status.completed, n as u64);
        assert_eq!(
            report.status.state,
            RunState::Stopped {
                reason: "shut down".into()
            }
        );
    }
}

/// `try_submit` fails at once with `Full` when the intake is full; every accepted event
/// is still answered; `submit` waits instead.
#[test]
fn a_full_intake_refuses_try_submit_and_loses_nothing() {
    let rt = runtime();
    rt.block_on(async {
        let live = sequential_builder()
            .config(LiveConfig {
                max_batch: 1000,
                max_delay: Duration::from_millis(200),
                capacity: 4,
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        // Paused, nothing is answered, so the intake stays full while we look at it.
        live.pause("fill the intake").await.unwrap();
        let mut tickets = Vec::new();
        let mut full = 0;
        for i in 0..10 {
            match live.try_submit(event(1, i)) {
                Ok(t) => tickets.push(t),
                Err(SubmitError::Full { capacity }) => {
                    assert_eq!(capacity, 4);
                    full += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((tickets.len(), full), (4, 6));
        assert_eq!(live.queue_depth(), 4);
        // `submit` waits for a place rather than failing.
        let waiting = tokio::spawn({
            let live = live.clone();
            async move { live.submit(event(1, 100)).await }
        });
        live.resume().await.unwrap();
        for t in tickets {
            assert!(matches!(
                t.await.unwrap().outcome.status,
                RecordStatus::Processed { .. }
            ));
        }
        assert_eq!(waiting.await.unwrap().unwrap().line, 5);
        let too_many = live
            .submit_many((0..5).map(|i| event(2, i)).collect())
            .await;
        assert_eq!(
            too_many,
            Err(SubmitError::TooMany {
                asked: 5,
                capacity: 4
            })
        );
        let report = live.shutdown().await.unwrap();
        assert_eq!(report.status.completed, 5);
        assert_eq!(
            live.submit(event(3, 0)).await,
            Err(SubmitError::ShuttingDown)
        );
    });
}

/// A batch stops waiting for more events once it holds every accepted one: with a long
/// `max_delay`, a lone event is answered at once, and `submit_many` runs as one batch.
#[test]
fn a_batch_holding_every_accepted_event_does_not_wait_out_its_delay() {
    let rt = runtime();
    rt.block_on(async {
        let live = sequential_builder()
            .config(LiveConfig {
                max_batch: 1000,
                max_delay: Duration::from_secs(5),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        let started = std::time::Instant::now();
        live.submit(event(1, 0)).await.unwrap();
        let many = live
            .submit_many((1..=50).map(|i| event(1, i)).collect())
            .await
            .unwrap();
        assert_eq!(many.len(), 50);
        assert!(many.iter().all(Result::is_ok));
        // Both would have waited out the 5 s delay before.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
        // The 50 were announced together, so the batch their first event started waited
        // for the other 49.
        assert_eq!(live.status().batches, 2);
        live.shutdown().await.unwrap();
    });
}

/// Dropping every handle without `shutdown` still runs and answers every accepted event.
#[test]
fn dropping_the_handle_answers_every_accepted_event() {
    let rt = runtime();
    rt.block_on(async {
        let engine = engine(ExecutorKind::parallel(2));
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                max_delay: Duration::from_millis(50),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        let tickets: Vec<_> = (0..200)
            .map(|i| live.try_submit(event(4, i)).unwrap())
            .collect();
        drop(live);
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().line, i as u64 + 1);
        }
    });
}

/// A store that fails `persist` from its `fail_from`-th call on.
struct FailingStore {
    calls: Arc<AtomicU64>,
    fail_from: u64,
}

impl StateStore for FailingStore {
    fn load(&mut self, _ids: &[u64]) -> Result<Vec<StoredCustomer>, StoreError> {
        Ok(Vec::new())
    }

    fn persist(&mut self, _writes: &BatchWrites) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

/// Persisting fails: after the retries the engine stops; the batch's submitters get the
/// error and no effects; later submits are refused; `status()` says why.
#[test]
fn a_failing_store_stops_the_engine_and_delivers_nothing_of_its_batch() {
    let rt = runtime();
    rt.block_on(async {
        let calls = Arc::new(AtomicU64::new(0));
        let live = sequential_builder()
            .config(LiveConfig {
                max_delay: Duration::ZERO,
                store_retries: 2,
                store_backoff: Duration::from_millis(1),
                ..LiveConfig::default()
            })
            .store(FailingStore {
                calls: calls.clone(),
                fail_from: 2,
            })
            .start()
            .unwrap();
        let first = live.submit(Event::new("ok", 1, "a", 0)).await.unwrap();
        assert!(matches!(
            first.outcome.status,
            RecordStatus::Processed { .. }
        ));
        let second = live.submit(Event::new("lost", 2, "a", 0)).await;
        match second {
            Err(SubmitError::Stopped(reason)) => {
                assert!(reason.contains("connection refused"), "{reason}")
            }
            other => panic!("expected Stopped, got {other:?}"),
        }
        // 1 success + 1 failure + 2 retries.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let third = live.submit(Event::new("after", 3, "a", 0)).await;
        assert!(matches!(third, Err(SubmitError::Stopped(_))), "{third:?}");
        let status = live.status();
        assert_eq!(status.health, Health::Stopped);
        assert!(status.problems[0].what.contains("connection refused"));
        assert!(matches!(live.shutdown().await, Err(LiveError::Stopped(_))));
    });
}

/// A reload applies from the next batch; a bad file is refused with located diagnostics and
/// the old triggers keep running; counters carry over by name.
#[test]
fn reload_swaps_triggers_between_batches_and_refuses_a_bad_file() {
    let rt = runtime();
    rt.block_on(async {
        let engine = engine(ExecutorKind::parallel(2));
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state).start().unwrap();
        live.submit(Event::new("e1", 1, "a", 0)).await.unwrap();

        let bad = TRIGGERS.replace("customer.points % 3", "customer.pointz % 3");
        match live.reload_yaml(bad, "new.yaml".into()).await {
            Err(LiveError::Config(e)) => {
                let text = e.to_string();
                assert!(text.contains("pointz"), "{text}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        let still = live.submit(Event::new("e2", 1, "a", 0)).await.unwrap();
        assert!(format!("{:?}", still.outcome).contains("count"));

        let renamed = TRIGGERS.replace("id: count", "id: tally");
        assert_eq!(
            live.reload_yaml(renamed, "new.yaml".into()).await.unwrap(),
            2
        );
        let after = live.submit(Event::new("e3", 1, "a", 0)).await.unwrap();
        let text = format!("{:?}", after.outcome);
        assert!(
            text.contains("tally") && !text.contains("\"count\""),
            "{text}"
        );
        let status = live.status();
        assert_eq!(status.triggers_version, 2);
        let report = live.shutdown().await.unwrap();
        assert_eq!(
            report.state.counters,
            vec![Value::Int(3)],
            "counter carried over"
        );
    });
}

/// Every store runs the shared suite.
#[test]
fn in_memory_store_passes_the_store_suite() {
    store_suite::run("in-memory", |customers| {
        let ids: Vec<u64> = customers.iter().map(|c| c.id).collect();
        let mut table = table(ids.iter().copied());
        for (row, c) in customers.iter().enumerate() {
            if let Some(v) = c.attributes.get("points") {
                table.set(row as u32, 0, v.clone());
            }
        }
        (Box::new(InMemoryStore) as Box<dyn StateStore>, table, None)
    });
}

#[test]
fn map_store_passes_the_store_suite() {
    store_suite::run("map", |customers| {
        let store = MapStore::new(customers.to_vec());
        let contents = store.contents();
        (
            Box::new(store) as Box<dyn StateStore>,
            table(std::iter::empty()),
            Some(contents),
        )
    });
}

/// With quotas, an exhausted process's events are held (answered, not lost), and
/// `status()` names the process with its figures.
#[test]
fn an_exhausted_quota_holds_events_and_status_names_the_process() {
    use fusebox_quotas::{CollectingNotifier, MemoryLedger, QuotaConfig, Quotas};
    let config = QuotaConfig::from_yaml_str(
        "processes:\n  - { id: crm-sync, owner: data@example.com, time_zone: UTC, limits: { records: 3 } }\n",
        "quotas.yaml",
    )
    .unwrap();
    let quotas = Quotas::new(
        config,
        Box::new(MemoryLedger::new()),
        Arc::new(CollectingNotifier::new()),
    )
    .unwrap();
    let rt = runtime();
    rt.block_on(async {
        let live = sequential_builder()
            .quotas(quotas)
            .config(LiveConfig {
                max_delay: Duration::ZERO,
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        let events: Vec<Event> = (0..5)
            .map(|i| {
                Event::new(format!("q{i}"), 1, "a", 1_767_225_600_000_000).with_process("crm-sync")
            })
            .collect();
        let answers = live.submit_many(events).await.unwrap();
        let held = answers
            .iter()
            .filter(|a| {
                matches!(
                    a.as_ref().unwrap().outcome.status,
                    RecordStatus::Held { .. }
                )
            })
            .count();
        assert_eq!(held, 2);
        let status = live.status();
        assert_eq!(status.health, Health::Degraded, "{status:?}");
        let p = &status.processes[0];
        assert_eq!(
            (p.process.as_str(), p.state.as_str(), p.used_records),
            ("crm-sync", "exhausted", 3)
        );
        assert!(status
            .problems
            .iter()
            .any(|p| p.component == "process:crm-sync"));
        live.shutdown().await.unwrap();
    });
}

/// The big red button: while paused nothing runs, accepted events wait (the intake stays
/// bounded: `try_submit` says `Full`), `status()` shows the pause and the backlog, the
/// operator is notified on press and release; after `resume` the backlog drains in
/// acceptance order (at the configured rate) and the log still replays exactly.
#[test]
fn pause_and_resume_under_concurrent_submitters_lose_nothing() {
    use fusebox_quotas::notify::{CollectingNotifier, NotificationKind};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("accepted.jsonl");
    let notifier = Arc::new(CollectingNotifier::new());
    let rt = runtime();
    let (answers, report) = rt.block_on(async {
        let engine = engine(ExecutorKind::parallel(2));
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                capacity: 40,
                max_batch: 16,
                resume_rate: Some(2000),
                accepted_log: Some(log.clone()),
                ..LiveConfig::default()
            })
            .notifier(notifier.clone())
            .start()
            .unwrap();
        live.submit(event(9, 0)).await.unwrap();
        live.pause("downstream SMS gateway is down").await.unwrap();
        let mut tasks = Vec::new();
        for s in 0..8u64 {
            let live = live.clone();
            tasks.push(tokio::spawn(async move {
                // 20 at once: two submitters fill the intake, the others wait for room.
                let batch = (0..20u64).map(|i| event(s, i)).collect();
                let answers = live.submit_many(batch).await.unwrap();
                answers.into_iter().map(|a| a.unwrap()).collect::<Vec<_>>()
            }));
        }
        // The intake fills up and stays full: nothing runs while paused.
        for _ in 0..200 {
            if live.queue_depth() == 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let status = live.status();
        assert_eq!(status.queue_depth, 40, "{status:?}");
        assert_eq!(status.completed, 1, "nothing ran while paused");
        assert_eq!(
            status.paused.as_ref().map(|p| p.reason.as_str()),
            Some("downstream SMS gateway is down")
        );
        assert!(status.problems.iter().any(|p| p.component == "engine"));
        assert!(matches!(
            live.try_submit(event(99, 0)),
            Err(SubmitError::Full { .. })
        ));
        live.resume().await.unwrap();
        let mut answers = Vec::new();
        for t in tasks {
            answers.extend(t.await.unwrap());
        }
        assert!(live.status().paused.is_none());
        (answers, live.shutdown().await.unwrap())
    });
    assert_eq!(answers.len(), 160);
    let kinds: Vec<NotificationKind> = notifier.take().iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NotificationKind::Paused, NotificationKind::Unpaused]
    );
    let (outcomes, _, state) = replay(&log);
    assert_eq!(outcomes.len(), 161);
    for a in &answers {
        assert_eq!(
            serde_json::to_string(&a.outcome).unwrap(),
            outcomes[a.line as usize - 1]
        );
    }
    assert_eq!(state_fingerprint(&report.state), state_fingerprint(&state));
}

/// Quotas reload between batches: a raised limit lets the held process through.
#[test]
fn reloaded_quotas_apply_from_the_next_batch() {
    use fusebox_quotas::{CollectingNotifier, MemoryLedger, QuotaConfig, Quotas};
    let quotas = |limit: u32| {
        let config = QuotaConfig::from_yaml_str(
            &format!("processes:\n  - {{ id: crm-sync, owner: o, time_zone: UTC, limits: {{ records: {limit} }} }}\n"),
            "quotas.yaml",
        )
        .unwrap();
        Quotas::new(
            config,
            Box::new(MemoryLedger::new()),
            Arc::new(CollectingNotifier::new()),
        )
        .unwrap()
    };
    let ev = |i: u64| {
        Event::new(format!("r{i}"), 1, "a", 1_767_225_600_000_000).with_process("crm-sync")
    };
    let rt = runtime();
    rt.block_on(async {
        let live = sequential_builder().quotas(quotas(1)).start().unwrap();
        assert!(matches!(
            live.submit(ev(0)).await.unwrap().outcome.status,
            RecordStatus::Processed { .. }
        ));
        assert!(matches!(
            live.submit(ev(1)).await.unwrap().outcome.status,
            RecordStatus::Held { .. }
        ));
        assert_eq!(live.reload_quotas(Some(quotas(100))).await.unwrap(), 2);
        assert!(matches!(
            live.submit(ev(2)).await.unwrap().outcome.status,
            RecordStatus::Processed { .. }
        ));
        assert_eq!(live.reload_quotas(None).await.unwrap(), 3);
        live.shutdown().await.unwrap();
    });
}

/// A shutdown while paused drains the backlog: every accepted event is answered.
#[test]
fn a_shutdown_while_paused_answers_the_backlog() {
    let rt = runtime();
    rt.block_on(async {
        let live = sequential_builder().start().unwrap();
        live.pause("maintenance").await.unwrap();
        let tickets: Vec<_> = (0..5)
            .map(|i| live.try_submit(event(7, i)).unwrap())
            .collect();
        let report = live.shutdown().await.unwrap();
        assert_eq!(report.status.completed, 5);
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().line, i as u64 + 1);
        }
    });
}

/// A throttled trigger in the live engine: its deferred executions reach the embedder on
/// `slow_lane_outcomes` (the rest of the shutdown's drain included), each once; the
/// accepted-event log replayed as a batch gives the same fast and slow outcomes, effects
/// and final state.
#[test]
fn slow_lane_results_arrive_once_and_equal_the_replay_of_the_log() {
    const GOVERNED: &str = r#"
settings: { budget_window: 10 }
triggers:
  - id: heavy
    owner: growth@x
    on: a
    budget: { fuel: 2000, hard_fuel: 100000000 }
    condition: "event.properties.items.all(i, i >= 0)"
    actions:
      - award_points: { amount: "2" }
      - send_message: { channel: sms, template: spam }
  - id: light
    owner: loyalty@x
    on: a
    condition: "customer.points % 2 == 0"
    actions:
      - award_points: { amount: "1" }
"#;
    let governed = || {
        let set = compile_triggers(GOVERNED, "t.yaml", Some(&schema())).unwrap();
        Engine::builder(set)
            .executor(ExecutorKind::parallel(2))
            .build()
            .unwrap()
    };
    let items: Vec<u64> = (0..50).collect();
    let timed = |i: u64| {
        let mut e = Event::new(
            format!("g{i}"),
            1 + i % CUSTOMERS,
            "a",
            1_767_225_600_000_000 + 50_000 * i as i64,
        );
        e.properties = Arc::new(fusebox_engine::value::Map::from_entries(vec![(
            "items".into(),
            Value::List(items.iter().map(|&n| Value::Int(n as i64)).collect()),
        )]));
        e
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("accepted.jsonl");
    let rt = runtime();
    let (answers, slow, report) = rt.block_on(async {
        let engine = governed();
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                max_batch: 64,
                accepted_log: Some(log.clone()),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        let mut slow_rx = live.slow_lane_outcomes().expect("first caller gets it");
        assert!(live.slow_lane_outcomes().is_none());
        let mut answers = Vec::new();
        for chunk in 0..15u64 {
            let batch = (0..100).map(|k| timed(chunk * 100 + k)).collect();
            for a in live.submit_many(batch).await.unwrap() {
                answers.push(a.unwrap());
            }
        }
        let report = live.shutdown().await.unwrap();
        let mut slow = Vec::new();
        while let Ok(s) = slow_rx.try_recv() {
            slow.push(s);
        }
        (answers, slow, report)
    });
    let deferred: Vec<u64> = answers
        .iter()
        .filter(|a| {
            matches!(&a.outcome.status, RecordStatus::Processed { triggers }
                if triggers.iter().any(|t| matches!(t.result, fusebox_engine::outcome::TriggerResult::Deferred { .. })))
        })
        .map(|a| a.line)
        .collect();
    assert!(deferred.len() > 50, "{}", deferred.len());
    assert_eq!(slow.iter().map(|s| s.line).collect::<Vec<_>>(), deferred);
    assert!(slow.iter().all(|s| s.outcome.lane == Some("slow")));
    assert_eq!(report.status.slow_lane.ran, deferred.len() as u64);
    assert_eq!(report.status.slow_lane.queued, 0);

    // The replay: the same run as one batch.
    let records = read_jsonl(std::io::BufReader::new(std::fs::File::open(&log).unwrap())).unwrap();
    let engine = governed();
    let mut state = State::new(table(1..=CUSTOMERS), engine.triggers());
    let batch = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    let json = |o: &fusebox_engine::outcome::RecordOutcome| serde_json::to_string(o).unwrap();
    let (batch_fast, batch_slow): (Vec<_>, Vec<_>) =
        batch.outcomes.iter().partition(|o| o.lane.is_none());
    assert_eq!(
        answers.iter().map(|a| json(&a.outcome)).collect::<Vec<_>>(),
        batch_fast.into_iter().map(json).collect::<Vec<_>>()
    );
    assert_eq!(
        slow.iter().map(|s| json(&s.outcome)).collect::<Vec<_>>(),
        batch_slow.into_iter().map(json).collect::<Vec<_>>()
    );
    let mut live_effects: Vec<String> = answers
        .iter()
        .chain(&slow)
        .flat_map(|a| a.effects.iter().map(|e| serde_json::to_string(e).unwrap()))
        .collect();
    let mut batch_effects: Vec<String> = batch
        .effects
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    live_effects.sort();
    batch_effects.sort();
    assert_eq!(live_effects, batch_effects);
    assert_eq!(state_fingerprint(&report.state), state_fingerprint(&state));
}

/// A notification that could not be delivered (the embedder's channel is full) is visible
/// in `status()`: the delivery figures, and a `notifier` problem with the reason.
#[test]
fn an_undelivered_notification_is_a_problem_in_the_status() {
    let rt = runtime();
    rt.block_on(async {
        let engine = engine(ExecutorKind::Sequential);
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        // Room for one notification, and nobody reads it.
        let (notifier, _rx) = fusebox_quotas::notify::ChannelNotifier::new(1);
        let live = LiveEngine::builder(engine, state)
            .notifier(Arc::new(notifier))
            .start()
            .unwrap();
        assert_eq!(live.status().health, Health::Ok);
        live.pause("maintenance").await.unwrap();
        live.resume().await.unwrap();
        let status = live.status();
        let delivery = status
            .notifications
            .clone()
            .expect("a channel reports delivery");
        assert_eq!((delivery.delivered, delivery.dropped), (1, 1));
        let problem = status
            .problems
            .iter()
            .find(|p| p.component == "notifier")
            .unwrap_or_else(|| panic!("{:?}", status.problems));
        assert!(problem.what.contains("1 dropped"), "{}", problem.what);
        assert!(problem.what.contains("full"), "{}", problem.what);
        assert_ne!(status.health, Health::Ok);
        live.shutdown().await.unwrap();
    });
}

/// The kill switch at runtime: `stop_trigger` records the trigger's later firings as
/// `trigger_stopped` with the reason, `resume_trigger` runs it again — also after the
/// governor stopped it — each once notifying the owner; an unknown id is refused.
#[test]
fn triggers_stop_and_resume_at_runtime_with_notifications() {
    use fusebox_engine::outcome::TriggerResult;
    use fusebox_quotas::notify::{CollectingNotifier, NotificationKind};
    const SET: &str = r#"
settings: { budget_window: 10, stop_after_windows: 1 }
triggers:
  - id: greedy
    owner: growth@x
    on: a
    budget: { fuel: 1, hard_fuel: 1 }
    actions:
      - award_points: { amount: "5" }
  - id: steady
    owner: loyalty@x
    on: a
    actions:
      - award_points: { amount: "1" }
"#;
    let result_of = |a: &Submitted, trigger: &str| match &a.outcome.status {
        RecordStatus::Processed { triggers } => triggers
            .iter()
            .find(|t| &*t.trigger == trigger)
            .map(|t| t.result.clone())
            .unwrap(),
        other => panic!("{other:?}"),
    };
    // One event per 10 s window, so every event closes the previous window.
    let at = |i: i64| {
        Event::new(
            format!("k{i}"),
            1,
            "a",
            1_767_225_600_000_000 + i * 10_000_000,
        )
    };
    let rt = runtime();
    rt.block_on(async {
        let set = compile_triggers(SET, "t.yaml", Some(&schema())).unwrap();
        let engine = Engine::new(set).unwrap();
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let notes = Arc::new(CollectingNotifier::new());
        let live = LiveEngine::builder(engine, state)
            .notifier(notes.clone())
            .start()
            .unwrap();
        // The governor stops `greedy` when the first window closes.
        assert_eq!(
            result_of(&live.submit(at(0)).await.unwrap(), "greedy"),
            TriggerResult::Committed
        );
        assert!(matches!(
            result_of(&live.submit(at(1)).await.unwrap(), "greedy"),
            TriggerResult::Stopped { .. }
        ));
        live.resume_trigger("greedy").await.unwrap();
        assert_eq!(
            result_of(&live.submit(at(2)).await.unwrap(), "greedy"),
            TriggerResult::Committed
        );

        live.stop_trigger("steady", "double points bug")
            .await
            .unwrap();
        let stopped = result_of(&live.submit(at(3)).await.unwrap(), "steady");
        assert_eq!(
            stopped,
            TriggerResult::Stopped {
                skip: "trigger_stopped",
                reason: "double points bug".into()
            }
        );
        live.resume_trigger("steady").await.unwrap();
        assert_eq!(
            result_of(&live.submit(at(4)).await.unwrap(), "steady"),
            TriggerResult::Committed
        );

        match live.stop_trigger("nope", "x").await {
            Err(LiveError::UnknownTrigger { id, known }) => {
                assert_eq!(id, "nope");
                assert_eq!(known, "greedy, steady");
            }
            other => panic!("{other:?}"),
        }
        live.shutdown().await.unwrap();
        let kinds: Vec<(NotificationKind, String, String)> = notes
            .take()
            .into_iter()
            .map(|n| (n.kind, n.subject.id().to_string(), n.owner))
            .collect();
        let want = |k, t: &str, o: &str| (k, t.to_string(), o.to_string());
        assert_eq!(
            kinds,
            [
                want(NotificationKind::Stopped, "greedy", "growth@x"),
                want(NotificationKind::Resumed, "greedy", "growth@x"),
                want(NotificationKind::Stopped, "steady", "loyalty@x"),
                // Resumed, it went over its budget again: stopped when that window closed.
                want(NotificationKind::Stopped, "greedy", "growth@x"),
                want(NotificationKind::Resumed, "steady", "loyalty@x"),
            ]
        );
    });
}

/// `status()` shows the segment memberships the engine's conditions read (size, compute
/// time, when published), and with a freshness rule names a segment not republished in time.
#[test]
fn status_shows_published_segments_and_names_a_stale_one() {
    use fusebox_engine::expr::segments::Memberships;
    let rt = runtime();
    rt.block_on(async {
        let registry = Arc::new(Memberships::new());
        let set = compile_triggers(TRIGGERS, "triggers.yaml", Some(&schema())).unwrap();
        let engine = Engine::builder(set)
            .memberships(registry.clone())
            .build()
            .unwrap();
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                segment_max_age: Some(Duration::from_secs(3600)),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        registry.publish_computed("vip", vec![1, 2, 3], Some(Duration::from_millis(4)));
        let status = live.status();
        assert_eq!(status.health, Health::Ok, "{:?}", status.problems);
        assert_eq!(status.segments.len(), 1);
        assert_eq!(
            (status.segments[0].id.as_str(), status.segments[0].members),
            ("vip", 3)
        );
        assert_eq!(status.segments[0].compute_ms, Some(4.0));
        let report = live.shutdown().await.unwrap();
        assert_eq!(report.status.segments.len(), 1);

        // The same publication, with a rule it breaks.
        let set = compile_triggers(TRIGGERS, "triggers.yaml", Some(&schema())).unwrap();
        let engine = Engine::builder(set).memberships(registry).build().unwrap();
        let state = State::new(table(1..=CUSTOMERS), engine.triggers());
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                segment_max_age: Some(Duration::ZERO),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let status = live.status();
        assert_eq!(status.health, Health::Degraded);
        assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
        assert_eq!(status.problems[0].component, "segment:vip");
        live.shutdown().await.unwrap();
    });
}
