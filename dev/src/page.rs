//! The live page and the demo sign-in: `/` and `/assets/*` (plain HTML, CSS
//! and JavaScript, no build step, and `close-codes.json`: the protocol's
//! close table, which the page acts on), `POST /dev/signin?user=…` (sets the
//! `session` cookie), `GET /dev/users`, `GET /dev/me`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::protocol::close::Close;
use edge_gateway::auth::{
    sign_hs256, token_from_headers, JwtConfig, JwtKey, JwtValidator, TokenClaims, SESSION_COOKIE,
};
use serde::Deserialize;

use crate::broker::DEMO_USERS;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// Demo sessions last a day.
const SESSION_SECS: i64 = 86_400;

pub(crate) fn routes(secret: Arc<Vec<u8>>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/assets/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP_JS) }))
        .route("/assets/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }))
        .route("/assets/close-codes.json", get(|| async { Json(Close::ALL.map(Close::entry)) }))
        .route("/dev/users", get(|| async { Json(DEMO_USERS) }))
        .route("/dev/signin", post(signin))
        .route("/dev/me", get(me))
        .with_state(secret)
}

#[derive(Debug, Deserialize)]
struct SignIn {
    user: String,
}

async fn signin(State(secret): State<Arc<Vec<u8>>>, Query(query): Query<SignIn>) -> Response {
    if !DEMO_USERS.contains(&query.user.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown demo user").into_response();
    }
    let claims = TokenClaims::new(query.user.clone(), chrono::Utc::now().timestamp() + SESSION_SECS);
    match sign_hs256(&secret, &claims) {
        Ok(token) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}");
            (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Who the `session` cookie says we are (checked like the gateway does).
async fn me(State(secret): State<Arc<Vec<u8>>>, headers: HeaderMap) -> Response {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let validator = JwtValidator::new(&JwtConfig::new(JwtKey::Hs256(secret.to_vec())));
    let user = match (validator, token_from_headers(cookie, None)) {
        (Ok(validator), Some(token)) => validator.validate(token).ok().map(|claims| claims.user_id.to_string()),
        _ => None,
    };
    match user {
        Some(user) => Json(serde_json::json!({ "user": user })).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
