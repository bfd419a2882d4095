//! The broker webhook: an Alpaca trade update (the `trade_updates` message,
//! with the broker account id beside it, as Alpaca's Broker API event stream
//! sends it) becomes the user's `order_update`; a fill also becomes
//! `trade_executed`, `position_update` and `account_update`, the last two
//! from the broker's current position and balances.
//!
//! The signature is checked before this handler runs ([`crate::app`]); the
//! user is the one the account directory maps the signed `account_id` to.
//! Everything is fetched before anything is published, so a broker outage
//! publishes nothing; every event's dedupe id derives from the execution
//! id, so a retry publishes only what is missing.

use broker::{AccountId, BrokerAccount, BrokerPosition};
use common::event::{
    Account, Envelope, Event, Order, OrderSide, OrderStatus, OrderType, Position, PositionSide, Symbol, Timestamp,
    Trade, UserId,
};
use common::pnl;
use event_log::NewEvent;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::accounts::check_account_id;
use crate::deps::Deps;
use crate::error::Error;
use crate::input::{check_id, check_positive};
use crate::publish::{publish_all, Outcome};

/// Longest accepted execution or order id, bytes.
const MAX_ID_LEN: usize = 128;

/// Longest accepted event name, bytes.
const MAX_EVENT_LEN: usize = 32;

/// A trade update as the webhook delivers it. Unknown fields are ignored
/// (Alpaca sends many more than these).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TradeUpdateMessage {
    /// The broker account the update belongs to; selects the user.
    pub account_id: String,
    /// `new`, `accepted`, `partial_fill`, `fill`, `canceled`, `expired`,
    /// `rejected`, `replaced`, `pending_new`, … (any name is accepted; only
    /// fills do more than update the order).
    pub event: String,
    /// The order after this update.
    pub order: BrokerOrder,
    /// Unique id of this update; required for fills.
    #[serde(default)]
    pub execution_id: Option<String>,
    /// Fill price; required for fills.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub price: Option<Decimal>,
    /// Filled quantity of this execution; required for fills.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub qty: Option<Decimal>,
    /// The position's quantity after the fill, as the broker reports it
    /// (informational: the position itself is fetched).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub position_qty: Option<Decimal>,
    /// When the update happened.
    pub timestamp: Timestamp,
}

/// Alpaca's order object, as far as the order event needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BrokerOrder {
    /// Alpaca's order id (our `brokerOrderId`).
    pub id: String,
    /// The id the app gave the order when it submitted it (our `orderId`).
    #[serde(default)]
    pub client_order_id: Option<String>,
    /// The symbol.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: OrderSide,
    /// Market, limit, … (Alpaca sends it as both `type` and `order_type`).
    #[serde(default, rename = "type")]
    pub order_type: Option<OrderType>,
    /// The same as `type`; either may be absent.
    #[serde(default, rename = "order_type")]
    pub order_type_again: Option<OrderType>,
    /// The order's status after this update.
    pub status: OrderStatus,
    /// Ordered quantity (absent for notional orders).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub qty: Option<Decimal>,
    /// Filled so far.
    #[serde(with = "rust_decimal::serde::str")]
    pub filled_qty: Decimal,
    /// Average fill price so far.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub filled_avg_price: Option<Decimal>,
    /// Limit price.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub limit_price: Option<Decimal>,
    /// Stop price.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub stop_price: Option<Decimal>,
    /// When it was submitted.
    #[serde(default)]
    pub submitted_at: Option<Timestamp>,
    /// When it was (last) filled.
    #[serde(default)]
    pub filled_at: Option<Timestamp>,
}

