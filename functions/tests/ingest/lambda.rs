//! The Lambda adapters, driven with event fixtures: API Gateway v2 and v1
//! and ALB through `lambda_http` into the router, SQS batches through the
//! SQS adapter with partial batch failures.

use aws_lambda_events::sqs::SqsEvent;
use axum::http::StatusCode;
use common::event::{Event, OrderStatus};
use event_log::EventLog;
use functions::lambda::{handle_sqs, http_service};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::harness::{sign, symbol_of, types, user, Harness, INGEST_SECRET, WEBHOOK_SECRET};

const PLACEHOLDER: &str = "__SIGNED_AT_TEST_TIME__";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fixture with its placeholder signature replaced by one of its body
/// made now with `secret` (or removed when `secret` is `None`).
fn signed_event(name: &str, secret: Option<&[u8]>) -> String {
    let mut event: Value = serde_json::from_str(&fixture(name)).expect("fixture JSON");
    let body = event["body"].as_str().expect("a body").to_owned();
    let signature = secret.map(|secret| sign(secret, &body));
    for headers in ["headers", "multiValueHeaders"] {
        let Some(map) = event[headers].as_object_mut() else { continue };
        let names: Vec<String> =
            map.keys().filter(|k| k.eq_ignore_ascii_case("x-webhook-signature")).cloned().collect();
        for name in names {
            match &signature {
                Some(signature) if map[&name].is_array() => map[&name] = json!([signature]),
                Some(signature) => map[&name] = json!(signature),
                None => {
                    map.remove(&name);
                }
            }
        }
    }
    let text = event.to_string();
    assert!(!text.contains(PLACEHOLDER));
    text
}

async fn call(h: &Harness, event: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(event).expect("a Lambda HTTP event");
    let response = http_service(h.router()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_gateway_v2_delivers_a_signed_webhook() {
    let h = Harness::start().await;
    let owner = user("user-lambda");
    h.link("acct-lambda", &owner).await;
    let event = signed_event("apigw_v2_webhook.json", Some(WEBHOOK_SECRET));
    assert_eq!(call(&h, &event).await, (StatusCode::OK, json!({"published": 1, "duplicates": 0})));
    assert_eq!(call(&h, &event).await, (StatusCode::OK, json!({"published": 0, "duplicates": 1})));
    let events = h.events(&owner).await;
    assert_eq!(types(&events), ["order_update"]);
    let Event::OrderUpdate(order) = &events[0] else { unreachable!() };
    assert_eq!((order.data.order_id.as_str(), order.data.status), ("order-v2", OrderStatus::New));

    let unsigned = signed_event("apigw_v2_webhook.json", None);
    let (status, answer) = call(&h, &unsigned).await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::UNAUTHORIZED, json!("unauthorized")));
    assert_eq!(h.events(&owner).await.len(), 1);
}

#[tokio::test]
async fn api_gateway_v1_with_a_named_stage_reaches_the_price_route() {
    let h = Harness::start().await;
    let event = signed_event("apigw_v1_prices.json", Some(INGEST_SECRET));
    let (status, answer) = call(&h, &event).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["marks"].clone(), answer["ticks"].clone()), (json!(2), json!(2)));
    let marks = h.log.marks(&[symbol_of("AAPL")]).await.expect("marks");
    assert_eq!(marks[0].as_ref().map(|m| m.price.to_string()), Some("180.00".to_owned()));

    // The webhook secret does not open the internal routes.
    let wrong = signed_event("apigw_v1_prices.json", Some(WEBHOOK_SECRET));
    assert_eq!(call(&h, &wrong).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_alb_event_delivers_a_completion() {
    let h = Harness::start().await;
    let event = signed_event("alb_completion.json", Some(INGEST_SECRET));
    assert_eq!(call(&h, &event).await, (StatusCode::OK, json!({"published": 1, "duplicates": 0})));
    let events = h.events(&user("user-alb")).await;
    let Event::OrderUpdate(order) = &events[0] else { panic!("{events:?}") };
    assert_eq!(
        (order.data.status, order.data.broker_order_id.as_deref()),
        (OrderStatus::Accepted, Some("alpaca-order-alb"))
    );
}

#[tokio::test]
async fn one_poisonous_sqs_message_fails_alone() {
    let h = Harness::start().await;
    let event: SqsEvent = serde_json::from_str(&fixture("sqs_completions.json")).expect("an SQS event");
    let failures = |response: aws_lambda_events::sqs::SqsBatchResponse| -> Vec<String> {
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    };
    let poisonous = "2e1424d4-f796-459a-8184-9c92662be6da".to_owned();
    assert_eq!(failures(handle_sqs(event.clone(), h.deps()).await), vec![poisonous.clone()]);
    let (accepted, rejected) = (h.events(&user("user-q1")).await, h.events(&user("user-q3")).await);
    assert_eq!((accepted.len(), rejected.len()), (1, 1));
    let Event::OrderUpdate(order) = &rejected[0] else { unreachable!() };
    assert_eq!(
        (order.data.status, order.data.reason.as_deref()),
        (OrderStatus::Rejected, Some("insufficient qty available for order"))
    );
    assert!(h.events(&user("user-q2")).await.is_empty());

    // Redelivered (the batch failed partially): the good ones are no-ops.
    assert_eq!(failures(handle_sqs(event, h.deps()).await), vec![poisonous]);
    assert_eq!(h.events(&user("user-q1")).await.len(), 1);
}

#[tokio::test]
async fn a_failed_fifo_message_holds_back_the_rest_of_its_group() {
    let h = Harness::start().await;
    let event: SqsEvent = serde_json::from_str(&fixture("sqs_fifo_completions.json")).expect("an SQS event");
    let response = handle_sqs(event, h.deps()).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["fifo-1", "fifo-2"]);
    assert!(h.events(&user("user-f1")).await.is_empty(), "the group's later message waits for redelivery");
    assert_eq!(h.events(&user("user-f2")).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_every_sqs_message_for_redelivery() {
    let mut h = Harness::start().await;
    let event: SqsEvent = serde_json::from_str(&fixture("sqs_completions.json")).expect("an SQS event");
    h.redis.stop();
    let response = handle_sqs(event, h.deps()).await;
    assert_eq!(response.batch_item_failures.len(), 3);
}
