//! Trigger conditions and computed arguments: CEL, compiled once, evaluated fast.
//!
//! Expressions use the syntax of the Common Expression Language (CEL, as in Kubernetes and
//! Envoy), parsed by the `cel` crate's parser. Instead of interpreting that AST against a map
//! of variables built for every evaluation (what a CEL interpreter does), [`CompiledExpr::compile`]
//! resolves every name once against the customer [`Schema`] and the
//! configured counters, checks operand types where they are known, and produces a tree of
//! `Node`s whose leaves are slots: "attribute #3 of this customer",
//! "property `total` of the event". Evaluation walks that tree reading straight from typed
//! storage through a [`Scope`]; nothing is allocated for scalar results.
//!
//! # Names an expression can use
//! | name | type | meaning |
//! |---|---|---|
//! | `customer.<attr>` | attribute's type | an attribute of the event's customer (null if unset) |
//! | `customer.id` | int | the customer id |
//! | `event.id`, `event.type`, `event.process` | string | event fields (`process` may be null) |
//! | `event.timestamp` | timestamp | when the event happened |
//! | `event.customer_id` | int | the customer id |
//! | `event.properties.<key>` / `event.properties['key']` | dynamic | a property (error if absent) |
//! | `now` | timestamp | the run clock: the timestamp of the event being processed |
//! | `counters.<name>` | int or float | a shared counter |
//! | `coupon` | string | the code issued by this execution's latest `issue_coupon` action |
//! | `segment('id')` | bool | the customer is in segment `id`'s latest published membership ([`segments`]) |
//!
//! # Semantics (where CEL leaves room, and where Fusebox is stricter or kinder)
//! - Numbers: `int` and `float` mix freely (`total > 50` works when `total` is `50.5`); integer
//!   arithmetic is checked: overflow and division by zero are errors, never wrap.
//! - `null` equals only `null`; ordering a `null` (`customer.age > 30` with age unset) is an
//!   error — guard with `has(customer.age)`, which is true when the attribute is not null.
//! - `&&` / `||` absorb errors the CEL way: `false && error` is `false`, `true || error` is
//!   `true`.
//! - Timestamps and durations: `now - customer.last_order_at > duration('720h')`,
//!   `timestamp('2026-01-01T00:00:00Z')`, `t.getHours()`, `t.getDayOfWeek()` (UTC, Sunday=0).
//! - Functions: `size`, `int`, `double`, `string`, `timestamp`, `duration`, `startsWith`,
//!   `endsWith`, `contains`, `matches` (literal pattern, compiled once), `lowerAscii`,
//!   `upperAscii`, and the macros `has`, `exists`, `all`, `exists_one`, `map`, `filter`.
//! - An evaluation error aborts the trigger execution it belongs to, with the error recorded
//!   in the outcome; it never panics and never silently counts as `false`.

mod compile;
mod eval;
pub mod segments;

use std::fmt;

use rustc_hash::FxHashMap;

pub use compile::Ty;
pub use eval::{EvalError, Scope};

use crate::customers::Schema;
use crate::value::Value;

/// Index of a shared counter.
pub type CounterId = u16;

/// What names resolve to while compiling.
pub struct ExprEnv<'a> {
    /// Customer attributes.
    pub schema: &'a Schema,
    /// Shared counters by name, with their value type (`Ty::Int` or `Ty::Float`).
    pub counters: &'a FxHashMap<String, (CounterId, Ty)>,
    /// Whether `coupon` may be referenced (only after an `issue_coupon` action).
    pub coupon_available: bool,
    /// Accept unknown `customer.<attr>` names as dynamic values (for checking a triggers file
    /// without its customer file; such expressions must not be run).
    pub lenient_customer: bool,
}

/// The candidate closest to `name` by edit distance, if any is close enough to suggest.
pub fn closest_name<'n>(name: &str, candidates: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    compile::closest(name, candidates)
}

/// A compile error, located inside the expression's source text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Byte range in the source, if known.
    pub span: Option<(usize, usize)>,
    /// A hint on how to fix it.
    pub help: Option<String>,
}

/// A compiled expression.
#[derive(Clone)]
pub struct CompiledExpr {
    source: String,
    root: compile::Node,
    ty: Ty,
    locals: usize,
}

impl fmt::Debug for CompiledExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompiledExpr({:?}: {:?})", self.source, self.ty)
    }
}

impl CompiledExpr {
    /// Parses and compiles `source`.
    pub fn compile(source: &str, env: &ExprEnv<'_>) -> Result<CompiledExpr, ExprError> {
        compile::compile(source, env)
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The statically known result type (`Ty::Dyn` when it depends on data).
    pub fn ty(&self) -> Ty {
        self.ty
    }

    /// Whether the expression is exactly `coupon` (the code passes through unchanged).
    pub fn is_coupon_passthrough(&self) -> bool {
        matches!(self.root, compile::Node::Coupon)
    }

    /// Whether the expression mentions `coupon` anywhere.
    pub fn uses_coupon(&self) -> bool {
        self.root.any(&|n| matches!(n, compile::Node::Coupon))
    }

    /// Every shared counter the expression may read (`counters.<name>`), in first-mention
    /// order, without repeats. Executors that lock up front use it to know an execution's
    /// footprint before running it.
    pub(crate) fn counters_used(&self) -> Vec<CounterId> {
        let found = std::cell::RefCell::new(Vec::new());
        self.root.any(&|n| {
            if let compile::Node::Counter(c) = n {
                let mut found = found.borrow_mut();
                if !found.contains(c) {
                    found.push(*c);
                }
            }
            false
        });
        found.into_inner()
    }

    /// Evaluates the expression.
    pub fn eval(&self, scope: &mut dyn Scope) -> Result<Value, EvalError> {
        if self.locals == 0 {
            self.root.eval(scope, &mut Vec::new())
        } else {
            let mut locals = vec![Value::Null; self.locals];
            self.root.eval(scope, &mut locals)
        }
    }

    /// Evaluates a condition: the result must be a bool.
    pub fn eval_bool(&self, scope: &mut dyn Scope) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Type(format!(
                "condition must be a bool, got {}",
                other.kind()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
