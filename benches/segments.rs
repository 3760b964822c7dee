//! Segment groups: Fusebox vs the idiomatic Polars alternative, side by side in one run
//! (issue 4).
//!
//! Workload (generated in-process from a fixed seed; defaults 1,000,000 customers and
//! 10,000,000 events over 60 days, overridable with `SEG_CUSTOMERS`, `SEG_EVENTS`):
//! - customers: `points`, `orders_count` (int), `total_spent` (float), `tier` (3 values),
//!   `city` (10 values, 3% null), `email_opt_in`, `unsubscribed` (bool), `last_order_at`
//!   (timestamp, null for 40%);
//! - events: `order.completed` 30% (`total`), `cart.abandoned` 15% (`value`), `page.viewed`
//!   40% (`url`, 6 values), `customer.registered` 5%, `customer.updated` 10%; customers drawn
//!   with a skew (a few very active, most rarely);
//! - the group: 12 segments mixing attribute predicates, windowed counts and sums over three
//!   event types, negations, `in_segment` references and sub-filters shared between segments
//!   (`GROUP` below); the single complex segment is one 8-condition filter (`COMPLEX`).
//!
//! Sides:
//! - **fusebox** — `SegmentEngine::new` (planning) + `compute` with the sub-query cache off,
//!   2 worker threads: a full computation from scratch every iteration;
//! - **polars** — what a user writes instead: one lazy query per segment (events filtered by
//!   type and window, `group_by(customer_id)` aggregates, left-joined to customers, one
//!   `filter` expression; references inlined as the referenced segment's expression), all run
//!   with `collect_all` on Polars' own pool (2 threads);
//! - **incremental** — 1% of customers get a new `points` value and 1% (others, at random) one
//!   new order event each; `SegmentEngine::refresh` vs a full recompute of the changed data by
//!   the same, already planned engine with the cache off;
//! - **as-of advance** — `as_of` moves one hour per round and nothing else changes (an
//!   embedding that refreshes with `as_of = now` every hour): windows slide, first/last bounds
//!   move. `refresh` vs the same full recompute at the new `as_of`. The first such refresh
//!   also builds each event type's time index; it is reported on its own, not in the median.
//!
//! Both sides are asserted to return the same members for every segment before timing. Sides
//! alternate within each round so machine noise hits both alike; we report medians of
//! `SEG_RUNS` rounds (default 5; the incremental phase, whose refreshes take milliseconds and
//! so feel the VM's scheduling noise most, runs `SEG_REFRESH_RUNS` rounds, default 15, and also
//! prints each side's fastest and slowest round) and the peak RSS of each phase (VmHWM, reset between phases
//! through `/proc/self/clear_refs`).
//!
//! Run: `cargo bench --bench segments` (about 1–2 minutes after the build on 2 cores, ~1.8 GB
//! peak RSS);
//! `cargo bench --bench segments -- --quick` uses 100,000 customers / 1,000,000 events.
//! Results: `benches/README.md`.

use std::time::{Duration, Instant};

use fusebox::engine::customers::{Column, CustomerTable, Schema};
use fusebox::engine::event::Event;
use fusebox::engine::value::{AttrType, Map, Value};
use fusebox::segment::{
    compile_segments, AttrUpdate, Changes, ComputeOptions, EventStore, SegmentData, SegmentEngine,
};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "common/stats.rs"]
mod stats;
use stats::median;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY: i64 = 86_400_000_000;
/// 2026-03-31T00:00:00Z
const AS_OF: i64 = 1_774_915_200_000_000;
const CITIES: &[&str] = &[
    "Moscow", "Berlin", "London", "Paris", "Madrid", "Warsaw", "Prague", "Vienna", "Lisbon", "Riga",
];
const URLS: &[&str] = &["/", "/catalog", "/sale", "/cart", "/account", "/blog"];

