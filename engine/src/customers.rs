//! The customer table: typed, columnar, in memory.
//!
//! Customers are identified by a `u64` id (the `id` column of the input file). Internally a
//! customer is addressed by its dense *row* index (`u32`), which is what state keys, bitmaps
//! and the executors use; [`CustomerTable::row_of`] maps ids to rows. Ids that fill a compact
//! range (at most twice as wide as the number of customers — sequential CRM ids) are mapped
//! through a direct array, one memory access per lookup; any other id set through a hash map.
//!
//! Invariants:
//! - every column has exactly `len()` entries, and row `r` of every column belongs to `ids[r]`;
//! - ids are unique (loading rejects duplicates with the offending rows);
//! - a value stored in a column is always of that column's [`AttrType`] (or null): writes go
//!   through [`CustomerTable::set`], which checks, so readers never see a mistyped value.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::value::{AttrType, Value};

/// Index of an attribute (column) in a [`Schema`].
pub type AttrId = u16;

/// Dense row index of a customer in a [`CustomerTable`].
pub type Row = u32;

/// Names and types of the customer attributes.
///
/// A `timestamp` attribute may also carry the time zone of the column it was loaded from
/// ([`Schema::time_zone`]). Values are UTC instants either way; the zone only tells a writer
/// how to label the column, so a table saved back has the layout it was loaded with.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    attrs: Vec<(Arc<str>, AttrType)>,
    by_name: FxHashMap<Arc<str>, AttrId>,
    time_zones: FxHashMap<AttrId, Arc<str>>,
}

impl Schema {
    /// Builds a schema from `(name, type)` pairs in column order.
    ///
    /// Returns the first duplicated name as the error.
    pub fn new(attrs: impl IntoIterator<Item = (String, AttrType)>) -> Result<Schema, String> {
        let mut schema = Schema::default();
        for (name, ty) in attrs {
            let name: Arc<str> = Arc::from(name);
            let id = AttrId::try_from(schema.attrs.len())
                .map_err(|_| "more than 65535 attributes".to_string())?;
            if schema.by_name.insert(name.clone(), id).is_some() {
                return Err(name.to_string());
            }
            schema.attrs.push((name, ty));
        }
        Ok(schema)
    }

    /// Records the time zone of timestamp attribute `attr`'s source column (see the type's
    /// docs). Ignored for an attribute of another type.
    pub fn with_time_zone(mut self, attr: AttrId, time_zone: &str) -> Schema {
        if self.attrs.get(usize::from(attr)).map(|a| a.1) == Some(AttrType::Timestamp) {
            self.time_zones.insert(attr, Arc::from(time_zone));
        }
        self
    }

    /// The time zone of timestamp attribute `attr`'s source column, if it had one.
    pub fn time_zone(&self, attr: AttrId) -> Option<&str> {
        self.time_zones.get(&attr).map(|z| z.as_ref())
    }

    /// Looks an attribute up by name.
    pub fn attr(&self, name: &str) -> Option<(AttrId, AttrType)> {
        self.by_name
            .get(name)
            .map(|&id| (id, self.attrs[usize::from(id)].1))
    }

    /// Name of an attribute.
    pub fn name(&self, id: AttrId) -> &str {
        &self.attrs[usize::from(id)].0
    }

    /// Type of an attribute.
    pub fn ty(&self, id: AttrId) -> AttrType {
        self.attrs[usize::from(id)].1
    }

    /// All attributes in column order.
    pub fn iter(&self) -> impl Iterator<Item = (AttrId, &str, AttrType)> {
        self.attrs
            .iter()
            .enumerate()
            .map(|(i, (n, t))| (i as AttrId, n.as_ref(), *t))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

/// One typed column of customer attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Text values.
    String(Vec<Option<Arc<str>>>),
    /// Integer values.
    Int(Vec<Option<i64>>),
    /// Float values.
    Float(Vec<Option<f64>>),
    /// Boolean values.
    Bool(Vec<Option<bool>>),
    /// Timestamps, microseconds since the epoch (UTC).
    Timestamp(Vec<Option<i64>>),
    /// Lists of strings, stored as ready-made list values so reads do not allocate.
    StringList(Vec<Option<Arc<[Value]>>>),
}

impl Column {
    /// An all-null column of `ty` with `len` rows.
    pub fn nulls(ty: AttrType, len: usize) -> Column {
        match ty {
            AttrType::String => Column::String(vec![None; len]),
            AttrType::Int => Column::Int(vec![None; len]),
            AttrType::Float => Column::Float(vec![None; len]),
            AttrType::Bool => Column::Bool(vec![None; len]),
            AttrType::Timestamp => Column::Timestamp(vec![None; len]),
            AttrType::StringList => Column::StringList(vec![None; len]),
        }
    }

