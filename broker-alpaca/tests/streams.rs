//! The relay's side of `broker-alpaca` against the fake Alpaca: the
//! trade-updates and market-data streams as Alpaca speaks them, the fill
//! backfill from account activities and orders, and the positions list.

use std::time::Duration;

use broker::{AccountId, Broker};
use broker_alpaca::stream::{MarketData, StreamError, TradeUpdates};
use broker_alpaca::AlpacaBroker;
use chrono::Utc;
use rust_decimal::Decimal;
use test_support::alpaca::{FakeAlpaca, FakeFill, KEY_ID, SECRET};
use test_support::wait;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn trade_updates_arrive_whole_with_what_a_fill_needs() {
    let fake = FakeAlpaca::start().await;
    let mut stream = TradeUpdates::connect(&fake.stream_url(), KEY_ID, SECRET).await.expect("connect");
    wait::until("the stream listening", WAIT, || async { (fake.trade_listeners() == 1).then_some(()) }).await;
    let sent = fake.fill(&FakeFill::market(1, "AAPL", "buy", "10", "175.50"));
    let update = tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("an update");
    assert_eq!(update, sent, "passed on as Alpaca sent it");
    for field in ["execution_id", "price", "qty", "position_qty", "timestamp"] {
        assert!(!update[field].is_null(), "{field} is kept (apca's own type drops it)");
    }
    assert_eq!((update["event"].as_str(), update["order"]["filled_qty"].as_str()), (Some("fill"), Some("10")));

    fake.drop_streams();
    let lost = tokio::time::timeout(WAIT, stream.next()).await.expect("noticed in time");
    assert!(matches!(lost, Err(StreamError::Connection(_))), "{lost:?}");
}

#[tokio::test]
async fn wrong_keys_and_a_refused_upgrade_are_told_apart() {
    let fake = FakeAlpaca::start().await;
    let refused = TradeUpdates::connect(&fake.stream_url(), KEY_ID, "wrong").await.unwrap_err();
    assert!(matches!(refused, StreamError::Refused(_)), "{refused}");
    let refused = MarketData::connect(&fake.data_stream_url(), KEY_ID, "wrong").await.unwrap_err();
    assert!(matches!(refused, StreamError::Refused(_)), "{refused}");
    fake.set_streams_up(false);
    let down = TradeUpdates::connect(&fake.stream_url(), KEY_ID, SECRET).await.unwrap_err();
    assert!(matches!(down, StreamError::Connection(_)), "{down}");
}

#[tokio::test]
async fn prints_of_subscribed_symbols_arrive_with_exact_prices() {
    let fake = FakeAlpaca::start().await;
    let mut stream = MarketData::connect(&fake.data_stream_url(), KEY_ID, SECRET).await.expect("connect");
    stream.subscribe(&["AAPL".to_owned(), "MSFT".to_owned()]).await.expect("subscribe");
    wait::until("the subscription", WAIT, || async { (fake.subscribed_symbols().len() == 2).then_some(()) }).await;
    stream.unsubscribe(&["MSFT".to_owned()]).await.expect("unsubscribe");
    wait::until("the unsubscription", WAIT, || async { (fake.subscribed_symbols().len() == 1).then_some(()) }).await;
    fake.print("MSFT", "410.1", "2026-01-05T15:00:00.000Z");
    fake.print("AAPL", "180.123456", "2026-01-05T15:00:00.100Z");
    let prints = tokio::time::timeout(WAIT, stream.next()).await.expect("in time").expect("prints");
    assert_eq!(prints.len(), 1, "{prints:?}");
    assert_eq!(prints[0].symbol, "AAPL");
    assert_eq!(prints[0].price, "180.123456".parse::<Decimal>().unwrap(), "read from the number's text, not a float");
    assert_eq!(prints[0].timestamp, "2026-01-05T15:00:00.100Z");
}

#[tokio::test]
async fn the_backfill_rebuilds_each_missed_fill_as_its_trade_update() {
    let fake = FakeAlpaca::start().await;
    let broker = AlpacaBroker::new(&fake.base_url(), KEY_ID, SECRET).expect("client");
    assert_eq!(broker.account_id().await.expect("account id"), fake.account_id());
    let before = Utc::now() - chrono::Duration::seconds(1);
    let mut partial = FakeFill::market(7, "AAPL", "buy", "4", "100.00");
    partial.order_qty = "10".into();
    fake.fill(&partial);
    let mut rest = partial.clone();
    rest.qty = "6".into();
    rest.price = "101.00".into();
    fake.fill(&rest);
    fake.fill(&FakeFill::market(8, "MSFT", "buy", "2", "400.00"));

    let updates = broker.fills_after("acct-x", before).await.expect("backfill");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let summary: Vec<[String; 5]> = updates
        .iter()
        .map(|u| {
            [&u["event"], &u["order"]["symbol"], &u["qty"], &u["order"]["filled_qty"], &u["order"]["status"]].map(text)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ["partial_fill", "AAPL", "4", "4", "partially_filled"],
            ["fill", "AAPL", "6", "10", "filled"],
            ["fill", "MSFT", "2", "2", "filled"],
        ]
        .map(|row| row.map(str::to_owned))
    );
    assert!(updates.iter().all(|u| u["account_id"] == "acct-x" && u["order"]["type"] == "market"));
    assert_eq!(updates[0]["order"]["client_order_id"], "order-7");
    let later = Utc::now() + chrono::Duration::minutes(1);
    assert!(broker.fills_after("acct-x", later).await.expect("nothing newer").is_empty());

    let positions = broker.positions(&AccountId::new("acct-x").unwrap()).await.expect("positions");
    let held: Vec<(String, String)> =
        positions.iter().map(|p| (p.symbol.as_str().to_owned(), p.quantity.to_string())).collect();
    assert_eq!(held, [("AAPL".to_owned(), "10".to_owned()), ("MSFT".to_owned(), "2".to_owned())]);
}
