//! Incremental refresh: apply a change set, recompute only what can change, and report who
//! entered and who left each segment.
//!
//! ## What can change
//! - An attribute leaf changes only on rows whose attribute it reads was updated — unless it
//!   compares with a `now`-relative time and `as_of` moved, then it is recomputed whole.
//! - An event leaf changes only on rows whose aggregate changed — or, when `as_of` moved, on
//!   rows with events of its type in the *moved time slices*: events in `(t0, t1]` became
//!   visible, a `last d` window's start moved over `(t0 - d, t1 - d]`, a first/last bound
//!   `now + off` moved over `[t0 + off, t1 + off]`. Every other row has the same matching events
//!   and the same side of every bound, so the same answer. Each event type keeps a time index
//!   of its base events (sorted once, on the first such refresh, 12 bytes per event; the small
//!   tail is scanned), so finding those rows costs the events in the slices, not the table.
//!   They are re-evaluated row by row from their events (`Job::Rows`) and their fresh
//!   aggregates written back into the carried ones, so the next refresh at the new `as_of`
//!   still takes the fast path below. Two cases are recomputed whole instead: a leaf whose
//!   property filters compare with `now` (any event may flip), and an event type whose rows to
//!   re-read exceed [`SegmentEngine::with_row_refresh_limit`] (default a quarter of the
//!   table), where one sequential scan beats that many scattered reads.
//! - **Aggregates are carried forward.** A result keeps the whole-table event aggregates it was
//!   computed from (one count/sums/first/last array set per distinct aggregate, tagged with the
//!   event type's version). A refresh at the same `as_of` takes them over and folds only the
//!   new events into them ([`crate::kernels::aggregate_add_delta`]: the touched rows' values
//!   are gathered into compact arrays, the events folded in row order — each row's in append
//!   order —, and the changed rows scattered back), which yields the rows whose aggregate
//!   changed with their new values, a compact [`AggDelta`]; the leaves over that aggregate
//!   re-evaluate just those rows, reading sequentially (a row whose aggregate did not change keeps its answer: a leaf is a function
//!   of its row's aggregate and `as_of`). The refreshed result carries the updated aggregates
//!   on. Cost: proportional to the new events, independent of the customers' histories.
//!   Memory: a result holds its aggregates, 4–40 bytes per customer each.
//! - The aggregates *move* to the refreshed result (they are updated in place, not copied).
//!   Refreshing the same previous result a second time, or after its event type changed by
//!   other means (version mismatch), finds none: the rows that received events are then
//!   re-aggregated from their base + tail events, once per event type for all of its
//!   aggregates in one pass over each row's events, in parallel chunks on the engine's pool.
//!   Slower, same answer (both paths are property-tested).
//! - Leaves with no dirty rows keep their previous bitmap; dirty rows are re-evaluated and
//!   spliced in: `new = (old − dirty) ∪ eval(dirty)`.
//! - Resolving the change set (customer ids → rows) and applying it run as two parallel
//!   halves: attribute updates touch the customer table, new events the event store; the
//!   dirty-row bitmaps are sorted meanwhile. The diffs are computed per segment in parallel.
//! - New customers are appended as rows (every attribute null, then the change set's updates
//!   and events apply to them as to anyone) and are dirty in every leaf, so each segment is
//!   evaluated for them; carried aggregates are extended with empty rows. Validation covers
//!   them too: a taken or repeated id fails the change set before anything is applied.
//! - Internal nodes are recombined only when a child changed; segment references follow
//!   automatically because they are the referenced segment's own nodes.
//!
//! The result equals a full recompute on the changed data (property-tested).
//!
//! ## Diffs as events
//! [`SegmentDiff::to_events`] turns entered/left sets into engine events of type
//! `segment.entered` / `segment.left` (property `segment`), timestamped at `as_of` with the
//! deterministic id `segment:{id}:{entered|left}:{customer}:{as_of}:{refresh}`, so the trigger
//! engine can react to them like to any other event and a replay deduplicates. `refresh` counts
//! the refreshes since the group was computed (1 for the first): a customer who enters, leaves
//! and enters again in refreshes at the same `as_of` gets three distinct events, while
//! repeating one refresh (from the same previous result) repeats its ids.

