//! The simulated market and order flow. Everything enters through the
//! functions' router as signed requests, like a real broker and feed would.

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
}

impl Simulator {
    pub(crate) async fn run(self) {
        let this = Arc::new(self);
        // A starting portfolio for everyone, filled at once.
        let mut order_no = 0_u64;
        for user in DEMO_USERS {
            for (symbol, _) in SYMBOLS.iter().take(3) {
                order_no += 1;
                let qty = Decimal::from(rand::thread_rng().gen_range(5..40));
                this.order(order_no, user, symbol, OrderSide::Buy, qty, Duration::ZERO).await;
            }
        }
        let ticks = tokio::spawn(this.clone().ticks());
        loop {
            let jitter = rand::thread_rng().gen_range(0.5..1.5);
            tokio::time::sleep(this.order_every.mul_f64(jitter)).await;
            order_no += 1;
            let (user, symbol, side, qty) = this.random_order();
            // Orders run concurrently, as in a real account.
            let flow = this.clone();
            tokio::spawn(async move { flow.order(order_no, user, symbol, side, qty, flow.tick * 3).await });
            if ticks.is_finished() {
                return;
            }
        }
    }

    fn random_order(&self) -> (&'static str, &'static str, OrderSide, Decimal) {
        let mut rng = rand::thread_rng();
        let user = DEMO_USERS[rng.gen_range(0..DEMO_USERS.len())];
        let symbol = SYMBOLS[rng.gen_range(0..SYMBOLS.len())].0;
        let held = self.market.holding(&account_of(user), symbol);
        if !held.is_zero() && rng.gen_bool(0.4) {
            // Sell part or all of it (sometimes closing the position).
            let qty = if rng.gen_bool(0.3) { held } else { (held / Decimal::TWO).ceil() };
            (user, symbol, OrderSide::Sell, qty)
        } else {
            (user, symbol, OrderSide::Buy, Decimal::from(rng.gen_range(1..25)))
        }
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
    async fn order(&self, n: u64, user: &str, symbol: &str, side: OrderSide, qty: Decimal, pace: Duration) {
        let account = account_of(user);
        let order_id = format!("ord-{n}");
        let broker_id = format!("alp-{n}");
        let submitted = Timestamp::now().to_string();
        let side_text = match side {
            OrderSide::Buy => "buy",
            OrderSide::Sell => "sell",
        };
        let limit = (self.market.price(symbol) * Decimal::new(101, 2)).round_dp(2);
        let completion = json!({
            "jobId": format!("job-{n}"), "userId": user, "orderId": order_id, "brokerOrderId": broker_id,
            "status": "accepted", "submittedAt": submitted,
            "order": {"symbol": symbol, "side": side_text, "type": "limit", "qty": qty.to_string(), "limitPrice": limit.to_string()},
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
                    "id": broker_id, "client_order_id": order_id, "symbol": symbol, "side": side_text, "type": "limit",
                    "status": status, "qty": qty.to_string(), "filled_qty": filled.to_string(),
                    "filled_avg_price": average, "limit_price": limit.to_string(), "submitted_at": submitted,
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
