//! Work-queue completions over the local HTTP route (signed with the ingest
//! secret): one `order_update` per job, once.

use axum::http::StatusCode;
use common::event::{Event, OrderStatus};
use functions::Function;
use serde_json::json;

use crate::harness::{http_post, sign, user, Harness, INGEST_SECRET, WEBHOOK_SECRET};

const PATH: &str = Function::QueueCompletions.path();

fn completion(job: &str, status: &str) -> String {
    json!({
        "jobId": job,
        "userId": "user-c1",
        "orderId": "order-123",
        "brokerOrderId": if status == "failed" { serde_json::Value::Null } else { json!("alpaca-order-456") },
        "status": status,
        "order": {"symbol": "TSLA", "side": "buy", "type": "limit", "qty": "50", "limitPrice": "246.00"},
        "submittedAt": "2026-01-03T15:29:30.000Z",
        "error": if status == "failed" { json!("broker unreachable, retry later") } else { serde_json::Value::Null }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_over_http_publishes_one_order_update_once() {
    let h = Harness::start().await;
    let addr = h.serve().await;
    let body = completion("job-1", "accepted");
    for expected in [json!({"published": 1, "duplicates": 0}), json!({"published": 0, "duplicates": 1})] {
        let (status, answer) = http_post(addr, PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
        assert_eq!((status, answer), (StatusCode::OK, expected));
    }
    let failed = completion("job-2", "failed");
    assert_eq!(http_post(addr, PATH, &failed, Some(sign(INGEST_SECRET, &failed))).await.0, StatusCode::OK);

    let events = h.events(&user("user-c1")).await;
    let statuses: Vec<_> = events
        .iter()
        .map(|e| match e {
            Event::OrderUpdate(o) => (o.data.status, o.data.reason.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [(OrderStatus::Accepted, None), (OrderStatus::Failed, Some("broker unreachable, retry later".to_owned()))]
    );
    assert!(h.snapshot(&user("user-c1")).await.orders.iter().all(|o| o.status == OrderStatus::Accepted));
}

#[tokio::test]
async fn completions_need_the_ingest_signature_and_valid_fields() {
    let h = Harness::start().await;
    let body = completion("job-1", "accepted");
    assert_eq!(h.send(PATH, &body, Some(sign(WEBHOOK_SECRET, &body))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(h.send(PATH, &body, None).await.0, StatusCode::UNAUTHORIZED);

    let cases = [
        (body.replace("\"accepted\"", "\"maybe\""), "status"),
        (body.replace("\"user-c1\"", "\"user{c1}\""), "userId"),
        (body.replace("\"50\"", "\"-5\""), "order.qty"),
        (body.replace("\"TSLA\"", "\"\""), "order.symbol"),
        (body.replace("\"TSLA\"", "\"..\""), "order.symbol"),
        (body.replace("\"246.00\"", "\"0\""), "order.limitPrice"),
        (body.replace("\"limitPrice\"", "\"stopPrice\"").replace("\"246.00\"", "\"-1\""), "order.stopPrice"),
        (body.replace("\"job-1\"", "\"\""), "jobId"),
        // Decimal strings in the wire's form only (schemathesis' find: an
        // empty stopPrice was read as none, tests/contract).
        (body.replace("\"limitPrice\":\"246.00\"", "\"limitPrice\":\"246.00\",\"stopPrice\":\"\""), "order.stopPrice"),
        (body.replace("\"50\"", "\"5e1\""), "order.qty"),
        (body.replace("\"50\"", "\"5_0\""), "order.qty"),
        (body.replace("\"246.00\"", "\"+246.00\""), "order.limitPrice"),
    ];
    for (bad, field) in cases {
        let (status, answer) = h.send(PATH, &bad, Some(sign(INGEST_SECRET, &bad))).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{bad}");
    }
    assert!(h.events(&user("user-c1")).await.is_empty());
}
