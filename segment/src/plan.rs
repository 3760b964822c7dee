//! The planner: filter trees of a whole group → one shared DAG of sub-queries.
//!
//! 1. **Normalise.** `not` is pushed down to the leaves (De Morgan holds in Kleene logic), so
//!    only leaves carry a negation; a negated comparison becomes the opposite comparison
//!    (`not points > 5` ≡ `points <= 5`: both are UNKNOWN on null), `not exists` becomes
//!    `missing`. Nested `and`/`or` are flattened, duplicate children removed, constants
//!    folded. `in_segment: x` is replaced by the root of `x`'s own plan; `not in_segment: x`
//!    becomes `AllBut(root)` (membership is two-valued, so its negation is the complement).
//! 2. **Share.** Every node is interned by its canonical key (children sorted), so an
//!    identical sub-filter anywhere in the group is one node, computed once. Event leaves with
//!    the same (type, property filters, window) share one [`AggSpec`] scan.
//! 3. **Estimate.** Each leaf's selectivity is measured on an evenly spaced sample of customers
//!    (attribute leaves through `ValueOp::test`, the semantics the column kernels are tested
//!    against; event leaves through the executor's row-wise event kernels), its cost from the
//!    column type or the number of
//!    events scanned; `and`/`or` estimates assume independence.
//! 4. **Order.** `and` children run cheapest/most selective first (ascending estimated rows,
//!    then cost) so the intersection shrinks fastest and stops early when empty; leaves are
//!    scheduled by segment, most expensive first within a segment.
//!
//! Invariant: node ids are topological — every child id is smaller than its parent's.

use std::fmt::Write as _;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::data::SegmentData;
use crate::kernels::{aggregate_rows_multi, event_rows, AggSpec};
use crate::model::{AttrPred, EventPred, EventTest, Filter, NumCond, SegmentGroup, ValueOp};
use roaring::RoaringBitmap;

/// Index of a node in [`Plan::nodes`].
pub type NodeId = usize;

/// What a node computes.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// Attribute leaf: TRUE set, or FALSE set when negated.
    Attr {
        /// The predicate.
        pred: AttrPred,
        /// Whether the FALSE set is wanted.
        negated: bool,
    },
    /// Event leaf: rows where the test holds. (Event predicates are two-valued, so a negated
    /// one is an `AllBut` over the positive leaf.)
    Event {
        /// The predicate.
        pred: EventPred,
        /// Shared aggregate it reads.
        agg: usize,
        /// Index of its summed property in the aggregate.
        sum_idx: Option<usize>,
    },
    /// Intersection, children in execution order.
    And(Vec<NodeId>),
    /// Union.
    Or(Vec<NodeId>),
    /// Every customer not in the child (a negated segment reference or event leaf).
    AllBut(NodeId),
    /// Everyone (`true`) or no one.
    Const(bool),
}

impl NodeKind {
    /// The node's children (none for leaves and constants).
    pub fn children(&self) -> &[NodeId] {
        match self {
            NodeKind::And(k) | NodeKind::Or(k) => k,
            NodeKind::AllBut(c) => std::slice::from_ref(c),
            _ => &[],
        }
    }
}

/// One node of the plan.
#[derive(Clone, Debug)]
pub struct PlanNode {
    /// What it computes.
    pub kind: NodeKind,
    /// Canonical key (equal keys ⇔ equal sub-queries).
    pub key: String,
    /// Human-readable label for explain.
    pub label: String,
    /// Estimated matching rows.
    pub est_rows: f64,
    /// Estimated cost (rows or events touched).
    pub est_cost: f64,
    /// How many parents and segment roots use it.
    pub uses: u32,
}

impl PlanNode {
    /// Whether it is a leaf (computed by a kernel).
    pub fn is_leaf(&self) -> bool {
        matches!(self.kind, NodeKind::Attr { .. } | NodeKind::Event { .. })
    }
}

/// The plan of a group.
#[derive(Clone, Debug)]
pub struct Plan {
    /// All nodes, children before parents.
    pub nodes: Vec<PlanNode>,
    /// Distinct event aggregates.
    pub aggs: Vec<AggSpec>,
    /// `(segment id, root node)` in group order.
    pub segments: Vec<(Arc<str>, NodeId)>,
    /// Leaves in scheduling order.
    pub leaf_order: Vec<NodeId>,
    /// Customers in the data it was planned for.
    pub n_rows: usize,
}

