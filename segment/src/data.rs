//! The data a group is computed over: the customer table, the events grouped per type in a
//! customer-major layout, and version counters that key the sub-query cache.
//!
//! ## Event layout
//! Per event type, the *base* batch is sorted by `(row, timestamp)` with CSR offsets, so the
//! events of customer `r` are one contiguous slice and a whole-table aggregation is a single
//! sequential scan. Events appended later (incremental refresh) go to a small unsorted *tail*;
//! readers always see base + tail. Appending is a push per column and nothing else: whole-table
//! readers walk the tail in append order, and the row → tail-events index that row-wise
//! readers need is built on first use after a change (sorted `(row, index)` pairs, binary
//! searched), so a burst of appends never pays for a hash map of rows it may never read.
//! [`SegmentData::compact_events`] merges the tail into the base when it has grown.
//! Properties are stored column-wise per type: numbers as `f64` (NaN = absent; integers above
//! 2^53 lose precision), strings dictionary-encoded, booleans as bytes, anything mixed as
//! dynamic values.
//!
//! Events whose customer is not in the customer table are counted and ignored. Positions are
//! `u32`: at most 2^32 − 1 events per type and customers.
//!
//! ## Versions
//! Every attribute column and every event type carries a version, bumped by each change. A
//! cached sub-query result is keyed by its normalised form *and* the versions of the inputs it
//! reads, so after a change only the sub-queries that read changed inputs are recomputed.

mod columns;

use std::sync::{Arc, Mutex, OnceLock};

use fusebox_engine::customers::{AttrId, Column, CustomerTable, Row};
use fusebox_engine::event::Event;
use fusebox_engine::value::{AttrType, Value};
use polars::prelude::*;
use rustc_hash::FxHashMap;

/// Why event data could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A required column is missing or has an unusable type.
    #[error("events frame: {0}")]
    Frame(String),
    /// An attribute update names an unknown customer or attribute, or has the wrong type.
    #[error("attribute update: {0}")]
    Update(String),
    /// A new customer's id is already taken (or repeated), or the table would be too large.
    #[error("new customers: {0}")]
    NewCustomers(#[from] fusebox_engine::customers::TableError),
}

/// One event property, stored column-wise.
#[derive(Clone, Debug)]
pub enum PropColumn {
    /// Numbers; NaN marks "absent".
    Num(Vec<f64>),
    /// Dictionary-encoded strings; `u32::MAX` marks "absent".
    Str {
        /// Code per event.
        codes: Vec<u32>,
        /// Code → string.
        dict: Vec<Arc<str>>,
    },
    /// Booleans: 0, 1, or 2 for "absent".
    Bool(Vec<u8>),
    /// Anything else (mixed kinds).
    Any(Vec<Value>),
}

impl PropColumn {
    /// The value of event `i` (`Null` when absent).
    pub fn get(&self, i: usize) -> Value {
        match self {
            PropColumn::Num(v) => match v[i] {
                x if x.is_nan() => Value::Null,
                x => Value::Float(x),
            },
            PropColumn::Str { codes, dict } => match codes[i] {
                u32::MAX => Value::Null,
                c => Value::Str(dict[c as usize].clone()),
            },
            PropColumn::Bool(v) => match v[i] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => Value::Null,
            },
            PropColumn::Any(v) => v[i].clone(),
        }
    }

    fn len(&self) -> usize {
        match self {
            PropColumn::Num(v) => v.len(),
            PropColumn::Str { codes, .. } => codes.len(),
            PropColumn::Bool(v) => v.len(),
            PropColumn::Any(v) => v.len(),
        }
    }

    fn take(&self, order: &[u32]) -> PropColumn {
        match self {
            PropColumn::Num(v) => PropColumn::Num(order.iter().map(|&i| v[i as usize]).collect()),
            PropColumn::Str { codes, dict } => PropColumn::Str {
                codes: order.iter().map(|&i| codes[i as usize]).collect(),
                dict: dict.clone(),
            },
            PropColumn::Bool(v) => PropColumn::Bool(order.iter().map(|&i| v[i as usize]).collect()),
            PropColumn::Any(v) => {
                PropColumn::Any(order.iter().map(|&i| v[i as usize].clone()).collect())
            }
        }
    }

    /// Builds the tightest column for a list of dynamic values.
    fn from_values(values: Vec<Value>) -> PropColumn {
        let all = |f: fn(&Value) -> bool| values.iter().all(|v| v.is_null() || f(v));
        if all(|v| matches!(v, Value::Int(_) | Value::Float(_))) {
            return PropColumn::Num(
                values
                    .iter()
                    .map(|v| match *v {
                        Value::Int(i) => i as f64,
                        Value::Float(x) => x,
                        _ => f64::NAN,
                    })
                    .collect(),
            );
        }
        if all(|v| matches!(v, Value::Str(_))) {
            let mut index: FxHashMap<Arc<str>, u32> = FxHashMap::default();
            let mut dict = Vec::new();
            let codes = values
                .iter()
                .map(|v| match v {
                    Value::Str(s) => *index.entry(s.clone()).or_insert_with(|| {
                        dict.push(s.clone());
                        (dict.len() - 1) as u32
                    }),
                    _ => u32::MAX,
                })
                .collect();
            return PropColumn::Str { codes, dict };
        }
        if all(|v| matches!(v, Value::Bool(_))) {
            return PropColumn::Bool(
                values
                    .iter()
                    .map(|v| match v {
                        Value::Bool(b) => u8::from(*b),
                        _ => 2,
                    })
                    .collect(),
            );
        }
        PropColumn::Any(values)
    }
}

