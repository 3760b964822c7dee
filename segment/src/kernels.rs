//! Leaf kernels: one predicate over the whole table (or over a set of rows) into a bitmap.
//!
//! - **Attribute predicates** run as Polars column kernels (`equal`, `gt`, `is_null`,
//!   `contains_literal`, …) over the cached series of [`SegmentData::series`]; the resulting
//!   three-valued boolean column becomes the TRUE set, or the FALSE set for a negated leaf
//!   (see [`crate::model`] for the semantics). String lists have no Polars kernel in the
//!   feature set we build with, so they are scanned natively.
//! - **Event predicates** read a shared per-customer [`Aggregate`] (count, sums, first/last
//!   time) computed once per distinct (type, property filters, window) in a single sequential
//!   scan over the customer-major event layout of [`crate::data`]. This *is* the group-by
//!   over the events table, specialised: the events are grouped by customer once, on load
//!   (sorted into CSR order per type), so each aggregate is a linear pass that writes
//!   row-aligned arrays — no hash table per aggregate and no join back to the customer rows
//!   before a bitmap can be built. The Polars `group_by(customer_id).agg(..)` + join that a user
//!   would write is the baseline of `benches/segments.rs`; the specialised scan is what lets the
//!   whole group beat it several times over, and what makes carrying aggregates from one
//!   refresh to the next ([`aggregate_add_delta`]) possible.
//! - The `*_rows` variants evaluate only the given rows, row by row; incremental refresh uses
//!   them for the customers that changed.
//!
//! ## Polars' thread pool
//! Every kernel here is called from a worker of Fusebox's own Rayon pool. Polars 0.55 routes
//! its internal parallelism through `polars_core::runtime::RAYON`, which uses Polars' global
//! pool from any ordinary thread, ours included. The kernels we call — elementwise comparisons,
//! null masks, casts and `contains_literal` over the single-chunk series of
//! [`SegmentData::series`] — do not parallelise internally, so computing a group never starts
//! or enters Polars' pool: the engine's workers are the only threads working, and parallelism
//! comes from running many leaves at once, not from inside a leaf (`tests/pools.rs` checks the
//! process's threads for Polars' workers, and that it would see them). Should a future kernel
//! use Polars' pool, the calling worker would wait in a cross-pool `install` while Polars'
//! workers run the job; Polars' tasks never call back into our pool, so there is no cycle of
//! waits (the shape of the deadlocks in polars #22135 / #19751), only, for the length of that
//! kernel, more threads than cores.

use fusebox_engine::customers::{Column, Row};
use fusebox_engine::value::Value;
use polars::prelude::*;
use roaring::RoaringBitmap;

use crate::data::{Batch, PropColumn, SegmentData, TypeEvents};
use crate::model::{AttrPred, CmpOp, EventTest, PropPred, Scalar, ValueOp, Window};

/// A dense bit set that becomes a roaring bitmap in one go (`from_lsb0_bytes` builds whole
/// containers; pushing rows one at a time costs several times more).
pub struct Bits {
    bytes: Vec<u8>,
}

impl Bits {
    /// An empty set over rows `0..n`.
    pub fn new(n: usize) -> Bits {
        Bits {
            bytes: vec![0; n.div_ceil(8)],
        }
    }

    /// Adds row `i`.
    #[inline]
    pub fn set(&mut self, i: usize) {
        self.bytes[i / 8] |= 1 << (i % 8);
    }

    /// The roaring bitmap of the set rows.
    pub fn into_bitmap(self) -> RoaringBitmap {
        RoaringBitmap::from_lsb0_bytes(0, &self.bytes)
    }
}

/// Rows where a three-valued column equals `want` (nulls are UNKNOWN: never included).
/// Reads Polars' value and validity bitmaps byte-wise when they are byte-aligned.
fn bitmap_of(ca: &BooleanChunked, want: bool) -> RoaringBitmap {
    let mut bits = Bits::new(ca.len());
    let mut base = 0usize;
    for arr in ca.downcast_iter() {
        let len = arr.len();
        let (vals, voff, _) = arr.values().as_slice();
        let valid = arr.validity().map(|b| b.as_slice());
        let aligned = base % 8 == 0 && voff == 0 && valid.is_none_or(|(_, o, _)| o == 0);
        if aligned && len > 0 {
            let nb = len.div_ceil(8);
            let out = &mut bits.bytes[base / 8..base / 8 + nb];
            for (i, o) in out.iter_mut().enumerate() {
                let mut b = if want { vals[i] } else { !vals[i] };
                if let Some((v, _, _)) = valid {
                    b &= v[i];
                }
                *o |= b;
            }
            if len % 8 != 0 {
                out[nb - 1] &= (1u8 << (len % 8)) - 1;
            }
        } else {
            for (i, v) in arr.iter().enumerate() {
                if v == Some(want) {
                    bits.set(base + i);
                }
            }
        }
        base += len;
    }
    bits.into_bitmap()
}

