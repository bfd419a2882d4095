//! Test harnesses shared by every crate of the workspace, so no test file
//! grows its own copy.
//!
//! # Layout
//! - [`alpaca`]: a fake Alpaca trading API (positions, account) on a free
//!   loopback port, with switches to hang or fail.
//! - [`http`]: a small HTTP client for servers in another task or process.
//! - [`net`]: free loopback ports.
//! - [`process`]: a binary run with a test's own environment, and a
//!   process' resident memory, from `/proc`.
//! - [`redis`]: a real `redis-server` on a free loopback port, started,
//!   stopped and restarted by the test, and a real Redis Cluster of them;
//!   never the default port, never a mock.
//! - [`wait`]: waiting on a condition with a deadline instead of sleeping.

pub mod alpaca;
pub mod http;
pub mod net;
pub mod process;
pub mod redis;
pub mod wait;
