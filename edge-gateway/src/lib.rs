//! The edge gateway: holds the WebSocket connections, follows each connected
//! user's event stream, throttles and diffs updates, and serves the REST
//! snapshot for clients that poll (BRIEF §1–5).
//!
//! # Layout
//! - [`config`]: the gateway's settings and their environment variables.
//! - `hub`: one task per connected user — seq tracking, gap repair,
//!   throttle, fanout filtered by channel.
//! - [`throttle`]: the pure, clock-injected throttle and diff.
//! - `connection`: one socket's `select!` loop.
//! - `queue`: the bounded queues between hubs and connections, small while
//!   empty.
//! - `rest`: `/api/portfolio`, `/api/health`, `/metrics` and the admin stats.
//! - `stats`: metrics and the admin endpoint's totals.
//! - `close`: every close code and reason.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::auth::{token_from_headers, AuthError, Claims, JwtValidator};
use common::config::Backend;
use common::log::memory::MemoryLog;
use common::log::redis::RedisLog;
use common::log::SharedLog;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

mod close;
pub mod config;
mod connection;
mod hub;
mod queue;
mod rest;
mod stats;
pub mod throttle;

pub use config::GatewayConfig;

/// Shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    log: SharedLog,
    jwt: Arc<JwtValidator>,
    config: Arc<GatewayConfig>,
    hubs: Arc<hub::Hubs>,
    next_conn: Arc<AtomicU64>,
    /// What every connection refers to (leases, limits, stats).
    connections: Arc<connection::Shared>,
    /// Permits for this instance's connections (its capacity).
    capacity: Arc<Semaphore>,
    stats: Arc<stats::Stats>,
    shutdown: watch::Receiver<bool>,
}

/// Opens the configured event log.
pub async fn open_log(backend: &Backend) -> anyhow::Result<SharedLog> {
    Ok(match backend {
        Backend::Memory(settings) => Arc::new(MemoryLog::new(*settings)),
        Backend::Redis(redis) => {
            let log = RedisLog::connect(redis.url(), redis.settings, redis.command_timeout).await?;
            log.open_notices().await?;
            Arc::new(log)
        }
    })
}

/// The gateway's routes over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws/portfolio", get(upgrade))
        .route("/api/portfolio", get(rest::portfolio))
        .route("/api/health", get(rest::health))
        .route("/api/admin/websocket-stats", get(rest::admin_stats))
        .route("/metrics", get(rest::metrics))
        .with_state(state)
}

/// Serves the gateway on `listener` with the event log `log` until
/// `shutdown` resolves; then every socket is closed with 1012.
pub async fn run(
    listener: TcpListener,
    config: GatewayConfig,
    log: SharedLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve(listener, config, log, Router::new(), shutdown).await
}

/// [`run`], with `extra` routes served beside the gateway's (the dev mode's
/// page and ingest routes).
pub async fn serve(
    listener: TcpListener,
    config: GatewayConfig,
    log: SharedLog,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let jwt = Arc::new(JwtValidator::new(&config.jwt)?);
    let stats = Arc::new(stats::Stats::default());
    stats::prometheus();
    let hubs = hub::Hubs::new(log.clone(), config.throttle, stats.clone());
    let health = spawn_health_checks(log.clone(), stats.clone());
    let dispatcher = hubs.spawn_dispatcher();
    let (stop_tx, stop_rx) = watch::channel(false);
    let capacity = Arc::new(Semaphore::new(config.limits.capacity));
    let grace = config.shutdown_grace;
    let total_permits = u32::try_from(config.limits.capacity).unwrap_or(u32::MAX);
    let connections = Arc::new(connection::Shared {
        leases: log.leases(),
        instance: format!("{:016x}", rand::random::<u64>()).into(),
        limits: config.limits,
        send_queue: config.send_queue,
        max_message_bytes: config.max_message_bytes,
        stats: stats.clone(),
    });
    let state = AppState {
        log,
        jwt,
        config: Arc::new(config),
        hubs: hubs.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
        connections,
        capacity: capacity.clone(),
        stats,
        shutdown: stop_rx,
    };
    tracing::info!(addr = %listener.local_addr()?, "Gateway listening.");
    let server = axum::serve(listener, app(state).merge(extra)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("Shutting down: closing every socket with 1012.");
        let _ = stop_tx.send(true);
    });
    let result = server.await;
    // Upgraded sockets outlive the HTTP server: wait (bounded) until every
    // one has sent its close frame and released its lease.
    // Every permit back means every connection is gone.
    if tokio::time::timeout(grace, capacity.acquire_many(total_permits)).await.is_err() {
        tracing::warn!(?grace, "Shutdown grace period over with sockets still open.");
    }
    dispatcher.abort();
    health.abort();
    hubs.abort_all();
    Ok(result?)
}

