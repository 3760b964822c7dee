//! Runaway control over time: per-trigger fuel budgets per window, throttle → stop →
//! notify, recovery.
//!
//! A trigger with a `budget:` has a soft fuel budget per window (`fuel`) and a hard one
//! (`hard_fuel`, default twice the soft). Windows are **event time** (`settings.budget_window`
//! seconds, default 60), in both `fusebox run` and the live engine, so a recorded log replays
//! the same decisions. A window *closes* when the stream reaches an event of a later window
//! (timestamps that go back count in the current window). At each close, from the trigger's
//! *demand* in that window — the fuel its committed, skipped and aborted executions used,
//! plus the fuel of the chained executions its input-event executions caused (its
//! cascade, whichever triggers ran them), plus its deferred firings priced at its fuel per
//! execution:
//! - over its hard budget for `stop_after` consecutive windows (default 3) → **stopped**: from
//!   the next window on, its firings are recorded as skipped (`trigger_stopped`) with the
//!   reason and figures; it stays stopped until an operator resumes it (remove the budget or
//!   raise it in the triggers file and run again; in the live engine, reload the file);
//! - otherwise over its soft budget → **throttled**: in the next window it fires in place on
//!   at most its *allowance* of input events (soft budget ÷ its fuel per execution, cascade
//!   included); past that, its executions move to the slow lane ([`crate::slow_lane`]);
//! - throttled and back under its soft budget for `recover_after` consecutive windows
//!   (default 2) → **recovered**.
//!
//! Every transition notifies the trigger's owner once, through the run's [`Notifier`], with
//! the figures that caused it: fuel used, budget, window, executions, share of all fuel.
//!
//! **Determinism.** Decisions change only at window boundaries and depend only on the
//! outcomes of the closed window, whose fuel is the same on every executor and thread count
//! (see `exec::txn`, "Fuel"); the session runs each window's events as a separate chunk, so
//! a stop applies exactly from the next window's first event on every executor.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fusebox_quotas::notify::{Figures, Notification, NotificationKind, Notifier, Subject};
use serde::Serialize;

use crate::event::EventRecord;
use crate::exec::Participation;
use crate::outcome::{RecordStatus, TriggerResult};
use crate::sink::RecordResult;
use crate::slow_lane::SlowLane;
use crate::trigger::{TriggerIdx, TriggerSet};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a governed trigger stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GovernorState {
    /// Within budget.
    Active,
    /// Over its soft budget in the last closed window.
    Throttled,
    /// Over its hard budget for `stop_after` windows: its firings are skipped.
    Stopped,
}

/// One transition, as reported in the run summary and `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The trigger.
    pub trigger: Arc<str>,
    /// `throttled`, `stopped` or `recovered`.
    pub to: &'static str,
    /// Start of the window that caused it (event time, RFC 3339).
    pub window_start: String,
    /// Fuel the trigger used in that window, plus its deferred firings priced at its fuel
    /// per execution (its demand).
    pub fuel_used: u64,
    /// Its soft budget per window.
    pub budget: u64,
    /// Its hard budget per window.
    pub hard_budget: u64,
    /// Its executions in that window.
    pub executions: u64,
    /// Its firings deferred to the slow lane in that window (priced into `fuel_used` at its
    /// fuel per execution); omitted when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub deferred: u64,
    /// Its demand as a share of all fuel used in that window plus its own deferred demand
    /// (0–1).
    pub share: f64,
}

#[derive(Debug, Clone)]
struct Governed {
    state: GovernorState,
    over_hard: u32,
    under_soft: u32,
    fuel: u64,
    executions: u64,
    /// Fuel of the chained executions its input-event executions caused in the current
    /// window (its cascade: charged to it as well as to the triggers that ran).
    cascade: u64,
    /// Firings deferred to the slow lane in the current window.
    deferred: u64,
    /// Fuel per execution in the last window it executed in (to price deferred firings).
    per_execution: u64,
    /// While throttled: input events per window it may fire on in place.
    allowance: Option<u64>,
    /// Input events of its types seen in the current window.
    fired: u64,
}

