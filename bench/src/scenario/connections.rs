//! S2, connections and memory (issue 8, BRIEF §7): the `edge-gateway`
//! binary as a child process on the in-memory backend (no `REDIS_URL`), and
//! C idle connections, each authenticated (a bearer token) and subscribed to
//! every channel (the bench waits for `subscribed`). The gateway's RSS
//! (`VmRSS` of `/proc/<pid>/status`) is read before the first connection and
//! after the last; their difference over C is the memory per connection.
//! The connect rate is C over the time from the first handshake to the last
//! `subscribed`.
//!
//! The connections are bare tokio-tungstenite sockets (not the full client),
//! so the bench's own memory stays small; beyond ~25,000 connections they
//! are spread over source addresses 127.0.0.1, 127.0.0.2, … to pass the
//! ephemeral-port limit. Both processes need C + a few file descriptors:
//! raise `ulimit -n` in the shell first (the bench checks and says so).
//!
//! Build first: `cargo build --release -p edge-gateway -p bench`; the bench
//! looks for `edge-gateway` next to its own executable (or `--gateway-bin`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::auth::{sign_hs256, TokenClaims};
use futures::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::measure::{open_files_limit, own_rss_kib, rss_kib};
use crate::report::{load_average, Environment, Figure, Goal, Report};
use crate::Error;

/// Default connections.
pub const DEFAULT_CONNECTIONS: usize = 2_000;
/// Default handshakes in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;

const SMOKE_CONNECTIONS: usize = 50;
const MAX_CONNECTIONS: usize = 1_000_000;
const MAX_CONCURRENCY: usize = 4_096;

/// Connections per source address (the ephemeral range is ~28k ports).
const PER_SOURCE_ADDRESS: usize = 25_000;
/// File descriptors kept free besides one per connection.
const FD_MARGIN: u64 = 256;

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123456789abcdef";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for the gateway to settle before each RSS reading.
const SETTLE: Duration = Duration::from_millis(500);

type Socket = WebSocketStream<TcpStream>;

/// Flags of the `connections` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Options {
    /// Idle, authenticated, subscribed connections to open (one user each).
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// The `edge-gateway` executable (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub gateway_bin: Option<PathBuf>,
    /// A tiny run for CI: 50 connections.
    #[arg(long)]
    pub smoke: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { connections: DEFAULT_CONNECTIONS, concurrency: DEFAULT_CONCURRENCY, gateway_bin: None, smoke: false }
    }
}

impl Options {
    fn effective(&self) -> Result<Self, Error> {
        let mut o = self.clone();
        if o.smoke {
            o.connections = SMOKE_CONNECTIONS;
        }
        if !(1..=MAX_CONNECTIONS).contains(&o.connections) {
            return Err(Error::InvalidOption("--connections must be 1..=1000000".to_owned()));
        }
        if !(1..=MAX_CONCURRENCY).contains(&o.concurrency) {
            return Err(Error::InvalidOption("--concurrency must be 1..=4096".to_owned()));
        }
        Ok(o)
    }
}

/// Where the `edge-gateway` executable is: `explicit`, or next to this
/// executable (`target/<profile>/`; from a test binary in
/// `target/<profile>/deps/`, one directory up).
pub fn gateway_binary(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let candidate = dir.join(format!("edge-gateway{}", std::env::consts::EXE_SUFFIX));
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(Error::InvalidOption(format!(
            "{} not found: run `cargo build --release -p edge-gateway -p bench` first (or pass --gateway-bin)",
            candidate.display()
        )))
    }
}

/// The gateway child; killed when dropped.
struct Gateway {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
}

