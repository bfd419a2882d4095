//! Price ticks: a batch of `{symbol, price, timestamp}` revalues the position
//! of every user holding each symbol ([`common::pnl::revalue`]) and moves the
//! user's equity by the change in market value.
//!
//! # Round trips
//! Independent of the number of holders: one `SSCAN` page per 10,000
//! holders of a symbol, one pipeline per 5,000 snapshot reads, one pipeline
//! per 1,000 publishes (see `docs/benchmarks.md`).
//!
//! # Retries
//! Per symbol only the latest tick of a batch counts. A position update's
//! dedupe id is `tick:<symbol>:<timestamp ms>:<user>`. Equity is
//! read-modify-write, so it is published *first*, under a dedupe id derived
//! from the user's holdings in this batch, and a user's position updates are
//! only published once that succeeded. A retry then recomputes from the
//! snapshot: positions already revalued have no delta left, and the account
//! update, already there, is a duplicate; nothing is counted twice.
//!
//! Ticks of one symbol are expected from one feed at a time: two batches
//! revaluing the same user at once could each read the account before the
//! other wrote it (docs/functions.md).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use common::event::{Account, Envelope, Event, Position, Symbol, Timestamp, UserId};
use common::pnl;
use event_log::{LogError, NewEvent, Published};
use futures::{StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::deps::Deps;
use crate::error::Error;
use crate::publish::Outcome;

/// Symbols whose holders are read at once.
const HOLDER_READS_IN_FLIGHT: usize = 16;

/// A batch of ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickBatch {
    /// The ticks, in any order.
    pub ticks: Vec<Tick>,
}

/// One price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// The symbol.
    pub symbol: Symbol,
    /// The last trade price, positive.
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// When the market printed it.
    pub timestamp: Timestamp,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickOutcome {
    /// Events published and duplicates.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Ticks received.
    pub ticks: usize,
    /// Distinct symbols among them.
    pub symbols: usize,
    /// Positions looked at (holders summed over symbols).
    pub positions: usize,
    /// Positions whose value did not change (or that were already revalued).
    pub unchanged: usize,
}

/// One user's part of a batch.
#[derive(Debug, Default)]
struct UserWork {
    /// `(symbol, tick ms)` of every position of the user the batch touches;
    /// names the account update.
    held: Vec<(Symbol, i64)>,
    /// Revalued positions with their dedupe ids.
    updates: Vec<NewEvent>,
    /// Sum of market-value changes.
    delta: Decimal,
}

