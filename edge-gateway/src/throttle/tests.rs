use std::time::Duration;

use bytes::Bytes;
use common::event::{Event, OrderStatus, UserId};
use common::fixtures as conformance;
use event_log::StoredEvent;
use rust_decimal::Decimal;
use tokio::time::{advance, Instant};

use super::{Output, Throttle, ThrottleConfig};

fn user() -> UserId {
    UserId::new("u1").unwrap()
}

/// Feeds events with consecutive seqs.
struct Feed {
    throttle: Throttle,
    seq: u64,
}

impl Feed {
    fn new() -> Self {
        Self { throttle: Throttle::new(ThrottleConfig::default()), seq: 0 }
    }

    fn push(&mut self, mut event: Event) -> Vec<Output> {
        self.seq += 1;
        event.set_seq(Some(self.seq));
        let stored = StoredEvent { seq: self.seq, json: Bytes::from(serde_json::to_vec(&event).unwrap()) };
        self.throttle.push(Instant::now(), event, stored)
    }

    /// Advances the clock to the throttle's deadline and ticks.
    async fn tick_at_deadline(&mut self) -> Option<Output> {
        let deadline = self.throttle.deadline()?;
        advance(deadline.saturating_duration_since(Instant::now())).await;
        self.throttle.tick(Instant::now())
    }
}

/// A long position of 100 shares at `cents`/100 with entry 100.00.
fn position(symbol: &str, cents: i64) -> Event {
    conformance::position(&user(), symbol, 100, cents)
}

fn single_seq(output: &Output) -> u64 {
    match output {
        Output::Single { stored, .. } => stored.seq,
        Output::Batch { .. } => panic!("expected a single event, got {output:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn leading_edge_goes_out_at_once_then_the_window_batches() {
    let mut feed = Feed::new();
    let first = feed.push(position("AAPL", 17_550));
    assert_eq!(first.len(), 1);
    assert_eq!(single_seq(&first[0]), 1);

    // 50 ticks for 3 symbols inside the window, each a large move.
    for i in 0..50 {
        let symbol = ["AAPL", "MSFT", "NVDA"][i % 3];
        assert!(feed.push(position(symbol, 18_000 + 100 * i as i64)).is_empty());
    }
    assert_eq!(feed.throttle.deadline(), Some(Instant::now() + Duration::from_secs(1)));
    match feed.tick_at_deadline().await {
        Some(Output::Batch { seq, data, .. }) => {
            assert_eq!(seq, 51);
            let latest: Vec<_> = data.positions.iter().map(|p| (p.symbol.to_string(), p.current_price)).collect();
            assert_eq!(
                latest,
                vec![
                    ("AAPL".to_owned(), Decimal::new(22_800, 2)),
                    ("MSFT".to_owned(), Decimal::new(22_900, 2)),
                    ("NVDA".to_owned(), Decimal::new(22_700, 2)),
                ]
            );
        }
        other => panic!("expected a batch, got {other:?}"),
    }
    assert_eq!(feed.throttle.deadline(), None);

    // A full quiet window later, the next event is a leading edge again.
    advance(Duration::from_secs(1)).await;
    let next = feed.push(position("AAPL", 30_000));
    assert_eq!(single_seq(&next[0]), 52);
}

#[tokio::test(start_paused = true)]
async fn urgent_events_flush_the_pending_batch_first() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 17_550));
    assert!(feed.push(position("AAPL", 18_000)).is_empty());
    assert!(feed.push(conformance::account(&user(), 5)).is_empty());
    let out = feed.push(conformance::order(&user(), "o-1", OrderStatus::Filled));
    assert_eq!(out.len(), 2);
    match &out[0] {
        Output::Batch { seq, data, .. } => {
            assert_eq!(*seq, 3);
            assert_eq!(data.positions.len(), 1);
            assert!(data.account.is_some());
        }
        other => panic!("expected the pending batch first, got {other:?}"),
    }
    assert_eq!(single_seq(&out[1]), 4);
    // Nothing left for the window's end.
    assert_eq!(feed.throttle.deadline(), None);
    // A trade right after is urgent too, even inside the window.
    let out = feed.push(conformance::trade(&user(), "t-1"));
    assert_eq!(out.len(), 1);
    assert_eq!(single_seq(&out[0]), 5);
}

