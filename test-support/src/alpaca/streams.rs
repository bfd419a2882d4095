//! The fake's streams and executions.
//!
//! - Trade updates (`/stream`), Alpaca's protocol: the client sends
//!   `{"action":"auth","key","secret"}` and gets
//!   `{"stream":"authorization","data":{"status":"authorized",…}}`, sends
//!   `{"action":"listen","data":{"streams":["trade_updates"]}}` and gets
//!   `{"stream":"listening",…}`; then every trade update arrives as
//!   `{"stream":"trade_updates","data":{…}}`. Frames are binary, as
//!   Alpaca's are.
//! - Market data (`/v2/iex`): `[{"T":"success","msg":"connected"}]` on
//!   connect; auth answers `[{"T":"success","msg":"authenticated"}]`;
//!   `{"action":"subscribe","trades":[…]}` (and `unsubscribe`) answer
//!   `[{"T":"subscription","trades":[…],"quotes":[],"bars":[]}]`; prints
//!   arrive as `[{"T":"t","S":symbol,"p":price,"s":size,"t":time}]`, the
//!   price a JSON number as Alpaca sends it.
//!
//! [`super::FakeAlpaca::drop_streams`] cuts every open connection without a
//! close frame (as a network failure does), and
//! [`super::FakeAlpaca::set_streams_up`] refuses new ones with 503.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::sync::lock;
use serde_json::{json, Value};

use super::{AppState, FakeAlpaca, FakePosition, KEY_ID, SECRET};

/// One execution to play: an order (created on its first fill) filled by
/// `qty` at `price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFill {
    /// Alpaca's order id: a UUID, as Alpaca's are (apca asks for it so).
    pub order_id: String,
    /// The app's id of the order.
    pub client_order_id: String,
    /// The symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// The order's quantity.
    pub order_qty: String,
    /// This execution's quantity.
    pub qty: String,
    /// This execution's price.
    pub price: String,
}

impl FakeFill {
    /// A market order of `qty` filled at once at `price`; the order id is
    /// derived from `n`, so tests name orders by number.
    pub fn market(n: u32, symbol: &str, side: &str, qty: &str, price: &str) -> Self {
        Self {
            order_id: format!("00000000-0000-4000-8000-{n:012}"),
            client_order_id: format!("order-{n}"),
            symbol: symbol.to_owned(),
            side: side.to_owned(),
            order_qty: qty.to_owned(),
            qty: qty.to_owned(),
            price: price.to_owned(),
        }
    }
}

impl FakeAlpaca {
    /// Plays one execution: the order's filled quantity and average price,
    /// a fill activity, the position (long positions: a buy adds at the
    /// weighted entry price, a sell reduces, zero closes) and the account's
    /// cash. The trade update goes to the listening trade streams, if any;
    /// it is returned as sent.
    pub fn fill(&self, fill: &FakeFill) -> Value {
        let update = {
            let mut shared = self.lock();
            shared.executions += 1;
            let n = shared.executions;
            let now = fake_time(n);
            let (qty, price) = (number(&fill.qty), number(&fill.price));
            let key = fill.order_id.replace('-', "");
            let order = shared.orders.entry(key).or_insert_with(|| new_order(fill, &now));
            let before = number(order["filled_qty"].as_str().unwrap_or("0"));
            let average = number(order["filled_avg_price"].as_str().unwrap_or("0"));
            let filled = before + qty;
            let leaves = number(&fill.order_qty) - filled;
            let event = if leaves > 0.0 { "partial_fill" } else { "fill" };
            order["filled_qty"] = json!(text(filled));
            order["filled_avg_price"] = json!(text((average * before + price * qty) / filled));
            order["status"] = json!(if leaves > 0.0 { "partially_filled" } else { "filled" });
            order["updated_at"] = json!(now);
            order["filled_at"] = json!(now);
            let order = order.clone();

            let position_qty = apply(&mut shared.positions, fill, qty, price);
            let cash = number(&shared.account.cash) + if fill.side == "buy" { -qty * price } else { qty * price };
            shared.account.cash = format!("{cash:.2}");
            let execution_id = format!("00000000-0000-4000-9000-{n:012}");
            shared.activities.push(json!({
                "activity_type": "FILL",
                "id": format!("{:017}::{execution_id}", 20_260_101_000_000_000_u64 + n),
                "cum_qty": text(filled),
                "leaves_qty": text(leaves.max(0.0)),
                "price": fill.price,
                "qty": fill.qty,
                "side": fill.side,
                "symbol": fill.symbol,
                "transaction_time": now,
                "order_id": fill.order_id,
                "type": event,
            }));
            json!({
                "event": event,
                "execution_id": execution_id,
                "order": order,
                "position_qty": text(position_qty),
                "price": fill.price,
                "qty": fill.qty,
                "timestamp": now,
            })
        };
        let message = json!({"stream": "trade_updates", "data": update});
        let _ = self.state.trade_updates.send(message.to_string());
        update
    }

