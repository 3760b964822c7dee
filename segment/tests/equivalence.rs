//! The planner + parallel engine against the naive oracle, on random filter trees over random
//! data (nulls, NaN, empty sets, all-match, negations, segment references, shared
//! sub-filters), with 1 and 3 worker threads; and incremental refresh against a full
//! recompute on random change sets.

use std::sync::Arc;

use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::event::Event;
use fusebox_engine::value::{AttrType, Map, Value};
use fusebox_segment::model::{
    AttrPred, CmpOp, EventPred, EventTest, Filter, NumCond, PropPred, Scalar, Segment,
    SegmentGroup, TimeRef, ValueOp, Window,
};
use fusebox_segment::{
    oracle, AttrUpdate, Changes, ComputeOptions, EventStore, GroupResult, SegmentData,
    SegmentEngine,
};
use proptest::prelude::*;

const DAY: i64 = 86_400_000_000;
const AS_OF: i64 = 100 * DAY;

fn schema() -> Schema {
    Schema::new([
        ("points".to_string(), AttrType::Int),
        ("spent".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("opt_in".to_string(), AttrType::Bool),
        ("seen_at".to_string(), AttrType::Timestamp),
        ("tags".to_string(), AttrType::StringList),
    ])
    .unwrap()
}

const TIERS: &[&str] = &["gold", "silver", "bronze", "gopher"];
const TAGS: &[&str] = &["vip", "new", "sale"];
const TYPES: &[&str] = &["a", "b", "c"];

#[derive(Clone, Debug)]
struct Cust {
    points: Option<i64>,
    spent: Option<f64>,
    tier: Option<usize>,
    opt_in: Option<bool>,
    seen: Option<i64>,
    tags: Option<Vec<usize>>,
}

fn cust() -> impl Strategy<Value = Cust> {
    (
        prop::option::weighted(0.8, -3i64..12),
        prop::option::weighted(
            0.8,
            prop_oneof![Just(f64::NAN), (0i32..40).prop_map(|x| f64::from(x) / 2.0)],
        ),
        prop::option::weighted(0.8, 0..TIERS.len()),
        prop::option::weighted(0.8, any::<bool>()),
        prop::option::weighted(0.8, 80i64..110),
        prop::option::weighted(0.7, prop::collection::vec(0..TAGS.len(), 0..3)),
    )
        .prop_map(|(points, spent, tier, opt_in, seen, tags)| Cust {
            points,
            spent,
            tier,
            opt_in,
            seen: seen.map(|d| d * DAY),
            tags,
        })
}

#[derive(Clone, Debug)]
struct Ev {
    cust: usize,
    ty: usize,
    day: i64,
    total: Option<i64>,
    channel: Option<usize>,
    /// A timestamp property, in days (filters compare it with `now`).
    expires: Option<i64>,
}

fn ev(n: usize) -> impl Strategy<Value = Ev> {
    (
        0..n.max(1) + 1,
        0..TYPES.len(),
        60i64..105,
        prop::option::weighted(0.8, 0i64..50),
        prop::option::weighted(0.7, 0usize..2),
        prop::option::weighted(0.5, 90i64..110),
    )
        .prop_map(|(cust, ty, day, total, channel, expires)| Ev {
            cust,
            ty,
            day,
            total,
            channel,
            expires,
        })
}

fn table(cs: &[Cust]) -> CustomerTable {
    CustomerTable::new(
        schema(),
        (1..=cs.len() as u64).collect(),
        vec![
            Column::Int(cs.iter().map(|c| c.points).collect()),
            Column::Float(cs.iter().map(|c| c.spent).collect()),
            Column::String(
                cs.iter()
                    .map(|c| c.tier.map(|t| Arc::from(TIERS[t])))
                    .collect(),
            ),
            Column::Bool(cs.iter().map(|c| c.opt_in).collect()),
            Column::Timestamp(cs.iter().map(|c| c.seen).collect()),
            Column::StringList(
                cs.iter()
                    .map(|c| {
                        c.tags
                            .as_ref()
                            .map(|t| t.iter().map(|&i| Value::str(TAGS[i])).collect())
                    })
                    .collect(),
            ),
        ],
    )
    .unwrap()
}

fn event(i: usize, e: &Ev) -> Event {
    let mut props = Vec::new();
    if let Some(t) = e.total {
        // Mix ints and floats in one property.
        props.push((
            Arc::from("total"),
            if t % 3 == 0 {
                Value::Float(t as f64 + 0.5)
            } else {
                Value::Int(t)
            },
        ));
    }
    if let Some(c) = e.channel {
        props.push((Arc::from("channel"), Value::str(["web", "app"][c])));
    }
    if let Some(d) = e.expires {
        props.push((Arc::from("expires"), Value::Timestamp(d * DAY)));
    }
    Event {
        id: Arc::from(format!("e{i}")),
        // cust == n is a customer not in the table.
        customer_id: e.cust as u64 + 1,
        event_type: Arc::from(TYPES[e.ty]),
        timestamp: e.day * DAY + i as i64,
        process: None,
        properties: Arc::new(Map::from_entries(props)),
    }
}

fn attr_leaf() -> impl Strategy<Value = Filter> {
    let s = schema();
    let pred = move |name: &str, op: ValueOp| {
        let (attr, ty) = s.attr(name).unwrap();
        Filter::Attr(AttrPred {
            attr,
            name: Arc::from(name),
            ty,
            op,
        })
    };
    let cmp = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    let tier = (0..TIERS.len()).prop_map(|t| Scalar::Str(Arc::from(TIERS[t])));
    prop_oneof![
        (cmp.clone(), -4i64..13).prop_map({
            let p = pred.clone();
            move |(c, x)| p("points", ValueOp::Cmp(c, Scalar::Int(x)))
        }),
        (cmp.clone(), 0i32..40).prop_map({
            let p = pred.clone();
            move |(c, x)| p("points", ValueOp::Cmp(c, Scalar::Float(f64::from(x) / 4.0)))
        }),
        (cmp.clone(), 0i32..40).prop_map({
            let p = pred.clone();
            move |(c, x)| p("spent", ValueOp::Cmp(c, Scalar::Float(f64::from(x) / 2.0)))
        }),
        (cmp.clone(), -2i64..22).prop_map({
            let p = pred.clone();
            move |(c, x)| p("spent", ValueOp::Cmp(c, Scalar::Int(x)))
        }),
        (-3i64..12, 0i64..6).prop_map({
            let p = pred.clone();
            move |(a, w)| {
                p(
                    "points",
                    ValueOp::Between(Scalar::Int(a), Scalar::Int(a + w)),
                )
            }
        }),
        prop::collection::vec(-3i64..12, 1..4).prop_map({
            let p = pred.clone();
            move |v| {
                p(
                    "points",
                    ValueOp::In(v.into_iter().map(Scalar::Int).collect()),
                )
            }
        }),
        (cmp.clone(), tier.clone()).prop_map({
            let p = pred.clone();
            move |(c, t)| p("tier", ValueOp::Cmp(c, t))
        }),
        prop::collection::vec(tier, 1..3).prop_map({
            let p = pred.clone();
            move |v| p("tier", ValueOp::In(v))
        }),
        prop_oneof![Just("go"), Just("o"), Just("ld"), Just("")].prop_map({
            let p = pred.clone();
            move |x| p("tier", ValueOp::Contains(Arc::from(x)))
        }),
        prop_oneof![Just("go"), Just("s"), Just("x")].prop_map({
            let p = pred.clone();
            move |x| p("tier", ValueOp::StartsWith(Arc::from(x)))
        }),
        (prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)], any::<bool>()).prop_map({
            let p = pred.clone();
            move |(c, b)| p("opt_in", ValueOp::Cmp(c, Scalar::Bool(b)))
        }),
        (cmp.clone(), 0i64..30, any::<bool>()).prop_map({
            let p = pred.clone();
            move |(c, d, rel)| {
                let t = if rel {
                    TimeRef::Rel(-d * DAY)
                } else {
                    TimeRef::Abs((100 - d) * DAY)
                };
                p("seen_at", ValueOp::Cmp(c, Scalar::Time(t)))
            }
        }),
        (0..TAGS.len()).prop_map({
            let p = pred.clone();
            move |t| p("tags", ValueOp::Contains(Arc::from(TAGS[t])))
        }),
        prop::collection::vec(0..TAGS.len(), 1..3).prop_map({
            let p = pred.clone();
            move |v| {
                p(
                    "tags",
                    ValueOp::In(
                        v.into_iter()
                            .map(|t| Scalar::Str(Arc::from(TAGS[t])))
                            .collect(),
                    ),
                )
            }
        }),
        (
            prop_oneof![
                Just("points"),
                Just("spent"),
                Just("tier"),
                Just("tags"),
                Just("seen_at")
            ],
            any::<bool>()
        )
            .prop_map({
                let p = pred.clone();
                move |(n, e)| p(n, if e { ValueOp::Exists } else { ValueOp::Missing })
            }),
    ]
}

