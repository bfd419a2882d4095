//! A network partition between the gateway and Redis (docs/reliability.md,
//! "Network faults"): Redis runs in a network namespace this test makes,
//! reachable over two veth pairs — one for the gateway, one for the
//! publisher. The gateway's link goes down while events are published over
//! the other; once it is back, the client has every event exactly once, in
//! order. Needs root and iproute2 (`ip netns`); this kernel has no netem, so
//! the partition is the link going down, not packet loss.

mod harness;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use event_log::redis::RedisLog;
use event_log::{LogSettings, SharedLog};
use futures::StreamExt;
use harness::*;

/// A namespace with a redis-server on two addresses, torn down on drop.
struct Partitionable {
    name: String,
    /// The gateway's link (root side), and the publisher's.
    gateway_link: String,
    publisher_link: String,
    gateway_addr: SocketAddrV4,
    publisher_addr: SocketAddrV4,
    redis: Option<Child>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("iproute2's ip runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl Partitionable {
    fn start() -> Self {
        // Subnets and names unique to this process.
        let n = (std::process::id() % 200 + 20) as u8;
        let name = format!("ps-part-{n}");
        let (gateway_link, publisher_link) = (format!("psg{n}"), format!("psp{n}"));
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        let mut this = Self {
            name: name.clone(),
            gateway_link: gateway_link.clone(),
            publisher_link: publisher_link.clone(),
            gateway_addr: SocketAddrV4::new(Ipv4Addr::new(10, 233, n, 2), 7_000),
            publisher_addr: SocketAddrV4::new(Ipv4Addr::new(10, 234, n, 2), 7_000),
            redis: None,
        };
        for (link, net) in [(&gateway_link, 233u8), (&publisher_link, 234u8)] {
            let inside = format!("{link}i");
            ip(&["link", "add", link, "type", "veth", "peer", "name", &inside]);
            ip(&["link", "set", &inside, "netns", &name]);
            ip(&["addr", "add", &format!("10.{net}.{n}.1/30"), "dev", link]);
            ip(&["link", "set", link, "up"]);
            ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("10.{net}.{n}.2/30"), "dev", &inside]);
            ip(&["netns", "exec", &name, "ip", "link", "set", &inside, "up"]);
        }
        let (a, b) = (this.gateway_addr.ip().to_string(), this.publisher_addr.ip().to_string());
        let redis = Command::new("ip")
            .args(["netns", "exec", &name, "redis-server", "--bind", &a, &b, "--port", "7000"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server in the namespace");
        this.redis = Some(redis);
        this
    }

    fn url(addr: SocketAddrV4) -> String {
        format!("redis://{addr}")
    }

    fn gateway_link(&self, up: bool) {
        ip(&["link", "set", &self.gateway_link, if up { "up" } else { "down" }]);
    }
}

impl Drop for Partitionable {
    fn drop(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        for link in [&self.gateway_link, &self.publisher_link] {
            let _ = Command::new("ip").args(["link", "del", link]).stderr(Stdio::null()).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

async fn log_at(addr: SocketAddrV4) -> SharedLog {
    let url = Partitionable::url(addr);
    let log = test_support::wait::until("redis in the namespace", Duration::from_secs(10), || {
        let url = url.clone();
        async move { RedisLog::connect(&url, LogSettings::default(), Duration::from_secs(2)).await.ok() }
    })
    .await;
    Arc::new(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_between_gateway_and_redis_loses_and_repeats_nothing() {
    let net = Partitionable::start();
    let publisher = log_at(net.publisher_addr).await;
    let gateway_log = log_at(net.gateway_addr).await;
    let gateway = Gateway::start(gateway_log, &[]).await;
    let who = user("petra");
    let first = publish(&publisher, conformance::order(&who, "o-0", OrderStatus::Accepted), "p-0").await;
    let mut socket = connect(&gateway, "petra").await;
    subscribe(&mut socket, &["orders"]).await;

    // Orders are urgent: each goes out as its own message with its seq.
    let mut seqs = Vec::new();
    let mut last = first;
    for i in 1..=5 {
        last =
            publish(&publisher, conformance::order(&who, &format!("o-{i}"), OrderStatus::Accepted), &format!("p-{i}"))
                .await;
    }
    while seqs.last() != Some(&last) {
        let message = next(&mut socket).await.expect("an order before the partition");
        seqs.extend(message["seq"].as_u64());
    }

    // The gateway's link goes down; events keep coming over the other one.
    net.gateway_link(false);
    for i in 6..=25 {
        last =
            publish(&publisher, conformance::order(&who, &format!("o-{i}"), OrderStatus::Accepted), &format!("p-{i}"))
                .await;
    }
    // Nothing crosses while the link is down (the fault is real); it lasts
    // these 3 s, then the link comes back.
    let during = tokio::time::timeout(Duration::from_secs(3), socket.next()).await;
    assert!(during.is_err(), "a message crossed the partition: {during:?}");
    net.gateway_link(true);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seqs.last() != Some(&last) {
        assert!(tokio::time::Instant::now() < deadline, "after the partition: {seqs:?}, want up to {last}");
        let message = next(&mut socket).await.expect("the socket stays open through the partition");
        if message["type"] == "order_update" {
            seqs.extend(message["seq"].as_u64());
        }
    }
    let expected: Vec<u64> = (first + 1..=last).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
    gateway.stop().await;
}
