//! Partitioned execution: don't speculate where a conflict is impossible.
//!
//! The compiled trigger set says what a transaction can touch ([`super::footprint`]): its
//! event's customer row, named counters, named pools. Most transactions only read and write
//! their own customer's row, add blindly to counters (commutative deltas) and take coupon
//! codes they only pass through (deferred slots). Two such transactions on different customers
//! cannot conflict, so there is nothing to speculate about: the block is partitioned by
//! customer, each worker runs whole customers, each customer's transactions in input order,
//! with plain reads and writes — no multi-version memory, no validation, no re-execution —
//! and the deltas and coupon slots are resolved afterwards in one in-order pass. This is what
//! schedulers with declared access sets do (Solana's Sealevel runs transactions with disjoint
//! accounts in parallel; grevm and pevm plan from predicted accesses before executing).
//!
//! ## Design
//! 1. **Classify** ([`plan`]). A transaction is *partitionable* when the footprint of its
//!    event type (its whole possible cascade) reads no counter (`counters.<name>` in no
//!    condition or expression) and reads no pool cursor, except the cursor of a pool already
//!    exhausted when the block starts. A block is run partitioned only if every transaction in
//!    it is partitionable; otherwise [`super::parallel`] runs it as before (Block-STM or
//!    sequential, whichever its tuner picks).
//! 2. **Group** the block's transactions by customer row (serial order within each group),
//!    biggest groups first, and cut the groups into claim units of a few dozen transactions.
//! 3. **Execute** ([`run_block`]): every worker (the engine's helper threads plus the calling
//!    thread, after it has delivered the previous block's outbox) claims units and runs each
//!    group in order with [`execute`] in [`ExecMode::Deferred`] against a [`RowView`]: the
//!    customer's attributes read from the group's own overlay (its writes so far in this
//!    block) or from the committed state, which nobody writes during the phase. Writes to the
//!    row are plain values (the view refuses deferral on attributes); counter increments are
//!    deltas and pass-through coupon takes are slots (the view allows deferral there), except
//!    on an exhausted pool, whose cursor is read as committed and the take fails as it would.
//! 4. **Resolve** in one in-order pass on the calling thread: for each transaction in serial
//!    order, fill its coupon codes from the pool cursors before it, then apply its counter
//!    and cursor deltas to the running values and turn each into the plain value it produced.
//! 5. **Apply**: every group's final attribute values are written to the [`State`] by a
//!    helper while the calling thread runs the in-order pass (the replaced values are kept
//!    and put back should the pass fail); then the counters and pool cursors; the outputs
//!    become the block's outbox.
//!
//! ## Why the result equals the sequential executor's, byte for byte
//! - *Rows.* A partitionable transaction reads and writes only attributes of its own customer
//!   (every attribute key is `Key::Attr { row: admitted.row, .. }`; chained events are for the
//!   same customer), and all transactions of one customer run on one worker, in serial order.
//!   Within the block no one else writes that row and earlier blocks are fully applied, so
//!   every attribute read returns exactly the value the sequential executor would read: the
//!   committed value overlaid with the same earlier writes of the same customer.
//! - *Counters.* A partitionable transaction never reads a counter, so nothing it computes
//!   depends on one. Its increments are [`super::delta::Delta`]s; the resolve pass applies
//!   them in serial order with the one definition of addition (ints checked, floats left to
//!   right), so each counter takes the same successive values as in the sequential run, and
//!   each recorded write is replaced by that value — the `Write::Set` eager execution records.
//! - *Coupons.* A deferrable take's code only leaves through effects; its slot is filled
//!   with `code(cursor_before + nth)` where `cursor_before` is the cursor after every earlier
//!   transaction's takes (the resolve pass is in serial order), which is the code eager
//!   execution takes. An exhausted pool's cursor never changes (only a successful take writes
//!   it), so reading it as committed gives the serial value, and the take fails as it would.
//! - *Everything else* (conditions, fuel, limits, effects, outcomes, chained events) is a
//!   deterministic function of the values read, and [`execute`] is the one implementation of
//!   trigger semantics. Effects are the outputs themselves, handed over in serial order.
//!
//! Deferral must not change results. Where it would — an integer overflow of a counter sum,
//! a pool running dry under deferred takes — the resolve pass fails, nothing of the block has
//! been applied, and the block is handed back to the other executors
//! ([`Partitioned::Abandoned`]), which produce the sequential result by their own argument.
//! A pool can only run dry this way once: after that block it is exhausted.
//!
//! ## Invariants
//! - **Checked, not assumed.** [`RowView`] refuses any read outside the transaction's
//!   partition (another row, a counter, a live pool cursor); each output is checked to write
//!   only its own row (with values the column accepts) plus deltas. A violation means the
//!   classification is wrong — an engine bug — and is reported as an
//!   [`InvariantViolation`] at the first violating transaction in serial order, never as a
//!   silent wrong answer.
//! - **Failure.** On such a violation, [`Partitioned::Failed`] names the first violating
//!   transaction; nothing of the block has been applied. The caller then commits exactly the
//!   transactions before it, sequentially, and reports the error — so `on_commit` sees exactly
//!   the prefix the sequential executor would have committed, and the state holds exactly its
//!   writes. (Every transaction before the first violation ran: a worker that meets a
//!   violation skips only the rest of that customer, whose transactions are all later.)
//! - **Exactly once.** Outputs are handed over only after the block resolved and applied, in
//!   serial order, once; an abandoned block's outputs are dropped unseen.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use rustc_hash::FxHashMap;

