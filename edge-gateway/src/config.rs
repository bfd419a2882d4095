//! The gateway's configuration, read once at start through
//! `common::config::Source`; its variable names are the constants in [`vars`].

use std::net::SocketAddr;
use std::time::Duration;

use common::auth::JwtConfig;
use common::config::{self, Backend, ConfigError, Source};
use rust_decimal::Decimal;

use crate::throttle::ThrottleConfig;

/// The gateway's environment variables (the shared ones are in
/// `common::config::vars`).
pub mod vars {
    /// Address to listen on; default `127.0.0.1:8080` (containers set `0.0.0.0:8080`).
    pub const GATEWAY_ADDR: &str = "GATEWAY_ADDR";
    /// Comma-separated browser origins allowed to open the socket besides
    /// the gateway's own (same-origin is always allowed), e.g.
    /// `https://app.example.com`. A request with another `Origin` is closed 1008.
    pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
    /// The throttle window in milliseconds; default 1000.
    pub const THROTTLE_WINDOW_MS: &str = "THROTTLE_WINDOW_MS";
    /// Price-only position changes up to this fraction of market value are
    /// held back; default 0.001 (0.1 %). 0 sends every change.
    pub const DIFF_THRESHOLD: &str = "DIFF_THRESHOLD";
    /// Milliseconds a held-back position waits before it is sent anyway; default 5000.
    pub const DIFF_SETTLE_MS: &str = "DIFF_SETTLE_MS";
    /// Messages queued per connection before it counts as too slow and is
    /// closed; default 256.
    pub const SEND_QUEUE: &str = "SEND_QUEUE";
    /// Largest client message in bytes; default 16384.
    pub const MAX_MESSAGE_BYTES: &str = "MAX_MESSAGE_BYTES";
    /// The design note's flag: `false` turns the WebSocket off (1013) while
    /// REST keeps working; default `true`.
    pub const ENABLE_REALTIME_PORTFOLIO: &str = "ENABLE_REALTIME_PORTFOLIO";
    /// `json` for production logs, `text` (default) for people.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where the event log lives.
    pub backend: Backend,
    /// How tokens are checked.
    pub jwt: JwtConfig,
    /// Allowed cross-origin browser origins (same-origin always is).
    pub allowed_origins: Vec<String>,
    /// Throttle and diff settings.
    pub throttle: ThrottleConfig,
    /// Per-connection send queue length.
    pub send_queue: usize,
    /// Largest client message, bytes.
    pub max_message_bytes: usize,
    /// Whether the WebSocket is on.
    pub realtime_enabled: bool,
}

impl GatewayConfig {
    /// Reads and checks every variable; the error names the bad one.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let threshold: Decimal = config::parse_or(source, vars::DIFF_THRESHOLD, Decimal::new(1, 3))?;
        if threshold.is_sign_negative() || threshold >= Decimal::ONE {
            return Err(ConfigError::invalid(
                vars::DIFF_THRESHOLD,
                "a fraction from 0 up to 1, e.g. 0.001",
                &threshold.to_string(),
            ));
        }
        Ok(Self {
            addr: config::parse_or(source, vars::GATEWAY_ADDR, SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            backend: Backend::from_source(source)?,
            jwt: JwtConfig::from_source(source)?,
            allowed_origins: config::parse_list(source, vars::ALLOWED_ORIGINS)?,
            throttle: ThrottleConfig {
                window: Duration::from_millis(config::parse_between_or(
                    source,
                    vars::THROTTLE_WINDOW_MS,
                    1_000,
                    1,
                    60_000,
                )?),
                threshold,
                settle: Duration::from_millis(config::parse_between_or(
                    source,
                    vars::DIFF_SETTLE_MS,
                    5_000,
                    1,
                    600_000,
                )?),
            },
            send_queue: config::parse_between_or(source, vars::SEND_QUEUE, 256, 8, 65_536)?,
            max_message_bytes: config::parse_between_or(source, vars::MAX_MESSAGE_BYTES, 16_384, 256, 1 << 20)?,
            realtime_enabled: config::parse_bool(source, vars::ENABLE_REALTIME_PORTFOLIO, true)?,
        })
    }
}
