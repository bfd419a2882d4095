//! The Redis event log on a real Redis Cluster (three masters, spawned per
//! case) against the shared conformance suite: hash tags keep each user's
//! keys, and each symbol's mark, in one slot; scripts run on every master;
//! notices come from the node that owns the channel's slot.

use common::event::UserId;
use event_log::conformance::Fixture;
use event_log::LogSettings;
use test_support::redis::RedisCluster;

mod on_redis;

type Cluster = on_redis::OnRedis<RedisCluster>;

event_log::conformance_suite!(Cluster);

/// `MOVED` answers counted on every node (`INFO errorstats`).
fn moved_answers(cluster: &RedisCluster) -> u64 {
    cluster
        .nodes()
        .iter()
        .map(|node| {
            let info = node.command(&["INFO", "errorstats"]).expect("INFO errorstats");
            info.lines()
                .find_map(|line| line.strip_prefix("errorstat_MOVED:count="))
                .and_then(|count| count.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Every script call goes straight to the node that owns its keys' slot:
/// publishes (alone and pipelined), reads, snapshots and marks for users and
/// symbols spread over all three masters draw no `MOVED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_calls_reach_the_owner_of_their_slot_first() {
    use common::event::{Mark, Symbol};
    use event_log::conformance::{account, user};
    use event_log::NewEvent;

    let fixture = Cluster::new(LogSettings::default()).await;
    let log = fixture.log();
    let users: Vec<UserId> = (0..30).map(|i| user(&format!("spread-{i}"))).collect();
    for (i, u) in users.iter().enumerate() {
        log.publish(&NewEvent::new(account(u, i as i64), format!("one-{i}"))).await.expect("publish");
    }
    let many: Vec<NewEvent> =
        users.iter().enumerate().map(|(i, u)| NewEvent::new(account(u, i as i64), format!("many-{i}"))).collect();
    for result in log.publish_many(&many).await {
        result.expect("publish_many");
    }
    for u in &users {
        log.snapshot(u).await.expect("snapshot");
        log.read_after(u, None, 0, 10).await.expect("read_after");
    }
    let marks: Vec<Mark> = (0..30)
        .map(|i| Mark {
            symbol: Symbol::new(format!("S{i}")).expect("symbol"),
            price: i.into(),
            timestamp: common::event::Timestamp::now(),
        })
        .collect();
    for stored in log.put_marks(&marks).await {
        stored.expect("put_marks");
    }
    let symbols: Vec<Symbol> = marks.iter().map(|m| m.symbol.clone()).collect();
    assert!(log.marks(&symbols).await.expect("marks").iter().all(Option::is_some));
    assert_eq!(moved_answers(&fixture.server), 0, "every call went to its slot's owner first");
}
