//! The suite every `StateStore` implementation runs (as `quotas/tests/common/` does for
//! ledgers): a live engine over the store gives exactly the outcomes, effects and final
//! state of a batch run with every customer in the table; a store that keeps what it is
//! given ends holding that final state, with one `persist` per writing batch, in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_engine::config::compile_triggers;
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::{Event, EventRecord};
use fusebox_engine::live::{LiveConfig, LiveEngine, MapContents, StateStore, StoredCustomer};
use fusebox_engine::state::State;
use fusebox_engine::value::{AttrType, Value};
use fusebox_engine::{Engine, ExecutorKind, RunOptions};

const TRIGGERS: &str = r#"
event_types: [a]
counters:
  - id: hits
triggers:
  - id: count
    owner: o@x
    on: a
    actions:
      - increment: { counter: hits }
      - award_points: { amount: "customer.points / 10 + 1" }
  - id: big
    owner: o@x
    on: a
    condition: "customer.points > 40"
    actions:
      - send_message: { channel: sms, template: big, args: { p: "customer.points" } }
"#;

/// What a setup gives the suite: the store, the table the engine starts with, and (for a
/// store that keeps what it is given) its contents to check.
pub type Setup = (
    Box<dyn StateStore>,
    CustomerTable,
    Option<Arc<Mutex<MapContents>>>,
);

fn schema() -> Schema {
    Schema::new([("points".to_string(), AttrType::Int)]).unwrap()
}

/// Runs the suite against the store `setup` builds for `customers`.
pub fn run(name: &str, setup: impl Fn(&[StoredCustomer]) -> Setup) {
    let customers: Vec<StoredCustomer> = (1..=6u64)
        .map(|id| StoredCustomer {
            id,
            attributes: BTreeMap::from([("points".to_string(), Value::Int(id as i64 * 10))]),
        })
        .collect();
    // Customer 7 is unknown to everyone.
    let events: Vec<Event> = (0..60u64)
        .map(|i| Event::new(format!("e{i}"), 1 + (i * 5) % 7, "a", i as i64))
        .collect();
    let set = || compile_triggers(TRIGGERS, "t.yaml", Some(&schema())).unwrap();

    // The reference: every customer in the table, one batch.
    let reference = Engine::builder(set())
        .executor(ExecutorKind::Sequential)
        .build()
        .unwrap();
    let table = CustomerTable::new(
        schema(),
        (1..=6).collect(),
        vec![Column::Int((1..=6).map(|id| Some(id * 10)).collect())],
    )
    .unwrap();
    let mut want_state = State::new(table, reference.triggers());
    let records: Vec<EventRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventRecord {
            line: i as u64 + 1,
            event: Ok(e.clone()),
        })
        .collect();
    let want = reference
        .run_batch(&mut want_state, &records, &RunOptions::default())
        .unwrap();

    let (store, table, contents) = setup(&customers);
    let engine = Engine::builder(set())
        .executor(ExecutorKind::parallel(2))
        .build()
        .unwrap();
    let state = State::new(table, engine.triggers());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (answers, report) = rt.block_on(async {
        let live = LiveEngine::builder(engine, state)
            .config(LiveConfig {
                max_batch: 7,
                max_delay: Duration::ZERO,
                ..LiveConfig::default()
            })
            .store_boxed(store)
            .start()
            .unwrap();
        let mut answers = Vec::new();
        for chunk in events.chunks(9) {
            answers.extend(live.submit_many(chunk.to_vec()).await.unwrap());
        }
        (answers, live.shutdown().await.unwrap())
    });
    let answers: Vec<_> = answers.into_iter().map(|a| a.unwrap()).collect();
    let outcomes: Vec<_> = answers.iter().map(|a| a.outcome.clone()).collect();
    let effects: Vec<_> = answers.iter().flat_map(|a| a.effects.clone()).collect();
    assert_eq!(outcomes, want.outcomes, "{name}: outcomes");
    assert_eq!(effects, want.effects, "{name}: effects");
    let points = |s: &State| -> BTreeMap<u64, Value> {
        s.customers
            .ids()
            .iter()
            .enumerate()
            .map(|(row, id)| (*id, s.customers.get(row as u32, 0)))
            .collect()
    };
    assert_eq!(
        points(&report.state),
        points(&want_state),
        "{name}: customers"
    );
    assert_eq!(
        report.state.counters, want_state.counters,
        "{name}: counters"
    );

    if let Some(contents) = contents {
        let c = contents.lock().unwrap();
        let stored: BTreeMap<u64, Value> = c
            .customers
            .iter()
            .map(|(id, attrs)| (*id, attrs["points"].clone()))
            .collect();
        assert_eq!(
            stored,
            points(&want_state),
            "{name}: the store holds the final state"
        );
        assert_eq!(
            c.counters["hits"], want_state.counters[0],
            "{name}: counters stored"
        );
        assert!(
            c.batches.windows(2).all(|w| w[0] < w[1]) && !c.batches.is_empty(),
            "{name}: one persist per batch, in order: {:?}",
            c.batches
        );
    }
}
