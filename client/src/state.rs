//! The portfolio as the client knows it ([`PortfolioState`]) and how
//! events, batches, snapshots and REST answers merge into it.
//!
//! Ordering rule: every state-changing message carries `seq`, the highest
//! user sequence number it covers, and on one connection these never go
//! down. A message whose `seq` is below the state's is stale (the state was
//! already brought further, e.g. by a REST snapshot) and is skipped; one at
//! the same `seq` is applied, because applying the latest values again is
//! harmless and the gateway's settle flush of held-back prices may repeat
//! the last `seq`. A snapshot always replaces everything.

use std::collections::{BTreeMap, VecDeque};

use common::event::{Account, Channel, Envelope, Order, Position, Symbol, Trade};
use common::protocol::delta::{DeltaMessage, MissingBase};
use common::protocol::Snapshot;
use common::protocol::{BatchData, ServerMessage, SnapshotData};

#[cfg(test)]
mod tests;

/// A user's portfolio: open positions, open orders, the account and the
/// most recent trades, as of `seq` in history `epoch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortfolioState {
    /// The history `seq` belongs to; `None` until the gateway names one
    /// (a user without any event yet has none).
    pub epoch: Option<String>,
    /// The highest sequence number merged.
    pub seq: u64,
    /// Open positions by symbol (a quantity of zero removes one).
    pub positions: BTreeMap<Symbol, Position>,
    /// Open orders by order id (a closed status removes one).
    pub orders: BTreeMap<String, Order>,
    /// The latest balances, once known.
    pub account: Option<Account>,
    /// Recent trades, newest first, unique by trade id, bounded.
    pub trades: VecDeque<Trade>,
}

/// What merging a REST snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Merge {
    /// The state changed (adopted, or only learnt its epoch).
    pub(crate) changed: bool,
    /// The REST snapshot replaced the state.
    pub(crate) adopted: bool,
    /// Positions, orders and account that differed at the same `seq` (or
    /// across an epoch change).
    pub(crate) differences: usize,
}

impl PortfolioState {
    /// The state a `snapshot` message (or the REST body) describes; its
    /// trades come oldest first, as on the wire.
    pub fn from_snapshot(epoch: Option<String>, seq: u64, data: SnapshotData, max_trades: usize) -> Self {
        let mut state = PortfolioState { epoch, seq, ..PortfolioState::default() };
        state.fill(data, max_trades);
        state
    }

    /// Merges one message from the socket; returns whether the state
    /// changed. Takes the message by value so payloads move into the state
    /// without a copy.
    pub fn apply(&mut self, message: ServerMessage, max_trades: usize) -> bool {
        match message {
            ServerMessage::Snapshot { seq, epoch, data, .. } => {
                *self = PortfolioState::from_snapshot(epoch, seq, data, max_trades);
                true
            }
            ServerMessage::Subscribed { epoch, .. } => self.learn_epoch(epoch),
            ServerMessage::PositionUpdate(e) => self.advance(e.seq, |s| s.put_position(e.data)),
            ServerMessage::OrderUpdate(e) => self.advance(e.seq, |s| s.put_order(e.data)),
            ServerMessage::AccountUpdate(e) => self.advance(e.seq, |s| s.account = Some(e.data)),
            ServerMessage::TradeExecuted(e) => self.advance(e.seq, |s| s.put_trade(e.data, max_trades)),
            ServerMessage::Batch(e) => self.advance(e.seq, |s| s.put_batch(e.data, max_trades)),
            ServerMessage::Pong { .. } | ServerMessage::Error { .. } => false,
        }
    }

    /// The full message a delta stands for, over what the state holds (a
    /// delta of a position or account it does not hold is refused).
    pub fn resolve(&self, delta: DeltaMessage) -> Result<ServerMessage, MissingBase> {
        Ok(match delta {
            DeltaMessage::PositionUpdate(m) => {
                let base = self.positions.get(&m.data.symbol);
                let position = m.data.apply(base)?;
                ServerMessage::PositionUpdate(Envelope {
                    seq: m.seq,
                    timestamp: m.timestamp,
                    user_id: m.user_id,
                    data: position,
                })
            }
            DeltaMessage::AccountUpdate(m) => {
                let account = m.data.apply(self.account.as_ref())?;
                ServerMessage::AccountUpdate(Envelope {
                    seq: m.seq,
                    timestamp: m.timestamp,
                    user_id: m.user_id,
                    data: account,
                })
            }
            DeltaMessage::Batch(m) => {
                let positions = m
                    .data
                    .positions
                    .into_iter()
                    .map(|p| {
                        let base = self.positions.get(&p.symbol);
                        p.apply(base)
                    })
                    .collect::<Result<_, _>>()?;
                let account = m.data.account.map(|a| a.apply(self.account.as_ref())).transpose()?;
                let data = BatchData { positions, orders: m.data.orders, account, trades: m.data.trades };
                ServerMessage::Batch(Envelope { seq: m.seq, timestamp: m.timestamp, user_id: m.user_id, data })
            }
        })
    }

