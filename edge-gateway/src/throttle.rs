//! The per-user throttle and diff of BRIEF §4, as a pure state machine: the
//! hub feeds it events and the current time, and sends what it returns.
//! Time comes in as an argument, so tests drive it with `tokio::time::pause()`.
//!
//! - Leading edge: an event arriving when nothing went out in the last window
//!   is sent at once, as its own type.
//! - Within the window, positions coalesce by symbol, orders by id, the
//!   account to the latest; trades are kept. The window's end sends one batch.
//! - Orders and trades are urgent: the pending batch goes out at once, then
//!   the urgent event, so order is kept.
//! - A fill's consequences are urgent too: the log events right after a
//!   `trade_executed` — its symbol's `position_update` and the
//!   `account_update` — go out at once, each as its own type (a window must
//!   not hold back what a trade just changed), and open the window.
//! - A position update that only moves price/P&L by at most `threshold` of
//!   its market value, against the value last DELIVERED for that symbol, is
//!   held back. So is an account update that only moves equity and
//!   portfolio value by at most `threshold` (cash and buying power equal):
//!   the account moves with the positions' prices, and sending it every
//!   window while the positions are held back would undo the diff
//!   (docs/decisions.md). Held-back values go out once that symbol (or the
//!   account) has been quiet for `settle`, so a client never keeps a stale
//!   value forever.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use common::event::{Account, Event, Order, Position, Symbol, Timestamp, Trade};
use common::protocol::BatchData;
use event_log::StoredEvent;
use rust_decimal::Decimal;
use tokio::time::Instant;

use crate::diff::Diff;

#[cfg(test)]
mod tests;

/// Throttle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// The throttle window (BRIEF: 1 s).
    pub window: Duration,
    /// Largest price-only change held back, as a fraction of market value
    /// (BRIEF: 0.1 % = 0.001).
    pub threshold: Decimal,
    /// How long a held-back position may wait before it is sent anyway.
    pub settle: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { window: Duration::from_secs(1), threshold: Decimal::new(1, 3), settle: Duration::from_secs(5) }
    }
}

/// What to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// One event as its own message; `stored.json` is its exact wire form.
    /// `derived`: valued at a market mark by the gateway, not from the log
    /// (it carries the user's current seq and adds nothing to it); its
    /// `stored.json` is empty, for the hub encodes it only if it is sent.
    Single { event: Event, stored: StoredEvent, derived: bool, bases: Option<Box<Bases>> },
    /// A batch covering every event up to `seq`: `events` events, the
    /// newest created at `newest`; `derived` when a value in it is.
    Batch {
        seq: u64,
        data: BatchData,
        events: usize,
        newest: Option<Timestamp>,
        derived: bool,
        bases: Option<Box<Bases>>,
    },
}

/// The values an output's positions and account replace, as last
/// delivered: what field deltas are computed against. Given only while
/// [`Throttle::set_bases`] is on (a connection of the user wants deltas);
/// a symbol (or account) without a delivered value has no entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bases {
    /// Last delivered positions, by symbol.
    pub positions: Vec<Position>,
    /// The account last delivered.
    pub account: Option<Account>,
}

impl Bases {
    /// The base of `symbol`, if it had one.
    pub fn position(&self, symbol: &Symbol) -> Option<&Position> {
        self.positions.iter().find(|p| &p.symbol == symbol)
    }
}

/// The throttle of one user.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    /// When the last message went out.
    last_sent: Option<Instant>,
    pending: Pending,
    /// Price-only changes held back, by symbol, with when each was last
    /// held (the symbol is quiet `settle` after that).
    held: BTreeMap<Symbol, (Position, Instant)>,
    /// A minor account change held back, and when.
    held_account: Option<(Account, Instant)>,
    /// The value last delivered per open symbol, the base of the diff.
    delivered: HashMap<Symbol, Position>,
    /// The account last delivered, the base of the account's diff.
    delivered_account: Option<Account>,
    /// The highest seq pushed so far.
    seq: u64,
    /// Whether outputs carry their [`Bases`].
    bases: bool,
    /// The consequences still expected of the trade just sent.
    fill: Option<FillConsequences>,
}

/// What a trade's fill changes, published right after it.
#[derive(Debug)]
struct FillConsequences {
    /// The position of this symbol is still to come.
    position: Option<Symbol>,
    /// The account is still to come.
    account: bool,
}

impl FillConsequences {
    /// Whether `event` is one of them (and takes it off the list).
    fn take(&mut self, event: &Event) -> bool {
        match event {
            Event::PositionUpdate(e) if self.position.as_ref() == Some(&e.data.symbol) => {
                self.position = None;
                true
            }
            Event::AccountUpdate(_) if self.account => {
                self.account = false;
                true
            }
            _ => false,
        }
    }