/// A batch of events of one type, column-wise.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Customer row per event.
    pub rows: Vec<Row>,
    /// Timestamp per event (µs, UTC).
    pub ts: Vec<i64>,
    /// Property columns, each as long as `rows`.
    pub props: FxHashMap<Arc<str>, PropColumn>,
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Property `name` of event `i` (`Null` when absent).
    pub fn prop(&self, name: &str, i: usize) -> Value {
        self.props.get(name).map_or(Value::Null, |c| c.get(i))
    }
}

/// All events of one type.
#[derive(Clone, Debug, Default)]
pub struct TypeEvents {
    /// Sorted by `(row, ts)`.
    pub base: Batch,
    /// `offsets[r]..offsets[r + 1]` are row `r`'s events in `base`.
    pub offsets: Vec<u32>,
    /// Events appended after the base was built (any order).
    pub tail: Batch,
    /// Row → indices into `tail`, built on first use after an append (see [`Self::tail_of`]).
    tail_index: OnceLock<TailIndex>,
    /// The base's events bucketed by time, built on first use (see [`Self::rows_between`]);
    /// the base never changes, so neither does this.
    time_index: OnceLock<TimeIndex>,
    /// Bumped by every change.
    pub version: u64,
}

/// The tail's events grouped by row: `(row, index)` pairs sorted by row, then index (so each
/// row's events stay in append order), split into two columns for binary search.
#[derive(Clone, Debug, Default)]
struct TailIndex {
    rows: Vec<Row>,
    idx: Vec<u32>,
}

impl TailIndex {
    fn build(tail: &Batch) -> TailIndex {
        let mut pairs: Vec<(Row, u32)> = tail
            .rows
            .iter()
            .enumerate()
            .map(|(i, &r)| (r, i as u32))
            .collect();
        // Pairs are distinct, so an unstable sort is deterministic.
        pairs.sort_unstable();
        let (rows, idx) = pairs.into_iter().unzip();
        TailIndex { rows, idx }
    }

    /// Row `r`'s tail indices, for rows visited in ascending order: the search gallops forward from
    /// `cursor` (where the previous row's events ended; start at 0), so a sorted walk over a
    /// few scattered rows touches nearby entries instead of binary-searching the whole index
    /// for each.
    fn of_from(&self, r: Row, cursor: &mut usize) -> &[u32] {
        let base = (*cursor).min(self.rows.len());
        let s = &self.rows[base..];
        let mut b = 1;
        while b <= s.len() && s[b - 1] < r {
            b *= 2;
        }
        let lo = b / 2;
        let first = lo + s[lo..b.min(s.len())].partition_point(|&x| x < r);
        let mut end = first;
        while end < s.len() && s[end] == r {
            end += 1;
        }
        *cursor = base + end;
        &self.idx[base + first..base + end]
    }
}

/// The base's events bucketed by timestamp: equal-width time buckets of about
/// [`TimeIndex::PER_BUCKET`] events on average, bucket `b` holding `ts[offsets[b]..offsets[b +
/// 1]]` with their customers in `rows`. Built by a counting sort — two sequential passes — and
/// 12 bytes per event plus 4 per bucket. A query reads the buckets it spans whole and looks
/// into the two at its edges: small buckets are filtered, and buckets above
/// [`TimeIndex::SORT_ABOVE`] events (skewed timestamps, or a few outliers that stretch every
/// bucket) are sorted by time at build and binary-searched, so the worst case is a sorted
/// index, not a scan per query.
#[derive(Clone, Debug, Default)]
struct TimeIndex {
    min: i64,
    max: i64,
    width: i128,
    offsets: Vec<u32>,
    ts: Vec<i64>,
    rows: Vec<Row>,
}

