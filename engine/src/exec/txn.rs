//! One transaction: an input event, every trigger it fires, and every chained event those
//! emit — executed against a [`StateView`], producing writes, effects and outcomes.
//!
//! This is the single implementation of trigger semantics. The sequential reference executor
//! and the parallel executors all call [`execute`]; they differ only in the view they pass,
//! the [`ExecMode`], and how they commit the returned [`TxnOutput`] (see [`super::commit`]).
//!
//! Serial order inside a transaction: the input event's enabled triggers in `(priority, id)`
//! order; then the chained events, breadth-first, in the order they were emitted, each
//! running its own triggers the same way.
//!
//! ## Deferred writes (commutative deltas, deferred coupon takes)
//! In [`ExecMode::Deferred`], an `increment` / `award_points` on a key this transaction has
//! not read does not read it: it records a [`Write::Delta`] — amounts to add, in order, to
//! whatever the value is when the transaction commits. Two transactions that only add to a hot
//! counter therefore have no read–write conflict. Likewise an `issue_coupon` whose code only
//! leaves through effects (see `Action::IssueCoupon::deferrable`) takes "the n-th next code"
//! as a delta on the pool cursor and leaves a [`CouponSlot`]; the committer fills in the code.
//! A transaction that *reads* such a key (a condition on `customer.points`) materialises it
//! through the view, so it conflicts exactly as it should.
//!
//! Deferral must not change results. Where it could — an integer overflow that eager
//! execution would have reported at the `increment`, a pool that runs dry — the transaction
//! or the committer reports [`TxnError::NeedsEager`] and the transaction is re-run in
//! [`ExecMode::Eager`], which is the sequential semantics by definition.
//!
//! ## Fuel
//! Every trigger execution is metered in deterministic **fuel**, a function of its inputs
//! only, so the limits it drives decide the same on every executor, mode and thread count:
//! - evaluating an expression costs its static size (one unit per node), charged when it
//!   starts; a comprehension also costs its length times its body's size, charged before it
//!   iterates (so `list.exists(x, …)` over 10k elements costs 10k bodies, and a limit stops
//!   it before the work is done);
//! - each state write an action makes costs [`FUEL_PER_WRITE`] ([`Action::writes`]: counted
//!   from the action, not the view, since deferred and eager modes touch the view
//!   differently); each effect [`FUEL_PER_EFFECT`]; each chained event [`FUEL_PER_EMIT`].
//!
//! Going past the trigger's `max_fuel` aborts the execution (`fuel_exhausted`); past
//! `max_writes`, `limit_exceeded`. The fuel an execution used is in its outcome
//! ([`TriggerOutcome::fuel`]) and summed per trigger in the report.
//!
//! ## Invariants
//! - **Atomic trigger executions.** Each execution writes into its own overlay; only when all
//!   its actions succeed is the overlay merged into the transaction and its effects, slots and
//!   chained events kept. An aborted execution leaves no trace but its outcome.
//! - **Stable reads.** The first read of a key from the view is cached for the whole
//!   transaction, so two reads of one key can never observe two different writers.
//! - **No side effects here.** Effects are returned, never sent: only the committer emits
//!   them, so a re-executed transaction can never send twice.
//! - In eager mode the output has only [`Write::Set`]s and no coupon slots.

/// Fuel of one state write.
pub const FUEL_PER_WRITE: u64 = 1;
/// Fuel of one effect.
pub const FUEL_PER_EFFECT: u64 = 10;
/// Fuel of one chained event.
pub const FUEL_PER_EMIT: u64 = 10;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::delta::{AddError, Delta, NumKind};
use super::{Admitted, Participation};
use crate::customers::{AttrId, Row, Schema};
use crate::event::{chained_id, Event};
use crate::expr::segments::MembershipSnapshot;
use crate::expr::{CompiledExpr, EvalError, Scope, Ty};
use crate::outcome::{map_of, AbortReason, Effect, EffectKind, TriggerOutcome, TriggerResult};
use crate::state::{Key, StateView};
use crate::trigger::{Action, NamedExprs, PoolId, Target, Trigger, TriggerIdx, TriggerSet};
use crate::value::{AttrType, Value};

