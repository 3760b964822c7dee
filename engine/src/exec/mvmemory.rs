//! Multi-version memory: what each speculative transaction of a block wrote, per key.
//!
//! `key → (txn index → cell)`, where a cell is a value, a list of commutative deltas, or an
//! ESTIMATE (the writer was aborted and is being re-executed). A read by transaction `j`
//! resolves the key as it would be just before `j` in serial order: starting from the
//! highest writer below `j`, it collects deltas downwards until it meets a value (or falls
//! through to the committed storage of the block), then applies the deltas in serial order.
//! Meeting an ESTIMATE means "not known yet": the reader must wait for that writer instead of
//! reading a value that is about to change.
//!
//! Invariants:
//! - a cell for `(key, i)` exists iff the latest finished incarnation of `i` wrote `key`
//!   (or it was aborted since, and the cell is an ESTIMATE);
//! - reads never see cells at or above the reader's own index;
//! - validation compares *values* (bit-for-bit, see `Value::identical`): an execution is a
//!   deterministic function of the values it read, so if every value it read is still what
//!   the final lower writers produce, its output is still the serial output.

use std::sync::Mutex;

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use super::delta::Delta;
use super::txn::Write;
use crate::state::{Key, State};
use crate::value::Value;

/// Index of a transaction within a block.
pub type TxnIdx = usize;

#[derive(Clone, Debug)]
enum Cell {
    Value(Value),
    Delta(Delta),
    Estimate,
}

/// Why a read could not produce a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// A lower transaction's write is an ESTIMATE: wait for it.
    Dependency(TxnIdx),
    /// Deltas do not apply (integer overflow): the block must fall back to sequential.
    Unresolvable,
}

/// The multi-version memory of one block.
pub struct MvMemory {
    /// Per key, the cells sorted by writer index. Most keys have one writer per block, so a
    /// sorted vector (binary search) beats a tree that allocates a node per first insert.
    data: DashMap<Key, Versions, FxBuildHasher>,
    last_written: Vec<Mutex<Vec<Key>>>,
}

/// Cells of one key; most keys have a single writer per block, stored inline.
type Versions = smallvec::SmallVec<[(TxnIdx, Cell); 1]>;

fn find(versions: &[(TxnIdx, Cell)], txn: TxnIdx) -> Result<usize, usize> {
    versions.binary_search_by_key(&txn, |(i, _)| *i)
}

fn upsert(versions: &mut Versions, txn: TxnIdx, cell: Cell) {
    match find(versions, txn) {
        Ok(i) => versions[i].1 = cell,
        Err(i) => versions.insert(i, (txn, cell)),
    }
}

