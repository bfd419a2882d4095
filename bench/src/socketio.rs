//! A minimal Socket.IO client (protocol v5 over Engine.IO v4; websocket
//! transport only, namespace "/"), so the bench can drive the Socket.IO peer
//! (`bench/peers/socketio`) the way it drives the gateway.
//!
//! Over the websocket transport each text frame is one Engine.IO packet: a
//! type digit (`0` open, `1` close, `2` ping, `3` pong, `4` message, `6`
//! noop) and its data. A message carries one Socket.IO packet: a type digit
//! (`0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR,
//! `5`/`6` binary), an optional `/namespace,`, an optional ack id, then JSON.
//! So an event reads `42["portfolio",{…}]`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::client::client_config;

/// The longest a connect (WebSocket upgrade, Engine.IO open, Socket.IO
/// CONNECT ack) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest [`SocketIo::close`] waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a Socket.IO connection failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered the CONNECT with CONNECT_ERROR (`44{"message":…}`).
    #[error("connection refused: {0}")]
    Refused(String),
    /// The connection closed before the CONNECT ack.
    #[error("connection closed")]
    Closed,
    /// The connect took longer than [`CONNECT_TIMEOUT`].
    #[error("no CONNECT ack within {0:?}")]
    Timeout(Duration),
    /// The WebSocket failed (upgrade, read or write).
    #[error("websocket: {0}")]
    WebSocket(String),
    /// A frame this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A connected Socket.IO client (websocket transport only, namespace "/").
///
/// Engine.IO pings are answered inside [`Self::next_event`]: a connection
/// nobody polls stops answering and the server drops it after
/// `pingInterval + pingTimeout` (45 s by default).
#[derive(Debug)]
pub struct SocketIo {
    ws: WebSocketStream<Counted<TcpStream>>,
    sid: String,
    received: Arc<AtomicU64>,
}

impl SocketIo {
    /// Engine.IO handshake over `stream` (a TcpStream the caller connected,
    /// possibly from a chosen 127.0.0.x source address) to
    /// `ws://{host}/socket.io/?EIO=4&transport=websocket`, then the
    /// Socket.IO CONNECT with auth `{"token": token}`. Returns once the
    /// CONNECT ack arrived; an error on CONNECT_ERROR, close, or after
    /// [`CONNECT_TIMEOUT`].
    pub async fn connect(stream: TcpStream, host: &str, token: &str) -> Result<Self, Error> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::handshake(stream, host, token))
            .await
            .map_err(|_| Error::Timeout(CONNECT_TIMEOUT))?
    }

    async fn handshake(stream: TcpStream, host: &str, token: &str) -> Result<Self, Error> {
        let received = Arc::new(AtomicU64::new(0));
        let stream = Counted { inner: stream, received: Arc::clone(&received) };
        let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())).await.map_err(ws_error)?;
        let mut socket = Self { ws, sid: String::new(), received };

        match socket.next_packet().await? {
            Packet::Open(_) => {}
            other => return Err(Error::Protocol(format!("expected the Engine.IO open packet, got {other:?}"))),
        }
        socket.send(connect_packet(token)).await?;
        loop {
            match socket.next_packet().await? {
                Packet::Connected(ack) => {
                    socket.sid = ack["sid"].as_str().unwrap_or_default().to_owned();
                    return Ok(socket);
                }
                Packet::ConnectError(data) => return Err(refused(&data)),
                Packet::Ping => socket.send("3".to_owned()).await?,
                Packet::Close | Packet::Disconnected => return Err(Error::Closed),
                Packet::Open(_) | Packet::Event { .. } | Packet::Ignored => {}
            }
        }
    }

    /// The next EVENT packet (`42["name", data]`) as (name, data), answering
    /// Engine.IO pings on the way. `data` is the event's one argument (`Null`
    /// for none, an array for several). `None` once the connection closed.
    /// Dropping the future (under a `timeout`, in a `select!`) loses no event.
    pub async fn next_event(&mut self) -> Option<Result<(String, Value), Error>> {
        loop {
            let packet = match self.next_packet().await {
                Ok(packet) => packet,
                Err(Error::Closed) => return None,
                Err(e) => return Some(Err(e)),
            };
            match packet {
                Packet::Event { name, data } => return Some(Ok((name, data))),
                Packet::Ping => {
                    if let Err(e) = self.send("3".to_owned()).await {
                        return Some(Err(e));
                    }
                }
                Packet::ConnectError(data) => return Some(Err(refused(&data))),
                Packet::Close | Packet::Disconnected => return None,
                Packet::Open(_) | Packet::Connected(_) | Packet::Ignored => {}
            }
        }
    }

    /// The Socket.IO session id the CONNECT ack gave.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Bytes read from the TCP stream so far: the HTTP upgrade answer,
    /// WebSocket framing and every packet.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Sends DISCONNECT (`41`) and closes the WebSocket, waiting a moment
    /// for the server's close frame.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.ws.send(Message::text("41")).await;
            let _ = self.ws.close(None).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn send(&mut self, text: String) -> Result<(), Error> {
        self.ws.send(Message::text(text)).await.map_err(ws_error)
    }

    /// The next Engine.IO packet; [`Error::Closed`] once the stream ended.
    async fn next_packet(&mut self) -> Result<Packet, Error> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return parse(text.as_str()).map_err(Error::Protocol),
                Some(Ok(Message::Close(_))) | None => return Err(Error::Closed),
                // WebSocket pings (answered by tungstenite) and binary
                // attachments (their header packet is refused by `parse`).
                Some(Ok(_)) => {}
                Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                    return Err(Error::Closed)
                }
                Some(Err(e)) => return Err(ws_error(e)),
            }
        }
    }
}