fn num_cond() -> impl Strategy<Value = NumCond> {
    prop_oneof![
        (0i32..4).prop_map(|x| NumCond::Ge(f64::from(x))),
        (0i32..4).prop_map(|x| NumCond::Le(f64::from(x))),
        (0i32..3).prop_map(|x| NumCond::Eq(f64::from(x))),
        (0i32..3, 0i32..3).prop_map(|(a, w)| NumCond::Between(f64::from(a), f64::from(a + w))),
    ]
}

fn event_leaf() -> impl Strategy<Value = Filter> {
    let window = prop_oneof![
        Just(Window::All),
        (1i64..40).prop_map(|d| Window::Last(d * DAY)),
        (60i64..100, 1i64..30).prop_map(|(a, w)| Window::Range(Some(a * DAY), Some((a + w) * DAY))),
        (60i64..100).prop_map(|a| Window::Range(None, Some(a * DAY))),
    ];
    let filter = prop_oneof![
        (0i64..40).prop_map(|x| PropPred {
            name: Arc::from("total"),
            op: ValueOp::Cmp(CmpOp::Ge, Scalar::Int(x))
        }),
        (0usize..2).prop_map(|c| PropPred {
            name: Arc::from("channel"),
            op: ValueOp::Cmp(CmpOp::Eq, Scalar::Str(Arc::from(["web", "app"][c])))
        }),
        Just(PropPred {
            name: Arc::from("channel"),
            op: ValueOp::Missing
        }),
        Just(PropPred {
            name: Arc::from("nope"),
            op: ValueOp::Exists
        }),
        // Reads `now`: an advanced as-of can change it for any event. (Only groups built in
        // code hold such filters: YAML and CEL do not compare event properties with times.)
        (-3i64..8).prop_map(|d| PropPred {
            name: Arc::from("expires"),
            op: ValueOp::Cmp(CmpOp::Gt, Scalar::Time(TimeRef::Rel(d * DAY)))
        }),
    ];
    let test = prop_oneof![
        Just(EventTest::Performed {
            count: None,
            sum: None
        }),
        num_cond().prop_map(|c| EventTest::Performed {
            count: Some(c),
            sum: None
        }),
        (
            (0i32..80).prop_map(|x| NumCond::Ge(f64::from(x))),
            prop::option::of(num_cond())
        )
            .prop_map(|(s, c)| EventTest::Performed {
                count: c,
                sum: Some((Arc::from("total"), s))
            }),
        (any::<bool>(), 70i64..105, any::<bool>()).prop_map(|(b, d, rel)| EventTest::First {
            before: b,
            at: if rel {
                TimeRef::Rel((d - 100) * DAY)
            } else {
                TimeRef::Abs(d * DAY)
            }
        }),
        (any::<bool>(), 70i64..105, any::<bool>()).prop_map(|(b, d, rel)| EventTest::Last {
            before: b,
            at: if rel {
                TimeRef::Rel((d - 100) * DAY)
            } else {
                TimeRef::Abs(d * DAY)
            }
        }),
    ];
    (
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("zzz")],
        prop::collection::vec(filter, 0..2),
        window,
        test,
    )
        .prop_map(|(t, filters, window, test)| {
            Filter::Event(EventPred {
                event_type: Arc::from(t),
                filters,
                window,
                test,
            })
        })
}

