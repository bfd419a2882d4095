//! The WebSocket protocol between clients and the gateway (BRIEF §3): what a
//! client may send ([`ClientMessage`], decoded only through [`decode_client`]),
//! what the gateway sends ([`ServerMessage`]), and the typed errors in between.
//!
//! Every message is a JSON text frame, an object whose `type` says what it
//! is. Field names are camelCase, except `catch_up`'s `since_sequence`, which
//! keeps the design note's spelling (`sinceSequence` is accepted as well).
//! Client messages may carry fields this version does not know; they are
//! ignored, so clients can add e.g. a request id without breaking older
//! gateways.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::event::{Account, Channel, Envelope, Event, Order, Position, Timestamp, Trade};

pub mod close;
pub mod delta;
#[cfg(test)]
mod tests;

/// A message from a client.
///
/// Decode client input with [`decode_client`], which tells apart the
/// failures the client should hear about; the derived `Deserialize` is what
/// it uses underneath.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ClientMessage {
    /// Start receiving `channels` (added to any already subscribed).
    ///
    /// With `since` (the last `seq` the client applied) and the `epoch` it was
    /// under, the gateway first replays what the client missed, or sends a
    /// `snapshot` when it cannot. Without `since`, the client gets a
    /// `snapshot` of its current state and then live events.
    Subscribe {
        /// The channels to add.
        channels: Vec<Channel>,
        /// The last sequence number the client applied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// The epoch `since` belongs to; a different epoch means the history
        /// was reset and only a snapshot is correct.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// Position and account updates may carry only the fields that
        /// changed ([`delta`]); full objects when `false` (the default).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deltas: bool,
    },
    /// Stop receiving `channels`.
    Unsubscribe {
        /// The channels to drop.
        channels: Vec<Channel>,
    },
    /// Replay every event after `since_sequence` (e.g. after the client
    /// noticed a gap), or send a `snapshot` when the log no longer has them.
    CatchUp {
        /// The last sequence number the client applied.
        #[serde(rename = "since_sequence", alias = "sinceSequence")]
        since_sequence: u64,
        /// The epoch `since_sequence` belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    /// An application-level liveness check, answered with `pong`. (The
    /// gateway also sends WebSocket pings; this one is for clients that
    /// cannot see those, such as browsers.)
    Ping {
        /// Echoed in the `pong`, so the client can match them and measure
        /// round trips.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<PingId>,
    },
}

impl ClientMessage {
    /// Every client message type, as written in `type`.
    pub const TYPES: [&'static str; 4] = ["subscribe", "unsubscribe", "catch_up", "ping"];

    /// The wire name of the message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::CatchUp { .. } => "catch_up",
            ClientMessage::Ping { .. } => "ping",
        }
    }
}

/// The client's opaque `ping` id: a JSON number or a short string, echoed
/// as it came.
///
/// Restricted to scalars of bounded size so that echoing it costs the
/// gateway nothing worth abusing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum PingId {
    /// Any JSON number (`Date.now()`, a counter, `performance.now()`).
    Number(serde_json::Number),
    /// A string of at most [`PingId::MAX_LEN`] bytes.
    Text(String),
}

impl PingId {
    /// Longest accepted string id, in bytes.
    pub const MAX_LEN: usize = 64;
}