impl TimeIndex {
    /// Events per bucket, on average.
    const PER_BUCKET: usize = 32;
    /// Buckets with more events are sorted by time.
    const SORT_ABOVE: usize = 8 * Self::PER_BUCKET;

    fn build(base: &Batch) -> TimeIndex {
        let (min, max) = base
            .ts
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        if base.ts.is_empty() {
            return TimeIndex::default();
        }
        let buckets = (base.len() / Self::PER_BUCKET).max(1);
        let width = (i128::from(max) - i128::from(min)) / buckets as i128 + 1;
        let mut ix = TimeIndex {
            min,
            max,
            width,
            offsets: vec![0; buckets + 1],
            ts: vec![0; base.len()],
            rows: vec![0; base.len()],
        };
        for &t in &base.ts {
            let b = ix.bucket(t);
            ix.offsets[b + 1] += 1;
        }
        for b in 0..buckets {
            ix.offsets[b + 1] += ix.offsets[b];
        }
        let mut next = ix.offsets.clone();
        for (&t, &r) in base.ts.iter().zip(&base.rows) {
            let b = ix.bucket(t);
            let at = next[b] as usize;
            next[b] += 1;
            ix.ts[at] = t;
            ix.rows[at] = r;
        }
        let mut pairs: Vec<(i64, Row)> = Vec::new();
        for b in 0..buckets {
            let span = ix.offsets[b] as usize..ix.offsets[b + 1] as usize;
            if span.len() > Self::SORT_ABOVE {
                pairs.clear();
                pairs.extend(
                    ix.ts[span.clone()]
                        .iter()
                        .copied()
                        .zip(ix.rows[span.clone()].iter().copied()),
                );
                pairs.sort_unstable();
                for (k, (t, r)) in pairs.iter().enumerate() {
                    ix.ts[span.start + k] = *t;
                    ix.rows[span.start + k] = *r;
                }
            }
        }
        ix
    }

    /// The bucket of a timestamp inside `[min, max]`.
    fn bucket(&self, t: i64) -> usize {
        ((i128::from(t) - i128::from(self.min)) / self.width) as usize
    }

    /// Appends the rows of the events with `lo <= ts <= hi`.
    fn rows_between(&self, lo: i64, hi: i64, out: &mut Vec<Row>) {
        let (lo, hi) = (lo.max(self.min), hi.min(self.max));
        if lo > hi || self.ts.is_empty() {
            return;
        }
        let (first, last) = (self.bucket(lo), self.bucket(hi));
        for b in first..=last {
            let span = self.offsets[b] as usize..self.offsets[b + 1] as usize;
            if (b == first || b == last) && span.len() > Self::SORT_ABOVE {
                let ts = &self.ts[span.clone()];
                let from = ts.partition_point(|&t| t < lo);
                let to = ts.partition_point(|&t| t <= hi);
                out.extend_from_slice(&self.rows[span.start + from..span.start + to.max(from)]);
            } else if b == first || b == last {
                out.extend(
                    self.ts[span.clone()]
                        .iter()
                        .zip(&self.rows[span])
                        .filter(|(&t, _)| lo <= t && t <= hi)
                        .map(|(_, &r)| r),
                );
            } else {
                out.extend_from_slice(&self.rows[span]);
            }
        }
    }
}

impl TypeEvents {
    fn build(n_rows: usize, batch: Batch) -> TypeEvents {
        let mut order: Vec<u32> = (0..batch.len() as u32).collect();
        order.sort_by_key(|&i| (batch.rows[i as usize], batch.ts[i as usize]));
        let rows: Vec<Row> = order.iter().map(|&i| batch.rows[i as usize]).collect();
        let ts: Vec<i64> = order.iter().map(|&i| batch.ts[i as usize]).collect();
        let props = batch
            .props
            .iter()
            .map(|(k, c)| (k.clone(), c.take(&order)))
            .collect();
        let mut offsets = vec![0u32; n_rows + 1];
        for &r in &rows {
            offsets[r as usize + 1] += 1;
        }
        for i in 0..n_rows {
            offsets[i + 1] += offsets[i];
        }
        TypeEvents {
            base: Batch { rows, ts, props },
            offsets,
            tail: Batch::default(),
            tail_index: OnceLock::new(),
            time_index: OnceLock::new(),
            version: 0,
        }
    }

