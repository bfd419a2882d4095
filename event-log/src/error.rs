//! What the log, the index and the leases fail with.

/// Why the log refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The backend cannot be reached or did not answer in time. Nothing
    /// was changed as far as the caller can tell; retrying with the same
    /// dedupe id is safe.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The event cannot be published as given.
    #[error("invalid event: {0}")]
    InvalidEvent(&'static str),
    /// The backend answered with something this code cannot read.
    #[error("corrupt data in event log: {0}")]
    Corrupt(String),
}

/// What the log's operations return.
pub type LogResult<T> = Result<T, LogError>;