/// A trade update whose fields were checked.
#[derive(Debug)]
pub struct Checked {
    account: AccountId,
    order_type: OrderType,
    fill: Option<Fill>,
    /// The dedupe ids' common stem.
    stem: String,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill {
    price: Decimal,
    qty: Decimal,
}

/// Handles one trade update (its signature already verified).
pub async fn handle(message: TradeUpdateMessage, deps: &Deps) -> Result<Outcome, Error> {
    let checked = check(&message)?;
    let user = deps.index.account_owner(checked.account.as_str()).await?.ok_or(Error::UnknownAccount)?;
    let now = Timestamp::now();
    let order = order_event(&message, checked.order_type, &user, now);
    let mut events = vec![NewEvent::new(order, format!("{}:order", checked.stem))];

    let symbol = message.order.symbol.clone();
    let mut holds = None;
    if let Some(fill) = checked.fill {
        // Fetch everything first: a broker outage must publish nothing.
        let broker = deps.broker()?;
        let (position, account) = tokio::try_join!(
            deps.broker_call(broker.position(&checked.account, &symbol)),
            deps.broker_call(broker.account(&checked.account)),
        )?;
        let previous = deps.index.positions(&[(user.clone(), symbol.clone())]).await?.pop().flatten();
        let realized = realized_pnl(fill, message.order.side, previous.as_ref());
        let position = position_from(&message, fill, position, previous.as_ref())?;
        holds = Some(!position.is_closed());
        let trade = trade_event(&message, fill, realized, &user, now);
        events.push(NewEvent::new(trade, format!("{}:trade", checked.stem)));
        events.push(NewEvent::new(envelope_position(position, &user, now), format!("{}:position", checked.stem)));
        events.push(NewEvent::new(account_event(&account, &user, now), format!("{}:account", checked.stem)));
    }

    let outcome = publish_all(&*deps.log, &events).await?;
    // After the publish, so a holder always has a published position; on a
    // retry (duplicates) it runs again, which is harmless.
    if let Some(holds) = holds {
        deps.index.set_holding(&user, &symbol, holds).await?;
    }
    tracing::info!(
        %user,
        event = %message.event,
        order = %message.order.id,
        published = outcome.published,
        duplicates = outcome.duplicates,
        "Trade update ingested."
    );
    Ok(outcome)
}

/// The rules a trade update must meet beyond its shape (the account id,
/// positive prices, a fill's price, quantity and execution id); a refusal
/// names the field.
pub fn check(message: &TradeUpdateMessage) -> Result<Checked, Error> {
    let account = check_account_id("account_id", &message.account_id)?;
    if message.event.is_empty()
        || message.event.len() > MAX_EVENT_LEN
        || !message.event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(Error::field("event", "must be an event name such as fill or canceled"));
    }
    check_id("order.id", &message.order.id, MAX_ID_LEN)?;
    let order_type = message
        .order
        .order_type
        .or(message.order.order_type_again)
        .ok_or_else(|| Error::field("order.type", "is required"))?;
    if let Some(client_order_id) = &message.order.client_order_id {
        if !client_order_id.is_empty() {
            check_id("order.client_order_id", client_order_id, MAX_ID_LEN)?;
        }
    }
    if let Some(execution_id) = &message.execution_id {
        check_id("execution_id", execution_id, MAX_ID_LEN)?;
    }
    check_positive("order.limit_price", message.order.limit_price)?;
    check_positive("order.stop_price", message.order.stop_price)?;
    let is_fill = matches!(message.event.as_str(), "fill" | "partial_fill");
    let fill = if is_fill {
        if message.execution_id.is_none() {
            return Err(Error::field("execution_id", "is required for fills"));
        }
        let price = message.price.ok_or_else(|| Error::field("price", "is required for fills"))?;
        let qty = message.qty.ok_or_else(|| Error::field("qty", "is required for fills"))?;
        if price <= Decimal::ZERO {
            return Err(Error::field("price", "must be positive"));
        }
        if qty <= Decimal::ZERO {
            return Err(Error::field("qty", "must be positive"));
        }
        if message.order.filled_qty < qty {
            return Err(Error::field("order.filled_qty", "must include this fill's qty"));
        }
        Some(Fill { price, qty })
    } else {
        None
    };
    // A fill is named by its order and the order's filled quantity after
    // it: unique per execution, and what both the stream (`filled_qty`) and
    // the relay's backfill from account activities (`cum_qty`) know, so a
    // fill delivered both ways is published once. Other updates are named
    // by their execution id, or without one by the order, event and time.
    let stem = match (&fill, &message.execution_id) {
        (Some(_), _) => format!("broker:{}:fill:{}", message.order.id, message.order.filled_qty.normalize()),
        (None, Some(execution_id)) => format!("broker:{execution_id}"),
        (None, None) => format!("broker:{}:{}:{}", message.order.id, message.event, message.timestamp.unix_millis()),
    };
    Ok(Checked { account, order_type, fill, stem })
}

fn order_event(message: &TradeUpdateMessage, order_type: OrderType, user: &UserId, now: Timestamp) -> Event {
    let order = &message.order;
    let order_id = match &order.client_order_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => order.id.clone(),
    };
    Event::from(Envelope::new(
        user.clone(),
        now,
        Order {
            order_id,
            broker_order_id: Some(order.id.clone()),
            symbol: order.symbol.clone(),
            side: order.side,
            order_type,
            status: order.status,
            qty: order.qty.unwrap_or(order.filled_qty),
            filled_qty: order.filled_qty,
            filled_avg_price: order.filled_avg_price,
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            submitted_at: order.submitted_at,
            filled_at: order.filled_at,
            reason: None,
        },
    ))
}

