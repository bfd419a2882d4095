//! A network partition between the gateway and Redis (docs/reliability.md,
//! "Network faults"): Redis runs in a network namespace this test makes,
//! reachable over two veth pairs — one for the gateway, one for the
//! publisher. The gateway's link goes down while events are published over
//! the other; once it is back, the client has every event exactly once, in
//! order. Packet loss is nftables dropping a share of the link's packets at
//! random; a partition between a client and the gateway is nftables
//! dropping all of the loopback packets of the gateway's port. Needs root, iproute2 (`ip netns`) and nftables (`nft`); this
//! kernel has no netem.

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
        // Subnets and names unique to this process and this test.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let ours = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = ((std::process::id() * 7 + ours) % 200 + 20) as u8;
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

/// Random packet loss from an nftables table of the test's own (this kernel
/// has no netem), removed on drop; its rules count what they drop.
struct Loss {
    table: String,
}

/// The match of `percent` % of the packets, at random (nothing: all of
/// them, a partition; nft refuses a `numgen` test that is always true).
fn share(percent: u8) -> String {
    if percent >= 100 {
        String::new()
    } else {
        format!("numgen random mod 100 < {percent}")
    }
}

impl Loss {
    /// Drops `percent` % of the packets crossing `link`, each way.
    fn on_link(link: &str, percent: u8) -> Self {
        Self::install(
            format!("ps_loss_{link}"),
            &format!("oifname \"{link}\" {} counter drop", share(percent)),
            Some(&format!("iifname \"{link}\" {} counter drop", share(percent))),
        )
    }

    /// Drops `percent` % of the loopback packets to and from TCP `port`
    /// (each leaves through `output` once, so one chain sees both ways).
    fn on_loopback_port(port: u16, percent: u8) -> Self {
        Self::install(
            format!("ps_loss_lo{port}"),
            &format!(
                "oifname \"lo\" tcp dport {port} {share} counter drop; \
                 oifname \"lo\" tcp sport {port} {share} counter drop",
                share = share(percent)
            ),
            None,
        )
    }

