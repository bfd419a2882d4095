//! Market data, relayed: the trades of the symbols the account holds (and
//! any configured), conflated per symbol over the tick interval (the print
//! with the latest time wins) and sent as one batch to the price-ticks
//! function. The subscription follows the held symbols as they change.
//!
//! A batch that cannot be sent after a few attempts is dropped: a newer
//! print follows within the interval, and the marks keep the newest anyway.
//! Symbols with a slash (crypto pairs) are on Alpaca's crypto feed, not on
//! this stream, and are left out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_alpaca::stream::{MarketData, Print, StreamError};
use chrono::{DateTime, Utc};
use functions::Function;
use serde_json::json;
use tokio::sync::watch;

use crate::forward::{Functions, Retry};
use crate::health::{self, Health};
use crate::reconnect::{stopped, Reconnect};

/// Attempts per price batch.
const BATCH_ATTEMPTS: u32 = 3;

/// The market-data side of the relay.
#[derive(Debug)]
pub(crate) struct Market {
    pub(crate) url: String,
    pub(crate) key_id: String,
    pub(crate) secret: String,
    pub(crate) functions: Functions,
    pub(crate) health: Arc<Health>,
    /// The symbols to follow.
    pub(crate) symbols: watch::Receiver<BTreeSet<String>>,
    pub(crate) interval: Duration,
}

impl Market {
    /// Runs until `stop` turns true.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut reconnect = Reconnect::new();
        while !*stop.borrow() {
            match MarketData::connect(&self.url, &self.key_id, &self.secret).await {
                Ok(stream) => {
                    self.health.connected(&self.health.market);
                    tracing::info!(url = %self.url, "Market data stream connected.");
                    let connected = Instant::now();
                    if let Err(error) = self.relay(stream, &mut stop).await {
                        tracing::warn!(%error, "Market data stream lost.");
                    }
                    self.health.disconnected(&self.health.market);
                    reconnect.connected_for(connected.elapsed());
                }
                Err(error) => {
                    self.health.disconnected(&self.health.market);
                    tracing::warn!(%error, "Market data stream unavailable.");
                }
            }
            reconnect.wait(&mut stop).await;
        }
    }

    async fn relay(&mut self, mut stream: MarketData, stop: &mut watch::Receiver<bool>) -> Result<(), StreamError> {
        let mut subscribed: BTreeSet<String> = BTreeSet::new();
        self.symbols.mark_changed();
        let mut latest: HashMap<String, Print> = HashMap::new();
        let mut flush = tokio::time::interval(self.interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = self.symbols.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let wanted: BTreeSet<String> =
                        self.symbols.borrow_and_update().iter().filter(|s| !s.contains('/')).cloned().collect();
                    let added: Vec<String> = wanted.difference(&subscribed).cloned().collect();
                    let removed: Vec<String> = subscribed.difference(&wanted).cloned().collect();
                    if !added.is_empty() {
                        stream.subscribe(&added).await?;
                    }
                    if !removed.is_empty() {
                        stream.unsubscribe(&removed).await?;
                    }
                    if !added.is_empty() || !removed.is_empty() {
                        tracing::info!(symbols = wanted.len(), ?added, ?removed, "Market data subscription changed.");
                    }
                    subscribed = wanted;
                }
                prints = stream.next() => {
                    let prints = prints?;
                    self.health.message(&self.health.market);
                    metrics::counter!(health::names::PRINTS).increment(prints.len() as u64);
                    for print in prints {
                        keep_latest(&mut latest, print);
                    }
                }
                _ = flush.tick() => {
                    if !latest.is_empty() {
                        self.send(std::mem::take(&mut latest)).await;
                    }
                }
                () = stopped(stop) => {
                    stream.close().await;
                    return Ok(());
                }
            }
        }
    }

    /// One price batch of the conflated prints.
    async fn send(&self, latest: HashMap<String, Print>) {
        let ticks: Vec<_> = latest
            .into_values()
            .map(|p| json!({"symbol": p.symbol, "price": p.price.to_string(), "timestamp": p.timestamp}))
            .collect();
        let count = ticks.len();
        match self
            .functions
            .send(Function::PriceTicks, &json!({ "ticks": ticks }), Retry::Attempts(BATCH_ATTEMPTS))
            .await
        {
            Ok(_) => health::forwarded("price_batch", "ok"),
            Err(error) => {
                let outcome =
                    if matches!(error, crate::forward::SendError::Refused { .. }) { "refused" } else { "failed" };
                health::forwarded("price_batch", outcome);
                tracing::warn!(%error, ticks = count, "A price batch was dropped.");
            }
        }
    }
}

/// Keeps the print with the latest time per symbol (an unreadable time
/// counts as oldest).
fn keep_latest(latest: &mut HashMap<String, Print>, print: Print) {
    let time = |p: &Print| DateTime::parse_from_rfc3339(&p.timestamp).ok().map(|t| t.with_timezone(&Utc));
    match latest.get(&print.symbol) {
        Some(kept) if time(kept) > time(&print) => {}
        _ => {
            latest.insert(print.symbol.clone(), print);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(symbol: &str, price: i64, at: &str) -> Print {
        Print { symbol: symbol.into(), price: price.into(), timestamp: at.into() }
    }

    #[test]
    fn conflation_keeps_the_latest_print_per_symbol() {
        let mut latest = HashMap::new();
        keep_latest(&mut latest, print("AAPL", 1, "2026-01-05T15:00:00.100Z"));
        keep_latest(&mut latest, print("AAPL", 2, "2026-01-05T15:00:00.300Z"));
        keep_latest(&mut latest, print("AAPL", 3, "2026-01-05T15:00:00.200Z"));
        keep_latest(&mut latest, print("MSFT", 4, "2026-01-05T15:00:00.000Z"));
        assert_eq!(latest["AAPL"].price, 2.into(), "a late print of an older trade does not win");
        assert_eq!(latest.len(), 2);
    }
}
