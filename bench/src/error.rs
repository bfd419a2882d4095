//! Why a scenario could not run.

use std::time::Duration;

use event_log::LogError;

/// Why a scenario could not run; the binary prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool the scenario drives is not installed.
    #[error("{tool} was not found on PATH; install it ({hint})")]
    MissingTool {
        /// The program's name.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// The options cannot be run as given.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Talking to Redis directly (flush, script load, info) failed.
    #[error("Redis: {0}")]
    Redis(String),
    /// The event log under test failed.
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// A baseline tool failed or printed something unreadable.
    #[error("`{command}` failed: {detail}")]
    Tool {
        /// The program that failed.
        command: String,
        /// Its exit status, stderr or the unreadable output.
        detail: String,
    },
    /// A phase ran past its time limit.
    #[error("{what} took longer than {limit:?}")]
    Timeout {
        /// The phase.
        what: String,
        /// The limit it ran past.
        limit: Duration,
    },
    /// The baseline does not do what the code under test does, so the
    /// comparison would mean nothing.
    #[error("baseline mismatch: {0}")]
    Mismatch(String),
    /// Reading or writing a file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<fred::error::Error> for Error {
    fn from(error: fred::error::Error) -> Self {
        Error::Redis(error.to_string())
    }
}