const GROUP: &str = r#"
segments:
  - id: active
    owner: bench
    filter: { performed: { event: order.completed, within: 30d } }
  - id: loyal
    owner: bench
    filter:
      and:
        - { attribute: orders_count, ge: 5 }
        - performed: { event: order.completed, within: 30d, count: { ge: 2 } }
  - id: high-value
    owner: bench
    filter:
      or:
        - { attribute: total_spent, ge: 2000 }
        - performed: { event: order.completed, within: 30d, sum: { property: total, ge: 500 } }
  - id: vip
    owner: bench
    filter:
      and:
        - in_segment: high-value
        - { attribute: tier, in: [gold, silver] }
        - { attribute: email_opt_in, eq: true }
        - not: { attribute: unsubscribed, eq: true }
  - id: cart-abandoners
    owner: bench
    filter:
      and:
        - performed: { event: cart.abandoned, within: 7d }
        - not_performed: { event: order.completed, within: 7d }
        - { attribute: email_opt_in, eq: true }
  - id: sale-browsers
    owner: bench
    filter:
      and:
        - performed: { event: page.viewed, within: 14d, count: { ge: 3 }, where: [ { property: url, eq: /sale } ] }
        - not: { in_segment: active }
  - id: lapsed
    owner: bench
    filter:
      and:
        - { attribute: last_order_at, lt: now-90d }
        - not: { in_segment: active }
  - id: reachable
    owner: bench
    filter:
      and:
        - { attribute: city, exists: true }
        - { attribute: email_opt_in, eq: true }
        - { attribute: unsubscribed, eq: false }
  - id: berlin-browsers
    owner: bench
    filter:
      and:
        - { attribute: city, eq: Berlin }
        - performed: { event: page.viewed, within: 30d }
  - id: big-carts
    owner: bench
    filter:
      and:
        - performed: { event: cart.abandoned, within: 30d, sum: { property: value, ge: 300 } }
        - not: { in_segment: active }
        - or:
            - { attribute: tier, eq: bronze }
            - { attribute: points, lt: 50 }
  - id: loyal-at-risk
    owner: bench
    filter:
      and:
        - in_segment: loyal
        - last_performed: { event: order.completed, before: now-7d }
  - id: premium-cities
    owner: bench
    filter:
      and:
        - { attribute: city, in: [London, Paris, Madrid] }
        - { attribute: points, ge: 100 }
        - in_segment: active
"#;

const COMPLEX: &str = r#"
segments:
  - id: complex
    owner: bench
    filter:
      and:
        - or:
            - { attribute: total_spent, ge: 2000 }
            - performed: { event: order.completed, within: 30d, sum: { property: total, ge: 500 } }
        - { attribute: tier, in: [gold, silver] }
        - { attribute: email_opt_in, eq: true }
        - not: { attribute: unsubscribed, eq: true }
        - { attribute: city, exists: true }
        - not_performed: { event: cart.abandoned, within: 7d }
        - performed: { event: page.viewed, within: 30d, count: { ge: 2 } }
        - { attribute: points, between: [50, 100000] }
"#;

struct Data {
    table: CustomerTable,
    customers: DataFrame,
    events: DataFrame,
}