/// A map for the handful of keys one transaction touches: a vector searched linearly, which
/// beats hashing (and allocating a table) at these sizes.
#[derive(Debug)]
struct SmallMap<V>(Vec<(Key, V)>);

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<V> SmallMap<V> {
    fn get(&self, key: &Key) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn contains_key(&self, key: &Key) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    /// Inserts or replaces; returns the previous value. New keys keep insertion order.
    fn insert(&mut self, key: Key, value: V) -> Option<V> {
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }
}

/// How increments and deferrable coupon takes are executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecMode {
    /// Read-modify-write everything: the sequential semantics.
    Eager,
    /// Record commutative deltas and coupon slots where that does not change the result.
    Deferred,
}

/// Why a transaction produced no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnError {
    /// The view halted a read: the value is not known yet (the executor retries later).
    Halted,
    /// Deferred execution cannot reproduce the eager result here; re-run in eager mode.
    NeedsEager,
}

/// A pending write of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// The key's new value.
    Set(Value),
    /// Amounts to add, in order, to the key's value before this transaction (null counts as
    /// the zero of the key's kind; see [`super::delta`]).
    Delta(Delta),
}

/// Where a deferred coupon code must be filled in at commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotTarget {
    /// The `code` of the coupon effect at this index of `TxnOutput::effects`.
    CouponEffect(usize),
    /// An argument of the message/feed effect at this index.
    EffectArg(usize, Arc<str>),
}

/// A coupon taken without reading the pool cursor: the code is the pool's code at
/// `cursor_before_this_transaction + nth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponSlot {
    /// The pool.
    pub pool: PoolId,
    /// How many deferred takes from this pool came before it in this transaction.
    pub nth: u64,
    /// Where the code goes.
    pub targets: Vec<SlotTarget>,
}

/// Everything a transaction produced. Nothing of it has happened yet: the caller commits it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnOutput {
    /// Every key written by committed trigger executions, in first-write order.
    pub writes: Vec<(Key, Write)>,
    /// Effects of committed executions, in serial order.
    pub effects: Vec<Effect>,
    /// Deferred coupon codes to fill into `effects` at commit.
    pub coupon_slots: Vec<CouponSlot>,
    /// Every trigger execution, in serial order.
    pub triggers: Vec<TriggerOutcome>,
    /// Trigger index and wall time (ns) of each entry of `triggers`. Diagnostic only: never
    /// part of the deterministic outputs.
    pub timings: Vec<(TriggerIdx, u64)>,
    /// Chained events processed (emitted by committed executions).
    pub chained_events: u64,
}

