//! Every close code and reason the gateway sends, in one place
//! (documented in `docs/protocol.md`).

/// A close code with its human-readable reason.
pub(crate) type Close = (u16, &'static str);

/// Authentication failed; the client must sign in again (no retry).
pub(crate) fn auth_failed(reason: &'static str) -> Close {
    (1008, reason)
}

/// The `Origin` header names a site that may not open the socket.
pub(crate) const ORIGIN_NOT_ALLOWED: Close = (1008, "Origin not allowed");
/// The token expired while connected.
pub(crate) const SESSION_EXPIRED: Close = (1008, "Session expired");
/// The gateway is restarting: reconnect at once, with jitter.
pub(crate) const RESTARTING: Close = (1012, "Server restarting");
/// Real-time streaming is switched off for this user: poll REST.
pub(crate) const DISABLED: Close = (1013, "Real-time portfolio disabled");
/// The connection could not keep up and its send queue filled: reconnect
/// and resume from the last seq.
pub(crate) const SLOW_CONSUMER: Close = (4001, "Send queue full - resume from your last seq");
/// The user already holds the maximum number of connections (all gateways).
pub(crate) const TOO_MANY_CONNECTIONS: Close = (1008, "Maximum connections exceeded");
/// This gateway is full.
pub(crate) const CAPACITY: Close = (1013, "Server capacity reached - try again later");
/// More client messages per second than allowed.
pub(crate) const FLOOD: Close = (1008, "Rate limit exceeded");
/// Too many invalid messages.
pub(crate) const ABUSE: Close = (1008, "Too many invalid messages");
/// A client message larger than the limit.
pub(crate) const TOO_BIG: Close = (1009, "Message too big");
/// No frame from the client within the heartbeat timeout.
pub(crate) const HEARTBEAT_TIMEOUT: Close = (1001, "Heartbeat timeout");

/// A short label for metrics: why a connection ended (`None`: the client
/// closed or the socket failed).
pub(crate) fn label(close: Option<Close>) -> &'static str {
    match close {
        None => "client_close",
        Some(c) if c == SLOW_CONSUMER => "slow_consumer",
        Some(c) if c == HEARTBEAT_TIMEOUT => "heartbeat_timeout",
        Some(c) if c == SESSION_EXPIRED => "session_expired",
        Some(c) if c == RESTARTING => "shutdown",
        Some(c) if c == FLOOD => "flood",
        Some(c) if c == ABUSE => "abuse",
        Some(c) if c == TOO_BIG => "too_big",
        Some(_) => "other",
    }
}