fn generate(n: usize, m: usize) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut points = Vec::with_capacity(n);
    let mut orders = Vec::with_capacity(n);
    let mut spent = Vec::with_capacity(n);
    let mut tier = Vec::with_capacity(n);
    let mut city = Vec::with_capacity(n);
    let mut opt_in = Vec::with_capacity(n);
    let mut unsub = Vec::with_capacity(n);
    let mut last = Vec::with_capacity(n);
    for _ in 0..n {
        let o: i64 = if rng.random_bool(0.4) {
            0
        } else {
            rng.random_range(1..30)
        };
        let s = if o == 0 {
            0.0
        } else {
            (rng.random_range(10.0..200.0) * o as f64 * 100.0_f64).round() / 100.0
        };
        orders.push(Some(o));
        spent.push(Some(s));
        points.push(Some((s / 10.0) as i64));
        tier.push(Some(if s > 3000.0 {
            "gold"
        } else if s > 1000.0 {
            "silver"
        } else {
            "bronze"
        }));
        city.push(
            rng.random_bool(0.97)
                .then(|| CITIES[(rng.random::<f64>().powi(2) * CITIES.len() as f64) as usize]),
        );
        opt_in.push(Some(rng.random_bool(0.7)));
        unsub.push(Some(rng.random_bool(0.05)));
        last.push((o > 0).then(|| AS_OF - rng.random_range(1..(200 * 86_400_i64)) * 1_000_000));
    }
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("orders_count".to_string(), AttrType::Int),
        ("total_spent".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("city".to_string(), AttrType::String),
        ("email_opt_in".to_string(), AttrType::Bool),
        ("unsubscribed".to_string(), AttrType::Bool),
        ("last_order_at".to_string(), AttrType::Timestamp),
    ])
    .unwrap();
    let ids: Vec<u64> = (1..=n as u64).collect();
    let table = CustomerTable::new(
        schema,
        ids.clone(),
        vec![
            Column::Int(points.clone()),
            Column::Int(orders.clone()),
            Column::Float(spent.clone()),
            Column::String(tier.iter().map(|t| t.map(Into::into)).collect()),
            Column::String(city.iter().map(|t| t.map(Into::into)).collect()),
            Column::Bool(opt_in.clone()),
            Column::Bool(unsub.clone()),
            Column::Timestamp(last.clone()),
        ],
    )
    .unwrap();
    let customers = DataFrame::new(
        n,
        vec![
            Series::new("id".into(), ids).into_column(),
            Series::new("points".into(), points).into_column(),
            Series::new("orders_count".into(), orders).into_column(),
            Series::new("total_spent".into(), spent).into_column(),
            Series::new("tier".into(), tier).into_column(),
            Series::new("city".into(), city).into_column(),
            Series::new("email_opt_in".into(), opt_in).into_column(),
            Series::new("unsubscribed".into(), unsub).into_column(),
            Series::new("last_order_at".into(), last).into_column(),
        ],
    )
    .unwrap();

    let mut cust = Vec::with_capacity(m);
    let mut ty = Vec::with_capacity(m);
    let mut ts = Vec::with_capacity(m);
    let mut total: Vec<Option<f64>> = Vec::with_capacity(m);
    let mut value: Vec<Option<f64>> = Vec::with_capacity(m);
    let mut url: Vec<Option<&str>> = Vec::with_capacity(m);
    let span = 60 * DAY;
    for _ in 0..m {
        // Skewed activity: x^3 concentrates events on low ranks; ranks are spread over ids.
        let rank = (rng.random::<f64>().powi(3) * n as f64) as u64;
        cust.push((rank.wrapping_mul(2_654_435_761) % n as u64) + 1);
        ts.push(AS_OF - span + rng.random_range(0..span));
        let roll: f64 = rng.random();
        let (t, a, b, u) = if roll < 0.30 {
            (
                "order.completed",
                Some((rng.random_range(5.0..400.0_f64) * 100.0).round() / 100.0),
                None,
                None,
            )
        } else if roll < 0.45 {
            (
                "cart.abandoned",
                None,
                Some((rng.random_range(5.0..300.0_f64) * 100.0).round() / 100.0),
                None,
            )
        } else if roll < 0.85 {
            (
                "page.viewed",
                None,
                None,
                Some(URLS[rng.random_range(0..URLS.len())]),
            )
        } else if roll < 0.90 {
            ("customer.registered", None, None, None)
        } else {
            ("customer.updated", None, None, None)
        };
        ty.push(t);
        total.push(a);
        value.push(b);
        url.push(u);
    }
    let events = DataFrame::new(
        m,
        vec![
            Series::new("customer_id".into(), cust).into_column(),
            Series::new("type".into(), ty).into_column(),
            Series::new("timestamp".into(), ts).into_column(),
            Series::new("total".into(), total).into_column(),
            Series::new("value".into(), value).into_column(),
            Series::new("url".into(), url).into_column(),
        ],
    )
    .unwrap();
    Data {
        table,
        customers,
        events,
    }
}

// ---------------------------------------------------------------- the Polars side

