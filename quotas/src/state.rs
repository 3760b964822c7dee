//! The quota state machine of one process, and the vocabulary every ledger
//! backend speaks.
//!
//! A process's ledger entry describes one **period**: a quota day plus a
//! sequence number that every new period takes the next value of — a new
//! day, and an operator `reset`, `set` or `rewind` within or across days.
//! The sequence never restarts, so a period's identity is unique even when an
//! operator moves a day back and it comes round again. Within a period:
//!
//! ```text
//!            usage ≥ warn_at·limit            a reserve would exceed the limit
//!  Active ───────────────────────▶ Warned ──────────────────────────▶ Exhausted
//!    ▲        (notify once)                   (stop; notify once)        │
//!    └──────── next quota day / operator reset, raise or resume ─────────┘
//! ```
//!
//! * A reserve is **granted** when usage + request ≤ cap in every dimension,
//!   and the usage is charged at once; it is **exceeded** otherwise and
//!   charges nothing. The first exceeded reserve of a period sets the STOPPED
//!   flag; while it is set every reserve is denied as **stopped**, even one
//!   that would fit — the process is switched off, not throttled.
//! * **Shadow** processes go through the same transitions (and notifications)
//!   but are always granted; their usage may pass the limit.
//! * A request stamped with a day *older* than the entry's day is charged to
//!   the entry's day: the ledger never moves backwards, so late events are
//!   counted against the newest day rather than a day already closed.
//! * Refunds carry the [`Period`] they were charged in and are dropped if
//!   the period has ended (rollover or reset): a refund can never give back
//!   credit that a newer period did not grant.
//!
//! [`PeriodState`] is the exact, single-threaded form of these rules. The
//! durable ledger runs it under a per-process mutex, the Redis ledger mirrors
//! it in Lua, and the in-memory ledger implements it with atomics; the shared
//! conformance tests hold all of them to the same behaviour.

use serde::{Deserialize, Serialize};

use crate::day::QuotaDay;
use crate::usage::{Dimension, Usage, MAX_AMOUNT};

/// Flag: the warning for this period has been raised.
pub const WARNED: u8 = 1;
/// Flag: a reserve was denied for exceeding the limit; the process is
/// stopped for the rest of the period (for shadow processes: would be).
pub const STOPPED: u8 = 2;

/// Transitions a reserve caused, each reported exactly once per period by
/// whichever caller caused it (the basis of "notify once").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events(pub u8);

impl Events {
    /// This reserve crossed the warning threshold.
    pub const WARNED: u8 = 1;
    /// This reserve exceeded the limit and stopped the process.
    pub const STOPPED: u8 = 2;
    /// This reserve opened a new quota day on a process that was stopped.
    pub const ROLLED_OVER: u8 = 4;

    /// Whether `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// What the ledger decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Charged.
    Granted,
    /// The process was already stopped for this period.
    Stopped,
    /// The request does not fit under the limit in this dimension.
    Exceeded(Dimension),
}

/// The accounting period a charge belongs to; refunds must present it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    /// The quota day.
    pub day: QuotaDay,
    /// Backend-specific period id (sequence number or epoch); with the day,
    /// unique among the periods of one entry.
    pub token: u64,
}

/// A reservation request as the ledger sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The quota day of the request's instant in the process's zone.
    pub day: QuotaDay,
    /// What to charge.
    pub amount: Usage,
    /// Configured caps ([`MAX_AMOUNT`] = unmetered); an operator raise for
    /// the day takes precedence.
    pub caps: Usage,
    /// Warning thresholds for the configured caps.
    pub warn: Usage,
    /// Shadow mode: never deny.
    pub shadow: bool,
}

/// The ledger's answer to a reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// Granted or why not.
    pub verdict: Verdict,
    /// The period charged (or that would have been).
    pub period: Period,
    /// Usage of the period after the reserve.
    pub used: Usage,
    /// Effective caps (configured, or raised by an operator).
    pub caps: Usage,
    /// Transitions this reserve caused.
    pub events: Events,
}

