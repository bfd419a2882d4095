//! The HTTP face of the functions: one axum [`Router`] that the local server,
//! `lambda_http` (API Gateway v1/v2, ALB) and in-process tests all drive.
//! Each route reads the body under the size limit (413), checks the
//! signature on the raw bytes (401), decodes the JSON (400, naming the
//! field) and calls the function's pure handler.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::deps::Deps;
use crate::error::Error;
use crate::function::Function;
use crate::publish::record;
use crate::signature::{self, Verifier, SIGNATURE_HEADER};
use crate::{accounts, completion, input, prices, sync, webhook};

/// What the router serves, and with what.
#[derive(Debug, Clone)]
pub struct AppState {
    deps: Arc<Deps>,
    webhook: Option<Verifier>,
    ingest: Option<Verifier>,
    functions: Vec<Function>,
}

/// A function was asked for without what it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{function} needs {missing}")]
pub struct MissingDependency {
    /// The function.
    pub function: &'static str,
    /// What it lacks.
    pub missing: &'static str,
}

impl AppState {
    /// Serves `functions` with `deps`. The broker webhook needs the webhook
    /// verifier, the internal routes the ingest verifier. Without a broker
    /// (the no-broker mode of local runs) fills and position syncs answer
    /// 503 `broker_not_configured`; a Lambda function that calls the broker
    /// is refused one step earlier, by its configuration.
    pub fn new(
        deps: Deps,
        functions: &[Function],
        webhook: Option<Verifier>,
        ingest: Option<Verifier>,
    ) -> Result<Self, MissingDependency> {
        for &function in functions {
            let missing = match function.signed_by_webhook_secret() {
                true if webhook.is_none() => Some("the webhook secret"),
                false if ingest.is_none() => Some("the ingest secret"),
                _ => None,
            };
            if let Some(missing) = missing {
                return Err(MissingDependency { function: function.name(), missing });
            }
        }
        Ok(Self { deps: Arc::new(deps), webhook, ingest, functions: functions.to_vec() })
    }

    /// The handlers' dependencies.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }
}

/// The router: `GET /healthz` plus the route of each served function.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new().route("/healthz", get(healthz));
    for &function in &state.functions {
        router = router.route(
            function.path(),
            post(move |State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>| {
                ingest(function, state, headers, body)
            }),
        );
    }
    let limit = state.deps.limits.max_body_bytes;
    router
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.deps.log.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "Health check: event log unavailable.");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response()
        }
    }
}

/// One ingest route: the body checked and decoded ([`signed_json`]), then
/// the function's handler; its outcome as JSON.
#[tracing::instrument(name = "ingest", skip_all, fields(function = function.name()))]
async fn ingest(
    function: Function,
    state: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let verifier = if function.signed_by_webhook_secret() { state.webhook.as_ref() } else { state.ingest.as_ref() };
    let deps = &state.deps;
    Ok(match function {
        Function::BrokerWebhook => {
            let message = signed_json(&state, verifier, &headers, body)?;
            Json(record(function, webhook::handle(message, deps).await?)).into_response()
        }
        Function::QueueCompletions => {
            let completion = signed_json(&state, verifier, &headers, body)?;
            Json(record(function, completion::handle(completion, deps).await?)).into_response()
        }
        Function::PriceTicks => {
            let batch = signed_json(&state, verifier, &headers, body)?;
            Json(record(function, prices::handle(batch, deps).await?)).into_response()
        }
        Function::AccountLinks => {
            let request = signed_json(&state, verifier, &headers, body)?;
            Json(accounts::handle(request, deps).await?).into_response()
        }
        Function::PositionSync => {
            let request = signed_json(&state, verifier, &headers, body)?;
            Json(record(function, sync::handle(request, deps).await?)).into_response()
        }
    })
}

/// Body within the limit, then signature, then JSON, in that order: an
/// unsigned request learns nothing about what the parser would say.
fn signed_json<T: DeserializeOwned>(
    state: &AppState,
    verifier: Option<&Verifier>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Error> {
    let body = body.map_err(|rejection| Error::from_body_rejection(rejection, state.deps.limits.max_body_bytes))?;
    // `AppState::new` guarantees a verifier for every mounted route; refuse
    // rather than serve unsigned if that is ever broken.
    let verifier = verifier.ok_or(Error::Unauthorized(signature::SignatureError::Missing))?;
    let header = headers.get(SIGNATURE_HEADER).map(|value| value.as_bytes());
    verifier.verify(header, &body, signature::now_unix())?;
    input::parse(&body)
}
