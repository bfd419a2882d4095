//! What the gateway counts: every figure goes to the `metrics` facade
//! (exported at `/metrics`) and, where the admin endpoint needs it, into
//! this process's own totals (`/api/admin/websocket-stats`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::metrics as names;
use common::protocol::close::{Close, Unauthenticated};
use hdrhistogram::Histogram;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};

/// Latency buckets (seconds) for the Prometheus histogram.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0];

/// The process-wide Prometheus recorder; installed once (tests run several
/// gateways in one process, which then share it).
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(names::WS_EVENT_LATENCY.to_owned()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(names::WS_BATCH_SIZE.to_owned()),
                    BATCH_BUCKETS,
                )
            });
        match builder {
            Ok(builder) => {
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                // Fails only if another recorder was installed first; the
                // handle then renders an empty page rather than crashing.
                if metrics::set_global_recorder(recorder).is_ok() {
                    zero_series();
                }
                handle
            }
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Every labelled counter's series, at zero: an alert on one (repairs,
/// drops, auth failures) sees 0 from the start, not "no data" until the
/// first increment.
fn zero_series() {
    for kind in ["gap", "resync", "snapshot", "lagged"] {
        metrics::counter!(names::REPAIRS, "kind" => kind).increment(0);
    }
    metrics::counter!(names::WS_EVENTS_DROPPED, "reason" => "slow_consumer").increment(0);
    for reason in ["origin", "token"] {
        metrics::counter!(names::WS_AUTH_FAILURES, "reason" => reason).increment(0);
    }
    for outcome in ["caught_up", "snapshot"] {
        metrics::counter!(names::WS_RECONNECTS, "outcome" => outcome).increment(0);
    }
    let closes = [None].into_iter().chain(Close::ALL.iter().copied().map(Some));
    for close in closes {
        metrics::counter!(names::WS_DISCONNECTS, "reason" => close_label(close)).increment(0);
    }
    metrics::gauge!(names::WS_ACTIVE_CONNECTIONS).set(0.0);
}

/// This instance's totals for the admin endpoint.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    active: AtomicU64,
    events_in: AtomicU64,
    messages_out: AtomicU64,
    disconnects: AtomicU64,
    resumes: AtomicU64,
    resumes_caught_up: AtomicU64,
    errors: AtomicU64,
    log_checks: AtomicU64,
    log_up: AtomicU64,
    /// Microseconds, event creation → queued to a socket.
    latency: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            active: AtomicU64::new(0),
            events_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            resumes_caught_up: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            log_checks: AtomicU64::new(0),
            log_up: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
                Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
            })),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) -> u64 {
    counter.fetch_add(n, Ordering::Relaxed) + n
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    /// A user event reached a hub.
    pub(crate) fn event_in(&self, kind: &'static str) {
        add(&self.events_in, 1);
        metrics::counter!(names::WS_EVENTS_EMITTED, "type" => kind).increment(1);
    }

    /// A message was queued to `sockets` sockets; `created` is when its
    /// newest event was made (for the latency histogram).
    pub(crate) fn delivered(&self, kind: &'static str, sockets: u64, created_ms: Option<i64>) {
        if sockets == 0 {
            return;
        }
        let out = add(&self.messages_out, sockets);
        metrics::counter!(names::WS_EVENTS_DELIVERED, "type" => kind).increment(sockets);
        if let Some(created_ms) = created_ms {
            let micros = (chrono::Utc::now().timestamp_micros() - created_ms * 1_000).max(1);
            let micros = u64::try_from(micros).unwrap_or(1);
            metrics::histogram!(names::WS_EVENT_LATENCY).record(micros as f64 / 1e6);
            if let Ok(mut histogram) = self.latency.lock() {
                let _ = histogram.record(micros);
            }
        }
        let events = get(&self.events_in).max(1);
        let efficiency = 1.0 - (out as f64 / events as f64).min(1.0);
        metrics::gauge!(names::WS_BATCH_EFFICIENCY).set(efficiency);
    }

    /// A batch covering `events` events went out.
    pub(crate) fn batch(&self, events: usize) {
        metrics::histogram!(names::WS_BATCH_SIZE).record(events as f64);
    }

    /// A message could not be delivered.
    pub(crate) fn dropped(&self, reason: &'static str) {
        add(&self.errors, 1);
        metrics::counter!(names::WS_EVENTS_DROPPED, "reason" => reason).increment(1);
    }

    /// A connection was refused for its credentials or origin.
    pub(crate) fn auth_failure(&self, reason: &'static str) {
        metrics::counter!(names::WS_AUTH_FAILURES, "reason" => reason).increment(1);
    }

    /// A connection opened.
    pub(crate) fn connected(&self) {
        let active = add(&self.active, 1);
        metrics::gauge!(names::WS_ACTIVE_CONNECTIONS).set(active as f64);
    }

    /// A connection closed.
    pub(crate) fn disconnected(&self, reason: &'static str) {
        add(&self.disconnects, 1);
        let active = self.active.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        metrics::counter!(names::WS_DISCONNECTS, "reason" => reason).increment(1);
        metrics::gauge!(names::WS_ACTIVE_CONNECTIONS).set(active as f64);
    }

    /// Open connections on this instance.
    pub(crate) fn active(&self) -> u64 {
        get(&self.active)
    }

    /// A client resumed; `caught_up` when history served it (no snapshot).
    pub(crate) fn resumed(&self, caught_up: bool) {
        add(&self.resumes, 1);
        if caught_up {
            add(&self.resumes_caught_up, 1);
        }
        let outcome = if caught_up { "caught_up" } else { "snapshot" };
        metrics::counter!(names::WS_RECONNECTS, "outcome" => outcome).increment(1);
    }

    /// A hub repaired a gap.
    pub(crate) fn repair(&self, kind: &'static str) {
        metrics::counter!(names::REPAIRS, "kind" => kind).increment(1);
    }

    /// A client message was refused with `error`.
    pub(crate) fn client_error(&self) {
        add(&self.errors, 1);
    }

    /// The result of one event-log health check.
    pub(crate) fn log_check(&self, up: bool) {
        add(&self.log_checks, 1);
        if up {
            add(&self.log_up, 1);
        }
        metrics::gauge!(names::EVENT_LOG_UP).set(if up { 1.0 } else { 0.0 });
    }

    /// The admin endpoint's JSON (the design note's fields).
    pub(crate) fn admin_json(&self, by_user: Vec<(String, usize, Duration)>) -> Value {
        let active = self.active();
        let minutes = (self.started.elapsed().as_secs_f64() / 60.0).max(1.0 / 60.0);
        let (avg, p95, p99) = match self.latency.lock() {
            Ok(h) if !h.is_empty() => (
                h.mean() / 1_000.0,
                h.value_at_quantile(0.95) as f64 / 1_000.0,
                h.value_at_quantile(0.99) as f64 / 1_000.0,
            ),
            _ => (0.0, 0.0, 0.0),
        };
        let ratio = |part: u64, whole: u64| if whole == 0 { 1.0 } else { part as f64 / whole as f64 };
        let out = get(&self.messages_out);
        json!({
            "activeConnections": active,
            "totalMessagesDelivered": out,
            "avgLatencyMs": round3(avg),
            "p95LatencyMs": round3(p95),
            "p99LatencyMs": round3(p99),
            "disconnectRate": round3(get(&self.disconnects) as f64 / minutes),
            "reconnectSuccessRate": round3(ratio(get(&self.resumes_caught_up), get(&self.resumes))),
            "batchEfficiency": round3(1.0 - ratio(out, get(&self.events_in).max(out)).min(1.0)),
            "errorRate": round3(get(&self.errors) as f64 / (out + get(&self.errors)).max(1) as f64),
            "uptimePercent": round3(100.0 * ratio(get(&self.log_up), get(&self.log_checks))),
            "connectionsByUser": by_user.into_iter().map(|(user, connections, uptime)| json!({
                "userId": user,
                "connections": connections,
                "uptime": human(uptime),
            })).collect::<Vec<_>>(),
        })
    }
}

fn round3(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

/// `4h 23m`, `12m 5s`, `9s`.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 3_600, (secs % 3_600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// The metric label of why a connection ended (`None`: the client closed or
/// the socket failed).
pub(crate) fn close_label(close: Option<Close>) -> &'static str {
    match close {
        None => "client_close",
        Some(Close::SlowConsumer) => "slow_consumer",
        Some(Close::HeartbeatTimeout) => "heartbeat_timeout",
        Some(Close::Unauthenticated(Unauthenticated::Expired)) => "session_expired",
        Some(Close::Restarting) => "shutdown",
        Some(Close::Flood) => "flood",
        Some(Close::Abuse) => "abuse",
        Some(Close::TooBig) => "too_big",
        Some(Close::LogUnavailable) => "log_unavailable",
        Some(_) => "other",
    }
}
