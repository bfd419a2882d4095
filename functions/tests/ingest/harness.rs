//! What every ingest test starts from: a real `redis-server`, the fake
//! Alpaca API, the functions' router over both, and helpers to sign, send
//! and read back what was published.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use broker_alpaca::AlpacaBroker;
use common::config::Secret;
use common::event::{Account, Envelope, Event, Mark, Position, PositionSide, Symbol, Timestamp, UserId};
use event_log::index::IngestIndex;
use event_log::redis::RedisLog;
use event_log::{EventLog, LogError, LogResult, LogSettings, NewEvent, Notice, Published, ReadAfter, Snapshot};
use functions::signature::{self, Verifier, SIGNATURE_HEADER};
use functions::{app, AppState, Deps, Function, Limits};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use test_support::alpaca::{FakeAlpaca, KEY_ID, SECRET};
use test_support::redis::RedisServer;
use tokio::sync::broadcast;
use tower::ServiceExt;

pub(crate) const WEBHOOK_SECRET: &[u8] = b"test-webhook-secret-0123456789abcdef";
pub(crate) const INGEST_SECRET: &[u8] = b"test-ingest-secret-0123456789abcdefg";
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_millis(300);
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const TOLERANCE: Duration = Duration::from_secs(300);

/// Redis, the fake broker, and the router over them.
pub(crate) struct Harness {
    pub(crate) redis: RedisServer,
    pub(crate) log: RedisLog,
    pub(crate) alpaca: FakeAlpaca,
    /// Events allowed through before publishing fails (see [`FlakyLog`]).
    pub(crate) flaky: Arc<FlakyLog>,
    state: AppState,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::with_limits(Limits { broker_timeout: BROKER_TIMEOUT, ..Limits::default() }).await
    }

    pub(crate) async fn with_limits(limits: Limits) -> Self {
        Self::build(limits, true).await
    }

    /// The no-broker mode of local runs: no Alpaca keys, no broker.
    pub(crate) async fn without_broker() -> Self {
        Self::build(Limits { broker_timeout: BROKER_TIMEOUT, ..Limits::default() }, false).await
    }

    async fn build(limits: Limits, with_broker: bool) -> Self {
        let redis = RedisServer::start();
        let log = RedisLog::connect(&redis.url(), LogSettings::default(), REDIS_TIMEOUT).await.expect("connect");
        let alpaca = FakeAlpaca::start().await;
        let flaky = Arc::new(FlakyLog::new(log.clone()));
        let mut deps = Deps { log: flaky.clone(), index: Arc::new(log.clone()), broker: None, limits };
        if with_broker {
            let broker = AlpacaBroker::new(&alpaca.base_url(), KEY_ID, SECRET).expect("broker client");
            deps = deps.with_broker(Arc::new(broker));
        }
        let state = AppState::new(
            deps,
            &Function::ALL,
            Some(Verifier::new(Secret::new(WEBHOOK_SECRET), TOLERANCE)),
            Some(Verifier::new(Secret::new(INGEST_SECRET), TOLERANCE)),
        )
        .expect("every function has what it needs");
        Self { redis, log, alpaca, flaky, state }
    }

    pub(crate) fn router(&self) -> Router {
        app(self.state.clone())
    }

    pub(crate) fn deps(&self) -> &Deps {
        self.state.deps()
    }

    /// The local HTTP server on `127.0.0.1:0`, as dev mode runs it.
    pub(crate) async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let router = self.router();
        tokio::spawn(functions::server::run(listener, router, std::future::pending()));
        addr
    }

    pub(crate) async fn link(&self, account: &str, user: &UserId) {
        self.log.link_account(account, user).await.expect("link account");
    }

    /// Sends through the router in process (`oneshot`).
    pub(crate) async fn send(&self, path: &str, body: &str, signature: Option<String>) -> (StatusCode, Value) {
        let mut request = Request::post(path).header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = self
            .router()
            .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, json_or_null(&bytes))
    }

    /// Everything published for `user`, in order.
    pub(crate) async fn events(&self, user: &UserId) -> Vec<Event> {
        match self.log.read_after(user, None, 0, 100_000).await.expect("read_after") {
            ReadAfter::Events { events, .. } => events.iter().map(|e| e.decode().expect("decode")).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub(crate) async fn snapshot(&self, user: &UserId) -> Snapshot {
        self.log.snapshot(user).await.expect("snapshot")
    }

    /// A user who holds `qty` of `symbol` bought at `entry`, valued at
    /// `price`, with an account of `equity` (day P&L `day_pnl`), as fills
    /// through the webhook would leave them.
    pub(crate) async fn seed_holder(&self, user: &UserId, symbol: &str, qty: &str, entry: &str, price: &str) {
        let events = [
            NewEvent::new(position_event(user, symbol, qty, entry, price), format!("seed:{symbol}:{user}")),
            NewEvent::new(account_event(user, "100000.00", "500.00"), format!("seed:acct:{user}")),
        ];
        for result in self.log.publish_many(&events).await {
            result.expect("seed");
        }
        self.log.set_holding(user, &symbol_of(symbol), true).await.expect("hold");
    }
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

pub(crate) fn symbol_of(symbol: &str) -> Symbol {
    Symbol::new(symbol).expect("symbol")
}

pub(crate) fn dec(text: &str) -> rust_decimal::Decimal {
    text.parse().expect("decimal")
}

pub(crate) fn position_event(user: &UserId, symbol: &str, qty: &str, entry: &str, price: &str) -> Event {
    let position = common::pnl::position(symbol_of(symbol), PositionSide::Long, dec(qty), dec(entry), dec(price))
        .expect("valuation");
    let position = Position {
        strategy_id: Some("strategy-xyz".into()),
        opened_at: Some("2026-01-03T09:30:00.000Z".parse().expect("timestamp")),
        ..position
    };
    Envelope::new(user.clone(), Timestamp::now(), position).into()
}

pub(crate) fn account_event(user: &UserId, equity: &str, day_pnl: &str) -> Event {
    Event::from(Envelope::new(
        user.clone(),
        Timestamp::now(),
        Account {
            equity: dec(equity),
            buying_power: dec("200000.00"),
            cash: dec("50000.00"),
            portfolio_value: dec(equity),
            day_pnl: dec(day_pnl),
            day_pnl_percent: dec("0.50"),
            timestamp: Timestamp::now(),
        },
    ))
}

/// The signature header for `body`, made now with `secret`.
pub(crate) fn sign(secret: &[u8], body: &str) -> String {
    signature::sign(secret, signature::now_unix(), body.as_bytes())
}

/// An Alpaca trade update for `account` (the broker webhook's body).
pub(crate) fn trade_update(account: &str, event: &str, execution_id: Option<&str>, order: Value) -> String {
    let mut message = json!({
        "account_id": account,
        "event": event,
        "timestamp": "2026-01-03T15:30:45.123Z",
        "order": order,
    });
    if let Some(execution_id) = execution_id {
        message["execution_id"] = json!(execution_id);
        message["price"] = json!("175.50");
        message["qty"] = json!("10");
        message["position_qty"] = json!("10");
    }
    message.to_string()
}

/// Alpaca's order object for a buy of 10 AAPL.
pub(crate) fn order(status: &str, filled_qty: &str) -> Value {
    json!({
        "id": "alpaca-order-456",
        "client_order_id": "order-123",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "order_type": "limit",
        "status": status,
        "qty": "10",
        "filled_qty": filled_qty,
        "filled_avg_price": if filled_qty == "0" { Value::Null } else { json!("175.50") },
        "limit_price": "176.00",
        "stop_price": null,
        "submitted_at": "2026-01-03T15:29:30.000Z",
        "filled_at": if filled_qty == "0" { Value::Null } else { json!("2026-01-03T15:30:45.000Z") },
        "time_in_force": "day",
        "extended_hours": false
    })
}

/// POSTs over real HTTP to the local server.
pub(crate) async fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    signature: Option<String>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = signature.iter().map(|s| (SIGNATURE_HEADER, s.as_str())).collect();
    let response = test_support::http::post_json(addr, path, &headers, body.as_bytes()).await.expect("HTTP request");
    (StatusCode::from_u16(response.status).expect("a status"), response.json())
}

pub(crate) fn json_or_null(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Event types, in order.
pub(crate) fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

/// An event log that lets a set number of events through and fails the
/// rest as unavailable, to play a publish that fails halfway. Everything
/// else goes to the real Redis log.
#[derive(Debug)]
pub(crate) struct FlakyLog {
    inner: RedisLog,
    allowed: AtomicUsize,
}

impl FlakyLog {
    fn new(inner: RedisLog) -> Self {
        Self { inner, allowed: AtomicUsize::new(usize::MAX) }
    }

    /// From now on only `n` more events publish.
    pub(crate) fn fail_after(&self, n: usize) {
        self.allowed.store(n, Ordering::SeqCst);
    }

    /// Publishing works again.
    pub(crate) fn heal(&self) {
        self.allowed.store(usize::MAX, Ordering::SeqCst);
    }

    fn take(&self, wanted: usize) -> usize {
        let mut granted = 0;
        let _ = self.allowed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            granted = left.min(wanted);
            Some(if left == usize::MAX { left } else { left - granted })
        });
        granted
    }
}

