//! The broker webhook: fills become four events built from the broker's
//! state; signatures, duplicates, broker and Redis outages, partial
//! failures, bad input.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::event::{Event, OrderStatus, PositionSide};
use event_log::index::IngestIndex;
use functions::Function;
use serde_json::{json, Value};
use test_support::alpaca::Mode;
use test_support::wait;

use crate::harness::{
    dec, http_post, order, sign, symbol_of, trade_update, types, user, Harness, INGEST_SECRET, WEBHOOK_SECRET,
};

const PATH: &str = Function::BrokerWebhook.path();

fn fill(account: &str, execution_id: &str) -> String {
    trade_update(account, "fill", Some(execution_id), order("filled", "10"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_over_http_publishes_order_trade_position_and_account_once() {
    let h = Harness::start().await;
    let (alice, bob) = (user("alice"), user("bob"));
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let addr = h.serve().await;

    let body = fill("acct-alice", "exec-1");
    let (status, answer) = http_post(addr, PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"published": 4, "duplicates": 0})));

    let events = h.events(&alice).await;
    assert_eq!(types(&events), ["order_update", "trade_executed", "position_update", "account_update"]);
    assert_eq!(events.iter().map(|e| e.seq().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let Event::OrderUpdate(order) = &events[0] else { unreachable!() };
    assert_eq!(order.data.order_id, "order-123");
    assert_eq!(order.data.broker_order_id.as_deref(), Some("alpaca-order-456"));
    assert_eq!((order.data.status, order.data.filled_qty), (OrderStatus::Filled, dec("10")));
    let Event::TradeExecuted(trade) = &events[1] else { unreachable!() };
    assert_eq!(
        (trade.data.trade_id.as_str(), trade.data.price, trade.data.quantity),
        ("exec-1", dec("175.50"), dec("10"))
    );
    let Event::PositionUpdate(position) = &events[2] else { unreachable!() };
    let p = &position.data;
    assert_eq!(
        (p.quantity, p.side, p.entry_price, p.current_price),
        (dec("10"), PositionSide::Long, dec("170.25"), dec("175.50"))
    );
    assert_eq!(
        (p.market_value.to_string(), p.unrealized_pnl.to_string(), p.unrealized_pnl_percent.to_string()),
        ("1755.00".into(), "52.50".into(), "3.08".into())
    );
    let Event::AccountUpdate(account) = &events[3] else { unreachable!() };
    assert_eq!((account.data.equity, account.data.day_pnl.to_string()), (dec("104308.75"), "1234.56".into()));
    assert_eq!(h.log.holders(&symbol_of("AAPL")).await.unwrap(), vec![alice.clone()]);

    // Delivered again (a broker retry, freshly signed): nothing new.
    let (status, answer) = http_post(addr, PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"published": 0, "duplicates": 4})));
    assert_eq!(h.events(&alice).await.len(), 4);
    assert!(h.events(&bob).await.is_empty(), "another user sees nothing");
}

