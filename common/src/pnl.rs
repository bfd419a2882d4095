//! Market value and unrealized P&L of a position, computed on [`Decimal`]
//! (never `f64`) with the rounding rules every producer and the gateway share.
//!
//! # Conventions
//!
//! - `quantity` is the absolute number of shares (it may be fractional) and
//!   [`PositionSide`] says long or short. A negative quantity or price is
//!   refused ([`PnlError`]): it would silently flip every sign below.
//! - Market value is signed, as Alpaca reports it: `qty × price` for a long,
//!   `−(qty × price)` for a short.
//! - Unrealized P&L: `(price − entry) × qty` for a long, `(entry − price) × qty`
//!   for a short.
//! - Percent: `pnl / (entry × qty) × 100`, the return on the cost basis. It is
//!   `0` when the cost basis is zero (a closed position, or shares received at
//!   no cost), rather than an error or an infinity.
//!
//! # Rounding
//!
//! Money and percent are rounded to [`MONEY_DP`] and [`PERCENT_DP`] (two)
//! decimal places with [`RoundingStrategy::MidpointAwayFromZero`] (`0.125` →
//! `0.13`, `−0.125` → `−0.13`): the "round half up" users and brokers
//! expect, not banker's rounding. Rounding happens once, on the final outputs
//! ([`Valuation::rounded`]); every intermediate is exact (the percent's
//! division to `Decimal`'s 28 significant digits), so the rounded percent is
//! computed from the unrounded P&L. Rounded values always carry
//! exactly two decimals (`525` is written `525.00`) and never a negative zero.
//!
//! Every operation is checked: input so large that a product overflows
//! `Decimal` yields [`PnlError::Overflow`], never a panic.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::event::{Position, PositionSide, Symbol};

pub mod book;
#[cfg(test)]
mod tests;

pub use book::{Book, Revalued};

/// Decimal places of money values (market value, P&L) on the wire.
pub const MONEY_DP: u32 = 2;

/// Decimal places of percentages on the wire.
pub const PERCENT_DP: u32 = 2;

/// The one rounding rule for every value this module outputs.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Why a valuation could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PnlError {
    /// Quantities are absolute; the side carries the direction.
    #[error("quantity must not be negative (the side says long or short)")]
    NegativeQuantity,
    /// Equity prices are never negative; a negative one is a mapping bug.
    #[error("price must not be negative")]
    NegativePrice,
    /// The input is beyond what `Decimal` can represent once multiplied.
    #[error("value out of range while computing {0}")]
    Overflow(&'static str),
}

/// What a position is worth at a price, and how far it is from its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valuation {
    /// Signed: negative for a short.
    pub market_value: Decimal,
    /// Positive when the position gained.
    pub unrealized_pnl: Decimal,
    /// P&L relative to the cost basis, in percent (`3.08` means 3.08 %).
    pub unrealized_pnl_percent: Decimal,
}

impl Valuation {
    /// The valuation as it goes on the wire: two decimals, half away from zero.
    pub fn rounded(&self) -> Valuation {
        Valuation {
            market_value: round_money(self.market_value),
            unrealized_pnl: round_money(self.unrealized_pnl),
            unrealized_pnl_percent: round_percent(self.unrealized_pnl_percent),
        }
    }
}

/// Values a position at `current_price`, rounded for the wire.
///
/// Note example: 100 long, entry 170.25, price 175.50 → market value
/// `17550.00`, P&L `525.00`, percent `3.08`.
pub fn valuation(
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    current_price: Decimal,
) -> Result<Valuation, PnlError> {
    valuation_exact(side, quantity, entry_price, current_price).map(|v| v.rounded())
}

