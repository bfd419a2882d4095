use common::event::{Envelope, Event, OrderStatus, Timestamp, UserId};
use common::fixtures as conformance;

use super::*;

const MAX: usize = 50;

fn user() -> UserId {
    UserId::new("alice").unwrap()
}

fn at(seq: u64, mut event: Event) -> ServerMessage {
    event.set_seq(Some(seq));
    ServerMessage::from(event)
}

fn payload<T>(event: Event, pick: impl FnOnce(Event) -> Option<T>) -> T {
    pick(event).unwrap()
}

fn position(symbol: &str, quantity: i64) -> Position {
    payload(conformance::position(&user(), symbol, quantity, 12_000), |e| match e {
        Event::PositionUpdate(e) => Some(e.data),
        _ => None,
    })
}

fn order(id: &str, status: OrderStatus) -> Order {
    payload(conformance::order(&user(), id, status), |e| match e {
        Event::OrderUpdate(e) => Some(e.data),
        _ => None,
    })
}

fn trade(id: &str) -> Trade {
    payload(conformance::trade(&user(), id), |e| match e {
        Event::TradeExecuted(e) => Some(e.data),
        _ => None,
    })
}

fn batch(seq: u64, data: BatchData) -> ServerMessage {
    ServerMessage::Batch(Envelope::new(user(), Timestamp::now(), data).with_seq(seq))
}

fn snapshot(seq: u64, epoch: &str, data: SnapshotData) -> ServerMessage {
    ServerMessage::Snapshot { seq, epoch: Some(epoch.into()), timestamp: Timestamp::now(), data }
}

#[test]
fn single_events_open_update_and_close() {
    let mut state = PortfolioState::default();
    assert!(state.apply(at(1, conformance::position(&user(), "AAPL", 10, 10_000)), MAX));
    assert!(state.apply(at(2, conformance::order(&user(), "o-1", OrderStatus::New)), MAX));
    assert!(state.apply(at(3, conformance::account(&user(), 500)), MAX));
    assert_eq!((state.seq, state.positions.len(), state.orders.len()), (3, 1, 1));
    assert_eq!(state.account.as_ref().map(|a| a.cash.to_string()), Some("5.00".into()));

    state.apply(at(4, conformance::position(&user(), "AAPL", 0, 10_000)), MAX);
    state.apply(at(5, conformance::order(&user(), "o-1", OrderStatus::Filled)), MAX);
    assert!(state.positions.is_empty(), "quantity 0 closes the position");
    assert!(state.orders.is_empty(), "a closed status removes the order");
    assert_eq!(state.seq, 5);
}

#[test]
fn every_closed_status_leaves_the_open_set() {
    for status in [
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
        OrderStatus::Replaced,
        OrderStatus::Rejected,
        OrderStatus::Failed,
    ] {
        let mut state = PortfolioState::default();
        state.apply(at(1, conformance::order(&user(), "o", OrderStatus::Accepted)), MAX);
        state.apply(at(2, conformance::order(&user(), "o", status)), MAX);
        assert!(state.orders.is_empty(), "{status:?}");
    }
}

#[test]
fn stale_messages_are_skipped_and_equal_seq_is_applied() {
    let mut state = PortfolioState { seq: 10, ..PortfolioState::default() };
    assert!(!state.apply(at(9, conformance::position(&user(), "AAPL", 10, 10_000)), MAX));
    assert!(state.positions.is_empty());
    let settle = BatchData { positions: vec![position("MSFT", 3)], ..BatchData::default() };
    assert!(state.apply(batch(10, settle), MAX), "a settle flush may repeat the seq");
    assert_eq!((state.seq, state.positions.len()), (10, 1));
}

