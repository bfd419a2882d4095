//! The relay's configuration, read once at start from a replaceable
//! [`Source`]. The names it shares with the functions (`WEBHOOK_SECRET`,
//! `INGEST_SECRET`, `APCA_API_*`) are `functions::config::vars`; its own are
//! in [`vars`]; defaults and bounds in [`defaults`].

use std::net::SocketAddr;
use std::time::Duration;

use common::config::{self, ConfigError, Secret, Source};
use common::event::Symbol;
use functions::config::{alpaca, signing_secret, vars as shared, AlpacaConfig};

/// The relay's own environment variables.
pub mod vars {
    /// Address of the health and metrics server (`/healthz`, `/metrics`);
    /// default `127.0.0.1:9300`.
    pub const RELAY_ADDR: &str = "RELAY_ADDR";
    /// Base URL of the ingest functions (`http://127.0.0.1:3000` locally,
    /// the HTTP API's URL in the cloud); required.
    pub const FUNCTIONS_URL: &str = "FUNCTIONS_URL";
    /// Alpaca's trade-updates stream; default: the API base URL with `ws(s)`
    /// and `/stream` (`wss://paper-api.alpaca.markets/stream`).
    pub const APCA_STREAM_URL: &str = "APCA_STREAM_URL";
    /// Alpaca's market-data stream; default
    /// `wss://stream.data.alpaca.markets/v2/iex`; `off` relays no prices.
    pub const APCA_DATA_STREAM_URL: &str = "APCA_DATA_STREAM_URL";
    /// The broker account id put beside every trade update; default: the
    /// id `GET /v2/account` answers for the keys.
    pub const RELAY_ACCOUNT_ID: &str = "RELAY_ACCOUNT_ID";
    /// Symbols whose prices are relayed besides the account's positions
    /// (comma-separated); default none.
    pub const RELAY_SYMBOLS: &str = "RELAY_SYMBOLS";
    /// Milliseconds prints are conflated per symbol before one price batch
    /// is sent; default 250, 10 to 10 000.
    pub const RELAY_TICK_INTERVAL_MS: &str = "RELAY_TICK_INTERVAL_MS";
    /// Seconds between position syncs (one also follows every reconnect of
    /// the trade stream); default 300, 10 to 86 400.
    pub const RELAY_SYNC_INTERVAL_SECS: &str = "RELAY_SYNC_INTERVAL_SECS";
    /// At start, how far back the fills are backfilled, seconds; default
    /// 3 600, 0 to 86 400 (keep it within `DEDUPE_TTL_SECS`).
    pub const RELAY_BACKFILL_LOOKBACK_SECS: &str = "RELAY_BACKFILL_LOOKBACK_SECS";
    /// `tracing` filter; default `info`.
    pub const RELAY_LOG: &str = "RELAY_LOG";
}

/// Defaults and bounds.
pub mod defaults {
    use std::time::Duration;

    /// [`super::vars::RELAY_ADDR`].
    pub const ADDR: &str = "127.0.0.1:9300";
    /// [`super::vars::APCA_DATA_STREAM_URL`].
    pub const DATA_STREAM_URL: &str = "wss://stream.data.alpaca.markets/v2/iex";
    /// [`super::vars::RELAY_TICK_INTERVAL_MS`].
    pub const TICK_INTERVAL: Duration = Duration::from_millis(250);
    /// [`super::vars::RELAY_SYNC_INTERVAL_SECS`].
    pub const SYNC_INTERVAL: Duration = Duration::from_secs(300);
    /// [`super::vars::RELAY_BACKFILL_LOOKBACK_SECS`].
    pub const BACKFILL_LOOKBACK: Duration = Duration::from_secs(3_600);
    /// Most symbols whose prices are relayed (Alpaca's free feed allows
    /// 30 at once; paid feeds many more).
    pub const MAX_SYMBOLS: usize = 10_000;
}

/// Everything the relay reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Health and metrics listen address.
    pub addr: SocketAddr,
    /// Base URL of the functions, without a trailing slash.
    pub functions_url: String,
    /// Signs trade updates for the broker webhook.
    pub webhook_secret: Secret,
    /// Signs price batches and sync requests.
    pub ingest_secret: Secret,
    /// The trading API and its keys.
    pub alpaca: AlpacaConfig,
    /// The trade-updates stream.
    pub stream_url: String,
    /// The market-data stream; `None`: no prices are relayed.
    pub data_stream_url: Option<String>,
    /// The account id, when configured.
    pub account_id: Option<String>,
    /// Symbols relayed besides the positions.
    pub symbols: Vec<Symbol>,
    /// Conflation window of prints.
    pub tick_interval: Duration,
    /// Time between position syncs.
    pub sync_interval: Duration,
    /// How far back the first backfill reaches.
    pub backfill_lookback: Duration,
    /// `tracing` filter.
    pub log_filter: String,
}

