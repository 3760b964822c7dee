//! Measuring the machine around a bench: percentiles of latency samples, where the CPU went
//! during a section (the machine is shared), and peak RSS. Shared by `live` and `runaway`.

/// Nearest-rank percentile of sorted ns samples, in ms.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1e6
}

/// Where the machine's CPU went during a section, from `/proc/stat` (every CPU) and
/// `/proc/self/stat` (this process), both in clock ticks: the bench's share, other processes'
/// share and idle, as percentages of the machine's capacity. The machine is shared, so a
/// section whose `others` share is high was measured under load.
pub struct CpuMeter {
    machine: (u64, u64),
    own: u64,
}

impl CpuMeter {
    /// (busy, total) ticks of every CPU so far.
    fn machine() -> (u64, u64) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        (total.saturating_sub(idle), total)
    }

    /// utime + stime of this process so far.
    fn own() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        // After the command name come fields 3.. of stat(5): utime and stime are 14 and 15.
        let field = |n: usize| -> u64 {
            after
                .split_whitespace()
                .nth(n - 3)
                .and_then(|f| f.parse().ok())
                .unwrap_or(0)
        };
        field(14) + field(15)
    }

    pub fn start() -> CpuMeter {
        CpuMeter {
            machine: CpuMeter::machine(),
            own: CpuMeter::own(),
        }
    }

    pub fn report(&self, section: &str) {
        let (busy, total) = CpuMeter::machine();
        let own = CpuMeter::own() - self.own;
        let (busy, total) = (busy - self.machine.0, (total - self.machine.1).max(1));
        let pct = |x: u64| 100.0 * x as f64 / total as f64;
        println!(
            "CPU during {section}: this bench {:.0}%, other processes {:.0}%, idle {:.0}% of the machine",
            pct(own.min(busy)),
            pct(busy.saturating_sub(own)),
            pct(total - busy)
        );
    }
}

pub fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
