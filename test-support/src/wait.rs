//! Waiting for a condition with a deadline: tests poll what they expect
//! instead of sleeping for a guessed time.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every few milliseconds until it yields `Some`, or panics
/// with `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
