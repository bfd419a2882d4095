//! The client's task: opens sessions one after another, choosing the delay
//! between them (backoff, restart jitter, capped background retries), and
//! runs the REST poller while the socket is down too long or disabled.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use crate::backoff::Backoff;
use crate::close::{self, CloseInfo, Ended, Next};
use crate::config::ClientConfig;
use crate::metrics::{add, Counters};
use crate::rest::{Rest, RestError, RestPortfolio};
use crate::state::{Merge, PortfolioState};
use crate::status::Status;
use common::sync::lock;

/// Why the client should stop, set by the handle or the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    /// The handle closed (or was dropped).
    Closed,
    /// REST refused the credentials.
    Unauthorized,
}

/// What the task, the poller and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    /// Credentials (and `Origin`), checked once when the client starts.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) rest: Rest,
    pub(crate) state: watch::Sender<PortfolioState>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) stop: watch::Sender<Stop>,
    pub(crate) counters: Counters,
    pub(crate) last_close: Mutex<Option<CloseInfo>>,
}

impl Shared {
    /// Asks the client to stop, unless it already is stopping.
    pub(crate) fn request_stop(&self, why: Stop) {
        self.stop.send_if_modified(|stop| {
            let first = *stop == Stop::Running;
            if first {
                *stop = why;
            }
            first
        });
    }

    /// Merges a REST snapshot into the state; counts and logs differences.
    pub(crate) fn merge_rest(&self, rest: RestPortfolio) -> Merge {
        let remote = rest.into_state(&self.config.channels, self.config.max_trades);
        let mut merge = Merge::default();
        self.state.send_if_modified(|state| {
            merge = state.merge_rest(remote);
            merge.changed
        });
        if merge.differences > 0 {
            add(&self.counters.reconcile_differences, merge.differences as u64);
            tracing::warn!(differences = merge.differences, "State differed from the REST snapshot; adopted REST.");
        }
        merge
    }

    pub(crate) fn set_status(&self, status: Status) {
        let changed = self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
        if changed {
            tracing::info!(?status, "Status changed.");
        }
    }
}

/// A spawned task that is aborted when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reconnect state machine (one per client).
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: watch::Receiver<Stop>,
    backoff: Backoff,
    /// Consecutive failed attempts since the last live session.
    failures: u32,
    /// The gateway said real-time is off (1013 or health).
    disabled: bool,
    /// A session was live before (the next live one is a reconnect).
    pub(crate) been_live: bool,
    poller: Option<AbortOnDrop<()>>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let config = &shared.config;
        let backoff = Backoff::new(config.backoff_base, config.backoff_cap, config.backoff_jitter, config.jitter_seed);
        let stop = shared.stop.subscribe();
        Self { shared, stop, backoff, failures: 0, disabled: false, been_live: false, poller: None }
    }

    /// Runs sessions until the client is closed or refused.
    pub(crate) async fn run(mut self) {
        self.shared.set_status(Status::Connecting);
        let mut delay = Duration::ZERO;
        let last = loop {
            if !delay.is_zero() && self.until_stopped(tokio::time::sleep(delay)).await.is_none() {
                break self.stop_status();
            }
            if self.offline() {
                let shared = self.shared.clone();
                match self.until_stopped(shared.rest.realtime_enabled()).await {
                    None => break self.stop_status(),
                    Some(Err(RestError::Unauthorized)) => break Status::Unauthorized,
                    Some(Ok(false)) => {
                        self.disabled = true;
                        self.go_offline();
                        delay = self.backoff.capped();
                        continue;
                    }
                    // On, or unknown (the gateway may be down): try the socket.
                    Some(Ok(true) | Err(_)) => {}
                }
            }
            let (ended, live) = self.session().await;
            if let Ended::Closed { code, reason } = &ended {
                *lock(&self.shared.last_close) = Some(CloseInfo { code: *code, reason: reason.clone() });
            }
            let next = close::next(&ended, live);
            tracing::debug!(?ended, live, ?next, failures = self.failures, "Session ended.");
            delay = match next {
                Next::Stop => break self.stop_status(),
                Next::Unauthorized => break Status::Unauthorized,
                Next::Restart => {
                    self.failures = 0;
                    self.shared.set_status(Status::Reconnecting);
                    self.backoff.uniform(self.shared.config.restart_jitter)
                }
                Next::Disabled => {
                    self.disabled = true;
                    self.go_offline();
                    self.backoff.capped()
                }
                Next::Backoff => {
                    self.failures = if live { 1 } else { self.failures.saturating_add(1) };
                    if self.offline() {
                        self.go_offline();
                        self.backoff.capped()
                    } else {
                        self.shared.set_status(Status::Reconnecting);
                        self.backoff.delay(self.failures)
                    }
                }
            };
        };
        self.poller = None;
        self.shared.set_status(last);
    }

    /// Whether the state comes from REST now.
    fn offline(&self) -> bool {
        self.disabled || self.failures >= self.shared.config.max_failed_attempts
    }

    /// Starts polling REST (once) and reports polling or disabled.
    fn go_offline(&mut self) {
        self.shared.set_status(if self.disabled { Status::Disabled } else { Status::Polling });
        if self.poller.is_none() {
            self.poller = Some(AbortOnDrop(tokio::spawn(poll(self.shared.clone()))));
        }
    }

    /// A session is subscribed: the socket feeds the state again.
    pub(crate) fn went_live(&mut self) {
        if self.been_live {
            add(&self.shared.counters.reconnects, 1);
        }
        self.been_live = true;
        self.failures = 0;
        self.disabled = false;
        self.poller = None;
        self.shared.set_status(Status::Live);
    }

    fn stop_status(&self) -> Status {
        match *self.stop.borrow() {
            Stop::Unauthorized => Status::Unauthorized,
            Stop::Running | Stop::Closed => Status::Closed,
        }
    }

    /// Runs `work` unless the client is asked to stop first (`None`).
    pub(crate) async fn until_stopped<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::select! {
            output = work => Some(output),
            () = stopped(&mut self.stop) => None,
        }
    }
}

/// Resolves once a stop is requested (at once if it already was).
pub(crate) async fn stopped(stop: &mut watch::Receiver<Stop>) {
    // The guard `wait_for` returns is dropped here, never held by a caller.
    if stop.wait_for(|s| *s != Stop::Running).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Polls `GET /api/portfolio` every `poll_interval` until aborted (when a
/// session goes live) or refused.
async fn poll(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.poll_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match shared.rest.portfolio().await {
            Ok(rest) => {
                add(&shared.counters.polls, 1);
                shared.merge_rest(rest);
            }
            Err(RestError::Unauthorized) => {
                tracing::info!("REST refused the credentials; stopping.");
                shared.request_stop(Stop::Unauthorized);
                return;
            }
            Err(error) => {
                add(&shared.counters.rest_failures, 1);
                tracing::debug!(%error, "Poll failed.");
            }
        }
    }
}