/// Events of one type in `(as_of - days, as_of]`, optionally filtered, aggregated per customer.
fn agg(
    events: &LazyFrame,
    ty: &str,
    days: Option<i64>,
    extra: Option<Expr>,
    aggs: Vec<Expr>,
) -> LazyFrame {
    let mut pred = col("type")
        .eq(lit(ty))
        .and(col("timestamp").lt_eq(lit(AS_OF)));
    if let Some(d) = days {
        pred = pred.and(col("timestamp").gt(lit(AS_OF - d * DAY)));
    }
    if let Some(e) = extra {
        pred = pred.and(e);
    }
    events
        .clone()
        .filter(pred)
        .group_by([col("customer_id")])
        .agg(aggs)
}

fn join(base: LazyFrame, other: LazyFrame) -> LazyFrame {
    base.join(
        other,
        [col("id")],
        [col("customer_id")],
        JoinArgs::new(JoinType::Left),
    )
}

fn n(name: &str) -> Expr {
    col(name).fill_null(lit(0))
}

fn s(name: &str) -> Expr {
    col(name).fill_null(lit(0.0))
}

fn orders30(ev: &LazyFrame) -> LazyFrame {
    agg(
        ev,
        "order.completed",
        Some(30),
        None,
        vec![len().alias("n30"), col("total").sum().alias("s30")],
    )
}
fn orders7(ev: &LazyFrame) -> LazyFrame {
    agg(
        ev,
        "order.completed",
        Some(7),
        None,
        vec![len().alias("n7")],
    )
}
fn orders_last(ev: &LazyFrame) -> LazyFrame {
    agg(
        ev,
        "order.completed",
        None,
        None,
        vec![col("timestamp").max().alias("last_order_ts")],
    )
}
fn carts7(ev: &LazyFrame) -> LazyFrame {
    agg(ev, "cart.abandoned", Some(7), None, vec![len().alias("c7")])
}
fn carts30(ev: &LazyFrame) -> LazyFrame {
    agg(
        ev,
        "cart.abandoned",
        Some(30),
        None,
        vec![col("value").sum().alias("cv30")],
    )
}
fn views30(ev: &LazyFrame) -> LazyFrame {
    agg(ev, "page.viewed", Some(30), None, vec![len().alias("pv30")])
}
fn sale14(ev: &LazyFrame) -> LazyFrame {
    agg(
        ev,
        "page.viewed",
        Some(14),
        Some(col("url").eq(lit("/sale"))),
        vec![len().alias("p14")],
    )
}

