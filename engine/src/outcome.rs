//! What a run reports: effects, per-event outcomes, abort reasons.
//!
//! These are the engine's outputs. Their serialised forms are the lines of `effects.jsonl`
//! and `outcomes.jsonl`; both are deterministic (no timings, no addresses, maps in key order),
//! so two runs over the same input produce byte-identical files whatever the executor or
//! thread count.

use std::sync::Arc;

use serde::Serialize;

use crate::event::LineNo;
use crate::trigger::Channel;
use crate::value::{Map, Value};

/// A side effect for a downstream system, produced only by a committed execution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effect {
    /// Idempotency key `{event_id}:{trigger_id}:{action_index}`: unique per effect, stable
    /// across runs, so downstream systems can deduplicate retries.
    pub key: String,
    /// The event (input or chained) that fired the trigger.
    pub event_id: Arc<str>,
    /// The customer.
    pub customer_id: u64,
    /// The trigger.
    pub trigger: Arc<str>,
    /// Index of the action within the trigger (0-based).
    pub action: u32,
    /// What to do.
    #[serde(flatten)]
    pub kind: EffectKind,
}

/// The kinds of effects.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EffectKind {
    /// Send a message.
    Message {
        /// Channel.
        channel: Channel,
        /// Template id.
        template: Arc<str>,
        /// Template arguments.
        args: Map,
    },
    /// Start an email feed.
    Feed {
        /// Feed id.
        feed: Arc<str>,
        /// Arguments.
        args: Map,
    },
    /// A coupon code was issued to the customer.
    Coupon {
        /// Pool.
        pool: Arc<str>,
        /// The code.
        code: Arc<str>,
    },
}

/// Why a trigger execution was aborted (its writes and effects discarded).
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum AbortReason {
    /// The condition could not be evaluated.
    #[error("condition error: {message}")]
    ConditionError {
        /// The evaluation error.
        message: String,
    },
    /// An action failed to evaluate or apply.
    #[error("action {action} failed: {message}")]
    ActionError {
        /// Action index.
        action: u32,
        /// The error.
        message: String,
    },
    /// The pool has no codes left.
    #[error("action {action}: coupon pool `{pool}` is exhausted")]
    PoolExhausted {
        /// Action index.
        action: u32,
        /// Pool.
        pool: Arc<str>,
    },
    /// A per-execution limit was exceeded.
    #[error("action {action}: limit `{limit}` ({max}) exceeded")]
    LimitExceeded {
        /// Action index.
        action: u32,
        /// Which limit.
        limit: &'static str,
        /// Its value.
        max: i64,
    },
    /// Emitting would nest chained events deeper than `max_chain_depth`.
    #[error("action {action}: chain depth {emitted_depth} would exceed max_chain_depth {max}{}", describe_cycle(.cycle))]
    ChainDepthExceeded {
        /// Action index.
        action: u32,
        /// Depth the new event would have (the depth of the event that fired the trigger is
        /// the outcome's own `depth`, one less).
        emitted_depth: u32,
        /// The limit.
        max: u32,
        /// When the chain is a loop, the triggers that make it, first to last, the first
        /// repeated at the end (`["a", "b", "a"]`: A emits what fires B, B what fires A).
        #[serde(skip_serializing_if = "Option::is_none")]
        cycle: Option<Vec<Arc<str>>>,
    },
    /// The execution used more fuel than `max_fuel` (see the README, "Fuel and limits").
    #[error("fuel limit {max} exceeded (used {used})")]
    FuelExhausted {
        /// Fuel used when the limit was crossed.
        used: u64,
        /// The limit.
        max: u64,
    },
}

fn describe_cycle(cycle: &Option<Vec<Arc<str>>>) -> String {
    match cycle {
        Some(c) => format!(
            " (a loop: {})",
            c.iter().map(|t| &**t).collect::<Vec<_>>().join(" → ")
        ),
        None => String::new(),
    }
}

