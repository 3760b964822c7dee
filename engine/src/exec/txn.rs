//! One transaction: an input event, every trigger it fires, and every chained event those
//! emit — executed against a [`StateView`], producing writes, effects and outcomes.
//!
//! This is the single implementation of trigger semantics. The sequential reference executor
//! and the parallel executor both call [`execute`]; they differ only in the view they pass
//! and in how they commit the returned [`TxnOutput`]. That is what makes "parallel equals
//! sequential" a property of the schedulers alone.
//!
//! Serial order inside a transaction: the input event's enabled triggers in `(priority, id)`
//! order; then the chained events, breadth-first, in the order they were emitted, each
//! running its own triggers the same way.
//!
//! Invariants:
//! - **Atomic trigger executions.** Each execution writes into its own overlay; only when all
//!   its actions succeed is the overlay merged into the transaction and its effects and
//!   chained events kept. An aborted execution leaves no trace but its outcome.
//! - **Stable reads.** The first read of a key from the view is cached for the whole
//!   transaction, so two reads of one key can never observe two different writers.
//! - **No side effects here.** Effects are returned, never sent: only the committer emits
//!   them, so a re-executed transaction can never send twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::customers::{AttrId, Row, Schema};
use crate::event::Event;
use crate::expr::{CompiledExpr, EvalError, Scope, Ty};
use crate::outcome::{map_of, AbortReason, Effect, EffectKind, TriggerOutcome, TriggerResult};
use crate::state::{Key, StateView};
use crate::trigger::{Action, NamedExprs, Target, Trigger, TriggerIdx, TriggerSet};
use crate::value::{AttrType, Value};

/// The executor asked the transaction to stop (it must wait and be re-executed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halted;

/// Everything a transaction produced. Nothing of it has happened yet: the caller commits it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnOutput {
    /// Final value of every key written by committed trigger executions, in first-write order.
    pub writes: Vec<(Key, Value)>,
    /// Effects of committed executions, in serial order.
    pub effects: Vec<Effect>,
    /// Every trigger execution, in serial order.
    pub triggers: Vec<TriggerOutcome>,
    /// Trigger index and wall time (ns) of each entry of `triggers`. Diagnostic only: never
    /// part of the deterministic outputs.
    pub timings: Vec<(TriggerIdx, u64)>,
    /// Chained events processed (emitted by committed executions).
    pub chained_events: u64,
}

/// Runs one input event (and its cascade) against `view`.
///
/// `row` is the event's customer. Returns [`Halted`] if the view halted a read.
pub fn execute(
    set: &TriggerSet,
    schema: &Schema,
    view: &mut dyn StateView,
    event: &Event,
    row: Row,
) -> Result<TxnOutput, Halted> {
    let mut txn = Txn {
        view,
        base: FxHashMap::default(),
        written: FxHashMap::default(),
        write_order: Vec::new(),
    };
    let mut out = TxnOutput::default();
    let mut queue: VecDeque<(Arc<Event>, u32)> = VecDeque::new();
    queue.push_back((Arc::new(event.clone()), 0));
    while let Some((ev, depth)) = queue.pop_front() {
        if depth > 0 {
            out.chained_events += 1;
        }
        for &ti in set.for_event_type(&ev.event_type) {
            let trigger = set.trigger(ti);
            let started = Instant::now();
            let mut exec = Execution {
                txn: &mut txn,
                set,
                schema,
                event: &ev,
                row,
                depth,
                local: FxHashMap::default(),
                local_order: Vec::new(),
                coupon: None,
                effects: Vec::new(),
                emitted: Vec::new(),
                points: 0,
            };
            let result = match exec.run(trigger) {
                Err(Stop::Halt) => return Err(Halted),
                Err(Stop::Abort(reason)) => TriggerResult::Aborted(reason),
                Ok(false) => TriggerResult::Skipped,
                Ok(true) => {
                    let Execution {
                        local,
                        local_order,
                        effects,
                        emitted,
                        ..
                    } = exec;
                    txn.merge(local, local_order);
                    out.effects.extend(effects);
                    queue.extend(emitted.into_iter().map(|e| (Arc::new(e), depth + 1)));
                    TriggerResult::Committed
                }
            };
            out.timings.push((ti, started.elapsed().as_nanos() as u64));
            out.triggers.push(TriggerOutcome {
                trigger: trigger.id.clone(),
                event_id: ev.id.clone(),
                depth,
                result,
            });
        }
    }
    out.writes = txn
        .write_order
        .iter()
        .map(|k| (*k, txn.written.get(k).cloned().unwrap_or_default()))
        .collect();
    Ok(out)
}

struct Txn<'v> {
    view: &'v mut dyn StateView,
    /// First value read from the view, per key.
    base: FxHashMap<Key, Value>,
    /// Values written by committed executions of this transaction.
    written: FxHashMap<Key, Value>,
    write_order: Vec<Key>,
}

impl Txn<'_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        if let Some(v) = self.written.get(&key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.base.get(&key) {
            return Ok(v.clone());
        }
        let v = self.view.read(key)?;
        self.base.insert(key, v.clone());
        Ok(v)
    }

    fn merge(&mut self, local: FxHashMap<Key, Value>, order: Vec<Key>) {
        let mut local = local;
        for key in order {
            if let Some(v) = local.remove(&key) {
                if self.written.insert(key, v).is_none() {
                    self.write_order.push(key);
                }
            }
        }
    }
}

