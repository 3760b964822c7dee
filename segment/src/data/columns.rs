//! The event store built from columns ([`EventStore::from_columns`]): grouping by type and
//! customer with counting sorts over event indices, no object per event.
//!
//! ## Design
//! 1. Each event's customer row is looked up once (in parallel); events of unknown customers
//!    are counted and skipped.
//! 2. Event indices are bucketed by type (a counting sort keeps input order), then, per type
//!    and in parallel across types, by row (a second counting sort, which also yields the CSR
//!    offsets); each row's run is then sorted by timestamp with a stable sort, skipped when
//!    already in order. The result is exactly the order of [`TypeEvents::build`]'s stable sort
//!    by `(row, timestamp)`: equal keys stay in input order.
//! 3. Each property column is scattered into per-type dense columns at the events' final
//!    positions. A type gets a column for every key that any of its events has (even if only
//!    as `null`), of the tightest kind over its values, by the rules of
//!    [`PropColumn::from_values`]: all numbers (or all null) → numbers, all strings →
//!    dictionary (codes by first appearance in input order), all booleans → bytes, otherwise
//!    dynamic values.
//!
//! ## Invariant
//! For the same valid events, `from_columns` builds the same store as
//! [`EventStore::from_events`]: same types, rows, timestamps, offsets, unknown-customer count,
//! and the same property names, kinds and values per event (tested on generated data in
//! `segment/tests/columnar.rs`).

use std::sync::{Arc, OnceLock};

use fusebox_engine::customers::{CustomerTable, Row};
use fusebox_engine::io::columnar::{EventColumns, PropertyColumn, PropertyValue};
use fusebox_engine::value::Value;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{Batch, EventStore, PropColumn, TypeEvents};

/// The row of an event whose customer is unknown.
const NO_ROW: Row = Row::MAX;

// Kinds of values seen for one (type, property), as bits.
const NULL: u8 = 1;
const NUM: u8 = 2;
const STR: u8 = 4;
const BOOL: u8 = 8;
const NESTED: u8 = 16;

fn kind_bit(v: &PropertyValue) -> u8 {
    match v {
        PropertyValue::Null => NULL,
        PropertyValue::Int(_) | PropertyValue::Float(_) => NUM,
        PropertyValue::Str(_) => STR,
        PropertyValue::Bool(_) => BOOL,
        PropertyValue::Nested(_) => NESTED,
    }
}

/// One type's events in store order.
struct Grouped {
    /// Event indices sorted by `(row, timestamp)`, ties in input order.
    order: Vec<u32>,
    offsets: Vec<u32>,
}

impl EventStore {
    /// Groups columnar events (from [`fusebox_engine::io::columnar::read_event_columns`]) for
    /// `customers`: the same store [`Self::from_events`] builds from the same events, with
    /// the properties the columns kept.
    pub fn from_columns(customers: &CustomerTable, columns: &EventColumns) -> EventStore {
        let n_rows = customers.len();
        let rows: Vec<Row> = columns
            .customer_ids
            .par_iter()
            .map(|&id| customers.row_of(id).unwrap_or(NO_ROW))
            .collect();
        let unknown = rows.iter().filter(|&&r| r == NO_ROW).count();

        // Counting sort of the known events by type (input order kept within a type).
        let n_types = columns.types.len();
        let mut starts = vec![0usize; n_types + 1];
        for (&t, &r) in columns.type_codes.iter().zip(&rows) {
            if r != NO_ROW {
                starts[t as usize + 1] += 1;
            }
        }
        for t in 0..n_types {
            starts[t + 1] += starts[t];
        }
        let mut by_type = vec![0u32; starts[n_types]];
        let mut next = starts.clone();
        for (e, (&t, &r)) in columns.type_codes.iter().zip(&rows).enumerate() {
            if r != NO_ROW {
                by_type[next[t as usize]] = e as u32;
                next[t as usize] += 1;
            }
        }
        drop(next);

        let grouped: Vec<Grouped> = (0..n_types)
            .into_par_iter()
            .map(|t| {
                group_by_row(
                    &by_type[starts[t]..starts[t + 1]],
                    &rows,
                    &columns.timestamps,
                    n_rows,
                )
            })
            .collect();
        drop(by_type);

        // Each event's position in its type's base.
        let mut pos = vec![0u32; columns.len()];
        for g in &grouped {
            for (p, &e) in g.order.iter().enumerate() {
                pos[e as usize] = p as u32;
            }
        }
        let lens: Vec<usize> = grouped.iter().map(|g| g.order.len()).collect();
        let scatter = Scatter {
            rows: &rows,
            type_codes: &columns.type_codes,
            pos: &pos,
            lens: &lens,
        };
        // Per property: its per-type columns.
        let props: Vec<Vec<(usize, PropColumn)>> = columns
            .properties
            .par_iter()
            .map(|c| scatter.split(c))
            .collect();
        let mut per_type: Vec<FxHashMap<Arc<str>, PropColumn>> =
            (0..n_types).map(|_| FxHashMap::default()).collect();
        for (c, split) in columns.properties.iter().zip(props) {
            for (t, col) in split {
                per_type[t].insert(c.name.clone(), col);
            }
        }
        drop(pos);

        let types = grouped
            .into_iter()
            .zip(per_type)
            .enumerate()
            .filter(|(_, (g, _))| !g.order.is_empty())
            .map(|(t, (g, props))| {
                let base = Batch {
                    rows: g.order.iter().map(|&e| rows[e as usize]).collect(),
                    ts: g
                        .order
                        .iter()
                        .map(|&e| columns.timestamps[e as usize])
                        .collect(),
                    props,
                };
                let te = TypeEvents {
                    base,
                    offsets: g.offsets,
                    tail: Batch::default(),
                    tail_index: OnceLock::new(),
                    time_index: OnceLock::new(),
                    version: 0,
                };
                (columns.types[t].clone(), te)
            })
            .collect();
        EventStore {
            types,
            n_rows,
            unknown_customers: unknown,
        }
    }
}

