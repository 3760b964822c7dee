//! Incremental refresh: apply a change set, recompute only what can change, and report who
//! entered and who left each segment.
//!
//! ## What can change
//! - An attribute leaf changes only on rows whose attribute it reads was updated — unless it
//!   compares with a `now`-relative time and `as_of` moved, then it is recomputed whole.
//! - An event leaf changes only on rows whose aggregate changed — or, when `as_of` moved, on
//!   rows with events of its type in the *moved time slices* (newly visible events, the edge
//!   of a `last d` window, a `now`-relative first/last bound; see `src/advance.rs`). Those
//!   rows are found through a per-type time index (built on the first such refresh: 12 bytes
//!   per base event, bucketed by time once); each carried aggregate re-reads only its rows there (their
//!   in-window events) at the new `as_of` and stays carried, and each leaf re-evaluates its
//!   rows from it. Recomputed whole instead: a leaf whose property filters compare with `now`
//!   (any event may flip), and an aggregate whose rows exceed
//!   [`SegmentEngine::with_row_refresh_limit`] (default a quarter of the table), where one
//!   sequential scan beats that many scattered reads.
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
//!   Refreshing the same previous result a second time (on a copy of the data in the state it
//!   was computed over: on the refreshed data itself it is refused, see [`SegmentError::Stale`])
//!   finds none, nor does a result whose leaves came from the sub-query cache: the rows that
//!   received events are then
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

use crate::advance::{reads_now, reaggregate, Advance};
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
    /// Customers planned for re-evaluation row by row in at least one leaf (the change set's
    /// rows where a leaf reads what changed, new customers, and, when `as_of` moved, those with
    /// events in the moved time slices). If the deadline expired, less was done.
    pub revisited_rows: u64,
    /// Leaves (not aggregates) planned for recomputation over the whole table: when `as_of`
    /// moved, attribute leaves comparing with `now`, event leaves whose filters do, and event
    /// leaves whose aggregate (or, without one, whose event type) has more moved rows than the
    /// row limit allows — every event leaf when the limit is below one row
    /// ([`SegmentEngine::with_row_refresh_limit`]).
    pub whole_leaves: usize,
    /// Time spent resolving the change set, applying it to the data and folding its events
    /// into the carried aggregates.
    pub apply_time: std::time::Duration,
    /// Time spent, when `as_of` moved, finding the rows in the moved time slices (the first
    /// time, building the time indexes) and bringing the carried aggregates forward.
    pub advance_time: std::time::Duration,
    /// Time spent computing the diffs.
    pub diff_time: std::time::Duration,
}

