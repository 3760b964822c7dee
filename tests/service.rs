//! The embedding example, tested as a client sees it: the service (`examples/service/`)
//! on a loopback port, driven over real HTTP by concurrent submitters and malformed bodies,
//! then shut down. Every accepted event has exactly one outcome, a bad request affects
//! nothing, and the final state equals the sequential replay of the accepted-event log.

#[path = "../examples/service/app.rs"]
mod app;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fusebox::engine::config::compile_triggers;
use fusebox::engine::io::customers::load_customers;
use fusebox::engine::io::events::read_jsonl;
use fusebox::engine::live::{LiveConfig, LiveEngine};
use fusebox::engine::state::State;
use fusebox::engine::{Engine, ExecutorKind, RunOptions};
use serde_json::{json, Value};

fn engine(executor: ExecutorKind) -> (Engine, State) {
    let customers = load_customers(Path::new("examples/customers.csv")).unwrap();
    let text = std::fs::read_to_string("examples/triggers.yaml").unwrap();
    let set = compile_triggers(&text, "triggers.yaml", Some(customers.schema())).unwrap();
    let engine = Engine::builder(set).executor(executor).build().unwrap();
    let state = State::new(customers, engine.triggers());
    (engine, state)
}

fn event(id: &str, customer: u64, ty: &str, total: f64) -> Value {
    json!({
        "id": id,
        "customer_id": customer,
        "type": ty,
        "timestamp": "2026-03-01T12:00:00Z",
        "properties": { "total": total, "items": 1, "channel": "web" }
    })
}

/// Every attribute of every customer, as text, with counters and pool cursors.
fn fingerprint(state: &State) -> Vec<String> {
    let t = &state.customers;
    let mut out = Vec::new();
    for row in 0..t.len() as u32 {
        for (attr, name, _) in t.schema().iter() {
            out.push(format!("{} {name} {:?}", t.id_at(row), t.get(row, attr)));
        }
    }
    out.push(format!("{:?} {:?}", state.counters, state.pool_cursors));
    out
}

#[test]
fn the_service_answers_every_accepted_event_once_and_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("accepted.jsonl");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (answers, report) = rt.block_on(async {
        let (engine, state) = engine(ExecutorKind::parallel(2));
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                accepted_log: Some(log.clone()),
                max_delay: Duration::from_millis(1),
                ..LiveConfig::default()
            })
            .start()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(
            listener,
            app::App { live, metrics: None },
            async move {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();

        // Malformed bodies: a 4xx with the reason, nothing submitted.
        for (body, says) in [
            ("{not json", "not JSON"),
            ("42", "not a number"),
            (r#"{"id":"x1","customer_id":1}"#, "type"),
            (r#"[{"id":"x2","customer_id":1,"type":"order.completed","timestamp":"2026-03-01T12:00:00Z"},{"id":"x3"}]"#, "event [1]"),
        ] {
            let r = client
                .post(format!("{base}/events"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{body}");
            let text = r.text().await.unwrap();
            let says = if says == "not a number" { "a number" } else { says };
            assert!(text.contains(says), "{body}: {text}");
        }
        // A bad triggers file is refused with its diagnostics; the old one keeps running.
        let r = client
            .put(format!("{base}/triggers"))
            .body("triggers:\n  - id: t\n    on: order.completed\n    condition: \"customer.nope > 1\"\n    owner: o@x\n    actions: []\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);

        // The big red button over HTTP.
        let r = client.post(format!("{base}/pause")).body("maintenance").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let status: Value = client.get(format!("{base}/status")).send().await.unwrap().json().await.unwrap();
        assert_eq!(status["paused"]["reason"], "maintenance", "{status}");
        let r = client.post(format!("{base}/resume")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        // The per-trigger kill switch over HTTP: an unknown trigger is a 404 naming it.
        let r = client.post(format!("{base}/triggers/nope/stop")).body("x").send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("no trigger `nope`"));
        let r = client.post(format!("{base}/triggers/order-points/stop")).body("audit").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = client.post(format!("{base}/triggers/order-points/resume")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        // Concurrent submitters: single events and arrays.
        let mut tasks = Vec::new();
        for s in 0..8u64 {
            let client = client.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..30u64 {
                    let customer = 1 + (s + i) % 4; // customer 4 is unknown
                    let ty = if i % 7 == 0 { "customer.registered" } else { "order.completed" };
                    let total = 20.0 + ((s * 37 + i * 11) % 400) as f64;
                    let body = if i % 5 == 4 {
                        json!([
                            event(&format!("s{s}-{i}a"), customer, ty, total),
                            event(&format!("s{s}-{i}b"), 1 + customer % 3, "order.completed", total / 2.0),
                        ])
                    } else {
                        event(&format!("s{s}-{i}"), customer, ty, total)
                    };
                    let r = client.post(format!("{base}/events")).json(&body).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    match r.json::<Value>().await.unwrap() {
                        Value::Array(items) => answers.extend(items),
                        one => answers.push(one),
                    }
                }
                answers
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.extend(t.await.unwrap());
        }
        let status: Value = client
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["state"], "running", "{status}");
        assert_eq!(status["accepted"], answers.len(), "{status}");

        stop.send(()).unwrap();
        let report = server.await.unwrap().unwrap();
        // After shutdown the port no longer answers.
        assert!(client.get(format!("{base}/status")).send().await.is_err());
        (answers, report)
    });

    assert_eq!(answers.len(), 8 * (24 + 6 * 2));
    let mut by_line: BTreeMap<u64, Value> = BTreeMap::new();
    for a in answers {
        let line = a["line"].as_u64().expect("every answer has its line");
        assert!(by_line.insert(line, a).is_none(), "one outcome per event");
    }
    assert_eq!(by_line.len() as u64, *by_line.keys().last().unwrap());
    assert!(
        by_line.values().any(|a| a["status"] == "rejected"),
        "customer 4 is unknown"
    );

    // The sequential replay of the log.
    let records = read_jsonl(std::io::BufReader::new(std::fs::File::open(&log).unwrap())).unwrap();
    assert_eq!(records.len(), by_line.len());
    let (engine, mut state) = engine(ExecutorKind::Sequential);
    let replay = engine
        .run_batch(&mut state, &records, &RunOptions::default())
        .unwrap();
    for (outcome, (line, answer)) in replay.outcomes.iter().zip(&by_line) {
        let mut want = serde_json::to_value(outcome).unwrap();
        assert_eq!(outcome.line, *line);
        let effects: Vec<Value> = replay
            .effects
            .iter()
            .filter(|e| {
                outcome.event_id.as_deref().is_some_and(|id| {
                    e.key.starts_with(&format!("{id}:")) || e.key.starts_with(&format!("{id}/"))
                })
            })
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        want["effects"] = Value::Array(effects);
        assert_eq!(&want, answer, "line {line}");
    }
    assert_eq!(fingerprint(&report.state), fingerprint(&state));
}
