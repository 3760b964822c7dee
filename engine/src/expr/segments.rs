//! Segment membership in trigger conditions: `segment('vip')` (alias `in_segment('vip')`,
//! spelled out `customer in segment('vip')`) is true when the event's customer is in the latest
//! membership published for segment `vip`.
//!
//! The segment engine (`fusebox-segment`) computes memberships; whoever runs it publishes the
//! result here ([`Memberships::publish`]) after each computation or refresh, and conditions
//! read it when they are evaluated — always the latest published membership. A condition on a
//! segment that was never published is an evaluation error (recorded in the outcome), never a
//! silent `false`.
//!
//! The registry is process-wide ([`Memberships::global`]): conditions are compiled long before
//! the segments they mention are computed, so they hold a slot that is filled later.

use std::sync::{Arc, OnceLock, RwLock};

use rustc_hash::FxHashMap;

/// The published membership of one segment.
#[derive(Debug)]
pub struct SegmentSlot {
    id: Arc<str>,
    members: RwLock<Option<Arc<[u64]>>>,
}

impl SegmentSlot {
    /// Segment id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `customer` is a member; `None` if nothing was published yet.
    pub fn contains(&self, customer: u64) -> Option<bool> {
        let guard = self.members.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|m| m.binary_search(&customer).is_ok())
    }
}

/// Latest published membership per segment id.
#[derive(Debug, Default)]
pub struct Memberships {
    slots: RwLock<FxHashMap<Arc<str>, Arc<SegmentSlot>>>,
}

impl Memberships {
    /// The process-wide registry conditions read.
    pub fn global() -> &'static Memberships {
        static GLOBAL: OnceLock<Memberships> = OnceLock::new();
        GLOBAL.get_or_init(Memberships::default)
    }

    /// The slot of a segment (created empty on first mention).
    pub fn slot(&self, id: &str) -> Arc<SegmentSlot> {
        if let Some(s) = self.slots.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return s.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let id: Arc<str> = Arc::from(id);
        slots
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(SegmentSlot {
                    id,
                    members: RwLock::new(None),
                })
            })
            .clone()
    }

    /// Replaces the membership of segment `id` with `customers` (any order, duplicates ok).
    pub fn publish(&self, id: &str, mut customers: Vec<u64>) {
        customers.sort_unstable();
        customers.dedup();
        let slot = self.slot(id);
        *slot.members.write().unwrap_or_else(|p| p.into_inner()) = Some(customers.into());
    }

    /// Whether `customer` is in segment `id`; `None` if nothing was published for it.
    pub fn contains(&self, id: &str, customer: u64) -> Option<bool> {
        // A lookup, not `slot`: asking must not register a slot.
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(id)?.contains(customer)
    }
}