/// The realized P&L of a fill that reduces the position held before it (a
/// sell of a long, a buy of a short): (price − entry) × the quantity it
/// closes for a long, (entry − price) × it for a short, to the cent.
/// `None` for a fill that opens or adds to a position, or when nothing was
/// known to be held.
fn realized_pnl(fill: Fill, side: OrderSide, previous: Option<&Position>) -> Option<Decimal> {
    let held = previous.filter(|p| !p.is_closed())?;
    let per_share = match (held.side, side) {
        (PositionSide::Long, OrderSide::Sell) => fill.price - held.entry_price,
        (PositionSide::Short, OrderSide::Buy) => held.entry_price - fill.price,
        _ => return None,
    };
    Some(pnl::round_money(per_share * fill.qty.min(held.quantity)))
}

fn trade_event(message: &TradeUpdateMessage, fill: Fill, pnl: Option<Decimal>, user: &UserId, now: Timestamp) -> Event {
    Event::from(Envelope::new(
        user.clone(),
        now,
        Trade {
            trade_id: message.execution_id.clone().unwrap_or_default(),
            symbol: message.order.symbol.clone(),
            side: message.order.side,
            quantity: fill.qty,
            price: fill.price,
            pnl,
            executed_at: message.timestamp,
            strategy_id: None,
        },
    ))
}

/// The position after the fill: the broker's quantity, side and entry
/// price, valued with [`pnl`] at the broker's price (or the fill price). A
/// position the broker no longer has is closed: quantity 0. Strategy and
/// opening time carry over from the snapshot while the side stays the same.
fn position_from(
    message: &TradeUpdateMessage,
    fill: Fill,
    broker: Option<BrokerPosition>,
    previous: Option<&Position>,
) -> Result<Position, Error> {
    let symbol = message.order.symbol.clone();
    let Some(broker) = broker else {
        let side = previous.map(|p| p.side).unwrap_or(match message.order.side {
            // Buying closes a short, selling closes a long.
            OrderSide::Buy => PositionSide::Short,
            OrderSide::Sell => PositionSide::Long,
        });
        return Ok(closed_position(symbol, side, fill.price, previous));
    };
    let current_price = broker.current_price.unwrap_or(fill.price);
    let valued = pnl::position(symbol.clone(), broker.side, broker.quantity, broker.average_entry_price, current_price)
        .map_err(|e| Error::Broker(broker::BrokerError::Malformed(format!("position of {symbol}: {e}"))))?;
    let same = previous.filter(|p| p.side == broker.side);
    Ok(Position {
        strategy_id: same.and_then(|p| p.strategy_id.clone()),
        opened_at: Some(same.and_then(|p| p.opened_at).unwrap_or(message.timestamp)),
        ..valued
    })
}

/// A position the broker no longer has: quantity 0 at `price`, its entry
/// price, strategy and opening time kept from the snapshot when known.
pub(crate) fn closed_position(
    symbol: Symbol,
    side: PositionSide,
    price: Decimal,
    previous: Option<&Position>,
) -> Position {
    Position {
        symbol,
        quantity: Decimal::ZERO,
        current_price: pnl::price(price),
        entry_price: pnl::price(previous.map_or(price, |p| p.entry_price)),
        unrealized_pnl: pnl::round_money(Decimal::ZERO),
        unrealized_pnl_percent: pnl::round_percent(Decimal::ZERO),
        market_value: pnl::round_money(Decimal::ZERO),
        side,
        strategy_id: previous.and_then(|p| p.strategy_id.clone()),
        opened_at: previous.and_then(|p| p.opened_at),
    }
}

pub(crate) fn envelope_position(position: Position, user: &UserId, now: Timestamp) -> Event {
    Event::from(Envelope::new(user.clone(), now, position))
}

/// Balances as the note shows them: the day's P&L is equity against the
/// previous close.
pub(crate) fn account_from(broker: &BrokerAccount, now: Timestamp) -> Account {
    let day_pnl = broker.equity - broker.last_equity;
    let day_pnl_percent = if broker.last_equity.is_zero() {
        Decimal::ZERO
    } else {
        day_pnl.checked_div(broker.last_equity).and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED)).unwrap_or_default()
    };
    Account {
        equity: pnl::round_money(broker.equity),
        buying_power: pnl::round_money(broker.buying_power),
        cash: pnl::round_money(broker.cash),
        portfolio_value: pnl::round_money(broker.equity),
        day_pnl: pnl::round_money(day_pnl),
        day_pnl_percent: pnl::round_percent(day_pnl_percent),
        timestamp: now,
    }
}