impl<'de> Deserialize<'de> for PingId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = PingId;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a number or a string of at most {} bytes", PingId::MAX_LEN)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PingId, E> {
                Ok(PingId::Number(v.into()))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PingId, E> {
                Ok(PingId::Number(v.into()))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PingId, E> {
                serde_json::Number::from_f64(v)
                    .map(PingId::Number)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PingId, E> {
                if v.len() <= PingId::MAX_LEN {
                    Ok(PingId::Text(v.to_owned()))
                } else {
                    Err(E::invalid_length(v.len(), &self))
                }
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// A message from the gateway to a client.
///
/// The four event types carry the note's envelope unchanged (plus `seq`).
/// Every message that changes the client's state carries the `seq` it brings
/// the client to, so the client can resume from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ServerMessage {
    /// A position's quantity, price or P&L changed.
    PositionUpdate(Envelope<Position>),
    /// An order's status changed.
    OrderUpdate(Envelope<Order>),
    /// Balances or equity changed.
    AccountUpdate(Envelope<Account>),
    /// A trade was executed.
    TradeExecuted(Envelope<Trade>),
    /// Several coalesced updates (BRIEF §4). `seq` is the highest user
    /// sequence number the batch covers; `timestamp` is when it was sent.
    Batch(Envelope<BatchData>),
    /// The answer to `subscribe`: the channels now subscribed, and the user's
    /// current position in the event log.
    Subscribed {
        /// Every channel the connection is subscribed to now.
        channels: Vec<Channel>,
        /// The user's latest sequence number.
        seq: u64,
        /// The epoch of the user's history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    /// The user's full state. It replaces whatever the client holds; live
    /// events continue from `seq + 1`.
    Snapshot {
        /// The sequence number the snapshot is current to.
        seq: u64,
        /// The epoch of the user's history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// When the snapshot was taken.
        timestamp: Timestamp,
        /// The state.
        data: SnapshotData,
    },
    /// The answer to `ping`.
    Pong {
        /// The client's `ping` id, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<PingId>,
        /// The gateway's clock.
        timestamp: Timestamp,
    },
    /// A client message was refused. The connection stays open unless the
    /// gateway also closes it (repeated abuse is closed with 1008).
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people. Never contains server internals.
        message: String,
    },
}

impl ServerMessage {
    /// The wire name of the message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::PositionUpdate(_) => "position_update",
            ServerMessage::OrderUpdate(_) => "order_update",
            ServerMessage::AccountUpdate(_) => "account_update",
            ServerMessage::TradeExecuted(_) => "trade_executed",
            ServerMessage::Batch(_) => "batch",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Error { .. } => "error",
        }
    }

    /// The user sequence number the message brings the client to, if it
    /// carries one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMessage::PositionUpdate(e) => e.seq,
            ServerMessage::OrderUpdate(e) => e.seq,
            ServerMessage::AccountUpdate(e) => e.seq,
            ServerMessage::TradeExecuted(e) => e.seq,
            ServerMessage::Batch(e) => e.seq,
            ServerMessage::Subscribed { seq, .. } | ServerMessage::Snapshot { seq, .. } => Some(*seq),
            ServerMessage::Pong { .. } | ServerMessage::Error { .. } => None,
        }
    }

    /// An `error` message for `code`, with a message safe to show a client.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error { code, message: message.into() }
    }
}

impl From<Event> for ServerMessage {
    fn from(event: Event) -> Self {
        match event {
            Event::PositionUpdate(e) => ServerMessage::PositionUpdate(e),
            Event::OrderUpdate(e) => ServerMessage::OrderUpdate(e),
            Event::AccountUpdate(e) => ServerMessage::AccountUpdate(e),
            Event::TradeExecuted(e) => ServerMessage::TradeExecuted(e),
        }
    }
}

/// The `data` of a `batch`: the latest value of each updated position and
/// order, the latest account, and every trade, in event order.
///
/// The arrays hold the event payloads themselves, not nested envelopes.
/// Empty arrays and a missing account are left out of the JSON (a batch
/// usually carries one or two kinds) and read as empty when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchData {
    /// Latest value per symbol.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<Position>,
    /// Latest value per order id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<Order>,
    /// The latest account, if it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Every trade; trades are never coalesced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trades: Vec<Trade>,
}

impl BatchData {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.orders.is_empty() && self.account.is_none() && self.trades.is_empty()
    }

    /// The part of the batch a connection subscribed to `wanted` may see.
    pub fn filtered(&self, wanted: impl Fn(Channel) -> bool) -> BatchData {
        BatchData {
            positions: if wanted(Channel::Positions) { self.positions.clone() } else { Vec::new() },
            orders: if wanted(Channel::Orders) { self.orders.clone() } else { Vec::new() },
            account: self.account.clone().filter(|_| wanted(Channel::Account)),
            trades: if wanted(Channel::Trades) { self.trades.clone() } else { Vec::new() },
        }
    }
}