    /// The column's attribute type.
    pub fn ty(&self) -> AttrType {
        match self {
            Column::String(_) => AttrType::String,
            Column::Int(_) => AttrType::Int,
            Column::Float(_) => AttrType::Float,
            Column::Bool(_) => AttrType::Bool,
            Column::Timestamp(_) => AttrType::Timestamp,
            Column::StringList(_) => AttrType::StringList,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::String(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Timestamp(v) => v.len(),
            Column::StringList(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads row `row` as a [`Value`].
    pub fn get(&self, row: usize) -> Value {
        match self {
            Column::String(v) => v[row].clone().map_or(Value::Null, Value::Str),
            Column::Int(v) => v[row].map_or(Value::Null, Value::Int),
            Column::Float(v) => v[row].map_or(Value::Null, Value::Float),
            Column::Bool(v) => v[row].map_or(Value::Null, Value::Bool),
            Column::Timestamp(v) => v[row].map_or(Value::Null, Value::Timestamp),
            Column::StringList(v) => v[row].clone().map_or(Value::Null, Value::List),
        }
    }

    /// Appends `k` nulls.
    fn extend_nulls(&mut self, k: usize) {
        let n = self.len() + k;
        match self {
            Column::String(v) => v.resize(n, None),
            Column::Int(v) => v.resize(n, None),
            Column::Float(v) => v.resize(n, None),
            Column::Bool(v) => v.resize(n, None),
            Column::Timestamp(v) => v.resize(n, None),
            Column::StringList(v) => v.resize(n, None),
        }
    }

    /// Whether [`Column::set`] would take `value`.
    fn accepts(&self, value: &Value) -> bool {
        matches!(
            (self, value),
            (_, Value::Null)
                | (Column::String(_), Value::Str(_))
                | (Column::Int(_), Value::Int(_))
                | (Column::Float(_), Value::Float(_) | Value::Int(_))
                | (Column::Bool(_), Value::Bool(_))
                | (Column::Timestamp(_), Value::Timestamp(_))
                | (Column::StringList(_), Value::List(_))
        )
    }

    /// Writes `value` into row `row`; `false` (and nothing written) if the type does not fit.
    fn set(&mut self, row: usize, value: Value) -> bool {
        match (self, value) {
            (Column::String(v), Value::Null) => v[row] = None,
            (Column::Int(v), Value::Null) => v[row] = None,
            (Column::Float(v), Value::Null) => v[row] = None,
            (Column::Bool(v), Value::Null) => v[row] = None,
            (Column::Timestamp(v), Value::Null) => v[row] = None,
            (Column::StringList(v), Value::Null) => v[row] = None,
            (Column::String(v), Value::Str(s)) => v[row] = Some(s),
            (Column::Int(v), Value::Int(i)) => v[row] = Some(i),
            (Column::Float(v), Value::Float(x)) => v[row] = Some(x),
            (Column::Float(v), Value::Int(i)) => v[row] = Some(i as f64),
            (Column::Bool(v), Value::Bool(b)) => v[row] = Some(b),
            (Column::Timestamp(v), Value::Timestamp(t)) => v[row] = Some(t),
            (Column::StringList(v), Value::List(l)) => v[row] = Some(l),
            _ => return false,
        }
        true
    }
}

/// All customers: ids plus one [`Column`] per schema attribute.
#[derive(Clone, Debug)]
pub struct CustomerTable {
    schema: Arc<Schema>,
    ids: Vec<u64>,
    rows: RowIndex,
    columns: Vec<Column>,
}

/// Customer id → row (see the module docs).
#[derive(Clone, Debug)]
enum RowIndex {
    /// `rows[id - min]`, [`Row::MAX`] where no customer has that id (never a real row: a
    /// table has fewer than `Row::MAX` customers).
    Dense { min: u64, rows: Vec<Row> },
    /// Any id set.
    Sparse(FxHashMap<u64, Row>),
}

impl RowIndex {
    /// Indexes `ids` (row = position), rejecting repeats with both rows.
    fn build(ids: &[u64]) -> Result<RowIndex, TableError> {
        let duplicate = |id: u64, first: Row, second: usize| TableError::DuplicateId {
            id,
            first: first as usize,
            second,
        };
        let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(RowIndex::Sparse(FxHashMap::default()));
        };
        let span = (max - min).saturating_add(1);
        if span <= (ids.len() as u64).saturating_mul(2) {
            let mut rows = vec![Row::MAX; span as usize];
            for (row, &id) in ids.iter().enumerate() {
                let slot = &mut rows[(id - min) as usize];
                if *slot != Row::MAX {
                    return Err(duplicate(id, *slot, row));
                }
                *slot = row as Row;
            }
            return Ok(RowIndex::Dense { min, rows });
        }
        let mut rows = FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
        for (row, &id) in ids.iter().enumerate() {
            if let Some(first) = rows.insert(id, row as Row) {
                return Err(duplicate(id, first, row));
            }
        }
        Ok(RowIndex::Sparse(rows))
    }

    /// Adds `id` at `row` (a new last row). A dense index takes ids inside its range or just
    /// above it while it stays compact; anything else falls back to `false`, and the caller
    /// rebuilds.
    fn insert(&mut self, id: u64, row: Row, len: usize) -> bool {
        match self {
            RowIndex::Dense { min, rows } => {
                let Some(at) = id.checked_sub(*min).and_then(|a| usize::try_from(a).ok()) else {
                    return false;
                };
                if at >= rows.len() {
                    if at >= len.saturating_mul(2) {
                        return false;
                    }
                    rows.resize(at + 1, Row::MAX);
                }
                rows[at] = row;
                true
            }
            RowIndex::Sparse(rows) => {
                rows.insert(id, row);
                true
            }
        }
    }

    fn get(&self, id: u64) -> Option<Row> {
        match self {
            RowIndex::Dense { min, rows } => {
                let at = usize::try_from(id.checked_sub(*min)?).ok()?;
                rows.get(at).copied().filter(|&r| r != Row::MAX)
            }
            RowIndex::Sparse(rows) => rows.get(&id).copied(),
        }
    }
}

/// Why a [`CustomerTable`] could not be assembled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TableError {
    /// Two rows carry the same customer id.
    #[error("customer id {id} appears twice (row indices {first} and {second}, counted from 0)")]
    DuplicateId {
        /// The repeated id.
        id: u64,
        /// Row index (0-based) of the first occurrence.
        first: usize,
        /// Row index (0-based) of the repeat.
        second: usize,
    },
    /// A column's length or type does not match the schema.
    #[error("column `{name}` does not match the schema ({detail})")]
    ColumnMismatch {
        /// Attribute name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// More customers than row indices.
    #[error("too many customers: {0} (at most {max})", max = Row::MAX)]
    TooMany(usize),
}

impl CustomerTable {
    /// Assembles a table; `columns[i]` holds attribute `i` of `schema`.
    pub fn new(
        schema: Schema,
        ids: Vec<u64>,
        columns: Vec<Column>,
    ) -> Result<CustomerTable, TableError> {
        if ids.len() > Row::MAX as usize {
            return Err(TableError::TooMany(ids.len()));
        }
        if columns.len() != schema.len() {
            return Err(TableError::ColumnMismatch {
                name: "*".into(),
                detail: format!("{} columns for {} attributes", columns.len(), schema.len()),
            });
        }
        for ((_, name, ty), col) in schema.iter().zip(&columns) {
            if col.ty() != ty || col.len() != ids.len() {
                return Err(TableError::ColumnMismatch {
                    name: name.to_string(),
                    detail: format!(
                        "{} with {} rows, expected {} with {} rows",
                        col.ty(),
                        col.len(),
                        ty,
                        ids.len()
                    ),
                });
            }
        }
        let rows = RowIndex::build(&ids)?;
        Ok(CustomerTable {
            schema: Arc::new(schema),
            ids,
            rows,
            columns,
        })
    }

    /// Appends new customers, every attribute null (set them with [`CustomerTable::set`]);
    /// returns their rows. All-or-nothing: an id already in the table or repeated in `new_ids`
    /// is a [`TableError::DuplicateId`] and nothing is added.
    pub fn push_customers(&mut self, new_ids: &[u64]) -> Result<std::ops::Range<Row>, TableError> {
        self.rows_for_new(new_ids)?;
        let start = self.ids.len();
        let total = start + new_ids.len();
        self.ids.extend_from_slice(new_ids);
        for col in &mut self.columns {
            col.extend_nulls(new_ids.len());
        }
        let mut indexed = true;
        for (i, &id) in new_ids.iter().enumerate() {
            indexed = indexed && self.rows.insert(id, (start + i) as Row, start + i + 1);
        }
        if !indexed {
            // Ids validated unique above, so rebuilding cannot fail.
            self.rows = RowIndex::build(&self.ids)?;
        }
        Ok(start as Row..total as Row)
    }

    /// The rows [`CustomerTable::push_customers`] would give `new_ids`, without adding them:
    /// `id → row`, or the error it would return. Lets a caller validate a whole change set
    /// before applying any of it.
    pub fn rows_for_new(&self, new_ids: &[u64]) -> Result<FxHashMap<u64, Row>, TableError> {
        let start = self.ids.len();
        let total = start.saturating_add(new_ids.len());
        if total > Row::MAX as usize {
            return Err(TableError::TooMany(total));
        }
        let mut rows = FxHashMap::with_capacity_and_hasher(new_ids.len(), Default::default());
        for (i, &id) in new_ids.iter().enumerate() {
            let row = start + i;
            if let Some(first) = self.row_of(id).or_else(|| rows.get(&id).copied()) {
                return Err(TableError::DuplicateId {
                    id,
                    first: first as usize,
                    second: row,
                });
            }
            rows.insert(id, row as Row);
        }
        Ok(rows)
    }

    /// The attribute schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The row of customer `id`, if known.
    pub fn row_of(&self, id: u64) -> Option<Row> {
        self.rows.get(id)
    }

    /// The id of the customer at `row`.
    pub fn id_at(&self, row: Row) -> u64 {
        self.ids[row as usize]
    }

    /// All ids in row order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// All columns in schema order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Reads one attribute of one customer.
    pub fn get(&self, row: Row, attr: AttrId) -> Value {
        self.columns[usize::from(attr)].get(row as usize)
    }

    /// Whether [`CustomerTable::set`] would accept `value` for `attr` (on any row).
    pub fn accepts(&self, attr: AttrId, value: &Value) -> bool {
        self.columns
            .get(usize::from(attr))
            .is_some_and(|c| c.accepts(value))
    }

    /// Writes one attribute of one customer and returns the value it replaced; `None` (and
    /// the table unchanged) if `value` does not fit the attribute's type.
    pub fn replace(&mut self, row: Row, attr: AttrId, value: Value) -> Option<Value> {
        let column = self.columns.get_mut(usize::from(attr))?;
        if !column.accepts(&value) {
            return None;
        }
        let old = column.get(row as usize);
        column.set(row as usize, value).then_some(old)
    }

    /// Writes one attribute of one customer.
    ///
    /// Returns `false` and leaves the table unchanged if `value` does not fit the attribute's
    /// type; executors type-check before committing, so `false` means a bug upstream.
    pub fn set(&mut self, row: Row, attr: AttrId, value: Value) -> bool {
        self.columns[usize::from(attr)].set(row as usize, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CustomerTable {
        let schema = Schema::new([
            ("city".to_string(), AttrType::String),
            ("points".to_string(), AttrType::Int),
        ])
        .unwrap();
        CustomerTable::new(
            schema,
            vec![10, 20],
            vec![
                Column::String(vec![Some("Berlin".into()), None]),
                Column::Int(vec![Some(5), Some(7)]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn reads_and_type_checked_writes() {
        let mut t = table();
        let row = t.row_of(20).unwrap();
        let (points, _) = t.schema().attr("points").unwrap();
        assert_eq!(t.get(row, points), Value::Int(7));
        assert!(t.set(row, points, Value::Int(9)));
        assert!(!t.set(row, points, Value::str("nine")));
        assert!(t.accepts(points, &Value::Int(1)) && t.accepts(points, &Value::Null));
        assert!(!t.accepts(points, &Value::str("nine")) && !t.accepts(99, &Value::Null));
        assert_eq!(t.get(row, points), Value::Int(9));
        assert_eq!(t.get(row, 0), Value::Null);
        assert_eq!(t.replace(row, points, Value::Int(10)), Some(Value::Int(9)));
        assert_eq!(t.replace(row, points, Value::str("ten")), None);
        assert_eq!(t.get(row, points), Value::Int(10));
    }

    #[test]
    fn duplicate_ids_are_rejected_with_rows() {
        let schema = Schema::new([("a".to_string(), AttrType::Int)]).unwrap();
        let err = CustomerTable::new(schema, vec![1, 1], vec![Column::Int(vec![None, None])])
            .unwrap_err();
        assert_eq!(
            err,
            TableError::DuplicateId {
                id: 1,
                first: 0,
                second: 1
            }
        );
    }

    #[test]
    fn ids_map_to_rows_whether_compact_or_scattered() {
        let schema = Schema::new([("a".to_string(), AttrType::Int)]).unwrap();
        let table = |ids: Vec<u64>| {
            let n = ids.len();
            CustomerTable::new(schema.clone(), ids, vec![Column::Int(vec![None; n])])
        };
        // Compact (direct array), with a gap, and scattered (hash map) including u64::MAX.
        for (ids, dense) in [
            (vec![7, 5, 6, 9], true),
            (vec![u64::MAX, 0, 1 << 40, 3], false),
            (vec![u64::MAX - 1, u64::MAX], true),
        ] {
            let t = table(ids.clone()).unwrap();
            assert_eq!(matches!(t.rows, RowIndex::Dense { .. }), dense, "{ids:?}");
            for (row, &id) in ids.iter().enumerate() {
                assert_eq!(t.row_of(id), Some(row as Row), "{ids:?}");
            }
            for absent in [8, 4, 10, 2, u64::MAX - 2, 1 << 41] {
                if !ids.contains(&absent) {
                    assert_eq!(t.row_of(absent), None, "{absent} in {ids:?}");
                }
            }
        }
        // Repeats are found in both layouts, with both rows.
        for ids in [vec![5, 6, 5], vec![1 << 40, 3, 1 << 40]] {
            assert_eq!(
                table(ids.clone()).unwrap_err(),
                TableError::DuplicateId {
                    id: ids[0],
                    first: 0,
                    second: 2
                }
            );
        }
    }

    #[test]
    fn pushed_customers_get_null_rows_and_are_found() {
        let schema = Schema::new([("a".to_string(), AttrType::Int)]).unwrap();
        // Dense ids growing in range, just above it, far above it (rebuilds as a hash map).
        let mut t = CustomerTable::new(
            schema,
            vec![1, 2, 4],
            vec![Column::Int(vec![Some(1), Some(2), Some(4)])],
        )
        .unwrap();
        assert_eq!(t.push_customers(&[3, 5]).unwrap(), 3..5);
        assert!(matches!(t.rows, RowIndex::Dense { .. }));
        assert_eq!(t.push_customers(&[1 << 40]).unwrap(), 5..6);
        assert!(matches!(t.rows, RowIndex::Sparse(_)));
        assert_eq!(t.push_customers(&[]).unwrap(), 6..6);
        for (row, id) in [1, 2, 4, 3, 5, 1 << 40].into_iter().enumerate() {
            assert_eq!(t.row_of(id), Some(row as Row));
        }
        assert_eq!(t.row_of(6), None);
        assert_eq!(t.len(), 6);
        assert_eq!(t.get(3, 0), Value::Null);
        assert_eq!(t.get(2, 0), Value::Int(4));
        // Known or repeated ids add nothing.
        for bad in [vec![7, 2], vec![7, 8, 7]] {
            assert!(matches!(
                t.push_customers(&bad),
                Err(TableError::DuplicateId { .. })
            ));
            assert_eq!(t.len(), 6);
            assert_eq!(t.row_of(7), None);
        }
    }

    #[test]
    fn duplicate_attribute_names_are_rejected() {
        let err = Schema::new([
            ("a".to_string(), AttrType::Int),
            ("a".to_string(), AttrType::Bool),
        ])
        .unwrap_err();
        assert_eq!(err, "a");
    }
}
