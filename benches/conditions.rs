//! Compiled trigger conditions vs the `cel` crate's interpreter, on the same expressions and data.
//!
//! Workload: 1,000 (customer, event) pairs drawn deterministically from a table of 1,000
//! customers with 8 typed attributes (first name, email — null for every fourth customer —
//! city, tier, points, unsubscribed, spent, tags) and `order` events carrying a float `total`.
//! One iteration evaluates these 5 expressions on every pair (5,000 evaluations):
//!
//! 1. `event.properties.total > 250.0 && customer.tier != 'gold'`
//! 2. `customer.points >= 1000 && customer.city in ['Berlin', 'Paris']`
//! 3. `has(customer.email) && !customer.unsubscribed`
//! 4. `int(event.properties.total / 10.0)`
//! 5. `customer.first_name.startsWith('A') || customer.tags.exists(t, t.endsWith('-vip'))`
//!
//! Contenders (`conditions/<name>` in criterion's output):
//! - `fusebox-compiled`: [`CompiledExpr::compile`] once per expression; per pair a
//!   [`Scope`] that reads attributes straight from the typed [`CustomerTable`] columns, and
//!   `eval` of the 5 expressions. No per-evaluation map is built.
//! - `cel-context-per-event`: what a user of `cel` 0.15 writes: `Env::stdlib()` and
//!   `Program::compile` once; per pair a `Context::with_env` holding `customer` (a map of the
//!   row's non-null attributes, so that `has()` means "is set" as in Fusebox), `event` (id,
//!   type, customer id, timestamp, properties) and `now`, shared by the 5 `execute` calls.
//!   This is the interpreter's best realistic case.
//! - `cel-context-per-expression`: the same, but a fresh context for every evaluation, as
//!   when each trigger evaluates its condition on its own.
//!
//! The `cel` side receives its two timestamps (`now`, `event.timestamp`) already converted
//! during setup, because this crate does not depend on `chrono`; that conversion (a few ns)
//! is thereby left out of the interpreter's time, in its favour.
//!
//! Before anything is timed, every expression is evaluated on every pair by both sides and the
//! results are asserted equal (and not degenerate: each condition is true for some pairs and
//! false for others), so the two sides cannot silently do different work. After the run the
//! medians and the ratio are printed (from criterion's saved estimates).
//!
//! Target (issue 3): compiled ≥ 10× faster than the interpreter.
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench --bench conditions` (add `-- --quick` for a
//! shorter run).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, Throughput};
use fusebox::engine::customers::{AttrId, Column, CustomerTable, Row, Schema};
use fusebox::engine::event::Event;
use fusebox::engine::expr::{CompiledExpr, CounterId, EvalError, ExprEnv, Scope};
use fusebox::engine::value::{format_timestamp, AttrType, Map, Value};

const PAIRS: usize = 1_000;
const CUSTOMERS: usize = 1_000;
const GROUP: &str = "conditions";

const EXPRESSIONS: [&str; 5] = [
    "event.properties.total > 250.0 && customer.tier != 'gold'",
    "customer.points >= 1000 && customer.city in ['Berlin', 'Paris']",
    "has(customer.email) && !customer.unsubscribed",
    "int(event.properties.total / 10.0)",
    "customer.first_name.startsWith('A') || customer.tags.exists(t, t.endsWith('-vip'))",
];

/// The shared data both sides evaluate over.
struct Workload {
    table: CustomerTable,
    events: Vec<Event>,
    /// The customer row of each event.
    rows: Vec<Row>,
    /// Each event's timestamp as the `cel` crate's type, converted once.
    cel_timestamps: Vec<cel::Value>,
}

/// Deterministic xorshift, so every run benchmarks the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

impl Workload {
    fn new() -> Workload {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let schema = Schema::new([
            ("first_name".to_string(), AttrType::String),
            ("email".to_string(), AttrType::String),
            ("city".to_string(), AttrType::String),
            ("tier".to_string(), AttrType::String),
            ("points".to_string(), AttrType::Int),
            ("unsubscribed".to_string(), AttrType::Bool),
            ("spent".to_string(), AttrType::Float),
            ("tags".to_string(), AttrType::StringList),
        ])
        .expect("distinct attribute names");
        let names = ["Anna", "Ben", "Alex", "Chloé", "Dmitri", "Aiko", "Eve"];
        let domains = ["example.com", "mail.de", "shop.example"];
        let cities = ["Berlin", "Paris", "London", "Madrid", "Rome"];
        let tiers = ["bronze", "silver", "gold"];
        let tags = ["newsletter", "gold-vip", "mobile", "beta-vip", "outlet"];
        let (mut first, mut email, mut city, mut tier) = (vec![], vec![], vec![], vec![]);
        let (mut points, mut unsub, mut spent, mut tag_lists) = (vec![], vec![], vec![], vec![]);
        for i in 0..CUSTOMERS {
            let name = rng.pick(&names);
            first.push(Some(Arc::from(name)));
            email.push(
                (i % 4 != 0).then(|| {
                    Arc::from(format!("{}{i}@{}", name.to_lowercase(), rng.pick(&domains)))
                }),
            );
            city.push(Some(Arc::from(rng.pick(&cities))));
            tier.push(Some(Arc::from(rng.pick(&tiers))));
            points.push(Some((rng.next() % 2_000) as i64));
            unsub.push(Some(rng.next() % 5 == 0));
            spent.push(Some((rng.next() % 100_000) as f64 / 100.0));
            let n = (rng.next() % 3) as usize;
            let list: Vec<Value> = (0..n).map(|_| Value::str(rng.pick(&tags))).collect();
            tag_lists.push(Some(Arc::from(list)));
        }
        let table = CustomerTable::new(
            schema,
            (1..=CUSTOMERS as u64).collect(),
            vec![
                Column::String(first),
                Column::String(email),
                Column::String(city),
                Column::String(tier),
                Column::Int(points),
                Column::Bool(unsub),
                Column::Float(spent),
                Column::StringList(tag_lists),
            ],
        )
        .expect("columns match the schema");

        let start = 1_772_366_400_000_000; // 2026-03-01T12:00:00Z
        let mut events = Vec::with_capacity(PAIRS);
        let mut rows = Vec::with_capacity(PAIRS);
        let mut cel_timestamps = Vec::with_capacity(PAIRS);
        for i in 0..PAIRS {
            let row = (rng.next() % CUSTOMERS as u64) as Row;
            let timestamp = start + i as i64 * 1_000_003;
            let total = (rng.next() % 50_000) as f64 / 100.0;
            events.push(Event {
                id: Arc::from(format!("e{i}")),
                customer_id: table.id_at(row),
                event_type: Arc::from("order"),
                timestamp,
                process: None,
                properties: Arc::new(Map::from_entries([(
                    Arc::from("total"),
                    Value::Float(total),
                )])),
            });
            rows.push(row);
            cel_timestamps.push(cel::Value::Timestamp(
                format_timestamp(timestamp)
                    .parse()
                    .expect("format_timestamp writes RFC 3339"),
            ));
        }
        Workload {
            table,
            events,
            rows,
            cel_timestamps,
        }
    }
}

/// Fusebox's side: a scope over one row of the typed table and one event.
struct RowScope<'a> {
    table: &'a CustomerTable,
    row: Row,
    event: &'a Event,
}

impl Scope for RowScope<'_> {
    fn attr(&mut self, attr: AttrId) -> Result<Value, EvalError> {
        Ok(self.table.get(self.row, attr))
    }
    fn counter(&mut self, _: CounterId) -> Result<Value, EvalError> {
        Err(EvalError::NoSuchKey(
            "counters are not part of this workload".into(),
        ))
    }
    fn event(&self) -> &Event {
        self.event
    }
    fn coupon(&self) -> Option<Value> {
        None
    }
}

fn compile_fusebox(schema: &Schema) -> Vec<CompiledExpr> {
    let counters = Default::default();
    let env = ExprEnv {
        schema,
        counters: &counters,
        coupon_available: false,
        lenient_customer: false,
    };
    EXPRESSIONS
        .iter()
        .map(|src| CompiledExpr::compile(src, &env).unwrap_or_else(|e| panic!("{src}: {e}")))
        .collect()
}

fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Int(i) => cel::Value::Int(*i),
        Value::Uint(u) => cel::Value::UInt(*u),
        Value::Float(x) => cel::Value::Float(*x),
        Value::Str(s) => cel::Value::from(&**s),
        Value::List(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Map(m) => map_to_cel(m),
        Value::Timestamp(_) | Value::Duration(_) => {
            panic!("this workload converts timestamps during setup")
        }
    }
}

fn map_to_cel(m: &Map) -> cel::Value {
    let entries: HashMap<&str, cel::Value> = m
        .entries()
        .iter()
        .map(|(k, v)| (k.as_ref(), to_cel(v)))
        .collect();
    cel::Value::from(entries)
}

/// The interpreter's variables for one pair, built from the same typed data.
fn cel_context<'c>(env: &Arc<cel::Env>, w: &Workload, i: usize) -> cel::Context<'c, 'c> {
    let row = w.rows[i];
    let event = &w.events[i];
    let schema = w.table.schema();
    let mut customer: HashMap<&str, cel::Value> = HashMap::with_capacity(schema.len());
    for (attr, name, _) in schema.iter() {
        let value = w.table.get(row, attr);
        if !value.is_null() {
            customer.insert(name, to_cel(&value));
        }
    }
    let ts = w.cel_timestamps[i].clone();
    let event_value: HashMap<&str, cel::Value> = HashMap::from([
        ("id", cel::Value::from(&*event.id)),
        ("type", cel::Value::from(&*event.event_type)),
        ("customer_id", cel::Value::Int(event.customer_id as i64)),
        ("timestamp", ts.clone()),
        ("properties", map_to_cel(&event.properties)),
    ]);
    let mut ctx = cel::Context::with_env(env.clone());
    ctx.add_variable_from_value("customer", customer);
    ctx.add_variable_from_value("event", event_value);
    ctx.add_variable_from_value("now", ts);
    ctx
}

/// Evaluates everything on both sides and panics on any difference, or on data that would make
/// the comparison meaningless.
fn assert_same_results(
    w: &Workload,
    compiled: &[CompiledExpr],
    env: &Arc<cel::Env>,
    programs: &[cel::Program],
) {
    let mut trues = [0usize; EXPRESSIONS.len()];
    let mut bools = [0usize; EXPRESSIONS.len()];
    for i in 0..PAIRS {
        let mut scope = RowScope {
            table: &w.table,
            row: w.rows[i],
            event: &w.events[i],
        };
        let ctx = cel_context(env, w, i);
        for (k, (expr, program)) in compiled.iter().zip(programs).enumerate() {
            let ours = expr
                .eval(&mut scope)
                .unwrap_or_else(|e| panic!("fusebox: `{}` on pair {i}: {e}", EXPRESSIONS[k]));
            let theirs = program
                .execute(&ctx)
                .unwrap_or_else(|e| panic!("cel: `{}` on pair {i}: {e:?}", EXPRESSIONS[k]));
            assert_eq!(
                to_cel(&ours),
                theirs,
                "`{}` differs on pair {i}",
                EXPRESSIONS[k]
            );
            if let Value::Bool(b) = ours {
                bools[k] += 1;
                trues[k] += usize::from(b);
            }
        }
    }
    for (k, src) in EXPRESSIONS.iter().enumerate() {
        if bools[k] > 0 {
            assert!(
                trues[k] > 0 && trues[k] < PAIRS,
                "`{src}` is true for {} of {PAIRS} pairs: a degenerate workload",
                trues[k]
            );
        }
    }
}

fn bench(c: &mut Criterion, w: &Workload) {
    let compiled = compile_fusebox(w.table.schema());
    let env = Arc::new(cel::Env::stdlib());
    let programs: Vec<cel::Program> = EXPRESSIONS
        .iter()
        .map(|src| cel::Program::compile(src).unwrap_or_else(|e| panic!("{src}: {e}")))
        .collect();
    assert_same_results(w, &compiled, &env, &programs);

    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements((PAIRS * EXPRESSIONS.len()) as u64));
    group.bench_function("fusebox-compiled", |b| {
        b.iter(|| {
            for i in 0..PAIRS {
                let mut scope = RowScope {
                    table: &w.table,
                    row: w.rows[i],
                    event: &w.events[i],
                };
                for expr in &compiled {
                    let _ = black_box(expr.eval(&mut scope));
                }
            }
        })
    });
    group.bench_function("cel-context-per-event", |b| {
        b.iter(|| {
            for i in 0..PAIRS {
                let ctx = cel_context(&env, w, i);
                for program in &programs {
                    let _ = black_box(program.execute(&ctx));
                }
            }
        })
    });
    group.bench_function("cel-context-per-expression", |b| {
        b.iter(|| {
            for i in 0..PAIRS {
                for program in &programs {
                    let ctx = cel_context(&env, w, i);
                    let _ = black_box(program.execute(&ctx));
                }
            }
        })
    });
    group.finish();
}

/// Where criterion keeps its estimates (the same rules criterion applies, minus `cargo metadata`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
    }
}

/// The median (ns per iteration) criterion saved for `function` during this run, if any.
fn median_ns(function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(GROUP)
        .join(function)
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn report(since: SystemTime) {
    let ours = median_ns("fusebox-compiled", since);
    let Some(ours) = ours else {
        println!("(no fresh criterion estimates: medians and ratios not reported)");
        return;
    };
    let per_eval = |ns: f64| ns / (PAIRS * EXPRESSIONS.len()) as f64;
    println!(
        "\nmedians, {PAIRS} pairs x {} expressions per iteration:",
        EXPRESSIONS.len()
    );
    println!(
        "  fusebox-compiled            {:>10.1} us/iter  {:>7.1} ns/eval",
        ours / 1e3,
        per_eval(ours)
    );
    for other in ["cel-context-per-event", "cel-context-per-expression"] {
        if let Some(theirs) = median_ns(other, since) {
            println!(
                "  {other:<27} {:>10.1} us/iter  {:>7.1} ns/eval  compiled is {:.1}x faster",
                theirs / 1e3,
                per_eval(theirs),
                theirs / ours
            );
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let workload = Workload::new();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &workload);
    c.final_summary();
    report(since);
}
