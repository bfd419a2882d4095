//! Price ticks: one market mark per symbol, the newest wins, retries after
//! partial failures store the rest, and the Redis work of a tick does not
//! depend on how many users hold the symbol.

use std::sync::Arc;

use axum::http::StatusCode;
use common::event::{Mark, Symbol, UserId};
use event_log::index::IngestIndex;
use event_log::{EventLog, NewEvent};
use functions::prices::{self, TickBatch, TickOutcome};
use functions::Function;
use functions::Limits;
use serde_json::json;

use crate::harness::{
    account_event, dec, position_event, sign, symbol_of, user, Harness, BROKER_TIMEOUT, INGEST_SECRET,
};

const PATH: &str = Function::PriceTicks.path();

fn batch(ticks: &[(&str, &str, &str)]) -> String {
    let ticks: Vec<_> =
        ticks.iter().map(|(symbol, price, at)| json!({"symbol": symbol, "price": price, "timestamp": at})).collect();
    json!({ "ticks": ticks }).to_string()
}

fn mark(symbol: &str, price: &str, at: &str) -> Mark {
    Mark { symbol: symbol_of(symbol), price: dec(price), timestamp: at.parse().unwrap() }
}

async fn marks(h: &Harness, symbols: &[&str]) -> Vec<Option<Mark>> {
    let symbols: Vec<Symbol> = symbols.iter().map(|s| symbol_of(s)).collect();
    h.log.marks(&symbols).await.expect("marks")
}

#[tokio::test]
async fn a_batch_stores_each_symbols_newest_mark_and_no_user_event() {
    let h = Harness::start().await;
    let holder = user("holder-1");
    h.seed_holder(&holder, "AAPL", "10", "170.25", "175.50").await;
    let seeded = h.events(&holder).await.len();

    let body = batch(&[
        ("AAPL", "180.00", "2026-01-03T15:31:00.000Z"),
        ("MSFT", "410.00", "2026-01-03T15:31:00.000Z"),
        ("AAPL", "170.00", "2026-01-03T15:30:59.000Z"),
    ]);
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcome: TickOutcome = serde_json::from_value(answer).unwrap();
    assert_eq!((outcome.ticks, outcome.symbols, outcome.marks, outcome.stale), (3, 2, 2, 0));
    assert_eq!((outcome.outcome.published, outcome.outcome.duplicates), (0, 0));
    assert_eq!(
        marks(&h, &["AAPL", "MSFT", "TSLA"]).await,
        [
            Some(mark("AAPL", "180.00", "2026-01-03T15:31:00.000Z")),
            Some(mark("MSFT", "410.00", "2026-01-03T15:31:00.000Z")),
            None
        ]
    );
    assert_eq!(h.events(&holder).await.len(), seeded, "marks are not user events");

    // The same batch again, and an older tick: nothing changes.
    let (_, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!((answer["marks"].clone(), answer["stale"].clone()), (json!(0), json!(2)));
    let older = batch(&[("AAPL", "1.00", "2026-01-03T15:30:00.000Z")]);
    let (_, answer) = h.send(PATH, &older, Some(sign(INGEST_SECRET, &older))).await;
    assert_eq!((answer["marks"].clone(), answer["stale"].clone()), (json!(0), json!(1)));
    assert_eq!(marks(&h, &["AAPL"]).await, [Some(mark("AAPL", "180.00", "2026-01-03T15:31:00.000Z"))]);
}

#[tokio::test]
async fn a_retry_after_a_partial_failure_stores_the_rest() {
    let h = Harness::start().await;
    let body = batch(&[("AAPL", "176.00", "2026-01-03T15:31:00.000Z"), ("MSFT", "401.00", "2026-01-03T15:31:00.000Z")]);
    h.flaky.fail_after(1);
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("event_log_unavailable"))
    );
    assert_eq!(marks(&h, &["AAPL", "MSFT"]).await.iter().filter(|m| m.is_some()).count(), 1);

    h.flaky.heal();
    let (status, answer) = h.send(PATH, &body, Some(sign(INGEST_SECRET, &body))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["marks"].clone(), answer["stale"].clone()), (json!(1), json!(1)));
    assert!(marks(&h, &["AAPL", "MSFT"]).await.iter().all(Option::is_some));
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
async fn a_tick_costs_the_same_redis_commands_for_10000_holders_as_for_none() {
    let h = Harness::start().await;
    seed_many(&h, 10_000, "SPY").await;
    let mut costs = Vec::new();
    for (symbol, at) in [("SPY", "2026-01-03T15:31:00.000Z"), ("QQQ", "2026-01-03T15:31:00.000Z")] {
        let before = command_calls(&h);
        let batch: TickBatch = serde_json::from_str(&batch(&[(symbol, "151.00", at)])).unwrap();
        let outcome = prices::handle(batch, h.deps()).await.expect("handled");
        assert_eq!(outcome.marks, 1);
        let after = command_calls(&h);
        let mut delta: Vec<(String, u64)> = after
            .iter()
            .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
            .filter(|(name, calls)| *calls > 0 && name != "info")
            .collect();
        delta.sort();
        costs.push(delta);
    }
    // One script call, and inside it one HGET, one HSET and one SPUBLISH:
    // SPY's 10,000 holders cost nothing, exactly like QQQ's none.
    assert_eq!(costs[0], costs[1]);
    let evalsha = costs[0].iter().find(|(name, _)| name == "evalsha").map(|(_, calls)| *calls);
    assert_eq!(evalsha, Some(1), "{:?}", costs[0]);
    assert!(costs[0].iter().map(|(_, calls)| calls).sum::<u64>() <= 4, "{:?}", costs[0]);
}
