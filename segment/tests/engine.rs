//! Behaviour of the engine beyond equivalence: sharing, cache reuse, deadlines, explain,
//! three-valued negation, Polars-frame events, diffs as engine events.

use std::sync::Arc;
use std::time::Instant;

use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::Event;
use fusebox_engine::value::{parse_timestamp, AttrType, Map, Value};
use fusebox_segment::explain::{render, Source};
use fusebox_segment::{
    compile_segments, oracle, AttrUpdate, Changes, ComputeOptions, EventStore, GroupResult,
    SegmentData, SegmentEngine, SegmentError,
};
use polars::prelude::*;

mod common;
use common::order_event;

const GROUP: &str = r#"
segments:
  - id: rich
    owner: crm@x
    filter: { attribute: points, gt: 100 }
  - id: rich-buyers
    owner: crm@x
    filter:
      and:
        - { attribute: points, gt: 100 }
        - performed: { event: order.completed, within: 30d }
  - id: big-spenders
    owner: crm@x
    filter:
      and:
        - performed: { event: order.completed, within: 30d, sum: { property: total, ge: 100 } }
        - not: { in_segment: rich }
  - id: not-rich
    owner: crm@x
    filter: { not: { attribute: points, gt: 100 } }
"#;

/// Options at `as_of` with the sub-query cache off: a computation from scratch.
fn uncached(as_of: i64) -> ComputeOptions {
    ComputeOptions {
        use_cache: false,
        ..ComputeOptions::at(as_of)
    }
}

/// Every segment of `a` has the members it has in `b`.
fn assert_same_members(a: &GroupResult, b: &GroupResult) {
    for (x, y) in a.segments.iter().zip(&b.segments) {
        assert_eq!(x.members, y.members, "{}", x.id);
    }
}

/// The events `setup` loads (one for a customer not in the table).
fn setup_events() -> Vec<Event> {
    let ev = |id: &str, c: u64, ts: &str, total: f64| order_event(id, c, ts, Some(total));
    vec![
        ev("1", 10, "2026-03-01T00:00:00Z", 20.0),
        ev("2", 30, "2026-03-02T00:00:00Z", 80.0),
        ev("3", 30, "2026-03-03T00:00:00Z", 30.0),
        ev("4", 40, "2026-01-01T00:00:00Z", 500.0),
        ev("5", 99, "2026-03-01T00:00:00Z", 500.0),
    ]
}

fn setup() -> (SegmentData, i64) {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("city".to_string(), AttrType::String),
    ])
    .unwrap();
    let customers = CustomerTable::new(
        schema,
        vec![10, 20, 30, 40],
        vec![
            Column::Int(vec![Some(500), None, Some(50), Some(101)]),
            Column::String(vec![
                Some("Berlin".into()),
                None,
                Some("Paris".into()),
                None,
            ]),
        ],
    )
    .unwrap();
    let store = EventStore::from_events(&customers, &setup_events());
    assert_eq!(store.unknown_customers, 1);
    (
        SegmentData::new(customers, store),
        parse_timestamp("2026-03-10T00:00:00Z").unwrap(),
    )
}

fn engine(data: &SegmentData, as_of: i64) -> SegmentEngine {
    let group = compile_segments(
        GROUP,
        "g.yaml",
        Some(data.customers().schema()),
        Some(&data.events().types()),
    )
    .unwrap();
    SegmentEngine::new(group, data, as_of, Some(2)).unwrap()
}

