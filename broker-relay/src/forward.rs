//! Sending to the ingest functions: signed POSTs (docs/functions.md,
//! "Request signatures") over HTTP or HTTPS, retried while the answer says
//! to retry.
//!
//! - 2xx: done.
//! - 503, 429, 5xx other than 501, a transport error or a timeout: retried
//!   with backoff (0.2 s doubling to 5 s) until [`Retry::Until`] says stop.
//!   The functions' dedupe ids make a retry of something that did publish a
//!   no-op.
//! - Any other status (4xx): refused; retrying the same body cannot help,
//!   so it is logged with the answer and dropped.

use std::time::Duration;

use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use common::backoff::backoff_delay;
use common::config::Secret;
use functions::signature::{now_unix, sign, SIGNATURE_HEADER};
use functions::Function;
use http_body_util::{BodyExt, Full};
use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// One request's time limit (the functions bound their own broker calls at
/// 3 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a send keeps retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Until it succeeds or is refused: trade updates, which must not be lost.
    Forever,
    /// At most this many attempts: price batches (a newer one follows) and
    /// syncs (the next one repeats it).
    Attempts(u32),
}

/// Why a send gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The function refused the body (4xx): it will never be accepted.
    #[error("refused with {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The answer, for the log.
        body: String,
    },
    /// Still failing after the allowed attempts.
    #[error("unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// A client of the functions.
#[derive(Debug, Clone)]
pub struct Functions {
    base_url: String,
    webhook_secret: Secret,
    ingest_secret: Secret,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Functions {
    /// A client of the functions at `base_url`.
    pub fn new(base_url: &str, webhook_secret: Secret, ingest_secret: Secret) -> Self {
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4).build(HttpsConnector::new());
        Self { base_url: base_url.trim_end_matches('/').to_owned(), webhook_secret, ingest_secret, http }
    }

    /// POSTs `body` to `function`'s route, signed with its secret; the
    /// answer's JSON on success.
    pub async fn send(&self, function: Function, body: &Value, retry: Retry) -> Result<Value, SendError> {
        let bytes = Bytes::from(body.to_string());
        let secret = if function.signed_by_webhook_secret() { &self.webhook_secret } else { &self.ingest_secret };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match self.attempt(function.path(), secret, bytes.clone()).await {
                Ok((status, answer)) if status.is_success() => return Ok(answer),
                Ok((status, answer)) if !retryable(status) => {
                    return Err(SendError::Refused { status: status.as_u16(), body: answer.to_string() });
                }
                Ok((status, answer)) => format!("{status}: {answer}"),
                Err(error) => error,
            };
            if matches!(retry, Retry::Attempts(max) if attempts >= max) {
                return Err(SendError::Unavailable { attempts, last });
            }
            let delay = backoff_delay(Duration::from_millis(200), Duration::from_secs(5), attempts, Duration::ZERO);
            tracing::warn!(function = function.name(), attempts, error = %last, ?delay, "Send to the functions failed; retrying.");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, path: &str, secret: &Secret, body: Bytes) -> Result<(StatusCode, Value), String> {
        let signature = sign(secret.expose(), now_unix(), &body);
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base_url))
            .header(header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| format!("transport: {e}"))?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }
}

/// 503 and 429 say "later"; other 5xx (but 501) may be transient too.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}
