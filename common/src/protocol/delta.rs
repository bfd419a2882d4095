//! Field deltas (docs/protocol.md, "Field deltas"): for a connection that
//! subscribed with `"deltas": true`, a `position_update`, `account_update`
//! or `batch` marked `"delta": true` carries, per position, the `symbol` and
//! only the fields that changed since the value that connection last got,
//! and per account the `timestamp` and only the fields that changed. A
//! client merges them over what it holds (`{...old, ...update}`); without
//! `"delta": true` every object is full and replaces what it holds.
//!
//! The gateway sends a connection the full object of a symbol (and of the
//! account) first, after every snapshot, resume or catch-up, so a delta
//! always has a base on the client's side. A delta never removes an
//! optional field (`strategyId`, `openedAt`): such a change goes out full.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::event::{Account, Order, Position, PositionSide, Symbol, Timestamp, Trade, UserId};

/// A position's changed fields; `symbol` always.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PositionDelta {
    pub symbol: Symbol,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub current_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub entry_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub unrealized_pnl: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub unrealized_pnl_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub market_value: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<PositionSide>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
}

/// An account's changed fields; `timestamp` always.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct AccountDelta {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub equity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub buying_power: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub cash: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub portfolio_value: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub day_pnl: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::str_option")]
    pub day_pnl_percent: Option<Decimal>,
    pub timestamp: Timestamp,
}

/// A delta that names a field its base does not have, or has no base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a delta without the full object it applies to")]
pub struct MissingBase;

/// `Some(new)` where it differs from `old`.
fn changed<T: PartialEq + Clone>(old: &T, new: &T) -> Option<T> {
    (old != new).then(|| new.clone())
}

impl PositionDelta {
    /// The delta from `base` to `new`; `None` when only a full object says
    /// it (an optional field was removed).
    pub fn between(base: &Position, new: &Position) -> Option<Self> {
        let removed = |old: bool, now: bool| old && !now;
        if removed(base.strategy_id.is_some(), new.strategy_id.is_some())
            || removed(base.opened_at.is_some(), new.opened_at.is_some())
        {
            return None;
        }
        Some(Self {
            symbol: new.symbol.clone(),
            quantity: changed(&base.quantity, &new.quantity),
            current_price: changed(&base.current_price, &new.current_price),
            entry_price: changed(&base.entry_price, &new.entry_price),
            unrealized_pnl: changed(&base.unrealized_pnl, &new.unrealized_pnl),
            unrealized_pnl_percent: changed(&base.unrealized_pnl_percent, &new.unrealized_pnl_percent),
            market_value: changed(&base.market_value, &new.market_value),
            side: changed(&base.side, &new.side),
            strategy_id: changed(&base.strategy_id, &new.strategy_id).flatten(),
            opened_at: changed(&base.opened_at, &new.opened_at).flatten(),
        })
    }

    /// Every field of `position`.
    pub fn full(position: &Position) -> Self {
        Self {
            symbol: position.symbol.clone(),
            quantity: Some(position.quantity),
            current_price: Some(position.current_price),
            entry_price: Some(position.entry_price),
            unrealized_pnl: Some(position.unrealized_pnl),
            unrealized_pnl_percent: Some(position.unrealized_pnl_percent),
            market_value: Some(position.market_value),
            side: Some(position.side),
            strategy_id: position.strategy_id.clone(),
            opened_at: position.opened_at,
        }
    }

    /// The position this delta makes of `base` (the client's value of the
    /// same symbol, if it has one); every field must come from one of them.
    pub fn apply(self, base: Option<&Position>) -> Result<Position, MissingBase> {
        let pick = |new: Option<Decimal>, old: Option<Decimal>| new.or(old).ok_or(MissingBase);
        Ok(Position {
            quantity: pick(self.quantity, base.map(|b| b.quantity))?,
            current_price: pick(self.current_price, base.map(|b| b.current_price))?,
            entry_price: pick(self.entry_price, base.map(|b| b.entry_price))?,
            unrealized_pnl: pick(self.unrealized_pnl, base.map(|b| b.unrealized_pnl))?,
            unrealized_pnl_percent: pick(self.unrealized_pnl_percent, base.map(|b| b.unrealized_pnl_percent))?,
            market_value: pick(self.market_value, base.map(|b| b.market_value))?,
            side: self.side.or(base.map(|b| b.side)).ok_or(MissingBase)?,
            strategy_id: self.strategy_id.or_else(|| base.and_then(|b| b.strategy_id.clone())),
            opened_at: self.opened_at.or_else(|| base.and_then(|b| b.opened_at)),
            symbol: self.symbol,
        })
    }
}

impl AccountDelta {
    /// The delta from `base` to `new`.
    pub fn between(base: &Account, new: &Account) -> Self {
        Self {
            equity: changed(&base.equity, &new.equity),
            buying_power: changed(&base.buying_power, &new.buying_power),
            cash: changed(&base.cash, &new.cash),
            portfolio_value: changed(&base.portfolio_value, &new.portfolio_value),
            day_pnl: changed(&base.day_pnl, &new.day_pnl),
            day_pnl_percent: changed(&base.day_pnl_percent, &new.day_pnl_percent),
            timestamp: new.timestamp,
        }
    }

