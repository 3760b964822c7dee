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
//!
//! Each publication also records when it happened, its size and (if the publisher says) how
//! long the computation took: [`MembershipSnapshot::published`] lists them, the live
//! engine's `status()` shows them and flags a segment not refreshed for too long.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use serde::Serialize;

/// One segment's published membership.
#[derive(Debug, Clone)]
struct Publication {
    /// Sorted, unique customer ids.
    members: Arc<[u64]>,
    /// When it was published.
    at: SystemTime,
    /// How long computing it took, if the publisher said.
    compute: Option<Duration>,
}

/// What is known of one published segment: its size and freshness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedSegment {
    /// Segment id.
    pub id: String,
    /// Customers in it.
    pub members: usize,
    /// When it was last published (seconds since the Unix epoch).
    pub published_unix_s: f64,
    /// How long its last computation took (ms), if the publisher said.
    pub compute_ms: Option<f64>,
}

/// The memberships of every published segment at one moment; immutable.
#[derive(Debug, Default)]
pub struct MembershipSnapshot {
    segments: FxHashMap<Arc<str>, Publication>,
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
            .map(|p| p.members.binary_search(&customer).is_ok())
    }

    /// The published segment ids, in no particular order.
    pub fn segment_ids(&self) -> impl Iterator<Item = &str> {
        self.segments.keys().map(|k| k.as_ref())
    }

    /// Size and freshness of every published segment, by id.
    pub fn published(&self) -> Vec<PublishedSegment> {
        let mut list: Vec<PublishedSegment> = self
            .segments
            .iter()
            .map(|(id, p)| PublishedSegment {
                id: id.to_string(),
                members: p.members.len(),
                published_unix_s: p
                    .at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
                compute_ms: p.compute.map(|d| d.as_secs_f64() * 1e3),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
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
    pub fn publish(&self, id: &str, customers: Vec<u64>) {
        self.publish_computed(id, customers, None);
    }

    /// [`Memberships::publish`], also recording how long computing the membership took
    /// (shown by [`MembershipSnapshot::published`]).
    pub fn publish_computed(&self, id: &str, mut customers: Vec<u64>, compute: Option<Duration>) {
        customers.sort_unstable();
        customers.dedup();
        let publication = Publication {
            members: customers.into(),
            at: SystemTime::now(),
            compute,
        };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut segments = current.segments.clone();
        segments.insert(Arc::from(id), publication);
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

    #[test]
    fn a_publication_records_its_size_time_and_compute_time() {
        let registry = Memberships::new();
        assert!(registry.snapshot().published().is_empty());
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        registry.publish("vip", vec![3, 1, 1]);
        registry.publish_computed("new", vec![5], Some(Duration::from_millis(7)));
        let published = registry.snapshot().published();
        assert_eq!(published.len(), 2);
        assert_eq!(
            (
                published[0].id.as_str(),
                published[0].members,
                published[0].compute_ms
            ),
            ("new", 1, Some(7.0))
        );
        assert_eq!(
            (
                published[1].id.as_str(),
                published[1].members,
                published[1].compute_ms
            ),
            ("vip", 2, None)
        );
        assert!(published.iter().all(|p| p.published_unix_s >= before));
    }
}
