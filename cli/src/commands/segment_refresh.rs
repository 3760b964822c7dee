//! `fusebox segment` with a change set (`--new-customers`, `--updates`, `--new-events`,
//! `--refresh-as-of`): after computing the group, apply the changes incrementally and report
//! who entered and who left each segment.
//!
//! Outputs, next to `members.parquet` / `segments.json` (which stay the state *before* the
//! changes):
//! - `members-refreshed.parquet` — memberships after the changes;
//! - `refresh.json` — per segment: members before and after, entered, left; timings;
//! - `segment-events.jsonl` — one `segment.entered` / `segment.left` event per customer and
//!   segment, in the events format `fusebox run --events` reads, so triggers can react.
//!
//! The change files are read and validated against the customer table before any work: an
//! unknown attribute, a mistyped value or an unknown customer in `--updates` names the file and
//! line; a new customer already in the table or a column that does not fit names the file (and
//! data row); all exit with code 2. As with `--events`, unparsable new event records and events
//! for unknown customers are counted in a warning and ignored, and new events after the
//! refresh's as-of are warned about (they are invisible until as-of reaches them).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context;
use fusebox_engine::customers::{CustomerTable, Row, TableError};
use fusebox_engine::gate::Canonical;
use fusebox_engine::io::customers::load_customers;
use fusebox_engine::io::events::read_events;
use fusebox_engine::value::{format_timestamp, parse_timestamp, AttrType, Value};
use fusebox_segment::{AttrUpdate, Changes, GroupResult, SegmentData, SegmentEngine, SegmentError};
use serde::{Deserialize, Serialize};

use crate::files::{write_json, write_jsonl};
use crate::Failure;

/// The change files given on the command line.
#[derive(Clone, Debug, Default)]
pub struct ChangeFiles {
    /// New customers, in the customers format (.parquet / .csv); their columns must be
    /// customer attributes of the same type (a subset is fine; the rest stay null).
    pub new_customers: Option<PathBuf>,
    /// Attribute updates, JSONL: `{"customer_id": 42, "attribute": "points", "value": 900}`.
    pub updates: Option<PathBuf>,
    /// New events, in the events format (.jsonl / .parquet).
    pub new_events: Option<PathBuf>,
    /// A later as-of for the refresh (RFC 3339).
    pub as_of: Option<String>,
}

impl ChangeFiles {
    /// Whether no change was asked for.
    pub fn is_empty(&self) -> bool {
        self.new_customers.is_none()
            && self.updates.is_none()
            && self.new_events.is_none()
            && self.as_of.is_none()
    }
}

/// One line of the updates file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateLine {
    customer_id: u64,
    attribute: String,
    value: serde_json::Value,
}

