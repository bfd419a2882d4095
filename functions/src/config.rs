//! The functions' configuration, read once at start from a replaceable
//! [`Source`] (the environment in production, a map in tests). Variable
//! names are the constants in [`vars`] (the event log's are
//! `event_log::backend::vars`), defaults and bounds are in [`defaults`].
//! What is required depends on the functions a process serves.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use common::config::{self, ConfigError, Secret, Source};
use event_log::Backend;

use crate::function::Function;

/// The functions' environment variables.
pub mod vars {
    /// Local HTTP mode: the address the function binaries listen on;
    /// default `127.0.0.1:3000`.
    pub const FUNCTIONS_ADDR: &str = "FUNCTIONS_ADDR";
    /// Set by AWS Lambda: when present the binaries serve Lambda events
    /// instead of local HTTP.
    pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    /// Shared secret of the broker webhook's HMAC-SHA256 signature, at least
    /// 32 bytes (or [`WEBHOOK_SECRET_FILE`]).
    pub const WEBHOOK_SECRET: &str = "WEBHOOK_SECRET";
    /// Path to a file holding [`WEBHOOK_SECRET`].
    pub const WEBHOOK_SECRET_FILE: &str = "WEBHOOK_SECRET_FILE";
    /// Shared secret signing the internal HTTP routes (`/queue/completions`,
    /// `/ingest/prices`) the same way, at least 32 bytes (or
    /// [`INGEST_SECRET_FILE`]). SQS deliveries need none: IAM vouches for them.
    pub const INGEST_SECRET: &str = "INGEST_SECRET";
    /// Path to a file holding [`INGEST_SECRET`].
    pub const INGEST_SECRET_FILE: &str = "INGEST_SECRET_FILE";
    /// How far a signature's timestamp may be from now, seconds; default
    /// 300, 1 to 3 600.
    pub const SIGNATURE_TOLERANCE_SECS: &str = "SIGNATURE_TOLERANCE_SECS";
    /// Largest request body accepted, bytes; default 1 048 576. Larger
    /// bodies get 413.
    pub const FUNCTIONS_MAX_BODY_BYTES: &str = "FUNCTIONS_MAX_BODY_BYTES";
    /// Most ticks accepted in one price batch; default 10 000.
    pub const MAX_TICKS_PER_BATCH: &str = "MAX_TICKS_PER_BATCH";
    /// Alpaca trading API base URL; default `https://paper-api.alpaca.markets`
    /// (paper trading: the live URL must be chosen explicitly).
    pub const APCA_API_BASE_URL: &str = "APCA_API_BASE_URL";
    /// Alpaca API key id.
    pub const APCA_API_KEY_ID: &str = "APCA_API_KEY_ID";
    /// Alpaca API secret key (or [`APCA_API_SECRET_KEY_FILE`]).
    pub const APCA_API_SECRET_KEY: &str = "APCA_API_SECRET_KEY";
    /// Path to a file holding [`APCA_API_SECRET_KEY`].
    pub const APCA_API_SECRET_KEY_FILE: &str = "APCA_API_SECRET_KEY_FILE";
    /// Milliseconds one broker API call may take before the function answers
    /// 503 (the sender retries); default 3 000, 1 to 30 000.
    pub const BROKER_TIMEOUT_MS: &str = "BROKER_TIMEOUT_MS";
    /// `tracing` filter of the function binaries (`info`,
    /// `functions=debug,info`, …); default `info`.
    pub const FUNCTIONS_LOG: &str = "FUNCTIONS_LOG";
}

/// Bounds on work and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long one broker call may take before the request fails with 503.
    pub broker_timeout: Duration,
    /// Most ticks in one price batch.
    pub max_ticks: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            broker_timeout: Duration::from_millis(defaults::BROKER_TIMEOUT_MS),
            max_ticks: defaults::MAX_TICKS_PER_BATCH,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }
}

