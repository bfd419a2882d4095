//! The connection status a client reports (through a `watch` channel).

/// Where the client stands. `Unauthorized` and `Closed` are final: the
/// client has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The first attempt to open the socket is under way.
    Connecting,
    /// Subscribed: updates stream in.
    Live,
    /// The socket dropped or an attempt failed; the next attempt is
    /// scheduled with backoff (or at once after a restart).
    Reconnecting,
    /// The socket failed too often; the state comes from REST polling while
    /// the socket is retried in the background at the capped backoff.
    Polling,
    /// The gateway said real-time is off for this user (close 1013 or
    /// `/api/health`); the state comes from REST polling, and the socket is
    /// tried again when health says it is back on.
    Disabled,
    /// The gateway refused the credentials (close 1008, HTTP 401/403). The
    /// client does not retry: sign in again and connect a new client.
    Unauthorized,
    /// [`crate::ClientHandle::close`] was called (or the handle dropped).
    Closed,
}

impl Status {
    /// Whether the client has stopped for good.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Unauthorized | Status::Closed)
    }

    /// Whether the state is fed by REST polling rather than the socket.
    pub fn is_polling(self) -> bool {
        matches!(self, Status::Polling | Status::Disabled)
    }
}
