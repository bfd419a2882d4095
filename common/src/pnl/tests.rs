use proptest::prelude::*;
use rust_decimal::prelude::Signed;
use rust_decimal::Decimal;

use super::*;
use crate::event::{Position, PositionSide, Symbol};

fn d(text: &str) -> Decimal {
    text.parse().expect("test decimal")
}

fn position(side: PositionSide, quantity: &str, entry: &str, price: &str) -> Position {
    Position {
        symbol: Symbol::new("AAPL").expect("symbol"),
        quantity: d(quantity),
        current_price: d(price),
        entry_price: d(entry),
        // Deliberately wrong: revalue must not depend on them.
        unrealized_pnl: d("999"),
        unrealized_pnl_percent: d("999"),
        market_value: d("999"),
        side,
        strategy_id: Some("strategy-xyz".into()),
        opened_at: Some("2026-01-03T09:30:00.000Z".parse().expect("timestamp")),
    }
}

#[test]
fn design_note_example() {
    let v = valuation(PositionSide::Long, d("100"), d("170.25"), d("175.50")).unwrap();
    assert_eq!(v.market_value.to_string(), "17550.00");
    assert_eq!(v.unrealized_pnl.to_string(), "525.00");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "3.08");
}

#[test]
fn short_position_has_negative_market_value_and_inverse_pnl() {
    let v = valuation(PositionSide::Short, d("100"), d("170.25"), d("175.50")).unwrap();
    assert_eq!(v.market_value.to_string(), "-17550.00");
    assert_eq!(v.unrealized_pnl.to_string(), "-525.00");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "-3.08");
}

#[test]
fn rounds_half_away_from_zero_not_to_even() {
    // 1 × 0.125: banker's rounding would give 0.12.
    let v = valuation(PositionSide::Long, d("1"), d("0"), d("0.125")).unwrap();
    assert_eq!(v.market_value.to_string(), "0.13");
    assert_eq!(v.unrealized_pnl.to_string(), "0.13");
    let v = valuation(PositionSide::Short, d("1"), d("0.125"), d("0")).unwrap();
    assert_eq!(v.unrealized_pnl.to_string(), "0.13");
    assert_eq!(round_money(d("-0.125")).to_string(), "-0.13");
    assert_eq!(round_money(d("2.675")).to_string(), "2.68");
    assert_eq!(round_percent(d("0.005")).to_string(), "0.01");
}

#[test]
fn percent_is_computed_from_unrounded_pnl() {
    // P&L 0.004 × 1000 = 4.00 exactly; per share 0.004 would round to 0.00
    // if rounded early. Cost basis 1000 × 1 = 1000 → 0.4 %.
    let v = valuation(PositionSide::Long, d("1000"), d("1"), d("1.004")).unwrap();
    assert_eq!(v.unrealized_pnl.to_string(), "4.00");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "0.40");
    // 3 × (1.0049 − 1) = 0.0147 → 0.01, percent 0.49 (from 0.0147 / 3).
    let v = valuation(PositionSide::Long, d("3"), d("1"), d("1.0049")).unwrap();
    assert_eq!(v.unrealized_pnl.to_string(), "0.01");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "0.49");
}

#[test]
fn outputs_always_carry_two_decimals_and_no_negative_zero() {
    let v = valuation(PositionSide::Long, d("10"), d("5"), d("5")).unwrap();
    assert_eq!(v.market_value.to_string(), "50.00");
    assert_eq!(v.unrealized_pnl.to_string(), "0.00");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "0.00");
    // A closed short: −(0 × price) is a negative zero before rounding.
    let v = valuation(PositionSide::Short, d("0"), d("5"), d("6")).unwrap();
    assert_eq!(v.market_value.to_string(), "0.00");
    assert_eq!(v.unrealized_pnl.to_string(), "0.00");
    assert_eq!(round_money(d("-0.001")).to_string(), "0.00");
}