#[tokio::test(start_paused = true)]
async fn trades_are_never_coalesced_and_orders_keep_their_latest_state() {
    let mut feed = Feed::new();
    feed.push(conformance::account(&user(), 1));
    for status in [OrderStatus::New, OrderStatus::Accepted] {
        // Urgent: each order update goes out immediately.
        assert_eq!(feed.push(conformance::order(&user(), "o-1", status)).len(), 1);
    }
    // Account updates inside the window coalesce to the latest.
    advance(Duration::from_millis(10)).await;
    feed.push(conformance::account(&user(), 2));
    feed.push(conformance::account(&user(), 3));
    match feed.tick_at_deadline().await {
        Some(Output::Batch { data, seq, .. }) => {
            assert_eq!(seq, 5);
            assert_eq!(data.account.unwrap().cash, Decimal::new(3, 2));
        }
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn slow_drift_is_held_until_it_passes_the_threshold_since_the_last_delivery() {
    let mut feed = Feed::new();
    // Entry 100.00, 100 shares: market value ≈ 10,000; 0.1 % ≈ 10.00 of P&L.
    let mut cents = 10_000;
    feed.push(position("AAPL", cents));
    advance(Duration::from_secs(2)).await;
    let mut delivered_at = None;
    for step in 1..=5 {
        cents += 5; // +0.05 % of price per tick
        let out = feed.push(position("AAPL", cents));
        if !out.is_empty() {
            delivered_at = Some(step);
            break;
        }
        advance(Duration::from_secs(2)).await;
    }
    // +0.05 %, +0.10 % (not above 0.1 %), +0.15 % → the third tick goes out.
    assert_eq!(delivered_at, Some(3));
}

#[tokio::test(start_paused = true)]
async fn quantity_changes_and_closes_always_go_out() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 10_000));
    advance(Duration::from_secs(2)).await;
    let bigger = conformance::position(&user(), "AAPL", 101, 10_000);
    assert_eq!(feed.push(bigger).len(), 1);
    advance(Duration::from_secs(2)).await;
    let closed = conformance::position(&user(), "AAPL", 0, 10_000);
    assert_eq!(feed.push(closed).len(), 1);
    advance(Duration::from_secs(2)).await;
    // Reopened: no delivered value to diff against, so it goes out.
    assert_eq!(feed.push(position("AAPL", 10_001)).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn held_back_values_settle_out_when_quiet() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 10_000));
    advance(Duration::from_secs(2)).await;
    assert!(feed.push(position("AAPL", 10_001)).is_empty());
    let held_deadline = feed.throttle.deadline().expect("a settle deadline");
    assert_eq!(held_deadline, Instant::now() + ThrottleConfig::default().settle);
    match feed.tick_at_deadline().await {
        Some(Output::Batch { seq, data, .. }) => {
            assert_eq!(seq, 2);
            assert_eq!(data.positions[0].current_price, Decimal::new(10_001, 2));
        }
        other => panic!("expected the settled value, got {other:?}"),
    }
    assert_eq!(feed.throttle.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn a_later_value_replaces_a_pending_one_even_when_it_is_minor() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 10_000));
    // Big move: pending (inside the window); then back near the delivered value.
    assert!(feed.push(position("AAPL", 11_000)).is_empty());
    assert!(feed.push(position("AAPL", 10_001)).is_empty());
    match feed.tick_at_deadline().await {
        Some(Output::Batch { data, .. }) => assert_eq!(data.positions[0].current_price, Decimal::new(10_001, 2)),
        other => panic!("expected a batch, got {other:?}"),
    }
}

