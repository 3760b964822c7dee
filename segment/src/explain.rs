//! Explain: the plan tree of each segment with estimated vs actual rows and time per node.
//!
//! Shared nodes (used by more than one parent or segment) are marked `shared`; a node already
//! printed under an earlier segment is shown once more by label and `#id` only, so the output
//! stays proportional to the plan, not to the number of paths through it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::exec::GroupResult;
use crate::plan::{NodeId, Plan};

/// Where a node's result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Not computed (deadline expired, or an input is missing).
    NotRun,
    /// Kernel over the whole table.
    Computed,
    /// Served from the sub-query cache (same key, same input versions).
    Cached,
    /// Incremental: this many rows re-evaluated.
    Rows(u64),
    /// Incremental: unchanged, previous result kept.
    Kept,
    /// Internal node combined from its children.
    Combined,
}

/// Statistics of one node in one computation.
#[derive(Clone, Debug)]
pub struct NodeStats {
    /// Planner's estimate.
    pub est_rows: f64,
    /// Actual rows, when computed.
    pub actual_rows: Option<u64>,
    /// Time spent on this node alone.
    pub time: Duration,
    /// Where the result came from.
    pub source: Source,
}

/// Per-node statistics, indexed like [`Plan::nodes`].
#[derive(Clone, Debug, Default)]
pub struct Explain {
    /// One entry per plan node.
    pub nodes: Vec<NodeStats>,
}

fn source_name(s: Source) -> String {
    match s {
        Source::NotRun => "not run".into(),
        Source::Computed => "computed".into(),
        Source::Cached => "cached".into(),
        Source::Rows(n) => format!("{n} rows re-evaluated"),
        Source::Kept => "kept".into(),
        Source::Combined => "combined".into(),
    }
}

/// Renders the plan of every segment with the statistics of `result`.
pub fn render(plan: &Plan, result: &GroupResult) -> String {
    let mut out = String::new();
    let leaves = plan.nodes.iter().filter(|n| n.is_leaf()).count();
    let shared = plan.nodes.iter().filter(|n| n.uses > 1).count();
    let _ = writeln!(
        out,
        "plan: {} segments, {} nodes ({} leaves, {} shared), {} event aggregates, {} customers",
        plan.segments.len(),
        plan.nodes.len(),
        leaves,
        shared,
        plan.aggs.len(),
        plan.n_rows
    );
    let mut printed = vec![false; plan.nodes.len()];
    for (id, root) in &plan.segments {
        let _ = writeln!(out, "segment {id}");
        node(plan, result, *root, 1, &mut printed, &mut out);
    }
    out
}

fn node(
    plan: &Plan,
    result: &GroupResult,
    id: NodeId,
    depth: usize,
    printed: &mut [bool],
    out: &mut String,
) {
    let p = &plan.nodes[id];
    let pad = "  ".repeat(depth);
    if printed[id] && !p.is_leaf() {
        let _ = writeln!(out, "{pad}#{id} {} (shared, see above)", p.label);
        return;
    }
    let s = &result.explain.nodes[id];
    let actual = s.actual_rows.map_or("-".to_string(), |r| r.to_string());
    let _ = writeln!(
        out,
        "{pad}#{id} {}  est {:.0} / actual {actual} rows, {:.3} ms, {}{}",
        p.label,
        s.est_rows,
        s.time.as_secs_f64() * 1e3,
        source_name(s.source),
        if p.uses > 1 { ", shared" } else { "" },
    );
    if printed[id] {
        return;
    }
    printed[id] = true;
    for &k in p.kind.children() {
        node(plan, result, k, depth + 1, printed, out);
    }
}