#[test]
fn zero_cost_basis_gives_zero_percent() {
    let v = valuation(PositionSide::Long, d("10"), d("0"), d("5")).unwrap();
    assert_eq!(v.unrealized_pnl.to_string(), "50.00");
    assert_eq!(v.unrealized_pnl_percent.to_string(), "0.00");
    let v = valuation(PositionSide::Long, d("0"), d("5"), d("6")).unwrap();
    assert_eq!(v.unrealized_pnl_percent.to_string(), "0.00");
}

#[test]
fn fractional_shares() {
    let v = valuation(PositionSide::Long, d("0.5"), d("100"), d("101.01")).unwrap();
    assert_eq!(v.market_value.to_string(), "50.51"); // 50.505 → 50.51
    assert_eq!(v.unrealized_pnl.to_string(), "0.51"); // 0.505 → 0.51
    assert_eq!(v.unrealized_pnl_percent.to_string(), "1.01");
}

#[test]
fn refuses_negative_input() {
    let err = valuation(PositionSide::Long, d("-1"), d("1"), d("1")).unwrap_err();
    assert_eq!(err, PnlError::NegativeQuantity);
    let err = valuation(PositionSide::Long, d("1"), d("-1"), d("1")).unwrap_err();
    assert_eq!(err, PnlError::NegativePrice);
    let err = valuation(PositionSide::Short, d("1"), d("1"), d("-1")).unwrap_err();
    assert_eq!(err, PnlError::NegativePrice);
    // A negative zero is still zero.
    assert!(valuation(PositionSide::Long, d("-0"), d("-0"), d("-0")).is_ok());
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    let err = valuation(PositionSide::Long, Decimal::MAX, Decimal::MAX, Decimal::MAX).unwrap_err();
    assert!(matches!(err, PnlError::Overflow(_)), "{err:?}");
    let err = valuation(PositionSide::Short, Decimal::MAX, d("0"), d("2")).unwrap_err();
    assert_eq!(err, PnlError::Overflow("market value"));
    // Tiny cost basis, large P&L: the percent overflows.
    let err = valuation(PositionSide::Long, d("1"), d("0.0000000000000000000000000001"), d("1000000")).unwrap_err();
    assert_eq!(err, PnlError::Overflow("unrealized P&L percent"));
    let mut huge = position(PositionSide::Long, "1", "1", "1");
    huge.quantity = Decimal::MAX;
    assert!(revalue(&huge, d("10")).is_err());
}

#[test]
fn revalue_recomputes_price_and_pnl_and_keeps_the_rest() {
    let before = position(PositionSide::Long, "100", "170.25", "170.25");
    let after = revalue(&before, d("175.50")).unwrap();
    assert_eq!(after.current_price.to_string(), "175.50");
    assert_eq!(after.market_value.to_string(), "17550.00");
    assert_eq!(after.unrealized_pnl.to_string(), "525.00");
    assert_eq!(after.unrealized_pnl_percent.to_string(), "3.08");
    assert_eq!(after.symbol, before.symbol);
    assert_eq!(after.quantity, before.quantity);
    assert_eq!(after.entry_price, before.entry_price);
    assert_eq!(after.side, before.side);
    assert_eq!(after.strategy_id, before.strategy_id);
    assert_eq!(after.opened_at, before.opened_at);
}