#[test]
fn batches_merge_every_kind() {
    let mut state = PortfolioState::default();
    state.apply(at(1, conformance::order(&user(), "o-1", OrderStatus::New)), MAX);
    let data = BatchData {
        positions: vec![position("AAPL", 5), position("MSFT", 0)],
        orders: vec![order("o-1", OrderStatus::Canceled), order("o-2", OrderStatus::New)],
        account: Some(match conformance::account(&user(), 7) {
            Event::AccountUpdate(e) => e.data,
            _ => unreachable!(),
        }),
        trades: vec![trade("t-1"), trade("t-2")],
    };
    assert!(state.apply(batch(9, data), MAX));
    assert_eq!(state.seq, 9);
    assert_eq!(state.positions.keys().map(Symbol::as_str).collect::<Vec<_>>(), ["AAPL"]);
    assert_eq!(state.orders.keys().cloned().collect::<Vec<_>>(), ["o-2"]);
    assert!(state.account.is_some());
    let trades: Vec<_> = state.trades.iter().map(|t| t.trade_id.as_str()).collect();
    assert_eq!(trades, ["t-2", "t-1"], "newest first");
}

#[test]
fn trades_are_deduplicated_and_bounded() {
    let mut state = PortfolioState::default();
    for (seq, id) in [(1, "t-1"), (2, "t-2"), (3, "t-1"), (4, "t-3"), (5, "t-4")] {
        state.apply(at(seq, conformance::trade(&user(), id)), 3);
    }
    let trades: Vec<_> = state.trades.iter().map(|t| t.trade_id.as_str()).collect();
    assert_eq!(trades, ["t-4", "t-3", "t-2"]);
}

#[test]
fn a_snapshot_replaces_everything() {
    let mut state = PortfolioState::default();
    state.apply(at(1, conformance::order(&user(), "stale", OrderStatus::New)), MAX);
    state.apply(at(2, conformance::trade(&user(), "old")), MAX);
    let data = SnapshotData {
        positions: vec![position("NVDA", 2)],
        orders: vec![],
        account: None,
        trades: vec![trade("t-1"), trade("t-2")],
    };
    assert!(state.apply(snapshot(1, "e2", data), MAX));
    assert_eq!(state.seq, 1, "a snapshot may move seq back (new epoch)");
    assert_eq!(state.epoch.as_deref(), Some("e2"));
    assert!(state.orders.is_empty());
    let trades: Vec<_> = state.trades.iter().map(|t| t.trade_id.as_str()).collect();
    assert_eq!(trades, ["t-2", "t-1"], "snapshot trades come oldest first");
}

#[test]
fn subscribed_only_fills_a_missing_epoch() {
    let mut state = PortfolioState::default();
    let subscribed = |epoch: &str| ServerMessage::Subscribed { channels: vec![], seq: 99, epoch: Some(epoch.into()) };
    assert!(state.apply(subscribed("e1"), MAX));
    assert!(!state.apply(subscribed("e2"), MAX));
    assert_eq!((state.epoch.as_deref(), state.seq), (Some("e1"), 0), "subscribed never moves seq");
}

#[test]
fn log_snapshot_converts_with_trades_newest_first() {
    let snapshot = Snapshot {
        epoch: Some("e".into()),
        seq: 4,
        positions: vec![position("AAPL", 1)],
        orders: vec![order("o-1", OrderStatus::New)],
        account: None,
        trades: vec![trade("t-2"), trade("t-1")],
    };
    let state = PortfolioState::from(snapshot);
    let wire = PortfolioState::from_snapshot(
        Some("e".into()),
        4,
        SnapshotData {
            positions: vec![position("AAPL", 1)],
            orders: vec![order("o-1", OrderStatus::New)],
            account: None,
            trades: vec![trade("t-1"), trade("t-2")],
        },
        MAX,
    );
    assert_eq!(state, wire);
}

fn state_at(seq: u64, epoch: Option<&str>, positions: &[(&str, i64)]) -> PortfolioState {
    PortfolioState {
        epoch: epoch.map(str::to_owned),
        seq,
        positions: positions.iter().map(|(s, q)| (Symbol::new(*s).unwrap(), position(s, *q))).collect(),
        ..PortfolioState::default()
    }
}

#[test]
fn rest_ahead_is_adopted_without_counting_a_difference() {
    let mut state = state_at(5, Some("e"), &[("AAPL", 1)]);
    let merge = state.merge_rest(state_at(7, Some("e"), &[("AAPL", 2)]));
    assert_eq!(merge, Merge { changed: true, adopted: true, differences: 0 });
    assert_eq!(state.seq, 7);
}

