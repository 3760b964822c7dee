//! The executor: leaves in parallel on a Rayon pool, then bitmap combiners in plan order.
//!
//! ## Phases
//! 1. **Leaves.** Workers (one per pool thread) pull leaves from a shared atomic cursor in the
//!    plan's scheduling order (by segment, most expensive first). A leaf is served from the
//!    cache when its key and input versions match; otherwise its kernel runs. Event leaves
//!    need their shared aggregate: the first worker to need it computes it inside a
//!    `OnceLock`, others wait for it. Waiting is safe: computing an aggregate is a sequential
//!    scan that never waits on anything, so there is no cycle of waits.
//! 2. **Combine.** Internal nodes in id order (children first): `and` intersects children in
//!    planned order and stops when the running set is empty, `or` unions, `AllBut` subtracts
//!    from all rows. Bitmap operations take microseconds, so this phase is sequential.
//!
//! Incremental refresh hands `run` other leaf jobs than "compute in full": keep the previous
//! bitmap, re-evaluate the dirty rows from their events (`Rows`), or re-evaluate the rows of a
//! carried aggregate's delta from their gathered values (`Changed`); each splices the fresh
//! rows into the previous bitmap (see [`crate::refresh`]).
//!
//! ## Deadline
//! A worker checks the deadline before each leaf; after expiry no new leaf starts, running
//! leaves finish, and every node whose inputs are all present is still combined. Segments whose
//! root could be computed are reported as finished; the rest as unfinished.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fusebox_engine::expr::segments::Memberships;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::data::SegmentData;
use crate::explain::{Explain, NodeStats, Source};
use crate::kernels::{
    aggregate_full, aggregate_rows_multi, all_rows, attr_full, attr_rows, event_full, event_rows,
    AggDelta, Aggregate,
};
use crate::model::SegmentGroup;
use crate::plan::{plan, NodeId, NodeKind, Plan, PlanError};

/// Why a computation failed.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The group could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A Polars kernel failed.
    #[error("column kernel failed: {0}")]
    Kernel(String),
    /// The data changed shape (customers added/removed) since the previous result.
    #[error("the previous result was computed over {expected} customers, the data has {found}")]
    Shape {
        /// Rows in the previous result.
        expected: usize,
        /// Rows now.
        found: usize,
    },
    /// The previous result is incomplete (it timed out) or belongs to another engine, so it
    /// cannot be refreshed.
    #[error("the previous result is incomplete (deadline expired) or from another group; recompute the group")]
    Incomplete,
    /// `as_of` moved backwards.
    #[error("as-of may only advance on refresh")]
    AsOfBackwards,
    /// The data changed since the previous result was computed: by a refresh from it that
    /// failed after applying its change set, by another refresh, or by a direct change. A
    /// refresh would re-apply (or miss) changes, so it is refused.
    #[error("the data changed since the previous result was computed (a refresh that failed after applying its changes, or a change made outside refresh); recompute the group, or refresh from the newest result")]
    Stale,
    /// Bad change set.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The worker pool could not be built.
    #[error("cannot build the worker pool: {0}")]
    Pool(String),
}

/// Options of one computation.
#[derive(Clone, Debug)]
pub struct ComputeOptions {
    /// The time relative windows and `now` refer to (µs, UTC); later events are invisible.
    pub as_of: i64,
    /// Stop starting new work after this instant.
    pub deadline: Option<Instant>,
    /// Use (and fill) the sub-query cache.
    pub use_cache: bool,
}

impl ComputeOptions {
    /// Options at `as_of`, cache on, no deadline.
    pub fn at(as_of: i64) -> ComputeOptions {
        ComputeOptions {
            as_of,
            deadline: None,
            use_cache: true,
        }
    }
}

/// One segment's outcome.
#[derive(Clone, Debug)]
pub struct SegmentResult {
    /// Segment id.
    pub id: Arc<str>,
    /// Member rows, `None` if unfinished (deadline).
    pub members: Option<Arc<RoaringBitmap>>,
    /// Sum of the time of the nodes it uses (shared nodes counted in full).
    pub work: Duration,
}

