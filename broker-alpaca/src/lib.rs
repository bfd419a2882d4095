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
//! - [`stream`]: the trade-updates and market-data streams, for the broker
//!   relay (spoken directly over tokio-tungstenite; see there why).
//! - [`backfill`]: the fills a stream missed, from the REST API, as trade
//!   updates.
//! - [`AlpacaBroker`]: the client; `position` maps Alpaca's 404 to `None`,
//!   errors to [`BrokerError`] kinds (5xx, 429 and transport failures are
//!   `Unavailable`, 401/403 `Refused`), and numbers to `Decimal`.
//! - `tests/fake_alpaca.rs`: the real client against `test_support::alpaca`.

use std::str::FromStr;

/// One apca call, its errors in our kinds: 5xx, 429 and transport failures
/// `Unavailable`, 401/403 `Refused`, the rest `Malformed`. apca gives each
/// endpoint its own error enum with the same variants and no trait over
/// them, hence a macro; `special` arms (a 404 that means "none") go first.
macro_rules! issue {
    ($client:expr, $endpoint:ty, $input:expr, $module:ident :: $errors:ident $(, $special:pat => $answer:expr)* $(,)?) => {
        match $client.issue::<$endpoint>($input).await {
            Ok(answer) => Ok(answer),
            $(Err(apca::RequestError::Endpoint($special)) => $answer,)*
            Err(apca::RequestError::Endpoint(error)) => Err(match error {
                $module::$errors::AuthenticationFailed(_) => $crate::refused("authentication failed"),
                $module::$errors::RateLimitExceeded(_) => $crate::unavailable("rate limit exceeded"),
                $module::$errors::UnexpectedStatus(status, _) => $crate::by_status(status.as_u16()),
                other => broker::BrokerError::Malformed(other.to_string()),
            }),
            Err(error) => Err($crate::transport(error)),
        }
    };
}

pub mod backfill;
pub mod stream;

use apca::api::v2::{account, asset, position, positions};
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
        let position = issue!(self.client, position::Get, &path_symbol, position::GetError,
            position::GetError::NotFound(_) => return Ok(None))?;
        from_apca(symbol.clone(), &position)
    }

    async fn positions(&self, _account: &AccountId) -> Result<Vec<BrokerPosition>, BrokerError> {
        let positions = issue!(self.client, positions::List, &(), positions::ListError)?;
        let mut open = Vec::with_capacity(positions.len());
        for position in &positions {
            let symbol = Symbol::new(our_symbol(position))
                .map_err(|e| BrokerError::Malformed(format!("position symbol {:?}: {e}", position.symbol)))?;
            open.extend(from_apca(symbol, position)?);
        }
        Ok(open)
    }

    async fn account(&self, _account: &AccountId) -> Result<BrokerAccount, BrokerError> {
        let account = issue!(self.client, account::Get, &(), account::GetError)?;
        Ok(BrokerAccount {
            cash: decimal(&account.cash, "cash")?,
            equity: decimal(&account.equity, "equity")?,
            last_equity: decimal(&account.last_equity, "last_equity")?,
            buying_power: decimal(&account.buying_power, "buying_power")?,
        })
    }
}

/// A position in our terms; `None` for a zero quantity.
fn from_apca(symbol: Symbol, position: &position::Position) -> Result<Option<BrokerPosition>, BrokerError> {
    let quantity = decimal(&position.quantity, "position qty")?;
    if quantity.is_zero() {
        return Ok(None);
    }
    Ok(Some(BrokerPosition {
        symbol,
        quantity: quantity.abs(),
        side: match position.side {
            position::Side::Long => PositionSide::Long,
            position::Side::Short => PositionSide::Short,
        },
        average_entry_price: decimal(&position.average_entry_price, "avg_entry_price")?,
        current_price: position.current_price.as_ref().map(|p| decimal(p, "current_price")).transpose()?,
    }))
}

/// Alpaca lists crypto pairs without the slash (`BTCUSD`); ours have it
/// (`BTC/USD`), as the order and trade streams spell them. Other asset
/// classes keep their symbol.
fn our_symbol(position: &position::Position) -> String {
    if position.asset_class == asset::Class::Crypto {
        for quote in ["USDT", "USDC", "USD", "BTC"] {
            match position.symbol.strip_suffix(quote) {
                Some(base) if !base.is_empty() => return format!("{base}/{quote}"),
                _ => {}
            }
        }
    }
    position.symbol.clone()
}

/// `apca` numbers are rationals (`num_decimal::Num`); their text form is a
/// plain decimal (at most 8 places), which `Decimal` reads exactly.
fn decimal(value: &impl std::fmt::Display, what: &str) -> Result<Decimal, BrokerError> {
    let text = value.to_string();
    Decimal::from_str(&text).map_err(|_| BrokerError::Malformed(format!("{what}: not a decimal: {text}")))
}

pub(crate) fn by_status(status: u16) -> BrokerError {
    if status >= 500 || status == 429 || status == 408 {
        unavailable(&format!("status {status}"))
    } else {
        refused(&format!("status {status}"))
    }
}

pub(crate) fn transport<E: std::fmt::Debug>(error: RequestError<E>) -> BrokerError {
    // Connection refused, reset, TLS or body read failures: transient.
    match error {
        RequestError::Endpoint(e) => BrokerError::Malformed(format!("{e:?}")),
        other => BrokerError::Unavailable(other.to_string()),
    }
}

pub(crate) fn refused(what: &str) -> BrokerError {
    BrokerError::Refused(what.to_owned())
}

pub(crate) fn unavailable(what: &str) -> BrokerError {
    BrokerError::Unavailable(what.to_owned())
}
