//! The account's book, kept in step: a position sync (the functions'
//! `/internal/position-sync`) every sync interval and after every reconnect
//! of the trade stream, and the set of held symbols — which market data
//! follows — read from the broker after every sync and every fill.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use broker::{AccountId, Broker};
use broker_alpaca::AlpacaBroker;
use common::event::Symbol;
use functions::Function;
use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::forward::{Functions, Retry, SendError};
use crate::health;
use crate::reconnect::stopped;

/// Attempts per sync request (the next interval repeats it anyway).
const SYNC_ATTEMPTS: u32 = 3;

/// The sync and symbol side of the relay.
#[derive(Debug)]
pub(crate) struct Book {
    pub(crate) alpaca: Arc<AlpacaBroker>,
    pub(crate) account_id: AccountId,
    pub(crate) functions: Functions,
    pub(crate) interval: Duration,
    /// Configured symbols, always followed.
    pub(crate) extra: Vec<Symbol>,
    pub(crate) sync_now: Arc<Notify>,
    pub(crate) refresh_symbols: Arc<Notify>,
    pub(crate) symbols: watch::Sender<BTreeSet<String>>,
}

impl Book {
    /// Runs until `stop` turns true.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the stream's connect asks for the first sync
        self.refresh().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.sync().await,
                () = self.sync_now.notified() => self.sync().await,
                () = self.refresh_symbols.notified() => self.refresh().await,
                () = stopped(&mut stop) => return,
            }
        }
    }

    async fn sync(&self) {
        let body = json!({"accountId": self.account_id.as_str()});
        match self.functions.send(Function::PositionSync, &body, Retry::Attempts(SYNC_ATTEMPTS)).await {
            Ok(answer) => {
                health::forwarded("sync", "ok");
                tracing::debug!(%answer, "Position sync done.");
            }
            Err(error) => {
                let outcome = if matches!(error, SendError::Refused { .. }) { "refused" } else { "failed" };
                health::forwarded("sync", outcome);
                tracing::warn!(%error, "Position sync failed.");
            }
        }
        self.refresh().await;
    }

    /// The held symbols, read from the broker, with the configured ones.
    async fn refresh(&self) {
        match self.alpaca.positions(&self.account_id).await {
            Ok(positions) => {
                let mut symbols: BTreeSet<String> = self.extra.iter().map(|s| s.as_str().to_owned()).collect();
                symbols.extend(positions.into_iter().map(|p| p.symbol.as_str().to_owned()));
                self.symbols.send_if_modified(|current| {
                    let changed = *current != symbols;
                    *current = symbols;
                    changed
                });
            }
            Err(error) => tracing::warn!(%error, "Could not read the held symbols; keeping the last ones."),
        }
    }
}
