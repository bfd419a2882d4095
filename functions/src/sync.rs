//! Position sync, the design note's Position Manager: the broker's positions
//! and balances of one account compared with the user's snapshot, and a
//! correction published only where they differ (`POST /internal/position-sync`,
//! signed with the ingest secret; the broker relay calls it after every
//! reconnect and periodically).
//!
//! - A position the broker has whose quantity, side or entry price differs
//!   from the snapshot's (or that the snapshot lacks) gets a `position_update`
//!   with the broker's values, valued at the broker's price.
//! - A position the snapshot holds and the broker no longer has is closed
//!   (quantity 0).
//! - The account gets an `account_update` when its cash or buying power
//!   differs (equity moves with the marks at the gateway, so it is not drift).
//! - A price difference alone is not drift: marks value positions.
//!
//! Dedupe ids name the snapshot compared (`sync:<epoch>:<seq>:<symbol>`), so
//! a retried or concurrent sync against the same state publishes once, and a
//! later drift, against a later state, is corrected again.

use std::collections::{HashMap, HashSet};

use broker::{BrokerAccount, BrokerPosition};
use common::event::{Position, Symbol, Timestamp};
use common::pnl;
use event_log::NewEvent;
use serde::{Deserialize, Serialize};

use crate::accounts::check_account_id;
use crate::deps::Deps;
use crate::error::Error;
use crate::publish::{publish_all, Outcome};
use crate::webhook::{account_event, closed_position, envelope_position};

/// Most broker positions one sync compares; a larger book is refused (502)
/// rather than published in part.
pub const MAX_SYNC_POSITIONS: usize = 10_000;

/// Which account to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    /// The broker account (linked to its user).
    pub account_id: String,
}

/// What a sync found and published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    /// Events published now, and ones an earlier sync of the same state had.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Positions the broker reported.
    pub positions: usize,
    /// Positions corrected (added, or quantity, side or entry price fixed).
    pub corrected: usize,
    /// Positions closed: held in the snapshot, gone at the broker.
    pub closed: usize,
    /// Whether the account's balances were corrected.
    pub account: bool,
}

impl From<SyncOutcome> for Outcome {
    fn from(sync: SyncOutcome) -> Self {
        sync.outcome
    }
}

/// The rules a sync request meets beyond its shape; a refusal names the field.
pub fn check(request: &SyncRequest) -> Result<broker::AccountId, Error> {
    check_account_id("accountId", &request.account_id)
}

/// Handles one sync request.
pub async fn handle(request: SyncRequest, deps: &Deps) -> Result<SyncOutcome, Error> {
    let account = check(&request)?;
    let user = deps.index.account_owner(account.as_str()).await?.ok_or(Error::UnknownAccount)?;
    let broker = deps.broker()?;
    let (positions, balances) =
        tokio::try_join!(deps.broker_call(broker.positions(&account)), deps.broker_call(broker.account(&account)),)?;
    if positions.len() > MAX_SYNC_POSITIONS {
        return Err(Error::Broker(broker::BrokerError::Malformed(format!(
            "{} positions, more than the {MAX_SYNC_POSITIONS} a sync compares",
            positions.len()
        ))));
    }
    let snapshot = deps.log.snapshot(&user).await?;
    let now = Timestamp::now();
    let corrections = corrections(&snapshot.positions, &positions)?;
    let account_drift = account_differs(snapshot.account.as_ref(), &balances);

    let stem = format!("sync:{}:{}", snapshot.epoch.as_deref().unwrap_or("-"), snapshot.seq);
    let mut events: Vec<NewEvent> = corrections
        .iter()
        .map(|position| {
            let id = format!("{stem}:{}", position.symbol);
            NewEvent::new(envelope_position(position.clone(), &user, now), id)
        })
        .collect();
    if account_drift {
        events.push(NewEvent::new(account_event(&balances, &user, now), format!("{stem}:account")));
    }
    let outcome = publish_all(&*deps.log, &events).await?;
    for position in &corrections {
        deps.index.set_holding(&user, &position.symbol, !position.is_closed()).await?;
    }

    let closed = corrections.iter().filter(|p| p.is_closed()).count();
    let result = SyncOutcome {
        outcome,
        positions: positions.len(),
        corrected: corrections.len() - closed,
        closed,
        account: account_drift,
    };
    if events.is_empty() {
        tracing::debug!(%user, positions = result.positions, "Position sync: no drift.");
    } else {
        tracing::info!(
            %user,
            positions = result.positions,
            corrected = result.corrected,
            closed = result.closed,
            account = result.account,
            published = outcome.published,
            "Position sync corrected drift."
        );
    }
    Ok(result)
}