use super::commit::fill_coupon_slots;
use super::footprint::{Footprint, Footprints};
use super::parallel::Helpers;
use super::sequential::InvariantViolation;
use super::txn::{execute, ExecMode, TxnError, TxnOutput, Write};
use super::Admitted;
use crate::customers::{AttrId, CustomerTable, Row, Schema};
use crate::expr::EvalError;
use crate::state::{Key, State, StateView};
use crate::trigger::TriggerSet;
use crate::value::Value;

/// Transactions per claim unit (a unit holds whole customers, at least one).
const UNIT_TXNS: usize = 32;

/// Below this expected speed-up (block length over its longest customer chain or its even
/// share per thread, whichever is longer), an adaptive executor does not partition the block.
const MIN_GAIN: f64 = 1.25;

/// Decides, per transaction, whether it may run in a customer partition.
pub(crate) struct Classifier<'s> {
    footprints: Footprints<'s>,
    /// Tests only: call every transaction partitionable (a deliberately wrong classification,
    /// which the checks must catch).
    #[cfg(test)]
    everything: bool,
}

impl<'s> Classifier<'s> {
    pub fn new(set: &'s TriggerSet) -> Self {
        Classifier {
            footprints: Footprints::new(set),
            #[cfg(test)]
            everything: false,
        }
    }

    /// A classifier that calls every transaction partitionable, right or wrong.
    #[cfg(test)]
    pub fn everything_partitionable(set: &'s TriggerSet) -> Self {
        Classifier {
            everything: true,
            ..Classifier::new(set)
        }
    }

    /// Whether a transaction with this footprint may run in its customer's partition, given
    /// which pools are exhausted.
    fn partitionable(&self, fp: &Footprint, exhausted: &[bool]) -> bool {
        #[cfg(test)]
        if self.everything {
            return true;
        }
        fp.counters_read.is_empty()
            && fp
                .pools_read
                .iter()
                .all(|&p| exhausted.get(usize::from(p)).copied().unwrap_or(false))
    }
}

/// How a partitionable block is split among workers.
pub(crate) struct Plan {
    /// Transaction indices, grouped by customer, each group in serial order.
    order: Vec<u32>,
    /// Each group's range in `order`, biggest first.
    groups: Vec<Range<u32>>,
    /// Claim units: ranges of `groups`.
    units: Vec<Range<usize>>,
    /// By pool: exhausted when the block starts (its cursor can no longer change).
    exhausted: Vec<bool>,
}

