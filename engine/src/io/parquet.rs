//! Reading Parquet safely: look at the schema first, read only what is understood, and never
//! let a malformed file take the process down.
//!
//! Polars materialises every column it reads, and for a type it was not compiled to support
//! (decimal, for instance) it panics instead of returning an error. So every Parquet read in
//! Fusebox goes through here:
//! 1. [`schema`] reads the file's Arrow schema from its footer (no data) and
//!    [`ColumnKind::of`] classifies each column — a kind Fusebox reads, or the type's name for
//!    a precise "unsupported type" error that names the column;
//! 2. [`read`] reads only the named columns;
//! 3. both run inside [`contain_panics`], which turns a panic inside Polars (a malformed file
//!    that trips an upstream bug) into an error carrying the panic's message.
//!
//! Invariant: no byte sequence given as a Parquet file makes a reader here panic or abort;
//! the fuzz tests (`engine/tests/fuzz_readers.rs`) hold it to that.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use polars::prelude::*;

/// What a Parquet column holds, as far as Fusebox reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Text (UTF-8, large UTF-8, string views, or dictionary-encoded text).
    Text,
    /// A signed integer of any width.
    Int,
    /// An unsigned integer of any width.
    UInt,
    /// 32- or 64-bit float.
    Float,
    /// Boolean.
    Bool,
    /// A point in time: its unit and time zone (`None`: naive, read as UTC).
    Timestamp {
        /// `s`, `ms`, `us` or `ns` ticks.
        unit: ArrowTimeUnit,
        /// The column's time zone, if it has one.
        time_zone: Option<String>,
    },
    /// A calendar date (read as midnight UTC).
    Date,
    /// A list of text values.
    TextList,
}

impl ColumnKind {
    /// The kind of a column of Arrow type `dtype`, or the type's name if Fusebox does not read
    /// it.
    pub(crate) fn of(dtype: &ArrowDataType) -> Result<ColumnKind, String> {
        use ArrowDataType as A;
        let text = |d: &A| matches!(d, A::Utf8 | A::LargeUtf8 | A::Utf8View);
        Ok(match dtype {
            d if text(d) => ColumnKind::Text,
            A::Dictionary(_, values, _) if text(values) => ColumnKind::Text,
            A::Int8 | A::Int16 | A::Int32 | A::Int64 => ColumnKind::Int,
            A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 => ColumnKind::UInt,
            A::Float32 | A::Float64 => ColumnKind::Float,
            A::Boolean => ColumnKind::Bool,
            A::Timestamp(unit, tz) => ColumnKind::Timestamp {
                unit: *unit,
                time_zone: tz.as_ref().map(|t| t.to_string()),
            },
            A::Date32 | A::Date64 => ColumnKind::Date,
            A::List(item) | A::LargeList(item) if text(&item.dtype) => ColumnKind::TextList,
            other => return Err(type_name(other)),
        })
    }
}

/// A short, user-facing name of an Arrow type (`decimal(10, 2)`, `list<int64>`, …).
fn type_name(dtype: &ArrowDataType) -> String {
    use ArrowDataType as A;
    match dtype {
        A::Decimal(p, s) | A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal256(p, s) => {
            format!("decimal({p}, {s})")
        }
        A::List(item) | A::LargeList(item) => {
            format!("list<{}>", type_name(&item.dtype))
        }
        A::FixedSizeList(item, n) => format!("fixed-size list<{}>[{n}]", type_name(&item.dtype)),
        A::Struct(fields) => format!("struct with {} fields", fields.len()),
        A::Map(..) => "map".to_string(),
        A::Dictionary(_, values, _) => format!("dictionary of {}", type_name(values)),
        A::Null => "null (no values of any type)".to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The columns of a Parquet file and their Arrow types, from its footer.
pub(crate) fn schema(path: &Path) -> Result<Vec<(String, ArrowDataType)>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    contain_panics(|| {
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(|e| e.to_string())?;
        Ok(schema
            .iter()
            .map(|(name, field)| (name.to_string(), field.dtype.clone()))
            .collect())
    })
}

/// Reads the named columns of a Parquet file (the caller checked their kinds).
pub(crate) fn read(path: &Path, columns: &[String]) -> Result<DataFrame, String> {
    check(path)?;
    read_rows(path, columns, None)
}

/// Checks the file's counts before anything is decoded (see [`check_counts`]); once per file,
/// before any [`read_rows`].
pub(crate) fn check(path: &Path) -> Result<(), String> {
    contain_panics(|| check_counts(path))
}

/// The number of rows of a Parquet file, from its footer.
pub(crate) fn num_rows(path: &Path) -> Result<usize, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    contain_panics(|| {
        ParquetReader::new(file)
            .num_rows()
            .map_err(|e| e.to_string())
    })
}

/// Reads the named columns of rows `offset..offset + len` (`None`: every row) of a file that
/// passed [`check`] (the caller checked the columns' kinds).
pub(crate) fn read_rows(
    path: &Path,
    columns: &[String],
    slice: Option<(usize, usize)>,
) -> Result<DataFrame, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    contain_panics(|| {
        ParquetReader::new(file)
            .with_columns(Some(columns.to_vec()))
            .with_slice(slice)
            .finish()
            .map_err(|e| e.to_string())
    })
}

