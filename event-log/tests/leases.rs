//! Connection leases, in Redis and in memory: the same rules.

use std::sync::Arc;
use std::time::Duration;

use common::event::UserId;
use event_log::leases::{Leases, MemoryLeases, RedisLeases};
use event_log::redis::RedisLog;
use event_log::LogSettings;
use test_support::redis::RedisServer;
use test_support::wait;

async fn check_limit_release_and_expiry(leases: Arc<dyn Leases>) {
    let user = UserId::new("lease-user").unwrap();
    let long = Duration::from_secs(60);
    for i in 0..5 {
        assert!(leases.acquire(&user, &format!("c{i}"), long, 5).await.unwrap(), "lease {i}");
    }
    assert!(!leases.acquire(&user, "c5", long, 5).await.unwrap(), "the 6th is over the limit");
    assert!(leases.acquire(&user, "c0", long, 5).await.unwrap(), "refreshing a held lease is fine");
    leases.release(&user, "c0").await.unwrap();
    assert!(leases.acquire(&user, "c5", long, 5).await.unwrap(), "a released slot is free again");
    let other = UserId::new("someone-else").unwrap();
    assert!(leases.acquire(&other, "c0", long, 5).await.unwrap(), "limits are per user");

    // Leases that are not refreshed expire.
    let short_user = UserId::new("short").unwrap();
    assert!(leases.acquire(&short_user, "a", Duration::from_millis(300), 1).await.unwrap());
    assert!(!leases.acquire(&short_user, "b", Duration::from_millis(300), 1).await.unwrap());
    wait::until("the short lease to expire", Duration::from_secs(5), || {
        let leases = leases.clone();
        let user = short_user.clone();
        async move { leases.acquire(&user, "b", Duration::from_secs(60), 1).await.unwrap().then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn memory_leases() {
    check_limit_release_and_expiry(Arc::new(MemoryLeases::new())).await;
}

#[tokio::test]
async fn redis_leases() {
    let server = RedisServer::start();
    let log = RedisLog::connect(&server.url(), LogSettings::default(), Duration::from_secs(2)).await.unwrap();
    check_limit_release_and_expiry(Arc::new(RedisLeases::new(log.client().clone(), Duration::from_secs(2)))).await;
}