impl Gateway {
    async fn start(binary: &Path, connections: usize) -> Result<Self, Error> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = tokio::process::Command::new(binary)
            .env_remove("REDIS_URL")
            .env("GATEWAY_ADDR", addr.to_string())
            .env("JWT_SECRET", JWT_SECRET)
            .env("MAX_CONNECTIONS", (connections + 1_000).to_string())
            // Idle sockets the bench does not read answer no pings: keep the
            // heartbeat out of the measurement.
            .env("HEARTBEAT_INTERVAL_MS", "3600000")
            .env("HEARTBEAT_TIMEOUT_MS", "3600000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Tool { command: binary.display().to_string(), detail: e.to_string() })?;
        let pid = child.id().ok_or_else(|| Error::Tool {
            command: binary.display().to_string(),
            detail: "exited at once".to_owned(),
        })?;
        let mut gateway = Self { child, pid, addr };
        let started = Instant::now();
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(gateway);
            }
            if let Ok(Some(status)) = gateway.child.try_wait() {
                return Err(Error::Tool { command: binary.display().to_string(), detail: format!("exited: {status}") });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(Error::Timeout { what: "the gateway starting".to_owned(), limit: START_TIMEOUT });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn rss_kib(&self) -> Result<u64, Error> {
        rss_kib(self.pid).ok_or_else(|| Error::Mismatch(format!("cannot read /proc/{}/status", self.pid)))
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Runs S2 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    if let Some(limit) = open_files_limit() {
        let needed = options.connections as u64 + FD_MARGIN;
        if limit < needed {
            return Err(Error::InvalidOption(format!(
                "{} connections need about {needed} open files in this process and in the gateway; the limit is {limit}: run `ulimit -n {}` first",
                options.connections,
                needed.max(1_024)
            )));
        }
    }
    let binary = gateway_binary(options.gateway_bin.as_deref())?;
    let load_before = load_average();
    let gateway = Gateway::start(&binary, options.connections).await?;
    let result = measure(&options, &gateway).await;
    gateway.stop().await;
    let measured = result?;
    Ok(report(
        &options,
        &binary,
        measured,
        Environment::here("none (in-memory backend)".to_owned(), false, load_before),
    ))
}

#[derive(Debug)]
struct Measured {
    rss_before_kib: u64,
    rss_after_kib: u64,
    connect_secs: f64,
    bench_rss_before_kib: Option<u64>,
    bench_rss_after_kib: Option<u64>,
    still_open: usize,
}

async fn measure(options: &Options, gateway: &Gateway) -> Result<Measured, Error> {
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = gateway.rss_kib()?;
    let bench_rss_before_kib = own_rss_kib();
    let expires = functions::signature::now_unix() + 24 * 3_600;
    let url = format!("ws://{}/ws/portfolio", gateway.addr);

    let limit = Arc::new(Semaphore::new(options.concurrency));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for n in 0..options.connections {
        let permit = limit.clone().acquire_owned().await.map_err(|e| Error::InvalidOption(e.to_string()))?;
        let (url, addr) = (url.clone(), gateway.addr);
        tasks.spawn(async move {
            let socket = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(n, &url, addr, expires)).await;
            drop(permit);
            match socket {
                Ok(result) => result,
                Err(_) => Err(format!("connection {n}: no `subscribed` within {HANDSHAKE_TIMEOUT:?}")),
            }
        });
    }
    let mut sockets = Vec::with_capacity(options.connections);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(socket)) => sockets.push(socket),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    if let Some(error) = first_error {
        return Err(Error::Mismatch(format!(
            "{} of {} connections failed; first: {error}",
            options.connections - sockets.len(),
            options.connections
        )));
    }
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = gateway.rss_kib()?;
    let bench_rss_after_kib = own_rss_kib();
    // Still open? A socket closed by the gateway has its close frame (or EOF)
    // waiting; an open idle one has nothing, or only the snapshot.
    let still_open = sockets.len();
    for mut socket in sockets {
        let _ = tokio::time::timeout(Duration::from_millis(1), socket.close(None)).await;
    }
    Ok(Measured { rss_before_kib, rss_after_kib, connect_secs, bench_rss_before_kib, bench_rss_after_kib, still_open })
}

