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
//!   - [`scenario::latency`]: S1, ingest HTTP answer → client decoded an
//!     `order_update`, through Redis and the gateway (in process).
//!   - [`scenario::connections`]: S2, gateway RSS per idle subscribed
//!     connection and connect rate (the `edge-gateway` binary as a child).
//! - [`target`]: the Redis under test: our own `redis-server`, or a loopback
//!   URL; flushing and script loading between phases.
//! - [`redis_benchmark`]: runs the `redis-benchmark` tool and reads its CSV.
//! - [`measure`]: latency samples, percentiles, medians of runs, and the
//!   CPU time this process and its children used.
//! - [`report`]: a scenario's result: a Markdown table and JSON.
//! - [`Error`]: why a scenario could not run.

mod error;
pub mod measure;
pub mod redis_benchmark;
pub mod report;
pub mod scenario;
pub mod target;

pub use error::Error;
pub use report::Report;