/// An operator action on one process's current period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Replace the caps for the rest of the day; clears STOPPED and WARNED so
    /// the warning re-arms against the new limit.
    Raise(Usage),
    /// Clear STOPPED; usage and limit stay.
    Resume,
    /// Start a new period: usage zero, flags clear, raise kept.
    Reset,
    /// Start a new period with this usage (an operator's correction, e.g.
    /// after a recovery lost part of the day): flags clear, raise kept. Like
    /// `Reset`, refunds of earlier reservations no longer apply.
    SetUsage(Usage),
    /// Move the entry back to an earlier day, keeping its usage, flags and a
    /// raise made for the day it leaves: the way out when an event stamped
    /// far in the future pinned the entry to its day (a ledger otherwise
    /// never moves backwards, so every later request would be charged to
    /// that day). Everything charged since is kept, charged to the earlier
    /// day: usage never goes down. The period changes with the day, so
    /// refunds of reservations made before the rewind no longer apply
    /// (over-counted, never under). No-op unless the day is earlier than the
    /// entry's. The `day` passed to `operate` is ignored.
    Rewind(QuotaDay),
}

/// A read-only view of one process's ledger entry for a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotSnapshot {
    /// The day described (the requested day, or the entry's newer day).
    pub day: QuotaDay,
    /// Usage charged in the current period.
    pub used: Usage,
    /// [`WARNED`] | [`STOPPED`].
    pub flags: u8,
    /// Caps set by an operator raise for this day.
    pub raised: Option<Usage>,
}

/// Coarse state for reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaState {
    /// Below the warning threshold.
    Active,
    /// At or past the warning threshold.
    Warned,
    /// Stopped until the next quota day or an operator action.
    Exhausted,
}

impl QuotaState {
    /// The state a flag set describes.
    pub fn from_flags(flags: u8) -> QuotaState {
        if flags & STOPPED != 0 {
            QuotaState::Exhausted
        } else if flags & WARNED != 0 {
            QuotaState::Warned
        } else {
            QuotaState::Active
        }
    }
}

/// The exact state of one process's ledger entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodState {
    /// Day of the current period.
    pub day: QuotaDay,
    /// Period sequence number: the next one for every new period (day,
    /// reset, set, rewind), never restarting (wrapping at 2^32).
    pub seq: u32,
    /// Usage charged in the period.
    pub used: Usage,
    /// [`WARNED`] | [`STOPPED`].
    pub flags: u8,
    /// Operator caps and the day they apply to.
    pub raised: Option<(QuotaDay, Usage)>,
}

impl Default for PeriodState {
    fn default() -> Self {
        PeriodState {
            day: QuotaDay::from_days_since_epoch(i32::MIN),
            seq: 0,
            used: Usage::ZERO,
            flags: 0,
            raised: None,
        }
    }
}

impl PeriodState {
    /// The current period's identity.
    pub fn period(&self) -> Period {
        Period {
            day: self.day,
            token: u64::from(self.seq),
        }
    }

    /// Moves to `day` if it is newer; returns the day in effect (never older
    /// than the entry's) and whether a stopped period was closed.
    fn roll_to(&mut self, day: QuotaDay) -> (QuotaDay, bool) {
        if day > self.day {
            let was_stopped = self.flags & STOPPED != 0;
            self.day = day;
            self.seq = self.seq.wrapping_add(1);
            self.used = Usage::ZERO;
            self.flags = 0;
            (day, was_stopped)
        } else {
            (self.day, false)
        }
    }

    fn caps(&self, configured: Usage) -> Usage {
        match self.raised {
            Some((d, caps)) if d == self.day => caps,
            _ => configured,
        }
    }

    /// Applies a reserve (see the module docs for the rules).
    pub fn reserve(&mut self, req: &ReserveRequest) -> ReserveOutcome {
        let (_, rolled) = self.roll_to(req.day);
        let mut events = if rolled { Events::ROLLED_OVER } else { 0 };
        let caps = self.caps(req.caps);
        let raised = caps != req.caps;
        let outcome = |s: &PeriodState, verdict, events| ReserveOutcome {
            verdict,
            period: s.period(),
            used: s.used,
            caps,
            events: Events(events),
        };
        if self.flags & STOPPED != 0 && !req.shadow {
            return outcome(self, Verdict::Stopped, events);
        }
        let want = Usage::new(
            self.used.records.saturating_add(req.amount.records),
            self.used.bytes.saturating_add(req.amount.bytes),
        );
        let exceeded = if want.records > caps.records {
            Some(Dimension::Records)
        } else if want.bytes > caps.bytes {
            Some(Dimension::Bytes)
        } else {
            None
        };
        if let Some(dim) = exceeded {
            if self.flags & STOPPED == 0 {
                self.flags |= STOPPED;
                events |= Events::STOPPED;
            }
            if !req.shadow {
                return outcome(self, Verdict::Exceeded(dim), events);
            }
        }
        self.used = want.min(Usage::new(MAX_AMOUNT, MAX_AMOUNT));
        // After a raise the configured thresholds are stale; warn relative to
        // the raised caps at the same fraction.
        let warn = if raised {
            rescale(req.warn, req.caps, caps)
        } else {
            req.warn
        };
        if self.flags & WARNED == 0
            && (self.used.records >= warn.records || self.used.bytes >= warn.bytes)
        {
            self.flags |= WARNED;
            events |= Events::WARNED;
        }
        outcome(self, Verdict::Granted, events)
    }

