//! The portfolio events of the design note: `position_update`, `order_update`,
//! `account_update` and `trade_executed`, each in the note's envelope
//! (`type`, `timestamp`, `userId`, `data`) plus the `seq` the event log assigns.
//!
//! Money and quantities are [`Decimal`]s that travel as JSON strings and only
//! as strings: a JSON number on the money path is rejected, never rounded
//! through `f64`.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(test)]
mod tests;

/// Why a value from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// A user id that is empty, too long, or has a character outside the
    /// allowed set (it becomes part of Redis keys, so `{`/`}` would break the
    /// hash tag).
    #[error("invalid user id: must be 1 to {max} characters of A-Z a-z 0-9 - _ . @ :", max = UserId::MAX_LEN)]
    InvalidUserId,
    /// A symbol that is empty, too long or not printable ASCII.
    #[error("invalid symbol: must be 1 to {max} characters of A-Z a-z 0-9 . / -, beginning and ending with a letter or digit", max = Symbol::MAX_LEN)]
    InvalidSymbol,
}

/// A user id: the JWT `sub`, the owner of a portfolio.
///
/// Validated on construction because it is embedded in Redis keys and channel
/// names; a `UserId` can never smuggle a different hash tag or key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Longest accepted user id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks and wraps a user id.
    pub fn new(id: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'));
        if valid {
            Ok(Self(id))
        } else {
            Err(ModelError::InvalidUserId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        UserId::new(raw).map_err(serde::de::Error::custom)
    }
}

/// A ticker symbol such as `AAPL` or `BRK.B`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

impl Symbol {
    /// Longest accepted symbol, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Checks and wraps a symbol.
    pub fn new(symbol: impl Into<String>) -> Result<Self, ModelError> {
        let symbol = symbol.into();
        // Letters or digits at both ends, and no empty or dots-only part
        // between slashes: a symbol is never `..`, `/`, `A//B` or `A/../B`,
        // which would change the path of a broker request built from it.
        let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        let segment = |part: &str| !part.is_empty() && !part.bytes().all(|b| b == b'.');
        let valid = symbol.len() <= Self::MAX_LEN
            && ends(symbol.bytes().next())
            && ends(symbol.bytes().last())
            && symbol.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-'))
            && symbol.split('/').all(segment);
        if valid {
            Ok(Self(symbol))
        } else {
            Err(ModelError::InvalidSymbol)
        }
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Symbol::new(raw).map_err(serde::de::Error::custom)
    }
}

/// A UTC instant, written as RFC 3339 with exactly three fractional digits
/// and a `Z` (`2026-01-03T15:30:45.123Z`), the note's format. Precision
/// below a millisecond is dropped on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// Wraps a chrono instant.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Builds a timestamp from milliseconds since the Unix epoch.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }

    /// The chrono instant.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = chrono::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s).map(|at| Self(at.with_timezone(&Utc)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        raw.parse().map_err(|_| {
            serde::de::Error::custom("invalid timestamp: expected RFC 3339, e.g. 2026-01-03T15:30:45.123Z")
        })
    }
}

/// The subscription channels of the wire protocol; every event belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `position_update`.
    Positions,
    /// `order_update`.
    Orders,
    /// `account_update`.
    Account,
    /// `trade_executed`.
    Trades,
}

impl Channel {
    /// Every channel, in wire order.
    pub const ALL: [Channel; 4] = [Channel::Positions, Channel::Orders, Channel::Account, Channel::Trades];

    /// The channel's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Positions => "positions",
            Channel::Orders => "orders",
            Channel::Account => "account",
            Channel::Trades => "trades",
        }
    }
}

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSide {
    /// Holds shares.
    Long,
    /// Owes shares.
    Short,
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSide {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// The order types Alpaca knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Market order.
    Market,
    /// Limit order.
    Limit,
    /// Stop order.
    Stop,
    /// Stop-limit order.
    StopLimit,
    /// Trailing-stop order.
    TrailingStop,
}

/// Order status: Alpaca's statuses plus `failed` for submissions that never
/// reached the broker (work-queue completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum OrderStatus {
    PendingNew,
    New,
    Accepted,
    AcceptedForBidding,
    PartiallyFilled,
    Filled,
    DoneForDay,
    PendingCancel,
    PendingReplace,
    Canceled,
    Expired,
    Replaced,
    Rejected,
    Stopped,
    Suspended,
    Calculated,
    Failed,
}

impl OrderStatus {
    /// Whether the order can change no more. Closed orders leave the snapshot
    /// (their last update still travels through the stream).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Expired
                | OrderStatus::Replaced
                | OrderStatus::Rejected
                | OrderStatus::Failed
        )
    }
}

/// A position as the client shows it (`position_update.data`).
///
/// `quantity` is the absolute number of shares and `side` says long or short;
/// `marketValue` is signed (negative for a short, as Alpaca reports it). A
/// quantity of zero means the position was closed. See [`crate::pnl`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub symbol: Symbol,
    #[serde(with = "crate::decimal::str")]
    pub quantity: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub current_price: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub entry_price: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub unrealized_pnl: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub unrealized_pnl_percent: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub market_value: Decimal,
    pub side: PositionSide,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
}

impl Position {
    /// Whether this update closes the position.
    pub fn is_closed(&self) -> bool {
        self.quantity.is_zero()
    }
}