/// Handles one batch.
pub async fn handle(batch: TickBatch, deps: &Deps) -> Result<TickOutcome, Error> {
    let started = Instant::now();
    check(&batch, deps.limits.max_ticks)?;
    let latest = latest_per_symbol(&batch.ticks);
    let mut result = TickOutcome { ticks: batch.ticks.len(), symbols: latest.len(), ..TickOutcome::default() };

    // Owned values in the futures: a borrowing closure here trips the
    // compiler's higher-ranked lifetime check inside axum handlers.
    let holders: Vec<(Tick, Vec<UserId>)> = futures::stream::iter(latest.into_values().cloned())
        .map(|tick| {
            let index = deps.index.clone();
            async move { index.holders(&tick.symbol).await.map(|users| (tick, users)) }
        })
        .buffer_unordered(HOLDER_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut wanted = Vec::new();
    let mut ticks = Vec::new();
    for (tick, users) in &holders {
        for user in users {
            wanted.push((user.clone(), tick.symbol.clone()));
            ticks.push(tick);
        }
    }
    result.positions = wanted.len();
    let positions = deps.index.positions(&wanted).await?;

    let now = Timestamp::now();
    let mut work: BTreeMap<UserId, UserWork> = BTreeMap::new();
    for (((user, _), tick), position) in wanted.into_iter().zip(ticks).zip(positions) {
        // A holder without a position: the index is ahead of (or behind) the
        // snapshot for a moment; the next fill sets it right.
        let Some(old) = position else { continue };
        let entry = work.entry(user.clone()).or_default();
        entry.held.push((tick.symbol.clone(), tick.timestamp.unix_millis()));
        let new = match pnl::revalue(&old, tick.price) {
            Ok(new) => new,
            Err(error) => {
                tracing::warn!(%user, symbol = %tick.symbol, %error, "Position not revalued.");
                continue;
            }
        };
        let Some(delta) = new.market_value.checked_sub(old.market_value).and_then(|d| d.checked_add(entry.delta))
        else {
            tracing::warn!(%user, symbol = %tick.symbol, "Market value change out of range; position not revalued.");
            continue;
        };
        if new == old {
            result.unchanged += 1;
            continue;
        }
        entry.delta = delta;
        let dedupe = format!("tick:{}:{}:{user}", tick.symbol, tick.timestamp.unix_millis());
        entry.updates.push(NewEvent::new(position_event(new, &user, now), dedupe));
    }
    work.retain(|_, w| !w.updates.is_empty());

    // Phase 1: equity, for the users whose positions moved.
    let movers: Vec<UserId> = work.iter().filter(|(_, w)| !w.delta.is_zero()).map(|(u, _)| u.clone()).collect();
    let accounts = deps.index.accounts(&movers).await?;
    let mut account_events = Vec::new();
    let mut account_owners = Vec::new();
    for (user, account) in movers.iter().zip(accounts) {
        let Some(account) = account else { continue };
        let Some(w) = work.get(user) else { continue };
        match moved(&account, w.delta, now) {
            Some(moved) => {
                account_events.push(NewEvent::new(account_event(moved, user, now), account_dedupe(user, &w.held)));
                account_owners.push(user.clone());
            }
            None => tracing::warn!(%user, "Equity change out of range; account not updated."),
        }
    }
    let mut failure = None;
    let account_results = deps.log.publish_many(&account_events).await;
    for (user, published) in account_owners.iter().zip(account_results) {
        if !count(&mut result.outcome, published, &mut failure) {
            // Its positions wait for the retry, which recomputes this delta.
            work.remove(user);
        }
    }

    // Phase 2: the positions.
    let updates: Vec<NewEvent> = work.into_values().flat_map(|w| w.updates).collect();
    for published in deps.log.publish_many(&updates).await {
        count(&mut result.outcome, published, &mut failure);
    }

    tracing::info!(
        ticks = result.ticks,
        symbols = result.symbols,
        positions = result.positions,
        published = result.outcome.published,
        duplicates = result.outcome.duplicates,
        failed = failure.is_some(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Price batch ingested."
    );
    match failure {
        Some(error) => Err(error),
        None => Ok(result),
    }
}

fn check(batch: &TickBatch, max_ticks: usize) -> Result<(), Error> {
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

/// Counts one result; the first error is kept for the answer. `false`
/// when it failed.
fn count(outcome: &mut Outcome, published: Result<Published, LogError>, failure: &mut Option<Error>) -> bool {
    match published {
        Ok(published) => {
            outcome.count(&published);
            true
        }
        Err(error) => {
            failure.get_or_insert(error.into());
            false
        }
    }
}

/// The account with `delta` added to equity and the day's P&L.
fn moved(account: &Account, delta: Decimal, now: Timestamp) -> Option<Account> {
    let last_close = account.equity.checked_sub(account.day_pnl)?;
    let day_pnl = account.day_pnl.checked_add(delta)?;
    let day_pnl_percent = if last_close.is_zero() {
        Decimal::ZERO
    } else {
        day_pnl.checked_div(last_close)?.checked_mul(Decimal::ONE_HUNDRED)?
    };
    Some(Account {
        equity: pnl::round_money(account.equity.checked_add(delta)?),
        portfolio_value: pnl::round_money(account.portfolio_value.checked_add(delta)?),
        day_pnl: pnl::round_money(day_pnl),
        day_pnl_percent: pnl::round_percent(day_pnl_percent),
        timestamp: now,
        ..account.clone()
    })
}

/// `tick:acct:<user>:<digest of the batch's (symbol, time) the user holds>`:
/// the same on a retry of the same batch, different for the next batch.
fn account_dedupe(user: &UserId, held: &[(Symbol, i64)]) -> String {
    let mut held: Vec<_> = held.iter().map(|(symbol, millis)| format!("{symbol}@{millis}")).collect();
    held.sort_unstable();
    let digest = Sha256::digest(held.join(";").as_bytes());
    format!("tick:acct:{user}:{}", hex::encode(&digest[..8]))
}

fn position_event(position: Position, user: &UserId, now: Timestamp) -> Event {
    Event::from(Envelope::new(user.clone(), now, position))
}

fn account_event(account: Account, user: &UserId, now: Timestamp) -> Event {
    Event::from(Envelope::new(user.clone(), now, account))
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
    fn equity_and_day_pnl_move_by_the_delta() {
        let account = Account {
            equity: "104308.75".parse().unwrap(),
            buying_power: "354905.24".parse().unwrap(),
            cash: "50000.00".parse().unwrap(),
            portfolio_value: "104308.75".parse().unwrap(),
            day_pnl: "1234.56".parse().unwrap(),
            day_pnl_percent: "1.20".parse().unwrap(),
            timestamp: Timestamp::now(),
        };
        let moved = moved(&account, "-1234.56".parse().unwrap(), Timestamp::now()).unwrap();
        assert_eq!(moved.equity.to_string(), "103074.19");
        assert_eq!((moved.day_pnl.to_string(), moved.day_pnl_percent.to_string()), ("0.00".into(), "0.00".into()));
        assert_eq!((moved.cash, moved.buying_power), (account.cash, account.buying_power));
    }

    #[test]
    fn account_dedupe_ids_ignore_order_and_fit() {
        let user = UserId::new("u".repeat(UserId::MAX_LEN)).unwrap();
        let (a, b) = ((Symbol::new("AAPL").unwrap(), 1), (Symbol::new("MSFT").unwrap(), 2));
        let one = account_dedupe(&user, &[a.clone(), b.clone()]);
        assert_eq!(one, account_dedupe(&user, &[b.clone(), a.clone()]));
        assert_ne!(one, account_dedupe(&user, &[a, (b.0, 3)]));
        assert!(one.len() <= event_log::log::MAX_DEDUPE_ID_LEN);
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
