//! The dashboard and dev mode's own endpoints: `/` and `/assets/*` (the
//! React dashboard, built by `build.rs` from `clients/ts/apps/dashboard`),
//! `POST /dev/signin?user=…` (sets the `session` cookie), `GET /dev/users`,
//! `GET /dev/me` (`{"user": …}`, null when signed out), and `POST /dev/orders` (the dashboard's order ticket: the
//! simulator runs the order through the work queue and the broker webhook).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::event::{OrderSide, OrderType};
use edge_gateway::auth::{
    sign_hs256, token_from_headers, JwtConfig, JwtKey, JwtValidator, TokenClaims, SESSION_COOKIE,
};
use functions::input::{check_id, check_positive, parse};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::broker::{DEMO_USERS, SYMBOLS};
use crate::simulator::{OrderRequest, Simulator};

include!(concat!(env!("OUT_DIR"), "/dashboard.rs"));

/// Served at `/` when `build.rs` found no npm to build the dashboard with.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Portfolio — dashboard not built</title>\
<h1>The dashboard was not built</h1><p>Building <code>portfolio-dev</code> builds the React dashboard \
(<code>clients/ts/apps/dashboard</code>) with npm, and npm was not found. Install Node ≥ 20.19 with npm and \
build again, or set <code>PORTFOLIO_DASHBOARD_DIR</code> to a built dashboard (docs/dev-mode.md). The \
gateway works without it: <a href=/api/health>/api/health</a>.</p>";

/// Demo sessions last a day.
const SESSION_SECS: i64 = 86_400;

/// Longest client order id (the work queue's `orderId` rule).
const MAX_ORDER_ID_LEN: usize = 128;

#[derive(Debug, Clone)]
pub(crate) struct PageState {
    pub(crate) secret: Arc<Vec<u8>>,
    pub(crate) simulator: Arc<Simulator>,
}

pub(crate) fn routes(state: PageState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*file}", get(asset))
        .route("/dev/users", get(|| async { Json(DEMO_USERS) }))
        .route("/dev/signin", post(signin))
        .route("/dev/me", get(me))
        .route("/dev/orders", post(order))
        .with_state(state)
}

fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    DASHBOARD.iter().find(|(p, _, _)| *p == path).map(|(_, kind, bytes)| (*kind, *bytes))
}

async fn index() -> Response {
    match file("/index.html") {
        Some((kind, bytes)) => {
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
        }
        None => Html(NOT_BUILT).into_response(),
    }
}

/// Vite names assets by their content's hash: they never change.
async fn asset(Path(name): Path<String>) -> Response {
    match file(&format!("/assets/{name}")) {
        Some((kind, bytes)) => {
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], bytes)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct SignIn {
    user: String,
}

async fn signin(State(state): State<PageState>, Query(query): Query<SignIn>) -> Response {
    if !DEMO_USERS.contains(&query.user.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown demo user").into_response();
    }
    let claims = TokenClaims::new(query.user.clone(), chrono::Utc::now().timestamp() + SESSION_SECS);
    match sign_hs256(&state.secret, &claims) {
        Ok(token) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}");
            (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The user the `session` cookie names, checked like the gateway does.
fn signed_in(secret: &[u8], headers: &HeaderMap) -> Option<String> {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let validator = JwtValidator::new(&JwtConfig::new(JwtKey::Hs256(secret.to_vec()))).ok()?;
    let token = token_from_headers(cookie, None)?;
    validator.validate(token).ok().map(|claims| claims.user_id.to_string())
}

/// `{"user": "alice"}`, or `{"user": null}` when signed out (a 200 either
/// way: asking is not an error, and browsers log every 4xx as one).
async fn me(State(state): State<PageState>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user": signed_in(&state.secret, &headers) }))
}

/// The order ticket's body (the React package's `OrderTicket`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Ticket {
    client_order_id: String,
    symbol: String,
    side: OrderSide,
    #[serde(rename = "type")]
    order_type: OrderType,
    #[serde(with = "common::decimal::str")]
    qty: Decimal,
    #[serde(default, with = "common::decimal::str_option")]
    limit_price: Option<Decimal>,
}

/// Checks a ticket and hands it to the simulator; the stream then carries
/// its `order_update`s with `orderId` = the ticket's `clientOrderId`.
async fn order(State(state): State<PageState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(user) = signed_in(&state.secret, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let request = match ticket(&body, user) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let order_id = request.order_id.clone();
    state.simulator.clone().spawn_order(request);
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "orderId": order_id }))).into_response()
}

fn ticket(body: &[u8], user: String) -> Result<OrderRequest, functions::Error> {
    let ticket: Ticket = parse(body)?;
    check_id("clientOrderId", &ticket.client_order_id, MAX_ORDER_ID_LEN)?;
    if !SYMBOLS.iter().any(|(symbol, _)| *symbol == ticket.symbol) {
        let known: Vec<&str> = SYMBOLS.iter().map(|(symbol, _)| *symbol).collect();
        return Err(functions::Error::field("symbol", format!("dev mode trades {}", known.join(", "))));
    }
    check_positive("qty", Some(ticket.qty))?;
    let limit = match (ticket.order_type, ticket.limit_price) {
        (OrderType::Market, None) => None,
        (OrderType::Limit, Some(price)) => {
            check_positive("limitPrice", Some(price))?;
            Some(price)
        }
        (OrderType::Market, Some(_)) => return Err(functions::Error::field("limitPrice", "a market order has none")),
        (OrderType::Limit, None) => return Err(functions::Error::field("limitPrice", "a limit order needs one")),
        _ => return Err(functions::Error::field("type", "dev mode simulates market and limit orders")),
    };
    Ok(OrderRequest {
        user,
        order_id: Some(ticket.client_order_id),
        symbol: ticket.symbol,
        side: ticket.side,
        qty: ticket.qty,
        limit,
    })
}