    /// Sends a trade update as given (any event) to the listening streams.
    pub fn push_trade_update(&self, data: Value) {
        let _ = self.state.trade_updates.send(json!({"stream": "trade_updates", "data": data}).to_string());
    }

    /// A market-data print of `symbol` at `price` (a JSON number, as Alpaca
    /// sends it) to the connections subscribed to its trades.
    pub fn print(&self, symbol: &str, price: &str, at: &str) {
        let price: Value = serde_json::from_str(price).expect("a JSON number");
        let _ = self.state.prints.send(json!({"T": "t", "S": symbol, "i": 1, "x": "V", "p": price, "s": 100, "t": at}));
    }

    /// Cuts every open stream connection, without a close frame.
    pub fn drop_streams(&self) {
        self.state.drops.send_modify(|n| *n += 1);
    }

    /// Whether the streams accept new connections (503 otherwise).
    pub fn set_streams_up(&self, up: bool) {
        self.lock().streams_up = up;
    }

    /// Trade streams authenticated and listening now.
    pub fn trade_listeners(&self) -> usize {
        self.state.listening.load(Ordering::SeqCst)
    }

    /// Trade stream sessions that reached listening since the start.
    pub fn trade_sessions(&self) -> usize {
        self.state.sessions.load(Ordering::SeqCst)
    }

    /// Market-data connections authenticated now.
    pub fn data_connections(&self) -> usize {
        self.state.data_connections.load(Ordering::SeqCst)
    }

    /// Symbols some market-data connection subscribes to the trades of.
    pub fn subscribed_symbols(&self) -> BTreeSet<String> {
        self.lock().subscriptions.values().flatten().cloned().collect()
    }
}

/// The fake's clock for executions: real time, one millisecond per
/// execution later than the previous at least, RFC 3339 in UTC.
fn fake_time(n: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    let millis = now.as_millis() as i64 + n as i64;
    chrono::DateTime::from_timestamp_millis(millis).expect("a time").format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The RFC 3339 time of an activity, for `after` filters.
pub(super) fn time_of(activity: &Value) -> chrono::DateTime<chrono::Utc> {
    parse_time(activity["transaction_time"].as_str().unwrap_or_default()).unwrap_or_default()
}

pub(super) fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&chrono::Utc))
}

fn new_order(fill: &FakeFill, now: &str) -> Value {
    json!({
        "id": fill.order_id,
        "client_order_id": fill.client_order_id,
        "status": "new",
        "created_at": now,
        "updated_at": now,
        "submitted_at": now,
        "filled_at": null,
        "expired_at": null,
        "canceled_at": null,
        "asset_class": "us_equity",
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": fill.symbol,
        "qty": fill.order_qty,
        "filled_qty": "0",
        "type": "market",
        "order_type": "market",
        "order_class": "",
        "side": fill.side,
        "time_in_force": "day",
        "limit_price": null,
        "stop_price": null,
        "trail_price": null,
        "trail_percent": null,
        "filled_avg_price": null,
        "extended_hours": false,
        "legs": null
    })
}

/// The position after a fill; returns its signed quantity. Test amounts
/// are small decimals, so `f64` arithmetic is exact enough here (the fake
/// only; the product never does money in floats).
fn apply(
    positions: &mut std::collections::HashMap<String, FakePosition>,
    fill: &FakeFill,
    qty: f64,
    price: f64,
) -> f64 {
    let (held, entry) =
        positions.get(&fill.symbol).map(|p| (number(&p.qty), number(&p.avg_entry_price))).unwrap_or((0.0, 0.0));
    let after = if fill.side == "buy" { held + qty } else { held - qty };
    if after == 0.0 {
        positions.remove(&fill.symbol);
    } else {
        let entry = if fill.side == "buy" && after > 0.0 { (held * entry + qty * price) / after } else { entry };
        positions.insert(
            fill.symbol.clone(),
            FakePosition {
                qty: text(after),
                avg_entry_price: format!("{entry:.2}"),
                current_price: fill.price.clone(),
            },
        );
    }
    after
}

