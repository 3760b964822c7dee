//! The default parallel executor: partitioned by customer where no conflict is possible,
//! optimistic (Block-STM) elsewhere.
//!
//! Admitted events are cut into blocks. A block whose transactions only touch their own
//! customer's row, add blindly to counters and pass coupon codes through (no transaction reads
//! shared state) runs **partitioned** (see [`super::partition`]): whole customers per worker,
//! plain reads and writes, deltas and coupon slots resolved in one in-order pass — nothing to
//! speculate, validate or re-execute. Every other block runs with Block-STM or sequentially,
//! as follows.
//!
//! Within a speculated block, worker threads execute transactions
//! speculatively and out of order against a [`MvMemory`], record what each read, validate
//! those reads after lower transactions finish, and re-execute on conflict, as directed by the
//! [`Scheduler`]. A reader that meets an ESTIMATE waits for that writer (a dependency) instead
//! of computing on a value that is about to change. When the block is done, the committer
//! walks it **in order**: it resolves deferred writes against the committed state, applies the
//! writes and hands each transaction's effects and outcomes to the caller exactly once (the
//! outbox). Only the final incarnation of a transaction is ever committed, so a re-executed
//! trigger never sends twice.
//!
//! The outbox is pipelined: committing a block only resolves and applies its writes (the
//! next block reads them); handing its effects and outcomes to the caller happens on the
//! calling thread *while the next block speculates* on the other workers. Delivery order is
//! still the serial order: a block's outbox is always delivered before anything of a later
//! block.
//!
//! Executions run in [`ExecMode::Deferred`]: increments are commutative deltas and
//! pass-through coupon takes are slots, so triggers that only add to a hot counter or take
//! codes from one pool do not conflict (Aptos aggregators / delayed fields).
//!
//! ## When it does not run in parallel
//! - a block is partitioned only with `partition` on (the default), at least two threads (or
//!   `adaptive` off), at least `min_partition_block` events (2048 by default: live
//!   micro-batches are too small to gain), when none of its transactions may read a counter or a live pool cursor,
//!   and — with `adaptive` on — when its customers are spread enough to gain from it (the
//!   longest customer chain or the even share per thread, whichever is longer, is at most
//!   1/1.25 of the block). If its deferred writes cannot be resolved (a counter sum
//!   overflows, a pool runs dry), it is run as below instead, from the state before it;
//! - with `self_tuning` on (the default), each block speculates or runs sequentially,
//!   whichever has been measured faster per transaction on this workload, probing the other
//!   mode now and then (see [`super::tuner`]): on cheap, memory-bound triggers and two cores
//!   speculation does not pay, and the executor should then be as fast as the sequential one;
//! - blocks smaller than `min_parallel_block` (a few per thread) run sequentially — the
//!   speculation machinery costs more than it saves there (as pevm does);
//! - with `adaptive` on, a block that meets more aborts and dependency waits than an eighth
//!   of its length (at least 64) is abandoned on the spot and run sequentially — a fully
//!   dependent chain is detected after a few dozen transactions, not after speculating all of
//!   them; that block, or one whose transactions were executed more than
//!   `REEXEC_RATIO_LIMIT` times on average, sends the next blocks to the sequential
//!   executor, with exponential back-off before trying parallel again (as grevm does on
//!   dependent chains);
//! - if a deferred write cannot be resolved even eagerly (an integer overflow), the block is
//!   discarded and run sequentially.
//!
//! ## Why the result equals the sequential one
//! Validation is by value: an execution is a deterministic function of the values it read,
//! and a block is done only when every transaction's reads were validated after all lower
//! transactions reached their final incarnation. At commit, outputs are resolved against the
//! truly committed state; should resolution fail (a pool running dry under deferred takes),
//! that transaction is re-executed eagerly against the committed state — the sequential
//! semantics — and every later transaction of the block is revalidated against the committed
//! state before it commits. Property tests compare this executor with the sequential one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crossbeam::utils::Backoff;

