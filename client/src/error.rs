//! The client's errors: a bad configuration, or a wait that ran out.
//! Failures of the connection itself are not errors to the caller: the
//! client rides through them and reports them as a [`crate::Status`].

use std::time::Duration;

/// Why the client could not be configured, or a wait gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The gateway URL cannot be used.
    #[error("invalid gateway URL {0:?}: expected http://host:port or ws://host:port")]
    InvalidUrl(String),
    /// `https://`/`wss://`: this build speaks plain HTTP and WebSocket only
    /// (TLS terminates in front of the gateway; see the crate docs).
    #[error("TLS URLs (https, wss) are not supported by this build")]
    TlsUnsupported,
    /// The token cannot be sent in an HTTP header.
    #[error("the token contains characters not allowed in an HTTP header")]
    InvalidCredentials,
    /// [`crate::ClientHandle::wait_for`] (or its status twin) ran out of time.
    #[error("condition not met within {0:?}")]
    TimedOut(Duration),
}
