//! Price ticks: every holder's position revalued, equity moved by the
//! change, retries after partial failures counted once, and 10,000 holders
//! in a bounded number of round trips.

use std::sync::Arc;

use axum::http::StatusCode;
use common::event::{Event, UserId};
use event_log::index::IngestIndex;
use event_log::{EventLog, NewEvent};
use functions::prices::{self, TickBatch, TickOutcome};
use functions::Function;
use functions::Limits;
use serde_json::json;

use crate::harness::{
    account_event, dec, position_event, sign, symbol_of, types, user, Harness, BROKER_TIMEOUT, INGEST_SECRET,
};

const PATH: &str = Function::PriceTicks.path();

fn batch(ticks: &[(&str, &str, &str)]) -> String {
    let ticks: Vec<_> =
        ticks.iter().map(|(symbol, price, at)| json!({"symbol": symbol, "price": price, "timestamp": at})).collect();
    json!({ "ticks": ticks }).to_string()
}

#[tokio::test]
async fn every_holder_is_revalued_and_equity_moves_by_the_change() {
    let h = Harness::start().await;
    let (u1, u2, stale) = (user("holder-1"), user("holder-2"), user("holder-stale"));
    h.seed_holder(&u1, "AAPL", "10", "170.25", "175.50").await;
    h.seed_holder(&u2, "AAPL", "3", "150.00", "175.50").await;
    h.seed_holder(&u2, "MSFT", "2", "400.00", "405.00").await;
    // In the index without a position (the close was published, the
    // index not yet updated): skipped.
    h.log.set_holding(&stale, &symbol_of("AAPL"), true).await.unwrap();

    let body = batch(&[
        ("AAPL", "180.00", "2026-01-03T15:31:00.000Z"),
        ("MSFT", "410.00", "2026-01-03T15:31:00.000Z"),
        ("AAPL", "170.00", "2026-01-03T15:30:59.000Z"),
    ]);
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcome: TickOutcome = serde_json::from_value(answer).unwrap();
    assert_eq!((outcome.ticks, outcome.symbols, outcome.positions), (3, 2, 4));
    assert_eq!((outcome.outcome.published, outcome.outcome.duplicates, outcome.unchanged), (5, 0, 0));

    let s1 = h.snapshot(&u1).await;
    let p = &s1.positions[0];
    assert_eq!(
        (p.current_price.to_string(), p.market_value.to_string(), p.unrealized_pnl.to_string()),
        ("180.00".into(), "1800.00".into(), "97.50".into())
    );
    assert_eq!(
        (p.strategy_id.as_deref(), p.opened_at.is_some()),
        (Some("strategy-xyz"), true),
        "other fields are kept"
    );
    let a1 = s1.account.unwrap();
    // 10 × (180.00 − 175.50) = 45.00
    assert_eq!(
        (a1.equity.to_string(), a1.day_pnl.to_string(), a1.cash.to_string()),
        ("100045.00".into(), "545.00".into(), "50000.00".into())
    );
    // u2: 3 × 4.50 + 2 × 5.00 = 23.50, in one account update.
    let a2 = h.snapshot(&u2).await.account.unwrap();
    assert_eq!(a2.equity.to_string(), "100023.50");
    let u2_events = h.events(&u2).await;
    assert_eq!(types(&u2_events[u2_events.len() - 3..]), ["account_update", "position_update", "position_update"]);
    assert!(h.events(&stale).await.is_empty());

    // The same batch again: nothing moves, nothing is published.
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((answer["published"].clone(), answer["unchanged"].clone()), (json!(0), json!(3)));
    assert_eq!(h.snapshot(&u1).await.account.unwrap().equity.to_string(), "100045.00");
}

#[tokio::test]
async fn a_retry_after_a_partial_failure_moves_equity_exactly_once() {
    let h = Harness::start().await;
    let users: Vec<UserId> = (0..4).map(|i| user(&format!("partial-{i}"))).collect();
    for u in &users {
        h.seed_holder(u, "AAPL", "10", "170.00", "175.00").await;
        h.seed_holder(u, "MSFT", "1", "400.00", "400.00").await;
    }
    let body = batch(&[("AAPL", "176.00", "2026-01-03T15:31:00.000Z"), ("MSFT", "401.00", "2026-01-03T15:31:00.000Z")]);
    // 4 account updates, then 8 position updates: let 2 accounts and 3
    // positions through, then fail.
    h.flaky.fail_after(5);
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("event_log_unavailable"))
    );

    h.flaky.heal();
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for u in &users {
        let snapshot = h.snapshot(u).await;
        // 10 × 1.00 + 1 × 1.00, once.
        assert_eq!(snapshot.account.unwrap().equity.to_string(), "100011.00", "{u}");
        assert!(snapshot
            .positions
            .iter()
            .all(|p| p.current_price == dec("176.00") || p.current_price == dec("401.00")));
        let events = h.events(u).await;
        let accounts = events.iter().filter(|e| matches!(e, Event::AccountUpdate(_))).count();
        let positions = events.iter().filter(|e| matches!(e, Event::PositionUpdate(_))).count();
        // Seeded: 2 positions and 1 account; the batch adds 1 account and 2 positions.
        assert_eq!((accounts, positions), (2, 4), "{u}");
    }
}

