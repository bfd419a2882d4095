//! Account links through their route: the app's linking flow decides which
//! user a broker account's updates reach, and a link never moves silently.

use axum::http::StatusCode;
use event_log::index::IngestIndex;
use functions::Function;
use serde_json::{json, Value};

use crate::harness::{order, sign, trade_update, types, user, Harness, INGEST_SECRET, WEBHOOK_SECRET};

const PATH: &str = Function::AccountLinks.path();

async fn send(h: &Harness, body: &Value) -> (StatusCode, Value) {
    let body = body.to_string();
    h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await
}

/// A non-fill update of `account` through the webhook: which user it reaches.
async fn webhook_status(h: &Harness, account: &str) -> StatusCode {
    let body = trade_update(account, "new", None, order("new", "0"));
    h.send(Function::BrokerWebhook.path(), &body, Some(sign(WEBHOOK_SECRET, &body))).await.0
}

#[tokio::test]
async fn a_link_routes_the_accounts_updates_to_its_user_and_never_moves_silently() {
    let h = Harness::start().await;
    let (alice, mallory) = (user("alice"), user("mallory"));
    assert_eq!(webhook_status(&h, "acct-1").await, StatusCode::UNPROCESSABLE_ENTITY, "unlinked at first");

    let link = json!({"accountId": "acct-1", "userId": "alice"});
    assert_eq!(
        send(&h, &link).await,
        (StatusCode::OK, json!({"accountId": "acct-1", "userId": "alice", "result": "linked"}))
    );
    assert_eq!(send(&h, &link).await.1["result"], "unchanged", "linking again changes nothing");
    assert_eq!(webhook_status(&h, "acct-1").await, StatusCode::OK);
    assert_eq!(types(&h.events(&alice).await), ["order_update"]);

    // Someone else's claim on it is refused, and says nothing of the owner.
    let (status, answer) = send(&h, &json!({"accountId": "acct-1", "userId": "mallory"})).await;
    assert_eq!(
        (status, &answer["error"]["code"], &answer["error"]["field"]),
        (StatusCode::CONFLICT, &json!("account_linked"), &json!("accountId"))
    );
    assert!(!answer.to_string().contains("alice"), "{answer}");
    let unlink_other = json!({"accountId": "acct-1", "userId": "mallory", "action": "unlink"});
    assert_eq!(send(&h, &unlink_other).await.1["result"], "not_linked");
    assert_eq!(h.log.account_owner("acct-1").await.unwrap(), Some(alice.clone()));
    assert!(h.events(&mallory).await.is_empty());

    let unlink = json!({"accountId": "acct-1", "userId": "alice", "action": "unlink"});
    assert_eq!(send(&h, &unlink).await.1["result"], "unlinked");
    assert_eq!(webhook_status(&h, "acct-1").await, StatusCode::UNPROCESSABLE_ENTITY, "unlinked again");
    assert_eq!(send(&h, &unlink).await.1["result"], "not_linked");
    // Now free, it can be linked to the other user.
    assert_eq!(send(&h, &json!({"accountId": "acct-1", "userId": "mallory"})).await.1["result"], "linked");
}

#[tokio::test]
async fn link_requests_need_the_ingest_signature_and_valid_fields() {
    let h = Harness::start().await;
    let body = json!({"accountId": "acct-1", "userId": "alice"}).to_string();
    for signature in [None, Some(sign(WEBHOOK_SECRET, &body))] {
        let (status, answer) = h.send(PATH, &body, signature).await;
        assert_eq!((status, &answer["error"]["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")));
    }
    let cases = [
        (json!({"accountId": "", "userId": "alice"}), "accountId"),
        (json!({"accountId": "has space", "userId": "alice"}), "accountId"),
        (json!({"accountId": "x".repeat(129), "userId": "alice"}), "accountId"),
        (json!({"accountId": "acct-1", "userId": "not a user"}), "userId"),
        (json!({"accountId": "acct-1"}), "userId"),
        (json!({"accountId": "acct-1", "userId": "alice", "action": "move"}), "action"),
    ];
    for (request, field) in cases {
        let (status, answer) = send(&h, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{request}: {answer}");
    }
    let (status, _) = send(&h, &json!({"accountId": "acct-1", "userId": "alice", "extra": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are refused: a typo must not link silently");
    assert_eq!(h.log.account_owner("acct-1").await.unwrap(), None, "nothing was linked");
}
