//! `fusebox segment`: compute a segment group and write its members; plus the segment parts of
//! `fusebox check` and `fusebox gen`.
//!
//! Outputs in `--out DIR`:
//! - `members.parquet` — one row per (segment_id, customer_id), segments in file order,
//!   customers ascending;
//! - `segments.json` — per segment: owner, member count, work time, whether it finished;
//!   plus `as_of`, the wall time and the plan's shape.
//!
//! `--as-of` defaults to the latest event timestamp, so a replay of the same files gives the
//! same memberships on any day.
//!
//! Events are read straight into columns ([`fusebox_engine::io::columnar`]), keeping only the
//! properties the group reads, and grouped by type and customer from those columns
//! ([`EventStore::from_columns`]); the columns are dropped once the store is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fusebox_engine::customers::CustomerTable;
use fusebox_engine::io::columnar::{read_event_columns, PropertySelection};
use fusebox_engine::io::customers::load_customers;
use fusebox_engine::value::{format_timestamp, parse_timestamp};
use fusebox_segment::explain::render;
use fusebox_segment::{compile_segments, ComputeOptions, EventStore, SegmentData, SegmentEngine};
use polars::prelude::*;
use serde::Serialize;

use super::segment_refresh::{load_changes, refresh_and_write, ChangeFiles};
use crate::diagnostics::{print_config_error, print_diagnostics};
use crate::files::{read_text, write_json, AtomicFile};
use crate::outputs::{self, Input};
use crate::{progress, Failure};

/// Inputs and options of `fusebox segment`.
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    /// Customers (.parquet / .csv).
    pub customers: PathBuf,
    /// Events (.jsonl / .parquet).
    pub events: PathBuf,
    /// Segment group (.yaml).
    pub segments: PathBuf,
    /// RFC 3339; default: the latest event.
    pub as_of: Option<String>,
    /// Output directory.
    pub out: PathBuf,
    /// Print the plan with timings.
    pub explain: bool,
    /// Worker threads (default: cores).
    pub threads: Option<usize>,
    /// Give up after this long; finished segments are still written.
    pub timeout: Option<Duration>,
    /// A change set to apply incrementally after the computation (see
    /// [`super::segment_refresh`]).
    pub changes: ChangeFiles,
}

#[derive(Serialize)]
struct SegmentJson<'a> {
    id: &'a str,
    owner: &'a str,
    finished: bool,
    count: Option<u64>,
    work_ms: f64,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    as_of: String,
    elapsed_ms: f64,
    load_ms: f64,
    timed_out: bool,
    customers: usize,
    events: usize,
    plan_nodes: usize,
    shared_nodes: usize,
    event_aggregates: usize,
    segments: Vec<SegmentJson<'a>>,
}

/// Before anything is read: none of the files written into `--out` is an input.
fn check_paths(spec: &SegmentSpec) -> Result<(), Failure> {
    let c = &spec.changes;
    let mut inputs = vec![
        Input::read("--customers", &spec.customers),
        Input::read("--events", &spec.events),
        Input::read("--segments", &spec.segments),
    ];
    for (flag, path) in [
        ("--new-customers", &c.new_customers),
        ("--updates", &c.updates),
        ("--new-events", &c.new_events),
    ] {
        if let Some(path) = path {
            inputs.push(Input::read(flag, path));
        }
    }
    outputs::check(
        &spec.out,
        &[
            "members.parquet",
            "segments.json",
            "members-refreshed.parquet",
            "refresh.json",
            "segment-events.jsonl",
        ],
        &inputs,
    )
}