#[test]
fn rest_at_the_same_seq_is_compared() {
    let mut state = state_at(5, Some("e"), &[("AAPL", 1), ("MSFT", 1)]);
    assert_eq!(state.merge_rest(state_at(5, Some("e"), &[("AAPL", 1), ("MSFT", 1)])), Merge::default());
    // AAPL changed, MSFT missing, NVDA extra: three differences, REST adopted.
    let merge = state.merge_rest(state_at(5, Some("e"), &[("AAPL", 2), ("NVDA", 1)]));
    assert_eq!(merge, Merge { changed: true, adopted: true, differences: 3 });
    assert_eq!(state.positions.len(), 2);
}

#[test]
fn rest_behind_is_ignored_and_a_new_epoch_is_adopted() {
    let mut state = state_at(5, Some("e"), &[("AAPL", 1)]);
    assert_eq!(state.merge_rest(state_at(4, Some("e"), &[])), Merge::default());
    let merge = state.merge_rest(state_at(2, Some("f"), &[]));
    assert_eq!(merge, Merge { changed: true, adopted: true, differences: 1 });
    assert_eq!((state.seq, state.epoch.as_deref()), (2, Some("f")));
}

#[test]
fn rest_names_the_epoch_a_state_was_missing() {
    let mut state = state_at(3, None, &[("AAPL", 1)]);
    let merge = state.merge_rest(state_at(3, Some("e"), &[("AAPL", 1)]));
    assert_eq!(merge, Merge { changed: true, adopted: false, differences: 0 });
    assert_eq!(state.epoch.as_deref(), Some("e"));
}

#[test]
fn retain_channels_drops_what_was_not_subscribed() {
    let mut state = state_at(3, None, &[("AAPL", 1)]);
    state.orders.insert("o".into(), order("o", OrderStatus::New));
    state.retain_channels(&[Channel::Orders]);
    assert!(state.positions.is_empty());
    assert_eq!(state.orders.len(), 1);
}

#[test]
fn accounts_valued_at_different_times_do_not_differ() {
    let account = |cash: i64, at: &str| {
        let mut account = payload(conformance::account(&user(), cash), |e| match e {
            Event::AccountUpdate(e) => Some(e.data),
            _ => None,
        });
        account.timestamp = at.parse().expect("valid timestamp");
        account
    };
    let mut a = state_at(5, Some("e1"), &[]);
    let mut b = a.clone();
    a.account = Some(account(100, "2026-01-03T15:30:45.123Z"));
    b.account = Some(account(100, "2026-01-03T15:31:00.000Z"));
    assert_eq!(a.differences(&b), 0);
    b.account = Some(account(200, "2026-01-03T15:31:00.000Z"));
    assert_eq!(a.differences(&b), 1);
    b.account = None;
    assert_eq!(a.differences(&b), 1);
}

#[test]
fn deltas_resolve_over_what_the_state_holds() {
    use common::protocol::delta::{DeltaMessage, MissingBase, Partial, PositionDelta};
    let mut state = PortfolioState::default();
    let held = position("AAPL", 10);
    state.apply(at(3, conformance::position(&user(), "AAPL", 10, 12_000)), 50);
    let mut moved = held.clone();
    moved.current_price = conformance::dec(12_500);
    let delta = PositionDelta::between(&held, &moved).expect("a delta");
    let message = state
        .resolve(DeltaMessage::PositionUpdate(Partial::new(user(), conformance::ts(), 4, delta.clone())))
        .expect("resolves");
    assert!(state.apply(message, 50));
    assert_eq!(state.positions.values().next(), Some(&moved));
    assert_eq!(state.seq, 4);
    // A delta of a symbol the state does not hold is refused.
    let mut unknown = delta;
    unknown.symbol = Symbol::new("MSFT").expect("symbol");
    let refused = state.resolve(DeltaMessage::PositionUpdate(Partial::new(user(), conformance::ts(), 5, unknown)));
    assert_eq!(refused, Err(MissingBase));
}