fn high_value() -> Expr {
    col("total_spent")
        .gt_eq(lit(2000.0))
        .or(s("s30").gt_eq(lit(500.0)))
}
fn active() -> Expr {
    n("n30").gt_eq(lit(1))
}
fn loyal() -> Expr {
    col("orders_count")
        .gt_eq(lit(5))
        .and(n("n30").gt_eq(lit(2)))
}
fn tier_in(values: &[&str]) -> Expr {
    values
        .iter()
        .map(|v| col("tier").eq(lit(*v)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

fn polars_group(customers: &DataFrame, events: &DataFrame) -> Vec<(String, LazyFrame)> {
    let c = customers.clone().lazy();
    let ev = events.clone().lazy();
    let q = |joins: Vec<LazyFrame>, pred: Expr| {
        joins
            .into_iter()
            .fold(c.clone(), join)
            .filter(pred)
            .select([col("id")])
    };
    vec![
        ("active".into(), q(vec![orders30(&ev)], active())),
        ("loyal".into(), q(vec![orders30(&ev)], loyal())),
        ("high-value".into(), q(vec![orders30(&ev)], high_value())),
        (
            "vip".into(),
            q(
                vec![orders30(&ev)],
                high_value()
                    .and(tier_in(&["gold", "silver"]))
                    .and(col("email_opt_in").eq(lit(true)))
                    .and(col("unsubscribed").eq(lit(true)).not()),
            ),
        ),
        (
            "cart-abandoners".into(),
            q(
                vec![carts7(&ev), orders7(&ev)],
                n("c7")
                    .gt_eq(lit(1))
                    .and(n("n7").gt_eq(lit(1)).not())
                    .and(col("email_opt_in").eq(lit(true))),
            ),
        ),
        (
            "sale-browsers".into(),
            q(
                vec![sale14(&ev), orders30(&ev)],
                n("p14").gt_eq(lit(3)).and(active().not()),
            ),
        ),
        (
            "lapsed".into(),
            q(
                vec![orders30(&ev)],
                col("last_order_at")
                    .lt(lit(AS_OF - 90 * DAY))
                    .and(active().not()),
            ),
        ),
        (
            "reachable".into(),
            q(
                vec![],
                col("city")
                    .is_not_null()
                    .and(col("email_opt_in").eq(lit(true)))
                    .and(col("unsubscribed").eq(lit(false))),
            ),
        ),
        (
            "berlin-browsers".into(),
            q(
                vec![views30(&ev)],
                col("city").eq(lit("Berlin")).and(n("pv30").gt_eq(lit(1))),
            ),
        ),
        (
            "big-carts".into(),
            q(
                vec![carts30(&ev), orders30(&ev)],
                s("cv30")
                    .gt_eq(lit(300.0))
                    .and(active().not())
                    .and(col("tier").eq(lit("bronze")).or(col("points").lt(lit(50)))),
            ),
        ),
        (
            "loyal-at-risk".into(),
            q(
                vec![orders30(&ev), orders_last(&ev)],
                loyal().and(col("last_order_ts").lt(lit(AS_OF - 7 * DAY))),
            ),
        ),
        (
            "premium-cities".into(),
            q(
                vec![orders30(&ev)],
                col("city")
                    .eq(lit("London"))
                    .or(col("city").eq(lit("Paris")))
                    .or(col("city").eq(lit("Madrid")))
                    .and(col("points").gt_eq(lit(100)))
                    .and(active()),
            ),
        ),
    ]
}

fn polars_complex(customers: &DataFrame, events: &DataFrame) -> Vec<(String, LazyFrame)> {
    let ev = events.clone().lazy();
    let pv = agg(
        &ev,
        "page.viewed",
        Some(30),
        None,
        vec![len().alias("pv30")],
    );
    let lf = [orders30(&ev), carts7(&ev), pv]
        .into_iter()
        .fold(customers.clone().lazy(), join)
        .filter(
            high_value()
                .and(tier_in(&["gold", "silver"]))
                .and(col("email_opt_in").eq(lit(true)))
                .and(col("unsubscribed").eq(lit(true)).not())
                .and(col("city").is_not_null())
                .and(n("c7").gt_eq(lit(1)).not())
                .and(n("pv30").gt_eq(lit(2)))
                .and(
                    col("points")
                        .gt_eq(lit(50))
                        .and(col("points").lt_eq(lit(100_000))),
                ),
        )
        .select([col("id")]);
    vec![("complex".into(), lf)]
}

fn run_polars(queries: Vec<(String, LazyFrame)>) -> Vec<(String, Vec<u64>)> {
    let opt = queries[0].1.get_current_optimizations();
    let plans = queries
        .iter()
        .map(|(_, q)| q.logical_plan.clone())
        .collect();
    let frames =
        LazyFrame::collect_all_with_engine(plans, Engine::Auto, opt).expect("polars collect_all");
    queries
        .iter()
        .zip(frames)
        .map(|((name, _), df)| {
            let mut ids: Vec<u64> = df
                .column("id")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            ids.sort_unstable();
            (name.clone(), ids)
        })
        .collect()
}

// ---------------------------------------------------------------- the Fusebox side

fn run_fusebox(
    text: &str,
    data: &SegmentData,
) -> (
    Vec<(String, Vec<u64>)>,
    SegmentEngine,
    fusebox::segment::GroupResult,
) {
    let group = compile_segments(
        text,
        "bench.yaml",
        Some(data.customers().schema()),
        Some(&data.events().types()),
    )
    .unwrap();
    let engine = SegmentEngine::new(group, data, AS_OF, Some(2)).unwrap();
    let (_, result, members) = full_recompute(&engine, data, AS_OF);
    (members, engine, result)
}

// ---------------------------------------------------------------- measurement

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("SEG_CUSTOMERS", if quick { 100_000 } else { 1_000_000 });
    let m = env("SEG_EVENTS", if quick { 1_000_000 } else { 10_000_000 });
    let runs = env("SEG_RUNS", if quick { 3 } else { 5 }).max(1);
    let refresh_runs = env("SEG_REFRESH_RUNS", if quick { 5 } else { 15 }).max(1);
    // Polars reads this when its pool starts: the same 2 threads as Fusebox's pool.
    if std::env::var("POLARS_MAX_THREADS").is_err() {
        std::env::set_var("POLARS_MAX_THREADS", "2");
    }
    println!(
        "segments bench: {n} customers, {m} events, {runs} rounds ({refresh_runs} for the incremental phase), 2 threads per side"
    );
    let t0 = Instant::now();
    let d = generate(n, m);
    let store = EventStore::from_frame(&d.table, &d.events).unwrap();
    let mut data = SegmentData::new(d.table.clone(), store);
    println!(
        "generated and loaded in {:.1} s; baseline RSS peak {:.0} MB",
        t0.elapsed().as_secs_f64(),
        peak_mb()
    );

    let only_incremental = std::env::var("SEG_ONLY_INCREMENTAL").is_ok();
    // Equal answers first.
    for (name, text, pq) in [
        ("group", GROUP, polars_group(&d.customers, &d.events)),
        ("complex", COMPLEX, polars_complex(&d.customers, &d.events)),
    ] {
        if only_incremental {
            break;
        }
        let (fb, _, _) = run_fusebox(text, &data);
        let pl = run_polars(pq);
        assert_eq!(fb.len(), pl.len());
        for ((a, x), (b, y)) in fb.iter().zip(&pl) {
            assert_eq!(a, b);
            assert_eq!(
                x.len(),
                y.len(),
                "{name}/{a}: fusebox {} vs polars {} members",
                x.len(),
                y.len()
            );
            assert_eq!(x, y, "{name}/{a}: member sets differ");
        }
        let sizes: Vec<String> = fb
            .iter()
            .map(|(id, m)| format!("{id}={}", m.len()))
            .collect();
        println!(
            "{name}: identical members on both sides ({})",
            sizes.join(", ")
        );
    }

    let mut rows = Vec::new();
    for (name, text, make) in [
        (
            "group of 12",
            GROUP,
            polars_group as fn(&DataFrame, &DataFrame) -> Vec<(String, LazyFrame)>,
        ),
        ("single complex segment", COMPLEX, polars_complex),
    ] {
        if only_incremental {
            break;
        }
        let (mut tf, mut tp) = (Vec::new(), Vec::new());
        let (mut pf, mut pp) = (0.0f64, 0.0f64);
        for _ in 0..runs {
            reset_peak();
            let s = Instant::now();
            let _ = run_fusebox(text, &data);
            tf.push(s.elapsed());
            pf = pf.max(peak_mb());
            let q = make(&d.customers, &d.events);
            reset_peak();
            let s = Instant::now();
            let _ = run_polars(q);
            tp.push(s.elapsed());
            pp = pp.max(peak_mb());
        }
        let (f, p) = (median(tf), median(tp));
        println!(
            "{name}: fusebox median {:.1} ms (peak RSS {:.0} MB) | polars median {:.1} ms (peak RSS {:.0} MB) | fusebox {:.2}x faster",
            ms(f), pf, ms(p), pp, ms(p) / ms(f)
        );
        rows.push((name, f, p));
    }

    // Explain of one fusebox run of the group (estimated vs actual rows, per-node time).
    let (_, engine, result) = run_fusebox(GROUP, &data);
    if std::env::var("SEG_EXPLAIN").is_ok() {
        println!(
            "{}",
            fusebox::segment::explain::render(engine.plan(), &result)
        );
    }

    // Incremental refresh after 1% of customers change, vs a full recompute.
    let mut rng = ChaCha8Rng::seed_from_u64(44);
    let (mut tr, mut tfull) = (Vec::new(), Vec::new());
    let mut prev = result;
    let (mut pr, mut pfull) = (0.0f64, 0.0f64);
    let mut changed_entered = 0u64;
    for round in 0..refresh_runs {
        let k = (n / 100).max(1);
        let updates = (0..k)
            .map(|_| AttrUpdate {
                customer: rng.random_range(1..=n as u64),
                attribute: "points".into(),
                value: Value::Int(rng.random_range(0..400)),
            })
            .collect();
        let events = (0..k)
            .map(|i| Event {
                id: format!("new-{round}-{i}").into(),
                customer_id: rng.random_range(1..=n as u64),
                event_type: "order.completed".into(),
                timestamp: AS_OF - rng.random_range(1..DAY),
                process: None,
                properties: std::sync::Arc::new(Map::from_entries([(
                    "total".into(),
                    Value::Float(rng.random_range(5.0..400.0)),
                )])),
            })
            .collect();
        let changes = Changes {
            updates,
            events,
            as_of: None,
            new_customers: vec![],
        };
        reset_peak();
        let s = Instant::now();
        let r = engine.refresh(&mut data, &prev, &changes, None).unwrap();
        tr.push(s.elapsed());
        print_refresh_breakdown(&engine, &r, round);
        pr = pr.max(peak_mb());
        changed_entered += entered_or_left(&r);
        reset_peak();
        let (took, _, full) = full_recompute(&engine, &data, AS_OF);
        tfull.push(took);
        pfull = pfull.max(peak_mb());
        assert_same(&engine.member_ids(&data, &r.result), &full);
        prev = r.result;
    }
    let spread = |v: &[Duration]| {
        let (lo, hi) = (v.iter().min(), v.iter().max());
        format!(
            "{:.1}–{:.1} ms",
            lo.map_or(0.0, |d| ms(*d)),
            hi.map_or(0.0, |d| ms(*d))
        )
    };
    println!(
        "incremental spread over {refresh_runs} rounds: refresh {} | full recompute {}",
        spread(&tr),
        spread(&tfull)
    );
    let (r, f) = (median(tr), median(tfull));

    // As-of advance: one hour per round, nothing else changes.
    let (mut ta, mut tafull) = (Vec::new(), Vec::new());
    let (mut pa, mut pafull) = (0.0f64, 0.0f64);
    let mut first_advance = Duration::ZERO;
    let (mut moved_entered, mut moved_rows) = (0u64, 0u64);
    let mut as_of = AS_OF;
    for round in 0..=refresh_runs {
        as_of += DAY / 24;
        let changes = Changes {
            as_of: Some(as_of),
            ..Changes::default()
        };
        reset_peak();
        let s = Instant::now();
        let r = engine.refresh(&mut data, &prev, &changes, None).unwrap();
        let took = s.elapsed();
        print_refresh_breakdown(&engine, &r, round);
        if round == 0 {
            first_advance = took;
        } else {
            ta.push(took);
            pa = pa.max(peak_mb());
        }
        moved_entered += entered_or_left(&r);
        moved_rows += r
            .result
            .explain
            .nodes
            .iter()
            .map(|st| match st.source {
                fusebox::segment::explain::Source::Rows(k) => k,
                _ => 0,
            })
            .sum::<u64>();
        reset_peak();
        let (took, _, full) = full_recompute(&engine, &data, as_of);
        if round > 0 {
            tafull.push(took);
            pafull = pafull.max(peak_mb());
        }
        assert_same(&engine.member_ids(&data, &r.result), &full);
        prev = r.result;
    }
    println!(
        "as-of advance spread over {refresh_runs} rounds: refresh {} | full recompute {}",
        spread(&ta),
        spread(&tafull)
    );
    let (a, af) = (median(ta), median(tafull));
    println!(
        "as-of advance (1 hour per round, no other change; {} entered/left, {} leaf rows re-evaluated in total; first refresh, building the time index: {:.1} ms): refresh median {:.1} ms (peak RSS {:.0} MB) | full recompute median {:.1} ms (peak RSS {:.0} MB) | refresh {:.1}x faster",
        moved_entered,
        moved_rows,
        ms(first_advance),
        ms(a), pa, ms(af), pafull, ms(af) / ms(a)
    );
    println!(
        "incremental (1% customers changed: {} points updates + {} new events per round; {} entered/left in total): refresh median {:.1} ms (peak RSS {:.0} MB) | full recompute median {:.1} ms (peak RSS {:.0} MB) | refresh {:.1}x faster",
        (n / 100).max(1),
        (n / 100).max(1),
        changed_entered,
        ms(r), pr, ms(f), pfull, ms(f) / ms(r)
    );
    println!();
    println!("| case | fusebox median | polars / full-recompute median | ratio |");
    println!("|---|---|---|---|");
    for (name, f, p) in rows {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.2}x |",
            ms(f),
            ms(p),
            ms(p) / ms(f)
        );
    }
    println!(
        "| incremental refresh, 1% changed | {:.1} ms | {:.1} ms | {:.1}x |",
        ms(r),
        ms(f),
        ms(f) / ms(r)
    );
    println!(
        "| as-of advance by 1 hour | {:.1} ms | {:.1} ms | {:.1}x |",
        ms(a),
        ms(af),
        ms(af) / ms(a)
    );
}

