//! Position sync: the broker's book against the user's snapshot; only drift
//! is published, and what the broker no longer has is closed.

use axum::http::StatusCode;
use common::event::Event;
use event_log::index::IngestIndex;
use functions::Function;
use serde_json::{json, Value};
use test_support::alpaca::Mode;

use crate::harness::{dec, sign, symbol_of, types, user, Harness, INGEST_SECRET};

const PATH: &str = Function::PositionSync.path();

async fn sync(h: &Harness, account: &str) -> (StatusCode, Value) {
    let body = json!({"accountId": account}).to_string();
    h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await
}

#[tokio::test]
async fn sync_closes_what_the_broker_no_longer_has_and_corrects_drift_once() {
    let h = Harness::start().await;
    let (alice, bob) = (user("alice"), user("bob"));
    h.link("acct-alice", &alice).await;
    h.seed_holder(&alice, "AAPL", "10", "170.25", "175.50").await;
    h.seed_holder(&alice, "MSFT", "5", "300.00", "310.00").await;
    h.seed_holder(&bob, "MSFT", "5", "300.00", "310.00").await;
    // At the broker: AAPL drifted to 12, MSFT is gone, NVDA appeared.
    h.alpaca.set_position("AAPL", "12", "171", "176.00");
    h.alpaca.set_position("NVDA", "3", "120.5", "121.00");
    let before = h.events(&alice).await.len();

    let (status, answer) = sync(&h, "acct-alice").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"published": 4, "duplicates": 0, "positions": 2, "corrected": 2, "closed": 1, "account": true})
    );
    let events = h.events(&alice).await;
    assert_eq!(types(&events[before..]), ["position_update", "position_update", "position_update", "account_update"]);
    let snapshot = h.snapshot(&alice).await;
    let book: Vec<(&str, String, String)> = snapshot
        .positions
        .iter()
        .map(|p| (p.symbol.as_str(), p.quantity.to_string(), p.entry_price.to_string()))
        .collect();
    assert_eq!(book, [("AAPL", "12".into(), "171.00".into()), ("NVDA", "3".into(), "120.50".into())]);
    let Some(Event::PositionUpdate(aapl)) =
        events.iter().rev().find(|e| matches!(e, Event::PositionUpdate(p) if p.data.symbol.as_str() == "AAPL"))
    else {
        panic!("no AAPL update")
    };
    assert_eq!(aapl.data.strategy_id.as_deref(), Some("strategy-xyz"), "what the broker does not know is kept");
    assert_eq!(snapshot.account.as_ref().map(|a| a.cash), Some(dec("50000.00")));
    assert_eq!(snapshot.account.as_ref().map(|a| a.buying_power), Some(dec("354905.24")));
    assert_eq!(h.log.holders(&symbol_of("MSFT")).await.unwrap(), vec![bob.clone()], "alice left MSFT's holders");
    assert_eq!(h.log.holders(&symbol_of("NVDA")).await.unwrap(), vec![alice.clone()]);

    // Nothing drifted since: a second sync publishes nothing.
    let (status, answer) = sync(&h, "acct-alice").await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::OK,
            json!({"published": 0, "duplicates": 0, "positions": 2, "corrected": 0, "closed": 0, "account": false})
        )
    );
    assert_eq!(h.events(&alice).await.len(), events.len());
    assert_eq!(h.snapshot(&bob).await.positions.len(), 1, "another user's book is untouched");
}

#[tokio::test]
async fn sync_refuses_unlinked_accounts_and_publishes_nothing_while_the_broker_is_down() {
    let h = Harness::start().await;
    let alice = user("alice");
    let (status, answer) = sync(&h, "acct-alice").await;
    assert_eq!((status, &answer["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("unknown_account")));
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "12", "171", "176.00");
    h.alpaca.set_mode(Mode::Fail);
    let (status, answer) = sync(&h, "acct-alice").await;
    assert_eq!((status, &answer["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("broker_unavailable")));
    assert!(h.events(&alice).await.is_empty());
    let (status, answer) = sync(&h, "bad id").await;
    assert_eq!((status, &answer["error"]["field"]), (StatusCode::BAD_REQUEST, &json!("accountId")));

    let local = Harness::without_broker().await;
    local.link("acct-alice", &alice).await;
    let (status, answer) = sync(&local, "acct-alice").await;
    assert_eq!((status, &answer["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("broker_not_configured")));
}
