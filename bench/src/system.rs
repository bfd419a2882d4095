//! The systems under test, side by side (issue 8): ours, the Socket.IO peer
//! and the raw WebSocket baseline — each a set of child processes on
//! loopback — and one bare client connection to each that decodes what the
//! system delivers into our protocol's [`ServerMessage`].
//!
//! - **ours**: `edge-gateway` + the `queue-completions` and `price-ticks`
//!   functions (their local HTTP mode), all on one Redis. Events enter as
//!   signed work-queue completions or price ticks, exactly as in production.
//! - **socketio**: Socket.IO 4 with `@socket.io/redis-streams-adapter`
//!   (`bench/peers/socketio/`): a socket node and a publisher node; events
//!   cross Redis from the publisher to the socket node, which sends them to
//!   the user's room after JWT authentication.
//! - **baseline**: `ws-baseline`, a minimal tokio WebSocket fanout with no
//!   Redis, no authentication and no logic: the physical floor.
//!
//! The peer and the baseline are given the very JSON our gateway would send
//! (an `order_update` or `position_update` envelope), so every client
//! decodes the same bytes with the same code.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::protocol::delta::DeltaMessage;
use common::protocol::ServerMessage;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use portfolio_client::PortfolioState;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use functions::Function;
use test_support::net::free_addr;

use crate::client::client_config;
use crate::error::Error;
use crate::measure::{rss_kib, ProcessCpu};
use crate::report::{load_average, Environment};
use crate::socketio::SocketIo;

/// The secret every system's tokens are signed with.
pub const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123456789abcdef";
/// The secret the functions check ingest signatures with.
pub const INGEST_SECRET: &[u8] = b"bench-ingest-secret-0123456789abcdef";
/// Where the peer and the baseline take events.
pub const PUBLISH_PATH: &str = "/publish";

const START_TIMEOUT: Duration = Duration::from_secs(120);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections per source address: well under the ~28k ephemeral ports,
/// which earlier phases' TIME_WAIT sockets also hold.
pub const PER_SOURCE_ADDRESS: usize = 5_000;

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Our gateway and functions over Redis.
    Ours,
    /// Socket.IO 4 with the Redis streams adapter (two Node processes).
    Socketio,
    /// A minimal tokio WebSocket fanout server: no Redis, no logic.
    Baseline,
}

impl Kind {
    /// Every system, in report order.
    pub const ALL: [Kind; 3] = [Kind::Ours, Kind::Socketio, Kind::Baseline];

    /// The name used in flags and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Socketio => "socketio",
            Kind::Baseline => "baseline",
        }
    }

    /// A one-line description for report rows.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Ours => "ours: ingest function → Redis → edge-gateway",
            Kind::Socketio => "peer: publisher node → Redis streams adapter → Socket.IO node",
            Kind::Baseline => "baseline: minimal tokio WebSocket fanout (no Redis, no logic)",
        }
    }
}

/// Where the systems' programs are (flags shared by the scenarios that
/// compare systems).
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct Locations {
    /// The directory with `edge-gateway`, `queue-completions`, `price-ticks`
    /// and `ws-baseline` (default: this executable's directory).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The Socket.IO peer's directory (default: `bench/peers/socketio` of
    /// this source tree).
    #[arg(long, value_name = "DIR")]
    pub peer_dir: Option<PathBuf>,
}

impl Locations {
    fn binary(&self, name: &str) -> Result<PathBuf, Error> {
        let dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => {
                let exe = std::env::current_exe()?;
                let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
                if dir.file_name().is_some_and(|n| n == "deps") {
                    dir.pop();
                }
                dir
            }
        };
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::InvalidOption(format!(
                "{} not found: run `cargo build --release -p edge-gateway -p functions -p bench` first (or pass --bin-dir)",
                path.display()
            )))
        }
    }

    fn peer_dir(&self) -> PathBuf {
        self.peer_dir.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join("socketio"))
    }
}

/// The flags every comparing scenario shares: which systems, on which
/// Redis, from where.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Under {
    /// The systems to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL)]
    pub systems: Vec<Kind>,
    /// A Redis on the loopback interface to use instead of starting one.
    /// Every key in it is DELETED (FLUSHALL) first.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub locations: Locations,
}

