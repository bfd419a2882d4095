//! What the trade-updates stream missed: Alpaca does not replay its
//! streams, so after every reconnect the relay asks the REST API for the
//! account's fills since the stream was last known to be up
//! (`GET /v2/account/activities?activity_types=FILL`) and the orders they
//! belong to (`GET /v2/orders/{id}`), and turns each fill into the trade
//! update the stream would have sent.
//!
//! A backfilled fill carries the order's filled quantity after that
//! execution (the activity's `cum_qty`), which is what the broker webhook
//! names a fill by; so a fill that reached the webhook live, and again from
//! the backfill, is published once.

use std::collections::HashMap;

use apca::api::v2::account_activities::{self, Activity, ActivityReq, ActivityType, Direction, TradeActivity};
use apca::api::v2::{account, order};
use broker::BrokerError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::AlpacaBroker;

/// Activities asked for per page (Alpaca's maximum).
pub const PAGE_SIZE: usize = 100;

/// Most fills one backfill reads; more are left for the next one (and
/// reported), so a long outage cannot hold the relay in one call for long.
pub const MAX_FILLS: usize = 10_000;

impl AlpacaBroker {
    /// The id of the account these keys trade (`GET /v2/account`).
    pub async fn account_id(&self) -> Result<String, BrokerError> {
        Ok(issue!(self.client, account::Get, &(), account::GetError)?.id.to_string())
    }

    /// The trade updates (`fill` / `partial_fill`, with `account_id` beside
    /// them, as the broker webhook takes them) of every fill after `after`,
    /// oldest first, at most [`MAX_FILLS`].
    pub async fn fills_after(&self, account_id: &str, after: DateTime<Utc>) -> Result<Vec<Value>, BrokerError> {
        let mut fills: Vec<TradeActivity> = Vec::new();
        let mut page_token = None;
        while fills.len() < MAX_FILLS {
            let request = ActivityReq {
                types: vec![ActivityType::Fill],
                direction: Direction::Ascending,
                after: Some(after),
                page_size: Some(PAGE_SIZE),
                page_token: page_token.take(),
                ..ActivityReq::default()
            };
            let page = issue!(self.client, account_activities::Get, &request, account_activities::GetError)?;
            let full = page.len() == PAGE_SIZE;
            page_token = page.last().map(|a| a.id().to_owned());
            fills.extend(page.into_iter().filter_map(|a: Activity| a.into_trade().ok()));
            if !full {
                break;
            }
        }
        fills.truncate(MAX_FILLS);

        let mut orders: HashMap<order::Id, order::Order> = HashMap::new();
        let mut updates = Vec::with_capacity(fills.len());
        for fill in &fills {
            let order = match orders.entry(fill.order_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(self.order(fill.order_id).await?),
            };
            updates.push(trade_update(account_id, fill, order));
        }
        Ok(updates)
    }

    async fn order(&self, id: order::Id) -> Result<order::Order, BrokerError> {
        issue!(self.client, order::Get, &id, order::GetError,
            order::GetError::NotFound(_) => Err(BrokerError::Malformed(format!("order {} of a fill not found", id.0))))
    }
}

/// The trade update of one fill: the order as it is now, with its filled
/// quantity and status as they were right after this fill.
fn trade_update(account_id: &str, fill: &TradeActivity, order: &order::Order) -> Value {
    let done = fill.unfilled_quantity.is_zero();
    let time = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let quantity = match &order.amount {
        order::Amount::Quantity { quantity } => Some(quantity.to_string()),
        order::Amount::Notional { .. } => None,
    };
    json!({
        "account_id": account_id,
        "event": if done { "fill" } else { "partial_fill" },
        "execution_id": fill.id,
        "price": fill.price.to_string(),
        "qty": fill.quantity.to_string(),
        "timestamp": fill.transaction_time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "order": {
            "id": order.id.0.to_string(),
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side,
            "type": order.type_,
            "status": if done { "filled" } else { "partially_filled" },
            "qty": quantity,
            "filled_qty": fill.cumulative_quantity.to_string(),
            "filled_avg_price": order.average_fill_price.as_ref().map(ToString::to_string),
            "limit_price": order.limit_price.as_ref().map(ToString::to_string),
            "stop_price": order.stop_price.as_ref().map(ToString::to_string),
            "submitted_at": time(&order.submitted_at),
            "filled_at": fill.transaction_time.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
    })
}
