//! The state store: where a live engine's customers come from and where each committed
//! batch's writes go, so the engine is never a second source of truth.
//!
//! A [`StateStore`] is called from the engine's own thread, never from an async task, so
//! an implementation may block (a database round trip):
//! - [`StateStore::load`] before a batch, with the customers its events name that the
//!   engine's table does not hold yet; what it returns joins the table (unknown ids stay
//!   unknown and their events are rejected as `unknown_customer`, as in `fusebox run`);
//! - [`StateStore::persist`] once per committed batch, in commit order, with the batch's
//!   [`BatchWrites`]: every key its transactions wrote, at its value after the batch. One
//!   call is one atomic unit for the store.
//!
//! **If persisting fails**, the engine retries ([`super::LiveConfig::persist_retries`]) and
//! then **stops** with [`super::LiveError::Store`]: that batch's effects are never delivered
//! (its submitters get the error), nothing after it runs, and `status()` says why. Retrying
//! forever would hide an outage behind growing latency; going on without persisting would
//! make the engine the only holder of committed state. The batch's events are in the
//! accepted-event log, so an operator can replay them once the store is back.
//!
//! Implementations: [`InMemoryStore`] (the default: the engine's table is the state, as in
//! `fusebox run`) and [`MapStore`] (a keyed map standing in for a backend's database, used by
//! tests and examples). Both pass the shared suite in `engine/tests/common/store_suite.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::customers::{AttrId, CustomerTable, Row};
use crate::state::{Key, State};
use crate::trigger::TriggerSet;
use crate::value::Value;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the call; worth a retry.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A loaded customer does not fit the engine's schema (unknown attribute, wrong type).
    #[error("customer {customer}: {reason}")]
    BadCustomer {
        /// The customer id.
        customer: u64,
        /// What is wrong, naming the attribute.
        reason: String,
    },
}

/// A customer as a store holds it: its id and attribute values by name. Attributes not
/// named are null.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCustomer {
    /// Customer id.
    pub id: u64,
    /// Attribute values, by attribute name.
    pub attributes: BTreeMap<String, Value>,
}

/// Everything one committed batch wrote, at its value after the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchWrites {
    /// The batch's number: 1, 2, 3 … in commit order.
    pub batch: u64,
    /// Customer attributes written: customer id → attribute name → new value.
    pub customers: BTreeMap<u64, BTreeMap<String, Value>>,
    /// Counters written: name → new value.
    pub counters: BTreeMap<String, Value>,
    /// Coupon pools drawn from: name → codes issued so far.
    pub pool_cursors: BTreeMap<String, u64>,
}

impl BatchWrites {
    /// The writes of `keys` (as reported by the batch's records), read from `state`.
    pub fn collect(
        batch: u64,
        keys: impl IntoIterator<Item = Key>,
        state: &State,
        triggers: &TriggerSet,
    ) -> BatchWrites {
        let mut writes = BatchWrites {
            batch,
            ..BatchWrites::default()
        };
        let schema = state.customers.schema().clone();
        for key in keys {
            match key {
                Key::Attr { row, attr } => {
                    writes
                        .customers
                        .entry(state.customers.id_at(row))
                        .or_default()
                        .insert(schema.name(attr).to_string(), state.get(key));
                }
                Key::Counter(c) => {
                    let name = triggers.counters[usize::from(c)].id.to_string();
                    writes.counters.insert(name, state.get(key));
                }
                Key::PoolCursor(p) => {
                    let name = triggers.pools[usize::from(p)].id.to_string();
                    writes
                        .pool_cursors
                        .insert(name, state.pool_cursors[usize::from(p)]);
                }
            }
        }
        writes
    }

    /// Nothing was written.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty() && self.counters.is_empty() && self.pool_cursors.is_empty()
    }
}

/// Where customers come from and where committed writes go (see the module docs).
pub trait StateStore: Send {
    /// The customers among `ids` the store holds (in any order; ids it does not hold are
    /// left out).
    fn load(&mut self, ids: &[u64]) -> Result<Vec<StoredCustomer>, StoreError>;

    /// Persists one committed batch's writes, atomically. Called once per batch that wrote
    /// anything, in commit order.
    fn persist(&mut self, writes: &BatchWrites) -> Result<(), StoreError>;

    /// Whether the store wants each batch's writes. A store that keeps nothing says no, and
    /// the engine then neither collects them (a name lookup per written key, on the engine
    /// thread, every batch) nor calls [`StateStore::persist`].
    fn wants_writes(&self) -> bool {
        true
    }
}