/// Runs one input event (and its cascade) against `view`.
pub fn execute(
    set: &TriggerSet,
    schema: &Schema,
    view: &mut dyn StateView,
    admitted: &Admitted<'_>,
    mode: ExecMode,
) -> Result<TxnOutput, TxnError> {
    let (event, row, memberships) = (admitted.event, admitted.row, admitted.memberships);
    let _txn =
        tracing::debug_span!("transaction", event_id = %event.id, customer = event.customer_id)
            .entered();
    let mut txn = Txn {
        view,
        base: SmallMap::default(),
        written: SmallMap::default(),
        deferred_takes: Vec::new(),
    };
    let mut out = TxnOutput::default();
    // The input event is borrowed; only chained events are allocated.
    // Each event with its depth and the input-event trigger whose cascade it belongs to.
    let mut queue: VecDeque<(Option<Arc<Event>>, u32, Option<TriggerIdx>)> = VecDeque::new();
    queue.push_back((None, 0, None));
    while let Some((chained, depth, root)) = queue.pop_front() {
        let ev: &Event = chained.as_deref().unwrap_or(event);
        if depth > 0 {
            out.chained_events += 1;
        }
        for &ti in set.for_event_type(&ev.event_type) {
            let trigger = set.trigger(ti);
            let participation = admitted.participation.get(ti as usize);
            let governed = match participation {
                Some(Participation::Stopped(reason)) => Some(reason),
                _ => None,
            };
            if depth == 0 {
                match participation {
                    // Its outcome is in the event's fast-lane record.
                    Some(Participation::Excluded) => continue,
                    Some(Participation::Deferred) if trigger.stopped.is_none() => {
                        out.timings.push((ti, 0));
                        out.triggers.push(TriggerOutcome {
                            trigger: trigger.id.clone(),
                            event_id: ev.id.clone(),
                            depth,
                            result: TriggerResult::Deferred { lane: "slow" },
                            fuel: 0,
                            root,
                        });
                        continue;
                    }
                    _ => {}
                }
            }
            if let Some(reason) = trigger.stopped.as_ref().or(governed) {
                out.timings.push((ti, 0));
                out.triggers.push(TriggerOutcome {
                    trigger: trigger.id.clone(),
                    event_id: ev.id.clone(),
                    depth,
                    result: TriggerResult::Stopped {
                        skip: "trigger_stopped",
                        reason: reason.clone(),
                    },
                    fuel: 0,
                    root,
                });
                continue;
            }
            let _trigger =
                tracing::trace_span!("trigger", trigger = %trigger.id, event_id = %ev.id, depth)
                    .entered();
            let started = Instant::now();
            let mut exec = Execution {
                txn: &mut txn,
                set,
                schema,
                mode,
                event: ev,
                row,
                memberships,
                depth,
                local: SmallMap::default(),
                local_takes: Vec::new(),
                coupon: None,
                effects: Vec::new(),
                slots: Vec::new(),
                emitted: Vec::new(),
                points: 0,
                fuel: 0,
                writes: 0,
                max_fuel: trigger.limits.max_fuel.unwrap_or(u64::MAX),
            };
            let run = exec.run(trigger);
            let fuel = exec.fuel_used();
            let result = match run {
                Err(Stop::Halt) => return Err(TxnError::Halted),
                Err(Stop::NeedsEager) => return Err(TxnError::NeedsEager),
                Err(Stop::Abort(reason)) => TriggerResult::Aborted(reason),
                Ok(false) => TriggerResult::Skipped,
                Ok(true) => {
                    let Execution {
                        local,
                        local_takes,
                        effects,
                        mut slots,
                        emitted,
                        ..
                    } = exec;
                    txn.merge(local);
                    for (pool, n) in local_takes {
                        add_take(&mut txn.deferred_takes, pool, n);
                    }
                    let offset = out.effects.len();
                    for slot in &mut slots {
                        for target in &mut slot.targets {
                            match target {
                                SlotTarget::CouponEffect(i) | SlotTarget::EffectArg(i, _) => {
                                    *i += offset
                                }
                            }
                        }
                    }
                    out.coupon_slots.extend(slots);
                    out.effects.extend(effects);
                    let root = root.or(Some(ti));
                    queue.extend(
                        emitted
                            .into_iter()
                            .map(|e| (Some(Arc::new(e)), depth + 1, root)),
                    );
                    TriggerResult::Committed
                }
            };
            out.timings.push((ti, started.elapsed().as_nanos() as u64));
            out.triggers.push(TriggerOutcome {
                trigger: trigger.id.clone(),
                event_id: ev.id.clone(),
                depth,
                result,
                fuel,
                root,
            });
        }
    }
    out.writes = txn.written.0;
    Ok(out)
}

fn add_take(takes: &mut Vec<(PoolId, u64)>, pool: PoolId, n: u64) {
    match takes.iter_mut().find(|(p, _)| *p == pool) {
        Some((_, count)) => *count += n,
        None => takes.push((pool, n)),
    }
}

fn takes_of(takes: &[(PoolId, u64)], pool: PoolId) -> u64 {
    takes
        .iter()
        .find(|(p, _)| *p == pool)
        .map_or(0, |(_, n)| *n)
}

struct Txn<'v> {
    view: &'v mut dyn StateView,
    /// First value read from the view, per key.
    base: SmallMap<Value>,
    /// Writes of committed executions of this transaction.
    written: SmallMap<Write>,
    /// Deferred coupon takes so far, per pool.
    deferred_takes: Vec<(PoolId, u64)>,
}

