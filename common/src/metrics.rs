//! Every metric name, in one place (`docs/observability.md` explains them).
//! Producers and the gateway record through the `metrics` facade with these
//! names; the gateway exports them in Prometheus text at `/metrics`.

/// Gauge: open WebSocket connections on this instance (never labelled by user).
pub const WS_ACTIVE_CONNECTIONS: &str = "portfolio_ws_active_connections";
/// Counter{type}: user events the gateway received from the log.
pub const WS_EVENTS_EMITTED: &str = "portfolio_ws_events_emitted_total";
/// Counter{type}: messages queued to sockets, by message type.
pub const WS_EVENTS_DELIVERED: &str = "portfolio_ws_events_delivered_total";
/// Counter{reason}: messages not delivered (`slow_consumer`, `held_back`).
pub const WS_EVENTS_DROPPED: &str = "portfolio_ws_events_dropped_total";
/// Histogram (seconds): event creation (producer timestamp) → queued to the socket.
pub const WS_EVENT_LATENCY: &str = "portfolio_ws_event_latency_seconds";
/// Counter{reason}: refused connections (token, origin).
pub const WS_AUTH_FAILURES: &str = "portfolio_ws_auth_failures_total";
/// Counter{reason}: closed connections by reason.
pub const WS_DISCONNECTS: &str = "portfolio_ws_disconnects_total";
/// Counter{outcome}: resumes (`subscribe` with `since`): `caught_up` or `snapshot`.
pub const WS_RECONNECTS: &str = "portfolio_ws_reconnects_total";
/// Histogram: events covered by one `batch` message.
pub const WS_BATCH_SIZE: &str = "portfolio_ws_batch_size";
/// Gauge: 1 − messages sent / events received, since start.
pub const WS_BATCH_EFFICIENCY: &str = "portfolio_ws_batch_efficiency";
/// Gauge: 1 when the event log (Redis) answers, else 0.
pub const EVENT_LOG_UP: &str = "portfolio_event_log_up";
/// Counter{kind}: gap repairs (`gap`, `resync`, `snapshot`).
pub const REPAIRS: &str = "portfolio_repairs_total";
/// Counter{source}: events published by the ingest functions.
pub const INGEST_EVENTS_PUBLISHED: &str = "portfolio_ingest_events_published_total";
