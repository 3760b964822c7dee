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
    /// Default per-execution limits of every trigger (a trigger's own `limits:` override
    /// them): `max_fuel` [`DEFAULT_MAX_FUEL`], `max_writes` [`DEFAULT_MAX_WRITES`], the others
    /// unlimited unless set.
    pub limits: Limits,
    /// Budget window length in seconds of event time (see `governor`).
    pub budget_window_s: u32,
    /// Consecutive windows over the hard budget before the governor stops a trigger.
    pub stop_after: u32,
    /// Consecutive windows under budget before a throttled trigger recovers.
    pub recover_after: u32,
    /// Share of the fast lane's fuel a slow-lane turn may use, in percent (1–100, default
    /// 25; see `slow_lane`).
    pub slow_lane_percent: u32,
    /// Fuel the whole trigger set may use per budget window (`settings.window_fuel`). When
    /// set, every enabled trigger without its own `budget:` gets one derived from the set:
    /// twice its fair share (`window_fuel` ÷ enabled triggers) as the soft budget, four
    /// times as the hard one. `None` (the default): only triggers with a `budget:` are
    /// governed.
    pub window_fuel: Option<u64>,
}

/// A trigger's fuel budget per window (see `governor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Soft: over it, throttled.
    pub fuel: u64,
    /// Hard: over it for `stop_after` windows, stopped.
    pub hard_fuel: u64,
}

/// Default `max_fuel` of an execution: about a millisecond of evaluation work.
pub const DEFAULT_MAX_FUEL: u64 = 1_000_000;
/// Default `max_writes` of an execution.
pub const DEFAULT_MAX_WRITES: u32 = 10_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_chain_depth: 16,
            limits: Limits {
                max_fuel: Some(DEFAULT_MAX_FUEL),
                max_writes: Some(DEFAULT_MAX_WRITES),
                ..Limits::default()
            },
            budget_window_s: 60,
            stop_after: 3,
            recover_after: 2,
            slow_lane_percent: 25,
            window_fuel: None,
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
    /// Fuel one execution may use (see `exec::txn`, "Fuel").
    pub max_fuel: Option<u64>,
    /// State writes one execution may make (each `set`, `increment`, points award, coupon
    /// take and `store_in` counts one).
    pub max_writes: Option<u32>,
}

impl Limits {
    /// These limits, with `defaults` where these set none.
    pub fn or(&self, defaults: &Limits) -> Limits {
        Limits {
            max_effects: self.max_effects.or(defaults.max_effects),
            max_points: self.max_points.or(defaults.max_points),
            max_emitted_events: self.max_emitted_events.or(defaults.max_emitted_events),
            max_fuel: self.max_fuel.or(defaults.max_fuel),
            max_writes: self.max_writes.or(defaults.max_writes),
        }
    }
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

/// A piece of engine state an action reads or writes (see [`Action::access`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateRef {
    /// An attribute of the event's customer.
    Attr(AttrId),
    /// A shared counter.
    Counter(CounterId),
    /// A coupon pool's cursor.
    PoolCursor(PoolId),
}