use super::commit::commit;
use super::mvmemory::{MvMemory, ReadError, TxnIdx};
use super::partition::{self, Classifier, Partitioned};
use super::scheduler::{Incarnation, Scheduler, Task};
use super::sequential::{self, InvariantViolation};
use super::tuner::{Mode, Tuner};
use super::txn::{execute, ExecMode, TxnError, TxnOutput};
use super::Admitted;
use crate::customers::Schema;
use crate::expr::EvalError;
use crate::state::{CommittedView, Key, State, StateView};
use crate::trigger::TriggerSet;
use crate::value::Value;

/// Average executions per transaction above which a block counts as contended.
pub const REEXEC_RATIO_LIMIT: f64 = 1.5;

/// Tuning of the parallel executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParallelConfig {
    /// Worker threads (the calling thread is one of them).
    pub threads: usize,
    /// Transactions per block.
    pub block_size: usize,
    /// Blocks smaller than this run sequentially.
    pub min_parallel_block: usize,
    /// Switch to sequential for a while after a contended block.
    pub adaptive: bool,
    /// Choose between speculating and sequential block by block, by measured throughput
    /// (see [`super::tuner`]).
    pub self_tuning: bool,
    /// Run blocks in which no transaction reads shared state partitioned by customer (see
    /// [`super::partition`]).
    pub partition: bool,
    /// Blocks smaller than this are never partitioned: each partitioned block is handed to
    /// the helper threads and back twice, which a small block does not earn back, and a live
    /// engine's micro-batches (at most 1024 events by default) run beside the async
    /// runtime's and the answer thread's threads. With partitioning from 16 events, the live
    /// bench's closed loop at 100k customers fell to 122k–175k events/s (it had measured
    /// 169k–214k before); `fusebox run`'s 4096-event blocks gain from it.
    pub min_partition_block: usize,
}

impl ParallelConfig {
    /// Defaults for `threads` workers.
    pub fn with_threads(threads: usize) -> ParallelConfig {
        let threads = threads.max(1);
        ParallelConfig {
            threads,
            block_size: 4096,
            min_parallel_block: 8 * threads,
            adaptive: true,
            self_tuning: true,
            partition: true,
            min_partition_block: 2048,
        }
    }

    /// Always speculate (no fallbacks): for tests that must exercise the parallel machinery.
    pub fn always_parallel(threads: usize, block_size: usize) -> ParallelConfig {
        ParallelConfig {
            threads: threads.max(1),
            block_size: block_size.max(1),
            min_parallel_block: 0,
            adaptive: false,
            self_tuning: false,
            partition: false,
            min_partition_block: 0,
        }
    }

    /// Partition every block that can be (even at one thread, even with few customers),
    /// speculate the others (no fallbacks): for tests of the partitioned path.
    pub fn always_partitioned(threads: usize, block_size: usize) -> ParallelConfig {
        ParallelConfig {
            partition: true,
            ..ParallelConfig::always_parallel(threads, block_size)
        }
    }
}

/// What the parallel executor did (for tests, benchmarks and timings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParallelStats {
    /// Blocks executed speculatively.
    pub parallel_blocks: u64,
    /// Blocks executed partitioned by customer.
    pub partitioned_blocks: u64,
    /// Partitioned blocks whose deferred writes could not be resolved, run again as if
    /// never partitioned (counted there too).
    pub partition_fallbacks: u64,
    /// Blocks run by the sequential executor (small, contended or fallen back).
    pub sequential_blocks: u64,
    /// Transaction executions, all incarnations, in speculated blocks (including blocks given
    /// up as too contended, whose executions were spent before falling back).
    pub executions: u64,
    /// Validations.
    pub validations: u64,
    /// Incarnations aborted by a failed validation.
    pub aborts: u64,
    /// Reads that hit an ESTIMATE and waited for the writer.
    pub dependency_waits: u64,
    /// Transactions re-executed eagerly by the committer.
    pub commit_reexecutions: u64,
    /// Wall time spent speculating or executing partitioned blocks (all workers busy), in
    /// microseconds.
    pub speculate_us: u64,
    /// Wall time spent committing in order (one thread; for partitioned blocks, the in-order
    /// pass and applying the block), in microseconds.
    pub commit_us: u64,
}

