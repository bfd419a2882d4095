//! Sample events for tests of every crate (feature `fixtures`): the design
//! note's examples as JSON (`fixtures/*.json`), and one builder per event
//! type with the note's values, so no test spells an envelope out by hand.

use rust_decimal::Decimal;

use crate::event::{
    Account, Envelope, Event, Order, OrderSide, OrderStatus, OrderType, Position, PositionSide, Symbol, Timestamp,
    Trade, UserId,
};

/// The design note's `position_update` example, as strict JSON.
pub const POSITION_UPDATE: &str = include_str!("fixtures/position_update.json");
/// The design note's `order_update` example, as strict JSON.
pub const ORDER_UPDATE: &str = include_str!("fixtures/order_update.json");
/// The design note's `account_update` example, as strict JSON.
pub const ACCOUNT_UPDATE: &str = include_str!("fixtures/account_update.json");
/// The design note's `trade_executed` example, as strict JSON.
pub const TRADE_EXECUTED: &str = include_str!("fixtures/trade_executed.json");

/// The `data` object of one of the note's examples.
pub fn note_data(example: &str) -> serde_json::Value {
    let event: serde_json::Value = serde_json::from_str(example).expect("the note's examples are JSON");
    event["data"].clone()
}

/// A user id that is known to be valid.
pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("valid test user id")
}

/// The fixed instant of every sample event.
pub fn ts() -> Timestamp {
    "2026-01-03T15:30:45.123Z".parse().expect("valid timestamp")
}

/// `cents` as money with 2 decimals.
pub fn dec(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// A position update; quantity 0 closes it.
pub fn position(user_id: &UserId, symbol: &str, quantity: i64, price_cents: i64) -> Event {
    Envelope::new(
        user_id.clone(),
        ts(),
        Position {
            symbol: Symbol::new(symbol).expect("valid symbol"),
            quantity: Decimal::from(quantity),
            current_price: dec(price_cents),
            entry_price: dec(10_000),
            unrealized_pnl: dec((price_cents - 10_000) * quantity),
            unrealized_pnl_percent: Decimal::ZERO,
            market_value: dec(price_cents * quantity),
            side: PositionSide::Long,
            strategy_id: None,
            opened_at: Some(ts()),
        },
    )
    .into()
}

/// An order update.
pub fn order(user_id: &UserId, order_id: &str, status: OrderStatus) -> Event {
    Envelope::new(
        user_id.clone(),
        ts(),
        Order {
            order_id: order_id.to_owned(),
            broker_order_id: None,
            symbol: Symbol::new("TSLA").expect("valid symbol"),
            side: OrderSide::Buy,
            order_type: OrderType::Limit,
            status,
            qty: Decimal::from(50),
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            limit_price: Some(dec(24_600)),
            stop_price: None,
            submitted_at: Some(ts()),
            filled_at: None,
            reason: None,
        },
    )
    .into()
}

/// An account update whose cash is `cash_cents`.
pub fn account(user_id: &UserId, cash_cents: i64) -> Event {
    Envelope::new(
        user_id.clone(),
        ts(),
        Account {
            equity: dec(10_430_875),
            buying_power: dec(35_490_524),
            cash: dec(cash_cents),
            portfolio_value: dec(10_430_875),
            day_pnl: dec(123_456),
            day_pnl_percent: dec(120),
            timestamp: ts(),
        },
    )
    .into()
}

/// A trade.
pub fn trade(user_id: &UserId, trade_id: &str) -> Event {
    Envelope::new(
        user_id.clone(),
        ts(),
        Trade {
            trade_id: trade_id.to_owned(),
            symbol: Symbol::new("NVDA").expect("valid symbol"),
            side: OrderSide::Sell,
            quantity: Decimal::from(25),
            price: dec(52_050),
            pnl: Some(dec(125_000)),
            executed_at: ts(),
            strategy_id: Some("strategy-xyz".to_owned()),
        },
    )
    .into()
}

/// A configuration source holding exactly `pairs`.
pub fn env(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The refused variable and the error's message, asserting that the
/// message names the variable first.
pub fn refused<T: std::fmt::Debug>(result: Result<T, crate::config::ConfigError>) -> (String, String) {
    let err = result.expect_err("expected a ConfigError");
    let message = err.to_string();
    assert!(message.starts_with(err.name()), "message {message:?} does not start with {:?}", err.name());
    (err.name().to_owned(), message)
}