/// All rows `0..n`.
pub fn all_rows(n: usize) -> RoaringBitmap {
    let mut b = RoaringBitmap::new();
    b.insert_range(0..n as u32);
    b
}

fn polars_mask(s: &Series, op: &ValueOp, as_of: i64) -> PolarsResult<BooleanChunked> {
    Ok(match op {
        ValueOp::Exists => s.is_not_null(),
        ValueOp::Missing => s.is_null(),
        ValueOp::Cmp(cmp, lit) => cmp_mask(s, *cmp, lit, as_of)?,
        ValueOp::Between(a, b) => {
            let lo = cmp_mask(s, CmpOp::Ge, a, as_of)?;
            let hi = cmp_mask(s, CmpOp::Le, b, as_of)?;
            &lo & &hi
        }
        ValueOp::In(items) => {
            let mut acc = BooleanChunked::full(s.name().clone(), false, s.len());
            // Null rows stay null so the result is UNKNOWN there, not FALSE.
            acc = acc.set(&s.is_null(), None)?;
            for item in items {
                acc = &acc | &cmp_mask(s, CmpOp::Eq, item, as_of)?;
            }
            acc
        }
        ValueOp::Contains(needle) => s.str()?.contains_literal(needle.as_ref())?,
        ValueOp::StartsWith(prefix) => s
            .str()?
            .iter()
            .map(|v| v.map(|v| v.starts_with(prefix.as_ref())))
            .collect::<BooleanChunked>(),
    })
}

fn cmp_mask(s: &Series, op: CmpOp, lit: &Scalar, as_of: i64) -> PolarsResult<BooleanChunked> {
    macro_rules! cmp {
        ($s:expr, $rhs:expr) => {
            match op {
                CmpOp::Eq => $s.equal($rhs),
                CmpOp::Ne => $s.not_equal($rhs),
                CmpOp::Lt => $s.lt($rhs),
                CmpOp::Le => $s.lt_eq($rhs),
                CmpOp::Gt => $s.gt($rhs),
                CmpOp::Ge => $s.gt_eq($rhs),
            }
        };
    }
    match lit {
        Scalar::Int(i) if s.dtype().is_integer() => cmp!(s, *i),
        Scalar::Int(i) => cmp!(s.cast(&DataType::Float64)?, *i as f64),
        Scalar::Float(x) => cmp!(s.cast(&DataType::Float64)?, *x),
        Scalar::Time(t) => cmp!(s, t.at(as_of)),
        Scalar::Str(text) => cmp!(s, text.as_ref()),
        Scalar::Bool(b) => {
            let ca = s.bool()?;
            Ok(ca
                .iter()
                .map(|v| v.map(|v| op.holds(v.cmp(b))))
                .collect::<BooleanChunked>()
                .with_name(s.name().clone()))
        }
    }
}

/// An attribute leaf over the whole table: the TRUE set, or the FALSE set when `negated`.
pub fn attr_full(
    data: &SegmentData,
    pred: &AttrPred,
    negated: bool,
    as_of: i64,
) -> PolarsResult<RoaringBitmap> {
    let want = !negated;
    match data.series(pred.attr) {
        Some(s) => Ok(bitmap_of(&polars_mask(&s, &pred.op, as_of)?, want)),
        None => {
            let mut out = Bits::new(data.len());
            if let Column::StringList(v) = &data.customers().columns()[usize::from(pred.attr)] {
                for (i, item) in v.iter().enumerate() {
                    let value = item.clone().map_or(Value::Null, Value::List);
                    if pred.op.test(&value, as_of) == Some(want) {
                        out.set(i);
                    }
                }
            }
            Ok(out.into_bitmap())
        }
    }
}