/// Reads the change files and checks them against `customers`: updates name known
/// attributes with values of their type, for customers that exist or are being added.
pub fn load_changes(
    files: &ChangeFiles,
    customers: &CustomerTable,
    as_of: i64,
) -> Result<Changes, Failure> {
    let input = Failure::Input;
    let mut changes = Changes::default();
    let new_ids = match &files.new_customers {
        Some(path) => {
            let table = load_customers(path)
                .with_context(|| format!("--new-customers {}", path.display()))
                .map_err(input)?;
            new_customer_updates(&table, customers, path, &mut changes).map_err(input)?;
            customers
                .rows_for_new(&changes.new_customers)
                .map_err(|e| input(new_customer_error(e, customers.len(), path)))?
        }
        None => Default::default(),
    };
    // In the table, or being added.
    let known = |id: u64| customers.row_of(id).is_some() || new_ids.contains_key(&id);
    if let Some(path) = &files.updates {
        changes
            .updates
            .extend(read_updates(path, customers, &known).map_err(input)?);
    }
    if let Some(path) = &files.new_events {
        let records = read_events(path)
            .with_context(|| format!("--new-events {}", path.display()))
            .map_err(input)?;
        let bad = records.iter().filter(|r| r.event.is_err()).count();
        if bad > 0 {
            eprintln!(
                "warning: {bad} record(s) in {} could not be parsed and are ignored",
                path.display()
            );
        }
        changes
            .events
            .extend(records.into_iter().filter_map(|r| r.event.ok()));
        let unknown = changes
            .events
            .iter()
            .filter(|e| !known(e.customer_id))
            .count();
        if unknown > 0 {
            eprintln!(
                "warning: {unknown} new event(s) in {} are for customers not in the table and are ignored",
                path.display()
            );
        }
    }
    if let Some(text) = &files.as_of {
        let t = parse_timestamp(text).ok_or_else(|| {
            input(anyhow::anyhow!(
                "--refresh-as-of `{text}` is not an RFC 3339 timestamp (e.g. 2026-04-01T00:00:00Z)"
            ))
        })?;
        if t < as_of {
            return Err(input(anyhow::anyhow!(
                "--refresh-as-of {text} is before the computation's as-of {}; it may only advance",
                format_timestamp(as_of)
            )));
        }
        changes.as_of = Some(t);
    }
    let refresh_as_of = changes.as_of.unwrap_or(as_of);
    let invisible = changes
        .events
        .iter()
        .filter(|e| e.timestamp > refresh_as_of)
        .count();
    if invisible > 0 {
        eprintln!(
            "warning: {invisible} new event(s) are after the refresh's as-of {} and stay invisible; pass --refresh-as-of to include them",
            format_timestamp(refresh_as_of)
        );
    }
    Ok(changes)
}