/// Defaults and bounds of the functions' variables.
pub mod defaults {
    /// [`super::vars::FUNCTIONS_ADDR`] default: loopback only.
    pub const ADDR: &str = "127.0.0.1:3000";
    /// [`super::vars::SIGNATURE_TOLERANCE_SECS`] default.
    pub const SIGNATURE_TOLERANCE_SECS: u64 = 300;
    /// Beyond an hour a captured request stays replayable for too long.
    pub const MAX_SIGNATURE_TOLERANCE_SECS: u64 = 3_600;
    /// [`super::vars::FUNCTIONS_MAX_BODY_BYTES`] default: 1 MiB, room for
    /// 10,000 ticks.
    pub const MAX_BODY_BYTES: usize = 1_048_576;
    /// Below this even one trade update does not fit.
    pub const MIN_MAX_BODY_BYTES: usize = 4_096;
    /// Lambda's synchronous payload limit.
    pub const MAX_MAX_BODY_BYTES: usize = 6_291_456;
    /// [`super::vars::MAX_TICKS_PER_BATCH`] default.
    pub const MAX_TICKS_PER_BATCH: usize = 10_000;
    /// Highest accepted [`super::vars::MAX_TICKS_PER_BATCH`].
    pub const MAX_MAX_TICKS_PER_BATCH: usize = 100_000;
    /// [`super::vars::APCA_API_BASE_URL`] default: paper trading.
    pub const APCA_API_BASE_URL: &str = "https://paper-api.alpaca.markets";
    /// [`super::vars::BROKER_TIMEOUT_MS`] default.
    pub const BROKER_TIMEOUT_MS: u64 = 3_000;
    /// Longest broker timeout: API Gateway gives up after 30 s anyway.
    pub const MAX_BROKER_TIMEOUT_MS: u64 = 30_000;
    /// Shortest accepted signing secret, bytes (HMAC-SHA256's block of
    /// entropy; shorter secrets are guessable offline from one signature).
    pub const MIN_SECRET_LEN: usize = 32;
    /// [`super::vars::FUNCTIONS_LOG`] default.
    pub const LOG_FILTER: &str = "info";
}

/// How to reach Alpaca.
#[derive(Clone)]
pub struct AlpacaConfig {
    /// Trading API base URL.
    pub base_url: String,
    /// API key id.
    pub key_id: String,
    /// API secret key.
    pub secret: Secret,
}

/// Written by hand: the key id is not secret, the secret stays out.
impl fmt::Debug for AlpacaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaConfig").field("base_url", &self.base_url).field("key_id", &self.key_id).finish()
    }
}

/// Everything a function binary reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the event log lives (`REDIS_URL`, or in memory).
    pub backend: Backend,
    /// Local HTTP mode's listen address.
    pub addr: SocketAddr,
    /// Running inside AWS Lambda.
    pub lambda: bool,
    /// Signs the broker webhook.
    pub webhook_secret: Option<Secret>,
    /// Signs the internal HTTP routes.
    pub ingest_secret: Option<Secret>,
    /// Accepted distance of a signature's timestamp from now.
    pub signature_tolerance: Duration,
    /// Bounds.
    pub limits: Limits,
    /// The broker, when the broker webhook is served.
    pub alpaca: Option<AlpacaConfig>,
    /// `tracing` filter.
    pub log_filter: String,
}

impl Config {
    /// Reads and checks everything `functions` need; a missing or bad value
    /// is an error naming its variable.
    pub fn from_source(source: &dyn Source, functions: &[Function]) -> Result<Self, ConfigError> {
        let lambda = config::optional(source, vars::AWS_LAMBDA_RUNTIME_API).is_some();
        let serves = |f: Function| functions.contains(&f);
        let addr = config::parse(source, vars::FUNCTIONS_ADDR)?.unwrap_or_else(default_addr);
        let webhook_secret = signing_secret(source, vars::WEBHOOK_SECRET, serves(Function::BrokerWebhook))?;
        // SQS deliveries need no signature; everything over HTTP does.
        let ingest_over_http = functions.iter().any(|&f| match f {
            Function::BrokerWebhook => false,
            Function::QueueCompletions => !lambda,
            Function::PriceTicks | Function::AccountLinks | Function::PositionSync => true,
        });
        let ingest_secret = signing_secret(source, vars::INGEST_SECRET, ingest_over_http)?;
        // Local HTTP without Alpaca keys is the no-broker mode: completions,
        // ticks, links and non-fill trade updates work; fills and syncs
        // answer 503 `broker_not_configured`. On Lambda they need the keys.
        let keys = config::optional(source, vars::APCA_API_KEY_ID).is_some();
        let needs_broker = functions.iter().any(|f| f.needs_broker());
        let alpaca = if needs_broker && (lambda || keys) { Some(alpaca(source)?) } else { None };
        let limits = Limits {
            broker_timeout: Duration::from_millis(config::parse_between_or(
                source,
                vars::BROKER_TIMEOUT_MS,
                defaults::BROKER_TIMEOUT_MS,
                1,
                defaults::MAX_BROKER_TIMEOUT_MS,
            )?),
            max_ticks: config::parse_between_or(
                source,
                vars::MAX_TICKS_PER_BATCH,
                defaults::MAX_TICKS_PER_BATCH,
                1,
                defaults::MAX_MAX_TICKS_PER_BATCH,
            )?,
            max_body_bytes: config::parse_between_or(
                source,
                vars::FUNCTIONS_MAX_BODY_BYTES,
                defaults::MAX_BODY_BYTES,
                defaults::MIN_MAX_BODY_BYTES,
                defaults::MAX_MAX_BODY_BYTES,
            )?,
        };
        Ok(Self {
            backend: Backend::from_source(source)?,
            addr,
            lambda,
            webhook_secret,
            ingest_secret,
            signature_tolerance: Duration::from_secs(config::parse_between_or(
                source,
                vars::SIGNATURE_TOLERANCE_SECS,
                defaults::SIGNATURE_TOLERANCE_SECS,
                1,
                defaults::MAX_SIGNATURE_TOLERANCE_SECS,
            )?),
            limits,
            alpaca,
            log_filter: config::optional(source, vars::FUNCTIONS_LOG)
                .unwrap_or_else(|| defaults::LOG_FILTER.to_owned()),
        })
    }
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}

