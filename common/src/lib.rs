//! The wire protocol and the rules every part of the system shares, as pure
//! data and functions (no I/O runtime, no Redis, no JWT): the Rust client,
//! the bench's clients and the servers all decode with it.
//!
//! # Layout
//! - [`event`]: the note's portfolio events (`position_update`, …), the
//!   values inside them, and the user-id and symbol rules.
//! - [`protocol`]: client ↔ gateway messages (`subscribe`, `batch`,
//!   `snapshot`, …) and their typed decoding errors; [`protocol::close`]:
//!   every close code as a value that says whether and how to reconnect.
//! - [`pnl`]: market value and unrealized P&L on `Decimal`, with the rounding
//!   rules.
//! - [`config`]: reading typed configuration once from a replaceable source;
//!   each binary names its own variables.
//! - [`metrics`]: every metric name.
//! - [`sync`]: locking a mutex whose holder panicked.
//! - [`backoff`]: exponential reconnect delays with jitter.
//! - [`fixtures`] (feature `fixtures`): sample events for tests.

pub mod backoff;
pub mod config;
pub mod decimal;
pub mod event;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod metrics;
pub mod pnl;
pub mod protocol;
pub mod sync;