/// Values a position at `current_price` without rounding anything.
///
/// For callers that aggregate (sum a portfolio, then round once) and for
/// tests of the arithmetic identities; everything sent to clients goes
/// through [`valuation`] or [`Valuation::rounded`].
pub fn valuation_exact(
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    current_price: Decimal,
) -> Result<Valuation, PnlError> {
    if quantity.is_sign_negative() && !quantity.is_zero() {
        return Err(PnlError::NegativeQuantity);
    }
    if (entry_price.is_sign_negative() && !entry_price.is_zero())
        || (current_price.is_sign_negative() && !current_price.is_zero())
    {
        return Err(PnlError::NegativePrice);
    }

    let gross = quantity.checked_mul(current_price).ok_or(PnlError::Overflow("market value"))?;
    let cost_basis = quantity.checked_mul(entry_price).ok_or(PnlError::Overflow("cost basis"))?;
    // Both prices are non-negative, so the difference cannot overflow.
    let move_per_share = match side {
        PositionSide::Long => current_price - entry_price,
        PositionSide::Short => entry_price - current_price,
    };
    let unrealized_pnl = move_per_share.checked_mul(quantity).ok_or(PnlError::Overflow("unrealized P&L"))?;
    let market_value = match side {
        PositionSide::Long => gross,
        PositionSide::Short => -gross,
    };
    let unrealized_pnl_percent = if cost_basis.is_zero() {
        Decimal::ZERO
    } else {
        unrealized_pnl
            .checked_div(cost_basis)
            .and_then(|ratio| ratio.checked_mul(Decimal::ONE_HUNDRED))
            .ok_or(PnlError::Overflow("unrealized P&L percent"))?
    };

    Ok(Valuation { market_value, unrealized_pnl, unrealized_pnl_percent })
}

/// A position opened at `entry_price`, valued at `current_price` (rounded),
/// with no strategy and no opening time: the one way a position is built
/// from its basics (set the rest with struct update syntax).
pub fn position(
    symbol: Symbol,
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    current_price: Decimal,
) -> Result<Position, PnlError> {
    let unvalued = Position {
        symbol,
        quantity,
        current_price,
        entry_price,
        unrealized_pnl: Decimal::ZERO,
        unrealized_pnl_percent: Decimal::ZERO,
        market_value: Decimal::ZERO,
        side,
        strategy_id: None,
        opened_at: None,
    };
    revalue(&unvalued, current_price)
}

/// The position re-priced at `new_price`: `currentPrice`, `marketValue`,
/// `unrealizedPnl` and `unrealizedPnlPercent` recomputed (rounded), the two
/// prices written with at least two decimals ([`price`]), every other field
/// kept.
///
/// Idempotent, and independent of the P&L fields the input carried: a
/// producer's stale or differently rounded numbers are replaced, not adjusted.
pub fn revalue(position: &Position, new_price: Decimal) -> Result<Position, PnlError> {
    let valuation = valuation(position.side, position.quantity, position.entry_price, new_price)?;
    Ok(Position {
        current_price: price(new_price),
        entry_price: price(position.entry_price),
        market_value: valuation.market_value,
        unrealized_pnl: valuation.unrealized_pnl,
        unrealized_pnl_percent: valuation.unrealized_pnl_percent,
        ..position.clone()
    })
}

/// `|new.unrealizedPnl − last.unrealizedPnl| / |new.marketValue|`, as a
/// fraction (`0.001` is 0.1 %), unrounded.
///
/// The gateway's diff threshold (BRIEF §4) compares this against the value
/// last *delivered* for the symbol, so slow drift accumulates and eventually
/// shows. `None` when the new market value is zero or the arithmetic
/// overflows: the ratio is then meaningless and the caller should treat the
/// change as significant and send it.
pub fn pnl_change_ratio(last_delivered: &Position, new: &Position) -> Option<Decimal> {
    if new.market_value.is_zero() {
        return None;
    }
    new.unrealized_pnl.checked_sub(last_delivered.unrealized_pnl)?.abs().checked_div(new.market_value.abs())
}

/// A price as it goes on the wire: at least two decimals (`175.5` is written
/// `175.50`), more only when they carry digits (`0.1234` stays, `175.5000`
/// becomes `175.50`); never rounded, since sub-cent prices exist.
pub fn price(value: Decimal) -> Decimal {
    let mut price = value.normalize();
    if price.scale() < MONEY_DP {
        price.rescale(MONEY_DP);
    }
    price
}

/// Rounds a money value for the wire (see the module doc).
pub fn round_money(value: Decimal) -> Decimal {
    round_to(value, MONEY_DP)
}

/// Rounds a percentage for the wire (see the module doc).
pub fn round_percent(value: Decimal) -> Decimal {
    round_to(value, PERCENT_DP)
}

/// Rounds half away from zero, pads to exactly `dp` decimals (so `525`
/// prints `525.00`), and drops the sign of a zero (so `−0.001` prints
/// `0.00`, not `-0.00`).
fn round_to(value: Decimal, dp: u32) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(dp, ROUNDING);
    // Only ever widens the scale here; for values too large to carry `dp`
    // decimals it keeps as many as fit, which is still at most `dp`.
    rounded.rescale(dp);
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}