/// Why a plan could not be built (the config validation rules these out; kept as errors so a
/// hand-built group cannot panic the planner).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// `in_segment` names a segment that is not in the group.
    #[error("segment `{0}` is referenced but not defined")]
    UnknownSegment(String),
    /// Segment references form a cycle.
    #[error("segment references form a cycle: {0}")]
    Cycle(String),
    /// The group has no segments.
    #[error("the segment group is empty")]
    Empty,
}

struct Planner<'a> {
    group: &'a SegmentGroup,
    data: &'a SegmentData,
    as_of: i64,
    nodes: Vec<PlanNode>,
    index: FxHashMap<String, NodeId>,
    aggs: Vec<AggSpec>,
    agg_index: FxHashMap<String, usize>,
    roots: FxHashMap<Arc<str>, NodeId>,
    visiting: Vec<Arc<str>>,
    sample: Vec<u32>,
}

/// Plans a group for `data` at `as_of` (estimates use the data; the plan stays valid for any
/// data with the same schema).
pub fn plan(group: &SegmentGroup, data: &SegmentData, as_of: i64) -> Result<Plan, PlanError> {
    if group.segments.is_empty() {
        return Err(PlanError::Empty);
    }
    let n = data.len();
    let step = (n / 512).max(1);
    let mut p = Planner {
        group,
        data,
        as_of,
        nodes: Vec::new(),
        index: FxHashMap::default(),
        aggs: Vec::new(),
        agg_index: FxHashMap::default(),
        roots: FxHashMap::default(),
        visiting: Vec::new(),
        sample: (0..n).step_by(step).map(|r| r as u32).collect(),
    };
    let mut segments = Vec::new();
    for s in &group.segments {
        let root = p.segment_root(&s.id)?;
        p.nodes[root].uses += 1;
        segments.push((s.id.clone(), root));
    }
    // Leaves: by first segment that needs them, then most expensive first.
    let mut leaf_order = Vec::new();
    let mut seen = vec![false; p.nodes.len()];
    for &(_, root) in &segments {
        let mut leaves = Vec::new();
        collect_leaves(&p.nodes, root, &mut seen, &mut leaves);
        leaves.sort_by(|&a, &b| p.nodes[b].est_cost.total_cmp(&p.nodes[a].est_cost));
        leaf_order.extend(leaves);
    }
    Ok(Plan {
        nodes: p.nodes,
        aggs: p.aggs,
        segments,
        leaf_order,
        n_rows: n,
    })
}

fn collect_leaves(nodes: &[PlanNode], id: NodeId, seen: &mut [bool], out: &mut Vec<NodeId>) {
    if seen[id] {
        return;
    }
    seen[id] = true;
    if matches!(
        nodes[id].kind,
        NodeKind::Attr { .. } | NodeKind::Event { .. }
    ) {
        out.push(id);
    }
    for &k in nodes[id].kind.children() {
        collect_leaves(nodes, k, seen, out);
    }
}