fn down() -> LogError {
    LogError::Unavailable("injected failure".into())
}

#[async_trait]
impl EventLog for FlakyLog {
    async fn publish(&self, event: &NewEvent) -> Result<Published, LogError> {
        if self.take(1) == 1 {
            self.inner.publish(event).await
        } else {
            Err(down())
        }
    }

    async fn publish_many(&self, events: &[NewEvent]) -> Vec<Result<Published, LogError>> {
        let granted = self.take(events.len());
        let mut results = self.inner.publish_many(&events[..granted]).await;
        results.extend((granted..events.len()).map(|_| Err(down())));
        results
    }

    async fn read_after(&self, user: &UserId, epoch: Option<&str>, after: u64, limit: usize) -> LogResult<ReadAfter> {
        self.inner.read_after(user, epoch, after, limit).await
    }

    async fn snapshot(&self, user: &UserId) -> Result<Snapshot, LogError> {
        self.inner.snapshot(user).await
    }

    async fn follow(&self, user: &UserId) -> Result<(), LogError> {
        self.inner.follow(user).await
    }

    async fn unfollow(&self, user: &UserId) -> Result<(), LogError> {
        self.inner.unfollow(user).await
    }

    async fn put_marks(&self, marks: &[Mark]) -> Vec<Result<bool, LogError>> {
        let granted = self.take(marks.len());
        let mut results = self.inner.put_marks(&marks[..granted]).await;
        results.extend((granted..marks.len()).map(|_| Err(down())));
        results
    }

    async fn marks(&self, symbols: &[Symbol]) -> LogResult<Vec<Option<Mark>>> {
        self.inner.marks(symbols).await
    }

    async fn follow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        self.inner.follow_mark(symbol).await
    }

    async fn unfollow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        self.inner.unfollow_mark(symbol).await
    }

    fn notices(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices()
    }

    fn leases(&self) -> Arc<dyn event_log::leases::Leases> {
        self.inner.leases()
    }

    async fn ping(&self) -> Result<(), LogError> {
        self.inner.ping().await
    }
}