/// An attribute leaf over `rows` only (row by row).
pub fn attr_rows(
    data: &SegmentData,
    pred: &AttrPred,
    negated: bool,
    as_of: i64,
    rows: &RoaringBitmap,
) -> RoaringBitmap {
    // `ValueOp::test` already reads NaN as null, as the column kernels do.
    let want = !negated;
    rows.iter()
        .filter(|&r| pred.op.test(&data.customers().get(r, pred.attr), as_of) == Some(want))
        .collect()
}

/// What one distinct event aggregate computes (shared by every leaf with the same event type,
/// property filters and window).
#[derive(Clone, Debug, PartialEq)]
pub struct AggSpec {
    /// Event type.
    pub event_type: std::sync::Arc<str>,
    /// Property filters.
    pub filters: Vec<PropPred>,
    /// Window.
    pub window: Window,
    /// Properties summed (leaves address them by index).
    pub sums: Vec<std::sync::Arc<str>>,
    /// Whether first/last times are needed.
    pub times: bool,
}

/// Per-customer aggregate of the matching events.
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    /// Matching events per row.
    pub count: Vec<u32>,
    /// Per summed property, per row.
    pub sums: Vec<Vec<f64>>,
    /// Earliest matching timestamp per row (`i64::MAX` if none).
    pub first: Vec<i64>,
    /// Latest matching timestamp per row (`i64::MIN` if none).
    pub last: Vec<i64>,
}

/// One row's aggregate.
#[derive(Clone, Debug, Default)]
pub struct RowAgg {
    /// Matching events.
    pub count: u32,
    /// Per summed property.
    pub sums: Vec<f64>,
    /// Earliest matching timestamp.
    pub first: i64,
    /// Latest matching timestamp.
    pub last: i64,
}

enum PropTest<'a> {
    Const(bool),
    Num(&'a [f64], &'a ValueOp, Option<bool>),
    Table(&'a [u32], Vec<bool>, bool),
    Dyn(&'a PropColumn, &'a ValueOp),
}

impl PropTest<'_> {
    fn passes(&self, i: usize, as_of: i64) -> bool {
        match self {
            PropTest::Const(b) => *b,
            PropTest::Num(v, op, null) => {
                let x = v[i];
                if x.is_nan() {
                    *null == Some(true)
                } else {
                    op.test(&Value::Float(x), as_of) == Some(true)
                }
            }
            PropTest::Table(codes, table, null) => match codes[i] {
                u32::MAX => *null,
                c => table[c as usize],
            },
            PropTest::Dyn(col, op) => op.test(&col.get(i), as_of) == Some(true),
        }
    }
}

fn compile_filter<'a>(batch: &'a Batch, p: &'a PropPred, as_of: i64) -> PropTest<'a> {
    let null = p.op.test(&Value::Null, as_of);
    match batch.props.get(&p.name) {
        None => PropTest::Const(null == Some(true)),
        Some(PropColumn::Num(v)) => PropTest::Num(v, &p.op, null),
        Some(PropColumn::Str { codes, dict }) => PropTest::Table(
            codes,
            dict.iter()
                .map(|s| p.op.test(&Value::Str(s.clone()), as_of) == Some(true))
                .collect(),
            null == Some(true),
        ),
        Some(col) => PropTest::Dyn(col, &p.op),
    }
}

fn num_at(col: Option<&PropColumn>, i: usize) -> Option<f64> {
    match col? {
        PropColumn::Num(v) => Some(v[i]).filter(|x| !x.is_nan()),
        PropColumn::Any(v) => match v[i] {
            Value::Int(n) => Some(n as f64),
            Value::Float(x) if !x.is_nan() => Some(x),
            _ => None,
        },
        _ => None,
    }
}

struct Compiled<'a> {
    batch: &'a Batch,
    tests: Vec<PropTest<'a>>,
    sums: Vec<Option<&'a PropColumn>>,
}

impl<'a> Compiled<'a> {
    fn new(batch: &'a Batch, spec: &'a AggSpec, as_of: i64) -> Compiled<'a> {
        Compiled {
            batch,
            tests: spec
                .filters
                .iter()
                .map(|p| compile_filter(batch, p, as_of))
                .collect(),
            sums: spec.sums.iter().map(|s| batch.props.get(s)).collect(),
        }
    }

    #[inline]
    fn visit(&self, i: usize, window: Window, as_of: i64, agg: &mut RowAgg) {
        let ts = self.batch.ts[i];
        if !window.contains(ts, as_of) || !self.tests.iter().all(|t| t.passes(i, as_of)) {
            return;
        }
        agg.count += 1;
        for (k, col) in self.sums.iter().enumerate() {
            if let Some(x) = num_at(*col, i) {
                agg.sums[k] += x;
            }
        }
        agg.first = agg.first.min(ts);
        agg.last = agg.last.max(ts);
    }
}

