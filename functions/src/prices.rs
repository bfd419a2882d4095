//! Price ticks: a batch of `{symbol, price, timestamp}` becomes the market
//! marks of its symbols, stored once per symbol and published once on the
//! symbol's channel ([`event_log::EventLog::put_marks`]). Marks are market
//! data, not user events: the gateways value their users' positions at them
//! (`common::pnl::Book`), so a tick costs one script call per symbol however
//! many users hold it.
//!
//! Per symbol only the latest tick of a batch counts, and a stored mark is
//! replaced only by a newer one: a retried, reordered or concurrent batch
//! changes nothing twice.

use std::collections::HashMap;
use std::time::Instant;

use common::event::{Mark, Symbol};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::deps::Deps;
use crate::error::Error;
use crate::publish::Outcome;

/// A batch of ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickBatch {
    /// The ticks, in any order.
    pub ticks: Vec<Tick>,
}

/// One price: the last trade price of a symbol (positive) and when the
/// market printed it. A tick is a mark as it arrives.
pub type Tick = Mark;

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickOutcome {
    /// User events published: always none (marks are market data).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Ticks received.
    pub ticks: usize,
    /// Distinct symbols among them.
    pub symbols: usize,
    /// Marks stored (newer than their symbol's stored mark).
    pub marks: usize,
    /// Symbols whose stored mark was as new or newer: nothing changed.
    pub stale: usize,
}

/// Handles one batch.
pub async fn handle(batch: TickBatch, deps: &Deps) -> Result<TickOutcome, Error> {
    let started = Instant::now();
    check(&batch, deps.limits.max_ticks)?;
    let latest: Vec<Mark> = latest_per_symbol(&batch.ticks).into_values().cloned().collect();
    let mut result = TickOutcome { ticks: batch.ticks.len(), symbols: latest.len(), ..TickOutcome::default() };
    let mut failure = None;
    for stored in deps.log.put_marks(&latest).await {
        match stored {
            Ok(true) => result.marks += 1,
            Ok(false) => result.stale += 1,
            Err(error) => {
                failure.get_or_insert(Error::from(error));
            }
        }
    }
    tracing::debug!(
        ticks = result.ticks,
        symbols = result.symbols,
        marks = result.marks,
        stale = result.stale,
        failed = failure.is_some(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Price batch ingested."
    );
    match failure {
        Some(error) => Err(error),
        None => Ok(result),
    }
}

/// The rules a batch must meet beyond its shape (at most `max_ticks`
/// ticks, positive prices; symbols are checked when decoded); a refusal
/// names the tick.
pub fn check(batch: &TickBatch, max_ticks: usize) -> Result<(), Error> {
    if batch.ticks.len() > max_ticks {
        return Err(Error::field("ticks", format!("at most {max_ticks} ticks per batch")));
    }
    for (i, tick) in batch.ticks.iter().enumerate() {
        if tick.price <= Decimal::ZERO {
            return Err(Error::field(format!("ticks[{i}].price"), "must be positive"));
        }
    }
    Ok(())
}

/// The latest tick of each symbol (the later one in the batch on a tie).
fn latest_per_symbol(ticks: &[Tick]) -> HashMap<&Symbol, &Tick> {
    let mut latest: HashMap<&Symbol, &Tick> = HashMap::new();
    for tick in ticks {
        let entry = latest.entry(&tick.symbol).or_insert(tick);
        if tick.timestamp >= entry.timestamp {
            *entry = tick;
        }
    }
    latest
}

impl From<TickOutcome> for Outcome {
    fn from(tick: TickOutcome) -> Self {
        tick.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(symbol: &str, price: &str, at: &str) -> Tick {
        Tick { symbol: Symbol::new(symbol).unwrap(), price: price.parse().unwrap(), timestamp: at.parse().unwrap() }
    }

    #[test]
    fn the_latest_tick_of_a_symbol_wins() {
        let ticks = [
            tick("AAPL", "1", "2026-01-03T15:30:45.000Z"),
            tick("AAPL", "3", "2026-01-03T15:30:47.000Z"),
            tick("AAPL", "2", "2026-01-03T15:30:46.000Z"),
            tick("MSFT", "5", "2026-01-03T15:30:45.000Z"),
            tick("MSFT", "6", "2026-01-03T15:30:45.000Z"),
        ];
        let latest = latest_per_symbol(&ticks);
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[&Symbol::new("AAPL").unwrap()].price, Decimal::from(3));
        assert_eq!(latest[&Symbol::new("MSFT").unwrap()].price, Decimal::from(6));
    }

    #[test]
    fn nonpositive_prices_and_oversized_batches_are_refused() {
        let batch = TickBatch {
            ticks: vec![tick("AAPL", "1", "2026-01-03T15:30:45Z"), tick("B", "0", "2026-01-03T15:30:45Z")],
        };
        assert!(matches!(check(&batch, 10), Err(Error::BadRequest { field: Some(f), .. }) if f == "ticks[1].price"));
        assert!(matches!(check(&batch, 1), Err(Error::BadRequest { field: Some(f), .. }) if f == "ticks"));
    }
}
