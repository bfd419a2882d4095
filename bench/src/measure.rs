//! Latency samples, percentiles and medians: exact values from every
//! sample (the counts are bounded by the scenario's event count), no
//! approximating histogram; and the process' CPU time.

use std::time::Duration;

/// Latencies of one phase, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u64>,
}

impl Latencies {
    /// An empty set with room for `capacity` samples.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { samples: Vec::with_capacity(capacity) }
    }

    /// Adds one sample.
    pub fn record(&mut self, latency: Duration) {
        self.samples.push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other` (one task's samples into the phase's).
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The nearest-rank percentiles `ps` (each in `0.0..=100.0`), in
    /// milliseconds; `None` when there are no samples.
    pub fn percentiles_ms(&mut self, ps: &[f64]) -> Option<Vec<f64>> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        Some(
            ps.iter()
                .map(|p| {
                    let rank = ((p / 100.0) * n as f64).ceil() as usize;
                    let index = rank.clamp(1, n) - 1;
                    self.samples[index] as f64 / 1e6
                })
                .collect(),
        )
    }
}

/// CPU time used by this process and by its waited-for children (the
/// `redis-benchmark` runs), from `/proc/self/stat`; `None` off Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessCpu {
    /// User plus system time of this process, every thread.
    pub own: Duration,
    /// User plus system time of the children that have exited and been waited for.
    pub children: Duration,
}

impl ProcessCpu {
    /// Reads the counters now.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// Reads the counters of process `pid` now.
    pub fn of(pid: u32) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parses `/proc/<pid>/stat`: after the parenthesized command name come
    /// fields 3…, of which 14–17 are utime, stime, cutime and cstime in
    /// clock ticks (`USER_HZ`, 100 on Linux' mainstream architectures).
    fn parse(stat: &str) -> Option<Self> {
        const USER_HZ: u64 = 100;
        let fields: Vec<u64> =
            stat.rsplit_once(')')?.1.split_whitespace().skip(11).take(4).map_while(|f| f.parse().ok()).collect();
        let ticks = |t: u64| Duration::from_millis(t * 1_000 / USER_HZ);
        match fields[..] {
            [utime, stime, cutime, cstime] => {
                Some(Self { own: ticks(utime + stime), children: ticks(cutime + cstime) })
            }
            _ => None,
        }
    }

    /// The counters' growth since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self { own: self.own.saturating_sub(earlier.own), children: self.children.saturating_sub(earlier.children) }
    }
}

pub use test_support::process::rss_kib;

/// Polls `done` every 10 ms until it is true (`true`) or `timeout` passed
/// (`false`): phases wait on conditions, bounded, never on a guessed sleep.
pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// This process' resident set size in KiB.
pub fn own_rss_kib() -> Option<u64> {
    rss_kib(std::process::id())
}

/// The soft limit on open files of this process (`Max open files` of
/// `/proc/self/limits`); `None` off Linux or when unlimited.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits.lines().find_map(|l| l.strip_prefix("Max open files"))?.split_whitespace().next()?.parse().ok()
}

/// Fails with the `ulimit -n` to run when this process may not open
/// `connections` sockets plus a margin (each system's process needs as
/// many; it inherits the limit).
pub fn require_open_files(connections: usize) -> Result<(), crate::Error> {
    const MARGIN: u64 = 256;
    let needed = connections as u64 + MARGIN;
    match open_files_limit() {
        Some(limit) if limit < needed => Err(crate::Error::InvalidOption(format!(
            "{connections} connections need about {needed} open files in this process and in each system's; the limit is {limit}: run `ulimit -n {}` first",
            needed.max(1_024)
        ))),
        _ => Ok(()),
    }
}

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when empty. Timings on shared machines are noisy: reports give
/// the median of several runs (BRIEF §7).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_read() {
        assert!(own_rss_kib().is_some_and(|kib| kib > 0) || !cfg!(target_os = "linux"));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.percentiles_ms(&[50.0, 99.0, 100.0]), Some(vec![50.0, 99.0, 100.0]));
        assert_eq!(Latencies::default().percentiles_ms(&[50.0]), None);
    }

    #[test]
    fn process_cpu_reads_times_after_the_command_name() {
        let stat = "4242 (bench (x) y) S 1 2 3 4 5 6 7 8 9 10 150 50 30 10 20 0 1 0";
        let cpu = ProcessCpu::parse(stat).unwrap();
        assert_eq!(cpu, ProcessCpu { own: Duration::from_secs(2), children: Duration::from_millis(400) });
        assert!(ProcessCpu::parse("1 (x) S 1 2").is_none());
        assert!(ProcessCpu::now().is_some() || !cfg!(target_os = "linux"));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
