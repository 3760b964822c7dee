//! The pessimistic per-key-lock executor: the "wait for the other trigger" baseline.
//!
//! This is what a careful engineer builds without optimistic execution, and what the parallel
//! executor is benchmarked against: every transaction locks, before it runs, everything it
//! *might* touch, and waits until no earlier transaction holds any of it.
//!
//! # Algorithm
//! 1. **Footprints, statically** ([`super::footprint`]). For each event type: whether the
//!    customer's row is touched, plus every counter and every coupon pool that any trigger
//!    of the type or of its possible cascade may read or write — increment targets,
//!    `issue_coupon` pools, and `counters.<name>` mentioned in a condition or an argument. A
//!    footprint over-approximates: a trigger whose condition turns out false still locks what
//!    its actions would touch.
//! 2. **Lock plan, in serial order (Calvin-style deterministic locking).** Lock keys are
//!    coarse: one lock per customer row (all its attributes), one per counter, one per pool.
//!    `LockPlan` gives each transaction, for each of its lock keys, its *turn*: how many
//!    earlier transactions need the same key. Each lock key has an atomic count of
//!    transactions that have released it.
//! 3. **Execution.** `threads` workers claim transactions in serial order from one atomic
//!    counter. A worker waits (spinning, then yielding) until, for every key of its
//!    transaction, the released count equals its turn; then it runs [`execute`] in
//!    [`ExecMode::Eager`] against a `LockedView` — the committed [`State`] as it was before
//!    the batch, overlaid with the values written by earlier transactions of this batch —
//!    publishes its writes into the overlay, and releases its keys (count = turn + 1).
//! 4. **Output, in order.** Workers send finished outputs to the calling thread, which
//!    buffers them and hands them to `on_commit` strictly in serial order. After the last
//!    one, the overlay is applied to the [`State`].
//!
//! # Invariants
//! - **Serial equivalence.** Two transactions that share a key run in serial order, one after
//!   the other, and a transaction only ever reads or writes keys it holds. So each read sees
//!   exactly the value the sequential executor would see, and the overlay's value of a key is
//!   the last write in serial order. Both conditions are checked, not assumed: a read or write
//!   outside the locked footprint is an [`InvariantViolation`], never a silent wrong answer.
//! - **No deadlock.** A transaction only waits for *earlier* ones, and transactions are claimed
//!   in serial order, so every transaction it waits for is already claimed; the earliest
//!   unfinished transaction waits for nobody.
//! - **Happens-before.** A transaction's writes are in the overlay before it releases its keys
//!   (`Release`); a waiter sees the released count with `Acquire` before reading.
//! - **Failure.** If transaction `i` fails, transactions after `i` that have not started stop
//!   waiting and are never run; the ones before `i` finish, so `on_commit` sees exactly the
//!   prefix the sequential executor would have committed before reporting the error. A worker
//!   that panics stops everyone (so nobody waits for its locks forever) and the panic
//!   propagates. On error the [`State`] is left untouched.
//!
//! Eager execution is required: deltas and deferred coupon slots exist to avoid conflicts,
//! which this executor avoids by locking instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::channel;
use crossbeam::utils::Backoff;
use dashmap::DashMap;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::footprint::{Footprint, Footprints};
use super::sequential::InvariantViolation;
use super::txn::{execute, ExecMode, TxnError, TxnOutput, Write};
use super::Admitted;
use crate::customers::Row;
use crate::expr::{CounterId, EvalError};
use crate::state::{Key, State, StateView};
use crate::trigger::{PoolId, TriggerSet};
use crate::value::Value;

