//! An advanced `as_of` on refresh: which customers' answers can change, and bringing the
//! carried event aggregates forward to the new `as_of`.
//!
//! ## Design
//! When `as_of` moves from `t0` to `t1`, an event leaf's answer for a customer can change only
//! through the customer's events of the leaf's type that fall in a *moved time slice*:
//! - `(t0, t1]`: events that became visible (every window ends at `as_of`);
//! - `(t0 - d, t1 - d]` for a `last d` window: events that dropped out of it;
//! - `[t0 + off, t1 + off]` for a first/last test against `now + off`: a first/last time there
//!   may now lie on the other side of the bound (a first/last time is some event's timestamp).
//!
//! The first two change the row's **aggregate**; the third only the **test** on it. So:
//! - rows with events in an aggregate's slices (plus the rows the change set gave events of its
//!   type, plus new customers) get their aggregate re-read from their events at `t1`
//!   ([`reaggregate`], reading only the part of each row's base events inside the window),
//!   written into the carried aggregate and kept as its delta;
//! - a leaf re-evaluates that delta, plus, for a `now`-relative bound, the rows with events in
//!   the bound's slice, gathered from the (now current) carried aggregate — no events are read
//!   for the latter.
//!
//! The slices' rows are found through each type's time index
//! ([`crate::data::TypeEvents::rows_between`]): the time buckets the slice spans (filtering
//! the two at its edges), plus a scan of the type's tail (the events appended since load).
//! One task per event type, so a type's index is built once, by the task that then uses it.
//!
//! This work runs before the refresh's leaves and does not check its deadline: the first
//! advance pays for bucketing each type's events by time (a counting sort, `O(b)`, plus a
//! comparison sort of any bucket that skew made large).
//!
//! ## Invariants
//! - A row outside every slice of a leaf has the same matching events at `t1` as at `t0` (so
//!   the same aggregate) and lies on the same side of every moved bound: the same answer. A
//!   property filter comparing with `now` breaks this for any event, so such aggregates are
//!   never carried across a move and their leaves are recomputed whole.
//! - After [`reaggregate`], a carried aggregate equals a whole-table aggregation at `t1`, bit
//!   for bit (the rows re-read fold their events in the same order as a full scan).

use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::data::EventStore;
use crate::exec::ROW_CHUNK;
use crate::kernels::{aggregate_rows_multi, AggDelta, AggSpec, Aggregate};
use crate::model::{EventPred, EventTest, PropPred, Window};
use crate::plan::{NodeKind, Plan};

/// Whether a property filter compares with `now` (then an advanced as-of can change whether
/// any event passes it, whatever its timestamp).
pub(crate) fn reads_now(filters: &[PropPred]) -> bool {
    filters.iter().any(|p| p.op.is_relative())
}

/// A time slice, inclusive bounds.
type Slice = (i64, i64);

/// The slices whose events can change the *aggregate* over `window` (see the module docs).
fn aggregate_slices(window: Window, (t0, t1): (i64, i64)) -> Vec<Slice> {
    let mut slices = vec![(t0.saturating_add(1), t1)];
    if let (Window::Last(_), Some(s0), Some(s1)) = (window, window.start(t0), window.start(t1)) {
        // Events at or after the old start and before the new one dropped out.
        slices.push((s0, s1.saturating_sub(1)));
    }
    slices
}

/// The slice in which a first/last time flips the *test* (none for other tests or absolute
/// bounds).
fn bound_slice(test: &EventTest, (t0, t1): (i64, i64)) -> Option<Slice> {
    match *test {
        EventTest::First { at, .. } | EventTest::Last { at, .. } if at.is_relative() => {
            Some((at.at(t0), at.at(t1)))
        }
        _ => None,
    }
}

/// The rows to revisit after `as_of` moved, per aggregate, per leaf and per event type.
pub(crate) struct Advance<'p> {
    times: (i64, i64),
    /// Rows with events in each (type, slice) any leaf needs.
    slices: FxHashMap<(&'p str, Slice), RoaringBitmap>,
}

