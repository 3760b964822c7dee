//! Loading and saving the customer table through Polars (Parquet or CSV).
//!
//! Format rules (documented in the README):
//! - a column named `id` holds the customer id: a non-null, non-negative integer, unique;
//! - every other column is an attribute; its type decides the [`AttrType`](crate::value::AttrType):
//!   text (also dictionary-encoded) → `string`, any integer (8 to 64 bits, signed or not) →
//!   `int`, 32/64-bit floats → `float`, booleans → `bool`, datetimes (any unit, any time zone)
//!   and dates → `timestamp`, lists of text → `string list`;
//! - any other type (decimal, time of day, duration, binary, struct, …) is rejected by name,
//!   with the column, before any data is read (see [`crate::io::parquet`]).
//!
//! **No silent change of data.** A value is converted exactly or the load fails naming the
//! column and the 1-based data row (CSV: also the file line): an unsigned integer above
//! `i64::MAX`, a timestamp with nanoseconds that are not whole microseconds, a date or time
//! outside 0001-01-01 to 9999-12-31. Loading is all or nothing: a customer table is the
//! state a run starts from, so a bad row is an error of the file, not of the row.
//!
//! Saving writes the same layout back (`id` first, attributes in schema order, timestamps as
//! `Datetime(us)` labelled with the source column's time zone, if it had one, else naive
//! UTC), so `load(save(t)) == t` and a run's output can feed the next run. Integers are
//! written as 64-bit, floats as 64-bit, dates as datetimes: the values are the same. A save
//! goes to a temporary file renamed into place when complete, so a reader never sees a
//! half-written file. Parquet output is deterministic: the same table always produces the
//! same bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::customers::{Column as AttrColumn, CustomerTable, Schema, TableError};
use crate::io::parquet::{self, ColumnKind};
use crate::io::temporal::timestamp_cells;
use crate::value::Value;

