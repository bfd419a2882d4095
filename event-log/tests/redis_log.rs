//! The Redis event log against the shared conformance suite, plus the
//! failures only a real server has: restarts, a flushed script cache, and a
//! killed pub/sub connection.

use std::time::Duration;

use common::event::UserId;
use event_log::conformance::{self, Fixture};
use event_log::{EventLog, LogError, LogSettings, NewEvent, Notice, Published, ReadAfter};
use test_support::redis::RedisServer;
use test_support::wait;

mod on_redis;

type Redis = on_redis::OnRedis<RedisServer>;

event_log::conformance_suite!(Redis);

fn user(name: &str) -> UserId {
    UserId::new(name).expect("valid user id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_fails_as_unavailable_then_recovers_without_duplicates() {
    let mut fixture = Redis::new(LogSettings::default()).await;
    let log = fixture.log.clone();
    let u = user("restart");
    let first = log.publish(&NewEvent::new(conformance::account(&u, 1), "a-1")).await.expect("publish");
    assert_eq!(first.seq(), 1);

    fixture.server.stop();
    let down = log.publish(&NewEvent::new(conformance::account(&u, 2), "a-2")).await;
    assert!(matches!(down, Err(LogError::Unavailable(_))), "{down:?}");
    assert!(matches!(log.snapshot(&u).await, Err(LogError::Unavailable(_))));

    fixture.server.restart();
    // The client reconnects on its own; retry the failed publish as a sender would.
    let retried = wait::until("publish after restart", Duration::from_secs(15), || {
        let log = log.clone();
        let u = u.clone();
        async move { log.publish(&NewEvent::new(conformance::account(&u, 2), "a-2")).await.ok() }
    })
    .await;
    assert_eq!(retried.seq(), 2);
    // And the first event, retried once more, is still a duplicate.
    let again = log.publish(&NewEvent::new(conformance::account(&u, 1), "a-1")).await.expect("publish");
    assert!(matches!(again, Published::Duplicate { seq: 1, .. }));
    match log.read_after(&u, None, 0, 100).await.expect("read_after") {
        ReadAfter::Events { events, head, .. } => {
            assert_eq!(head, 2);
            assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn lost_script_cache_is_reloaded() {
    let fixture = Redis::new(LogSettings::default()).await;
    let u = user("noscript");
    fixture.server.command(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    let one = fixture.log.publish(&NewEvent::new(conformance::account(&u, 1), "a-1")).await.expect("publish");
    assert_eq!(one.seq(), 1);
    fixture.server.command(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    let batch: Vec<_> = (2..=4).map(|i| NewEvent::new(conformance::account(&u, i), format!("a-{i}"))).collect();
    let seqs: Vec<u64> =
        fixture.log.publish_many(&batch).await.into_iter().map(|r| r.expect("publish").seq()).collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    fixture.server.command(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    assert_eq!(fixture.log.snapshot(&u).await.expect("snapshot").seq, 4);
    fixture.server.command(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    assert!(matches!(fixture.log.read_after(&u, None, 3, 10).await, Ok(ReadAfter::Events { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pubsub_connection_resubscribes_and_asks_for_resync() {
    let fixture = Redis::new(LogSettings::default()).await;
    let u = user("pubsub-kill");
    let mut notices = fixture.log.notices();
    fixture.log.follow(&u).await.expect("follow");
    fixture.server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).expect("CLIENT KILL");

    let resync = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Notice::Resync) = notices.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "no resync notice after the pub/sub connection was killed");

    // Subscribed again: a new event arrives on the fast path.
    fixture.log.publish(&NewEvent::new(conformance::account(&u, 1), "a-1")).await.expect("publish");
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("notice in time");
    assert!(matches!(notice, Ok(Notice::Event { event, .. }) if event.seq == 1));
}