/// Plans `block` for partitioned execution; `None` if some transaction may read shared state
/// (or, with `adaptive`, if the customers are too few to gain from it).
pub(crate) fn plan(
    classifier: &mut Classifier<'_>,
    set: &TriggerSet,
    state: &State,
    block: &[Admitted<'_>],
    threads: usize,
    adaptive: bool,
) -> Option<Plan> {
    let exhausted: Vec<bool> = set
        .pools
        .iter()
        .zip(&state.pool_cursors)
        .map(|(pool, &cursor)| cursor >= pool.len())
        .collect();
    let mut group_of: FxHashMap<Row, u32> = FxHashMap::default();
    let mut group_ids: Vec<u32> = Vec::with_capacity(block.len());
    let mut sizes: Vec<u32> = Vec::new();
    let mut last: Option<(&str, bool)> = None;
    for admitted in block {
        let ty: &str = &admitted.event.event_type;
        let ok = match last {
            Some((t, ok)) if t == ty => ok,
            _ => {
                let fp = classifier.footprints.of(&admitted.event.event_type);
                let ok = classifier.partitionable(&fp, &exhausted);
                last = Some((ty, ok));
                ok
            }
        };
        if !ok {
            return None;
        }
        let next = sizes.len() as u32;
        let g = *group_of.entry(admitted.row).or_insert(next);
        if g == next {
            sizes.push(0);
        }
        sizes[g as usize] += 1;
        group_ids.push(g);
    }
    let longest = sizes.iter().copied().max().unwrap_or(0) as usize;
    let span = longest.max(block.len().div_ceil(threads.max(1)));
    if adaptive && (span == 0 || (block.len() as f64) < MIN_GAIN * span as f64) {
        return None;
    }
    // Counting sort by group: starts[g] is where group g begins in `order`.
    let mut starts: Vec<u32> = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &size in &sizes {
        starts.push(at);
        at += size;
    }
    let mut fill = starts.clone();
    let mut order = vec![0u32; block.len()];
    for (i, &g) in group_ids.iter().enumerate() {
        let slot = &mut fill[g as usize];
        order[*slot as usize] = i as u32;
        *slot += 1;
    }
    let mut groups: Vec<Range<u32>> = starts
        .iter()
        .zip(&sizes)
        .map(|(&start, &size)| start..start + size)
        .collect();
    // Longest chains first, so no worker is left with a long one at the end.
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut units = Vec::new();
    let mut unit_start = 0;
    let mut txns = 0;
    for (i, g) in groups.iter().enumerate() {
        txns += g.len();
        if txns >= UNIT_TXNS {
            units.push(unit_start..i + 1);
            unit_start = i + 1;
            txns = 0;
        }
    }
    if unit_start < groups.len() {
        units.push(unit_start..groups.len());
    }
    Some(Plan {
        order,
        groups,
        units,
        exhausted,
    })
}

/// How a partitioned block ended.
pub(crate) enum Partitioned {
    /// Resolved and applied to the state.
    Done {
        /// The outputs, in serial order, to hand over.
        outputs: Vec<TxnOutput>,
        /// Time spent in the in-order pass and applying (one thread).
        in_order: std::time::Duration,
    },
    /// Deferral could not reproduce the sequential result (a counter sum overflowed, a pool
    /// ran dry): nothing was applied; run the block with another executor.
    Abandoned,
    /// Transaction `at` (an index into the block) broke the partition: nothing was applied.
    Failed {
        /// The first violating transaction in serial order.
        at: usize,
        /// What it did.
        error: InvariantViolation,
    },
}

/// What one worker produced.
#[derive(Default)]
struct WorkerOutput {
    /// Outputs by transaction index (in the block).
    outputs: Vec<(u32, TxnOutput)>,
    /// Final attribute values of the customers it ran.
    rows: RowValues,
    /// The lowest violating transaction it met.
    failed: Option<(usize, InvariantViolation)>,
}

/// What the workers share during execution.
struct Shared<'a, 'e> {
    schema: &'a Schema,
    state: &'a State,
    block: &'a [Admitted<'e>],
    plan: &'a Plan,
    next_unit: AtomicUsize,
    /// A transaction needs eager execution: the block is being abandoned.
    abandon: AtomicBool,
}