/// The result of computing (or refreshing) a group.
#[derive(Clone, Debug)]
pub struct GroupResult {
    /// The `as_of` it was computed at.
    pub as_of: i64,
    /// Per segment, in group order.
    pub segments: Vec<SegmentResult>,
    /// Whether the deadline expired before everything was computed.
    pub timed_out: bool,
    /// Per-node statistics (estimated vs actual rows, time, where the result came from).
    pub explain: Explain,
    /// Wall time of the whole computation.
    pub elapsed: Duration,
    pub(crate) nodes: Vec<Option<Arc<RoaringBitmap>>>,
    /// The data it was computed over (and so its number of customers).
    pub(crate) data_state: crate::data::DataState,
    /// Refreshes since the computation (0 for a computation).
    pub(crate) generation: u64,
    /// The whole-table event aggregates of this computation, for the next refresh.
    pub(crate) aggs: AggSlot,
}

/// The whole-table event aggregates a result was computed from (refresh: see
/// [`crate::refresh`]). Entry `k` is plan aggregate `k` with the version of its event type it
/// reflects, `None` if it was not computed (leaves served from the cache, deadline).
#[derive(Default)]
pub(crate) struct AggState {
    pub(crate) aggs: Vec<Option<(u64, Aggregate)>>,
}

/// Where a result keeps its [`AggState`]. Clones of a result share the slot; the first refresh
/// from any of them takes the state out (it is updated in place and moves to the refreshed
/// result), so a later refresh from the same `prev` falls back to re-scanning the dirty rows'
/// events — slower, never wrong.
#[derive(Clone, Default)]
pub(crate) struct AggSlot(Arc<Mutex<Option<AggState>>>);

impl AggSlot {
    fn new(state: AggState) -> AggSlot {
        AggSlot(Arc::new(Mutex::new(Some(state))))
    }

    /// Takes the state out (leaving the slot empty).
    pub(crate) fn take(&self) -> Option<AggState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for AggSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AggSlot")
    }
}

impl GroupResult {
    /// Members of a segment by id.
    pub fn members(&self, id: &str) -> Option<&RoaringBitmap> {
        self.segments
            .iter()
            .find(|s| s.id.as_ref() == id)
            .and_then(|s| s.members.as_deref())
    }

    /// Ids of the segments that finished.
    pub fn finished(&self) -> Vec<Arc<str>> {
        self.segments
            .iter()
            .filter(|s| s.members.is_some())
            .map(|s| s.id.clone())
            .collect()
    }
}

/// What to do for a leaf.
pub(crate) enum Job {
    /// Whole-table kernel.
    Full,
    /// Re-evaluate `rows` and splice into `old`.
    Rows(RoaringBitmap, Arc<RoaringBitmap>),
    /// Event leaf whose aggregate was kept up to date: re-evaluate only the rows of the delta,
    /// from their gathered values, and splice into `old` (no re-scan of the rows' events). The
    /// delta holds every row whose answer can differ: at the same `as_of`, the rows whose
    /// aggregate changed (a leaf is a function of its row's aggregate and `as_of`); after
    /// `as_of` moved, also the rows whose first/last time may have crossed a moved bound.
    Changed(Arc<AggDelta>, Arc<RoaringBitmap>),
    /// Keep `old`.
    Keep(Arc<RoaringBitmap>),
}

/// (normalised filter, version of the input it reads, `as_of` it depends on or `i64::MIN`,
/// number of customers — a leaf over all rows, like a negated one, changes when customers are
/// added even if its input did not).
type CacheKey = (String, u64, i64, usize);

/// Refresh: the dirty rows of one event type, in chunks; chunk `c` holds the positional
/// aggregates of `rows[c * ROW_CHUNK..]` for every aggregate in `aggs`, computed in one pass by
/// whichever worker gets there first.
pub(crate) struct RowGroup<'j> {
    ty: &'j str,
    rows: &'j RoaringBitmap,
    list: Vec<u32>,
    aggs: Vec<usize>,
    chunks: Vec<OnceLock<Vec<Aggregate>>>,
}

/// Dirty rows per refresh work item: small enough to spread over the workers.
pub(crate) const ROW_CHUNK: usize = 512;

/// A planned group plus its worker pool and sub-query cache.
pub struct SegmentEngine {
    group: SegmentGroup,
    plan: Plan,
    pool: rayon::ThreadPool,
    threads: usize,
    cache: Mutex<FxHashMap<String, (CacheKey, Arc<RoaringBitmap>)>>,
    row_refresh_limit: f64,
}

