//! Every WebSocket close code and reason of the protocol (`docs/protocol.md`),
//! shared by the gateway that sends them and the clients that act on them.

/// A close code with its human-readable reason.
pub type Close = (u16, &'static str);

/// Authentication or policy: see [`is_terminal`] for which ones end retrying.
pub const POLICY: u16 = 1008;
/// The gateway is restarting: reconnect at once (small jitter) and resume.
pub const RESTART: u16 = 1012;
/// Try again later: capacity reached, or real-time disabled for this user.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// A client message was too big.
pub const TOO_BIG_CODE: u16 = 1009;
/// The connection could not keep up: reconnect with backoff and resume.
pub const SLOW_CONSUMER_CODE: u16 = 4001;

/// The `Origin` header names a site that may not open the socket.
pub const ORIGIN_NOT_ALLOWED: Close = (POLICY, "Origin not allowed");
/// The token expired while connected.
pub const SESSION_EXPIRED: Close = (POLICY, "Session expired");
/// The user already holds the maximum number of connections (all gateways).
pub const TOO_MANY_CONNECTIONS: Close = (POLICY, "Maximum connections exceeded");
/// More client messages per second than allowed.
pub const FLOOD: Close = (POLICY, "Rate limit exceeded");
/// Too many invalid messages.
pub const ABUSE: Close = (POLICY, "Too many invalid messages");
/// A client message larger than the limit.
pub const TOO_BIG: Close = (TOO_BIG_CODE, "Message too big");
/// No frame from the client within the heartbeat timeout.
pub const HEARTBEAT_TIMEOUT: Close = (1001, "Heartbeat timeout");
/// The gateway is restarting.
pub const RESTARTING: Close = (RESTART, "Server restarting");
/// Real-time streaming is switched off for this user: poll REST.
pub const DISABLED: Close = (TRY_AGAIN_LATER, "Real-time portfolio disabled");
/// This gateway is full.
pub const CAPACITY: Close = (TRY_AGAIN_LATER, "Server capacity reached - try again later");
/// The send queue filled.
pub const SLOW_CONSUMER: Close = (SLOW_CONSUMER_CODE, "Send queue full - resume from your last seq");

/// The 1008 closes a client may retry later (with backoff): limits and
/// abuse controls, not credentials.
pub const RETRYABLE_POLICY: [Close; 3] = [TOO_MANY_CONNECTIONS, FLOOD, ABUSE];

/// Whether a close means "stop: sign in again" — a 1008 that is not one of
/// the retryable policy closes (unknown 1008 reasons count as auth failures,
/// the safe side).
pub fn is_terminal(code: u16, reason: &str) -> bool {
    code == POLICY && !RETRYABLE_POLICY.iter().any(|(_, r)| *r == reason)
}

/// Whether a close means "real-time is off for you: poll REST".
pub fn is_disabled(code: u16, reason: &str) -> bool {
    code == TRY_AGAIN_LATER && reason == DISABLED.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_retryable_and_auth_is_not() {
        assert!(is_terminal(POLICY, "Invalid token"));
        assert!(is_terminal(POLICY, SESSION_EXPIRED.1));
        assert!(is_terminal(POLICY, "something new"));
        assert!(!is_terminal(POLICY, TOO_MANY_CONNECTIONS.1));
        assert!(!is_terminal(RESTART, "Invalid token"));
        assert!(is_disabled(DISABLED.0, DISABLED.1));
        assert!(!is_disabled(CAPACITY.0, CAPACITY.1));
    }
}
