//! The compiled trigger model: what the executors run.
//!
//! A [`TriggerSet`] is built once from a triggers file (see [`crate::config`]) against the
//! customer [`Schema`](crate::customers::Schema) and is immutable afterwards. All names are
//! resolved (attributes, counters, pools are indices) and all expressions compiled.
//!
//! Invariants:
//! - `triggers` is sorted by `(priority, id)`; ids are unique. This order *is* the serial order
//!   in which the triggers of one event run.
//! - [`TriggerSet::for_event_type`] lists only enabled triggers, in that order.
//! - every pool code is unique within its pool, so "each code issued at most once" reduces to
//!   "each pool position is taken at most once".

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::config::Diagnostic;
use crate::customers::AttrId;
use crate::expr::{CompiledExpr, CounterId, Ty};
use crate::value::Value;

/// Index of a trigger in [`TriggerSet::triggers`].
pub type TriggerIdx = u32;
/// Index of a coupon pool.
pub type PoolId = u16;

/// Engine-wide settings from the triggers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How many levels of chained events an input event may cause (default 16). An action that
    /// would emit deeper aborts its execution with `chain depth exceeded`.
    pub max_chain_depth: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_chain_depth: 16,
        }
    }
}

/// Per-execution limits of a trigger (governor limits). Exceeding one aborts the execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Effects (messages, feeds, coupons) one execution may produce.
    pub max_effects: Option<u32>,
    /// Points one execution may award in total.
    pub max_points: Option<i64>,
    /// Chained events one execution may emit.
    pub max_emitted_events: Option<u32>,
}

/// A message channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Text message.
    Sms,
    /// Email.
    Email,
    /// Mobile push.
    Push,
    /// HTTP callback.
    Webhook,
}

impl Channel {
    /// Parses a channel name.
    pub fn parse(name: &str) -> Option<Channel> {
        Some(match name {
            "sms" => Channel::Sms,
            "email" => Channel::Email,
            "push" => Channel::Push,
            "webhook" => Channel::Webhook,
            _ => return None,
        })
    }
}

/// What an increment adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A numeric attribute of the event's customer.
    Attr(AttrId),
    /// A shared counter.
    Counter(CounterId),
}

/// Named CEL expressions (message args, event properties), in name order.
pub type NamedExprs = Vec<(Arc<str>, CompiledExpr)>;

/// One action of a trigger.
#[derive(Clone, Debug)]
pub enum Action {
    /// Set an attribute to a computed value (type-checked on write).
    Set {
        /// Attribute.
        attr: AttrId,
        /// Value.
        value: CompiledExpr,
    },
    /// Add a computed amount to an attribute or counter. Null counts as 0.
    Increment {
        /// What to add to.
        target: Target,
        /// How much.
        by: CompiledExpr,
    },
    /// Add points to the customer's balance attribute (an int attribute).
    AwardPoints {
        /// Balance attribute.
        attr: AttrId,
        /// Amount (must evaluate to an int).
        amount: CompiledExpr,
    },
    /// Take the next unissued code of a pool; fails with `pool exhausted` when none is left.
    IssueCoupon {
        /// Pool.
        pool: PoolId,
        /// Optionally store the code in a string attribute.
        store_in: Option<AttrId>,
        /// The code is only passed through by later actions (message/feed args that are
        /// exactly `coupon`), so a parallel executor may take it without reading the pool
        /// cursor and fill the code in at commit (see `exec::txn`).
        deferrable: bool,
    },
    /// Send a message: an effect.
    SendMessage {
        /// Channel.
        channel: Channel,
        /// Template id.
        template: Arc<str>,
        /// Arguments.
        args: NamedExprs,
    },
    /// Start an email feed: an effect.
    StartFeed {
        /// Feed id.
        feed: Arc<str>,
        /// Arguments.
        args: NamedExprs,
    },
    /// Emit a chained event for the same customer.
    EmitEvent {
        /// Event type.
        event_type: Arc<str>,
        /// Properties.
        properties: NamedExprs,
    },
}

impl Action {
    /// Every expression of the action.
    pub fn exprs(&self) -> Vec<&CompiledExpr> {
        match self {
            Action::Set { value, .. } => vec![value],
            Action::Increment { by, .. } => vec![by],
            Action::AwardPoints { amount, .. } => vec![amount],
            Action::IssueCoupon { .. } => Vec::new(),
            Action::SendMessage { args, .. } | Action::StartFeed { args, .. } => {
                args.iter().map(|(_, e)| e).collect()
            }
            Action::EmitEvent { properties, .. } => properties.iter().map(|(_, e)| e).collect(),
        }
    }

    /// Whether `coupon` is used here only as a pass-through message/feed argument (or not at all).
    fn passes_coupon_through(&self) -> bool {
        match self {
            Action::SendMessage { args, .. } | Action::StartFeed { args, .. } => args
                .iter()
                .all(|(_, e)| !e.uses_coupon() || e.is_coupon_passthrough()),
            other => other.exprs().iter().all(|e| !e.uses_coupon()),
        }
    }
}

/// Marks each `issue_coupon` whose code is only passed through by the actions after it.
pub(crate) fn mark_deferrable_coupons(actions: &mut [Action]) {
    for i in 0..actions.len() {
        let rest_ok = actions[i + 1..].iter().all(Action::passes_coupon_through);
        if let Action::IssueCoupon {
            deferrable,
            store_in,
            ..
        } = &mut actions[i]
        {
            // A stored code could be read back by a later trigger of the same event, so only
            // codes that leave through effects are deferred.
            *deferrable = rest_ok && store_in.is_none();
        }
    }
}

