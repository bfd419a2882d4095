//! What the ingest functions and the edge gateway share: the event model and
//! wire protocol, P&L arithmetic, authentication, configuration, and the
//! per-user event log with its Redis and in-memory backends.
//!
//! # Layout
//! - [`event`]: the note's portfolio events (`position_update`, …) and the
//!   values inside them.
//! - [`protocol`]: client ↔ gateway messages (`subscribe`, `batch`,
//!   `snapshot`, …) and their typed decoding errors.
//! - [`pnl`]: market value and unrealized P&L on `Decimal`, with the rounding
//!   rules.
//! - [`auth`]: JWT validation (HS256, RS256, ES256).
//! - [`config`]: typed configuration read once from a replaceable source;
//!   every environment variable name is a constant there.
//! - [`log`]: the event log trait, its [`log::memory`] and [`log::redis`]
//!   backends, and (feature `conformance`) the suite both must pass.
//! - [`metrics`]: every metric name.
//! - [`keys`]: every Redis key and channel name, in one place.
//! - [`leases`]: per-user connection leases (the cross-instance connection
//!   limit), in Redis or in memory.

pub mod auth;
pub mod config;
pub mod event;
pub mod keys;
pub mod leases;
pub mod log;
pub mod metrics;
pub mod pnl;
pub mod protocol;