impl RowAgg {
    /// A row with no matching events, for `spec`.
    fn empty(spec: &AggSpec) -> RowAgg {
        RowAgg {
            count: 0,
            sums: vec![0.0; spec.sums.len()],
            first: i64::MAX,
            last: i64::MIN,
        }
    }

    /// Back to "no matching events".
    fn reset(&mut self) {
        self.count = 0;
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        self.first = i64::MAX;
        self.last = i64::MIN;
    }
}

/// The aggregate over every row, in one sequential scan.
pub fn aggregate_full(
    te: Option<&TypeEvents>,
    spec: &AggSpec,
    as_of: i64,
    n_rows: usize,
) -> Aggregate {
    let mut out = Aggregate {
        count: vec![0; n_rows],
        sums: vec![vec![0.0; n_rows]; spec.sums.len()],
        first: if spec.times {
            vec![i64::MAX; n_rows]
        } else {
            Vec::new()
        },
        last: if spec.times {
            vec![i64::MIN; n_rows]
        } else {
            Vec::new()
        },
    };
    let Some(te) = te else { return out };
    let base = Compiled::new(&te.base, spec, as_of);
    let mut agg = RowAgg::empty(spec);
    for r in 0..n_rows {
        let range = te.base_range(r as Row);
        if range.is_empty() {
            continue;
        }
        agg.reset();
        for i in range {
            base.visit(i, spec.window, as_of, &mut agg);
        }
        if agg.count > 0 {
            out.store(r, &agg);
        }
    }
    // Tail events in append order, each folded into its row's aggregate (an event that does
    // not match — filters, window, after `as_of` — changes nothing; one that matches always
    // increments the count). Rows outside the table are ignored.
    let tail = Compiled::new(&te.tail, spec, as_of);
    for (i, &r) in te.tail.rows.iter().enumerate() {
        let at = r as usize;
        if at >= n_rows {
            continue;
        }
        out.load(at, &mut agg);
        let count = agg.count;
        tail.visit(i, spec.window, as_of, &mut agg);
        if agg.count != count {
            out.store(at, &agg);
        }
    }
    out
}

/// Whether an event test holds for one row's aggregate values.
pub fn event_holds(
    test: &EventTest,
    sum_idx: Option<usize>,
    count: u32,
    sums: &dyn Fn(usize) -> f64,
    first: i64,
    last: i64,
    as_of: i64,
) -> bool {
    match test {
        EventTest::Performed { count: c, sum } => {
            if c.is_none() && sum.is_none() {
                return count >= 1;
            }
            c.is_none_or(|c| c.holds(f64::from(count)))
                && match (sum, sum_idx) {
                    (Some((_, cond)), Some(k)) => cond.holds(sums(k)),
                    _ => true,
                }
        }
        EventTest::First { before, at } => {
            count > 0
                && if *before {
                    first < at.at(as_of)
                } else {
                    first > at.at(as_of)
                }
        }
        EventTest::Last { before, at } => {
            count > 0
                && if *before {
                    last < at.at(as_of)
                } else {
                    last > at.at(as_of)
                }
        }
    }
}

/// An event leaf over the whole table from its aggregate: the rows where the test holds.
pub fn event_full(
    agg: &Aggregate,
    test: &EventTest,
    sum_idx: Option<usize>,
    as_of: i64,
) -> RoaringBitmap {
    let mut out = Bits::new(agg.count.len());
    let times = !agg.first.is_empty();
    for r in 0..agg.count.len() {
        let (first, last) = if times {
            (agg.first[r], agg.last[r])
        } else {
            (i64::MAX, i64::MIN)
        };
        let holds = event_holds(
            test,
            sum_idx,
            agg.count[r],
            &|k| agg.sums[k][r],
            first,
            last,
            as_of,
        );
        if holds {
            out.set(r);
        }
    }
    out.into_bitmap()
}

impl Aggregate {
    /// Extends a whole-table aggregate of `spec` to `n` rows; the new rows have no matching
    /// events. (The spec, not the arrays, says whether first/last times are kept: over zero
    /// rows they are empty either way.)
    pub fn grow(&mut self, spec: &AggSpec, n: usize) {
        if n <= self.count.len() {
            return;
        }
        self.count.resize(n, 0);
        for s in &mut self.sums {
            s.resize(n, 0.0);
        }
        if spec.times {
            self.first.resize(n, i64::MAX);
            self.last.resize(n, i64::MIN);
        }
    }

