//! Connection leases: the per-user connection limit that holds across every
//! gateway instance (BRIEF §5). Each connection holds a lease — a member of
//! the user's sorted set scored by its expiry — and refreshes it while
//! connected, so the connections of a crashed instance stop counting once
//! their leases run out. Redis' clock decides expiry, so gateways with skewed
//! clocks agree.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::prelude::{ClientLike, LuaInterface, Options};
use fred::types::scripts::Script;

use crate::error::LogError;
use crate::keys::UserKeys;
use crate::redis::call::{loading_once, unavailable};
use common::event::UserId;
use common::sync::lock;

/// Takes or refreshes one lease, unless the user is at the limit.
const ACQUIRE_LUA: &str = include_str!("leases/acquire.lua");

/// Per-user connection leases.
#[async_trait]
pub trait Leases: Send + Sync + std::fmt::Debug + 'static {
    /// Takes (or refreshes) the lease `conn` of `user` for `ttl`, unless the
    /// user already holds `limit` live leases. `Ok(false)`: over the limit.
    async fn acquire(&self, user: &UserId, conn: &str, ttl: Duration, limit: usize) -> Result<bool, LogError>;

    /// Gives the lease back.
    async fn release(&self, user: &UserId, conn: &str) -> Result<(), LogError>;
}

/// Leases in Redis: one sorted set per user, `ps:{u:ID}:conns`.
#[derive(Debug, Clone)]
pub struct RedisLeases {
    client: fred::clients::Client,
    options: Options,
    acquire: Script,
}

impl RedisLeases {
    /// Uses an existing, connected client (the event log's).
    pub fn new(client: fred::clients::Client, timeout: Duration) -> Self {
        Self {
            client,
            options: Options { fail_fast: true, timeout: Some(timeout), ..Options::default() },
            acquire: Script::from_lua(ACQUIRE_LUA),
        }
    }
}

#[async_trait]
impl Leases for RedisLeases {
    async fn acquire(&self, user: &UserId, conn: &str, ttl: Duration, limit: usize) -> Result<bool, LogError> {
        let key = UserKeys::new(user).conns;
        let args = vec![conn.to_owned(), ttl.as_millis().max(1).to_string(), limit.to_string()];
        let client = self.client.with_options(&self.options);
        let held: i64 = loading_once(&self.client, &self.acquire, || {
            Ok(client.evalsha(self.acquire.sha1().clone(), vec![key.clone()], args.clone()))
        })
        .await?;
        Ok(held == 1)
    }

    async fn release(&self, user: &UserId, conn: &str) -> Result<(), LogError> {
        use fred::prelude::SortedSetsInterface;
        let key = UserKeys::new(user).conns;
        self.client.with_options(&self.options).zrem::<(), _, _>(key, conn).await.map_err(unavailable)
    }
}

/// Leases in process, for the single-node mode: the same rules, one
/// gateway's connections only.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    users: Mutex<HashMap<UserId, HashMap<String, Instant>>>,
}

impl MemoryLeases {
    /// No leases yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Leases for MemoryLeases {
    async fn acquire(&self, user: &UserId, conn: &str, ttl: Duration, limit: usize) -> Result<bool, LogError> {
        let now = Instant::now();
        let mut users = lock(&self.users);
        let leases = users.entry(user.clone()).or_default();
        leases.retain(|_, expiry| *expiry > now);
        if !leases.contains_key(conn) && leases.len() >= limit {
            return Ok(false);
        }
        leases.insert(conn.to_owned(), now + ttl);
        Ok(true)
    }

    async fn release(&self, user: &UserId, conn: &str) -> Result<(), LogError> {
        let mut users = lock(&self.users);
        if let Some(leases) = users.get_mut(user) {
            leases.remove(conn);
            if leases.is_empty() {
                users.remove(user);
            }
        }
        Ok(())
    }
}