impl ParallelStats {
    /// Adds `other`'s counts to these (the stats of a stream are the sum of its batches').
    pub fn add(&mut self, other: &ParallelStats) {
        self.parallel_blocks += other.parallel_blocks;
        self.partitioned_blocks += other.partitioned_blocks;
        self.partition_fallbacks += other.partition_fallbacks;
        self.sequential_blocks += other.sequential_blocks;
        self.executions += other.executions;
        self.validations += other.validations;
        self.aborts += other.aborts;
        self.dependency_waits += other.dependency_waits;
        self.commit_reexecutions += other.commit_reexecutions;
        self.speculate_us += other.speculate_us;
        self.commit_us += other.commit_us;
    }
}

/// What the parallel executor keeps from one batch to the next: its worker threads (started
/// on the first batch that speculates) and what it has learnt about the workload (the
/// tuner's measurements, the contention back-off). Owned by the engine, so a live engine
/// running a micro-batch every few milliseconds neither starts threads per batch nor
/// forgets its measurements.
#[derive(Default)]
pub(crate) struct Workers {
    helpers: std::sync::OnceLock<Option<Helpers>>,
    learnt: Mutex<Learnt>,
}

/// The adaptive state carried across batches.
#[derive(Clone, Default)]
struct Learnt {
    tuner: Tuner,
    sequential_left: usize,
    backoff: usize,
}

