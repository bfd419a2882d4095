//! The simulated market and order flow. Everything enters through the
//! functions' router as signed requests, like a real broker and feed would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use common::event::{OrderSide, Timestamp};
use functions::signature::{now_unix, sign, SIGNATURE_HEADER};
use functions::Function;
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::broker::DEMO_USERS;
use crate::broker::{account_of, SimBroker, SYMBOLS};

/// Drives the market and the orders until aborted.
#[derive(Debug)]
pub(crate) struct Simulator {
    pub(crate) router: Router,
    pub(crate) market: Arc<SimBroker>,
    pub(crate) webhook_secret: Vec<u8>,
    pub(crate) ingest_secret: Vec<u8>,
    pub(crate) tick: Duration,
    pub(crate) order_every: Duration,
    pub(crate) fill_every: Duration,
    /// Numbers the orders (job, broker and execution ids).
    pub(crate) orders: AtomicU64,
}

/// One order to simulate: the simulator's own, or one from the page's
/// order ticket (`POST /dev/orders`).
#[derive(Debug, Clone)]
pub(crate) struct OrderRequest {
    pub(crate) user: String,
    /// The app's client order id (the work queue's `orderId`); `ord-N` when none.
    pub(crate) order_id: Option<String>,
    pub(crate) symbol: String,
    pub(crate) side: OrderSide,
    pub(crate) qty: Decimal,
    /// A limit order at this price; a market order when `None`.
    pub(crate) limit: Option<Decimal>,
}

impl Simulator {
    pub(crate) async fn run(self: Arc<Self>) {
        // A starting portfolio for everyone, filled at once.
        for user in DEMO_USERS {
            for (symbol, _) in SYMBOLS.iter().take(3) {
                let qty = Decimal::from(rand::thread_rng().gen_range(5..40));
                let limit = Some(self.limit_for(symbol));
                let request = OrderRequest {
                    user: user.to_owned(),
                    order_id: None,
                    symbol: (*symbol).to_owned(),
                    side: OrderSide::Buy,
                    qty,
                    limit,
                };
                self.order(request, Duration::ZERO).await;
            }
        }
        let ticks = tokio::spawn(self.clone().ticks());
        loop {
            let jitter = rand::thread_rng().gen_range(0.5..1.5);
            tokio::time::sleep(self.order_every.mul_f64(jitter)).await;
            let request = self.random_order();
            self.clone().spawn_order(request);
            if ticks.is_finished() {
                return;
            }
        }
    }

    /// Runs an order's life in the background (orders run concurrently, as
    /// in a real account), `fill_every` between broker updates.
    pub(crate) fn spawn_order(self: Arc<Self>, request: OrderRequest) {
        tokio::spawn(async move { self.order(request, self.fill_every).await });
    }

    fn limit_for(&self, symbol: &str) -> Decimal {
        (self.market.price(symbol) * Decimal::new(101, 2)).round_dp(2)
    }

    fn random_order(&self) -> OrderRequest {
        let mut rng = rand::thread_rng();
        let user = DEMO_USERS[rng.gen_range(0..DEMO_USERS.len())];
        let symbol = SYMBOLS[rng.gen_range(0..SYMBOLS.len())].0;
        let held = self.market.holding(&account_of(user), symbol);
        let (side, qty) = if !held.is_zero() && rng.gen_bool(0.4) {
            // Sell part or all of it (sometimes closing the position).
            let qty = if rng.gen_bool(0.3) { held } else { (held / Decimal::TWO).ceil() };
            (OrderSide::Sell, qty)
        } else {
            (OrderSide::Buy, Decimal::from(rng.gen_range(1..25)))
        };
        let limit = Some(self.limit_for(symbol));
        OrderRequest { user: user.to_owned(), order_id: None, symbol: symbol.to_owned(), side, qty, limit }
    }