impl Txn<'_> {
    fn base_read(&mut self, key: Key) -> Result<Value, EvalError> {
        if let Some(v) = self.base.get(&key) {
            return Ok(v.clone());
        }
        let v = self.view.read(key)?;
        self.base.insert(key, v.clone());
        Ok(v)
    }

    /// The key's current value within the transaction, materialising pending deltas.
    fn read(&mut self, key: Key) -> Result<Value, Stop> {
        match self.written.get(&key) {
            Some(Write::Set(v)) => Ok(v.clone()),
            Some(Write::Delta(delta)) => {
                let delta = delta.clone();
                let base = self.base_read(key).map_err(stop_from_view)?;
                let v = delta.apply_to(&base).map_err(|_| Stop::NeedsEager)?;
                self.written.insert(key, Write::Set(v.clone()));
                Ok(v)
            }
            None => self.base_read(key).map_err(stop_from_view),
        }
    }

    fn merge(&mut self, local: SmallMap<Write>) {
        for (key, w) in local.0 {
            let Some(previous) = self.written.get_mut(&key) else {
                self.written.insert(key, w);
                continue;
            };
            let merged = match (&*previous, w) {
                (Write::Delta(mine), Write::Delta(more)) => {
                    let mut mine = mine.clone();
                    mine.extend(&more);
                    Write::Delta(mine)
                }
                (Write::Set(v), Write::Delta(more)) => match more.apply_to(v) {
                    Ok(v) => Write::Set(v),
                    // Unreachable in practice: a local delta is only recorded when the key is
                    // not `Set` at transaction level.
                    Err(_) => Write::Delta(more),
                },
                (_, set @ Write::Set(_)) => set,
            };
            // Replaces in place: the key keeps its first-write position.
            self.written.insert(key, merged);
        }
    }
}

fn stop_from_view(e: EvalError) -> Stop {
    match e {
        EvalError::Halt => Stop::Halt,
        // Views only ever halt; anything else would be a bug, surfaced as a fallback.
        _ => Stop::NeedsEager,
    }
}

/// Why an execution stopped early.
enum Stop {
    Halt,
    NeedsEager,
    Abort(AbortReason),
}

struct Execution<'x, 'v> {
    txn: &'x mut Txn<'v>,
    set: &'x TriggerSet,
    schema: &'x Schema,
    mode: ExecMode,
    event: &'x Event,
    row: Row,
    memberships: &'x MembershipSnapshot,
    depth: u32,
    local: SmallMap<Write>,
    local_takes: Vec<(PoolId, u64)>,
    /// The latest issued code: known, or deferred (`None` inside = fill in at commit).
    coupon: Option<CouponRef>,
    effects: Vec<Effect>,
    slots: Vec<CouponSlot>,
    emitted: Vec<Event>,
    points: i64,
    /// Fuel charged by expression evaluation.
    fuel: u64,
    /// State writes made by the actions done so far ([`Action::writes`]).
    writes: u64,
    max_fuel: u64,
}

#[derive(Clone)]
enum CouponRef {
    Known(Value),
    /// Index into `Execution::slots`.
    Deferred(usize),
}

impl Scope for Execution<'_, '_> {
    fn attr(&mut self, attr: AttrId) -> Result<Value, EvalError> {
        self.read_for_eval(Key::Attr {
            row: self.row,
            attr,
        })
    }
    fn counter(&mut self, counter: crate::expr::CounterId) -> Result<Value, EvalError> {
        self.read_for_eval(Key::Counter(counter))
    }
    fn event(&self) -> &Event {
        self.event
    }
    fn coupon(&self) -> Option<Value> {
        match &self.coupon {
            Some(CouponRef::Known(v)) => Some(v.clone()),
            // Only pass-through arguments reference a deferred code; they are filled at commit.
            Some(CouponRef::Deferred(_)) => Some(Value::Null),
            None => None,
        }
    }
    fn segment(&self, id: &str) -> Option<bool> {
        self.memberships.contains(id, self.event.customer_id)
    }
    fn burn(&mut self, fuel: u64) -> Result<(), EvalError> {
        self.fuel = self.fuel.saturating_add(fuel);
        let used = self.fuel_used();
        if used > self.max_fuel {
            return Err(EvalError::FuelExhausted {
                used,
                max: self.max_fuel,
            });
        }
        Ok(())
    }
}

