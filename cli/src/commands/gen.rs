//! `fusebox gen`: a realistic synthetic workload, reproducible from a seed.
//!
//! Realistic means what production feeds look like: activity is skewed (customer popularity
//! follows a Zipf law, so a few customers are very active), several event types with
//! different rates and properties, a CRM sync process producing its own events, a few events
//! for customers the customer file does not know (as real feeds have), triggers sharing a
//! coupon pool that runs dry, and chained events. The same seed always writes byte-identical
//! files. With `--runaway`, the triggers file also gets a misbehaving trigger (a loop of
//! chained events on every page view) under a budget, for the governor to throttle, defer
//! to the slow lane and stop; the events are the same either way.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::files::{write_text, AtomicFile};
use fusebox_engine::customers::{Column, CustomerTable, Schema};
use fusebox_engine::io::customers::save_customers;
use fusebox_engine::value::{format_timestamp, parse_timestamp, AttrType, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};

mod quotas;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenSpec {
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Number of customers.
    pub customers: u64,
    /// Number of events.
    pub events: u64,
    /// RNG seed.
    pub seed: u64,
    /// Add a misbehaving trigger pair with budgets (see [`runaway_yaml`]).
    pub runaway: bool,
}

/// Paths of the generated files.
#[derive(Clone, Debug)]
pub struct Workload {
    /// customers.parquet
    pub customers: PathBuf,
    /// events.jsonl
    pub events: PathBuf,
    /// triggers.yaml
    pub triggers: PathBuf,
    /// segments.yaml
    pub segments: PathBuf,
    /// quotas.yaml
    pub quotas: PathBuf,
}

const CITIES: &[&str] = &[
    "Moscow", "Berlin", "London", "Paris", "Madrid", "Warsaw", "Prague", "Vienna", "Lisbon", "Riga",
];
const FIRST_NAMES: &[&str] = &[
    "Anna", "Boris", "Chloe", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Irina", "Jonas",
    "Katya", "Liam",
];
const TAGS: &[&str] = &[
    "newsletter",
    "sale-hunter",
    "mobile",
    "b2b",
    "eco",
    "premium",
];
const PAGES: &[&str] = &["/", "/catalog", "/sale", "/cart", "/account", "/blog"];
/// 2026-03-01T00:00:00Z: the workload's clock starts here.
const EPOCH: &str = "2026-03-01T00:00:00Z";