#[tokio::test]
async fn bad_batches_are_refused_with_the_field() {
    let h = Harness::with_limits(Limits { broker_timeout: BROKER_TIMEOUT, max_ticks: 2, max_body_bytes: 4_096 }).await;
    let ok_tick = ("AAPL", "1.00", "2026-01-03T15:31:00.000Z");
    let cases = [
        (batch(&[ok_tick, ("MSFT", "0", "2026-01-03T15:31:00.000Z")]), "ticks[1].price"),
        (batch(&[ok_tick, ("MS FT", "1", "2026-01-03T15:31:00.000Z")]), "ticks[1].symbol"),
        (batch(&[ok_tick, ("MSFT", "1", "yesterday")]), "ticks[1].timestamp"),
        (batch(&[ok_tick, ok_tick, ok_tick]), "ticks"),
        (
            r#"{"ticks":[{"symbol":"AAPL","price":1.5,"timestamp":"2026-01-03T15:31:00Z"}]}"#.to_owned(),
            "ticks[0].price",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body}");
    }
    // Oversized: 413 before the signature is even looked at.
    let huge = batch(&vec![ok_tick; 100]);
    assert!(huge.len() > 4_096);
    for signature in [Some(sign(INGEST_SECRET, &huge)), None] {
        let (status, answer) = h.send(PATH, &huge, signature).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
        );
    }
}

/// Seeds `n` holders of `symbol` (position + account each, and the index).
pub(crate) async fn seed_many(h: &Harness, n: usize, symbol: &str) -> Vec<UserId> {
    let users: Vec<UserId> = (0..n).map(|i| user(&format!("many-{i}"))).collect();
    let mut events = Vec::with_capacity(2 * n);
    for u in &users {
        events.push(NewEvent::new(position_event(u, symbol, "10", "100.00", "150.00"), format!("seed:p:{u}")));
        events.push(NewEvent::new(account_event(u, "100000.00", "0.00"), format!("seed:a:{u}")));
    }
    for result in h.log.publish_many(&events).await {
        result.expect("seed");
    }
    let index: Arc<dyn IngestIndex> = Arc::new(h.log.clone());
    let symbol = symbol_of(symbol);
    let adds = users.iter().map(|u| index.set_holding(u, &symbol, true));
    for result in futures::future::join_all(adds).await {
        result.expect("hold");
    }
    users
}

/// `INFO commandstats` calls per command.
pub(crate) fn command_calls(h: &Harness) -> std::collections::HashMap<String, u64> {
    let info = h.redis.command(&["INFO", "commandstats"]).expect("INFO");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_for_a_symbol_held_by_10000_users_publishes_10000_position_updates() {
    let h = Harness::start().await;
    let users = seed_many(&h, 10_000, "SPY").await;
    let before = command_calls(&h);
    let body = batch(&[("SPY", "151.00", "2026-01-03T15:31:00.000Z")]);
    let batch: TickBatch = serde_json::from_str(&body).unwrap();
    let outcome = prices::handle(batch, h.deps()).await.expect("handled");
    assert_eq!(outcome.positions, 10_000);
    // 10,000 position updates and 10,000 account updates.
    assert_eq!((outcome.outcome.published, outcome.outcome.duplicates), (20_000, 0));
    let after = command_calls(&h);
    let delta = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // One script call per event, one read per position and account, and
    // the holders scan: nothing per user beyond that. (Commands inside the
    // publish script count too: one HGET of the epoch and one GET of the
    // dedupe key per event.)
    assert_eq!(delta("evalsha"), 20_000);
    assert_eq!((delta("hget"), delta("get")), (10_000 + 20_000, 10_000 + 20_000));
    assert!(delta("sscan") <= 3, "sscan pages: {}", delta("sscan"));
    for u in [&users[0], &users[4_999], &users[9_999]] {
        let snapshot = h.snapshot(u).await;
        assert_eq!(snapshot.positions[0].current_price.to_string(), "151.00");
        assert_eq!(snapshot.account.unwrap().equity.to_string(), "100010.00");
    }
}
