//! A fake Alpaca (axum) on a free loopback port: the trading API's
//! `GET /v2/positions[/{symbol}]`, `GET /v2/account`, `GET /v2/orders/{id}`
//! and `GET /v2/account/activities` (fills) from state the test sets, and the
//! two streams ([`streams`]): trade updates on `/stream` and market data on
//! `/v2/iex`. It checks the API keys, and can be switched to hang (so
//! callers hit their timeouts) or to fail with 503; the streams can be
//! dropped and refused on demand. Answers use Alpaca's JSON field names, so
//! the real `apca` client and the relay read them.
//!
//! [`FakeAlpaca::fill`] plays one execution the way Alpaca does: the order,
//! the account's fill activities and the position change, and the trade
//! update goes to every listening stream (or nowhere, while the streams are
//! down: Alpaca does not replay them).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use common::sync::lock;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

mod streams;

pub use streams::FakeFill;

/// The key id the fake accepts (header `APCA-API-KEY-ID`).
pub const KEY_ID: &str = "test-key-id";
/// The secret the fake accepts (header `APCA-API-SECRET-KEY`).
pub const SECRET: &str = "test-secret-key";

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From the state set by the test.
    Normal,
    /// Never answers (an hour), as a stalled upstream does.
    Hang,
    /// `503 Service Unavailable`.
    Fail,
}

/// One position, as the test sets it; the fake derives the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePosition {
    /// Signed quantity, as Alpaca sends it (`"-24"` for a short).
    pub qty: String,
    /// Average entry price.
    pub avg_entry_price: String,
    /// Latest price.
    pub current_price: String,
}

/// Balances, as the test sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAccount {
    /// Cash.
    pub cash: String,
    /// Equity.
    pub equity: String,
    /// Equity at the last close.
    pub last_equity: String,
    /// Buying power.
    pub buying_power: String,
}

impl Default for FakeAccount {
    fn default() -> Self {
        Self {
            cash: "50000.00".into(),
            equity: "104308.75".into(),
            last_equity: "103074.19".into(),
            buying_power: "354905.24".into(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    positions: HashMap<String, FakePosition>,
    account: FakeAccount,
    /// Orders by id, as Alpaca's JSON.
    orders: HashMap<String, Value>,
    /// Fill activities, oldest first, as Alpaca's JSON.
    activities: Vec<Value>,
    /// Whether the streams accept connections.
    streams_up: bool,
    /// Market-data subscriptions, per connection.
    subscriptions: HashMap<u64, std::collections::BTreeSet<String>>,
    /// Executions played so far (ids and times).
    executions: u64,
    /// Market-data connections so far (their ids).
    connections: u64,
}

#[derive(Debug, Clone)]
struct AppState {
    shared: Arc<Mutex<Shared>>,
    requests: Arc<AtomicUsize>,
    /// Trade updates for the listening trade streams (`{"stream":…}` text).
    trade_updates: broadcast::Sender<String>,
    /// Market-data prints (`{"T":"t",…}` objects) for subscribed symbols.
    prints: broadcast::Sender<Value>,
    /// Bumped to drop every open stream connection.
    drops: Arc<watch::Sender<u64>>,
    /// Trade streams authenticated and listening now.
    listening: Arc<AtomicUsize>,
    /// Trade stream sessions that reached "listening", ever.
    sessions: Arc<AtomicUsize>,
    /// Market-data connections authenticated now.
    data_connections: Arc<AtomicUsize>,
}

/// A running fake; stops when dropped.
#[derive(Debug)]
pub struct FakeAlpaca {
    addr: SocketAddr,
    state: AppState,
    task: JoinHandle<()>,
}

impl FakeAlpaca {
    /// Starts the fake on `127.0.0.1:0` with no positions and a default account.
    pub async fn start() -> Self {
        let state = AppState {
            shared: Arc::new(Mutex::new(Shared {
                mode: Mode::Normal,
                positions: HashMap::new(),
                account: FakeAccount::default(),
                orders: HashMap::new(),
                activities: Vec::new(),
                streams_up: true,
                subscriptions: HashMap::new(),
                executions: 0,
                connections: 0,
            })),
            requests: Arc::new(AtomicUsize::new(0)),
            trade_updates: broadcast::channel(1024).0,
            prints: broadcast::channel(4096).0,
            drops: Arc::new(watch::channel(0).0),
            listening: Arc::new(AtomicUsize::new(0)),
            sessions: Arc::new(AtomicUsize::new(0)),
            data_connections: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/v2/positions", get(positions))
            .route("/v2/positions/{symbol}", get(position))
            .route("/v2/account", get(account))
            .route("/v2/account/activities", get(activities))
            .route("/v2/orders/{id}", get(order))
            .route("/stream", any(streams::trade_stream))
            .route("/v2/iex", any(streams::market_data))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the fake Alpaca server");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`: the base URL to configure the client with.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:<port>/stream`: the trade-updates stream.
    pub fn stream_url(&self) -> String {
        format!("ws://{}/stream", self.addr)
    }

    /// `ws://127.0.0.1:<port>/v2/iex`: the market-data stream.
    pub fn data_stream_url(&self) -> String {
        format!("ws://{}/v2/iex", self.addr)
    }

    /// The account id `GET /v2/account` answers.
    pub fn account_id(&self) -> &'static str {
        ACCOUNT_ID
    }

    /// Sets (or replaces) the position in `symbol`.
    pub fn set_position(&self, symbol: &str, qty: &str, avg_entry_price: &str, current_price: &str) {
        let position = FakePosition {
            qty: qty.to_owned(),
            avg_entry_price: avg_entry_price.to_owned(),
            current_price: current_price.to_owned(),
        };
        self.lock().positions.insert(symbol.to_owned(), position);
    }

    /// Removes the position in `symbol`: the API then answers 404.
    pub fn close_position(&self, symbol: &str) {
        self.lock().positions.remove(symbol);
    }

    /// Sets the balances.
    pub fn set_account(&self, account: FakeAccount) {
        self.lock().account = account;
    }

    /// The account's cash, with two decimals (fills move it).
    pub fn cash(&self) -> String {
        self.lock().account.cash.clone()
    }

    /// Switches how the fake answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Requests received so far (any route, any answer).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Every position's symbol, sorted.
    pub fn position_symbols(&self) -> Vec<String> {
        let mut symbols: Vec<String> = self.lock().positions.keys().cloned().collect();
        symbols.sort();
        symbols
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.state.shared)
    }
}

/// The id of the fake's one account.
const ACCOUNT_ID: &str = "904837e3-3b76-47ec-b432-046db621571b";

impl Drop for FakeAlpaca {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts the request, checks the keys, and applies the mode; `Ok` means
/// "answer from state".
async fn gate(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&state.shared).mode;
    match mode {
        Mode::Normal => {}
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
        Mode::Fail => {
            return Err((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"code": 50300000, "message": "unavailable"})))
                .into_response())
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("apca-api-key-id") != Some(KEY_ID) || header("apca-api-secret-key") != Some(SECRET) {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 40110000, "message": "request is not authorized"})),
        )
            .into_response());
    }
    Ok(())
}