/// With `SEG_EXPLAIN` set: where one refresh's time went (phases, and every node over 0.5 ms).
fn print_refresh_breakdown(engine: &SegmentEngine, r: &fusebox::segment::Refresh, round: usize) {
    if std::env::var("SEG_EXPLAIN").is_err() {
        return;
    }
    let leaves: Duration = engine
        .plan()
        .leaf_order
        .iter()
        .map(|&i| r.result.explain.nodes[i].time)
        .sum();
    let combine: Duration = (0..engine.plan().nodes.len())
        .filter(|&i| !engine.plan().nodes[i].is_leaf())
        .map(|i| r.result.explain.nodes[i].time)
        .sum();
    for (i, st) in r.result.explain.nodes.iter().enumerate() {
        if st.time > Duration::from_micros(500) {
            println!(
                "    #{i} {:.2} ms {:?} {}",
                ms(st.time),
                st.source,
                engine.plan().nodes[i].label
            );
        }
    }
    println!(
        "refresh round {round}: apply {:.2} ms, as-of advance {:.2} ms, run {:.2} ms (leaves {:.2} ms cpu, combine {:.2} ms), diffs {:.2} ms",
        ms(r.apply_time), ms(r.advance_time), ms(r.result.elapsed), ms(leaves), ms(combine), ms(r.diff_time)
    );
}