use std::sync::Arc;

use fusebox_engine::event::{Event, EventRecord};
use fusebox_engine::value::{Map, Value};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::data::SegmentData;
use crate::exec::{ComputeOptions, GroupResult, Job, SegmentEngine, SegmentError};
use crate::kernels::{aggregate_add_delta, AggDelta, Aggregate};
use crate::plan::NodeKind;
use rayon::prelude::*;

/// Event type emitted when a customer enters a segment.
pub const ENTERED: &str = "segment.entered";
/// Event type emitted when a customer leaves a segment.
pub const LEFT: &str = "segment.left";

/// One attribute update.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrUpdate {
    /// Customer id.
    pub customer: u64,
    /// Attribute name.
    pub attribute: String,
    /// New value (type-checked against the column).
    pub value: Value,
}

/// A change set.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// New customers (ids not in the table), appended with every attribute null; set their
    /// attributes with `updates` and give them events with `events` in the same change set.
    /// Every segment is evaluated for them (a customer with no events is in "did not
    /// perform" segments from the start).
    pub new_customers: Vec<u64>,
    /// Attribute updates, applied in order (after the new customers are added).
    pub updates: Vec<AttrUpdate>,
    /// New events (customers not in the table are ignored, as on load, and counted in
    /// `EventStore::unknown_customers`).
    pub events: Vec<Event>,
    /// A new `as_of` (must not be earlier than the previous one).
    pub as_of: Option<i64>,
}

/// Who entered and who left one segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDiff {
    /// Segment id.
    pub id: Arc<str>,
    /// Rows that are members now and were not before.
    pub entered: RoaringBitmap,
    /// Rows that were members and are not any more.
    pub left: RoaringBitmap,
    /// Which refresh since the computation produced it (1 for the first); part of the event
    /// ids.
    pub refresh: u64,
}

impl SegmentDiff {
    /// The diff as engine events (entered first, then left, each by ascending customer row).
    pub fn to_events(&self, data: &SegmentData, as_of: i64) -> Vec<EventRecord> {
        let ids = data.customers().ids();
        let props = Arc::new(Map::from_entries([(
            Arc::from("segment"),
            Value::Str(self.id.clone()),
        )]));
        let mut out = Vec::new();
        for (ty, rows, word) in [
            (ENTERED, &self.entered, "entered"),
            (LEFT, &self.left, "left"),
        ] {
            let ty: Arc<str> = Arc::from(ty);
            for r in rows {
                let customer = ids[r as usize];
                out.push(EventRecord {
                    line: out.len() as u64 + 1,
                    event: Ok(Event {
                        id: Arc::from(format!(
                            "segment:{}:{word}:{customer}:{as_of}:{}",
                            self.id, self.refresh
                        )),
                        customer_id: customer,
                        event_type: ty.clone(),
                        timestamp: as_of,
                        process: Some(Arc::from("fusebox-segment")),
                        properties: props.clone(),
                    }),
                });
            }
        }
        out
    }
}

/// A refreshed result plus the per-segment diffs.
#[derive(Clone, Debug)]
pub struct Refresh {
    /// The new result (use it as `prev` for the next refresh).
    pub result: GroupResult,
    /// One diff per segment, in group order.
    pub diffs: Vec<SegmentDiff>,
    /// Rows touched by the change set.
    pub dirty_rows: u64,
    /// Time spent applying the change set to the data.
    pub apply_time: std::time::Duration,
    /// Time spent computing the diffs.
    pub diff_time: std::time::Duration,
}