#[test]
fn members_follow_the_documented_semantics() {
    let (data, as_of) = setup();
    let e = engine(&data, as_of);
    let r = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let ids = e.member_ids(&data, &r);
    let get = |id: &str| {
        ids.iter()
            .find(|(s, _)| s.as_ref() == id)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(get("rich"), vec![10, 40]);
    assert_eq!(get("rich-buyers"), vec![10]);
    assert_eq!(get("big-spenders"), vec![30]);
    // Customer 20 has no points: UNKNOWN, so not in `not-rich` (Kleene negation).
    assert_eq!(get("not-rich"), vec![30]);
}

#[test]
fn identical_sub_filters_are_one_node_and_explain_shows_it() {
    let (data, as_of) = setup();
    let e = engine(&data, as_of);
    let plan = e.plan();
    let points_leaves = plan
        .nodes
        .iter()
        .filter(|n| n.is_leaf() && n.label == "points gt 100")
        .count();
    assert_eq!(points_leaves, 1, "{:#?}", plan.nodes);
    // `not points > 100` is normalised to `points <= 100`, not a negated leaf.
    assert!(plan.nodes.iter().any(|n| n.label == "points le 100"));
    // The count and the sum over the same type/window share one aggregate.
    assert_eq!(plan.aggs.len(), 1);
    let r = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let text = render(plan, &r);
    assert!(text.contains("shared"), "{text}");
    assert!(text.contains("est "), "{text}");
    assert!(text.contains("segment big-spenders"), "{text}");
}

#[test]
fn the_cache_reuses_leaves_whose_inputs_did_not_change() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let opts = ComputeOptions::at(as_of);
    let first = e.compute(&data, &opts).unwrap();
    let second = e.compute(&data, &opts).unwrap();
    for &id in &e.plan().leaf_order {
        assert_eq!(first.explain.nodes[id].source, Source::Computed);
        assert_eq!(second.explain.nodes[id].source, Source::Cached);
    }
    data.set_attribute(30, "points", Value::Int(1000)).unwrap();
    let third = e.compute(&data, &opts).unwrap();
    for &id in &e.plan().leaf_order {
        let expect = if e.plan().nodes[id].label.starts_with("points") {
            Source::Computed
        } else {
            Source::Cached
        };
        assert_eq!(
            third.explain.nodes[id].source,
            expect,
            "{}",
            e.plan().nodes[id].label
        );
    }
    assert_eq!(third.members("rich").unwrap().len(), 3);
    let oracle = oracle::evaluate(e.group(), &data, as_of);
    for (s, (_, rows)) in third.segments.iter().zip(oracle) {
        assert_eq!(s.members.as_ref().unwrap().iter().collect::<Vec<_>>(), rows);
    }
}

#[test]
fn an_expired_deadline_stops_cleanly_and_says_what_finished() {
    let (data, as_of) = setup();
    let e = engine(&data, as_of);
    let mut opts = ComputeOptions::at(as_of);
    opts.deadline = Some(Instant::now());
    let r = e.compute(&data, &opts).unwrap();
    assert!(r.timed_out);
    assert!(r.finished().is_empty());
    opts.deadline = Some(Instant::now() + std::time::Duration::from_secs(60));
    let r = e.compute(&data, &opts).unwrap();
    assert!(!r.timed_out);
    assert_eq!(r.finished().len(), 4);
}

#[test]
fn events_from_a_polars_frame_equal_events_from_records() {
    let (data, as_of) = setup();
    let t = |s: &str| parse_timestamp(s).unwrap();
    let df = DataFrame::new(
        5,
        vec![
            Series::new("customer_id".into(), [10u64, 30, 30, 40, 99]).into_column(),
            Series::new("type".into(), ["order.completed"; 5]).into_column(),
            Series::new(
                "timestamp".into(),
                [
                    "2026-03-01T00:00:00Z",
                    "2026-03-02T00:00:00Z",
                    "2026-03-03T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                    "2026-03-01T00:00:00Z",
                ]
                .map(t),
            )
            .into_column(),
            Series::new("total".into(), [20.0, 80.0, 30.0, 500.0, 500.0]).into_column(),
        ],
    )
    .unwrap();
    let store = EventStore::from_frame(data.customers(), &df).unwrap();
    let data2 = SegmentData::new(data.customers().clone(), store);
    let e = engine(&data, as_of);
    let a = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let b = e.compute(&data2, &uncached(as_of)).unwrap();
    assert_same_members(&a, &b);
}