impl MvMemory {
    /// Empty memory for a block of `len` transactions.
    pub fn new(len: usize) -> MvMemory {
        MvMemory {
            // More shards than threads, so hot keys rarely share a lock with other keys.
            // Sized for a few written keys per transaction, so shards rarely rehash.
            data: DashMap::with_capacity_and_hasher_and_shard_amount(4 * len, FxBuildHasher, 64),
            last_written: (0..len).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// The value of `key` just before transaction `txn` in serial order.
    pub fn read(&self, key: Key, txn: TxnIdx, storage: &State) -> Result<Value, ReadError> {
        let Some(versions) = self.data.get(&key) else {
            return Ok(storage.get(key));
        };
        // Walk down from the highest writer below `txn`, remembering the deltas passed.
        let end = find(&versions, txn).unwrap_or_else(|i| i);
        let mut below = versions[..end].iter().rev();
        let mut deltas: Vec<&Delta> = Vec::new();
        let mut value = loop {
            match below.next() {
                None => break storage.get(key),
                Some((_, Cell::Value(v))) => break v.clone(),
                Some((_, Cell::Delta(d))) => deltas.push(d),
                Some((writer, Cell::Estimate)) => return Err(ReadError::Dependency(*writer)),
            }
        };
        for d in deltas.iter().rev() {
            value = d.apply_to(&value).map_err(|_| ReadError::Unresolvable)?;
        }
        Ok(value)
    }

    /// Publishes the writes of a finished incarnation of `txn`, removing cells its previous
    /// incarnation wrote and this one did not. Returns whether it wrote a key the previous
    /// incarnation did not (then higher transactions must be revalidated).
    pub fn record(&self, txn: TxnIdx, writes: &[(Key, Write)]) -> bool {
        for (key, write) in writes {
            let cell = match write {
                Write::Set(v) => Cell::Value(v.clone()),
                Write::Delta(d) => Cell::Delta(d.clone()),
            };
            upsert(&mut self.data.entry(*key).or_default(), txn, cell);
        }
        let written = |k: &Key| writes.iter().any(|(w, _)| w == k);
        let mut last = self.last_written[txn]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let wrote_new_key = writes.iter().any(|(k, _)| !last.contains(k));
        for key in last.iter().filter(|k| !written(k)) {
            if let Some(mut versions) = self.data.get_mut(key) {
                if let Ok(i) = find(&versions, txn) {
                    versions.remove(i);
                }
            }
        }
        // Reuse the list's allocation across incarnations.
        last.clear();
        last.extend(writes.iter().map(|(k, _)| *k));
        wrote_new_key
    }

    /// Marks every cell of `txn` as ESTIMATE (its incarnation was aborted).
    pub fn convert_writes_to_estimates(&self, txn: TxnIdx) {
        let keys = self.last_written[txn]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for key in keys.iter() {
            if let Some(mut versions) = self.data.get_mut(key) {
                upsert(&mut versions, txn, Cell::Estimate);
            }
        }
    }

    /// Whether every value `txn` read is still what it would read now.
    pub fn validate(&self, txn: TxnIdx, reads: &[(Key, Value)], storage: &State) -> bool {
        reads
            .iter()
            .all(|(key, seen)| match self.read(*key, txn, storage) {
                Ok(now) => now.identical(seen),
                Err(_) => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::{Column, CustomerTable, Schema};
    use crate::exec::delta::NumKind;
    use crate::value::AttrType;

    fn storage() -> State {
        let schema = Schema::new([("n".to_string(), AttrType::Int)]).unwrap();
        let table =
            CustomerTable::new(schema, vec![1], vec![Column::Int(vec![Some(100)])]).unwrap();
        State {
            customers: table,
            counters: vec![Value::Int(0)],
            pool_cursors: vec![],
        }
    }

    const K: Key = Key::Attr { row: 0, attr: 0 };

    fn int_delta(amounts: &[i64]) -> Delta {
        let mut delta = Delta::new(NumKind::Int, &Value::Int(amounts[0])).unwrap();
        for a in &amounts[1..] {
            delta.extend(&Delta::new(NumKind::Int, &Value::Int(*a)).unwrap());
        }
        delta
    }

    #[test]
    fn reads_resolve_values_deltas_and_storage_in_serial_order() {
        let s = storage();
        let mv = MvMemory::new(5);
        assert_eq!(mv.read(K, 3, &s), Ok(Value::Int(100)));
        mv.record(1, &[(K, Write::Delta(int_delta(&[5])))]);
        mv.record(2, &[(K, Write::Set(Value::Int(7)))]);
        mv.record(3, &[(K, Write::Delta(int_delta(&[1, 2])))]);
        assert_eq!(mv.read(K, 1, &s), Ok(Value::Int(100)));
        assert_eq!(mv.read(K, 2, &s), Ok(Value::Int(105)));
        assert_eq!(mv.read(K, 3, &s), Ok(Value::Int(7)));
        assert_eq!(mv.read(K, 4, &s), Ok(Value::Int(10)));
    }

    #[test]
    fn estimates_become_dependencies_and_rerecording_cleans_up() {
        let s = storage();
        let mv = MvMemory::new(4);
        assert!(mv.record(1, &[(K, Write::Set(Value::Int(1)))]));
        mv.convert_writes_to_estimates(1);
        assert_eq!(mv.read(K, 2, &s), Err(ReadError::Dependency(1)));
        assert!(!mv.validate(2, &[(K, Value::Int(1))], &s));
        // The next incarnation writes nothing: the key falls back to storage.
        assert!(!mv.record(1, &[]));
        assert_eq!(mv.read(K, 2, &s), Ok(Value::Int(100)));
        assert!(mv.validate(2, &[(K, Value::Int(100))], &s));
    }

    #[test]
    fn overflowing_deltas_are_unresolvable() {
        let s = storage();
        let mv = MvMemory::new(2);
        mv.record(0, &[(K, Write::Delta(int_delta(&[i64::MAX])))]);
        assert_eq!(mv.read(K, 1, &s), Err(ReadError::Unresolvable));
    }
}