impl Default for Under {
    fn default() -> Self {
        Self { systems: Kind::ALL.to_vec(), redis_url: None, locations: Locations::default() }
    }
}

impl Under {
    /// At least one system.
    pub fn check(&self) -> Result<(), Error> {
        if self.systems.is_empty() {
            return Err(Error::InvalidOption("--systems needs at least one system".to_owned()));
        }
        Ok(())
    }

    /// The systems in the order given, each once.
    fn distinct(&self) -> Vec<Kind> {
        let mut kinds = Vec::new();
        for &kind in &self.systems {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }

    /// Starts each system in turn on one Redis (ours, or `--redis-url`),
    /// flushed before each, runs `measure` on it and stops it: the results
    /// in order, and where they were measured.
    pub async fn each<T>(
        &self,
        settings: &Settings,
        mut measure: impl AsyncFnMut(&System, &crate::target::Target) -> Result<T, Error>,
    ) -> Result<(Vec<T>, Environment), Error> {
        let load_before = load_average();
        let (target, version, aof) = self.target().await?;
        let mut results = Vec::new();
        for kind in self.distinct() {
            let system = self.start(kind, &target, settings).await?;
            let result = measure(&system, &target).await;
            system.stop().await;
            results.push(result?);
        }
        Ok((results, Environment::here(version, aof, load_before)))
    }

    /// The Redis the systems run on (ours, or `--redis-url`), with its
    /// version and AOF setting for the report.
    async fn target(&self) -> Result<(crate::target::Target, String, bool), Error> {
        let target = crate::target::Target::start_or_connect(self.redis_url.as_deref()).await?;
        let (version, aof) = target.server_info().await?;
        Ok((target, version, aof))
    }

    /// Flushes `target` and starts `kind` on it.
    async fn start(&self, kind: Kind, target: &crate::target::Target, settings: &Settings) -> Result<System, Error> {
        target.flush().await?;
        System::start(kind, &self.locations, target.url(), settings).await
    }
}

/// How a system is to be started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connections the system must accept.
    pub capacity: usize,
    /// Our gateway's throttle window (S4 compresses time by shrinking it).
    pub throttle_window: Option<Duration>,
    /// Our gateway's settle time of held-back changes.
    pub diff_settle: Option<Duration>,
    /// Our connections subscribe with field deltas (and resolve them).
    pub deltas: bool,
    /// Our heartbeat pushed out to its 1 h maximum: for sockets the bench
    /// never reads (S2's idle connections answer no pings), and where pings
    /// would blur a byte count over compressed time (S4). Sockets the bench
    /// reads answer pings and keep the defaults: with the heartbeat at 1 h,
    /// a run of an hour sees every socket closed at the hour mark (the
    /// first one-hour soak did).
    pub no_heartbeat: bool,
}

impl Settings {
    /// `capacity` connections, our defaults otherwise.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { capacity, throttle_window: None, diff_settle: None, deltas: false, no_heartbeat: false }
    }
}

/// One child process of a system; killed when dropped.
#[derive(Debug)]
pub struct Process {
    /// What it is (`edge-gateway`, `socket.io server`, …).
    pub name: &'static str,
    /// Its process id.
    pub pid: u32,
    child: tokio::process::Child,
}

impl Process {
    /// Its resident set size in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Its CPU time so far.
    pub fn cpu(&self) -> Option<Duration> {
        ProcessCpu::of(self.pid).map(|c| c.own)
    }
}

/// A running system.
#[derive(Debug)]
pub struct System {
    /// Which one.
    pub kind: Kind,
    /// Its processes; the first holds the client connections.
    pub processes: Vec<Process>,
    ws: SocketAddr,
    ingest: SocketAddr,
    ticks: Option<SocketAddr>,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    deltas: bool,
}

