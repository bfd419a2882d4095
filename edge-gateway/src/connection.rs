//! One WebSocket connection: a single `select!` over the client's frames,
//! the hub's messages, the token's expiry and the shutdown notice.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use common::auth::Claims;
use common::protocol::{decode_client, ClientMessage, ErrorCode, ServerMessage};
use tokio::sync::{mpsc, watch};

use crate::close;
use crate::hub::{Channels, Command, Membership, Outbound};

/// Serves an authenticated socket until it closes.
#[tracing::instrument(name = "connection", skip_all, fields(conn = membership.conn(), user = %claims.user_id))]
pub(crate) async fn serve(
    mut socket: WebSocket,
    claims: Claims,
    membership: Membership,
    send_queue: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!("Connection opened.");
    let (tx, mut rx) = mpsc::channel(send_queue);
    // Given to the hub with the first subscribe; until then nothing is sent.
    let mut tx = Some(tx);
    let expiry = expiry_instant(claims.expires_at);
    let conn = membership.conn();
    let reason = loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = handle_text(&text, conn, &membership, &mut tx).await {
                        if send_json(&mut socket, &reply).await.is_err() {
                            break None;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = ServerMessage::error(ErrorCode::BinaryNotSupported, "Send JSON text frames");
                    if send_json(&mut socket, &reply).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(error)) => {
                    tracing::debug!(%error, "Socket error.");
                    break None;
                }
            },
            outbound = rx.recv(), if tx.is_none() => match outbound {
                Some(Outbound::Text(text)) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        break None;
                    }
                }
                // The hub dropped us: our queue was full.
                None => break Some(close::SLOW_CONSUMER),
            },
            () = tokio::time::sleep_until(expiry) => break Some(close::SESSION_EXPIRED),
            _ = shutdown.changed() => break Some(close::RESTARTING),
        }
    };
    if let Some((code, text)) = reason {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(text) };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    tracing::debug!(reason = reason.map(|r| r.1), "Connection closed.");
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
fn expiry_instant(expires_at: i64) -> tokio::time::Instant {
    let now = chrono::Utc::now().timestamp();
    let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_secs(left)
}
