//! Every way the gateway closes a socket (`docs/protocol.md`), as one value
//! that the gateway sends and the clients act on. The wire carries a code
//! and a reason; [`Close`] carries what they mean, above all whether and how
//! the client reconnects ([`Reconnect`]), so nothing compares reason strings
//! but [`Close::from_wire`].
//!
//! The codes are fixed by the brief (1008 for auth failures and for limits
//! alike), so telling a retryable 1008 from an auth failure takes the
//! reason, in that one function.

use serde::Serialize;

/// RFC 6455 1001: going away (here: the client stopped answering pings).
pub const GOING_AWAY: u16 = 1001;
/// RFC 6455 1008: authentication or policy.
pub const POLICY: u16 = 1008;
/// RFC 6455 1009: a client message was too big.
pub const TOO_BIG: u16 = 1009;
/// IANA 1012: the gateway is restarting.
pub const RESTART: u16 = 1012;
/// IANA 1013: try again later (capacity, real-time disabled, or the event
/// log unavailable).
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Private use: the connection could not keep up.
pub const SLOW_CONSUMER: u16 = 4001;

/// What a client does after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reconnect {
    /// Stop: the credentials are not accepted; sign in again.
    Never,
    /// Reconnect with exponential backoff and resume from the last seq.
    Backoff,
    /// Reconnect at once (a small random delay) and resume: the gateway is
    /// restarting.
    Immediately,
    /// Real-time is off for this user: poll REST, and try the socket again
    /// when `/api/health` says it is back.
    Poll,
}

/// Why a token was refused, as far as the client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unauthenticated {
    /// No token came with the request.
    Missing,
    /// The token expired (before the upgrade, or while connected).
    Expired,
    /// The token's `nbf` is still in the future.
    NotYetValid,
    /// Anything else wrong with the token (signature, shape, claims).
    Invalid,
    /// The gateway cannot check tokens right now.
    Unavailable,
}

impl Unauthenticated {
    /// Every kind, for tables and tests.
    pub const ALL: [Unauthenticated; 5] = [
        Unauthenticated::Missing,
        Unauthenticated::Expired,
        Unauthenticated::NotYetValid,
        Unauthenticated::Invalid,
        Unauthenticated::Unavailable,
    ];

    /// The reason sent to the client.
    pub fn reason(self) -> &'static str {
        match self {
            Unauthenticated::Missing => "Authentication required",
            Unauthenticated::Expired => "Session expired",
            Unauthenticated::NotYetValid => "Token not yet valid",
            Unauthenticated::Invalid => "Invalid token",
            Unauthenticated::Unavailable => "Authentication unavailable",
        }
    }
}

/// One close the gateway sends, with its code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Close {
    /// The `Origin` header names a site that may not open the socket.
    OriginNotAllowed,
    /// The token was refused, at the upgrade or (expired) while connected.
    Unauthenticated(Unauthenticated),
    /// The user already holds the maximum number of connections (all
    /// gateways).
    TooManyConnections,
    /// More client messages per second than allowed.
    Flood,
    /// Too many invalid messages.
    Abuse,
    /// A client message larger than the limit.
    TooBig,
    /// No frame from the client within the heartbeat timeout.
    HeartbeatTimeout,
    /// The gateway is restarting.
    Restarting,
    /// Real-time streaming is switched off for this user.
    Disabled,
    /// This gateway is full.
    Capacity,
    /// The send queue filled.
    SlowConsumer,
    /// The event log did not answer the read a subscription needs (its
    /// snapshot, or the events after `since`): the socket is closed rather
    /// than left subscribed without a base.
    LogUnavailable,
}

impl Close {
    /// Every close, for tables (the dev page is served this list) and tests.
    pub const ALL: [Close; 16] = [
        Close::OriginNotAllowed,
        Close::Unauthenticated(Unauthenticated::Missing),
        Close::Unauthenticated(Unauthenticated::Expired),
        Close::Unauthenticated(Unauthenticated::NotYetValid),
        Close::Unauthenticated(Unauthenticated::Invalid),
        Close::Unauthenticated(Unauthenticated::Unavailable),
        Close::TooManyConnections,
        Close::Flood,
        Close::Abuse,
        Close::TooBig,
        Close::HeartbeatTimeout,
        Close::Restarting,
        Close::Disabled,
        Close::Capacity,
        Close::SlowConsumer,
        Close::LogUnavailable,
    ];

    /// The close code on the wire.
    pub fn code(self) -> u16 {
        match self {
            Close::OriginNotAllowed
            | Close::Unauthenticated(_)
            | Close::TooManyConnections
            | Close::Flood
            | Close::Abuse => POLICY,
            Close::TooBig => TOO_BIG,
            Close::HeartbeatTimeout => GOING_AWAY,
            Close::Restarting => RESTART,
            Close::Disabled | Close::Capacity | Close::LogUnavailable => TRY_AGAIN_LATER,
            Close::SlowConsumer => SLOW_CONSUMER,
        }
    }