impl System {
    /// Starts `kind` on the Redis at `redis_url` (ours and the peer), and
    /// waits until every process listens.
    pub async fn start(kind: Kind, locations: &Locations, redis_url: &str, settings: &Settings) -> Result<Self, Error> {
        let http = HttpClient::builder(TokioExecutor::new()).pool_max_idle_per_host(1_024).build_http();
        match kind {
            Kind::Ours => {
                let (ws, completions, prices) = (free_addr()?, free_addr()?, free_addr()?);
                let mut gateway = tokio::process::Command::new(locations.binary("edge-gateway")?);
                gateway
                    .env("REDIS_URL", redis_url)
                    .env("GATEWAY_ADDR", ws.to_string())
                    .env("JWT_SECRET", JWT_SECRET)
                    .env("MAX_CONNECTIONS", (settings.capacity + 1_000).to_string())
                    .env("RUST_LOG", "warn");
                if settings.no_heartbeat {
                    gateway.env("HEARTBEAT_INTERVAL_MS", "3600000").env("HEARTBEAT_TIMEOUT_MS", "3600000");
                }
                if let Some(window) = settings.throttle_window {
                    gateway.env("THROTTLE_WINDOW_MS", window.as_millis().max(1).to_string());
                }
                if let Some(settle) = settings.diff_settle {
                    gateway.env("DIFF_SETTLE_MS", settle.as_millis().max(1).to_string());
                }
                let function = |name: &str, addr: SocketAddr| -> Result<tokio::process::Command, Error> {
                    let mut command = tokio::process::Command::new(locations.binary(name)?);
                    command
                        .env("REDIS_URL", redis_url)
                        .env("FUNCTIONS_ADDR", addr.to_string())
                        .env("INGEST_SECRET", String::from_utf8_lossy(INGEST_SECRET).as_ref())
                        .env("FUNCTIONS_LOG", "warn");
                    Ok(command)
                };
                let processes = vec![
                    spawn_listening("edge-gateway", gateway, ws).await?,
                    spawn_listening("queue-completions", function("queue-completions", completions)?, completions)
                        .await?,
                    spawn_listening("price-ticks", function("price-ticks", prices)?, prices).await?,
                ];
                Ok(Self {
                    kind,
                    processes,
                    ws,
                    ingest: completions,
                    ticks: Some(prices),
                    http,
                    deltas: settings.deltas,
                })
            }
            Kind::Socketio => {
                let dir = locations.peer_dir();
                let script = dir.join("start.sh");
                if !script.is_file() {
                    return Err(Error::InvalidOption(format!("{} not found (--peer-dir)", script.display())));
                }
                let node = |role: &str| {
                    let mut command = tokio::process::Command::new(&script);
                    command
                        .arg(role)
                        .current_dir(&dir)
                        .env("PORT", "0")
                        .env("REDIS_URL", redis_url)
                        .env("JWT_SECRET", JWT_SECRET)
                        // Idle sockets the bench does not read answer no
                        // pings: keep the heartbeat out of the measurements.
                        .env("PING_INTERVAL_MS", "3600000")
                        .env("PING_TIMEOUT_MS", "3600000");
                    command
                };
                let (server, ws) = spawn_ready("socket.io server", node("server")).await?;
                let (publisher, ingest) = spawn_ready("socket.io publisher", node("publisher")).await?;
                Ok(Self { kind, processes: vec![server, publisher], ws, ingest, ticks: None, http, deltas: false })
            }
            Kind::Baseline => {
                let mut command = tokio::process::Command::new(locations.binary("ws-baseline")?);
                command.arg("--listen").arg("127.0.0.1:0");
                let (process, addr) = spawn_ready("ws-baseline", command).await?;
                Ok(Self { kind, processes: vec![process], ws: addr, ingest: addr, ticks: None, http, deltas: false })
            }
        }
    }

    /// The process holding the client connections.
    pub fn socket_process(&self) -> &Process {
        &self.processes[0]
    }

    /// The HTTP client the bench sends events with.
    pub fn http(&self) -> &HttpClient<HttpConnector, Full<Bytes>> {
        &self.http
    }

    /// What opens connections to this system (cheap to clone into tasks).
    pub fn connector(&self) -> Connector {
        Connector { kind: self.kind, ws: self.ws, deltas: self.deltas }
    }

