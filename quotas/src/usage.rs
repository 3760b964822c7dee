//! Quantities in the two metered dimensions: records and bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest amount a quota counts in one dimension: 2^48 − 1
/// (≈ 281 × 10^12 records or bytes per day).
///
/// Counters are packed with a 16-bit period tag into one 64-bit word (see
/// `ledger::memory`) and travel through Redis Lua, whose numbers are IEEE
/// doubles; 48 bits is exact in both. Configured limits above it are
/// rejected; requests above it can never fit and are denied.
pub const MAX_AMOUNT: u64 = (1 << 48) - 1;

/// An amount of transfer: records and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Number of records.
    pub records: u64,
    /// Number of bytes.
    pub bytes: u64,
}

impl Usage {
    /// Nothing.
    pub const ZERO: Usage = Usage {
        records: 0,
        bytes: 0,
    };

    /// Builds a usage.
    pub const fn new(records: u64, bytes: u64) -> Usage {
        Usage { records, bytes }
    }

    /// The amount in one dimension.
    pub fn get(self, dim: Dimension) -> u64 {
        match dim {
            Dimension::Records => self.records,
            Dimension::Bytes => self.bytes,
        }
    }

    /// Component-wise saturating subtraction.
    pub fn saturating_sub(self, other: Usage) -> Usage {
        Usage::new(
            self.records.saturating_sub(other.records),
            self.bytes.saturating_sub(other.bytes),
        )
    }

    /// Component-wise minimum.
    pub fn min(self, other: Usage) -> Usage {
        Usage::new(self.records.min(other.records), self.bytes.min(other.bytes))
    }

    /// True when both components are zero.
    pub fn is_zero(self) -> bool {
        self.records == 0 && self.bytes == 0
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} records, {} bytes", self.records, self.bytes)
    }
}

/// Daily limits; `None` leaves a dimension unmetered. Configuration
/// guarantees at least one is set and each is in `1..=MAX_AMOUNT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Records per quota day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Bytes per quota day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Limits {
    /// Builds limits.
    pub const fn new(records: Option<u64>, bytes: Option<u64>) -> Limits {
        Limits { records, bytes }
    }

    /// The limit in one dimension.
    pub fn get(self, dim: Dimension) -> Option<u64> {
        match dim {
            Dimension::Records => self.records,
            Dimension::Bytes => self.bytes,
        }
    }

    /// The same limits as ledger caps (unmetered = [`MAX_AMOUNT`]).
    pub fn caps(self) -> Usage {
        Usage::new(
            self.records.unwrap_or(MAX_AMOUNT).min(MAX_AMOUNT),
            self.bytes.unwrap_or(MAX_AMOUNT).min(MAX_AMOUNT),
        )
    }

    /// Inverse of [`Limits::caps`].
    pub fn from_caps(caps: Usage) -> Limits {
        let f = |v: u64| (v < MAX_AMOUNT).then_some(v);
        Limits::new(f(caps.records), f(caps.bytes))
    }

    /// Warning thresholds: `ceil(limit × warn_at)` per metered dimension,
    /// [`MAX_AMOUNT`] for unmetered ones.
    pub fn warn_thresholds(self, warn_at: f64) -> Usage {
        let f = |limit: Option<u64>| match limit {
            // limit ≤ 2^48 is exact in f64; the product is clamped back into range.
            Some(l) => ((l as f64 * warn_at).ceil() as u64).clamp(1, l),
            None => MAX_AMOUNT,
        };
        Usage::new(f(self.records), f(self.bytes))
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
        write!(
            f,
            "{} records, {} bytes",
            show(self.records),
            show(self.bytes)
        )
    }
}

/// One metered dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Record count.
    Records,
    /// Byte count.
    Bytes,
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::Records => "records",
            Dimension::Bytes => "bytes",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_thresholds_round_up_and_stay_in_range() {
        let l = Limits::new(Some(10), None);
        assert_eq!(l.warn_thresholds(0.8), Usage::new(8, MAX_AMOUNT));
        assert_eq!(
            Limits::new(Some(3), Some(1)).warn_thresholds(0.5),
            Usage::new(2, 1)
        );
        assert_eq!(Limits::new(Some(7), None).warn_thresholds(1.0).records, 7);
    }

    #[test]
    fn caps_round_trip() {
        let l = Limits::new(None, Some(99));
        assert_eq!(Limits::from_caps(l.caps()), l);
    }
}