    /// Row `at`'s values into `row`.
    fn load(&self, at: usize, row: &mut RowAgg) {
        row.count = self.count[at];
        for (s, v) in row.sums.iter_mut().zip(&self.sums) {
            *s = v[at];
        }
        if !self.first.is_empty() {
            row.first = self.first[at];
            row.last = self.last[at];
        }
    }

    /// `row`'s values into row `at` (first/last only when this aggregate keeps times).
    fn store(&mut self, at: usize, row: &RowAgg) {
        self.count[at] = row.count;
        for (v, s) in self.sums.iter_mut().zip(&row.sums) {
            v[at] = *s;
        }
        if !self.first.is_empty() {
            self.first[at] = row.first;
            self.last[at] = row.last;
        }
    }

    /// Writes the positional aggregate `part` (entry `j` is row `rows[j]`, computed for the
    /// same spec) into `rows`.
    pub(crate) fn scatter(&mut self, rows: &[Row], part: &Aggregate) {
        for (j, &r) in rows.iter().enumerate() {
            let at = r as usize;
            self.count[at] = part.count[j];
            for (dst, src) in self.sums.iter_mut().zip(&part.sums) {
                dst[at] = src[j];
            }
            if !self.first.is_empty() {
                self.first[at] = part.first[j];
                self.last[at] = part.last[j];
            }
        }
    }

    /// The values of `rows` (inside the aggregate), positionally: entry `j` is `rows[j]`.
    /// One tight loop per array, so the reads of rows scattered over a large table overlap.
    fn gather(&self, rows: &[Row]) -> Aggregate {
        let column = |v: &[i64]| -> Vec<i64> {
            if v.is_empty() {
                Vec::new()
            } else {
                rows.iter().map(|&r| v[r as usize]).collect()
            }
        };
        Aggregate {
            count: rows.iter().map(|&r| self.count[r as usize]).collect(),
            sums: self
                .sums
                .iter()
                .map(|s| rows.iter().map(|&r| s[r as usize]).collect())
                .collect(),
            first: column(&self.first),
            last: column(&self.last),
        }
    }

    /// Positional aggregates of consecutive row lists (same spec), joined into one.
    pub(crate) fn concat(parts: Vec<Aggregate>) -> Aggregate {
        let mut parts = parts.into_iter();
        let mut out = parts.next().unwrap_or_default();
        for p in parts {
            out.count.extend(p.count);
            for (dst, src) in out.sums.iter_mut().zip(p.sums) {
                dst.extend(src);
            }
            out.first.extend(p.first);
            out.last.extend(p.last);
        }
        out
    }

    fn with_capacity(spec: &AggSpec, n: usize) -> Aggregate {
        Aggregate {
            count: Vec::with_capacity(n),
            sums: vec![Vec::with_capacity(n); spec.sums.len()],
            first: Vec::with_capacity(if spec.times { n } else { 0 }),
            last: Vec::with_capacity(if spec.times { n } else { 0 }),
        }
    }

    fn push(&mut self, spec: &AggSpec, a: &RowAgg) {
        self.count.push(a.count);
        for (k, s) in a.sums.iter().enumerate() {
            self.sums[k].push(*s);
        }
        if spec.times {
            self.first.push(a.first);
            self.last.push(a.last);
        }
    }
}

/// The timestamps (inclusive) an event must have to be inside `window` at `as_of`: the same
/// test as [`Window::contains`], as a range.
pub(crate) fn visible_span(window: Window, as_of: i64) -> (i64, i64) {
    let end = match window {
        Window::Range(_, Some(to)) => as_of.min(to.saturating_sub(1)),
        _ => as_of,
    };
    (window.start(as_of).unwrap_or(i64::MIN), end)
}