#[test]
fn refresh_diffs_become_trigger_events() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let changes = Changes {
        updates: vec![AttrUpdate {
            customer: 40,
            attribute: "points".into(),
            value: Value::Int(5),
        }],
        events: vec![],
        as_of: None,
        new_customers: vec![],
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    let rich = &r.diffs[0];
    assert_eq!(rich.left.iter().collect::<Vec<_>>(), vec![3]);
    let events = rich.to_events(&data, as_of);
    assert_eq!(events.len(), 1);
    let ev = events[0].event.as_ref().unwrap();
    assert_eq!(
        (ev.customer_id, ev.event_type.as_ref()),
        (40, "segment.left")
    );
    assert_eq!(ev.properties.get("segment"), Some(&Value::str("rich")));
    assert_eq!(ev.id.as_ref(), format!("segment:rich:left:40:{as_of}:1"));
    // not-rich gains customer 40.
    assert_eq!(r.diffs[3].entered.iter().collect::<Vec<_>>(), vec![3]);
    // Bad updates are typed errors, and nothing is applied.
    // A valid update before the bad one: nothing at all is applied.
    let bad = Changes {
        updates: vec![
            AttrUpdate {
                customer: 10,
                attribute: "points".into(),
                value: Value::Int(0),
            },
            AttrUpdate {
                customer: 40,
                attribute: "points".into(),
                value: Value::str("x"),
            },
        ],
        ..Default::default()
    };
    assert!(e.refresh(&mut data, &r.result, &bad, None).is_err());
    let (points, _) = data.customers().schema().attr("points").unwrap();
    let row10 = data.customers().row_of(10).unwrap();
    assert_eq!(data.customers().get(row10, points), Value::Int(500));
    let back = Changes {
        as_of: Some(as_of - 1),
        ..Default::default()
    };
    assert!(e.refresh(&mut data, &r.result, &back, None).is_err());
}

#[test]
fn mismatched_inputs_are_errors_not_panics() {
    let (data, as_of) = setup();
    let e = engine(&data, as_of);
    let r = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    // A result of another group cannot be refreshed.
    let other = compile_segments(
        "segments:\n  - id: x\n    owner: o\n    filter: { attribute: points, gt: 1 }\n",
        "o.yaml",
        Some(data.customers().schema()),
        None,
    )
    .unwrap();
    let e2 = SegmentEngine::new(other, &data, as_of, Some(1)).unwrap();
    let (mut data2, _) = setup();
    assert!(e2
        .refresh(&mut data2, &r, &Changes::default(), None)
        .is_err());
    // An event store built for a larger customer table: events of unknown rows are ignored.
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    let small = CustomerTable::new(schema, vec![10], vec![Column::Int(vec![Some(500)])]).unwrap();
    let mixed = SegmentData::new(small, data.events().clone());
    let group = compile_segments(GROUP, "g.yaml", Some(mixed.customers().schema()), None).unwrap();
    let e3 = SegmentEngine::new(group, &mixed, as_of, Some(2)).unwrap();
    let r3 = e3.compute(&mixed, &ComputeOptions::at(as_of)).unwrap();
    assert_eq!(r3.members("rich").unwrap().len(), 1);
}

/// A result can be refreshed more than once (say, against two copies of the data): the
/// first refresh takes over the whole-table aggregates it carries, later ones from the same
/// result re-scan the dirty customers' events instead — slower, same answer.
#[test]
fn refreshing_the_same_result_twice_gives_the_same_answer() {
    let (mut data, as_of) = setup();
    let (mut copy, _) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let order = |id: &str, customer: u64, total: f64| {
        order_event(id, customer, "2026-03-09T00:00:00Z", Some(total))
    };
    let changes = Changes {
        updates: vec![],
        events: vec![order("n1", 30, 10.0), order("n2", 20, 150.0)],
        as_of: None,
        new_customers: vec![],
    };
    let first = e.refresh(&mut data, &before, &changes, None).unwrap();
    let second = e.refresh(&mut copy, &before, &changes, None).unwrap();
    let full = e.compute(&copy, &uncached(as_of)).unwrap();
    assert_same_members(&first.result, &full);
    assert_same_members(&second.result, &full);
    assert_eq!(first.diffs, second.diffs);
    // Customer 20 (null points, not rich) now spent 150 in 30 days: a big spender.
    let big = &first.diffs[2];
    assert_eq!(big.entered.iter().collect::<Vec<_>>(), vec![1]);
}