/// Runs a planned block (see the module docs). `meanwhile` runs on the calling thread after
/// the helpers have started and before it joins them (the previous block's outbox).
pub(crate) fn run_block(
    set: &TriggerSet,
    schema: &Schema,
    state: &mut State,
    block: &[Admitted<'_>],
    plan: &Plan,
    helpers: Option<&Helpers>,
    meanwhile: impl FnOnce(),
) -> Partitioned {
    let shared = Shared {
        schema,
        state,
        block,
        plan,
        next_unit: AtomicUsize::new(0),
        abandon: AtomicBool::new(false),
    };
    let work = |set: &TriggerSet| shared.work(set);
    let results = match helpers {
        Some(helpers) => helpers.broadcast(set, work, meanwhile),
        None => {
            meanwhile();
            vec![work(set)]
        }
    };
    if shared.abandon.load(Relaxed) {
        return Partitioned::Abandoned;
    }
    let mut outputs: Vec<Option<TxnOutput>> = (0..block.len()).map(|_| None).collect();
    let mut rows = Vec::new();
    let mut failed: Option<(usize, InvariantViolation)> = None;
    for result in results {
        for (i, output) in result.outputs {
            if let Some(slot) = outputs.get_mut(i as usize) {
                *slot = Some(output);
            }
        }
        rows.push(result.rows);
        if let Some((at, error)) = result.failed {
            if failed.as_ref().is_none_or(|(first, _)| at < *first) {
                failed = Some((at, error));
            }
        }
    }
    if let Some((at, error)) = failed {
        return Partitioned::Failed { at, error };
    }
    // The in-order pass runs on this thread while a helper writes the rows (keeping the
    // values it replaces, to put back should the pass fail).
    let in_order = std::time::Instant::now();
    let State {
        customers,
        counters,
        pool_cursors,
    } = state;
    let mut applied: Result<RowValues, (Row, AttrId)> = Ok(Vec::new());
    let apply = || applied = apply_rows(customers, rows);
    let resolve = || resolve(set, counters, pool_cursors, block, outputs);
    let resolved = match helpers {
        Some(helpers) => helpers.alongside(apply, resolve),
        None => {
            apply();
            resolve()
        }
    };
    let undo = match applied {
        Ok(undo) => undo,
        Err((row, attr)) => {
            // Unreachable: every value was checked against its column when recorded.
            return Partitioned::Failed {
                at: 0,
                error: InvariantViolation(format!(
                    "a value for attribute {attr} of row {row} no longer fits its column"
                )),
            };
        }
    };
    let failed = match resolved {
        Ok(Some((outputs, new_counters, new_cursors))) => {
            *counters = new_counters;
            *pool_cursors = new_cursors;
            return Partitioned::Done {
                outputs,
                in_order: in_order.elapsed(),
            };
        }
        Ok(None) => Partitioned::Abandoned,
        Err((at, error)) => Partitioned::Failed { at, error },
    };
    undo_rows(customers, undo);
    failed
}

/// Attribute values by customer row.
type RowValues = Vec<(Row, AttrId, Value)>;

/// Writes every customer's final values; returns the values they replaced (or, with nothing
/// written, the first value that does not fit).
fn apply_rows(
    customers: &mut CustomerTable,
    rows: Vec<RowValues>,
) -> Result<RowValues, (Row, AttrId)> {
    let mut undo = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    for (row, attr, value) in rows.into_iter().flatten() {
        match customers.replace(row, attr, value) {
            Some(old) => undo.push((row, attr, old)),
            None => {
                undo_rows(customers, undo);
                return Err((row, attr));
            }
        }
    }
    Ok(undo)
}

/// Puts back the values [`apply_rows`] replaced.
fn undo_rows(customers: &mut CustomerTable, undo: RowValues) {
    for (row, attr, old) in undo.into_iter().rev() {
        customers.set(row, attr, old);
    }
}

/// Resolved outputs, counters and pool cursors of a block.
type Resolved = (Vec<TxnOutput>, Vec<Value>, Vec<u64>);

/// The in-order pass: fills coupon codes and resolves counter and cursor deltas against the
/// running values (starting from the committed `counters` and `cursors`), turning every delta into the value it
/// produced. `Ok(None)`: not reproducible with deferral; abandon the block.
fn resolve(
    set: &TriggerSet,
    counters: &[Value],
    cursors: &[u64],
    block: &[Admitted<'_>],
    outputs: Vec<Option<TxnOutput>>,
) -> Result<Option<Resolved>, (usize, InvariantViolation)> {
    let mut counters = counters.to_vec();
    let mut cursors = cursors.to_vec();
    let mut done = Vec::with_capacity(outputs.len());
    for (i, output) in outputs.into_iter().enumerate() {
        let Some(mut output) = output else {
            let id = block.get(i).map_or("?", |a| &*a.event.id);
            return Err((
                i,
                InvariantViolation(format!(
                    "event {id} finished a partitioned block without an output"
                )),
            ));
        };
        // Codes first: a transaction's takes start at the cursors before it.
        if fill_coupon_slots(set, &cursors, &mut output).is_err() {
            return Ok(None);
        }
        output.coupon_slots.clear();
        for (key, write) in &mut output.writes {
            let Write::Delta(delta) = write else {
                // Attribute values, checked when they were recorded.
                continue;
            };
            let value = match *key {
                Key::Counter(c) => {
                    let Some(current) = counters.get_mut(usize::from(c)) else {
                        return Ok(None);
                    };
                    let Ok(value) = delta.apply_to(current) else {
                        return Ok(None);
                    };
                    *current = value.clone();
                    value
                }
                Key::PoolCursor(p) => {
                    let Some(cursor) = cursors.get_mut(usize::from(p)) else {
                        return Ok(None);
                    };
                    let Ok(Value::Int(n)) = delta.apply_to(&Value::Int(*cursor as i64)) else {
                        return Ok(None);
                    };
                    let Ok(next) = u64::try_from(n) else {
                        return Ok(None);
                    };
                    *cursor = next;
                    Value::Int(n)
                }
                // Refused when recorded (`check_writes`).
                Key::Attr { .. } => return Ok(None),
            };
            *write = Write::Set(value);
        }
        done.push(output);
    }
    Ok(Some((done, counters, cursors)))
}

impl Shared<'_, '_> {
    /// Claims units until none are left; `set` is the block's trigger set or this worker's
    /// copy of it (see [`TriggerSet::with_fresh_names`]).
    fn work(&self, set: &TriggerSet) -> WorkerOutput {
        let mut out = WorkerOutput::default();
        let mut overlay: Vec<(AttrId, Value)> = Vec::new();
        loop {
            if self.abandon.load(Relaxed) {
                return out;
            }
            let u = self.next_unit.fetch_add(1, Relaxed);
            let Some(unit) = self.plan.units.get(u) else {
                return out;
            };
            for g in unit.clone() {
                let Some(range) = self.plan.groups.get(g) else {
                    continue;
                };
                let txns = &self.plan.order[range.start as usize..range.end as usize];
                if !self.run_group(set, txns, &mut overlay, &mut out) {
                    self.abandon.store(true, Relaxed);
                    return out;
                }
            }
        }
    }

    /// Runs one customer's transactions in order; `false` if the block must be abandoned.
    fn run_group(
        &self,
        set: &TriggerSet,
        txns: &[u32],
        overlay: &mut Vec<(AttrId, Value)>,
        out: &mut WorkerOutput,
    ) -> bool {
        overlay.clear();
        let Some(row) = txns
            .first()
            .and_then(|&t| self.block.get(t as usize))
            .map(|a| a.row)
        else {
            return true;
        };
        for &t in txns {
            let i = t as usize;
            let Some(admitted) = self.block.get(i) else {
                continue;
            };
            let mut view = RowView {
                state: self.state,
                row,
                overlay,
                exhausted: &self.plan.exhausted,
                stray: None,
            };
            let result = execute(set, self.schema, &mut view, admitted, ExecMode::Deferred);
            let stray = view.stray;
            let output = match (result, stray) {
                (Ok(output), _) => output,
                (Err(TxnError::Halted), Some(key)) => {
                    out.fail(
                        i,
                        format!(
                            "event {} read {key:?}, outside its customer partition",
                            admitted.event.id
                        ),
                    );
                    break;
                }
                (Err(_), _) => return false,
            };
            if let Err(message) = self.record_writes(row, &output, overlay) {
                out.fail(i, format!("event {} {message}", admitted.event.id));
                break;
            }
            out.outputs.push((t, output));
        }
        out.rows
            .extend(overlay.drain(..).map(|(attr, value)| (row, attr, value)));
        true
    }

    /// Checks a transaction's writes against its partition and records its attribute values
    /// in the customer's overlay.
    fn record_writes(
        &self,
        row: Row,
        output: &TxnOutput,
        overlay: &mut Vec<(AttrId, Value)>,
    ) -> Result<(), String> {
        for (key, write) in &output.writes {
            match (key, write) {
                (Key::Attr { row: r, attr }, Write::Set(value))
                    if *r == row && self.state.customers.accepts(*attr, value) => {}
                (Key::Counter(_) | Key::PoolCursor(_), Write::Delta(_)) => {}
                _ => return Err(format!("wrote {key:?} = {write:?}, outside its partition")),
            }
        }
        for (key, write) in &output.writes {
            if let (Key::Attr { attr, .. }, Write::Set(value)) = (key, write) {
                match overlay.iter_mut().find(|(a, _)| a == attr) {
                    Some((_, slot)) => *slot = value.clone(),
                    None => overlay.push((*attr, value.clone())),
                }
            }
        }
        Ok(())
    }
}

impl WorkerOutput {
    /// Notes a violation at transaction `at` (keeping the lowest).
    fn fail(&mut self, at: usize, message: String) {
        if self.failed.as_ref().is_none_or(|(first, _)| at < *first) {
            self.failed = Some((at, InvariantViolation(message)));
        }
    }
}

/// A partitionable transaction's window on the state: its own customer's row (the committed
/// values under this block's earlier writes to it) and the cursors of exhausted pools.
/// Anything else is refused and remembered as a stray read.
struct RowView<'a> {
    state: &'a State,
    row: Row,
    overlay: &'a [(AttrId, Value)],
    exhausted: &'a [bool],
    /// The first key read outside the partition (an engine bug if ever set).
    stray: Option<Key>,
}

impl RowView<'_> {
    fn exhausted(&self, pool: crate::trigger::PoolId) -> bool {
        self.exhausted
            .get(usize::from(pool))
            .copied()
            .unwrap_or(false)
    }
}

