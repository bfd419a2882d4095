//! One WebSocket connection: a single `select!` over the client's frames,
//! the hub's messages, the heartbeat, the lease refresh, the token's expiry
//! and the shutdown notice.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use common::auth::Claims;
use common::leases::Leases;
use common::protocol::{decode_client, ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::{Instant, MissedTickBehavior};

use crate::close::{self, Close};
use crate::config::Limits;
use crate::hub::{Channels, Command, Membership, Outbound};
use crate::stats::Stats;

/// How long a closing socket waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Invalid messages tolerated per connection before it is closed.
const MAX_INVALID: u32 = 10;

/// Everything one connection holds while it lives; dropping it releases
/// the hub membership and the capacity permit.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) claims: Claims,
    pub(crate) membership: Membership,
    pub(crate) lease_id: String,
    pub(crate) leases: Arc<dyn Leases>,
    pub(crate) limits: Limits,
    pub(crate) send_queue: usize,
    pub(crate) max_message_bytes: usize,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) _permit: OwnedSemaphorePermit,
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

/// Serves an authenticated socket until it closes, then gives its lease back.
#[tracing::instrument(name = "connection", skip_all, fields(conn = conn.membership.conn(), user = %conn.claims.user_id))]
pub(crate) async fn serve(mut socket: WebSocket, mut conn: Connection) {
    tracing::debug!("Connection opened.");
    conn.stats.connected();
    let reason = run(&mut socket, &mut conn).await;
    conn.stats.disconnected(close::label(reason));
    if let Some((code, text)) = reason {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(text) };
        // Send our close, then read until the client's close (bounded): a
        // socket dropped with unread input is reset, and the client would
        // lose our close frame with it.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            }
        })
        .await;
    }
    if let Err(error) = conn.leases.release(&conn.claims.user_id, &conn.lease_id).await {
        tracing::warn!(%error, "Lease release failed; it expires on its own.");
    }
    tracing::debug!(reason = reason.map(|r| r.1), "Connection closed.");
}

async fn run(socket: &mut WebSocket, conn: &mut Connection) -> Option<Close> {
    let (tx, mut rx) = mpsc::channel(conn.send_queue);
    // Given to the hub with the first subscribe; until then nothing is sent.
    let mut tx = Some(tx);
    let expiry = expiry_instant(conn.claims.expires_at);
    let id = conn.membership.conn();
    let limits = conn.limits;
    let mut heartbeat = tokio::time::interval(limits.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut lease_refresh = tokio::time::interval(limits.lease_ttl / 3);
    lease_refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    lease_refresh.reset();
    let mut last_heard = Instant::now();
    let mut rate = RateLimit { window_start: Instant::now(), count: 0, max: limits.messages_per_sec };
    let mut invalid = 0;
    loop {
        tokio::select! {
            frame = socket.recv() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if !rate.allow(last_heard) {
                            return Some(close::FLOOD);
                        }
                        if text.len() > conn.max_message_bytes {
                            return Some(close::TOO_BIG);
                        }
                        let reply = handle_text(&text, id, &conn.membership, &mut tx).await;
                        if let Some(reply) = reply {
                            if matches!(reply, ServerMessage::Error { .. }) {
                                conn.stats.client_error();
                                invalid += 1;
                                if invalid > MAX_INVALID {
                                    return Some(close::ABUSE);
                                }
                            }
                            send_json(socket, &reply).await.ok()?;
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        if !rate.allow(last_heard) {
                            return Some(close::FLOOD);
                        }
                        if data.len() > conn.max_message_bytes {
                            return Some(close::TOO_BIG);
                        }
                        invalid += 1;
                        if invalid > MAX_INVALID {
                            return Some(close::ABUSE);
                        }
                        let reply = ServerMessage::error(ErrorCode::BinaryNotSupported, "Send JSON text frames");
                        send_json(socket, &reply).await.ok()?;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => return None,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "Socket error.");
                        return is_too_big(error).then_some(close::TOO_BIG);
                    }
                }
            }
            outbound = rx.recv(), if tx.is_none() => match outbound {
                // A client that stops reading blocks the write once the TCP
                // buffers fill; give up on it after the heartbeat timeout.
                Some(Outbound::Text(text)) => {
                    match tokio::time::timeout(limits.heartbeat_timeout, socket.send(Message::Text(text))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return None,
                        Err(_) => return Some(close::SLOW_CONSUMER),
                    }
                }
                // The hub dropped us: our queue was full.
                None => return Some(close::SLOW_CONSUMER),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= limits.heartbeat_timeout {
                    return Some(close::HEARTBEAT_TIMEOUT);
                }
                socket.send(Message::Ping(bytes::Bytes::new())).await.ok()?;
            }
            _ = lease_refresh.tick() => {
                let user = &conn.claims.user_id;
                // A refresh can only fail on an outage; the lease then lapses
                // and the next refresh takes it again.
                if let Err(error) = conn.leases.acquire(user, &conn.lease_id, limits.lease_ttl, usize::MAX).await {
                    tracing::warn!(%error, "Lease refresh failed.");
                }
            }
            () = tokio::time::sleep_until(expiry) => return Some(close::SESSION_EXPIRED),
            _ = conn.shutdown.changed() => return Some(close::RESTARTING),
        }
    }
}

/// Whether a read failed because the client's message exceeded the limit.
fn is_too_big(error: axum::Error) -> bool {
    matches!(error.into_inner().downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}

/// Handles one client message; returns a direct reply, if any.
async fn handle_text(
    text: &str,
    conn: u64,
    membership: &Membership,
    tx: &mut Option<mpsc::Sender<Outbound>>,
) -> Option<ServerMessage> {
    match decode_client(text) {
        Ok(ClientMessage::Subscribe { channels, since, epoch }) => {
            let channels = Channels::from_list(&channels);
            membership
                .send(Command::Subscribe { conn, channels, since: since.map(|s| (s, epoch)), tx: tx.take() })
                .await;
            None
        }
        Ok(ClientMessage::Unsubscribe { channels }) => {
            membership.send(Command::Unsubscribe { conn, channels: Channels::from_list(&channels) }).await;
            None
        }
        Ok(ClientMessage::CatchUp { since_sequence, epoch }) if tx.is_none() => {
            membership.send(Command::CatchUp { conn, since: since_sequence, epoch }).await;
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
    let json = serde_json::to_string(message).unwrap_or_default();
    socket.send(Message::Text(json.into())).await
}

/// The instant the token expires, on tokio's clock.
fn expiry_instant(expires_at: i64) -> Instant {
    let now = chrono::Utc::now().timestamp();
    let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
    Instant::now() + Duration::from_secs(left)
}
