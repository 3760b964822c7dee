//! How the segment engine's Rayon pool and Polars' own pool cooperate (see `kernels`): the
//! column kernels called from the engine's workers run on those workers; computing a group
//! never starts Polars' global pool, so the two never oversubscribe the cores or wait on each
//! other. The check looks for Polars' worker threads (`polars-N`) in the process, and shows it
//! can see them by starting Polars' pool with a lazy query at the end.

#![cfg(target_os = "linux")]

use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::value::AttrType;
use fusebox_segment::{
    compile_segments, oracle, ComputeOptions, EventStore, SegmentData, SegmentEngine,
};
use polars::prelude::*;
use std::sync::Arc;

const GROUP: &str = r#"
segments:
  - id: a
    owner: o
    filter: { and: [ { attribute: points, between: [10, 900] }, { attribute: city, in: [Berlin, Paris] } ] }
  - id: b
    owner: o
    filter: { or: [ { attribute: city, contains: "ri" }, { not: { attribute: points, gt: 500 } } ] }
  - id: c
    owner: o
    filter: { attribute: spent, ge: 12.5 }
"#;

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn data(n: usize) -> SegmentData {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("city".to_string(), AttrType::String),
        ("spent".to_string(), AttrType::Float),
    ])
    .unwrap();
    let cities = ["Berlin", "Paris", "Riga", "Oslo"];
    let table = CustomerTable::new(
        schema,
        (1..=n as u64).collect(),
        vec![
            Column::Int(
                (0..n)
                    .map(|i| (i % 7 != 0).then_some((i * 37 % 1000) as i64))
                    .collect(),
            ),
            Column::String(
                (0..n)
                    .map(|i| (i % 11 != 0).then(|| Arc::from(cities[i % 4])))
                    .collect(),
            ),
            Column::Float((0..n).map(|i| Some((i % 50) as f64 / 2.0)).collect()),
        ],
    )
    .unwrap();
    let store = EventStore::from_events(&table, &[]);
    SegmentData::new(table, store)
}

#[test]
fn computing_a_group_never_starts_polars_pool() {
    let data = data(400_000);
    let group = compile_segments(GROUP, "g.yaml", Some(data.customers().schema()), None).unwrap();
    let engine = SegmentEngine::new(group.clone(), &data, 0, Some(2)).unwrap();
    let result = engine.compute(&data, &ComputeOptions::at(0)).unwrap();
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n.starts_with("polars")),
        "Polars' pool was started: {names:?}"
    );
    let expected = oracle::evaluate(&group, &data, 0);
    for (s, (_, rows)) in result.segments.iter().zip(&expected) {
        assert_eq!(
            s.members.as_ref().unwrap().iter().collect::<Vec<_>>(),
            *rows
        );
    }

    // The check can fail: a lazy group-by runs on Polars' pool and its threads show up.
    let n = 200_000u32;
    let df = df!(
        "k" => (0..n).map(|i| i % 1000).collect::<Vec<_>>(),
        "v" => (0..n).collect::<Vec<_>>()
    )
    .unwrap();
    let out = df
        .lazy()
        .group_by([col("k")])
        .agg([col("v").sum()])
        .collect()
        .unwrap();
    assert_eq!(out.height(), 1000);
    let names = thread_names();
    assert!(
        names.iter().any(|n| n.starts_with("polars")),
        "expected Polars' pool threads after a lazy query: {names:?}"
    );
}