impl Execution<'_, '_> {
    /// All fuel used so far (see the module docs, "Fuel").
    fn fuel_used(&self) -> u64 {
        self.fuel
            .saturating_add(self.writes.saturating_mul(FUEL_PER_WRITE))
            .saturating_add((self.effects.len() as u64).saturating_mul(FUEL_PER_EFFECT))
            .saturating_add((self.emitted.len() as u64).saturating_mul(FUEL_PER_EMIT))
    }

    /// After an action: the write and fuel limits.
    fn check_limits(&self, trigger: &Trigger, action: u32) -> Result<(), Stop> {
        if let Some(max) = trigger.limits.max_writes {
            if self.writes > u64::from(max) {
                return Err(Stop::Abort(AbortReason::LimitExceeded {
                    action,
                    limit: "max_writes",
                    max: i64::from(max),
                }));
            }
        }
        let used = self.fuel_used();
        if used > self.max_fuel {
            return Err(Stop::Abort(AbortReason::FuelExhausted {
                used,
                max: self.max_fuel,
            }));
        }
        Ok(())
    }

    /// Reads for expression evaluation; a fallback request travels as `Halt` plus a flag.
    fn read_for_eval(&mut self, key: Key) -> Result<Value, EvalError> {
        match self.read(key) {
            Ok(v) => Ok(v),
            Err(Stop::Halt) => Err(EvalError::Halt),
            Err(Stop::NeedsEager) => Err(EvalError::Arithmetic(NEEDS_EAGER.into())),
            Err(Stop::Abort(_)) => Err(EvalError::Halt),
        }
    }

    fn read(&mut self, key: Key) -> Result<Value, Stop> {
        match self.local.get(&key) {
            Some(Write::Set(v)) => Ok(v.clone()),
            Some(Write::Delta(delta)) => {
                let delta = delta.clone();
                let base = self.txn.read(key)?;
                let v = delta.apply_to(&base).map_err(|_| Stop::NeedsEager)?;
                self.local.insert(key, Write::Set(v.clone()));
                Ok(v)
            }
            None => self.txn.read(key),
        }
    }

    fn write(&mut self, key: Key, value: Value) {
        self.local.insert(key, Write::Set(value));
    }

    /// Whether `key` has a known value in this transaction without reading the view.
    fn is_materialised(&self, key: &Key) -> bool {
        matches!(self.local.get(key), Some(Write::Set(_)))
            || (!self.local.contains_key(key)
                && matches!(self.txn.written.get(key), Some(Write::Set(_))))
    }

    fn push_delta(&mut self, key: Key, delta: Delta) {
        match self.local.get_mut(&key) {
            Some(Write::Delta(pending)) => pending.extend(&delta),
            Some(Write::Set(_)) => {}
            None => {
                self.local.insert(key, Write::Delta(delta));
            }
        }
    }

    /// `Ok(false)`: condition false. `Ok(true)`: all actions done.
    fn run(&mut self, trigger: &Trigger) -> Result<bool, Stop> {
        if let Some(cond) = &trigger.condition {
            match cond.eval_bool(self) {
                Ok(false) => return Ok(false),
                Ok(true) => {}
                Err(e) => {
                    return Err(eval_stop(e, |message| AbortReason::ConditionError {
                        message,
                    }))
                }
            }
        }
        for (i, action) in trigger.actions.iter().enumerate() {
            let _action = tracing::trace_span!("action", index = i, kind = action.kind()).entered();
            self.action(trigger, i as u32, action)?;
            self.writes += u64::from(action.writes());
            self.check_limits(trigger, i as u32)?;
        }
        Ok(true)
    }

    fn eval(&mut self, expr: &CompiledExpr, action: u32) -> Result<Value, Stop> {
        expr.eval(self).map_err(|e| action_error(action, e))
    }

