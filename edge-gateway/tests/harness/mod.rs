//! What the gateway's end-to-end tests share: the gateway started on a
//! loopback port, tokens, WebSocket helpers, and a client-side view of the
//! state to compare with the server's snapshot.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::event::UserId;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use edge_gateway::GatewayConfig;
use event_log::redis::RedisLog;
use event_log::{LogSettings, NewEvent, SharedLog};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use test_support::redis::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
pub const WAIT: Duration = Duration::from_secs(5);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Gateway {
    pub addr: std::net::SocketAddr,
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
        let task = tokio::spawn(edge_gateway::run(listener, config, log, async {
            let _ = stopped.await;
        }));
        Gateway { addr, stop: Some(stop), task }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }

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

/// A client-side view built from what the socket delivered, to compare with
/// the server's snapshot.
#[derive(Debug, Default, PartialEq)]
pub struct View {
    pub seq: u64,
    pub positions: BTreeMap<String, Value>,
    pub orders: BTreeMap<String, Value>,
    pub account: Option<Value>,
}

impl View {
    pub fn apply(&mut self, message: &Value) {
        if let Some(seq) = message["seq"].as_u64() {
            self.seq = self.seq.max(seq);
        }
        match message["type"].as_str() {
            Some("snapshot") => {
                *self = View { seq: self.seq, ..View::default() };
                self.apply_data(&message["data"]);
            }
            Some("batch") => self.apply_data(&message["data"]),
            Some("position_update") => self.position(&message["data"]),
            Some("order_update") => self.order(&message["data"]),
            Some("account_update") => self.account = Some(message["data"].clone()),
            _ => {}
        }
    }

    pub fn apply_data(&mut self, data: &Value) {
        for p in data["positions"].as_array().into_iter().flatten() {
            self.position(p);
        }
        for o in data["orders"].as_array().into_iter().flatten() {
            self.order(o);
        }
        if !data["account"].is_null() {
            self.account = Some(data["account"].clone());
        }
    }

    pub fn position(&mut self, p: &Value) {
        let symbol = p["symbol"].as_str().unwrap_or_default().to_owned();
        if p["quantity"] == "0" {
            self.positions.remove(&symbol);
        } else {
            self.positions.insert(symbol, p.clone());
        }
    }

    pub fn order(&mut self, o: &Value) {
        let id = o["orderId"].as_str().unwrap_or_default().to_owned();
        let closed = matches!(
            o["status"].as_str(),
            Some("filled" | "canceled" | "expired" | "replaced" | "rejected" | "failed")
        );
        if closed {
            self.orders.remove(&id);
        } else {
            self.orders.insert(id, o.clone());
        }
    }

    pub async fn of_server(log: &SharedLog, user: &UserId) -> View {
        let snapshot = log.snapshot(user).await.expect("snapshot");
        let mut view = View { seq: snapshot.seq, ..View::default() };
        for p in &snapshot.positions {
            view.position(&serde_json::to_value(p).expect("json"));
        }
        for o in &snapshot.orders {
            view.order(&serde_json::to_value(o).expect("json"));
        }
        view.account = snapshot.account.as_ref().map(|a| serde_json::to_value(a).expect("json"));
        view
    }
}

/// Reads messages into `view` until it reaches `seq`.
pub async fn read_until_seq(socket: &mut Socket, view: &mut View, seq: u64) {
    while view.seq < seq {
        let message = next(socket).await.unwrap_or_else(|code| panic!("closed ({code:?}) at seq {}", view.seq));
        view.apply(&message);
    }
}

/// A minimal HTTP/1.1 GET over a raw socket: the status and the body.
pub async fn http_get_status(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// GET a JSON body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> Value {
    let (_, body) = http_get_status(addr, path, bearer).await;
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON body in {body}"))
}

/// GET a text body.
pub async fn http_get_text(addr: std::net::SocketAddr, path: &str) -> String {
    http_get_status(addr, path, None).await.1
}