/// An order (`order_update.data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_order_id: Option<String>,
    pub symbol: Symbol,
    pub side: OrderSide,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub status: OrderStatus,
    #[serde(with = "crate::decimal::str")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub filled_qty: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub filled_avg_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub limit_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub stop_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled_at: Option<Timestamp>,
    /// Why a submission failed or was rejected, safe to show to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Account balances (`account_update.data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(with = "crate::decimal::str")]
    pub equity: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub buying_power: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub cash: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub portfolio_value: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub day_pnl: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub day_pnl_percent: Decimal,
    pub timestamp: Timestamp,
}

/// A market mark: the latest price of a symbol, market-scoped (one per
/// symbol, shared by every holder), never a user event. A mark replaces an
/// older one only: a newer `timestamp` wins, an older or equal one changes
/// nothing (timestamps compare to the millisecond, as stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    pub symbol: Symbol,
    #[serde(with = "crate::decimal::str")]
    pub price: Decimal,
    /// When the market printed the price.
    pub timestamp: Timestamp,
}

impl Mark {
    /// Whether this mark replaces `older` (same symbol, strictly newer).
    pub fn supersedes(&self, older: &Mark) -> bool {
        self.symbol == older.symbol && self.timestamp.unix_millis() > older.timestamp.unix_millis()
    }
}

/// An executed trade (`trade_executed.data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    pub trade_id: String,
    pub symbol: Symbol,
    pub side: OrderSide,
    #[serde(with = "crate::decimal::str")]
    pub quantity: Decimal,
    #[serde(with = "crate::decimal::str")]
    pub price: Decimal,
    /// Realized P&L of a closing trade; absent when the broker does not say.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub pnl: Option<Decimal>,
    pub executed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<String>,
}

/// The note's envelope around every event's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// The user's sequence number, assigned by the event log; absent before
    /// publishing (and in the note's examples, which predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When the producer created the event.
    pub timestamp: Timestamp,
    /// Whose portfolio this is.
    pub user_id: UserId,
    /// The payload.
    pub data: T,
}

impl<T> Envelope<T> {
    /// An envelope for `user_id` made at `timestamp`, before the log assigns
    /// its seq.
    pub fn new(user_id: UserId, timestamp: Timestamp, data: T) -> Self {
        Self { seq: None, timestamp, user_id, data }
    }

    /// The same envelope carrying `seq` (a message that covers it).
    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }
}

/// Each payload knows its event: `Event::from(Envelope::new(user, at, position))`.
macro_rules! event_from_envelope {
    ($($data:ident => $variant:ident),* $(,)?) => {$(
        impl From<Envelope<$data>> for Event {
            fn from(envelope: Envelope<$data>) -> Self {
                Event::$variant(envelope)
            }
        }
    )*};
}

event_from_envelope!(Position => PositionUpdate, Order => OrderUpdate, Account => AccountUpdate, Trade => TradeExecuted);

/// One portfolio event, as stored in the user's stream and sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A position's quantity, price or P&L changed.
    PositionUpdate(Envelope<Position>),
    /// An order's status changed.
    OrderUpdate(Envelope<Order>),
    /// Balances or equity changed.
    AccountUpdate(Envelope<Account>),
    /// A trade was executed.
    TradeExecuted(Envelope<Trade>),
}

impl Event {
    /// The channel a client subscribes to for this event.
    pub fn channel(&self) -> Channel {
        match self {
            Event::PositionUpdate(_) => Channel::Positions,
            Event::OrderUpdate(_) => Channel::Orders,
            Event::AccountUpdate(_) => Channel::Account,
            Event::TradeExecuted(_) => Channel::Trades,
        }
    }

    /// The wire name of the event's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::PositionUpdate(_) => "position_update",
            Event::OrderUpdate(_) => "order_update",
            Event::AccountUpdate(_) => "account_update",
            Event::TradeExecuted(_) => "trade_executed",
        }
    }

    /// Orders and trades are urgent: the gateway sends them at once and they
    /// flush any pending batch (BRIEF §4).
    pub fn is_urgent(&self) -> bool {
        matches!(self, Event::OrderUpdate(_) | Event::TradeExecuted(_))
    }

    /// The user the event belongs to.
    pub fn user_id(&self) -> &UserId {
        match self {
            Event::PositionUpdate(e) => &e.user_id,
            Event::OrderUpdate(e) => &e.user_id,
            Event::AccountUpdate(e) => &e.user_id,
            Event::TradeExecuted(e) => &e.user_id,
        }
    }

    /// The sequence number, once the log assigned one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Event::PositionUpdate(e) => e.seq,
            Event::OrderUpdate(e) => e.seq,
            Event::AccountUpdate(e) => e.seq,
            Event::TradeExecuted(e) => e.seq,
        }
    }

    /// Sets the sequence number.
    pub fn set_seq(&mut self, seq: Option<u64>) {
        match self {
            Event::PositionUpdate(e) => e.seq = seq,
            Event::OrderUpdate(e) => e.seq = seq,
            Event::AccountUpdate(e) => e.seq = seq,
            Event::TradeExecuted(e) => e.seq = seq,
        }
    }

    /// When the producer created the event.
    pub fn timestamp(&self) -> Timestamp {
        match self {
            Event::PositionUpdate(e) => e.timestamp,
            Event::OrderUpdate(e) => e.timestamp,
            Event::AccountUpdate(e) => e.timestamp,
            Event::TradeExecuted(e) => e.timestamp,
        }
    }
}