    /// The request that makes the system deliver order event `index` to
    /// `user` as an urgent `order_update`. `seq` is the user's sequence
    /// number the peer and the baseline are told to carry (ours assigns its
    /// own, which is the same for a fresh user).
    pub fn order_request(&self, run_id: i64, index: usize, user: &str, seq: u64) -> axum::http::Request<Full<Bytes>> {
        match self.kind {
            Kind::Ours => {
                signed_post(self.ingest, Function::QueueCompletions.path(), events::completion(run_id, index, user))
            }
            Kind::Socketio | Kind::Baseline => {
                let body = serde_json::json!({"users": [user], "event": events::order_update(index, user, seq)});
                post(self.ingest, PUBLISH_PATH, body.to_string())
            }
        }
    }

    /// The request that makes the system deliver a `position_update` for
    /// `symbol` at `price` to every user in `users` (ours: a signed price
    /// tick; its holders must have been seeded with [`events::seed_holders`]).
    pub fn tick_request(
        &self,
        symbol: &str,
        price: rust_decimal::Decimal,
        users: &[String],
    ) -> Result<axum::http::Request<Full<Bytes>>, Error> {
        match self.kind {
            Kind::Ours => self.signed_prices(events::tick_batch(symbol, price)),
            Kind::Socketio | Kind::Baseline => {
                // One event for all: the peer and the baseline fan out the
                // same bytes (a broadcast has no one user id).
                let event = events::position_update(symbol, price, "fanout", 0);
                let body = serde_json::json!({"users": users, "event": event});
                Ok(post(self.ingest, PUBLISH_PATH, body.to_string()))
            }
        }
    }

    /// A signed price-tick batch `body` for ours' `price-ticks` function.
    pub fn signed_prices(&self, body: String) -> Result<axum::http::Request<Full<Bytes>>, Error> {
        let prices = self.ticks.ok_or_else(|| Error::InvalidOption("no price-ticks function".to_owned()))?;
        Ok(signed_post(prices, Function::PriceTicks.path(), body))
    }

    /// Our gateway's REST snapshot for `user` (ours only).
    pub async fn snapshot(&self, user: &str, expires: i64) -> Result<serde_json::Value, Error> {
        use http_body_util::BodyExt as _;
        let token = sign_hs256(JWT_SECRET.as_bytes(), &TokenClaims::new(user.to_owned(), expires))
            .map_err(|e| Error::InvalidOption(e.to_string()))?;
        let request = axum::http::Request::get(format!("http://{}/api/portfolio", self.ws))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::InvalidOption(e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| Error::Mismatch(format!("snapshot: {e}")))?;
        let body = response.into_body().collect().await.map_err(|e| Error::Mismatch(format!("snapshot: {e}")))?;
        serde_json::from_slice(&body.to_bytes()).map_err(|e| Error::Mismatch(format!("snapshot JSON: {e}")))
    }

    /// Stops every process (SIGKILL; the bench has what it measured).
    pub async fn stop(mut self) {
        for process in &mut self.processes {
            let _ = process.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), process.child.wait()).await;
        }
    }
}

/// Opens connections to one system; cheap to clone into tasks.
#[derive(Debug, Clone, Copy)]
pub struct Connector {
    kind: Kind,
    ws: SocketAddr,
    deltas: bool,
}

impl Connector {
    /// Our connections subscribe with field deltas, or not.
    pub fn with_deltas(mut self, deltas: bool) -> Self {
        self.deltas = deltas;
        self
    }