    fn is_done(&self) -> bool {
        self.position.is_none() && !self.account
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// Events coalesced so far, and the newest one's creation time.
    events: usize,
    newest: Option<Timestamp>,
    positions: BTreeMap<Symbol, Position>,
    /// Order ids in first-seen order, with the latest value.
    orders: Vec<Order>,
    account: Option<Account>,
    trades: Vec<Trade>,
    /// Whether a value in it was derived at a mark.
    derived: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.orders.is_empty() && self.account.is_none() && self.trades.is_empty()
    }

    fn add(&mut self, event: Event) {
        self.events += 1;
        self.newest = self.newest.max(Some(event.timestamp()));
        match event {
            Event::PositionUpdate(e) => {
                self.positions.insert(e.data.symbol.clone(), e.data);
            }
            Event::OrderUpdate(e) => match self.orders.iter_mut().find(|o| o.order_id == e.data.order_id) {
                Some(order) => *order = e.data,
                None => self.orders.push(e.data),
            },
            Event::AccountUpdate(e) => self.account = Some(e.data),
            Event::TradeExecuted(e) => self.trades.push(e.data),
        }
    }

    fn take(&mut self) -> (BatchData, usize, Option<Timestamp>, bool) {
        let pending = std::mem::take(self);
        let data = BatchData {
            positions: pending.positions.into_values().collect(),
            orders: pending.orders,
            account: pending.account,
            trades: pending.trades,
        };
        (data, pending.events, pending.newest, pending.derived)
    }
}

/// Coalesces events the way a window does (latest per key, every trade),
/// for a catch-up that replays what a client missed as one batch.
pub(crate) fn coalesce(events: impl IntoIterator<Item = Event>) -> BatchData {
    let mut pending = Pending::default();
    for event in events {
        pending.add(event);
    }
    pending.take().0
}

