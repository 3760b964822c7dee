//! The YAML shape of a triggers file, exactly as written (before validation).
//!
//! Fields that later checks may complain about are `Spanned`, so every diagnostic points at
//! the offending value. Unknown keys are rejected (`deny_unknown_fields`): a typo such as
//! `conditon:` must not silently disable a condition.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::shape::{read_items, Shape};

/// A whole triggers file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerFile {
    /// Schema version (only 1 exists).
    #[serde(default)]
    pub version: Option<Spanned<u32>>,
    /// Engine settings.
    #[serde(default)]
    pub settings: Option<Spanned<SettingsDef>>,
    /// Declared event types; when present, any other type is an error.
    #[serde(default)]
    pub event_types: Option<Vec<Spanned<String>>>,
    /// Coupon pools.
    #[serde(default)]
    pub pools: Vec<PoolDef>,
    /// Shared counters.
    #[serde(default)]
    pub counters: Vec<CounterDef>,
    /// The triggers.
    pub triggers: Spanned<Vec<TriggerDef>>,
}

impl Shape for TriggerFile {
    const LISTS: &'static [&'static str] = &["pools", "counters", "triggers"];

    fn read_list(
        key: &str,
        text: &str,
        into: Option<&mut Self>,
    ) -> Result<(), serde_saphyr::Error> {
        match key {
            "pools" => read_items(text, into.map(|f| &mut f.pools)),
            "counters" => read_items(text, into.map(|f| &mut f.counters)),
            "triggers" => read_items(text, into.map(|f| &mut f.triggers.value)),
            // Only the keys of `LISTS` are ever asked for.
            _ => Ok(()),
        }
    }
}

/// `settings:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDef {
    /// How deep chained events may nest (default 16).
    #[serde(default)]
    pub max_chain_depth: Option<Spanned<i64>>,
    /// Default fuel per execution (1,000,000).
    #[serde(default)]
    pub max_fuel: Option<Spanned<i64>>,
    /// Default state writes per execution (10,000).
    #[serde(default)]
    pub max_writes: Option<Spanned<i64>>,
    /// Default effects per execution (unlimited).
    #[serde(default)]
    pub max_effects: Option<Spanned<i64>>,
    /// Default chained events per execution (unlimited).
    #[serde(default)]
    pub max_emitted_events: Option<Spanned<i64>>,
    /// Length of a budget window, in seconds of event time (default 60).
    #[serde(default)]
    pub budget_window: Option<Spanned<i64>>,
    /// Consecutive windows over the hard budget before a trigger is stopped (default 3).
    #[serde(default)]
    pub stop_after_windows: Option<Spanned<i64>>,
    /// Consecutive windows under budget before a throttled trigger recovers (default 2).
    #[serde(default)]
    pub recover_after_windows: Option<Spanned<i64>>,
    /// Share of the fast lane's fuel the slow lane may use per turn, percent (default 25).
    #[serde(default)]
    pub slow_lane_share: Option<Spanned<i64>>,
    /// Fuel the whole trigger set may use per budget window: every enabled trigger without
    /// a `budget:` gets a derived one (see `trigger::Settings::window_fuel`).
    #[serde(default)]
    pub window_fuel: Option<Spanned<i64>>,
}

/// `budget:` of a trigger: fuel per window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDef {
    /// Soft budget: over it, the trigger is throttled.
    pub fuel: Spanned<i64>,
    /// Hard budget (default twice `fuel`): over it for `stop_after_windows`, stopped.
    #[serde(default)]
    pub hard_fuel: Option<Spanned<i64>>,
}

/// One coupon pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolDef {
    /// Pool name.
    pub id: Spanned<String>,
    /// An explicit list of codes, issued in order.
    #[serde(default)]
    pub codes: Option<Spanned<Vec<String>>>,
    /// A generated sequence of codes.
    #[serde(default)]
    pub generate: Option<Spanned<GenerateDef>>,
}

/// `generate:` of a pool: codes `prefix + zero-padded number`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateDef {
    /// Text before the number.
    #[serde(default)]
    pub prefix: String,
    /// How many codes.
    pub count: Spanned<i64>,
    /// First number (default 1).
    #[serde(default)]
    pub start: Option<Spanned<i64>>,
    /// Zero-pad numbers to this many digits (default: digits of the largest number).
    #[serde(default)]
    pub width: Option<Spanned<i64>>,
}

