//! Refused credentials: the client reports unauthorized and never retries.

use common::protocol::close::POLICY;
use edge_gateway::auth::{sign_hs256, TokenClaims};
use portfolio_client::{Client, Credentials, Status};

use crate::support::{config, memory_log, token, Gateway, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_end_unauthorized_without_retry() {
    let gateway = Gateway::start(memory_log(), &[]).await;
    let wrong_key =
        sign_hs256(b"another-secret-another-secret-xx!", &TokenClaims::new("hank", i64::MAX / 2)).expect("sign");
    let cases = [
        ("wrong key", Credentials::Bearer(wrong_key)),
        ("expired", Credentials::Bearer(token("hank", -3_600))),
        ("expired cookie", Credentials::Cookie(token("hank", -3_600))),
    ];
    for (case, credentials) in cases {
        let mut config = config(&gateway.url(), "hank");
        config.credentials = credentials;
        let client = Client::connect(config).expect("client");
        let status = client.wait_for_status(WAIT, Status::is_final).await.expect("a final status");
        assert_eq!(status, Status::Unauthorized, "{case}");
        test_support::wait::until("the client task to end", WAIT, || async { client.is_finished().then_some(()) })
            .await;
        assert_eq!(client.metrics().connect_attempts, 1, "{case}: no retry");
        assert_eq!(client.last_close().and_then(|c| c.code), Some(POLICY), "{case}");
    }
    gateway.stop().await;
}