/// The aggregates of several specs of one event type over `rows`, in one pass over each row's
/// events (they share the event reads): `out[k]` is spec `k`, positional over `rows`.
///
/// A row's base events are sorted by time, so only the part inside the union of the specs'
/// windows is read (two binary searches): a long history costs only its recent events under
/// a `last 30d` window. Skipped events match no spec, and the rest are folded in the same
/// order as a full scan, so the sums are the same bit for bit.
pub fn aggregate_rows_multi(
    te: Option<&TypeEvents>,
    specs: &[&AggSpec],
    as_of: i64,
    rows: &[Row],
) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = specs
        .iter()
        .map(|s| Aggregate::with_capacity(s, rows.len()))
        .collect();
    let base: Vec<Option<Compiled>> = specs
        .iter()
        .map(|s| te.map(|t| Compiled::new(&t.base, s, as_of)))
        .collect();
    let tail: Vec<Option<Compiled>> = specs
        .iter()
        .map(|s| te.map(|t| Compiled::new(&t.tail, s, as_of)))
        .collect();
    let mut aggs: Vec<RowAgg> = specs.iter().map(|s| RowAgg::empty(s)).collect();
    let (lo, hi) = specs
        .iter()
        .map(|s| visible_span(s.window, as_of))
        .fold((i64::MAX, i64::MIN), |(lo, hi), (a, b)| {
            (lo.min(a), hi.max(b))
        });
    // Rows usually come ascending (from bitmaps): the tail lookups then gallop forward; a row
    // not above the previous one starts over.
    let (mut cursor, mut prev) = (0usize, None::<Row>);
    for &r in rows {
        if prev.is_some_and(|p| r <= p) {
            cursor = 0;
        }
        prev = Some(r);
        for a in aggs.iter_mut() {
            a.reset();
        }
        if let Some(te) = te {
            let range = te.base_range(r);
            let ts = &te.base.ts[range.clone()];
            let from = range.start + ts.partition_point(|&t| t < lo);
            let to = range.start + ts.partition_point(|&t| t <= hi);
            for i in from..to.max(from) {
                for (k, spec) in specs.iter().enumerate() {
                    if let Some(c) = &base[k] {
                        c.visit(i, spec.window, as_of, &mut aggs[k]);
                    }
                }
            }
            for &i in te.tail_of_from(r, &mut cursor) {
                for (k, spec) in specs.iter().enumerate() {
                    if let Some(c) = &tail[k] {
                        c.visit(i as usize, spec.window, as_of, &mut aggs[k]);
                    }
                }
            }
        }
        for (k, a) in aggs.iter().enumerate() {
            out[k].push(specs[k], a);
        }
    }
    out
}

/// An event leaf over `rows` only, from their positional aggregate (entry `j` is `rows[j]`);
/// matching rows are appended to `out` (rows ascending, after anything already in `out`).
pub fn event_rows(
    agg: &Aggregate,
    rows: &[Row],
    test: &EventTest,
    sum_idx: Option<usize>,
    as_of: i64,
    out: &mut RoaringBitmap,
) {
    let times = !agg.first.is_empty();
    for (j, &r) in rows.iter().enumerate() {
        let (first, last) = if times {
            (agg.first[j], agg.last[j])
        } else {
            (i64::MAX, i64::MIN)
        };
        let holds = event_holds(
            test,
            sum_idx,
            agg.count[j],
            &|k| agg.sums[k][j],
            first,
            last,
            as_of,
        );
        if holds && out.try_push(r).is_err() {
            out.insert(r);
        }
    }
}