    /// Gives back part of a charge; ignored if `period` is not current.
    /// Returns whether it applied.
    pub fn refund(&mut self, period: Period, amount: Usage) -> bool {
        if period != self.period() {
            return false;
        }
        self.used = self.used.saturating_sub(amount);
        true
    }

    /// Applies an operator action for `day`.
    pub fn operate(&mut self, day: QuotaDay, op: Operation) -> SlotSnapshot {
        let day = match op {
            Operation::Rewind(to) => {
                if to < self.day {
                    if let Some((d, caps)) = self.raised {
                        if d == self.day {
                            self.raised = Some((to, caps));
                        }
                    }
                    self.day = to;
                    self.seq = self.seq.wrapping_add(1);
                }
                self.day
            }
            _ => self.roll_to(day).0,
        };
        match op {
            Operation::Raise(caps) => {
                self.raised = Some((day, caps));
                self.flags = 0;
            }
            Operation::Resume => self.flags &= !STOPPED,
            Operation::Reset => {
                self.seq = self.seq.wrapping_add(1);
                self.used = Usage::ZERO;
                self.flags = 0;
            }
            Operation::SetUsage(used) => {
                self.seq = self.seq.wrapping_add(1);
                self.used = used.min(Usage::new(MAX_AMOUNT, MAX_AMOUNT));
                self.flags = 0;
            }
            Operation::Rewind(_) => {}
        }
        self.snapshot(day)
    }

    /// The entry as seen on `day` (a newer day reads as an empty period).
    pub fn snapshot(&self, day: QuotaDay) -> SlotSnapshot {
        let raised_for = |d: QuotaDay| match self.raised {
            Some((rd, caps)) if rd == d => Some(caps),
            _ => None,
        };
        if day > self.day {
            SlotSnapshot {
                day,
                used: Usage::ZERO,
                flags: 0,
                raised: raised_for(day),
            }
        } else {
            SlotSnapshot {
                day: self.day,
                used: self.used,
                flags: self.flags,
                raised: raised_for(self.day),
            }
        }
    }
}

