//! Triggers files: YAML in, a validated [`TriggerSet`] out, or every problem, located.
//!
//! The pipeline is parse ([`raw`], serde with spans, every shape problem reported by
//! [`shape`]) → resolve and type-check against the customer schema → order. Nothing here
//! runs a trigger. Errors come as one [`ConfigError`]: the shape problems (unknown keys, wrong
//! types, missing fields), then the problems of the parts that did parse. See the README for the schema; in
//! short:
//!
//! ```yaml
//! event_types: [order.completed, points.milestone]
//! pools:
//!   - id: welcome10
//!     generate: { prefix: "W10-", count: 50000 }
//! triggers:
//!   - id: order-points
//!     owner: loyalty@shop.example
//!     on: order.completed
//!     condition: "event.properties.total > 50"
//!     actions:
//!       - award_points: { amount: "int(event.properties.total / 10)" }
//!       - issue_coupon: { pool: welcome10 }
//!       - send_message: { channel: sms, template: thanks, args: { code: "coupon" } }
//! ```
//!
//! Compiling without a customer schema ([`compile_triggers`] with `schema: None`) checks
//! everything except attribute names and types; such a set is only good for `fusebox check`
//! and [`TriggerSet::is_runnable`] says so.

mod diagnostic;
pub mod raw;
pub mod shape;
mod stack;

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_saphyr::{Location, Spanned};

pub use diagnostic::{from_yaml_error, scalar_content_offset, ConfigError, Diagnostic, Severity};
pub use stack::{on_config_stack, CONFIG_STACK};

use crate::customers::{AttrId, Schema};
use crate::expr::{CompiledExpr, CounterId, ExprEnv, ExprError, Ty};
use crate::trigger::{
    Action, Channel, CounterSpec, Limits, NamedExprs, Pool, PoolId, PoolSource, Settings, Target,
    Trigger, TriggerSet,
};
use crate::value::{AttrType, Value};
use raw::{ActionDef, TriggerFile};

/// Hard ceiling on `max_chain_depth`, so a typo cannot make a runaway cascade "allowed".
pub const MAX_CHAIN_DEPTH_LIMIT: i64 = 1000;

/// Parses and compiles a triggers file.
///
/// `file` names the file in diagnostics. With `schema: None`, attribute names and types are
/// not checked and the result is not runnable (see the module docs).
pub fn compile_triggers(
    text: &str,
    file: &str,
    schema: Option<&Schema>,
) -> Result<TriggerSet, ConfigError> {
    on_config_stack(|| compile_here(text, file, schema))
}

fn compile_here(
    text: &str,
    file: &str,
    schema: Option<&Schema>,
) -> Result<TriggerSet, ConfigError> {
    let fail = |diagnostics: Vec<Diagnostic>| ConfigError::new(file, text, diagnostics);
    if text.trim().is_empty() {
        return Err(fail(vec![Diagnostic::global("the triggers file is empty")
            .with_help("a triggers file needs at least `triggers:` with one trigger; see examples/triggers.yaml")]));
    }
    let mut shaped = shape::read_shape::<TriggerFile>(text);
    let Some(parsed) = shaped.value.take() else {
        return Err(fail(shaped.problems));
    };
    let empty = Schema::default();
    let mut c = Checker {
        text,
        schema: schema.unwrap_or(&empty),
        lenient: schema.is_none(),
        diags: Vec::new(),
        counters: FxHashMap::default(),
        default_limits: Settings::default().limits,
        broken: Broken {
            triggers: shaped.has_broken("triggers"),
            pools: shaped.broken_ids("pools").map(str::to_string).collect(),
            counters: shaped.broken_ids("counters").map(str::to_string).collect(),
        },
    };
    let set = c.file(parsed);
    c.diags.sort_by_key(|d| (d.line, d.column));
    if !shaped.problems.is_empty() || c.diags.iter().any(|d| d.severity == Severity::Error) {
        let mut all = shaped.problems;
        all.append(&mut c.diags);
        return Err(fail(all));
    }
    let mut set = set;
    for w in &mut c.diags {
        w.locate_in(text);
    }
    set.warnings = c.diags;
    set.checked_against_schema = schema.is_some();
    Ok(set)
}