/// A compiled trigger.
#[derive(Clone, Debug)]
pub struct Trigger {
    /// Unique id.
    pub id: Arc<str>,
    /// Who is notified about it.
    pub owner: Arc<str>,
    /// Event type it fires on.
    pub on: Arc<str>,
    /// Lower runs first.
    pub priority: i32,
    /// Whether it runs at all.
    pub enabled: bool,
    /// Condition; `None` means always.
    pub condition: Option<CompiledExpr>,
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// Per-execution limits.
    pub limits: Limits,
}

/// Where a pool's codes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolSource {
    /// An explicit list.
    List(Vec<Arc<str>>),
    /// `prefix` + zero-padded `start..start+count`.
    Generated {
        /// Text before the number.
        prefix: Arc<str>,
        /// First number.
        start: u64,
        /// How many codes.
        count: u64,
        /// Zero-pad to this many digits.
        width: usize,
    },
}

/// A finite pool of coupon codes, issued in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Pool name.
    pub id: Arc<str>,
    /// Codes.
    pub source: PoolSource,
}

impl Pool {
    /// Number of codes.
    pub fn len(&self) -> u64 {
        match &self.source {
            PoolSource::List(codes) => codes.len() as u64,
            PoolSource::Generated { count, .. } => *count,
        }
    }

    /// Whether the pool has no codes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The code at position `index` (0-based), if the pool has one there.
    pub fn code(&self, index: u64) -> Option<Arc<str>> {
        match &self.source {
            PoolSource::List(codes) => usize::try_from(index)
                .ok()
                .and_then(|i| codes.get(i))
                .cloned(),
            PoolSource::Generated {
                prefix,
                start,
                count,
                width,
            } => (index < *count)
                .then(|| Arc::from(format!("{prefix}{:0width$}", start + index, width = *width))),
        }
    }
}

/// A shared counter.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterSpec {
    /// Name.
    pub id: Arc<str>,
    /// `Ty::Int` or `Ty::Float`.
    pub ty: Ty,
    /// Starting value.
    pub initial: Value,
}

/// Everything a triggers file defines, compiled.
#[derive(Clone, Debug)]
pub struct TriggerSet {
    /// Settings.
    pub settings: Settings,
    /// All triggers, sorted by `(priority, id)`.
    pub triggers: Vec<Trigger>,
    /// Coupon pools.
    pub pools: Vec<Pool>,
    /// Counters.
    pub counters: Vec<CounterSpec>,
    /// Warnings found while compiling (errors make compiling fail).
    pub warnings: Vec<Diagnostic>,
    pub(crate) by_event_type: FxHashMap<Arc<str>, Vec<TriggerIdx>>,
    pub(crate) known_event_types: rustc_hash::FxHashSet<Arc<str>>,
    pub(crate) checked_against_schema: bool,
}

impl TriggerSet {
    /// A copy whose names — trigger ids, owners, event types, templates, feeds, argument
    /// names, pool ids — are fresh allocations.
    ///
    /// Executions put these names into their outputs (`Arc<str>` clones). Threads that execute
    /// with one shared set all increment the same reference counts, and each such count is a
    /// cache line bouncing between cores on every execution; each parallel worker therefore
    /// executes with its own copy. The copy is semantically identical: names compare by
    /// content everywhere.
    pub fn with_fresh_names(&self) -> TriggerSet {
        fn fresh(name: &mut Arc<str>) {
            *name = Arc::from(&**name);
        }
        fn fresh_named(named: &mut NamedExprs) {
            for (name, _) in named {
                fresh(name);
            }
        }
        let mut copy = self.clone();
        for trigger in &mut copy.triggers {
            fresh(&mut trigger.id);
            fresh(&mut trigger.owner);
            fresh(&mut trigger.on);
            for action in &mut trigger.actions {
                match action {
                    Action::SendMessage { template, args, .. } => {
                        fresh(template);
                        fresh_named(args);
                    }
                    Action::StartFeed { feed, args } => {
                        fresh(feed);
                        fresh_named(args);
                    }
                    Action::EmitEvent {
                        event_type,
                        properties,
                    } => {
                        fresh(event_type);
                        fresh_named(properties);
                    }
                    Action::Set { .. }
                    | Action::Increment { .. }
                    | Action::AwardPoints { .. }
                    | Action::IssueCoupon { .. } => {}
                }
            }
        }
        for pool in &mut copy.pools {
            fresh(&mut pool.id);
        }
        copy
    }

    /// The enabled triggers for `event_type`, in run order.
    pub fn for_event_type(&self, event_type: &str) -> &[TriggerIdx] {
        self.by_event_type
            .get(event_type)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether events of this type are accepted: declared in `event_types` when the file
    /// declares them, otherwise any type some trigger listens to or emits.
    pub fn is_known_event_type(&self, event_type: &str) -> bool {
        self.known_event_types.contains(event_type)
    }

    /// The trigger at an index.
    pub fn trigger(&self, idx: TriggerIdx) -> &Trigger {
        &self.triggers[idx as usize]
    }

    /// Whether the set was compiled against a real customer schema (and so may run).
    pub fn is_runnable(&self) -> bool {
        self.checked_against_schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pool_codes_are_padded_and_bounded() {
        let pool = Pool {
            id: Arc::from("p"),
            source: PoolSource::Generated {
                prefix: Arc::from("W-"),
                start: 1,
                count: 3,
                width: 4,
            },
        };
        assert_eq!(pool.code(0).as_deref(), Some("W-0001"));
        assert_eq!(pool.code(2).as_deref(), Some("W-0003"));
        assert_eq!(pool.code(3), None);
    }
}
