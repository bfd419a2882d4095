//! One module per scenario. Each has `Options` (its command-line flags, with
//! a `--smoke` mode for CI) and an async `run` that returns a [`Report`];
//! [`Scenario`] is the binary's list of subcommands.

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::error::Error;
use crate::report::Report;

pub mod bandwidth;
pub mod connections;
pub mod fanout;
pub mod latency;
pub mod publish;
pub mod soak;

/// `value` of `--flag` must lie in `range`; the error names both.
pub(crate) fn check_range<T: PartialOrd + Display>(
    flag: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), Error> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!("--{flag} must be {}..={}", range.start(), range.end())))
    }
}

/// What every scenario's options do before a run: take the `--smoke` sizes
/// when asked, then check every value.
pub trait Flags: Clone {
    /// Replaces the sizes with the smoke run's.
    fn shrink(&mut self);
    /// Checks every value; an error names the flag.
    fn check(self) -> Result<Self, Error>;
    /// Whether `--smoke` was given.
    fn smoke(&self) -> bool;

    /// The options a run uses: shrunk when `--smoke` was given, checked.
    fn effective(&self) -> Result<Self, Error> {
        let mut options = self.clone();
        if options.smoke() {
            options.shrink();
        }
        options.check()
    }
}

/// Implements `Default` for a scenario's options as their flags' defaults
/// ([`flag_defaults`]).
macro_rules! default_from_flags {
    ($options:ty) => {
        /// The flags' defaults.
        impl Default for $options {
            fn default() -> Self {
                $crate::scenario::flag_defaults()
            }
        }
    };
}
pub(crate) use default_from_flags;

/// A scenario's options as the command line gives them with no flags, so
/// its `Default` is written once, in its `#[arg(default_value_t = …)]`s.
pub(crate) fn flag_defaults<T: clap::Args>() -> T {
    #[derive(clap::Parser)]
    struct Flags<T: clap::Args> {
        #[command(flatten)]
        flags: T,
    }
    <Flags<T> as clap::Parser>::parse_from(["bench"]).flags
}

/// The scenarios, one subcommand each.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Publish throughput of the Redis event log, next to `redis-benchmark`
    /// running the same script with EVALSHA and a bare XADD.
    Publish(publish::Options),
    /// S1: event latency from the ingest endpoint's answer to the client's
    /// decoded event; ours next to the Socket.IO peer and the raw baseline.
    Latency(latency::Options),
    /// S2: RSS per idle, authenticated, subscribed connection and connect
    /// rate; ours next to the peer and the baseline.
    Connections(connections::Options),
    /// S3: one tick for a symbol held by K users → time until all K
    /// decoded it; ours next to the peer and the baseline.
    Fanout(fanout::Options),
    /// S4: bytes on the wire for one user with 10 positions over a
    /// simulated trading day.
    Bandwidth(bandwidth::Options),
    /// S5: S1's load for minutes, RSS sampled; growth, lost and duplicated
    /// events, final state against the snapshot.
    Soak(soak::Options),
}

impl Scenario {
    /// Runs the scenario to its report.
    pub async fn run(&self) -> Result<Report, Error> {
        match self {
            Scenario::Publish(options) => publish::run(options).await,
            Scenario::Latency(options) => latency::run(options).await,
            Scenario::Connections(options) => connections::run(options).await,
            Scenario::Fanout(options) => fanout::run(options).await,
            Scenario::Bandwidth(options) => bandwidth::run(options).await,
            Scenario::Soak(options) => soak::run(options).await,
        }
    }
}
