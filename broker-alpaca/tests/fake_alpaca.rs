//! The real `apca` client against the fake Alpaca server: JSON shapes,
//! `Num` → `Decimal` conversion, 404 as "no position", and error kinds.

use std::time::Duration;

use broker::{AccountId, Broker, BrokerError};
use broker_alpaca::AlpacaBroker;
use common::event::{PositionSide, Symbol};
use rust_decimal::Decimal;
use test_support::alpaca::{FakeAccount, FakeAlpaca, Mode, KEY_ID, SECRET};

fn account() -> AccountId {
    AccountId::new("acct-1").expect("account id")
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

#[tokio::test]
async fn positions_and_balances_convert_exactly() {
    let fake = FakeAlpaca::start().await;
    let broker = AlpacaBroker::new(&fake.base_url(), KEY_ID, SECRET).expect("client");
    fake.set_position("AAPL", "100.5", "170.25", "175.12345678");
    fake.set_position("XLK", "-24", "82.69", "83.81");
    fake.set_account(FakeAccount {
        cash: "50000.01".into(),
        equity: "104308.75".into(),
        last_equity: "103074.19".into(),
        buying_power: "354905.24".into(),
    });
    let aapl = Symbol::new("AAPL").unwrap();
    let position = broker.position(&account(), &aapl).await.expect("position").expect("open");
    assert_eq!((position.symbol, position.quantity, position.side), (aapl, dec("100.5"), PositionSide::Long));
    assert_eq!((position.average_entry_price, position.current_price), (dec("170.25"), Some(dec("175.12345678"))));
    let short = broker.position(&account(), &Symbol::new("XLK").unwrap()).await.expect("position").expect("open");
    assert_eq!((short.quantity, short.side), (dec("24"), PositionSide::Short));
    let balances = broker.account(&account()).await.expect("account");
    assert_eq!(
        (balances.cash, balances.equity, balances.last_equity, balances.buying_power),
        (dec("50000.01"), dec("104308.75"), dec("103074.19"), dec("354905.24"))
    );
}

#[tokio::test]
async fn a_missing_position_is_none() {
    let fake = FakeAlpaca::start().await;
    let broker = AlpacaBroker::new(&fake.base_url(), KEY_ID, SECRET).expect("client");
    assert_eq!(broker.position(&account(), &Symbol::new("TSLA").unwrap()).await, Ok(None));
}

#[tokio::test]
async fn failures_are_classified() {
    let fake = FakeAlpaca::start().await;
    let symbol = Symbol::new("AAPL").unwrap();
    let wrong_key = AlpacaBroker::new(&fake.base_url(), KEY_ID, "wrong").expect("client");
    assert!(matches!(wrong_key.account(&account()).await, Err(BrokerError::Refused(_))));
    let broker = AlpacaBroker::new(&fake.base_url(), KEY_ID, SECRET).expect("client");
    fake.set_mode(Mode::Fail);
    assert!(matches!(broker.position(&account(), &symbol).await, Err(BrokerError::Unavailable(_))));
    assert!(matches!(broker.account(&account()).await, Err(BrokerError::Unavailable(_))));
    fake.set_mode(Mode::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(200), broker.account(&account())).await;
    assert!(hung.is_err(), "a hanging API must be bounded by the caller's timeout");
    drop(fake);
    // Nothing listens any more: connection refused is transient.
    let closed = AlpacaBroker::new("http://127.0.0.1:9", KEY_ID, SECRET).expect("client");
    assert!(matches!(closed.account(&account()).await, Err(BrokerError::Unavailable(_))));
}

#[test]
fn a_bad_base_url_is_refused() {
    assert!(matches!(AlpacaBroker::new("not a url", KEY_ID, SECRET), Err(BrokerError::Refused(_))));
}
