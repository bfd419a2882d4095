//! The REST surface: the portfolio snapshot for clients that poll, and the
//! health check that tells clients whether to use the socket.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::admit::authenticate;
use crate::marks::value_snapshot;
use crate::state::AppState;
use crate::stats;

/// `GET /api/portfolio`: `{epoch, seq, positions, orders, account, trades}`,
/// positions and account valued at the latest marks.
pub(crate) async fn portfolio(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let claims = match authenticate(&state, &headers) {
        Ok(claims) => claims,
        Err(refusal) => return error_response(refusal.status(), refusal.message()),
    };
    let snapshot = match state.log.snapshot(&claims.user_id).await {
        Ok(mut snapshot) => value_snapshot(&*state.log, &mut snapshot).await.map(|()| snapshot),
        Err(error) => Err(error),
    };
    match snapshot {
        Ok(snapshot) => Json(json!({
            "epoch": snapshot.epoch,
            "seq": snapshot.seq,
            "positions": snapshot.positions,
            "orders": snapshot.orders,
            "account": snapshot.account,
            "trades": snapshot.trades.iter().rev().collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(error) => {
            tracing::warn!(user = %claims.user_id, %error, "Snapshot read failed.");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "Portfolio temporarily unavailable")
        }
    }
}

/// `GET /api/health`: liveness plus the feature flag clients follow —
/// for the signed-in user when a valid token comes along (rollout), else
/// the global flag.
pub(crate) async fn health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let realtime = match authenticate(&state, &headers) {
        Ok(claims) => state.config.rollout.allows(&claims.user_id),
        Err(_) => state.config.rollout.enabled,
    };
    let redis_ok = state.log.ping().await.is_ok();
    let status = if redis_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if redis_ok { "ok" } else { "degraded" },
        "features": { "realtimePortfolio": realtime },
        "eventLog": if redis_ok { "up" } else { "down" },
    });
    (status, Json(body)).into_response()
}

/// A refusal's JSON body; a 401 names the scheme to authenticate with
/// (RFC 9110 §11.6.1).
fn error_response(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": { "message": message } }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics() -> Response {
    let body = stats::prometheus().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `GET /api/admin/websocket-stats`: the design note's figures, for admins
/// only (the `ADMIN_TOKEN` bearer, or a JWT with `admin: true`).
/// No credentials, or ones that are not valid: 401; a valid user's token
/// without `admin`: 403.
pub(crate) async fn admin_stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !is_admin_token(&state, &headers) {
        match authenticate(&state, &headers) {
            Ok(claims) if claims.admin => {}
            Ok(_) => return error_response(StatusCode::FORBIDDEN, "Admins only"),
            Err(refusal) => return error_response(refusal.status(), refusal.message()),
        }
    }
    Json(state.stats.admin_json(state.hubs.connections())).into_response()
}

/// Whether the bearer is the configured `ADMIN_TOKEN`.
fn is_admin_token(state: &AppState, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    if let (Some(expected), Some(given)) = (&state.config.admin_token, bearer) {
        use sha2::Digest;
        // Comparing digests keeps the comparison's timing independent of
        // how much of the token matched.
        return sha2::Sha256::digest(expected.expose()) == sha2::Sha256::digest(given.as_bytes());
    }
    false
}
