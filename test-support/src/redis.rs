//! A real `redis-server` for tests: spawned on a free loopback port with its
//! own data directory, append-only file on (so a restart keeps the data, as
//! production does), killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::free_port;

/// How long a start may take before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it (Debian/Ubuntu: \
     `apt-get install -y redis-server`; macOS: `brew install redis`) or run `.ci/run`, which installs it.";

/// A running `redis-server` owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Arguments beyond the harness' own (cluster mode).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// When `redis-server` is missing (with an install hint) or does not come up.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`RedisServer::start`] with more `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ps-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the Redis data directory");
        let extra = extra.iter().map(|a| (*a).to_owned()).collect();
        let mut server = Self { port, dir, child: None, extra };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGTERM, so it flushes its append-only file) and
    /// waits for it to exit. The port stays reserved for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SHUTDOWN is the clean stop; kill if it does not answer.
            if self.command(&["SHUTDOWN"]).is_err() || wait_exit(&mut child, START_TIMEOUT).is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Kills the server at once (SIGKILL): no shutdown, no final write, as a
    /// crash. [`Self::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its connections stay open and nothing
    /// answers, as a replica stalled by a slow disk or a long GC-like pause.
    /// [`Self::resume`] thaws it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a [`Self::pause`]d server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let Some(child) = &self.child else { return };
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill {signal} {}", child.id());
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Sends one command (inline protocol) and returns the raw reply line(s);
    /// enough for `CLIENT KILL`, `SCRIPT FLUSH`, `FLUSHALL`, `DEL`.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if let Some(len) = line.strip_prefix('$').and_then(|n| n.trim().parse::<usize>().ok()) {
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            line = String::from_utf8_lossy(&body[..len]).into_owned();
        }
        Ok(line.trim_end().to_owned())
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while self.command(&["PING"]).map(|r| r != "+PONG").unwrap_or(true) {
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A real Redis Cluster for tests: `masters` × (1 + `replicas`) servers in
/// cluster mode on free loopback ports, joined with `redis-cli --cluster
/// create`, and ready (`cluster_state:ok` on every node) before it is
/// returned. Killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts and joins the cluster.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing, or the cluster does
    /// not form.
    pub fn start(masters: usize, replicas: usize) -> Self {
        assert!(masters >= 3, "Redis Cluster needs at least 3 masters");
        // No 5 s pause before a replica's first full sync (Redis' default
        // waits for more replicas to share one transfer).
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--repl-diskless-sync-delay",
            "0",
        ];
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas)).map(|_| RedisServer::start_with(&args)).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let output = match create.stdin(Stdio::null()).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-cli was not found on PATH. {INSTALL_HINT}")
            }
            Err(e) => panic!("could not run redis-cli: {e}"),
        };
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        let deadline = Instant::now() + START_TIMEOUT * 3;
        while !cluster.is_ready() || !cluster.replicas_online(masters * replicas) {
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Whether `count` replicas are in sync with their masters (`state=online`).
    fn replicas_online(&self, count: usize) -> bool {
        let online: usize = self
            .nodes
            .iter()
            .map(|node| node.command(&["INFO", "replication"]).map_or(0, |info| info.matches("state=online").count()))
            .sum();
        online >= count
    }

    fn is_ready(&self) -> bool {
        self.nodes
            .iter()
            .all(|node| node.command(&["CLUSTER", "INFO"]).is_ok_and(|info| info.contains("cluster_state:ok")))
    }

    /// Every replica takes over its master's slots (`CLUSTER FAILOVER`, the
    /// graceful kind); returns once each is a master. A manual failover
    /// asked for right after the cluster formed can time out while the
    /// nodes still learn about each other, so one not done after 5 s is
    /// asked for again (at most 30 s in all).
    ///
    /// # Panics
    /// When a replica is still not a master after 30 s.
    pub async fn fail_over_every_shard(&self) {
        let replicas: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].command(&["INFO", "replication"]).is_ok_and(|r| r.contains("role:slave")))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            for &i in &replicas {
                if !self.is_master(i) {
                    self.nodes[i].command(&["CLUSTER", "FAILOVER"]).expect("CLUSTER FAILOVER");
                }
            }
            let asked = Instant::now();
            while asked.elapsed() < Duration::from_secs(5) {
                if replicas.iter().all(|&i| self.is_master(i)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("the replicas did not all take over within 30 s");
    }

    fn is_master(&self, node: usize) -> bool {
        self.nodes[node].command(&["INFO", "replication"]).is_ok_and(|r| r.contains("role:master"))
    }

    /// `redis-cli --cluster reshard` moving `slots` slots (keys included)
    /// from node `from` to node `to` (indices), ready to run.
    pub fn reshard_command(&self, from: usize, to: usize, slots: usize) -> Command {
        let id = |i: usize| self.nodes[i].command(&["CLUSTER", "MYID"]).expect("CLUSTER MYID").trim().to_owned();
        let mut command = Command::new("redis-cli");
        command
            .args(["--cluster", "reshard", &format!("127.0.0.1:{}", self.nodes[from].port())])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .stdin(Stdio::null());
        command
    }

    /// `redis-cluster://127.0.0.1:<first>?node=127.0.0.1:<second>&…`, the
    /// form `REDIS_URL` takes for a cluster.
    pub fn url(&self) -> String {
        let mut nodes = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port()));
        let first = nodes.next().unwrap_or_default();
        let rest: Vec<String> = nodes.map(|n| format!("node={n}")).collect();
        format!("redis-cluster://{first}?{}", rest.join("&"))
    }

    /// The servers, in creation order (`redis-cli` makes the first
    /// `masters` of them the masters).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The servers, to stop, kill or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// The port of the master that owns `key`'s slot, as the cluster says
    /// (`CLUSTER KEYSLOT`, `CLUSTER NODES` on the first live node).
    pub fn owner_of(&self, key: &str) -> Option<u16> {
        let node = self.nodes.iter().find(|n| n.command(&["PING"]).is_ok_and(|r| r == "+PONG"))?;
        let slot: u16 = node.command(&["CLUSTER", "KEYSLOT", key]).ok()?.trim_start_matches(':').parse().ok()?;
        let nodes = node.command(&["CLUSTER", "NODES"]).ok()?;
        nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let is_master = fields.get(2)?.contains("master");
            let owns = fields.iter().skip(8).any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                matches!((start.parse::<u16>(), end.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            (is_master && owns).then_some(port)
        })
    }
}