fn number(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// Up to four decimals, trailing zeros dropped.
fn text(value: f64) -> String {
    let fixed = format!("{value:.4}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `GET /stream`: the trade-updates stream.
pub(super) async fn trade_stream(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    if !lock(&state.shared).streams_up {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    upgrade.on_upgrade(move |socket| trade_session(socket, state))
}

async fn trade_session(mut socket: WebSocket, state: AppState) {
    let mut drops = state.drops.subscribe();
    drops.mark_unchanged();
    let Some(auth) = next_json(&mut socket).await else { return };
    let authorized = auth["action"] == "auth" && auth["key"] == KEY_ID && auth["secret"] == SECRET;
    let status = if authorized { "authorized" } else { "unauthorized" };
    let reply = json!({"stream": "authorization", "data": {"status": status, "action": "authenticate"}});
    if send(&mut socket, reply).await.is_err() || !authorized {
        return;
    }
    let Some(listen) = next_json(&mut socket).await else { return };
    if listen["action"] != "listen" {
        return;
    }
    // Subscribed before "listening" is answered: nothing sent after that is missed.
    let mut updates = state.trade_updates.subscribe();
    if send(&mut socket, json!({"stream": "listening", "data": {"streams": ["trade_updates"]}})).await.is_err() {
        return;
    }
    state.listening.fetch_add(1, Ordering::SeqCst);
    state.sessions.fetch_add(1, Ordering::SeqCst);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(text) => if socket.send(Message::Binary(text.into_bytes().into())).await.is_err() { break },
                Err(_) => break,
            },
            _ = drops.changed() => break,
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.listening.fetch_sub(1, Ordering::SeqCst);
    // Dropped without a close frame: what a cut connection looks like.
}

/// `GET /v2/iex`: the market-data stream.
pub(super) async fn market_data(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    if !lock(&state.shared).streams_up {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    upgrade.on_upgrade(move |socket| data_session(socket, state))
}

async fn data_session(mut socket: WebSocket, state: AppState) {
    let mut drops = state.drops.subscribe();
    drops.mark_unchanged();
    if send(&mut socket, json!([{"T": "success", "msg": "connected"}])).await.is_err() {
        return;
    }
    let Some(auth) = next_json(&mut socket).await else { return };
    if auth["action"] != "auth" || auth["key"] != KEY_ID || auth["secret"] != SECRET {
        let _ = send(&mut socket, json!([{"T": "error", "code": 402, "msg": "auth failed"}])).await;
        return;
    }
    if send(&mut socket, json!([{"T": "success", "msg": "authenticated"}])).await.is_err() {
        return;
    }
    let id = {
        let mut shared = lock(&state.shared);
        shared.connections += 1;
        let id = shared.connections;
        shared.subscriptions.insert(id, BTreeSet::new());
        id
    };
    state.data_connections.fetch_add(1, Ordering::SeqCst);
    let mut prints = state.prints.subscribe();
    loop {
        tokio::select! {
            print = prints.recv() => match print {
                Ok(print) => {
                    let wanted = lock(&state.shared).subscriptions.get(&id)
                        .is_some_and(|s| print["S"].as_str().is_some_and(|symbol| s.contains(symbol)));
                    if wanted && send(&mut socket, json!([print])).await.is_err() { break }
                }
                Err(broadcast_error) => if matches!(broadcast_error, tokio::sync::broadcast::error::RecvError::Closed) { break },
            },
            _ = drops.changed() => break,
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let Ok(request) = serde_json::from_str::<Value>(text.as_str()) else { break };
                    let symbols: Vec<String> = request["trades"].as_array().into_iter().flatten()
                        .filter_map(|s| s.as_str().map(str::to_owned)).collect();
                    let now = {
                        let mut shared = lock(&state.shared);
                        let subscribed = shared.subscriptions.entry(id).or_default();
                        match request["action"].as_str() {
                            Some("subscribe") => subscribed.extend(symbols),
                            Some("unsubscribe") => subscribed.retain(|s| !symbols.contains(s)),
                            _ => {}
                        }
                        subscribed.iter().cloned().collect::<Vec<_>>()
                    };
                    let reply = json!([{"T": "subscription", "trades": now, "quotes": [], "bars": []}]);
                    if send(&mut socket, reply).await.is_err() { break }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    lock(&state.shared).subscriptions.remove(&id);
    state.data_connections.fetch_sub(1, Ordering::SeqCst);
}

async fn next_json(socket: &mut WebSocket) -> Option<Value> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Binary(bytes)) => return serde_json::from_slice(&bytes).ok(),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

async fn send(socket: &mut WebSocket, value: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(value.to_string().into())).await
}
