//! The sequential reference executor: the oracle.
//!
//! Events run one at a time in input order; each transaction reads the committed state
//! directly and its writes are applied before the next one starts. There is nothing to get
//! wrong here, which is the point: the parallel executor must produce exactly this.

use super::commit::commit;
use super::txn::{execute, ExecMode, TxnOutput};
use super::Admitted;
use crate::state::{CommittedView, State};
use crate::trigger::TriggerSet;

/// Runs `events` in order against `state`, calling `on_commit` with each transaction's output
/// right after it is applied (in serial order).
///
/// Fails only on a broken engine invariant (a halted read or an unresolvable eager output),
/// which would be a bug: the committed view never halts and eager outputs are plain values.
pub fn run(
    set: &TriggerSet,
    state: &mut State,
    events: &[Admitted<'_>],
    mut on_commit: impl FnMut(&Admitted<'_>, TxnOutput),
) -> Result<(), InvariantViolation> {
    let schema = state.customers.schema().clone();
    for admitted in events {
        let mut output = execute(
            set,
            &schema,
            &mut CommittedView(state),
            admitted,
            ExecMode::Eager,
        )
        .map_err(|e| {
            InvariantViolation(format!(
                "eager execution of event {} failed: {e:?}",
                admitted.event.id
            ))
        })?;
        commit(set, state, &mut output).map_err(|_| {
            InvariantViolation(format!(
                "eager output of event {} did not commit",
                admitted.event.id
            ))
        })?;
        on_commit(admitted, output);
    }
    Ok(())
}

/// An engine bug: an internal invariant did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal invariant violated: {0}")]
pub struct InvariantViolation(pub String);