impl Governed {
    fn fresh() -> Governed {
        Governed {
            state: GovernorState::Active,
            over_hard: 0,
            under_soft: 0,
            fuel: 0,
            executions: 0,
            cascade: 0,
            deferred: 0,
            per_execution: 0,
            allowance: None,
            fired: 0,
        }
    }
}

/// The governor's state over a stream (carried from chunk to chunk with the stream).
#[derive(Debug, Clone, Default)]
pub struct Governor {
    /// Current window index (event time / window length), once the first event is seen.
    window: Option<i64>,
    triggers: Vec<Governed>,
    /// Every trigger's fuel in the current window (for shares).
    total_fuel: u64,
    /// Per trigger index, why it is stopped by the governor (the snapshot executions read).
    stops: Vec<Option<Arc<str>>>,
    transitions: Vec<Transition>,
    /// Deferred executions of throttled triggers.
    lane: SlowLane,
}

impl Governor {
    /// Whether any trigger of `set` has a budget (otherwise the governor does nothing).
    pub fn applies(set: &TriggerSet) -> bool {
        set.triggers.iter().any(|t| t.budget.is_some())
    }

    /// The window of an event time (microseconds), for `set`'s window length.
    pub fn window_of(set: &TriggerSet, timestamp: i64) -> i64 {
        let len = i64::from(set.settings.budget_window_s.max(1)) * 1_000_000;
        timestamp.div_euclid(len)
    }

    /// Adapts to `set` (a new trigger set: states carry over by trigger id).
    pub fn fit(&mut self, set: &TriggerSet, previous: Option<&TriggerSet>) {
        let old = std::mem::take(&mut self.triggers);
        let old_stops = std::mem::take(&mut self.stops);
        let fresh = Governed::fresh();
        if let Some(previous) = previous {
            self.lane.refit(set, previous);
        }
        for t in &set.triggers {
            // A governed trigger keeps its state (and any stop) by id; the rest start afresh.
            let before = previous
                .and_then(|p| p.triggers.iter().position(|o| o.id == t.id))
                .filter(|_| t.budget.is_some());
            self.triggers.push(
                before
                    .and_then(|i| old.get(i).cloned())
                    .unwrap_or_else(|| fresh.clone()),
            );
            self.stops
                .push(before.and_then(|i| old_stops.get(i).cloned().flatten()));
        }
    }

    /// An operator resumed trigger `index`: a governor stop is lifted and it starts over as
    /// active, its window counts cleared.
    pub fn resume(&mut self, index: usize) {
        if let Some(g) = self.triggers.get_mut(index) {
            *g = Governed {
                per_execution: g.per_execution,
                ..Governed::fresh()
            };
        }
        if let Some(stop) = self.stops.get_mut(index) {
            *stop = None;
        }
    }

    /// The window the stream is in (`None` before its first event).
    pub fn current_window(&self) -> Option<i64> {
        self.window
    }

    /// Per trigger index: the governor's stop reason, if stopped.
    pub fn stops(&self) -> &[Option<Arc<str>>] {
        &self.stops
    }

    /// The slow lane.
    pub fn slow_lane(&self) -> &SlowLane {
        &self.lane
    }

    pub(crate) fn slow_lane_mut(&mut self) -> &mut SlowLane {
        &mut self.lane
    }

    /// Whether the slow lane is in use: a trigger is throttled or executions are queued.
    pub(crate) fn lane_active(&self) -> bool {
        !self.lane.is_empty() || self.triggers.iter().any(|g| g.allowance.is_some())
    }