/// Closing a position realizes its P&L on the trade (issue 17).
#[tokio::test]
async fn a_fill_that_closes_the_position_publishes_quantity_zero_and_leaves_the_index() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let buy = fill("acct-alice", "exec-1");
    assert_eq!(h.send(PATH, &buy, Some(sign(WEBHOOK_SECRET, &buy))).await.0, StatusCode::OK);
    assert_eq!(h.snapshot(&alice).await.positions.len(), 1);

    h.alpaca.close_position("AAPL");
    let mut sell = order("filled", "10");
    sell["side"] = json!("sell");
    sell["id"] = json!("alpaca-order-789");
    let body = trade_update("acct-alice", "fill", Some("exec-2"), sell);
    let (status, _) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK);
    let events = h.events(&alice).await;
    let Some(Event::PositionUpdate(closed)) = events.iter().rev().find(|e| e.type_name() == "position_update") else {
        panic!("no position update")
    };
    assert!(closed.data.is_closed());
    assert_eq!((closed.data.side, closed.data.entry_price), (PositionSide::Long, dec("170.25")));
    // The sell realized (175.50 − 170.25) × 10; the buy that opened, nothing.
    let pnls: Vec<Option<String>> = events
        .iter()
        .filter_map(|e| match e {
            Event::TradeExecuted(t) => Some(t.data.pnl.map(|p| p.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(pnls, [None, Some("52.50".to_owned())]);
    assert!(h.snapshot(&alice).await.positions.is_empty());
    assert!(h.log.holders(&symbol_of("AAPL")).await.unwrap().is_empty());
}

#[tokio::test]
async fn non_fill_events_update_the_order_only_and_never_call_the_broker() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    for (i, (event, status)) in [("new", "new"), ("accepted", "accepted"), ("canceled", "canceled")].iter().enumerate()
    {
        let body = trade_update("acct-alice", event, Some(&format!("exec-{i}")), order(status, "0"));
        let (code, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
        assert_eq!((code, answer), (StatusCode::OK, json!({"published": 1, "duplicates": 0})), "{event}");
    }
    assert_eq!(types(&h.events(&alice).await), ["order_update"; 3]);
    assert!(h.snapshot(&alice).await.orders.is_empty(), "a canceled order leaves the snapshot");
    assert_eq!(h.alpaca.requests(), 0);
}

#[tokio::test]
async fn bad_signatures_get_401_and_change_nothing() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let body = fill("acct-alice", "exec-1");
    let now = functions::signature::now_unix();
    let tampered = body.replace("\"10\"", "\"1000\"");
    let cases = [
        ("wrong secret", Some(sign(b"not-the-webhook-secret-0123456789abc", &body)), body.clone()),
        ("ingest secret on the webhook", Some(sign(INGEST_SECRET, &body)), body.clone()),
        ("stale timestamp", Some(functions::signature::sign(WEBHOOK_SECRET, now - 301, body.as_bytes())), body.clone()),
        (
            "future timestamp",
            Some(functions::signature::sign(WEBHOOK_SECRET, now + 301, body.as_bytes())),
            body.clone(),
        ),
        ("tampered body", Some(sign(WEBHOOK_SECRET, &body)), tampered),
        ("missing header", None, body.clone()),
        ("malformed header", Some("v1=abc".to_owned()), body.clone()),
    ];
    for (case, signature, sent) in cases {
        let (status, answer) = h.send(PATH, &sent, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(answer["error"]["code"], "unauthorized", "{case}");
    }
    assert!(h.events(&alice).await.is_empty());
    assert_eq!(h.alpaca.requests(), 0, "nothing was fetched for unsigned requests");
}

#[tokio::test]
async fn broker_down_or_slow_is_503_in_bounded_time_and_the_retry_publishes_exactly_once() {
    let h = Harness::start().await;
    let (alice, control) = (user("alice"), user("control"));
    h.link("acct-alice", &alice).await;
    h.link("acct-control", &control).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let body = fill("acct-alice", "exec-1");

    for mode in [Mode::Hang, Mode::Fail] {
        h.alpaca.set_mode(mode);
        let started = Instant::now();
        let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{mode:?}");
        assert_eq!(answer["error"]["code"], "broker_unavailable");
        assert!(started.elapsed() < Duration::from_secs(2), "{mode:?} took {:?}", started.elapsed());
        assert!(h.events(&alice).await.is_empty(), "{mode:?}: nothing published");
    }

    h.alpaca.set_mode(Mode::Normal);
    let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"published": 4, "duplicates": 0})));
    // Exactly what a first success produces (the control never saw an outage).
    let control_body = fill("acct-control", "exec-control");
    assert_eq!(h.send(PATH, &control_body, Some(sign(WEBHOOK_SECRET, &control_body))).await.0, StatusCode::OK);
    let normalize = |events: Vec<Event>| -> Vec<Value> {
        events
            .into_iter()
            .map(|event| {
                let mut value = serde_json::to_value(&event).unwrap();
                for key in ["timestamp", "userId"] {
                    value.as_object_mut().unwrap().remove(key);
                }
                value["data"].as_object_mut().unwrap().remove("timestamp");
                if value["type"] == "trade_executed" {
                    value["data"]["tradeId"] = Value::Null;
                }
                value
            })
            .collect()
    };
    assert_eq!(normalize(h.events(&alice).await), normalize(h.events(&control).await));
}

