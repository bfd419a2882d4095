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
    /// Rollout while the flag is off: the percentage of users (by a stable
    /// hash of the user id) that get the socket; default 0.
    pub const ROLLOUT_PERCENT: &str = "ROLLOUT_PERCENT";
    /// Rollout while the flag is off: comma-separated user ids that get the
    /// socket (QA, staff).
    pub const ROLLOUT_USERS: &str = "ROLLOUT_USERS";
    /// Connections one user may hold across every gateway; default 5.
    pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
    /// Connections this gateway instance accepts; default 50000.
    pub const MAX_CONNECTIONS: &str = "MAX_CONNECTIONS";
    /// Seconds a connection lease lives without refresh (refreshed every
    /// third of it); a crashed gateway's connections stop counting after it.
    /// Default 30.
    pub const LEASE_TTL_SECS: &str = "LEASE_TTL_SECS";
    /// Milliseconds between WebSocket pings; default 15000.
    pub const HEARTBEAT_INTERVAL_MS: &str = "HEARTBEAT_INTERVAL_MS";
    /// Milliseconds without any frame from the client before it is closed;
    /// default 30000.
    pub const HEARTBEAT_TIMEOUT_MS: &str = "HEARTBEAT_TIMEOUT_MS";
    /// Client messages allowed per second per connection; default 100.
    pub const MAX_MESSAGES_PER_SEC: &str = "MAX_MESSAGES_PER_SEC";
    /// Milliseconds the gateway waits for sockets to close on shutdown;
    /// default 10000.
    pub const SHUTDOWN_GRACE_MS: &str = "SHUTDOWN_GRACE_MS";
    /// Optional bearer token for `/api/admin/websocket-stats` (or
    /// `ADMIN_TOKEN_FILE`); tokens with the `admin` claim work too.
    pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
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
    /// Who gets the WebSocket.
    pub rollout: Rollout,
    /// Connection limits.
    pub limits: Limits,
    /// How long shutdown waits for sockets to close.
    pub shutdown_grace: Duration,
    /// The admin endpoint's static token, if any.
    pub admin_token: Option<config::Secret>,
}

/// The design note's flag plus a gradual rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// `ENABLE_REALTIME_PORTFOLIO`: on for everyone.
    pub enabled: bool,
    /// While off: this share of users, by a stable hash of the user id.
    pub percent: u8,
    /// While off: these users.
    pub users: Vec<String>,
}

impl Rollout {
    /// Whether `user` gets the real-time socket.
    pub fn allows(&self, user: &common::event::UserId) -> bool {
        self.enabled || self.users.iter().any(|u| u == user.as_str()) || bucket(user) < u64::from(self.percent)
    }
}

/// A user's rollout bucket, 0..100: the first 8 bytes of SHA-256 of the
/// user id, so it is the same on every instance and every version.
pub fn bucket(user: &common::event::UserId) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(user.as_str().as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 100
}

/// Connection limits and timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per user, across instances.
    pub per_user: usize,
    /// This instance.
    pub capacity: usize,
    /// Lease lifetime without refresh.
    pub lease_ttl: Duration,
    /// Ping interval.
    pub heartbeat_interval: Duration,
    /// Silence before a connection is closed.
    pub heartbeat_timeout: Duration,
    /// Client messages per second.
    pub messages_per_sec: u32,
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
            rollout: Rollout {
                enabled: config::parse_bool(source, vars::ENABLE_REALTIME_PORTFOLIO, true)?,
                percent: config::parse_between_or(source, vars::ROLLOUT_PERCENT, 0, 0, 100)?,
                users: config::parse_list(source, vars::ROLLOUT_USERS)?,
            },
            limits: Limits {
                per_user: config::parse_between_or(source, vars::MAX_CONNECTIONS_PER_USER, 5, 1, 1_000)?,
                capacity: config::parse_between_or(source, vars::MAX_CONNECTIONS, 50_000, 1, 10_000_000)?,
                lease_ttl: Duration::from_secs(config::parse_between_or(source, vars::LEASE_TTL_SECS, 30, 1, 3_600)?),
                heartbeat_interval: Duration::from_millis(config::parse_between_or(
                    source,
                    vars::HEARTBEAT_INTERVAL_MS,
                    15_000,
                    10,
                    3_600_000,
                )?),
                heartbeat_timeout: Duration::from_millis(config::parse_between_or(
                    source,
                    vars::HEARTBEAT_TIMEOUT_MS,
                    30_000,
                    10,
                    3_600_000,
                )?),
                messages_per_sec: config::parse_between_or(source, vars::MAX_MESSAGES_PER_SEC, 100, 1, 100_000)?,
            },
            shutdown_grace: Duration::from_millis(config::parse_between_or(
                source,
                vars::SHUTDOWN_GRACE_MS,
                10_000,
                0,
                600_000,
            )?),
            admin_token: config::secret(source, vars::ADMIN_TOKEN)?,
        })
    }
}
