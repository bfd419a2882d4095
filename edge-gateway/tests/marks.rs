//! End-to-end tests of market marks at the edge: a real redis-server, the
//! real gateway, real WebSocket clients. A mark revalues every connected
//! holder's position and account (derived updates at the user's current
//! seq); concurrent marks leave equity exact; a client that was away sees
//! the latest marks after a resume, in a fresh snapshot and over REST.

mod harness;

use std::time::Duration;

use common::event::{Mark, Symbol, Timestamp};
use common::fixtures as conformance;
use event_log::SharedLog;
use harness::*;
use test_support::redis::RedisServer;

const ALL: [&str; 4] = ["positions", "orders", "account", "trades"];

fn mark(symbol: &str, price: &str, at: Timestamp) -> Mark {
    Mark { symbol: Symbol::new(symbol).expect("symbol"), price: price.parse().expect("price"), timestamp: at }
}

/// `at` plus `ms` milliseconds.
fn later(at: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_datetime(at.as_datetime() + chrono::Duration::milliseconds(ms))
}

/// A user holding 100 AAPL at 175.50 and 10 MSFT at 400.00 (entry 100.00
/// each), with 50,000.00 cash and a previous close of 103,074.19 (the
/// fixture account's equity − day P&L); returns the seq of the last event.
async fn seed(log: &SharedLog, name: &str) -> u64 {
    let who = user(name);
    publish(log, conformance::position(&who, "AAPL", 100, 17_550), &format!("{name}-p1")).await;
    publish(log, conformance::position(&who, "MSFT", 10, 40_000), &format!("{name}-p2")).await;
    publish(log, conformance::account(&who, 5_000_000), &format!("{name}-a")).await
}

/// A Redis, the seeded user `name`, a gateway, and the user's socket
/// subscribed to every channel, with what it was sent so far.
struct Setup {
    /// Kept alive while the test runs.
    redis: RedisServer,
    log: SharedLog,
    seq: u64,
    gateway: Gateway,
    socket: Socket,
    view: View,
}

async fn setup(name: &str) -> Setup {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let seq = seed(&log, name).await;
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut socket = connect(&gateway, name).await;
    let mut view = View::default();
    for message in subscribe(&mut socket, &ALL).await {
        view.apply(&message);
    }
    Setup { redis: server, log, seq, gateway, socket, view }
}

async fn put(log: &SharedLog, marks: &[Mark]) {
    for stored in log.put_marks(marks).await {
        assert!(stored.expect("put_marks"), "every mark here is newer");
    }
}

/// Reads messages into `view` until `done` holds, or panics after the wait.
async fn read_until(socket: &mut Socket, view: &mut View, what: &str, done: impl Fn(&View) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut kinds = Vec::new();
    while !done(view) {
        assert!(tokio::time::Instant::now() < deadline, "{what}: still {view:?} after {kinds:?}");
        let message = next(socket).await.unwrap_or_else(|code| panic!("closed ({code:?}) waiting for {what}"));
        kinds.push(message["type"].as_str().unwrap_or_default().to_owned());
        view.apply(&message);
    }
    kinds
}

fn price_of(view: &View, symbol: &str) -> Option<String> {
    view.positions.get(&Symbol::new(symbol).expect("symbol")).map(|p| p.current_price.to_string())
}

