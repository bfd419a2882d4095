//! The Redis under test: a `redis-server` of our own on a free loopback port
//! (never 6379), or a loopback URL the user gives. Phases share it, so the
//! target also flushes the data between them and loads scripts.

use std::net::IpAddr;
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, LuaInterface, ServerConfig};
use fred::types::InfoKind;
use test_support::redis::RedisServer;

use crate::error::Error;

/// Often a developer's own Redis; never a bench target.
const DEFAULT_REDIS_PORT: u16 = 6379;

const REDIS_SERVER_HINT: &str = "Debian/Ubuntu: `apt-get install -y redis-server`; macOS: `brew install redis`";

/// The Redis every phase of a scenario runs against.
#[derive(Debug)]
pub struct Target {
    url: String,
    host: String,
    port: u16,
    admin: fred::clients::Client,
    /// Our own server, stopped when the target is dropped.
    _server: Option<RedisServer>,
    /// Its replicas, when asked for.
    _replicas: Vec<RedisServer>,
}

impl Target {
    /// Starts our own `redis-server`, or connects to `url`, which must name
    /// a loopback host: the bench floods and flushes its target.
    pub async fn start_or_connect(url: Option<&str>) -> Result<Self, Error> {
        Self::start_or_connect_with(url, 0).await
    }

    /// [`Target::start_or_connect`] with `replicas` replicas of our own
    /// server, in sync before this returns (for durability runs); a given
    /// `url` takes no replicas.
    pub async fn start_or_connect_with(url: Option<&str>, replicas: u32) -> Result<Self, Error> {
        let (url, server, replicas) = match url {
            Some(_) if replicas > 0 => {
                return Err(Error::InvalidOption(
                    "replicas are started with the bench's own server; leave out --redis-url".to_owned(),
                ))
            }
            Some(url) => (url.to_owned(), None, Vec::new()),
            None => {
                require_tool("redis-server", REDIS_SERVER_HINT).await?;
                let (server, replicas) = tokio::task::spawn_blocking(move || start_with_replicas(replicas))
                    .await
                    .map_err(|e| Error::Redis(format!("starting redis-server: {e}")))?;
                (server.url(), Some(server), replicas)
            }
        };
        let config = Config::from_url(&url).map_err(|e| Error::InvalidOption(format!("--redis-url {url}: {e}")))?;
        let (host, port) =
            loopback_server(&config).map_err(|why| Error::InvalidOption(format!("--redis-url {url}: {why}")))?;
        let admin = Builder::from_config(config).build()?;
        admin.init().await?;
        Ok(Self { url, host, port, admin, _server: server, _replicas: replicas })
    }

    /// The URL the code under test connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host, for tools that take `-h`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, for tools that take `-p`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Deletes every key, so that one phase starts from what the previous
    /// left behind no more than the first did. Scripts stay loaded.
    pub async fn flush(&self) -> Result<(), Error> {
        self.admin.flushall::<()>(false).await?;
        Ok(())
    }

    /// Loads a Lua script and returns its SHA1.
    pub async fn script_load(&self, lua: &str) -> Result<String, Error> {
        Ok(self.admin.script_load::<String, _>(lua).await?)
    }

    /// A client for one-off commands (checks, not measurements).
    pub fn admin(&self) -> &fred::clients::Client {
        &self.admin
    }

    /// CPU time the server's main thread (the one that runs commands and
    /// scripts) has used, user plus system, from `INFO cpu`.
    pub async fn server_cpu(&self) -> Result<Duration, Error> {
        let info: String = self.admin.info(Some(InfoKind::Cpu)).await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let seconds = match (field("used_cpu_user_main_thread"), field("used_cpu_sys_main_thread")) {
            (Some(user), Some(sys)) => user + sys,
            _ => field("used_cpu_user").unwrap_or_default() + field("used_cpu_sys").unwrap_or_default(),
        };
        Ok(Duration::from_secs_f64(seconds.max(0.0)))
    }

    /// Commands the server has run so far (the sum of `calls` over `INFO
    /// commandstats`, `INFO` itself left out).
    pub async fn command_calls(&self) -> Result<u64, Error> {
        let info: String = self.admin.info(Some(fred::types::InfoKind::CommandStats)).await?;
        Ok(info
            .lines()
            .filter_map(|line| line.strip_prefix("cmdstat_")?.split_once(':'))
            .filter(|(name, _)| *name != "info")
            .filter_map(|(_, stats)| stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse::<u64>().ok())
            .sum())
    }

    /// `redis_version` and whether the AOF is on, from `INFO`.
    pub async fn server_info(&self) -> Result<(String, bool), Error> {
        let info: String = self.admin.info(None).await?;
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':'))).map(str::trim)
        };
        let version = field("redis_version").unwrap_or("unknown").to_owned();
        Ok((version, field("aof_enabled") == Some("1")))
    }
}

/// A server and `count` replicas of it, each in sync (`state=online`).
fn start_with_replicas(count: u32) -> (RedisServer, Vec<RedisServer>) {
    if count == 0 {
        return (RedisServer::start(), Vec::new());
    }
    // No 5 s pause before each replica's first full sync.
    let master = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let port = master.port().to_string();
    let replicas: Vec<RedisServer> =
        (0..count).map(|_| RedisServer::start_with(&["--replicaof", "127.0.0.1", &port])).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let online = |m: &RedisServer| m.command(&["INFO", "replication"]).map_or(0, |i| i.matches("state=online").count());
    while online(&master) < count as usize {
        assert!(std::time::Instant::now() < deadline, "the replicas did not sync within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    (master, replicas)
}

/// Fails with an install hint when `tool` is not on `PATH`.
pub async fn require_tool(tool: &'static str, hint: &'static str) -> Result<(), Error> {
    let status = tokio::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    match status {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingTool { tool, hint }),
        Err(e) => Err(Error::Tool { command: format!("{tool} --version"), detail: e.to_string() }),
    }
}

/// The host and port of a single-server config on the loopback interface.
fn loopback_server(config: &Config) -> Result<(String, u16), &'static str> {
    let ServerConfig::Centralized { server } = &config.server else {
        return Err("only a single server is supported (no cluster or sentinel)");
    };
    if config.username.is_some() || config.password.is_some() {
        return Err("credentials are not supported: the bench targets a local, throwaway Redis");
    }
    let host = server.host.to_string();
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err("the bench only targets a Redis on the loopback interface (127.0.0.1, ::1, localhost)");
    }
    if server.port == DEFAULT_REDIS_PORT {
        return Err(
            "refusing Redis' default port 6379: the bench flushes its target; start a throwaway server on another port",
        );
    }
    Ok((host, server.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<(String, u16), &'static str> {
        loopback_server(&Config::from_url(url).unwrap())
    }

    #[test]
    fn only_loopback_single_servers_are_targets() {
        assert_eq!(check("redis://127.0.0.1:7000"), Ok(("127.0.0.1".to_owned(), 7000)));
        assert_eq!(check("redis://localhost:7001/0"), Ok(("localhost".to_owned(), 7001)));
        assert!(check("redis://10.0.0.5:6379").is_err());
        assert!(check("redis://example.com:6379").is_err());
        assert!(check("redis://:secret@127.0.0.1:7000").is_err());
        assert!(check("redis-cluster://127.0.0.1:7000").is_err());
        assert!(check("redis://127.0.0.1:6379").is_err());
    }
}