impl AbortReason {
    /// A stable short name for aggregation in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            AbortReason::ConditionError { .. } => "condition_error",
            AbortReason::ActionError { .. } => "action_error",
            AbortReason::PoolExhausted { .. } => "pool_exhausted",
            AbortReason::LimitExceeded { .. } => "limit_exceeded",
            AbortReason::ChainDepthExceeded { .. } => "chain_depth_exceeded",
            AbortReason::FuelExhausted { .. } => "fuel_exhausted",
        }
    }
}

/// The result of one trigger on one (input or chained) event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TriggerResult {
    /// All actions applied; writes and effects kept.
    Committed,
    /// The condition was false; nothing done.
    Skipped,
    /// Aborted; nothing kept.
    Aborted(AbortReason),
    /// Not run: an operator stopped the trigger (`stopped:` in the triggers file). Written
    /// as `"result":"skipped","skip":"trigger_stopped","reason":…`, so a stopped trigger's
    /// firings are never lost and never silent.
    #[serde(rename = "skipped")]
    Stopped {
        /// Always `trigger_stopped`.
        skip: &'static str,
        /// Why it was stopped, as the operator wrote it.
        reason: Arc<str>,
    },
    /// Not run here: the trigger is throttled past its allowance, so this execution moved
    /// to the slow lane (see the README, "Slow lane"); its result is in a later record of
    /// the same line marked `"lane":"slow"`. Written as `"result":"deferred","lane":"slow"`.
    Deferred {
        /// Always `slow`.
        lane: &'static str,
    },
}

/// One trigger execution in an event's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TriggerOutcome {
    /// Trigger id.
    pub trigger: Arc<str>,
    /// The event it ran on (differs from the input event for chained events).
    pub event_id: Arc<str>,
    /// Chain depth of that event (0 = the input event).
    pub depth: u32,
    /// What happened.
    #[serde(flatten)]
    pub result: TriggerResult,
    /// Fuel the execution used (deterministic; see the README, "Fuel and limits"). Not in
    /// `outcomes.jsonl`; summed per trigger in `report.json`.
    #[serde(skip)]
    pub fuel: u64,
    /// On a chained event: the trigger that started the cascade, on the input event (the
    /// governor charges a cascade to it too). `None` on the input event. Not written.
    #[serde(skip)]
    pub root: Option<crate::trigger::TriggerIdx>,
}

/// The outcome of one input record: one line of `outcomes.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordOutcome {
    /// 1-based line (or row) in the input.
    pub line: LineNo,
    /// The event id, when the record could be parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Arc<str>>,
    /// `Some("slow")` for a slow-lane run: the deferred executions of this line's event,
    /// run later in the stream (see [`TriggerResult::Deferred`]). `None` (not written) for
    /// the record's own outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<&'static str>,
    /// Processed or rejected.
    #[serde(flatten)]
    pub status: RecordStatus,
}

/// Whether an input record was processed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordStatus {
    /// The event ran; every trigger execution it caused, in serial order.
    Processed {
        /// Trigger executions.
        triggers: Vec<TriggerOutcome>,
    },
    /// The record was not run.
    Rejected {
        /// Category of the problem.
        kind: RejectKind,
        /// Why, precisely.
        error: String,
    },
    /// The record was held back (e.g. its process's quota is spent) and not run.
    Held {
        /// Why.
        reason: String,
    },
}

/// Why an input record was rejected before running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The record could not be parsed (bad JSON, bad UTF-8, missing or mistyped field).
    Malformed,
    /// Its customer is not in the customer file.
    UnknownCustomer,
    /// Its type is not a known event type.
    UnknownEventType,
    /// Another record earlier in the input has the same id.
    DuplicateEventId,
}

impl RejectKind {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::UnknownCustomer => "unknown_customer",
            RejectKind::UnknownEventType => "unknown_event_type",
            RejectKind::DuplicateEventId => "duplicate_event_id",
        }
    }
}

/// A helper to make a `Value` map from name/value pairs (effect arguments, properties).
pub(crate) fn map_of(entries: Vec<(Arc<str>, Value)>) -> Map {
    Map::from_entries(entries)
}

#[cfg(test)]
#[path = "../tests/common/strict_json.rs"]
mod strict_json;

#[cfg(test)]
mod tests {
    use super::*;

    use super::strict_json;