    /// Opens user `user`'s connection from source address 127.0.0.`source`,
    /// authenticated and subscribed to every channel; returns once events
    /// sent from now on reach it.
    pub async fn connect(&self, user: &str, source: u8, expires: i64) -> Result<Connection, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("{user}: {what}: {e}");
        let connect = async {
            let socket = TcpSocket::new_v4().map_err(|e| fail("socket", &e))?;
            // Binding picks the source port: let it reuse ports that
            // earlier phases' closed sockets still hold in TIME_WAIT.
            socket.set_reuseaddr(true).map_err(|e| fail("SO_REUSEADDR", &e))?;
            socket
                .bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, source), 0)))
                .map_err(|e| fail("bind", &e))?;
            let stream = socket.connect(self.ws).await.map_err(|e| fail("connect", &e))?;
            let _ = stream.set_nodelay(true);
            let token = || {
                sign_hs256(JWT_SECRET.as_bytes(), &TokenClaims::new(user.to_owned(), expires))
                    .map_err(|e| fail("token", &e))
            };
            let bytes = Arc::new(AtomicU64::new(0));
            match self.kind {
                Kind::Ours => {
                    let mut request = format!("ws://{}/ws/portfolio", self.ws)
                        .into_client_request()
                        .map_err(|e| fail("request", &e))?;
                    let bearer =
                        HeaderValue::from_str(&format!("Bearer {}", token()?)).map_err(|e| fail("header", &e))?;
                    request.headers_mut().insert("authorization", bearer);
                    let metered = Metered { inner: stream, read: bytes.clone() };
                    let (mut ws, _) =
                        tokio_tungstenite::client_async_with_config(request, metered, Some(client_config()))
                            .await
                            .map_err(|e| fail("handshake", &e))?;
                    let mut subscribe = serde_json::json!({"type": "subscribe", "channels": ["positions", "orders", "account", "trades"]});
                    if self.deltas {
                        subscribe["deltas"] = true.into();
                    }
                    ws.send(Message::text(subscribe.to_string())).await.map_err(|e| fail("subscribe", &e))?;
                    loop {
                        match next_text(&mut ws).await {
                            Some(Ok(text)) => match serde_json::from_str::<ServerMessage>(&text) {
                                Ok(ServerMessage::Subscribed { .. }) => break,
                                Ok(ServerMessage::Error { .. }) => return Err(fail("refused", &text)),
                                Ok(_) => {}
                                Err(e) => return Err(fail("JSON", &e)),
                            },
                            Some(Err(e)) => return Err(fail("read", &e)),
                            None => return Err(fail("read", &"closed before `subscribed`")),
                        }
                    }
                    let bases = self.deltas.then(Box::default);
                    Ok(Connection { inner: Inner::Ws(Box::new(ws)), bytes, bases })
                }
                Kind::Baseline => {
                    let url = format!("ws://{}/ws?user={user}", self.ws);
                    let metered = Metered { inner: stream, read: bytes.clone() };
                    let (ws, _) = tokio_tungstenite::client_async_with_config(url, metered, Some(client_config()))
                        .await
                        .map_err(|e| fail("handshake", &e))?;
                    Ok(Connection { inner: Inner::Ws(Box::new(ws)), bytes, bases: None })
                }
                Kind::Socketio => {
                    let io = SocketIo::connect(stream, &self.ws.to_string(), &token()?)
                        .await
                        .map_err(|e| fail("socket.io connect", &e))?;
                    Ok(Connection { inner: Inner::Sio(Box::new(io)), bytes, bases: None })
                }
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(format!("{user}: not connected within {HANDSHAKE_TIMEOUT:?}")))
    }
}

/// The source address of connection `n`: 127.0.0.2, then .3, … every
/// [`PER_SOURCE_ADDRESS`] connections. Never 127.0.0.1, where the systems
/// listen: a client port taken there could collide with a port a system is
/// about to bind.
pub fn source_address(n: usize) -> Result<u8, String> {
    u8::try_from(2 + n / PER_SOURCE_ADDRESS).map_err(|_| format!("connection {n}: out of 127.0.0.x source addresses"))
}