/// An account update with equity and portfolio value at `equity_cents`
/// (cash and buying power fixed).
fn equity(equity_cents: i64) -> Event {
    let mut event = conformance::account(&user(), 5_000_000);
    if let Event::AccountUpdate(e) = &mut event {
        e.data.equity = Decimal::new(equity_cents, 2);
        e.data.portfolio_value = Decimal::new(equity_cents, 2);
    }
    event
}

#[tokio::test(start_paused = true)]
async fn minor_equity_moves_are_held_and_settle_out_when_quiet() {
    let mut feed = Feed::new();
    // 100,000.00 delivered; 0.1 % is 100.00.
    assert_eq!(feed.push(equity(10_000_000)).len(), 1);
    advance(Duration::from_secs(2)).await;
    assert!(feed.push(equity(10_005_000)).is_empty(), "+0.05 % is held back");
    advance(Duration::from_secs(2)).await;
    assert!(feed.push(equity(10_009_000)).is_empty(), "+0.09 % is held back");
    advance(Duration::from_secs(2)).await;
    assert_eq!(feed.push(equity(10_011_000)).len(), 1, "+0.11 % since the delivery goes out");
    advance(Duration::from_secs(2)).await;
    assert!(feed.push(equity(10_011_100)).is_empty());
    match feed.tick_at_deadline().await {
        Some(Output::Batch { data, .. }) => assert_eq!(data.account.unwrap().equity, Decimal::new(10_011_100, 2)),
        other => panic!("expected the settled account, got {other:?}"),
    }
    // A cash change always goes out.
    advance(Duration::from_secs(2)).await;
    let mut cash = equity(10_011_100);
    if let Event::AccountUpdate(e) = &mut cash {
        e.data.cash = Decimal::new(1, 2);
    }
    assert_eq!(feed.push(cash).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_quiet_symbol_settles_while_another_keeps_moving() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 10_000));
    advance(Duration::from_secs(2)).await;
    feed.push(position("MSFT", 10_000));
    advance(Duration::from_secs(2)).await;
    assert!(feed.push(position("AAPL", 10_001)).is_empty(), "AAPL's minor move is held");
    // MSFT keeps moving a little every second; AAPL stays quiet.
    let mut settled = None;
    for step in 1..=10 {
        advance(Duration::from_secs(1)).await;
        assert!(feed.push(position("MSFT", 10_000 + step)).is_empty(), "MSFT's minor moves are held");
        if let Some(Output::Batch { data, .. }) = feed.throttle.tick(Instant::now()) {
            settled = Some((step, data.positions.iter().map(|p| p.symbol.to_string()).collect::<Vec<_>>()));
            break;
        }
    }
    // AAPL was held at t0 and is quiet 5 s later; MSFT, still moving, is not sent.
    assert_eq!(settled, Some((5, vec!["AAPL".to_owned()])));
}

/// A mark's position and account updates arrive together: on a leading
/// edge both go out at once, so the next mark a window later is a leading
/// edge again (not held for a batch the account opened).
#[tokio::test(start_paused = true)]
async fn a_marks_updates_share_one_leading_edge() {
    let mut throttle = Throttle::new(ThrottleConfig::default());
    for round in 0..3i64 {
        let updates = vec![position("AAPL", 10_000 + 1_000 * round), conformance::account(&user(), 1_000 + round)];
        let out = throttle.push_derived(Instant::now(), 7, updates);
        match &out[..] {
            [Output::Single { event: Event::PositionUpdate(_), stored: p, derived: true, .. }, Output::Single { event: Event::AccountUpdate(_), stored: a, derived: true, .. }] =>
            {
                assert_eq!((p.seq, a.seq), (7, 7), "round {round}");
            }
            other => panic!("round {round}: both at once, got {other:?}"),
        }
        assert_eq!(throttle.deadline(), None, "nothing pending, nothing held");
        advance(Duration::from_millis(1_300)).await;
    }
}