/// Checks the event log every 5 s, for the `up` gauge and the admin uptime,
/// and drains the metrics recorder's histogram samples into its buckets.
fn spawn_health_checks(log: SharedLog, stats: Arc<stats::Stats>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            stats.log_check(log.ping().await.is_ok());
            // The recorder keeps every histogram sample until it is drained:
            // without a scrape, ~10 bytes per delivered event (S5 soak).
            stats::prometheus().run_upkeep();
        }
    })
}

/// Checks the request's token (bearer header first, then the `session`
/// cookie).
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, AuthError> {
    let cookies: Vec<&str> = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    let cookie = cookies.join("; ");
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = token_from_headers(Some(&cookie).filter(|c| !c.is_empty()).map(String::as_str), authorization)
        .ok_or(AuthError::Missing)?;
    state.jwt.validate(token)
}

/// Same-origin requests, and the configured origins, may open the socket;
/// requests without `Origin` (native clients) are not browsers.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let same_origin = origin.split_once("://").is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    same_origin || state.config.allowed_origins.iter().any(|allowed| allowed == origin)
}

/// How much the transport reads from a socket at a time, and the read
/// buffer every socket keeps for good (tungstenite allocates it up front and
/// never shrinks it). Client messages are small and rare (`subscribe` to
/// every channel is about 80 bytes, 130 with a resume point), so a larger
/// one costs an extra read, while every idle socket saves the difference:
/// at 4 KiB this buffer was a quarter of the memory per connection (BRIEF
/// §7, `docs/benchmarks.md`). A frame larger than the buffer grows it.
const READ_BUFFER: usize = 128;

/// The largest frame the transport reads at all: 4 × the protocol limit,
/// at least 64 KiB.
fn transport_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(4).max(64 * 1024)
}

/// Decides whether a socket may open, in order: origin, token, rollout,
/// this instance's capacity, the user's connection limit (all instances).
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Box<connection::Connection>, close::Close> {
    if !origin_allowed(state, headers) {
        state.stats.auth_failure("origin");
        return Err(close::ORIGIN_NOT_ALLOWED);
    }
    let claims = authenticate(state, headers).map_err(|error| {
        state.stats.auth_failure("token");
        close::auth_failed(error.reason())
    })?;
    if !state.config.rollout.allows(&claims.user_id) {
        return Err(close::DISABLED);
    }
    let permit = state.capacity.clone().try_acquire_owned().map_err(|_| close::CAPACITY)?;
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let shared = &state.connections;
    let limits = shared.limits;
    match shared.leases.acquire(&claims.user_id, &shared.lease_id(conn), limits.lease_ttl, limits.per_user).await {
        Ok(true) => {}
        Ok(false) => return Err(close::TOO_MANY_CONNECTIONS),
        // Failing open: during a Redis outage the limit is not enforced,
        // rather than refusing every user.
        Err(error) => tracing::warn!(%error, "Lease store unavailable; admitting without a lease."),
    }
    // Boxed: the upgrade task holds it until the socket is ready, and then
    // the connection's future does; a box is one copy, not two.
    Ok(Box::new(connection::Connection {
        membership: state.hubs.join(&claims.user_id, conn),
        claims,
        shared: shared.clone(),
        shutdown: state.shutdown.clone(),
        _permit: permit,
    }))
}

/// `GET /ws/portfolio`: authenticate before joining anything; a refused
/// socket is upgraded and closed with the reason, so browsers can show it.
async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let ws = ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        // The protocol limit is enforced per message in `connection`, after
        // the whole frame was read, so the 1009 close reaches the client; the
        // transport limit above it only bounds memory against huge frames.
        .max_message_size(transport_limit(state.config.max_message_bytes))
        .max_frame_size(transport_limit(state.config.max_message_bytes));
    let (code, reason) = match admit(&state, &headers).await {
        Ok(connection) => return ws.on_upgrade(move |socket| connection::serve(socket, connection)),
        Err(refusal) => refusal,
    };
    tracing::info!(code, reason, "Connection refused.");
    ws.on_upgrade(move |mut socket| async move {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = socket.send(Message::Close(Some(frame))).await;
    })
}
