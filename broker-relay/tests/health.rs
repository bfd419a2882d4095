//! The relay's health and metrics, alone in this test binary (the process'
//! metrics recorder is its own here): `/healthz` follows the trade stream,
//! `/metrics` exports each stream's state and the reconnects, and a relay
//! that never reached its broker still reports and stops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use test_support::alpaca::{FakeAlpaca, KEY_ID, SECRET};
use test_support::wait;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);
const SECRET_32: &str = "relay-health-test-secret-0123456789abc";

/// A relay on a loopback port, without market data, its broker's trading
/// API at `broker`. No functions listen: sends fail and are retried, which
/// health does not depend on.
async fn start(broker: &str) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let nowhere = test_support::net::free_port();
    let config: BTreeMap<String, String> = [
        ("FUNCTIONS_URL", format!("http://127.0.0.1:{nowhere}")),
        ("WEBHOOK_SECRET", SECRET_32.to_owned()),
        ("INGEST_SECRET", SECRET_32.to_owned()),
        ("APCA_API_BASE_URL", broker.to_owned()),
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
    let (stop, stopped) = oneshot::channel::<()>();
    let relay = tokio::spawn(broker_relay::serve(listener, config, async {
        let _ = stopped.await;
    }));
    (addr, stop, relay)
}

/// `/healthz` once it answers `want`.
async fn health(addr: SocketAddr, want: u16) -> serde_json::Value {
    wait::until(&format!("/healthz {want}"), WAIT, || async {
        let answer = test_support::http::get(addr, "/healthz", &[]).await.ok()?;
        (answer.status == want).then(|| answer.json())
    })
    .await
}

async fn stop(stop: oneshot::Sender<()>, relay: JoinHandle<anyhow::Result<()>>) {
    let _ = stop.send(());
    let stopped = tokio::time::timeout(WAIT, relay).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the relay stops cleanly on the signal: {stopped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_trade_stream_and_metrics_count_reconnects() {
    let alpaca = FakeAlpaca::start().await;
    let (addr, stopper, relay) = start(&alpaca.base_url()).await;
    let up = health(addr, 200).await;
    assert_eq!(up["tradeUpdates"]["connected"], true, "{up}");
    assert!(up.get("marketData").is_none(), "market data is off: {up}");

    alpaca.set_streams_up(false);
    alpaca.drop_streams();
    let down = health(addr, 503).await;
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
    health(addr, 200).await;
    stop(stopper, relay).await;
}

/// A relay whose broker never answers still reports (503) and stops on the
/// signal, health server included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_reached_the_broker_reports_and_stops() {
    let nowhere = test_support::net::free_port();
    let (addr, stopper, relay) = start(&format!("http://127.0.0.1:{nowhere}")).await;
    let down = health(addr, 503).await;
    assert_eq!(down["tradeUpdates"]["connected"], false, "{down}");
    stop(stopper, relay).await;
    assert!(test_support::http::get(addr, "/healthz", &[]).await.is_err(), "the health server stopped too");
}
