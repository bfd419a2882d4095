//! End-to-end tests of the gateway: a real redis-server, the real gateway on
//! a loopback port, real WebSocket clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::auth::{sign_hs256, TokenClaims};
use common::event::{OrderStatus, UserId};
use common::log::conformance;
use common::log::redis::RedisLog;
use common::log::{LogSettings, NewEvent, SharedLog};
use edge_gateway::GatewayConfig;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use test_support::redis::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
const WAIT: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Gateway {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    async fn start(log: SharedLog, extra: &[(&str, &str)]) -> Self {
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

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }

    fn url(&self) -> String {
        format!("ws://{}/ws/portfolio", self.addr)
    }
}

fn token(user: &str, exp_in: i64) -> String {
    let claims = TokenClaims::new(user, chrono::Utc::now().timestamp() + exp_in);
    sign_hs256(SECRET.as_bytes(), &claims).expect("sign")
}

async fn connect_with(gateway: &Gateway, headers: &[(&str, String)]) -> Socket {
    let mut request = gateway.url().into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    tokio_tungstenite::connect_async(request).await.expect("connect").0
}

async fn connect(gateway: &Gateway, user: &str) -> Socket {
    connect_with(gateway, &[("authorization", format!("Bearer {}", token(user, 3600)))]).await
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next JSON message, or `None` on close (with its code).
async fn next(socket: &mut Socket) -> Result<Value, Option<u16>> {
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
async fn until_type(socket: &mut Socket, kind: &str) -> Vec<Value> {
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

async fn subscribe(socket: &mut Socket, channels: &[&str]) -> Vec<Value> {
    send(socket, serde_json::json!({"type": "subscribe", "channels": channels})).await;
    until_type(socket, "subscribed").await
}

fn user(id: &str) -> UserId {
    UserId::new(id).expect("user id")
}

async fn redis_log(server: &RedisServer) -> SharedLog {
    Arc::new(RedisLog::connect(&server.url(), LogSettings::default(), Duration::from_secs(2)).await.expect("redis"))
}

async fn publish(log: &SharedLog, event: common::event::Event, id: &str) -> u64 {
    log.publish(&NewEvent::new(event, id)).await.expect("publish").seq()
}

/// A client-side view built from what the socket delivered, to compare with
/// the server's snapshot.
#[derive(Debug, Default, PartialEq)]
struct View {
    seq: u64,
    positions: BTreeMap<String, Value>,
    orders: BTreeMap<String, Value>,
    account: Option<Value>,
}

impl View {
    fn apply(&mut self, message: &Value) {
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

    fn apply_data(&mut self, data: &Value) {
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

    fn position(&mut self, p: &Value) {
        let symbol = p["symbol"].as_str().unwrap_or_default().to_owned();
        if p["quantity"] == "0" {
            self.positions.remove(&symbol);
        } else {
            self.positions.insert(symbol, p.clone());
        }
    }

    fn order(&mut self, o: &Value) {
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

    async fn of_server(log: &SharedLog, user: &UserId) -> View {
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
async fn read_until_seq(socket: &mut Socket, view: &mut View, seq: u64) {
    while view.seq < seq {
        let message = next(socket).await.unwrap_or_else(|code| panic!("closed ({code:?}) at seq {}", view.seq));
        view.apply(&message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_update_reaches_the_socket_fast_and_only_its_user() {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut alice = connect(&gateway, "alice").await;
    let mut bob = connect(&gateway, "bob").await;
    let first = subscribe(&mut alice, &["positions", "orders", "account", "trades"]).await;
    assert_eq!(first[0]["type"], "snapshot", "a subscribe without since starts with the snapshot");
    subscribe(&mut bob, &["positions", "orders", "account", "trades"]).await;

    let started = std::time::Instant::now();
    publish(&log, conformance::order(&user("alice"), "o-1", OrderStatus::Accepted), "o-1").await;
    let message = next(&mut alice).await.expect("order update");
    let latency = started.elapsed();
    assert_eq!(message["type"], "order_update");
    assert_eq!(message["data"]["orderId"], "o-1");
    assert_eq!(message["seq"], 1);
    assert!(latency < Duration::from_millis(500), "took {latency:?}");

    // Bob's next message is his own marker: nothing of Alice's came before it.
    publish(&log, conformance::trade(&user("alice"), "t-1"), "t-1").await;
    publish(&log, conformance::account(&user("bob"), 7), "marker").await;
    let bobs = next(&mut bob).await.expect("bob's marker");
    assert_eq!((bobs["type"].as_str(), bobs["userId"].as_str()), (Some("account_update"), Some("bob")));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_close_1008_with_a_reason() {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let gateway = Gateway::start(log.clone(), &[("ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let wrong_key =
        sign_hs256(b"another-secret-another-secret-xx!", &TokenClaims::new("alice", i64::MAX / 2)).expect("sign");
    let alg_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        ("expired", vec![("authorization", format!("Bearer {}", token("alice", -3600)))]),
        ("wrong key", vec![("authorization", format!("Bearer {wrong_key}"))]),
        ("alg none", vec![("authorization", format!("Bearer {alg_none}"))]),
        (
            "bad origin",
            vec![
                ("authorization", format!("Bearer {}", token("alice", 3600))),
                ("origin", "https://evil.example.com".to_owned()),
            ],
        ),
    ];
    for (case, headers) in cases {
        let mut socket = connect_with(&gateway, &headers).await;
        assert_eq!(next(&mut socket).await, Err(Some(1008)), "{case}");
    }
    // Cookie auth and an allowed origin work.
    let mut socket = connect_with(
        &gateway,
        &[
            ("cookie", format!("theme=dark; session={}", token("alice", 3600))),
            ("origin", "https://app.example.com".into()),
        ],
    )
    .await;
    subscribe(&mut socket, &["orders"]).await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_while_connected_closes_the_socket() {
    let log: SharedLog = Arc::new(common::log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log, &[("JWT_LEEWAY_SECS", "0")]).await;
    let mut socket = connect_with(&gateway, &[("authorization", format!("Bearer {}", token("alice", 2)))]).await;
    subscribe(&mut socket, &["orders"]).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(code) = next(&mut socket).await {
                return code;
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, Some(1008));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_only_receives_its_channels() {
    let log: SharedLog = Arc::new(common::log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut socket = connect(&gateway, "carol").await;
    subscribe(&mut socket, &["orders"]).await;
    let carol = user("carol");
    for i in 0..5 {
        publish(&log, conformance::position(&carol, "AAPL", 10 + i, 10_000 + 1_000 * i), &format!("p-{i}")).await;
    }
    publish(&log, conformance::order(&carol, "o-1", OrderStatus::New), "o-1").await;
    let message = next(&mut socket).await.expect("the order");
    assert_eq!(message["type"], "order_update", "no position message may come first: {message}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_within_a_window_arrive_as_leading_edge_plus_one_batch() {
    let log: SharedLog = Arc::new(common::log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[("THROTTLE_WINDOW_MS", "1000")]).await;
    let mut socket = connect(&gateway, "dave").await;
    subscribe(&mut socket, &["positions", "orders"]).await;
    let dave = user("dave");
    let symbols = ["AAPL", "MSFT", "NVDA"];
    let mut seq = 0;
    for i in 0..50 {
        seq =
            publish(&log, conformance::position(&dave, symbols[i % 3], 100, 10_000 + 500 * i as i64), &format!("p{i}"))
                .await;
    }
    let leading = next(&mut socket).await.expect("leading edge");
    assert_eq!((leading["type"].as_str(), leading["seq"].as_u64()), (Some("position_update"), Some(1)));
    let batch = next(&mut socket).await.expect("batch");
    assert_eq!(batch["type"], "batch");
    assert_eq!(batch["seq"], seq);
    let prices: Vec<_> =
        batch["data"]["positions"].as_array().expect("positions").iter().map(|p| p["symbol"].clone()).collect();
    assert_eq!(prices.len(), 3);
    assert_eq!(batch["data"]["positions"][0]["currentPrice"], "340.00"); // AAPL, tick 48
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_catches_up_or_falls_back_to_a_snapshot() {
    let server = RedisServer::start();
    let log: SharedLog = Arc::new(
        RedisLog::connect(
            &server.url(),
            LogSettings { stream_maxlen: 100, ..LogSettings::default() },
            Duration::from_secs(2),
        )
        .await
        .expect("redis"),
    );
    let gateway = Gateway::start(log.clone(), &[]).await;
    let erin = user("erin");
    let all = ["positions", "orders", "account", "trades"];
    let mut socket = connect(&gateway, "erin").await;
    let mut view = View::default();
    for message in subscribe(&mut socket, &all).await {
        view.apply(&message);
    }
    let epoch = {
        publish(&log, conformance::account(&erin, 1), "a-0").await;
        read_until_seq(&mut socket, &mut view, 1).await;
        log.snapshot(&erin).await.expect("snapshot").epoch.expect("epoch")
    };
    socket.close(None).await.expect("close");

    // 20 events while away, then resume: exactly the missing changes.
    for i in 0..20 {
        let event = match i % 3 {
            0 => conformance::position(&erin, ["AAPL", "MSFT"][i % 2], 5 + i as i64, 10_000 + 100 * i as i64),
            1 => conformance::order(&erin, &format!("o-{}", i % 4), OrderStatus::Accepted),
            _ => conformance::account(&erin, 100 + i as i64),
        };
        publish(&log, event, &format!("away-{i}")).await;
    }
    let mut socket = connect(&gateway, "erin").await;
    send(&mut socket, serde_json::json!({"type": "subscribe", "channels": all, "since": view.seq, "epoch": epoch}))
        .await;
    let replies = until_type(&mut socket, "subscribed").await;
    assert!(replies.iter().all(|m| m["type"] != "snapshot"), "a catch-up, not a snapshot: {replies:?}");
    for message in &replies {
        view.apply(message);
    }
    assert_eq!(view, View::of_server(&log, &erin).await);
    socket.close(None).await.expect("close");

    // History trimmed past `since`: a snapshot.
    for i in 0..500 {
        publish(&log, conformance::account(&erin, i), &format!("bulk-{i}")).await;
    }
    let mut socket = connect(&gateway, "erin").await;
    send(&mut socket, serde_json::json!({"type": "subscribe", "channels": all, "since": 2, "epoch": epoch})).await;
    let replies = until_type(&mut socket, "subscribed").await;
    assert_eq!(replies[0]["type"], "snapshot");

    // A different epoch: a snapshot.
    let mut again = connect(&gateway, "erin").await;
    send(
        &mut again,
        serde_json::json!({"type": "subscribe", "channels": all, "since": 2, "epoch": "0000000000000000"}),
    )
    .await;
    assert_eq!(until_type(&mut again, "subscribed").await[0]["type"], "snapshot");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pubsub_connection_loses_nothing() {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let gateway = Gateway::start(log.clone(), &[("THROTTLE_WINDOW_MS", "50"), ("DIFF_THRESHOLD", "0")]).await;
    let frank = user("frank");
    let mut socket = connect(&gateway, "frank").await;
    let mut view = View::default();
    for message in subscribe(&mut socket, &["positions", "orders", "account", "trades"]).await {
        view.apply(&message);
    }
    let publisher = {
        let log = log.clone();
        let frank = frank.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..300 {
                let event = if i % 2 == 0 {
                    conformance::position(&frank, ["AAPL", "MSFT", "NVDA"][i % 3], 1 + i as i64, 10_000 + i as i64)
                } else {
                    conformance::account(&frank, i as i64)
                };
                last = publish(&log, event, &format!("e-{i}")).await;
                tokio::task::yield_now().await;
            }
            last
        })
    };
    for _ in 0..3 {
        server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).expect("CLIENT KILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = publisher.await.expect("publisher");
    read_until_seq(&mut socket, &mut view, last).await;
    assert_eq!(view, View::of_server(&log, &frank).await);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_both_deliver_every_event() {
    let server = RedisServer::start();
    let (log_a, log_b) = (redis_log(&server).await, redis_log(&server).await);
    let a = Gateway::start(log_a.clone(), &[("DIFF_THRESHOLD", "0")]).await;
    let b = Gateway::start(log_b, &[("DIFF_THRESHOLD", "0")]).await;
    let gina = user("gina");
    let (mut on_a, mut on_b) = (connect(&a, "gina").await, connect(&b, "gina").await);
    let (mut view_a, mut view_b) = (View::default(), View::default());
    for m in subscribe(&mut on_a, &["positions", "orders", "account", "trades"]).await {
        view_a.apply(&m);
    }
    for m in subscribe(&mut on_b, &["positions", "orders", "account", "trades"]).await {
        view_b.apply(&m);
    }
    let mut last = 0;
    for i in 0..40 {
        last = publish(&log_a, conformance::order(&gina, &format!("o-{i}"), OrderStatus::New), &format!("o-{i}")).await;
    }
    let mut seqs_b = Vec::new();
    while view_b.seq < last {
        let m = next(&mut on_b).await.expect("message on b");
        if m["type"] == "order_update" {
            seqs_b.push(m["seq"].as_u64().expect("seq"));
        }
        view_b.apply(&m);
    }
    read_until_seq(&mut on_a, &mut view_a, last).await;
    assert_eq!(seqs_b, (1..=last).collect::<Vec<_>>(), "every order, in order");
    assert_eq!(view_a, view_b);
    assert_eq!(view_a, View::of_server(&log_a, &gina).await);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn health_and_rest_snapshot() {
    let log: SharedLog = Arc::new(common::log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[("ENABLE_REALTIME_PORTFOLIO", "false")]).await;
    publish(&log, conformance::account(&user("hank"), 42), "a").await;
    let health = http_get(gateway.addr, "/api/health", None).await;
    assert_eq!(health["features"]["realtimePortfolio"], false);
    let portfolio = http_get(gateway.addr, "/api/portfolio", Some(&token("hank", 60))).await;
    assert_eq!((portfolio["seq"].as_u64(), portfolio["account"]["cash"].as_str()), (Some(1), Some("0.42")));
    // Flag off: the socket closes 1013.
    let mut socket = connect(&gateway, "hank").await;
    assert_eq!(next(&mut socket).await, Err(Some(1013)));
    gateway.stop().await;
}

/// A minimal HTTP/1.1 GET over a raw socket (keeps the test dependencies small).
async fn http_get(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body in {response}"))
}