    /// Base range of row `r`.
    pub fn base_range(&self, r: Row) -> std::ops::Range<usize> {
        // A row outside the table this store was built for has no events (never a panic, even
        // if a store is paired with another customer table).
        match (
            self.offsets.get(r as usize),
            self.offsets.get(r as usize + 1),
        ) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// Tail indices of row `r`, in append order. The first call after an append sorts the
    /// tail's `(row, index)` pairs once (`O(t log t)` for `t` tail events); later calls are
    /// binary searches.
    pub fn tail_of(&self, r: Row) -> &[u32] {
        self.tail_of_from(r, &mut 0)
    }

    /// Appends to `out` the row of every event (base or tail) with `lo <= ts <= hi`, in no
    /// particular order and once per event (a row may repeat). The first call buckets the
    /// base's events by time once (a counting sort, `O(b)` for `b` base events, sequential;
    /// 12 bytes per event); every call then reads the buckets the range spans, filtering the
    /// two at its edges, plus a scan of the whole tail's timestamps (the tail holds the events
    /// appended since load or since [`SegmentData::compact_events`]).
    pub fn rows_between(&self, lo: i64, hi: i64, out: &mut Vec<Row>) {
        if lo > hi {
            return;
        }
        if !self.base.is_empty() {
            // `TimeIndex::build` must stay free of Rayon work: a worker waiting inside
            // `get_or_init` could otherwise pick up a task that needs this same lock
            // (rayon#592).
            self.time_index
                .get_or_init(|| TimeIndex::build(&self.base))
                .rows_between(lo, hi, out);
        }
        out.extend(
            self.tail
                .ts
                .iter()
                .zip(&self.tail.rows)
                .filter(|(&t, _)| lo <= t && t <= hi)
                .map(|(_, &r)| r),
        );
    }

    /// [`Self::tail_of`] for rows visited in strictly ascending order (`cursor` starts at 0
    /// and is carried from row to row): each lookup gallops forward from the previous one.
    pub fn tail_of_from(&self, r: Row, cursor: &mut usize) -> &[u32] {
        if self.tail.is_empty() {
            return &[];
        }
        self.tail_index
            .get_or_init(|| TailIndex::build(&self.tail))
            .of_from(r, cursor)
    }

    /// Base and tail merged into a new base, as if all the events had been loaded at once (a
    /// stable sort by `(row, ts)` keeps each row's equal-time events in arrival order); the
    /// version moves on.
    fn compacted(&self, n_rows: usize) -> TypeEvents {
        let (b, t) = (self.base.len(), self.tail.len());
        let mut rows = Vec::with_capacity(b + t);
        rows.extend_from_slice(&self.base.rows);
        rows.extend_from_slice(&self.tail.rows);
        let mut ts = Vec::with_capacity(b + t);
        ts.extend_from_slice(&self.base.ts);
        ts.extend_from_slice(&self.tail.ts);
        let mut names: Vec<&Arc<str>> = self
            .base
            .props
            .keys()
            .chain(self.tail.props.keys())
            .collect();
        names.sort();
        names.dedup();
        let props = names
            .into_iter()
            .map(|name| {
                let column = |batch: &Batch, n: usize| -> Vec<Value> {
                    match batch.props.get(name) {
                        Some(col) => (0..n).map(|i| col.get(i)).collect(),
                        None => vec![Value::Null; n],
                    }
                };
                let mut values = column(&self.base, b);
                values.extend(column(&self.tail, t));
                (name.clone(), PropColumn::from_values(values))
            })
            .collect();
        let mut te = TypeEvents::build(n_rows, Batch { rows, ts, props });
        te.version = self.version + 1;
        te
    }

    /// Number of events (base + tail).
    pub fn len(&self) -> usize {
        self.base.len() + self.tail.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for `k` more tail events.
    fn reserve(&mut self, k: usize) {
        self.tail.rows.reserve(k);
        self.tail.ts.reserve(k);
        for col in self.tail.props.values_mut() {
            if let PropColumn::Any(vals) = col {
                vals.reserve(k);
            }
        }
    }

    fn append(&mut self, row: Row, ts: i64, props: &fusebox_engine::value::Map) {
        let i = self.tail.len();
        self.tail.rows.push(row);
        self.tail.ts.push(ts);
        for (k, v) in props.entries() {
            let col = self
                .tail
                .props
                .entry(k.clone())
                .or_insert_with(|| PropColumn::Any(vec![Value::Null; i]));
            if let PropColumn::Any(vals) = col {
                vals.push(v.clone());
            }
        }
        for col in self.tail.props.values_mut() {
            if let PropColumn::Any(vals) = col {
                if vals.len() < i + 1 {
                    vals.push(Value::Null);
                }
            }
        }
        self.tail_index.take();
        self.version += 1;
    }
}

/// Events grouped by type (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct EventStore {
    types: FxHashMap<Arc<str>, TypeEvents>,
    n_rows: usize,
    /// Events ignored because their customer is not in the table.
    pub unknown_customers: usize,
}

impl EventStore {
    /// Groups parsed events (e.g. from [`fusebox_engine::io::events::read_events`]) for
    /// `customers`.
    pub fn from_events<'a>(
        customers: &CustomerTable,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> EventStore {
        let mut grouped: FxHashMap<Arc<str>, (Batch, Vec<&'a Event>)> = FxHashMap::default();
        let mut unknown = 0;
        for e in events {
            let Some(row) = customers.row_of(e.customer_id) else {
                unknown += 1;
                continue;
            };
            let (b, evs) = grouped.entry(e.event_type.clone()).or_default();
            b.rows.push(row);
            b.ts.push(e.timestamp);
            evs.push(e);
        }
        let n_rows = customers.len();
        let types = grouped
            .into_iter()
            .map(|(ty, (mut batch, evs))| {
                let mut names: Vec<Arc<str>> = evs
                    .iter()
                    .flat_map(|e| e.properties.entries().iter().map(|(k, _)| k.clone()))
                    .collect();
                names.sort();
                names.dedup();
                for name in names {
                    let values = evs
                        .iter()
                        .map(|e| e.properties.get(&name).cloned().unwrap_or(Value::Null))
                        .collect();
                    batch.props.insert(name, PropColumn::from_values(values));
                }
                (ty, TypeEvents::build(n_rows, batch))
            })
            .collect();
        EventStore {
            types,
            n_rows,
            unknown_customers: unknown,
        }
    }

    /// Builds the store from a Polars frame with columns `customer_id` (integer), `type`
    /// (string), `timestamp` (integer µs or datetime); every other numeric, string or boolean
    /// column is an event property (null = absent).
    pub fn from_frame(customers: &CustomerTable, df: &DataFrame) -> Result<EventStore, DataError> {
        let err = |e: PolarsError| DataError::Frame(e.to_string());
        let col = |name: &str| {
            df.column(name)
                .map(|c| c.as_materialized_series().clone())
                .map_err(|_| DataError::Frame(format!("missing column `{name}`")))
        };
        let ids = col("customer_id")?.cast(&DataType::UInt64).map_err(err)?;
        let ids = ids.u64().map_err(err)?;
        let ty = col("type")?;
        let ty = ty.str().map_err(err)?;
        let ts = col("timestamp")?;
        let ts = match ts.dtype() {
            DataType::Datetime(_, _) => ts
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .and_then(|s| s.cast(&DataType::Int64))
                .map_err(err)?,
            _ => ts.cast(&DataType::Int64).map_err(err)?,
        };
        let ts = ts.i64().map_err(err)?;
        // Per type: event indices in the frame.
        let mut per_type: FxHashMap<&str, Vec<(usize, Row)>> = FxHashMap::default();
        let mut unknown = 0;
        for (i, ((id, t), time)) in ids.iter().zip(ty.iter()).zip(ts.iter()).enumerate() {
            let (Some(id), Some(t), Some(_)) = (id, t, time) else {
                return Err(DataError::Frame(format!(
                    "row {}: customer_id, type and timestamp must not be null",
                    i + 1
                )));
            };
            match customers.row_of(id) {
                Some(row) => per_type.entry(t).or_default().push((i, row)),
                None => unknown += 1,
            }
        }
        let ts_vals: Vec<i64> = ts.iter().map(|t| t.unwrap_or(0)).collect();
        let mut prop_cols: Vec<(Arc<str>, PropColumn)> = Vec::new();
        for c in df.columns() {
            let name = c.name().as_str();
            if matches!(
                name,
                "customer_id" | "type" | "timestamp" | "id" | "process"
            ) {
                continue;
            }
            let s = c.as_materialized_series();
            let column = match s.dtype() {
                DataType::String => {
                    let values = s
                        .str()
                        .map_err(err)?
                        .iter()
                        .map(|v| v.map_or(Value::Null, Value::str))
                        .collect();
                    PropColumn::from_values(values)
                }
                DataType::Boolean => PropColumn::Bool(
                    s.bool()
                        .map_err(err)?
                        .iter()
                        .map(|v| v.map_or(2, u8::from))
                        .collect(),
                ),
                d if d.is_primitive_numeric() => {
                    let f = s.cast(&DataType::Float64).map_err(err)?;
                    PropColumn::Num(
                        f.f64()
                            .map_err(err)?
                            .iter()
                            .map(|v| v.unwrap_or(f64::NAN))
                            .collect(),
                    )
                }
                other => {
                    return Err(DataError::Frame(format!(
                        "property column `{name}` has unsupported type {other}"
                    )))
                }
            };
            prop_cols.push((Arc::from(name), column));
        }
        let n_rows = customers.len();
        let types = per_type
            .into_iter()
            .map(|(t, idx)| {
                let order: Vec<u32> = idx.iter().map(|&(i, _)| i as u32).collect();
                let batch = Batch {
                    rows: idx.iter().map(|&(_, r)| r).collect(),
                    ts: idx.iter().map(|&(i, _)| ts_vals[i]).collect(),
                    props: prop_cols
                        .iter()
                        .filter_map(|(k, c)| {
                            let taken = c.take(&order);
                            // A column that is all-absent for this type is not a property of it.
                            let present = (0..taken.len()).any(|i| !taken.get(i).is_null());
                            present.then(|| (k.clone(), taken))
                        })
                        .collect(),
                };
                (Arc::from(t), TypeEvents::build(n_rows, batch))
            })
            .collect();
        Ok(EventStore {
            types,
            n_rows,
            unknown_customers: unknown,
        })
    }

    /// The events of one type, if any.
    pub fn of_type(&self, ty: &str) -> Option<&TypeEvents> {
        self.types.get(ty)
    }

    /// All event types present, sorted.
    pub fn types(&self) -> Vec<Arc<str>> {
        let mut t: Vec<Arc<str>> = self.types.keys().cloned().collect();
        t.sort();
        t
    }

    /// The customer table grew to `n_rows`: new rows have no events yet. The version of every
    /// stored type is bumped, since results over all rows (a negated event leaf) now cover
    /// more rows; types with no events at all have no version to bump, which is why the
    /// engine's cache key also carries the number of customers.
    fn grow(&mut self, n_rows: usize) {
        self.n_rows = n_rows;
        for t in self.types.values_mut() {
            t.version += 1;
        }
    }

    /// Merges every type's tail into its base (see [`SegmentData::compact_events`]).
    fn compact(&mut self) {
        let n_rows = self.n_rows;
        for te in self.types.values_mut() {
            if !te.tail.is_empty() {
                *te = te.compacted(n_rows);
            }
        }
    }

    /// Version of an event type's data (0 for absent types).
    pub fn version(&self, ty: &str) -> u64 {
        self.types.get(ty).map_or(0, |t| t.version)
    }

    /// Total number of stored events.
    pub fn len(&self) -> usize {
        self.types.values().map(TypeEvents::len).sum()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one event (to the tail of its type); `false` if its customer is unknown.
    pub fn append(&mut self, customers: &CustomerTable, e: &Event) -> Option<Row> {
        let row = customers.row_of(e.customer_id)?;
        self.append_row(row, e);
        Some(row)
    }

    /// Appends events whose customer rows are already known, in order. Room for each existing
    /// type's share is reserved up front in its tail's rows, timestamps and known property
    /// columns, so a large batch grows them at most once instead of copying as it goes.
    pub fn append_rows(&mut self, events: &[(Row, &Event)]) {
        let mut per_type: FxHashMap<&Arc<str>, usize> = FxHashMap::default();
        for (_, e) in events {
            *per_type.entry(&e.event_type).or_default() += 1;
        }
        for (ty, k) in per_type {
            if let Some(t) = self.types.get_mut(ty) {
                t.reserve(k);
            }
        }
        for &(row, e) in events {
            self.append_row(row, e);
        }
    }

    /// Appends an event whose customer row is already known.
    pub fn append_row(&mut self, row: Row, e: &Event) {
        match self.types.get_mut(&e.event_type) {
            Some(t) => t.append(row, e.timestamp, &e.properties),
            None => {
                let mut t = TypeEvents::build(self.n_rows, Batch::default());
                t.append(row, e.timestamp, &e.properties);
                self.types.insert(e.event_type.clone(), t);
            }
        }
    }
}

/// Where a [`SegmentData`] stands (see [`SegmentData::state`]): one value's states are equal
/// only if no change happened in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataState {
    pub(crate) rows: usize,
    changes: u64,
}

/// Customers and events, plus the per-column Polars series the column kernels read.
#[derive(Debug)]
pub struct SegmentData {
    customers: CustomerTable,
    /// Events grouped per type (read-only outside the crate: [`Self::events`]; changes go
    /// through the methods, which count them for [`Self::state`]).
    pub(crate) events: EventStore,
    attr_versions: Vec<u64>,
    /// Changes made so far ([`Self::state`]).
    changes: u64,
    series: Vec<Mutex<Option<(u64, Series)>>>,
}

impl SegmentData {
    /// Bundles customers and events.
    pub fn new(customers: CustomerTable, events: EventStore) -> SegmentData {
        let n = customers.schema().len();
        SegmentData {
            customers,
            events,
            attr_versions: vec![0; n],
            changes: 0,
            series: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The customer table.
    pub fn customers(&self) -> &CustomerTable {
        &self.customers
    }

    /// Number of customers (the universe of every segment).
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// Where the data stands: the number of changes made to it so far (every `&mut self`
    /// method counts; outside this crate the event store is read-only) and its number of
    /// customers. A result records the state it was computed over, and refreshing it requires
    /// the data to be still there (see [`crate::exec::SegmentError::Stale`]). Two
    /// `SegmentData` built the same way and changed the same way have equal states.
    pub fn state(&self) -> DataState {
        DataState {
            rows: self.len(),
            changes: self.changes,
        }
    }

    /// The events, grouped per type.
    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// Version of an attribute column.
    pub fn attr_version(&self, attr: AttrId) -> u64 {
        self.attr_versions[usize::from(attr)]
    }

    /// Sets one attribute of one customer (type-checked); bumps the column's version.
    pub fn set_attribute(
        &mut self,
        customer: u64,
        name: &str,
        value: Value,
    ) -> Result<Row, DataError> {
        let row = self
            .customers
            .row_of(customer)
            .ok_or_else(|| DataError::Update(format!("unknown customer {customer}")))?;
        let (attr, ty) = self
            .customers
            .schema()
            .attr(name)
            .ok_or_else(|| DataError::Update(format!("unknown attribute `{name}`")))?;
        if !ty.accepts(&value) || !self.customers.set(row, attr, value.clone()) {
            return Err(DataError::Update(format!(
                "`{name}` is {ty}, cannot store {} ({value})",
                value.kind()
            )));
        }
        self.attr_versions[usize::from(attr)] += 1;
        self.changes += 1;
        Ok(row)
    }

    /// Applies resolved attribute updates and new events (with their rows) — the two halves
    /// touch disjoint data, so they run in parallel (`rayon::join`, on the caller's pool).
    pub fn apply(&mut self, updates: &[(Row, AttrId, &Value)], events: &[(Row, &Event)]) {
        self.changes += 1;
        let SegmentData {
            customers,
            events: store,
            attr_versions,
            ..
        } = self;
        rayon::join(
            || {
                for &(row, attr, value) in updates {
                    let _ = customers.set(row, attr, value.clone());
                    attr_versions[usize::from(attr)] += 1;
                }
            },
            || {
                store.append_rows(events);
            },
        );
    }

    /// Appends customers (every attribute null) and returns their rows; all-or-nothing (see
    /// [`CustomerTable::push_customers`]). Every column's version is bumped (the columns grew),
    /// and the event store addresses the new rows (they have no events until some are
    /// appended).
    pub fn add_customers(&mut self, ids: &[u64]) -> Result<std::ops::Range<Row>, DataError> {
        if ids.is_empty() {
            let n = self.len() as Row;
            return Ok(n..n);
        }
        let rows = self.customers.push_customers(ids)?;
        self.changes += 1;
        for v in &mut self.attr_versions {
            *v += 1;
        }
        self.events.grow(self.customers.len());
        Ok(rows)
    }

    /// Sets one attribute of one row whose type was already checked (`attr.accepts(value)`);
    /// bumps the column's version. A mistyped value is ignored (and the version still bumps, so
    /// no stale cache entry survives).
    pub fn set_row(&mut self, row: Row, attr: AttrId, value: Value) {
        let _ = self.customers.set(row, attr, value);
        self.attr_versions[usize::from(attr)] += 1;
        self.changes += 1;
    }

    /// The Polars series of an attribute column (built on first use per version; NaN floats
    /// become null, timestamps are their `i64` microseconds). `None` for string lists, which
    /// the column kernels read natively.
    pub fn series(&self, attr: AttrId) -> Option<Series> {
        let version = self.attr_version(attr);
        let slot = &self.series[usize::from(attr)];
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, s)) = guard.as_ref() {
            if *v == version {
                return Some(s.clone());
            }
        }
        let name: PlSmallStr = self.customers.schema().name(attr).into();
        let s = match &self.customers.columns()[usize::from(attr)] {
            Column::Int(v) | Column::Timestamp(v) => Series::new(name, v.as_slice()),
            Column::Float(v) => Series::new(
                name,
                v.iter()
                    .map(|x| x.filter(|x| !x.is_nan()))
                    .collect::<Vec<_>>(),
            ),
            Column::Bool(v) => Series::new(name, v.as_slice()),
            Column::String(v) => Series::new(
                name,
                v.iter()
                    .map(|s| s.as_deref())
                    .collect::<Vec<Option<&str>>>(),
            ),
            Column::StringList(_) => return None,
        };
        *guard = Some((version, s.clone()));
        Some(s)
    }

