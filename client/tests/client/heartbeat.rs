//! Dead-link detection: a gateway that stops talking (no message, no pong)
//! is given up after the pong timeout and the client reconnects.

use std::time::Duration;

use portfolio_client::{Client, Status};

use crate::support::{config, FakeGateway, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_past_the_pong_timeout_reconnects() {
    let mut fake = FakeGateway::start().await;
    let mut config = config(&fake.url(), "gina");
    config.ping_interval = Duration::from_millis(50);
    config.pong_timeout = Duration::from_millis(300);
    let client = Client::connect(config).expect("client");

    // The fake answers subscribe, then never reads or writes again.
    let mut silent = fake.next_conn().await;
    silent.accept_subscribe(3).await;
    client.wait_for_status(WAIT, |s| s == Status::Live).await.expect("live");
    let went_silent = tokio::time::Instant::now();

    let mut conn = fake.next_conn().await;
    let waited = went_silent.elapsed();
    assert!(waited >= Duration::from_millis(250), "gave up after only {waited:?}");
    let resume = conn.accept_subscribe(3).await;
    assert_eq!(resume["since"].as_u64(), Some(3), "{resume}");
    let metrics = client.metrics();
    assert_eq!(metrics.dead_links, 1, "{metrics:?}");
    assert!(metrics.pings >= 2, "{metrics:?}");
    drop(silent);
    client.close().await;
}
