//! Reconnect pacing of the streams: `min(1 s · 2^(n-1) + 0–1 s, 30 s)` after
//! the n-th consecutive failure, reset by a connection that lived at least
//! [`STABLE`], and cut short by the stop signal.

use std::time::Duration;

use common::backoff::backoff_delay;
use rand::Rng;
use tokio::sync::watch;

/// A connection that lived this long counts as a success.
pub(crate) const STABLE: Duration = Duration::from_secs(30);

const BASE: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(30);
const JITTER: Duration = Duration::from_secs(1);

/// Consecutive failures of one stream.
#[derive(Debug, Default)]
pub(crate) struct Reconnect {
    failures: u32,
}

impl Reconnect {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A connection ended after living `lived`.
    pub(crate) fn connected_for(&mut self, lived: Duration) {
        if lived >= STABLE {
            self.failures = 0;
        }
    }

    /// Waits before the next attempt (or until `stop`).
    pub(crate) async fn wait(&mut self, stop: &mut watch::Receiver<bool>) {
        self.failures = self.failures.saturating_add(1);
        let jitter = rand::thread_rng().gen_range(Duration::ZERO..JITTER);
        let delay = backoff_delay(BASE, CAP, self.failures, jitter);
        tracing::debug!(?delay, failures = self.failures, "Reconnecting after a pause.");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(stop) => {}
        }
    }
}

/// Resolves once `stop` is (or already was) true; never if its sender is
/// gone without stopping.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}
