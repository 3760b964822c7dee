//! The slow lane: where a throttled trigger's executions past its allowance run, so they
//! cannot delay other triggers.
//!
//! **What is deferred.** While the governor holds a trigger throttled (see [`crate::governor`]),
//! it may fire on at most its *allowance* of input events per budget window in place: the
//! soft fuel budget divided by the fuel per execution it used in the window that throttled
//! it. Past that, its execution on an input event (depth 0) is *deferred*: the event's
//! record says `"result":"deferred","lane":"slow"` for it and runs every other trigger as
//! usual, and the (event, trigger) pair joins this queue. Executions on chained events are
//! never deferred (they belong to another trigger's transaction).
//!
//! **When it runs.** The queue runs in *turns*, at fixed stream positions: whenever the
//! stream position reaches a multiple of [`STRIDE`] records (and at the end of the stream,
//! where it is drained), the lane runs queued items in order until they have used
//! `settings.slow_lane_share` percent of the fuel the fast lane used since the previous
//! turn (at least one item per turn, so it always moves). So the slow lane gets a bounded
//! share of the engine, and its work never sits in front of other triggers' events.
//!
//! **What a deferred execution sees.** It runs as a transaction of its own at its turn's
//! place in the serial order — as if its event arrived then (with the event's own fields
//! and timestamp): it reads the state every earlier record left, and later records read
//! what it wrote. Its result is a record of the same line marked `"lane":"slow"` (no quota
//! is charged again: the event was charged when it was admitted).
//!
//! **Invariants.** Turns and budgets depend only on the input stream and on fuel (itself a
//! function of the inputs), never on chunking, timing, executor or thread count, so every
//! executor and every replay of a recorded log gives the same results; turns always run on
//! the sequential reference executor. Nothing queued is dropped: a stream ends by draining
//! the queue ([`crate::Session::finish`]), and a trigger stopped in the meantime records its
//! deferred firings as `trigger_stopped`.

use std::collections::VecDeque;

use crate::event::{Event, LineNo};
use crate::trigger::{TriggerIdx, TriggerSet};

/// Records between two slow-lane turns (turns run at stream positions that are multiples
/// of it).
pub const STRIDE: u64 = 64;

/// One deferred execution.
#[derive(Debug, Clone)]
pub(crate) struct SlowItem {
    /// Its event's input line and stream position.
    pub line: LineNo,
    pub position: u64,
    pub event: Event,
    /// The deferred trigger.
    pub trigger: TriggerIdx,
}

/// The queue and its fuel account (carried from chunk to chunk with the stream).
#[derive(Debug, Clone, Default)]
pub struct SlowLane {
    queue: VecDeque<SlowItem>,
    /// Fuel the fast lane used since the last turn.
    fast_fuel: u64,
    /// Deferred executions run so far.
    ran: u64,
}

impl SlowLane {
    /// Deferred executions waiting for their turn.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Deferred executions run so far.
    pub fn ran(&self) -> u64 {
        self.ran
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn defer(&mut self, item: SlowItem) {
        self.queue.push_back(item);
    }

    pub(crate) fn add_fast_fuel(&mut self, fuel: u64) {
        self.fast_fuel = self.fast_fuel.saturating_add(fuel);
    }

    /// The fuel the turn starting now may use (`percent` of the fast lane's since the last
    /// turn), resetting the account.
    pub(crate) fn start_turn(&mut self, percent: u32) -> u64 {
        let budget = self.fast_fuel.saturating_mul(u64::from(percent)) / 100;
        self.fast_fuel = 0;
        budget
    }

    pub(crate) fn pop(&mut self) -> Option<SlowItem> {
        let item = self.queue.pop_front()?;
        self.ran += 1;
        Some(item)
    }

    /// Moves the queue to a new trigger set (a reload): items follow their trigger by id;
    /// those whose trigger was removed are dropped, with a warning naming it.
    pub(crate) fn refit(&mut self, set: &TriggerSet, previous: &TriggerSet) {
        let mut dropped: Vec<(String, usize)> = Vec::new();
        self.queue.retain_mut(|item| {
            let Some(id) = previous.triggers.get(item.trigger as usize).map(|t| &t.id) else {
                return false;
            };
            match set.triggers.iter().position(|t| &t.id == id) {
                Some(i) => {
                    item.trigger = i as TriggerIdx;
                    true
                }
                None => {
                    match dropped.iter_mut().find(|(d, _)| **d == **id) {
                        Some((_, n)) => *n += 1,
                        None => dropped.push((id.to_string(), 1)),
                    }
                    false
                }
            }
        });
        for (trigger, n) in dropped {
            tracing::warn!(%trigger, deferred = n, "trigger removed by a reload: its deferred executions are dropped");
        }
    }
}