/// New customers join with null attributes, get their attributes and events from the same
/// change set, are evaluated in every segment (entering the ones they match), and a bad change
/// set adds nobody.
#[test]
fn new_customers_are_evaluated_in_every_segment() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let big_order = order_event("n1", 50, "2026-03-09T00:00:00Z", Some(300.0));
    let changes = Changes {
        new_customers: vec![50, 60],
        updates: vec![AttrUpdate {
            customer: 60,
            attribute: "points".into(),
            value: Value::Int(7),
        }],
        events: vec![big_order],
        as_of: None,
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    assert_eq!(data.len(), 6);
    let entered = |id: &str| {
        let k = r.diffs.iter().position(|d| d.id.as_ref() == id).unwrap();
        r.diffs[k].entered.iter().collect::<Vec<_>>()
    };
    // 50 (null points, 300 spent) is a big spender; 60 (7 points) is not rich.
    assert_eq!(entered("big-spenders"), vec![4]);
    assert_eq!(entered("not-rich"), vec![5]);
    assert!(entered("rich").is_empty());
    // The refreshed result equals a full recompute, and refreshes on from there.
    let full = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    assert_same_members(&r.result, &full);
    // Taken ids, repeats and a bad update next to new customers: an error, nobody added.
    for bad in [
        Changes {
            new_customers: vec![70, 10],
            ..Default::default()
        },
        Changes {
            new_customers: vec![70, 70],
            ..Default::default()
        },
        Changes {
            new_customers: vec![70],
            updates: vec![AttrUpdate {
                customer: 71,
                attribute: "points".into(),
                value: Value::Int(1),
            }],
            ..Default::default()
        },
    ] {
        assert!(e.refresh(&mut data, &r.result, &bad, None).is_err());
        assert_eq!(data.len(), 6);
        assert_eq!(data.customers().row_of(70), None);
    }
    let again = Changes {
        new_customers: vec![70],
        ..Default::default()
    };
    let r2 = e.refresh(&mut data, &r.result, &again, None).unwrap();
    // 70 has no points and no orders: UNKNOWN on points, so in no points segment.
    assert!(r2
        .diffs
        .iter()
        .all(|d| d.entered.is_empty() && d.left.is_empty()));
    // Its diffs are the second refresh's: event ids differ from the first refresh's even at
    // the same as-of (a customer may enter, leave and enter again).
    assert!(r.diffs.iter().all(|d| d.refresh == 1));
    assert!(r2.diffs.iter().all(|d| d.refresh == 2));
    // An event for a customer in neither the table nor the change set is ignored and
    // counted, as on load.
    let unknown_before = data.events().unknown_customers;
    let stray = Changes {
        events: vec![order_event("stray", 999, "2026-03-09T00:00:00Z", None)],
        ..Default::default()
    };
    let r3 = e.refresh(&mut data, &r2.result, &stray, None).unwrap();
    assert_eq!(data.events().unknown_customers, unknown_before + 1);
    assert!(r3
        .diffs
        .iter()
        .all(|d| d.entered.is_empty() && d.left.is_empty()));
    // A result from before the customers were added no longer fits the data.
    assert!(e
        .refresh(&mut data, &before, &Changes::default(), None)
        .is_err());
}

