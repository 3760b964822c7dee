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
//! The reference is the CEL language definition and its conformance suite
//! (`engine/tests/cel_conformance.rs` holds the applicable cases, by name).
//! - Numbers: `int` (64-bit signed), `uint` (64-bit unsigned: `5u`, `uint(x)`) and `double`.
//!   `int` and `double` mix freely in arithmetic (`total > 50` works when `total` is `50.5`;
//!   a Fusebox convenience, CEL itself does not mix them); `uint` mixes with nothing without
//!   a conversion, as in CEL. Comparisons and `==` compare all three by value. Integer
//!   arithmetic is checked: overflow, division and modulus by zero are errors, never wrap.
//!   `double` arithmetic is IEEE 754, as in CEL: `1.0 / 0.0` is infinity, `0.0 / 0.0` NaN;
//!   NaN is unordered (`<` etc. are false) and equals nothing. Conversions are checked:
//!   `int(x)` needs `x` strictly inside the int range, `uint(-1)` is an error.
//! - `null` equals only `null`; ordering a `null` (`customer.age > 30` with age unset) is an
//!   error — guard with `has(customer.age)`, which is true when the attribute is not null.
//! - `&&` / `||` absorb errors the CEL way: `false && error` is `false`, `true || error` is
//!   `true`; so do the macros built on them: `all` is false if any element is false even when
//!   another errs, `exists` is true if any element is true. An executor's [`EvalError::Halt`]
//!   is never absorbed.
//! - Timestamps and durations: `now - customer.last_order_at > duration('720h')`,
//!   `timestamp('2026-01-01T00:00:00Z')`, `timestamp(1767225600)` (seconds since the epoch).
//!   Getters `getFullYear`, `getMonth`, `getDayOfYear`, `getDayOfMonth`, `getDate`,
//!   `getDayOfWeek` (Sunday=0), `getHours`, `getMinutes`, `getSeconds`, `getMilliseconds`, in
//!   UTC or in a time zone given as an argument (`now.getHours('Europe/Paris')`,
//!   `now.getHours('+02:00')`); on a duration `getHours` etc. give the whole duration in that
//!   unit. Every timestamp an operation produces lies in `0001-01-01T00:00:00Z` ..=
//!   `9999-12-31T23:59:59.999999Z` and every duration within an int64 of nanoseconds (about
//!   ±292 years), else it is a range error. Precision is the microsecond: a literal with finer
//!   digits (`duration('1ns')`) is refused, not rounded.
//! - Maps: literal keys may be strings, ints, uints or bools (`{1: 'one'}[1]`); `1`, `1u` and
//!   `1.0` find the same key; a repeated key is an error. A map with a non-string key is for
//!   use inside an expression: as a result it is an error, since outputs are JSON.
//! - Functions: `size`, `bool`, `int`, `uint`, `double`, `string`, `timestamp`, `duration`,
//!   `dyn`, `startsWith`, `endsWith`, `contains`, `matches` (literal pattern, compiled
//!   once), `lowerAscii`, `upperAscii`, the getters above, and the macros `has`, `exists`,
//!   `all`, `exists_one`, `map` (also `map(x, filter, value)`), `filter`. Not supported: bytes, protobuf messages, `type()`, the
//!   extension libraries, optional values, two-variable comprehensions.
//! - Names and operand types are checked when compiling, so an unknown name or `'a' < 1` is a
//!   compile error (as with CEL's type checker), and a literal-only call that fails
//!   (`duration('3x')`) is one too.
//! - An evaluation error aborts the trigger execution it belongs to, with the error recorded
//!   in the outcome; it never panics and never silently counts as `false`.
//!
//! # Invariants
//! - Compiling resolves every name to a slot and checks every statically known operand type
//!   (`compile`); evaluation (`eval`) only checks `dyn` operands.
//! - Evaluation never panics, whatever the input; compiling never overflows the stack (it
//!   runs on a thread with a large stack; the parser bounds nesting).
//! - Results that leave an expression ([`CompiledExpr::eval`]) are JSON-representable.

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

/// The message (and hint) for a syntax error the CEL parser reported as `parser_message`.
///
/// The parser's depth limit comes as a debug dump of its internal error; it is reported in
/// words instead. Shared by trigger conditions and segments' `cel:` filters.
pub fn describe_syntax_error(parser_message: &str) -> (String, Option<&'static str>) {
    if parser_message.contains("Recursion limit") {
        (
            "the expression nests too deep for the CEL parser".to_string(),
            Some("split it into simpler parts (several conditions or actions)"),
        )
    } else if parser_message.is_empty() {
        ("syntax error".to_string(), None)
    } else {
        (format!("syntax error: {parser_message}"), None)
    }
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
    /// Fuel one evaluation costs before any comprehension iterates.
    cost: u64,
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
    ///
    /// The result can leave the expression: a map with non-string keys (possible inside an
    /// expression, e.g. `{1: 'a'}[1]`) is refused as a result, since outputs are JSON.
    pub fn eval(&self, scope: &mut dyn Scope) -> Result<Value, EvalError> {
        scope.burn(self.cost)?;
        let value = if self.locals == 0 {
            self.root.eval(scope, &mut Vec::new())?
        } else {
            let mut locals = vec![Ok(Value::Null); self.locals];
            self.root.eval(scope, &mut locals)?
        };
        eval::check_output(&value)?;
        Ok(value)
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
