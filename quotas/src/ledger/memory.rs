//! The in-memory ledger: lock-free atomics, one cache line per process.
//!
//! Each process has a `Cell` of five 64-bit atomics:
//!
//! ```text
//! head      = day:32 | epoch:16 | flags:16     (flags: WARNED, STOPPED)
//! records   = epoch:16 | used:48
//! bytes     = epoch:16 | used:48
//! raised_r  = day_tag:16 | cap:48               (0 = no raise)
//! raised_b  = day_tag:16 | cap:48
//! ```
//!
//! The **epoch** names the current period; it advances on day rollover and
//! on operator reset. Every counter word carries the epoch it counts for,
//! so a charge is one compare-and-swap that checks the epoch, the cap and
//! adds in one step: a word from an older epoch reads as zero (the first
//! charge of a period overwrites it), a word from a newer epoch means this
//! thread's view of `head` is stale and it starts over.
//!
//! **Zero over-grant:** a counter word only ever increases through a CAS
//! whose new value is ≤ the cap the thread read, and caps only grow within a
//! day (operator raises); so for enforcing processes no interleaving makes
//! a counter exceed its cap. A two-dimension reserve charges records then
//! bytes; if bytes do not fit, the records charge is returned — meanwhile a
//! concurrent reserve may see the records briefly higher and be denied
//! (a conservative false denial, never an over-grant).
//!
//! Refunds subtract only from a word still tagged with the reservation's
//! epoch, and only while the head is on the reservation's day (an operator
//! rewind moves the day and keeps the epoch), so a refund never credits a
//! newer period. Epochs are 16-bit and
//! compared with wrapping arithmetic: a reservation would have to stay open
//! across 32 768 rollovers/resets to be confused.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use super::{Ledger, LedgerError};
use crate::config::ProcessConfig;
use crate::day::QuotaDay;
use crate::state::{
    rescale, Events, Operation, Period, ReserveOutcome, ReserveRequest, SlotSnapshot, Verdict,
    STOPPED, WARNED,
};
use crate::usage::{Dimension, Usage, MAX_AMOUNT};

const VALUE_BITS: u32 = 48;
const VALUE_MASK: u64 = MAX_AMOUNT;

#[derive(Debug)]
struct Cell {
    head: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    raised_records: AtomicU64,
    raised_bytes: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    day: i32,
    epoch: u16,
    flags: u8,
}

impl Head {
    fn unpack(w: u64) -> Head {
        Head {
            day: (w >> 32) as u32 as i32,
            epoch: (w >> 16) as u16,
            flags: w as u8,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.day as u32) << 32) | (u64::from(self.epoch) << 16) | u64::from(self.flags)
    }
}

fn counter(epoch: u16, used: u64) -> u64 {
    (u64::from(epoch) << VALUE_BITS) | used
}

fn unpack_counter(w: u64) -> (u16, u64) {
    ((w >> VALUE_BITS) as u16, w & VALUE_MASK)
}

/// `a` is a later epoch than `b`.
fn newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

fn day_tag(day: i32) -> u64 {
    u64::from(day as u16)
}

enum Charge {
    /// Charged; usage after, and whether it passed the cap (shadow only).
    Done(u64, bool),
    /// Would pass the cap; usage seen.
    Exceeded(u64),
    /// The word belongs to a newer epoch.
    Stale,
}

impl Cell {
    fn new() -> Cell {
        Cell {
            head: AtomicU64::new(
                Head {
                    day: i32::MIN,
                    epoch: 0,
                    flags: 0,
                }
                .pack(),
            ),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            raised_records: AtomicU64::new(0),
            raised_bytes: AtomicU64::new(0),
        }
    }

    fn counter(&self, dim: Dimension) -> &AtomicU64 {
        match dim {
            Dimension::Records => &self.records,
            Dimension::Bytes => &self.bytes,
        }
    }

    #[inline]
    fn charge(word: &AtomicU64, epoch: u16, amount: u64, cap: u64, shadow: bool) -> Charge {
        let mut w = word.load(Acquire);
        loop {
            let (we, used) = unpack_counter(w);
            let base = if we == epoch {
                used
            } else if newer(we, epoch) {
                return Charge::Stale;
            } else {
                0
            };
            let want = base.saturating_add(amount);
            let over = want > cap;
            if over && !shadow {
                return Charge::Exceeded(base);
            }
            match word.compare_exchange_weak(
                w,
                counter(epoch, want.min(MAX_AMOUNT)),
                AcqRel,
                Acquire,
            ) {
                Ok(_) => return Charge::Done(want.min(MAX_AMOUNT), over),
                Err(cur) => w = cur,
            }
        }
    }

