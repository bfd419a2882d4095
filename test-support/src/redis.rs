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
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// When `redis-server` is missing (with an install hint) or does not come up.
    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ps-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the Redis data directory");
        let mut server = Self { port, dir, child: None };
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
