//! Serving the gateway: the routes ([`app`]), the socket upgrade, and
//! [`run`]/[`serve`], which start the background tasks, serve until the
//! shutdown future resolves, close every socket with 1012 and wait (bounded)
//! until they are gone.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use event_log::SharedLog;
use tokio::net::TcpListener;

use crate::admit::admit;
use crate::config::GatewayConfig;
use crate::state::AppState;
use crate::stats::{self, Stats};
use crate::{connection, rest};

/// How much the transport reads from a socket at a time, and the read
/// buffer every socket keeps for good (tungstenite allocates it up front and
/// never shrinks it). Client messages are small and rare (`subscribe` to
/// every channel is about 80 bytes, 130 with a resume point), so a larger
/// one costs an extra read, while every idle socket saves the difference:
/// at 4 KiB this buffer was a quarter of the memory per connection (BRIEF
/// §7, `docs/benchmarks.md`). A frame larger than the buffer grows it.
const READ_BUFFER: usize = 128;

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
    serve_state(listener, AppState::new(config, log)?, extra, shutdown).await
}

/// [`serve`] on a state the caller built, so that it can keep a clone (tests
/// send REST requests through `app(state)` on the very state that serves
/// the sockets).
pub async fn serve_state(
    listener: TcpListener,
    state: AppState,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = state.config.shutdown_grace;
    stats::prometheus();
    let health = spawn_health_checks(state.log.clone(), state.stats.clone());
    let dispatcher = state.hubs.spawn_dispatcher();
    let (capacity, total_permits) = (state.capacity.clone(), state.config.limits.capacity);
    let total_permits = u32::try_from(total_permits).unwrap_or(u32::MAX);
    let hubs = state.hubs.clone();
    let stopping = state.clone();
    tracing::info!(addr = %listener.local_addr()?, "Gateway listening.");
    let server = axum::serve(listener, app(state).merge(extra)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("Shutting down: closing every socket with 1012.");
        stopping.close_all();
    });
    let result = server.await;
    // Upgraded sockets outlive the HTTP server: wait (bounded) until every
    // one has sent its close frame and released its lease. Every permit
    // back means every connection is gone.
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
fn spawn_health_checks(log: SharedLog, stats: Arc<Stats>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            stats.log_check(log.ping().await.is_ok());
            // The recorder keeps every histogram sample until it is drained:
            // without a scrape, ~10 bytes per delivered event (S5 soak).
            stats::prometheus().run_upkeep();
        }
    })
}

/// The largest frame the transport reads at all: 4 × the protocol limit,
/// at least 64 KiB.
fn transport_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(4).max(64 * 1024)
}

/// `GET /ws/portfolio`: admit before joining anything; a refused socket is
/// upgraded and closed with the reason, so browsers can show it.
async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let ws = ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        // The protocol limit is enforced per message in `connection`, after
        // the whole frame was read, so the 1009 close reaches the client; the
        // transport limit above it only bounds memory against huge frames.
        .max_message_size(transport_limit(state.config.max_message_bytes))
        .max_frame_size(transport_limit(state.config.max_message_bytes));
    let refusal = match admit(&state, &headers).await {
        Ok(connection) => return ws.on_upgrade(move |socket| connection::serve(socket, connection)),
        Err(refusal) => refusal,
    };
    let close = refusal.close();
    tracing::info!(code = close.code(), reason = close.reason(), %refusal, "Connection refused.");
    ws.on_upgrade(move |mut socket| async move {
        let frame = CloseFrame { code: close.code(), reason: Utf8Bytes::from_static(close.reason()) };
        let _ = socket.send(Message::Close(Some(frame))).await;
    })
}