/// Warning thresholds scaled from configured caps to raised caps.
pub(crate) fn rescale(warn: Usage, configured: Usage, raised: Usage) -> Usage {
    let f = |w: u64, c: u64, r: u64| {
        if c >= MAX_AMOUNT || r >= MAX_AMOUNT {
            return MAX_AMOUNT;
        }
        let frac = w as f64 / c as f64;
        ((r as f64 * frac).ceil() as u64).clamp(1, r)
    };
    Usage::new(
        f(warn.records, configured.records, raised.records),
        f(warn.bytes, configured.bytes, raised.bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i32) -> QuotaDay {
        QuotaDay::from_days_since_epoch(n)
    }

    fn req(d: i32, r: u64) -> ReserveRequest {
        ReserveRequest {
            day: day(d),
            amount: Usage::new(r, 0),
            caps: Usage::new(10, MAX_AMOUNT),
            warn: Usage::new(8, MAX_AMOUNT),
            shadow: false,
        }
    }

    #[test]
    fn walks_active_warned_exhausted_and_rolls_over() {
        let mut s = PeriodState::default();
        let o = s.reserve(&req(1, 7));
        assert_eq!((o.verdict, o.events.0), (Verdict::Granted, 0));
        let o = s.reserve(&req(1, 1));
        assert_eq!((o.verdict, o.events.0), (Verdict::Granted, Events::WARNED));
        let o = s.reserve(&req(1, 1));
        assert_eq!((o.verdict, o.events.0), (Verdict::Granted, 0));
        let o = s.reserve(&req(1, 5));
        assert_eq!(o.verdict, Verdict::Exceeded(Dimension::Records));
        assert_eq!(o.events.0, Events::STOPPED);
        assert_eq!(o.used.records, 9);
        // Stopped: even a fitting request is denied, and only the first stop is an event.
        let o = s.reserve(&req(1, 1));
        assert_eq!((o.verdict, o.events.0), (Verdict::Stopped, 0));
        // A late request (older day) counts against the current day.
        let o = s.reserve(&req(0, 1));
        assert_eq!((o.verdict, o.period.day), (Verdict::Stopped, day(1)));
        let o = s.reserve(&req(2, 1));
        assert_eq!(
            (o.verdict, o.events.0),
            (Verdict::Granted, Events::ROLLED_OVER)
        );
        assert_eq!(o.used.records, 1);
    }

    #[test]
    fn refunds_only_apply_to_their_period() {
        let mut s = PeriodState::default();
        let o = s.reserve(&req(1, 5));
        let old = o.period;
        s.operate(day(1), Operation::Reset);
        s.reserve(&req(1, 3));
        assert!(!s.refund(old, Usage::new(5, 0)));
        assert_eq!(s.used.records, 3);
        let p = s.period();
        assert!(s.refund(p, Usage::new(2, 0)));
        assert_eq!(s.used.records, 1);
    }

    /// Day 2, rewound to day 1, rolled to day 2 again: a refund from the
    /// first day-2 period must not credit the second (it did when a new day
    /// restarted the sequence at 0: the periods had the same identity).
    #[test]
    fn a_day_that_comes_round_again_is_a_new_period() {
        let mut s = PeriodState::default();
        let old = s.reserve(&req(2, 5)).period;
        s.operate(day(1), Operation::Rewind(day(1)));
        assert_eq!((s.day, s.used.records), (day(1), 5), "usage kept");
        assert!(
            !s.refund(old, Usage::new(5, 0)),
            "the rewind ended the period"
        );
        let new = s.reserve(&req(2, 3)).period;
        assert_eq!(new.day, old.day);
        assert_ne!(new, old);
        assert!(!s.refund(old, Usage::new(3, 0)));
        assert_eq!(s.used.records, 3);
        // Not earlier: nothing happens.
        s.operate(day(5), Operation::Rewind(day(5)));
        assert_eq!(s.day, day(2));
    }

    #[test]
    fn raise_and_resume() {
        let mut s = PeriodState::default();
        s.reserve(&req(1, 9));
        assert_eq!(
            s.reserve(&req(1, 5)).verdict,
            Verdict::Exceeded(Dimension::Records)
        );
        s.operate(day(1), Operation::Resume);
        assert_eq!(s.reserve(&req(1, 1)).verdict, Verdict::Granted);
        assert_eq!(
            s.reserve(&req(1, 1)).verdict,
            Verdict::Exceeded(Dimension::Records)
        );
        let snap = s.operate(day(1), Operation::Raise(Usage::new(20, MAX_AMOUNT)));
        assert_eq!(snap.flags, 0);
        let o = s.reserve(&req(1, 5));
        assert_eq!(o.verdict, Verdict::Granted);
        assert_eq!(o.caps.records, 20);
        // 15 of 20 is below the rescaled 80% threshold (16).
        assert_eq!(o.events.0, 0);
        assert_eq!(s.reserve(&req(1, 1)).events.0, Events::WARNED);
        // The raise lapses with the day.
        assert_eq!(
            s.reserve(&req(2, 11)).verdict,
            Verdict::Exceeded(Dimension::Records)
        );
    }

    #[test]
    fn shadow_never_denies_but_reports() {
        let mut s = PeriodState::default();
        let mut r = req(1, 12);
        r.shadow = true;
        let o = s.reserve(&r);
        assert_eq!(o.verdict, Verdict::Granted);
        assert_eq!(o.events.0, Events::STOPPED | Events::WARNED);
        let o = s.reserve(&r);
        assert_eq!(
            (o.verdict, o.events.0, o.used.records),
            (Verdict::Granted, 0, 24)
        );
        assert_eq!(QuotaState::from_flags(s.flags), QuotaState::Exhausted);
    }
}