/// The new customers of `table` as ids plus updates for their non-null values.
fn new_customer_updates(
    table: &CustomerTable,
    customers: &CustomerTable,
    path: &Path,
    changes: &mut Changes,
) -> anyhow::Result<()> {
    let schema = customers.schema();
    let all_null = |attr| (0..table.len()).all(|r| table.get(r as Row, attr).is_null());
    // (column in the file, attribute name)
    let mut columns = Vec::new();
    for (attr, name, ty) in table.schema().iter() {
        match schema.attr(name) {
            Some((_, t)) if t == ty => columns.push((attr, name.to_string())),
            // A float column whose values all happen to be whole numbers reads as int (a float
            // attribute accepts ints and stores them as floats).
            Some((_, AttrType::Float)) if ty == AttrType::Int => {
                columns.push((attr, name.to_string()))
            }
            // A column empty in every row has no type of its own: nothing to set.
            Some(_) if all_null(attr) => {}
            Some((_, t)) => anyhow::bail!(
                "--new-customers {}: column `{name}` is {ty}, but the customer attribute is {t}",
                path.display()
            ),
            None => anyhow::bail!(
                "--new-customers {}: column `{name}` is not a customer attribute",
                path.display()
            ),
        }
    }
    changes.new_customers.extend_from_slice(table.ids());
    for (row, &id) in table.ids().iter().enumerate() {
        for (attr, name) in &columns {
            let value = table.get(row as Row, *attr);
            if !value.is_null() {
                changes.updates.push(AttrUpdate {
                    customer: id,
                    attribute: name.clone(),
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Why the new customers of `path` cannot be added, with data rows (1-based, as in the file)
/// for an id already in the table (`existing` customers) or repeated in the file.
fn new_customer_error(e: TableError, existing: usize, path: &Path) -> anyhow::Error {
    let data_row = |row: usize| row - existing + 1;
    match e {
        TableError::DuplicateId { id, first, second } if first < existing => anyhow::anyhow!(
            "--new-customers {}: customer {id} (data row {}) is already in the customer table",
            path.display(),
            data_row(second)
        ),
        TableError::DuplicateId { id, first, second } => anyhow::anyhow!(
            "--new-customers {}: customer {id} is repeated (data rows {} and {})",
            path.display(),
            data_row(first),
            data_row(second)
        ),
        other => anyhow::Error::new(other).context(format!("--new-customers {}", path.display())),
    }
}

/// At most this many problems of an updates file are listed (then a count of the rest).
const MAX_LISTED_PROBLEMS: usize = 20;

/// Reads the updates JSONL file, typing each value by its attribute. Every bad line is
/// reported (file:line and why), not just the first; blank lines are skipped and a leading
/// UTF-8 byte-order mark is ignored.
fn read_updates(
    path: &Path,
    customers: &CustomerTable,
    known: &dyn Fn(u64) -> bool,
) -> anyhow::Result<Vec<AttrUpdate>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = format!("{}:{}", path.display(), i + 1);
        let line = line.with_context(|| at.clone())?;
        let line = match i {
            0 => line.trim_start_matches('\u{feff}'),
            _ => line.as_str(),
        };
        if line.trim().is_empty() {
            continue;
        }
        match update_of(line, customers, known) {
            Ok(update) => out.push(update),
            Err(why) => problems.push(format!("{at}: {why}")),
        }
    }
    if problems.is_empty() {
        return Ok(out);
    }
    let total = problems.len();
    problems.truncate(MAX_LISTED_PROBLEMS);
    if total > MAX_LISTED_PROBLEMS {
        problems.push(format!("… and {} more", total - MAX_LISTED_PROBLEMS));
    }
    anyhow::bail!("{} bad update line(s):\n  {}", total, problems.join("\n  "))
}

/// One update line, or why it is not one.
fn update_of(
    line: &str,
    customers: &CustomerTable,
    known: &dyn Fn(u64) -> bool,
) -> Result<AttrUpdate, String> {
    const SHAPE: &str = r#"expected {"customer_id": …, "attribute": …, "value": …}"#;
    // serde would read a JSON array positionally into the struct: only objects are updates.
    if !line.trim_start().starts_with('{') {
        return Err(format!("not a JSON object; {SHAPE}"));
    }
    let u: UpdateLine = serde_json::from_str(line).map_err(|e| format!("{e}; {SHAPE}"))?;
    let Some((_, ty)) = customers.schema().attr(&u.attribute) else {
        return Err(format!("unknown attribute `{}`", u.attribute));
    };
    let Some(value) = typed(ty, &u.value) else {
        return Err(format!(
            "attribute `{}` is {ty}; got {}",
            u.attribute, u.value
        ));
    };
    if !known(u.customer_id) {
        return Err(format!(
            "customer {} is not in the customer table (add it with --new-customers)",
            u.customer_id
        ));
    }
    Ok(AttrUpdate {
        customer: u.customer_id,
        attribute: u.attribute,
        value,
    })
}

/// A JSON value as a value of attribute type `ty` (`None` if it is not one): numbers for
/// `int`/`float`, strings, booleans, RFC 3339 strings for timestamps, arrays of strings for
/// string lists, `null` for any.
fn typed(ty: AttrType, json: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    match (ty, json) {
        (_, J::Null) => Some(Value::Null),
        (AttrType::Int, J::Number(n)) => n.as_i64().map(Value::Int),
        (AttrType::Float, J::Number(n)) => n.as_f64().map(Value::Float),
        (AttrType::String, J::String(s)) => Some(Value::str(s)),
        (AttrType::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
        (AttrType::Timestamp, J::String(s)) => parse_timestamp(s).map(Value::Timestamp),
        (AttrType::StringList, J::Array(items)) => items
            .iter()
            .map(|x| x.as_str().map(Value::str))
            .collect::<Option<Vec<Value>>>()
            .map(|v| Value::List(v.into())),
        _ => None,
    }
}

#[derive(Serialize)]
struct SegmentChange<'a> {
    id: &'a str,
    before: u64,
    after: u64,
    entered: u64,
    left: u64,
}

#[derive(Serialize)]
struct RefreshJson<'a> {
    as_of: String,
    elapsed_ms: f64,
    apply_ms: f64,
    /// Finding what a later as-of can change and bringing aggregates forward (0 if it did not
    /// move).
    advance_ms: f64,
    new_customers: usize,
    updates: usize,
    new_events: usize,
    changed_customers: u64,
    /// Customers re-evaluated row by row in at least one leaf.
    revisited_customers: u64,
    /// Leaves recomputed over the whole table.
    whole_leaves: usize,
    segment_events: usize,
    segments: Vec<SegmentChange<'a>>,
}

/// Applies `changes` to `data`, refreshing `prev`, and writes the outputs into `out`.
pub fn refresh_and_write(
    engine: &SegmentEngine,
    data: &mut SegmentData,
    prev: &GroupResult,
    changes: &Changes,
    out: &Path,
) -> Result<(), Failure> {
    let refresh =
        crate::progress::stage("refreshing", || engine.refresh(data, prev, changes, None))
            .map_err(|e| match e {
                // Checked above already; should the engine still refuse the change set, it is
                // bad input all the same (exit 2), and nothing was applied.
                SegmentError::Data(_) => Failure::Input(e.into()),
                e => Failure::Runtime(e.into()),
            })?;
    let as_of = refresh.result.as_of;
    let events: Vec<_> = refresh
        .diffs
        .iter()
        .flat_map(|d| d.to_events(data, as_of))
        .filter_map(|r| r.event.ok())
        .collect();
    let path = out.join("segment-events.jsonl");
    // `Canonical` serialises to `canonical_json`: the events format `fusebox run` reads.
    write_jsonl(&path, events.iter().map(Canonical::of)).map_err(Failure::Runtime)?;
    let members = engine.member_ids(data, &refresh.result);
    super::segment::write_members(&out.join("members-refreshed.parquet"), &members)
        .map_err(Failure::Runtime)?;
    let summary = RefreshJson {
        as_of: format_timestamp(as_of),
        elapsed_ms: refresh.result.elapsed.as_secs_f64() * 1e3,
        apply_ms: refresh.apply_time.as_secs_f64() * 1e3,
        advance_ms: refresh.advance_time.as_secs_f64() * 1e3,
        new_customers: changes.new_customers.len(),
        updates: changes.updates.len(),
        new_events: changes.events.len(),
        changed_customers: refresh.dirty_rows,
        revisited_customers: refresh.revisited_rows,
        whole_leaves: refresh.whole_leaves,
        segment_events: events.len(),
        segments: refresh
            .diffs
            .iter()
            .zip(prev.segments.iter().zip(&refresh.result.segments))
            .map(|(d, (before, after))| SegmentChange {
                id: &d.id,
                before: before.members.as_ref().map_or(0, |m| m.len()),
                after: after.members.as_ref().map_or(0, |m| m.len()),
                entered: d.entered.len(),
                left: d.left.len(),
            })
            .collect(),
    };
    write_json(&out.join("refresh.json"), &summary).map_err(Failure::Runtime)?;
    print_summary(&summary, &path);
    Ok(())
}

fn print_summary(s: &RefreshJson, events_path: &Path) {
    println!(
        "refresh as of {}: {} new customers, {} updates, {} new events → {} changed customers; {} customers re-evaluated, {} leaves recomputed whole; in {:.1} ms (applying {:.1} ms, as-of advance {:.1} ms)",
        s.as_of, s.new_customers, s.updates, s.new_events, s.changed_customers, s.revisited_customers, s.whole_leaves, s.elapsed_ms + s.apply_ms + s.advance_ms, s.apply_ms, s.advance_ms
    );
    let width = super::segment::id_width(s.segments.iter().map(|x| x.id));
    println!(
        "{:<width$}  {:>10}  {:>10}  {:>8}  {:>8}",
        "segment", "before", "after", "entered", "left"
    );
    for x in &s.segments {
        println!(
            "{:<width$}  {:>10}  {:>10}  {:>8}  {:>8}",
            x.id, x.before, x.after, x.entered, x.left
        );
    }
    println!(
        "{} segment events in {} (feed them to `fusebox run --events`)",
        s.segment_events,
        events_path.display()
    );
}
