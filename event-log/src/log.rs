//! The per-user event log: one trait, two backends that pass one
//! conformance suite. Publishing assigns the user's next `seq`, appends the
//! event to the user's stream, updates the snapshot and notifies followers,
//! all or nothing; a retried publish with the same dedupe id is a no-op.
//!
//! Readers use the notification fast path, and repair gaps with
//! [`EventLog::read_after`] (bounded) or fall back to [`EventLog::snapshot`].
//!
//! Beside the log, the ingest index (same two backends) keeps what the
//! ingest functions need: holders per symbol and the broker account → user
//! directory.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use common::event::{Event, Mark, Symbol, UserId};
pub use common::protocol::Snapshot;

use crate::error::{LogError, LogResult};
use crate::leases::Leases;

/// Longest accepted dedupe id, in bytes (it becomes part of a Redis key).
pub const MAX_DEDUPE_ID_LEN: usize = 200;

/// How the log keeps history; the same for both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// Events kept per user stream (Redis trims approximately, `MAXLEN ~`).
    pub stream_maxlen: u64,
    /// How long a dedupe id is remembered.
    pub dedupe_ttl: std::time::Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { stream_maxlen: 10_000, dedupe_ttl: std::time::Duration::from_secs(86_400) }
    }
}

/// An event to publish, with the id that makes retries idempotent.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event; its `seq` is ignored (the log assigns it).
    pub event: Event,
    /// Same id → same event: the second publish is answered with the first's
    /// seq and changes nothing. Broker execution ids, queue job ids, tick ids.
    pub dedupe_id: String,
}

impl NewEvent {
    /// Pairs an event with its dedupe id.
    pub fn new(event: Event, dedupe_id: impl Into<String>) -> Self {
        Self { event, dedupe_id: dedupe_id.into() }
    }

    pub(crate) fn validate(&self) -> Result<(), LogError> {
        if self.dedupe_id.is_empty() || self.dedupe_id.len() > MAX_DEDUPE_ID_LEN {
            return Err(LogError::InvalidEvent("dedupe id must be 1 to 200 bytes"));
        }
        Ok(())
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Appended with this seq.
    New { seq: u64, epoch: String },
    /// Already published earlier (same dedupe id) with this seq; nothing changed.
    Duplicate { seq: u64, epoch: String },
}

impl Published {
    /// The event's seq, new or earlier.
    pub fn seq(&self) -> u64 {
        match self {
            Published::New { seq, .. } | Published::Duplicate { seq, .. } => *seq,
        }
    }
}

/// An event as stored: its seq and its JSON (with `seq` in it), ready to be
/// sent to a client as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The user's sequence number.
    pub seq: u64,
    /// The event's JSON text, `{"type":…,"seq":…,…}`.
    pub json: Bytes,
}

impl StoredEvent {
    /// Parses the JSON.
    pub fn decode(&self) -> Result<Event, LogError> {
        serde_json::from_slice(&self.json).map_err(|e| LogError::Corrupt(format!("event {}: {e}", self.seq)))
    }
}

/// The answer to [`EventLog::read_after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAfter {
    /// The events after the asked seq, in order, at most `limit` of them.
    /// When the last one's seq is below `head`, read again from there.
    Events { epoch: Option<String>, head: u64, events: Vec<StoredEvent> },
    /// The stream was trimmed past the asked seq: use the snapshot.
    TooOld { epoch: Option<String>, head: u64 },
    /// The reader's epoch is not the current one (history was lost and began
    /// again), or the reader claims a seq beyond the head: use the snapshot.
    EpochChanged { epoch: Option<String>, head: u64 },
}

/// What followers are told.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A followed user has a new event.
    Event { user: UserId, epoch: String, event: StoredEvent },
    /// A followed symbol has a new market mark.
    Mark(Mark),
    /// Notifications may have been missed (the subscription reconnected, or
    /// this receiver lagged): every follower should repair with `read_after`.
    Resync,
}

/// The event log.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes one event atomically (see the module doc).
    async fn publish(&self, event: &NewEvent) -> Result<Published, LogError>;

    /// Publishes many events with as few round trips as the backend allows;
    /// one result per event, in order. Events of one user keep their order.
    async fn publish_many(&self, events: &[NewEvent]) -> Vec<Result<Published, LogError>>;

    /// Up to `limit` events after seq `after` of `user`, checked against the
    /// reader's `epoch` (`None`: the reader has none yet).
    async fn read_after(&self, user: &UserId, epoch: Option<&str>, after: u64, limit: usize) -> LogResult<ReadAfter>;

    /// The user's current state, read atomically with its seq and epoch.
    async fn snapshot(&self, user: &UserId) -> Result<Snapshot, LogError>;

    /// Starts delivering the user's notifications to [`EventLog::notices`].
    /// Follows are counted: the user stays followed until every `follow`
    /// had its `unfollow`, so two followers of one user never race.
    async fn follow(&self, user: &UserId) -> Result<(), LogError>;

    /// Ends one `follow`; the last one stops the user's notifications. It
    /// takes effect in order with later (un)follows, but a notice already in
    /// flight may still arrive: followers drop notices of users they no
    /// longer track.
    async fn unfollow(&self, user: &UserId) -> Result<(), LogError>;

    /// Stores each mark that is newer than its symbol's stored one and
    /// notifies the symbol's followers, in one round trip for the batch.
    /// One result per mark, in order: `true` when stored, `false` when the
    /// stored mark was as new or newer (nothing changed, nobody notified).
    /// Market data, not user events: no seq, no dedupe id; a retry is safe
    /// because an equal mark changes nothing.
    async fn put_marks(&self, marks: &[Mark]) -> Vec<Result<bool, LogError>>;

    /// The stored mark of each symbol, in order.
    async fn marks(&self, symbols: &[Symbol]) -> LogResult<Vec<Option<Mark>>>;

    /// Starts delivering the symbol's new marks to [`EventLog::notices`];
    /// counted like [`EventLog::follow`].
    async fn follow_mark(&self, symbol: &Symbol) -> Result<(), LogError>;

    /// Ends one `follow_mark`, as [`EventLog::unfollow`].
    async fn unfollow_mark(&self, symbol: &Symbol) -> Result<(), LogError>;

    /// A receiver of the notifications of every followed user and symbol.
    fn notices(&self) -> broadcast::Receiver<Notice>;

    /// The connection leases kept beside this log: in Redis for the Redis
    /// log (shared by every gateway), in process for the in-memory one.
    fn leases(&self) -> Arc<dyn Leases>;

    /// Whether the backend answers right now (health checks).
    async fn ping(&self) -> Result<(), LogError>;
}

