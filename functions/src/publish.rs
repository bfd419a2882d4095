//! Publishing a handler's events and summing up what happened: the answer
//! every function gives (`{"published": n, "duplicates": m}`).

use event_log::{EventLog, NewEvent, Published};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a request published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Events appended now.
    pub published: usize,
    /// Events already published by an earlier delivery (same dedupe id).
    pub duplicates: usize,
}

/// Counts what a function published (`portfolio_ingest_events_published_total`,
/// by function): the "broker silent" alert watches the webhook's share.
pub fn record<T: Into<Outcome> + Copy>(function: crate::Function, result: T) -> T {
    let outcome: Outcome = result.into();
    metrics::counter!(common::metrics::INGEST_EVENTS_PUBLISHED, "source" => function.name())
        .increment(outcome.published as u64);
    result
}

impl Outcome {
    /// Counts one publish result.
    pub(crate) fn count(&mut self, published: &Published) {
        match published {
            Published::New { .. } => self.published += 1,
            Published::Duplicate { .. } => self.duplicates += 1,
        }
    }
}

/// Publishes `events` in as few round trips as the log allows. Every event
/// is attempted; if any failed, the first error is returned (the sender
/// retries the whole request, and the dedupe ids turn the events that did
/// publish into no-ops).
pub(crate) async fn publish_all(log: &dyn EventLog, events: &[NewEvent]) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let mut failure = None;
    for result in log.publish_many(events).await {
        match result {
            Ok(published) => outcome.count(&published),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(outcome),
    }
}
