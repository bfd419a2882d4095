//! Restarts: a gateway stopped gracefully (1012) and started again on the
//! same port; the client reconnects at once, resumes from its seq, and
//! loses nothing that was published while it was away.

use std::sync::Arc;
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use event_log::redis::RedisLog;
use event_log::{LogSettings, SharedLog};
use portfolio_client::{Client, Close, Status};
use test_support::redis::RedisServer;

use crate::support::{config, publish, server_state, user, FakeGateway, Gateway, EXACT, WAIT};

async fn redis_log(server: &RedisServer) -> SharedLog {
    Arc::new(RedisLog::connect(&server.url(), LogSettings::default(), Duration::from_secs(2)).await.expect("redis"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_resumes_without_losing_an_event() {
    let redis = RedisServer::start();
    let producer = redis_log(&redis).await;
    let dave = user("dave");
    publish(&producer, conformance::account(&dave, 1), "a-0").await;

    let gateway = Gateway::start(redis_log(&redis).await, &EXACT).await;
    let addr = gateway.addr;
    let client = Client::connect(config(&gateway.url(), "dave")).expect("client");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    let seq = publish(&producer, conformance::order(&dave, "o-1", OrderStatus::New), "o-1").await;
    client.wait_for(WAIT, |s| s.seq >= seq).await.expect("first order");

    gateway.stop().await;
    client.wait_for_status(WAIT, |s| s != Status::Live).await.expect("dropped");
    let close = client.last_close().expect("a close frame");
    assert_eq!((close.code, close.reason.as_str()), (Some(Close::Restarting.code()), Close::Restarting.reason()));

    // Published while no gateway runs: the client must get all of it.
    let mut last = 0;
    for i in 0..30i64 {
        let event = match i % 3 {
            0 => conformance::trade(&dave, &format!("t-{i}")),
            1 => conformance::position(&dave, ["AAPL", "MSFT"][(i % 2) as usize], 1 + i, 10_000 + i),
            _ => conformance::order(&dave, &format!("o-{}", i % 5), OrderStatus::Accepted),
        };
        last = publish(&producer, event, &format!("away-{i}")).await;
    }

    let gateway = Gateway::start_on(addr, redis_log(&redis).await, &EXACT).await;
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live again");
    let state = client.wait_for(WAIT, |s| s.seq >= last).await.expect("caught up");
    assert_eq!(state, server_state(&producer, &dave).await);
    assert_eq!(state.trades.len(), 10, "every trade published while away");

    // And live events keep flowing on the new session.
    let last = publish(&producer, conformance::order(&dave, "o-1", OrderStatus::Filled), "fill").await;
    let state = client.wait_for(WAIT, |s| s.seq >= last).await.expect("live event");
    assert_eq!(state, server_state(&producer, &dave).await);

    let metrics = client.metrics();
    assert_eq!(metrics.snapshots, 1, "resumed by catch-up, not a new snapshot: {metrics:?}");
    assert!(metrics.resumes >= 1, "{metrics:?}");
    assert_eq!(metrics.reconnects, 1, "{metrics:?}");
    client.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_close_reconnects_at_once_and_resumes() {
    let mut fake = FakeGateway::start().await;
    let mut config = config(&fake.url(), "erin");
    // A backoff step would take ten seconds: only the restart path is quick.
    config.backoff_base = Duration::from_secs(10);
    config.backoff_cap = Duration::from_secs(30);
    config.restart_jitter = Duration::from_millis(250);
    let client = Client::connect(config).expect("client");

    let mut conn = fake.next_conn().await;
    let first = conn.accept_subscribe(41).await;
    assert!(first.get("since").is_none(), "a first subscribe asks for a snapshot: {first}");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    let closed_at = tokio::time::Instant::now();
    conn.close(Close::Restarting).await;

    let mut conn = fake.next_conn().await;
    let waited = closed_at.elapsed();
    assert!(waited < Duration::from_secs(2), "reconnected after {waited:?}");
    let resume = conn.accept_subscribe(41).await;
    assert_eq!((resume["since"].as_u64(), resume["epoch"].as_str()), (Some(41), Some("e1")), "{resume}");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live again");
    let metrics = client.metrics();
    assert_eq!((metrics.resumes, metrics.reconnects, metrics.snapshots), (1, 1, 1), "{metrics:?}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_close_backs_off_then_resumes() {
    let mut fake = FakeGateway::start().await;
    let mut config = config(&fake.url(), "frank");
    config.backoff_base = Duration::from_millis(300);
    config.backoff_jitter = Duration::ZERO;
    config.backoff_cap = Duration::from_secs(5);
    let client = Client::connect(config).expect("client");

    let mut conn = fake.next_conn().await;
    conn.accept_subscribe(7).await;
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    let closed_at = tokio::time::Instant::now();
    conn.close(Close::SlowConsumer).await;
    client.wait_for_status(WAIT, |s| s == Status::Reconnecting).await.expect("reconnecting");

    let mut conn = fake.next_conn().await;
    let waited = closed_at.elapsed();
    assert!(waited >= Duration::from_millis(300), "backed off for only {waited:?}");
    let resume = conn.accept_subscribe(7).await;
    assert_eq!(resume["since"].as_u64(), Some(7), "{resume}");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live again");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_known_epoch_the_client_asks_for_a_snapshot_again() {
    let mut fake = FakeGateway::start().await;
    let client = Client::connect(config(&fake.url(), "kate")).expect("client");
    // A user without history: no epoch anywhere.
    let mut conn = fake.next_conn().await;
    let subscribe = conn.recv().await;
    conn.send(serde_json::json!({
        "type": "snapshot", "seq": 0, "timestamp": "2026-01-03T15:30:45.123Z", "data": {"positions": []}
    }))
    .await;
    conn.send(serde_json::json!({"type": "subscribed", "channels": subscribe["channels"], "seq": 0})).await;
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    conn.close(Close::Restarting).await;

    let mut conn = fake.next_conn().await;
    let again = conn.accept_subscribe(5).await;
    assert!(again.get("since").is_none(), "no resume without an epoch: {again}");
    let state = client.wait_for(WAIT, |s| s.epoch.is_some()).await.expect("the new snapshot");
    assert_eq!(state.seq, 5);
    client.close().await;
}