/// Writes the workload and returns the file paths.
pub fn generate(spec: &GenSpec, progress: &indicatif::ProgressBar) -> Result<Workload> {
    std::fs::create_dir_all(&spec.out)
        .with_context(|| format!("cannot create {}", spec.out.display()))?;
    let w = Workload {
        customers: spec.out.join("customers.parquet"),
        events: spec.out.join("events.jsonl"),
        triggers: spec.out.join("triggers.yaml"),
        segments: spec.out.join("segments.yaml"),
        quotas: spec.out.join("quotas.yaml"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let start = parse_timestamp(EPOCH).unwrap_or_default();

    let table = customers(&mut rng, spec.customers, start)?;
    save_customers(&table, &w.customers)
        .with_context(|| format!("cannot write {}", w.customers.display()))?;
    write_events(&mut rng, spec, start, &w.events, progress)?;
    let mut triggers = triggers_yaml(spec);
    if spec.runaway {
        triggers = triggers.replace(
            "  - tier.upgraded\n",
            "  - tier.upgraded\n  - page.rescan\n",
        );
        triggers = triggers.replace(
            "settings:\n  max_chain_depth: 16\n",
            "settings:\n  max_chain_depth: 16\n  budget_window: 3600\n",
        );
        triggers.push_str(&runaway_yaml(spec));
    }
    write_text(&w.triggers, &triggers)?;
    write_text(&w.segments, super::segment::GENERATED_SEGMENTS)?;
    write_text(&w.quotas, &quotas::quotas_yaml(spec))?;
    Ok(w)
}

fn customers(rng: &mut ChaCha8Rng, n: u64, start: i64) -> Result<CustomerTable> {
    let schema = Schema::new([
        ("first_name".to_string(), AttrType::String),
        ("email".to_string(), AttrType::String),
        ("city".to_string(), AttrType::String),
        ("email_opt_in".to_string(), AttrType::Bool),
        ("unsubscribed".to_string(), AttrType::Bool),
        ("points".to_string(), AttrType::Int),
        ("orders_count".to_string(), AttrType::Int),
        ("total_spent".to_string(), AttrType::Float),
        ("tier".to_string(), AttrType::String),
        ("signup_at".to_string(), AttrType::Timestamp),
        ("last_order_at".to_string(), AttrType::Timestamp),
        ("synced_at".to_string(), AttrType::Timestamp),
        ("last_coupon".to_string(), AttrType::String),
        ("tags".to_string(), AttrType::StringList),
    ])
    .map_err(|dup| anyhow::anyhow!("duplicate attribute {dup}"))?;
    let len = n as usize;
    let (mut first, mut email, mut city, mut opt_in, mut unsub) = (
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    );
    let (mut points, mut orders, mut spent, mut tier, mut signup) = (
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    );
    let (mut last_order, mut tags) = (Vec::with_capacity(len), Vec::with_capacity(len));
    let city_zipf = Zipf::new(CITIES.len() as f64, 1.2).map_err(|e| anyhow::anyhow!("{e}"))?;
    for id in 1..=n {
        let name = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        first.push(Some(Arc::<str>::from(name)));
        email.push(
            (rng.random_bool(0.9)).then(|| {
                Arc::<str>::from(format!("{}.{id}@example.com", name.to_ascii_lowercase()))
            }),
        );
        let c = city_zipf.sample(rng) as usize - 1;
        city.push(
            rng.random_bool(0.97)
                .then(|| Arc::<str>::from(CITIES[c.min(CITIES.len() - 1)])),
        );
        opt_in.push(Some(rng.random_bool(0.7)));
        unsub.push(Some(rng.random_bool(0.05)));
        let n_orders = if rng.random_bool(0.4) {
            0
        } else {
            rng.random_range(1..30)
        };
        orders.push(Some(n_orders));
        let total = if n_orders == 0 {
            0.0
        } else {
            (rng.random_range(10.0..200.0) * n_orders as f64 * 100.0_f64).round() / 100.0
        };
        spent.push(Some(total));
        points.push(Some((total / 10.0) as i64));
        tier.push(Some(Arc::<str>::from(match total {
            t if t > 3000.0 => "gold",
            t if t > 1000.0 => "silver",
            _ => "bronze",
        })));
        signup.push(Some(
            start - rng.random_range(1..(3 * 365 * 86_400_i64)) * 1_000_000,
        ));
        last_order.push(
            (n_orders > 0).then(|| start - rng.random_range(1..(180 * 86_400_i64)) * 1_000_000),
        );
        let k = rng.random_range(0..3);
        tags.push((k > 0).then(|| {
            let mut t: Vec<&str> = (0..k)
                .map(|_| TAGS[rng.random_range(0..TAGS.len())])
                .collect();
            t.sort_unstable();
            t.dedup();
            t.into_iter().map(Value::str).collect::<Arc<[Value]>>()
        }));
    }
    CustomerTable::new(
        schema,
        (1..=n).collect(),
        vec![
            Column::String(first),
            Column::String(email),
            Column::String(city),
            Column::Bool(opt_in),
            Column::Bool(unsub),
            Column::Int(points),
            Column::Int(orders),
            Column::Float(spent),
            Column::String(tier),
            Column::Timestamp(signup),
            Column::Timestamp(last_order),
            Column::Timestamp(vec![None; len]),
            Column::String(vec![None; len]),
            Column::StringList(tags),
        ],
    )
    .context("generated customer table is inconsistent")
}

fn write_events(
    rng: &mut ChaCha8Rng,
    spec: &GenSpec,
    start: i64,
    path: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file.file());
    let popularity = Zipf::new(spec.customers as f64, 1.05).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Customer popularity is Zipf over a shuffled rank → id map, so hot customers are spread
    // over the id space rather than being ids 1, 2, 3.
    let mut rank_to_id: Vec<u64> = (1..=spec.customers).collect();
    for i in (1..rank_to_id.len()).rev() {
        let j = rng.random_range(0..=i);
        rank_to_id.swap(i, j);
    }
    // Events spread over ~30 days.
    let span_us: i64 = 30 * 86_400 * 1_000_000;
    let step = (span_us / spec.events.max(1) as i64).max(1);
    let mut t = start;
    let mut next_new_customer = spec.customers + 1;
    for i in 0..spec.events {
        t += rng.random_range(0..=2 * step);
        let rank = popularity.sample(rng) as usize;
        let mut customer = rank_to_id[rank.clamp(1, rank_to_id.len()) - 1];
        let roll: f64 = rng.random();
        let (ty, process, props) = if roll < 0.30 {
            let total = (rng.random_range(5.0..400.0_f64) * 100.0).round() / 100.0;
            (
                "order.completed",
                None,
                serde_json::json!({"order_id": format!("o-{i}"), "total": total, "items": rng.random_range(1..8)}),
            )
        } else if roll < 0.45 {
            let value = (rng.random_range(5.0..300.0_f64) * 100.0).round() / 100.0;
            (
                "cart.abandoned",
                None,
                serde_json::json!({"value": value, "items": rng.random_range(1..6)}),
            )
        } else if roll < 0.82 {
            (
                "page.viewed",
                None,
                serde_json::json!({"url": PAGES[rng.random_range(0..PAGES.len())]}),
            )
        } else if roll < 0.85 {
            (
                "customer.registered",
                None,
                serde_json::json!({"channel": if rng.random_bool(0.6) { "web" } else { "app" }}),
            )
        } else {
            (
                "customer.updated",
                Some(quotas::CRM_SYNC),
                serde_json::json!({"fields": rng.random_range(1..12)}),
            )
        };
        let process = process.or_else(|| quotas::process_for(ty, rng));
        // Real feeds reference customers that are not (yet) in the customer file.
        if rng.random_bool(0.0005) {
            customer = next_new_customer;
            next_new_customer += 1;
        }
        let mut event = serde_json::json!({
            "id": format!("ev-{i:08}"),
            "customer_id": customer,
            "type": ty,
            "timestamp": format_timestamp(t),
            "properties": props,
        });
        if let (Some(p), Some(obj)) = (process, event.as_object_mut()) {
            obj.insert("process".into(), serde_json::Value::String(p.into()));
        }
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
        if i % 65_536 == 0 {
            progress.set_position(i);
        }
    }
    out.flush()?;
    drop(out);
    file.commit()?;
    progress.set_position(spec.events);
    Ok(())
}

fn triggers_yaml(spec: &GenSpec) -> String {
    // The VIP pool is sized to run dry part-way through the run, as real pools do.
    let vip_codes = (spec.events / 400).max(5);
    let welcome_codes = (spec.customers / 2).max(100);
    format!(
        r#"# Triggers for the generated workload (see README: "Triggers file").
version: 1
settings:
  max_chain_depth: 16
event_types:
  - order.completed
  - cart.abandoned
  - page.viewed
  - customer.registered
  - customer.updated
  - tier.upgraded
pools:
  - id: welcome10
    generate: {{ prefix: "WELCOME10-", count: {welcome_codes} }}
  - id: vip20
    generate: {{ prefix: "VIP20-", count: {vip_codes} }}
counters:
  - id: orders_total
  - id: revenue_total
    kind: float
triggers:
  - id: order-points
    owner: loyalty@shop.example
    on: order.completed
    priority: 10
    limits: {{ max_points: 100 }}
    actions:
      - award_points: {{ amount: "int(event.properties.total / 10.0)" }}
      - increment: {{ attribute: orders_count }}
      - increment: {{ attribute: total_spent, by: "event.properties.total" }}
      - set: {{ attribute: last_order_at, value: "event.timestamp" }}
      - increment: {{ counter: orders_total }}
      - increment: {{ counter: revenue_total, by: "event.properties.total" }}

  - id: vip-coupon
    owner: crm@shop.example
    on: order.completed
    priority: 20
    condition: "event.properties.total > 250.0 && customer.tier != 'gold'"
    limits: {{ max_effects: 2 }}
    actions:
      - issue_coupon: {{ pool: vip20, store_in: last_coupon }}
      - send_message:
          channel: sms
          template: vip-coupon
          args: {{ code: "coupon", name: "customer.first_name" }}

  - id: tier-upgrade
    owner: loyalty@shop.example
    on: order.completed
    priority: 30
    condition: "customer.points >= 1000 && customer.tier != 'gold'"
    actions:
      - set: {{ attribute: tier, value: "'gold'" }}
      - emit_event: {{ type: tier.upgraded, properties: {{ points: "customer.points" }} }}

  - id: gold-welcome
    owner: loyalty@shop.example
    on: tier.upgraded
    condition: "has(customer.email) && !customer.unsubscribed"
    actions:
      - send_message:
          channel: email
          template: gold-welcome
          args: {{ name: "customer.first_name", points: "event.properties.points" }}

  - id: cart-reminder
    owner: crm@shop.example
    on: cart.abandoned
    condition: "customer.email_opt_in && !customer.unsubscribed && event.properties.value > 20.0"
    actions:
      - start_feed:
          feed: abandoned-cart
          args: {{ value: "event.properties.value", items: "event.properties.items" }}

  - id: welcome
    owner: crm@shop.example
    on: customer.registered
    actions:
      - issue_coupon: {{ pool: welcome10 }}
      - award_points: {{ amount: "100" }}
      - send_message:
          channel: email
          template: welcome
          args: {{ code: "coupon", channel: "event.properties.channel" }}

  - id: crm-sync-stamp
    owner: data-team@shop.example
    on: customer.updated
    actions:
      - set: {{ attribute: synced_at, value: "now" }}

  - id: night-push
    owner: growth@shop.example
    on: page.viewed
    enabled: false
    condition: "now.getHours() >= 22 && event.properties.url == '/sale'"
    actions:
      - send_message: {{ channel: push, template: late-sale }}
"#
    )
}

/// The misbehaving pair `fusebox gen --runaway` adds: every page view starts a rescan that
/// emits another rescan — a loop of chained events cut at `max_chain_depth` (16) each time,
/// reported as a loop naming its cycle. Budgets are per hour of event time, scaled to the
/// workload's page-view rate to about a fifth of what the loop uses (hard budget twice
/// that): the governor throttles `page-rescan` (charged for the cascade it starts) after
/// the first hour — its page views past the allowance go to the slow lane — and stops it
/// after three; the other triggers are untouched.
fn runaway_yaml(spec: &GenSpec) -> String {
    // Events are spread over 30 days; 37% are page views.
    let page_views_per_hour = (spec.events as f64 * 0.37 / (30.0 * 24.0)).max(1.0);
    // The loop costs ~250 fuel a page view, charged to `page-rescan`, which starts it (its
    // cascade), and mostly to `rescan-loop`, which runs it. Both get about a fifth of that.
    let fuel = ((page_views_per_hour * 50.0) as u64).max(100);
    let hard = fuel * 2;
    format!(
        r#"
  # A misbehaving trigger (fusebox gen --runaway): a loop of chained events on every page
  # view. The governor throttles it, defers it to the slow lane, then stops it.
  - id: page-rescan
    owner: growth@shop.example
    on: page.viewed
    budget: {{ fuel: {fuel}, hard_fuel: {hard} }}
    actions:
      - emit_event: {{ type: page.rescan, properties: {{ url: "event.properties.url" }} }}

  - id: rescan-loop
    owner: growth@shop.example
    on: page.rescan
    budget: {{ fuel: {fuel}, hard_fuel: {hard} }}
    # Meant to stop at a rescanned page; every page has a url, so it never does.
    condition: "event.properties.url != ''"
    actions:
      - emit_event: {{ type: page.rescan, properties: {{ url: "event.properties.url" }} }}
"#
    )
}
