//! Datetime and date columns as Fusebox timestamps: exact microseconds or a reason.
//!
//! Shared by every reader (customers, events), so the rule is one: a datetime of any unit and
//! any time zone (its physical values are UTC ticks), or a date (midnight UTC), becomes
//! microseconds since the epoch **only if that is exact** — nanoseconds must be whole
//! microseconds — and the instant lies in the supported range
//! ([`crate::value::timestamp_in_range`]). Otherwise the value is refused with why, never
//! rounded, clamped or nulled.

use polars::prelude::*;

use crate::value::check_timestamp_range;

/// One cell per row: the timestamp (`None` for null) or why that value cannot be one.
pub(crate) type TimestampCells = Vec<Result<Option<i64>, String>>;

/// The cells of a datetime or date column; `Ok(None)` for a column of another type.
pub(crate) fn timestamp_cells(series: &Series) -> PolarsResult<Option<TimestampCells>> {
    let (ticks, per_micro, micros_per, what) = match series.dtype() {
        DataType::Datetime(unit, _) => {
            let (per_micro, micros_per) = match unit {
                TimeUnit::Nanoseconds => (1000, 1),
                TimeUnit::Microseconds => (1, 1),
                TimeUnit::Milliseconds => (1, 1000),
            };
            (series.cast(&DataType::Int64)?, per_micro, micros_per, "")
        }
        DataType::Date => (
            series.cast(&DataType::Int32)?.cast(&DataType::Int64)?,
            1,
            86_400_000_000,
            "date ",
        ),
        _ => return Ok(None),
    };
    let cells = ticks
        .i64()?
        .iter()
        .map(|v| exact_micros(v, per_micro, micros_per).map_err(|e| format!("{what}{e}")))
        .collect();
    Ok(Some(cells))
}

/// `ticks` of `1 / per_micro` µs each (or `micros_per` µs each) as microseconds, if exact
/// and in range.
fn exact_micros(
    ticks: Option<i64>,
    per_micro: i64,
    micros_per: i64,
) -> Result<Option<i64>, String> {
    let Some(ticks) = ticks else { return Ok(None) };
    if ticks % per_micro != 0 {
        return Err(format!(
            "{ticks} has digits finer than a microsecond, which Fusebox does not keep"
        ));
    }
    let micros = (ticks / per_micro)
        .checked_mul(micros_per)
        .ok_or_else(|| format!("{ticks} is outside the supported range"))?;
    check_timestamp_range(micros)
        .map(Some)
        .map_err(|e| format!("{ticks} {e}"))
}