async fn position(State(state): State<AppState>, Path(symbol): Path<String>, headers: HeaderMap) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let found = lock(&state.shared).positions.get(&symbol).cloned();
    let Some(p) = found else {
        return (StatusCode::NOT_FOUND, Json(json!({"code": 40410000, "message": "position does not exist"})))
            .into_response();
    };
    Json(position_json(&symbol, &p)).into_response()
}

async fn positions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let mut all: Vec<(String, FakePosition)> =
        lock(&state.shared).positions.iter().map(|(s, p)| (s.clone(), p.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Json(all.iter().map(|(symbol, p)| position_json(symbol, p)).collect::<Vec<_>>()).into_response()
}

fn position_json(symbol: &str, p: &FakePosition) -> Value {
    let side = if p.qty.starts_with('-') { "short" } else { "long" };
    json!({
        "asset_id": "904837e3-3b76-47ec-b432-046db621571b",
        "symbol": symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "avg_entry_price": p.avg_entry_price,
        "qty": p.qty,
        "qty_available": p.qty,
        "side": side,
        "market_value": null,
        "cost_basis": "0",
        "unrealized_pl": null,
        "unrealized_plpc": null,
        "unrealized_intraday_pl": null,
        "unrealized_intraday_plpc": null,
        "current_price": p.current_price,
        "lastday_price": null,
        "change_today": null
    })
}

/// `GET /v2/orders/{id}`: apca asks with the id's hyphen-less form.
async fn order(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let key = id.replace('-', "");
    match lock(&state.shared).orders.get(&key).cloned() {
        Some(order) => Json(order).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"code": 40410000, "message": "order not found"}))).into_response(),
    }
}

/// `GET /v2/account/activities?activity_types=FILL&direction=asc&after=…&page_size=…&page_token=…`:
/// the fills after `after` (exclusive), oldest first, a page at a time.
async fn activities(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let after = query.get("after").and_then(|t| streams::parse_time(t)).unwrap_or_default();
    let size: usize = query.get("page_size").and_then(|s| s.parse().ok()).unwrap_or(100);
    let token = query.get("page_token").cloned();
    let shared = lock(&state.shared);
    let page: Vec<Value> = shared
        .activities
        .iter()
        .filter(|a| streams::time_of(a) > after)
        .skip_while(|a| token.as_deref().is_some_and(|t| a["id"].as_str().is_some_and(|id| id <= t)))
        .take(size)
        .cloned()
        .collect();
    Json(page).into_response()
}

async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let a = lock(&state.shared).account.clone();
    let body: Value = json!({
        "id": ACCOUNT_ID,
        "status": "ACTIVE",
        "currency": "USD",
        "cash": a.cash,
        "portfolio_value": a.equity,
        "trade_suspended_by_user": false,
        "trading_blocked": false,
        "transfers_blocked": false,
        "account_blocked": false,
        "created_at": "2018-10-01T13:35:25Z",
        "shorting_enabled": true,
        "multiplier": "2",
        "long_market_value": "0",
        "short_market_value": "0",
        "equity": a.equity,
        "last_equity": a.last_equity,
        "buying_power": a.buying_power,
        "initial_margin": "0",
        "maintenance_margin": "0",
        "sma": "0"
    });
    Json(body).into_response()
}
