//! S3, fanout (issues 8, 14): one price tick for a symbol held by K users →
//! the time until each of the C connected holders (C ≤ K, default all)
//! decoded its `position_update`, ours next to the peer and the baseline in
//! one run.
//!
//! Ours: K users seeded with a position in the symbol (as the broker
//! webhook would), C of them connected, then a signed tick POSTed to the
//! `price-ticks` function, which stores the symbol's mark and publishes it
//! once; each gateway revalues its connected holders. The Redis commands a
//! tick costs (`INFO commandstats`, before and after the round) are
//! reported. Peer and baseline: one POST naming the C connected users,
//! emitted to C rooms / sockets.
//!
//! Each round's samples run from the moment the bench sent the request
//! (ours answers only after publishing everything, so the answer is no
//! origin here). Rounds are spaced past ours' throttle window so each tick
//! is first in its window. The report gives the median over rounds of each
//! round's p50, p99 and max.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::protocol::ServerMessage;
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::load;
use crate::measure::{median, require_open_files, Latencies};
use crate::report::{Comparison, Environment, Figure, Goal, Report};
use crate::scenario::{self, check_range, FlagSet};
use crate::system::{self, events, Kind, Settings, System, Under};
use crate::target::Target;
use common::sync::lock;

/// Default holders.
pub const DEFAULT_HOLDERS: usize = 10_000;
/// Default ticks (rounds).
pub const DEFAULT_ROUNDS: usize = 5;

const SMOKE_HOLDERS: usize = 50;
const SMOKE_ROUNDS: usize = 2;
const MAX_HOLDERS: usize = 100_000;
const MAX_ROUNDS: usize = 100;

const SYMBOL: &str = "FANX";
/// Past ours' 1 s throttle window, so every round's tick leads its window.
const ROUND_GAP: Duration = Duration::from_millis(1_300);
/// Goal (issue 14): every holder decoded within this of the tick being sent.
const GOAL_MS: f64 = 150.0;
/// How long one round may take to reach everyone.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `fanout` scenario's command line.
pub type Options = scenario::Options<Flags>;

/// Flags of the `fanout` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Users holding the symbol, one connection each.
    #[arg(long, default_value_t = DEFAULT_HOLDERS)]
    pub holders: usize,
    /// Holders connected, one connection each (default: every holder).
    #[arg(long)]
    pub connected: Option<usize>,
    /// Ticks sent, one per round.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: usize,
    /// Our holders subscribe with field deltas (and resolve them, as our
    /// clients do); full objects otherwise.
    #[arg(long)]
    pub deltas: bool,
    /// Which systems, on which Redis.
    #[command(flatten)]
    pub under: Under,
}

impl FlagSet for Flags {
    const SMOKE: &'static str = "A tiny run for CI: 50 holders, 2 rounds.";

    fn shrink(&mut self) {
        self.holders = SMOKE_HOLDERS;
        self.connected = None;
        self.rounds = SMOKE_ROUNDS;
    }

    fn check(&self) -> Result<(), Error> {
        check_range("holders", self.holders, 1..=MAX_HOLDERS)?;
        check_range("rounds", self.rounds, 1..=MAX_ROUNDS)?;
        if let Some(connected) = self.connected {
            check_range("connected", connected, 1..=self.holders)?;
        }
        self.under.check()
    }
}

impl Flags {
    /// Holders with a connection.
    fn connected(&self) -> usize {
        self.connected.unwrap_or(self.holders).min(self.holders)
    }
}

/// Round r's price: a 10 % step each round, past any diff threshold.
fn price_of_round(r: usize) -> Decimal {
    Decimal::from(100 + 10 * r as i64)
}

#[derive(Debug)]
struct Measured {
    kind: Kind,
    /// Per round: p50, p99, max in ms, and how many received it.
    rounds: Vec<(Vec<f64>, usize)>,
    /// Ours: Redis commands per round, from the tick sent to its answer.
    redis_commands: Vec<u64>,
}

impl Measured {
    fn median_of(&self, i: usize) -> Option<f64> {
        median(&self.rounds.iter().filter_map(|(ps, _)| ps.get(i).copied()).collect::<Vec<_>>())
    }
}

/// Runs S3 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    require_open_files(options.connected())?;
    let settings = Settings { deltas: options.deltas, ..Settings::with_capacity(options.connected()) };
    let (measured, environment) =
        options.under.each(&settings, async |system, target| measure(&options, system, target).await).await?;
    Ok(report(&options, &measured, environment))
}