    /// Random walks every symbol and sends the batch to the price route.
    async fn ticks(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.tick);
        loop {
            every.tick().await;
            let moves: Vec<(&str, i64)> = {
                let mut rng = rand::thread_rng();
                SYMBOLS.iter().map(|(s, _)| (*s, rng.gen_range(-12..=12))).collect()
            };
            let now = Timestamp::now().to_string();
            let ticks: Vec<Value> = self
                .market
                .walk(&moves)
                .into_iter()
                .map(|(symbol, price)| json!({"symbol": symbol, "price": price.to_string(), "timestamp": now}))
                .collect();
            self.post(Function::PriceTicks.path(), &self.ingest_secret, &json!({ "ticks": ticks })).await;
        }
    }

    /// One order's life: the work queue's completion, then the broker's
    /// updates new → accepted → partial fills → fill.
    async fn order(&self, request: OrderRequest, pace: Duration) {
        let OrderRequest { user, order_id, symbol, side, qty, limit } = request;
        let symbol = symbol.as_str();
        let n = self.orders.fetch_add(1, Ordering::Relaxed) + 1;
        let account = account_of(&user);
        let order_id = order_id.unwrap_or_else(|| format!("ord-{n}"));
        let broker_id = format!("alp-{n}");
        let submitted = Timestamp::now().to_string();
        let side_text = match side {
            OrderSide::Buy => "buy",
            OrderSide::Sell => "sell",
        };
        let order_type = if limit.is_some() { "limit" } else { "market" };
        let limit_text = limit.map(|price| price.to_string());
        let completion = json!({
            "jobId": format!("job-{n}"), "userId": user, "orderId": order_id, "brokerOrderId": broker_id,
            "status": "accepted", "submittedAt": submitted,
            "order": {"symbol": symbol, "side": side_text, "type": order_type, "qty": qty.to_string(), "limitPrice": limit_text},
        });
        self.post(Function::QueueCompletions.path(), &self.ingest_secret, &completion).await;

        let mut filled = Decimal::ZERO;
        let mut cost = Decimal::ZERO;
        let parts = if qty > Decimal::from(3) { rand::thread_rng().gen_range(1..=3) } else { 1 };
        let mut steps: Vec<(&str, &str, Option<Decimal>)> = vec![("new", "new", None), ("accepted", "accepted", None)];
        for part in 1..=parts {
            let chunk = if part == parts {
                qty - (qty / Decimal::from(parts)).floor() * Decimal::from(parts - 1)
            } else {
                (qty / Decimal::from(parts)).floor()
            };
            let (event, status) = if part == parts { ("fill", "filled") } else { ("partial_fill", "partially_filled") };
            steps.push((event, status, Some(chunk)));
        }
        for (i, (event, status, chunk)) in steps.into_iter().enumerate() {
            tokio::time::sleep(pace).await;
            let mut fill = json!({});
            if let Some(chunk) = chunk {
                let price = self.market.price(symbol);
                self.market.execute(&account, symbol, side, chunk, price);
                filled += chunk;
                cost += chunk * price;
                fill = json!({
                    "execution_id": format!("exec-{n}-{i}"), "price": price.to_string(), "qty": chunk.to_string(),
                    "position_qty": self.market.holding(&account, symbol).to_string(),
                });
            }
            let now = Timestamp::now().to_string();
            let average = (!filled.is_zero()).then(|| (cost / filled).round_dp(2).to_string());
            let mut message = json!({
                "account_id": account, "event": event, "timestamp": now,
                "order": {
                    "id": broker_id, "client_order_id": order_id, "symbol": symbol, "side": side_text, "type": order_type,
                    "status": status, "qty": qty.to_string(), "filled_qty": filled.to_string(),
                    "filled_avg_price": average, "limit_price": limit_text, "submitted_at": submitted,
                    "filled_at": if status == "filled" { Some(now.clone()) } else { None },
                },
            });
            if let (Some(target), Some(extra)) = (message.as_object_mut(), fill.as_object()) {
                target.extend(extra.clone());
            }
            self.post(Function::BrokerWebhook.path(), &self.webhook_secret, &message).await;
        }
    }

    /// Sends a signed JSON request through the functions' router; retries
    /// a few times on 503 as a broker would.
    async fn post(&self, path: &str, secret: &[u8], body: &Value) {
        let body = body.to_string();
        for attempt in 0..3 {
            let request = Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, sign(secret, now_unix(), body.as_bytes()))
                .body(Body::from(body.clone()));
            let Ok(request) = request else { return };
            match self.router.clone().oneshot(request).await {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE && attempt < 2 => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(response) if !response.status().is_success() => {
                    tracing::warn!(path, status = %response.status(), "Simulated request refused.");
                    return;
                }
                _ => return,
            }
        }
    }
}
