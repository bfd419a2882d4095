//! [`broker::Broker`] on Alpaca's trading API, through `apca`.
//!
//! `apca` is GPL-3.0-or-later; this is the only crate that links it. It
//! speaks TLS through native-tls (OpenSSL): for Lambda's Amazon Linux build
//! images enable this crate's `vendored-openssl` feature.
//!
//! One API key set serves every call: the trading API knows one account per
//! key, so the [`AccountId`] the trait passes only selects the user upstream
//! (see docs/functions.md). Alpaca's Broker API, which serves many accounts
//! with one key, would put the id into the path instead.
//!
//! Calls carry no timeout of their own: the caller bounds them (the
//! functions use `BROKER_TIMEOUT_MS`), and dropping the future cancels the
//! request.
//!
//! # Layout
//! - [`AlpacaBroker`]: the client; `position` maps Alpaca's 404 to `None`,
//!   errors to [`BrokerError`] kinds (5xx, 429 and transport failures are
//!   `Unavailable`, 401/403 `Refused`), and numbers to `Decimal`.
//! - `tests/fake_alpaca.rs`: the real client against `test_support::alpaca`.

use std::str::FromStr;

use apca::api::v2::{account, asset, position};
use apca::{ApiInfo, Client, RequestError};
use async_trait::async_trait;
use broker::{AccountId, Broker, BrokerAccount, BrokerError, BrokerPosition};
use common::event::{PositionSide, Symbol};
use rust_decimal::Decimal;

/// The Alpaca trading API.
#[derive(Debug)]
pub struct AlpacaBroker {
    client: Client,
}

impl AlpacaBroker {
    /// A client of the API at `base_url` (e.g. `https://paper-api.alpaca.markets`,
    /// or a local fake) with one key pair.
    pub fn new(base_url: &str, key_id: &str, secret: &str) -> Result<Self, BrokerError> {
        let mut info = ApiInfo::from_parts(base_url, key_id, secret)
            .map_err(|e| BrokerError::Refused(format!("invalid Alpaca base URL: {e}")))?;
        // `from_parts` always derives `wss://…/stream`; match the base URL's
        // scheme instead (this crate never opens the stream, but a wrong
        // URL should not sit in the config either).
        if info.api_base_url.scheme() == "http" {
            let _ = info.api_stream_url.set_scheme("ws");
        }
        Ok(Self { client: Client::new(info) })
    }
}

#[async_trait]
impl Broker for AlpacaBroker {
    async fn position(&self, _account: &AccountId, symbol: &Symbol) -> Result<Option<BrokerPosition>, BrokerError> {
        // Alpaca names crypto pairs without the slash in paths (BTC/USD → BTCUSD).
        let path_symbol = asset::Symbol::Sym(symbol.as_str().replace('/', ""));
        let position = match self.client.issue::<position::Get>(&path_symbol).await {
            Ok(position) => position,
            Err(RequestError::Endpoint(position::GetError::NotFound(_))) => return Ok(None),
            Err(RequestError::Endpoint(error)) => {
                return Err(match error {
                    position::GetError::AuthenticationFailed(_) => refused("authentication failed"),
                    position::GetError::RateLimitExceeded(_) => unavailable("rate limit exceeded"),
                    position::GetError::UnexpectedStatus(status, _) => by_status(status.as_u16()),
                    other => BrokerError::Malformed(other.to_string()),
                })
            }
            Err(error) => return Err(transport(error)),
        };
        let quantity = decimal(&position.quantity, "position qty")?;
        if quantity.is_zero() {
            return Ok(None);
        }
        Ok(Some(BrokerPosition {
            symbol: symbol.clone(),
            quantity: quantity.abs(),
            side: match position.side {
                position::Side::Long => PositionSide::Long,
                position::Side::Short => PositionSide::Short,
            },
            average_entry_price: decimal(&position.average_entry_price, "avg_entry_price")?,
            current_price: position.current_price.as_ref().map(|p| decimal(p, "current_price")).transpose()?,
        }))
    }

    async fn account(&self, _account: &AccountId) -> Result<BrokerAccount, BrokerError> {
        let account = match self.client.issue::<account::Get>(&()).await {
            Ok(account) => account,
            Err(RequestError::Endpoint(error)) => {
                return Err(match error {
                    account::GetError::AuthenticationFailed(_) => refused("authentication failed"),
                    account::GetError::RateLimitExceeded(_) => unavailable("rate limit exceeded"),
                    account::GetError::UnexpectedStatus(status, _) => by_status(status.as_u16()),
                    other => BrokerError::Malformed(other.to_string()),
                })
            }
            Err(error) => return Err(transport(error)),
        };
        Ok(BrokerAccount {
            cash: decimal(&account.cash, "cash")?,
            equity: decimal(&account.equity, "equity")?,
            last_equity: decimal(&account.last_equity, "last_equity")?,
            buying_power: decimal(&account.buying_power, "buying_power")?,
        })
    }
}

/// `apca` numbers are rationals (`num_decimal::Num`); their text form is a
/// plain decimal (at most 8 places), which `Decimal` reads exactly.
fn decimal(value: &impl std::fmt::Display, what: &str) -> Result<Decimal, BrokerError> {
    let text = value.to_string();
    Decimal::from_str(&text).map_err(|_| BrokerError::Malformed(format!("{what}: not a decimal: {text}")))
}

fn by_status(status: u16) -> BrokerError {
    if status >= 500 || status == 429 || status == 408 {
        unavailable(&format!("status {status}"))
    } else {
        refused(&format!("status {status}"))
    }
}

fn transport<E: std::fmt::Debug>(error: RequestError<E>) -> BrokerError {
    // Connection refused, reset, TLS or body read failures: transient.
    match error {
        RequestError::Endpoint(e) => BrokerError::Malformed(format!("{e:?}")),
        other => BrokerError::Unavailable(other.to_string()),
    }
}

fn refused(what: &str) -> BrokerError {
    BrokerError::Refused(what.to_owned())
}

fn unavailable(what: &str) -> BrokerError {
    BrokerError::Unavailable(what.to_owned())
}
