//! The Block-STM collaborative scheduler: which transaction to execute or validate next.
//!
//! Two atomic counters, `execution_idx` and `validation_idx`, sweep the block; a worker takes
//! the lower of the two tasks. Aborts and re-executions move the counters back
//! (`decrease_*`), and `decrease_cnt` lets [`Scheduler::done`] detect a quiescent state
//! without a lock. Each transaction has a status `(incarnation, ReadyToExecute | Executing |
//! Executed | Aborting)` and a list of transactions waiting on it (dependencies from
//! ESTIMATE reads).
//!
//! Invariants:
//! - a transaction's incarnation only grows, and only a `ReadyToExecute` status can be turned
//!   into `Executing` — so one incarnation is executed by exactly one worker;
//! - every task handed out is counted in `active_tasks` until it finishes or is handed on as a
//!   follow-up task, so "both counters past the end, no active task, no decrease since we
//!   looked" really means nothing is left to do;
//! - after any (re-)execution of `i` that wrote a new key, or any abort of `i`, every
//!   transaction above `i` is validated again before the block is done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

use super::mvmemory::TxnIdx;

/// An incarnation number.
pub type Incarnation = u32;

/// A transaction at a given incarnation.
pub type Version = (TxnIdx, Incarnation);

/// Work for a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Execute this incarnation.
    Execute(Version),
    /// Validate this incarnation's reads.
    Validate(Version),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

