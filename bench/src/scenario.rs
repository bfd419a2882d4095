//! One module per scenario. Each has `Options` (its command-line flags, with
//! a `--smoke` mode for CI) and an async `run` that returns a [`Report`];
//! [`Scenario`] is the binary's list of subcommands.

use crate::{Error, Report};

pub mod connections;
pub mod latency;
pub mod publish;

/// The scenarios, one subcommand each.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Publish throughput of the Redis event log, next to `redis-benchmark`
    /// running the same script with EVALSHA and a bare XADD.
    Publish(publish::Options),
    /// S1: event latency from the ingest function's answer to the client's
    /// decoded `order_update`, through Redis and the gateway (in process).
    Latency(latency::Options),
    /// S2: gateway RSS per idle, authenticated, subscribed connection and
    /// connect rate (the `edge-gateway` binary as a child process).
    Connections(connections::Options),
}

impl Scenario {
    /// Runs the scenario to its report.
    pub async fn run(&self) -> Result<Report, Error> {
        match self {
            Scenario::Publish(options) => publish::run(options).await,
            Scenario::Latency(options) => latency::run(options).await,
            Scenario::Connections(options) => connections::run(options).await,
        }
    }
}
