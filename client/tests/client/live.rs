//! A live client's state follows the log exactly: snapshot, single events,
//! batches; and a live client reconciles without finding differences.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use portfolio_client::{Client, Credentials, Observer, Status};

use crate::support::{config, memory_log, publish, server_state, token, user, Gateway, EXACT, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_equals_the_snapshot_after_events_and_batches() {
    let log = memory_log();
    let gateway = Gateway::start(log.clone(), &EXACT).await;
    let alice = user("alice");
    publish(&log, conformance::account(&alice, 100), "before-1").await;
    publish(&log, conformance::order(&alice, "o-old", OrderStatus::New), "before-2").await;

    let observed = Arc::new(AtomicU64::new(0));
    let mut config = config(&gateway.url(), "alice");
    let counter = observed.clone();
    config.observer = Some(Observer(Arc::new(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    })));
    let client = Client::connect(config).expect("client");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    assert_eq!(client.state(), server_state(&log, &alice).await, "the first snapshot");

    // Ticks on three symbols inside one window coalesce into batches;
    // orders and trades go out at once and flush them.
    let mut last = 0;
    for i in 0..60i64 {
        let id = format!("e-{i}");
        let event = match i % 6 {
            0..=2 => conformance::position(&alice, ["AAPL", "MSFT", "NVDA"][(i % 3) as usize], 1 + i, 10_000 + i),
            3 => conformance::order(&alice, &format!("o-{}", i % 4), OrderStatus::Accepted),
            4 => conformance::trade(&alice, &format!("t-{i}")),
            _ => conformance::account(&alice, 1_000 + i),
        };
        last = publish(&log, event, &id).await;
    }
    // Close a position and two orders (one of them from before the client).
    publish(&log, conformance::position(&alice, "MSFT", 0, 10_000), "close-msft").await;
    publish(&log, conformance::order(&alice, "o-old", OrderStatus::Canceled), "cancel-old").await;
    last = last.max(publish(&log, conformance::order(&alice, "o-3", OrderStatus::Filled), "fill-3").await);

    let state = client.wait_for(WAIT, |s| s.seq >= last).await.expect("caught up");
    assert_eq!(state, server_state(&log, &alice).await);
    assert!(!state.positions.keys().any(|s| s.as_str() == "MSFT"), "closed position removed");
    assert!(!state.orders.contains_key("o-old") && !state.orders.contains_key("o-3"), "closed orders removed");
    assert_eq!(state.trades.len(), 10);

    let metrics = client.metrics();
    assert_eq!((metrics.snapshots, metrics.connect_attempts, metrics.resumes), (1, 1, 0));
    assert!(metrics.batches >= 1, "ticks within a window arrive as batches: {metrics:?}");
    assert!(metrics.events >= 1 && metrics.bytes_received > 0, "{metrics:?}");
    assert_eq!(observed.load(Ordering::Relaxed), metrics.messages, "the observer sees every message");
    assert_eq!(metrics.decode_errors, 0);
    client.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_auth_and_a_channel_subset() {
    let log = memory_log();
    let gateway = Gateway::start(log.clone(), &EXACT).await;
    let bob = user("bob");
    publish(&log, conformance::position(&bob, "AAPL", 5, 10_000), "p-1").await;
    let mut config = config(&gateway.url(), "bob");
    config.credentials = Credentials::Cookie(token("bob", 3_600));
    config.channels = vec![common::event::Channel::Orders];
    let client = Client::connect(config).expect("client");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    let seq = publish(&log, conformance::order(&bob, "o-1", OrderStatus::New), "o-1").await;
    let state = client.wait_for(WAIT, |s| s.seq >= seq).await.expect("order arrived");
    assert!(state.positions.is_empty(), "positions were not subscribed");
    assert_eq!(state.orders.len(), 1);
    client.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_client_reconciles_without_differences_and_keeps_its_link() {
    let log = memory_log();
    let gateway = Gateway::start(log.clone(), &EXACT).await;
    let carol = user("carol");
    publish(&log, conformance::account(&carol, 1), "a-0").await;
    let mut config = config(&gateway.url(), "carol");
    config.reconcile_interval = Duration::from_millis(50);
    config.ping_interval = Duration::from_millis(20);
    config.pong_timeout = Duration::from_millis(500);
    let client = Client::connect(config).expect("client");
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");

    let mut i = 0;
    test_support::wait::until("three reconciles and ten pongs", WAIT, || {
        i += 1;
        let (log, carol, metrics) = (log.clone(), carol.clone(), client.metrics());
        async move {
            publish(&log, conformance::position(&carol, "AAPL", i, 10_000 + i), &format!("p-{i}")).await;
            (metrics.reconciles >= 3 && metrics.pongs >= 10).then_some(())
        }
    })
    .await;
    let last = publish(&log, conformance::trade(&carol, "t-last"), "t-last").await;
    let state = client.wait_for(WAIT, |s| s.seq >= last).await.expect("caught up");
    assert_eq!(state, server_state(&log, &carol).await);

    let metrics = client.metrics();
    assert_eq!(metrics.reconcile_differences, 0, "{metrics:?}");
    assert_eq!((metrics.dead_links, metrics.connect_attempts), (0, 1), "answered pings keep the link: {metrics:?}");
    assert_eq!(client.current_status(), Status::Live);
    client.close().await;
    gateway.stop().await;
}

/// Two clients of one user, one with field deltas (the default) and one
/// without, end at the same state as the log; the delta client reads fewer
/// bytes for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_reach_the_same_state_in_fewer_bytes() {
    let log = memory_log();
    let gateway = Gateway::start(log.clone(), &EXACT).await;
    let dana = user("dana");
    publish(&log, conformance::account(&dana, 100), "a-0").await;
    let with = Client::connect(config(&gateway.url(), "dana")).expect("client");
    let mut plain = config(&gateway.url(), "dana");
    plain.deltas = false;
    let without = Client::connect(plain).expect("client");
    for client in [&with, &without] {
        client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    }
    let mut last = 0;
    for i in 0..40i64 {
        // Price moves on two symbols and the account, between urgent orders.
        let event = match i % 4 {
            0 | 1 => conformance::position(&dana, ["AAPL", "MSFT"][(i % 2) as usize], 10, 10_000 + 100 * i),
            2 => conformance::account(&dana, 1_000 + i),
            _ => conformance::order(&dana, &format!("o-{i}"), OrderStatus::Accepted),
        };
        last = publish(&log, event, &format!("e-{i}")).await;
    }
    let expected = server_state(&log, &dana).await;
    for client in [&with, &without] {
        assert_eq!(client.wait_for(WAIT, |s| s.seq >= last).await.expect("caught up"), expected);
        assert_eq!(client.metrics().decode_errors, 0);
    }
    let (delta_bytes, full_bytes) = (with.metrics().bytes_received, without.metrics().bytes_received);
    assert!(delta_bytes < full_bytes, "deltas {delta_bytes} B, full {full_bytes} B");
    with.close().await;
    without.close().await;
    gateway.stop().await;
}
