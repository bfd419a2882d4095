//! Reconnect delays shared by every client of an outside service (the Rust
//! portfolio client, the broker relay): exponential backoff with jitter,
//! `min(base · 2^(n-1) + jitter, cap)` after the n-th consecutive failure.
//! The jitter is drawn by the caller, so this stays a pure function.

use std::time::Duration;

/// The delay after `failures` consecutive failures (at least 1) with the
/// given `jitter`: `min(base · 2^(failures-1) + jitter, cap)`.
pub fn backoff_delay(base: Duration, cap: Duration, failures: u32, jitter: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).saturating_add(jitter).min(cap)
}