/// Sends `request` and reads the whole answer: `Ok` on a 2xx.
pub async fn send(
    http: &HttpClient<HttpConnector, Full<Bytes>>,
    request: axum::http::Request<Full<Bytes>>,
) -> Result<(), String> {
    use http_body_util::BodyExt as _;
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

fn post(addr: SocketAddr, path: &str, body: String) -> axum::http::Request<Full<Bytes>> {
    axum::http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn signed_post(addr: SocketAddr, path: &str, body: String) -> axum::http::Request<Full<Bytes>> {
    let signature = functions::signature::sign(INGEST_SECRET, functions::signature::now_unix(), body.as_bytes());
    let mut request = post(addr, path, body);
    if let Ok(value) = HeaderValue::from_str(&signature) {
        request.headers_mut().insert(functions::signature::SIGNATURE_HEADER, value);
    }
    request
}

fn spawn(name: &'static str, mut command: tokio::process::Command, stdout: Stdio) -> Result<Process, Error> {
    let child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Tool { command: name.to_owned(), detail: e.to_string() })?;
    let pid =
        child.id().ok_or_else(|| Error::Tool { command: name.to_owned(), detail: "exited at once".to_owned() })?;
    Ok(Process { name, pid, child })
}

/// Starts a process that listens on `addr` and waits until it accepts.
async fn spawn_listening(
    name: &'static str,
    command: tokio::process::Command,
    addr: SocketAddr,
) -> Result<Process, Error> {
    let mut process = spawn(name, command, Stdio::null())?;
    let started = Instant::now();
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(process);
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(Error::Tool { command: name.to_owned(), detail: format!("exited: {status}") });
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(Error::Timeout { what: format!("{name} starting"), limit: START_TIMEOUT });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a process that prints `READY <port or address>` when it listens.
async fn spawn_ready(name: &'static str, command: tokio::process::Command) -> Result<(Process, SocketAddr), Error> {
    let mut process = spawn(name, command, Stdio::piped())?;
    let stdout = process
        .child
        .stdout
        .take()
        .ok_or_else(|| Error::Tool { command: name.to_owned(), detail: "no stdout".to_owned() })?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.trim().strip_prefix("READY ") {
                return Ok(Some(rest.trim().to_owned()));
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await
    .map_err(|_| Error::Timeout { what: format!("{name} starting"), limit: START_TIMEOUT })??;
    let ready =
        ready.ok_or_else(|| Error::Tool { command: name.to_owned(), detail: "exited before READY".to_owned() })?;
    let addr = match ready.parse::<u16>() {
        Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        Err(_) => ready
            .parse::<SocketAddr>()
            .map_err(|e| Error::Tool { command: name.to_owned(), detail: format!("READY {ready}: {e}") })?,
    };
    if !addr.ip().is_loopback() {
        return Err(Error::Tool { command: name.to_owned(), detail: format!("listens on {addr}, not loopback") });
    }
    // Keep draining its stdout so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((process, addr))
}

/// Counts the bytes read from a stream (what the client received on the
/// wire: frame headers and payloads, and the handshake).
#[derive(Debug)]
struct Metered {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[derive(Debug)]
enum Inner {
    Ws(Box<WebSocketStream<Metered>>),
    Sio(Box<SocketIo>),
}

/// One client connection to a system.
#[derive(Debug)]
pub struct Connection {
    inner: Inner,
    bytes: Arc<AtomicU64>,
    /// With field deltas: the positions and account last received, which
    /// deltas are resolved over (what a real client holds).
    bases: Option<Box<PortfolioState>>,
}

impl Connection {
    /// The next message the system delivered, decoded (deltas resolved into
    /// full messages); `None` once closed.
    pub async fn next(&mut self) -> Option<Result<ServerMessage, String>> {
        match &mut self.inner {
            Inner::Ws(ws) => {
                let text = match next_text(ws).await? {
                    Ok(text) => text,
                    Err(e) => return Some(Err(e.to_string())),
                };
                let Some(bases) = self.bases.as_mut() else {
                    return Some(serde_json::from_str(&text).map_err(|e| format!("JSON: {e}")));
                };
                let message = if DeltaMessage::is_delta(&text) {
                    serde_json::from_str::<DeltaMessage>(&text)
                        .map_err(|e| format!("JSON: {e}"))
                        .and_then(|delta| bases.resolve(delta).map_err(|e| e.to_string()))
                } else {
                    serde_json::from_str(&text).map_err(|e| format!("JSON: {e}"))
                };
                if let Ok(message) = &message {
                    remember(bases, message);
                }
                Some(message)
            }
            Inner::Sio(io) => loop {
                match io.next_event().await? {
                    Ok((name, data)) if name == "portfolio" => {
                        return Some(serde_json::from_value(data).map_err(|e| format!("JSON: {e}")));
                    }
                    Ok(_) => {}
                    Err(e) => return Some(Err(e.to_string())),
                }
            },
        }
    }
}

/// Keeps the positions and account a message carries, as the bases of
/// later deltas.
fn remember(bases: &mut PortfolioState, message: &ServerMessage) {
    let positions: &[common::event::Position] = match message {
        ServerMessage::PositionUpdate(e) => std::slice::from_ref(&e.data),
        ServerMessage::Batch(e) => &e.data.positions,
        ServerMessage::Snapshot { data, .. } => &data.positions,
        _ => &[],
    };
    for position in positions {
        bases.positions.insert(position.symbol.clone(), position.clone());
    }
    match message {
        ServerMessage::AccountUpdate(e) => bases.account = Some(e.data.clone()),
        ServerMessage::Batch(e) if e.data.account.is_some() => bases.account.clone_from(&e.data.account),
        ServerMessage::Snapshot { data, .. } => bases.account.clone_from(&data.account),
        _ => {}
    }
}

impl Connection {
    /// The next text frame our way, undecoded (ours and the baseline;
    /// `None` for Socket.IO and once closed).
    pub async fn next_text(&mut self) -> Option<Result<String, String>> {
        match &mut self.inner {
            Inner::Ws(ws) => Some(next_text(ws).await?.map_err(|e| e.to_string())),
            Inner::Sio(_) => None,
        }
    }

    /// Bytes received on the wire so far (the upgrade response, frame
    /// headers and payloads).
    pub fn bytes_received(&self) -> Option<u64> {
        match &self.inner {
            Inner::Ws(_) => Some(self.bytes.load(Ordering::Relaxed)),
            Inner::Sio(io) => Some(io.bytes_received()),
        }
    }

    /// Closes the connection (bounded).
    pub async fn close(self) {
        let closing = async {
            match self.inner {
                Inner::Ws(mut ws) => {
                    let _ = ws.as_mut().close(None).await;
                }
                Inner::Sio(io) => io.close().await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(100), closing).await;
    }
}

/// The next text frame (pings are answered by tungstenite on the way).
async fn next_text(ws: &mut WebSocketStream<Metered>) -> Option<Result<String, tokio_tungstenite::tungstenite::Error>> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return Some(Ok(text.as_str().to_owned())),
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The events and requests the bench sends, in the wire format of
/// `common`; tested to decode as our protocol's messages.
pub mod events {
    use std::sync::Arc;

    use common::event::{Account, Envelope, Event, Position, PositionSide, Symbol, Timestamp, UserId};
    use event_log::index::IngestIndex;
    use event_log::{EventLog, NewEvent};
    use rust_decimal::Decimal;

    use crate::error::Error;

    /// The order id prefix the observers look event indices up by.
    pub const ORDER_PREFIX: &str = "bench-o-";
    /// Quantity held by each seeded position.
    const SEED_QTY: i64 = 10;

    /// A signed-ready work-queue completion for order event `index`; its job
    /// id (the dedupe id) is unique per run.
    pub fn completion(run_id: i64, index: usize, user: &str) -> String {
        serde_json::json!({
            "jobId": format!("bench-j-{run_id}-{index}"),
            "userId": user,
            "orderId": format!("{ORDER_PREFIX}{index}"),
            "brokerOrderId": format!("bench-b-{index}"),
            "status": "accepted",
            "order": {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limitPrice": "175.50"},
            "submittedAt": "2026-01-03T15:29:30.000Z"
        })
        .to_string()
    }

    /// The `order_update` our gateway delivers for [`completion`].
    pub fn order_update(index: usize, user: &str, seq: u64) -> serde_json::Value {
        serde_json::json!({
            "type": "order_update",
            "seq": seq,
            "timestamp": Timestamp::now(),
            "userId": user,
            "data": {
                "orderId": format!("{ORDER_PREFIX}{index}"),
                "brokerOrderId": format!("bench-b-{index}"),
                "symbol": "AAPL", "side": "buy", "type": "limit", "status": "accepted",
                "qty": "10", "filledQty": "0", "limitPrice": "175.50",
                "submittedAt": "2026-01-03T15:29:30.000Z"
            }
        })
    }

    /// The order event index an `order_update` carries, if it is one of ours.
    pub fn order_index(order_id: &str) -> Option<usize> {
        order_id.strip_prefix(ORDER_PREFIX)?.parse().ok()
    }

    fn position(symbol: &str, price: Decimal) -> Position {
        let symbol = Symbol::new(symbol).unwrap_or_else(|_| Symbol::new("X").expect("a valid symbol"));
        // The bench's own quantities and prices: far from `Decimal`'s range.
        common::pnl::position(symbol, PositionSide::Long, Decimal::from(SEED_QTY), Decimal::from(100), price)
            .expect("bench positions value without overflow")
    }

    /// A `position_update` like the ones our price-ticks function publishes.
    pub fn position_update(symbol: &str, price: Decimal, user: &str, seq: u64) -> serde_json::Value {
        serde_json::to_value(Event::from(
            Envelope::new(
                UserId::new(user).unwrap_or_else(|_| UserId::new("x").expect("a valid user id")),
                Timestamp::now(),
                position(symbol, price),
            )
            .with_seq(seq),
        ))
        .unwrap_or_default()
    }

    /// A price-tick batch with one tick.
    pub fn tick_batch(symbol: &str, price: Decimal) -> String {
        serde_json::json!({"ticks": [{"symbol": symbol, "price": price.to_string(), "timestamp": Timestamp::now()}]})
            .to_string()
    }

    /// Gives every user in `users` a position in each of `symbols` (at
    /// price 100) and an account, and registers them as holders, as the
    /// broker webhook would have.
    pub async fn seed_holders(redis_url: &str, users: &[String], symbols: &[&str]) -> Result<(), Error> {
        let log = event_log::redis::RedisLog::connect(
            redis_url,
            event_log::LogSettings::default(),
            std::time::Duration::from_secs(30),
        )
        .await?;
        let log = Arc::new(log);
        for chunk in users.chunks(500) {
            let mut seed = Vec::with_capacity(chunk.len() * (symbols.len() + 1));
            for user in chunk {
                let user_id = UserId::new(user).map_err(|e| Error::InvalidOption(e.to_string()))?;
                for symbol in symbols {
                    let event = Event::from(Envelope::new(
                        user_id.clone(),
                        Timestamp::now(),
                        position(symbol, Decimal::from(100)),
                    ));
                    seed.push(NewEvent::new(event, format!("seed:p:{user}:{symbol}")));
                }
                let account = Account {
                    equity: Decimal::from(100_000),
                    buying_power: Decimal::from(200_000),
                    cash: Decimal::from(50_000),
                    portfolio_value: Decimal::from(100_000),
                    day_pnl: Decimal::ZERO,
                    day_pnl_percent: Decimal::ZERO,
                    timestamp: Timestamp::now(),
                };
                let event = Event::from(Envelope::new(user_id.clone(), Timestamp::now(), account));
                seed.push(NewEvent::new(event, format!("seed:a:{user}")));
            }
            for result in log.publish_many(&seed).await {
                result?;
            }
            let index: Arc<dyn IngestIndex> = log.clone();
            for user in chunk {
                let user_id = UserId::new(user).map_err(|e| Error::InvalidOption(e.to_string()))?;
                for symbol in symbols {
                    let symbol = Symbol::new(*symbol).map_err(|e| Error::InvalidOption(e.to_string()))?;
                    index.set_holding(&user_id, &symbol, true).await?;
                }
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use common::protocol::ServerMessage;

        use super::*;

        #[test]
        fn bench_events_decode_as_the_protocol_expects() {
            let order: ServerMessage = serde_json::from_value(order_update(42, "bench-000001", 3)).expect("decodes");
            let ServerMessage::OrderUpdate(envelope) = order else { panic!("{order:?}") };
            assert_eq!((order_index(&envelope.data.order_id), envelope.seq), (Some(42), Some(3)));
            let body = completion(1, 42, "bench-000007");
            let decoded: functions::completion::Completion = serde_json::from_str(&body).expect("a completion");
            assert_eq!(order_index(&decoded.order_id), Some(42));
            let tick: ServerMessage =
                serde_json::from_value(position_update("SPY", Decimal::new(10125, 2), "fanout", 0)).expect("decodes");
            assert!(matches!(tick, ServerMessage::PositionUpdate(e) if e.data.current_price == Decimal::new(10125, 2)));
        }
    }
}
