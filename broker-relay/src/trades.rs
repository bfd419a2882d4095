//! The trade-updates stream, relayed: every update goes, in the order
//! Alpaca sent it, to the broker webhook with the account id beside it.
//!
//! After every (re)connect, and before the first live update is read, the
//! fills since the stream was last heard from (minus [`OVERLAP`]; at start,
//! the configured lookback) are backfilled from the REST API and sent the
//! same way. The live updates wait in the socket meanwhile, so nothing falls
//! between the backfill and the stream; what arrives both ways is published
//! once (the webhook names a fill by its order and filled quantity). A
//! backfill that fails drops the connection, so it is tried again with the
//! next one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_alpaca::stream::{StreamError, TradeUpdates};
use broker_alpaca::AlpacaBroker;
use chrono::{DateTime, Utc};
use functions::Function;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::forward::{Functions, Retry, SendError};
use crate::health::{self, Health};
use crate::reconnect::{stopped, Reconnect};

/// How far before the last moment the stream was heard from a backfill
/// starts: covers clock skew between us and Alpaca's activity times.
pub(crate) const OVERLAP: Duration = Duration::from_secs(60);

/// The trade-updates side of the relay.
#[derive(Debug)]
pub(crate) struct Trades {
    pub(crate) alpaca: Arc<AlpacaBroker>,
    pub(crate) url: String,
    pub(crate) key_id: String,
    pub(crate) secret: String,
    pub(crate) account_id: String,
    pub(crate) functions: Functions,
    pub(crate) health: Arc<Health>,
    /// Asks for a position sync (after every reconnect).
    pub(crate) sync_now: Arc<Notify>,
    /// Asks for the held symbols to be read again (after a fill).
    pub(crate) refresh_symbols: Arc<Notify>,
    pub(crate) lookback: Duration,
}

impl Trades {
    /// Runs until `stop` turns true.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut covered_until = Utc::now() - self.lookback;
        let mut reconnect = Reconnect::new();
        while !*stop.borrow() {
            match TradeUpdates::connect(&self.url, &self.key_id, &self.secret).await {
                Ok(stream) => {
                    self.health.connected(&self.health.trades);
                    tracing::info!(url = %self.url, "Trade updates stream connected.");
                    let connected = Instant::now();
                    covered_until = self.relay(stream, covered_until, &mut stop).await;
                    self.health.disconnected(&self.health.trades);
                    reconnect.connected_for(connected.elapsed());
                }
                Err(error) => {
                    self.health.disconnected(&self.health.trades);
                    match error {
                        StreamError::Refused(_) => tracing::error!(%error, "Trade updates stream refused the keys."),
                        _ => tracing::warn!(%error, "Trade updates stream unavailable."),
                    }
                }
            }
            reconnect.wait(&mut stop).await;
        }
    }

    /// Backfills since `covered_until`, then relays live updates until the
    /// stream fails or `stop`; answers the new `covered_until`.
    async fn relay(
        &self,
        mut stream: TradeUpdates,
        covered_until: DateTime<Utc>,
        stop: &mut watch::Receiver<bool>,
    ) -> DateTime<Utc> {
        if let Err(error) = self.backfill(covered_until - OVERLAP, stop).await {
            tracing::warn!(%error, "Backfill failed; reconnecting to try again.");
            stream.close().await;
            return covered_until;
        }
        self.sync_now.notify_one();
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = stopped(stop) => {
                    let heard = heard_at(stream.last_heard());
                    stream.close().await;
                    return heard;
                }
            };
            match next {
                Ok(update) => {
                    self.health.message(&self.health.trades);
                    let fill = is_fill(&update);
                    self.send(update, stop).await;
                    if fill {
                        self.refresh_symbols.notify_one();
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Trade updates stream lost.");
                    return heard_at(stream.last_heard());
                }
            }
        }
    }

    /// Sends the fills after `after`; the backfill's own errors (the REST
    /// API) are returned, a send refused by the webhook is logged.
    async fn backfill(
        &self,
        after: DateTime<Utc>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), broker::BrokerError> {
        let fills = self.alpaca.fills_after(&self.account_id, after).await?;
        if !fills.is_empty() {
            tracing::info!(fills = fills.len(), %after, "Backfilling fills the stream may have missed.");
        }
        metrics::counter!(health::names::BACKFILLED).increment(fills.len() as u64);
        for fill in fills {
            // Already carries the account id.
            self.forward(&fill, stop).await;
        }
        // Positions may have moved while the stream was away.
        self.refresh_symbols.notify_one();
        Ok(())
    }

    /// One live update, with the account id beside it.
    async fn send(&self, mut update: Value, stop: &mut watch::Receiver<bool>) {
        if let Some(object) = update.as_object_mut() {
            object.insert("account_id".into(), Value::from(self.account_id.clone()));
        }
        self.forward(&update, stop).await;
    }

    /// Sends one update, retrying until it is taken or refused; a stop
    /// abandons it (the next start's backfill covers fills).
    async fn forward(&self, update: &Value, stop: &mut watch::Receiver<bool>) {
        let sent = tokio::select! {
            sent = self.functions.send(Function::BrokerWebhook, update, Retry::Forever) => sent,
            () = stopped(stop) => {
                tracing::warn!(event = %update["event"], order = %update["order"]["id"], "Stopping with a trade update unsent.");
                return;
            }
        };
        match sent {
            Ok(_) => health::forwarded("trade_update", "ok"),
            Err(SendError::Refused { status, body }) => {
                health::forwarded("trade_update", "refused");
                tracing::error!(status, %body, event = %update["event"], order = %update["order"]["id"], "The broker webhook refused a trade update.");
            }
            Err(error) => {
                health::forwarded("trade_update", "failed");
                tracing::error!(%error, "A trade update could not be sent.");
            }
        }
    }
}

fn is_fill(update: &Value) -> bool {
    matches!(update["event"].as_str(), Some("fill" | "partial_fill"))
}

/// The wall-clock time of `instant` (a moment in the past).
fn heard_at(instant: Instant) -> DateTime<Utc> {
    let ago = chrono::Duration::from_std(instant.elapsed()).unwrap_or_default();
    Utc::now() - ago
}