/// What one action touches besides its expressions (see [`Action::access`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionAccess<'a> {
    /// State it reads (apart from its expressions' reads).
    pub reads: smallvec::SmallVec<[StateRef; 1]>,
    /// State it writes when it succeeds, one entry per write.
    pub writes: smallvec::SmallVec<[StateRef; 2]>,
    /// The type of the chained event it emits (its triggers run in the same transaction).
    pub emits: Option<&'a Arc<str>>,
    /// Whether it produces an effect.
    pub effect: bool,
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
    /// Its key in a triggers file (`set`, `increment`, …), for logs and spans.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Set { .. } => "set",
            Action::Increment { .. } => "increment",
            Action::AwardPoints { .. } => "award_points",
            Action::IssueCoupon { .. } => "issue_coupon",
            Action::SendMessage { .. } => "send_message",
            Action::StartFeed { .. } => "start_feed",
            Action::EmitEvent { .. } => "emit_event",
        }
    }

    /// State writes the action makes when it succeeds (what `max_writes` counts and fuel
    /// charges): one per attribute, counter or pool cursor it changes. Counted from the action,
    /// not from the executor's view, so every executor and mode counts the same.
    pub fn writes(&self) -> u32 {
        self.access().writes.len() as u32
    }

    /// What the action touches besides what its expressions ([`Action::exprs`]) read: the
    /// one exhaustive description every executor and analysis works from (the locking
    /// executor's footprints, `max_writes`), so a new action cannot be missed by one of them.
    pub fn access(&self) -> ActionAccess<'_> {
        use StateRef::{Attr, Counter, PoolCursor};
        let mut access = ActionAccess::default();
        match self {
            Action::Set { attr, .. } | Action::AwardPoints { attr, .. } => {
                access.writes.push(Attr(*attr));
            }
            Action::Increment { target, .. } => access.writes.push(match target {
                Target::Attr(a) => Attr(*a),
                Target::Counter(c) => Counter(*c),
            }),
            Action::IssueCoupon { pool, store_in, .. } => {
                access.reads.push(PoolCursor(*pool));
                access.writes.push(PoolCursor(*pool));
                access.writes.extend(store_in.map(Attr));
                access.effect = true;
            }
            Action::SendMessage { .. } | Action::StartFeed { .. } => access.effect = true,
            Action::EmitEvent { event_type, .. } => access.emits = Some(event_type),
        }
        access
    }

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
    /// Per-execution limits (the settings' defaults filled in).
    pub limits: Limits,
    /// Stopped by an operator (`stopped:` in the triggers file), with the reason: its
    /// firings are recorded as skipped (`trigger_stopped`) and nothing runs.
    pub stopped: Option<Arc<str>>,
    /// Fuel budget per window, if governed.
    pub budget: Option<Budget>,
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

    /// Whether `code` is one of this pool's codes.
    pub fn contains(&self, code: &str) -> bool {
        match &self.source {
            PoolSource::List(codes) => codes.iter().any(|c| c.as_ref() == code),
            PoolSource::Generated {
                prefix,
                start,
                count,
                width,
            } => generated_number(code, prefix, *width).is_some_and(|n| {
                u128::from(n) >= u128::from(*start)
                    && u128::from(n) < u128::from(*start) + u128::from(*count)
            }),
        }
    }

    /// A code both pools can issue, if there is one (codes must be unique across pools: a
    /// code is redeemed by its text, so two pools issuing it would make it ambiguous).
    /// Exact for every pair, and constant time for two generated pools whatever their sizes.
    pub fn shared_code(&self, other: &Pool) -> Option<Arc<str>> {
        match (&self.source, &other.source) {
            (PoolSource::List(codes), _) => codes.iter().find(|c| other.contains(c)).cloned(),
            (_, PoolSource::List(codes)) => codes.iter().find(|c| self.contains(c)).cloned(),
            (
                PoolSource::Generated {
                    prefix: pa,
                    start: sa,
                    count: ca,
                    width: wa,
                },
                PoolSource::Generated {
                    prefix: pb,
                    start: sb,
                    count: cb,
                    width: wb,
                },
            ) => {
                let a = Sequence {
                    prefix: pa,
                    start: *sa,
                    count: *ca,
                    width: *wa,
                };
                let b = Sequence {
                    prefix: pb,
                    start: *sb,
                    count: *cb,
                    width: *wb,
                };
                if pb.starts_with(pa.as_ref()) {
                    shared_generated(&a, &b)
                } else if pa.starts_with(pb.as_ref()) {
                    shared_generated(&b, &a)
                } else {
                    None
                }
            }
        }
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

/// A generated code sequence: `prefix` + the number zero-padded to `width` digits.
struct Sequence<'a> {
    prefix: &'a str,
    start: u64,
    count: u64,
    width: usize,
}

/// The number `code` stands for in a generated sequence with `prefix` and `width`, if it is
/// written exactly as the sequence writes it (digits only, padded to `width`, no other
/// leading zeros).
fn generated_number(code: &str, prefix: &str, width: usize) -> Option<u64> {
    let digits = code.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (digits.len() == width.max(digit_count(u128::from(n)))).then_some(n)
}

