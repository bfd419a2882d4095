//! What the gateway's end-to-end tests share: the gateway started on a
//! loopback port (REST through its router with `oneshot`), tokens,
//! WebSocket helpers, and the client's view of the state to compare with
//! the server's snapshot.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use common::event::UserId;
use common::protocol::SNAPSHOT_TRADES;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use edge_gateway::{AppState, GatewayConfig};
use event_log::redis::RedisLog;
use event_log::{LogSettings, NewEvent, SharedLog};
use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use portfolio_client::PortfolioState;
use serde_json::Value;
use test_support::process::Service;
use test_support::redis::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt;

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
pub const WAIT: Duration = Duration::from_secs(5);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Gateway {
    pub addr: std::net::SocketAddr,
    /// The state that serves the sockets; REST requests go through
    /// `app(state)` with `oneshot`.
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    pub async fn start(log: SharedLog, extra: &[(&str, &str)]) -> Self {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("JWT_SECRET".into(), SECRET.into());
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let config = GatewayConfig::from_source(&vars).expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let state = AppState::new(config, log).expect("state");
        let task = tokio::spawn(edge_gateway::serve_state(listener, state.clone(), Router::new(), async {
            let _ = stopped.await;
        }));
        Gateway { addr, state, stop: Some(stop), task }
    }

    /// `GET path` through the gateway's router, with a bearer token when
    /// given: the status and the body.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Body::empty()).expect("request");
        let response = edge_gateway::app(self.state.clone()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
    }

    /// `GET path` with a JSON answer.
    pub async fn get_json(&self, path: &str, bearer: Option<&str>) -> Value {
        let (_, body) = self.get(path, bearer).await;
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON body in {body}"))
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }

    /// Its socket's URL; it listens from the start (the listener is bound
    /// before the server task runs).
    pub fn url(&self) -> String {
        format!("ws://{}/ws/portfolio", self.addr)
    }
}

pub fn token(user: &str, exp_in: i64) -> String {
    let claims = TokenClaims::new(user, chrono::Utc::now().timestamp() + exp_in);
    sign_hs256(SECRET.as_bytes(), &claims).expect("sign")
}

pub async fn connect_with(gateway: &Gateway, headers: &[(&str, String)]) -> Socket {
    let mut request = gateway.url().into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    tokio_tungstenite::connect_async(request).await.expect("connect").0
}

pub async fn connect(gateway: &Gateway, user: &str) -> Socket {
    connect_with(gateway, &[("authorization", format!("Bearer {}", token(user, 3600)))]).await
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next JSON message, or `None` on close (with its code).
pub async fn next(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON")),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Reads the socket's order updates into `seqs` until the one with seq
/// `last`, failing after `within`; the socket must stay open.
pub async fn orders_until(socket: &mut Socket, seqs: &mut Vec<u64>, last: u64, within: Duration, when: &str) {
    let deadline = tokio::time::Instant::now() + within;
    while seqs.last() != Some(&last) {
        assert!(tokio::time::Instant::now() < deadline, "{when}: {seqs:?}, want up to {last}");
        let message = next(socket).await.unwrap_or_else(|code| panic!("{when}: the socket closed ({code:?})"));
        if message["type"] == "order_update" {
            seqs.extend(message["seq"].as_u64());
        }
    }
}

/// Reads until a message of `kind` arrives, returning everything read.
pub async fn until_type(socket: &mut Socket, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next(socket).await.unwrap_or_else(|code| panic!("closed ({code:?}) before {kind}: {seen:?}"));
        let done = message["type"] == kind;
        seen.push(message);
        if done {
            return seen;
        }
    }
}

pub async fn subscribe(socket: &mut Socket, channels: &[&str]) -> Vec<Value> {
    send(socket, serde_json::json!({"type": "subscribe", "channels": channels})).await;
    until_type(socket, "subscribed").await
}

pub fn user(id: &str) -> UserId {
    UserId::new(id).expect("user id")
}

pub async fn redis_log(server: &RedisServer) -> SharedLog {
    Arc::new(RedisLog::connect(&server.url(), LogSettings::default(), Duration::from_secs(2)).await.expect("redis"))
}

pub async fn publish(log: &SharedLog, event: common::event::Event, id: &str) -> u64 {
    log.publish(&NewEvent::new(event, id)).await.expect("publish").seq()
}

/// What a client holds after the messages a socket delivered: the Rust
/// client's own merge (`PortfolioState`), compared with the server's
/// snapshot read the same way.
#[derive(Debug, Default)]
pub struct View(PortfolioState);

/// The state, not the epoch: a view built from a resume's batch alone never
/// saw one (tests of the epoch check it directly).
impl PartialEq for View {
    fn eq(&self, other: &View) -> bool {
        let content = |v: &View| (v.seq, v.positions.clone(), v.orders.clone(), v.account.clone(), v.trades.clone());
        content(self) == content(other)
    }
}

impl View {
    pub fn apply(&mut self, message: &Value) {
        let message = serde_json::from_value(message.clone()).expect("a server message");
        self.0.apply(message, SNAPSHOT_TRADES);
    }

    pub async fn of_server(log: &SharedLog, user: &UserId) -> View {
        View(PortfolioState::from(log.snapshot(user).await.expect("snapshot")))
    }
}

impl std::ops::Deref for View {
    type Target = PortfolioState;

    fn deref(&self) -> &PortfolioState {
        &self.0
    }
}

/// Reads messages into `view` until it reaches `seq`.
pub async fn read_until_seq(socket: &mut Socket, view: &mut View, seq: u64) {
    while view.seq < seq {
        let message = next(socket).await.unwrap_or_else(|code| panic!("closed ({code:?}) at seq {}", view.seq));
        view.apply(&message);
    }
}

/// The gateway binary, as a child process with only the environment given.
pub struct GatewayProcess {
    pub process: Service,
    pub addr: std::net::SocketAddr,
}

impl GatewayProcess {
    pub fn spawn(redis_url: &str, extra: &[(&str, &str)]) -> Self {
        Self::spawn_on(std::net::SocketAddr::from(([127, 0, 0, 1], test_support::net::free_port())), redis_url, extra)
    }

    pub fn spawn_on(addr: std::net::SocketAddr, redis_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut env: std::collections::BTreeMap<String, String> = [
            ("GATEWAY_ADDR", addr.to_string()),
            ("REDIS_URL", redis_url.to_owned()),
            ("JWT_SECRET", SECRET.to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let logs = std::env::temp_dir().join(format!("ps-gateway-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(&logs).expect("create the log directory");
        let process = Service::spawn("gateway", std::path::Path::new(env!("CARGO_BIN_EXE_edge-gateway")), &env, &logs);
        Self { process, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws/portfolio", self.addr)
    }

    /// Waits until the process accepts TCP connections on its address.
    pub async fn listening(&self) {
        let addr = self.addr;
        test_support::wait::until("the gateway to listen", Duration::from_secs(15), || async move {
            TcpStream::connect(addr).await.ok()
        })
        .await;
    }
}

pub async fn connect_url(url: &str, user: &str) -> Option<Socket> {
    let mut request = url.into_client_request().ok()?;
    request.headers_mut().insert("authorization", format!("Bearer {}", token(user, 3600)).parse().ok()?);
    tokio_tungstenite::connect_async(request).await.ok().map(|(socket, _)| socket)
}
