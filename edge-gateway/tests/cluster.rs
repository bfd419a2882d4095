//! The gateway on a real Redis Cluster (3 masters, started by the test on
//! free ports): 30 users whose keys spread over every shard, each with a
//! socket; interleaved events for all of them reach each user's socket
//! exactly once, in order, and nobody else's — in steady state, through a
//! graceful failover of every shard, and through a reshard of slots that
//! hold users (issue 13).

mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use event_log::redis::RedisLog;
use event_log::{LogSettings, SharedLog};
use harness::*;
use test_support::redis::RedisCluster;

const USERS: usize = 30;
const EVENTS_EACH: usize = 10;

async fn cluster_log(cluster: &RedisCluster) -> SharedLog {
    Arc::new(RedisLog::connect(&cluster.url(), LogSettings::default(), Duration::from_secs(5)).await.expect("cluster"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_on_every_shard_gets_exactly_their_events_in_order() {
    let cluster = RedisCluster::start(3, 0);
    let producer = cluster_log(&cluster).await;
    let gateway = Gateway::start(cluster_log(&cluster).await, &[]).await;
    let names: Vec<String> = (0..USERS).map(|i| format!("shard-user-{i}")).collect();
    let shards: BTreeSet<u16> =
        names.iter().filter_map(|name| cluster.owner_of(&format!("ps:{{u:{name}}}:seq"))).collect();
    assert_eq!(shards.len(), 3, "the users' keys live on every master");

    let mut sockets = Vec::new();
    for name in &names {
        let mut socket = connect(&gateway, name).await;
        subscribe(&mut socket, &["orders"]).await;
        sockets.push(socket);
    }
    // Interleaved: event k of every user, then event k + 1.
    for k in 0..EVENTS_EACH {
        for name in &names {
            let event = conformance::order(&user(name), &format!("{name}-o-{k}"), OrderStatus::New);
            publish(&producer, event, &format!("{name}-e-{k}")).await;
        }
    }
    for (name, socket) in names.iter().zip(sockets.iter_mut()) {
        let mut orders = Vec::new();
        while orders.len() < EVENTS_EACH {
            let message = next(socket).await.unwrap_or_else(|code| panic!("{name}: closed ({code:?})"));
            if message["type"] == "order_update" {
                assert_eq!(message["userId"], name.as_str(), "only the user's own events");
                orders.push((message["seq"].as_u64(), message["data"]["orderId"].as_str().map(str::to_owned)));
            }
        }
        let expected: Vec<(Option<u64>, Option<String>)> =
            (0..EVENTS_EACH).map(|k| (Some(k as u64 + 1), Some(format!("{name}-o-{k}")))).collect();
        assert_eq!(orders, expected, "{name}: each event once, in order");
    }
    gateway.stop().await;
}

/// What happens to the cluster while events flow.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// `CLUSTER FAILOVER` on every replica, awaited until each is a master.
    FailoverEveryShard,
    /// `redis-cli --cluster reshard` of this many slots from the first
    /// master to the second, users' keys among them.
    Reshard(usize),
}

/// 30 users on all shards, each with a socket, while their events flow at a
/// bounded rate (the sender retrying each until acknowledged) and `change`
/// happens: every socket gets each of its user's acknowledged events once,
/// in seq order (a snapshot or resume batch may stand in for some), and
/// ends with what the server's snapshot holds.
async fn events_flow_through(change: Change) {
    // At least this many rounds, and on until the change is over (bounded).
    const ROUNDS: usize = 20;
    const MAX_ROUNDS: usize = 300;
    let replicas = usize::from(matches!(change, Change::FailoverEveryShard));
    let cluster = RedisCluster::start(3, replicas);
    let producer = cluster_log(&cluster).await;
    let log = cluster_log(&cluster).await;
    let gateway = Gateway::start(log.clone(), &[]).await;
    let names: Vec<String> = (0..USERS).map(|i| format!("moving-user-{i}")).collect();
    let owners = |cluster: &RedisCluster| -> Vec<Option<u16>> {
        names.iter().map(|name| cluster.owner_of(&format!("ps:{{u:{name}}}:seq"))).collect()
    };
    let before = owners(&cluster);
    let mut sockets = Vec::new();
    for name in &names {
        let mut socket = connect(&gateway, name).await;
        subscribe(&mut socket, &["orders"]).await;
        sockets.push(socket);
    }

    // The sender: round k of every user, 10 ms apart (about 0.3 s a round),
    // each event retried until acknowledged (bounded), as the functions'
    // senders do; it goes on until the change is over.
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = tokio::spawn({
        let (producer, names, changed) = (producer.clone(), names.clone(), changed.clone());
        async move {
            let mut acknowledged = std::collections::HashMap::<String, u64>::new();
            let mut rounds = 0;
            for k in 0..MAX_ROUNDS {
                if k >= ROUNDS && changed.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                rounds += 1;
                for name in &names {
                    let event = conformance::order(&user(name), &format!("{name}-o-{k}"), OrderStatus::New);
                    let new = event_log::NewEvent::new(event, format!("{name}-e-{k}"));
                    let mut attempts = 0;
                    let seq = loop {
                        attempts += 1;
                        match producer.publish(&new).await {
                            Ok(published) => break published.seq(),
                            Err(error) => {
                                assert!(attempts < 300, "{name} event {k} never acknowledged: {error}");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    };
                    acknowledged.insert(name.clone(), seq);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (acknowledged, rounds as u64)
        }
    });

    // Once a few rounds are out, the cluster changes under the sockets.
    test_support::wait::until("a few rounds published", Duration::from_secs(30), || async {
        let seq = log.snapshot(&user(&names[USERS - 1])).await.map(|s| s.seq).unwrap_or_default();
        (seq >= 3).then_some(())
    })
    .await;
    match change {
        Change::FailoverEveryShard => {
            cluster.fail_over_every_shard().await;
        }
        Change::Reshard(slots) => {
            let command = cluster.reshard_command(0, 1, slots);
            let output = tokio::process::Command::from(command).output().await.expect("redis-cli --cluster reshard");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
            let moved = before.iter().zip(owners(&cluster)).filter(|(was, now)| **was != *now).count();
            assert!(moved > 0, "the moved slots held users' keys");
        }
    }
    assert!(!sender.is_finished(), "the cluster changed while events were still flowing");
    changed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acknowledged, rounds) = sender.await.expect("the sender");
    assert_eq!(acknowledged.len(), USERS);

    for (name, socket) in names.iter().zip(sockets.iter_mut()) {
        let last = acknowledged[name];
        assert_eq!(last, rounds, "{name}: one seq per acknowledged event");
        let mut view = View::default();
        let mut seen = 0u64;
        while view.seq < last {
            let message = next(socket).await.unwrap_or_else(|code| panic!("{name}: closed ({code:?}) at {seen}"));
            match message["type"].as_str() {
                Some("order_update") => {
                    let seq = message["seq"].as_u64().unwrap_or_default();
                    assert_eq!(seq, seen + 1, "{name}: each event once, in order");
                    seen = seq;
                }
                Some("snapshot" | "batch") => seen = message["seq"].as_u64().unwrap_or(seen).max(seen),
                _ => {}
            }
            view.apply(&message);
        }
        assert_eq!(view, View::of_server(&log, &user(name)).await, "{name}: the socket's state is the snapshot's");
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_keep_every_acknowledged_event_through_a_failover_of_every_shard() {
    events_flow_through(Change::FailoverEveryShard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_keep_every_acknowledged_event_through_a_reshard_of_users_slots() {
    // Every slot of the first master: its users move with them.
    events_flow_through(Change::Reshard(5_461)).await;
}
