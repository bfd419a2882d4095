//! The broker seam of the ingest functions: the two questions a fill raises
//! ("what is this position now?", "what are the balances now?") as one small
//! async trait with `Decimal` values.
//!
//! The functions depend only on this crate. `broker-alpaca` implements it on
//! `apca` (GPL-3.0-or-later), so the licence boundary is that one crate, and
//! tests can pass a plain fake instead.
//!
//! # Layout
//! - [`Broker`]: the trait; [`AccountId`] is passed on every call so a
//!   multi-account API (Alpaca's Broker API) fits the same shape.
//! - [`BrokerPosition`], [`BrokerAccount`]: what it answers.
//! - [`BrokerError`]: unavailable (retry later) versus refused or unreadable.
//! - [`Deferred`]: a broker built on a blocking thread in the background, so
//!   a slow client setup stays off the startup path.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use common::event::{PositionSide, Symbol};
use futures::future::{BoxFuture, FutureExt, Shared};
use rust_decimal::Decimal;

/// The broker's id of a trading account, as its webhooks carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Longest accepted account id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks and wraps an account id: 1 to [`Self::MAX_LEN`] printable
    /// ASCII characters without spaces.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        let valid = !id.is_empty() && id.len() <= Self::MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic());
        valid.then_some(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An open position as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPosition {
    /// The symbol.
    pub symbol: Symbol,
    /// Absolute number of shares; [`Self::side`] gives the direction.
    pub quantity: Decimal,
    /// Long or short.
    pub side: PositionSide,
    /// Average entry price per share.
    pub average_entry_price: Decimal,
    /// The broker's latest price, when it has one.
    pub current_price: Option<Decimal>,
}

/// Balances as the broker reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAccount {
    /// Cash balance.
    pub cash: Decimal,
    /// Cash plus the market value of all positions.
    pub equity: Decimal,
    /// Equity at the previous market close: the base of the day's P&L.
    pub last_equity: Decimal,
    /// What the account can spend on new positions.
    pub buying_power: Decimal,
}

/// Why a broker call failed. Messages are for logs, not for clients.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    /// The broker could not be reached, did not answer in time, or answered
    /// that it is overloaded (5xx, 429). Retrying later may succeed.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the call (bad credentials, unknown account): a
    /// configuration problem that retrying does not fix.
    #[error("broker refused the request: {0}")]
    Refused(String),
    /// The broker answered something this code cannot read.
    #[error("unreadable broker answer: {0}")]
    Malformed(String),
}

/// A broker API, reduced to what the ingest functions ask.
#[async_trait]
pub trait Broker: Send + Sync + fmt::Debug + 'static {
    /// The account's current position in `symbol`; `None` when it holds
    /// none (the fill closed it).
    async fn position(&self, account: &AccountId, symbol: &Symbol) -> Result<Option<BrokerPosition>, BrokerError>;

    /// The account's current balances.
    async fn account(&self, account: &AccountId) -> Result<BrokerAccount, BrokerError>;

    /// Every open position of the account (position sync).
    async fn positions(&self, account: &AccountId) -> Result<Vec<BrokerPosition>, BrokerError>;
}

/// A broker whose construction runs on a blocking thread, started at once
/// and awaited by the first call that needs it. Building `apca`'s HTTPS
/// client loads the system CA store (about 100 ms here), which would
/// otherwise delay every cold start's first answer, even for requests that
/// never call the broker.
#[derive(Clone)]
pub struct Deferred {
    ready: Shared<BoxFuture<'static, Result<Arc<dyn Broker>, BrokerError>>>,
}

impl Deferred {
    /// Starts `build` on tokio's blocking pool. Call within a runtime.
    pub fn spawn<F>(build: F) -> Self
    where
        F: FnOnce() -> Result<Arc<dyn Broker>, BrokerError> + Send + 'static,
    {
        let handle = tokio::task::spawn_blocking(build);
        let ready = async move {
            handle
                .await
                .unwrap_or_else(|e| Err(BrokerError::Refused(format!("building the broker client failed: {e}"))))
        };
        Self { ready: ready.boxed().shared() }
    }
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.ready.peek() {
            None => "building",
            Some(Ok(_)) => "ready",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("Deferred").field("state", &state).finish()
    }
}

#[async_trait]
impl Broker for Deferred {
    async fn position(&self, account: &AccountId, symbol: &Symbol) -> Result<Option<BrokerPosition>, BrokerError> {
        self.ready.clone().await?.position(account, symbol).await
    }

    async fn account(&self, account: &AccountId) -> Result<BrokerAccount, BrokerError> {
        self.ready.clone().await?.account(account).await
    }

    async fn positions(&self, account: &AccountId) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.ready.clone().await?.positions(account).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl Broker for Fixed {
        async fn position(&self, _: &AccountId, _: &Symbol) -> Result<Option<BrokerPosition>, BrokerError> {
            Ok(None)
        }

        async fn account(&self, _: &AccountId) -> Result<BrokerAccount, BrokerError> {
            Err(BrokerError::Unavailable("fixed".into()))
        }

        async fn positions(&self, _: &AccountId) -> Result<Vec<BrokerPosition>, BrokerError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn deferred_answers_once_built_and_reports_a_failed_build() {
        let account = AccountId::new("a").unwrap();
        let symbol = Symbol::new("AAPL").unwrap();
        let built = Deferred::spawn(|| Ok(Arc::new(Fixed) as Arc<dyn Broker>));
        assert_eq!(built.position(&account, &symbol).await, Ok(None));
        assert!(matches!(built.account(&account).await, Err(BrokerError::Unavailable(_))));
        assert_eq!(built.positions(&account).await, Ok(Vec::new()));
        assert!(format!("{built:?}").contains("ready"));
        let failed = Deferred::spawn(|| Err(BrokerError::Refused("bad URL".into())));
        assert_eq!(failed.position(&account, &symbol).await, Err(BrokerError::Refused("bad URL".into())));
    }

    #[test]
    fn account_ids_are_bounded_printable_text() {
        assert!(AccountId::new("904837e3-3b76-47ec-b432-046db621571b").is_some());
        assert!(AccountId::new("").is_none());
        assert!(AccountId::new("has space").is_none());
        assert!(AccountId::new("x".repeat(AccountId::MAX_LEN + 1)).is_none());
    }
}
