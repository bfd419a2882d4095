//! One module per scenario. Each has `Options` (its command-line flags, with
//! a `--smoke` mode for CI) and an async `run` that returns a [`Report`];
//! [`Scenario`] is the binary's list of subcommands.

use crate::{Error, Report};

pub mod publish;

/// The scenarios, one subcommand each.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Publish throughput of the Redis event log, next to `redis-benchmark`
    /// running the same script with EVALSHA and a bare XADD.
    Publish(publish::Options),
}

impl Scenario {
    /// Runs the scenario to its report.
    pub async fn run(&self) -> Result<Report, Error> {
        match self {
            Scenario::Publish(options) => publish::run(options).await,
        }
    }
}
