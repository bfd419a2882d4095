//! The one error type of the functions and its one mapping to an HTTP status
//! and the JSON error body `{"error": {"code", "message", "field"}}`. SQS
//! deliveries use the same type: any error reports the message as failed.
//!
//! Clients get a short, safe message; details (Redis and broker errors) go
//! to the log only.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use broker::BrokerError;
use event_log::LogError;
use serde::Serialize;

use crate::signature::SignatureError;

/// Why a function refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input does not parse or breaks a rule; `field` names where.
    #[error("invalid input{}: {message}", field.as_deref().map(|f| format!(" at {f}")).unwrap_or_default())]
    BadRequest {
        /// JSON path of the offending field (`ticks[3].price`), if known.
        field: Option<String>,
        /// What is wrong, safe to show.
        message: String,
    },
    /// The body is larger than the configured limit.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The signature is missing, malformed, stale or wrong.
    #[error("signature rejected: {0}")]
    Unauthorized(#[from] SignatureError),
    /// A signed webhook for a broker account that no user has linked.
    #[error("broker account is not linked to a user")]
    UnknownAccount,
    /// A link request for a broker account that another user has linked.
    #[error("broker account is linked to another user")]
    AccountLinked,
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The broker API failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The broker API did not answer within the configured time.
    #[error("broker did not answer within {0:?}")]
    BrokerTimeout(Duration),
    /// This process runs without a broker (no-broker mode: local HTTP
    /// without Alpaca keys), and the request needs one (a fill).
    #[error("no broker is configured in this process")]
    NoBroker,
    /// No route here.
    #[error("no such route")]
    NotFound,
    /// The route exists, with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// The JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_request`, `unauthorized`, …).
    pub code: String,
    /// Human-readable and safe: no internal details.
    pub message: String,
    /// The offending input field, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Error {
    /// A bad field, named by its JSON path.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadRequest { field: Some(field.into()), message: message.into() }
    }

    /// The body could not be read: too large (413) or broken (400).
    pub fn from_body_rejection(rejection: BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge { limit }
        } else {
            Error::BadRequest { field: None, message: "the request body could not be read".into() }
        }
    }

    /// The one mapping to an HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::UnknownAccount => StatusCode::UNPROCESSABLE_ENTITY,
            Error::AccountLinked => StatusCode::CONFLICT,
            Error::Log(LogError::Unavailable(_))
            | Error::Broker(BrokerError::Unavailable(_))
            | Error::BrokerTimeout(_)
            | Error::NoBroker => StatusCode::SERVICE_UNAVAILABLE,
            Error::Broker(BrokerError::Refused(_) | BrokerError::Malformed(_)) => StatusCode::BAD_GATEWAY,
            Error::Log(LogError::InvalidEvent(_) | LogError::Corrupt(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable code clients and dashboards match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "invalid_request",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Unauthorized(_) => "unauthorized",
            Error::UnknownAccount => "unknown_account",
            Error::AccountLinked => "account_linked",
            Error::Log(LogError::Unavailable(_)) => "event_log_unavailable",
            Error::Broker(BrokerError::Unavailable(_)) | Error::BrokerTimeout(_) => "broker_unavailable",
            Error::NoBroker => "broker_not_configured",
            Error::Broker(_) => "broker_error",
            Error::Log(_) => "internal",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// Whether the sender should retry the same request later.
    pub fn is_retryable(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }

    /// The body sent to the client: safe text only.
    pub fn body(&self) -> ErrorBody {
        let (message, field) = match self {
            Error::BadRequest { field, message } => (message.clone(), field.clone()),
            Error::PayloadTooLarge { limit } => (format!("the request body is larger than {limit} bytes"), None),
            // Which check failed is for the log: telling helps forgers.
            Error::Unauthorized(_) => ("missing or invalid signature".to_owned(), None),
            Error::UnknownAccount => {
                ("the broker account is not linked to a user".to_owned(), Some("account_id".to_owned()))
            }
            Error::AccountLinked => (
                "the broker account is linked to another user; that link must be removed first".to_owned(),
                Some("accountId".to_owned()),
            ),
            Error::Log(LogError::Unavailable(_)) => ("the event store is unavailable; retry later".to_owned(), None),
            Error::Broker(BrokerError::Unavailable(_)) | Error::BrokerTimeout(_) => {
                ("the broker API is unavailable; retry later".to_owned(), None)
            }
            Error::Broker(_) => ("the broker API answered with an error".to_owned(), None),
            Error::NoBroker => (
                "no broker is configured here (no-broker mode: APCA_API_KEY_ID is not set), so fills cannot be \
                 processed; set the Alpaca keys and restart"
                    .to_owned(),
                None,
            ),
            Error::Log(_) => ("internal error".to_owned(), None),
            Error::NotFound => ("no such route".to_owned(), None),
            Error::MethodNotAllowed => ("method not allowed on this route".to_owned(), None),
        };
        ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message, field } }
    }

    /// Logs the error at the level its status deserves.
    pub fn log(&self) {
        let status = self.status().as_u16();
        let code = self.code();
        match status {
            500.. if status != 503 => tracing::error!(status, code, error = %self, "Request failed."),
            503 | 401 | 502 => tracing::warn!(status, code, error = %self, "Request refused."),
            _ => tracing::info!(status, code, error = %self, "Request refused."),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), Json(self.body())).into_response();
        if self.is_retryable() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_one_status_and_a_safe_body() {
        let cases = [
            (Error::field("ticks[0].price", "must be positive"), 400, "invalid_request"),
            (Error::PayloadTooLarge { limit: 10 }, 413, "payload_too_large"),
            (Error::Unauthorized(SignatureError::Mismatch), 401, "unauthorized"),
            (Error::UnknownAccount, 422, "unknown_account"),
            (Error::AccountLinked, 409, "account_linked"),
            (Error::Log(LogError::Unavailable("redis://secret@host down".into())), 503, "event_log_unavailable"),
            (Error::Broker(BrokerError::Unavailable("reset".into())), 503, "broker_unavailable"),
            (Error::BrokerTimeout(Duration::from_secs(1)), 503, "broker_unavailable"),
            (Error::Broker(BrokerError::Refused("401".into())), 502, "broker_error"),
            (Error::NoBroker, 503, "broker_not_configured"),
            (Error::Log(LogError::Corrupt("bad json".into())), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            let body = error.body();
            assert_eq!(body.error.code, code);
            assert!(!body.error.message.contains("secret") && !body.error.message.contains("bad json"));
        }
        let body = serde_json::to_value(Error::field("ticks[0].price", "must be positive").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_request", "message": "must be positive", "field": "ticks[0].price"}})
        );
    }
}