    /// One of every abort reason. The match below has no wildcard, so a new variant does not
    /// compile until it is listed here (and so checked for key collisions).
    fn every_abort_reason() -> Vec<AbortReason> {
        let all = vec![
            AbortReason::ConditionError {
                message: "m".into(),
            },
            AbortReason::ActionError {
                action: 1,
                message: "m".into(),
            },
            AbortReason::PoolExhausted {
                action: 1,
                pool: Arc::from("p"),
            },
            AbortReason::LimitExceeded {
                action: 1,
                limit: "max_effects",
                max: 2,
            },
            AbortReason::ChainDepthExceeded {
                action: 1,
                emitted_depth: 17,
                max: 16,
                cycle: Some(vec![Arc::from("a"), Arc::from("b"), Arc::from("a")]),
            },
            AbortReason::FuelExhausted {
                used: 1_000_001,
                max: 1_000_000,
            },
        ];
        for reason in &all {
            match reason {
                AbortReason::ConditionError { .. }
                | AbortReason::ActionError { .. }
                | AbortReason::PoolExhausted { .. }
                | AbortReason::LimitExceeded { .. }
                | AbortReason::ChainDepthExceeded { .. }
                | AbortReason::FuelExhausted { .. } => {}
            }
        }
        all
    }

    fn every_record_status() -> Vec<RecordStatus> {
        let mut results = vec![
            TriggerResult::Committed,
            TriggerResult::Skipped,
            TriggerResult::Stopped {
                skip: "trigger_stopped",
                reason: Arc::from("runaway"),
            },
        ];
        results.extend(every_abort_reason().into_iter().map(TriggerResult::Aborted));
        let triggers = results
            .into_iter()
            .map(|result| TriggerOutcome {
                trigger: Arc::from("t"),
                event_id: Arc::from("e/t#0"),
                depth: 16,
                result,
                fuel: 7,
                root: None,
            })
            .collect();
        let mut all = vec![
            RecordStatus::Processed { triggers },
            RecordStatus::Held { reason: "r".into() },
        ];
        for kind in [
            RejectKind::Malformed,
            RejectKind::UnknownCustomer,
            RejectKind::UnknownEventType,
            RejectKind::DuplicateEventId,
        ] {
            match kind {
                RejectKind::Malformed
                | RejectKind::UnknownCustomer
                | RejectKind::UnknownEventType
                | RejectKind::DuplicateEventId => {}
            }
            all.push(RecordStatus::Rejected {
                kind,
                error: "e".into(),
            });
        }
        for status in &all {
            match status {
                RecordStatus::Processed { .. }
                | RecordStatus::Rejected { .. }
                | RecordStatus::Held { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_outcome_line_is_strict_json_with_unique_keys() {
        for status in every_record_status() {
            for event_id in [None, Some(Arc::from("e"))] {
                let line = serde_json::to_string(&RecordOutcome {
                    line: 7,
                    event_id,
                    lane: None,
                    status: status.clone(),
                })
                .unwrap();
                strict_json::check_strict_object(&line).unwrap();
            }
        }
    }

    #[test]
    fn every_effect_line_is_strict_json_with_unique_keys() {
        let args = map_of(vec![(Arc::from("kind"), Value::Int(1))]);
        for kind in [
            EffectKind::Message {
                channel: Channel::Sms,
                template: Arc::from("t"),
                args: args.clone(),
            },
            EffectKind::Feed {
                feed: Arc::from("f"),
                args,
            },
            EffectKind::Coupon {
                pool: Arc::from("p"),
                code: Arc::from("C"),
            },
        ] {
            let line = serde_json::to_string(&Effect {
                key: "e:t:0".into(),
                event_id: Arc::from("e"),
                customer_id: 1,
                trigger: Arc::from("t"),
                action: 0,
                kind,
            })
            .unwrap();
            strict_json::check_strict_object(&line).unwrap();
        }
    }

    #[test]
    fn the_checker_sees_a_repeated_key() {
        assert!(strict_json::check_strict_object(r#"{"a":1,"b":{"c":1,"c":2}}"#).is_err());
        assert!(strict_json::check_strict_object(r#"[1]"#).is_err());
    }
}
