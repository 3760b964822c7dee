//! Numeric addition on a key: the single definition every executor uses.
//!
//! `increment` and `award_points` add an amount to a numeric key (an `int` or `float`
//! attribute, or a counter). The eager path adds at once; the deferred path records a
//! [`Delta`] — the amounts to add, in order, to whatever the key holds when the transaction
//! commits — which the committer and the multi-version memory resolve later. All of them call
//! [`Delta::apply_to`], so there is one answer to "what is `null + 1` on a float attribute".
//!
//! ## Invariants
//! - **The result has the key's declared kind.** A [`Delta`] carries the [`NumKind`] of the
//!   key it adds to, and every amount in it is already of that kind (ints are widened when
//!   added to a float key; a float amount for an int key is refused before a delta exists).
//!   Adding to `null` starts from the kind's zero, so `null + 1` on a float attribute is
//!   `1.0`, never the int `1` — whether the addition happens eagerly, at commit, or inside
//!   the multi-version memory. (Storing an int in a float column used to be widened only by
//!   the column, so a later read in the same block saw an int and `x / 8` divided as
//!   integers: executors disagreed.)
//! - **Amounts apply in serial order**, each checked: an int overflow is reported as
//!   [`AddError::Overflow`], never wrapped, and float sums add left to right, so the result is
//!   bit-for-bit the sequential one.

use crate::expr::Ty;
use crate::value::Value;

/// The numeric kind of a key that can be added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumKind {
    /// A 64-bit integer: additions are checked for overflow.
    Int,
    /// A 64-bit float: ints are widened on the way in.
    Float,
}

impl NumKind {
    /// The kind of a key of expression type `ty`; `None` for a non-numeric type.
    pub fn of(ty: Ty) -> Option<NumKind> {
        match ty {
            Ty::Int => Some(NumKind::Int),
            Ty::Float => Some(NumKind::Float),
            _ => None,
        }
    }

    /// The type's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            NumKind::Int => "int",
            NumKind::Float => "float",
        }
    }

    /// `value` as this kind: ints widen to float; a float never narrows to int; `None` if the
    /// value is not a number of an acceptable kind.
    pub fn coerce(self, value: &Value) -> Option<Value> {
        match (self, value) {
            (NumKind::Int, Value::Int(n)) => Some(Value::Int(*n)),
            (NumKind::Float, Value::Int(n)) => Some(Value::Float(*n as f64)),
            (NumKind::Float, Value::Float(x)) => Some(Value::Float(*x)),
            _ => None,
        }
    }

    /// What an addition starts from when the key holds `base`: `null` is this kind's zero.
    fn start(self, base: &Value) -> Option<Value> {
        match (self, base) {
            (NumKind::Int, Value::Null) => Some(Value::Int(0)),
            (NumKind::Float, Value::Null) => Some(Value::Float(0.0)),
            _ => self.coerce(base),
        }
    }
}

/// Why an addition cannot be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The int sum does not fit 64 bits.
    Overflow,
    /// The key or the amount is not a number of the key's kind (only a broken invariant can
    /// produce this: amounts are type-checked when compiled and coerced when recorded).
    NotANumber,
}

/// Amounts; almost always one or two, so kept inline — a delta is copied into the
/// multi-version memory on every speculative execution.
type Amounts = smallvec::SmallVec<[Value; 2]>;

/// Amounts to add, in order, to a key of one [`NumKind`] (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    kind: NumKind,
    amounts: Amounts,
}

impl Delta {
    /// A delta of one amount, coerced to `kind`; `None` if the amount is not of that kind.
    pub fn new(kind: NumKind, amount: &Value) -> Option<Delta> {
        Some(Delta {
            kind,
            amounts: smallvec::smallvec![kind.coerce(amount)?],
        })
    }

    /// One more code taken from a coupon pool: `+1` on its (int) cursor.
    pub fn one_more() -> Delta {
        Delta {
            kind: NumKind::Int,
            amounts: smallvec::smallvec![Value::Int(1)],
        }
    }

