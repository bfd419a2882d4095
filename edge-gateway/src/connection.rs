//! One WebSocket connection: a single `select!` over the client's frames,
//! the hub's messages, one timer (heartbeat, lease refresh or the token's
//! expiry, whichever is next) and the shutdown notice.
//!
//! Almost every connection is idle almost all the time, and the task's size
//! is part of the memory per connection (BRIEF §7, `docs/benchmarks.md`):
//! the loop keeps only what waiting needs, and the work on a client message
//! or a timer runs in a boxed future that exists only while it runs.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::auth::Claims;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use common::protocol::close::{Close, Unauthenticated};
use common::protocol::{decode_client, ClientMessage, ErrorCode, ServerMessage};
use event_log::leases::Leases;
use futures::SinkExt as _;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::Limits;
use crate::hub::{encode, Channels, Command, Outbound};
use crate::hubs::Membership;
use crate::queue;
use crate::stats::{self, Stats};

/// How long a closing socket waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Invalid messages tolerated per connection before it is closed.
const MAX_INVALID: u32 = 10;

/// Everything one connection holds while it lives; dropping it releases
/// the hub membership and the capacity permit. What is the same for every
/// connection is behind one `Arc`, so it is not copied into each.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) claims: Claims,
    pub(crate) membership: Membership,
    pub(crate) shared: Arc<Shared>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// What every connection of this gateway refers to.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) leases: Arc<dyn Leases>,
    /// Random per process: lease ids must be unique across gateways.
    pub(crate) instance: Arc<str>,
    pub(crate) limits: Limits,
    pub(crate) send_queue: usize,
    pub(crate) max_message_bytes: usize,
    pub(crate) stats: Arc<Stats>,
}

impl Shared {
    /// Connection `conn`'s lease id (made when needed: a stored one would
    /// be a heap string per connection).
    pub(crate) fn lease_id(&self, conn: u64) -> String {
        format!("{}:{conn}", self.instance)
    }
}

/// Counts client messages in one-second windows.
#[derive(Debug)]
struct RateLimit {
    window_start: Instant,
    count: u32,
    max: u32,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.max
    }
}

/// What the client's messages have changed so far.
#[derive(Debug)]
struct Session {
    rate: RateLimit,
    invalid: u32,
    /// The hub's messages for this socket; made with the first subscribe,
    /// whose command hands the hub the sending half. Until then nothing is
    /// sent, and nothing is allocated for it.
    outbox: Option<queue::Receiver<Outbound>>,
}

/// The instants the one timer of a connection stands for.
#[derive(Debug)]
struct Timers {
    heartbeat: Instant,
    lease_refresh: Instant,
    expiry: Instant,
}

impl Timers {
    /// The first heartbeat at once, the first refresh a third of the lease
    /// lifetime from now.
    fn new(now: Instant, limits: &Limits, expiry: Instant) -> Self {
        Self { heartbeat: now, lease_refresh: now + limits.lease_ttl / 3, expiry }
    }

    fn next(&self) -> Instant {
        self.heartbeat.min(self.lease_refresh).min(self.expiry)
    }
}

/// Serves an authenticated socket until it closes, then gives its lease back.
///
/// Not an `async fn`: its arguments would be stored twice in its future
/// (rust-lang/rust#62958; the socket alone is 368 bytes), and so would those
/// of `#[instrument]`'s wrapper. The block below holds each once, and the
/// work borrows them.
pub(crate) fn serve(mut socket: WebSocket, mut conn: Box<Connection>) -> impl Future<Output = ()> + Send {
    let span = tracing::info_span!("connection", conn = conn.membership.conn(), user = %conn.claims.user_id);
    async move { serve_borrowed(&mut socket, &mut conn).await }.instrument(span)
}

async fn serve_borrowed(socket: &mut WebSocket, conn: &mut Connection) {
    tracing::debug!("Connection opened.");
    conn.shared.stats.connected();
    let reason = run(socket, conn).await;
    conn.shared.stats.disconnected(stats::close_label(reason));
    if let Some(close) = reason {
        let frame = CloseFrame { code: close.code(), reason: Utf8Bytes::from_static(close.reason()) };
        // Send our close, then read until the client's close (bounded): a
        // socket dropped with unread input is reset, and the client would
        // lose our close frame with it.
        let linger = tokio::time::timeout(CLOSE_LINGER, async {
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            }
        });
        let _ = Box::pin(linger).await;
    }
    let lease_id = conn.shared.lease_id(conn.membership.conn());
    if let Err(error) = conn.shared.leases.release(&conn.claims.user_id, &lease_id).await {
        tracing::warn!(%error, "Lease release failed; it expires on its own.");
    }
    tracing::debug!(reason = reason.map(Close::reason), "Connection closed.");
}

