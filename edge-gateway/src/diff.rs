//! Which changes are too small to send (BRIEF §4): the rule the throttle
//! applies against the value last DELIVERED, so slow drift accumulates and
//! eventually shows. Quantity, side, opened and closed positions always go
//! out; so do changes to cash or buying power.

use common::event::{Account, Position};
use common::pnl;
use rust_decimal::Decimal;

/// The diff rule with its threshold (a fraction: 0.001 is 0.1 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diff {
    /// Largest change held back, as a fraction.
    pub threshold: Decimal,
}

impl Diff {
    /// A price-only move whose P&L change is within the threshold of the
    /// position's market value.
    pub fn is_minor_position(&self, last: &Position, new: &Position) -> bool {
        if new.is_closed() || new.quantity != last.quantity || new.side != last.side {
            return false;
        }
        pnl::pnl_change_ratio(last, new).is_some_and(|ratio| ratio <= self.threshold)
    }

    /// An equity-only move: cash and buying power unchanged, equity and
    /// portfolio value each within the threshold of their last value.
    pub fn is_minor_account(&self, last: &Account, new: &Account) -> bool {
        if new.cash != last.cash || new.buying_power != last.buying_power {
            return false;
        }
        self.within(last.equity, new.equity) && self.within(last.portfolio_value, new.portfolio_value)
    }

    fn within(&self, old: Decimal, new: Decimal) -> bool {
        if old.is_zero() {
            return new.is_zero();
        }
        ((new - old) / old).abs() <= self.threshold
    }
}