/// A filter tree; `Filter::InSegment("#k")` placeholders are resolved to earlier segments.
fn tree() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![4 => attr_leaf(), 3 => event_leaf(), 1 => (0u8..8).prop_map(|k| Filter::InSegment(Arc::from(format!("#{k}"))))];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn resolve(f: Filter, i: usize) -> Filter {
    match f {
        Filter::And(c) => Filter::And(c.into_iter().map(|f| resolve(f, i)).collect()),
        Filter::Or(c) => Filter::Or(c.into_iter().map(|f| resolve(f, i)).collect()),
        Filter::Not(c) => Filter::Not(Box::new(resolve(*c, i))),
        Filter::InSegment(k) if i == 0 => {
            let _ = k;
            Filter::Event(EventPred {
                event_type: Arc::from("a"),
                filters: vec![],
                window: Window::All,
                test: EventTest::Performed {
                    count: None,
                    sum: None,
                },
            })
        }
        Filter::InSegment(k) => {
            let n: usize = k.trim_start_matches('#').parse().unwrap_or(0);
            Filter::InSegment(Arc::from(format!("s{}", n % i)))
        }
        other => other,
    }
}

/// An event leaf whose answer moves with `as_of`: a `now`-relative first/last bound, or a
/// count in a sliding window.
fn moving_leaf() -> impl Strategy<Value = Filter> {
    let test = prop_oneof![
        (any::<bool>(), -40i64..5).prop_map(|(before, d)| EventTest::First {
            before,
            at: TimeRef::Rel(d * DAY)
        }),
        (any::<bool>(), -40i64..5).prop_map(|(before, d)| EventTest::Last {
            before,
            at: TimeRef::Rel(d * DAY)
        }),
        num_cond().prop_map(|c| EventTest::Performed {
            count: Some(c),
            sum: None
        }),
    ];
    let window = prop_oneof![
        Just(Window::All),
        (1i64..20).prop_map(|d| Window::Last(d * DAY))
    ];
    (prop_oneof![Just("a"), Just("b")], window, test).prop_map(|(t, window, test)| {
        Filter::Event(EventPred {
            event_type: Arc::from(t),
            filters: vec![],
            window,
            test,
        })
    })
}