impl Config {
    /// Reads and checks everything; a missing or bad value is an error
    /// naming its variable.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let alpaca = alpaca(source)?;
        let functions_url = config::required(source, vars::FUNCTIONS_URL)?.trim().trim_end_matches('/').to_owned();
        if !(functions_url.starts_with("http://") || functions_url.starts_with("https://")) {
            return Err(ConfigError::invalid(vars::FUNCTIONS_URL, "an http(s) URL", &functions_url));
        }
        let stream_url = match config::optional(source, vars::APCA_STREAM_URL) {
            Some(url) => websocket_url(vars::APCA_STREAM_URL, url.trim())?,
            None => default_stream_url(&alpaca.base_url),
        };
        let data_stream_url = match config::optional(source, vars::APCA_DATA_STREAM_URL) {
            Some(url) if url.trim().eq_ignore_ascii_case("off") => None,
            Some(url) => Some(websocket_url(vars::APCA_DATA_STREAM_URL, url.trim())?),
            None => Some(defaults::DATA_STREAM_URL.to_owned()),
        };
        let symbols = config::parse_list::<String>(source, vars::RELAY_SYMBOLS)?
            .into_iter()
            .map(|s| {
                Symbol::new(s.as_str())
                    .map_err(|_| ConfigError::invalid(vars::RELAY_SYMBOLS, "symbols such as AAPL,MSFT", &s))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if symbols.len() > defaults::MAX_SYMBOLS {
            return Err(ConfigError::invalid(
                vars::RELAY_SYMBOLS,
                format!("at most {} symbols", defaults::MAX_SYMBOLS),
                &format!("{} symbols", symbols.len()),
            ));
        }
        let account_id = config::optional(source, vars::RELAY_ACCOUNT_ID).map(|id| id.trim().to_owned());
        if let Some(id) = &account_id {
            if broker::AccountId::new(id.as_str()).is_none() {
                return Err(ConfigError::invalid(vars::RELAY_ACCOUNT_ID, "1 to 128 printable ASCII characters", id));
            }
        }
        let millis = |name, default: Duration, min, max| {
            config::parse_between_or(source, name, default.as_millis() as u64, min, max).map(Duration::from_millis)
        };
        let secs = |name, default: Duration, min, max| {
            config::parse_between_or(source, name, default.as_secs(), min, max).map(Duration::from_secs)
        };
        Ok(Self {
            addr: config::parse(source, vars::RELAY_ADDR)?
                .unwrap_or_else(|| defaults::ADDR.parse().expect("a valid default address")),
            functions_url,
            webhook_secret: required(signing_secret(source, shared::WEBHOOK_SECRET, true)?),
            ingest_secret: required(signing_secret(source, shared::INGEST_SECRET, true)?),
            alpaca,
            stream_url,
            data_stream_url,
            account_id,
            symbols,
            tick_interval: millis(vars::RELAY_TICK_INTERVAL_MS, defaults::TICK_INTERVAL, 10, 10_000)?,
            sync_interval: secs(vars::RELAY_SYNC_INTERVAL_SECS, defaults::SYNC_INTERVAL, 10, 86_400)?,
            backfill_lookback: secs(vars::RELAY_BACKFILL_LOOKBACK_SECS, defaults::BACKFILL_LOOKBACK, 0, 86_400)?,
            log_filter: config::optional(source, vars::RELAY_LOG).unwrap_or_else(|| "info".to_owned()),
        })
    }
}

/// `signing_secret(…, true)` never answers `None`.
fn required(secret: Option<Secret>) -> Secret {
    secret.expect("a required secret is present")
}

/// `https://host` → `wss://host/stream`, `http://…` → `ws://…/stream`.
fn default_stream_url(base_url: &str) -> String {
    let rest = base_url.strip_prefix("https://").map(|r| ("wss://", r));
    let (scheme, rest) = rest.unwrap_or_else(|| ("ws://", base_url.trim_start_matches("http://")));
    format!("{scheme}{rest}/stream")
}

fn websocket_url(name: &str, url: &str) -> Result<String, ConfigError> {
    if url.starts_with("wss://") || url.starts_with("ws://") {
        Ok(url.to_owned())
    } else {
        Err(ConfigError::invalid(name, "a ws(s):// URL", url))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn source(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            (vars::FUNCTIONS_URL, "http://127.0.0.1:3000/"),
            (shared::WEBHOOK_SECRET, SECRET),
            (shared::INGEST_SECRET, SECRET),
            (shared::APCA_API_KEY_ID, "key"),
            (shared::APCA_API_SECRET_KEY, "secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        vars
    }

    #[test]
    fn defaults_point_at_paper_trading_and_iex() {
        let config = Config::from_source(&source(&[])).unwrap();
        assert_eq!(config.functions_url, "http://127.0.0.1:3000");
        assert_eq!(config.stream_url, "wss://paper-api.alpaca.markets/stream");
        assert_eq!(config.data_stream_url.as_deref(), Some(defaults::DATA_STREAM_URL));
        assert_eq!((config.tick_interval, config.sync_interval), (defaults::TICK_INTERVAL, defaults::SYNC_INTERVAL));
        assert!(config.symbols.is_empty() && config.account_id.is_none());
    }

    #[test]
    fn a_local_base_url_gets_a_plain_stream_and_market_data_can_be_off() {
        let config = Config::from_source(&source(&[
            (shared::APCA_API_BASE_URL, "http://127.0.0.1:9999"),
            (vars::APCA_DATA_STREAM_URL, "off"),
            (vars::RELAY_SYMBOLS, "AAPL,BTC/USD"),
        ]))
        .unwrap();
        assert_eq!(config.stream_url, "ws://127.0.0.1:9999/stream");
        assert_eq!(config.data_stream_url, None);
        assert_eq!(config.symbols.len(), 2);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            (vars::FUNCTIONS_URL, "127.0.0.1:3000"),
            (vars::APCA_STREAM_URL, "https://x/stream"),
            (vars::RELAY_SYMBOLS, "AAPL,../x"),
            (vars::RELAY_TICK_INTERVAL_MS, "5"),
            (vars::RELAY_ACCOUNT_ID, "has space"),
            (shared::WEBHOOK_SECRET, "short"),
        ] {
            let error = Config::from_source(&source(&[(name, value)])).unwrap_err();
            assert_eq!(error.name(), name, "{error}");
        }
        let mut missing = source(&[]);
        missing.remove(vars::FUNCTIONS_URL);
        assert_eq!(Config::from_source(&missing).unwrap_err().name(), vars::FUNCTIONS_URL);
    }
}