#[tokio::test]
async fn a_retry_after_a_partial_publish_completes_the_rest() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let body = fill("acct-alice", "exec-1");

    h.flaky.fail_after(2);
    let (status, _) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(types(&h.events(&alice).await), ["order_update", "trade_executed"]);
    assert!(h.log.holders(&symbol_of("AAPL")).await.unwrap().is_empty(), "the index follows the publish");

    h.flaky.heal();
    let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"published": 2, "duplicates": 2})));
    assert_eq!(types(&h.events(&alice).await), ["order_update", "trade_executed", "position_update", "account_update"]);
    assert_eq!(h.log.holders(&symbol_of("AAPL")).await.unwrap(), vec![alice]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_and_the_retry_after_it_returns_publishes() {
    let mut h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    let body = trade_update("acct-alice", "new", Some("exec-new"), order("new", "0"));
    h.redis.stop();
    let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("event_log_unavailable"))
    );

    h.redis.restart();
    let answer = wait::until("the webhook after Redis returns", Duration::from_secs(15), || {
        let (h, body) = (&h, &body);
        async move {
            let (status, answer) = h.send(PATH, body, Some(sign(WEBHOOK_SECRET, body))).await;
            (status == StatusCode::OK).then_some(answer)
        }
    })
    .await;
    assert_eq!(answer, json!({"published": 1, "duplicates": 0}));
    assert_eq!(h.events(&alice).await.len(), 1);
}

#[tokio::test]
async fn unknown_accounts_and_bad_input_are_refused_with_the_field() {
    let harness = Harness::start().await;
    let h = &harness;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    let send = |body: String| async move {
        let signature = sign(WEBHOOK_SECRET, &body);
        h.send(PATH, &body, Some(signature)).await
    };

    let (status, answer) = send(fill("acct-nobody", "exec-1")).await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("unknown_account")));

    let mut sideways = order("filled", "10");
    sideways["side"] = json!("sideways");
    let mut traversal = order("filled", "10");
    traversal["symbol"] = json!("..");
    let mut free_limit = order("filled", "10");
    free_limit["limit_price"] = json!("0");
    let mut negative_stop = order("filled", "10");
    negative_stop["stop_price"] = json!("-0.01");
    let cases = [
        (trade_update("acct-alice", "fill", Some("exec-1"), traversal), Some("order.symbol")),
        (trade_update("acct-alice", "fill", Some("exec-1"), free_limit), Some("order.limit_price")),
        (trade_update("acct-alice", "fill", Some("exec-1"), negative_stop), Some("order.stop_price")),
        (trade_update("acct-alice", "fill", Some("exec-1"), sideways), Some("order.side")),
        (fill("acct-alice", "exec-1").replace("\"175.50\",\"qty\"", "\"abc\",\"qty\""), Some("price")),
        (fill("acct-alice", "exec-1").replace("\"account_id\":\"acct-alice\",", ""), Some("account_id")),
        (trade_update("acct-alice", "fill", None, order("filled", "10")), Some("execution_id")),
        (fill("acct-alice", "exec 1"), Some("execution_id")),
        ("{not json".to_owned(), None),
    ];
    for (body, field) in cases {
        let (status, answer) = send(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert_eq!(answer["error"]["field"].as_str(), field, "{answer}");
    }
    assert!(h.events(&alice).await.is_empty());
}

