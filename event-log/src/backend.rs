//! Which backend holds the log, read from the environment, and the one way
//! every binary opens it ([`open`]): the gateway, the functions and dev mode
//! share the variables in [`vars`] and their checks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use common::config::{self, ConfigError, Source};

use crate::error::LogError;
use crate::index::SharedIndex;
use crate::log::{LogSettings, SharedLog};
use crate::memory::MemoryLog;
use crate::redis::{Durability, RedisLog};

#[cfg(test)]
mod tests;

/// The variables every binary reads to find its event log.
pub mod vars {
    /// Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for
    /// TLS, `redis-cluster://host:port?node=host:port&node=…` /
    /// `rediss-cluster://` for Redis Cluster). Optional: when absent the
    /// event log is kept in memory (one process, lost on restart; for
    /// development and tests).
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Events kept per user stream before trimming; default 10 000, at least
    /// 100. A client whose resume point was trimmed gets a snapshot.
    pub const STREAM_MAXLEN: &str = "STREAM_MAXLEN";
    /// Seconds a dedupe id is remembered, so a retried webhook or queue
    /// message is a no-op; default 86 400 (one day), at least 60.
    pub const DEDUPE_TTL_SECS: &str = "DEDUPE_TTL_SECS";
    /// Milliseconds before a Redis command is given up; default 2 000,
    /// 1 to 60 000.
    pub const REDIS_COMMAND_TIMEOUT_MS: &str = "REDIS_COMMAND_TIMEOUT_MS";
    /// Replicas that must have an event before its publish is acknowledged
    /// and its notice sent (`WAIT`); default 0 (the master alone), at most
    /// 5. Set it to 1 where a failover must never lose an acknowledged
    /// event.
    pub const REDIS_WAIT_REPLICAS: &str = "REDIS_WAIT_REPLICAS";
    /// Milliseconds a publish waits for those replicas before it is
    /// answered unavailable (the sender retries); default 500, 1 to 10 000.
    pub const REDIS_WAIT_TIMEOUT_MS: &str = "REDIS_WAIT_TIMEOUT_MS";
}

/// Defaults and bounds of the variables in [`vars`].
pub mod defaults {
    /// [`super::vars::STREAM_MAXLEN`] default.
    pub const STREAM_MAXLEN: u64 = 10_000;
    /// Fewer events than this would send most reconnecting clients a full
    /// snapshot instead of a catch-up.
    pub const MIN_STREAM_MAXLEN: u64 = 100;
    /// [`super::vars::DEDUPE_TTL_SECS`] default: one day, longer than any
    /// broker's webhook retry schedule.
    pub const DEDUPE_TTL_SECS: u64 = 86_400;
    /// Below a minute a slow retry would be published twice.
    pub const MIN_DEDUPE_TTL_SECS: u64 = 60;
    /// [`super::vars::REDIS_COMMAND_TIMEOUT_MS`] default.
    pub const REDIS_COMMAND_TIMEOUT_MS: u64 = 2_000;
    /// Longest command timeout accepted; beyond it, a stalled Redis stalls
    /// every request behind it for too long.
    pub const MAX_REDIS_COMMAND_TIMEOUT_MS: u64 = 60_000;
    /// [`super::vars::REDIS_WAIT_REPLICAS`] default: acknowledge on the master.
    pub const REDIS_WAIT_REPLICAS: u32 = 0;
    /// More replicas per shard than anyone runs.
    pub const MAX_REDIS_WAIT_REPLICAS: u32 = 5;
    /// [`super::vars::REDIS_WAIT_TIMEOUT_MS`] default.
    pub const REDIS_WAIT_TIMEOUT_MS: u64 = 500;
    /// Longest wait accepted.
    pub const MAX_REDIS_WAIT_TIMEOUT_MS: u64 = 10_000;
}

/// How to reach Redis, for the Redis event-log backend.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    /// How long one command may take before it is given up.
    pub command_timeout: Duration,
    /// History kept per user.
    pub settings: LogSettings,
    /// When a publish is acknowledged.
    pub durability: Durability,
}

impl RedisConfig {
    /// A config for `url` (checked as [`vars::REDIS_URL`] is) with default
    /// timeout and settings.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        check_redis_url(&url)?;
        Ok(Self {
            url,
            command_timeout: Duration::from_millis(defaults::REDIS_COMMAND_TIMEOUT_MS),
            settings: LogSettings::default(),
            durability: Durability::NONE,
        })
    }

    /// The URL, credentials included: for connecting, never for logs (use
    /// `Debug`, which removes them).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Written by hand: the URL may carry a password.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("command_timeout", &self.command_timeout)
            .field("settings", &self.settings)
            .field("durability", &self.durability)
            .finish()
    }
}

/// Where the event log lives. Both variants carry the history settings:
/// the in-memory log trims and dedupes like Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// In process: no `REDIS_URL`. One instance only; lost on restart.
    Memory(LogSettings),
    /// Redis at `REDIS_URL`.
    Redis(RedisConfig),
}

