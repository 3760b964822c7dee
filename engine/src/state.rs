//! Mutable engine state and the keys executions read and write.
//!
//! Everything a trigger execution can touch is addressed by a [`Key`]: one attribute of one
//! customer, one shared counter, or the cursor of one coupon pool. Executors see state only
//! through a [`StateView`] (read) and hand back writes as `(Key, Value)` pairs, which is what
//! lets the same execution code run against the committed [`State`] (sequential reference) or
//! against a multi-version memory (parallel executor).
//!
//! Invariants:
//! - a pool cursor is the number of codes already issued from that pool; it only grows, and
//!   codes are issued in pool order, so a code is issued at most once;
//! - [`State::apply`] only accepts values of the key's type (checked by the executions
//!   before they produce a write).

use crate::customers::{AttrId, CustomerTable, Row};
use crate::expr::{CounterId, EvalError};
use crate::trigger::{PoolId, TriggerSet};
use crate::value::Value;

/// One unit of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An attribute of a customer.
    Attr {
        /// Customer row.
        row: Row,
        /// Attribute.
        attr: AttrId,
    },
    /// A shared counter.
    Counter(CounterId),
    /// How many codes of a pool were issued.
    PoolCursor(PoolId),
}

/// Read access to state, as an execution sees it.
pub trait StateView {
    /// The value of `key` as of the start of the current transaction.
    ///
    /// `Err(EvalError::Halt)` tells the execution to stop at once (the parallel executor uses
    /// it when the value is not known yet); the sequential view never halts.
    fn read(&mut self, key: Key) -> Result<Value, EvalError>;

    /// Whether an execution may defer its write to `key` (a commutative delta or a deferred
    /// coupon take) instead of reading it. Views say no where deferral would likely fail at
    /// commit, e.g. for a pool that may run dry within the current block.
    fn may_defer(&self, key: &Key) -> bool {
        let _ = key;
        true
    }
}

/// The committed state of a run: customers, counters, pool cursors.
#[derive(Clone, Debug)]
pub struct State {
    /// Customer attributes.
    pub customers: CustomerTable,
    /// Counter values, by counter id.
    pub counters: Vec<Value>,
    /// Codes issued so far, by pool id.
    pub pool_cursors: Vec<u64>,
}

impl State {
    /// Fresh state for a run of `triggers` over `customers`: counters at their initial values,
    /// no codes issued.
    pub fn new(customers: CustomerTable, triggers: &TriggerSet) -> State {
        State {
            customers,
            counters: triggers
                .counters
                .iter()
                .map(|c| c.initial.clone())
                .collect(),
            pool_cursors: vec![0; triggers.pools.len()],
        }
    }

    /// Reads a key.
    pub fn get(&self, key: Key) -> Value {
        match key {
            Key::Attr { row, attr } => self.customers.get(row, attr),
            Key::Counter(c) => self.counters[usize::from(c)].clone(),
            Key::PoolCursor(p) => Value::Int(self.pool_cursors[usize::from(p)] as i64),
        }
    }

    /// Writes a key. Returns `false` (and writes nothing) if the value does not fit the key.
    pub fn apply(&mut self, key: Key, value: Value) -> bool {
        match (key, value) {
            (Key::Attr { row, attr }, v) => self.customers.set(row, attr, v),
            (Key::Counter(c), v @ (Value::Int(_) | Value::Float(_))) => {
                self.counters[usize::from(c)] = v;
                true
            }
            (Key::PoolCursor(p), Value::Int(n)) if n >= 0 => {
                self.pool_cursors[usize::from(p)] = n as u64;
                true
            }
            _ => false,
        }
    }
}

/// The view the sequential executor uses: committed state, read directly.
pub struct CommittedView<'a>(pub &'a State);

impl StateView for CommittedView<'_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        Ok(self.0.get(key))
    }
}
