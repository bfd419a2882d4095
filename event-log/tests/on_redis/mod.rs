//! The conformance fixture both Redis test files share: a `RedisLog` on a
//! server the harness started (one node, or a cluster).
#![allow(unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::event::UserId;
use event_log::conformance::Fixture;
use event_log::index::IngestIndex;
use event_log::keys::UserKeys;
use event_log::redis::RedisLog;
use event_log::{EventLog, LogSettings};
use fred::prelude::KeysInterface;

/// Commands that cannot complete within this fail as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What the log runs on.
pub trait Server: Send + Sync + Sized + 'static {
    /// Starts it; its `REDIS_URL`.
    fn start() -> (Self, String);
}

impl Server for test_support::redis::RedisServer {
    fn start() -> (Self, String) {
        let server = Self::start();
        let url = server.url();
        (server, url)
    }
}

impl Server for test_support::redis::RedisCluster {
    fn start() -> (Self, String) {
        let cluster = Self::start(3, 0);
        let url = cluster.url();
        (cluster, url)
    }
}

/// A `RedisLog` on its own `S`.
pub struct OnRedis<S> {
    pub server: S,
    pub log: RedisLog,
}

#[async_trait]
impl<S: Server> Fixture for OnRedis<S> {
    async fn new(settings: LogSettings) -> Self {
        let (server, url) = S::start();
        let log = RedisLog::connect(&url, settings, TIMEOUT).await.expect("connect");
        OnRedis { server, log }
    }

    fn log(&self) -> Arc<dyn EventLog> {
        Arc::new(self.log.clone())
    }

    fn index(&self) -> Arc<dyn IngestIndex> {
        Arc::new(self.log.clone())
    }

    async fn lose_history(&self, user: &UserId) {
        let keys = UserKeys::new(user);
        // One hash tag, one slot: a cluster client routes the DEL too.
        let all = vec![keys.meta, keys.events, keys.positions, keys.orders, keys.account, keys.trades];
        let _: i64 = self.log.client().del(all).await.expect("DEL");
    }
}