    /// How each trigger takes part in each record of a chunk, in order: a table of distinct
    /// participation vectors and, per record, its index in the table (empty: every record
    /// uses the first). Counts the records' firings of throttled triggers: past its
    /// allowance in the window, a throttled trigger is deferred.
    pub(crate) fn participation(
        &mut self,
        set: &TriggerSet,
        records: &[EventRecord],
    ) -> (Vec<Vec<Participation>>, Vec<u32>) {
        let base: Vec<Participation> = self
            .stops
            .iter()
            .map(|s| s.clone().map_or(Participation::Run, Participation::Stopped))
            .collect();
        if !self.triggers.iter().any(|g| g.allowance.is_some()) {
            return (vec![base], Vec::new());
        }
        let mut table = vec![base];
        let mut keys: Vec<Vec<TriggerIdx>> = vec![Vec::new()];
        let mut picks = Vec::with_capacity(records.len());
        for record in records {
            let mut deferred = Vec::new();
            if let Ok(event) = &record.event {
                for &ti in set.for_event_type(&event.event_type) {
                    let Some(g) = self.triggers.get_mut(ti as usize) else {
                        continue;
                    };
                    if let Some(allowance) = g.allowance {
                        g.fired += 1;
                        let stopped = self.stops.get(ti as usize).is_some_and(Option::is_some);
                        if g.fired > allowance && !stopped {
                            deferred.push(ti);
                        }
                    }
                }
            }
            let pick = match keys.iter().position(|k| *k == deferred) {
                Some(i) => i,
                None => {
                    let mut row = table[0].clone();
                    for &ti in &deferred {
                        row[ti as usize] = Participation::Deferred;
                    }
                    table.push(row);
                    keys.push(deferred);
                    table.len() - 1
                }
            };
            picks.push(pick as u32);
        }
        (table, picks)
    }

    /// Every transition so far, in order.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The current state of every governed trigger.
    pub fn states(&self, set: &TriggerSet) -> Vec<(Arc<str>, GovernorState)> {
        set.triggers
            .iter()
            .zip(&self.triggers)
            .filter(|(t, _)| t.budget.is_some())
            .map(|(t, g)| (t.id.clone(), g.state))
            .collect()
    }

    /// Moves the stream to `window`, closing the current one if it is earlier. Returns
    /// whether a window closed (the stop snapshot may have changed).
    pub fn advance(
        &mut self,
        set: &TriggerSet,
        window: i64,
        notifier: Option<&dyn Notifier>,
    ) -> bool {
        match self.window {
            None => {
                self.window = Some(window);
                false
            }
            Some(current) if window > current => {
                self.close(set, current, notifier);
                self.window = Some(window);
                true
            }
            Some(_) => false,
        }
    }

    /// Counts a committed record's fuel into the current window (and, for a fast-lane
    /// record, into the slow lane's account).
    pub fn count(&mut self, set: &TriggerSet, result: &RecordResult) {
        let RecordStatus::Processed { triggers } = &result.outcome.status else {
            return;
        };
        let fast = result.outcome.lane.is_none();
        for (i, t) in triggers.iter().enumerate() {
            let idx = result
                .timings
                .get(i)
                .map(|(idx, _)| *idx as usize)
                .or_else(|| set.triggers.iter().position(|x| x.id == t.trigger));
            match t.result {
                // Not executed here; a deferred firing is priced into the window's demand.
                TriggerResult::Deferred { .. } => {
                    if let Some(g) = idx.and_then(|i| self.triggers.get_mut(i)) {
                        g.deferred += 1;
                    }
                    continue;
                }
                TriggerResult::Stopped { .. } => continue,
                _ => {}
            }
            self.total_fuel += t.fuel;
            if fast {
                self.lane.add_fast_fuel(t.fuel);
            }
            if let Some(g) = t.root.and_then(|r| self.triggers.get_mut(r as usize)) {
                g.cascade += t.fuel;
            }
            if let Some(g) = idx.and_then(|i| self.triggers.get_mut(i)) {
                g.fuel += t.fuel;
                g.executions += 1;
            }
        }
    }

