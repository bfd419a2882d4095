//! The client's settings: where the gateway is, how to authenticate, which
//! channels to follow, and every interval of the reconnect, polling,
//! reconcile and heartbeat machinery (defaults in [`defaults`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use common::event::Channel;
use common::protocol::ServerMessage;
use common::protocol::SESSION_COOKIE;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::error::ClientError;

/// The gateway's WebSocket route.
pub const WS_PATH: &str = "/ws/portfolio";
/// The gateway's REST snapshot route.
pub const PORTFOLIO_PATH: &str = "/api/portfolio";
/// The gateway's health route (carries the feature flag).
pub const HEALTH_PATH: &str = "/api/health";

/// The defaults of the design note (reconnect, polling, reconcile) and of
/// the gateway's heartbeat.
pub mod defaults {
    use std::time::Duration;

    /// First reconnect delay; it doubles per failed attempt.
    pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
    /// Longest reconnect delay, jitter included.
    pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
    /// Random delay added to each backoff step (uniform in `0..jitter`).
    pub const BACKOFF_JITTER: Duration = Duration::from_secs(1);
    /// Random delay before reconnecting after a `1012` restart close.
    pub const RESTART_JITTER: Duration = Duration::from_millis(250);
    /// Consecutive failed attempts before the client also polls REST.
    pub const MAX_FAILED_ATTEMPTS: u32 = 10;
    /// How often REST is polled while the socket is down or disabled.
    pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
    /// How often a live client checks its state against REST.
    pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(60);
    /// How often a live client sends an app-level `ping`.
    pub const PING_INTERVAL: Duration = Duration::from_secs(15);
    /// Silence (no message, no `pong`) after which the link counts as dead.
    pub const PONG_TIMEOUT: Duration = Duration::from_secs(30);
    /// Longest wait for the socket to open and answer `subscribe`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longest wait for a REST answer.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Recent trades kept, the same number as the gateway's snapshot.
    pub const MAX_TRADES: usize = common::protocol::SNAPSHOT_TRADES;
}

/// How the client proves who it is. The token is never logged.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <jwt>` (native clients).
    Bearer(String),
    /// `Cookie: session=<jwt>` (what a browser sends).
    Cookie(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credentials::Cookie(_) => f.write_str("Cookie([redacted])"),
        }
    }
}

impl Credentials {
    /// The header that carries the token.
    fn header(&self) -> Result<(HeaderName, HeaderValue), ClientError> {
        let (name, value) = match self {
            Credentials::Bearer(token) => (AUTHORIZATION, format!("Bearer {token}")),
            Credentials::Cookie(token) => (COOKIE, format!("{SESSION_COOKIE}={token}")),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| ClientError::InvalidCredentials)?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// Called with every message the socket delivers, before it is merged into
/// the state (the bench tool measures latency with it). Keep it cheap: it
/// runs on the receive path.
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn(&ServerMessage) + Send + Sync>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer(..)")
    }
}

/// Everything [`crate::Client::connect`] needs. Build it with
/// [`ClientConfig::new`], then adjust the public fields (tests use
/// millisecond intervals).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    endpoint: Endpoint,
    /// The token and how to send it.
    pub credentials: Credentials,
    /// The channels to subscribe to; default all four.
    pub channels: Vec<Channel>,
    /// Sent as `Origin` when set (what a browser would send).
    pub origin: Option<String>,
    /// First reconnect delay; doubles per failed attempt.
    pub backoff_base: Duration,
    /// Longest reconnect delay, jitter included.
    pub backoff_cap: Duration,
    /// Upper bound of the random delay added to each backoff step.
    pub backoff_jitter: Duration,
    /// Upper bound of the random delay before reconnecting after `1012`.
    pub restart_jitter: Duration,
    /// Consecutive failed attempts before falling back to REST polling.
    pub max_failed_attempts: u32,
    /// REST polling period while the socket is down or disabled.
    pub poll_interval: Duration,
    /// Period of the live client's check against the REST snapshot.
    pub reconcile_interval: Duration,
    /// Period of the app-level `ping`.
    pub ping_interval: Duration,
    /// Silence after which the link counts as dead and is reopened.
    pub pong_timeout: Duration,
    /// Longest wait for the socket to open and answer `subscribe`.
    pub connect_timeout: Duration,
    /// Longest wait for a REST answer.
    pub request_timeout: Duration,
    /// Recent trades kept (newest first).
    pub max_trades: usize,
    /// Ask for field deltas (docs/protocol.md, "Field deltas"); default on.
    /// The client merges them into full objects before anything sees them.
    pub deltas: bool,
    /// Seeds the jitter, for reproducible schedules in tests; `None` seeds
    /// from the OS.
    pub jitter_seed: Option<u64>,
    /// Sees every message the socket delivers.
    pub observer: Option<Observer>,
}