fn group(trees: Vec<Filter>) -> SegmentGroup {
    let mut segments: Vec<Segment> = trees
        .into_iter()
        .enumerate()
        .map(|(i, f)| Segment {
            id: Arc::from(format!("s{i}")),
            owner: Arc::from("t"),
            filter: resolve(f, i),
        })
        .collect();
    // Share sub-filters across segments: the last segment repeats the first one's tree.
    if segments.len() > 2 {
        let shared = segments[0].filter.clone();
        let last = segments.len() - 1;
        segments[last].filter = Filter::Or(vec![shared, segments[last].filter.clone()]);
    }
    SegmentGroup {
        segments,
        warnings: vec![],
    }
}

fn members(engine: &SegmentEngine, data: &SegmentData, as_of: i64) -> Vec<(Arc<str>, Vec<u32>)> {
    let r = engine.compute(data, &ComputeOptions::at(as_of)).unwrap();
    assert!(!r.timed_out);
    member_lists(&r)
}

/// Every segment's members (rows, ascending) of a finished result.
fn member_lists(r: &GroupResult) -> Vec<(Arc<str>, Vec<u32>)> {
    r.segments
        .iter()
        .map(|s| (s.id.clone(), s.members.as_ref().unwrap().iter().collect()))
        .collect()
}

