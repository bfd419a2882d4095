//! docs/openapi.yaml against the real routers (the gateway's and the
//! functions', in process, over the in-memory event log): every documented
//! path answers with a documented status, every route the routers serve is
//! documented, and every request example is accepted as it stands.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::config::Secret;
use edge_gateway::{AppState as GatewayState, GatewayConfig};
use event_log::{LogSettings, Store};
use functions::signature::{now_unix, sign, Verifier, SIGNATURE_HEADER};
use functions::{AppState as FunctionsState, Deps, Function};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const JWT_SECRET: &str = "openapi-test-secret-openapi-test-secret-01";
const WEBHOOK_SECRET: &[u8] = b"openapi-webhook-secret-0123456789abcdef";
const INGEST_SECRET: &[u8] = b"openapi-ingest-secret-0123456789abcdefg";

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).expect("the spec");
    serde_norway::from_str(&text).expect("the spec is YAML")
}

fn documented_statuses(operation: &Value) -> BTreeSet<u16> {
    operation["responses"].as_object().expect("responses").keys().map(|k| k.parse().expect("a status")).collect()
}

async fn status_of(router: axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_http_contract_matches_the_routers() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().expect("paths");

    let store = Store::in_memory(LogSettings::default());
    let vars: std::collections::BTreeMap<String, String> = [("JWT_SECRET".to_owned(), JWT_SECRET.to_owned())].into();
    let gateway =
        GatewayState::new(GatewayConfig::from_source(&vars).expect("config"), store.log.clone()).expect("state");
    let tolerance = Duration::from_secs(300);
    let functions = FunctionsState::new(
        Deps::new(store.clone()).with_broker(Arc::new(FlatBroker)),
        &Function::ALL,
        Some(Verifier::new(Secret::new(WEBHOOK_SECRET.to_vec()), tolerance)),
        Some(Verifier::new(Secret::new(INGEST_SECRET.to_vec()), tolerance)),
    )
    .expect("functions state");
    store
        .index
        .link_account("acct-openapi", &common::event::UserId::new("openapi-user").expect("user"))
        .await
        .expect("link");

    // Every route the routers serve is documented (the socket is in docs/protocol.md).
    let served: BTreeSet<&str> =
        ["/api/portfolio", "/api/health", "/api/admin/websocket-stats", "/metrics", "/healthz"]
            .into_iter()
            .chain(Function::ALL.map(Function::path))
            .collect();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(documented, served);

    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let statuses = documented_statuses(operation);
            let (status, body) = match method.as_str() {
                "get" => {
                    let router = if path == "/healthz" {
                        functions::app(functions.clone())
                    } else {
                        edge_gateway::app(gateway.clone())
                    };
                    status_of(router, Request::get(path.as_str()).body(Body::empty()).expect("request")).await
                }
                "post" => {
                    let example = &operation["requestBody"]["content"]["application/json"]["example"];
                    assert!(example.is_object(), "{path}: a request example");
                    let body = example.to_string();
                    let secret = if path == Function::BrokerWebhook.path() { WEBHOOK_SECRET } else { INGEST_SECRET };
                    let request = Request::post(path.as_str())
                        .header("content-type", "application/json")
                        .header(SIGNATURE_HEADER, sign(secret, now_unix(), body.as_bytes()))
                        .body(Body::from(body))
                        .expect("request");
                    let (status, answer) = status_of(functions::app(functions.clone()), request).await;
                    assert_eq!(status, StatusCode::OK, "{path}: the example is accepted: {answer}");
                    (status, answer)
                }
                other => panic!("{path}: unexpected method {other}"),
            };
            assert!(
                statuses.contains(&status.as_u16()),
                "{method} {path}: {status} is not documented ({statuses:?}): {body}"
            );
        }
    }
}

/// A broker with no positions and fixed balances: enough for the sync
/// example to be answered 200.
#[derive(Debug)]
struct FlatBroker;

#[async_trait::async_trait]
impl broker::Broker for FlatBroker {
    async fn position(
        &self,
        _: &broker::AccountId,
        _: &common::event::Symbol,
    ) -> Result<Option<broker::BrokerPosition>, broker::BrokerError> {
        Ok(None)
    }

    async fn account(&self, _: &broker::AccountId) -> Result<broker::BrokerAccount, broker::BrokerError> {
        let amount = rust_decimal::Decimal::new(10_000_000, 2);
        Ok(broker::BrokerAccount { cash: amount, equity: amount, last_equity: amount, buying_power: amount })
    }

    async fn positions(&self, _: &broker::AccountId) -> Result<Vec<broker::BrokerPosition>, broker::BrokerError> {
        Ok(Vec::new())
    }
}