#[test]
fn change_ratio_against_last_delivered() {
    let last = revalue(&position(PositionSide::Long, "100", "170.25", "0"), d("175.50")).unwrap();
    // $175.50 → $175.51 on 100 shares: ΔP&L 1.00 over 17551.00 ≈ 0.0057 %.
    let new = revalue(&last, d("175.51")).unwrap();
    let ratio = pnl_change_ratio(&last, &new).unwrap();
    assert!(ratio < d("0.001"), "{ratio}");
    assert_eq!(ratio, d("1") / d("17551"));
    // A 1 % move is well above the 0.1 % threshold, in either direction.
    let up = revalue(&last, d("177.26")).unwrap();
    let down = revalue(&last, d("173.74")).unwrap();
    assert!(pnl_change_ratio(&last, &up).unwrap() > d("0.001"));
    assert!(pnl_change_ratio(&last, &down).unwrap() > d("0.001"));
    // Shorts have negative market values; the ratio is still non-negative.
    let short = revalue(&position(PositionSide::Short, "10", "50", "0"), d("50")).unwrap();
    let moved = revalue(&short, d("51")).unwrap();
    assert_eq!(pnl_change_ratio(&short, &moved), Some(d("10") / d("510")));
    // Nothing changed.
    assert_eq!(pnl_change_ratio(&last, &last), Some(Decimal::ZERO));
}

#[test]
fn change_ratio_is_none_for_zero_market_value() {
    let last = revalue(&position(PositionSide::Long, "100", "10", "0"), d("11")).unwrap();
    let closed = revalue(&position(PositionSide::Long, "0", "10", "0"), d("11")).unwrap();
    assert_eq!(pnl_change_ratio(&last, &closed), None);
    let worthless = revalue(&last, d("0")).unwrap();
    assert_eq!(pnl_change_ratio(&last, &worthless), None);
}

/// A decimal with up to `max_dp` decimals in `[0, 10^9)`: prices and share
/// counts of any real portfolio, including fractional shares and sub-penny
/// quotes, far from `Decimal`'s overflow range.
fn non_negative(max_dp: u32) -> impl Strategy<Value = Decimal> {
    (0..=max_dp).prop_flat_map(|dp| {
        let limit = 1_000_000_000i64 * 10i64.pow(dp);
        (0..limit).prop_map(move |mantissa| Decimal::new(mantissa, dp))
    })
}

fn side() -> impl Strategy<Value = PositionSide> {
    prop_oneof![Just(PositionSide::Long), Just(PositionSide::Short)]
}

