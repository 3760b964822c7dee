//! Chooses, block by block, between speculating and running sequentially, by measured
//! throughput.
//!
//! Whether Block-STM pays off depends on the workload and the machine: with cheap,
//! memory-bound triggers on two cores, speculation costs more than it wins (see
//! `benches/README.md`); with expensive triggers or more cores it wins. Rather than guess, the
//! executor measures: the first full block is speculated, the second runs sequentially, and
//! from then on each block uses the mode with the lower time per transaction (an exponential
//! moving average per mode). Every [`PROBE_EVERY`]th block tries the other mode again, so a
//! change of workload is noticed.
//!
//! Invariant: the choice never changes a result — both modes produce the sequential output
//! (the property tests compare speculation with the sequential executor;
//! `self_tuning_switches_modes_between_blocks_and_still_equals_sequential` runs blocks that
//! switch modes) — only how fast it is produced.

/// How a block runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Speculate with all workers (Block-STM).
    Speculate,
    /// Run with the sequential executor.
    Sequential,
}

impl Mode {
    fn other(self) -> Mode {
        match self {
            Mode::Speculate => Mode::Sequential,
            Mode::Sequential => Mode::Speculate,
        }
    }
}

/// Blocks between two probes of the mode not currently preferred.
pub const PROBE_EVERY: u32 = 16;

/// Weight of the newest measurement in a mode's moving average.
const NEWEST_WEIGHT: f64 = 0.5;

/// Throughput-driven choice of [`Mode`].
#[derive(Clone, Debug, Default)]
pub struct Tuner {
    speculate_ns: Option<f64>,
    sequential_ns: Option<f64>,
    since_probe: u32,
}

impl Tuner {
    /// The mode for the next block.
    pub fn next_mode(&mut self) -> Mode {
        let (Some(speculate), Some(sequential)) = (self.speculate_ns, self.sequential_ns) else {
            return if self.speculate_ns.is_none() {
                Mode::Speculate
            } else {
                Mode::Sequential
            };
        };
        let preferred = if speculate < sequential {
            Mode::Speculate
        } else {
            Mode::Sequential
        };
        self.since_probe += 1;
        if self.since_probe >= PROBE_EVERY {
            self.since_probe = 0;
            preferred.other()
        } else {
            preferred
        }
    }

    /// A block of `txns` transactions ran in `mode` in `elapsed`.
    pub fn record(&mut self, mode: Mode, txns: usize, elapsed: std::time::Duration) {
        if txns == 0 {
            return;
        }
        let ns = elapsed.as_nanos() as f64 / txns as f64;
        let average = match mode {
            Mode::Speculate => &mut self.speculate_ns,
            Mode::Sequential => &mut self.sequential_ns,
        };
        *average = Some(match *average {
            None => ns,
            Some(old) => old + NEWEST_WEIGHT * (ns - old),
        });
    }

    /// Moving averages (ns per transaction) so far: `(speculate, sequential)`.
    #[cfg(test)]
    pub fn averages(&self) -> (Option<f64>, Option<f64>) {
        (self.speculate_ns, self.sequential_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn measures_both_modes_then_prefers_the_faster_and_probes_the_other() {
        let mut t = Tuner::default();
        assert_eq!(t.next_mode(), Mode::Speculate);
        t.record(Mode::Speculate, 1000, ms(30));
        assert_eq!(t.next_mode(), Mode::Sequential);
        t.record(Mode::Sequential, 1000, ms(20));
        let modes: Vec<Mode> = (0..PROBE_EVERY).map(|_| t.next_mode()).collect();
        assert_eq!(
            modes.iter().filter(|m| **m == Mode::Sequential).count(),
            PROBE_EVERY as usize - 1
        );
        assert_eq!(modes.last(), Some(&Mode::Speculate), "the probe");
        // The workload changes: speculation becomes faster and wins from then on.
        t.record(Mode::Speculate, 1000, ms(5));
        t.record(Mode::Speculate, 1000, ms(5));
        assert_eq!(t.next_mode(), Mode::Speculate);
        let (speculate, sequential) = t.averages();
        assert!(speculate < sequential);
    }

    #[test]
    fn empty_blocks_are_not_measured() {
        let mut t = Tuner::default();
        t.record(Mode::Speculate, 0, ms(5));
        assert_eq!(t.averages(), (None, None));
    }
}
