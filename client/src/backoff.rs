//! Reconnect delays: exponential backoff with jitter,
//! `min(base · 2^(n-1) + jitter, cap)` after the n-th consecutive failure,
//! and a short random delay after a `1012` restart so a restarted gateway is
//! not hit by every client in the same millisecond.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use common::backoff::backoff_delay;

/// Draws the jittered delays. The random source is injected (a seed) so
/// tests can check a whole schedule.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: Duration,
    rng: StdRng,
}

impl Backoff {
    /// Backoff with the given bounds; `seed: None` seeds from the OS.
    pub fn new(base: Duration, cap: Duration, jitter: Duration, seed: Option<u64>) -> Self {
        let rng = seed.map_or_else(StdRng::from_entropy, StdRng::seed_from_u64);
        Self { base, cap, jitter, rng }
    }

    /// The delay before the next attempt after `failures` consecutive
    /// failures.
    pub fn delay(&mut self, failures: u32) -> Duration {
        let jitter = self.uniform(self.jitter);
        backoff_delay(self.base, self.cap, failures, jitter)
    }

    /// The delay of a background attempt while polling: the capped step.
    pub fn capped(&mut self) -> Duration {
        self.delay(u32::MAX)
    }

    /// A random delay in `0..max` (zero when `max` is zero).
    pub fn uniform(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.gen_range(0..nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn without_jitter_the_delay_doubles_up_to_the_cap() {
        let schedule: Vec<u64> =
            (1..=8).map(|n| backoff_delay(SECOND, 30 * SECOND, n, Duration::ZERO).as_secs()).collect();
        assert_eq!(schedule, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff_delay(SECOND, 30 * SECOND, u32::MAX, Duration::ZERO), 30 * SECOND);
        // Zero failures behaves like the first.
        assert_eq!(backoff_delay(SECOND, 30 * SECOND, 0, Duration::ZERO), SECOND);
    }

    #[test]
    fn jitter_is_added_before_the_cap() {
        let jitter = Duration::from_millis(700);
        assert_eq!(backoff_delay(SECOND, 30 * SECOND, 1, jitter), Duration::from_millis(1_700));
        assert_eq!(backoff_delay(SECOND, 30 * SECOND, 5, jitter), Duration::from_millis(16_700));
        assert_eq!(backoff_delay(SECOND, 30 * SECOND, 6, jitter), 30 * SECOND);
    }

    #[test]
    fn a_seeded_schedule_is_reproducible_and_within_bounds() {
        let schedule = |seed| {
            let mut backoff = Backoff::new(SECOND, 30 * SECOND, SECOND, Some(seed));
            (1..=10).map(|n| backoff.delay(n)).collect::<Vec<_>>()
        };
        let first = schedule(7);
        assert_eq!(first, schedule(7), "same seed, same schedule");
        assert_ne!(first, schedule(8), "another seed, another jitter");
        for (n, delay) in (1..=10u32).zip(&first) {
            let floor = backoff_delay(SECOND, 30 * SECOND, n, Duration::ZERO);
            let ceiling = (floor + SECOND).min(30 * SECOND);
            assert!(*delay >= floor && *delay <= ceiling, "attempt {n}: {delay:?} outside {floor:?}..={ceiling:?}");
        }
        assert!(first[..5].iter().any(|d| d.subsec_nanos() != 0), "jitter was drawn: {first:?}");
    }

    #[test]
    fn restart_jitter_stays_below_its_bound() {
        let mut backoff = Backoff::new(SECOND, 30 * SECOND, SECOND, Some(1));
        for _ in 0..1_000 {
            assert!(backoff.uniform(Duration::from_millis(250)) < Duration::from_millis(250));
        }
        assert_eq!(backoff.uniform(Duration::ZERO), Duration::ZERO);
        assert_eq!(backoff.capped(), 30 * SECOND);
    }
}