    #[inline]
    fn uncharge(word: &AtomicU64, epoch: u16, amount: u64) {
        if amount == 0 {
            return;
        }
        let mut w = word.load(Acquire);
        loop {
            let (we, used) = unpack_counter(w);
            if we != epoch {
                return;
            }
            match word.compare_exchange_weak(
                w,
                counter(epoch, used.saturating_sub(amount)),
                AcqRel,
                Acquire,
            ) {
                Ok(_) => return,
                Err(cur) => w = cur,
            }
        }
    }

    fn used(&self, epoch: u16) -> Usage {
        let read = |w: &AtomicU64| match unpack_counter(w.load(Acquire)) {
            (e, used) if e == epoch => used,
            _ => 0,
        };
        Usage::new(read(&self.records), read(&self.bytes))
    }

    fn raised(&self, day: i32) -> Option<Usage> {
        let read = |w: &AtomicU64| {
            let v = w.load(Acquire);
            (v != 0 && v >> VALUE_BITS == day_tag(day)).then_some(v & VALUE_MASK)
        };
        match (read(&self.raised_records), read(&self.raised_bytes)) {
            (Some(r), Some(b)) => Some(Usage::new(r, b)),
            _ => None,
        }
    }

    /// Sets `bit` in the head if it still describes `(day, epoch)` and the
    /// bit is clear; true if this call set it.
    fn set_flag(&self, day: i32, epoch: u16, bit: u8) -> bool {
        let mut w = self.head.load(Acquire);
        loop {
            let h = Head::unpack(w);
            if h.day != day || h.epoch != epoch || h.flags & bit != 0 {
                return false;
            }
            let next = Head {
                flags: h.flags | bit,
                ..h
            };
            match self
                .head
                .compare_exchange_weak(w, next.pack(), AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(cur) => w = cur,
            }
        }
    }

    /// Loads the head, rolling it forward to `day` if that is newer.
    /// Returns the head in effect and whether a stopped day was closed.
    fn head_for(&self, day: QuotaDay) -> (Head, bool) {
        let day = day.days_since_epoch();
        let mut w = self.head.load(Acquire);
        loop {
            let h = Head::unpack(w);
            if day <= h.day {
                return (h, false);
            }
            let next = Head {
                day,
                epoch: h.epoch.wrapping_add(1),
                flags: 0,
            };
            match self.head.compare_exchange(w, next.pack(), AcqRel, Acquire) {
                Ok(_) => return (next, h.flags & STOPPED != 0),
                Err(cur) => w = cur,
            }
        }
    }

    fn reserve(&self, req: &ReserveRequest) -> ReserveOutcome {
        let mut events = 0u8;
        loop {
            let (h, rolled) = self.head_for(req.day);
            if rolled {
                events |= Events::ROLLED_OVER;
            }
            let raised = self.raised(h.day);
            let caps = raised.unwrap_or(req.caps);
            let period = Period {
                day: QuotaDay::from_days_since_epoch(h.day),
                token: u64::from(h.epoch),
            };
            let out = |verdict, used, events| ReserveOutcome {
                verdict,
                period,
                used,
                caps,
                events: Events(events),
            };
            if h.flags & STOPPED != 0 && !req.shadow {
                return out(Verdict::Stopped, self.used(h.epoch), events);
            }
            let r = match Self::charge(
                &self.records,
                h.epoch,
                req.amount.records,
                caps.records,
                req.shadow,
            ) {
                Charge::Stale => continue,
                Charge::Exceeded(used) => {
                    if self.set_flag(h.day, h.epoch, STOPPED) {
                        events |= Events::STOPPED;
                    }
                    let mut seen = self.used(h.epoch);
                    seen.records = used;
                    return out(Verdict::Exceeded(Dimension::Records), seen, events);
                }
                Charge::Done(used, over) => (used, over),
            };
            let b = match Self::charge(
                &self.bytes,
                h.epoch,
                req.amount.bytes,
                caps.bytes,
                req.shadow,
            ) {
                Charge::Stale => {
                    Self::uncharge(&self.records, h.epoch, req.amount.records);
                    continue;
                }
                Charge::Exceeded(used) => {
                    Self::uncharge(&self.records, h.epoch, req.amount.records);
                    if self.set_flag(h.day, h.epoch, STOPPED) {
                        events |= Events::STOPPED;
                    }
                    let seen = Usage::new(r.0.saturating_sub(req.amount.records), used);
                    return out(Verdict::Exceeded(Dimension::Bytes), seen, events);
                }
                Charge::Done(used, over) => (used, over),
            };
            let used = Usage::new(r.0, b.0);
            if (r.1 || b.1) && self.set_flag(h.day, h.epoch, STOPPED) {
                events |= Events::STOPPED;
            }
            if h.flags & WARNED == 0 {
                let warn = match raised {
                    Some(caps) if caps != req.caps => rescale(req.warn, req.caps, caps),
                    _ => req.warn,
                };
                if (used.records >= warn.records || used.bytes >= warn.bytes)
                    && self.set_flag(h.day, h.epoch, WARNED)
                {
                    events |= Events::WARNED;
                }
            }
            return out(Verdict::Granted, used, events);
        }
    }