    /// Appends the amounts of `later` (a later addition to the same key).
    pub fn extend(&mut self, later: &Delta) {
        debug_assert_eq!(self.kind, later.kind, "one key has one kind");
        self.amounts.extend(later.amounts.iter().cloned());
    }

    /// The value after adding every amount, in order, to `base`.
    pub fn apply_to(&self, base: &Value) -> Result<Value, AddError> {
        let mut acc = self.kind.start(base).ok_or(AddError::NotANumber)?;
        for amount in &self.amounts {
            acc = add(self.kind, &acc, amount)?;
        }
        Ok(acc)
    }
}

/// `base + amount` for a key of `kind` (`base` may be `null`): the eager form of a one-amount
/// [`Delta`], with the same result.
pub fn add(kind: NumKind, base: &Value, amount: &Value) -> Result<Value, AddError> {
    let base = kind.start(base).ok_or(AddError::NotANumber)?;
    let amount = kind.coerce(amount).ok_or(AddError::NotANumber)?;
    match (base, amount) {
        (Value::Int(c), Value::Int(x)) => {
            c.checked_add(x).map(Value::Int).ok_or(AddError::Overflow)
        }
        (Value::Float(c), Value::Float(x)) => Ok(Value::Float(c + x)),
        _ => Err(AddError::NotANumber),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_takes_the_declared_kind() {
        let float = Delta::new(NumKind::Float, &Value::Int(1)).unwrap();
        assert_eq!(float.apply_to(&Value::Null), Ok(Value::Float(1.0)));
        let int = Delta::new(NumKind::Int, &Value::Int(1)).unwrap();
        assert_eq!(int.apply_to(&Value::Null), Ok(Value::Int(1)));
        assert_eq!(
            add(NumKind::Float, &Value::Null, &Value::Int(3)),
            Ok(Value::Float(3.0))
        );
    }

    #[test]
    fn ints_widen_into_float_keys_and_floats_never_narrow() {
        assert_eq!(
            NumKind::Float.coerce(&Value::Int(2)),
            Some(Value::Float(2.0))
        );
        assert_eq!(NumKind::Int.coerce(&Value::Float(2.0)), None);
        assert!(Delta::new(NumKind::Int, &Value::Float(0.5)).is_none());
        // An int already stored in a float key (older data) is read as a float.
        let d = Delta::new(NumKind::Float, &Value::Float(0.5)).unwrap();
        assert_eq!(d.apply_to(&Value::Int(2)), Ok(Value::Float(2.5)));
    }

    #[test]
    fn amounts_apply_in_order_and_overflow_is_reported() {
        let mut d = Delta::new(NumKind::Int, &Value::Int(i64::MAX)).unwrap();
        d.extend(&Delta::new(NumKind::Int, &Value::Int(-1)).unwrap());
        assert_eq!(d.apply_to(&Value::Int(0)), Ok(Value::Int(i64::MAX - 1)));
        assert_eq!(d.apply_to(&Value::Int(1)), Err(AddError::Overflow));
        assert_eq!(
            add(NumKind::Int, &Value::Int(i64::MIN), &Value::Int(-1)),
            Err(AddError::Overflow)
        );
    }

    #[test]
    fn float_sums_match_eager_addition_bit_for_bit() {
        let amounts = [0.1, 0.2, 0.3, 1e16, -1e16];
        let mut d = Delta::new(NumKind::Float, &Value::Float(amounts[0])).unwrap();
        let mut eager = add(NumKind::Float, &Value::Null, &Value::Float(amounts[0])).unwrap();
        for a in &amounts[1..] {
            d.extend(&Delta::new(NumKind::Float, &Value::Float(*a)).unwrap());
            eager = add(NumKind::Float, &eager, &Value::Float(*a)).unwrap();
        }
        assert!(d.apply_to(&Value::Null).unwrap().identical(&eager));
    }

    #[test]
    fn a_non_number_base_is_refused() {
        let d = Delta::new(NumKind::Int, &Value::Int(1)).unwrap();
        assert_eq!(d.apply_to(&Value::str("x")), Err(AddError::NotANumber));
        assert_eq!(d.apply_to(&Value::Float(1.0)), Err(AddError::NotANumber));
    }
}
