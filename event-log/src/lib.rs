//! The per-user event log: one [`EventLog`] trait, two backends ([`memory`]
//! and [`redis`]) that pass one conformance suite, and what lives beside the
//! log in the same store — connection [`leases`] and the ingest [`index`].
//! Every binary opens its backend one way, [`backend::open`], and stops on
//! one [`shutdown::signal`].
//!
//! # Layout
//! - [`log`]: the trait and what goes in and out of it (events to publish,
//!   stored events, reads, notices, settings).
//! - [`error`]: [`LogError`], shared by the log, the index and the leases.
//! - [`memory`], [`redis`]: the two backends; the Redis scripts are files
//!   beside `redis.rs` (`redis/*.lua`).
//! - [`index`]: holders per symbol and the broker account → user directory.
//! - [`leases`]: per-user connection leases (the cross-instance connection
//!   limit); their script is `leases/acquire.lua`.
//! - [`keys`]: every Redis key and channel name.
//! - [`backend`]: the backend chosen by the environment, and opening it.
//! - [`shutdown`]: SIGTERM or Ctrl-C.
//! - [`conformance`] (feature `conformance`): the suite every backend passes.

pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod index;
pub mod keys;
pub mod leases;
pub mod log;
pub mod memory;
pub mod redis;
pub mod shutdown;

pub use backend::{open, Backend, Role, Store};
pub use error::{LogError, LogResult};
pub use log::{EventLog, LogSettings, NewEvent, Notice, Published, ReadAfter, SharedLog, Snapshot, StoredEvent};
