//! A fake Alpaca trading API (axum) on a free loopback port: answers
//! `GET /v2/positions/{symbol}` and `GET /v2/account` from state the test
//! sets, checks the API key headers, and can be switched to hang (so callers
//! hit their timeouts) or to fail with 503. Answers use Alpaca's JSON field
//! names, so the real `apca` client reads them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::sync::lock;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

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
}

#[derive(Debug, Clone)]
struct AppState {
    shared: Arc<Mutex<Shared>>,
    requests: Arc<AtomicUsize>,
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
            })),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/v2/positions/{symbol}", get(position))
            .route("/v2/account", get(account))
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

    /// Switches how the fake answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Requests received so far (any route, any answer).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.state.shared)
    }
}

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
    let side = if p.qty.starts_with('-') { "short" } else { "long" };
    Json(json!({
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
    }))
    .into_response()
}

async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(answer) = gate(&state, &headers).await {
        return answer;
    }
    let a = lock(&state.shared).account.clone();
    let body: Value = json!({
        "id": "904837e3-3b76-47ec-b432-046db621571b",
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
