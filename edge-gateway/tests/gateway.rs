//! End-to-end tests of the gateway: a real redis-server, the real gateway on
//! a loopback port, real WebSocket clients.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::event::OrderStatus;
use common::fixtures as conformance;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use event_log::redis::RedisLog;
use event_log::{LogSettings, SharedLog};
use harness::*;
use test_support::redis::RedisServer;

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

/// Reads until the socket closes: the close code and when it came.
async fn closed(socket: &mut Socket) -> (Option<u16>, std::time::Instant) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(code) = next(socket).await {
                return (code, std::time::Instant::now());
            }
        }
    })
    .await
    .expect("closed in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_while_connected_closes_the_socket() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log, &[("JWT_LEEWAY_SECS", "0")]).await;
    let mut socket = connect_with(&gateway, &[("authorization", format!("Bearer {}", token("alice", 2)))]).await;
    subscribe(&mut socket, &["orders"]).await;
    assert_eq!(closed(&mut socket).await.0, Some(1008));
    gateway.stop().await;
}

/// The socket honours `JWT_LEEWAY_SECS` like REST: a token past `exp` but
/// within the leeway keeps its socket open, and is closed once beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_on_the_socket_allows_the_leeway() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log, &[("JWT_LEEWAY_SECS", "2")]).await;
    let exp = chrono::Utc::now().timestamp() + 1;
    let token = sign_hs256(SECRET.as_bytes(), &TokenClaims::new("alice", exp)).expect("sign");
    let mut socket = connect_with(&gateway, &[("authorization", format!("Bearer {token}"))]).await;
    subscribe(&mut socket, &["orders"]).await;
    let (code, at) = closed(&mut socket).await;
    let closed_ms = chrono::Utc::now().timestamp_millis() - at.elapsed().as_millis() as i64;
    assert_eq!(code, Some(1008));
    assert!(closed_ms >= (exp + 3) * 1_000, "closed at {closed_ms} ms, within exp {exp} s + leeway 2 s");
    // REST agreed until then, and refuses now.
    assert_eq!(gateway.get("/api/portfolio", Some(&token)).await.0, StatusCode::UNAUTHORIZED);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_only_receives_its_channels() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
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
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
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
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[("ENABLE_REALTIME_PORTFOLIO", "false")]).await;
    publish(&log, conformance::account(&user("hank"), 42), "a").await;
    let health = gateway.get_json("/api/health", None).await;
    assert_eq!(health["features"]["realtimePortfolio"], false);
    let portfolio = gateway.get_json("/api/portfolio", Some(&token("hank", 60))).await;
    assert_eq!((portfolio["seq"].as_u64(), portfolio["account"]["cash"].as_str()), (Some(1), Some("0.42")));
    // Flag off: the socket closes 1013.
    let mut socket = connect(&gateway, "hank").await;
    assert_eq!(next(&mut socket).await, Err(Some(1013)));
    gateway.stop().await;
}