    /// Every field of `account`.
    pub fn full(account: &Account) -> Self {
        Self {
            equity: Some(account.equity),
            buying_power: Some(account.buying_power),
            cash: Some(account.cash),
            portfolio_value: Some(account.portfolio_value),
            day_pnl: Some(account.day_pnl),
            day_pnl_percent: Some(account.day_pnl_percent),
            timestamp: account.timestamp,
        }
    }

    /// The account this delta makes of `base`.
    pub fn apply(self, base: Option<&Account>) -> Result<Account, MissingBase> {
        let pick = |new: Option<Decimal>, old: Option<Decimal>| new.or(old).ok_or(MissingBase);
        Ok(Account {
            equity: pick(self.equity, base.map(|b| b.equity))?,
            buying_power: pick(self.buying_power, base.map(|b| b.buying_power))?,
            cash: pick(self.cash, base.map(|b| b.cash))?,
            portfolio_value: pick(self.portfolio_value, base.map(|b| b.portfolio_value))?,
            day_pnl: pick(self.day_pnl, base.map(|b| b.day_pnl))?,
            day_pnl_percent: pick(self.day_pnl_percent, base.map(|b| b.day_pnl_percent))?,
            timestamp: self.timestamp,
        })
    }
}

/// A batch whose positions and account may be deltas (orders and trades
/// are always full).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct DeltaBatchData {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<PositionDelta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountDelta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trades: Vec<Trade>,
}

/// The envelope of a delta message: the event envelope plus `"delta": true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Partial<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub timestamp: Timestamp,
    pub user_id: UserId,
    /// Always `true`: tells a delta from a full object.
    pub delta: bool,
    pub data: T,
}

impl<T> Partial<T> {
    /// A delta message's envelope.
    pub fn new(user_id: UserId, timestamp: Timestamp, seq: u64, data: T) -> Self {
        Self { seq: Some(seq), timestamp, user_id, delta: true, data }
    }
}

/// The messages that carry deltas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum DeltaMessage {
    PositionUpdate(Partial<PositionDelta>),
    AccountUpdate(Partial<AccountDelta>),
    Batch(Partial<DeltaBatchData>),
}

impl DeltaMessage {
    /// Whether a text frame is a delta message (checked before decoding it
    /// as one; the gateway writes the marker exactly so).
    pub fn is_delta(text: &str) -> bool {
        text.contains("\"delta\":true")
    }

    /// The wire name of the message's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            DeltaMessage::PositionUpdate(_) => "position_update",
            DeltaMessage::AccountUpdate(_) => "account_update",
            DeltaMessage::Batch(_) => "batch",
        }
    }

    /// The sequence number it covers.
    pub fn seq(&self) -> Option<u64> {
        match self {
            DeltaMessage::PositionUpdate(m) => m.seq,
            DeltaMessage::AccountUpdate(m) => m.seq,
            DeltaMessage::Batch(m) => m.seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::fixtures::{self, dec, user};

    fn position(quantity: i64, price_cents: i64) -> Position {
        match fixtures::position(&user("u"), "AAPL", quantity, price_cents) {
            Event::PositionUpdate(e) => e.data,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_price_move_carries_the_price_fields_only() {
        let base = position(10, 17_550);
        let new = position(10, 17_600);
        let delta = PositionDelta::between(&base, &new).expect("a delta");
        let json = serde_json::to_value(&delta).expect("serializes");
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["currentPrice", "marketValue", "symbol", "unrealizedPnl"]);
        assert_eq!(delta.clone().apply(Some(&base)), Ok(new.clone()));
        assert_eq!(delta.apply(None), Err(MissingBase));
        assert_eq!(PositionDelta::full(&new).apply(None), Ok(new));
    }

    #[test]
    fn removing_an_optional_field_needs_a_full_object() {
        let base = position(10, 17_550);
        let mut new = base.clone();
        new.opened_at = None;
        assert_eq!(PositionDelta::between(&base, &new), None);
    }

    #[test]
    fn an_account_delta_keeps_its_timestamp() {
        let base = match fixtures::account(&user("u"), 100) {
            Event::AccountUpdate(e) => e.data,
            _ => unreachable!(),
        };
        let mut new = base.clone();
        new.equity = dec(1);
        let delta = AccountDelta::between(&base, &new);
        let json = serde_json::to_string(&delta).expect("serializes");
        assert_eq!(json, format!(r#"{{"equity":"0.01","timestamp":"{}"}}"#, base.timestamp));
        assert_eq!(delta.apply(Some(&base)), Ok(new));
    }

    #[test]
    fn delta_messages_are_marked_and_decode() {
        let message = DeltaMessage::PositionUpdate(Partial::new(
            user("u"),
            fixtures::ts(),
            7,
            PositionDelta::between(&position(1, 100), &position(1, 200)).expect("a delta"),
        ));
        let text = serde_json::to_string(&message).expect("serializes");
        assert!(DeltaMessage::is_delta(&text), "{text}");
        assert_eq!(serde_json::from_str::<DeltaMessage>(&text).expect("decodes"), message);
    }
}