async fn measure(options: &Options, system: &System, target: &Target) -> Result<Measured, Error> {
    let users: Vec<String> = (0..options.holders).map(load::user_id).collect();
    if system.kind == Kind::Ours {
        events::seed_holders(target.url(), &users, &[SYMBOL]).await?;
    }
    let expires = functions::signature::now_unix() + 24 * 3_600;
    let connected = options.connected();
    let connections = load::connect_all(system, connected, load::CONNECT_CONCURRENCY, expires).await?;
    // receipts[r] = when each connection decoded round r's update.
    let receipts: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); options.rounds]));
    let mut readers = JoinSet::new();
    for mut connection in connections {
        let receipts = receipts.clone();
        readers.spawn(async move {
            while let Some(Ok(message)) = connection.next().await {
                let now = Instant::now();
                let prices: Vec<Decimal> = match &message {
                    ServerMessage::PositionUpdate(e) => vec![e.data.current_price],
                    ServerMessage::Batch(e) => e.data.positions.iter().map(|p| p.current_price).collect(),
                    _ => continue,
                };
                let mut receipts = lock(&receipts);
                for price in prices {
                    if let Some(round) = (0..receipts.len()).find(|r| price_of_round(*r + 1) == price) {
                        receipts[round].push(now);
                    }
                }
            }
        });
    }
    let mut rounds = Vec::with_capacity(options.rounds);
    let mut redis_commands = Vec::new();
    for r in 0..options.rounds {
        // The peer and the baseline are told whom to reach: the connected.
        let request = system.tick_request(SYMBOL, price_of_round(r + 1), &users[..connected])?;
        let commands_before = target.command_calls().await?;
        let sent = Instant::now();
        system::send(system.http(), request).await.map_err(|e| Error::Mismatch(format!("round {r}: {e}")))?;
        // Ours answers after storing and publishing the mark; the fanout
        // after it needs no Redis. (Read at once, so the gateways' periodic
        // lease renewals rarely fall in.)
        let commands = target.command_calls().await?.saturating_sub(commands_before);
        let everyone = crate::measure::wait_until(ROUND_TIMEOUT, || lock(&receipts)[r].len() >= connected).await;
        let got = lock(&receipts)[r].clone();
        if !everyone {
            return Err(Error::Mismatch(format!(
                "{}: round {r} reached {} of {connected} holders within {ROUND_TIMEOUT:?}",
                system.kind.name(),
                got.len(),
            )));
        }
        if system.kind == Kind::Ours {
            redis_commands.push(commands);
        }
        let mut latencies = Latencies::with_capacity(got.len());
        for at in &got {
            latencies.record(at.saturating_duration_since(sent));
        }
        rounds.push((latencies.percentiles_ms(&[50.0, 99.0, 100.0]).unwrap_or_default(), got.len()));
        tokio::time::sleep(ROUND_GAP).await;
    }
    readers.abort_all();
    Ok(Measured { kind: system.kind, rounds, redis_commands })
}

fn report(options: &Options, measured: &[Measured], environment: Environment) -> Report {
    let k = options.connected();
    let mut comparisons = vec![
        Comparison::new(format!("p50, tick sent → holder decoded ({k} holders)"), "ms", true),
        Comparison::new(format!("p99, tick sent → holder decoded ({k} holders)"), "ms", true),
        Comparison::new(format!("max, tick sent → all {k} holders decoded"), "ms", true),
    ];
    let mut figures = Vec::new();
    for m in measured {
        for (i, c) in comparisons.iter_mut().enumerate() {
            *c = c.clone().value(m.kind.name(), m.median_of(i));
        }
        for (r, (ps, got)) in m.rounds.iter().enumerate() {
            let ps: Vec<String> = ps.iter().map(|v| format!("{v:.1}")).collect();
            figures.push(Figure::new(
                format!("{}: round {r} p50/p99/max ms = {}", m.kind.name(), ps.join(" / ")),
                *got as f64,
                "holders reached",
            ));
        }
        if !m.redis_commands.is_empty() {
            let commands: Vec<f64> = m.redis_commands.iter().map(|&c| c as f64).collect();
            figures.push(Figure::new(
                format!(
                    "{}: Redis commands per tick, tick sent → answered, median over rounds (INFO commandstats; each round: {:?})",
                    m.kind.name(),
                    m.redis_commands
                ),
                median(&commands).unwrap_or_default(),
                "commands",
            ));
        }
    }
    let mut goals = Vec::new();
    let figure_of = |kind: Kind, i: usize| measured.iter().find(|m| m.kind == kind).and_then(|m| m.median_of(i));
    for (i, what) in [(0, "p50"), (2, "max")] {
        if let Some(ours) = figure_of(Kind::Ours, i) {
            goals.push(Goal {
                name: format!("ours {what}, tick sent → holder decoded (ms, ≤ 150)"),
                target: GOAL_MS,
                value: ours,
                met: ours <= GOAL_MS,
            });
        }
        if let (Some(ours), Some(peer)) = (figure_of(Kind::Ours, i), figure_of(Kind::Socketio, i)) {
            goals.push(Goal {
                name: format!("ours ÷ peer {what} (ahead: < 1)"),
                target: 1.0,
                value: ours / peer,
                met: ours < peer,
            });
        }
    }
    Report {
        figures,
        comparisons,
        goals,
        notes: vec![
            format!(
                "{k} connected holders of {SYMBOL}, one connection each; {} ticks, one per round, {ROUND_GAP:?} apart; figures are medians over rounds. Origin: the moment the bench sent the request.",
                options.rounds
            ),
            format!("{} users hold {SYMBOL} in all; {k} of them are connected.", options.holders),
            "ours: a signed POST /ingest/prices → the function stores the symbol's mark and SPUBLISHes it once → the gateway, which follows the symbol for its connected holders, revalues each one's position and account → K sockets. peer: POST /publish naming the connected holders → io.to(rooms).emit through the Redis streams adapter. baseline: POST /publish naming the connected holders → their socket queues.".to_owned(),
        ],
        ..Report::comparing("fanout", environment, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_have_distinct_prices_past_the_threshold() {
        assert_ne!(price_of_round(1), price_of_round(2));
        assert!(price_of_round(2) / price_of_round(1) > Decimal::new(1001, 3));
    }
}
