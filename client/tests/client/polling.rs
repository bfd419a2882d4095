//! REST fallback: real-time switched off (1013, health) and a socket that
//! keeps failing both lead to polling `GET /api/portfolio`, with the state
//! still correct, and back to live when the socket works again.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use common::event::OrderStatus;
use common::fixtures as conformance;
use portfolio_client::{Client, Close, Status};
use serde_json::json;

use crate::support::{config, memory_log, publish, server_state, user, Gateway, EXACT, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_off_polls_rest_and_flag_on_returns_to_live() {
    let log = memory_log();
    let ivan = user("ivan");
    publish(&log, conformance::position(&ivan, "AAPL", 10, 10_000), "p-0").await;
    let off = [EXACT[0], EXACT[1], ("ENABLE_REALTIME_PORTFOLIO", "false")];
    let gateway = Gateway::start(log.clone(), &off).await;
    let client = Client::connect(config(&gateway.url(), "ivan")).expect("client");

    client.wait_for_status(WAIT, |s| s == Status::Disabled).await.expect("disabled");
    assert_eq!(client.last_close().and_then(|c| c.code), Some(Close::Disabled.code()));
    let expected = server_state(&log, &ivan).await;
    client.wait_for(WAIT, |s| *s == expected).await.expect("state from REST");

    // Changes keep arriving through polling.
    publish(&log, conformance::order(&ivan, "o-1", OrderStatus::New), "o-1").await;
    publish(&log, conformance::trade(&ivan, "t-1"), "t-1").await;
    let expected = server_state(&log, &ivan).await;
    client.wait_for(WAIT, |s| *s == expected).await.expect("polled changes");
    assert_eq!(client.current_status(), Status::Disabled, "no error status while disabled");
    let attempts_while_off = client.metrics().connect_attempts;
    assert!(client.metrics().polls >= 2);

    // Flag back on (a restart with the new setting): live again, resuming.
    let addr = gateway.addr;
    gateway.stop().await;
    let gateway = Gateway::start_on(addr, log.clone(), &EXACT).await;
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live again");
    let seq = publish(&log, conformance::order(&ivan, "o-1", OrderStatus::Filled), "fill").await;
    let state = client.wait_for(WAIT, |s| s.seq >= seq).await.expect("live event");
    assert_eq!(state, server_state(&log, &ivan).await);
    let metrics = client.metrics();
    assert!(metrics.connect_attempts > attempts_while_off, "{metrics:?}");
    assert!(metrics.resumes >= 1, "resumed from the polled seq: {metrics:?}");
    client.close().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_fall_back_to_polling_and_keep_retrying() {
    // A gateway whose socket always fails but whose REST works.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let jane = user("jane");
    let order = match conformance::order(&jane, "o-9", OrderStatus::New) {
        common::event::Event::OrderUpdate(e) => e.data,
        _ => unreachable!(),
    };
    let body = json!({"epoch": "e7", "seq": 12, "positions": [], "orders": [order], "account": null, "trades": []});
    let app = Router::new()
        .route("/ws/portfolio", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route("/api/portfolio", get(move || async move { Json(body) }))
        .route("/api/health", get(|| async { Json(json!({"status": "ok", "features": {"realtimePortfolio": true}})) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = config(&format!("http://{addr}"), "jane");
    config.max_failed_attempts = 4;
    let client = Client::connect(config).expect("client");
    client.wait_for_status(WAIT, |s| s == Status::Polling).await.expect("polling");
    assert!(client.metrics().connect_attempts >= 4);
    let state = client.wait_for(WAIT, |s| s.seq == 12).await.expect("state from REST");
    assert_eq!((state.epoch.as_deref(), state.orders.len()), (Some("e7"), 1));
    // The socket is still tried in the background.
    let before = client.metrics().connect_attempts;
    test_support::wait::until("a background attempt", WAIT, || async {
        (client.metrics().connect_attempts > before).then_some(())
    })
    .await;
    assert_eq!(client.current_status(), Status::Polling);
    client.close().await;
    server.abort();
}