    fn eval_named(
        &mut self,
        named: &NamedExprs,
        action: u32,
    ) -> Result<(crate::value::Map, Vec<Arc<str>>), Stop> {
        let mut out = Vec::with_capacity(named.len());
        let mut deferred_args = Vec::new();
        let deferred = matches!(self.coupon, Some(CouponRef::Deferred(_)));
        for (name, expr) in named {
            if deferred && expr.is_coupon_passthrough() {
                deferred_args.push(name.clone());
            }
            out.push((name.clone(), self.eval(expr, action)?));
        }
        Ok((map_of(out), deferred_args))
    }

    fn effect(&mut self, trigger: &Trigger, action: u32, kind: EffectKind) -> Result<usize, Stop> {
        if let Some(max) = trigger.limits.max_effects {
            if self.effects.len() as u32 >= max {
                return Err(Stop::Abort(AbortReason::LimitExceeded {
                    action,
                    limit: "max_effects",
                    max: i64::from(max),
                }));
            }
        }
        self.effects.push(Effect {
            key: format!("{}:{}:{}", self.event.id, trigger.id, action),
            event_id: self.event.id.clone(),
            customer_id: self.event.customer_id,
            trigger: trigger.id.clone(),
            action,
            kind,
        });
        Ok(self.effects.len() - 1)
    }

    /// Records which arguments of the effect just pushed carry the deferred code.
    fn bind_deferred_args(&mut self, effect: usize, args: Vec<Arc<str>>) {
        if let Some(CouponRef::Deferred(slot)) = self.coupon {
            for name in args {
                self.slots[slot]
                    .targets
                    .push(SlotTarget::EffectArg(effect, name));
            }
        }
    }