impl SegmentEngine {
    /// Applies `changes` to `data` and refreshes `prev` (see the module docs).
    ///
    /// Refresh from the newest result: the event aggregates `prev` carries move to the
    /// returned result (refreshing `prev` again still gives the right answer, by re-reading
    /// the changed customers' events, only slower).
    ///
    /// Every update is validated before the first one is applied, so a bad change set
    /// ([`SegmentError::Data`]) leaves `data` untouched. Once applied, the changes stay applied:
    /// if the refresh then fails or its deadline expires (`result.timed_out`; unfinished
    /// segments get empty diffs), recompute the group with [`SegmentEngine::compute`].
    pub fn refresh(
        &self,
        data: &mut SegmentData,
        prev: &GroupResult,
        changes: &Changes,
        deadline: Option<std::time::Instant>,
    ) -> Result<Refresh, SegmentError> {
        if prev.nodes.len() != self.plan().nodes.len() {
            return Err(SegmentError::Incomplete);
        }
        if prev.timed_out
            || prev
                .nodes
                .iter()
                .zip(&self.plan().nodes)
                .any(|(b, n)| b.is_none() && !matches!(n.kind, NodeKind::Const(_)))
        {
            return Err(SegmentError::Incomplete);
        }
        let as_of = changes.as_of.unwrap_or(prev.as_of);
        if as_of < prev.as_of {
            return Err(SegmentError::AsOfBackwards);
        }
        if prev.n_rows != data.len() {
            return Err(SegmentError::Shape {
                expected: prev.n_rows,
                found: data.len(),
            });
        }
        let applying = std::time::Instant::now();
        // Resolve (and validate) every new customer, update and event before applying any: rows
        // are looked up once, updates and events in parallel; new customers get the rows they
        // will have once added.
        let customers = data.customers();
        let new_rows = customers
            .rows_for_new(&changes.new_customers)
            .map_err(crate::data::DataError::from)?;
        let row_of = |id: u64| customers.row_of(id).or_else(|| new_rows.get(&id).copied());
        let (resolved, event_rows) = self.pool().install(|| {
            rayon::join(
                || resolve_updates(customers.schema(), &row_of, &changes.updates),
                || {
                    changes
                        .events
                        .iter()
                        .filter_map(|e| row_of(e.customer_id).map(|r| (r, e)))
                        .collect::<Vec<_>>()
                },
            )
        });
        let resolved = resolved?;
        let mut attr_rows: FxHashMap<u16, Vec<u32>> = FxHashMap::default();
        for &(row, attr, _) in &resolved {
            attr_rows.entry(attr).or_default().push(row);
        }
        let mut type_rows: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        for &(row, e) in &event_rows {
            type_rows
                .entry(e.event_type.as_ref())
                .or_default()
                .push(row);
        }
        let moved = as_of != prev.as_of;
        // The previous whole-table aggregates, if still valid: computed over exactly the events
        // now stored for their type, and either at this as-of or over filters that do not
        // read `now` (an advanced as-of then changes only the rows with events in the moved
        // time slices, which are re-aggregated and written back: see `moved_dirty`).
        let mut carried: Vec<Option<Aggregate>> = vec![None; self.plan().aggs.len()];
        if let Some(state) = prev.aggs.take() {
            for ((slot, entry), spec) in carried.iter_mut().zip(state.aggs).zip(&self.plan().aggs) {
                if let Some((version, agg)) = entry {
                    if version == data.events.version(&spec.event_type)
                        && agg.count.len() == data.len()
                        && !(moved && reads_now(&spec.filters))
                    {
                        *slot = Some(agg);
                    }
                }
            }
        }
        // Where each type's tail ends before the new events are appended.
        let tail_before: FxHashMap<&str, usize> = type_rows
            .keys()
            .map(|&t| (t, data.events.of_type(t).map_or(0, |te| te.tail.len())))
            .collect();
        // New events for customers in neither the table nor the change set are ignored, as on
        // load, and counted the same way.
        data.events.unknown_customers += changes.events.len() - event_rows.len();
        let added = data.add_customers(&changes.new_customers)?;
        let added = RoaringBitmap::from_sorted_iter(added).unwrap_or_default();
        // The dirty-row bitmaps only need the change set, so they are built while it is
        // applied.
        let (_, (attr_dirty, event_dirty, all_dirty, event_order)) = self.pool().install(|| {
            rayon::join(
                || data.apply(&resolved, &event_rows),
                || dirty_bitmaps(attr_rows, type_rows),
            )
        });
        // Add the new events to the carried aggregates of their type (in place: the state was
        // taken out of `prev`) and gather the values of the rows that changed. An aggregate whose type got no events
        // has an empty delta.
        let events = &data.events;
        let plan = self.plan();
        let n = data.len();
        // New customers are evaluated in every leaf, events or not.
        let extra: Vec<u32> = added.iter().collect();
        let deltas: Vec<Option<Arc<AggDelta>>> = self.pool().install(|| {
            carried
                .par_iter_mut()
                .zip(&plan.aggs)
                // One task per aggregate: few of them have work, so let idle workers steal
                // them one by one rather than split the list in halves.
                .with_max_len(1)
                .map(|(slot, spec)| {
                    let agg = slot.as_mut()?;
                    if moved {
                        // Re-aggregated row by row (`Job::Rows`) and written back by `run`.
                        agg.grow(spec, n);
                        return None;
                    }
                    let start = tail_before.get(spec.event_type.as_ref());
                    if start.is_none() && added.is_empty() {
                        return Some(Arc::new(AggDelta::default()));
                    }
                    agg.grow(spec, n);
                    let order = event_order.get(spec.event_type.as_ref());
                    Some(Arc::new(
                        match (start, order, events.of_type(&spec.event_type)) {
                            (Some(&start), Some(order), Some(te)) => {
                                aggregate_add_delta(agg, te, spec, as_of, (start, order), &extra)
                            }
                            _ => AggDelta::gather(agg, extra.clone()),
                        },
                    ))
                })
                .collect()
        });
        // An advanced as-of: per event type, the rows whose answer can differ (`None`: too
        // many to be worth it row by row).
        let moved_dirty = if moved {
            self.pool().install(|| {
                let limit = (self.row_refresh_limit() * n as f64) as u64;
                moved_dirty(plan, events, (prev.as_of, as_of), &event_dirty, limit)
            })
        } else {
            FxHashMap::default()
        };
        let apply_time = applying.elapsed();
        let empty = RoaringBitmap::new();
        let mut jobs = Vec::new();
        for &id in &self.plan().leaf_order {
            let old = prev.nodes[id].clone().unwrap_or_default();
            let (dirty, whole) = match &self.plan().nodes[id].kind {
                NodeKind::Attr { pred, .. } => (
                    attr_dirty.get(&pred.attr).unwrap_or(&empty),
                    moved && pred.op.is_relative(),
                ),
                NodeKind::Event { pred, agg, .. } if moved => {
                    match moved_dirty.get(pred.event_type.as_ref()) {
                        Some(Some(rows)) if !reads_now(&plan.aggs[*agg].filters) => (rows, false),
                        Some(None) => (&empty, true),
                        // A leaf whose filters read `now` (any row may change), or a type with
                        // no leaf that can move (cannot happen: every leaf has a type).
                        _ => (&empty, true),
                    }
                }
                NodeKind::Event { pred, .. } => {
                    (event_dirty.get(&pred.event_type).unwrap_or(&empty), false)
                }
                _ => (&empty, false),
            };
            let delta = match &self.plan().nodes[id].kind {
                NodeKind::Event { agg, .. } => deltas.get(*agg).cloned().flatten(),
                _ => None,
            };
            let job = if whole {
                Job::Full
            } else if let Some(delta) = delta {
                if delta.rows.is_empty() {
                    Job::Keep(old)
                } else {
                    Job::Changed(delta, old)
                }
            } else if dirty.is_empty() && added.is_empty() {
                Job::Keep(old)
            } else {
                Job::Rows(dirty | &added, old)
            };
            jobs.push((id, job));
        }
        let opts = ComputeOptions {
            as_of,
            deadline,
            use_cache: false,
        };
        // New rows change what "all rows" means (negations, constants). Every leaf is
        // re-evaluated on them, so every internal node over a leaf recombines anyway; passing
        // no previous nodes makes that hold for all of them.
        let prev_nodes = added.is_empty().then_some(prev.nodes.as_slice());
        let mut result = self.run(data, &opts, jobs, prev_nodes, carried)?;
        result.generation = prev.generation + 1;
        let generation = result.generation;
        let diffing = std::time::Instant::now();
        let diffs = self.pool().install(|| {
            result
                .segments
                .par_iter()
                .zip(&prev.segments)
                .map(|(new, old)| {
                    let empty = RoaringBitmap::new();
                    let (new_m, old_m) = (
                        new.members.as_deref().unwrap_or(&empty),
                        old.members.as_deref().unwrap_or(&empty),
                    );
                    // A kept root is the very same bitmap: nothing entered or left. An unfinished
                    // segment (deadline) reports no diff rather than a wrong one.
                    let same = match (&new.members, &old.members) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        _ => true,
                    };
                    SegmentDiff {
                        id: new.id.clone(),
                        refresh: generation,
                        entered: if same {
                            RoaringBitmap::new()
                        } else {
                            new_m - old_m
                        },
                        left: if same {
                            RoaringBitmap::new()
                        } else {
                            old_m - new_m
                        },
                    }
                })
                .collect()
        });
        Ok(Refresh {
            result,
            diffs,
            dirty_rows: (all_dirty | &added).len(),
            apply_time,
            diff_time: diffing.elapsed(),
        })
    }
}