    /// How many positions, orders and account values differ between the
    /// two states (a key present on one side only counts once). Trades are
    /// not compared: they are a bounded recent list, not state; nor is the
    /// account's `timestamp`, the time the gateway valued it at the latest
    /// marks (two answers a moment apart differ there with no event between).
    pub fn differences(&self, other: &PortfolioState) -> usize {
        fn keyed<K: Ord, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> usize {
            let changed_or_gone = a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).count();
            let added = b.keys().filter(|k| !a.contains_key(*k)).count();
            changed_or_gone + added
        }
        keyed(&self.positions, &other.positions)
            + keyed(&self.orders, &other.orders)
            + usize::from(!same_account(self.account.as_ref(), other.account.as_ref()))
    }

    /// Keeps only what `channels` deliver, so a REST snapshot (which holds
    /// everything) compares with a state fed by a partial subscription.
    pub(crate) fn retain_channels(&mut self, channels: &[Channel]) {
        if !channels.contains(&Channel::Positions) {
            self.positions.clear();
        }
        if !channels.contains(&Channel::Orders) {
            self.orders.clear();
        }
        if !channels.contains(&Channel::Account) {
            self.account = None;
        }
        if !channels.contains(&Channel::Trades) {
            self.trades.clear();
        }
    }

    /// Merges a REST snapshot: adopted when it is ahead (or the history
    /// changed), compared when it is at the same `seq` (and adopted if it
    /// differs: REST is the truth), ignored when it is behind.
    pub(crate) fn merge_rest(&mut self, remote: PortfolioState) -> Merge {
        let epoch_changed = self.epoch.is_some() && remote.epoch.is_some() && self.epoch != remote.epoch;
        if epoch_changed {
            let differences = self.differences(&remote);
            *self = remote;
            return Merge { changed: true, adopted: true, differences };
        }
        if remote.seq > self.seq {
            *self = remote;
            return Merge { changed: true, adopted: true, differences: 0 };
        }
        if remote.seq < self.seq {
            return Merge::default();
        }
        let learnt = self.learn_epoch(remote.epoch.clone());
        let differences = self.differences(&remote);
        if differences > 0 {
            *self = remote;
        }
        Merge { changed: learnt || differences > 0, adopted: differences > 0, differences }
    }

    /// Runs `change` unless `seq` is stale, then records `seq`.
    fn advance(&mut self, seq: Option<u64>, change: impl FnOnce(&mut Self)) -> bool {
        if seq.is_some_and(|seq| seq < self.seq) {
            return false;
        }
        change(self);
        if let Some(seq) = seq {
            self.seq = seq;
        }
        true
    }

    /// Takes the gateway's epoch when the state has none yet.
    fn learn_epoch(&mut self, epoch: Option<String>) -> bool {
        if self.epoch.is_none() && epoch.is_some() {
            self.epoch = epoch;
            return true;
        }
        false
    }

    fn fill(&mut self, data: SnapshotData, max_trades: usize) {
        for position in data.positions {
            self.put_position(position);
        }
        for order in data.orders {
            self.put_order(order);
        }
        self.account = data.account;
        for trade in data.trades {
            self.put_trade(trade, max_trades);
        }
    }

    fn put_batch(&mut self, data: BatchData, max_trades: usize) {
        for position in data.positions {
            self.put_position(position);
        }
        for order in data.orders {
            self.put_order(order);
        }
        if let Some(account) = data.account {
            self.account = Some(account);
        }
        for trade in data.trades {
            self.put_trade(trade, max_trades);
        }
    }

    fn put_position(&mut self, position: Position) {
        if position.is_closed() {
            self.positions.remove(&position.symbol);
        } else {
            self.positions.insert(position.symbol.clone(), position);
        }
    }

    fn put_order(&mut self, order: Order) {
        if order.status.is_closed() {
            self.orders.remove(&order.order_id);
        } else {
            self.orders.insert(order.order_id.clone(), order);
        }
    }

    /// Trades arrive oldest first; each goes in front, once.
    fn put_trade(&mut self, trade: Trade, max_trades: usize) {
        if self.trades.iter().any(|t| t.trade_id == trade.trade_id) {
            return;
        }
        self.trades.push_front(trade);
        self.trades.truncate(max_trades);
    }
}

/// Equal balances and values, whenever each was valued.
fn same_account(a: Option<&Account>, b: Option<&Account>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Account { timestamp: b.timestamp, ..a.clone() } == *b,
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// The event log's snapshot (trades newest first), e.g. to compare a
/// client's state with the server's in tests.
impl From<Snapshot> for PortfolioState {
    fn from(snapshot: Snapshot) -> Self {
        PortfolioState {
            epoch: snapshot.epoch,
            seq: snapshot.seq,
            positions: snapshot.positions.into_iter().map(|p| (p.symbol.clone(), p)).collect(),
            orders: snapshot.orders.into_iter().map(|o| (o.order_id.clone(), o)).collect(),
            account: snapshot.account,
            trades: snapshot.trades.into(),
        }
    }
}