impl ClientConfig {
    /// A config with the defaults for the gateway at `base_url`
    /// (`http://host:port` or `ws://host:port`, optionally with a path
    /// prefix).
    pub fn new(base_url: &str, credentials: Credentials) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(base_url)?;
        credentials.header()?;
        Ok(Self {
            endpoint,
            credentials,
            channels: Channel::ALL.to_vec(),
            origin: None,
            backoff_base: defaults::BACKOFF_BASE,
            backoff_cap: defaults::BACKOFF_CAP,
            backoff_jitter: defaults::BACKOFF_JITTER,
            restart_jitter: defaults::RESTART_JITTER,
            max_failed_attempts: defaults::MAX_FAILED_ATTEMPTS,
            poll_interval: defaults::POLL_INTERVAL,
            reconcile_interval: defaults::RECONCILE_INTERVAL,
            ping_interval: defaults::PING_INTERVAL,
            pong_timeout: defaults::PONG_TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            request_timeout: defaults::REQUEST_TIMEOUT,
            max_trades: defaults::MAX_TRADES,
            deltas: true,
            jitter_seed: None,
            observer: None,
        })
    }

    /// The WebSocket URL, `ws://host:port/ws/portfolio`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}{WS_PATH}", self.endpoint.authority, self.endpoint.prefix)
    }

    /// The URL of a REST route, `http://host:port<path>`.
    pub(crate) fn http_uri(&self, path: &str) -> Result<Uri, ClientError> {
        format!("http://{}{}{path}", self.endpoint.authority, self.endpoint.prefix)
            .parse()
            .map_err(|_| ClientError::InvalidUrl(format!("cannot build the URL of {path}")))
    }

    /// The headers every request carries: credentials, and `Origin` when set.
    pub(crate) fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let mut headers = vec![self.credentials.header()?];
        if let Some(origin) = &self.origin {
            let value = HeaderValue::from_str(origin)
                .map_err(|_| ClientError::InvalidUrl(format!("origin {origin:?} is not a valid header value")))?;
            headers.push((ORIGIN, value));
        }
        Ok(headers)
    }
}

/// Where the gateway is: `host:port` and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    authority: String,
    /// Empty, or `/prefix` without a trailing slash.
    prefix: String,
}

impl Endpoint {
    fn parse(base_url: &str) -> Result<Self, ClientError> {
        let uri: Uri = base_url.parse().map_err(|_| ClientError::InvalidUrl(base_url.to_owned()))?;
        match uri.scheme_str() {
            Some("http" | "ws") => {}
            Some("https" | "wss") => return Err(ClientError::TlsUnsupported),
            _ => return Err(ClientError::InvalidUrl(base_url.to_owned())),
        }
        let authority = uri.authority().ok_or_else(|| ClientError::InvalidUrl(base_url.to_owned()))?;
        Ok(Self { authority: authority.to_string(), prefix: uri.path().trim_end_matches('/').to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_base() {
        let config = ClientConfig::new("http://127.0.0.1:8080", Credentials::Bearer("t".into())).unwrap();
        assert_eq!(config.ws_url(), "ws://127.0.0.1:8080/ws/portfolio");
        assert_eq!(config.http_uri(PORTFOLIO_PATH).unwrap().to_string(), "http://127.0.0.1:8080/api/portfolio");
        let prefixed = ClientConfig::new("ws://gw.local/edge/", Credentials::Cookie("t".into())).unwrap();
        assert_eq!(prefixed.ws_url(), "ws://gw.local/edge/ws/portfolio");
    }

    #[test]
    fn bad_urls_and_tokens_are_refused() {
        let bearer = Credentials::Bearer("t".into());
        assert!(matches!(ClientConfig::new("https://x", bearer.clone()), Err(ClientError::TlsUnsupported)));
        assert!(matches!(ClientConfig::new("ftp://x", bearer.clone()), Err(ClientError::InvalidUrl(_))));
        assert!(matches!(ClientConfig::new("not a url", bearer), Err(ClientError::InvalidUrl(_))));
        let bad = Credentials::Bearer("line\nbreak".into());
        assert!(matches!(ClientConfig::new("http://x", bad), Err(ClientError::InvalidCredentials)));
        assert_eq!(format!("{:?}", Credentials::Bearer("secret".into())), "Bearer([redacted])");
    }
}
