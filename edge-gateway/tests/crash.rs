//! `kill -9` of Redis while events are being published and a client is
//! connected, then a restart from its append-only file (docs/reliability.md,
//! "Network faults"): every acknowledged event is in the log exactly once,
//! in seq order, and the client has each of them exactly once, in order.

mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::event::OrderStatus;
use common::fixtures as conformance;
use event_log::{NewEvent, ReadAfter};
use harness::*;
use test_support::redis::RedisServer;
use test_support::wait;

const EVENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_mid_stream_loses_no_acknowledged_event() {
    let mut server = RedisServer::start();
    let producer = redis_log(&server).await;
    let gateway = Gateway::start(redis_log(&server).await, &[]).await;
    let who = user("kira");
    let mut socket = connect(&gateway, "kira").await;
    subscribe(&mut socket, &["orders"]).await;

    // The publisher retries each event (same dedupe id) until it is
    // acknowledged, as a sender does on 503; the acks are recorded.
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let publisher = {
        let (producer, who, acked) = (producer.clone(), who.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0..EVENTS {
                let event =
                    NewEvent::new(conformance::order(&who, &format!("o-{i}"), OrderStatus::New), format!("e-{i}"));
                let published = wait::until("an acknowledged publish", Duration::from_secs(30), || {
                    let (producer, event) = (producer.clone(), event.clone());
                    async move { producer.publish(&event).await.ok() }
                })
                .await;
                acked.lock().expect("acks").push(published.seq());
            }
        })
    };
    wait::until("a quarter of the events acknowledged", Duration::from_secs(30), || {
        let enough = acked.lock().expect("acks").len() >= EVENTS / 4;
        async move { enough.then_some(()) }
    })
    .await;
    server.kill(); // SIGKILL: no shutdown, no final AOF rewrite
    server.restart(); // replays the append-only file
    publisher.await.expect("the publisher finished");

    let acked = acked.lock().expect("acks").clone();
    let expected: Vec<u64> = (1..=EVENTS as u64).collect();
    assert_eq!(acked, expected, "every event acknowledged once, in order");
    let ReadAfter::Events { events, head, .. } = producer.read_after(&who, None, 0, 10_000).await.expect("read") else {
        panic!("the log reads");
    };
    assert_eq!(head, EVENTS as u64);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), expected, "the log has each once");

    let mut seqs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seqs.last() != Some(&(EVENTS as u64)) {
        assert!(tokio::time::Instant::now() < deadline, "the client got {seqs:?}");
        let message = next(&mut socket).await.expect("the socket stays open");
        if message["type"] == "order_update" {
            seqs.extend(message["seq"].as_u64());
        }
    }
    assert_eq!(seqs, expected, "the client has each event once, in order");
    gateway.stop().await;
}