/// Full recompute with the same (already planned) engine and the cache off — the cheapest
/// way to get a refresh's answer without incremental refresh: its time, result and members.
fn full_recompute(
    engine: &SegmentEngine,
    data: &SegmentData,
    as_of: i64,
) -> (
    Duration,
    fusebox::segment::GroupResult,
    Vec<(String, Vec<u64>)>,
) {
    let s = Instant::now();
    let result = engine
        .compute(
            data,
            &ComputeOptions {
                use_cache: false,
                ..ComputeOptions::at(as_of)
            },
        )
        .unwrap();
    let took = s.elapsed();
    let members = engine
        .member_ids(data, &result)
        .into_iter()
        .map(|(id, m)| (id.to_string(), m))
        .collect();
    (took, result, members)
}

/// Customers who entered or left any segment in a refresh.
fn entered_or_left(r: &fusebox::segment::Refresh) -> u64 {
    r.diffs.iter().map(|d| d.entered.len() + d.left.len()).sum()
}

/// A refresh's members equal the full recompute's, segment by segment.
fn assert_same(refreshed: &[(std::sync::Arc<str>, Vec<u64>)], full: &[(String, Vec<u64>)]) {
    assert_eq!(refreshed.len(), full.len());
    for ((a, x), (b, y)) in refreshed.iter().zip(full) {
        assert_eq!(a.as_ref(), b.as_str());
        assert_eq!(x, y, "refresh differs from full recompute for {a}");
    }
}