/// The default store: the engine's own table is the state. Loads nothing, persists
/// nothing (what `fusebox run` does).
#[derive(Debug, Default, Clone, Copy)]
pub struct InMemoryStore;

impl StateStore for InMemoryStore {
    fn load(&mut self, _ids: &[u64]) -> Result<Vec<StoredCustomer>, StoreError> {
        Ok(Vec::new())
    }

    fn persist(&mut self, _writes: &BatchWrites) -> Result<(), StoreError> {
        Ok(())
    }

    fn wants_writes(&self) -> bool {
        false
    }
}

/// What a [`MapStore`] holds; shared, so a test (or the backend) can look at it while the
/// engine runs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MapContents {
    /// Customers by id.
    pub customers: BTreeMap<u64, BTreeMap<String, Value>>,
    /// Counters by name.
    pub counters: BTreeMap<String, Value>,
    /// Pool cursors by name.
    pub pool_cursors: BTreeMap<String, u64>,
    /// Batches persisted, in order.
    pub batches: Vec<u64>,
}

/// A store over a shared in-process map: a stand-in for a backend's database. Loads the
/// customers it holds; applies each batch's writes.
#[derive(Debug, Default, Clone)]
pub struct MapStore {
    contents: Arc<Mutex<MapContents>>,
}

impl MapStore {
    /// A store holding `customers`.
    pub fn new(customers: impl IntoIterator<Item = StoredCustomer>) -> MapStore {
        let store = MapStore::default();
        {
            let mut c = store.lock();
            for customer in customers {
                c.customers.insert(customer.id, customer.attributes);
            }
        }
        store
    }

    /// The shared contents.
    pub fn contents(&self) -> Arc<Mutex<MapContents>> {
        self.contents.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MapContents> {
        self.contents.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StateStore for MapStore {
    fn load(&mut self, ids: &[u64]) -> Result<Vec<StoredCustomer>, StoreError> {
        let c = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| {
                c.customers.get(id).map(|attributes| StoredCustomer {
                    id: *id,
                    attributes: attributes.clone(),
                })
            })
            .collect())
    }

    fn persist(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        let mut c = self.lock();
        for (id, attrs) in &writes.customers {
            let row = c.customers.entry(*id).or_default();
            for (name, value) in attrs {
                row.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &writes.counters {
            c.counters.insert(name.clone(), value.clone());
        }
        for (name, cursor) in &writes.pool_cursors {
            c.pool_cursors.insert(name.clone(), *cursor);
        }
        c.batches.push(writes.batch);
        Ok(())
    }
}

/// Adds `loaded` customers to `table`, checking every value against the schema first, so a
/// bad customer adds nothing. Customers already in the table are skipped.
pub(crate) fn add_loaded(
    table: &mut CustomerTable,
    loaded: &[StoredCustomer],
) -> Result<usize, StoreError> {
    let schema = table.schema().clone();
    let mut checked: Vec<(u64, Vec<(AttrId, Value)>)> = Vec::with_capacity(loaded.len());
    let mut ids = Vec::with_capacity(loaded.len());
    for customer in loaded {
        if table.row_of(customer.id).is_some() || ids.contains(&customer.id) {
            continue;
        }
        let mut values = Vec::with_capacity(customer.attributes.len());
        for (name, value) in &customer.attributes {
            let Some((attr, ty)) = schema.attr(name) else {
                return Err(StoreError::BadCustomer {
                    customer: customer.id,
                    reason: format!("unknown attribute `{name}`"),
                });
            };
            if !ty.accepts(value) {
                return Err(StoreError::BadCustomer {
                    customer: customer.id,
                    reason: format!(
                        "attribute `{name}` is {} but the store gave {}",
                        ty.name(),
                        value.kind()
                    ),
                });
            }
            values.push((attr, value.clone()));
        }
        ids.push(customer.id);
        checked.push((customer.id, values));
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let rows = table
        .push_customers(&ids)
        .map_err(|e| StoreError::BadCustomer {
            customer: ids[0],
            reason: e.to_string(),
        })?;
    for ((_, values), row) in checked.into_iter().zip(rows) {
        set_all(table, row, values);
    }
    Ok(ids.len())
}

fn set_all(table: &mut CustomerTable, row: Row, values: Vec<(AttrId, Value)>) {
    for (attr, value) in values {
        // Checked by `accepts` above; `set` refuses nothing it accepts.
        let _ = table.set(row, attr, value);
    }
}