    fn action(&mut self, trigger: &Trigger, i: u32, action: &Action) -> Result<(), Stop> {
        match action {
            Action::Set { attr, value } => {
                let v = self.eval(value, i)?;
                let v = self.fit_attr(*attr, v, i)?;
                self.write(
                    Key::Attr {
                        row: self.row,
                        attr: *attr,
                    },
                    v,
                );
            }
            Action::Increment { target, by } => {
                let amount = self.eval(by, i)?;
                let (key, ty) = match target {
                    Target::Attr(a) => (
                        Key::Attr {
                            row: self.row,
                            attr: *a,
                        },
                        Ty::of_attr(self.schema.ty(*a)),
                    ),
                    Target::Counter(c) => (Key::Counter(*c), self.set.counters[usize::from(*c)].ty),
                };
                self.add(key, ty, amount, i)?;
            }
            Action::AwardPoints { attr, amount } => {
                let amount = self.eval(amount, i)?;
                let Value::Int(n) = amount else {
                    return Err(Stop::Abort(AbortReason::ActionError {
                        action: i,
                        message: format!(
                            "type error: points must be an int, got {}",
                            amount.kind()
                        ),
                    }));
                };
                if n < 0 {
                    return Err(Stop::Abort(AbortReason::ActionError {
                        action: i,
                        message: format!(
                            "cannot award negative points ({n}); use `increment` to deduct"
                        ),
                    }));
                }
                self.points = self.points.saturating_add(n);
                if let Some(max) = trigger.limits.max_points {
                    if self.points > max {
                        return Err(Stop::Abort(AbortReason::LimitExceeded {
                            action: i,
                            limit: "max_points",
                            max,
                        }));
                    }
                }
                self.add(
                    Key::Attr {
                        row: self.row,
                        attr: *attr,
                    },
                    Ty::Int,
                    Value::Int(n),
                    i,
                )?;
            }
            Action::IssueCoupon {
                pool,
                store_in,
                deferrable,
            } => {
                let key = Key::PoolCursor(*pool);
                let spec = &self.set.pools[usize::from(*pool)];
                let pool_id = spec.id.clone();
                if self.mode == ExecMode::Deferred
                    && *deferrable
                    && !self.is_materialised(&key)
                    && self.txn.view.may_defer(&key)
                {
                    let nth = takes_of(&self.txn.deferred_takes, *pool)
                        + takes_of(&self.local_takes, *pool);
                    add_take(&mut self.local_takes, *pool, 1);
                    self.push_delta(key, Delta::one_more());
                    let slot = self.slots.len();
                    self.slots.push(CouponSlot {
                        pool: *pool,
                        nth,
                        targets: Vec::new(),
                    });
                    self.coupon = Some(CouponRef::Deferred(slot));
                    let effect = self.effect(
                        trigger,
                        i,
                        EffectKind::Coupon {
                            pool: pool_id,
                            code: Arc::from(""),
                        },
                    )?;
                    self.slots[slot]
                        .targets
                        .push(SlotTarget::CouponEffect(effect));
                    return Ok(());
                }
                let cursor = match self.read(key).map_err(|s| match s {
                    Stop::Abort(_) => Stop::Halt,
                    other => other,
                })? {
                    Value::Int(n) if n >= 0 => n as u64,
                    other => {
                        return Err(Stop::Abort(AbortReason::ActionError {
                            action: i,
                            message: format!("corrupt pool cursor {other}"),
                        }))
                    }
                };
                let spec = &self.set.pools[usize::from(*pool)];
                let Some(code) = spec.code(cursor) else {
                    return Err(Stop::Abort(AbortReason::PoolExhausted {
                        action: i,
                        pool: spec.id.clone(),
                    }));
                };
                self.write(key, Value::Int(cursor as i64 + 1));
                if let Some(attr) = store_in {
                    self.write(
                        Key::Attr {
                            row: self.row,
                            attr: *attr,
                        },
                        Value::Str(code.clone()),
                    );
                }
                self.coupon = Some(CouponRef::Known(Value::Str(code.clone())));
                self.effect(
                    trigger,
                    i,
                    EffectKind::Coupon {
                        pool: pool_id,
                        code,
                    },
                )?;
            }
            Action::SendMessage {
                channel,
                template,
                args,
            } => {
                let (args, deferred) = self.eval_named(args, i)?;
                let effect = self.effect(
                    trigger,
                    i,
                    EffectKind::Message {
                        channel: *channel,
                        template: template.clone(),
                        args,
                    },
                )?;
                self.bind_deferred_args(effect, deferred);
            }
            Action::StartFeed { feed, args } => {
                let (args, deferred) = self.eval_named(args, i)?;
                let effect = self.effect(
                    trigger,
                    i,
                    EffectKind::Feed {
                        feed: feed.clone(),
                        args,
                    },
                )?;
                self.bind_deferred_args(effect, deferred);
            }
            Action::EmitEvent {
                event_type,
                properties,
            } => {
                let depth = self.depth + 1;
                let max = self.set.settings.max_chain_depth;
                if depth > max {
                    return Err(Stop::Abort(AbortReason::ChainDepthExceeded {
                        action: i,
                        emitted_depth: depth,
                        max,
                        cycle: chain_cycle(&self.event.id, &trigger.id),
                    }));
                }
                if let Some(limit) = trigger.limits.max_emitted_events {
                    if self.emitted.len() as u32 >= limit {
                        return Err(Stop::Abort(AbortReason::LimitExceeded {
                            action: i,
                            limit: "max_emitted_events",
                            max: i64::from(limit),
                        }));
                    }
                }
                let (properties, _) = self.eval_named(properties, i)?;
                self.emitted.push(Event {
                    id: Arc::from(chained_id(&self.event.id, &trigger.id, i)),
                    customer_id: self.event.customer_id,
                    event_type: event_type.clone(),
                    timestamp: self.event.timestamp,
                    process: self.event.process.clone(),
                    properties: Arc::new(properties),
                });
            }
        }
        Ok(())
    }

    /// Checks (and normalises) a value for an attribute: ints widen into float attributes.
    fn fit_attr(&self, attr: AttrId, v: Value, action: u32) -> Result<Value, Stop> {
        let ty = self.schema.ty(attr);
        match (ty, v) {
            (AttrType::Float, Value::Int(n)) => Ok(Value::Float(n as f64)),
            (ty, v) if ty.accepts(&v) => Ok(v),
            (ty, v) => Err(Stop::Abort(AbortReason::ActionError {
                action,
                message: format!(
                    "type error: attribute `{}` is {ty}, value is {} ({v})",
                    self.schema.name(attr),
                    v.kind()
                ),
            })),
        }
    }

