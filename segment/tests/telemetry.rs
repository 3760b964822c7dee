//! Per-segment figures: the metrics a computation records, and what publishing a result
//! into the trigger engine's registry shows (size, compute time, when).

use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::expr::segments::Memberships;
use fusebox_engine::value::{parse_timestamp, AttrType};
use fusebox_segment::{compile_segments, ComputeOptions, EventStore, SegmentData, SegmentEngine};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

/// Three customers with 500, no and 20 points; `rich` holds the first.
fn engine_and_data() -> (SegmentEngine, SegmentData, i64) {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    let customers = CustomerTable::new(
        schema,
        vec![1, 2, 3],
        vec![Column::Int(vec![Some(500), None, Some(20)])],
    )
    .unwrap();
    let store = EventStore::from_events(&customers, &[]);
    let group = compile_segments(
        "segments:\n  - id: rich\n    owner: crm@example.com\n    filter: { attribute: points, ge: 100 }\n  - id: poor\n    owner: crm@example.com\n    filter: { attribute: points, lt: 100 }\n",
        "segments.yaml",
        Some(customers.schema()),
        Some(&store.types()),
    )
    .unwrap();
    let data = SegmentData::new(customers, store);
    let as_of = parse_timestamp("2026-03-02T00:00:00Z").unwrap();
    let engine = SegmentEngine::new(group, &data, as_of, Some(2)).unwrap();
    (engine, data, as_of)
}

#[test]
fn a_computation_records_size_time_and_freshness_per_segment() {
    let (engine, data, as_of) = engine_and_data();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        engine.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    });
    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = key.key().name().to_string();
        match (key.kind(), value) {
            (MetricKind::Gauge, DebugValue::Gauge(v)) if name == "fusebox_segment_members" => {
                seen.push(format!("{name}{labels:?}={}", v.into_inner()))
            }
            (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                assert!(v.into_inner() > 1.7e9, "{name}: a Unix time");
                seen.push(format!("{name}{labels:?}"));
            }
            (MetricKind::Histogram, DebugValue::Histogram(v)) => {
                assert_eq!(v.len(), 1, "{name}: one sample per computation");
                seen.push(format!("{name}{labels:?}"));
            }
            (kind, value) => panic!("unexpected {kind:?} {name}: {value:?}"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "fusebox_segment_compute_seconds[\"segment=poor\"]",
            "fusebox_segment_compute_seconds[\"segment=rich\"]",
            "fusebox_segment_group_seconds[\"kind=compute\"]",
            "fusebox_segment_last_refresh_timestamp_seconds[\"segment=poor\"]",
            "fusebox_segment_last_refresh_timestamp_seconds[\"segment=rich\"]",
            "fusebox_segment_members[\"segment=poor\"]=1",
            "fusebox_segment_members[\"segment=rich\"]=1",
        ]
    );
}

#[test]
fn publishing_a_result_makes_it_what_conditions_read_with_its_figures() {
    let (engine, data, as_of) = engine_and_data();
    let result = engine.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let registry = Memberships::new();
    engine.publish(&data, &result, &registry);
    assert_eq!(registry.contains("rich", 1), Some(true));
    assert_eq!(registry.contains("rich", 3), Some(false));
    assert_eq!(registry.contains("poor", 3), Some(true));
    let published = registry.snapshot().published();
    let ids: Vec<(&str, usize)> = published
        .iter()
        .map(|p| (p.id.as_str(), p.members))
        .collect();
    assert_eq!(ids, [("poor", 1), ("rich", 1)]);
    assert!(published.iter().all(|p| p.compute_ms.is_some()));
}