/// Why customers could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum CustomerIoError {
    /// The file could not be opened.
    #[error("cannot open {path}: {error}")]
    Open {
        /// File path.
        path: PathBuf,
        /// OS error.
        error: std::io::Error,
    },
    /// Polars could not read the file (corrupt Parquet, malformed CSV, …).
    #[error("cannot read {path} as {format}: {detail}")]
    Read {
        /// File path.
        path: PathBuf,
        /// `parquet` or `csv`.
        format: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// File path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
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
    /// The `id` column is not of an integer type.
    #[error("{path}: column `id` has type {dtype}; customer ids are non-negative integers")]
    IdType {
        /// File path.
        path: PathBuf,
        /// The column's type.
        dtype: String,
    },
    /// A value cannot be taken as it is (see the module docs).
    #[error("{path}: {row}, column `{column}`: {problem}")]
    BadValue {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Where: `row 3` (1-based data row), plus `(line 4)` for CSV.
        row: String,
        /// What is wrong.
        problem: String,
    },
    /// Two rows carry the same id.
    #[error("{path}: customer id {id} appears twice: {first} and {second}")]
    DuplicateId {
        /// File path.
        path: PathBuf,
        /// The id.
        id: u64,
        /// Where it first appears (`row 3`, plus `(line 4)` for CSV).
        first: String,
        /// Where it appears again.
        second: String,
    },
    /// An attribute column has a type Fusebox does not model.
    #[error("{path}: column `{column}` has unsupported type {dtype} (supported: text, integer, float, bool, datetime, date, list of text); convert it, e.g. a decimal to float or text")]
    UnsupportedType {
        /// File path.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Its type.
        dtype: String,
    },
    /// Another structural problem (duplicate column names, too many customers).
    #[error("{path}: {error}")]
    Table {
        /// File path.
        path: PathBuf,
        /// The problem.
        error: TableError,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
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

    /// Where a 0-based data row is, for messages: `row 3`, and for CSV also `(line 4)`.
    fn row(self, index: usize) -> String {
        match self {
            Format::Parquet => format!("row {}", index + 1),
            Format::Csv => format!("row {} (line {})", index + 1, index + 2),
        }
    }
}

/// Loads customers from a `.parquet` or `.csv` file.
pub fn load_customers(path: &Path) -> Result<CustomerTable, CustomerIoError> {
    let format = Format::of(path)?;
    let read_err = |detail: String| CustomerIoError::Read {
        path: path.to_path_buf(),
        format: format.name(),
        detail,
    };
    // Open first so a missing file reports the OS error, not a Polars one.
    File::open(path).map_err(|error| CustomerIoError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let df = match format {
        Format::Parquet => {
            let fields = parquet::schema(path).map_err(read_err)?;
            for (name, dtype) in &fields {
                if let Err(dtype) = ColumnKind::of(dtype) {
                    return Err(if name == "id" {
                        CustomerIoError::IdType {
                            path: path.to_path_buf(),
                            dtype,
                        }
                    } else {
                        CustomerIoError::UnsupportedType {
                            path: path.to_path_buf(),
                            column: name.clone(),
                            dtype,
                        }
                    });
                }
            }
            let names: Vec<String> = fields.into_iter().map(|(n, _)| n).collect();
            parquet::read(path, &names).map_err(read_err)?
        }
        Format::Csv => parquet::contain_panics(|| {
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(10_000))
                .map_parse_options(|o| o.with_try_parse_dates(true))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
                .map_err(|e| e.to_string())
        })
        .map_err(read_err)?,
    };
    from_frame(&df, path, format)
}

/// Converts a Polars frame into a [`CustomerTable`] (see the module docs for the rules);
/// `path` names the source in errors, whose rows are 1-based data rows.
pub fn table_from_frame(df: &DataFrame, path: &Path) -> Result<CustomerTable, CustomerIoError> {
    from_frame(df, path, Format::Parquet)
}

fn from_frame(
    df: &DataFrame,
    path: &Path,
    format: Format,
) -> Result<CustomerTable, CustomerIoError> {
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
    let ids = read_ids(id_col.as_materialized_series(), path, format)?;

    let mut attrs = Vec::new();
    let mut columns = Vec::new();
    let mut zones = Vec::new();
    for col in df.columns() {
        if col.name().as_str() == "id" {
            continue;
        }
        let series = col.as_materialized_series();
        let bad = |problem: ColumnProblem| match problem {
            ColumnProblem::Unsupported => CustomerIoError::UnsupportedType {
                path: path.to_path_buf(),
                column: col.name().to_string(),
                dtype: series.dtype().to_string(),
            },
            ColumnProblem::Value { row, problem } => CustomerIoError::BadValue {
                path: path.to_path_buf(),
                column: col.name().to_string(),
                row: format.row(row),
                problem,
            },
            ColumnProblem::Polars(detail) => CustomerIoError::Read {
                path: path.to_path_buf(),
                format: format.name(),
                detail: format!("column `{}`: {detail}", col.name()),
            },
        };
        let column = read_column(series).map_err(bad)?;
        if let DataType::Datetime(_, Some(zone)) = series.dtype() {
            zones.push((attrs.len(), zone.to_string()));
        }
        attrs.push((col.name().to_string(), column.ty()));
        columns.push(column);
    }
    let mut schema = Schema::new(attrs).map_err(|name| CustomerIoError::Table {
        path: path.to_path_buf(),
        error: TableError::ColumnMismatch {
            name,
            detail: "duplicate column name".into(),
        },
    })?;
    for (attr, zone) in zones {
        schema = schema.with_time_zone(attr as u16, &zone);
    }
    CustomerTable::new(schema, ids, columns).map_err(|error| match error {
        TableError::DuplicateId { id, first, second } => CustomerIoError::DuplicateId {
            path: path.to_path_buf(),
            id,
            first: format.row(first),
            second: format.row(second),
        },
        error => CustomerIoError::Table {
            path: path.to_path_buf(),
            error,
        },
    })
}

fn read_ids(series: &Series, path: &Path, format: Format) -> Result<Vec<u64>, CustomerIoError> {
    let bad = |row: usize, problem: String| CustomerIoError::BadValue {
        path: path.to_path_buf(),
        column: "id".into(),
        row: format.row(row),
        problem,
    };
    let polars = |e: PolarsError| CustomerIoError::Read {
        path: path.to_path_buf(),
        format: format.name(),
        detail: format!("column `id`: {e}"),
    };
    if !series.dtype().is_integer() {
        return Err(CustomerIoError::IdType {
            path: path.to_path_buf(),
            dtype: series.dtype().to_string(),
        });
    }
    if series.dtype().is_unsigned_integer() {
        let u = series.cast(&DataType::UInt64).map_err(polars)?;
        return u
            .u64()
            .map_err(polars)?
            .iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| bad(row, "customer id is null".into())))
            .collect();
    }
    let signed = series.cast(&DataType::Int64).map_err(polars)?;
    signed
        .i64()
        .map_err(polars)?
        .iter()
        .enumerate()
        .map(|(row, v)| match v {
            None => Err(bad(row, "customer id is null".into())),
            Some(v) if v < 0 => Err(bad(row, format!("customer id {v} is negative"))),
            Some(v) => Ok(v as u64),
        })
        .collect()
}

