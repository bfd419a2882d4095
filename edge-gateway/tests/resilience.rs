//! End-to-end tests of the gateway's protection: connection limits across
//! instances (Redis leases), capacity, heartbeat, inbound floods, slow
//! consumers, the rollout flag and graceful shutdown.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use event_log::memory::MemoryLog;
use event_log::{LogSettings, SharedLog};
use futures::{SinkExt, StreamExt};
use harness::*;
use test_support::process::rss_kib;
use test_support::redis::RedisServer;
use test_support::wait;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn memory_log() -> SharedLog {
    Arc::new(MemoryLog::new(LogSettings::default()))
}

/// Reads until the socket closes; returns the close code.
async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match next(socket).await {
            Ok(_) => continue,
            Err(code) => return code,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_user_limit_holds_across_gateways() {
    let server = RedisServer::start();
    let a = Gateway::start(redis_log(&server).await, &[]).await;
    let b = Gateway::start(redis_log(&server).await, &[]).await;
    let mut held = Vec::new();
    for i in 0..5 {
        let gateway = if i < 3 { &a } else { &b };
        let mut socket = connect(gateway, "ivy").await;
        subscribe(&mut socket, &["orders"]).await;
        held.push(socket);
    }
    for gateway in [&a, &b] {
        let mut sixth = connect(gateway, "ivy").await;
        assert_eq!(close_code(&mut sixth).await, Some(1008));
    }
    // Another user is not affected.
    let mut other = connect(&a, "jack").await;
    subscribe(&mut other, &["orders"]).await;
    // Closing one frees a slot.
    held.pop().expect("a socket").close(None).await.expect("close");
    wait::until("a freed slot", WAIT, || async {
        let mut socket = connect(&a, "ivy").await;
        send(&mut socket, serde_json::json!({"type": "subscribe", "channels": ["orders"]})).await;
        next(&mut socket).await.ok()
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_reached_closes_1013() {
    let gateway = Gateway::start(memory_log(), &[("MAX_CONNECTIONS", "2")]).await;
    let mut first = connect(&gateway, "k1").await;
    let mut second = connect(&gateway, "k2").await;
    subscribe(&mut first, &["orders"]).await;
    subscribe(&mut second, &["orders"]).await;
    let mut third = connect(&gateway, "k3").await;
    assert_eq!(close_code(&mut third).await, Some(1013));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_is_closed() {
    let gateway =
        Gateway::start(memory_log(), &[("HEARTBEAT_INTERVAL_MS", "100"), ("HEARTBEAT_TIMEOUT_MS", "400")]).await;
    let mut socket = connect(&gateway, "lena").await;
    subscribe(&mut socket, &["orders"]).await;
    // Without the WebSocket library on top, nobody answers the pings: read
    // the raw bytes until the gateway hangs up, and find its close frame.
    let tokio_tungstenite::MaybeTlsStream::Plain(mut stream) = socket.into_inner() else { panic!("plain TCP") };
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut raw))
        .await
        .expect("the gateway hung up in time")
        .expect("read");
    assert_eq!(raw_close_code(&raw), Some(1001));
    gateway.stop().await;
}

/// The code of the first close frame in raw server-to-client bytes
/// (server frames are unmasked).
fn raw_close_code(mut bytes: &[u8]) -> Option<u16> {
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])), 4),
            127 => return None,
            n => (usize::from(n), 2),
        };
        let payload = bytes.get(header..header + len)?;
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
        }
        bytes = &bytes[header + len..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_gets_the_expected_answers_and_others_stay_served() {
    let log = memory_log();
    let gateway = Gateway::start(log.clone(), &[("MAX_MESSAGE_BYTES", "1024")]).await;
    let mut bystander = connect(&gateway, "bystander").await;
    subscribe(&mut bystander, &["orders"]).await;

    let mut socket = connect(&gateway, "mallory").await;
    socket.send(Message::text("{not json")).await.expect("send");
    assert_eq!(next(&mut socket).await.expect("error")["code"], "invalid_json");
    socket.send(Message::text(r#"{"type":"teleport"}"#)).await.expect("send");
    assert_eq!(next(&mut socket).await.expect("error")["code"], "unknown_type");
    socket.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(next(&mut socket).await.expect("error")["code"], "binary_not_supported");
    // Oversized frame: 1009.
    socket.send(Message::text("x".repeat(4096))).await.expect("send");
    assert_eq!(close_code(&mut socket).await, Some(1009));

    // Flood: more than 100 messages in a second.
    let mut flooder = connect(&gateway, "flooder").await;
    for _ in 0..150 {
        if flooder.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut flooder).await, Some(1008));

    // Repeated invalid messages: 1008.
    let mut spammer = connect(&gateway, "spammer").await;
    for _ in 0..12 {
        if spammer.send(Message::text("nope")).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut spammer).await, Some(1008));

    // The bystander never noticed.
    publish(&log, conformance::order(&user("bystander"), "o-1", OrderStatus::New), "o-1").await;
    assert_eq!(next(&mut bystander).await.expect("order")["type"], "order_update");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_dropped_without_hurting_others_and_resumes() {
    let log = memory_log();
    let gateway = Gateway::start(
        log.clone(),
        &[("SEND_QUEUE", "8"), ("HEARTBEAT_TIMEOUT_MS", "1000"), ("HEARTBEAT_INTERVAL_MS", "200")],
    )
    .await;
    // A client with a tiny receive buffer that stops reading.
    let (mut stalled, replies) = stalled_reader(gateway.addr, &gateway.url(), "stalled").await;
    let mut view = View::default();
    for message in &replies {
        view.apply(message);
    }

    let mut healthy = connect(&gateway, "healthy").await;
    subscribe(&mut healthy, &["orders"]).await;
    let stalled_user = user("stalled");
    let healthy_user = user("healthy");
    let mut worst = Duration::ZERO;
    for i in 0..2_000 {
        let big = conformance::order(&stalled_user, &format!("o-{}", i % 50), OrderStatus::Accepted);
        publish(&log, big, &format!("s-{i}")).await;
        if i % 100 == 0 {
            let started = std::time::Instant::now();
            publish(&log, conformance::order(&healthy_user, &format!("h-{i}"), OrderStatus::New), &format!("h-{i}"))
                .await;
            let message = next(&mut healthy).await.expect("healthy user's order");
            assert_eq!(message["data"]["orderId"], format!("h-{i}"));
            worst = worst.max(started.elapsed());
        }
    }
    assert!(worst < Duration::from_millis(500), "the healthy user waited {worst:?}");

    // The stalled client is eventually cut off; whatever it reads ends in a close.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Text(text))) => view.apply(&serde_json::from_str(&text).expect("json")),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled connection was never closed");

    // Resuming from its seq brings it to the server's state.
    let mut resumed = connect(&gateway, "stalled").await;
    send(&mut resumed, serde_json::json!({"type": "subscribe", "channels": ["orders"], "since": view.seq})).await;
    for message in until_type(&mut resumed, "subscribed").await {
        view.apply(&message);
    }
    let server = View::of_server(&log, &stalled_user).await;
    assert_eq!(view.orders, server.orders);
    gateway.stop().await;
}

/// A socket with a 4 KiB receive buffer, subscribed to `orders`, that the
/// test then stops reading; with the replies up to `subscribed`.
async fn stalled_reader(
    addr: std::net::SocketAddr,
    url: &str,
    user: &str,
) -> (tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, Vec<serde_json::Value>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer");
    let stream = socket.connect(addr).await.expect("connect");
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("authorization", format!("Bearer {}", token(user, 3600)).parse().expect("hdr"));
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.expect("handshake");
    let subscribe_message = serde_json::json!({"type": "subscribe", "channels": ["orders"]}).to_string();
    socket.send(Message::text(subscribe_message)).await.expect("send");
    let replies = until_type_plain(&mut socket, "subscribed").await;
    (socket, replies)
}

/// Like `until_type`, for a socket over a custom stream.
async fn until_type_plain(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    kind: &str,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("in time");
        if let Some(Ok(Message::Text(text))) = frame {
            let message: serde_json::Value = serde_json::from_str(&text).expect("json");
            let done = message["type"] == kind;
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_decides_who_gets_the_socket() {
    let gateway = Gateway::start(
        memory_log(),
        &[("ENABLE_REALTIME_PORTFOLIO", "false"), ("ROLLOUT_USERS", "qa-1"), ("ROLLOUT_PERCENT", "0")],
    )
    .await;
    let mut qa = connect(&gateway, "qa-1").await;
    subscribe(&mut qa, &["orders"]).await;
    let mut other = connect(&gateway, "customer-9").await;
    assert_eq!(close_code(&mut other).await, Some(1013));
    let for_qa = gateway.get_json("/api/health", Some(&token("qa-1", 60))).await;
    assert_eq!(for_qa["features"]["realtimePortfolio"], true);
    let for_other = gateway.get_json("/api/health", Some(&token("customer-9", 60))).await;
    assert_eq!(for_other["features"]["realtimePortfolio"], false);
    let anonymous = gateway.get_json("/api/health", None).await;
    assert_eq!(anonymous["features"]["realtimePortfolio"], false);
    // The REST snapshot keeps working for everyone.
    let portfolio = gateway.get_json("/api/portfolio", Some(&token("customer-9", 60))).await;
    assert_eq!(portfolio["seq"], 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_percentage_is_a_stable_share_of_users() {
    use edge_gateway::config::bucket;
    let users: Vec<_> = (0..10_000).map(|i| user(&format!("user-{i}"))).collect();
    let in_ten = users.iter().filter(|u| bucket(u) < 10).count();
    assert!((800..1_200).contains(&in_ten), "{in_ten} of 10000 in a 10 % rollout");
    // Growing the percentage only adds users.
    assert!(users.iter().filter(|u| bucket(u) < 10).all(|u| bucket(u) < 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket_with_1012_and_releases_leases() {
    let server = RedisServer::start();
    let gateway = Gateway::start(redis_log(&server).await, &[]).await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut socket = connect(&gateway, "mona").await;
        subscribe(&mut socket, &["orders"]).await;
        sockets.push(socket);
    }
    gateway.stop().await;
    for socket in &mut sockets {
        assert_eq!(close_code(socket).await, Some(1012));
    }
    // Leases were given back: a new gateway admits five at once.
    let next_gateway = Gateway::start(redis_log(&server).await, &[]).await;
    for _ in 0..5 {
        let mut socket = connect(&next_gateway, "mona").await;
        subscribe(&mut socket, &["orders"]).await;
        sockets.push(socket);
    }
    next_gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_a_killed_gateway_expire() {
    let server = RedisServer::start();
    let mut crashed = GatewayProcess::spawn(&server.url(), &[("LEASE_TTL_SECS", "2")]);
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let url = crashed.url();
        let socket = wait::until("the gateway to accept", WAIT, || {
            let url = url.clone();
            async move { connect_url(&url, "nina").await }
        })
        .await;
        sockets.push(socket);
    }
    // Subscribed means admitted (a refused socket closes before that).
    for socket in &mut sockets {
        subscribe(socket, &["orders"]).await;
    }
    crashed.process.kill();

    let survivor = Gateway::start(redis_log(&server).await, &[]).await;
    let mut sixth = connect(&survivor, "nina").await;
    assert_eq!(close_code(&mut sixth).await, Some(1008), "the dead gateway's leases still count at first");
    let mut fresh = Vec::new();
    for _ in 0..5 {
        let socket = wait::until("the dead leases to expire", Duration::from_secs(60), || async {
            let mut socket = connect(&survivor, "nina").await;
            send(&mut socket, serde_json::json!({"type": "subscribe", "channels": ["orders"]})).await;
            match next(&mut socket).await {
                Ok(_) => Some(socket),
                Err(_) => None,
            }
        })
        .await;
        fresh.push(socket);
    }
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_recover_from_a_killed_gateway_without_losing_an_event() {
    use portfolio_client::{Client, ClientConfig, Credentials, PortfolioState, Status};

    let server = RedisServer::start();
    let producer = redis_log(&server).await;
    let sam = user("sam");
    let exact = [("THROTTLE_WINDOW_MS", "50"), ("DIFF_THRESHOLD", "0")];
    let mut gateway = GatewayProcess::spawn(&server.url(), &exact);
    let url = format!("http://{}", gateway.addr);
    // The note's backoff (1 s base, 30 s cap, up to 1 s jitter).
    let config = ClientConfig::new(&url, Credentials::Bearer(token("sam", 3600))).expect("config");
    let client = Client::connect(config).expect("client");
    client.wait_for_status(Duration::from_secs(15), |s| s == Status::Live).await.expect("live");
    let seq = publish(&producer, conformance::order(&sam, "o-1", OrderStatus::New), "o-1").await;
    client.wait_for(WAIT, |s| s.seq >= seq).await.expect("first order");

    gateway.process.kill();
    let mut last = 0;
    for i in 0..20i64 {
        let event = match i % 2 {
            0 => conformance::trade(&sam, &format!("t-{i}")),
            _ => conformance::position(&sam, "AAPL", 1 + i, 10_000 + i),
        };
        last = publish(&producer, event, &format!("away-{i}")).await;
    }
    let addr = gateway.addr;
    let restarted = GatewayProcess::spawn_on(addr, &server.url(), &exact);
    restarted.listening().await;
    let listening = std::time::Instant::now();
    let state = client.wait_for(Duration::from_secs(5), |s| s.seq >= last).await.expect("caught up within 5 s");
    client.wait_for_status(Duration::from_secs(5), |s| s == Status::Live).await.expect("live again");
    assert!(listening.elapsed() <= Duration::from_secs(5), "took {:?}", listening.elapsed());
    assert_eq!(state, PortfolioState::from(producer.snapshot(&sam).await.expect("snapshot")));
    client.close().await;
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_grow_the_gateway_process() {
    let server = RedisServer::start();
    let producer = redis_log(&server).await;
    let gateway = GatewayProcess::spawn(
        &server.url(),
        &[("SEND_QUEUE", "8"), ("HEARTBEAT_TIMEOUT_MS", "2000"), ("HEARTBEAT_INTERVAL_MS", "500")],
    );
    let url = format!("ws://{}/ws/portfolio", gateway.addr);
    gateway.listening().await;

    // A reader that stops reading, with a tiny receive buffer.
    let (stalled, _) = stalled_reader(gateway.addr, &url, "stuck").await;
    let mut healthy = connect_url(&url, "fine").await.expect("connect");
    subscribe(&mut healthy, &["orders"]).await;

    let before = rss_kib(gateway.process.pid()).expect("gateway RSS");
    let (stuck, fine) = (user("stuck"), user("fine"));
    let mut worst = Duration::ZERO;
    // Published in pipelined batches: 40,000 messages of ~400 bytes (16 MB)
    // aimed at the stalled socket.
    for chunk in 0..80 {
        let events: Vec<_> = (0..500)
            .map(|j| {
                let i = chunk * 500 + j;
                let event = conformance::order(&stuck, &format!("o-{}", i % 50), OrderStatus::Accepted);
                event_log::NewEvent::new(event, format!("s-{i}"))
            })
            .collect();
        for result in producer.publish_many(&events).await {
            result.expect("publish");
        }
        let i = chunk * 500;
        if chunk % 2 == 0 {
            let started = std::time::Instant::now();
            publish(&producer, conformance::order(&fine, &format!("h-{i}"), OrderStatus::New), &format!("h-{i}")).await;
            let message = next(&mut healthy).await.expect("the healthy user's order");
            assert_eq!(message["data"]["orderId"], format!("h-{i}"));
            worst = worst.max(started.elapsed());
        }
    }
    let after = rss_kib(gateway.process.pid()).expect("gateway RSS");
    eprintln!("gateway RSS {before} KiB -> {after} KiB; healthy user's worst latency {worst:?}");
    assert!(worst < Duration::from_millis(500), "the healthy user waited {worst:?}");
    // Its queue holds 8 messages, so the gateway must not have kept the
    // 16 MB. (With an unbounded queue this grows by several MB.)
    assert!(after.saturating_sub(before) < 2 * 1024, "gateway RSS grew from {before} KiB to {after} KiB");
    drop(stalled);
}
