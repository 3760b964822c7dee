//! Summary statistics shared by the hand-written benches (`breakdown`, `gate`, `segments`).

/// The median (the upper one for an even count) of a non-empty sample.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}