/// A signing secret (`name` or `name_FILE`) of at least
/// [`defaults::MIN_SECRET_LEN`] bytes; required when `needed`.
/// A signing secret: required when `needed`, at least the minimum length
/// when given.
pub fn signing_secret(source: &dyn Source, name: &str, needed: bool) -> Result<Option<Secret>, ConfigError> {
    let secret = if needed { Some(config::required_secret(source, name)?) } else { config::secret(source, name)? };
    match secret {
        Some(secret) if secret.expose().len() < defaults::MIN_SECRET_LEN => Err(ConfigError::InvalidSecret {
            name: name.to_owned(),
            expected: format!("at least {} bytes", defaults::MIN_SECRET_LEN),
        }),
        other => Ok(other),
    }
}

/// The Alpaca API settings (`APCA_API_BASE_URL`, `APCA_API_KEY_ID`,
/// `APCA_API_SECRET_KEY`), required.
pub fn alpaca(source: &dyn Source) -> Result<AlpacaConfig, ConfigError> {
    let base_url = config::optional(source, vars::APCA_API_BASE_URL)
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| defaults::APCA_API_BASE_URL.to_owned());
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(ConfigError::invalid(
            vars::APCA_API_BASE_URL,
            "an http(s) URL such as https://paper-api.alpaca.markets",
            &base_url,
        ));
    }
    Ok(AlpacaConfig {
        base_url,
        key_id: config::required(source, vars::APCA_API_KEY_ID)?.trim().to_owned(),
        secret: config::required_secret(source, vars::APCA_API_SECRET_KEY)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn each_function_requires_only_what_it_uses() {
        let empty = source(&[]);
        let error = Config::from_source(&empty, &[Function::BrokerWebhook]).unwrap_err();
        assert_eq!(error.name(), vars::WEBHOOK_SECRET);
        let error = Config::from_source(&empty, &[Function::PriceTicks]).unwrap_err();
        assert_eq!(error.name(), vars::INGEST_SECRET);
        // Completions over SQS need no secret; over local HTTP they do.
        let lambda = source(&[(vars::AWS_LAMBDA_RUNTIME_API, "127.0.0.1:9001")]);
        assert!(Config::from_source(&lambda, &[Function::QueueCompletions]).is_ok());
        assert!(Config::from_source(&empty, &[Function::QueueCompletions]).is_err());

        let webhook = source(&[(vars::WEBHOOK_SECRET, SECRET), (vars::APCA_API_KEY_ID, "key")]);
        let error = Config::from_source(&webhook, &[Function::BrokerWebhook]).unwrap_err();
        assert_eq!(error.name(), vars::APCA_API_SECRET_KEY);
    }

    #[test]
    fn local_http_without_alpaca_keys_is_the_no_broker_mode() {
        let secrets = [(vars::WEBHOOK_SECRET, SECRET), (vars::INGEST_SECRET, SECRET)];
        let local = Config::from_source(&source(&secrets), &Function::ALL).expect("starts without Alpaca keys");
        assert!(local.alpaca.is_none());
        // A Lambda broker webhook cannot work without them: refused at start.
        let mut lambda = source(&secrets);
        lambda.insert(vars::AWS_LAMBDA_RUNTIME_API.to_owned(), "127.0.0.1:9001".to_owned());
        let error = Config::from_source(&lambda, &[Function::BrokerWebhook]).unwrap_err();
        assert_eq!(error.name(), vars::APCA_API_KEY_ID);
    }

    #[test]
    fn values_are_checked_and_defaults_apply() {
        let short = source(&[(vars::INGEST_SECRET, "short")]);
        let error = Config::from_source(&short, &[Function::PriceTicks]).unwrap_err();
        assert!(matches!(&error, ConfigError::InvalidSecret { name, .. } if name == vars::INGEST_SECRET));
        assert!(!error.to_string().contains("short"), "the secret must not be echoed");

        let bad = source(&[(vars::INGEST_SECRET, SECRET), (vars::FUNCTIONS_ADDR, "nowhere")]);
        assert_eq!(Config::from_source(&bad, &[Function::PriceTicks]).unwrap_err().name(), vars::FUNCTIONS_ADDR);

        let ok = source(&[(vars::INGEST_SECRET, SECRET)]);
        let config = Config::from_source(&ok, &[Function::PriceTicks]).unwrap();
        assert_eq!(config.addr.to_string(), defaults::ADDR);
        assert_eq!(config.limits, Limits::default());
        assert!(!config.lambda && config.alpaca.is_none());
        assert!(matches!(config.backend, Backend::Memory(_)));
    }
}