impl<'p> Advance<'p> {
    /// Looks up the rows of every slice the plan's event leaves need (in parallel, on the
    /// current Rayon pool), for a move from `times.0` to `times.1`.
    pub(crate) fn new(plan: &'p Plan, events: &EventStore, times: (i64, i64)) -> Advance<'p> {
        let mut wanted: Vec<(&'p str, Slice)> = Vec::new();
        for node in &plan.nodes {
            if let NodeKind::Event { pred, agg, .. } = &node.kind {
                if reads_now(&plan.aggs[*agg].filters) {
                    continue;
                }
                let ty = pred.event_type.as_ref();
                for s in leaf_slices(pred, times) {
                    wanted.push((ty, s));
                }
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut by_type: FxHashMap<&'p str, Vec<Slice>> = FxHashMap::default();
        for (ty, s) in wanted {
            by_type.entry(ty).or_default().push(s);
        }
        let slices = by_type
            .into_par_iter()
            .flat_map_iter(|(ty, slices)| {
                let te = events.of_type(ty);
                slices.into_iter().map(move |s| {
                    let mut rows = Vec::new();
                    if let Some(te) = te {
                        te.rows_between(s.0, s.1, &mut rows);
                    }
                    rows.sort_unstable();
                    rows.dedup();
                    let bitmap = RoaringBitmap::from_sorted_iter(rows).unwrap_or_default();
                    ((ty, s), bitmap)
                })
            })
            .collect();
        Advance { times, slices }
    }

    fn rows_of(&self, ty: &str, slice: Slice, out: &mut RoaringBitmap) {
        if let Some(b) = self.slices.get(&(ty, slice)) {
            *out |= b;
        }
    }

    /// The rows whose aggregate `spec` can differ, plus `extra` (the rows the change set gave
    /// events of its type, and new customers).
    pub(crate) fn aggregate_rows(
        &self,
        spec: &AggSpec,
        extra: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        let mut rows = extra.cloned().unwrap_or_default();
        for s in aggregate_slices(spec.window, self.times) {
            self.rows_of(&spec.event_type, s, &mut rows);
        }
        rows
    }

    /// The rows whose first/last time may have crossed the leaf's `now`-relative bound (`None`
    /// for leaves without one).
    pub(crate) fn bound_rows(&self, pred: &EventPred) -> Option<RoaringBitmap> {
        let s = bound_slice(&pred.test, self.times)?;
        let mut rows = RoaringBitmap::new();
        self.rows_of(&pred.event_type, s, &mut rows);
        Some(rows)
    }

    /// For leaves without a carried aggregate: the rows of every slice of `ty`, plus `extra`.
    pub(crate) fn type_rows(&self, ty: &str, extra: Option<&RoaringBitmap>) -> RoaringBitmap {
        let mut rows = extra.cloned().unwrap_or_default();
        for ((t, _), b) in &self.slices {
            if *t == ty {
                rows |= b;
            }
        }
        rows
    }
}

/// All slices of one leaf.
fn leaf_slices(pred: &EventPred, times: (i64, i64)) -> Vec<Slice> {
    let mut slices = aggregate_slices(pred.window, times);
    slices.extend(bound_slice(&pred.test, times));
    slices
}

/// Re-reads `rows` of `agg` from their events at `as_of`, in parallel chunks on the current
/// Rayon pool, writes the results into `agg` and returns them as the aggregate's delta (the
/// leaves over `agg` re-evaluate exactly these rows from these values).
pub(crate) fn reaggregate(
    agg: &mut Aggregate,
    events: &EventStore,
    spec: &AggSpec,
    as_of: i64,
    rows: &RoaringBitmap,
) -> AggDelta {
    let list: Vec<u32> = rows.iter().collect();
    let te = events.of_type(&spec.event_type);
    let parts: Vec<Aggregate> = list
        .par_chunks(ROW_CHUNK)
        .map(|chunk| {
            aggregate_rows_multi(te, &[spec], as_of, chunk)
                .pop()
                .unwrap_or_default()
        })
        .collect();
    let values = Aggregate::concat(parts);
    agg.scatter(&list, &values);
    AggDelta::with_bitmap(list, rows.clone(), values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::visible_span;
    use crate::model::TimeRef;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn slices_cover_exactly_the_events_that_change_side() {
        let (t0, t1) = (100 * DAY, 103 * DAY);
        let w = Window::Last(30 * DAY);
        let slices = aggregate_slices(w, (t0, t1));
        assert_eq!(slices, vec![(t0 + 1, t1), (70 * DAY + 1, 73 * DAY)]);
        // An event is in a slice exactly when `contains` differs between t0 and t1.
        for ts in [
            70 * DAY,
            70 * DAY + 1,
            73 * DAY,
            73 * DAY + 1,
            t0,
            t0 + 1,
            t1,
            t1 + 1,
        ] {
            let flips = w.contains(ts, t0) != w.contains(ts, t1);
            let found = slices.iter().any(|&(lo, hi)| lo <= ts && ts <= hi);
            assert_eq!(flips, found, "ts {ts}");
        }
        let last = EventTest::Last {
            before: true,
            at: TimeRef::Rel(-7 * DAY),
        };
        assert_eq!(bound_slice(&last, (t0, t1)), Some((93 * DAY, 96 * DAY)));
        let absolute = EventTest::First {
            before: true,
            at: TimeRef::Abs(5),
        };
        assert_eq!(bound_slice(&absolute, (t0, t1)), None);
    }

    #[test]
    fn extreme_times_saturate_without_panicking_or_losing_events() {
        for (t0, t1) in [
            (i64::MIN, i64::MIN + 5),
            (i64::MAX - 5, i64::MAX),
            (i64::MIN, i64::MAX),
        ] {
            for w in [Window::All, Window::Last(DAY), Window::Last(i64::MAX)] {
                let slices = aggregate_slices(w, (t0, t1));
                for ts in [
                    i64::MIN,
                    i64::MIN + 1,
                    -1,
                    0,
                    1,
                    i64::MAX - 1,
                    i64::MAX,
                    t0,
                    t1,
                ] {
                    if w.contains(ts, t0) != w.contains(ts, t1) {
                        assert!(
                            slices.iter().any(|&(lo, hi)| lo <= ts && ts <= hi),
                            "{w:?} {t0}..{t1}: event at {ts} changes side outside every slice"
                        );
                    }
                }
                let (lo, hi) = visible_span(w, t1);
                for ts in [i64::MIN, 0, i64::MAX, t1] {
                    assert_eq!(
                        w.contains(ts, t1),
                        lo <= ts && ts <= hi,
                        "{w:?} at {t1}: {ts}"
                    );
                }
            }
        }
        let bound = EventTest::First {
            before: false,
            at: TimeRef::Rel(i64::MAX),
        };
        assert_eq!(bound_slice(&bound, (0, 10)), Some((i64::MAX, i64::MAX)));
    }
}