    /// `key += amount`, with null counting as zero; ints are checked for overflow (eagerly, or
    /// at materialisation for deltas).
    fn add(&mut self, key: Key, ty: Ty, amount: Value, action: u32) -> Result<(), Stop> {
        let type_error = || {
            Stop::Abort(AbortReason::ActionError {
                action,
                message: format!(
                    "type error: cannot add a {} to a {} value",
                    amount.kind(),
                    ty.name()
                ),
            })
        };
        let kind = NumKind::of(ty).ok_or_else(type_error)?;
        let delta = Delta::new(kind, &amount).ok_or_else(type_error)?;
        if self.mode == ExecMode::Deferred
            && !self.is_materialised(&key)
            && self.txn.view.may_defer(&key)
        {
            self.push_delta(key, delta);
            return Ok(());
        }
        let current = self.read(key)?;
        let new = delta.apply_to(&current).map_err(|e| {
            Stop::Abort(AbortReason::ActionError {
                action,
                message: match e {
                    AddError::Overflow => {
                        format!("arithmetic error: integer overflow adding {amount} to {current}")
                    }
                    AddError::NotANumber => format!(
                        "type error: cannot add {amount} to {current} (a {} value)",
                        kind.name()
                    ),
                },
            })
        })?;
        self.write(key, new);
        Ok(())
    }
}

/// The loop a too-deep chain is caught in, if it is one: the triggers from the latest earlier
/// emission by `trigger` up to `trigger` again (`[a, b, a]` for A emits what fires B, B emits
/// what fires A). Read from the event's id, which spells its ancestry
/// (`{parent}/{trigger}#{action}`, see `event`); `None` when `trigger` did not emit earlier
/// in the chain (a deep chain, not a loop).
fn chain_cycle(event_id: &str, trigger: &Arc<str>) -> Option<Vec<Arc<str>>> {
    // Triggers that emitted each ancestor, innermost first.
    let mut emitters: Vec<&str> = Vec::new();
    let mut id = event_id;
    while let Some((left, _action)) = id.rsplit_once(crate::event::CHAINED_ID_MARK) {
        let (parent, emitter) = left.rsplit_once('/')?;
        emitters.push(emitter);
        id = parent;
    }
    // `trigger` is about to emit from the innermost event; find its previous emission.
    let back = emitters.iter().position(|e| *e == &**trigger)?;
    let mut cycle = vec![trigger.clone()];
    cycle.extend(emitters[..back].iter().rev().map(|e| Arc::from(*e)));
    cycle.push(trigger.clone());
    Some(cycle)
}

/// Marker carried through expression evaluation when a read needs an eager re-run.
const NEEDS_EAGER: &str = "\u{0}fusebox:needs-eager";

fn eval_stop(e: EvalError, abort: impl FnOnce(String) -> AbortReason) -> Stop {
    match e {
        EvalError::Halt => Stop::Halt,
        EvalError::FuelExhausted { used, max } => {
            Stop::Abort(AbortReason::FuelExhausted { used, max })
        }
        EvalError::Arithmetic(m) if m == NEEDS_EAGER => Stop::NeedsEager,
        e => Stop::Abort(abort(e.to_string())),
    }
}

fn action_error(action: u32, e: EvalError) -> Stop {
    eval_stop(e, |message| AbortReason::ActionError { action, message })
}

#[cfg(test)]
mod cycle_tests {
    use super::chain_cycle;
    use std::sync::Arc;

    #[test]
    fn a_loop_is_named_from_the_event_ancestry() {
        let a: Arc<str> = Arc::from("a");
        let cycle = chain_cycle("in/put/a#0/b#1/a#0/b#1", &a).unwrap();
        assert_eq!(
            cycle.iter().map(|t| &**t).collect::<Vec<_>>(),
            ["a", "b", "a"]
        );
        let self_loop = chain_cycle("x/a#0/a#0", &a).unwrap();
        assert_eq!(
            self_loop.iter().map(|t| &**t).collect::<Vec<_>>(),
            ["a", "a"]
        );
        assert_eq!(
            chain_cycle("x/b#0/c#0", &a),
            None,
            "a deep chain, not a loop"
        );
        assert_eq!(chain_cycle("plain", &a), None);
    }
}