/// Runs `events` in order against `state` on `threads` workers (at least one) holding
/// per-key locks, calling `on_commit` with each transaction's output in serial order, from
/// the calling thread.
///
/// The result — `state`, and the sequence of outputs given to `on_commit` — is exactly what
/// [`super::sequential::run`] produces. Fails only on a broken engine invariant; `state` is
/// then unchanged.
pub fn run(
    set: &TriggerSet,
    state: &mut State,
    events: &[Admitted<'_>],
    threads: usize,
    on_commit: impl FnMut(&Admitted<'_>, TxnOutput),
) -> Result<(), InvariantViolation> {
    let plan = LockPlan::new(&mut Footprints::new(set), events);
    run_planned(set, state, events, &plan, threads, on_commit)
}

/// [`run`] with a given lock plan (tests use it to break the plan on purpose).
fn run_planned(
    set: &TriggerSet,
    state: &mut State,
    events: &[Admitted<'_>],
    plan: &LockPlan,
    threads: usize,
    mut on_commit: impl FnMut(&Admitted<'_>, TxnOutput),
) -> Result<(), InvariantViolation> {
    if events.is_empty() {
        return Ok(());
    }
    let overlay: Overlay = DashMap::with_hasher(FxBuildHasher);
    let shared = Shared {
        set,
        base: state,
        events,
        plan,
        overlay: &overlay,
        next: AtomicUsize::new(0),
        failed_at: AtomicUsize::new(NO_FAILURE),
    };
    let workers = threads.clamp(1, events.len());

    std::thread::scope(|scope| {
        let (tx, rx) = channel::unbounded::<Finished>();
        for _ in 0..workers {
            let tx = tx.clone();
            let shared = &shared;
            scope.spawn(move || shared.work(&tx));
        }
        drop(tx);
        // Release outputs in serial order; later ones wait here until their turn.
        let mut pending = BTreeMap::new();
        let mut next = 0;
        for (i, result) in rx.iter() {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&next) {
                on_commit(&events[next], result?);
                next += 1;
            }
            if next == events.len() {
                return Ok(());
            }
        }
        // Every worker is gone without finishing: one panicked, and the scope re-raises it.
        Err(InvariantViolation(format!(
            "locking executor stopped after {next} of {} events",
            events.len()
        )))
    })?;

    for (key, value) in overlay {
        if !state.apply(key, value) {
            return Err(InvariantViolation(format!(
                "a value written to {key:?} does not fit the key"
            )));
        }
    }
    Ok(())
}

/// Values written by transactions of the current batch, by key.
type Overlay = DashMap<Key, Value, FxBuildHasher>;

/// What a worker reports for one transaction.
type Finished = (usize, Result<TxnOutput, InvariantViolation>);

const NO_FAILURE: usize = usize::MAX;

/// What the workers share.
struct Shared<'a, 'e> {
    set: &'a TriggerSet,
    /// The committed state before the batch; never written during it.
    base: &'a State,
    events: &'a [Admitted<'e>],
    plan: &'a LockPlan,
    overlay: &'a Overlay,
    /// The next transaction to claim.
    next: AtomicUsize,
    /// The lowest failed transaction, or [`NO_FAILURE`].
    failed_at: AtomicUsize,
}

impl Shared<'_, '_> {
    fn work(&self, tx: &channel::Sender<Finished>) {
        // If this worker panics, nobody may wait for its locks forever.
        let _guard = StopOnPanic(&self.failed_at);
        let schema = self.base.customers.schema().clone();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.events.len() || i > self.failed_at.load(Ordering::Relaxed) {
                break;
            }
            if !self.acquire(i) {
                break;
            }
            let result = self.execute(i, &schema);
            if result.is_err() {
                self.failed_at.fetch_min(i, Ordering::Relaxed);
            }
            for &(lock, turn) in self.plan.grants(i) {
                self.plan.released[lock as usize].store(turn + 1, Ordering::Release);
            }
            if tx.send((i, result)).is_err() {
                break;
            }
        }
    }

    /// Waits until transaction `i` holds all its locks; `false` if an earlier transaction
    /// failed meanwhile (then `i` must not run).
    fn acquire(&self, i: usize) -> bool {
        for &(lock, turn) in self.plan.grants(i) {
            let released = &self.plan.released[lock as usize];
            let backoff = Backoff::new();
            while released.load(Ordering::Acquire) != turn {
                if self.failed_at.load(Ordering::Relaxed) < i {
                    return false;
                }
                backoff.snooze();
            }
        }
        true
    }

    /// Runs transaction `i` (its locks held) and publishes its writes.
    fn execute(
        &self,
        i: usize,
        schema: &crate::customers::Schema,
    ) -> Result<TxnOutput, InvariantViolation> {
        let admitted = &self.events[i];
        let footprint = &self.plan.footprints[i];
        let mut view = LockedView {
            base: self.base,
            overlay: self.overlay,
            row: admitted.row,
            footprint,
            stray: None,
        };
        let output = execute(self.set, schema, &mut view, admitted, ExecMode::Eager);
        let output = match (output, view.stray) {
            (Ok(output), _) => output,
            (Err(TxnError::Halted), Some(key)) => {
                return Err(InvariantViolation(format!(
                    "event {} read {key:?}, outside the keys it locked",
                    admitted.event.id
                )))
            }
            (Err(e), _) => {
                return Err(InvariantViolation(format!(
                    "eager execution of event {} failed: {e:?}",
                    admitted.event.id
                )))
            }
        };
        if !output.coupon_slots.is_empty() {
            return Err(InvariantViolation(format!(
                "eager output of event {} has deferred coupon slots",
                admitted.event.id
            )));
        }
        for (key, write) in &output.writes {
            if !matches!(write, Write::Set(_)) {
                return Err(InvariantViolation(format!(
                    "eager output of event {} has a delta on {key:?}",
                    admitted.event.id
                )));
            }
            if !footprint.covers(admitted.row, *key) {
                return Err(InvariantViolation(format!(
                    "event {} wrote {key:?}, outside the keys it locked",
                    admitted.event.id
                )));
            }
        }
        for (key, write) in &output.writes {
            if let Write::Set(value) = write {
                self.overlay.insert(*key, value.clone());
            }
        }
        Ok(output)
    }
}

/// Marks every transaction as failed when dropped during a panic, so that waiting workers
/// give up instead of spinning on locks that will never be released.
struct StopOnPanic<'a>(&'a AtomicUsize);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(0, Ordering::Relaxed);
        }
    }
}