/// Sorts one type's events (input order) by `(row, timestamp)`, stably, with CSR offsets.
fn group_by_row(events: &[u32], rows: &[Row], ts: &[i64], n_rows: usize) -> Grouped {
    let mut offsets = vec![0u32; n_rows + 1];
    for &e in events {
        offsets[rows[e as usize] as usize + 1] += 1;
    }
    for r in 0..n_rows {
        offsets[r + 1] += offsets[r];
    }
    let mut next: Vec<u32> = offsets[..n_rows].to_vec();
    let mut order = vec![0u32; events.len()];
    for &e in events {
        let r = rows[e as usize] as usize;
        order[next[r] as usize] = e;
        next[r] += 1;
    }
    drop(next);
    for r in 0..n_rows {
        let run = &mut order[offsets[r] as usize..offsets[r + 1] as usize];
        if run.len() > 1 && !run.is_sorted_by_key(|&e| ts[e as usize]) {
            run.sort_by_key(|&e| ts[e as usize]);
        }
    }
    Grouped { order, offsets }
}

/// Where each event lands: what [`Scatter::split`] needs to place a property's values.
struct Scatter<'a> {
    rows: &'a [Row],
    type_codes: &'a [u32],
    pos: &'a [u32],
    lens: &'a [usize],
}

impl Scatter<'_> {
    /// The events of known customers among `column`'s entries: `(entry, type, position)`.
    fn entries<'c>(
        &'c self,
        column: &'c PropertyColumn,
    ) -> impl Iterator<Item = (usize, usize, usize)> + 'c {
        column
            .events
            .iter()
            .enumerate()
            .filter(|(_, &e)| self.rows[e as usize] != NO_ROW)
            .map(|(k, &e)| {
                (
                    k,
                    self.type_codes[e as usize] as usize,
                    self.pos[e as usize] as usize,
                )
            })
    }

    /// `column` as one dense column per type that has the key.
    fn split(&self, column: &PropertyColumn) -> Vec<(usize, PropColumn)> {
        let mut kinds = vec![0u8; self.lens.len()];
        for (k, t, _) in self.entries(column) {
            kinds[t] |= kind_bit(&column.values[k]);
        }
        let mut out: Vec<(usize, PropColumn)> = kinds
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0)
            .map(|(t, &m)| {
                let n = self.lens[t];
                let col = if m & !(NULL | NUM) == 0 {
                    PropColumn::Num(vec![f64::NAN; n])
                } else if m & !(NULL | STR) == 0 {
                    PropColumn::Str {
                        codes: vec![u32::MAX; n],
                        dict: Vec::new(),
                    }
                } else if m & !(NULL | BOOL) == 0 {
                    PropColumn::Bool(vec![2; n])
                } else {
                    PropColumn::Any(vec![Value::Null; n])
                };
                (t, col)
            })
            .collect();
        let mut slot = vec![usize::MAX; self.lens.len()];
        for (i, (t, _)) in out.iter().enumerate() {
            slot[*t] = i;
        }
        // Per type: column string code → the type's dictionary code.
        let mut recode: FxHashMap<(usize, u32), u32> = FxHashMap::default();
        for (k, t, p) in self.entries(column) {
            let col = &mut out[slot[t]].1;
            match col {
                PropColumn::Num(v) => {
                    v[p] = match column.values[k] {
                        PropertyValue::Int(i) => i as f64,
                        PropertyValue::Float(x) => x,
                        _ => f64::NAN,
                    }
                }
                PropColumn::Str { codes, dict } => {
                    if let PropertyValue::Str(s) = column.values[k] {
                        codes[p] = *recode.entry((t, s)).or_insert_with(|| {
                            dict.push(column.strings[s as usize].clone());
                            (dict.len() - 1) as u32
                        });
                    }
                }
                PropColumn::Bool(v) => {
                    if let PropertyValue::Bool(b) = column.values[k] {
                        v[p] = u8::from(b);
                    }
                }
                PropColumn::Any(v) => v[p] = column.value(k),
            }
        }
        out
    }
}