/// The updates that give new customer `id` the attributes of `c` (absent ones stay null).
fn cust_updates(id: u64, c: &Cust) -> Vec<AttrUpdate> {
    let set = |name: &str, value: Option<Value>| {
        value.map(|value| AttrUpdate {
            customer: id,
            attribute: name.to_string(),
            value,
        })
    };
    [
        set("points", c.points.map(Value::Int)),
        set("spent", c.spent.map(Value::Float)),
        set("tier", c.tier.map(|t| Value::str(TIERS[t]))),
        set("opt_in", c.opt_in.map(Value::Bool)),
        set("seen_at", c.seen.map(Value::Timestamp)),
        set(
            "tags",
            c.tags
                .as_ref()
                .map(|t| Value::List(t.iter().map(|&i| Value::str(TAGS[i])).collect())),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn update() -> impl Strategy<Value = (usize, usize, u32)> {
    (0usize..64, 0usize..6, 0u32..1000)
}

fn update_value(attr: usize, x: u32) -> (&'static str, Value) {
    let null = x % 5 == 0;
    let v = |v: Value| if null { Value::Null } else { v };
    match attr {
        0 => ("points", v(Value::Int(i64::from(x % 15) - 3))),
        1 => ("spent", v(Value::Float(f64::from(x % 40) / 2.0))),
        2 => ("tier", v(Value::str(TIERS[x as usize % TIERS.len()]))),
        3 => ("opt_in", v(Value::Bool(x % 2 == 0))),
        4 => ("seen_at", v(Value::Timestamp(i64::from(80 + x % 30) * DAY))),
        _ => (
            "tags",
            v(Value::List(
                vec![Value::str(TAGS[x as usize % TAGS.len()])].into(),
            )),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_oracle(
        cs in prop::collection::vec(cust(), 0..40),
        evs in prop::collection::vec(ev(40), 0..120),
        trees in prop::collection::vec(tree(), 1..6),
        threads in 1usize..4,
        as_of_day in 90i64..106,
    ) {
        let customers = table(&cs);
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| event(i, e)).collect();
        let store = EventStore::from_events(&customers, &events);
        let data = SegmentData::new(customers, store);
        let g = group(trees);
        let as_of = as_of_day * DAY;
        let expected = oracle::evaluate(&g, &data, as_of);
        let engine = SegmentEngine::new(g, &data, as_of, Some(threads)).unwrap();
        prop_assert_eq!(members(&engine, &data, as_of), expected.clone());
        // Second run: served from the cache, same answer.
        prop_assert_eq!(members(&engine, &data, as_of), expected);
    }

    #[test]
    /// Only `as_of` moves, several times, over leaves that depend on it: each refresh (row by
    /// row from the carried aggregates, whatever the share of rows) equals the oracle.
    fn advancing_as_of_equals_the_oracle(
        cs in prop::collection::vec(cust(), 1..30),
        evs in prop::collection::vec(ev(30), 0..150),
        leaves in prop::collection::vec((moving_leaf(), any::<bool>()), 1..6),
        steps in prop::collection::vec(1i64..4, 1..6),
    ) {
        let customers = table(&cs);
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| event(i, e)).collect();
        let store = EventStore::from_events(&customers, &events);
        let mut data = SegmentData::new(customers, store);
        // Some leaves negated; starting before the last events, so some become visible.
        let trees = leaves
            .into_iter()
            .map(|(f, neg)| if neg { Filter::Not(Box::new(f)) } else { f })
            .collect();
        let g = group(trees);
        let start = 90 * DAY;
        let engine = SegmentEngine::new(g.clone(), &data, start, Some(2))
            .unwrap()
            .with_row_refresh_limit(1.0);
        let mut prev = engine.compute(&data, &ComputeOptions::at(start)).unwrap();
        let mut as_of = start;
        for step in steps {
            as_of += step * DAY;
            let changes = Changes { as_of: Some(as_of), ..Changes::default() };
            let r = engine.refresh(&mut data, &prev, &changes, None).unwrap();
            let got = member_lists(&r.result);
            prop_assert_eq!(&got, &oracle::evaluate(&g, &data, as_of));
            prev = r.result;
        }
    }

    #[test]
    fn refresh_equals_full_recompute(
        // One case in five starts from an empty table and grows it by refresh.
        cs in prop_oneof![1 => Just(Vec::new()), 4 => prop::collection::vec(cust(), 1..40)],
        evs in prop::collection::vec(ev(40), 0..100),
        new_evs in prop::collection::vec(ev(40), 0..20),
        more_evs in prop::collection::vec(ev(40), 0..20),
        new_cs in prop::collection::vec(cust(), 0..6),
        more_cs in prop::collection::vec(cust(), 0..3),
        updates in prop::collection::vec(update(), 0..12),
        trees in prop::collection::vec(tree(), 1..5),
        advance in prop_oneof![Just(0i64), 0i64..5],
        advance_again in prop_oneof![Just(0i64), 0i64..3],
        // An advanced as-of: always row by row, the default, or always whole.
        row_limit in prop_oneof![2 => Just(1.0), 1 => Just(0.25), 1 => Just(0.0)],
    ) {
        let customers = table(&cs);
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| event(i, e)).collect();
        let store = EventStore::from_events(&customers, &events);
        // `twin` gets every change set too, refreshed from the same previous result *after*
        // `data` took over its carried aggregates: it exercises the other refresh path
        // (re-reading the dirty customers' events).
        let mut twin = SegmentData::new(customers.clone(), store.clone());
        let mut data = SegmentData::new(customers, store);
        let g = group(trees);
        let engine = SegmentEngine::new(g.clone(), &data, AS_OF, Some(2))
            .unwrap()
            .with_row_refresh_limit(row_limit);
        let mut prev = engine.compute(&data, &ComputeOptions::at(AS_OF)).unwrap();
        // Customers after each round (new ones get the next ids; events for ids beyond the
        // table are ignored, so some of the random events land on new customers).
        let n = cs.len() + new_cs.len();
        let n2 = n + more_cs.len();
        let new_events = |first: usize, evs: &[Ev]| -> Vec<Event> {
            evs.iter().enumerate().map(|(i, e)| {
                let mut e = event(first + i, e);
                e.timestamp = (AS_OF - 3 * DAY) + (i as i64) * DAY / 3;
                e
            }).collect()
        };
        // Three refreshes in a row, each from the previous one's result (and whatever state it
        // carries): the first two with or without as-of moving, the third at the same as-of
        // with the first round's events again (new ids), so it folds into the very rows the
        // earlier rounds re-aggregated.
        let rounds = [
            Changes {
                new_customers: (cs.len() as u64 + 1..=n as u64).collect(),
                updates: new_cs.iter().enumerate()
                    .flat_map(|(i, c)| cust_updates((cs.len() + i) as u64 + 1, c))
                    .chain(updates.iter().filter(|_| n > 0).map(|&(c, a, x)| {
                        let (name, value) = update_value(a, x);
                        AttrUpdate { customer: (c % n) as u64 + 1, attribute: name.to_string(), value }
                    }))
                    .collect(),
                events: new_events(10_000, &new_evs),
                as_of: (advance > 0).then_some(AS_OF + advance * DAY),
            },
            Changes {
                new_customers: (n as u64 + 1..=n2 as u64).collect(),
                updates: more_cs.iter().enumerate()
                    .flat_map(|(i, c)| cust_updates((n + i) as u64 + 1, c))
                    .chain(updates.iter().rev().take(3).filter(|_| n2 > 0).map(|&(c, a, x)| {
                        let (name, value) = update_value(a, x.wrapping_add(1));
                        AttrUpdate { customer: (c.wrapping_mul(7) % n2) as u64 + 1, attribute: name.to_string(), value }
                    }))
                    .collect(),
                events: new_events(20_000, &more_evs),
                as_of: (advance_again > 0).then_some(AS_OF + (advance + advance_again) * DAY),
            },
            Changes {
                events: new_events(30_000, &new_evs),
                ..Changes::default()
            },
        ];
        for changes in &rounds {
            let as_of = changes.as_of.unwrap_or(prev.as_of);
            let refreshed = engine.refresh(&mut data, &prev, changes, None).unwrap();
            let rescanned = engine.refresh(&mut twin, &prev, changes, None).unwrap();
            let got = member_lists(&refreshed.result);
            let got_rescanned = member_lists(&rescanned.result);
            prop_assert_eq!(&got_rescanned, &got);
            prop_assert_eq!(&rescanned.diffs, &refreshed.diffs);
            // Full recompute on the changed data with a fresh engine (no cache) and the oracle.
            let fresh = SegmentEngine::new(g.clone(), &data, as_of, Some(1)).unwrap();
            prop_assert_eq!(&got, &members(&fresh, &data, as_of));
            prop_assert_eq!(&got, &oracle::evaluate(&g, &data, as_of));
            for (d, (old, new)) in refreshed.diffs.iter().zip(prev.segments.iter().zip(&refreshed.result.segments)) {
                let (old, new) = (old.members.as_deref().unwrap(), new.members.as_deref().unwrap());
                prop_assert_eq!(&d.entered, &(new - old));
                prop_assert_eq!(&d.left, &(old - new));
            }
            prev = refreshed.result;
        }
    }
}
