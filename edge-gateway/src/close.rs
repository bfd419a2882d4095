//! The close codes the gateway sends: the shared ones from
//! `common::protocol::close`, plus the metric label of each.

pub(crate) use common::protocol::close::Close;

/// Authentication failed; the client must sign in again (no retry).
pub(crate) fn auth_failed(reason: &'static str) -> Close {
    (common::protocol::close::POLICY, reason)
}

pub(crate) use common::protocol::close::{
    ABUSE, CAPACITY, DISABLED, FLOOD, HEARTBEAT_TIMEOUT, ORIGIN_NOT_ALLOWED, RESTARTING, SESSION_EXPIRED,
    SLOW_CONSUMER, TOO_BIG, TOO_MANY_CONNECTIONS,
};

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