impl StateView for RowView<'_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        match key {
            Key::Attr { row, attr } if row == self.row => Ok(self
                .overlay
                .iter()
                .find(|(a, _)| *a == attr)
                .map_or_else(|| self.state.get(key), |(_, v)| v.clone())),
            Key::PoolCursor(p) if self.exhausted(p) => Ok(self.state.get(key)),
            _ => {
                self.stray.get_or_insert(key);
                Err(EvalError::Halt)
            }
        }
    }

    fn may_defer(&self, key: &Key) -> bool {
        match key {
            // Plain reads and writes on the customer's own row.
            Key::Attr { .. } => false,
            Key::Counter(_) => true,
            Key::PoolCursor(p) => !self.exhausted(*p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_triggers;
    use crate::customers::CustomerTable;
    use crate::event::Event;
    use crate::exec::parallel;
    use crate::exec::parallel::{ParallelConfig, ParallelStats, Workers};
    use crate::exec::test_support::{
        admitted, commit_of, customers, observed, sequential, Observed,
    };
    use crate::io::events::read_jsonl;

    /// `order`, `ping` and `vip` (chained) are partitionable: own row, blind counter
    /// increments, pass-through coupons (`tiny` runs dry under deferred takes). `visit` reads
    /// a counter; `stamp` stores a code from `tiny` (partitionable once `tiny` is exhausted).
    const TRIGGERS: &str = r#"
pools:
  - id: tiny
    codes: [T1, T2, T3, T4, T5]
  - id: big
    generate: { prefix: "B-", count: 1000, width: 4 }
counters:
  - id: orders
  - id: revenue
    kind: float
  - id: vips
triggers:
  - id: a-points
    owner: o
    on: order
    priority: 10
    limits: { max_points: 40 }
    actions:
      - award_points: { amount: "int(event.properties.total / 10.0)" }
      - increment: { counter: orders }
      - increment: { counter: revenue, by: "event.properties.total" }
  - id: b-coupon
    owner: o
    on: order
    priority: 20
    condition: "event.properties.total > 50.0 && !has(customer.last_coupon)"
    actions:
      - issue_coupon: { pool: big }
      - send_message: { channel: sms, template: t, args: { code: "coupon", points: "customer.points" } }
  - id: c-upgrade
    owner: o
    on: order
    priority: 30
    condition: "customer.points >= 30 && customer.tier != 'gold'"
    actions:
      - set: { attribute: tier, value: "'gold'" }
      - emit_event: { type: vip, properties: { points: "customer.points" } }
  - id: d-vip
    owner: o
    on: vip
    actions:
      - increment: { counter: vips }
      - issue_coupon: { pool: tiny }
      - start_feed: { feed: gold, args: { code: "coupon", p: "event.properties.points" } }
  - id: e-visit
    owner: o
    on: visit
    condition: "counters.orders > 3"
    actions:
      - send_message: { channel: push, template: busy, args: { total: "event.properties.total" } }
      - set: { attribute: spent, value: "event.properties.total * 1.0" }
  - id: f-ping
    owner: o
    on: ping
    condition: "customer.points < 5"
    actions:
      - increment: { attribute: points }
      - increment: { attribute: spent, by: "0.1" }
      - emit_event: { type: ping }
  - id: g-stamp
    owner: o
    on: stamp
    actions:
      - issue_coupon: { pool: tiny, store_in: last_coupon }
"#;

    /// `n` pseudo-random events over `customers` customers; `shared` in 0..=10 is how often
    /// (in tenths) an event is of a type that reads shared state.
    fn workload(seed: u64, n: usize, customers: u64, shared: u64) -> Vec<Event> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut jsonl = String::new();
        for i in 0..n {
            let customer = 1 + next() % customers;
            let (ty, props) = if next() % 10 < shared {
                match next() % 2 {
                    0 => ("visit", format!(r#"{{"total": {}}}"#, next() % 50)),
                    _ => ("stamp", "{}".to_string()),
                }
            } else {
                match next() % 10 {
                    0..=6 => ("order", format!(r#"{{"total": {}.5}}"#, next() % 120)),
                    7 => ("order", "{}".to_string()),
                    _ => ("ping", "{}".to_string()),
                }
            };
            jsonl += &format!(
                r#"{{"id":"e{i}","customer_id":{customer},"type":"{ty}","timestamp":"2026-03-01T12:00:00Z","properties":{props}}}"#
            );
            jsonl.push('\n');
        }
        read_jsonl(jsonl.as_bytes())
            .unwrap()
            .into_iter()
            .map(|r| r.event.unwrap())
            .collect()
    }

    fn fixture(customers_n: u64) -> (TriggerSet, CustomerTable) {
        let table = customers(customers_n);
        let set = compile_triggers(TRIGGERS, "t.yaml", Some(table.schema()))
            .unwrap_or_else(|e| panic!("{e}"));
        (set, table)
    }

    /// Runs `events` with the parallel executor (partitioning every block it can) and a
    /// classifier; the observed outputs, the stats, and the error if any.
    fn partitioned(
        set: &TriggerSet,
        table: &CustomerTable,
        events: &[Event],
        config: ParallelConfig,
        classifier: Classifier<'_>,
    ) -> (Observed, Result<ParallelStats, InvariantViolation>) {
        let mut state = State::new(table.clone(), set);
        let admitted = admitted(table, events);
        let mut commits = Vec::new();
        let workers = Workers::default();
        let result = parallel::run_classified(
            set,
            &mut state,
            &admitted,
            config,
            &workers,
            classifier,
            |a, out| commits.push(commit_of(a, out)),
        );
        (observed(commits, state), result)
    }

    #[test]
    fn equals_sequential_byte_for_byte_at_1_2_and_8_threads() {
        let mut stats = ParallelStats::default();
        for (customers_n, events_n) in [(1, 60), (3, 120), (8, 200), (200, 400)] {
            let (set, table) = fixture(customers_n);
            for seed in 0..4 {
                for shared in [0, 1, 5] {
                    let events = workload(seed, events_n, customers_n, shared);
                    let expected = sequential(&set, &table, &events);
                    for block in [1, 3, 16, 64] {
                        for threads in [1, 2, 8] {
                            let config = ParallelConfig::always_partitioned(threads, block);
                            let (got, result) =
                                partitioned(&set, &table, &events, config, Classifier::new(&set));
                            stats.add(&result.unwrap());
                            assert_eq!(
                                got, expected,
                                "customers={customers_n} seed={seed} shared={shared} \
                                 block={block} threads={threads}"
                            );
                        }
                    }
                }
            }
        }
        // The cases above go through every path.
        assert!(stats.partitioned_blocks > 0, "{stats:?}");
        assert!(
            stats.parallel_blocks > 0,
            "shared blocks speculate: {stats:?}"
        );
        assert!(
            stats.partition_fallbacks > 0,
            "tiny runs dry under deferred takes: {stats:?}"
        );
    }

    #[test]
    fn blocks_that_read_shared_state_are_not_partitioned() {
        let (set, table) = fixture(10);
        let mut state = State::new(table.clone(), &set);
        let mut classifier = Classifier::new(&set);
        let orders = workload(1, 50, 10, 0);
        let with_visit = [orders.clone(), workload(2, 200, 10, 10)].concat();
        let stamps_only: Vec<Event> = with_visit
            .iter()
            .filter(|e| &*e.event_type != "visit")
            .cloned()
            .collect();
        let plan_of = |classifier: &mut Classifier<'_>, state: &State, events: &[Event]| {
            let admitted = admitted(&table, events);
            plan(classifier, &set, state, &admitted, 2, false).is_some()
        };
        assert!(plan_of(&mut classifier, &state, &orders));
        assert!(
            !plan_of(&mut classifier, &state, &with_visit),
            "a counter read"
        );
        assert!(
            !plan_of(&mut classifier, &state, &stamps_only),
            "a stored code from a live pool"
        );
        state.pool_cursors[0] = 5;
        assert!(
            plan_of(&mut classifier, &state, &stamps_only),
            "tiny is exhausted: its cursor can no longer change"
        );
        // Adaptive: one customer leaves nothing to run in parallel.
        let one = workload(3, 100, 1, 0);
        let admitted = admitted(&table, &one);
        assert!(plan(&mut classifier, &set, &state, &admitted, 2, true).is_none());
        assert!(plan(&mut classifier, &set, &state, &admitted, 2, false).is_some());
    }

    #[test]
    fn plans_group_each_customer_in_serial_order_biggest_first() {
        let (set, table) = fixture(50);
        let events = workload(4, 500, 50, 0);
        let admitted = admitted(&table, &events);
        let state = State::new(table.clone(), &set);
        let plan = plan(
            &mut Classifier::new(&set),
            &set,
            &state,
            &admitted,
            2,
            false,
        )
        .unwrap();
        let mut seen = vec![false; admitted.len()];
        let mut last_len = usize::MAX;
        for g in &plan.groups {
            assert!(g.len() <= last_len, "biggest first");
            last_len = g.len();
            let txns = &plan.order[g.start as usize..g.end as usize];
            assert!(txns.windows(2).all(|w| w[0] < w[1]), "serial order");
            let row = admitted[txns[0] as usize].row;
            for &t in txns {
                assert_eq!(admitted[t as usize].row, row, "one customer per group");
                assert!(!std::mem::replace(&mut seen[t as usize], true), "once");
            }
        }
        assert!(seen.iter().all(|&s| s), "every transaction planned");
        let units: Vec<usize> = plan.units.iter().flat_map(|u| u.clone()).collect();
        assert_eq!(units, (0..plan.groups.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_wrong_classification_is_caught_and_commits_exactly_the_prefix() {
        let (set, table) = fixture(8);
        // Partitionable events, then some that read a counter (`visit`).
        let events = [workload(5, 90, 8, 0), workload(6, 60, 8, 5)].concat();
        let events: Vec<Event> = events
            .into_iter()
            .filter(|e| &*e.event_type != "stamp")
            .enumerate()
            .map(|(i, mut e)| {
                e.id = format!("e{i}").into();
                e
            })
            .collect();
        let broken = events
            .iter()
            .position(|e| &*e.event_type == "visit")
            .unwrap();
        let expected = sequential(&set, &table, &events[..broken]);
        for threads in [1, 2, 8] {
            for block in [7, 64, 1000] {
                let config = ParallelConfig::always_partitioned(threads, block);
                let (got, result) = partitioned(
                    &set,
                    &table,
                    &events,
                    config,
                    Classifier::everything_partitionable(&set),
                );
                let err = result.unwrap_err();
                let id = &events[broken].id;
                assert!(
                    err.0.contains(&format!("event {id} read ")),
                    "threads={threads} block={block}: {err}"
                );
                assert_eq!(got, expected, "threads={threads} block={block}");
            }
        }
        // The right classification runs the same events to the end.
        let (got, result) = partitioned(
            &set,
            &table,
            &events,
            ParallelConfig::always_partitioned(2, 64),
            Classifier::new(&set),
        );
        assert!(result.is_ok());
        assert_eq!(got, sequential(&set, &table, &events));
    }

    #[test]
    fn the_view_refuses_everything_outside_the_partition() {
        let (set, table) = fixture(2);
        let state = State::new(table, &set);
        let overlay = [(0, Value::Int(41))];
        let mut view = RowView {
            state: &state,
            row: 1,
            overlay: &overlay,
            exhausted: &[true, false],
            stray: None,
        };
        assert_eq!(view.read(Key::Attr { row: 1, attr: 0 }), Ok(Value::Int(41)));
        assert_eq!(view.read(Key::Attr { row: 1, attr: 1 }), Ok(Value::Null));
        assert_eq!(view.read(Key::PoolCursor(0)), Ok(Value::Int(0)));
        assert_eq!(
            view.read(Key::Attr { row: 0, attr: 0 }),
            Err(EvalError::Halt)
        );
        assert_eq!(view.read(Key::Counter(0)), Err(EvalError::Halt));
        assert_eq!(view.read(Key::PoolCursor(1)), Err(EvalError::Halt));
        assert_eq!(view.stray, Some(Key::Attr { row: 0, attr: 0 }));
        assert!(!view.may_defer(&Key::Attr { row: 1, attr: 0 }));
        assert!(view.may_defer(&Key::Counter(0)));
        assert!(!view.may_defer(&Key::PoolCursor(0)) && view.may_defer(&Key::PoolCursor(1)));
    }
}