fn digit_count(n: u128) -> usize {
    let mut d = 1;
    let mut n = n / 10;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

/// A code of `b` that `a` also issues, where `a.prefix` is a prefix of `b.prefix`.
///
/// `b`'s codes are `a.prefix + t + pad(n, b.width)` with `t` the rest of `b`'s prefix. Unless
/// `t` is all digits they never read as one of `a`'s numbers. Otherwise, for each length `L`
/// of `pad(n, b.width)`, the numbers `n` of that length form an interval, the digits after
/// `a.prefix` read as `m = t·10^L + n` (an interval too), and that text is how `a` writes `m`
/// exactly when its length `len(t) + L` is `a.width`, or is longer and has no leading zero
/// (`m ≥ 10^(len(t)+L-1)`). Intersecting with `a`'s range answers each `L` in O(1).
fn shared_generated(a: &Sequence<'_>, b: &Sequence<'_>) -> Option<Arc<str>> {
    let t = &b.prefix[a.prefix.len()..];
    if !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let head: u128 = if t.is_empty() { 0 } else { t.parse().ok()? };
    let (b_lo, b_hi) = (
        u128::from(b.start),
        u128::from(b.start) + u128::from(b.count),
    );
    let (a_lo, a_hi) = (
        u128::from(a.start),
        u128::from(a.start) + u128::from(a.count),
    );
    let pow = |e: usize| 10u128.checked_pow(u32::try_from(e).ok()?);
    for len in 1..=20usize {
        // The numbers n with len(pad(n, b.width)) == len.
        let (n_lo, n_hi) = match len.cmp(&b.width) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => (0, pow(len)?),
            std::cmp::Ordering::Greater if len == 1 => (0, 10),
            std::cmp::Ordering::Greater => (pow(len - 1)?, pow(len)?),
        };
        let (n_lo, n_hi) = (n_lo.max(b_lo), n_hi.min(b_hi));
        if n_lo >= n_hi {
            continue;
        }
        let text_len = t.len() + len;
        let base = head.checked_mul(pow(len)?)?;
        let (mut m_lo, m_hi) = (base + n_lo, base + n_hi);
        match text_len.cmp(&a.width) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => {}
            std::cmp::Ordering::Greater => m_lo = m_lo.max(pow(text_len - 1)?),
        }
        let lo = m_lo.max(a_lo);
        if lo < m_hi.min(a_hi) {
            let n = lo - base;
            return Some(Arc::from(format!(
                "{}{:0width$}",
                b.prefix,
                n,
                width = b.width
            )));
        }
    }
    None
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

    fn generated(prefix: &str, start: u64, count: u64, width: usize) -> Pool {
        Pool {
            id: Arc::from(prefix),
            source: PoolSource::Generated {
                prefix: Arc::from(prefix),
                start,
                count,
                width,
            },
        }
    }

    fn all_codes(p: &Pool) -> Vec<Arc<str>> {
        (0..p.len()).filter_map(|i| p.code(i)).collect()
    }

    #[test]
    fn membership_follows_how_the_pool_writes_its_codes() {
        let p = generated("W-", 5, 10, 3);
        assert!(p.contains("W-005") && p.contains("W-014"));
        assert!(!p.contains("W-5") && !p.contains("W-0005") && !p.contains("W-015"));
        assert!(!p.contains("W-00x") && !p.contains("X-005"));
        let wide = generated("", 999, 2, 0);
        assert!(wide.contains("999") && wide.contains("1000") && !wide.contains("0999"));
    }

    #[test]
    fn shared_codes_are_found_across_prefixes_widths_and_lists() {
        // "W-0" + "01" reads as "W-" + "001".
        let a = generated("W-", 0, 1000, 3);
        let b = generated("W-0", 1, 5, 2);
        assert_eq!(a.shared_code(&b).as_deref(), Some("W-001"));
        assert_eq!(b.shared_code(&a).as_deref(), Some("W-001"));
        // Same prefix, different widths: "W-01" vs "W-001" never coincide.
        assert_eq!(
            generated("W-", 0, 100, 2).shared_code(&generated("W-", 0, 100, 3)),
            None
        );
        // Disjoint ranges.
        assert_eq!(
            generated("W-", 0, 10, 2).shared_code(&generated("W-", 10, 10, 2)),
            None
        );
        let list = Pool {
            id: Arc::from("l"),
            source: PoolSource::List(vec![Arc::from("A"), Arc::from("W-07")]),
        };
        assert_eq!(
            list.shared_code(&generated("W-", 0, 10, 2)).as_deref(),
            Some("W-07")
        );
    }

    proptest::proptest! {
        /// The O(1) answer for two generated pools equals enumerating both.
        #[test]
        fn shared_generated_equals_enumeration(
            pa in proptest::sample::select(vec!["", "C", "C1", "C0", "C12", "D"]),
            pb in proptest::sample::select(vec!["", "C", "C1", "C0", "C12", "D"]),
            sa in 0u64..130, ca in 0u64..130, wa in 0usize..4,
            sb in 0u64..130, cb in 0u64..130, wb in 0usize..4,
        ) {
            let a = generated(pa, sa, ca, wa);
            let b = generated(pb, sb, cb, wb);
            let codes_a: std::collections::HashSet<_> = all_codes(&a).into_iter().collect();
            let expected = all_codes(&b).into_iter().any(|c| codes_a.contains(&c));
            let found = a.shared_code(&b);
            proptest::prop_assert_eq!(found.is_some(), expected, "{:?} / {:?}: {:?}", a, b, found);
            if let Some(code) = found {
                proptest::prop_assert!(a.contains(&code) && b.contains(&code));
                proptest::prop_assert!(codes_a.contains(&code));
            }
        }
    }
}