/// Whether a property filter compares with `now` (then an advanced as-of can change whether any
/// event passes it, whatever its timestamp).
fn reads_now(filters: &[crate::model::PropPred]) -> bool {
    filters.iter().any(|p| p.op.is_relative())
}

/// The time slices (inclusive bounds) whose events can change an event leaf's answer when
/// `as_of` advances from `t0` to `t1`, for a leaf whose filters do not read `now`:
/// - events in `(t0, t1]` become visible (every window ends at `as_of`);
/// - a `last d` window's start moves: events in `(t0 - d, t1 - d]` drop out of it;
/// - a first/last test against `now + off` flips only for a first/last time in
///   `[t0 + off, t1 + off]`, which is some event's timestamp.
///
/// A row with no event of the leaf's type in any of them has the same matching events (so the
/// same aggregate) and, for first/last tests, the same side of the moved bound: the same
/// answer.
fn moved_slices(pred: &crate::model::EventPred, (t0, t1): (i64, i64)) -> Vec<(i64, i64)> {
    use crate::model::{EventTest, TimeRef, Window};
    let mut slices = vec![(t0.saturating_add(1), t1)];
    if let Window::Last(d) = pred.window {
        slices.push((t0.saturating_sub(d).saturating_add(1), t1.saturating_sub(d)));
    }
    if let EventTest::First { at, .. } | EventTest::Last { at, .. } = pred.test {
        if let TimeRef::Rel(_) = at {
            slices.push((at.at(t0), at.at(t1)));
        }
    }
    slices
}

