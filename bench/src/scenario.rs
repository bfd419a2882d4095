//! One module per scenario. Each has `Flags` (its [`FlagSet`]), `Options`
//! (those flags in [`Options`], with `--smoke` for CI) and an async `run`
//! that returns a [`Report`]; [`Scenario`] is the binary's list of
//! subcommands. A scenario that compares systems runs them through
//! [`Under::each`](crate::system::Under::each).

use std::fmt::Display;
use std::ops::RangeInclusive;

use serde::Serialize;

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

/// A scenario's own flags: the sizes a `--smoke` run replaces, and the
/// checks of every value.
pub trait FlagSet: Clone + clap::Args {
    /// `--smoke`'s help: what the tiny run is.
    const SMOKE: &'static str;
    /// Replaces the sizes with the smoke run's.
    fn shrink(&mut self);
    /// Checks every value; an error names the flag.
    fn check(&self) -> Result<(), Error>;
}

/// A scenario's command line: its own flags (`S`, also reachable through
/// `Deref`) and `--smoke`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Options<S: FlagSet + Serialize> {
    /// The scenario's own flags.
    #[command(flatten)]
    #[serde(flatten)]
    pub flags: S,
    /// A tiny run for CI.
    #[arg(long, help = S::SMOKE)]
    pub smoke: bool,
}

impl<S: FlagSet + Serialize> Options<S> {
    /// The options a run uses: shrunk when `--smoke` was given, checked.
    pub fn effective(&self) -> Result<Self, Error> {
        let mut options = self.clone();
        if options.smoke {
            options.flags.shrink();
        }
        options.flags.check()?;
        Ok(options)
    }
}

/// The flags' defaults, as the command line gives them with no flags, so a
/// default is written once, in its `#[arg(default_value_t = …)]`.
impl<S: FlagSet + Serialize> Default for Options<S> {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Line<T: clap::Args> {
            #[command(flatten)]
            options: T,
        }
        <Line<Self> as clap::Parser>::parse_from(["bench"]).options
    }
}

impl<S: FlagSet + Serialize> std::ops::Deref for Options<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.flags
    }
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
