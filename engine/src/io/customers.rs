//! Loading and saving the customer table through Polars (Parquet or CSV).
//!
//! Format rules (documented in the README):
//! - a column named `id` holds the customer id: a non-null, non-negative integer, unique;
//! - every other column is an attribute; its Polars dtype decides the [`AttrType`](crate::value::AttrType):
//!   strings → `string`, any integer → `int`, floats → `float`, booleans → `bool`,
//!   datetimes/dates → `timestamp` (UTC), lists of strings → `string list`;
//! - any other dtype is rejected by name, with the column, before any work starts.
//!
//! Saving writes the same layout back (`id` first, attributes in schema order, timestamps as
//! `Datetime(us)` in UTC), so `load(save(t)) == t` and a run's output can feed the next run.
//! Parquet output is deterministic: the same table always produces the same bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::customers::{Column as AttrColumn, CustomerTable, Schema, TableError};
use crate::value::Value;

/// Why customers could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum CustomerIoError {
    /// The file could not be opened or created.
    #[error("cannot open {path}: {source}")]
    Open {
        /// File path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Polars could not read or write the file (corrupt Parquet, malformed CSV, …).
    #[error("cannot read {path} as {format}: {source}")]
    Polars {
        /// File path.
        path: PathBuf,
        /// `parquet` or `csv`.
        format: &'static str,
        /// Polars' error.
        source: PolarsError,
    },
    /// The extension is neither `.parquet` nor `.csv`.
    #[error("{path}: unknown customer file format (expected a .parquet or .csv file)")]
    UnknownFormat {
        /// File path.
        path: PathBuf,
    },
    /// The file holds no customers.
    #[error("{path}: the customer file is empty (no rows)")]
    Empty {
        /// File path.
        path: PathBuf,
    },
    /// There is no `id` column.
    #[error("{path}: no `id` column (found: {found})")]
    MissingId {
        /// File path.
        path: PathBuf,
        /// The columns that are there.
        found: String,
    },
    /// The `id` column has a bad value.
    #[error("{path}: row {row}: customer id {problem}")]
    BadId {
        /// File path.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// What is wrong.
        problem: String,
    },
    /// An attribute column has a dtype Fusebox does not model.
    #[error("{path}: column `{column}` has unsupported type {dtype} (supported: string, integer, float, bool, datetime, date, list of strings)")]
    UnsupportedType {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Polars dtype.
        dtype: String,
    },
    /// Duplicate ids or another structural problem.
    #[error("{path}: {source}")]
    Table {
        /// File path.
        path: PathBuf,
        /// The problem.
        source: TableError,
    },
}

#[derive(Clone, Copy)]
enum Format {
    Parquet,
    Csv,
}