/// With bases on, each output carries the values it replaces as last
/// delivered: nothing for a first value, the previous one after.
#[tokio::test(start_paused = true)]
async fn outputs_carry_the_values_they_replace_when_asked() {
    let mut throttle = Throttle::new(ThrottleConfig::default());
    throttle.set_bases(true);
    let first = throttle.push_derived(Instant::now(), 1, vec![position("AAPL", 10_000)]);
    match &first[..] {
        [Output::Single { bases: Some(bases), .. }] => assert!(bases.positions.is_empty(), "{bases:?}"),
        other => panic!("one single with bases, got {other:?}"),
    }
    advance(Duration::from_millis(1_100)).await;
    let second = throttle.push_derived(Instant::now(), 1, vec![position("AAPL", 11_000)]);
    match &second[..] {
        [Output::Single { bases: Some(bases), .. }] => {
            let base = bases.position(&common::event::Symbol::new("AAPL").expect("symbol")).expect("a base");
            assert_eq!(base.current_price, Decimal::new(10_000, 2));
        }
        other => panic!("one single with bases, got {other:?}"),
    }
    // Inside the window it is batched; the batch carries the base too.
    throttle.push_derived(Instant::now(), 1, vec![position("AAPL", 12_000)]);
    advance(Duration::from_millis(1_100)).await;
    match throttle.tick(Instant::now()) {
        Some(Output::Batch { bases: Some(bases), .. }) => {
            assert_eq!(bases.positions[0].current_price, Decimal::new(11_000, 2))
        }
        other => panic!("a batch with bases, got {other:?}"),
    }
    throttle.set_bases(false);
    advance(Duration::from_millis(1_100)).await;
    let off = throttle.push_derived(Instant::now(), 1, vec![position("AAPL", 13_000)]);
    assert!(matches!(&off[..], [Output::Single { bases: None, .. }]), "{off:?}");
}

/// A fill is published as order, trade, position, account: the position of
/// the trade's symbol and the account right after the trade go out at once,
/// not a window later (the note's "P&L change → UI within 500 ms").
#[tokio::test(start_paused = true)]
async fn a_fills_position_and_account_follow_its_trade_at_once() {
    let mut feed = Feed::new();
    assert_eq!(feed.push(position("AAPL", 10_000)).len(), 1, "opens a window");
    assert_eq!(feed.push(conformance::order(&user(), "o-1", OrderStatus::Filled)).len(), 1);
    assert_eq!(feed.push(conformance::trade(&user(), "t-1")).len(), 1);
    let fill = conformance::position(&user(), "NVDA", 75, 52_050);
    let out = feed.push(fill);
    assert_eq!((out.len(), single_seq(&out[0])), (1, 4), "the trade's position, at once, inside the window");
    let out = feed.push(conformance::account(&user(), 7));
    assert_eq!((out.len(), single_seq(&out[0])), (1, 5), "and the account");
    // What follows is throttled again.
    assert!(feed.push(position("AAPL", 12_000)).is_empty());
    assert!(feed.push(conformance::account(&user(), 8)).is_empty());
    assert!(matches!(feed.tick_at_deadline().await, Some(Output::Batch { seq: 7, .. })));
}

/// Only the events right after a trade are its consequences: another
/// symbol's update in between ends them.
#[tokio::test(start_paused = true)]
async fn other_updates_after_a_trade_are_throttled_as_usual() {
    let mut feed = Feed::new();
    feed.push(position("AAPL", 10_000));
    feed.push(conformance::trade(&user(), "t-1"));
    assert!(feed.push(position("AAPL", 12_000)).is_empty(), "AAPL is not the trade's symbol");
    assert!(feed.push(conformance::position(&user(), "NVDA", 75, 52_050)).is_empty(), "no longer right after it");
}
