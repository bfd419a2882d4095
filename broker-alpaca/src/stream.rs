//! Alpaca's two streams, as the broker relay reads them: trade updates
//! (`wss://paper-api.alpaca.markets/stream`) and market data
//! (`wss://stream.data.alpaca.markets/v2/iex`).
//!
//! These speak the protocol directly over tokio-tungstenite rather than
//! through `apca`'s streaming types: apca's `OrderUpdate` keeps only the
//! event and the order, and drops `execution_id`, `price`, `qty`,
//! `position_qty` and `timestamp`, which a fill needs (docs/decisions.md).
//! A trade update is therefore passed on as the JSON Alpaca sent, and the
//! broker webhook reads it as it reads any other.
//!
//! Both sockets are watched for silence: after [`SILENCE`] without a frame a
//! ping is sent, and a second [`SILENCE`] without one fails the stream as
//! [`StreamError::Silent`] (a half-open TCP connection never ends on its
//! own).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Quiet time after which a ping is sent; twice this without any frame
/// fails the stream.
pub const SILENCE: Duration = Duration::from_secs(20);

/// Longest wait for the connection and each step of the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a stream ended or could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Connecting failed, or the connection broke (retry with backoff).
    #[error("stream connection failed: {0}")]
    Connection(String),
    /// The keys were refused (retrying does not help until they change).
    #[error("stream authentication refused: {0}")]
    Refused(String),
    /// The server said something this code does not understand.
    #[error("unexpected stream message: {0}")]
    Protocol(String),
    /// No frame for twice [`SILENCE`], ping included.
    #[error("stream silent for {0:?}")]
    Silent(Duration),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket with the silence watch and JSON frames.
#[derive(Debug)]
struct Json {
    socket: Socket,
    /// When the last frame of any kind (pongs included) arrived.
    alive: std::time::Instant,
}

impl Json {
    async fn connect(url: &str) -> Result<Self, StreamError> {
        let connecting = tokio_tungstenite::connect_async(url);
        let (socket, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| StreamError::Connection(format!("no answer within {HANDSHAKE_TIMEOUT:?}")))?
            .map_err(|e| StreamError::Connection(e.to_string()))?;
        Ok(Self { socket, alive: std::time::Instant::now() })
    }

    async fn send(&mut self, value: &Value) -> Result<(), StreamError> {
        self.socket.send(Message::text(value.to_string())).await.map_err(|e| StreamError::Connection(e.to_string()))
    }

    /// The next JSON frame; pings while quiet, fails after twice [`SILENCE`].
    async fn next(&mut self, silence: Duration) -> Result<Box<RawValue>, StreamError> {
        let mut pinged = false;
        loop {
            let frame = match tokio::time::timeout(silence, self.socket.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(error))) => return Err(StreamError::Connection(error.to_string())),
                Ok(None) => return Err(StreamError::Connection("closed by the server".into())),
                Err(_) if pinged => return Err(StreamError::Silent(silence * 2)),
                Err(_) => {
                    pinged = true;
                    self.socket
                        .send(Message::Ping(Vec::new().into()))
                        .await
                        .map_err(|e| StreamError::Connection(e.to_string()))?;
                    continue;
                }
            };
            pinged = false;
            self.alive = std::time::Instant::now();
            let parsed = match &frame {
                Message::Text(text) => serde_json::from_str(text.as_str()),
                Message::Binary(bytes) => serde_json::from_slice(bytes),
                Message::Close(close) => {
                    return Err(StreamError::Connection(format!("closed by the server: {close:?}")));
                }
                _ => continue,
            };
            return parsed.map_err(|e| StreamError::Protocol(format!("not JSON: {e}")));
        }
    }

    /// [`Self::next`] as a value, within the handshake timeout.
    async fn reply(&mut self) -> Result<Value, StreamError> {
        let raw = self.next(HANDSHAKE_TIMEOUT).await?;
        serde_json::from_str(raw.get()).map_err(|e| StreamError::Protocol(e.to_string()))
    }

    async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The trade-updates stream of one account, authenticated and listening.
#[derive(Debug)]
pub struct TradeUpdates {
    socket: Json,
}

impl TradeUpdates {
    /// Connects, authenticates and listens to `trade_updates`.
    pub async fn connect(url: &str, key_id: &str, secret: &str) -> Result<Self, StreamError> {
        let mut socket = Json::connect(url).await?;
        socket.send(&json!({"action": "auth", "key": key_id, "secret": secret})).await?;
        let reply = socket.reply().await?;
        match (reply["stream"].as_str(), reply["data"]["status"].as_str()) {
            (Some("authorization"), Some("authorized")) => {}
            (Some("authorization"), status) => {
                return Err(StreamError::Refused(format!("status {}", status.unwrap_or("missing"))));
            }
            _ => return Err(StreamError::Protocol(format!("expected authorization, got {reply}"))),
        }
        socket.send(&json!({"action": "listen", "data": {"streams": ["trade_updates"]}})).await?;
        let reply = socket.reply().await?;
        let listening = reply["stream"] == "listening"
            && reply["data"]["streams"].as_array().is_some_and(|s| s.iter().any(|s| s == "trade_updates"));
        if !listening {
            return Err(StreamError::Protocol(format!("expected listening to trade_updates, got {reply}")));
        }
        Ok(Self { socket })
    }