/// What the shape pass left out (see [`shape`]), so that checks do not report its
/// consequences a second time.
#[derive(Default)]
struct Broken {
    /// Some trigger was left out: an empty `triggers:` is not "no triggers defined".
    triggers: bool,
    /// Ids of left-out pools: references to them are not "unknown".
    pools: FxHashSet<String>,
    /// Ids of left-out counters: references to them are not "unknown".
    counters: FxHashSet<String>,
}

struct Checker<'a> {
    text: &'a str,
    schema: &'a Schema,
    lenient: bool,
    diags: Vec<Diagnostic>,
    counters: FxHashMap<String, (CounterId, Ty)>,
    broken: Broken,
    /// The settings' per-execution limits, filled into every trigger's.
    default_limits: Limits,
}

/// Where an action's expressions may look.
struct ActionScope<'s> {
    pools: &'s FxHashMap<String, PoolId>,
    coupon_issued: bool,
}

impl Checker<'_> {
    fn error(&mut self, at: Location, msg: impl Into<String>, help: Option<String>) {
        self.diags
            .push(Diagnostic::error(at, msg).with_help_opt(help));
    }

    fn warn(&mut self, at: Location, msg: impl Into<String>, help: Option<String>) {
        self.diags
            .push(Diagnostic::warning(at, msg).with_help_opt(help));
    }

    /// Validated per-execution limits (each at least 1).
    fn limits(
        &mut self,
        max_effects: &Option<Spanned<i64>>,
        max_points: &Option<Spanned<i64>>,
        max_emitted_events: &Option<Spanned<i64>>,
        max_fuel: &Option<Spanned<i64>>,
        max_writes: &Option<Spanned<i64>>,
    ) -> Limits {
        let small = |v: i64| v.min(u32::MAX as i64) as u32;
        Limits {
            max_effects: self.positive(max_effects, "max_effects").map(small),
            max_points: self.positive(max_points, "max_points"),
            max_emitted_events: self
                .positive(max_emitted_events, "max_emitted_events")
                .map(small),
            max_fuel: self.positive(max_fuel, "max_fuel").map(|v| v as u64),
            max_writes: self.positive(max_writes, "max_writes").map(small),
        }
    }

    fn positive(&mut self, v: &Option<Spanned<i64>>, what: &str) -> Option<i64> {
        let v = v.as_ref()?;
        if v.value <= 0 {
            self.error(
                v.referenced,
                format!("{what} must be at least 1, got {}", v.value),
                None,
            );
            return None;
        }
        Some(v.value)
    }

    fn file(&mut self, f: TriggerFile) -> TriggerSet {
        if let Some(v) = &f.version {
            if v.value != 1 {
                self.error(
                    v.referenced,
                    format!("unsupported version {}", v.value),
                    Some("the only version is 1".into()),
                );
            }
        }
        let mut settings = Settings::default();
        if let Some(s) = &f.settings {
            if let Some(d) = &s.value.max_chain_depth {
                if d.value < 1 || d.value > MAX_CHAIN_DEPTH_LIMIT {
                    self.error(
                        d.referenced,
                        format!(
                            "max_chain_depth must be between 1 and {MAX_CHAIN_DEPTH_LIMIT}, got {}",
                            d.value
                        ),
                        None,
                    );
                } else {
                    settings.max_chain_depth = d.value as u32;
                }
            }
            let defaults = self.limits(
                &s.value.max_effects,
                &None,
                &s.value.max_emitted_events,
                &s.value.max_fuel,
                &s.value.max_writes,
            );
            settings.limits = defaults.or(&settings.limits);
            let small = |v: i64| v.min(u32::MAX as i64) as u32;
            if let Some(v) = self.positive(&s.value.budget_window, "budget_window") {
                settings.budget_window_s = small(v);
            }
            if let Some(v) = self.positive(&s.value.stop_after_windows, "stop_after_windows") {
                settings.stop_after = small(v);
            }
            if let Some(v) = self.positive(&s.value.recover_after_windows, "recover_after_windows")
            {
                settings.recover_after = small(v);
            }
            if let Some(v) = self.positive(&s.value.window_fuel, "window_fuel") {
                settings.window_fuel = Some(v as u64);
            }
            if let Some(share) = &s.value.slow_lane_share {
                if (1..=100).contains(&share.value) {
                    settings.slow_lane_percent = share.value as u32;
                } else {
                    self.error(
                        share.referenced,
                        format!(
                            "slow_lane_share is a percentage between 1 and 100, got {}",
                            share.value
                        ),
                        None,
                    );
                }
            }
        }
        self.default_limits = settings.limits.clone();
        let declared = f.event_types.as_ref().map(|types| {
            let mut set: FxHashMap<String, Location> = FxHashMap::default();
            for t in types {
                if t.value.trim().is_empty() {
                    self.error(t.referenced, "empty event type", None);
                } else if let Some(first) = set.get(&t.value) {
                    let line = first.line();
                    self.error(
                        t.referenced,
                        format!(
                            "event type `{}` is declared twice (first at line {line})",
                            t.value
                        ),
                        None,
                    );
                } else {
                    set.insert(t.value.clone(), t.referenced);
                }
            }
            set
        });
        let pools = self.pools(&f.pools);
        let counters = self.counter_specs(&f.counters);
        // A counter whose definition broke still resolves (to a placeholder of any type), so
        // expressions using it are checked without an "unknown counter" of their own.
        for id in &self.broken.counters {
            self.counters
                .entry(id.clone())
                .or_insert((CounterId::MAX, Ty::Dyn));
        }
        let pool_index: FxHashMap<String, PoolId> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.to_string(), i as PoolId))
            .collect();

        if f.triggers.value.is_empty() && !self.broken.triggers {
            self.error(
                f.triggers.referenced,
                "no triggers defined",
                Some("add at least one trigger under `triggers:`".into()),
            );
        }
        let mut seen_ids: FxHashMap<String, u64> = FxHashMap::default();
        let mut triggers = Vec::new();
        let mut emits: Vec<ChainEdge> = Vec::new();
        for def in f.triggers.value {
            if let Some(first_line) = seen_ids.get(&def.id.value) {
                self.error(
                    def.id.referenced,
                    format!(
                        "duplicate trigger id `{}` (first defined at line {first_line})",
                        def.id.value
                    ),
                    Some("trigger ids must be unique; rename one of them".into()),
                );
            } else {
                seen_ids.insert(def.id.value.clone(), def.id.referenced.line());
            }
            let emitted: Vec<(String, Location)> = def
                .actions
                .value
                .iter()
                .filter_map(|a| match &a.value {
                    ActionDef::EmitEvent { event_type, .. } => {
                        Some((event_type.value.clone(), event_type.referenced))
                    }
                    _ => None,
                })
                .collect();
            let (on, trigger_id, enabled, unconditional) = (
                def.on.value.clone(),
                def.id.value.clone(),
                def.enabled.unwrap_or(true),
                def.condition.is_none(),
            );
            if let Some(t) = self.trigger(def, &pool_index, declared.as_ref()) {
                triggers.push(t);
            }
            if enabled {
                for (target, at) in emitted {
                    emits.push(ChainEdge {
                        from: on.clone(),
                        to: target,
                        unconditional,
                        at,
                        trigger: trigger_id.clone(),
                    });
                }
            }
        }
        self.check_chain_cycles(&emits, &settings);

        triggers.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        if let Some(total) = settings.window_fuel {
            let enabled = triggers.iter().filter(|t| t.enabled).count().max(1) as u64;
            let fair = (total / enabled).max(1);
            for t in triggers
                .iter_mut()
                .filter(|t| t.enabled && t.budget.is_none())
            {
                t.budget = Some(crate::trigger::Budget {
                    fuel: fair.saturating_mul(2),
                    hard_fuel: fair.saturating_mul(4),
                });
            }
        }
        let mut by_event_type: FxHashMap<Arc<str>, Vec<u32>> = FxHashMap::default();
        for (i, t) in triggers.iter().enumerate() {
            if t.enabled {
                by_event_type
                    .entry(t.on.clone())
                    .or_default()
                    .push(i as u32);
            }
        }
        let known_event_types: FxHashSet<Arc<str>> = match declared {
            Some(d) => d.into_keys().map(Arc::from).collect(),
            None => triggers
                .iter()
                .flat_map(|t| {
                    std::iter::once(t.on.clone())
                        .chain(t.actions.iter().filter_map(|a| a.access().emits.cloned()))
                })
                .collect(),
        };
        TriggerSet {
            settings,
            triggers,
            pools,
            counters,
            warnings: Vec::new(),
            by_event_type,
            known_event_types,
            checked_against_schema: false,
        }
    }

    fn pools(&mut self, defs: &[raw::PoolDef]) -> Vec<Pool> {
        let mut pools: Vec<Pool> = Vec::new();
        for def in defs {
            if def.id.value.trim().is_empty() {
                self.error(def.id.referenced, "empty pool id", None);
                continue;
            }
            if pools.iter().any(|p| *p.id == *def.id.value) {
                self.error(
                    def.id.referenced,
                    format!("duplicate pool id `{}`", def.id.value),
                    None,
                );
                continue;
            }
            let source = match (&def.codes, &def.generate) {
                (Some(codes), None) => {
                    if codes.value.is_empty() {
                        self.error(
                            codes.referenced,
                            format!("pool `{}` has an empty code list", def.id.value),
                            None,
                        );
                        continue;
                    }
                    let mut seen: FxHashSet<&str> = FxHashSet::default();
                    let mut ok = true;
                    for code in &codes.value {
                        if code.is_empty() || !seen.insert(code.as_str()) {
                            let what = if code.is_empty() {
                                "an empty code".to_string()
                            } else {
                                format!("code `{code}` twice")
                            };
                            self.error(
                                codes.referenced,
                                format!("pool `{}` lists {what}", def.id.value),
                                Some(
                                    "every code must be unique: each is issued at most once".into(),
                                ),
                            );
                            ok = false;
                            break;
                        }
                    }
                    if !ok {
                        continue;
                    }
                    PoolSource::List(codes.value.iter().map(|c| Arc::from(c.as_str())).collect())
                }
                (None, Some(gen)) => {
                    let g = &gen.value;
                    let Some(count) = self.positive(&Some(g.count.clone()), "generate.count")
                    else {
                        continue;
                    };
                    let start = match &g.start {
                        Some(s) if s.value < 0 => {
                            self.error(s.referenced, "generate.start must not be negative", None);
                            continue;
                        }
                        Some(s) => s.value as u64,
                        None => 1,
                    };
                    let last = start.saturating_add(count as u64 - 1);
                    let digits = last.to_string().len();
                    let width = match &g.width {
                        Some(w) if w.value < 0 || w.value > 40 => {
                            self.error(
                                w.referenced,
                                "generate.width must be between 0 and 40",
                                None,
                            );
                            continue;
                        }
                        Some(w) => (w.value as usize).max(digits),
                        None => digits,
                    };
                    PoolSource::Generated {
                        prefix: Arc::from(g.prefix.as_str()),
                        start,
                        count: count as u64,
                        width,
                    }
                }
                (Some(_), Some(g)) => {
                    self.error(
                        g.referenced,
                        format!("pool `{}` has both `codes` and `generate`", def.id.value),
                        Some("use one of them".into()),
                    );
                    continue;
                }
                (None, None) => {
                    self.error(
                        def.id.referenced,
                        format!("pool `{}` has no codes", def.id.value),
                        Some(
                            "add `codes: [...]` or `generate: { prefix: \"X-\", count: 1000 }`"
                                .into(),
                        ),
                    );
                    continue;
                }
            };
            let pool = Pool {
                id: Arc::from(def.id.value.as_str()),
                source,
            };
            // A code is redeemed by its text: two pools issuing one code would make it
            // ambiguous which offer it stands for (see `Pool::shared_code`).
            if let Some((other, code)) = pools
                .iter()
                .find_map(|p| p.shared_code(&pool).map(|code| (p.id.clone(), code)))
            {
                self.error(
                    def.id.referenced,
                    format!(
                        "pools `{other}` and `{}` can both issue the code `{code}`; coupon codes must be unique across pools",
                        def.id.value
                    ),
                    Some("give the pools different prefixes or code lists".into()),
                );
                continue;
            }
            pools.push(pool);
        }
        pools
    }

    fn counter_specs(&mut self, defs: &[raw::CounterDef]) -> Vec<CounterSpec> {
        let mut out: Vec<CounterSpec> = Vec::new();
        for def in defs {
            if self.counters.contains_key(&def.id.value) {
                self.error(
                    def.id.referenced,
                    format!("duplicate counter id `{}`", def.id.value),
                    None,
                );
                continue;
            }
            let ty = match def.kind.as_ref().map(|k| k.value.as_str()) {
                None | Some("int") => Ty::Int,
                Some("float") => Ty::Float,
                Some(other) => {
                    let at = def
                        .kind
                        .as_ref()
                        .map_or(def.id.referenced, |k| k.referenced);
                    self.error(
                        at,
                        format!("unknown counter kind `{other}`"),
                        Some("use `int` or `float`".into()),
                    );
                    continue;
                }
            };
            let initial = match (ty, def.initial.as_ref()) {
                (Ty::Int, Some(v)) if v.value.fract() != 0.0 || v.value.abs() > 9.0e15 => {
                    self.error(
                        v.referenced,
                        format!(
                            "int counter `{}` needs an integer initial value",
                            def.id.value
                        ),
                        None,
                    );
                    continue;
                }
                (Ty::Int, v) => Value::Int(v.map_or(0, |v| v.value as i64)),
                (_, v) => Value::Float(v.map_or(0.0, |v| v.value)),
            };
            self.counters
                .insert(def.id.value.clone(), (out.len() as CounterId, ty));
            out.push(CounterSpec {
                id: Arc::from(def.id.value.as_str()),
                ty,
                initial,
            });
        }
        out
    }

    fn event_type_ref(
        &mut self,
        t: &Spanned<String>,
        declared: Option<&FxHashMap<String, Location>>,
        role: &str,
    ) {
        if t.value.trim().is_empty() {
            self.error(t.referenced, format!("empty event type in `{role}`"), None);
            return;
        }
        if let Some(declared) = declared {
            if !declared.contains_key(&t.value) {
                let help = crate::expr::closest_name(&t.value, declared.keys().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| "add it to `event_types:`".to_string());
                self.error(
                    t.referenced,
                    format!("unknown event type `{}` (not in `event_types`)", t.value),
                    Some(help),
                );
            }
        }
    }

    fn trigger(
        &mut self,
        def: raw::TriggerDef,
        pools: &FxHashMap<String, PoolId>,
        declared: Option<&FxHashMap<String, Location>>,
    ) -> Option<Trigger> {
        let errors_before = self.error_count();
        if def.id.value.is_empty()
            || !def
                .id
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            // Effect idempotency keys are `{event_id}:{trigger_id}:{action}`; restricting ids
            // keeps those keys unambiguous.
            self.error(
                def.id.referenced,
                format!("invalid trigger id `{}`", def.id.value),
                Some("use letters, digits, `-`, `_` and `.` only".into()),
            );
        }
        if def.owner.value.trim().is_empty() {
            self.error(
                def.owner.referenced,
                format!("trigger `{}` has an empty owner", def.id.value),
                Some("the owner is notified when the trigger is throttled or stopped".into()),
            );
        }
        self.event_type_ref(&def.on, declared, "on");
        let condition = def.condition.as_ref().and_then(|c| {
            let expr = self.expr(c, false)?;
            if !matches!(expr.ty(), Ty::Bool | Ty::Dyn) {
                self.error(
                    c.referenced,
                    format!(
                        "the condition of trigger `{}` is a {}, not a bool",
                        def.id.value,
                        expr.ty().name()
                    ),
                    Some("compare something, e.g. `event.properties.total > 50`".into()),
                );
            }
            Some(expr)
        });
        let limits = def.limits.as_ref().map(|l| {
            self.limits(
                &l.value.max_effects,
                &l.value.max_points,
                &l.value.max_emitted_events,
                &l.value.max_fuel,
                &l.value.max_writes,
            )
        });
        let budget = def.budget.as_ref().and_then(|b| {
            let fuel = self.positive(&Some(b.value.fuel.clone()), "budget fuel")?;
            let hard = match &b.value.hard_fuel {
                Some(h) if h.value < fuel => {
                    self.error(
                        h.referenced,
                        format!("hard_fuel {} is below the budget fuel {fuel}", h.value),
                        Some("the hard budget is the one that stops the trigger: at least the soft one".into()),
                    );
                    return None;
                }
                Some(h) => h.value,
                None => fuel.saturating_mul(2),
            };
            Some(crate::trigger::Budget {
                fuel: fuel as u64,
                hard_fuel: hard as u64,
            })
        });
        let stopped = match &def.stopped {
            Some(reason) if reason.value.trim().is_empty() => {
                self.error(
                    reason.referenced,
                    "`stopped:` needs the reason the trigger is stopped",
                    Some("e.g. `stopped: \"runaway: fires on every event (INC-42)\"`; remove the key to resume it".into()),
                );
                None
            }
            Some(reason) => Some(Arc::from(reason.value.trim())),
            None => None,
        };
        if def.actions.value.is_empty() {
            self.error(
                def.actions.referenced,
                format!("trigger `{}` has no actions", def.id.value),
                None,
            );
        }
        let mut scope = ActionScope {
            pools,
            coupon_issued: false,
        };
        let mut actions = Vec::with_capacity(def.actions.value.len());
        for action in &def.actions.value {
            if let Some(a) = self.action(action, &mut scope, declared) {
                actions.push(a);
            }
        }
        crate::trigger::mark_deferrable_coupons(&mut actions);
        (self.error_count() == errors_before).then(|| Trigger {
            id: Arc::from(def.id.value.as_str()),
            owner: Arc::from(def.owner.value.as_str()),
            on: Arc::from(def.on.value.as_str()),
            priority: def.priority.unwrap_or(100),
            enabled: def.enabled.unwrap_or(true),
            condition,
            actions,
            limits: limits.unwrap_or_default().or(&self.default_limits),
            stopped,
            budget,
        })
    }

    fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    fn expr(&mut self, src: &Spanned<String>, coupon_available: bool) -> Option<CompiledExpr> {
        let env = ExprEnv {
            schema: self.schema,
            counters: &self.counters,
            coupon_available,
            lenient_customer: self.lenient,
        };
        match CompiledExpr::compile(&src.value, &env) {
            Ok(e) => Some(e),
            Err(err) => {
                self.expr_error(src, err);
                None
            }
        }
    }

    /// Places an expression error inside the YAML scalar that holds the expression.
    fn expr_error(&mut self, src: &Spanned<String>, err: ExprError) {
        let mut d = Diagnostic::error(
            src.referenced,
            format!("in CEL expression: {}", err.message),
        )
        .with_help_opt(err.help);
        if let (Some(base), Some((s, e))) =
            (scalar_content_offset(self.text, src.referenced), err.span)
        {
            let single_line = !src.value.contains('\n');
            // The expression's text is found verbatim at `base` for plain and simply quoted
            // scalars; otherwise (escapes, folded blocks) we point at the scalar as a whole.
            if single_line
                && self.text.get(base..base + src.value.len()) == Some(src.value.as_str())
            {
                d.span = Some((base + s, base + e.max(s + 1)));
                d.column = src.referenced.column()
                    + (base - src.referenced.span().byte_offset().unwrap_or(base as u64) as usize)
                        as u64
                    + src.value[..s].chars().count() as u64;
            }
        }
        self.diags.push(d);
    }

    fn attr(&mut self, name: &Spanned<String>, allowed: &[AttrType], role: &str) -> Option<AttrId> {
        if self.lenient {
            return Some(0);
        }
        match self.schema.attr(&name.value) {
            Some((id, ty)) if allowed.is_empty() || allowed.contains(&ty) => Some(id),
            Some((_, ty)) => {
                let wanted: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
                self.error(
                    name.referenced,
                    format!(
                        "attribute `{}` is {ty}; `{role}` needs {}",
                        name.value,
                        wanted.join(" or ")
                    ),
                    None,
                );
                None
            }
            None => {
                let help =
                    crate::expr::closest_name(&name.value, self.schema.iter().map(|(_, n, _)| n))
                        .map(|c| format!("did you mean `{c}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "customer attributes: {}",
                                self.schema
                                    .iter()
                                    .map(|(_, n, _)| n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                self.error(
                    name.referenced,
                    format!("unknown customer attribute `{}`", name.value),
                    Some(help),
                );
                None
            }
        }
    }

    fn named(
        &mut self,
        items: &BTreeMap<String, Spanned<String>>,
        coupon: bool,
    ) -> Option<NamedExprs> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (name, src) in items {
            match self.expr(src, coupon) {
                Some(e) => out.push((Arc::from(name.as_str()), e)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn numeric_expr(
        &mut self,
        src: &Spanned<String>,
        coupon: bool,
        int_only: bool,
        role: &str,
    ) -> Option<CompiledExpr> {
        let e = self.expr(src, coupon)?;
        let ok = match e.ty() {
            Ty::Int | Ty::Dyn => true,
            Ty::Float => !int_only,
            _ => false,
        };
        if !ok {
            let wanted = if int_only { "an int" } else { "a number" };
            self.error(
                src.referenced,
                format!(
                    "`{role}` must be {wanted}, but this expression is a {}",
                    e.ty().name()
                ),
                if int_only {
                    Some("wrap it in int(...)".into())
                } else {
                    None
                },
            );
            return None;
        }
        Some(e)
    }

    fn action(
        &mut self,
        action: &Spanned<ActionDef>,
        scope: &mut ActionScope<'_>,
        declared: Option<&FxHashMap<String, Location>>,
    ) -> Option<Action> {
        let coupon = scope.coupon_issued;
        match &action.value {
            ActionDef::Set { attribute, value } => {
                let attr = self.attr(attribute, &[], "set");
                let expr = self.expr(value, coupon)?;
                let attr = attr?;
                if !self.lenient {
                    let ty = self.schema.ty(attr);
                    let fits = match (ty, expr.ty()) {
                        (_, Ty::Dyn | Ty::Null) => true,
                        (AttrType::Float, Ty::Int) => true,
                        (t, e) => Ty::of_attr(t) == e,
                    };
                    if !fits {
                        self.error(value.referenced, format!("attribute `{}` is {ty}, but the value is a {}", attribute.value, expr.ty().name()), Some(if ty == AttrType::String { "string literals need quotes inside the YAML string, e.g. \"'gold'\"".to_string() } else { format!("compute a {ty}") }));
                        return None;
                    }
                }
                Some(Action::Set { attr, value: expr })
            }
            ActionDef::Increment {
                attribute,
                counter,
                by,
            } => {
                let target = match (attribute, counter) {
                    (Some(a), None) => Target::Attr(self.attr(
                        a,
                        &[AttrType::Int, AttrType::Float],
                        "increment",
                    )?),
                    (None, Some(c)) => match self.counters.get(&c.value) {
                        Some(&(id, _)) => Target::Counter(id),
                        None => {
                            let help = crate::expr::closest_name(
                                &c.value,
                                self.counters.keys().map(String::as_str),
                            )
                            .map(|x| format!("did you mean `{x}`?"))
                            .unwrap_or_else(|| "declare it under `counters:`".into());
                            self.error(
                                c.referenced,
                                format!("unknown counter `{}`", c.value),
                                Some(help),
                            );
                            return None;
                        }
                    },
                    _ => {
                        self.error(
                            action.referenced,
                            "`increment` needs exactly one of `attribute` or `counter`",
                            None,
                        );
                        return None;
                    }
                };
                let int_only = match target {
                    Target::Attr(a) => !self.lenient && self.schema.ty(a) == AttrType::Int,
                    Target::Counter(c) => self
                        .counters
                        .values()
                        .any(|&(id, ty)| id == c && ty == Ty::Int),
                };
                let by = match by {
                    Some(src) => self.numeric_expr(src, coupon, int_only, "increment.by")?,
                    None => CompiledExpr::compile(
                        "1",
                        &ExprEnv {
                            schema: self.schema,
                            counters: &self.counters,
                            coupon_available: false,
                            lenient_customer: false,
                        },
                    )
                    .ok()?,
                };
                Some(Action::Increment { target, by })
            }
            ActionDef::AwardPoints { amount, attribute } => {
                let default_name = Spanned {
                    value: "points".to_string(),
                    referenced: action.referenced,
                    defined: action.defined,
                };
                let name = attribute.as_ref().unwrap_or(&default_name);
                let attr = self.attr(name, &[AttrType::Int], "award_points");
                let amount = self.numeric_expr(amount, coupon, true, "award_points.amount")?;
                Some(Action::AwardPoints {
                    attr: attr?,
                    amount,
                })
            }
            ActionDef::IssueCoupon { pool, store_in } => {
                let store = match store_in {
                    Some(a) => Some(self.attr(a, &[AttrType::String], "issue_coupon.store_in")?),
                    None => None,
                };
                let Some(&pool_id) = scope.pools.get(&pool.value) else {
                    if self.broken.pools.contains(&pool.value) {
                        return None;
                    }
                    let help = crate::expr::closest_name(
                        &pool.value,
                        scope.pools.keys().map(String::as_str),
                    )
                    .map(|x| format!("did you mean `{x}`?"))
                    .unwrap_or_else(|| "declare it under `pools:`".into());
                    self.error(
                        pool.referenced,
                        format!("unknown coupon pool `{}`", pool.value),
                        Some(help),
                    );
                    return None;
                };
                scope.coupon_issued = true;
                Some(Action::IssueCoupon {
                    pool: pool_id,
                    store_in: store,
                    deferrable: false,
                })
            }
            ActionDef::SendMessage {
                channel,
                template,
                args,
            } => {
                let ch = Channel::parse(&channel.value);
                if ch.is_none() {
                    self.error(
                        channel.referenced,
                        format!("unknown channel `{}`", channel.value),
                        Some("channels: sms, email, push, webhook".into()),
                    );
                }
                if template.value.trim().is_empty() {
                    self.error(template.referenced, "empty template", None);
                }
                let args = self.named(args, coupon)?;
                Some(Action::SendMessage {
                    channel: ch?,
                    template: Arc::from(template.value.as_str()),
                    args,
                })
            }
            ActionDef::StartFeed { feed, args } => {
                if feed.value.trim().is_empty() {
                    self.error(feed.referenced, "empty feed id", None);
                }
                let args = self.named(args, coupon)?;
                Some(Action::StartFeed {
                    feed: Arc::from(feed.value.as_str()),
                    args,
                })
            }
            ActionDef::EmitEvent {
                event_type,
                properties,
            } => {
                self.event_type_ref(event_type, declared, "emit_event.type");
                let properties = self.named(properties, coupon)?;
                Some(Action::EmitEvent {
                    event_type: Arc::from(event_type.value.as_str()),
                    properties,
                })
            }
        }
    }

    /// Chained events form a graph `event type → event types its triggers emit`. A cycle made
    /// only of unconditional triggers re-fires forever, so every input event that enters it
    /// would run into the depth limit: that is a configuration error. A cycle with a condition
    /// somewhere may terminate and is only a warning (the depth limit still guards it).
    fn check_chain_cycles(&mut self, edges: &[ChainEdge], settings: &Settings) {
        let mut reported: FxHashSet<Vec<String>> = FxHashSet::default();
        let starts: std::collections::BTreeSet<&str> =
            edges.iter().map(|e| e.from.as_str()).collect();
        for start in starts {
            // Depth-first search for paths that come back to `start`.
            let mut stack: Vec<(&str, Vec<&str>, bool)> = vec![(start, vec![start], true)];
            while let Some((node, path, all_unconditional)) = stack.pop() {
                for edge in edges.iter().filter(|e| e.from == node) {
                    let uncond = all_unconditional && edge.unconditional;
                    if edge.to == start {
                        let mut key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                        key.sort();
                        if !reported.insert(key) {
                            continue;
                        }
                        let cycle = path
                            .iter()
                            .copied()
                            .chain(std::iter::once(start))
                            .collect::<Vec<_>>()
                            .join(" → ");
                        let msg = format!(
                            "cyclic event chain {cycle} (closed by trigger `{}`)",
                            edge.trigger
                        );
                        if uncond {
                            self.diags.push(
                                Diagnostic::error(edge.at, format!("{msg}: every trigger on it is unconditional, so each event entering it would cascade until the chain depth limit ({})", settings.max_chain_depth))
                                    .with_help("add a condition that ends the cascade, or remove one `emit_event`"),
                            );
                        } else {
                            self.warn(edge.at, format!("{msg}: it ends only when a condition turns false; the chain depth limit ({}) stops it otherwise", settings.max_chain_depth), None);
                        }
                    } else if !path.contains(&edge.to.as_str()) {
                        let mut p = path.clone();
                        p.push(edge.to.as_str());
                        stack.push((edge.to.as_str(), p, uncond));
                    }
                }
            }
        }
    }
}

/// One `emit_event` of an enabled trigger, as an edge of the chain graph.
struct ChainEdge {
    from: String,
    to: String,
    unconditional: bool,
    at: Location,
    trigger: String,
}

#[cfg(test)]
mod tests;
