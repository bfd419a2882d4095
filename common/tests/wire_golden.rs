//! The TypeScript client's wire types are checked against messages written
//! by these Rust types: this test writes one of every server message (and
//! the close table, and one of every delta message) to
//! `clients/ts/packages/client/test/golden/`, and fails
//! when the committed files differ, so a change to the protocol types
//! reaches the TypeScript schemas' tests (docs/decisions.md, "TypeScript
//! wire types"). `UPDATE_GOLDEN=1 cargo test -p common --test wire_golden`
//! rewrites them.

use std::path::PathBuf;

use common::event::{Account, Channel, Envelope, Event, Order, OrderStatus, Position, PositionSide};
use common::fixtures::{self, dec, ts, user};
use common::protocol::close::Close;
use common::protocol::delta::{AccountDelta, DeltaBatchData, DeltaMessage, Partial, PositionDelta};
use common::protocol::{BatchData, ErrorCode, ServerMessage, SnapshotData};
use serde_json::{json, Value};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/ts/packages/client/test/golden")
}

/// The `data` of a fixture event, as its payload type.
fn data<T: serde::de::DeserializeOwned>(event: Event) -> T {
    let value = serde_json::to_value(event).expect("events serialize");
    serde_json::from_value(value["data"].clone()).expect("data decodes")
}

fn message(event: Event) -> ServerMessage {
    event.into()
}

fn server_messages() -> Vec<ServerMessage> {
    let alice = user("user-abc-123");
    let mut messages: Vec<ServerMessage> =
        [fixtures::POSITION_UPDATE, fixtures::ORDER_UPDATE, fixtures::ACCOUNT_UPDATE, fixtures::TRADE_EXECUTED]
            .iter()
            .map(|example| {
                let mut event: Event = serde_json::from_str(example).expect("the note's examples decode");
                event.set_seq(Some(1042));
                message(event)
            })
            .collect();
    let aapl: Position = data(fixtures::position(&alice, "AAPL", 100, 17_550));
    let mut short: Position = data(fixtures::position(&alice, "GME", 10, 2_150));
    short.side = PositionSide::Short;
    short.market_value = -short.market_value;
    short.strategy_id = Some("mean-reversion".into());
    let mut filled: Order = data(fixtures::order(&alice, "order-9", OrderStatus::Filled));
    filled.broker_order_id = Some("alpaca-9".into());
    filled.filled_qty = filled.qty;
    filled.filled_avg_price = Some(dec(24_575));
    filled.filled_at = Some(ts());
    let mut rejected: Order = data(fixtures::order(&alice, "order-10", OrderStatus::Rejected));
    rejected.reason = Some("insufficient buying power".into());
    messages.push(message(Envelope::new(alice.clone(), ts(), short.clone()).with_seq(1043).into()));
    messages.push(message(Envelope::new(alice.clone(), ts(), rejected).with_seq(1044).into()));
    let batch = BatchData {
        positions: vec![aapl.clone(), short.clone()],
        orders: vec![filled],
        account: Some(data(fixtures::account(&alice, 5_000_000))),
        trades: vec![data(fixtures::trade(&alice, "trade-1"))],
    };
    messages.push(ServerMessage::Batch(Envelope::new(alice.clone(), ts(), batch).with_seq(1050)));
    messages.push(ServerMessage::Batch(Envelope::new(alice.clone(), ts(), BatchData::default()).with_seq(1050)));
    messages.push(ServerMessage::Subscribed {
        channels: vec![Channel::Positions, Channel::Orders, Channel::Account, Channel::Trades],
        seq: 1050,
        epoch: Some("9f1c2a7be0d34411".into()),
    });
    messages.push(ServerMessage::Subscribed { channels: vec![Channel::Positions], seq: 0, epoch: None });
    messages.push(ServerMessage::Snapshot {
        seq: 1050,
        epoch: Some("9f1c2a7be0d34411".into()),
        timestamp: ts(),
        data: SnapshotData {
            positions: vec![aapl, short],
            orders: vec![data(fixtures::order(&alice, "order-11", OrderStatus::Accepted))],
            account: Some(data(fixtures::account(&alice, 5_000_000))),
            trades: vec![data(fixtures::trade(&alice, "trade-1")), data(fixtures::trade(&alice, "trade-2"))],
        },
    });
    messages.push(ServerMessage::Snapshot { seq: 0, epoch: None, timestamp: ts(), data: SnapshotData::default() });
    for pong in [
        json!({"type": "pong", "id": 17, "timestamp": ts()}),
        json!({"type": "pong", "id": "a-1", "timestamp": ts()}),
        json!({"type": "pong", "timestamp": ts()}),
    ] {
        messages.push(serde_json::from_value(pong).expect("pongs decode"));
    }
    for code in ErrorCode::ALL {
        messages.push(ServerMessage::Error { code, message: "What went wrong".into() });
    }
    messages
}

fn check(name: &str, value: &Value) {
    let path = golden_dir().join(name);
    let text = serde_json::to_string_pretty(value).expect("golden values serialize") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, text).expect("golden file written");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not what the Rust types write; run `UPDATE_GOLDEN=1 cargo test -p common --test wire_golden` \
         and make the TypeScript schemas accept it",
        path.display()
    );
}

#[test]
fn the_typescript_golden_messages_are_what_the_rust_types_write() {
    let messages = server_messages();
    let types: std::collections::BTreeSet<&str> = messages.iter().map(ServerMessage::type_name).collect();
    assert_eq!(types.len(), 9, "one of every server message type: {types:?}");
    check("server-messages.json", &serde_json::to_value(&messages).expect("messages serialize"));
}

/// One of every delta message (docs/protocol.md, "Field deltas").
fn delta_messages() -> Vec<DeltaMessage> {
    let alice = user("user-abc-123");
    let base: Position = data(fixtures::position(&alice, "AAPL", 100, 17_550));
    let mut moved = base.clone();
    moved.current_price = dec(17_600);
    moved.market_value = dec(1_760_000);
    moved.unrealized_pnl = dec(760_000);
    let price_move = PositionDelta::between(&base, &moved).expect("a delta");
    let account: Account = data(fixtures::account(&alice, 5_000_000));
    let mut richer = account.clone();
    richer.equity = dec(10_500_000);
    richer.portfolio_value = dec(10_500_000);
    let account_move = AccountDelta::between(&account, &richer);
    let batch = DeltaBatchData {
        positions: vec![price_move.clone(), PositionDelta::full(&data(fixtures::position(&alice, "NVDA", 5, 52_050)))],
        orders: vec![data(fixtures::order(&alice, "order-12", OrderStatus::Accepted))],
        account: Some(account_move.clone()),
        trades: vec![data(fixtures::trade(&alice, "trade-3"))],
    };
    vec![
        DeltaMessage::PositionUpdate(Partial::new(alice.clone(), ts(), 1051, price_move)),
        DeltaMessage::AccountUpdate(Partial::new(alice.clone(), ts(), 1051, account_move)),
        DeltaMessage::Batch(Partial::new(alice, ts(), 1052, batch)),
    ]
}

#[test]
fn the_typescript_golden_deltas_are_what_the_rust_types_write() {
    check("delta-messages.json", &serde_json::to_value(delta_messages()).expect("deltas serialize"));
}

#[test]
fn the_typescript_close_table_is_the_rust_one() {
    check("close-codes.json", &serde_json::to_value(Close::ALL.map(Close::entry)).expect("closes serialize"));
}
