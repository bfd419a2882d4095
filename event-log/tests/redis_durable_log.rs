//! The Redis event log with `REDIS_WAIT_REPLICAS=1`, on a master with one
//! replica: the whole conformance suite with notices deferred until the
//! replica has the event, and what waiting for it changes when the replica
//! stalls.

use std::time::{Duration, Instant};

use common::event::UserId;
use event_log::conformance;
use event_log::redis::{Durability, RedisLog};
use event_log::{EventLog, LogError, LogSettings, NewEvent, Notice, Published};

mod on_redis;

use on_redis::{Replicated, TIMEOUT, WAIT};

type Durable = on_redis::OnRedis<Replicated>;

event_log::conformance_suite!(Durable);

fn user(name: &str) -> UserId {
    UserId::new(name).expect("valid user id")
}

/// The next event notice for `user` within `within`, skipping others.
async fn next_notice(notices: &mut tokio::sync::broadcast::Receiver<Notice>, user: &UserId, within: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, notices.recv()).await {
            Ok(Ok(Notice::Event { user: u, event, .. })) if &u == user => return event.seq,
            Ok(Ok(_)) => {}
            other => panic!("no notice for {user} within {within:?}: {other:?}"),
        }
    }
}

/// A stalled replica: the publish is refused (not acknowledged) after the
/// wait, and nobody is told of the event; once the replica is back, the
/// sender's retry is acknowledged with the event's seq, and only then is it
/// announced, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_acknowledged_and_announced_only_once_a_replica_has_it() {
    let pair = Replicated::start();
    let durability = Durability { replicas: 1, timeout: WAIT };
    let log = RedisLog::connect_durable(&pair.master.url(), LogSettings::default(), TIMEOUT, durability)
        .await
        .expect("connect");
    let dora = user("dora");
    let mut notices = log.notices();
    log.follow(&dora).await.expect("follow");

    let first = NewEvent::new(conformance::account(&dora, 1), "first");
    assert!(matches!(log.publish(&first).await, Ok(Published::New { seq: 1, .. })));
    assert_eq!(next_notice(&mut notices, &dora, Duration::from_secs(5)).await, 1);

    pair.replica.pause();
    let second = NewEvent::new(conformance::account(&dora, 2), "second");
    let started = Instant::now();
    let refused = log.publish(&second).await;
    assert!(matches!(&refused, Err(LogError::Unavailable(why)) if why.contains("replicas")), "{refused:?}");
    assert!(started.elapsed() >= WAIT, "the publish waited for the replica: {:?}", started.elapsed());
    // A third publish refused the same way proves the pub/sub connection
    // had time to deliver the second's notice, had there been one.
    let third = NewEvent::new(conformance::account(&dora, 3), "third");
    assert!(log.publish(&third).await.is_err());
    assert!(notices.try_recv().is_err(), "no notice of an event no replica has");

    pair.replica.resume();
    let retried = log.publish(&second).await;
    assert!(matches!(retried, Ok(Published::Duplicate { seq: 2, .. })), "the retry finds it stored: {retried:?}");
    assert_eq!(next_notice(&mut notices, &dora, Duration::from_secs(5)).await, 2, "announced now");
    assert!(matches!(log.publish(&third).await, Ok(Published::Duplicate { seq: 3, .. })));
    assert_eq!(next_notice(&mut notices, &dora, Duration::from_secs(5)).await, 3);
}