    /// Merges the events appended since load (each type's tail, which refreshes append to and
    /// never merge) into the customer-major base, as if all of them had been loaded at once
    /// (numbers, as on load, are stored as `f64`).
    ///
    /// For long-running embeddings: the tail is scanned by as-of refreshes and re-indexed after
    /// every append, so it should not grow without bound. Compacting is a change like any other
    /// — results computed before it are refused by refresh ([`crate::exec::SegmentError::Stale`])
    /// — so compact between a refresh and the next full computation. Cost: rebuilding each
    /// type that has a tail, `O(n log n)` in its events.
    pub fn compact_events(&mut self) {
        self.changes += 1;
        self.events.compact();
    }

    /// Appends an event (incremental refresh); `None` if its customer is not in the table.
    pub fn append_event(&mut self, e: &Event) -> Option<Row> {
        self.changes += 1;
        self.events.append(&self.customers, e)
    }

    /// The type of an attribute.
    pub fn attr_type(&self, attr: AttrId) -> AttrType {
        self.customers.schema().ty(attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_engine::value::Map;

    #[test]
    fn tail_lookups_from_a_cursor_equal_plain_lookups() {
        let mut te = TypeEvents::build(50, Batch::default());
        let none = Map::default();
        // Rows with no, one and many tail events, appended out of order.
        for (i, r) in [7u32, 3, 7, 40, 3, 3, 12, 49, 7, 0, 40]
            .into_iter()
            .enumerate()
        {
            te.append(r, i as i64, &none);
        }
        // Ascending walks (dense and sparse), then a descending one (the cursor resets).
        for walk in [
            (0..50).collect::<Vec<Row>>(),
            vec![3, 12, 49],
            vec![1, 2, 40],
            vec![49, 7, 3, 0],
        ] {
            let (mut cursor, mut prev) = (0usize, 0 as Row);
            for r in walk {
                if r < prev {
                    cursor = 0;
                }
                prev = r;
                assert_eq!(te.tail_of_from(r, &mut cursor), te.tail_of(r), "row {r}");
            }
        }
        assert_eq!(te.tail_of(7), &[0, 2, 8]);
    }

    #[test]
    fn the_time_index_answers_like_a_scan() {
        // Clustered, repeated and extreme timestamps: buckets of very different sizes.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut ts = Vec::new();
        for i in 0..3000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ts.push(match i % 5 {
                0 => (x % 1000) as i64,
                1 => 500,
                2 => 1_000_000 + (x % 50) as i64,
                3 => -((x % 7) as i64),
                _ => (x as i64) >> (x % 60),
            });
        }
        // Outliers stretch every bucket: most events share one, which is sorted.
        ts.extend([i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1]);
        let rows: Vec<Row> = (0..ts.len() as Row).collect();
        let base = Batch {
            rows: rows.clone(),
            ts: ts.clone(),
            props: FxHashMap::default(),
        };
        let ix = TimeIndex::build(&base);
        let bounds = [
            i64::MIN,
            i64::MIN + 1,
            -7,
            -1,
            0,
            1,
            499,
            500,
            501,
            999,
            1_000_000,
            1_000_049,
            i64::MAX - 1,
            i64::MAX,
        ];
        for &lo in &bounds {
            for &hi in &bounds {
                let mut got = Vec::new();
                ix.rows_between(lo, hi, &mut got);
                got.sort_unstable();
                let want: Vec<Row> = rows
                    .iter()
                    .copied()
                    .filter(|&r| lo <= ts[r as usize] && ts[r as usize] <= hi)
                    .collect();
                assert_eq!(got, want, "[{lo}, {hi}]");
            }
        }
        let mut none = Vec::new();
        TimeIndex::build(&Batch::default()).rows_between(i64::MIN, i64::MAX, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn rows_between_finds_base_and_tail_events_with_inclusive_bounds() {
        let base = Batch {
            rows: vec![0, 0, 1, 2],
            ts: vec![10, 20, 15, 30],
            props: FxHashMap::default(),
        };
        let mut te = TypeEvents::build(4, base);
        te.append(3, 20, &Map::default());
        let between = |lo, hi| {
            let mut rows = Vec::new();
            te.rows_between(lo, hi, &mut rows);
            rows.sort_unstable();
            rows
        };
        assert_eq!(between(15, 20), vec![0, 1, 3]);
        assert_eq!(between(16, 29), vec![0, 3]);
        assert_eq!(between(31, 40), Vec::<Row>::new());
        assert_eq!(between(20, 10), Vec::<Row>::new());
        assert_eq!(between(i64::MIN, i64::MAX), vec![0, 0, 1, 2, 3]);
    }
}