async fn run(socket: &mut WebSocket, conn: &mut Connection) -> Option<Close> {
    let now = Instant::now();
    let mut timers = Timers::new(now, &conn.shared.limits, expiry_instant(conn.claims.valid_until));
    let mut timer = pin!(tokio::time::sleep_until(timers.next()));
    let mut last_heard = now;
    let mut session = Session {
        rate: RateLimit { window_start: now, count: 0, max: conn.shared.limits.messages_per_sec },
        invalid: 0,
        outbox: None,
    };
    loop {
        tokio::select! {
            frame = socket.recv() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        let step = Box::pin(on_message(socket, conn, &mut session, message, last_heard)).await;
                        if let ControlFlow::Break(reason) = step {
                            return reason;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => return None,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "Socket error.");
                        return is_too_big(error).then_some(Close::TooBig);
                    }
                }
            }
            outbound = next_outbound(&mut session.outbox) => match outbound {
                // A client that stops reading blocks the write once the TCP
                // buffers fill; give up on it after the heartbeat timeout.
                Some(frames) => {
                    let limit = conn.shared.limits.heartbeat_timeout;
                    match send_queued(socket, frames, session.outbox.as_mut(), limit).await {
                        Some(Ok(None)) => {}
                        // The hub let go of us (its last item), after the rest.
                        Some(Ok(Some(close))) => return Some(close),
                        Some(Err(_)) => return None,
                        None => return Some(Close::SlowConsumer),
                    }
                }
                // The hub dropped us: our queue was full.
                None => return Some(Close::SlowConsumer),
            },
            () = &mut timer => {
                let step = Box::pin(on_timer(socket, conn, &mut timers, last_heard)).await;
                if let ControlFlow::Break(reason) = step {
                    return reason;
                }
                timer.as_mut().reset(timers.next());
            }
            _ = conn.shutdown.changed() => return Some(Close::Restarting),
        }
    }
}

/// A client's text or binary message: rate and size limits, then the
/// command, and the direct reply if there is one.
async fn on_message(
    socket: &mut WebSocket,
    conn: &Connection,
    session: &mut Session,
    message: Message,
    now: Instant,
) -> ControlFlow<Option<Close>> {
    if !session.rate.allow(now) {
        return ControlFlow::Break(Some(Close::Flood));
    }
    let is_text = matches!(message, Message::Text(_));
    let reply = match message {
        Message::Text(text) => {
            if text.len() > conn.shared.max_message_bytes {
                return ControlFlow::Break(Some(Close::TooBig));
            }
            handle_text(&text, conn, &mut session.outbox).await
        }
        Message::Binary(data) => {
            if data.len() > conn.shared.max_message_bytes {
                return ControlFlow::Break(Some(Close::TooBig));
            }
            session.invalid += 1;
            if session.invalid > MAX_INVALID {
                return ControlFlow::Break(Some(Close::Abuse));
            }
            Some(ServerMessage::error(ErrorCode::BinaryNotSupported, "Send JSON text frames"))
        }
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => None,
    };
    let Some(reply) = reply else { return ControlFlow::Continue(()) };
    if is_text && matches!(reply, ServerMessage::Error { .. }) {
        conn.shared.stats.client_error();
        session.invalid += 1;
        if session.invalid > MAX_INVALID {
            return ControlFlow::Break(Some(Close::Abuse));
        }
    }
    match send_json(socket, &reply).await {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(None),
    }
}

/// The timer fired: close an expired session, ping, refresh the lease,
/// whichever is due.
async fn on_timer(
    socket: &mut WebSocket,
    conn: &Connection,
    timers: &mut Timers,
    last_heard: Instant,
) -> ControlFlow<Option<Close>> {
    let now = Instant::now();
    let limits = &conn.shared.limits;
    if now >= timers.expiry {
        return ControlFlow::Break(Some(Close::Unauthenticated(Unauthenticated::Expired)));
    }
    if now >= timers.heartbeat {
        if last_heard.elapsed() >= limits.heartbeat_timeout {
            return ControlFlow::Break(Some(Close::HeartbeatTimeout));
        }
        if socket.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
            return ControlFlow::Break(None);
        }
        timers.heartbeat = now + limits.heartbeat_interval;
    }
    if now >= timers.lease_refresh {
        let user = &conn.claims.user_id;
        // A refresh can only fail on an outage; the lease then lapses and
        // the next refresh takes it again.
        let lease_id = conn.shared.lease_id(conn.membership.conn());
        if let Err(error) = conn.shared.leases.acquire(user, &lease_id, limits.lease_ttl, usize::MAX).await {
            tracing::warn!(%error, "Lease refresh failed.");
        }
        timers.lease_refresh = now + limits.lease_ttl / 3;
    }
    ControlFlow::Continue(())
}

