//! Work-queue completions: the order-submission worker reports that a job
//! finished (accepted by the broker, rejected, or failed before reaching
//! it), and the user gets an `order_update`. The message schema is in
//! docs/functions.md; its dedupe id is the job id.
//!
//! The queue is internal: SQS deliveries are vouched for by IAM, and the
//! local HTTP route is signed ([`crate::app`]), so the user id in the
//! message is trusted.

use common::event::{Envelope, Event, Order, OrderSide, OrderStatus, OrderType, Symbol, Timestamp, UserId};
use event_log::NewEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::deps::Deps;
use crate::error::Error;
use crate::input::{check_id, check_positive};
use crate::publish::{publish_all, Outcome};

/// Longest accepted id (job, order, broker order), bytes.
const MAX_ID_LEN: usize = 128;

/// Longest error text passed on to the user, characters; longer is cut.
const MAX_ERROR_CHARS: usize = 500;

/// One completion message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// The submission job; its id is the event's dedupe id.
    pub job_id: String,
    /// Whose order it is.
    pub user_id: UserId,
    /// The app's order id.
    pub order_id: String,
    /// The broker's order id, once the broker accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_order_id: Option<String>,
    /// How the submission ended.
    pub status: CompletionStatus,
    /// The order as submitted.
    pub order: SubmittedOrder,
    /// When it was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
    /// Why it was rejected or failed, safe to show to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionStatus {
    /// The broker accepted the order.
    Accepted,
    /// The broker rejected it.
    Rejected,
    /// It never reached the broker.
    Failed,
}

/// The order fields of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedOrder {
    /// The symbol.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: OrderSide,
    /// Market, limit, …
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Quantity.
    #[serde(with = "common::decimal::str")]
    pub qty: Decimal,
    /// Limit price, for limit orders.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "common::decimal::str_option")]
    pub limit_price: Option<Decimal>,
    /// Stop price, for stop orders.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "common::decimal::str_option")]
    pub stop_price: Option<Decimal>,
}

/// The rules a completion must meet beyond its shape (ids, positive
/// quantity and prices); a refusal names the field.
pub fn check(completion: &Completion) -> Result<(), Error> {
    check_id("jobId", &completion.job_id, MAX_ID_LEN)?;
    check_id("orderId", &completion.order_id, MAX_ID_LEN)?;
    if let Some(broker_order_id) = &completion.broker_order_id {
        check_id("brokerOrderId", broker_order_id, MAX_ID_LEN)?;
    }
    if completion.order.qty <= Decimal::ZERO {
        return Err(Error::field("order.qty", "must be positive"));
    }
    check_positive("order.limitPrice", completion.order.limit_price)?;
    check_positive("order.stopPrice", completion.order.stop_price)
}

/// Handles one completion.
pub async fn handle(completion: Completion, deps: &Deps) -> Result<Outcome, Error> {
    check(&completion)?;
    let event = NewEvent::new(order_event(&completion), format!("job:{}", completion.job_id));
    let outcome = publish_all(&*deps.log, std::slice::from_ref(&event)).await?;
    tracing::info!(
        user = %completion.user_id,
        job = %completion.job_id,
        status = ?completion.status,
        published = outcome.published,
        duplicates = outcome.duplicates,
        "Order submission completion ingested."
    );
    Ok(outcome)
}

fn order_event(completion: &Completion) -> Event {
    let order = &completion.order;
    let status = match completion.status {
        CompletionStatus::Accepted => OrderStatus::Accepted,
        CompletionStatus::Rejected => OrderStatus::Rejected,
        CompletionStatus::Failed => OrderStatus::Failed,
    };
    let reason = completion.error.as_deref().map(|text| text.chars().take(MAX_ERROR_CHARS).collect());
    Event::from(Envelope::new(
        completion.user_id.clone(),
        Timestamp::now(),
        Order {
            order_id: completion.order_id.clone(),
            broker_order_id: completion.broker_order_id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            order_type: order.order_type,
            status,
            qty: order.qty,
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            submitted_at: completion.submitted_at,
            filled_at: None,
            reason,
        },
    ))
}
