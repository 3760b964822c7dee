//! Parquet inputs that Polars alone mishandles: every one is read exactly, or refused with
//! the column (and row) named — never a panic, never a silent change of data.
//!
//! The fixtures are written by `tests/fixtures/make_parquet_fixtures.py` (pyarrow) and
//! committed.

use std::path::PathBuf;

use fusebox_engine::event::EventRecord;
use fusebox_engine::io::customers::{load_customers, save_customers, CustomerIoError};
use fusebox_engine::io::events::{read_events, EventIoError};
use fusebox_engine::value::{parse_timestamp, AttrType, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn customers_error(name: &str) -> CustomerIoError {
    match load_customers(&fixture(name)) {
        Ok(_) => panic!("{name} must be refused"),
        Err(e) => e,
    }
}

fn events(name: &str) -> Vec<EventRecord> {
    read_events(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rejection(record: &EventRecord) -> &str {
    match &record.event {
        Err(e) => e,
        Ok(e) => panic!("row {} must be rejected, got {e:?}", record.line),
    }
}

#[test]
fn a_decimal_column_is_refused_by_name_not_a_panic() {
    let err = customers_error("customers_decimal.parquet");
    assert!(
        matches!(&err, CustomerIoError::UnsupportedType { column, dtype, .. }
            if column == "price" && dtype == "decimal(10, 2)"),
        "{err}"
    );
}

#[test]
fn integers_of_every_width_are_ints() {
    let t = load_customers(&fixture("customers_small_ints.parquet")).unwrap();
    assert_eq!(t.ids(), &[1, 2]);
    for (name, expected) in [("a", 255), ("b", 65535), ("c", 1), ("d", 1)] {
        let (attr, ty) = t.schema().attr(name).unwrap();
        assert_eq!(ty, AttrType::Int, "{name}");
        assert_eq!(t.get(1, attr), Value::Int(expected), "{name}");
    }
    let (d, _) = t.schema().attr("d").unwrap();
    assert_eq!(t.get(0, d), Value::Int(-300));
}

#[test]
fn an_unsigned_value_above_i64_max_is_refused_with_its_row() {
    let err = customers_error("customers_u64_too_big.parquet");
    assert!(
        matches!(&err, CustomerIoError::BadValue { column, row, .. } if column == "n" && row == "row 2"),
        "{err}"
    );
}

#[test]
fn a_date_beyond_the_timestamp_range_is_refused_not_nulled() {
    let err = customers_error("customers_date_max.parquet");
    assert!(
        matches!(&err, CustomerIoError::BadValue { column, row, .. } if column == "born" && row == "row 2"),
        "{err}"
    );
}

#[test]
fn nanoseconds_are_kept_exactly_or_refused() {
    let err = customers_error("customers_nanoseconds.parquet");
    assert!(
        matches!(&err, CustomerIoError::BadValue { row, problem, .. }
            if row == "row 2" && problem.contains("finer than a microsecond")),
        "{err}"
    );
}

#[test]
fn a_time_zone_survives_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let t = load_customers(&fixture("customers_time_zone.parquet")).unwrap();
    let (attr, _) = t.schema().attr("seen_at").unwrap();
    assert_eq!(t.schema().time_zone(attr), Some("Europe/Berlin"));
    let out = dir.path().join("out.parquet");
    save_customers(&t, &out).unwrap();
    let back = load_customers(&out).unwrap();
    assert_eq!(back.schema().time_zone(attr), Some("Europe/Berlin"));
    assert_eq!(back.columns(), t.columns());
    assert_eq!(
        back.get(0, attr),
        Value::Timestamp(parse_timestamp("2026-01-01T00:00:00Z").unwrap())
    );
}

#[test]
fn dictionary_encoded_text_is_a_string() {
    let t = load_customers(&fixture("customers_categorical.parquet")).unwrap();
    let (attr, ty) = t.schema().attr("city").unwrap();
    assert_eq!(ty, AttrType::String);
    assert_eq!(t.get(1, attr), Value::str("Paris"));
}

#[test]
fn an_extra_events_column_is_refused_by_name_even_a_decimal_one() {
    let err = read_events(&fixture("events_decimal_extra.parquet")).unwrap_err();
    assert!(
        matches!(&err, EventIoError::Parquet { detail, .. } if detail.contains("unexpected column `price`")),
        "{err}"
    );
}

#[test]
fn a_decimal_id_rejects_its_rows() {
    let recs = events("events_decimal_id.parquet");
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert!(rejection(r).contains("decimal(10, 0)"), "{}", rejection(r));
    }
}

#[test]
fn a_float_customer_id_is_never_truncated() {
    let recs = events("events_float_customer.parquet");
    assert!(
        rejection(&recs[0]).contains("3288.7"),
        "{}",
        rejection(&recs[0])
    );
    // As in JSONL, where `1.0` is refused: a float column is not an id column.
    assert!(rejection(&recs[1]).contains("float"));
}

#[test]
fn a_negative_customer_id_rejects_only_its_row() {
    let recs = events("events_negative_customer.parquet");
    assert!(recs[0].event.is_ok());
    assert_eq!(recs[1].line, 2);
    assert!(rejection(&recs[1]).contains("-1 is negative"));
}

#[test]
fn small_integer_ids_are_read() {
    let recs = events("events_small_ints.parquet");
    let e = recs[1].event.as_ref().unwrap();
    assert_eq!((e.id.as_ref(), e.customer_id), ("8", 2));
}

#[test]
fn a_timestamp_outside_the_range_rejects_its_row() {
    let recs = events("events_timestamp_max.parquet");
    assert!(rejection(&recs[0]).contains("outside the supported range"));
    assert!(recs[1].event.is_ok());
}

#[test]
fn event_timestamps_convert_exactly_from_any_unit_and_zone() {
    let recs = events("events_nanoseconds.parquet");
    assert_eq!(
        recs[0].event.as_ref().unwrap().timestamp,
        parse_timestamp("2026-03-01T12:00:00Z").unwrap()
    );
    assert!(rejection(&recs[1]).contains("finer than a microsecond"));
    let recs = events("events_time_zone.parquet");
    assert_eq!(
        recs[0].event.as_ref().unwrap().timestamp,
        parse_timestamp("2026-03-01T12:00:00Z").unwrap()
    );
}

/// Found by the reader fuzzer: a damaged page header whose value count is negative made
/// Polars allocate 2^61 bytes and abort the process (not a panic: nothing could catch it).
#[test]
fn a_damaged_page_header_is_refused_not_an_abort() {
    let err = customers_error("customers_negative_page_count.parquet");
    assert!(err.to_string().contains("damaged"), "{err}");
}