/// A lock key: a customer row (all its attributes), a counter, or a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum LockKey {
    Row(Row),
    Counter(CounterId),
    Pool(PoolId),
}

/// Which locks each transaction takes, and when it is its turn.
///
/// Invariants: `grants(i)` lists each lock of transaction `i` once, with `turn` = the number
/// of transactions before `i` that take the same lock; so the turns of one lock are
/// `0, 1, 2, …` in serial order. `released[l]` is the number of transactions that have
/// released lock `l`; transaction `i` holds `l` exactly while `released[l] == turn`.
/// A plan serves one run: the released counts only grow.
struct LockPlan {
    footprints: Vec<Arc<Footprint>>,
    /// `(lock, turn)` of all transactions, transaction `i`'s at `starts[i]..starts[i + 1]`.
    grants: Vec<(u32, usize)>,
    starts: Vec<usize>,
    released: Vec<AtomicUsize>,
}

impl LockPlan {
    fn new(footprints: &mut Footprints<'_>, events: &[Admitted<'_>]) -> LockPlan {
        let mut ids: FxHashMap<LockKey, u32> = FxHashMap::default();
        let mut queued: Vec<usize> = Vec::new();
        let mut plan = LockPlan {
            footprints: Vec::with_capacity(events.len()),
            grants: Vec::with_capacity(events.len() * 2),
            starts: Vec::with_capacity(events.len() + 1),
            released: Vec::new(),
        };
        for admitted in events {
            let fp = footprints.of(&admitted.event.event_type);
            plan.starts.push(plan.grants.len());
            let keys = fp
                .row
                .then_some(LockKey::Row(admitted.row))
                .into_iter()
                .chain(fp.counters.iter().map(|&c| LockKey::Counter(c)))
                .chain(fp.pools.iter().map(|&p| LockKey::Pool(p)));
            for key in keys {
                let next_id = ids.len() as u32;
                let id = *ids.entry(key).or_insert(next_id);
                if id == next_id {
                    queued.push(0);
                }
                let turn = &mut queued[id as usize];
                plan.grants.push((id, *turn));
                *turn += 1;
            }
            plan.footprints.push(fp);
        }
        plan.starts.push(plan.grants.len());
        plan.released = queued.iter().map(|_| AtomicUsize::new(0)).collect();
        plan
    }

    fn grants(&self, i: usize) -> &[(u32, usize)] {
        &self.grants[self.starts[i]..self.starts[i + 1]]
    }
}

/// What a transaction reads through: the state before the batch, overlaid with this batch's
/// writes, restricted to the keys the transaction holds.
struct LockedView<'a> {
    base: &'a State,
    overlay: &'a Overlay,
    row: Row,
    footprint: &'a Footprint,
    /// The first key read that the transaction does not hold (an engine bug if ever set).
    stray: Option<Key>,
}