    fn snapshot(&self, day: QuotaDay) -> SlotSnapshot {
        let h = Head::unpack(self.head.load(Acquire));
        if day.days_since_epoch() > h.day {
            return SlotSnapshot {
                day,
                used: Usage::ZERO,
                flags: 0,
                raised: self.raised(day.days_since_epoch()),
            };
        }
        SlotSnapshot {
            day: QuotaDay::from_days_since_epoch(h.day),
            used: self.used(h.epoch),
            flags: h.flags,
            raised: self.raised(h.day),
        }
    }

    fn operate(&self, day: QuotaDay, op: Operation) -> SlotSnapshot {
        match op {
            Operation::Raise(caps) => {
                let (h, _) = self.head_for(day);
                // Stored before the flags are cleared, so a reserve that sees
                // the cleared flags also sees the new caps.
                self.raised_records.store(
                    (day_tag(h.day) << VALUE_BITS) | caps.records.min(MAX_AMOUNT),
                    Release,
                );
                self.raised_bytes.store(
                    (day_tag(h.day) << VALUE_BITS) | caps.bytes.min(MAX_AMOUNT),
                    Release,
                );
                self.swap_head(h, |h| Head { flags: 0, ..h })
            }
            Operation::Resume => {
                let (h, _) = self.head_for(day);
                self.swap_head(h, |h| Head {
                    flags: h.flags & !STOPPED,
                    ..h
                })
            }
            Operation::Reset => {
                let (h, _) = self.head_for(day);
                self.swap_head(h, |h| Head {
                    epoch: h.epoch.wrapping_add(1),
                    flags: 0,
                    ..h
                })
            }
            Operation::SetUsage(used) => self.set_usage(day, used),
            Operation::Rewind(to) => self.rewind(to),
        }
    }

    /// Replaces the head `h` by `next(h)`, retrying on the current head:
    /// days only advance, so a concurrent rollover makes the action apply
    /// to the newer day.
    fn swap_head(&self, mut h: Head, next: impl Fn(Head) -> Head) -> SlotSnapshot {
        loop {
            match self
                .head
                .compare_exchange(h.pack(), next(h).pack(), AcqRel, Acquire)
            {
                Ok(_) => return self.snapshot(QuotaDay::from_days_since_epoch(h.day)),
                Err(cur) => h = Head::unpack(cur),
            }
        }
    }

    /// A new period holding `used`. The head is published *frozen* (STOPPED)
    /// while the counters are filled, so no enforcing reserve is granted
    /// against the still-empty counters (it is denied as stopped: a
    /// conservative denial in a window of nanoseconds); a shadow reserve
    /// ignores the flag and charges, and filling adds to that charge rather
    /// than overwriting it. A rollover meanwhile wins: the fill goes stale.
    fn set_usage(&self, day: QuotaDay, used: Usage) -> SlotSnapshot {
        let (mut h, _) = self.head_for(day);
        let frozen = loop {
            let next = Head {
                epoch: h.epoch.wrapping_add(1),
                flags: STOPPED,
                ..h
            };
            match self
                .head
                .compare_exchange(h.pack(), next.pack(), AcqRel, Acquire)
            {
                Ok(_) => break next,
                Err(cur) => h = Head::unpack(cur),
            }
        };
        let fill = |word: &AtomicU64, amount: u64| {
            let _ = Self::charge(word, frozen.epoch, amount.min(MAX_AMOUNT), MAX_AMOUNT, true);
        };
        fill(&self.records, used.records);
        fill(&self.bytes, used.bytes);
        let thawed = Head { flags: 0, ..frozen };
        let _ = self
            .head
            .compare_exchange(frozen.pack(), thawed.pack(), AcqRel, Acquire);
        self.snapshot(QuotaDay::from_days_since_epoch(frozen.day))
    }