/// Rows of one event type that may change.
type MovedRows = Option<RoaringBitmap>;

/// An advanced as-of: per event type with leaves, the rows to re-evaluate — the customers with
/// events in the moved time slices of any of its leaves ([`moved_slices`], looked up in the
/// type's time index), plus the rows the change set gave events of that type. `None` when that
/// is more than `limit` rows (see [`SegmentEngine::with_row_refresh_limit`]): then a
/// whole-table scan (sequential) is cheaper than re-reading that many customers' histories one
/// by one.
fn moved_dirty<'p>(
    plan: &'p crate::plan::Plan,
    events: &crate::data::EventStore,
    times: (i64, i64),
    event_dirty: &FxHashMap<Arc<str>, RoaringBitmap>,
    limit: u64,
) -> FxHashMap<&'p str, MovedRows> {
    let mut slices: FxHashMap<&'p str, Vec<(i64, i64)>> = FxHashMap::default();
    for node in &plan.nodes {
        if let NodeKind::Event { pred, agg, .. } = &node.kind {
            let entry = slices.entry(pred.event_type.as_ref()).or_default();
            if !reads_now(&plan.aggs[*agg].filters) {
                entry.extend(moved_slices(pred, times));
            }
        }
    }
    slices
        .into_par_iter()
        .map(|(ty, mut slices)| {
            slices.sort_unstable();
            slices.dedup();
            let mut rows = Vec::new();
            if let Some(te) = events.of_type(ty) {
                for (lo, hi) in slices {
                    te.rows_between(lo, hi, &mut rows);
                    if rows.len() as u64 > limit {
                        rows.sort_unstable();
                        rows.dedup();
                        if rows.len() as u64 > limit {
                            return (ty, None);
                        }
                    }
                }
            }
            rows.sort_unstable();
            rows.dedup();
            let mut dirty = RoaringBitmap::from_sorted_iter(rows).unwrap_or_default();
            if let Some(b) = event_dirty.get(ty) {
                dirty |= b;
            }
            (ty, (dirty.len() <= limit).then_some(dirty))
        })
        .collect()
}

