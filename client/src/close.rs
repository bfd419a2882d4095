//! What the client does about each way a socket can end: the protocol's
//! [`Close`] says whether and how to reconnect; this maps it, and the ways a
//! socket ends without a close, to the driver's next step in one function.

use common::protocol::close::{Close, Reconnect};

/// How the last session was closed by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code, if the frame had one.
    pub code: Option<u16>,
    /// The gateway's human-readable reason.
    pub reason: String,
}

/// How a session ended, as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The gateway closed the socket with this code (if any) and reason.
    Closed { code: Option<u16>, reason: String },
    /// The HTTP upgrade was refused with 401 or 403.
    Refused,
    /// A transport error, a timeout, a protocol error, or a gateway `error`
    /// that leaves the state unreliable.
    Failed(String),
    /// Nothing arrived within the pong timeout.
    DeadLink,
    /// The handle asked the client to stop.
    Stopped,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Stop; the credentials are not accepted.
    Unauthorized,
    /// Stop; the handle asked for it.
    Stop,
    /// Reconnect after a short random delay, without counting a failure.
    Restart,
    /// Poll REST; try the socket again when health says it is back.
    Disabled,
    /// Count a failure and reconnect with backoff, resuming from `seq`.
    Backoff,
}

/// The one mapping from how a session ended to what the client does.
/// `live` says whether the session had been subscribed: a restart close
/// before that is treated as a plain failure, so a gateway that keeps
/// closing new sockets with 1012 cannot make clients spin.
pub(crate) fn next(ended: &Ended, live: bool) -> Next {
    match ended {
        Ended::Stopped => Next::Stop,
        Ended::Refused => Next::Unauthorized,
        Ended::Closed { code: Some(code), reason } => match Close::reconnect_after(*code, reason) {
            Reconnect::Never => Next::Unauthorized,
            Reconnect::Poll => Next::Disabled,
            Reconnect::Immediately if live => Next::Restart,
            Reconnect::Immediately | Reconnect::Backoff => Next::Backoff,
        },
        Ended::Closed { code: None, .. } | Ended::Failed(_) | Ended::DeadLink => Next::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u16) -> Ended {
        Ended::Closed { code: Some(code), reason: String::new() }
    }

    #[test]
    fn codes_map_to_the_documented_behaviour() {
        assert_eq!(next(&closed(1008), true), Next::Unauthorized);
        let limit = Ended::Closed { code: Some(1008), reason: "Maximum connections exceeded".into() };
        assert_eq!(next(&limit, true), Next::Backoff);
        let capacity = Ended::Closed { code: Some(1013), reason: "Server capacity reached - try again later".into() };
        assert_eq!(next(&capacity, false), Next::Backoff);
        assert_eq!(next(&closed(1012), true), Next::Restart);
        assert_eq!(next(&closed(1012), false), Next::Backoff);
        let disabled = Ended::Closed { code: Some(1013), reason: "Real-time portfolio disabled".into() };
        assert_eq!(next(&disabled, false), Next::Disabled);
        assert_eq!(next(&closed(4001), true), Next::Backoff);
        assert_eq!(next(&closed(1000), true), Next::Backoff);
        assert_eq!(next(&Ended::Refused, false), Next::Unauthorized);
        assert_eq!(next(&Ended::DeadLink, true), Next::Backoff);
        assert_eq!(next(&Ended::Stopped, true), Next::Stop);
    }
}