fn equity_of(view: &View) -> Option<String> {
    view.account.as_ref().map(|a| a.equity.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_revalues_the_holder_position_and_equity_at_its_current_seq() {
    let Setup { redis: _redis, log, seq, gateway, mut socket, mut view } = setup("mia").await;
    let mut bystander = connect(&gateway, "noah").await;
    subscribe(&mut bystander, &ALL).await;

    put(&log, &[mark("AAPL", "180.00", Timestamp::now())]).await;
    // The position and the account it moved, at once, at the current seq.
    let first = next(&mut socket).await.expect("the derived position");
    assert_eq!((first["type"].as_str(), first["seq"].as_u64()), (Some("position_update"), Some(seq)), "{first}");
    assert_eq!(
        (first["data"]["currentPrice"].as_str(), first["data"]["marketValue"].as_str()),
        (Some("180.00"), Some("18000.00"))
    );
    view.apply(&first);
    let second = next(&mut socket).await.expect("the derived account");
    assert_eq!((second["type"].as_str(), second["seq"].as_u64()), (Some("account_update"), Some(seq)), "{second}");
    view.apply(&second);
    // 50,000 + 18,000 + 4,000; day P&L against 103,074.19.
    assert_eq!(equity_of(&view).as_deref(), Some("72000.00"));
    let account = view.account.clone().expect("account");
    assert_eq!((account.day_pnl.to_string(), account.cash.to_string()), ("-31074.19".into(), "50000.00".into()));
    assert_eq!(view.seq, seq, "derived updates add nothing to the log");
    assert_eq!(log.snapshot(&user("mia")).await.expect("snapshot").seq, seq);

    // The bystander holds nothing: its next message is its own event.
    publish(&log, conformance::order(&user("noah"), "o-1", common::event::OrderStatus::Accepted), "noah-o").await;
    assert_eq!(next(&mut bystander).await.expect("an order")["type"], "order_update");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mark_batches_over_one_users_symbols_leave_equity_exact() {
    let Setup { redis: _redis, log, gateway, mut socket, mut view, .. } = setup("olga").await;
    let start = Timestamp::now();
    for round in 1..=20i64 {
        let at = later(start, round);
        let aapl = [mark("AAPL", &format!("{}.00", 175 + round), at)];
        let msft = [mark("MSFT", &format!("{}.00", 400 + round), at)];
        tokio::join!(put(&log, &aapl), put(&log, &msft));
    }
    // 50,000 + 100 × 195 + 10 × 420
    let expected = "73700.00";
    read_until(&mut socket, &mut view, "equity of both last marks", |v| equity_of(v).as_deref() == Some(expected))
        .await;
    assert_eq!((price_of(&view, "AAPL"), price_of(&view, "MSFT")), (Some("195.00".into()), Some("420.00".into())));
    let token = token("olga", 3600);
    let rest = gateway.get_json("/api/portfolio", Some(&token)).await;
    assert_eq!(rest["account"]["equity"], expected, "{rest}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_while_away_show_after_a_resume_in_a_snapshot_and_over_rest() {
    let Setup { redis: _redis, log, seq, gateway, mut socket, mut view } = setup("pia").await;
    let epoch = log.snapshot(&user("pia")).await.expect("snapshot").epoch.expect("epoch");
    socket.close(None).await.expect("close");

    let at = Timestamp::now();
    put(&log, &[mark("AAPL", "190.00", at), mark("MSFT", "390.00", at)]).await;
    // 50,000 + 19,000 + 3,900
    let expected = Some("72900.00".to_owned());

    // A resume: the catch-up batch carries the positions at the marks.
    let mut socket = connect(&gateway, "pia").await;
    send(&mut socket, serde_json::json!({"type": "subscribe", "channels": ALL, "since": seq, "epoch": epoch})).await;
    let replies = until_type(&mut socket, "subscribed").await;
    assert_eq!(replies[0]["type"], "batch", "{replies:?}");
    view.apply(&replies[0]);
    assert_eq!((price_of(&view, "AAPL"), price_of(&view, "MSFT")), (Some("190.00".into()), Some("390.00".into())));
    assert_eq!((equity_of(&view), view.seq), (expected.clone(), seq));
    socket.close(None).await.expect("close");

    // A fresh snapshot.
    let mut socket = connect(&gateway, "pia").await;
    let mut fresh = View::default();
    for message in subscribe(&mut socket, &ALL).await {
        fresh.apply(&message);
    }
    assert_eq!((price_of(&fresh, "AAPL"), equity_of(&fresh)), (Some("190.00".into()), expected.clone()));

    // REST.
    let rest = gateway.get_json("/api/portfolio", Some(&token("pia", 3600))).await;
    let aapl = rest["positions"].as_array().expect("positions").iter().find(|p| p["symbol"] == "AAPL").cloned();
    assert_eq!(aapl.map(|p| p["unrealizedPnl"].clone()), Some(serde_json::json!("9000.00")), "{rest}");
    assert_eq!(rest["account"]["equity"].as_str(), expected.as_deref());
    assert_eq!(rest["seq"], seq);

    // An older mark changes nothing anywhere.
    assert_eq!(log.put_marks(&[mark("AAPL", "1.00", later(at, -1))]).await[0].as_ref().ok(), Some(&false));
    let rest = gateway.get_json("/api/portfolio", Some(&token("pia", 3600))).await;
    assert_eq!(rest["account"]["equity"].as_str(), expected.as_deref());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_opened_while_connected_follows_its_marks() {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let quinn = user("quinn");
    publish(&log, conformance::account(&quinn, 5_000_000), "quinn-a").await;
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut socket = connect(&gateway, "quinn").await;
    let mut view = View::default();
    for message in subscribe(&mut socket, &ALL).await {
        view.apply(&message);
    }
    assert!(view.positions.is_empty());

    let seq = publish(&log, conformance::position(&quinn, "NVDA", 10, 50_000), "quinn-p").await;
    read_until_seq(&mut socket, &mut view, seq).await;
    // A mark older than the fill changes nothing; a newer one reprices it.
    put(&log, &[mark("NVDA", "1.00", "2026-01-01T00:00:00.000Z".parse().expect("timestamp"))]).await;
    put(&log, &[mark("NVDA", "510.00", Timestamp::now())]).await;
    read_until(&mut socket, &mut view, "NVDA at its mark", |v| {
        price_of(v, "NVDA").is_some() && price_of(v, "NVDA").as_deref() != Some("500.00")
    })
    .await;
    assert_eq!(price_of(&view, "NVDA").as_deref(), Some("510.00"), "the older mark never showed");
    // 50,000 + 5,100
    assert_eq!(equity_of(&view).as_deref(), Some("55100.00"));
    gateway.stop().await;
}

/// Field deltas: a connection that subscribed with `deltas` gets a mark's
/// position and account updates with only what changed, marked `delta`,
/// once it holds the full objects; one that did not gets full objects; a
/// connection that joins later gets full objects first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_connections_get_only_the_changed_fields() {
    let Setup { redis: _redis, log, seq, gateway, socket: mut full, .. } = setup("rosa").await;
    let mut deltas = connect(&gateway, "rosa").await;
    send(&mut deltas, serde_json::json!({"type": "subscribe", "channels": ALL, "deltas": true})).await;
    until_type(&mut deltas, "subscribed").await;

    let start = Timestamp::now();
    // The first mark after the snapshot: full objects for both (neither
    // connection was sent these values yet).
    put(&log, &[mark("AAPL", "180.00", start)]).await;
    let first = next(&mut deltas).await.expect("the first position");
    assert_eq!(first["delta"], serde_json::Value::Null, "full first: {first}");
    assert!(first["data"]["entryPrice"].is_string(), "{first}");
    next(&mut deltas).await.expect("the first account");
    for _ in 0..2 {
        next(&mut full).await.expect("full connection");
    }

    // A window later, the next mark: deltas with the price fields only.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    put(&log, &[mark("AAPL", "181.00", later(start, 1))]).await;
    let position = next(&mut deltas).await.expect("a delta position");
    assert_eq!(
        (position["type"].as_str(), position["delta"].as_bool()),
        (Some("position_update"), Some(true)),
        "{position}"
    );
    assert_eq!(position["seq"].as_u64(), Some(seq));
    let mut keys: Vec<&str> = position["data"].as_object().expect("data").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["currentPrice", "marketValue", "symbol", "unrealizedPnl", "unrealizedPnlPercent"]);
    assert_eq!(position["data"]["currentPrice"], "181.00");
    let account = next(&mut deltas).await.expect("a delta account");
    assert_eq!(account["delta"], true, "{account}");
    assert!(account["data"]["cash"].is_null() && account["data"]["equity"].is_string(), "{account}");
    // The other connection still gets full objects.
    let full_position = next(&mut full).await.expect("a full position");
    assert_eq!(full_position["delta"], serde_json::Value::Null);
    assert_eq!(full_position["data"]["entryPrice"], "100.00");
    assert!(position.to_string().len() < full_position.to_string().len());

    // A delta connection that joins now starts with full objects again.
    let mut late = connect(&gateway, "rosa").await;
    send(&mut late, serde_json::json!({"type": "subscribe", "channels": ALL, "deltas": true})).await;
    until_type(&mut late, "subscribed").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    put(&log, &[mark("AAPL", "182.00", later(start, 2))]).await;
    let joined = next(&mut late).await.expect("the late connection's position");
    assert_eq!(joined["delta"], serde_json::Value::Null, "full first: {joined}");
    assert_eq!(next(&mut deltas).await.expect("still a delta")["delta"], true);
    gateway.stop().await;
}
