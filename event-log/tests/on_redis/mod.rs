//! The conformance fixtures the Redis test files share: a `RedisLog` on a
//! server the harness started (one node, a master with a replica and the
//! log waiting for it, or a cluster). Each file uses some of them.
#![allow(unreachable_pub, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::event::UserId;
use event_log::conformance::Fixture;
use event_log::index::IngestIndex;
use event_log::keys::UserKeys;
use event_log::redis::{Durability, RedisLog};
use event_log::{EventLog, LogSettings};
use fred::prelude::KeysInterface;

/// Commands that cannot complete within this fail as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What the log runs on.
pub trait Server: Send + Sync + Sized + 'static {
    /// Starts it; its `REDIS_URL`.
    fn start() -> (Self, String);

    /// When the log acknowledges a publish on it.
    fn durability() -> Durability {
        Durability::NONE
    }
}

/// How long a durable fixture's publishes wait for their replica.
pub const WAIT: Duration = Duration::from_secs(2);

/// A master with one replica, the log waiting for it (`REDIS_WAIT_REPLICAS=1`).
pub struct Replicated {
    pub master: test_support::redis::RedisServer,
    pub replica: test_support::redis::RedisServer,
}

impl Replicated {
    /// A master and a replica that is in sync with it.
    pub fn start() -> Self {
        // No 5 s pause before the replica's first full sync (Redis' default
        // waits for more replicas to share one transfer).
        let master = test_support::redis::RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
        let port = master.port().to_string();
        let replica = test_support::redis::RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !master.command(&["INFO", "replication"]).is_ok_and(|i| i.contains("state=online"))
            || !replica.command(&["INFO", "replication"]).is_ok_and(|i| i.contains("master_link_status:up"))
        {
            assert!(std::time::Instant::now() < deadline, "the replica did not sync");
            std::thread::sleep(Duration::from_millis(20));
        }
        Replicated { master, replica }
    }
}

impl Server for Replicated {
    fn start() -> (Self, String) {
        let pair = Replicated::start();
        let url = pair.master.url();
        (pair, url)
    }

    fn durability() -> Durability {
        Durability { replicas: 1, timeout: WAIT }
    }
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
        let log = RedisLog::connect_durable(&url, settings, TIMEOUT, S::durability()).await.expect("connect");
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