fn ws_error(error: tungstenite::Error) -> Error {
    Error::WebSocket(error.to_string())
}

fn refused(data: &Value) -> Error {
    Error::Refused(data["message"].as_str().map_or_else(|| data.to_string(), str::to_owned))
}

/// The Socket.IO CONNECT to "/" with `{"token": token}` as its auth payload.
fn connect_packet(token: &str) -> String {
    format!("40{}", serde_json::json!({ "token": token }))
}

/// One packet as this client acts on it.
#[derive(Debug, Clone, PartialEq)]
enum Packet {
    /// Engine.IO open: `{"sid", "pingInterval", "pingTimeout", …}`.
    Open(Value),
    /// Engine.IO close.
    Close,
    /// Engine.IO ping, to answer with a pong (`3`).
    Ping,
    /// Socket.IO CONNECT ack of "/": `{"sid": …}`.
    Connected(Value),
    /// Socket.IO DISCONNECT of "/".
    Disconnected,
    /// Socket.IO CONNECT_ERROR of "/": `{"message": …}`.
    ConnectError(Value),
    /// Socket.IO EVENT to "/".
    Event {
        /// The event name.
        name: String,
        /// The one argument; `Null` for none, an array for several.
        data: Value,
    },
    /// Pong, noop, upgrade, ACK, and anything for another namespace.
    Ignored,
}

/// Reads one Engine.IO packet (one WebSocket text frame).
fn parse(frame: &str) -> Result<Packet, String> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or("empty Engine.IO packet")?;
    let rest = chars.as_str();
    match kind {
        '0' => serde_json::from_str(rest).map(Packet::Open).map_err(|e| format!("open packet: {e}")),
        '1' => Ok(Packet::Close),
        '2' => Ok(Packet::Ping),
        '3' | '5' | '6' => Ok(Packet::Ignored),
        '4' => parse_socket_io(rest),
        other => Err(format!("unknown Engine.IO packet type {other:?} in {frame:?}")),
    }
}

