//! What every request handler shares: the configuration, the event log, the
//! hubs, the capacity permits and the shutdown notice. Built by
//! [`AppState::new`], so tests can serve `server::app(state)` without a
//! listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use event_log::SharedLog;
use tokio::sync::{watch, Semaphore};

use crate::auth::{AuthError, JwtValidator};
use crate::config::GatewayConfig;
use crate::connection;
use crate::hubs::Hubs;
use crate::stats::Stats;

/// Shared by every request handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) log: SharedLog,
    pub(crate) jwt: Arc<JwtValidator>,
    pub(crate) config: Arc<GatewayConfig>,
    pub(crate) hubs: Arc<Hubs>,
    next_conn: Arc<AtomicU64>,
    /// What every connection refers to (leases, limits, stats).
    pub(crate) connections: Arc<connection::Shared>,
    /// Permits for this instance's connections (its capacity).
    pub(crate) capacity: Arc<Semaphore>,
    pub(crate) stats: Arc<Stats>,
    /// `true` once the gateway shuts down: every connection closes with 1012.
    stop: Arc<watch::Sender<bool>>,
    /// A receiver that has seen nothing yet: connections get clones of it,
    /// so one admitted after the shutdown began still sees it.
    shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// The state of a gateway on `log`; the JWT key is checked here.
    pub fn new(config: GatewayConfig, log: SharedLog) -> Result<Self, AuthError> {
        let jwt = Arc::new(JwtValidator::new(&config.jwt)?);
        let stats = Arc::new(Stats::default());
        let hubs = Hubs::new(log.clone(), config.throttle, stats.clone());
        let connections = Arc::new(connection::Shared {
            leases: log.leases(),
            instance: format!("{:016x}", rand::random::<u64>()).into(),
            limits: config.limits,
            send_queue: config.send_queue,
            max_message_bytes: config.max_message_bytes,
            stats: stats.clone(),
        });
        let (stop, shutdown) = watch::channel(false);
        Ok(Self {
            capacity: Arc::new(Semaphore::new(config.limits.capacity)),
            log,
            jwt,
            config: Arc::new(config),
            hubs,
            next_conn: Arc::new(AtomicU64::new(1)),
            connections,
            stats,
            stop: Arc::new(stop),
            shutdown,
        })
    }

    /// A fresh connection id, unique in this process.
    pub(crate) fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The notice every connection watches for shutdown.
    pub(crate) fn shutdown_notice(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Tells every connection to close with 1012.
    pub(crate) fn close_all(&self) {
        self.stop.send_replace(true);
    }
}