/// The scheduler of one block.
pub struct Scheduler {
    len: usize,
    execution_idx: AtomicUsize,
    validation_idx: AtomicUsize,
    decrease_cnt: AtomicUsize,
    active_tasks: AtomicUsize,
    done: AtomicBool,
    status: Vec<Mutex<(Incarnation, Status)>>,
    dependents: Vec<Mutex<Vec<TxnIdx>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a worker panicked; the block result is discarded by the caller
    // anyway (thread::scope propagates the panic), so keep going with the data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scheduler {
    /// A scheduler for `len` transactions, all ready to execute.
    pub fn new(len: usize) -> Scheduler {
        Scheduler {
            len,
            execution_idx: AtomicUsize::new(0),
            validation_idx: AtomicUsize::new(0),
            decrease_cnt: AtomicUsize::new(0),
            active_tasks: AtomicUsize::new(0),
            done: AtomicBool::new(len == 0),
            status: (0..len)
                .map(|_| Mutex::new((0, Status::ReadyToExecute)))
                .collect(),
            dependents: (0..len).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Whether all work is finished.
    pub fn done(&self) -> bool {
        self.done.load(SeqCst)
    }

    fn decrease_execution_idx(&self, target: TxnIdx) {
        self.execution_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxnIdx) {
        self.validation_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(SeqCst);
        if self
            .execution_idx
            .load(SeqCst)
            .min(self.validation_idx.load(SeqCst))
            >= self.len
            && self.active_tasks.load(SeqCst) == 0
            && observed == self.decrease_cnt.load(SeqCst)
        {
            self.done.store(true, SeqCst);
        }
    }

    /// `ReadyToExecute → Executing`; the caller owns the active-task count.
    fn try_incarnate(&self, txn: TxnIdx) -> Option<Version> {
        if txn >= self.len {
            return None;
        }
        let mut s = lock(&self.status[txn]);
        if s.1 == Status::ReadyToExecute {
            s.1 = Status::Executing;
            return Some((txn, s.0));
        }
        None
    }

    fn next_version_to_execute(&self) -> Option<Version> {
        if self.execution_idx.load(SeqCst) >= self.len {
            self.check_done();
            return None;
        }
        self.active_tasks.fetch_add(1, SeqCst);
        let txn = self.execution_idx.fetch_add(1, SeqCst);
        let v = self.try_incarnate(txn);
        if v.is_none() {
            self.active_tasks.fetch_sub(1, SeqCst);
        }
        v
    }

    fn next_version_to_validate(&self) -> Option<Version> {
        if self.validation_idx.load(SeqCst) >= self.len {
            self.check_done();
            return None;
        }
        self.active_tasks.fetch_add(1, SeqCst);
        let txn = self.validation_idx.fetch_add(1, SeqCst);
        if txn < self.len {
            let s = lock(&self.status[txn]);
            if s.1 == Status::Executed {
                return Some((txn, s.0));
            }
        }
        self.active_tasks.fetch_sub(1, SeqCst);
        None
    }

    /// The next task, preferring the lower of the two sweeps.
    pub fn next_task(&self) -> Option<Task> {
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst) {
            self.next_version_to_validate().map(Task::Validate)
        } else {
            self.next_version_to_execute().map(Task::Execute)
        }
    }

    /// `txn` read an ESTIMATE of `blocking`. Returns `false` if `blocking` has already been
    /// re-executed (the caller should simply retry); otherwise `txn` is parked until then and
    /// its task ends.
    pub fn add_dependency(&self, txn: TxnIdx, blocking: TxnIdx) -> bool {
        {
            let mut deps = lock(&self.dependents[blocking]);
            if lock(&self.status[blocking]).1 == Status::Executed {
                return false;
            }
            lock(&self.status[txn]).1 = Status::Aborting;
            deps.push(txn);
        }
        self.active_tasks.fetch_sub(1, SeqCst);
        true
    }

    fn set_ready(&self, txn: TxnIdx) {
        let mut s = lock(&self.status[txn]);
        *s = (s.0 + 1, Status::ReadyToExecute);
    }

    /// An incarnation finished executing. May return a follow-up validation task.
    pub fn finish_execution(
        &self,
        txn: TxnIdx,
        incarnation: Incarnation,
        wrote_new_key: bool,
    ) -> Option<Task> {
        *lock(&self.status[txn]) = (incarnation, Status::Executed);
        let waiting = std::mem::take(&mut *lock(&self.dependents[txn]));
        if let Some(&min) = waiting.iter().min() {
            for &t in &waiting {
                self.set_ready(t);
            }
            self.decrease_execution_idx(min);
        }
        if self.validation_idx.load(SeqCst) > txn {
            if wrote_new_key {
                self.decrease_validation_idx(txn);
            } else {
                return Some(Task::Validate((txn, incarnation)));
            }
        }
        self.active_tasks.fetch_sub(1, SeqCst);
        None
    }

    /// Validation of `(txn, incarnation)` failed: abort it, unless it was already aborted or
    /// re-executed by someone else. Returns whether this call aborted it.
    pub fn try_validation_abort(&self, txn: TxnIdx, incarnation: Incarnation) -> bool {
        let mut s = lock(&self.status[txn]);
        if *s == (incarnation, Status::Executed) {
            s.1 = Status::Aborting;
            return true;
        }
        false
    }

    /// A validation finished. After an abort, may return the re-execution task.
    pub fn finish_validation(&self, txn: TxnIdx, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready(txn);
            self.decrease_validation_idx(txn + 1);
            if self.execution_idx.load(SeqCst) > txn {
                if let Some(v) = self.try_incarnate(txn) {
                    return Some(Task::Execute(v));
                }
            }
        }
        self.active_tasks.fetch_sub(1, SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the scheduler single-threaded: everything executes once and validates once.
    #[test]
    fn conflict_free_block_runs_each_txn_once_and_finishes() {
        let s = Scheduler::new(3);
        let mut executed = Vec::new();
        let mut validated = Vec::new();
        let mut task = None;
        for _ in 0..100 {
            task = match task.or_else(|| s.next_task()) {
                Some(Task::Execute((t, inc))) => {
                    executed.push((t, inc));
                    s.finish_execution(t, inc, true)
                }
                Some(Task::Validate((t, _))) => {
                    validated.push(t);
                    s.finish_validation(t, false)
                }
                None => None,
            };
            if s.done() {
                break;
            }
        }
        assert!(s.done());
        assert_eq!(executed, vec![(0, 0), (1, 0), (2, 0)]);
        validated.sort_unstable();
        validated.dedup();
        assert_eq!(validated, vec![0, 1, 2]);
    }

    #[test]
    fn an_abort_reincarnates_and_revalidates_higher_txns() {
        let s = Scheduler::new(2);
        assert_eq!(s.next_task(), Some(Task::Execute((0, 0))));
        assert_eq!(s.finish_execution(0, 0, true), None);
        assert_eq!(s.next_task(), Some(Task::Validate((0, 0))));
        assert!(s.try_validation_abort(0, 0));
        assert!(
            !s.try_validation_abort(0, 0),
            "only one abort per incarnation"
        );
        assert_eq!(s.finish_validation(0, true), Some(Task::Execute((0, 1))));
    }

    #[test]
    fn dependencies_park_and_resume() {
        let s = Scheduler::new(2);
        let Some(Task::Execute((0, 0))) = s.next_task() else {
            panic!()
        };
        // The next call tries to validate 0 (still executing), the one after executes 1.
        let next = (0..3).find_map(|_| s.next_task());
        assert_eq!(next, Some(Task::Execute((1, 0))));
        assert!(s.add_dependency(1, 0));
        // Finishing 0 makes 1 ready again at incarnation 1.
        s.finish_execution(0, 0, true);
        let mut saw = false;
        for _ in 0..10 {
            if let Some(Task::Execute((1, inc))) = s.next_task() {
                assert_eq!(inc, 1);
                saw = true;
                break;
            }
        }
        assert!(saw);
    }
}