impl Planner<'_> {
    fn n(&self) -> f64 {
        self.data.len() as f64
    }

    fn segment_root(&mut self, id: &Arc<str>) -> Result<NodeId, PlanError> {
        if let Some(&r) = self.roots.get(id) {
            return Ok(r);
        }
        if self.visiting.contains(id) {
            let mut path: Vec<&str> = self.visiting.iter().map(|s| s.as_ref()).collect();
            path.push(id);
            return Err(PlanError::Cycle(path.join(" -> ")));
        }
        let seg = self
            .group
            .segments
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| PlanError::UnknownSegment(id.to_string()))?;
        self.visiting.push(id.clone());
        let root = self.lower(&seg.filter, false);
        self.visiting.pop();
        let root = root?;
        self.roots.insert(id.clone(), root);
        Ok(root)
    }

    fn lower(&mut self, f: &Filter, neg: bool) -> Result<NodeId, PlanError> {
        Ok(match f {
            Filter::And(cs) | Filter::Or(cs) => {
                let kids = cs
                    .iter()
                    .map(|c| self.lower(c, neg))
                    .collect::<Result<Vec<_>, _>>()?;
                let is_and = matches!(f, Filter::And(_)) != neg;
                self.junction(is_and, kids)
            }
            Filter::Not(c) => self.lower(c, !neg)?,
            Filter::Attr(p) => {
                let (op, negated) = match (&p.op, neg) {
                    (op, false) => (op.clone(), false),
                    (ValueOp::Exists, true) => (ValueOp::Missing, false),
                    (ValueOp::Missing, true) => (ValueOp::Exists, false),
                    (ValueOp::Cmp(c, l), true) => (ValueOp::Cmp(c.negated(), l.clone()), false),
                    (op, true) => (op.clone(), true),
                };
                let pred = AttrPred { op, ..p.clone() };
                self.attr_leaf(pred, negated)
            }
            // Event predicates are two-valued, so a negation is the complement of the positive
            // leaf: `not performed X` and `not in_segment(performed X)` become one node.
            Filter::Event(p) if neg => {
                let pos = self.event_leaf(p);
                let label = format!("not {}", self.nodes[pos].label);
                self.all_but(pos, label)
            }
            Filter::Event(p) => self.event_leaf(p),
            Filter::InSegment(id) => {
                let root = self.segment_root(id)?;
                if neg {
                    self.all_but(root, format!("not in_segment {id}"))
                } else {
                    root
                }
            }
        })
    }

    fn all_but(&mut self, child: NodeId, label: String) -> NodeId {
        if let NodeKind::Const(b) = self.nodes[child].kind {
            return self.constant(!b);
        }
        let est = self.n() - self.nodes[child].est_rows;
        let cost = self.nodes[child].est_cost;
        self.intern(
            format!("allbut({child})"),
            label,
            NodeKind::AllBut(child),
            est,
            cost,
        )
    }

    fn intern(
        &mut self,
        key: String,
        label: String,
        kind: NodeKind,
        est_rows: f64,
        est_cost: f64,
    ) -> NodeId {
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        for &c in kind.children() {
            self.nodes[c].uses += 1;
        }
        let id = self.nodes.len();
        self.nodes.push(PlanNode {
            kind,
            key: key.clone(),
            label,
            est_rows,
            est_cost,
            uses: 0,
        });
        self.index.insert(key, id);
        id
    }

    fn constant(&mut self, b: bool) -> NodeId {
        let n = if b { self.n() } else { 0.0 };
        self.intern(
            format!("const({b})"),
            b.to_string(),
            NodeKind::Const(b),
            n,
            0.0,
        )
    }

    fn junction(&mut self, is_and: bool, kids: Vec<NodeId>) -> NodeId {
        let mut flat = Vec::new();
        for k in kids {
            match &self.nodes[k].kind {
                NodeKind::And(c) if is_and => flat.extend(c.iter().copied()),
                NodeKind::Or(c) if !is_and => flat.extend(c.iter().copied()),
                NodeKind::Const(b) if *b == is_and => {}
                NodeKind::Const(_) => return self.constant(!is_and),
                _ => flat.push(k),
            }
        }
        flat.sort_unstable();
        flat.dedup();
        match flat.len() {
            0 => return self.constant(is_and),
            1 => return flat[0],
            _ => {}
        }
        let n = self.n().max(1.0);
        let sel = flat.iter().map(|&k| self.nodes[k].est_rows / n);
        let est = if is_and {
            n * sel.product::<f64>()
        } else {
            n * (1.0 - sel.map(|s| 1.0 - s).product::<f64>())
        };
        let cost = flat.iter().map(|&k| self.nodes[k].est_cost).sum();
        let word = if is_and { "and" } else { "or" };
        let key = format!(
            "{word}({})",
            flat.iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut order = flat.clone();
        if is_and {
            order.sort_by(|&a, &b| {
                let (x, y) = (&self.nodes[a], &self.nodes[b]);
                x.est_rows
                    .total_cmp(&y.est_rows)
                    .then(x.est_cost.total_cmp(&y.est_cost))
            });
        }
        let kind = if is_and {
            NodeKind::And(order)
        } else {
            NodeKind::Or(order)
        };
        self.intern(key, word.to_string(), kind, est, cost)
    }

    fn attr_leaf(&mut self, pred: AttrPred, negated: bool) -> NodeId {
        let key = format!("attr:{}:{:?}:{negated}", pred.name, pred.op);
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let want = Some(!negated);
        let hits = self
            .sample
            .iter()
            .filter(|&&r| {
                pred.op
                    .test(&self.data.customers().get(r, pred.attr), self.as_of)
                    == want
            })
            .count();
        let sel = hits as f64 / self.sample.len().max(1) as f64;
        let per_row = match pred.ty {
            fusebox_engine::value::AttrType::String => 3.0,
            fusebox_engine::value::AttrType::StringList => 8.0,
            _ => 1.0,
        };
        let label = format!(
            "{}{} {}",
            if negated { "not " } else { "" },
            pred.name,
            pred.op
        );
        let est = sel * self.n();
        let cost = per_row * self.n();
        self.intern(key, label, NodeKind::Attr { pred, negated }, est, cost)
    }

    fn event_leaf(&mut self, p: &EventPred) -> NodeId {
        let mut pred = p.clone();
        pred.filters.sort_by_key(|f| format!("{f:?}"));
        // Counts are whole numbers: `count >= x` with 0 < x <= 1 is "performed at least once".
        if let EventTest::Performed {
            count: Some(NumCond::Ge(x)),
            sum: None,
        } = pred.test
        {
            if x > 0.0 && x <= 1.0 {
                pred.test = EventTest::Performed {
                    count: None,
                    sum: None,
                };
            }
        }
        let key = format!("event:{pred:?}");
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let agg_key = format!("{}|{:?}|{:?}", pred.event_type, pred.filters, pred.window);
        let agg = match self.agg_index.get(&agg_key) {
            Some(&a) => a,
            None => {
                self.aggs.push(AggSpec {
                    event_type: pred.event_type.clone(),
                    filters: pred.filters.clone(),
                    window: pred.window,
                    sums: Vec::new(),
                    times: false,
                });
                self.agg_index.insert(agg_key, self.aggs.len() - 1);
                self.aggs.len() - 1
            }
        };
        let spec = &mut self.aggs[agg];
        let sum_idx = match &pred.test {
            EventTest::Performed {
                sum: Some((prop, _)),
                ..
            } => Some(match spec.sums.iter().position(|s| s == prop) {
                Some(i) => i,
                None => {
                    spec.sums.push(prop.clone());
                    spec.sums.len() - 1
                }
            }),
            _ => None,
        };
        if matches!(pred.test, EventTest::First { .. } | EventTest::Last { .. }) {
            spec.times = true;
        }
        // The sample's aggregates in one pass, then the leaf's test on them: the same code the
        // executor runs for dirty rows.
        let te = self.data.events.of_type(&pred.event_type);
        let sampled = aggregate_rows_multi(te, &[&self.aggs[agg]], self.as_of, &self.sample);
        let mut hits = RoaringBitmap::new();
        if let Some(a) = sampled.first() {
            event_rows(a, &self.sample, &pred.test, sum_idx, self.as_of, &mut hits);
        }
        let hits = hits.len();
        let sel = hits as f64 / self.sample.len().max(1) as f64;
        let events = te.map_or(0, |t| t.len()) as f64;
        let label = event_label(&pred);
        let est = sel * self.n();
        let cost = events + self.n();
        self.intern(
            key,
            label,
            NodeKind::Event { pred, agg, sum_idx },
            est,
            cost,
        )
    }
}

fn event_label(p: &EventPred) -> String {
    let mut s = String::new();
    match &p.test {
        EventTest::Performed { .. } => s.push_str("performed "),
        EventTest::First { .. } => s.push_str("first performed "),
        EventTest::Last { .. } => s.push_str("last performed "),
    }
    s.push_str(&p.event_type);
    for f in &p.filters {
        let _ = write!(s, " where {} {}", f.name, f.op);
    }
    if p.window != crate::model::Window::All {
        let _ = write!(s, " in {}", p.window);
    }
    match &p.test {
        EventTest::Performed { count, sum } => {
            if let Some(c) = count {
                let _ = write!(s, " count {c}");
            }
            if let Some((prop, c)) = sum {
                let _ = write!(s, " sum({prop}) {c}");
            }
        }
        EventTest::First { before, at } | EventTest::Last { before, at } => {
            let _ = write!(s, " {} {at}", if *before { "before" } else { "after" });
        }
    }
    s
}
