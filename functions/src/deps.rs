//! What the handlers need, built once per process and shared by every
//! request: the event log, the ingest index, the broker, and the limits.

use std::future::Future;
use std::sync::Arc;

use broker::{Broker, BrokerError};
use event_log::index::SharedIndex;
use event_log::{SharedLog, Store};

pub use crate::config::Limits;
use crate::error::Error;

/// The handlers' dependencies.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Where events are published.
    pub log: SharedLog,
    /// Holders per symbol, the account directory, batched snapshot reads.
    pub index: SharedIndex,
    /// The broker API; only the broker webhook needs it.
    pub broker: Option<Arc<dyn Broker>>,
    /// Bounds.
    pub limits: Limits,
}

impl Deps {
    /// Dependencies on one opened store (its log and its index), with no
    /// broker and default limits.
    pub fn new(store: Store) -> Self {
        Self { log: store.log, index: store.index, broker: None, limits: Limits::default() }
    }

    /// Adds the broker.
    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The broker, or an error saying it is not configured here.
    pub(crate) fn broker(&self) -> Result<&dyn Broker, Error> {
        self.broker.as_deref().ok_or(Error::NoBroker)
    }

    /// Runs one broker call under the broker timeout.
    pub(crate) async fn broker_call<T>(&self, call: impl Future<Output = Result<T, BrokerError>>) -> Result<T, Error> {
        match tokio::time::timeout(self.limits.broker_timeout, call).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::BrokerTimeout(self.limits.broker_timeout)),
        }
    }
}