/// The cookie browsers carry the session token in (`Cookie: session=<jwt>`);
/// native clients send `Authorization: Bearer <jwt>` instead.
pub const SESSION_COOKIE: &str = "session";

/// Most recent trades kept in a snapshot.
pub const SNAPSHOT_TRADES: usize = 50;

/// The user's full current state, consistent with `seq`: it holds exactly
/// the effects of events `1..=seq` of `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The history this state belongs to. Both backends name one at the
    /// user's first snapshot or event, so it is `None` only from elsewhere.
    pub epoch: Option<String>,
    /// The last seq whose effect is included.
    pub seq: u64,
    /// Open positions, by symbol.
    pub positions: Vec<Position>,
    /// Open orders, by order id.
    pub orders: Vec<Order>,
    /// Latest balances.
    pub account: Option<Account>,
    /// The most recent trades, newest first, at most [`SNAPSHOT_TRADES`] (the wire sends them oldest first).
    pub trades: Vec<Trade>,
}

/// The `data` of a `snapshot`: open positions, open orders, the account, and
/// the recent trades the gateway has (possibly none).
///
/// Unlike a batch, a snapshot always writes its arrays, even empty: "no
/// positions" is part of the state it replaces. Absent arrays read as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotData {
    /// Every open position.
    #[serde(default)]
    pub positions: Vec<Position>,
    /// Every open order.
    #[serde(default)]
    pub orders: Vec<Order>,
    /// The account, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Recent trades, oldest first.
    #[serde(default)]
    pub trades: Vec<Trade>,
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    InvalidJson,
    /// `type` is missing, not a string, or not a client message type.
    UnknownType,
    /// Not an object, a known type with missing or wrong fields, or an
    /// unknown channel.
    InvalidMessage,
    /// The frame exceeds the gateway's size limit.
    MessageTooLarge,
    /// The client sends faster than allowed; the message was dropped.
    RateLimited,
    /// Binary frames carry nothing in this protocol.
    BinaryNotSupported,
    /// The gateway failed; retrying may help.
    Internal,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidMessage,
        ErrorCode::MessageTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::BinaryNotSupported,
        ErrorCode::Internal,
    ];

    /// The code's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Why a client frame was refused.
///
/// The `Display` text is written for the client (it goes into the `error`
/// message) and quotes client input only truncated to
/// [`ProtocolError::MAX_QUOTE`] characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not valid JSON (or holds a number beyond `f64`'s range,
    /// or nests deeper than the parser allows).
    #[error("invalid JSON: {reason}")]
    InvalidJson {
        /// The parser's complaint, with line and column.
        reason: String,
    },
    /// The frame is JSON but not an object.
    #[error("a message must be a JSON object with a \"type\"")]
    NotAnObject,
    /// The object has no `type`, or it is not a string.
    #[error("missing \"type\": expected one of subscribe, unsubscribe, catch_up, ping")]
    MissingType,
    /// `type` names no client message.
    #[error("unknown message type {0:?}: expected one of subscribe, unsubscribe, catch_up, ping")]
    UnknownType(String),
    /// A channel name that does not exist.
    #[error("unknown channel {0:?}: expected one of positions, orders, account, trades")]
    UnknownChannel(String),
    /// A known message type whose fields are missing or of the wrong type.
    #[error("invalid {message_type} message: {}{reason}", field_prefix(.field.as_deref()))]
    InvalidMessage {
        /// The message's `type`.
        message_type: &'static str,
        /// The offending field, when it could be told.
        field: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The frame exceeds the size limit (checked by the gateway before
    /// decoding).
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A binary frame.
    #[error("binary frames are not supported; send JSON text")]
    Binary,
}

impl ProtocolError {
    /// Longest excerpt of client input quoted back in an error, in characters.
    pub const MAX_QUOTE: usize = 64;

    /// The `code` the client receives.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::InvalidJson { .. } => ErrorCode::InvalidJson,
            ProtocolError::MissingType | ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::NotAnObject | ProtocolError::UnknownChannel(_) | ProtocolError::InvalidMessage { .. } => {
                ErrorCode::InvalidMessage
            }
            ProtocolError::TooLarge { .. } => ErrorCode::MessageTooLarge,
            ProtocolError::Binary => ErrorCode::BinaryNotSupported,
        }
    }

    /// The `error` message that tells the client about it.
    pub fn to_server_message(&self) -> ServerMessage {
        ServerMessage::error(self.code(), self.to_string())
    }
}