/// More rows than this in one file is taken for damage, not data (a row costs Fusebox far
/// more than a byte; no machine holds this many).
const MAX_ROWS: u64 = 1 << 40;

/// Checks the counts Polars trusts without checking, before it decodes anything: the rows of
/// each row group, the values of each column chunk and the counts in every data page header
/// must be non-negative, within [`MAX_ROWS`], and add up. A negative count in a damaged page
/// header is read by Polars as a huge size and *aborts* the process on the allocation (an
/// abort, not a panic: [`contain_panics`] cannot stop it), so it has to be found here.
///
/// Reads each column chunk's bytes once (one chunk in memory at a time) and only parses the
/// page headers; pages are not decompressed.
fn check_counts(path: &Path) -> Result<(), String> {
    use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
    use polars_parquet::parquet::read::{read_metadata, PageMetaData, PageReader};
    use std::io::{Read, Seek, SeekFrom};

    let damaged = |what: String| format!("the file is damaged: {what}");
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let metadata = read_metadata(&mut file).map_err(|e| e.to_string())?;
    let mut total_rows: u64 = 0;
    for (g, group) in metadata.row_groups.iter().enumerate() {
        let rows = group.num_rows() as u64;
        total_rows = total_rows.saturating_add(rows);
        if total_rows > MAX_ROWS {
            return Err(damaged(format!("row group {g} claims {rows} rows")));
        }
        for (c, column) in group.parquet_columns().iter().enumerate() {
            let at = || format!("row group {g}, column chunk {c}");
            let values = column.num_values();
            let range = column.byte_range();
            if values < 0 || values as u64 > MAX_ROWS.saturating_mul(64) {
                return Err(damaged(format!("{} claims {values} values", at())));
            }
            if range.start > range.end || range.end > len {
                return Err(damaged(format!("{} lies outside the file", at())));
            }
            let mut bytes = vec![0u8; (range.end - range.start) as usize];
            file.seek(SeekFrom::Start(range.start))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| e.to_string())?;
            let size = bytes.len();
            let meta = PageMetaData::new(
                0,
                values,
                column.compression(),
                column.descriptor().descriptor.clone(),
            );
            let pages = PageReader::new_with_page_meta(
                std::io::Cursor::new(polars_buffer::Buffer::from(bytes)),
                meta,
                Vec::new(),
                size.max(1),
            );
            let mut seen: i64 = 0;
            for page in pages {
                let page = page.map_err(|e| damaged(format!("{}: {e}", at())))?;
                let counts = match &page {
                    CompressedPage::Data(p) => match p.header() {
                        DataPageHeader::V1(h) => [h.num_values, 0, 0],
                        DataPageHeader::V2(h) => [h.num_values, h.num_nulls, h.num_rows],
                    },
                    CompressedPage::Dict(_) => [0, 0, 0],
                };
                if counts.iter().any(|n| *n < 0) {
                    return Err(damaged(format!(
                        "{}: a page header has a negative count",
                        at()
                    )));
                }
                seen = seen.saturating_add(i64::from(counts[0]));
            }
            if seen != values {
                return Err(damaged(format!(
                    "{}: its pages hold {seen} values, its metadata says {values}",
                    at()
                )));
            }
        }
    }
    Ok(())
}

/// Panics seen inside [`contain_panics`] calls in progress (the quiet panic hook's switch).
static CONTAINING: AtomicUsize = AtomicUsize::new(0);

/// Runs `f`, turning a panic into `Err(message)`.
///
/// Polars panics on some malformed files and unsupported types instead of returning an
/// error. While a contained call is in progress, the default panic hook's report (a message
/// and backtrace on stderr) is replaced by nothing: the panic's message travels in the error.
pub(crate) fn contain_panics<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINING.load(Ordering::SeqCst) == 0 {
                previous(info);
            }
        }));
    });
    CONTAINING.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.fetch_sub(1, Ordering::SeqCst);
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(format!(
            "the Parquet reader failed on this file ({message})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_cover_what_fusebox_models_and_name_the_rest() {
        use ArrowDataType as A;
        assert_eq!(ColumnKind::of(&A::UInt8), Ok(ColumnKind::UInt));
        assert_eq!(ColumnKind::of(&A::LargeUtf8), Ok(ColumnKind::Text));
        assert_eq!(
            ColumnKind::of(&A::Decimal(10, 2)),
            Err("decimal(10, 2)".to_string())
        );
        assert!(ColumnKind::of(&A::Time64(ArrowTimeUnit::Microsecond)).is_err());
    }

    #[test]
    fn a_contained_panic_becomes_an_error() {
        let r: Result<(), String> = contain_panics(|| panic!("boom"));
        assert!(r.unwrap_err().contains("boom"));
        assert_eq!(contain_panics(|| Ok(3)), Ok(3));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        std::fs::write(&p, b"PAR1 not really PAR1").unwrap();
        assert!(schema(&p).is_err());
        assert!(read(&p, &["a".to_string()]).is_err());
    }
}
