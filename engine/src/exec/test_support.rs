//! What the executors' unit tests share: a customer table, admitted events, and what a run
//! produced that must not depend on the executor (compared against the sequential one).

use crate::customers::{Column, CustomerTable, Schema};
use crate::event::Event;
use crate::exec::txn::{TxnOutput, Write};
use crate::exec::{sequential, Admitted};
use crate::outcome::{Effect, TriggerOutcome};
use crate::state::{Key, State};
use crate::trigger::TriggerSet;
use crate::value::{AttrType, Value};

/// Per committed transaction: input record, writes, effects, outcomes, chained events.
pub(crate) type Commit = (
    usize,
    Vec<(Key, Write)>,
    Vec<Effect>,
    Vec<TriggerOutcome>,
    u64,
);

/// Everything an executor produced that must not depend on the executor.
#[derive(Debug, PartialEq)]
pub(crate) struct Observed {
    pub commits: Vec<Commit>,
    pub columns: Vec<Column>,
    pub counters: Vec<Value>,
    pub pool_cursors: Vec<u64>,
}

/// One committed transaction as a [`Commit`].
pub(crate) fn commit_of(a: &Admitted<'_>, out: TxnOutput) -> Commit {
    (
        a.record,
        out.writes,
        out.effects,
        out.triggers,
        out.chained_events,
    )
}

/// The commits of a run and the state it left.
pub(crate) fn observed(commits: Vec<Commit>, state: State) -> Observed {
    Observed {
        commits,
        columns: state.customers.columns().to_vec(),
        counters: state.counters,
        pool_cursors: state.pool_cursors,
    }
}

/// `n` customers (ids 1..=n) with `points` 0 and no `tier`, `spent` or `last_coupon`.
pub(crate) fn customers(n: u64) -> CustomerTable {
    let schema = Schema::new([
        ("points".to_string(), AttrType::Int),
        ("tier".to_string(), AttrType::String),
        ("spent".to_string(), AttrType::Float),
        ("last_coupon".to_string(), AttrType::String),
    ])
    .unwrap();
    let n_us = n as usize;
    CustomerTable::new(
        schema,
        (1..=n).collect(),
        vec![
            Column::Int(vec![Some(0); n_us]),
            Column::String(vec![None; n_us]),
            Column::Float(vec![None; n_us]),
            Column::String(vec![None; n_us]),
        ],
    )
    .unwrap()
}

/// Every event admitted, in order, with no memberships and every trigger running.
pub(crate) fn admitted<'e>(table: &CustomerTable, events: &'e [Event]) -> Vec<Admitted<'e>> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| Admitted {
            record: i,
            line: i as u64 + 1,
            event,
            row: table.row_of(event.customer_id).unwrap(),
            memberships: crate::expr::segments::MembershipSnapshot::empty(),
            participation: &[],
        })
        .collect()
}

/// What the reference executor produces on `events`.
pub(crate) fn sequential(set: &TriggerSet, table: &CustomerTable, events: &[Event]) -> Observed {
    let mut state = State::new(table.clone(), set);
    let admitted = admitted(table, events);
    let mut commits = Vec::new();
    sequential::run(set, &mut state, &admitted, |a, out| {
        commits.push(commit_of(a, out))
    })
    .unwrap();
    observed(commits, state)
}
