//! The gateway on a real Redis Cluster (3 masters, started by the test on
//! free ports): 30 users whose keys spread over every shard, each with a
//! socket; interleaved events for all of them reach each user's socket
//! exactly once, in order, and nobody else's (issue 13).

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