impl std::fmt::Debug for SegmentEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentEngine")
            .field("segments", &self.plan.segments.len())
            .field("nodes", &self.plan.nodes.len())
            .field("threads", &self.threads)
            .finish()
    }
}

impl SegmentEngine {
    /// Plans `group` for `data` (estimates at `as_of`) with a pool of `threads` workers
    /// (default: the number of cores).
    pub fn new(
        group: SegmentGroup,
        data: &SegmentData,
        as_of: i64,
        threads: Option<usize>,
    ) -> Result<SegmentEngine, SegmentError> {
        let plan = plan(&group, data, as_of)?;
        let threads = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fusebox-segment-{i}"))
            .build()
            .map_err(|e| SegmentError::Pool(e.to_string()))?;
        Ok(SegmentEngine {
            group,
            plan,
            pool,
            threads,
            cache: Mutex::new(FxHashMap::default()),
            row_refresh_limit: 0.25,
        })
    }

    /// When a refresh advances `as_of`, each carried event aggregate re-reads the rows whose
    /// aggregate can change (customers with events in its moved time slices, see
    /// [`crate::refresh`]) while they are at most `share` of the table; above it the
    /// aggregate is dropped and its leaves are recomputed over the whole table (one sequential
    /// scan beats re-reading that many histories one by one). Without a carried aggregate the
    /// same limit applies to all the moved rows of the leaf's event type. Default 0.25; `0.0`
    /// always recomputes whole, `1.0` always goes row by row. Both give the same answer.
    pub fn with_row_refresh_limit(mut self, share: f64) -> SegmentEngine {
        self.row_refresh_limit = share;
        self
    }

    /// See [`Self::with_row_refresh_limit`].
    pub(crate) fn row_refresh_limit(&self) -> f64 {
        self.row_refresh_limit
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The worker pool (incremental refresh applies changes on it too).
    pub(crate) fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// The group.
    pub fn group(&self) -> &SegmentGroup {
        &self.group
    }

    /// Computes every segment of the group.
    pub fn compute(
        &self,
        data: &SegmentData,
        opts: &ComputeOptions,
    ) -> Result<GroupResult, SegmentError> {
        let jobs = self
            .plan
            .leaf_order
            .iter()
            .map(|&id| (id, Job::Full))
            .collect();
        self.run(data, opts, jobs, None, Vec::new())
    }

    fn cache_key(&self, data: &SegmentData, id: NodeId, as_of: i64) -> Option<CacheKey> {
        let node = &self.plan.nodes[id];
        match &node.kind {
            NodeKind::Attr { pred, .. } => Some((
                node.key.clone(),
                data.attr_version(pred.attr),
                if pred.op.is_relative() {
                    as_of
                } else {
                    i64::MIN
                },
                data.len(),
            )),
            // Events after as_of are invisible, so every event leaf depends on it.
            NodeKind::Event { pred, .. } => Some((
                node.key.clone(),
                data.events.version(&pred.event_type),
                as_of,
                data.len(),
            )),
            _ => None,
        }
    }

    /// Runs leaf jobs, then combines. `prev_nodes` (refresh) lets unchanged internal nodes be
    /// kept; `carried` (refresh, indexed by plan aggregate, may be empty) are up-to-date
    /// whole-table aggregates that the result keeps alongside the ones computed here.
    pub(crate) fn run(
        &self,
        data: &SegmentData,
        opts: &ComputeOptions,
        jobs: Vec<(NodeId, Job)>,
        prev_nodes: Option<&[Option<Arc<RoaringBitmap>>]>,
        carried: Vec<Option<Aggregate>>,
    ) -> Result<GroupResult, SegmentError> {
        let start = Instant::now();
        let plan = &self.plan;
        let n = data.len();
        let as_of = opts.as_of;
        // Worker threads do not inherit the caller's span: sub-queries name it as parent.
        let group_span = tracing::info_span!("segment_group", rows = n, sub_queries = jobs.len());
        let _entered = group_span.enter();
        let aggs: Vec<OnceLock<Aggregate>> = plan.aggs.iter().map(|_| OnceLock::new()).collect();
        let results: Vec<OnceLock<(Arc<RoaringBitmap>, Duration, Source)>> =
            plan.nodes.iter().map(|_| OnceLock::new()).collect();
        let groups = self.row_groups(&jobs);
        let chunk_jobs: Vec<(usize, usize)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, grp)| (0..grp.chunks.len()).map(move |c| (g, c)))
            .collect();
        let n_chunks = chunk_jobs.len();
        let total_jobs = n_chunks + jobs.len();
        let cursor = AtomicUsize::new(0);
        let expired = AtomicBool::new(false);
        let failure: Mutex<Option<SegmentError>> = Mutex::new(None);

