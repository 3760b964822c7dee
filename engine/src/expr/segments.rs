//! Segment membership in trigger conditions: `segment('vip')` (alias `in_segment('vip')`,
//! spelled out `customer in segment('vip')`) is true when the event's customer is in segment
//! `vip`'s membership **as of the start of the batch** (or chunk) the event runs in.
//!
//! The segment engine (`fusebox-segment`) computes memberships; whoever runs it publishes the
//! result into a [`Memberships`] registry ([`Memberships::publish`]) after each computation or
//! refresh. The trigger engine takes a [`MembershipSnapshot`] of its registry when a batch
//! starts and every transaction of that batch reads that snapshot, through its execution
//! scope like any other input. A membership published while a batch runs therefore applies
//! from the next batch: a run never depends on when, relative to the executor's threads, a
//! publication happened. A condition on a segment that has never been published is an
//! evaluation error (recorded in the outcome), never a silent `false`.
//!
//! The process-wide registry ([`Memberships::global`]) is what an engine reads unless it is
//! built with its own (`EngineBuilder::memberships`).

use std::sync::{Arc, OnceLock, RwLock};

use rustc_hash::FxHashMap;

/// The memberships of every published segment at one moment; immutable.
#[derive(Debug, Default)]
pub struct MembershipSnapshot {
    /// Sorted, unique customer ids per segment id.
    segments: FxHashMap<Arc<str>, Arc<[u64]>>,
}

impl MembershipSnapshot {
    /// A snapshot with no segment published (shared).
    pub fn empty() -> &'static MembershipSnapshot {
        static EMPTY: OnceLock<MembershipSnapshot> = OnceLock::new();
        EMPTY.get_or_init(MembershipSnapshot::default)
    }

    /// Whether `customer` is in segment `id`; `None` if nothing was published for it.
    pub fn contains(&self, id: &str, customer: u64) -> Option<bool> {
        self.segments
            .get(id)
            .map(|m| m.binary_search(&customer).is_ok())
    }

    /// The published segment ids, in no particular order.
    pub fn segment_ids(&self) -> impl Iterator<Item = &str> {
        self.segments.keys().map(|k| k.as_ref())
    }
}

/// A registry of the latest published membership per segment id.
///
/// Publishing replaces the current snapshot with a new one (copy on write: the member lists
/// themselves are shared), so a snapshot handed out earlier never changes.
#[derive(Debug, Default)]
pub struct Memberships {
    current: RwLock<Arc<MembershipSnapshot>>,
}

impl Memberships {
    /// A new, empty registry (for an engine of its own; see also [`Memberships::global`]).
    pub fn new() -> Memberships {
        Memberships::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static Arc<Memberships> {
        static GLOBAL: OnceLock<Arc<Memberships>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Memberships::default()))
    }

    /// The memberships as they are now; later publications do not change it.
    pub fn snapshot(&self) -> Arc<MembershipSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the membership of segment `id` with `customers` (any order, duplicates ok).
    pub fn publish(&self, id: &str, mut customers: Vec<u64>) {
        customers.sort_unstable();
        customers.dedup();
        let members: Arc<[u64]> = customers.into();
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut segments = current.segments.clone();
        segments.insert(Arc::from(id), members);
        *current = Arc::new(MembershipSnapshot { segments });
    }

    /// Whether `customer` is in segment `id` now; `None` if nothing was published for it.
    pub fn contains(&self, id: &str, customer: u64) -> Option<bool> {
        self.snapshot().contains(id, customer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_does_not_see_later_publications() {
        let registry = Memberships::new();
        assert_eq!(registry.contains("vip", 1), None);
        registry.publish("vip", vec![3, 1, 1]);
        let before = registry.snapshot();
        registry.publish("vip", vec![2]);
        registry.publish("new", vec![1]);
        assert_eq!(before.contains("vip", 1), Some(true));
        assert_eq!(before.contains("new", 1), None);
        assert_eq!(registry.contains("vip", 1), Some(false));
        assert_eq!(registry.contains("vip", 2), Some(true));
    }
}
