//! The committer (outbox): turns a transaction's output into state changes and effects,
//! exactly once, in serial order.
//!
//! Committing a [`TxnOutput`] against the state left by all earlier transactions:
//! 1. resolves every [`Write::Delta`] against the committed value (in order, checked);
//! 2. assigns deferred coupon codes: the `nth` deferred take from a pool gets the code at
//!    `cursor_before + nth`, and is written into the effects that carry it;
//! 3. only if both succeed, applies the writes and releases the effects.
//!
//! If resolution fails (an integer overflow, a pool running dry) the transaction was not
//! reproducible with deferred writes; the caller re-executes it eagerly against the committed
//! state, which is the sequential semantics. Nothing is applied in that case.

use std::sync::Arc;

use super::txn::{SlotTarget, TxnOutput, Write};
use crate::outcome::{Effect, EffectKind};
use crate::state::State;
use crate::trigger::TriggerSet;
use crate::value::{Map, Value};

/// The committed transaction could not be resolved; re-execute it eagerly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unresolvable;

/// Resolves and applies `output` to `state`. On success the output is what eager execution
/// records: every delta replaced by the value it produced, every deferred code filled in, no
/// coupon slots left.
pub fn commit(
    set: &TriggerSet,
    state: &mut State,
    output: &mut TxnOutput,
) -> Result<(), Unresolvable> {
    let mut resolved: smallvec::SmallVec<[Value; 4]> =
        smallvec::SmallVec::with_capacity(output.writes.len());
    for (key, write) in &output.writes {
        let value = match write {
            Write::Set(v) => v.clone(),
            Write::Delta(delta) => delta.apply_to(&state.get(*key)).map_err(|_| Unresolvable)?,
        };
        resolved.push(value);
    }
    fill_coupon_slots(set, &state.pool_cursors, output)?;
    for ((key, write), value) in output.writes.iter_mut().zip(resolved) {
        if matches!(write, Write::Delta(_)) {
            *write = Write::Set(value.clone());
        }
        if !state.apply(*key, value) {
            return Err(Unresolvable);
        }
    }
    output.coupon_slots.clear();
    Ok(())
}

/// Writes the deferred coupon codes of `output` into its effects: the `nth` deferred take from
/// a pool gets the code at `cursors[pool] + nth`, `cursors` being the pool cursors before
/// this transaction. The slots stay in `output`; nothing is written if a code is missing.
pub(crate) fn fill_coupon_slots(
    set: &TriggerSet,
    cursors: &[u64],
    output: &mut TxnOutput,
) -> Result<(), Unresolvable> {
    let mut codes: smallvec::SmallVec<[Arc<str>; 2]> =
        smallvec::SmallVec::with_capacity(output.coupon_slots.len());
    for slot in &output.coupon_slots {
        let pool = set.pools.get(usize::from(slot.pool)).ok_or(Unresolvable)?;
        let cursor = cursors.get(usize::from(slot.pool)).ok_or(Unresolvable)?;
        codes.push(pool.code(cursor + slot.nth).ok_or(Unresolvable)?);
    }
    for (slot, code) in output.coupon_slots.iter().zip(codes) {
        for target in &slot.targets {
            match target {
                SlotTarget::CouponEffect(i) => {
                    if let Some(Effect {
                        kind: EffectKind::Coupon { code: c, .. },
                        ..
                    }) = output.effects.get_mut(*i)
                    {
                        *c = code.clone();
                    }
                }
                SlotTarget::EffectArg(i, name) => {
                    if let Some(effect) = output.effects.get_mut(*i) {
                        if let EffectKind::Message { args, .. } | EffectKind::Feed { args, .. } =
                            &mut effect.kind
                        {
                            *args = replace_arg(args, name, Value::Str(code.clone()));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn replace_arg(args: &Map, name: &str, value: Value) -> Map {
    Map::from_entries(args.entries().iter().map(|(k, v)| {
        let v = if k.as_ref() == name {
            value.clone()
        } else {
            v.clone()
        };
        (k.clone(), v)
    }))
}