/// A group computed over no customers at all, grown by refresh: aggregates that keep
/// first/last times must grow with their times (over zero rows their arrays are empty either
/// way), or "last performed before" would read a missing time as "long ago".
#[test]
fn a_group_over_no_customers_grows_by_refresh() {
    let schema = Schema::new([("points".to_string(), AttrType::Int)]).unwrap();
    let empty = CustomerTable::new(schema, vec![], vec![Column::Int(vec![])]).unwrap();
    let text = "segments:\n  - id: lapsed\n    owner: o\n    filter: { last_performed: { event: order.completed, before: now-7d } }\n  - id: never\n    owner: o\n    filter: { not: { performed: { event: order.completed } } }\n  - id: no-refunds\n    owner: o\n    filter: { not: { performed: { event: refund.issued } } }\n  - id: few-refunds\n    owner: o\n    filter: { performed: { event: refund.issued, count: { le: 2 } } }\n";
    let group = compile_segments(text, "g.yaml", Some(empty.schema()), None).unwrap();
    let store = EventStore::from_events(&empty, &[]);
    let mut data = SegmentData::new(empty, store);
    let as_of = parse_timestamp("2026-03-31T00:00:00Z").unwrap();
    let e = SegmentEngine::new(group.clone(), &data, as_of, Some(2)).unwrap();
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let order = |id: &str, customer: u64, at: &str| order_event(id, customer, at, None);
    let changes = Changes {
        new_customers: vec![1, 2, 3],
        events: vec![
            order("a", 1, "2026-03-01T00:00:00Z"),
            order("b", 2, "2026-03-30T00:00:00Z"),
        ],
        ..Default::default()
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    let got: Vec<Vec<u32>> = r
        .result
        .segments
        .iter()
        .map(|s| s.members.as_ref().unwrap().iter().collect())
        .collect();
    // 1 ordered long ago (lapsed), 2 recently, 3 never; nobody has a refund (a type with no
    // events at all).
    assert_eq!(got, vec![vec![0], vec![2], vec![0, 1, 2], vec![0, 1, 2]]);
    let expected: Vec<Vec<u32>> = oracle::evaluate(&group, &data, as_of)
        .into_iter()
        .map(|(_, rows)| rows)
        .collect();
    assert_eq!(got, expected);
    // The engine's cache holds leaves computed over zero customers; a later compute with the
    // cache on must not serve them for three.
    let again = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    assert_same_members(&again, &r.result);
}

/// Refreshes chain: the second folds its events into the aggregates the first left behind
/// (a sum that crosses its threshold only across two refreshes).
#[test]
fn chained_refreshes_accumulate_into_the_carried_aggregates() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let order = |id: &str, total: f64| order_event(id, 20, "2026-03-09T00:00:00Z", Some(total));
    let once = |id: &str, total: f64| Changes {
        events: vec![order(id, total)],
        ..Default::default()
    };
    let r1 = e
        .refresh(&mut data, &before, &once("a", 60.0), None)
        .unwrap();
    assert!(
        r1.diffs[2].entered.is_empty(),
        "60 is not a big spender yet"
    );
    let r2 = e
        .refresh(&mut data, &r1.result, &once("b", 50.0), None)
        .unwrap();
    // Customer 20 (row 1): 110 spent in 30 days, not rich.
    assert_eq!(r2.diffs[2].entered.iter().collect::<Vec<_>>(), vec![1]);
    let full = e.compute(&data, &uncached(as_of)).unwrap();
    assert_same_members(&r2.result, &full);
}

#[test]
fn an_advanced_as_of_re_evaluates_only_customers_with_events_in_the_moved_slices() {
    let (mut data, as_of) = setup();
    // 2 of the 4 customers will be dirty: allow half the table row by row.
    let e = engine(&data, as_of).with_row_refresh_limit(0.5);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let event_leaves: Vec<usize> = e
        .plan()
        .leaf_order
        .iter()
        .copied()
        .filter(|&i| e.plan().nodes[i].label.contains("order.completed"))
        .collect();
    assert!(!event_leaves.is_empty());
    // 2026-03-10 → 03-31: the 30-day window's start moves from 02-08 to 03-01, so customer 10's
    // order of 03-01 drops out; nobody else has an order in (02-08, 03-01] or (03-10, 03-31].
    // Customer 20 gets an order in the change set.
    let later = parse_timestamp("2026-03-31T00:00:00Z").unwrap();
    let changes = Changes {
        events: vec![order_event("n1", 20, "2026-03-20T00:00:00Z", Some(150.0))],
        as_of: Some(later),
        ..Default::default()
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    for &i in &event_leaves {
        assert_eq!(
            r.result.explain.nodes[i].source,
            Source::Rows(2),
            "{}",
            e.plan().nodes[i].label
        );
    }
    assert_eq!((r.revisited_rows, r.whole_leaves), (2, 0));
    let full = e.compute(&data, &uncached(later)).unwrap();
    assert_same_members(&r.result, &full);
    let row10 = data.customers().row_of(10).unwrap();
    assert_eq!(
        r.diffs[1].left.iter().collect::<Vec<_>>(),
        vec![row10],
        "rich-buyers"
    );
    // The aggregates re-read for the moved rows were written back: the next refresh, at the
    // same as-of, folds a new event into them and still equals a full recompute.
    let changes = Changes {
        events: vec![order_event("n2", 10, "2026-03-25T00:00:00Z", Some(90.0))],
        ..Default::default()
    };
    let r2 = e.refresh(&mut data, &r.result, &changes, None).unwrap();
    assert_same_members(&r2.result, &e.compute(&data, &uncached(later)).unwrap());
    assert_eq!(r2.diffs[1].entered.iter().collect::<Vec<_>>(), vec![row10]);

    // Above the row limit the event leaves are recomputed whole, with the same answer.
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of).with_row_refresh_limit(0.0);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let changes = Changes {
        as_of: Some(later),
        ..Default::default()
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    for &i in &event_leaves {
        assert_eq!(r.result.explain.nodes[i].source, Source::Computed);
    }
    assert_eq!(r.whole_leaves, event_leaves.len());
    assert_same_members(&r.result, &e.compute(&data, &uncached(later)).unwrap());
}

#[test]
fn a_change_set_is_never_applied_twice() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    let changes = Changes {
        events: vec![order_event("n1", 20, "2026-03-09T00:00:00Z", Some(150.0))],
        ..Default::default()
    };
    // A refresh whose deadline has already passed applies the changes, then stops.
    let cut = e
        .refresh(&mut data, &before, &changes, Some(Instant::now()))
        .unwrap();
    assert!(cut.result.timed_out);
    let events = data.events().len();
    // Retrying from the same result would add the order a second time: refused.
    let again = e.refresh(&mut data, &before, &changes, None);
    assert!(matches!(again, Err(SegmentError::Stale)), "{again:?}");
    assert_eq!(data.events().len(), events, "nothing applied");
    // So is a refresh after a change made outside refresh.
    let fresh = e.compute(&data, &uncached(as_of)).unwrap();
    data.append_event(&order_event("n2", 10, "2026-03-09T00:00:00Z", None));
    let after_direct = e.refresh(&mut data, &fresh, &Changes::default(), None);
    assert!(matches!(after_direct, Err(SegmentError::Stale)));
    // Recomputing gives a result the next refresh accepts.
    let current = e.compute(&data, &uncached(as_of)).unwrap();
    assert!(e
        .refresh(&mut data, &current, &Changes::default(), None)
        .is_ok());
}

