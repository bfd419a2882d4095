//! The relay's health and metrics, alone in this test binary (the process'
//! metrics recorder is its own here): `/healthz` follows the trade stream,
//! `/metrics` exports each stream's state and the reconnects.

use std::collections::BTreeMap;
use std::time::Duration;

use test_support::alpaca::{FakeAlpaca, KEY_ID, SECRET};
use test_support::wait;

const WAIT: Duration = Duration::from_secs(10);
const SECRET_32: &str = "relay-health-test-secret-0123456789abc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_trade_stream_and_metrics_count_reconnects() {
    let alpaca = FakeAlpaca::start().await;
    // No functions listen here: sends fail and are retried, which health
    // does not depend on.
    let nowhere = test_support::net::free_port();
    let config: BTreeMap<String, String> = [
        ("FUNCTIONS_URL", format!("http://127.0.0.1:{nowhere}")),
        ("WEBHOOK_SECRET", SECRET_32.to_owned()),
        ("INGEST_SECRET", SECRET_32.to_owned()),
        ("APCA_API_BASE_URL", alpaca.base_url()),
        ("APCA_API_KEY_ID", KEY_ID.to_owned()),
        ("APCA_API_SECRET_KEY", SECRET.to_owned()),
        ("APCA_DATA_STREAM_URL", "off".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = broker_relay::Config::from_source(&config).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(broker_relay::serve(listener, config, async {
        let _ = stopped.await;
    }));

    let health = |want: u16| async move {
        let answer = test_support::http::get(addr, "/healthz", &[]).await.ok()?;
        (answer.status == want).then(|| answer.json())
    };
    let up = wait::until("healthy", WAIT, || health(200)).await;
    assert_eq!(up["tradeUpdates"]["connected"], true, "{up}");
    assert!(up.get("marketData").is_none(), "market data is off: {up}");

    alpaca.set_streams_up(false);
    alpaca.drop_streams();
    let down = wait::until("unhealthy", WAIT, || health(503)).await;
    assert_eq!(
        (&down["status"], &down["tradeUpdates"]["connected"]),
        (&"disconnected".into(), &false.into()),
        "{down}"
    );
    let metrics = test_support::http::get(addr, "/metrics", &[]).await.expect("metrics").body;
    let metrics = String::from_utf8(metrics.to_vec()).expect("text");
    assert!(metrics.contains("relay_stream_connected{stream=\"trade_updates\"} 0"), "{metrics}");
    assert!(metrics.contains("relay_stream_reconnects_total{stream=\"trade_updates\"}"), "{metrics}");
    assert!(metrics.contains("relay_stream_last_message_age_seconds{stream=\"trade_updates\"}"), "{metrics}");

    alpaca.set_streams_up(true);
    wait::until("healthy again", WAIT, || health(200)).await;
    let _ = stop.send(());
    let stopped = tokio::time::timeout(WAIT, relay).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