impl StateView for LockedView<'_> {
    fn read(&mut self, key: Key) -> Result<Value, EvalError> {
        if !self.footprint.covers(self.row, key) {
            self.stray.get_or_insert(key);
            return Err(EvalError::Halt);
        }
        Ok(match self.overlay.get(&key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_triggers;
    use crate::customers::CustomerTable;
    use crate::event::Event;
    use crate::exec::test_support::{
        admitted, commit_of, customers, observed, sequential, Observed,
    };
    use crate::io::events::read_jsonl;
    use rustc_hash::FxHashSet;

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
      - issue_coupon: { pool: tiny, store_in: last_coupon }
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
      - issue_coupon: { pool: big }
      - start_feed: { feed: gold, args: { code: "coupon", n: "counters.vips" } }
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
      - emit_event: { type: ping }
"#;

    fn workload(seed: u64, n: usize, customers: u64) -> Vec<Event> {
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
            let (ty, props) = match next() % 10 {
                0..=5 => ("order", format!(r#"{{"total": {}.5}}"#, next() % 120)),
                6 => ("order", "{}".to_string()),
                7 | 8 => ("visit", format!(r#"{{"total": {}}}"#, next() % 50)),
                _ => ("ping", "{}".to_string()),
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

    fn observe(
        set: &TriggerSet,
        table: &CustomerTable,
        events: &[Event],
        executor: impl FnOnce(
            &TriggerSet,
            &mut State,
            &[Admitted<'_>],
            &mut dyn FnMut(&Admitted<'_>, TxnOutput),
        ) -> Result<(), InvariantViolation>,
    ) -> Observed {
        let mut state = State::new(table.clone(), set);
        let admitted = admitted(table, events);
        let mut commits = Vec::new();
        executor(set, &mut state, &admitted, &mut |a, out| {
            commits.push(commit_of(a, out))
        })
        .unwrap();
        observed(commits, state)
    }

    fn locking(
        set: &TriggerSet,
        table: &CustomerTable,
        events: &[Event],
        threads: usize,
    ) -> Observed {
        observe(set, table, events, |set, state, admitted, on_commit| {
            run(set, state, admitted, threads, on_commit)
        })
    }

    fn fixture(customers_n: u64) -> (TriggerSet, CustomerTable) {
        let table = customers(customers_n);
        let set = compile_triggers(TRIGGERS, "t.yaml", Some(table.schema()))
            .unwrap_or_else(|e| panic!("{e}"));
        (set, table)
    }

    #[test]
    fn equals_sequential_on_contended_and_spread_workloads() {
        for (customers_n, events_n) in [(1, 40), (3, 80), (8, 150), (200, 300)] {
            let (set, table) = fixture(customers_n);
            for seed in 0..4 {
                let events = workload(seed, events_n, customers_n);
                let expected = sequential(&set, &table, &events);
                for threads in [1, 2, 4] {
                    let got = locking(&set, &table, &events, threads);
                    assert_eq!(
                        got, expected,
                        "customers={customers_n} seed={seed} threads={threads}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_workload_exercises_what_it_claims_to() {
        let (set, table) = fixture(3);
        let events = workload(1, 80, 3);
        let seq = sequential(&set, &table, &events);
        let outcomes = seq.commits.iter().flat_map(|c| c.3.iter());
        let aborted = outcomes
            .clone()
            .filter(|t| matches!(t.result, crate::outcome::TriggerResult::Aborted(_)))
            .count();
        let committed = outcomes
            .filter(|t| t.result == crate::outcome::TriggerResult::Committed)
            .count();
        let chained: u64 = seq.commits.iter().map(|c| c.4).sum();
        assert!(aborted > 0, "some executions abort");
        assert!(committed > 0, "some executions commit");
        assert!(chained > 0, "some events chain");
        assert_eq!(seq.pool_cursors[0], 3, "one tiny coupon per customer");
        assert!(seq.pool_cursors[1] > 0, "chained vip events issue coupons");
        assert!(
            seq.counters[2] != Value::Int(0),
            "a counter only a chained trigger writes"
        );
    }

    #[test]
    fn repeated_contended_runs_stay_serial() {
        let (set, table) = fixture(2);
        let events = workload(7, 200, 2);
        let expected = sequential(&set, &table, &events);
        for _ in 0..25 {
            assert_eq!(locking(&set, &table, &events, 4), expected);
        }
    }

    #[test]
    fn footprints_follow_chains_and_counter_reads() {
        let (set, _) = fixture(1);
        let mut fps = Footprints::new(&set);
        let counter =
            |name: &str| set.counters.iter().position(|c| &*c.id == name).unwrap() as CounterId;
        let pool = |name: &str| set.pools.iter().position(|p| &*p.id == name).unwrap() as PoolId;
        let order = fps.of(&Arc::from("order"));
        assert!(order.row);
        let mut counters = vec![counter("orders"), counter("revenue"), counter("vips")];
        counters.sort_unstable();
        assert_eq!(
            order.counters, counters,
            "vips is written only by the chained vip trigger"
        );
        let mut pools = vec![pool("tiny"), pool("big")];
        pools.sort_unstable();
        assert_eq!(order.pools, pools);
        assert_eq!(
            order.counters_read,
            vec![counter("vips")],
            "read by the chained trigger's feed argument; orders and revenue are blind deltas"
        );
        assert_eq!(
            order.pools_read,
            vec![pool("tiny")],
            "the tiny code is stored, the big one only passed through"
        );
        let visit = fps.of(&Arc::from("visit"));
        assert_eq!(
            visit.counters,
            vec![counter("orders")],
            "read in a condition only"
        );
        assert!(visit.pools.is_empty());
        assert_eq!(visit.counters_read, vec![counter("orders")]);
        let ping = fps.of(&Arc::from("ping"));
        assert_eq!(
            *ping,
            Footprint {
                row: true,
                ..Footprint::default()
            },
            "a self-emitting cycle terminates"
        );
        assert_eq!(*fps.of(&Arc::from("nobody-listens")), Footprint::default());
    }

    #[test]
    fn turns_follow_serial_order_per_key() {
        let (set, table) = fixture(3);
        let events = workload(3, 30, 3);
        let admitted = admitted(&table, &events);
        let mut fps = Footprints::new(&set);
        let plan = LockPlan::new(&mut fps, &admitted);
        let mut seen: FxHashMap<u32, usize> = FxHashMap::default();
        for i in 0..admitted.len() {
            let grants = plan.grants(i);
            let locks: FxHashSet<u32> = grants.iter().map(|g| g.0).collect();
            assert_eq!(locks.len(), grants.len(), "each lock once per transaction");
            for &(lock, turn) in grants {
                let expected = seen.entry(lock).or_insert(0);
                assert_eq!(turn, *expected, "event {i} lock {lock}");
                *expected += 1;
            }
        }
        assert_eq!(plan.released.len(), seen.len());
    }

    #[test]
    fn reads_outside_the_footprint_halt_and_are_reported() {
        let (set, table) = fixture(2);
        let state = State::new(table, &set);
        let overlay: Overlay = DashMap::with_hasher(FxBuildHasher);
        overlay.insert(Key::Counter(0), Value::Int(41));
        let fp = Footprint {
            row: true,
            counters: vec![0],
            ..Footprint::default()
        };
        let mut view = LockedView {
            base: &state,
            overlay: &overlay,
            row: 1,
            footprint: &fp,
            stray: None,
        };
        assert_eq!(
            view.read(Key::Counter(0)),
            Ok(Value::Int(41)),
            "overlay first"
        );
        assert_eq!(view.read(Key::Attr { row: 1, attr: 0 }), Ok(Value::Int(0)));
        assert_eq!(
            view.read(Key::Attr { row: 0, attr: 0 }),
            Err(EvalError::Halt)
        );
        assert_eq!(view.read(Key::PoolCursor(0)), Err(EvalError::Halt));
        assert_eq!(
            view.stray,
            Some(Key::Attr { row: 0, attr: 0 }),
            "first stray kept"
        );
    }

    #[test]
    fn a_failure_commits_exactly_the_prefix_before_it_and_leaves_state_alone() {
        let (set, table) = fixture(3);
        let events = workload(5, 120, 3);
        let admitted = admitted(&table, &events);
        // A visit in the middle: visits read `counters.orders` in their condition.
        let broken = (40..events.len())
            .find(|&i| &*events[i].event_type == "visit")
            .unwrap();
        let expected = sequential(&set, &table, &events[..broken]).commits;
        for threads in [1, 2, 4] {
            for _ in 0..10 {
                // Pretend the footprint of that one visit missed the counter.
                let mut plan = LockPlan::new(&mut Footprints::new(&set), &admitted);
                plan.footprints[broken] = Arc::new(Footprint {
                    row: true,
                    ..Footprint::default()
                });
                let mut state = State::new(table.clone(), &set);
                let mut commits = Vec::new();
                let err = run_planned(&set, &mut state, &admitted, &plan, threads, |a, out| {
                    commits.push(commit_of(a, out))
                })
                .unwrap_err();
                let id = &events[broken].id;
                assert!(
                    err.0.contains(&format!("event {id} read Counter(")),
                    "{err}"
                );
                assert_eq!(commits, expected, "threads={threads}");
                assert_eq!(
                    state.customers.columns(),
                    table.columns(),
                    "state untouched"
                );
                assert_eq!(state.pool_cursors, vec![0, 0]);
            }
        }
    }

    #[test]
    fn empty_batches_and_more_threads_than_events() {
        let (set, table) = fixture(2);
        let none: Vec<Event> = Vec::new();
        assert_eq!(
            locking(&set, &table, &none, 4),
            sequential(&set, &table, &none)
        );
        let events = workload(11, 3, 2);
        assert_eq!(
            locking(&set, &table, &events, 8),
            sequential(&set, &table, &events)
        );
        assert_eq!(
            locking(&set, &table, &events, 0),
            sequential(&set, &table, &events)
        );
    }
}