#[test]
fn compacting_events_equals_loading_them_at_once() {
    let (mut data, as_of) = setup();
    let e = engine(&data, as_of);
    let before = e.compute(&data, &ComputeOptions::at(as_of)).unwrap();
    // New orders (one with a string property the loaded ones lack, one at an already used
    // time of the same customer) go to the tail.
    let mut odd = order_event("n3", 30, "2026-03-02T00:00:00Z", Some(1.0));
    odd.properties = Arc::new(Map::from_entries([
        (Arc::from("total"), Value::Int(7)),
        (Arc::from("channel"), Value::str("app")),
    ]));
    let new = vec![
        order_event("n1", 20, "2026-03-09T00:00:00Z", Some(150.0)),
        order_event("n2", 10, "2026-02-20T00:00:00Z", None),
        odd,
    ];
    let changes = Changes {
        events: new.clone(),
        ..Default::default()
    };
    let r = e.refresh(&mut data, &before, &changes, None).unwrap();
    let orders = |d: &SegmentData| d.events().of_type("order.completed").unwrap().clone();
    assert_eq!(orders(&data).tail.len(), 3);

    data.compact_events();
    let compacted = orders(&data);
    assert!(compacted.tail.is_empty());
    // The same layout as loading every event at once.
    let mut all = setup_events();
    all.extend(new);
    let at_once = EventStore::from_events(data.customers(), &all);
    let at_once = at_once.of_type("order.completed").unwrap();
    assert_eq!(compacted.base.rows, at_once.base.rows);
    assert_eq!(compacted.base.ts, at_once.base.ts);
    assert_eq!(compacted.offsets, at_once.offsets);
    for name in ["total", "channel"] {
        for i in 0..at_once.len() {
            assert_eq!(
                compacted.base.prop(name, i),
                at_once.base.prop(name, i),
                "{name} {i}"
            );
        }
    }
    // A change like any other: the earlier result is stale; a computation equals the refresh.
    assert!(matches!(
        e.refresh(&mut data, &r.result, &Changes::default(), None),
        Err(SegmentError::Stale)
    ));
    let after = e.compute(&data, &uncached(as_of)).unwrap();
    assert_same_members(&after, &r.result);
    assert!(e
        .refresh(&mut data, &after, &Changes::default(), None)
        .is_ok());
}