/// Incremental refresh: folds new tail events into the whole-table aggregate `agg` (in place)
/// and returns the delta. `order` holds the new events as positions after `base` in `te.tail`,
/// sorted by (row, position), so each row's events are visited in append order — the same
/// sums, bit for bit, as the tail pass of [`aggregate_full`].
///
/// The rows touched are scattered over a table of millions, so the cost is memory latency, not
/// arithmetic. The fold is therefore split into gather → fold → scatter: the touched rows'
/// values are first copied into compact arrays in tight loops (independent loads the CPU
/// overlaps), the events are folded into those compact arrays, and only the rows whose
/// aggregate changed are written back. The delta holds the rows whose aggregate changed plus
/// the rows in `extra` (ascending; new customers, evaluated whether or not they have events).
///
/// Valid only at the `as_of` the aggregate was computed at: windows are relative to it, so an
/// advanced `as_of` can drop old events out of a window, which adding cannot express.
pub fn aggregate_add_delta(
    agg: &mut Aggregate,
    te: &TypeEvents,
    spec: &AggSpec,
    as_of: i64,
    (base, order): (usize, &[u32]),
    extra: &[Row],
) -> AggDelta {
    let n = agg.count.len();
    let tail_row = |p: u32| te.tail.rows.get(base + p as usize).copied();
    // Distinct rows (ascending): event rows inside the table merged with `extra`, remembering
    // which rows came from `extra`.
    let mut rows: Vec<Row> = Vec::with_capacity(order.len() + extra.len());
    let mut from_extra: Vec<bool> = Vec::with_capacity(order.len() + extra.len());
    {
        let mut ev = order
            .iter()
            .filter_map(|&p| tail_row(p))
            .filter(|&r| (r as usize) < n)
            .peekable();
        let mut ex = extra
            .iter()
            .copied()
            .filter(|&r| (r as usize) < n)
            .peekable();
        loop {
            let (r, is_extra) = match (ev.peek(), ex.peek()) {
                (Some(&a), Some(&b)) if b <= a => {
                    ex.next();
                    (b, true)
                }
                (Some(&a), _) => {
                    ev.next();
                    (a, false)
                }
                (None, Some(&b)) => {
                    ex.next();
                    (b, true)
                }
                (None, None) => break,
            };
            if rows.last() == Some(&r) {
                if let Some(last) = from_extra.last_mut() {
                    *last |= is_extra;
                }
            } else {
                rows.push(r);
                from_extra.push(is_extra);
            }
        }
    }
    // Gather, fold on the compact arrays, scatter what changed.
    let mut values = agg.gather(&rows);
    // A matching event always increments the count, so the counts tell what changed.
    let counts_before = values.count.clone();
    let compiled = Compiled::new(&te.tail, spec, as_of);
    let mut row = RowAgg::empty(spec);
    let mut k = 0;
    let mut i = 0;
    while i < order.len() {
        let Some(r) = tail_row(order[i]).filter(|&r| (r as usize) < n) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < order.len() && tail_row(order[j]) == Some(r) {
            j += 1;
        }
        while rows[k] != r {
            k += 1;
        }
        values.load(k, &mut row);
        for &p in &order[i..j] {
            compiled.visit(base + p as usize, spec.window, as_of, &mut row);
        }
        values.store(k, &row);
        i = j;
    }
    let changed: Vec<bool> = (0..rows.len())
        .map(|k| values.count[k] != counts_before[k])
        .collect();
    for (k, &r) in rows.iter().enumerate() {
        if changed[k] {
            values.load(k, &mut row);
            agg.store(r as usize, &row);
        }
    }
    let keep: Vec<bool> = changed
        .iter()
        .zip(&from_extra)
        .map(|(&c, &e)| c || e)
        .collect();
    fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter()
            .zip(keep)
            .filter(|(_, &k)| k)
            .map(|(x, _)| *x)
            .collect()
    }
    AggDelta::new(
        pick(&rows, &keep),
        Aggregate {
            count: pick(&values.count, &keep),
            sums: values.sums.iter().map(|v| pick(v, &keep)).collect(),
            first: pick(&values.first, &keep),
            last: pick(&values.last, &keep),
        },
    )
}

/// The rows of one aggregate whose values changed, with their new values gathered into a
/// positional [`Aggregate`] (entry `j` is row `rows[j]`), so the leaves reading the aggregate
/// re-evaluate exactly those rows with sequential reads ([`event_rows`]).
#[derive(Debug, Default)]
pub struct AggDelta {
    /// Changed rows, ascending.
    pub rows: Vec<Row>,
    /// The same rows as a bitmap (the part of each leaf's old result to replace).
    pub bitmap: RoaringBitmap,
    /// Their new aggregate values, positionally.
    pub values: Aggregate,
}

impl AggDelta {
    /// The delta of `rows` (ascending) with their `values` (positional).
    pub fn new(rows: Vec<Row>, values: Aggregate) -> AggDelta {
        let bitmap = RoaringBitmap::from_sorted_iter(rows.iter().copied()).unwrap_or_default();
        AggDelta::with_bitmap(rows, bitmap, values)
    }

    /// [`Self::new`] when the rows' bitmap is already at hand (it must hold exactly `rows`).
    pub(crate) fn with_bitmap(
        rows: Vec<Row>,
        bitmap: RoaringBitmap,
        values: Aggregate,
    ) -> AggDelta {
        AggDelta {
            rows,
            bitmap,
            values,
        }
    }

    /// The current values of `rows` (ascending, inside `agg`).
    pub fn gather(agg: &Aggregate, rows: Vec<Row>) -> AggDelta {
        let values = agg.gather(&rows);
        AggDelta::new(rows, values)
    }
}