    fn close(&mut self, set: &TriggerSet, window: i64, notifier: Option<&dyn Notifier>) {
        let len_s = i64::from(set.settings.budget_window_s.max(1));
        let start = DateTime::<Utc>::from_timestamp(window.saturating_mul(len_s), 0)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let end =
            DateTime::<Utc>::from_timestamp(window.saturating_add(1).saturating_mul(len_s), 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let total = self.total_fuel;
        for g in &mut self.triggers {
            g.fired = 0;
        }
        for (i, t) in set.triggers.iter().enumerate() {
            let Some(budget) = &t.budget else { continue };
            let g = &mut self.triggers[i];
            let used = g.fuel.saturating_add(g.cascade);
            let (executions, deferred) = (g.executions, g.deferred);
            g.fuel = 0;
            g.cascade = 0;
            g.executions = 0;
            g.deferred = 0;
            if let Some(per_execution) = used.checked_div(executions) {
                g.per_execution = per_execution;
            }
            if g.state == GovernorState::Stopped {
                continue;
            }
            // Its demand: what it and the cascades it started used, plus what it would have
            // used on its deferred firings (so neither chaining nor the slow lane hides a
            // runaway from the budgets).
            let priced = deferred.saturating_mul(g.per_execution);
            let fuel = used.saturating_add(priced);
            g.over_hard = if fuel > budget.hard_fuel {
                g.over_hard + 1
            } else {
                0
            };
            let to = if g.over_hard >= set.settings.stop_after {
                Some(GovernorState::Stopped)
            } else if fuel > budget.fuel {
                g.under_soft = 0;
                (g.state == GovernorState::Active).then_some(GovernorState::Throttled)
            } else if g.state == GovernorState::Throttled {
                g.under_soft += 1;
                (g.under_soft >= set.settings.recover_after).then_some(GovernorState::Active)
            } else {
                None
            };
            let after = to.unwrap_or(g.state);
            let per_execution = g.per_execution;
            g.allowance = (after == GovernorState::Throttled).then(|| {
                // The input events its soft budget pays for at its fuel per execution (all
                // of them if it used none).
                budget.fuel.checked_div(per_execution).unwrap_or(u64::MAX)
            });
            let Some(to) = to else { continue };
            g.state = to;
            // Of everything used in the window plus its own unexecuted demand.
            let all = total.saturating_add(priced);
            let share = if all == 0 {
                0.0
            } else {
                (fuel as f64 / all as f64).min(1.0)
            };
            let word = match to {
                GovernorState::Stopped => "stopped",
                GovernorState::Throttled => "throttled",
                GovernorState::Active => "recovered",
            };
            let reason = match to {
                GovernorState::Stopped => format!(
                    "used {fuel} fuel in the {len_s} s window from {}, over its hard budget {} for {} consecutive windows",
                    start.to_rfc3339(),
                    budget.hard_fuel,
                    set.settings.stop_after
                ),
                GovernorState::Throttled => format!(
                    "used {fuel} fuel in the {len_s} s window from {}, over its budget {}",
                    start.to_rfc3339(),
                    budget.fuel
                ),
                GovernorState::Active => format!(
                    "under its budget {} for {} consecutive windows (last: {fuel} fuel)",
                    budget.fuel, set.settings.recover_after
                ),
            };
            if to == GovernorState::Stopped {
                self.stops[i] = Some(Arc::from(format!("stopped by the governor: {reason}")));
            }
            tracing::warn!(trigger = %t.id, state = word, %reason, "trigger governor");
            self.transitions.push(Transition {
                trigger: t.id.clone(),
                to: word,
                window_start: start.to_rfc3339(),
                fuel_used: fuel,
                budget: budget.fuel,
                hard_budget: budget.hard_fuel,
                executions,
                deferred,
                share,
            });
            if let Some(n) = notifier {
                n.notify(Notification {
                    owner: t.owner.to_string(),
                    subject: Subject::trigger(t.id.to_string()),
                    kind: match to {
                        GovernorState::Stopped => NotificationKind::Stopped,
                        GovernorState::Throttled => NotificationKind::Throttled,
                        GovernorState::Active => NotificationKind::Recovered,
                    },
                    reason: reason.clone(),
                    figures: Figures::new()
                        .with("fuel_used", fuel)
                        .with("budget", budget.fuel)
                        .with("hard_budget", budget.hard_fuel)
                        .with("window_s", len_s as u64)
                        .with("window_start", start.to_rfc3339())
                        .with("executions", executions)
                        .with("deferred", deferred)
                        .with("share_of_fuel", share),
                    at: end,
                    message: format!("trigger {} {word}: {reason}", t.id),
                });
            }
        }
        self.total_fuel = 0;
    }
}