        let work = || loop {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            if i >= total_jobs {
                break;
            }
            if opts.deadline.is_some_and(|d| Instant::now() >= d) {
                expired.store(true, Ordering::Relaxed);
                break;
            }
            // Refresh: row-aggregate chunks first, so event leaves rarely wait for them.
            if let Some(&(g, c)) = chunk_jobs.get(i) {
                self.chunk(data, as_of, &groups[g], c);
                continue;
            }
            let Some((id, job)) = jobs.get(i - n_chunks) else {
                break;
            };
            let t0 = Instant::now();
            let _sub = tracing::debug_span!(parent: &group_span, "sub_query", node = *id, key = %plan.nodes[*id].key).entered();
            let out = self.leaf(data, opts, (&aggs, &groups), *id, job);
            match out {
                Ok((bitmap, source)) => {
                    let _ = results[*id].set((bitmap, t0.elapsed(), source));
                }
                Err(e) => {
                    let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                    f.get_or_insert(e);
                    // Stop everyone: the result is an error anyway.
                    cursor.store(total_jobs, Ordering::Relaxed);
                }
            }
        };
        self.pool.scope(|s| {
            for _ in 0..self.threads {
                s.spawn(|_| work());
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let expired = expired.load(Ordering::Relaxed);
        let mut carried = carried;
        carried.resize(plan.aggs.len(), None);

        // Combine.
        let mut nodes: Vec<Option<Arc<RoaringBitmap>>> = vec![None; plan.nodes.len()];
        let mut stats: Vec<NodeStats> = plan
            .nodes
            .iter()
            .map(|p| NodeStats {
                est_rows: p.est_rows,
                actual_rows: None,
                time: Duration::ZERO,
                source: Source::NotRun,
            })
            .collect();
        let mut changed = vec![prev_nodes.is_none(); plan.nodes.len()];
        for (id, node) in plan.nodes.iter().enumerate() {
            let t0 = Instant::now();
            let value: Option<Arc<RoaringBitmap>> = match &node.kind {
                NodeKind::Attr { .. } | NodeKind::Event { .. } => {
                    results[id].get().map(|(b, t, source)| {
                        stats[id].time = *t;
                        stats[id].source = *source;
                        changed[id] = !matches!(source, Source::Kept);
                        b.clone()
                    })
                }
                NodeKind::Const(b) => {
                    stats[id].source = Source::Combined;
                    Some(Arc::new(if *b {
                        all_rows(n)
                    } else {
                        RoaringBitmap::new()
                    }))
                }
                NodeKind::And(_) | NodeKind::Or(_) | NodeKind::AllBut(_) => {
                    let kids = node.kind.children();
                    let prev = prev_nodes.and_then(|p| p[id].clone());
                    if kids.iter().any(|&k| nodes[k].is_none()) {
                        None
                    } else if let (Some(prev), false) = (prev, kids.iter().any(|&k| changed[k])) {
                        stats[id].source = Source::Kept;
                        Some(prev)
                    } else {
                        changed[id] = true;
                        stats[id].source = Source::Combined;
                        Some(Arc::new(combine(&node.kind, &nodes, n)))
                    }
                }
            };
            if !node.is_leaf() {
                stats[id].time = t0.elapsed();
            }
            stats[id].actual_rows = value.as_ref().map(|b| b.len());
            nodes[id] = value;
        }

        if opts.use_cache {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for &id in &plan.leaf_order {
                if let (Some(b), Some(key)) = (&nodes[id], self.cache_key(data, id, as_of)) {
                    cache.insert(plan.nodes[id].key.clone(), (key, b.clone()));
                }
            }
        }

        let state = AggState {
            aggs: aggs
                .into_iter()
                .zip(carried)
                .zip(&plan.aggs)
                .map(|((computed, carried), spec)| {
                    computed
                        .into_inner()
                        .or(carried)
                        .map(|a| (data.events.version(&spec.event_type), a))
                })
                .collect(),
        };

        let segments = plan
            .segments
            .iter()
            .map(|(sid, root)| {
                let mut seen = vec![false; plan.nodes.len()];
                let mut work = Duration::ZERO;
                sum_time(plan, &stats, *root, &mut seen, &mut work);
                SegmentResult {
                    id: sid.clone(),
                    members: nodes[*root].clone(),
                    work,
                }
            })
            .collect();
        let result = GroupResult {
            as_of,
            segments,
            timed_out: expired,
            explain: Explain { nodes: stats },
            elapsed: start.elapsed(),
            nodes,
            data_state: data.state(),
            generation: 0,
            aggs: AggSlot::new(state),
        };
        crate::telemetry::record(&result, prev_nodes.is_some());
        Ok(result)
    }

    /// Refresh: groups the `Rows` event leaves by event type (and dirty rows), with every
    /// aggregate each group needs.
    fn row_groups<'j>(&'j self, jobs: &'j [(NodeId, Job)]) -> Vec<RowGroup<'j>> {
        let mut groups: Vec<RowGroup<'j>> = Vec::new();
        for (id, job) in jobs {
            let (Job::Rows(rows, _), NodeKind::Event { pred, agg, .. }) =
                (job, &self.plan.nodes[*id].kind)
            else {
                continue;
            };
            match groups
                .iter_mut()
                .find(|g| g.ty == pred.event_type.as_ref() && g.rows == rows)
            {
                Some(g) => {
                    if !g.aggs.contains(agg) {
                        g.aggs.push(*agg);
                    }
                }
                None => {
                    let list: Vec<u32> = rows.iter().collect();
                    let chunks = (0..list.len().div_ceil(ROW_CHUNK))
                        .map(|_| OnceLock::new())
                        .collect();
                    groups.push(RowGroup {
                        ty: pred.event_type.as_ref(),
                        rows,
                        list,
                        aggs: vec![*agg],
                        chunks,
                    });
                }
            }
        }
        groups
    }

    /// The aggregates of chunk `c` of a row group (computed once: one fused pass over each
    /// row's events for all the group's aggregates).
    fn chunk<'g>(
        &self,
        data: &SegmentData,
        as_of: i64,
        group: &'g RowGroup<'_>,
        c: usize,
    ) -> &'g [Aggregate] {
        group.chunks[c].get_or_init(|| {
            let specs: Vec<&crate::kernels::AggSpec> =
                group.aggs.iter().map(|&a| &self.plan.aggs[a]).collect();
            let end = ((c + 1) * ROW_CHUNK).min(group.list.len());
            aggregate_rows_multi(
                data.events.of_type(group.ty),
                &specs,
                as_of,
                &group.list[c * ROW_CHUNK..end],
            )
        })
    }