/// Per attribute and per event type, the rows the change set touches; all of them; and per
/// event type the new events' positions in their type's batch sorted by (row, position), the
/// order [`aggregate_add_delta`] folds them in.
type DirtyRows = (
    FxHashMap<u16, RoaringBitmap>,
    FxHashMap<Arc<str>, RoaringBitmap>,
    RoaringBitmap,
    FxHashMap<Arc<str>, Vec<u32>>,
);

/// Sorts the rows the change set touches into bitmaps (see [`DirtyRows`]).
fn dirty_bitmaps(
    attr_rows: FxHashMap<u16, Vec<u32>>,
    type_rows: FxHashMap<&str, Vec<u32>>,
) -> DirtyRows {
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v.dedup();
        RoaringBitmap::from_sorted_iter(v).unwrap_or_default()
    };
    let attr_dirty: FxHashMap<u16, RoaringBitmap> =
        attr_rows.into_iter().map(|(a, v)| (a, sorted(v))).collect();
    let mut event_dirty: FxHashMap<Arc<str>, RoaringBitmap> = FxHashMap::default();
    let mut event_order: FxHashMap<Arc<str>, Vec<u32>> = FxHashMap::default();
    for (t, rows) in type_rows {
        let mut pairs: Vec<(u32, u32)> = rows
            .into_iter()
            .enumerate()
            .map(|(pos, r)| (r, pos as u32))
            .collect();
        // Positions are distinct, so an unstable sort is deterministic.
        pairs.sort_unstable();
        let mut bitmap = RoaringBitmap::new();
        for &(r, _) in &pairs {
            if bitmap.try_push(r).is_err() {
                bitmap.insert(r);
            }
        }
        let ty: Arc<str> = Arc::from(t);
        event_dirty.insert(ty.clone(), bitmap);
        event_order.insert(ty, pairs.into_iter().map(|(_, p)| p).collect());
    }
    let mut all_dirty = RoaringBitmap::new();
    for b in attr_dirty.values().chain(event_dirty.values()) {
        all_dirty |= b;
    }
    (attr_dirty, event_dirty, all_dirty, event_order)
}

/// Resolves updates to `(row, attribute, value)`, rejecting unknown customers, attributes and
/// mistyped values before anything is applied.
fn resolve_updates<'c>(
    schema: &fusebox_engine::customers::Schema,
    row_of: &(dyn Fn(u64) -> Option<u32> + Sync),
    updates: &'c [AttrUpdate],
) -> Result<Vec<(u32, u16, &'c Value)>, SegmentError> {
    let mut out = Vec::with_capacity(updates.len());
    let mut last: Option<(&str, u16, fusebox_engine::value::AttrType)> = None;
    for u in updates {
        let (attr, ty) = match last {
            Some((name, attr, ty)) if name == u.attribute => (attr, ty),
            _ => {
                let (attr, ty) = schema.attr(&u.attribute).ok_or_else(|| {
                    crate::data::DataError::Update(format!("unknown attribute `{}`", u.attribute))
                })?;
                last = Some((&u.attribute, attr, ty));
                (attr, ty)
            }
        };
        match row_of(u.customer) {
            Some(row) if ty.accepts(&u.value) => out.push((row, attr, &u.value)),
            _ => {
                return Err(crate::data::DataError::Update(format!(
                    "customer {}: cannot set `{}` ({ty}) to {}",
                    u.customer, u.attribute, u.value
                ))
                .into())
            }
        }
    }
    Ok(out)
}