/// Runs `fusebox segment`.
pub fn segment(spec: &SegmentSpec) -> Result<(), Failure> {
    let started = Instant::now();
    check_paths(spec)?;
    let text = read_text(&spec.segments)?;
    let as_of_arg = match &spec.as_of {
        Some(s) => Some(parse_timestamp(s).ok_or_else(|| {
            Failure::Input(anyhow::anyhow!(
                "--as-of `{s}` is not an RFC 3339 timestamp (e.g. 2026-03-31T00:00:00Z)"
            ))
        })?),
        None => None,
    };
    let customers = progress::stage(format!("loading {}", spec.customers.display()), || {
        load_customers(&spec.customers)
    })
    .map_err(|e| Failure::Input(e.into()))?;
    let name = spec.segments.display().to_string();
    // Only the event properties the group reads are kept (every record is still checked in
    // full). A group that does not compile keeps none: the compile after reading reports it.
    let selection = compile_segments(&text, &name, Some(customers.schema()), None)
        .map_or(PropertySelection::Only(Vec::new()), |g| {
            PropertySelection::Only(g.event_properties())
        });
    let columns = progress::stage(format!("reading {}", spec.events.display()), || {
        read_event_columns(&spec.events, &selection)
    })
    .map_err(|e| Failure::Input(e.into()))?;
    let bad = columns.rejected.len();
    if bad > 0 {
        eprintln!("warning: {bad} event record(s) could not be parsed and are ignored (run `fusebox run` to see them in outcomes.jsonl)");
    }
    let as_of = as_of_arg.or(columns.max_timestamp()).unwrap_or(0);
    let store = progress::stage("indexing events by customer", || {
        EventStore::from_columns(&customers, &columns)
    });
    // The store keeps its own layout; the columns are not needed any more.
    drop(columns);
    let group = compile_segments(&text, &name, Some(customers.schema()), Some(&store.types()))
        .map_err(|e| {
            print_config_error(&e);
            Failure::Reported
        })?;
    print_diagnostics(&name, &text, &group.warnings);
    let n_events = store.len();
    // The change set is read and checked before any work.
    let changes = if spec.changes.is_empty() {
        None
    } else {
        Some(load_changes(&spec.changes, &customers, as_of)?)
    };
    let mut data = SegmentData::new(customers, store);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let engine = SegmentEngine::new(group, &data, as_of, spec.threads)
        .map_err(|e| Failure::Input(e.into()))?;
    // Inputs are all valid (a bad one creates nothing); the output directory must be usable
    // before minutes of computing.
    outputs::create(&spec.out)?;
    let opts = ComputeOptions {
        as_of,
        // A deadline past what an `Instant` can hold is no deadline.
        deadline: spec.timeout.and_then(|t| Instant::now().checked_add(t)),
        use_cache: true,
    };
    let result = progress::stage(
        format!("computing {} segments", engine.group().segments.len()),
        || engine.compute(&data, &opts),
    )
    .map_err(|e| Failure::Runtime(e.into()))?;

    let members = engine.member_ids(&data, &result);
    write_members(&spec.out.join("members.parquet"), &members).map_err(Failure::Runtime)?;
    let plan = engine.plan();
    let seg_json: Vec<SegmentJson> = engine
        .group()
        .segments
        .iter()
        .zip(&result.segments)
        .map(|(s, r)| SegmentJson {
            id: &s.id,
            owner: &s.owner,
            finished: r.members.is_some(),
            count: r.members.as_ref().map(|m| m.len()),
            work_ms: r.work.as_secs_f64() * 1e3,
        })
        .collect();
    let summary = GroupJson {
        as_of: format_timestamp(as_of),
        elapsed_ms: result.elapsed.as_secs_f64() * 1e3,
        load_ms,
        timed_out: result.timed_out,
        customers: data.len(),
        events: n_events,
        plan_nodes: plan.nodes.len(),
        shared_nodes: plan.nodes.iter().filter(|n| n.uses > 1).count(),
        event_aggregates: plan.aggs.len(),
        segments: seg_json,
    };
    write_json(&spec.out.join("segments.json"), &summary).map_err(Failure::Runtime)?;

    print_table(&summary);
    if spec.explain {
        println!();
        print!("{}", render(plan, &result));
    }
    if let (Some(changes), false) = (&changes, result.timed_out) {
        println!();
        refresh_and_write(&engine, &mut data, &result, changes, &spec.out)?;
    }
    if result.timed_out {
        let unfinished: Vec<&str> = summary
            .segments
            .iter()
            .filter(|s| !s.finished)
            .map(|s| s.id)
            .collect();
        return Err(Failure::Runtime(anyhow::anyhow!(
            "deadline expired: {} of {} segments finished; unfinished: {} (finished segments were written{})",
            summary.segments.len() - unfinished.len(),
            summary.segments.len(),
            unfinished.join(", "),
            if changes.is_some() {
                "; the change set was not applied: a refresh needs a complete result"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// The width of a table's segment-id column: the longest id, at least the header's.
pub(super) fn id_width<'a>(ids: impl Iterator<Item = &'a str>) -> usize {
    ids.map(str::len).max().unwrap_or(0).max("segment".len())
}

fn print_table(g: &GroupJson) {
    let width = id_width(g.segments.iter().map(|s| s.id));
    println!(
        "{} customers, {} events, as of {}: {} segments in {:.1} ms ({} plan nodes, {} shared, {} event aggregates)",
        g.customers,
        g.events,
        g.as_of,
        g.segments.len(),
        g.elapsed_ms,
        g.plan_nodes,
        g.shared_nodes,
        g.event_aggregates
    );
    println!(
        "{:<width$}  {:>10}  {:>10}",
        "segment", "members", "work ms"
    );
    for s in &g.segments {
        let count = s.count.map_or("unfinished".to_string(), |c| c.to_string());
        println!("{:<width$}  {:>10}  {:>10.2}", s.id, count, s.work_ms);
    }
}

pub(crate) fn write_members(path: &Path, members: &[(Arc<str>, Vec<u64>)]) -> anyhow::Result<()> {
    let total: usize = members.iter().map(|(_, m)| m.len()).sum();
    let mut seg: Vec<&str> = Vec::with_capacity(total);
    let mut ids: Vec<u64> = Vec::with_capacity(total);
    for (s, m) in members {
        seg.extend(std::iter::repeat_n(s.as_ref(), m.len()));
        ids.extend_from_slice(m);
    }
    let mut df = DataFrame::new(
        total,
        vec![
            Series::new("segment_id".into(), seg).into_column(),
            Series::new("customer_id".into(), ids).into_column(),
        ],
    )?;
    let mut file = AtomicFile::create(path)?;
    ParquetWriter::new(file.file())
        .finish(&mut df)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.commit()
}

/// `fusebox check` for a segment file: prints diagnostics; returns whether it is valid.
pub fn check_file(name: &str, text: &str, customers: Option<&CustomerTable>) -> bool {
    let schema = customers.map(|t| t.schema().as_ref());
    match compile_segments(text, name, schema, None) {
        Ok(group) => {
            print_diagnostics(name, text, &group.warnings);
            println!(
                "ok: {name}: {} segments, {} warnings{}",
                group.segments.len(),
                group.warnings.len(),
                if customers.is_none() {
                    " (attributes not checked: pass --customers FILE)"
                } else {
                    ""
                }
            );
            true
        }
        Err(e) => {
            print_config_error(&e);
            false
        }
    }
}

/// The segment group `fusebox gen` writes: fits the generated customers and events.
pub const GENERATED_SEGMENTS: &str = include_str!("segments.yaml");