pub(crate) fn account_event(broker: &BrokerAccount, user: &UserId, now: Timestamp) -> Event {
    Event::from(Envelope::new(user.clone(), now, account_from(broker, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: &str) -> TradeUpdateMessage {
        let json = format!(
            r#"{{"account_id":"acct-1","event":"{event}","execution_id":"exec-1","price":"175.50","qty":"10",
            "position_qty":"10","timestamp":"2026-01-03T15:30:45.123Z",
            "order":{{"id":"alpaca-1","client_order_id":"order-1","symbol":"AAPL","side":"buy","type":"limit",
            "status":"filled","qty":"10","filled_qty":"10","filled_avg_price":"175.50","limit_price":"176"}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn dedupe_stems_come_from_the_fill_the_execution_id_or_the_order_event_and_time() {
        assert_eq!(check(&message("fill")).unwrap().stem, "broker:alpaca-1:fill:10");
        let mut partial = message("partial_fill");
        partial.order.filled_qty = Decimal::new(2500, 2);
        assert_eq!(check(&partial).unwrap().stem, "broker:alpaca-1:fill:25", "the same execution however spelled");
        assert_eq!(check(&message("new")).unwrap().stem, "broker:exec-1");
        let mut canceled = message("canceled");
        canceled.execution_id = None;
        let stem = check(&canceled).unwrap().stem;
        assert!(stem.starts_with("broker:alpaca-1:canceled:"), "{stem}");
        assert!(stem.len() + ":position".len() <= event_log::log::MAX_DEDUPE_ID_LEN);
    }

    #[test]
    fn fills_need_an_execution_id_price_and_quantity() {
        let mut fill = message("fill");
        fill.execution_id = None;
        assert!(matches!(check(&fill), Err(Error::BadRequest { field: Some(f), .. }) if f == "execution_id"));
        let mut fill = message("partial_fill");
        fill.price = Some(Decimal::ZERO);
        assert!(matches!(check(&fill), Err(Error::BadRequest { field: Some(f), .. }) if f == "price"));
        let mut new = message("new");
        new.price = None;
        assert!(check(&new).unwrap().fill.is_none());
    }

    #[test]
    fn a_closed_position_keeps_its_side_and_entry() {
        let previous = Position {
            symbol: Symbol::new("AAPL").unwrap(),
            quantity: Decimal::from(10),
            current_price: Decimal::new(17_000, 2),
            entry_price: Decimal::new(16_000, 2),
            unrealized_pnl: Decimal::new(10_000, 2),
            unrealized_pnl_percent: Decimal::new(625, 2),
            market_value: Decimal::new(170_000, 2),
            side: PositionSide::Long,
            strategy_id: Some("s-1".into()),
            opened_at: None,
        };
        let fill = Fill { price: Decimal::new(17_550, 2), qty: Decimal::from(10) };
        let closed = position_from(&message("fill"), fill, None, Some(&previous)).unwrap();
        assert!(closed.is_closed());
        assert_eq!(
            (closed.side, closed.entry_price, closed.market_value.to_string()),
            (PositionSide::Long, previous.entry_price, "0.00".to_owned())
        );
        assert_eq!(closed.strategy_id.as_deref(), Some("s-1"));
    }

    #[test]
    fn a_reducing_fill_realizes_pnl_against_the_entry() {
        let held = |side, quantity: i64| {
            let (entry, price) = (Decimal::new(16_000, 2), Decimal::new(17_000, 2));
            pnl::position(Symbol::new("AAPL").unwrap(), side, Decimal::from(quantity), entry, price).unwrap()
        };
        let fill = |qty: i64| Fill { price: Decimal::new(17_250, 2), qty: Decimal::from(qty) };
        let long = held(PositionSide::Long, 10);
        // Selling 4 of 10 at 172.50 bought at 160.00.
        assert_eq!(realized_pnl(fill(4), OrderSide::Sell, Some(&long)).map(|d| d.to_string()), Some("50.00".into()));
        // Selling more than held realizes only what closes.
        assert_eq!(realized_pnl(fill(15), OrderSide::Sell, Some(&long)).map(|d| d.to_string()), Some("125.00".into()));
        // A short covered above its entry loses.
        let short = held(PositionSide::Short, 10);
        assert_eq!(realized_pnl(fill(2), OrderSide::Buy, Some(&short)).map(|d| d.to_string()), Some("-25.00".into()));
        // Opening or adding realizes nothing; nor does an unknown position.
        assert_eq!(realized_pnl(fill(2), OrderSide::Buy, Some(&long)), None);
        assert_eq!(realized_pnl(fill(2), OrderSide::Sell, None), None);
        assert_eq!(realized_pnl(fill(2), OrderSide::Sell, Some(&held(PositionSide::Long, 0))), None);
    }

    #[test]
    fn day_pnl_is_equity_against_the_last_close() {
        let account = account_from(
            &BrokerAccount {
                cash: Decimal::new(5_000_000, 2),
                equity: Decimal::new(10_430_875, 2),
                last_equity: Decimal::new(10_307_419, 2),
                buying_power: Decimal::new(35_490_524, 2),
            },
            Timestamp::now(),
        );
        assert_eq!(
            (account.day_pnl.to_string(), account.day_pnl_percent.to_string()),
            ("1234.56".into(), "1.20".into())
        );
        assert_eq!(account.portfolio_value, account.equity);
    }
}
