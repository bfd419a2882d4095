//! The Rust client of the portfolio stream (BRIEF §1, issue 5): it keeps a
//! user's portfolio current over the gateway's WebSocket and rides through
//! everything that can happen to the link.
//!
//! [`Client::connect`] spawns one task per client and returns a
//! [`ClientHandle`]. The task connects with a bearer token or the `session`
//! cookie, subscribes (all four channels by default), and merges snapshots,
//! batches and single events into a [`PortfolioState`], tracking `seq` and
//! `epoch`. When the link drops it reconnects with exponential backoff and
//! jitter and resumes with `subscribe {since, epoch}`; after `1012` it
//! reconnects at once (small jitter); after `1008` (or HTTP 401/403) it stops
//! and reports [`Status::Unauthorized`]. After ten failed attempts, or when
//! real-time is disabled (`1013`, or `/api/health`), it polls
//! `GET /api/portfolio` and keeps retrying the socket in the background.
//! While live it sends an app-level `ping` and treats silence as a dead
//! link, and every minute reconciles its state with the REST snapshot,
//! counting differences. All intervals are in [`ClientConfig`].
//!
//! Plain `ws://`/`http://` only: in production TLS terminates at the load
//! balancer in front of the gateway, and a TLS build is a feature to add.
//!
//! # Layout
//! - [`config`]: [`ClientConfig`], [`Credentials`], the routes and defaults.
//! - [`state`]: [`PortfolioState`] and how messages and REST snapshots merge
//!   into it (the `seq` ordering rule).
//! - [`status`]: the [`Status`] a client reports.
//! - [`metrics`]: the counters behind [`ClientHandle::metrics`].
//! - [`backoff`]: the reconnect delays, with injectable jitter.
//! - `driver`: the task's reconnect state machine and the REST poller.
//! - `session`: one WebSocket session's `select!` loop (ping, silence,
//!   reconcile).
//! - `close`: what each close code makes the client do, in one function.
//! - `rest`: `GET /api/portfolio` and `/api/health` over hyper.
//! - [`error`]: [`ClientError`], for configs and waits that fail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub mod backoff;
mod close;
pub mod config;
mod driver;
pub mod error;
pub mod metrics;
mod rest;
mod session;
pub mod state;
pub mod status;

pub use close::CloseInfo;
pub use common::protocol::close::{Close, Reconnect};
pub use config::{ClientConfig, Credentials, Observer};
pub use error::ClientError;
pub use metrics::Metrics;
pub use state::PortfolioState;
pub use status::Status;

use common::sync::lock;
use driver::{Driver, Shared, Stop};

/// Starts clients.
#[derive(Debug)]
pub struct Client {
    _private: (),
}

impl Client {
    /// Starts a client on the current tokio runtime: it connects in the
    /// background; watch [`ClientHandle::status`] to see it go live.
    ///
    /// # Errors
    /// When the config cannot be used (an `origin` that is not a valid
    /// header value; URLs and tokens are checked by [`ClientConfig::new`]).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(config: ClientConfig) -> Result<ClientHandle, ClientError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let headers = config.headers()?;
        let rest = rest::Rest::new(&config)?;
        let (state_tx, state) = watch::channel(PortfolioState::default());
        let (status_tx, status) = watch::channel(Status::Connecting);
        let (stop, _) = watch::channel(Stop::Running);
        let shared = Arc::new(Shared {
            config,
            headers,
            rest,
            state: state_tx,
            status: status_tx,
            stop,
            counters: metrics::Counters::default(),
            last_close: Mutex::new(None),
        });
        let span = tracing::info_span!("client", id = NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let task = tokio::spawn(Driver::new(shared.clone()).run().instrument(span));
        Ok(ClientHandle { shared, state, status, task: Some(task) })
    }
}

/// The caller's side of a running client. Dropping it stops the client
/// (the socket is closed normally).
#[derive(Debug)]
pub struct ClientHandle {
    shared: Arc<Shared>,
    state: watch::Receiver<PortfolioState>,
    status: watch::Receiver<Status>,
    task: Option<JoinHandle<()>>,
}

impl ClientHandle {
    /// A copy of the current state.
    pub fn state(&self) -> PortfolioState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the state.
    pub fn watch_state(&self) -> watch::Receiver<PortfolioState> {
        self.state.clone()
    }

    /// A receiver of the connection status.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The status right now.
    pub fn current_status(&self) -> Status {
        *self.status.borrow()
    }

    /// The client's counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.counters.read()
    }

    /// The code and reason of the gateway's last close frame.
    pub fn last_close(&self) -> Option<CloseInfo> {
        lock(&self.shared.last_close).clone()
    }

    /// Waits until `condition` holds for the state (checked at once, then
    /// on every change), at most `timeout`; returns that state.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&PortfolioState) -> bool,
    ) -> Result<PortfolioState, ClientError> {
        let mut state = self.state.clone();
        let found =
            tokio::time::timeout(timeout, async { state.wait_for(|s| condition(s)).await.map(|state| state.clone()) })
                .await;
        match found {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(_)) | Err(_) => Err(ClientError::TimedOut(timeout)),
        }
    }

    /// Waits until `condition` holds for the status, at most `timeout`.
    pub async fn wait_for_status(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(Status) -> bool,
    ) -> Result<Status, ClientError> {
        let mut status = self.status.clone();
        let found =
            tokio::time::timeout(timeout, async { status.wait_for(|s| condition(*s)).await.map(|status| *status) })
                .await;
        match found {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) | Err(_) => Err(ClientError::TimedOut(timeout)),
        }
    }

    /// Whether the client's task has ended (closed or unauthorized).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the client: closes the socket normally and waits for the task.
    pub async fn close(mut self) {
        self.shared.request_stop(Stop::Closed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.shared.request_stop(Stop::Closed);
    }
}