/// The value of `name{label=value}` in a Prometheus text page (0 if absent).
fn sample(page: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    let lines = page.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the page parses as Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_traffic() {
    use common::metrics as names;
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[]).await;
    let before = gateway.get("/metrics", None).await.1;
    let delivered_before = sample(&before, names::WS_EVENTS_DELIVERED, Some(("type", "order_update")));
    let failures_before = sample(&before, names::WS_AUTH_FAILURES, None);
    // Labelled counters exist from the start (alerts see 0, not "no data").
    for series in [
        format!("{}{{kind=\"gap\"}}", names::REPAIRS),
        format!("{}{{reason=\"slow_consumer\"}}", names::WS_EVENTS_DROPPED),
        format!("{}{{reason=\"token\"}}", names::WS_AUTH_FAILURES),
    ] {
        assert!(before.contains(&series), "{series} missing before any traffic:\n{before}");
    }

    let mut socket = connect(&gateway, "olga").await;
    subscribe(&mut socket, &["orders"]).await;
    for i in 0..3 {
        publish(&log, conformance::order(&user("olga"), &format!("o-{i}"), OrderStatus::New), &format!("o-{i}")).await;
        next(&mut socket).await.expect("order");
    }
    let mut refused = connect_with(&gateway, &[]).await;
    assert_eq!(next(&mut refused).await, Err(Some(1008)));

    let after = gateway.get("/metrics", None).await.1;
    // Other tests in this process share the recorder: compare deltas.
    assert!(sample(&after, names::WS_EVENTS_DELIVERED, Some(("type", "order_update"))) >= delivered_before + 3.0);
    assert!(sample(&after, names::WS_AUTH_FAILURES, None) >= failures_before + 1.0);
    assert!(after.contains(names::WS_EVENT_LATENCY), "latency histogram exported");
    assert!(after.contains(names::WS_ACTIVE_CONNECTIONS));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stats_are_for_admins_only() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[("ADMIN_TOKEN", "ops-token-ops-token")]).await;
    let mut socket = connect(&gateway, "pia").await;
    subscribe(&mut socket, &["orders"]).await;

    let (status, _) = gateway.get("/api/admin/websocket-stats", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
    let (status, _) = gateway.get("/api/admin/websocket-stats", Some("not-the-admin-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "neither the admin token nor a valid JWT");
    let (status, _) = gateway.get("/api/admin/websocket-stats", Some(&token("pia", 60))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a plain user is not an admin");
    let (status, body) = gateway.get("/api/admin/websocket-stats", Some("ops-token-ops-token")).await;
    assert_eq!(status, StatusCode::OK);
    let stats: serde_json::Value = serde_json::from_str(&body).expect("json");
    for field in [
        "activeConnections",
        "totalMessagesDelivered",
        "avgLatencyMs",
        "p95LatencyMs",
        "p99LatencyMs",
        "disconnectRate",
        "reconnectSuccessRate",
        "batchEfficiency",
        "errorRate",
        "uptimePercent",
        "connectionsByUser",
    ] {
        assert!(stats.get(field).is_some(), "{field} missing in {stats}");
    }
    assert_eq!(stats["connectionsByUser"][0]["userId"], "pia");
    let mut admin_claims = TokenClaims::new("root", chrono::Utc::now().timestamp() + 60);
    admin_claims.admin = Some(true);
    let admin_jwt = sign_hs256(SECRET.as_bytes(), &admin_claims).expect("sign");
    let (status, _) = gateway.get("/api/admin/websocket-stats", Some(&admin_jwt)).await;
    assert_eq!(status, StatusCode::OK);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_completion_posted_to_the_work_queue_function_reaches_the_socket() {
    use functions::signature::{now_unix, sign, Verifier, SIGNATURE_HEADER};

    let server = RedisServer::start();
    let store = event_log::Store::redis(
        RedisLog::connect(&server.url(), LogSettings::default(), Duration::from_secs(2)).await.expect("redis"),
    );
    let gateway = Gateway::start(store.log.clone(), &[]).await;
    // The real work-queue function over real HTTP, publishing to the same Redis.
    let ingest_secret = b"ingest-secret-ingest-secret-0123456789".to_vec();
    let state = functions::AppState::new(
        functions::Deps::new(store.clone()),
        &[functions::Function::QueueCompletions],
        None,
        Some(Verifier::new(common::config::Secret::new(ingest_secret.clone()), Duration::from_secs(300))),
    )
    .expect("functions state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let functions_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, functions::app(state)).await });

    let mut socket = connect(&gateway, "quinn").await;
    subscribe(&mut socket, &["orders"]).await;
    let body = serde_json::json!({
        "jobId": "job-42", "userId": "quinn", "orderId": "order-42", "brokerOrderId": "alpaca-42",
        "status": "accepted", "submittedAt": "2026-01-03T15:29:30.000Z",
        "order": {"symbol": "TSLA", "side": "buy", "type": "limit", "qty": "50", "limitPrice": "246.00"},
    })
    .to_string();
    let started = std::time::Instant::now();
    let signature = sign(&ingest_secret, now_unix(), body.as_bytes());
    let path = functions::Function::QueueCompletions.path();
    let response =
        test_support::http::post_json(functions_addr, path, &[(SIGNATURE_HEADER, &signature)], body.as_bytes())
            .await
            .expect("POST the completion");
    assert_eq!(response.status, 200, "{:?}", response.json());

    let message = next(&mut socket).await.expect("order update");
    let latency = started.elapsed();
    assert_eq!(message["type"], "order_update");
    assert_eq!(message["data"]["orderId"], "order-42");
    assert_eq!(message["data"]["status"], "accepted");
    assert!(latency < Duration::from_millis(500), "took {latency:?}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_events_flush_in_order_and_slow_drift_waits_for_the_threshold() {
    let log: SharedLog = Arc::new(event_log::memory::MemoryLog::new(LogSettings::default()));
    let gateway = Gateway::start(log.clone(), &[("THROTTLE_WINDOW_MS", "60000")]).await;
    let rita = user("rita");
    let mut socket = connect(&gateway, "rita").await;
    subscribe(&mut socket, &["positions", "orders"]).await;

    // Leading edge, then a tick that waits for the window, then an order:
    // the order flushes the pending batch first, in seq order.
    publish(&log, conformance::position(&rita, "AAPL", 100, 10_000), "p0").await;
    assert_eq!(next(&mut socket).await.expect("leading")["seq"], 1);
    publish(&log, conformance::position(&rita, "MSFT", 10, 40_000), "p1").await;
    publish(&log, conformance::order(&rita, "o-1", OrderStatus::New), "o1").await;
    let batch = next(&mut socket).await.expect("batch");
    assert_eq!((batch["type"].as_str(), batch["seq"].as_u64()), (Some("batch"), Some(2)));
    let order = next(&mut socket).await.expect("order");
    assert_eq!((order["type"].as_str(), order["seq"].as_u64()), (Some("order_update"), Some(3)));

    // AAPL drifts +0.05 % per tick against its delivered value (100.00):
    // +0.05 % and +0.10 % are held back; +0.15 % goes out. Each order is a
    // marker that flushes whatever is pending.
    for (i, (cents, delivered)) in [(10_005, false), (10_010, false), (10_015, true)].into_iter().enumerate() {
        publish(&log, conformance::position(&rita, "AAPL", 100, cents), &format!("drift-{i}")).await;
        publish(&log, conformance::order(&rita, &format!("m-{i}"), OrderStatus::New), &format!("m-{i}")).await;
        let first = next(&mut socket).await.expect("a message");
        if delivered {
            assert_eq!(first["type"], "batch", "the drift passed 0.1 %: {first}");
            assert_eq!(first["data"]["positions"][0]["currentPrice"], "100.15");
            assert_eq!(next(&mut socket).await.expect("marker")["type"], "order_update");
        } else {
            assert_eq!(first["type"], "order_update", "tick {i} must be held back: {first}");
        }
    }
    gateway.stop().await;
}

/// A user with no history yet gets an epoch in its first snapshot and
/// `subscribed`, so it can resume from the start; its first event keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_no_history_gets_an_epoch_to_resume_with() {
    let server = RedisServer::start();
    let log = redis_log(&server).await;
    let gateway = Gateway::start(log.clone(), &[]).await;
    let mut socket = connect(&gateway, "rosa").await;
    let replies = subscribe(&mut socket, &["positions", "orders", "account", "trades"]).await;
    let (snapshot, subscribed) = (&replies[0], replies.last().expect("subscribed"));
    assert_eq!((snapshot["type"].as_str(), snapshot["seq"].as_u64()), (Some("snapshot"), Some(0)), "{snapshot}");
    let epoch = snapshot["epoch"].as_str().expect("an epoch in the first snapshot").to_owned();
    assert_eq!(subscribed["epoch"].as_str(), Some(epoch.as_str()), "{subscribed}");
    socket.close(None).await.expect("close");

    let seq = publish(&log, conformance::account(&user("rosa"), 1), "rosa-a").await;
    let mut socket = connect(&gateway, "rosa").await;
    send(&mut socket, serde_json::json!({"type": "subscribe", "channels": ["account"], "since": 0, "epoch": epoch}))
        .await;
    let replies = until_type(&mut socket, "subscribed").await;
    assert_eq!(replies[0]["type"], "batch", "a resume from seq 0, not a snapshot: {replies:?}");
    assert_eq!(replies[0]["seq"].as_u64(), Some(seq));
    gateway.stop().await;
}