/// Runs `events` in order (partitioned, with Block-STM or sequentially, block by block),
/// calling `on_commit` in serial order.
///
/// On an error, `on_commit` has seen exactly the transactions the sequential executor would
/// have committed before the failing one.
pub(crate) fn run(
    set: &TriggerSet,
    state: &mut State,
    events: &[Admitted<'_>],
    config: ParallelConfig,
    workers: &Workers,
    on_commit: impl FnMut(&Admitted<'_>, TxnOutput),
) -> Result<ParallelStats, InvariantViolation> {
    let classifier = Classifier::new(set);
    run_classified(set, state, events, config, workers, classifier, on_commit)
}

/// [`run`] with a given classifier (tests use one that is wrong on purpose).
pub(super) fn run_classified(
    set: &TriggerSet,
    state: &mut State,
    events: &[Admitted<'_>],
    config: ParallelConfig,
    workers: &Workers,
    mut classifier: Classifier<'_>,
    mut on_commit: impl FnMut(&Admitted<'_>, TxnOutput),
) -> Result<ParallelStats, InvariantViolation> {
    let schema = state.customers.schema().clone();
    let mut stats = ParallelStats::default();
    // Taken out for the batch and put back after, so concurrent batches on one engine do not
    // wait on each other for it (each then continues from what the other learnt before).
    let learnt = workers
        .learnt
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let Learnt {
        mut tuner,
        mut sequential_left,
        mut backoff,
    } = learnt;
    backoff = backoff.max(2);
    // The outbox: a committed block whose effects and outcomes are not yet handed to
    // `on_commit`. They are delivered by the calling thread while the next block speculates,
    // so reporting overlaps with speculation instead of extending the serial commit.
    let mut outbox = Outbox::default();
    for block in events.chunks(config.block_size.max(1)) {
        let partition = config.partition
            && block.len() >= config.min_parallel_block.max(config.min_partition_block)
            && !(config.threads <= 1 && config.adaptive);
        let plan = partition
            .then(|| {
                partition::plan(
                    &mut classifier,
                    set,
                    state,
                    block,
                    config.threads,
                    config.adaptive,
                )
            })
            .flatten();
        if let Some(plan) = plan {
            let helpers = workers
                .helpers
                .get_or_init(|| Helpers::start(set, config.threads));
            let started = std::time::Instant::now();
            let pending = std::mem::take(&mut outbox);
            let ran =
                partition::run_block(set, &schema, state, block, &plan, helpers.as_ref(), || {
                    pending.deliver(&mut on_commit)
                });
            let elapsed = started.elapsed();
            match ran {
                Partitioned::Done { outputs, in_order } => {
                    stats.partitioned_blocks += 1;
                    stats.speculate_us += elapsed.saturating_sub(in_order).as_micros() as u64;
                    stats.commit_us += in_order.as_micros() as u64;
                    outbox = Outbox {
                        events: block,
                        outputs,
                    };
                    continue;
                }
                Partitioned::Abandoned => {
                    stats.partition_fallbacks += 1;
                    stats.speculate_us += elapsed.as_micros() as u64;
                }
                Partitioned::Failed { at, error } => {
                    // Commit exactly the transactions before the failing one, then report.
                    sequential::run(set, state, &block[..at.min(block.len())], &mut on_commit)?;
                    return Err(error);
                }
            }
        }
        let forced_sequential = config.threads <= 1 && config.adaptive
            || block.len() < config.min_parallel_block
            || sequential_left > 0;
        let mode = if forced_sequential {
            Mode::Sequential
        } else if config.self_tuning {
            tuner.next_mode()
        } else {
            Mode::Speculate
        };
        if mode == Mode::Sequential {
            sequential_left = sequential_left.saturating_sub(1);
            stats.sequential_blocks += 1;
            std::mem::take(&mut outbox).deliver(&mut on_commit);
            let started = std::time::Instant::now();
            sequential::run(set, state, block, &mut on_commit)?;
            tuner.record(Mode::Sequential, block.len(), started.elapsed());
            continue;
        }
        // Started when the first block is speculated, so small batches never start threads.
        let helpers = workers
            .helpers
            .get_or_init(|| Helpers::start(set, config.threads));
        let block_started = std::time::Instant::now();
        let pending = std::mem::take(&mut outbox);
        let speculated = run_block(set, &schema, state, block, config, helpers.as_ref(), || {
            pending.deliver(&mut on_commit)
        });
        stats.speculate_us += block_started.elapsed().as_micros() as u64;
        let counters = match speculated {
            Speculation::Done(outputs, counters) => {
                let started = std::time::Instant::now();
                stats.parallel_blocks += 1;
                let (committed, reexecuted) =
                    commit_block(set, &schema, state, block, outputs, helpers.as_ref())?;
                stats.commit_reexecutions += reexecuted;
                outbox = committed;
                stats.commit_us += started.elapsed().as_micros() as u64;
                tuner.record(Mode::Speculate, block.len(), block_started.elapsed());
                counters
            }
            Speculation::Abandoned(counters) => {
                stats.sequential_blocks += 1;
                sequential::run(set, state, block, &mut on_commit)?;
                counters
            }
        };
        stats.executions += counters.executions.load(Relaxed);
        stats.validations += counters.validations.load(Relaxed);
        stats.aborts += counters.aborts.load(Relaxed);
        stats.dependency_waits += counters.waits.load(Relaxed);
        if config.adaptive {
            let ratio = counters.executions.load(Relaxed) as f64 / block.len() as f64;
            if counters.contended.load(Relaxed) || ratio > REEXEC_RATIO_LIMIT {
                sequential_left = backoff;
                backoff = (backoff * 2).min(64);
            } else {
                backoff = 2;
            }
        }
    }
    outbox.deliver(&mut on_commit);
    *workers.learnt.lock().unwrap_or_else(|p| p.into_inner()) = Learnt {
        tuner,
        sequential_left,
        backoff,
    };
    Ok(stats)
}

/// The helper workers of a run (the calling thread is a worker too).
///
/// Persistent threads for the whole run: a thread per block would start with a fresh
/// allocator heap and fault in new pages every block. A dedicated pool, not the global one,
/// so Polars' and the embedder's Rayon work never interleave with speculation (nested waits
/// there are how pools deadlock). Each helper executes with its own copy of the trigger
/// names (see [`TriggerSet::with_fresh_names`]).
pub(crate) struct Helpers {
    pool: rayon::ThreadPool,
    sets: Vec<TriggerSet>,
}

impl Helpers {
    /// Runs `side` on a helper while the calling thread runs `main`; returns `main`'s result
    /// when both are done.
    pub(crate) fn alongside<R>(&self, side: impl FnOnce() + Send, main: impl FnOnce() -> R) -> R {
        self.pool.in_place_scope(|scope| {
            scope.spawn(move |_| side());
            main()
        })
    }

    /// Runs `work` once on every helper (each with its own copy of the trigger set) and once
    /// on the calling thread, after `meanwhile`; returns their results, the calling thread's
    /// last. Returns when all are done.
    pub(crate) fn broadcast<R: Send>(
        &self,
        set: &TriggerSet,
        work: impl Fn(&TriggerSet) -> R + Sync,
        meanwhile: impl FnOnce(),
    ) -> Vec<R> {
        let slots: Vec<Mutex<Option<R>>> = self.sets.iter().map(|_| Mutex::new(None)).collect();
        let mine = self.pool.in_place_scope(|scope| {
            for (worker_set, slot) in self.sets.iter().zip(&slots) {
                let work = &work;
                scope.spawn(move |_| {
                    let result = work(worker_set);
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                });
            }
            meanwhile();
            work(set)
        });
        let mut results: Vec<R> = slots
            .into_iter()
            .filter_map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect();
        results.push(mine);
        results
    }

    /// `None` when `threads` is 1 or no thread could be started (then the calling thread
    /// speculates alone, which is still correct).
    fn start(set: &TriggerSet, threads: usize) -> Option<Helpers> {
        if threads <= 1 {
            return None;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads - 1)
            .thread_name(|i| format!("fusebox-stm-{i}"))
            .build()
            .ok()?;
        Some(Helpers {
            pool,
            sets: (1..threads).map(|_| set.with_fresh_names()).collect(),
        })
    }
}

/// Committed transactions of one block, in serial order, not yet handed to the caller.
#[derive(Default)]
struct Outbox<'e, 'a> {
    events: &'e [Admitted<'a>],
    outputs: Vec<TxnOutput>,
}

impl Outbox<'_, '_> {
    /// Hands every committed output to `on_commit`, in serial order, exactly once.
    fn deliver(self, on_commit: &mut impl FnMut(&Admitted<'_>, TxnOutput)) {
        for (admitted, output) in self.events.iter().zip(self.outputs) {
            on_commit(admitted, output);
        }
    }
}

/// How a block's speculation ended.
enum Speculation {
    /// Every transaction executed and validated: commit the outputs in order.
    Done(Vec<Slot>, Counters),
    /// Given up (too contended, or a write no executor mode could defer): run the block
    /// sequentially. Nothing of it has been committed.
    Abandoned(Counters),
}

#[derive(Default)]
struct Counters {
    executions: AtomicU64,
    validations: AtomicU64,
    aborts: AtomicU64,
    waits: AtomicU64,
    /// Aborts and waits passed the block's contention limit.
    contended: AtomicBool,
}

type Slot = Mutex<Option<(TxnOutput, Vec<(Key, Value)>)>>;

struct Block<'a> {
    schema: &'a Schema,
    storage: &'a State,
    events: &'a [Admitted<'a>],
    mv: MvMemory,
    sched: Scheduler,
    outputs: Vec<Slot>,
    /// Pools too close to empty for deferred takes in this block.
    eager_pools: Vec<bool>,
    poisoned: AtomicBool,
    /// Aborts plus dependency waits after which the block is abandoned to the sequential
    /// executor (adaptive mode): a contended block is detected after a few dozen
    /// transactions instead of after speculating all of it.
    contention_limit: u64,
    counters: Counters,
}

/// Executes one block speculatively. `meanwhile` runs on the calling thread after the other
/// workers have started and before it joins them (the previous block's outbox).
fn run_block(
    set: &TriggerSet,
    schema: &Schema,
    storage: &State,
    events: &[Admitted<'_>],
    config: ParallelConfig,
    helpers: Option<&Helpers>,
    meanwhile: impl FnOnce(),
) -> Speculation {
    let len = events.len();
    let eager_pools = set
        .pools
        .iter()
        .zip(&storage.pool_cursors)
        // Deferred takes are resolved at commit; keep them well away from the pool's end so
        // they (almost) never fail there.
        .map(|(pool, &cursor)| pool.len().saturating_sub(cursor) < 4 * len as u64 + 64)
        .collect();
    let block = Block {
        schema,
        storage,
        events,
        mv: MvMemory::new(len),
        sched: Scheduler::new(len),
        outputs: (0..len).map(|_| Mutex::new(None)).collect(),
        eager_pools,
        poisoned: AtomicBool::new(false),
        contention_limit: if config.adaptive {
            (len as u64 / 8).max(64)
        } else {
            u64::MAX
        },
        counters: Counters::default(),
    };
    match helpers {
        Some(helpers) => helpers.pool.in_place_scope(|scope| {
            for worker_set in &helpers.sets {
                let block = &block;
                scope.spawn(move |_| block.work(worker_set));
            }
            meanwhile();
            block.work(set);
        }),
        None => {
            meanwhile();
            block.work(set)
        }
    }
    let Block {
        mv,
        outputs,
        counters,
        poisoned,
        ..
    } = block;
    // Freeing the multi-version memory is pure overhead: do it off the critical path.
    free_off_path(helpers, mv);
    if poisoned.load(Relaxed) {
        return Speculation::Abandoned(counters);
    }
    Speculation::Done(outputs, counters)
}

impl Block<'_> {
    /// Runs tasks until the block is done. `set` is the block's trigger set or a copy of it
    /// with this worker's own names (see [`TriggerSet::with_fresh_names`]).
    fn work(&self, set: &TriggerSet) {
        let backoff = Backoff::new();
        let mut task: Option<Task> = None;
        while !self.sched.done() && !self.poisoned.load(Relaxed) {
            task = match task.take().or_else(|| self.sched.next_task()) {
                Some(Task::Execute((txn, inc))) => {
                    backoff.reset();
                    self.execute(set, txn, inc)
                }
                Some(Task::Validate((txn, inc))) => {
                    backoff.reset();
                    self.validate(txn, inc)
                }
                None => {
                    backoff.snooze();
                    None
                }
            };
        }
    }

    fn execute(&self, set: &TriggerSet, txn: TxnIdx, incarnation: Incarnation) -> Option<Task> {
        let admitted = &self.events[txn];
        let mut mode = ExecMode::Deferred;
        loop {
            let mut view = MvView {
                block: self,
                txn,
                reads: Vec::new(),
                blocked_on: None,
                unresolvable: false,
            };
            let result = execute(set, self.schema, &mut view, admitted, mode);
            self.counters.executions.fetch_add(1, Relaxed);
            match result {
                Ok(output) => {
                    let wrote_new_key = self.mv.record(txn, &output.writes);
                    *self.outputs[txn].lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((output, view.reads));
                    return self.sched.finish_execution(txn, incarnation, wrote_new_key);
                }
                Err(TxnError::Halted) if view.blocked_on.is_some() => {
                    self.counters.waits.fetch_add(1, Relaxed);
                    self.check_contention();
                    let blocking = view.blocked_on.unwrap_or(txn);
                    if self.sched.add_dependency(txn, blocking) {
                        return None;
                    }
                }
                Err(TxnError::NeedsEager) | Err(TxnError::Halted) if mode == ExecMode::Deferred => {
                    mode = ExecMode::Eager
                }
                Err(_) => {
                    self.poisoned.store(true, Relaxed);
                    return None;
                }
            }
        }
    }

    /// Abandons the block once it proves too contended to be worth speculating.
    fn check_contention(&self) {
        let seen = self.counters.aborts.load(Relaxed) + self.counters.waits.load(Relaxed);
        if seen >= self.contention_limit {
            self.counters.contended.store(true, Relaxed);
            self.poisoned.store(true, Relaxed);
        }
    }

    fn validate(&self, txn: TxnIdx, incarnation: Incarnation) -> Option<Task> {
        self.counters.validations.fetch_add(1, Relaxed);
        let valid = match &*self.outputs[txn].lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, reads)) => self.mv.validate(txn, reads, self.storage),
            None => false,
        };
        let aborted = !valid && self.sched.try_validation_abort(txn, incarnation);
        if aborted {
            self.counters.aborts.fetch_add(1, Relaxed);
            self.check_contention();
            self.mv.convert_writes_to_estimates(txn);
        }
        self.sched.finish_validation(txn, aborted)
    }
}