proptest! {
    #[test]
    fn long_pnl_is_minus_short_pnl(qty in non_negative(4), entry in non_negative(4), price in non_negative(4)) {
        let long = valuation_exact(PositionSide::Long, qty, entry, price).unwrap();
        let short = valuation_exact(PositionSide::Short, qty, entry, price).unwrap();
        prop_assert_eq!(long.unrealized_pnl, -short.unrealized_pnl);
        prop_assert_eq!(long.market_value, -short.market_value);
        prop_assert_eq!(long.unrealized_pnl_percent, -short.unrealized_pnl_percent);
        let long = long.rounded();
        let short = short.rounded();
        prop_assert_eq!(long.unrealized_pnl, -short.unrealized_pnl);
        prop_assert_eq!(long.unrealized_pnl_percent, -short.unrealized_pnl_percent);
    }

    #[test]
    fn pnl_is_zero_at_entry_price(side in side(), qty in non_negative(4), entry in non_negative(4)) {
        let v = valuation(side, qty, entry, entry).unwrap();
        prop_assert!(v.unrealized_pnl.is_zero());
        prop_assert!(v.unrealized_pnl_percent.is_zero());
        prop_assert_eq!(v.unrealized_pnl.to_string(), "0.00");
    }

    #[test]
    fn market_value_minus_cost_basis_is_pnl(qty in non_negative(4), entry in non_negative(4), price in non_negative(4)) {
        let cost_basis = qty * entry;
        let long = valuation_exact(PositionSide::Long, qty, entry, price).unwrap();
        prop_assert_eq!(long.market_value - cost_basis, long.unrealized_pnl);
        // For a short, the proceeds (cost basis) minus what buying back costs.
        let short = valuation_exact(PositionSide::Short, qty, entry, price).unwrap();
        prop_assert_eq!(cost_basis + short.market_value, short.unrealized_pnl);
    }

    #[test]
    fn percent_sign_is_pnl_sign(side in side(), qty in non_negative(4), entry in non_negative(4), price in non_negative(4)) {
        let exact = valuation_exact(side, qty, entry, price).unwrap();
        if (qty * entry).is_zero() {
            prop_assert!(exact.unrealized_pnl_percent.is_zero());
        } else {
            prop_assert_eq!(exact.unrealized_pnl_percent.signum(), exact.unrealized_pnl.signum());
        }
        // Rounding may take either to zero, but never to opposite signs.
        let rounded = exact.rounded();
        prop_assert!(rounded.unrealized_pnl_percent.signum() * rounded.unrealized_pnl.signum() >= Decimal::ZERO);
    }

    #[test]
    fn revalue_is_idempotent(side in side(), qty in non_negative(4), entry in non_negative(4), old in non_negative(4), price in non_negative(4)) {
        let mut p = position(side, "0", "0", "0");
        p.quantity = qty;
        p.entry_price = entry;
        p.current_price = old;
        let once = revalue(&p, price).unwrap();
        let twice = revalue(&once, price).unwrap();
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(serde_json::to_string(&once).unwrap(), serde_json::to_string(&twice).unwrap());
    }

    #[test]
    fn revalue_at_entry_gives_zero_pnl(side in side(), qty in non_negative(4), entry in non_negative(4), old in non_negative(4)) {
        let mut p = position(side, "0", "0", "0");
        p.quantity = qty;
        p.entry_price = entry;
        p.current_price = old;
        let at_entry = revalue(&p, entry).unwrap();
        prop_assert!(at_entry.unrealized_pnl.is_zero());
        prop_assert!(at_entry.unrealized_pnl_percent.is_zero());
        prop_assert_eq!(at_entry.unrealized_pnl.is_sign_negative(), false);
    }

    #[test]
    fn rounding_gives_at_most_two_decimals(side in side(), qty in non_negative(8), entry in non_negative(8), price in non_negative(8)) {
        let v = valuation(side, qty, entry, price).unwrap();
        for value in [v.market_value, v.unrealized_pnl, v.unrealized_pnl_percent] {
            prop_assert!(value.scale() <= 2, "{} has scale {}", value, value.scale());
            prop_assert!(!(value.is_zero() && value.is_sign_negative()), "negative zero");
        }
        let exact = valuation_exact(side, qty, entry, price).unwrap();
        prop_assert!((exact.unrealized_pnl - v.unrealized_pnl).abs() <= Decimal::new(5, 3));
    }

    #[test]
    fn change_ratio_is_non_negative(side in side(), qty in non_negative(2), entry in non_negative(2), a in non_negative(2), b in non_negative(2)) {
        let mut p = position(side, "0", "0", "0");
        p.quantity = qty;
        p.entry_price = entry;
        let last = revalue(&p, a).unwrap();
        let new = revalue(&p, b).unwrap();
        match pnl_change_ratio(&last, &new) {
            Some(ratio) => prop_assert!(ratio >= Decimal::ZERO),
            None => prop_assert!(new.market_value.is_zero()),
        }
    }

    #[test]
    fn never_panics(side in side(), qty in any::<u128>(), entry in any::<u128>(), price in any::<u128>(), scales in (0u32..=28, 0u32..=28, 0u32..=28)) {
        let make = |bits: u128, scale: u32| Decimal::from_i128_with_scale((bits >> 32) as i128, scale);
        let _ = valuation(side, make(qty, scales.0), make(entry, scales.1), make(price, scales.2));
    }
}

#[test]
fn prices_carry_at_least_two_decimals_and_are_never_rounded() {
    for (given, written) in
        [("175.5", "175.50"), ("175", "175.00"), ("175.5000", "175.50"), ("0.1234", "0.1234"), ("0", "0.00")]
    {
        assert_eq!(super::price(given.parse().unwrap()).to_string(), written, "{given}");
    }
}