impl Format {
    fn of(path: &Path) -> Result<Format, CustomerIoError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("parquet") => Ok(Format::Parquet),
            Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
            _ => Err(CustomerIoError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Loads customers from a `.parquet` or `.csv` file.
pub fn load_customers(path: &Path) -> Result<CustomerTable, CustomerIoError> {
    let format = Format::of(path)?;
    let polars_err = |source| CustomerIoError::Polars {
        path: path.to_path_buf(),
        format: format.name(),
        source,
    };
    let df = match format {
        Format::Parquet => {
            let file = File::open(path).map_err(|source| CustomerIoError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            ParquetReader::new(file).finish().map_err(polars_err)?
        }
        Format::Csv => {
            // Open first so a missing file reports the OS error, not a Polars one.
            File::open(path).map_err(|source| CustomerIoError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(10_000))
                .map_parse_options(|o| o.with_try_parse_dates(true))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
                .map_err(polars_err)?
        }
    };
    table_from_frame(&df, path)
}

/// Converts a Polars frame into a [`CustomerTable`] (see the module docs for the rules).
pub fn table_from_frame(df: &DataFrame, path: &Path) -> Result<CustomerTable, CustomerIoError> {
    if df.height() == 0 {
        return Err(CustomerIoError::Empty {
            path: path.to_path_buf(),
        });
    }
    let id_col = df.column("id").map_err(|_| CustomerIoError::MissingId {
        path: path.to_path_buf(),
        found: df
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let ids = read_ids(id_col.as_materialized_series(), path)?;

    let mut attrs = Vec::new();
    let mut columns = Vec::new();
    for col in df.columns() {
        if col.name().as_str() == "id" {
            continue;
        }
        let series = col.as_materialized_series();
        let unsupported = || CustomerIoError::UnsupportedType {
            path: path.to_path_buf(),
            column: col.name().to_string(),
            dtype: series.dtype().to_string(),
        };
        let polars_err = |source| CustomerIoError::Polars {
            path: path.to_path_buf(),
            format: "table",
            source,
        };
        let column = read_column(series)
            .map_err(polars_err)?
            .ok_or_else(unsupported)?;
        attrs.push((col.name().to_string(), column.ty()));
        columns.push(column);
    }
    let schema = Schema::new(attrs).map_err(|name| CustomerIoError::Table {
        path: path.to_path_buf(),
        source: TableError::ColumnMismatch {
            name,
            detail: "duplicate column name".into(),
        },
    })?;
    CustomerTable::new(schema, ids, columns).map_err(|source| CustomerIoError::Table {
        path: path.to_path_buf(),
        source,
    })
}

fn read_ids(series: &Series, path: &Path) -> Result<Vec<u64>, CustomerIoError> {
    let bad = |row: usize, problem: String| CustomerIoError::BadId {
        path: path.to_path_buf(),
        row: row + 1,
        problem,
    };
    if !series.dtype().is_integer() {
        return Err(bad(
            0,
            format!("column has type {}, expected an integer", series.dtype()),
        ));
    }
    // u64 ids are taken as they are; every other integer type is widened to i64 and checked.
    if let Ok(u) = series.u64() {
        return u
            .iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| bad(row, "is null".into())))
            .collect();
    }
    let signed = series
        .strict_cast(&DataType::Int64)
        .map_err(|e| bad(0, e.to_string()))?;
    let signed = signed.i64().map_err(|e| bad(0, e.to_string()))?;
    signed
        .iter()
        .enumerate()
        .map(|(row, v)| match v {
            None => Err(bad(row, "is null".into())),
            Some(v) if v < 0 => Err(bad(row, format!("{v} is negative"))),
            Some(v) => Ok(v as u64),
        })
        .collect()
}

/// Reads one attribute column; `Ok(None)` for an unsupported dtype.
fn read_column(series: &Series) -> PolarsResult<Option<AttrColumn>> {
    let dtype = series.dtype();
    let column = match dtype {
        DataType::String => AttrColumn::String(
            series
                .str()?
                .iter()
                .map(|v| v.map(Arc::<str>::from))
                .collect(),
        ),
        DataType::Boolean => AttrColumn::Bool(series.bool()?.iter().collect()),
        DataType::Float32 | DataType::Float64 => {
            let s = series.cast(&DataType::Float64)?;
            AttrColumn::Float(s.f64()?.iter().collect())
        }
        d if d.is_integer() => {
            let s = series.strict_cast(&DataType::Int64)?;
            AttrColumn::Int(s.i64()?.iter().collect())
        }
        DataType::Datetime(_, _) | DataType::Date => {
            let s = series
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?
                .cast(&DataType::Int64)?;
            AttrColumn::Timestamp(s.i64()?.iter().collect())
        }
        DataType::List(inner) if matches!(inner.as_ref(), DataType::String) => {
            let mut out = Vec::with_capacity(series.len());
            for item in series.list()?.series_iter() {
                out.push(match item {
                    None => None,
                    Some(s) => Some(
                        s.str()?
                            .iter()
                            .map(|v| v.map_or(Value::Null, Value::str))
                            .collect::<Arc<[Value]>>(),
                    ),
                });
            }
            AttrColumn::StringList(out)
        }
        _ => return Ok(None),
    };
    Ok(Some(column))
}

/// Converts a [`CustomerTable`] into a Polars frame (`id` first, then attributes).
pub fn table_to_frame(table: &CustomerTable) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::with_capacity(table.schema().len() + 1);
    columns.push(Series::new("id".into(), table.ids()).into_column());
    for ((_, name, _), col) in table.schema().iter().zip(table.columns()) {
        let name = PlSmallStr::from(name);
        let series = match col {
            AttrColumn::String(v) => Series::new(
                name,
                v.iter()
                    .map(|s| s.as_deref())
                    .collect::<Vec<Option<&str>>>(),
            ),
            AttrColumn::Int(v) => Series::new(name, v),
            AttrColumn::Float(v) => Series::new(name, v),
            AttrColumn::Bool(v) => Series::new(name, v),
            AttrColumn::Timestamp(v) => {
                Series::new(name, v).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?
            }
            AttrColumn::StringList(v) => {
                let lists: ListChunked = v
                    .iter()
                    .map(|items| {
                        items.as_ref().map(|items| {
                            let strs: Vec<Option<&str>> = items
                                .iter()
                                .map(|x| match x {
                                    Value::Str(s) => Some(s.as_ref()),
                                    _ => None,
                                })
                                .collect();
                            Series::new(PlSmallStr::EMPTY, strs)
                        })
                    })
                    .collect();
                let lists = lists.with_name(name);
                // An all-null column would otherwise be typed List(Null).
                lists
                    .into_series()
                    .cast(&DataType::List(Box::new(DataType::String)))?
            }
        };
        columns.push(series.into_column());
    }
    DataFrame::new(table.len(), columns)
}

/// Saves customers to a `.parquet` or `.csv` file (format by extension).
pub fn save_customers(table: &CustomerTable, path: &Path) -> Result<(), CustomerIoError> {
    let format = Format::of(path)?;
    let polars_err = |source| CustomerIoError::Polars {
        path: path.to_path_buf(),
        format: format.name(),
        source,
    };
    let mut df = table_to_frame(table).map_err(polars_err)?;
    let file = File::create(path).map_err(|source| CustomerIoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    match format {
        Format::Parquet => {
            ParquetWriter::new(file)
                .finish(&mut df)
                .map_err(polars_err)?;
        }
        Format::Csv => {
            CsvWriter::new(file)
                .include_header(true)
                .finish(&mut df)
                .map_err(polars_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::AttrType;

    fn sample() -> CustomerTable {
        let schema = Schema::new([
            ("city".to_string(), AttrType::String),
            ("points".to_string(), AttrType::Int),
            ("score".to_string(), AttrType::Float),
            ("vip".to_string(), AttrType::Bool),
            ("last_order_at".to_string(), AttrType::Timestamp),
            ("tags".to_string(), AttrType::StringList),
        ])
        .unwrap();
        CustomerTable::new(
            schema,
            vec![7, 3],
            vec![
                AttrColumn::String(vec![Some("Berlin".into()), None]),
                AttrColumn::Int(vec![Some(5), None]),
                AttrColumn::Float(vec![None, Some(0.25)]),
                AttrColumn::Bool(vec![Some(true), Some(false)]),
                AttrColumn::Timestamp(vec![Some(1_700_000_000_000_000), None]),
                AttrColumn::StringList(vec![
                    Some(vec![Value::str("a"), Value::str("b")].into()),
                    None,
                ]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn parquet_round_trip_is_lossless_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.parquet");
        let b = dir.path().join("b.parquet");
        let table = sample();
        save_customers(&table, &a).unwrap();
        save_customers(&table, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let back = load_customers(&a).unwrap();
        assert_eq!(back.ids(), table.ids());
        assert_eq!(back.columns(), table.columns());
        let names: Vec<_> = back
            .schema()
            .iter()
            .map(|(_, n, t)| (n.to_string(), t))
            .collect();
        let expected: Vec<_> = table
            .schema()
            .iter()
            .map(|(_, n, t)| (n.to_string(), t))
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn csv_with_missing_id_column_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "name,points\nann,3\n").unwrap();
        let err = load_customers(&p).unwrap_err();
        assert!(matches!(err, CustomerIoError::MissingId { .. }), "{err}");
        assert!(err.to_string().contains("name, points"), "{err}");
    }

    #[test]
    fn csv_loads_typed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "id,city,points,vip\n1,Berlin,3,true\n2,,4,false\n").unwrap();
        let t = load_customers(&p).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.schema().attr("points").map(|a| a.1), Some(AttrType::Int));
        assert_eq!(t.get(1, 0), Value::Null);
    }

    #[test]
    fn negative_and_duplicate_ids_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "id,x\n1,1\n-4,2\n").unwrap();
        assert!(matches!(
            load_customers(&p),
            Err(CustomerIoError::BadId { row: 2, .. })
        ));
        std::fs::write(&p, "id,x\n1,1\n1,2\n").unwrap();
        assert!(matches!(
            load_customers(&p),
            Err(CustomerIoError::Table { .. })
        ));
    }

    #[test]
    fn empty_and_unknown_formats_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "id,x\n").unwrap();
        assert!(matches!(
            load_customers(&p),
            Err(CustomerIoError::Empty { .. })
        ));
        let q = dir.path().join("c.xlsx");
        assert!(matches!(
            load_customers(&q),
            Err(CustomerIoError::UnknownFormat { .. })
        ));
    }
}