/// A shared, type-erased event log.
pub type SharedLog = Arc<dyn EventLog>;

/// Capacity of the notice channel: how far a follower may fall behind
/// before it is told to resync.
pub const NOTICE_CAPACITY: usize = 65_536;

/// The event serialized the way the log stores it, split so that the seq
/// can be inserted after `type` without re-serializing: the stored JSON is
/// `head` + `"seq":N,` + `rest` + `data` + `}`.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// `{"type":"position_update",`
    pub(crate) head: String,
    /// `"timestamp":…,"userId":…,"data":`
    pub(crate) rest: String,
    /// The data object: what the snapshot keeps.
    pub(crate) data: String,
    /// What the snapshot does with it.
    pub(crate) effect: SnapshotEffect,
}

/// How one event changes the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotEffect {
    /// Set or remove the position of a symbol.
    Position { symbol: String, remove: bool },
    /// Set or remove an order.
    Order { order_id: String, remove: bool },
    /// Replace the account.
    Account,
    /// Push a trade onto the recent list.
    Trade,
}

impl Encoded {
    pub(crate) fn new(event: &Event) -> Result<Self, LogError> {
        let mut event = event.clone();
        event.set_seq(None);
        let full = serde_json::to_string(&event).map_err(|_| LogError::InvalidEvent("event does not serialize"))?;
        let (data, effect) = match &event {
            Event::PositionUpdate(e) => (
                to_json(&e.data)?,
                SnapshotEffect::Position { symbol: e.data.symbol.to_string(), remove: e.data.is_closed() },
            ),
            Event::OrderUpdate(e) => (
                to_json(&e.data)?,
                SnapshotEffect::Order { order_id: e.data.order_id.clone(), remove: e.data.status.is_closed() },
            ),
            Event::AccountUpdate(e) => (to_json(&e.data)?, SnapshotEffect::Account),
            Event::TradeExecuted(e) => (to_json(&e.data)?, SnapshotEffect::Trade),
        };
        // `full` is `{"type":"…",` + rest + data + `}`: serde writes the tag
        // first and `data` last (see `Envelope`).
        let head_len = full.find(',').map(|i| i + 1);
        let body_end = full.len().checked_sub(data.len() + 1);
        match (head_len, body_end) {
            (Some(head_len), Some(body_end)) if head_len <= body_end && full[body_end..].starts_with(&data) => {
                Ok(Self { head: full[..head_len].to_owned(), rest: full[head_len..body_end].to_owned(), data, effect })
            }
            _ => Err(LogError::InvalidEvent("event does not serialize in the expected shape")),
        }
    }

    /// The stored JSON for `seq`; what the Lua script builds.
    pub(crate) fn with_seq(&self, seq: u64) -> String {
        format!("{}\"seq\":{seq},{}{}}}", self.head, self.rest, self.data)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, LogError> {
    serde_json::to_string(value).map_err(|_| LogError::InvalidEvent("event data does not serialize"))
}

/// Makes a fresh epoch id: 16 hex digits, random.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The notify payload: `<epoch> <seq> <json>`, so a follower can check
/// continuity before parsing JSON. The Lua script writes the same shape.
pub(crate) fn parse_notify_payload(payload: &[u8]) -> Option<(String, StoredEvent)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (epoch, rest) = text.split_once(' ')?;
    let (seq, json) = rest.split_once(' ')?;
    let seq = seq.parse().ok()?;
    Some((epoch.to_owned(), StoredEvent { seq, json: Bytes::copy_from_slice(json.as_bytes()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let json = r#"{"type":"account_update","timestamp":"2026-01-03T15:30:45.123Z","userId":"u1","data":{"equity":"1.00","buyingPower":"2","cash":"3","portfolioValue":"4","dayPnl":"5","dayPnlPercent":"6","timestamp":"2026-01-03T15:30:45.000Z"}}"#;
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn encoded_with_seq_is_what_serde_writes() {
        let mut event = sample();
        let encoded = Encoded::new(&event).unwrap();
        event.set_seq(Some(42));
        assert_eq!(encoded.with_seq(42), serde_json::to_string(&event).unwrap());
        assert_eq!(encoded.effect, SnapshotEffect::Account);
    }

    #[test]
    fn notify_payload_parses() {
        let (epoch, event) = parse_notify_payload(b"abc 7 {\"x\":1}").unwrap();
        assert_eq!(epoch, "abc");
        assert_eq!(event.seq, 7);
        assert_eq!(&event.json[..], b"{\"x\":1}");
        assert!(parse_notify_payload(b"abc x {}").is_none());
    }

    #[test]
    fn dedupe_id_is_bounded() {
        let event = sample();
        assert!(NewEvent::new(event.clone(), "").validate().is_err());
        assert!(NewEvent::new(event.clone(), "x".repeat(201)).validate().is_err());
        assert!(NewEvent::new(event, "ok").validate().is_ok());
    }
}