    /// When the server was last heard from (any frame, pongs included):
    /// everything it sent before then has been read.
    pub fn last_heard(&self) -> std::time::Instant {
        self.socket.alive
    }

    /// The next trade update's `data`, as Alpaca sent it. Other messages
    /// (a repeated `listening`) are skipped.
    pub async fn next(&mut self) -> Result<Value, StreamError> {
        loop {
            let raw = self.socket.next(SILENCE).await?;
            if let Some(update) = trade_update(raw.get())? {
                return Ok(update);
            }
        }
    }

    /// Closes the stream.
    pub async fn close(self) {
        self.socket.close().await;
    }
}

/// One trade print: the last price of a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Print {
    /// Alpaca's symbol.
    pub symbol: String,
    /// The price, exactly as printed (read from the JSON number's text).
    pub price: Decimal,
    /// When it printed (RFC 3339).
    pub timestamp: String,
}

/// The market-data stream, authenticated.
#[derive(Debug)]
pub struct MarketData {
    socket: Json,
}

/// One element of a market-data frame, as far as prints need.
#[derive(Debug, Deserialize)]
struct DataMessage<'a> {
    #[serde(rename = "T")]
    kind: &'a str,
    #[serde(rename = "S", default)]
    symbol: Option<String>,
    #[serde(rename = "p", default, borrow)]
    price: Option<&'a RawValue>,
    #[serde(rename = "t", default)]
    timestamp: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    code: Option<i64>,
}

impl MarketData {
    /// Connects and authenticates.
    pub async fn connect(url: &str, key_id: &str, secret: &str) -> Result<Self, StreamError> {
        let mut socket = Json::connect(url).await?;
        let hello = socket.reply().await?;
        if hello[0]["T"] != "success" {
            return Err(StreamError::Protocol(format!("expected connected, got {hello}")));
        }
        socket.send(&json!({"action": "auth", "key": key_id, "secret": secret})).await?;
        let reply = socket.reply().await?;
        match reply[0]["T"].as_str() {
            Some("success") if reply[0]["msg"] == "authenticated" => Ok(Self { socket }),
            Some("error") => Err(StreamError::Refused(reply[0]["msg"].as_str().unwrap_or("error").to_owned())),
            _ => Err(StreamError::Protocol(format!("expected authenticated, got {reply}"))),
        }
    }

    /// Asks for the trades of `symbols` (the answer arrives in [`Self::next`]'s
    /// stream and is skipped there).
    pub async fn subscribe(&mut self, symbols: &[String]) -> Result<(), StreamError> {
        self.socket.send(&json!({"action": "subscribe", "trades": symbols})).await
    }

    /// Stops the trades of `symbols`.
    pub async fn unsubscribe(&mut self, symbols: &[String]) -> Result<(), StreamError> {
        self.socket.send(&json!({"action": "unsubscribe", "trades": symbols})).await
    }

    /// The prints of the next frame that has any (subscription answers and
    /// other kinds are skipped; an `error` message fails the stream).
    pub async fn next(&mut self) -> Result<Vec<Print>, StreamError> {
        loop {
            let raw = self.socket.next(SILENCE).await?;
            let prints = prints(raw.get())?;
            if !prints.is_empty() {
                return Ok(prints);
            }
        }
    }

    /// Closes the stream.
    pub async fn close(self) {
        self.socket.close().await;
    }
}

/// One trade-updates frame: the update's `data` when it is one, `None` for
/// the stream's other messages.
pub fn trade_update(frame: &str) -> Result<Option<Value>, StreamError> {
    let mut message: Value = serde_json::from_str(frame).map_err(|e| StreamError::Protocol(e.to_string()))?;
    if message["stream"] != "trade_updates" {
        return Ok(None);
    }
    match message["data"].take() {
        data @ Value::Object(_) => Ok(Some(data)),
        other => Err(StreamError::Protocol(format!("a trade update whose data is {other}"))),
    }
}

/// The prints of one market-data frame (an array of messages); other kinds
/// are skipped, an `error` message fails.
pub fn prints(frame: &str) -> Result<Vec<Print>, StreamError> {
    let messages: Vec<DataMessage<'_>> =
        serde_json::from_str(frame).map_err(|e| StreamError::Protocol(e.to_string()))?;
    let mut prints = Vec::new();
    for message in messages {
        match message.kind {
            "t" => {
                let (Some(symbol), Some(price), Some(timestamp)) = (message.symbol, message.price, message.timestamp)
                else {
                    return Err(StreamError::Protocol("a trade without symbol, price or time".into()));
                };
                let price = (price.get().parse::<Decimal>())
                    .or_else(|_| Decimal::from_scientific(price.get()))
                    .map_err(|_| StreamError::Protocol(format!("price {} of {symbol}", price.get())))?;
                prints.push(Print { symbol, price, timestamp });
            }
            "error" => {
                return Err(StreamError::Protocol(format!(
                    "error {}: {}",
                    message.code.unwrap_or_default(),
                    message.msg.unwrap_or_default()
                )))
            }
            _ => {}
        }
    }
    Ok(prints)
}