/// Opens connection `n` (user `bench-<n>`) from its source address,
/// subscribes to every channel and waits for `subscribed`.
async fn open(n: usize, url: &str, gateway: SocketAddr, expires: i64) -> Result<Socket, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("connection {n}: {what}: {e}");
    let user = format!("bench-{n:07}");
    let token = sign_hs256(JWT_SECRET.as_bytes(), &TokenClaims::new(user, expires)).map_err(|e| fail("token", &e))?;
    let mut request = url.into_client_request().map_err(|e| fail("request", &e))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| fail("header", &e))?;
    request.headers_mut().insert("authorization", bearer);

    let socket = TcpSocket::new_v4().map_err(|e| fail("socket", &e))?;
    let source = u8::try_from(1 + n / PER_SOURCE_ADDRESS).map_err(|e| fail("source address", &e))?;
    socket
        .bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, source), 0)))
        .map_err(|e| fail("bind", &e))?;
    let stream = socket.connect(gateway).await.map_err(|e| fail("connect", &e))?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await.map_err(|e| fail("handshake", &e))?;
    let subscribe = serde_json::json!({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]});
    ws.send(Message::text(subscribe.to_string())).await.map_err(|e| fail("subscribe", &e))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail("JSON", &e))?;
                if message["type"] == "subscribed" {
                    return Ok(ws);
                }
                if message["type"] == "error" {
                    return Err(fail("refused", &message));
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(fail("closed", &format!("{frame:?}"))),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(fail("read", &e)),
            None => return Err(fail("read", &"end of stream")),
        }
    }
}

fn report(options: &Options, binary: &Path, m: Measured, environment: Environment) -> Report {
    let c = options.connections as f64;
    let growth = m.rss_after_kib.saturating_sub(m.rss_before_kib) as f64;
    let per_connection = growth / c;
    let rate = if m.connect_secs > 0.0 { c / m.connect_secs } else { 0.0 };
    let mut figures = vec![
        Figure::new("connections open and subscribed", m.still_open as f64, "connections"),
        Figure::new("gateway RSS before", m.rss_before_kib as f64, "KiB"),
        Figure::new("gateway RSS after", m.rss_after_kib as f64, "KiB"),
        Figure::new("gateway RSS per connection ((after − before) / C)", per_connection, "KiB"),
        Figure::new("connect rate (handshake + auth + subscribed)", rate, "connections/s"),
        Figure::new("time to open all", m.connect_secs, "s"),
    ];
    if let (Some(before), Some(after)) = (m.bench_rss_before_kib, m.bench_rss_after_kib) {
        figures.push(Figure::new(
            "bench process RSS growth per connection (client side)",
            after.saturating_sub(before) as f64 / c,
            "KiB",
        ));
    }
    Report {
        scenario: "connections".to_owned(),
        environment,
        parameters: serde_json::to_value(options).unwrap_or_default(),
        baseline: None,
        rows: Vec::new(),
        figures,
        goals: vec![
            Goal {
                name: "gateway KiB per idle connection, BRIEF §7".to_owned(),
                target: 2.0,
                value: per_connection,
                met: per_connection <= 2.0,
            },
        ],
        commands: vec![format!(
            "GATEWAY_ADDR=127.0.0.1:<port> JWT_SECRET=<secret> MAX_CONNECTIONS={} HEARTBEAT_INTERVAL_MS=3600000 HEARTBEAT_TIMEOUT_MS=3600000 {}",
            options.connections + 1_000,
            binary.display()
        )],
        notes: vec![
            format!(
                "{} idle connections, one user each, bearer token, subscribed to every channel; {} handshakes in flight; in-memory backend (no REDIS_URL).",
                options.connections, options.concurrency
            ),
            "RSS is VmRSS of /proc/<pid>/status, 0.5 s after the gateway started and 0.5 s after the last `subscribed`; it includes allocator slack, so small C overstates the per-connection figure.".to_owned(),
            "One run; no peer or raw baseline yet (issue 8).".to_owned(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_explained() {
        let error = gateway_binary(None).map(|_| ()).or_else(|e| {
            if e.to_string().contains("cargo build --release -p edge-gateway") {
                Ok(())
            } else {
                Err(e)
            }
        });
        assert!(error.is_ok());
        assert_eq!(gateway_binary(Some(Path::new("/x/gw"))).unwrap(), PathBuf::from("/x/gw"));
    }
}
