//! A user's portfolio as valuing it at market marks needs it: the open
//! positions (each with when it was last priced), the account, and the
//! previous close's equity. The gateway keeps one per connected user, fed by
//! the snapshot and the user's events, and revalues it on every mark; the
//! REST snapshot values a stored snapshot the same way.
//!
//! # Rules
//! - A mark reprices a position only when it is newer than the position's
//!   own price: the mark that priced it last, or the event that set it
//!   (its envelope `timestamp`). A position read from a snapshot carries no
//!   pricing time, so any mark reprices it.
//! - Equity and portfolio value are `cash + Σ signed market value`; day P&L
//!   is equity minus the previous close's equity, which is the last
//!   account event's `equity − dayPnl` (what the broker reported).
//!   Cash and buying power are the account event's.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{revalue, round_money, round_percent};
use crate::event::{Account, Event, Mark, Position, Symbol, Timestamp};
use crate::protocol::Snapshot;

/// See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    positions: BTreeMap<Symbol, Priced>,
    account: Option<Account>,
    /// `equity − dayPnl` of the last account event.
    last_close: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Priced {
    position: Position,
    /// When its price was set; `None` for a position from a snapshot.
    at: Option<Timestamp>,
}

/// What a mark changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revalued {
    /// The position at the mark's price.
    pub position: Position,
    /// The account with equity, portfolio value and day P&L at the new
    /// market value; `None` when the book has no account.
    pub account: Option<Account>,
}

impl Book {
    /// A book of a snapshot's positions and account.
    pub fn new(positions: impl IntoIterator<Item = Position>, account: Option<Account>) -> Self {
        let mut book = Book::default();
        for position in positions {
            book.positions.insert(position.symbol.clone(), Priced { position, at: None });
        }
        if let Some(account) = account {
            book.set_account(account);
        }
        book
    }

    /// A book of a snapshot's positions and account.
    pub fn of_snapshot(snapshot: &Snapshot) -> Self {
        Self::new(snapshot.positions.iter().cloned(), snapshot.account.clone())
    }

    /// Writes the book's positions and account into `snapshot` (orders and
    /// trades stay): the snapshot valued as the book is.
    pub fn write_to(&self, snapshot: &mut Snapshot) {
        snapshot.positions = self.positions().cloned().collect();
        snapshot.account = self.account.clone();
    }