    fn leaf(
        &self,
        data: &SegmentData,
        opts: &ComputeOptions,
        (aggs, groups): (&[OnceLock<Aggregate>], &[RowGroup<'_>]),
        id: NodeId,
        job: &Job,
    ) -> Result<(Arc<RoaringBitmap>, Source), SegmentError> {
        let as_of = opts.as_of;
        let node = &self.plan.nodes[id];
        match job {
            Job::Keep(old) => return Ok((old.clone(), Source::Kept)),
            Job::Changed(delta, old) => {
                let mut fresh = RoaringBitmap::new();
                if let NodeKind::Event { pred, sum_idx, .. } = &node.kind {
                    event_rows(
                        &delta.values,
                        &delta.rows,
                        &pred.test,
                        *sum_idx,
                        as_of,
                        &mut fresh,
                    );
                }
                let mut b = old.as_ref() - &delta.bitmap;
                b |= fresh;
                return Ok((Arc::new(b), Source::Rows(delta.bitmap.len())));
            }
            Job::Rows(rows, old) => {
                let fresh = match &node.kind {
                    NodeKind::Attr { pred, negated } => {
                        attr_rows(data, pred, *negated, as_of, rows)
                    }
                    NodeKind::Event { pred, agg, sum_idx } => {
                        // Leaves of one event type see the same dirty rows (dirty by type),
                        // so their row aggregates are computed once per chunk and shared.
                        let mut fresh = RoaringBitmap::new();
                        // `row_groups` made a group, with this aggregate, for every such job.
                        let (g, k) = groups
                            .iter()
                            .find(|g| g.ty == pred.event_type.as_ref() && g.rows == rows)
                            .and_then(|g| Some((g, g.aggs.iter().position(|a| a == agg)?)))
                            .expect("row_groups covers every event Rows job");
                        for c in 0..g.chunks.len() {
                            let part = self.chunk(data, as_of, g, c);
                            let end = ((c + 1) * ROW_CHUNK).min(g.list.len());
                            event_rows(
                                &part[k],
                                &g.list[c * ROW_CHUNK..end],
                                &pred.test,
                                *sum_idx,
                                as_of,
                                &mut fresh,
                            );
                        }
                        fresh
                    }
                    _ => RoaringBitmap::new(),
                };
                let mut b = old.as_ref() - rows;
                b |= fresh;
                return Ok((Arc::new(b), Source::Rows(rows.len())));
            }
            Job::Full => {}
        }
        let key = self.cache_key(data, id, as_of);
        if opts.use_cache {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some((k, b)), Some(key)) = (cache.get(&node.key), &key) {
                if k == key {
                    return Ok((b.clone(), Source::Cached));
                }
            }
        }
        let bitmap = match &node.kind {
            NodeKind::Attr { pred, negated } => attr_full(data, pred, *negated, as_of)
                .map_err(|e| SegmentError::Kernel(e.to_string()))?,
            NodeKind::Event { pred, agg, sum_idx } => {
                let a = aggs[*agg].get_or_init(|| {
                    aggregate_full(
                        data.events.of_type(&pred.event_type),
                        &self.plan.aggs[*agg],
                        as_of,
                        data.len(),
                    )
                });
                event_full(a, &pred.test, *sum_idx, as_of)
            }
            _ => RoaringBitmap::new(),
        };
        Ok((Arc::new(bitmap), Source::Computed))
    }

    /// Publishes every finished segment of `result` into `registry`, the memberships the
    /// trigger engine's `segment('id')` conditions read (from its next batch on), with the
    /// segment's compute time. Unfinished segments (deadline) keep their previous publication.
    pub fn publish(&self, data: &SegmentData, result: &GroupResult, registry: &Memberships) {
        let work: FxHashMap<&str, Duration> = result
            .segments
            .iter()
            .map(|s| (s.id.as_ref(), s.work))
            .collect();
        for (id, customers) in self.member_ids(data, result) {
            registry.publish_computed(&id, customers, work.get(id.as_ref()).copied());
        }
    }

    /// Segment rows of the data's ids: `(segment id, customer ids)` for finished segments.
    pub fn member_ids(
        &self,
        data: &SegmentData,
        result: &GroupResult,
    ) -> Vec<(Arc<str>, Vec<u64>)> {
        let ids = data.customers().ids();
        result
            .segments
            .iter()
            .filter_map(|s| {
                let m = s.members.as_ref()?;
                Some((s.id.clone(), m.iter().map(|r| ids[r as usize]).collect()))
            })
            .collect()
    }
}

fn sum_time(plan: &Plan, stats: &[NodeStats], id: NodeId, seen: &mut [bool], acc: &mut Duration) {
    if seen[id] {
        return;
    }
    seen[id] = true;
    *acc += stats[id].time;
    for &k in plan.nodes[id].kind.children() {
        sum_time(plan, stats, k, seen, acc);
    }
}

fn combine(kind: &NodeKind, nodes: &[Option<Arc<RoaringBitmap>>], n: usize) -> RoaringBitmap {
    let get = |k: NodeId| nodes[k].as_deref().cloned().unwrap_or_default();
    match kind {
        NodeKind::And(kids) => {
            let mut it = kids.iter();
            let mut acc = it.next().map(|&k| get(k)).unwrap_or_default();
            for &k in it {
                if acc.is_empty() {
                    break;
                }
                if let Some(b) = nodes[k].as_deref() {
                    acc &= b;
                }
            }
            acc
        }
        NodeKind::Or(kids) => {
            let mut acc = RoaringBitmap::new();
            for &k in kids {
                if let Some(b) = nodes[k].as_deref() {
                    acc |= b;
                }
            }
            acc
        }
        NodeKind::AllBut(c) => {
            let mut all = all_rows(n);
            if let Some(b) = nodes[*c].as_deref() {
                all -= b;
            }
            all
        }
        _ => RoaringBitmap::new(),
    }
}