/// One counter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterDef {
    /// Counter name.
    pub id: Spanned<String>,
    /// `int` (default) or `float`.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Starting value (default 0).
    #[serde(default)]
    pub initial: Option<Spanned<f64>>,
}

/// One trigger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// Unique id.
    pub id: Spanned<String>,
    /// Who is notified about this trigger (throttling, stops).
    pub owner: Spanned<String>,
    /// The event type it fires on.
    pub on: Spanned<String>,
    /// Lower runs first; ties broken by id. Default 100.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Disabled triggers are validated but never run. Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The operator's kill switch: the reason the trigger is stopped. Its firings are
    /// recorded as skipped (`trigger_stopped`) with this reason; nothing runs.
    #[serde(default)]
    pub stopped: Option<Spanned<String>>,
    /// CEL condition; absent means "always".
    #[serde(default)]
    pub condition: Option<Spanned<String>>,
    /// Per-execution limits.
    #[serde(default)]
    pub limits: Option<Spanned<LimitsDef>>,
    /// Fuel budget per window (see `governor`).
    #[serde(default)]
    pub budget: Option<Spanned<BudgetDef>>,
    /// What to do, in order.
    pub actions: Spanned<Vec<Spanned<ActionDef>>>,
}

/// `limits:` of a trigger.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDef {
    /// At most this many effects (messages, feeds, coupons) per execution.
    #[serde(default)]
    pub max_effects: Option<Spanned<i64>>,
    /// At most this many points awarded per execution.
    #[serde(default)]
    pub max_points: Option<Spanned<i64>>,
    /// At most this many chained events per execution.
    #[serde(default)]
    pub max_emitted_events: Option<Spanned<i64>>,
    /// At most this much fuel per execution.
    #[serde(default)]
    pub max_fuel: Option<Spanned<i64>>,
    /// At most this many state writes per execution.
    #[serde(default)]
    pub max_writes: Option<Spanned<i64>>,
}

/// One action (`- kind: { ... }`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionDef {
    /// Set a customer attribute to a computed value.
    Set {
        /// Attribute name.
        attribute: Spanned<String>,
        /// CEL expression.
        value: Spanned<String>,
    },
    /// Add to a numeric attribute or counter (a commutative delta).
    Increment {
        /// Attribute name (exactly one of attribute / counter).
        #[serde(default)]
        attribute: Option<Spanned<String>>,
        /// Counter name.
        #[serde(default)]
        counter: Option<Spanned<String>>,
        /// CEL expression for the amount (default `1`).
        #[serde(default)]
        by: Option<Spanned<String>>,
    },
    /// Award loyalty points.
    AwardPoints {
        /// CEL expression for the amount (int).
        amount: Spanned<String>,
        /// Balance attribute (default `points`).
        #[serde(default)]
        attribute: Option<Spanned<String>>,
    },
    /// Issue the next code from a pool.
    IssueCoupon {
        /// Pool name.
        pool: Spanned<String>,
        /// Also store the code in this string attribute.
        #[serde(default)]
        store_in: Option<Spanned<String>>,
    },
    /// Send a message (an effect).
    SendMessage {
        /// `sms`, `email`, `push` or `webhook`.
        channel: Spanned<String>,
        /// Template id.
        template: Spanned<String>,
        /// Template arguments: name → CEL expression.
        #[serde(default)]
        args: BTreeMap<String, Spanned<String>>,
    },
    /// Start an email feed (an effect).
    StartFeed {
        /// Feed id.
        feed: Spanned<String>,
        /// Arguments: name → CEL expression.
        #[serde(default)]
        args: BTreeMap<String, Spanned<String>>,
    },
    /// Emit a chained event for the same customer.
    EmitEvent {
        /// Event type.
        #[serde(rename = "type")]
        event_type: Spanned<String>,
        /// Properties: name → CEL expression.
        #[serde(default)]
        properties: BTreeMap<String, Spanned<String>>,
    },
}