    /// The human-readable reason on the wire (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Close::OriginNotAllowed => "Origin not allowed",
            Close::Unauthenticated(why) => why.reason(),
            Close::TooManyConnections => "Maximum connections exceeded",
            Close::Flood => "Rate limit exceeded",
            Close::Abuse => "Too many invalid messages",
            Close::TooBig => "Message too big",
            Close::HeartbeatTimeout => "Heartbeat timeout",
            Close::Restarting => "Server restarting",
            Close::Disabled => "Real-time portfolio disabled",
            Close::Capacity => "Server capacity reached - try again later",
            Close::SlowConsumer => "Send queue full - resume from your last seq",
            Close::LogUnavailable => "Event log unavailable - resume later",
        }
    }

    /// What the client does next.
    pub fn reconnect(self) -> Reconnect {
        match self {
            Close::OriginNotAllowed | Close::Unauthenticated(_) => Reconnect::Never,
            Close::Restarting => Reconnect::Immediately,
            Close::Disabled => Reconnect::Poll,
            Close::TooManyConnections
            | Close::Flood
            | Close::Abuse
            | Close::TooBig
            | Close::HeartbeatTimeout
            | Close::Capacity
            | Close::SlowConsumer
            | Close::LogUnavailable => Reconnect::Backoff,
        }
    }

    /// The close a received code and reason stand for, if the gateway sends
    /// it.
    pub fn from_wire(code: u16, reason: &str) -> Option<Close> {
        Close::ALL.into_iter().find(|close| close.code() == code && close.reason() == reason)
    }

    /// What a client does about any close it receives: a known close by its
    /// meaning; otherwise by its code — an unknown 1008 counts as an auth
    /// failure (the safe side), 1012 as a restart, 1013 and everything else
    /// as a failure to back off from.
    pub fn reconnect_after(code: u16, reason: &str) -> Reconnect {
        match Close::from_wire(code, reason) {
            Some(close) => close.reconnect(),
            None if code == POLICY => Reconnect::Never,
            None if code == RESTART => Reconnect::Immediately,
            None => Reconnect::Backoff,
        }
    }

    /// The close as a row of the table `docs/protocol.md` documents:
    /// `{"code":1008,"reason":"…","reconnect":"never"}`.
    pub fn entry(self) -> CloseEntry {
        CloseEntry { code: self.code(), reason: self.reason(), reconnect: self.reconnect() }
    }
}

/// A close as data, for clients that cannot link this crate (the dev page
/// is served [`Close::ALL`] as a list of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CloseEntry {
    /// The close code.
    pub code: u16,
    /// The exact reason text.
    pub reason: &'static str,
    /// What the client does next.
    pub reconnect: Reconnect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_retryable_and_auth_is_not() {
        assert_eq!(Close::reconnect_after(POLICY, "Invalid token"), Reconnect::Never);
        assert_eq!(Close::reconnect_after(POLICY, "Session expired"), Reconnect::Never);
        assert_eq!(Close::reconnect_after(POLICY, "something new"), Reconnect::Never);
        assert_eq!(Close::reconnect_after(POLICY, "Maximum connections exceeded"), Reconnect::Backoff);
        assert_eq!(Close::reconnect_after(RESTART, "Invalid token"), Reconnect::Immediately);
        assert_eq!(Close::reconnect_after(TRY_AGAIN_LATER, "Real-time portfolio disabled"), Reconnect::Poll);
        assert_eq!(
            Close::reconnect_after(TRY_AGAIN_LATER, "Server capacity reached - try again later"),
            Reconnect::Backoff
        );
        assert_eq!(Close::reconnect_after(1000, ""), Reconnect::Backoff);
    }

    #[test]
    fn every_close_reads_back_from_the_wire() {
        for close in Close::ALL {
            assert_eq!(Close::from_wire(close.code(), close.reason()), Some(close), "{close:?}");
            assert!(close.reason().len() <= 123, "{close:?}: a close reason fits in a control frame");
        }
        let unauthenticated = Close::ALL.iter().filter(|c| matches!(c, Close::Unauthenticated(_))).count();
        assert_eq!(unauthenticated, Unauthenticated::ALL.len());
    }

    #[test]
    fn entries_serialize_as_documented() {
        let json = serde_json::to_string(&Close::Disabled.entry()).unwrap();
        assert_eq!(json, r#"{"code":1013,"reason":"Real-time portfolio disabled","reconnect":"poll"}"#);
    }
}
