//! The project's benchmark tool. Each scenario measures one target of
//! BRIEF §7 against baselines run on the same machine in the same run, and
//! returns a [`Report`] that the binary prints as a table and can write as
//! JSON. Results and the commands that reproduce them are kept in
//! `docs/benchmarks.md`.
//!
//! Every loop is bounded in count and in time, and every target is on the
//! loopback interface: by default the bench starts its own `redis-server`
//! on a free port, and the gateway and functions on free loopback ports.
//!
//! # Layout
//! - [`scenario`]: one module per scenario, each with its command-line
//!   [`Options`](scenario::publish::Options) and an async `run`; the
//!   [`Scenario`](scenario::Scenario) enum is the binary's subcommand list.
//!   - [`scenario::publish`]: publish throughput of the Redis event log
//!     against `redis-benchmark` baselines (`EVALSHA` of the same script,
//!     bare `XADD`).
//!   - [`scenario::latency`]: S1, ingest answer → client decoded, urgent
//!     and throttled; ours next to the peer and the baseline.
//!   - [`scenario::connections`]: S2, RSS per idle subscribed connection
//!     and connect rate; ours next to the peer and the baseline.
//!   - [`scenario::fanout`]: S3, one tick to K holders.
//!   - [`scenario::bandwidth`]: S4, bytes per user per simulated day.
//!   - [`scenario::soak`]: S5, S1's load for minutes with RSS sampled.
//! - [`system`]: the systems under test as child processes — ours
//!   (`edge-gateway`, `queue-completions`, `price-ticks`), the Socket.IO
//!   peer (`bench/peers/socketio/`) and the raw baseline (`ws-baseline`,
//!   `src/bin/`) — and a bare client connection to each.
//! - [`load`]: S1's and S5's load and what it measured.
//! - [`socketio`]: a minimal Socket.IO v5 client over WebSocket.
//! - [`client`]: what every bare client socket shares (buffer sizes).
//! - [`target`]: the Redis under test: our own `redis-server`, or a loopback
//!   URL; flushing and script loading between phases.
//! - [`redis_benchmark`]: runs the `redis-benchmark` tool and reads its CSV.
//! - [`measure`]: latency samples, percentiles, medians of runs, and the
//!   CPU time this process and its children used.
//! - [`report`]: a scenario's result: a Markdown table and JSON.
//! - [`Error`]: why a scenario could not run.

pub mod client;
pub mod error;
pub mod load;
pub mod measure;
pub mod redis_benchmark;
pub mod report;
pub mod scenario;
pub mod socketio;
pub mod system;
pub mod target;

pub use error::Error;
pub use report::Report;
