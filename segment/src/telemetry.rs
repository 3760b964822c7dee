//! Per-segment metrics through the [`metrics`] facade (no-ops until the embedder installs a
//! recorder, e.g. a Prometheus exporter), recorded once per computation or refresh of a
//! group — never per row or per sub-query, so their cost does not depend on the data.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `fusebox_segment_group_seconds` | histogram | `kind` (compute, refresh) | wall time of a group computation |
//! | `fusebox_segment_compute_seconds` | histogram | `segment` | time of the sub-queries a segment uses (shared ones counted in full) |
//! | `fusebox_segment_members` | gauge | `segment` | customers in it after the last computation |
//! | `fusebox_segment_last_refresh_timestamp_seconds` | gauge | `segment` | when it was last computed or refreshed (Unix time) |
//! | `fusebox_segment_unfinished_total` | counter | `segment` | computations the deadline cut before it finished |
//!
//! Together with the live engine's `status().segments` (what the trigger engine actually
//! reads: see `fusebox_engine::expr::segments`), these answer "how big is each segment, how
//! fresh, and what does it cost".

use std::time::SystemTime;

use metrics::{counter, gauge, histogram};

use crate::exec::GroupResult;

/// Records one finished computation (`refresh`: a refresh rather than a full compute).
pub(crate) fn record(result: &GroupResult, refresh: bool) {
    let kind = if refresh { "refresh" } else { "compute" };
    histogram!("fusebox_segment_group_seconds", "kind" => kind)
        .record(result.elapsed.as_secs_f64());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for segment in &result.segments {
        let id = segment.id.to_string();
        match &segment.members {
            Some(members) => {
                histogram!("fusebox_segment_compute_seconds", "segment" => id.clone())
                    .record(segment.work.as_secs_f64());
                gauge!("fusebox_segment_members", "segment" => id.clone())
                    .set(members.len() as f64);
                gauge!("fusebox_segment_last_refresh_timestamp_seconds", "segment" => id).set(now);
            }
            None => counter!("fusebox_segment_unfinished_total", "segment" => id).increment(1),
        }
    }
}