impl Backend {
    /// Reads [`vars::REDIS_URL`], [`vars::STREAM_MAXLEN`],
    /// [`vars::DEDUPE_TTL_SECS`], [`vars::REDIS_COMMAND_TIMEOUT_MS`],
    /// [`vars::REDIS_WAIT_REPLICAS`] and [`vars::REDIS_WAIT_TIMEOUT_MS`].
    /// All are checked even when unused, so a typo never waits for the day
    /// Redis is switched on.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let settings = LogSettings {
            stream_maxlen: config::parse_at_least_or(
                source,
                vars::STREAM_MAXLEN,
                defaults::STREAM_MAXLEN,
                defaults::MIN_STREAM_MAXLEN,
            )?,
            dedupe_ttl: Duration::from_secs(config::parse_at_least_or(
                source,
                vars::DEDUPE_TTL_SECS,
                defaults::DEDUPE_TTL_SECS,
                defaults::MIN_DEDUPE_TTL_SECS,
            )?),
        };
        let command_timeout = Duration::from_millis(config::parse_between_or(
            source,
            vars::REDIS_COMMAND_TIMEOUT_MS,
            defaults::REDIS_COMMAND_TIMEOUT_MS,
            1,
            defaults::MAX_REDIS_COMMAND_TIMEOUT_MS,
        )?);
        let durability = Durability {
            replicas: config::parse_between_or(
                source,
                vars::REDIS_WAIT_REPLICAS,
                defaults::REDIS_WAIT_REPLICAS,
                0,
                defaults::MAX_REDIS_WAIT_REPLICAS,
            )?,
            timeout: Duration::from_millis(config::parse_between_or(
                source,
                vars::REDIS_WAIT_TIMEOUT_MS,
                defaults::REDIS_WAIT_TIMEOUT_MS,
                1,
                defaults::MAX_REDIS_WAIT_TIMEOUT_MS,
            )?),
        };
        match config::optional(source, vars::REDIS_URL) {
            None => Ok(Backend::Memory(settings)),
            Some(url) => {
                let url = url.trim().to_owned();
                check_redis_url(&url)?;
                Ok(Backend::Redis(RedisConfig { url, command_timeout, settings, durability }))
            }
        }
    }

    /// The history settings, whichever the backend.
    pub fn settings(&self) -> LogSettings {
        match self {
            Backend::Memory(settings) => *settings,
            Backend::Redis(redis) => redis.settings,
        }
    }
}

/// What the opening process does with the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishes and reads (the ingest functions): no pub/sub connection.
    Publisher,
    /// Also follows users (a gateway): the pub/sub connection is opened at
    /// start, so its fixed cost is paid before the first socket.
    Follower,
}

/// An opened backend: the event log and the ingest index of one store.
#[derive(Debug, Clone)]
pub struct Store {
    /// The per-user event log (its leases come with it).
    pub log: SharedLog,
    /// Holders per symbol, the account directory, batched snapshot reads.
    pub index: SharedIndex,
}

impl Store {
    /// A fresh in-memory store (one process; dev mode and tests).
    pub fn in_memory(settings: LogSettings) -> Self {
        let memory = Arc::new(MemoryLog::new(settings));
        Self { log: memory.clone(), index: memory }
    }

    /// A store on a connected Redis log.
    pub fn redis(log: RedisLog) -> Self {
        let log = Arc::new(log);
        Self { log: log.clone(), index: log }
    }
}

/// Opens the configured backend: the one way every binary does it.
pub async fn open(backend: &Backend, role: Role) -> Result<Store, LogError> {
    match backend {
        Backend::Memory(settings) => {
            tracing::warn!("REDIS_URL is not set: events are kept in this process only.");
            Ok(Store::in_memory(*settings))
        }
        Backend::Redis(redis) => {
            let log =
                RedisLog::connect_durable(redis.url(), redis.settings, redis.command_timeout, redis.durability).await?;
            if role == Role::Follower {
                log.open_notices().await?;
            }
            tracing::info!(redis = ?redis, "Event log connected.");
            Ok(Store::redis(log))
        }
    }
}

/// Schemes accepted for `REDIS_URL`; `-cluster` selects Redis Cluster.
const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"];

fn check_redis_url(url: &str) -> Result<(), ConfigError> {
    const EXPECTED: &str = "a URL like redis://[user:password@]host[:port][/db] (or rediss://), or for Redis \
                            Cluster redis-cluster://host:port?node=host:port&node=host:port (or rediss-cluster://)";
    let scheme_ok = REDIS_SCHEMES
        .iter()
        .any(|scheme| url.get(..scheme.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme)));
    // fred parses it the way it will connect: host, port, database.
    if scheme_ok && fred::types::config::Config::from_url(url).is_ok() {
        Ok(())
    } else {
        Err(ConfigError::invalid(vars::REDIS_URL, EXPECTED, &redact_url(url)))
    }
}

/// The URL without its user-info and query (which may hold passwords), for
/// logs and errors: `redis://user:pw@host:6379/0?x=y` → `redis://***@host:6379/0?***`.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?***"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}{query}"),
        None => format!("{rest}{query}"),
    }
}