/// Why a column cannot be loaded.
enum ColumnProblem {
    /// Its type is not one Fusebox models.
    Unsupported,
    /// A value cannot be taken exactly (0-based row).
    Value { row: usize, problem: String },
    /// Polars failed.
    Polars(String),
}

impl From<PolarsError> for ColumnProblem {
    fn from(e: PolarsError) -> Self {
        ColumnProblem::Polars(e.to_string())
    }
}

/// Reads one attribute column exactly (see the module docs).
fn read_column(series: &Series) -> Result<AttrColumn, ColumnProblem> {
    let dtype = series.dtype();
    let column = match dtype {
        DataType::String => text_column(series)?,
        d if d.is_categorical() || d.is_enum() => text_column(&series.cast(&DataType::String)?)?,
        DataType::Boolean => AttrColumn::Bool(series.bool()?.iter().collect()),
        DataType::Float32 | DataType::Float64 => {
            // f32 → f64 is exact.
            let s = series.cast(&DataType::Float64)?;
            AttrColumn::Float(s.f64()?.iter().collect())
        }
        d if d.is_unsigned_integer() => {
            let s = series.cast(&DataType::UInt64)?;
            let values = s.u64()?.iter().enumerate().map(|(row, v)| match v {
                Some(v) => i64::try_from(v)
                    .map(Some)
                    .map_err(|_| ColumnProblem::Value {
                        row,
                        problem: format!("{v} does not fit a 64-bit signed int"),
                    }),
                None => Ok(None),
            });
            AttrColumn::Int(values.collect::<Result<_, _>>()?)
        }
        d if d.is_integer() => {
            let s = series.cast(&DataType::Int64)?;
            AttrColumn::Int(s.i64()?.iter().collect())
        }
        DataType::Datetime(_, _) | DataType::Date => {
            let cells = timestamp_cells(series)?.unwrap_or_default();
            let values = cells
                .into_iter()
                .enumerate()
                .map(|(row, v)| v.map_err(|problem| ColumnProblem::Value { row, problem }));
            AttrColumn::Timestamp(values.collect::<Result<_, _>>()?)
        }
        DataType::List(inner) if inner.is_string() || inner.is_categorical() => {
            let lists = series.cast(&DataType::List(Box::new(DataType::String)))?;
            let mut out = Vec::with_capacity(series.len());
            for item in lists.list()?.series_iter() {
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
        _ => return Err(ColumnProblem::Unsupported),
    };
    Ok(column)
}

fn text_column(series: &Series) -> Result<AttrColumn, ColumnProblem> {
    Ok(AttrColumn::String(
        series
            .str()?
            .iter()
            .map(|v| v.map(Arc::<str>::from))
            .collect(),
    ))
}

/// Converts a [`CustomerTable`] into a Polars frame (`id` first, then attributes).
pub fn table_to_frame(table: &CustomerTable) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::with_capacity(table.schema().len() + 1);
    columns.push(Series::new("id".into(), table.ids()).into_column());
    for ((attr, name, _), col) in table.schema().iter().zip(table.columns()) {
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
                let zone = TimeZone::opt_try_new(table.schema().time_zone(attr))?;
                Int64Chunked::from_iter_options(name, v.iter().copied())
                    .into_datetime(TimeUnit::Microseconds, zone)
                    .into_series()
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

/// Saves customers to a `.parquet` or `.csv` file (format by extension), atomically: the
/// table is written to a temporary file in the same directory and renamed over `path` when
/// complete.
pub fn save_customers(table: &CustomerTable, path: &Path) -> Result<(), CustomerIoError> {
    let format = Format::of(path)?;
    let write_err = |detail: String| CustomerIoError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let mut df = table_to_frame(table).map_err(|e| write_err(e.to_string()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".fusebox-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| write_err(e.to_string()))?;
    let file = tmp.as_file_mut();
    match format {
        Format::Parquet => ParquetWriter::new(file)
            .finish(&mut df)
            .map(|_| ())
            .map_err(|e| write_err(e.to_string()))?,
        Format::Csv => CsvWriter::new(file)
            .include_header(true)
            .finish(&mut df)
            .map_err(|e| write_err(e.to_string()))?,
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| write_err(e.to_string()))?;
    tmp.persist(path)
        .map_err(|e| write_err(e.error.to_string()))?;
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
        let err = load_customers(&p).unwrap_err();
        assert!(
            matches!(&err, CustomerIoError::BadValue { row, .. } if row == "row 2 (line 3)"),
            "{err}"
        );
        std::fs::write(&p, "id,x\n1,1\n1,2\n").unwrap();
        let err = load_customers(&p).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: customer id 1 appears twice: row 1 (line 2) and row 2 (line 3)",
                p.display()
            )
        );
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