/// The hub's next message; pending until the first subscribe made the queue.
async fn next_outbound(outbox: &mut Option<queue::Receiver<Outbound>>) -> Option<Outbound> {
    match outbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Buffers a queue item's frames in the socket, unflushed; a close the hub
/// asked for is returned instead, for the caller to send after a flush.
async fn feed(socket: &mut WebSocket, frames: Outbound) -> Result<Option<Close>, axum::Error> {
    match frames {
        Outbound::Text(text) => socket.feed(Message::Text(text)).await.map(|()| None),
        Outbound::Texts(texts) => {
            for text in texts {
                socket.feed(Message::Text(text)).await?;
            }
            Ok(None)
        }
        Outbound::Close(close) => Ok(Some(close)),
    }
}

/// Texts written before one flush: what the hub queued together (a mark's
/// position and account update, a fan-out burst) leaves in one write.
const COALESCED_WRITES: usize = 16;

/// Writes `first` and whatever else is queued right now (up to
/// [`COALESCED_WRITES`] queue items, stopping at a close) with one flush,
/// giving up after `limit`: `None` when it timed out, the hub's close when
/// one came. A write almost always completes on its first poll, so
/// the timeout (a timer and a boxed future) is only set up for one that has
/// to wait.
async fn send_queued(
    socket: &mut WebSocket,
    first: Outbound,
    outbox: Option<&mut queue::Receiver<Outbound>>,
    limit: Duration,
) -> Option<Result<Option<Close>, axum::Error>> {
    let mut write = pin!(async move {
        let mut close = feed(socket, first).await?;
        if let Some(outbox) = outbox {
            for _ in 1..COALESCED_WRITES {
                if close.is_some() {
                    break;
                }
                let Some(frames) = outbox.try_recv() else { break };
                close = feed(socket, frames).await?;
            }
        }
        socket.flush().await.map(|()| close)
    });
    if let Poll::Ready(result) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return Some(result);
    }
    Box::pin(tokio::time::timeout(limit, write)).await.ok()
}

/// Whether a read failed because the client's message exceeded the limit.
fn is_too_big(error: axum::Error) -> bool {
    matches!(error.into_inner().downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}

/// Handles one client message; returns a direct reply, if any.
async fn handle_text(
    text: &str,
    conn: &Connection,
    outbox: &mut Option<queue::Receiver<Outbound>>,
) -> Option<ServerMessage> {
    let (id, membership) = (conn.membership.conn(), &conn.membership);
    match decode_client(text) {
        Ok(ClientMessage::Subscribe { channels, since, epoch, deltas }) => {
            let channels = Channels::from_list(&channels);
            let tx = outbox.is_none().then(|| {
                let (tx, rx) = queue::bounded(conn.shared.send_queue);
                *outbox = Some(rx);
                tx
            });
            let since = since.map(|s| (s, epoch));
            membership.send(Command::Subscribe { conn: id, channels, since, deltas, tx }).await;
            None
        }
        Ok(ClientMessage::Unsubscribe { channels }) => {
            membership.send(Command::Unsubscribe { conn: id, channels: Channels::from_list(&channels) }).await;
            None
        }
        Ok(ClientMessage::CatchUp { since_sequence, epoch }) if outbox.is_some() => {
            membership.send(Command::CatchUp { conn: id, since: since_sequence, epoch }).await;
            None
        }
        Ok(ClientMessage::CatchUp { .. }) => {
            Some(ServerMessage::error(ErrorCode::InvalidMessage, "Subscribe before catch_up"))
        }
        Ok(ClientMessage::Ping { id }) => Some(ServerMessage::Pong { id, timestamp: common::event::Timestamp::now() }),
        Err(error) => Some(error.to_server_message()),
    }
}

async fn send_json(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), axum::Error> {
    match encode(message) {
        Some(text) => socket.send(Message::Text(text)).await,
        None => Ok(()),
    }
}

/// The instant the token stops being accepted, on tokio's clock: the start
/// of the second after `valid_until` (`exp` plus the leeway), when REST
/// refuses it too.
fn expiry_instant(valid_until: i64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let refused_ms = valid_until.saturating_add(1).saturating_mul(1_000);
    let left = u64::try_from(refused_ms.saturating_sub(now_ms)).unwrap_or(0);
    Instant::now() + Duration::from_millis(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, F: Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every open socket keeps one of these futures: its size is most of the
    /// task's, and so of the memory per connection (BRIEF §7; 2,792 bytes
    /// before `docs/benchmarks.md` "Memory per connection", 1,072 after).
    /// If this fails, look for a large future awaited inline in `run` (box
    /// it) or an `async fn` taking the socket by value (rust-lang/rust#62958).
    #[test]
    fn a_connection_future_stays_small() {
        let size = future_size(serve);
        assert!(size <= 1_280, "the connection future grew to {size} bytes");
    }
}