    /// Applies one of the user's events: positions and the account are
    /// replaced, orders and trades change nothing here.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::PositionUpdate(e) if e.data.is_closed() => {
                self.positions.remove(&e.data.symbol);
            }
            Event::PositionUpdate(e) => {
                let priced = Priced { position: e.data.clone(), at: Some(e.timestamp) };
                self.positions.insert(e.data.symbol.clone(), priced);
            }
            Event::AccountUpdate(e) => self.set_account(e.data.clone()),
            Event::OrderUpdate(_) | Event::TradeExecuted(_) => {}
        }
    }

    fn set_account(&mut self, account: Account) {
        self.last_close = account.equity.checked_sub(account.day_pnl);
        self.account = Some(account);
    }

    /// The symbols of the open positions.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.positions.keys()
    }

    /// Whether a position in `symbol` is open.
    pub fn holds(&self, symbol: &Symbol) -> bool {
        self.positions.contains_key(symbol)
    }

    /// The open positions, by symbol.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values().map(|p| &p.position)
    }

    /// The account as last reported or revalued.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// Reprices the position in the mark's symbol and revalues the account,
    /// at `now`. `None` when no position is open in the symbol, the mark is
    /// not newer than its price, or the price is the same (nothing to say).
    pub fn mark(&mut self, mark: &Mark, now: Timestamp) -> Option<Revalued> {
        let priced = self.positions.get_mut(&mark.symbol)?;
        if priced.at.is_some_and(|at| mark.timestamp.unix_millis() <= at.unix_millis()) {
            return None;
        }
        priced.at = Some(mark.timestamp);
        if priced.position.current_price == mark.price {
            return None;
        }
        let position = match revalue(&priced.position, mark.price) {
            Ok(position) => position,
            Err(_) => return None,
        };
        priced.position = position.clone();
        let account = self.revalued_account(now);
        if let Some(account) = &account {
            self.account = Some(account.clone());
        }
        Some(Revalued { position, account })
    }

    /// The account at the current market values (see the module doc).
    fn revalued_account(&self, now: Timestamp) -> Option<Account> {
        let account = self.account.as_ref()?;
        let last_close = self.last_close?;
        let equity = self.positions().try_fold(account.cash, |sum, position| sum.checked_add(position.market_value))?;
        let day_pnl = equity.checked_sub(last_close)?;
        let day_pnl_percent = if last_close.is_zero() {
            Decimal::ZERO
        } else {
            day_pnl.checked_div(last_close)?.checked_mul(Decimal::ONE_HUNDRED)?
        };
        Some(Account {
            equity: round_money(equity),
            portfolio_value: round_money(equity),
            day_pnl: round_money(day_pnl),
            day_pnl_percent: round_percent(day_pnl_percent),
            timestamp: now,
            ..account.clone()
        })
    }

    /// Values every position at the newest of `marks` that is newer than its
    /// price, and the account with them: what a snapshot read at these marks
    /// shows.
    pub fn at_marks<'a>(&mut self, marks: impl IntoIterator<Item = &'a Mark>, now: Timestamp) {
        for mark in marks {
            self.mark(mark, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Envelope, PositionSide, UserId};
    use crate::pnl::position;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn mark(symbol: &str, price: &str, when: &str) -> Mark {
        Mark { symbol: Symbol::new(symbol).unwrap(), price: dec(price), timestamp: at(when) }
    }

    fn account(equity: &str, cash: &str, day_pnl: &str) -> Account {
        Account {
            equity: dec(equity),
            buying_power: dec("1000.00"),
            cash: dec(cash),
            portfolio_value: dec(equity),
            day_pnl: dec(day_pnl),
            day_pnl_percent: Decimal::ZERO,
            timestamp: at("2026-01-03T14:30:00.000Z"),
        }
    }

    /// 100 AAPL long from 170.25 at 175.50, 50 TSLA short from 250 at 245,
    /// cash 10,000; the previous close's equity 15,000.
    fn book() -> Book {
        let aapl = position(Symbol::new("AAPL").unwrap(), PositionSide::Long, dec("100"), dec("170.25"), dec("175.50"));
        let tsla = position(Symbol::new("TSLA").unwrap(), PositionSide::Short, dec("50"), dec("250"), dec("245"));
        // equity 10,000 + 17,550 − 12,250 = 15,300; day P&L 300.
        Book::new([aapl.unwrap(), tsla.unwrap()], Some(account("15300.00", "10000.00", "300.00")))
    }

    #[test]
    fn a_mark_revalues_the_position_and_the_account() {
        let mut book = book();
        let now = at("2026-01-03T15:00:00.000Z");
        let revalued = book.mark(&mark("AAPL", "180.00", "2026-01-03T15:00:00.000Z"), now).unwrap();
        assert_eq!(revalued.position.market_value.to_string(), "18000.00");
        assert_eq!(revalued.position.unrealized_pnl.to_string(), "975.00");
        let account = revalued.account.unwrap();
        // 10,000 + 18,000 − 12,250
        assert_eq!(
            (account.equity.to_string(), account.portfolio_value.to_string()),
            ("15750.00".into(), "15750.00".into())
        );
        assert_eq!(
            (account.day_pnl.to_string(), account.day_pnl_percent.to_string()),
            ("750.00".into(), "5.00".into())
        );
        assert_eq!((account.cash, account.buying_power, account.timestamp), (dec("10000.00"), dec("1000.00"), now));
        assert_eq!(book.account(), Some(&account));
    }

    #[test]
    fn a_short_loses_when_the_price_rises() {
        let mut book = book();
        let revalued = book.mark(&mark("TSLA", "255", "2026-01-03T15:00:00.000Z"), Timestamp::now()).unwrap();
        assert_eq!(revalued.position.market_value.to_string(), "-12750.00");
        assert_eq!(revalued.position.unrealized_pnl.to_string(), "-250.00");
        assert_eq!(revalued.account.unwrap().equity.to_string(), "14800.00");
    }

    #[test]
    fn only_a_newer_mark_reprices() {
        let mut book = book();
        assert!(book.mark(&mark("AAPL", "180", "2026-01-03T15:00:00.000Z"), Timestamp::now()).is_some());
        assert!(book.mark(&mark("AAPL", "190", "2026-01-03T15:00:00.000Z"), Timestamp::now()).is_none(), "equal");
        assert!(book.mark(&mark("AAPL", "190", "2026-01-03T14:59:59.999Z"), Timestamp::now()).is_none(), "older");
        assert_eq!(book.positions().next().unwrap().current_price, dec("180"));
        assert!(book.mark(&mark("MSFT", "1", "2026-01-03T16:00:00.000Z"), Timestamp::now()).is_none(), "not held");
    }

    #[test]
    fn an_event_newer_than_the_mark_keeps_its_price() {
        let mut book = book();
        let user = UserId::new("u1").unwrap();
        let fill =
            position(Symbol::new("AAPL").unwrap(), PositionSide::Long, dec("200"), dec("172"), dec("176")).unwrap();
        book.apply(&Event::from(Envelope::new(user.clone(), at("2026-01-03T15:00:01.000Z"), fill)));
        assert!(book.mark(&mark("AAPL", "180", "2026-01-03T15:00:00.000Z"), Timestamp::now()).is_none());
        let revalued = book.mark(&mark("AAPL", "180", "2026-01-03T15:00:02.000Z"), Timestamp::now()).unwrap();
        assert_eq!(revalued.position.quantity, dec("200"));

        let closed = Position { quantity: Decimal::ZERO, ..revalued.position };
        book.apply(&Event::from(Envelope::new(user, at("2026-01-03T15:00:03.000Z"), closed)));
        assert!(!book.holds(&Symbol::new("AAPL").unwrap()));
        assert_eq!(book.symbols().map(|s| s.as_str()).collect::<Vec<_>>(), ["TSLA"]);
    }

    #[test]
    fn the_previous_close_comes_from_the_last_account_event() {
        let mut book = book();
        let user = UserId::new("u1").unwrap();
        book.apply(&Event::from(Envelope::new(user, Timestamp::now(), account("15300.00", "11000.00", "-700.00"))));
        // Previous close now 16,000; equity 11,000 + 17,550 − 12,250 = 16,300.
        let account = book.mark(&mark("TSLA", "245.01", "2026-01-03T15:00:00.000Z"), Timestamp::now()).unwrap().account;
        let account = account.unwrap();
        assert_eq!((account.equity.to_string(), account.day_pnl.to_string()), ("16299.50".into(), "299.50".into()));
    }

    #[test]
    fn no_account_no_derived_account() {
        let aapl = position(Symbol::new("AAPL").unwrap(), PositionSide::Long, dec("1"), dec("1"), dec("1")).unwrap();
        let mut book = Book::new([aapl], None);
        let revalued = book.mark(&mark("AAPL", "2", "2026-01-03T15:00:00.000Z"), Timestamp::now()).unwrap();
        assert_eq!((revalued.position.market_value.to_string(), revalued.account), ("2.00".into(), None));
    }
}