/// A transaction's window on the block: multi-version reads, recorded for validation.
struct MvView<'b, 'a> {
    block: &'b Block<'a>,
    txn: TxnIdx,
    reads: Vec<(Key, Value)>,
    blocked_on: Option<TxnIdx>,
    unresolvable: bool,
}

impl StateView for MvView<'_, '_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        match self.block.mv.read(key, self.txn, self.block.storage) {
            Ok(v) => {
                self.reads.push((key, v.clone()));
                Ok(v)
            }
            Err(ReadError::Dependency(writer)) => {
                self.blocked_on = Some(writer);
                Err(EvalError::Halt)
            }
            Err(ReadError::Unresolvable) => {
                self.unresolvable = true;
                Err(EvalError::Halt)
            }
        }
    }

    fn may_defer(&self, key: &Key) -> bool {
        match key {
            Key::PoolCursor(p) => !self
                .block
                .eager_pools
                .get(usize::from(*p))
                .copied()
                .unwrap_or(true),
            _ => true,
        }
    }
}

/// Drops `garbage` on the helper pool (never Rayon's global pool, which the executor does not
/// use), or right here when there is none.
fn free_off_path<T: Send + 'static>(helpers: Option<&Helpers>, garbage: T) {
    match helpers {
        Some(helpers) => helpers.pool.spawn(move || drop(garbage)),
        None => drop(garbage),
    }
}

