//! What the relay reports: each stream's state (connected, age of its last
//! message, reconnects) for `GET /healthz`, and the same as Prometheus
//! series on `GET /metrics` with the relay's counters. The note's "Alpaca
//! Stream Silent" alert is `relay_stream_last_message_age_seconds` (or
//! `relay_stream_connected == 0`) of the trade-updates stream.
//!
//! `/healthz` answers 200 while the trade-updates stream is connected and
//! 503 otherwise: without it no broker event reaches anyone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// Metric names.
pub mod names {
    /// Gauge, by `stream`: 1 while connected.
    pub const CONNECTED: &str = "relay_stream_connected";
    /// Gauge, by `stream`: seconds since its last message (since the start
    /// before the first).
    pub const LAST_MESSAGE_AGE: &str = "relay_stream_last_message_age_seconds";
    /// Counter, by `stream`: times it went down (a connection lost, or the
    /// first attempt failing); retries while down do not count again.
    pub const RECONNECTS: &str = "relay_stream_reconnects_total";
    /// Counter, by `kind` (`trade_update`, `price_batch`, `sync`) and
    /// `outcome` (`ok`, `refused`, `failed`): sends to the functions.
    pub const FORWARDED: &str = "relay_forwarded_total";
    /// Counter: fills found by backfills (sent again; the functions publish
    /// the ones they did not have).
    pub const BACKFILLED: &str = "relay_backfilled_fills_total";
    /// Counter: prints received from market data.
    pub const PRINTS: &str = "relay_prints_total";
}

/// The trade-updates stream's label.
pub const TRADE_UPDATES: &str = "trade_updates";
/// The market-data stream's label.
pub const MARKET_DATA: &str = "market_data";

/// One stream's state.
#[derive(Debug)]
pub struct StreamHealth {
    name: &'static str,
    connected: AtomicBool,
    /// Milliseconds after [`Health::started`] of the last message; 0: none.
    last_message: AtomicU64,
    reconnects: AtomicU64,
}

impl StreamHealth {
    fn new(name: &'static str) -> Self {
        Self { name, connected: AtomicBool::new(false), last_message: AtomicU64::new(0), reconnects: AtomicU64::new(0) }
    }

    /// Whether it is connected now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

/// Both streams' state, shared by the relay's tasks and the health server.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// The trade-updates stream.
    pub trades: StreamHealth,
    /// The market-data stream.
    pub market: StreamHealth,
    /// Whether market data is configured at all.
    pub market_enabled: bool,
}

impl Health {
    /// Fresh state: nothing connected yet.
    pub fn new(market_enabled: bool) -> Arc<Self> {
        prometheus();
        for stream in [TRADE_UPDATES, MARKET_DATA] {
            metrics::counter!(names::RECONNECTS, "stream" => stream).increment(0);
        }
        for kind in ["trade_update", "price_batch", "sync"] {
            for outcome in ["ok", "refused", "failed"] {
                metrics::counter!(names::FORWARDED, "kind" => kind, "outcome" => outcome).increment(0);
            }
        }
        metrics::counter!(names::BACKFILLED).increment(0);
        metrics::counter!(names::PRINTS).increment(0);
        Arc::new(Self {
            started: Instant::now(),
            trades: StreamHealth::new(TRADE_UPDATES),
            market: StreamHealth::new(MARKET_DATA),
            market_enabled,
        })
    }

    /// `stream` connected (and authenticated).
    pub fn connected(&self, stream: &StreamHealth) {
        stream.connected.store(true, Ordering::SeqCst);
        self.message(stream);
    }

    /// `stream` lost its connection, or could not make one.
    pub fn disconnected(&self, stream: &StreamHealth) {
        if stream.connected.swap(false, Ordering::SeqCst) || stream.reconnects.load(Ordering::SeqCst) == 0 {
            stream.reconnects.fetch_add(1, Ordering::SeqCst);
            metrics::counter!(names::RECONNECTS, "stream" => stream.name).increment(1);
        }
    }

    /// `stream` delivered a message now.
    pub fn message(&self, stream: &StreamHealth) {
        let millis = self.started.elapsed().as_millis().max(1) as u64;
        stream.last_message.store(millis, Ordering::SeqCst);
    }

    /// Time since `stream`'s last message (since the start before the first).
    pub fn age(&self, stream: &StreamHealth) -> Duration {
        let last = Duration::from_millis(stream.last_message.load(Ordering::SeqCst));
        self.started.elapsed().saturating_sub(last)
    }

    fn stream_json(&self, stream: &StreamHealth) -> serde_json::Value {
        let never = stream.last_message.load(Ordering::SeqCst) == 0;
        json!({
            "connected": stream.is_connected(),
            "lastMessageAgeMs": if never { serde_json::Value::Null } else { json!(self.age(stream).as_millis() as u64) },
            "reconnects": stream.reconnects.load(Ordering::SeqCst),
        })
    }
}

/// Counts one send to the functions.
pub fn forwarded(kind: &'static str, outcome: &'static str) {
    metrics::counter!(names::FORWARDED, "kind" => kind, "outcome" => outcome).increment(1);
}

/// The health and metrics routes.
pub fn router(health: Arc<Health>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics_page)).with_state(health)
}

async fn healthz(State(health): State<Arc<Health>>) -> Response {
    let up = health.trades.is_connected();
    let mut body = json!({
        "status": if up { "ok" } else { "disconnected" },
        "tradeUpdates": health.stream_json(&health.trades),
    });
    if health.market_enabled {
        body["marketData"] = health.stream_json(&health.market);
    }
    let status = if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics_page(State(health): State<Arc<Health>>) -> Response {
    for stream in [&health.trades, &health.market] {
        metrics::gauge!(names::CONNECTED, "stream" => stream.name).set(f64::from(u8::from(stream.is_connected())));
        metrics::gauge!(names::LAST_MESSAGE_AGE, "stream" => stream.name).set(health.age(stream).as_secs_f64());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render()).into_response()
}

/// The process-wide recorder, installed once (tests run several relays in
/// one process, which then share it).
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder came first; the page is then empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