    /// Moves the head back to `to`, keeping its epoch (so its usage) and
    /// flags; a raise for the day it leaves moves along. Frozen (STOPPED
    /// added) while the raise is re-tagged, for the same reason as
    /// [`Cell::set_usage`].
    fn rewind(&self, to: QuotaDay) -> SlotSnapshot {
        let to_day = to.days_since_epoch();
        let mut h = Head::unpack(self.head.load(Acquire));
        loop {
            if to_day >= h.day {
                return self.snapshot(QuotaDay::from_days_since_epoch(h.day));
            }
            let frozen = Head {
                day: to_day,
                flags: h.flags | STOPPED,
                ..h
            };
            match self
                .head
                .compare_exchange(h.pack(), frozen.pack(), AcqRel, Acquire)
            {
                Ok(_) => {
                    if let Some(caps) = self.raised(h.day) {
                        let tag = day_tag(to_day) << VALUE_BITS;
                        self.raised_records.store(tag | caps.records, Release);
                        self.raised_bytes.store(tag | caps.bytes, Release);
                    }
                    let thawed = Head {
                        flags: h.flags,
                        ..frozen
                    };
                    let _ =
                        self.head
                            .compare_exchange(frozen.pack(), thawed.pack(), AcqRel, Acquire);
                    return self.snapshot(to);
                }
                Err(cur) => h = Head::unpack(cur),
            }
        }
    }
}

/// A ledger in process memory: fast (see `benches/`), shared by the threads
/// of one process, lost on exit. (The durable ledger does not build on it: it
/// keeps exact per-slot state under a mutex, because its log order must match
/// its state order.)
#[derive(Debug, Default)]
pub struct MemoryLedger {
    cells: OnceLock<Box<[CachePadded<Cell>]>>,
    declared: OnceLock<Vec<ProcessConfig>>,
}

impl MemoryLedger {
    /// An empty, unbound ledger.
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }

    #[inline]
    fn cell(&self, slot: u32) -> Result<&Cell, LedgerError> {
        let cells = self
            .cells
            .get()
            .ok_or_else(|| LedgerError::Binding("memory ledger used before bind".into()))?;
        cells
            .get(slot as usize)
            .map(|c| &**c)
            .ok_or(LedgerError::NoSuchSlot(slot))
    }
}

impl Ledger for MemoryLedger {
    fn bind(&self, processes: &[ProcessConfig]) -> Result<(), LedgerError> {
        let cells: Box<[CachePadded<Cell>]> = processes
            .iter()
            .map(|_| CachePadded::new(Cell::new()))
            .collect();
        self.cells
            .set(cells)
            .map_err(|_| LedgerError::Binding("memory ledger bound twice".into()))?;
        let _ = self.declared.set(processes.to_vec());
        Ok(())
    }

    fn declared(&self) -> Result<Vec<ProcessConfig>, LedgerError> {
        Ok(self.declared.get().cloned().unwrap_or_default())
    }

    #[inline]
    fn reserve(&self, slot: u32, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        Ok(self.cell(slot)?.reserve(req))
    }

    #[inline]
    fn refund(&self, slot: u32, period: Period, amount: Usage) -> Result<(), LedgerError> {
        let cell = self.cell(slot)?;
        let epoch = period.token as u16;
        // A rewind keeps the epoch but moves the day, and ends the period
        // for refunds as in every backend. (A rewind racing this check lets
        // one refund through: exact accounting, never an under-count.)
        if Head::unpack(cell.head.load(Acquire)).day != period.day.days_since_epoch() {
            return Ok(());
        }
        Cell::uncharge(cell.counter(Dimension::Records), epoch, amount.records);
        Cell::uncharge(cell.counter(Dimension::Bytes), epoch, amount.bytes);
        Ok(())
    }

    fn snapshot(&self, slot: u32, day: QuotaDay) -> Result<SlotSnapshot, LedgerError> {
        Ok(self.cell(slot)?.snapshot(day))
    }

    fn operate(
        &self,
        slot: u32,
        day: QuotaDay,
        op: Operation,
    ) -> Result<SlotSnapshot, LedgerError> {
        Ok(self.cell(slot)?.operate(day, op))
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_packing_round_trips() {
        for h in [
            Head {
                day: i32::MIN,
                epoch: 0,
                flags: 0,
            },
            Head {
                day: 20_415,
                epoch: 65_535,
                flags: STOPPED | WARNED,
            },
            Head {
                day: -3,
                epoch: 7,
                flags: WARNED,
            },
        ] {
            assert_eq!(Head::unpack(h.pack()), h);
        }
        assert!(newer(1, 0) && newer(0, 65_535) && !newer(5, 5) && !newer(3, 4));
    }
}
