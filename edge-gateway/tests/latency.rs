//! Network latency (docs/reliability.md, "Network faults"), between the
//! gateway and Redis and between a client and the gateway. This kernel has
//! no netem, so the delay is a loopback proxy that holds every byte for a
//! set time each way (`test_support::net::DelayProxy`). Under a steady
//! delay every event arrives once, in order, late by at least the delay;
//! through a spike longer than the gateway's Redis command timeout nothing
//! is lost or repeated either, the socket is live within 5 s of the spike
//! ending, and a client that connected during the spike has its snapshot
//! within those 5 s.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use common::event::{OrderStatus, UserId};
use common::fixtures as conformance;
use event_log::redis::RedisLog;
use event_log::{LogSettings, SharedLog};
use futures::StreamExt;
use harness::*;
use portfolio_client::{Client, ClientConfig, ClientHandle, Credentials, PortfolioState, Status};
use test_support::net::DelayProxy;
use test_support::redis::RedisServer;
use tokio::time::Instant;

/// The steady one-way delay.
const DELAY: Duration = Duration::from_millis(250);
/// The spike: longer than the gateway's Redis command timeout (2 s).
const SPIKE: Duration = Duration::from_secs(3);
/// How long the spike lasts.
const HOLD: Duration = Duration::from_secs(6);
/// Orders published in each phase.
const ORDERS: usize = 10;

/// Publishes [`ORDERS`] orders for `who` named after `phase`; the last seq.
async fn publish_orders(log: &SharedLog, who: &UserId, phase: &str) -> u64 {
    let mut last = 0;
    for i in 0..ORDERS {
        let order = conformance::order(who, &format!("{phase}-{i}"), OrderStatus::Accepted);
        last = publish(log, order, &format!("{phase}-{i}")).await;
    }
    last
}

/// The Rust client, started while the spike holds: its upgrade, its lease
/// and its snapshot read wait in it, beyond the gateway's Redis command
/// timeout. Quick retries, so that its backoff does not decide the test.
fn newcomer(base: &str) -> ClientHandle {
    let mut config = ClientConfig::new(base, Credentials::Bearer(token("newcomer", 3600))).expect("config");
    config.backoff_base = Duration::from_millis(200);
    config.backoff_cap = Duration::from_secs(1);
    config.backoff_jitter = Duration::from_millis(100);
    Client::connect(config).expect("client")
}

/// The run both tests share, once `socket` is subscribed to `who`'s orders
/// with `proxy` on its path: a steady [`DELAY`] (the first order arrives
/// no sooner than the delay: the fault is real), a [`SPIKE`] for
/// [`HOLD`] with a [`newcomer`] connecting in it, then no delay: every
/// order once, in order; one published after the spike within 5 s of its
/// end; the newcomer live within 5 s too, and then equal to the server.
async fn through_latency(log: &SharedLog, who: &UserId, mut socket: Socket, proxy: &DelayProxy, base: &str) {
    let first = publish(log, conformance::order(who, "before", OrderStatus::Accepted), "before").await;
    let mut seqs = Vec::new();
    orders_until(&mut socket, &mut seqs, first, Duration::from_secs(10), "before the delay").await;

    proxy.set_delay(DELAY);
    let sent = Instant::now();
    let last = publish_orders(log, who, "delayed").await;
    orders_until(&mut socket, &mut seqs, first + 1, Duration::from_secs(10), "the first delayed order").await;
    let late = sent.elapsed();
    assert!(late >= DELAY, "the first order under a {DELAY:?} delay arrived after {late:?}");
    orders_until(&mut socket, &mut seqs, last, Duration::from_secs(30), "under the delay").await;

    // The spike, held for three command timeouts: the orders published
    // into it wait (nothing crosses for most of the delay: the fault is
    // real), and a client connects in it. Then it is lifted.
    proxy.set_delay(SPIKE);
    let began = Instant::now();
    let held = began + HOLD;
    let newcomer = newcomer(base);
    publish_orders(log, who, "spike").await;
    let during = tokio::time::timeout(SPIKE - Duration::from_millis(500), socket.next()).await;
    assert!(during.is_err(), "a message crossed the spike early: {during:?}");
    while let Ok(message) = tokio::time::timeout_at(held, next(&mut socket)).await {
        let message = message.unwrap_or_else(|code| panic!("the socket closed in the spike ({code:?})"));
        if message["type"] == "order_update" {
            seqs.extend(message["seq"].as_u64());
        }
    }
    proxy.set_delay(Duration::ZERO);
    let after = publish(log, conformance::order(who, "after", OrderStatus::Accepted), "after").await;
    let lifted = Instant::now();
    orders_until(&mut socket, &mut seqs, after, Duration::from_secs(5), "within 5 s of the spike").await;
    newcomer
        .wait_for_status(Duration::from_secs(5), |s| s == Status::Live)
        .await
        .expect("the newcomer live within 5 s");
    let live = lifted.elapsed();
    let seq = publish(log, conformance::order(&user("newcomer"), "n-1", OrderStatus::Accepted), "n-1").await;
    let state = newcomer.wait_for(Duration::from_secs(5), move |s| s.seq >= seq).await.expect("the newcomer's order");
    assert_eq!(state, PortfolioState::from(log.snapshot(&user("newcomer")).await.expect("snapshot")));
    eprintln!(
        "spike of {SPIKE:?} for {HOLD:?}: the newcomer, who connected in it, was live {live:?} after it ended \
         (last close: {:?}, {} connect attempts)",
        newcomer.last_close(),
        newcomer.metrics().connect_attempts
    );
    newcomer.close().await;
    let expected: Vec<u64> = (first..=after).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_between_gateway_and_redis_delays_but_loses_nothing() {
    let redis = RedisServer::start();
    let publisher = redis_log(&redis).await;
    let proxy = DelayProxy::start(([127, 0, 0, 1], redis.port()).into()).await.expect("proxy");
    let url = format!("redis://{}", proxy.addr);
    let through_proxy: SharedLog =
        Arc::new(RedisLog::connect(&url, LogSettings::default(), Duration::from_secs(2)).await.expect("redis"));
    let gateway = Gateway::start(through_proxy, &[]).await;
    let mut socket = connect(&gateway, "dora").await;
    subscribe(&mut socket, &["orders"]).await;
    through_latency(&publisher, &user("dora"), socket, &proxy, &format!("http://{}", gateway.addr)).await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_between_client_and_gateway_delays_but_loses_nothing() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[]).await;
    let proxy = DelayProxy::start(gateway.addr).await.expect("proxy");
    let mut socket = connect_url(&format!("ws://{}/ws/portfolio", proxy.addr), "emil").await.expect("connect");
    subscribe(&mut socket, &["orders"]).await;
    through_latency(&log, &user("emil"), socket, &proxy, &format!("http://{}", proxy.addr)).await;
    gateway.stop().await;
}