impl SegmentEngine {
    /// Applies `changes` to `data` and refreshes `prev` (see the module docs).
    ///
    /// Refresh from the newest result: the event aggregates `prev` carries move to the
    /// returned result (refreshing `prev` again, on a copy of the data in `prev`'s state, still
    /// gives the right answer, by re-reading the changed customers' events, only slower).
    ///
    /// Every update is validated before the first one is applied, so a bad change set
    /// ([`SegmentError::Data`]) leaves `data` untouched. Once applied, the changes stay applied:
    /// if the refresh then fails or its deadline expires (`result.timed_out`; unfinished
    /// segments get empty diffs), recompute the group with [`SegmentEngine::compute`].
    /// Refreshing `prev` again on that data is refused ([`SegmentError::Stale`]) rather than
    /// applying the change set twice: `data` must be in the state `prev` was computed over.
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
        if prev.data_state.rows != data.len() {
            return Err(SegmentError::Shape {
                expected: prev.data_state.rows,
                found: data.len(),
            });
        }
        if prev.data_state != data.state() {
            return Err(SegmentError::Stale);
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
        // time slices, which are re-read and written back: see `crate::advance`).
        let mut carried: Vec<Option<Aggregate>> = vec![None; self.plan().aggs.len()];
        if let Some(state) = prev.aggs.take() {
            for ((slot, entry), spec) in carried.iter_mut().zip(state.aggs).zip(&self.plan().aggs) {
                if let Some((version, agg)) = entry {
                    // (The data is in `prev`'s state, checked above, so the aggregate covers
                    // every row.)
                    if version == data.events.version(&spec.event_type)
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
        let mut deltas: Vec<Option<Arc<AggDelta>>> = self.pool().install(|| {
            carried
                .par_iter_mut()
                .zip(&plan.aggs)
                // One task per aggregate: few of them have work, so let idle workers steal
                // them one by one rather than split the list in halves.
                .with_max_len(1)
                .map(|(slot, spec)| {
                    let agg = slot.as_mut()?;
                    if moved {
                        // Brought forward to the new as-of below (`advance::reaggregate`).
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
        // An advanced as-of: find the rows in the moved time slices, and bring each carried
        // aggregate forward by re-reading its rows there (plus the rows with new events and
        // the new customers). Too many rows for an aggregate: it is dropped, and its leaves
        // fall back to a whole-table scan.
        let apply_time = applying.elapsed();
        let advancing = std::time::Instant::now();
        let limit = (self.row_refresh_limit() * n as f64) as u64;
        // With no row allowed, every moved event leaf is recomputed whole: no slices to find,
        // and no carried aggregate stays valid.
        let advance = (moved && limit > 0).then(|| {
            self.pool()
                .install(|| Advance::new(plan, events, (prev.as_of, as_of)))
        });
        if moved && advance.is_none() {
            carried.iter_mut().for_each(|slot| *slot = None);
        }
        // Per event type, the rows that must be re-read whatever the slices: those the change
        // set gave events of that type, and the new customers.
        let mut with_new: FxHashMap<&str, RoaringBitmap> = FxHashMap::default();
        if advance.is_some() {
            for node in &plan.nodes {
                if let NodeKind::Event { pred, .. } = &node.kind {
                    let ty = pred.event_type.as_ref();
                    with_new
                        .entry(ty)
                        .or_insert_with(|| match event_dirty.get(ty) {
                            Some(b) => b | &added,
                            None => added.clone(),
                        });
                }
            }
        }
        if let Some(adv) = &advance {
            // Each carried aggregate's delta is the values of the rows it re-read.
            self.pool().install(|| {
                carried
                    .par_iter_mut()
                    .zip(&plan.aggs)
                    .zip(deltas.par_iter_mut())
                    .with_max_len(1)
                    .for_each(|((slot, spec), delta)| {
                        let Some(agg) = slot.as_mut() else {
                            return;
                        };
                        let extra = with_new.get(spec.event_type.as_ref());
                        let rows = adv.aggregate_rows(spec, extra);
                        if rows.len() > limit {
                            *slot = None;
                            return;
                        }
                        *delta = Some(Arc::new(reaggregate(agg, events, spec, as_of, &rows)));
                    })
            });
        }
        // Without a carried aggregate: per event type, every row in any of its slices.
        let mut moved_type_rows: FxHashMap<&str, Option<RoaringBitmap>> = FxHashMap::default();
        let advance_time = advancing.elapsed();
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
                    let job = match &advance {
                        Some(adv) => moved_event_job(
                            adv,
                            pred,
                            (deltas[*agg].as_ref(), carried[*agg].as_ref()),
                            &mut moved_type_rows,
                            (&with_new, limit),
                            old,
                        ),
                        None => Job::Full,
                    };
                    jobs.push((id, job));
                    continue;
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
        let mut revisited = RoaringBitmap::new();
        let mut whole_leaves = 0;
        for (_, job) in &jobs {
            match job {
                Job::Rows(rows, _) => revisited |= rows,
                Job::Changed(delta, _) => revisited |= &delta.bitmap,
                Job::Full => whole_leaves += 1,
                Job::Keep(_) => {}
            }
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
            revisited_rows: revisited.len(),
            whole_leaves,
            apply_time,
            advance_time,
            diff_time: diffing.elapsed(),
        })
    }
}

/// An event leaf's job after `as_of` moved: from its carried aggregate (brought forward) when
/// there is one, re-evaluating only its rows that can change; otherwise row by row from the
/// events, over every moved row of its type; whole when its filters read `now` or those rows
/// exceed `limit`.
fn moved_event_job<'a>(
    adv: &Advance<'a>,
    pred: &'a crate::model::EventPred,
    (delta, carried): (Option<&Arc<AggDelta>>, Option<&Aggregate>),
    type_rows: &mut FxHashMap<&'a str, Option<RoaringBitmap>>,
    (with_new, limit): (&FxHashMap<&str, RoaringBitmap>, u64),
    old: Arc<RoaringBitmap>,
) -> Job {
    if let (Some(delta), Some(agg)) = (delta, carried) {
        // The aggregate's re-read rows, plus (first/last bounds against `now`) the rows whose
        // unchanged aggregate may now fall on the other side of the bound.
        let delta = match adv.bound_rows(pred) {
            Some(bound) if !bound.is_subset(&delta.bitmap) => {
                let rows = bound | &delta.bitmap;
                Arc::new(AggDelta::gather(agg, rows.iter().collect()))
            }
            _ => delta.clone(),
        };
        return if delta.rows.is_empty() {
            Job::Keep(old)
        } else {
            Job::Changed(delta, old)
        };
    }
    if reads_now(&pred.filters) {
        return Job::Full;
    }
    let ty = pred.event_type.as_ref();
    let rows = type_rows.entry(ty).or_insert_with(|| {
        let rows = adv.type_rows(ty, with_new.get(ty));
        (rows.len() <= limit).then_some(rows)
    });
    match rows {
        Some(rows) if rows.is_empty() => Job::Keep(old),
        Some(rows) => Job::Rows(rows.clone(), old),
        None => Job::Full,
    }
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
            // Rows come sorted: a failed push is a repeat, already in.
            let _ = bitmap.try_push(r);
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
