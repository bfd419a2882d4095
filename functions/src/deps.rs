//! What the handlers need, built once per process and shared by every
//! request: the event log, the ingest index, the broker, and the limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use broker::{Broker, BrokerError};
use common::log::index::{IngestIndex, SharedIndex};
use common::log::memory::MemoryLog;
use common::log::{EventLog, LogSettings, SharedLog};

use crate::config::defaults;
use crate::error::Error;

/// Bounds on work and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long one broker call may take before the request fails with 503.
    pub broker_timeout: Duration,
    /// Most ticks in one price batch.
    pub max_ticks: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            broker_timeout: Duration::from_millis(defaults::BROKER_TIMEOUT_MS),
            max_ticks: defaults::MAX_TICKS_PER_BATCH,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }
}

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
    /// Dependencies on one backend that is both the log and the index (both
    /// `RedisLog` and `MemoryLog` are), with no broker and default limits.
    pub fn new<S: EventLog + IngestIndex>(store: Arc<S>) -> Self {
        Self { log: store.clone(), index: store, broker: None, limits: Limits::default() }
    }

    /// Dependencies on a fresh in-memory log (one process; dev mode, tests).
    pub fn in_memory(settings: LogSettings) -> Self {
        Self::new(Arc::new(MemoryLog::new(settings)))
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
        self.broker
            .as_deref()
            .ok_or_else(|| Error::Broker(BrokerError::Refused("no broker is configured in this process".into())))
    }

    /// Runs one broker call under the broker timeout.
    pub(crate) async fn broker_call<T>(&self, call: impl Future<Output = Result<T, BrokerError>>) -> Result<T, Error> {
        match tokio::time::timeout(self.limits.broker_timeout, call).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::BrokerTimeout(self.limits.broker_timeout)),
        }
    }
}