/// Why an execution stopped early.
enum Stop {
    Halt,
    Abort(AbortReason),
}

struct Execution<'x, 'v> {
    txn: &'x mut Txn<'v>,
    set: &'x TriggerSet,
    schema: &'x Schema,
    event: &'x Event,
    row: Row,
    depth: u32,
    local: FxHashMap<Key, Value>,
    local_order: Vec<Key>,
    coupon: Option<Value>,
    effects: Vec<Effect>,
    emitted: Vec<Event>,
    points: i64,
}

impl Scope for Execution<'_, '_> {
    fn attr(&mut self, attr: AttrId) -> Result<Value, EvalError> {
        self.read(Key::Attr {
            row: self.row,
            attr,
        })
    }
    fn counter(&mut self, counter: crate::expr::CounterId) -> Result<Value, EvalError> {
        self.read(Key::Counter(counter))
    }
    fn event(&self) -> &Event {
        self.event
    }
    fn coupon(&self) -> Option<Value> {
        self.coupon.clone()
    }
}

impl Execution<'_, '_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        match self.local.get(&key) {
            Some(v) => Ok(v.clone()),
            None => self.txn.read(key),
        }
    }

    fn write(&mut self, key: Key, value: Value) {
        if self.local.insert(key, value).is_none() {
            self.local_order.push(key);
        }
    }

    /// `Ok(false)`: condition false. `Ok(true)`: all actions done.
    fn run(&mut self, trigger: &Trigger) -> Result<bool, Stop> {
        if let Some(cond) = &trigger.condition {
            match cond.eval_bool(self) {
                Ok(false) => return Ok(false),
                Ok(true) => {}
                Err(EvalError::Halt) => return Err(Stop::Halt),
                Err(e) => {
                    return Err(Stop::Abort(AbortReason::ConditionError {
                        message: e.to_string(),
                    }))
                }
            }
        }
        for (i, action) in trigger.actions.iter().enumerate() {
            self.action(trigger, i as u32, action)?;
        }
        Ok(true)
    }

    fn eval(&mut self, expr: &CompiledExpr, action: u32) -> Result<Value, Stop> {
        expr.eval(self).map_err(|e| action_error(action, e))
    }

    fn eval_named(&mut self, named: &NamedExprs, action: u32) -> Result<crate::value::Map, Stop> {
        let mut out = Vec::with_capacity(named.len());
        for (name, expr) in named {
            out.push((name.clone(), self.eval(expr, action)?));
        }
        Ok(map_of(out))
    }

    fn effect(&mut self, trigger: &Trigger, action: u32, kind: EffectKind) -> Result<(), Stop> {
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
        Ok(())
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
            Action::IssueCoupon { pool, store_in } => {
                let key = Key::PoolCursor(*pool);
                let cursor = match self.read(key).map_err(|e| action_error(i, e))? {
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
                let pool_id = spec.id.clone();
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
                self.coupon = Some(Value::Str(code.clone()));
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
                let args = self.eval_named(args, i)?;
                self.effect(
                    trigger,
                    i,
                    EffectKind::Message {
                        channel: *channel,
                        template: template.clone(),
                        args,
                    },
                )?;
            }
            Action::StartFeed { feed, args } => {
                let args = self.eval_named(args, i)?;
                self.effect(
                    trigger,
                    i,
                    EffectKind::Feed {
                        feed: feed.clone(),
                        args,
                    },
                )?;
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
                        depth,
                        max,
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
                let properties = self.eval_named(properties, i)?;
                self.emitted.push(Event {
                    id: Arc::from(format!("{}/{}#{}", self.event.id, trigger.id, i)),
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

    /// `key += amount`, with null counting as zero; ints are checked for overflow.
    fn add(&mut self, key: Key, ty: Ty, amount: Value, action: u32) -> Result<(), Stop> {
        let current = self.read(key).map_err(|e| action_error(action, e))?;
        let err = |message: String| Stop::Abort(AbortReason::ActionError { action, message });
        let new = match (ty, current, amount) {
            (Ty::Int, Value::Int(c), Value::Int(a)) => {
                Value::Int(c.checked_add(a).ok_or_else(|| {
                    err(format!(
                        "arithmetic error: integer overflow adding {a} to {c}"
                    ))
                })?)
            }
            (Ty::Int, Value::Null, Value::Int(a)) => Value::Int(a),
            (Ty::Float, Value::Float(c), Value::Int(a)) => Value::Float(c + a as f64),
            (Ty::Float, Value::Float(c), Value::Float(a)) => Value::Float(c + a),
            (Ty::Float, Value::Null, Value::Int(a)) => Value::Float(a as f64),
            (Ty::Float, Value::Null, Value::Float(a)) => Value::Float(a),
            (ty, _, amount) => {
                return Err(err(format!(
                    "type error: cannot add a {} to a {} value",
                    amount.kind(),
                    ty.name()
                )))
            }
        };
        self.write(key, new);
        Ok(())
    }
}

fn action_error(action: u32, e: EvalError) -> Stop {
    match e {
        EvalError::Halt => Stop::Halt,
        e => Stop::Abort(AbortReason::ActionError {
            action,
            message: e.to_string(),
        }),
    }
}