    /// A table with `out` on the output hook and `into`, if any, on input.
    fn install(table: String, out: &str, into: Option<&str>) -> Self {
        let _ = Command::new("nft").args(["delete", "table", "inet", &table]).stderr(Stdio::null()).status();
        let input = into
            .map(|rules| format!("chain in {{ type filter hook input priority 0; {rules}; }}\n"))
            .unwrap_or_default();
        let rules =
            format!("table inet {table} {{\nchain out {{ type filter hook output priority 0; {out}; }}\n{input}}}\n");
        let mut nft = Command::new("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn().expect("nftables' nft runs");
        std::io::Write::write_all(nft.stdin.as_mut().expect("nft's stdin"), rules.as_bytes()).expect("write the rules");
        drop(nft.stdin.take());
        assert!(nft.wait().expect("nft").success(), "nft -f: {rules}");
        Self { table }
    }

    /// Packets the rules dropped so far.
    fn dropped(&self) -> u64 {
        let listed = Command::new("nft").args(["list", "table", "inet", &self.table]).output().expect("nft list");
        let text = String::from_utf8_lossy(&listed.stdout);
        text.lines()
            .filter(|l| l.contains("drop"))
            .filter_map(|l| l.split("packets ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.table]).stderr(Stdio::null()).status();
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

/// Packets a loss test sees dropped before it stops publishing.
const DROPS: u64 = 10;

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

    orders_until(&mut socket, &mut seqs, last, Duration::from_secs(60), "after the partition").await;
    let expected: Vec<u64> = (first + 1..=last).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
    gateway.stop().await;
}

/// The loss tests' run: a socket subscribed to `who`'s orders, `loss`
/// installed; orders are published through `publisher` in rounds of 10
/// until the rules dropped [`DROPS`] packets (small messages share
/// segments, so the count per order varies), then the loss is lifted.
/// Every event must reach the socket exactly once, in order, and one
/// published after the loss within 5 s. Returns the packets dropped.
async fn through_loss(publisher: &SharedLog, who: &common::event::UserId, mut socket: Socket, loss: Loss) -> u64 {
    let first = publish(publisher, conformance::order(who, "o-0", OrderStatus::Accepted), "loss-0").await;
    let mut seqs = Vec::new();
    orders_until(&mut socket, &mut seqs, first, Duration::from_secs(60), "the first order").await;
    for i in 1..=1_000 {
        let order = conformance::order(who, &format!("o-{i}"), OrderStatus::Accepted);
        let last = publish(publisher, order, &format!("loss-{i}")).await;
        if i % 10 == 0 {
            orders_until(&mut socket, &mut seqs, last, Duration::from_secs(60), "through the loss").await;
            if loss.dropped() >= DROPS {
                break;
            }
        }
    }
    let dropped = loss.dropped();
    assert!(dropped >= DROPS, "the loss is real: {dropped} packets dropped");
    drop(loss);
    let after = publish(publisher, conformance::order(who, "o-after", OrderStatus::Accepted), "loss-after").await;
    orders_until(&mut socket, &mut seqs, after, Duration::from_secs(5), "within 5 s of the loss ending").await;
    let expected: Vec<u64> = (first..=after).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
    dropped
}

/// 20 % of the packets between the gateway and Redis dropped, each way
/// ([`through_loss`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_between_gateway_and_redis_loses_and_repeats_nothing() {
    let net = Partitionable::start();
    let publisher = log_at(net.publisher_addr).await;
    let gateway = Gateway::start(log_at(net.gateway_addr).await, &[]).await;
    let mut socket = connect(&gateway, "lotte").await;
    subscribe(&mut socket, &["orders"]).await;
    let loss = Loss::on_link(&net.gateway_link, 20);
    let dropped = through_loss(&publisher, &user("lotte"), socket, loss).await;
    eprintln!("{dropped} packets dropped between the gateway and Redis");
    gateway.stop().await;
}

/// 20 % of the packets between a client and the gateway dropped, each way
/// ([`through_loss`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_between_client_and_gateway_loses_and_repeats_nothing() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut socket = connect(&gateway, "linus").await;
    subscribe(&mut socket, &["orders"]).await;
    let loss = Loss::on_loopback_port(gateway.addr.port(), 20);
    let dropped = through_loss(&log, &user("linus"), socket, loss).await;
    eprintln!("{dropped} packets dropped between the client and the gateway");
    gateway.stop().await;
}

/// A full partition between a client and the gateway: every loopback packet
/// to and from the gateway's port dropped for 3 s (under the heartbeat
/// timeout, so the socket is kept) while 20 orders are published. Nothing
/// crosses during it; once it ends TCP delivers what waited, and the client
/// has every event exactly once, in order, within 5 s, on the same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_between_client_and_gateway_loses_and_repeats_nothing() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[]).await;
    let who = user("nora");
    let mut socket = connect(&gateway, "nora").await;
    subscribe(&mut socket, &["orders"]).await;
    let first = publish(&log, conformance::order(&who, "o-0", OrderStatus::Accepted), "cp-0").await;
    let mut seqs = Vec::new();
    orders_until(&mut socket, &mut seqs, first, Duration::from_secs(10), "before the partition").await;

    let partition = Loss::on_loopback_port(gateway.addr.port(), 100);
    let mut last = first;
    for i in 1..=20 {
        let order = conformance::order(&who, &format!("o-{i}"), OrderStatus::Accepted);
        last = publish(&log, order, &format!("cp-{i}")).await;
    }
    let during = tokio::time::timeout(Duration::from_secs(3), socket.next()).await;
    assert!(during.is_err(), "a message crossed the partition: {during:?}");
    let dropped = partition.dropped();
    assert!(dropped > 0, "the partition is real");
    drop(partition);

    let ended = std::time::Instant::now();
    orders_until(&mut socket, &mut seqs, last, Duration::from_secs(5), "within 5 s of the partition ending").await;
    let expected: Vec<u64> = (first..=last).collect();
    assert_eq!(seqs, expected, "every event exactly once, in order");
    eprintln!("{dropped} packets dropped; every order {:?} after the partition ended", ended.elapsed());
    gateway.stop().await;
}