/// Commits a finished block in order: resolves and applies every transaction's writes and
/// returns the final outputs (the outbox) and how many transactions had to be re-executed.
fn commit_block<'e, 'a>(
    set: &TriggerSet,
    schema: &Schema,
    state: &mut State,
    events: &'e [Admitted<'a>],
    outputs: Vec<Slot>,
    helpers: Option<&Helpers>,
) -> Result<(Outbox<'e, 'a>, u64), InvariantViolation> {
    let mut dirty = false;
    let mut reexecuted = 0;
    let mut committed = Vec::with_capacity(events.len());
    let mut read_sets = Vec::with_capacity(events.len());
    for (admitted, slot) in events.iter().zip(outputs) {
        let taken = slot.into_inner().unwrap_or_else(|p| p.into_inner());
        let (mut output, reads) = taken.ok_or_else(|| {
            InvariantViolation(format!(
                "event {} finished the block without an output",
                admitted.event.id
            ))
        })?;
        let stale = dirty && !reads.iter().all(|(k, v)| state.get(*k).identical(v));
        if stale || commit(set, state, &mut output).is_err() {
            reexecuted += 1;
            dirty = true;
            output = execute(
                set,
                schema,
                &mut CommittedView(state),
                admitted,
                ExecMode::Eager,
            )
            .map_err(|e| {
                InvariantViolation(format!(
                    "eager re-execution of {} failed: {e:?}",
                    admitted.event.id
                ))
            })?;
            commit(set, state, &mut output).map_err(|_| {
                InvariantViolation(format!(
                    "eager output of {} did not commit",
                    admitted.event.id
                ))
            })?;
        }
        committed.push(output);
        read_sets.push(reads);
    }
    // Read sets are garbage now; freeing them is not the committer's job.
    free_off_path(helpers, read_sets);
    Ok((
        Outbox {
            events,
            outputs: committed,
        },
        reexecuted,
    ))
}