impl Throttle {
    /// A throttle that has sent nothing yet.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            last_sent: None,
            pending: Pending::default(),
            held: BTreeMap::new(),
            held_account: None,
            delivered: HashMap::new(),
            delivered_account: None,
            seq: 0,
            bases: false,
            fill: None,
        }
    }

    /// Whether outputs carry the values they replace (for field deltas).
    pub fn set_bases(&mut self, on: bool) {
        self.bases = on;
    }

    /// Feeds one event of the log (in seq order); returns what to send now.
    pub fn push(&mut self, now: Instant, event: Event, stored: StoredEvent) -> Vec<Output> {
        if event.is_urgent() {
            let mut out = Vec::with_capacity(2);
            if !self.pending.is_empty() {
                // The batch covers what came before the urgent event.
                out.push(self.flush());
            }
            self.seq = self.seq.max(stored.seq);
            self.fill = match &event {
                Event::TradeExecuted(trade) => {
                    Some(FillConsequences { position: Some(trade.data.symbol.clone()), account: true })
                }
                _ => None,
            };
            out.push(Output::Single { event, stored, derived: false, bases: None });
            self.last_sent = Some(now);
            return out;
        }
        // Only the log events right after a trade are its consequences.
        let follows = self.fill.as_mut().is_some_and(|fill| fill.take(&event));
        if !follows || self.fill.as_ref().is_some_and(FillConsequences::is_done) {
            self.fill = None;
        }
        self.arrive(now, std::iter::once((event, stored, false)), follows)
    }

    /// Feeds the position and account updates the gateway derived at one
    /// market mark, carrying the user's current seq. They arrive together:
    /// on a leading edge what the diff does not hold back goes out at once,
    /// each as its own type, and opens one window; otherwise they are held
    /// back, coalesced and diffed like updates from the log.
    pub fn push_derived(&mut self, now: Instant, seq: u64, updates: Vec<Event>) -> Vec<Output> {
        let updates = updates.into_iter().map(|event| (event, StoredEvent { seq, json: Bytes::new() }));
        self.arrive(now, updates.map(|(event, stored)| (event, stored, true)), false)
    }

    /// Non-urgent updates arriving at `now`, all on the same edge (or, when
    /// `consequence`, a fill's consequence: sent at once, as an edge is).
    fn arrive(
        &mut self,
        now: Instant,
        updates: impl IntoIterator<Item = (Event, StoredEvent, bool)>,
        consequence: bool,
    ) -> Vec<Output> {
        let window_open = self.last_sent.is_some_and(|at| now < at + self.config.window);
        let leading = consequence || (self.pending.is_empty() && !window_open);
        let mut out = Vec::new();
        if consequence && !self.pending.is_empty() {
            // Values derived at a mark before the fill go first, as before
            // an urgent event.
            out.push(self.flush());
        }
        for (event, stored, derived) in updates {
            self.seq = self.seq.max(stored.seq);
            if self.held_back(now, &event) {
                continue;
            }
            if leading {
                let bases = self.bases_of(std::slice::from_ref(&event));
                self.record_delivery(&event);
                out.push(Output::Single { event, stored, derived, bases });
            } else {
                self.pending.add(event);
                self.pending.derived |= derived;
            }
        }
        if !out.is_empty() {
            self.last_sent = Some(now);
        }
        out
    }

    /// Holds back a minor change (see the module doc); `true` when held.
    fn held_back(&mut self, now: Instant, event: &Event) -> bool {
        match event {
            Event::PositionUpdate(e) => {
                let symbol = &e.data.symbol;
                if !self.pending.positions.contains_key(symbol) && self.is_minor(&e.data) {
                    self.held.insert(symbol.clone(), (e.data.clone(), now));
                    return true;
                }
                self.held.remove(symbol);
            }
            Event::AccountUpdate(e) => {
                if self.pending.account.is_none() && self.is_minor_account(&e.data) {
                    self.held_account = Some((e.data.clone(), now));
                    return true;
                }
                self.held_account = None;
            }
            Event::OrderUpdate(_) | Event::TradeExecuted(_) => {}
        }
        false
    }

    /// When [`Throttle::tick`] must be called next, if at all.
    pub fn deadline(&self) -> Option<Instant> {
        // Something is pending only after a send opened the window.
        let window_end = self.last_sent.filter(|_| !self.pending.is_empty()).map(|at| at + self.config.window);
        let quiet_since =
            self.held.values().map(|(_, at)| *at).chain(self.held_account.as_ref().map(|(_, at)| *at)).min();
        let settle_end = quiet_since.map(|since| since + self.config.settle);
        match (window_end, settle_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends what is due at `now`: the window's batch, and held-back
    /// values that have been quiet for `settle`.
    pub fn tick(&mut self, now: Instant) -> Option<Output> {
        let settle = self.config.settle;
        let quiet: Vec<Symbol> =
            self.held.iter().filter(|(_, (_, at))| now >= *at + settle).map(|(symbol, _)| symbol.clone()).collect();
        for symbol in quiet {
            if let Some((position, _)) = self.held.remove(&symbol) {
                self.pending.positions.insert(symbol, position);
                self.pending.events += 1;
                // The latest value, whatever the seq it came with.
                self.pending.derived = true;
            }
        }
        if self.held_account.as_ref().is_some_and(|(_, at)| now >= *at + settle) {
            if let Some((account, _)) = self.held_account.take() {
                self.pending.account.get_or_insert(account);
                self.pending.events += 1;
                self.pending.derived = true;
            }
        }
        let window_over = self.last_sent.is_none_or(|at| now >= at + self.config.window);
        if self.pending.is_empty() || !window_over {
            return None;
        }
        self.last_sent = Some(now);
        Some(self.flush())
    }

    /// Forgets what was delivered and pending: after a snapshot the client's
    /// state is the truth to diff against, and nothing older may follow it.
    pub fn reset(&mut self, seq: u64, delivered: impl IntoIterator<Item = Position>, account: Option<Account>) {
        self.pending = Pending::default();
        self.held.clear();
        self.held_account = None;
        self.delivered = delivered.into_iter().map(|p| (p.symbol.clone(), p)).collect();
        self.delivered_account = account;
        self.seq = seq;
    }

    fn flush(&mut self) -> Output {
        let (data, events, newest, derived) = self.pending.take();
        let bases = self.bases.then(|| {
            Box::new(Bases {
                positions: data.positions.iter().filter_map(|p| self.delivered.get(&p.symbol).cloned()).collect(),
                account: data.account.as_ref().and_then(|_| self.delivered_account.clone()),
            })
        });
        for position in &data.positions {
            self.record_position(position);
        }
        if let Some(account) = &data.account {
            self.delivered_account = Some(account.clone());
        }
        Output::Batch { seq: self.seq, data, events, newest, derived, bases }
    }

    /// What `events` replace, when outputs carry bases.
    fn bases_of(&self, events: &[Event]) -> Option<Box<Bases>> {
        if !self.bases {
            return None;
        }
        let mut bases = Bases::default();
        for event in events {
            match event {
                Event::PositionUpdate(e) => bases.positions.extend(self.delivered.get(&e.data.symbol).cloned()),
                Event::AccountUpdate(_) => bases.account = self.delivered_account.clone(),
                Event::OrderUpdate(_) | Event::TradeExecuted(_) => {}
            }
        }
        Some(Box::new(bases))
    }

    fn record_delivery(&mut self, event: &Event) {
        match event {
            Event::PositionUpdate(e) => self.record_position(&e.data),
            Event::AccountUpdate(e) => self.delivered_account = Some(e.data.clone()),
            _ => {}
        }
    }

    fn record_position(&mut self, position: &Position) {
        if position.is_closed() {
            self.delivered.remove(&position.symbol);
        } else {
            self.delivered.insert(position.symbol.clone(), position.clone());
        }
    }

    /// A price-only move within the threshold of the last delivered value.
    fn is_minor(&self, new: &Position) -> bool {
        self.delivered.get(&new.symbol).is_some_and(|last| self.diff().is_minor_position(last, new))
    }

    /// An equity-only move within the threshold of the last delivered account.
    fn is_minor_account(&self, new: &Account) -> bool {
        self.delivered_account.as_ref().is_some_and(|last| self.diff().is_minor_account(last, new))
    }

    fn diff(&self) -> Diff {
        Diff { threshold: self.config.threshold }
    }
}