/// The positions to publish: the broker's where the snapshot differs, and
/// closed ones for what only the snapshot holds, by symbol.
fn corrections(snapshot: &[Position], broker: &[BrokerPosition]) -> Result<Vec<Position>, Error> {
    let held: HashMap<&Symbol, &Position> =
        snapshot.iter().filter(|p| !p.is_closed()).map(|p| (&p.symbol, p)).collect();
    let mut seen = HashSet::with_capacity(broker.len());
    let mut out = Vec::new();
    for position in broker {
        if !seen.insert(&position.symbol) {
            continue;
        }
        let previous = held.get(&position.symbol).copied();
        let same = previous.is_some_and(|p| {
            p.quantity == position.quantity
                && p.side == position.side
                && p.entry_price == pnl::price(position.average_entry_price)
        });
        if same {
            continue;
        }
        // The broker's price, else the last one we showed, else the entry.
        let price =
            position.current_price.or(previous.map(|p| p.current_price)).unwrap_or(position.average_entry_price);
        let valued = pnl::position(
            position.symbol.clone(),
            position.side,
            position.quantity,
            position.average_entry_price,
            price,
        )
        .map_err(|e| Error::Broker(broker::BrokerError::Malformed(format!("position of {}: {e}", position.symbol))))?;
        let kept = previous.filter(|p| p.side == position.side);
        out.push(Position {
            strategy_id: kept.and_then(|p| p.strategy_id.clone()),
            opened_at: kept.and_then(|p| p.opened_at),
            ..valued
        });
    }
    let mut gone: Vec<&Position> = held.values().copied().filter(|p| !seen.contains(&p.symbol)).collect();
    gone.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    out.extend(gone.into_iter().map(|p| closed_position(p.symbol.clone(), p.side, p.current_price, Some(p))));
    Ok(out)
}

/// Cash or buying power differ (to the cent), or there is no account yet.
fn account_differs(snapshot: Option<&common::event::Account>, broker: &BrokerAccount) -> bool {
    snapshot.is_none_or(|account| {
        account.cash != pnl::round_money(broker.cash) || account.buying_power != pnl::round_money(broker.buying_power)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::event::PositionSide;
    use rust_decimal::Decimal;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn held(symbol: &str, qty: &str, entry: &str) -> Position {
        pnl::position(Symbol::new(symbol).unwrap(), PositionSide::Long, dec(qty), dec(entry), dec("100")).unwrap()
    }

    fn at_broker(symbol: &str, qty: &str, entry: &str) -> BrokerPosition {
        BrokerPosition {
            symbol: Symbol::new(symbol).unwrap(),
            quantity: dec(qty),
            side: PositionSide::Long,
            average_entry_price: dec(entry),
            current_price: Some(dec("101")),
        }
    }

    #[test]
    fn only_drift_is_corrected_and_what_the_broker_lacks_is_closed() {
        let snapshot = [held("AAPL", "10", "90"), held("MSFT", "5", "300"), held("TSLA", "2", "200")];
        let broker = [at_broker("AAPL", "10", "90.00"), at_broker("MSFT", "7", "300"), at_broker("NVDA", "1", "50")];
        let fixed = corrections(&snapshot, &broker).unwrap();
        let summary: Vec<(&str, String)> = fixed.iter().map(|p| (p.symbol.as_str(), p.quantity.to_string())).collect();
        assert_eq!(summary, [("MSFT", "7".to_owned()), ("NVDA", "1".to_owned()), ("TSLA", "0".to_owned())]);
        assert_eq!(fixed[0].current_price, dec("101.00"), "valued at the broker's price");
    }

    #[test]
    fn a_price_difference_alone_is_not_drift() {
        let snapshot = [held("AAPL", "10", "90")];
        assert!(corrections(&snapshot, &[at_broker("AAPL", "10", "90")]).unwrap().is_empty());
    }
}
