//! The gateway's REST surface as the client uses it: `GET /api/portfolio`
//! (polling and reconcile) and `GET /api/health` (the feature flag), over a
//! small hyper client with a timeout and a body size limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::event::Channel;
use common::protocol::SnapshotData;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Request, StatusCode, Uri};

use crate::config::{ClientConfig, HEALTH_PATH, PORTFOLIO_PATH};
use crate::error::ClientError;
use crate::state::PortfolioState;

/// Largest REST body read, bytes; a portfolio snapshot is far smaller.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a REST request gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RestError {
    /// 401 or 403: the credentials are refused.
    #[error("credentials refused")]
    Unauthorized,
    /// Another non-success status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Connecting, sending or reading failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// No complete answer within the request timeout.
    #[error("request timed out")]
    TimedOut,
    /// The body is not the expected JSON.
    #[error("unexpected body: {0}")]
    Decode(String),
}

/// The body of `GET /api/portfolio`: `{epoch, seq, positions, orders,
/// account, trades}`, trades oldest first like a `snapshot` message.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RestPortfolio {
    #[serde(default)]
    epoch: Option<String>,
    seq: u64,
    #[serde(flatten)]
    data: SnapshotData,
}

impl RestPortfolio {
    /// The state this body describes, limited to `channels`.
    pub(crate) fn into_state(self, channels: &[Channel], max_trades: usize) -> PortfolioState {
        let mut state = PortfolioState::from_snapshot(self.epoch, self.seq, self.data, max_trades);
        state.retain_channels(channels);
        state
    }
}

#[derive(Debug, Deserialize)]
struct Health {
    #[serde(default)]
    features: Features,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    #[serde(default = "enabled")]
    realtime_portfolio: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self { realtime_portfolio: enabled() }
    }
}

/// A gateway that does not mention the flag has real-time on.
fn enabled() -> bool {
    true
}

/// The REST client of one [`crate::ClientHandle`]; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Rest {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    portfolio: Uri,
    health: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    timeout: Duration,
}

impl Rest {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.request_timeout));
        Ok(Self {
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            portfolio: config.http_uri(PORTFOLIO_PATH)?,
            health: config.http_uri(HEALTH_PATH)?,
            headers: config.headers()?.into(),
            timeout: config.request_timeout,
        })
    }

    /// `GET /api/portfolio`.
    pub(crate) async fn portfolio(&self) -> Result<RestPortfolio, RestError> {
        let (status, body) = self.get(&self.portfolio).await?;
        if !status.is_success() {
            return Err(RestError::Status(status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| RestError::Decode(e.to_string()))
    }

    /// Whether `GET /api/health` says real-time is on for this user. A
    /// degraded gateway (503) still answers the flag.
    pub(crate) async fn realtime_enabled(&self) -> Result<bool, RestError> {
        let (status, body) = self.get(&self.health).await?;
        if !status.is_success() && status != StatusCode::SERVICE_UNAVAILABLE {
            return Err(RestError::Status(status.as_u16()));
        }
        let health: Health = serde_json::from_slice(&body).map_err(|e| RestError::Decode(e.to_string()))?;
        Ok(health.features.realtime_portfolio)
    }

    /// One authenticated GET; 401/403 become [`RestError::Unauthorized`].
    async fn get(&self, uri: &Uri) -> Result<(StatusCode, Bytes), RestError> {
        let mut request =
            Request::get(uri.clone()).body(Empty::new()).map_err(|e| RestError::Transport(e.to_string()))?;
        for (name, value) in self.headers.iter() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| RestError::Transport(e.to_string()))?;
            let status = response.status();
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Err(RestError::Unauthorized);
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| RestError::Transport(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| RestError::TimedOut)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_body_decodes_into_a_state() {
        let body = r#"{"epoch":"e1","seq":3,"positions":[],"orders":[],"account":null,"trades":[]}"#;
        let rest: RestPortfolio = serde_json::from_str(body).unwrap();
        let state = rest.into_state(&Channel::ALL, 50);
        assert_eq!((state.epoch.as_deref(), state.seq), (Some("e1"), 3));
        // A user without history has no epoch yet.
        let rest: RestPortfolio = serde_json::from_str(r#"{"epoch":null,"seq":0,"positions":[]}"#).unwrap();
        assert_eq!(rest.into_state(&Channel::ALL, 50), PortfolioState::default());
    }

    #[test]
    fn health_reads_the_flag_and_defaults_to_on() {
        let off: Health = serde_json::from_str(r#"{"status":"ok","features":{"realtimePortfolio":false}}"#).unwrap();
        assert!(!off.features.realtime_portfolio);
        let silent: Health = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert!(silent.features.realtime_portfolio);
    }
}