/// Money is written with two decimals and prices with at least two, however
/// the broker spells them.
#[tokio::test]
async fn money_and_prices_are_written_normalised() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "175.5", "176");
    h.alpaca.set_account(test_support::alpaca::FakeAccount {
        cash: "5000".into(),
        equity: "10005".into(),
        last_equity: "10000.5".into(),
        buying_power: "20000.1".into(),
    });
    let body = fill("acct-alice", "exec-1");
    let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let wire: Vec<Value> = h.events(&alice).await.iter().map(|e| serde_json::to_value(e).expect("JSON")).collect();
    let position = wire.iter().find(|e| e["type"] == "position_update").expect("a position update");
    assert_eq!(
        (position["data"]["entryPrice"].as_str(), position["data"]["currentPrice"].as_str()),
        (Some("175.50"), Some("176.00"))
    );
    let account = &wire.iter().find(|e| e["type"] == "account_update").expect("an account update")["data"];
    let fields = ["equity", "cash", "buyingPower", "portfolioValue", "dayPnl"].map(|f| account[f].as_str());
    assert_eq!(fields, [Some("10005.00"), Some("5000.00"), Some("20000.10"), Some("10005.00"), Some("4.50")]);
}

/// No Alpaca keys on a local run: a fill is refused with a clear 503 and
/// publishes nothing; updates that need no broker still go through.
#[tokio::test]
async fn without_a_broker_fills_are_refused_clearly_and_other_updates_pass() {
    let h = Harness::without_broker().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    let body = fill("acct-alice", "exec-1");
    let (status, answer) = h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "broker_not_configured", "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("APCA_API_KEY_ID")), "{answer}");
    assert!(h.events(&alice).await.is_empty(), "nothing published");
    let accepted = trade_update("acct-alice", "new", None, order("new", "0"));
    let (status, _) = h.send(PATH, &accepted, Some(sign(WEBHOOK_SECRET, &accepted))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(types(&h.events(&alice).await), ["order_update"]);
}

/// The relay's backfill names a fill by its activity id, the stream by its
/// execution id; both carry the order's filled quantity after the fill,
/// which is what the fill is named by, so it is published once.
#[tokio::test]
async fn a_fill_from_the_stream_and_again_from_a_backfill_publishes_once() {
    let h = Harness::start().await;
    let alice = user("alice");
    h.link("acct-alice", &alice).await;
    h.alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let live = fill("acct-alice", "7922ab44-2b9b-4b8a-9d5f-4a9d3d3f2c11");
    let backfilled = fill("acct-alice", "20260103153045123::7922ab44-2b9b-4b8a-9d5f-4a9d3d3f2c11");
    let (_, first) = h.send(PATH, &live, Some(sign(WEBHOOK_SECRET, &live))).await;
    let (_, again) = h.send(PATH, &backfilled, Some(sign(WEBHOOK_SECRET, &backfilled))).await;
    assert_eq!((first, again), (json!({"published": 4, "duplicates": 0}), json!({"published": 0, "duplicates": 4})));

    // The next execution of the same order (filled quantity 10 → 15) is new.
    let mut more = order("partially_filled", "15");
    more["qty"] = json!("20");
    let next = trade_update("acct-alice", "partial_fill", Some("exec-next"), more);
    let (_, answer) = h.send(PATH, &next, Some(sign(WEBHOOK_SECRET, &next))).await;
    assert_eq!(answer, json!({"published": 4, "duplicates": 0}));

    // A fill whose order claims less filled than the fill itself is refused.
    let bad = trade_update("acct-alice", "fill", Some("exec-bad"), order("filled", "5"));
    let (status, answer) = h.send(PATH, &bad, Some(sign(WEBHOOK_SECRET, &bad))).await;
    assert_eq!((status, &answer["error"]["field"]), (StatusCode::BAD_REQUEST, &json!("order.filled_qty")));
}
