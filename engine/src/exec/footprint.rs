//! Static footprints: what a transaction of one event type may read and write, known from the
//! compiled trigger set before anything runs.
//!
//! For each event type, [`Footprints`] walks the [`TriggerSet`]: every enabled trigger of the
//! type, and transitively every trigger of every type an `emit_event` action may emit (cycles
//! are followed once; chained events are for the same customer, so they stay in the
//! transaction's row). For each trigger it takes the counters its condition and its action
//! expressions mention (`counters.<name>`) and, from [`crate::trigger::Action::access`] — the
//! one exhaustive description of what an action touches — the attributes, counters and pools
//! its actions read or write.
//!
//! Two executors use it: the locking executor locks everything in [`Footprint::counters`] and
//! [`Footprint::pools`] (reads and writes alike); the partitioned path
//! ([`super::partition`]) needs to know which shared keys are **read** — a counter mentioned
//! by an expression ([`Footprint::counters_read`]) or a pool cursor read by a take whose code
//! is kept ([`Footprint::pools_read`]) — because blind counter deltas and pass-through coupon
//! takes commute and are resolved after the fact.
//!
//! ## Invariants
//! - **Over-approximation.** A footprint covers every trigger that *may* run: a condition that
//!   turns out false, a trigger stopped by the governor or a chained event never emitted only
//!   make a transaction touch less than its footprint, never more.
//! - Every list is sorted and without repeats; `counters_read ⊆ counters`,
//!   `pools_read ⊆ pools`.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::customers::Row;
use crate::expr::CounterId;
use crate::state::Key;
use crate::trigger::{Action, PoolId, StateRef, TriggerSet};

/// Every key a transaction of one event type may touch, apart from which customer it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Some reachable trigger runs, so the customer's row may be read or written.
    pub row: bool,
    /// Every counter that may be read or written.
    pub counters: Vec<CounterId>,
    /// Every pool a code may be taken from.
    pub pools: Vec<PoolId>,
    /// Counters an expression (a condition, an argument, an amount) may read.
    pub counters_read: Vec<CounterId>,
    /// Pools whose cursor may be read: an `issue_coupon` that is not deferrable (its code is
    /// stored or used by a later expression), so the code depends on the takes before it.
    pub pools_read: Vec<PoolId>,
}

impl Footprint {
    /// Whether a transaction on customer `row` with this footprint may touch `key`.
    pub fn covers(&self, row: Row, key: Key) -> bool {
        match key {
            Key::Attr { row: r, .. } => self.row && r == row,
            Key::Counter(c) => self.counters.binary_search(&c).is_ok(),
            Key::PoolCursor(p) => self.pools.binary_search(&p).is_ok(),
        }
    }
}

/// Footprints by event type, computed on first use.
pub(crate) struct Footprints<'s> {
    set: &'s TriggerSet,
    by_type: FxHashMap<Arc<str>, Arc<Footprint>>,
}

impl<'s> Footprints<'s> {
    pub fn new(set: &'s TriggerSet) -> Self {
        Footprints {
            set,
            by_type: FxHashMap::default(),
        }
    }

    /// The footprint of an event of `event_type` and its whole possible cascade.
    pub fn of(&mut self, event_type: &Arc<str>) -> Arc<Footprint> {
        if let Some(f) = self.by_type.get(event_type) {
            return f.clone();
        }
        let mut fp = Footprint::default();
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        let mut todo: Vec<&str> = vec![event_type];
        while let Some(ty) = todo.pop() {
            if !seen.insert(ty) {
                continue;
            }
            for &ti in self.set.for_event_type(ty) {
                let trigger = self.set.trigger(ti);
                fp.row = true;
                if let Some(cond) = &trigger.condition {
                    fp.counters_read.extend(cond.counters_used());
                }
                for action in &trigger.actions {
                    for expr in action.exprs() {
                        fp.counters_read.extend(expr.counters_used());
                    }
                    // Every action's reads and writes, from its one exhaustive description.
                    let access = action.access();
                    for state in access.reads.iter().chain(&access.writes) {
                        match *state {
                            StateRef::Attr(_) => fp.row = true,
                            StateRef::Counter(c) => fp.counters.push(c),
                            StateRef::PoolCursor(p) => fp.pools.push(p),
                        }
                    }
                    if let Action::IssueCoupon {
                        pool,
                        deferrable: false,
                        ..
                    } = action
                    {
                        fp.pools_read.push(*pool);
                    }
                    if let Some(event_type) = access.emits {
                        todo.push(event_type);
                    }
                }
            }
        }
        fp.counters.extend(fp.counters_read.iter().copied());
        for list in [&mut fp.counters, &mut fp.counters_read] {
            list.sort_unstable();
            list.dedup();
        }
        for list in [&mut fp.pools, &mut fp.pools_read] {
            list.sort_unstable();
            list.dedup();
        }
        let fp = Arc::new(fp);
        self.by_type.insert(event_type.clone(), fp.clone());
        fp
    }
}