/// Reads the Socket.IO packet an Engine.IO message carries.
fn parse_socket_io(packet: &str) -> Result<Packet, String> {
    let mut chars = packet.chars();
    let kind = chars.next().ok_or("empty Socket.IO packet")?;
    let mut rest = chars.as_str();
    if matches!(kind, '5' | '6') {
        return Err("binary Socket.IO packets are not supported".to_owned());
    }
    if rest.starts_with('/') {
        let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
        if namespace != "/" {
            return Ok(Packet::Ignored);
        }
        rest = after;
    }
    // An ack id (digits) may stand before the JSON; this client never acks.
    let payload = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let json = || -> Result<Value, String> {
        if payload.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(payload).map_err(|e| format!("Socket.IO payload {payload:?}: {e}"))
        }
    };
    match kind {
        '0' => json().map(Packet::Connected),
        '1' => Ok(Packet::Disconnected),
        '2' => event(json()?),
        '3' => Ok(Packet::Ignored),
        '4' => json().map(Packet::ConnectError),
        other => Err(format!("unknown Socket.IO packet type {other:?}")),
    }
}

/// An EVENT payload: `["name", args…]`.
fn event(payload: Value) -> Result<Packet, String> {
    let Value::Array(mut items) = payload else {
        return Err(format!("event payload is not an array: {payload}"));
    };
    if items.is_empty() {
        return Err("event payload is empty".to_owned());
    }
    let Value::String(name) = items.remove(0) else {
        return Err("event name is not a string".to_owned());
    };
    let data = match items.len() {
        0 => Value::Null,
        1 => items.remove(0),
        _ => Value::Array(items),
    };
    Ok(Packet::Event { name, data })
}

/// A stream that counts the bytes read from it.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    received: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.received.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_io_packets_are_read() {
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let Ok(Packet::Open(data)) = parse(open) else { panic!("{:?}", parse(open)) };
        assert_eq!(data["pingInterval"], 25000);
        assert_eq!(parse("1"), Ok(Packet::Close));
        assert_eq!(parse("2"), Ok(Packet::Ping));
        assert_eq!(parse("3"), Ok(Packet::Ignored));
        assert_eq!(parse("6"), Ok(Packet::Ignored));
        assert!(parse("").is_err());
        assert!(parse("9").is_err());
        assert!(parse("0not json").is_err());
    }

    #[test]
    fn connect_answers_are_read() {
        assert_eq!(parse(r#"40{"sid":"s1"}"#), Ok(Packet::Connected(json!({"sid": "s1"}))));
        assert_eq!(
            parse(r#"44{"message":"unauthorized"}"#),
            Ok(Packet::ConnectError(json!({"message": "unauthorized"})))
        );
        assert_eq!(parse("41"), Ok(Packet::Disconnected));
        assert_eq!(refused(&json!({"message": "unauthorized"})).to_string(), "connection refused: unauthorized");
    }

    #[test]
    fn events_carry_their_name_and_argument() {
        let event = |name: &str, data: Value| Ok(Packet::Event { name: name.to_owned(), data });
        assert_eq!(parse(r#"42["portfolio",{"seq":1}]"#), event("portfolio", json!({"seq": 1})));
        assert_eq!(parse(r#"42["ping"]"#), event("ping", Value::Null));
        assert_eq!(parse(r#"42["pair",1,2]"#), event("pair", json!([1, 2])));
        // An ack id, and the default namespace written out.
        assert_eq!(parse(r#"4217["x","y"]"#), event("x", json!("y")));
        assert_eq!(parse(r#"42/,["x","y"]"#), event("x", json!("y")));
    }

    #[test]
    fn other_namespaces_and_acks_are_ignored() {
        assert_eq!(parse(r#"42/admin,["x",1]"#), Ok(Packet::Ignored));
        assert_eq!(parse(r#"40/admin,{"sid":"s"}"#), Ok(Packet::Ignored));
        assert_eq!(parse(r#"433["ok"]"#), Ok(Packet::Ignored));
    }

    #[test]
    fn malformed_socket_io_packets_are_errors() {
        for frame in ["4", "47", r#"42{"a":1}"#, "42[]", "42[1]", r#"42["x""#, r#"451-["x",{"_placeholder":true}]"#] {
            assert!(parse(frame).is_err(), "{frame}");
        }
    }

    #[test]
    fn the_connect_packet_carries_the_token_as_json() {
        assert_eq!(connect_packet(r#"a"b"#), r#"40{"token":"a\"b"}"#);
    }
}