/// Decodes one client text frame.
///
/// Never panics, whatever the input. Decoding goes through a JSON tree first
/// so that the failure can be named precisely: not JSON, no/unknown `type`,
/// unknown channel, or a bad field of a known type. Unknown fields are
/// ignored.
pub fn decode_client(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|err| ProtocolError::InvalidJson {
        reason: truncate(&err.to_string(), 2 * ProtocolError::MAX_QUOTE),
    })?;
    let Value::Object(object) = value else {
        return Err(ProtocolError::NotAnObject);
    };
    let message_type = match object.get("type") {
        Some(Value::String(name)) => ClientMessage::TYPES
            .into_iter()
            .find(|known| name.as_str() == *known)
            .ok_or_else(|| ProtocolError::UnknownType(truncate(name, ProtocolError::MAX_QUOTE)))?,
        _ => return Err(ProtocolError::MissingType),
    };
    if matches!(message_type, "subscribe" | "unsubscribe") {
        check_channels(&object)?;
    }

    let value = Value::Object(object);
    ClientMessage::deserialize(&value).map_err(|err| ProtocolError::InvalidMessage {
        message_type,
        field: offending_field(&err, &value),
        reason: truncate(&err.to_string(), 2 * ProtocolError::MAX_QUOTE),
    })
}

/// Reports an unknown channel name as such, rather than as serde's generic
/// "unknown variant". Anything else wrong with `channels` is left to serde.
fn check_channels(object: &Map<String, Value>) -> Result<(), ProtocolError> {
    let Some(Value::Array(channels)) = object.get("channels") else {
        return Ok(());
    };
    for name in channels.iter().filter_map(Value::as_str) {
        if !Channel::ALL.iter().any(|channel| channel.as_str() == name) {
            return Err(ProtocolError::UnknownChannel(truncate(name, ProtocolError::MAX_QUOTE)));
        }
    }
    Ok(())
}

/// Names the field a decoding error is about.
///
/// serde names the field itself for missing ones; for a value of the wrong
/// type it does not, so the message is decoded again without each field in
/// turn: the field whose removal changes the error is the culprit. Runs only
/// on the error path, and only for objects of at most [`MAX_PROBED_FIELDS`]
/// fields (client messages have three at most), so a frame stuffed with
/// unknown fields cannot make it quadratic.
fn offending_field(err: &serde_json::Error, value: &Value) -> Option<String> {
    let message = err.to_string();
    if let Some(rest) = message.strip_prefix("missing field `").or_else(|| message.strip_prefix("unknown field `")) {
        return rest.split('`').next().map(str::to_owned);
    }
    let object = value.as_object().filter(|object| object.len() <= MAX_PROBED_FIELDS)?;
    object
        .keys()
        .filter(|key| key.as_str() != "type")
        .find(|key| {
            let mut without = object.clone();
            without.remove(key.as_str());
            match ClientMessage::deserialize(&Value::Object(without)) {
                Ok(_) => true,
                Err(other) => other.to_string() != message,
            }
        })
        .map(|key| truncate(key, ProtocolError::MAX_QUOTE))
}

/// Above this many fields, [`offending_field`] does not look for the culprit.
const MAX_PROBED_FIELDS: usize = 8;

/// `field "name": ` when the field is known.
fn field_prefix(field: Option<&str>) -> String {
    field.map(|f| format!("field {f:?}: ")).unwrap_or_default()
}

/// At most `max` characters of `text`, marked with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
