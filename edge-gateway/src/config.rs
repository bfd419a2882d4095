//! The gateway's configuration, read once at start through
//! `common::config::Source`; its variable names are the constants in [`vars`]
//! (the event log's are `event_log::backend::vars`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::config::{self, ConfigError, Source};
use event_log::Backend;
use rust_decimal::Decimal;

use crate::auth::{JwtAlgorithm, JwtConfig, JwtKey, JwtValidator, DEFAULT_LEEWAY_SECS};
use crate::throttle::ThrottleConfig;

#[cfg(test)]
mod tests;

/// The largest [`vars::JWT_LEEWAY_SECS`]: a larger leeway keeps expired
/// tokens alive; fix the clocks instead.
pub const MAX_JWT_LEEWAY_SECS: u64 = 300;

/// The gateway's environment variables (the event log's are in
/// `event_log::backend::vars`).
pub mod vars {
    /// `HS256` (default), `RS256` or `ES256`: the only algorithm accepted.
    pub const JWT_ALGORITHM: &str = "JWT_ALGORITHM";
    /// The HS256 shared secret, at least 32 bytes. Prefer [`JWT_SECRET_FILE`]
    /// in production; set exactly one of the two.
    pub const JWT_SECRET: &str = "JWT_SECRET";
    /// Path to a file holding the HS256 secret (a trailing newline is
    /// dropped), e.g. a mounted Kubernetes or Docker secret.
    pub const JWT_SECRET_FILE: &str = "JWT_SECRET_FILE";
    /// Path to the PEM public key for RS256 (RSA ≥ 2048 bits) or ES256
    /// (P-256). Never the private key: it is refused.
    pub const JWT_PUBLIC_KEY_FILE: &str = "JWT_PUBLIC_KEY_FILE";
    /// Optional: when set, tokens must carry this `iss`.
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    /// Optional: when set, tokens must carry this `aud`. Set it when the
    /// identity provider issues tokens for other services too.
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    /// Clock skew tolerated on `exp`/`nbf`, seconds; default 5, at most 300.
    pub const JWT_LEEWAY_SECS: &str = "JWT_LEEWAY_SECS";
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
            jwt: jwt_from_source(source)?,
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

/// Reads [`vars::JWT_ALGORITHM`] and its key ([`vars::JWT_SECRET`] /
/// [`vars::JWT_SECRET_FILE`] for HS256, [`vars::JWT_PUBLIC_KEY_FILE`]
/// otherwise), [`vars::JWT_ISSUER`], [`vars::JWT_AUDIENCE`] and
/// [`vars::JWT_LEEWAY_SECS`]. The key is checked by building a
/// [`JwtValidator`], so a bad key stops the program here.
pub fn jwt_from_source(source: &dyn Source) -> Result<JwtConfig, ConfigError> {
    let algorithm = match config::optional(source, vars::JWT_ALGORITHM) {
        None => JwtAlgorithm::Hs256,
        Some(raw) => JwtAlgorithm::parse(&raw)
            .ok_or_else(|| ConfigError::invalid(vars::JWT_ALGORITHM, "one of HS256, RS256, ES256", &raw))?,
    };
    let (key, key_var) = match algorithm {
        JwtAlgorithm::Hs256 => {
            if config::optional(source, vars::JWT_PUBLIC_KEY_FILE).is_some() {
                return Err(ConfigError::Inconsistent {
                    name: vars::JWT_PUBLIC_KEY_FILE.to_owned(),
                    reason: format!(
                        "set, but {} is HS256, which uses {} or {}; unset it or choose RS256/ES256",
                        vars::JWT_ALGORITHM,
                        vars::JWT_SECRET,
                        vars::JWT_SECRET_FILE
                    ),
                });
            }
            let secret = config::secret(source, vars::JWT_SECRET)?.ok_or_else(|| {
                ConfigError::missing(
                    vars::JWT_SECRET,
                    format!(
                        "the HS256 secret (or a path to it in {}) since {} is HS256",
                        vars::JWT_SECRET_FILE,
                        vars::JWT_ALGORITHM
                    ),
                )
            })?;
            (JwtKey::Hs256(secret.into_bytes()), vars::JWT_SECRET)
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
            for name in [vars::JWT_SECRET, vars::JWT_SECRET_FILE] {
                if config::optional(source, name).is_some() {
                    return Err(ConfigError::Inconsistent {
                        name: name.to_owned(),
                        reason: format!(
                            "set, but {} is {algorithm}, which uses {}; unset it",
                            vars::JWT_ALGORITHM,
                            vars::JWT_PUBLIC_KEY_FILE
                        ),
                    });
                }
            }
            let path = config::optional(source, vars::JWT_PUBLIC_KEY_FILE).ok_or_else(|| {
                ConfigError::missing(
                    vars::JWT_PUBLIC_KEY_FILE,
                    format!("a path to the PEM public key since {} is {algorithm}", vars::JWT_ALGORITHM),
                )
            })?;
            let pem = config::read_file(vars::JWT_PUBLIC_KEY_FILE, Path::new(path.trim()))?;
            let key = match algorithm {
                JwtAlgorithm::Rs256 => JwtKey::Rs256(pem),
                _ => JwtKey::Es256(pem),
            };
            (key, vars::JWT_PUBLIC_KEY_FILE)
        }
    };

    let mut jwt = JwtConfig::new(key).with_leeway_secs(config::parse_between_or(
        source,
        vars::JWT_LEEWAY_SECS,
        DEFAULT_LEEWAY_SECS,
        0,
        MAX_JWT_LEEWAY_SECS,
    )?);
    if let Some(issuer) = config::optional(source, vars::JWT_ISSUER) {
        jwt = jwt.with_issuer(issuer.trim());
    }
    if let Some(audience) = config::optional(source, vars::JWT_AUDIENCE) {
        jwt = jwt.with_audience(audience.trim());
    }

    JwtValidator::new(&jwt)
        .map_err(|source| ConfigError::Key { name: key_var.to_owned(), source: Box::new(source) })?;
    Ok(jwt)
}
