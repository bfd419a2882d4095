//! `ws-baseline`: the bench's physical baseline (issue 8), a minimal tokio
//! WebSocket fanout server. It shows the floor of memory per connection and
//! of delivery latency on this machine, so the bench can tell what the
//! gateway's own logic and Redis cost on top.
//!
//! It uses the gateway's stack and socket settings (axum and
//! tokio-tungstenite, 4 KiB read buffer, no write buffer, the same send
//! queue bound), so the difference the bench measures is logic, not
//! libraries.
//!
//! # Contract
//! - `--listen ADDR` (default `127.0.0.1:0`; loopback only). Once bound it
//!   prints one line, `READY <bound addr>`, to stdout.
//! - `GET /ws?user=<id>`, a WebSocket upgrade: a connection of that user
//!   (several per user allowed). The server only sends; frames from the
//!   client are ignored, pings are answered. The connection is registered
//!   before the `101` answer, so a publish after the handshake reaches it.
//! - `POST /publish` with `{"users": ["u1", ...], "event": <any JSON>}`: the
//!   event is serialized once and its text frame queued on every connection
//!   of each listed user; `204` once queued (not necessarily written), `400`
//!   if the body is not that JSON.
//! - SIGTERM or SIGINT: every socket gets a close frame (1001), then the
//!   process exits 0.
//!
//! # Deliberately left out
//! Authentication, Origin checks, Redis and the event log, the wire protocol
//! (subscribe, resume, sequence numbers), throttling and diffs, heartbeats,
//! rate limits, leases, connection caps, metrics and logging. A connection
//! whose send queue is full is dropped (closed once the queue drains), as
//! the gateway does with slow consumers.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use clap::Parser;
use common::sync::lock;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Frames queued per connection: the gateway's default `SEND_QUEUE`.
const SEND_QUEUE: usize = 256;
/// tungstenite's read buffer, as in the gateway.
const READ_BUFFER: usize = 4 * 1024;
/// Client frames are ignored; this only bounds what reading one may cost.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// How long shutdown waits for the sockets' close frames.
const GRACE: Duration = Duration::from_secs(2);

/// A minimal WebSocket fanout server: the bench's physical baseline.
#[derive(Debug, Parser)]
#[command(name = "ws-baseline", version, about)]
struct Cli {
    /// Address to listen on (loopback only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[derive(Debug, Clone)]
struct AppState {
    registry: Arc<Mutex<Registry>>,
    /// Cloned into every connection; `main` knows all are gone when the
    /// receiver sees every clone dropped.
    alive: mpsc::Sender<()>,
}

/// Each user's connections. A std `Mutex`: it is never held across an
/// `.await`, and every critical section is a few map and queue operations.
#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    users: HashMap<String, Vec<Conn>>,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    user: String,
}

#[derive(Debug, Deserialize)]
struct Publish {
    users: Vec<String>,
    event: serde_json::Value,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: not a loopback address; the baseline only serves this machine (use 127.0.0.1:PORT or [::1]:PORT)",
            cli.listen
        );
    }
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/publish", post(publish))
        .with_state(AppState { registry: registry.clone(), alive });

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY {addr}")?;
    stdout.flush()?;
    drop(stdout);

    // Small frames go out at once rather than waiting for an ACK (Nagle).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    // Upgraded sockets outlive the HTTP server. Dropping every queue's sender
    // makes each connection send its close frame and end.
    drop(std::mem::take(&mut lock(&registry).users));
    let _ = tokio::time::timeout(GRACE, all_gone.recv()).await;
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT; the handlers are installed
/// before the server starts so an early signal is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// `GET /ws?user=<id>`: registers the connection's queue, then upgrades.
async fn upgrade(State(state): State<AppState>, Query(query): Query<WsQuery>, ws: WebSocketUpgrade) -> Response {
    let (tx, rx) = mpsc::channel(SEND_QUEUE);
    let id = {
        let mut registry = lock(&state.registry);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.users.entry(query.user.clone()).or_default().push(Conn { id, tx });
        id
    };
    // If the upgrade fails, the closure (and so the guard) is dropped, which
    // unregisters the queue.
    let guard = Registered { registry: state.registry, user: query.user, id, _alive: state.alive };
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(socket, rx, guard))
}

/// One connection: writes queued frames, reads (and drops) client frames so
/// pings are answered and a close is seen.
async fn serve(mut socket: WebSocket, mut rx: mpsc::Receiver<Utf8Bytes>, _guard: Registered) {
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // Unregistered: shutdown, or the queue was full.
                None => {
                    let close = CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("") };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// A connection's place in the registry, removed when the connection ends.
#[derive(Debug)]
struct Registered {
    registry: Arc<Mutex<Registry>>,
    user: String,
    id: u64,
    _alive: mpsc::Sender<()>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        if let Some(conns) = registry.users.get_mut(&self.user) {
            conns.retain(|conn| conn.id != self.id);
            if conns.is_empty() {
                registry.users.remove(&self.user);
            }
        }
    }
}

/// `POST /publish`: one serialization, one shared frame for every queue.
async fn publish(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let Ok(publish) = serde_json::from_slice::<Publish>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let frame = Utf8Bytes::from(publish.event.to_string());
    let mut registry = lock(&state.registry);
    for user in &publish.users {
        if let Some(conns) = registry.users.get_mut(user) {
            // Full (too slow) or closed (gone): drop the sender, which
            // closes the connection once it has drained its queue.
            conns.retain(|conn| conn.tx.try_send(frame.clone()).is_ok());
            if conns.is_empty() {
                registry.users.remove(user);
            }
        }
    }
    StatusCode::NO_CONTENT
}
