//! S1, event latency (issue 8, BRIEF §7), ours next to the Socket.IO peer
//! and the raw baseline in one run: for each system in turn, on a freshly
//! flushed `redis-server` of the bench's own, N users with one bare
//! connection each (authenticated, subscribed), then R urgent order events
//! per second for D seconds POSTed through the system's ingest path for
//! random users ([`crate::load`]). Ours also runs a throttled phase: price
//! ticks for symbols the users hold, measured separately for the
//! first-in-window `position_update` and the coalesced `batch`.
//!
//! The systems run as child processes ([`crate::system`]); the bench, the
//! systems and Redis share the machine's cores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::protocol::ServerMessage;
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::load::{self, Load, Outcome, Summary};
use crate::measure::Latencies;
use crate::report::{Comparison, Environment, Figure, Goal, Report};
use crate::scenario::{self, check_range, FlagSet};
use crate::system::{self, events, Kind, Settings, System, Under};
use crate::target::Target;
use common::sync::lock;

/// Default users, one connection each.
pub const DEFAULT_USERS: usize = 1_000;
/// Default events per second.
pub const DEFAULT_RATE: u32 = 1_000;
/// Default seconds of sending.
pub const DEFAULT_SECONDS: u64 = 10;
/// Default requests in flight at most.
pub const DEFAULT_IN_FLIGHT: usize = 256;
/// Default price ticks per second in ours' throttled phase.
pub const DEFAULT_TICK_RATE: u32 = 20;

const SMOKE_USERS: usize = 20;
const SMOKE_RATE: u32 = 200;
const SMOKE_SECONDS: u64 = 2;

const MAX_USERS: usize = 100_000;
const MAX_RATE: u32 = 100_000;
const MAX_SECONDS: u64 = 3_600;
const MAX_IN_FLIGHT: usize = 10_000;

/// Symbols of the throttled phase; user n holds `SYMBOLS[n % len]`.
const SYMBOLS: [&str; 10] = ["BA", "BB", "BC", "BD", "BE", "BF", "BG", "BH", "BI", "BJ"];
/// Tick k's price: ~100 or ~110, alternating for each symbol's successive
/// ticks (a 10 % move, always past the diff threshold), plus k × 0.00001,
/// so the price names the tick.
const TICK_STEP: Decimal = Decimal::from_parts(1, 0, 0, false, 5);

/// The `latency` scenario's command line.
pub type Options = scenario::Options<Flags>;

/// Flags of the `latency` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Users, one connection each.
    #[arg(long, default_value_t = DEFAULT_USERS)]
    pub users: usize,
    /// Events POSTed per second.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    pub seconds: u64,
    /// Requests in flight at most (a slower system makes the sending rate
    /// fall short; the report gives the achieved rate).
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Price ticks per second in ours' throttled phase (0: skip it).
    #[arg(long, default_value_t = DEFAULT_TICK_RATE)]
    pub tick_rate: u32,
    /// Which systems, on which Redis.
    #[command(flatten)]
    pub under: Under,
}

impl FlagSet for Flags {
    const SMOKE: &'static str = "A tiny run for CI: 20 users, 200 events/s, 2 s.";

    fn shrink(&mut self) {
        self.users = SMOKE_USERS;
        self.rate = SMOKE_RATE;
        self.seconds = SMOKE_SECONDS;
    }

    fn check(&self) -> Result<(), Error> {
        check_range("users", self.users, 1..=MAX_USERS)?;
        check_range("rate", self.rate, 1..=MAX_RATE)?;
        check_range("seconds", self.seconds, 1..=MAX_SECONDS)?;
        check_range("in-flight", self.in_flight, 1..=MAX_IN_FLIGHT)?;
        check_range("tick-rate", self.tick_rate, 0..=1_000)?;
        // Tick prices name ticks below a million (see TICK_STEP).
        if u64::from(self.tick_rate) * self.seconds >= 1_000_000 {
            return Err(Error::InvalidOption("--tick-rate × --seconds must stay below 1000000".to_owned()));
        }
        self.under.check()
    }
}

impl Flags {
    /// The load of the urgent phase.
    pub fn load(&self, sample_every: Option<Duration>) -> Load {
        Load { users: self.users, rate: self.rate, seconds: self.seconds, in_flight: self.in_flight, sample_every }
    }
}

/// One system's run.
#[derive(Debug)]
pub struct Run {
    /// Which system.
    pub kind: Kind,
    /// Its processes' names, in order.
    pub processes: Vec<&'static str>,
    /// The urgent phase.
    pub outcome: Outcome,
    /// Ours' throttled phase.
    pub throttled: Option<Throttled>,
}

/// Runs `options` against each system in turn, each on a flushed Redis.
pub async fn run_systems(options: &Options, sample_every: Option<Duration>) -> Result<(Vec<Run>, Environment), Error> {
    let settings = Settings::with_capacity(options.users);
    options
        .under
        .each(&settings, async |system, target| {
            let outcome = load::drive(system, target, &options.load(sample_every)).await?;
            let throttled = if system.kind == Kind::Ours && options.tick_rate > 0 && sample_every.is_none() {
                Some(throttled_phase(system, target, options).await?)
            } else {
                None
            };
            let processes = system.processes.iter().map(|p| p.name).collect();
            Ok(Run { kind: system.kind, processes, outcome, throttled })
        })
        .await
}

/// Runs S1 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    let (runs, environment) = run_systems(&options, None).await?;
    Ok(report(&options, &runs, environment))
}

/// Ours' throttled phase: what the position updates of price ticks cost.
#[derive(Debug, Default)]
pub struct Throttled {
    /// Ticks answered 2xx.
    pub ticks: u64,
    /// tick answered → `position_update` decoded, first in its window.
    pub first_in_window: Latencies,
    /// tick answered → `batch` decoded carrying it.
    pub batched: Latencies,
}

/// POSTs `tick_rate` ticks per second for the run's seconds, round-robin
/// over [`SYMBOLS`], to users who each hold one of them; every connection
/// reports the ticks it sees.
async fn throttled_phase(system: &System, target: &Target, options: &Options) -> Result<Throttled, Error> {
    let users: Vec<String> = (0..options.users).map(load::user_id).collect();
    for (i, symbol) in SYMBOLS.iter().enumerate() {
        let holders: Vec<String> = users.iter().skip(i).step_by(SYMBOLS.len()).cloned().collect();
        events::seed_holders(target.url(), &holders, &[symbol]).await?;
    }
    let expires = functions::signature::now_unix() + 24 * 3_600;
    let connections = load::connect_all(system, options.users, load::CONNECT_CONCURRENCY, expires).await?;
    let ticks = usize::try_from(u64::from(options.tick_rate) * options.seconds).unwrap_or(0);
    let answered: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; ticks]));
    let seen: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; ticks]));
    let result: Arc<Mutex<Throttled>> = Arc::default();
    let mut readers = JoinSet::new();
    for mut connection in connections {
        let (answered, seen, result) = (answered.clone(), seen.clone(), result.clone());
        readers.spawn(async move {
            while let Some(Ok(message)) = connection.next().await {
                let now = Instant::now();
                let (prices, batched): (Vec<Decimal>, bool) = match &message {
                    ServerMessage::PositionUpdate(e) => (vec![e.data.current_price], false),
                    ServerMessage::Batch(e) => (e.data.positions.iter().map(|p| p.current_price).collect(), true),
                    _ => continue,
                };
                for k in prices.into_iter().filter_map(tick_of_price) {
                    if let Some(seen) = lock(&seen).get_mut(k) {
                        *seen = true;
                    }
                    let answer = lock(&answered).get(k).copied().flatten();
                    // A tick delivered before its answer was read counts 0.
                    let latency = answer.map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
                    let mut result = lock(&result);
                    if batched {
                        result.batched.record(latency);
                    } else {
                        result.first_in_window.record(latency);
                    }
                }
            }
        });
    }
    let period = Duration::from_secs_f64(1.0 / f64::from(options.tick_rate));
    let mut ticker = tokio::time::interval(period);
    let mut sent = JoinSet::new();
    let mut count = 0;
    for k in 0..ticks {
        ticker.tick().await;
        let request = system.tick_request(SYMBOLS[k % SYMBOLS.len()], price_of_tick(k), &[])?;
        let (http, answered) = (system.http().clone(), answered.clone());
        sent.spawn(async move {
            let ok = tokio::time::timeout(Duration::from_secs(10), system::send(&http, request)).await;
            if matches!(ok, Ok(Ok(()))) {
                lock(&answered)[k] = Some(Instant::now());
                true
            } else {
                false
            }
        });
        while let Some(done) = sent.try_join_next() {
            count += u64::from(done.unwrap_or(false));
        }
    }
    while let Some(done) = sent.join_next().await {
        count += u64::from(done.unwrap_or(false));
    }
    // Each symbol's last tick arrives with the last window's batch: wait
    // for them (bounded by a few windows).
    crate::measure::wait_until(Duration::from_secs(5), || {
        let seen = lock(&seen);
        seen.iter().rev().take(SYMBOLS.len()).all(|s| *s)
    })
    .await;
    readers.abort_all();
    let mut result = std::mem::take(&mut *lock(&result));
    result.ticks = count;
    Ok(result)
}

fn price_of_tick(k: usize) -> Decimal {
    // Each symbol's consecutive ticks (k, k + 10, …) alternate sides.
    let base = if (k / SYMBOLS.len()).is_multiple_of(2) { Decimal::from(100) } else { Decimal::from(110) };
    base + TICK_STEP * Decimal::from(k)
}

fn tick_of_price(price: Decimal) -> Option<usize> {
    [Decimal::from(100), Decimal::from(110)].into_iter().find_map(|base| {
        let k: usize = ((price - base) / TICK_STEP).round().to_string().parse().ok()?;
        (price_of_tick(k) == price).then_some(k)
    })
}

/// The report of S1 (and of S5, which adds its own figures).
pub fn report(options: &Options, runs: &[Run], environment: Environment) -> Report {
    let summaries: Vec<(Kind, Summary)> = runs.iter().map(|r| (r.kind, r.outcome.summary())).collect();
    let pick = |f: &dyn Fn(&Summary) -> Option<f64>, mut c: Comparison| {
        for (kind, s) in &summaries {
            c = c.value(kind.name(), f(s));
        }
        c
    };
    let at = |i: usize| move |s: &Summary| s.from_answer_ms.get(i).copied();
    let mut comparisons = vec![
        pick(&at(0), Comparison::new("p50, ingest answered → client decoded", "ms", true).goal("≤ 1 ms")),
        pick(&at(1), Comparison::new("p95, ingest answered → client decoded", "ms", true)),
        pick(&at(2), Comparison::new("p99, ingest answered → client decoded", "ms", true).goal("≤ 5 ms")),
        pick(&at(3), Comparison::new("max, ingest answered → client decoded", "ms", true)),
        pick(
            &|s: &Summary| s.from_send_ms.get(2).copied(),
            Comparison::new("p99, request sent → client decoded", "ms", true),
        ),
        pick(&|s: &Summary| Some(s.rate), Comparison::new("achieved rate", "events/s", false)),
        pick(
            &|s: &Summary| Some((s.lost + s.duplicates) as f64),
            Comparison::new("lost + duplicated", "events", true).goal("0"),
        ),
    ];
    let cpu_total = |run: &Run, answered: u64| {
        let per = run.outcome.cpu_per_event_us(answered);
        (!per.is_empty()).then(|| per.iter().map(|(_, v)| v).sum::<f64>())
    };
    let mut cpu = Comparison::new("CPU of the system (all its processes + Redis) per event", "µs", true);
    for (run, (_, s)) in runs.iter().zip(&summaries) {
        cpu = cpu.value(run.kind.name(), cpu_total(run, s.answered));
    }
    comparisons.push(cpu);
    let mut rss = Comparison::new("RSS of the socket process after the load", "MiB", true);
    for run in runs {
        let last = run.outcome.rss.last().and_then(|s| s.kib.first()).map(|kib| *kib as f64 / 1024.0);
        rss = rss.value(run.kind.name(), last);
    }
    comparisons.push(rss);

    let mut figures = Vec::new();
    for (run, (kind, s)) in runs.iter().zip(&summaries) {
        let name = kind.name();
        figures.extend([
            Figure::new(format!("{name}: answered 2xx"), s.answered as f64, "events"),
            Figure::new(format!("{name}: received (first copy)"), s.received as f64, "events"),
            Figure::new(format!("{name}: lost (answered, never received)"), s.lost as f64, "events"),
            Figure::new(format!("{name}: duplicated (extra copies)"), s.duplicates as f64, "events"),
            Figure::new(format!("{name}: received without a 2xx answer"), s.unasked as f64, "events"),
            Figure::new(format!("{name}: HTTP errors or timeouts"), run.outcome.http_errors as f64, "requests"),
            Figure::new(
                format!("{name}: connections failed during the load"),
                run.outcome.connection_errors as f64,
                "connections",
            ),
            Figure::new(format!("{name}: seq not previous + 1 (over all connections)"), s.seq_breaks as f64, "times"),
            Figure::new(format!("{name}: time to open {} connections", options.users), run.outcome.connect_secs, "s"),
        ]);
        for (process, us) in run.outcome.cpu_per_event_us(s.answered) {
            figures.push(Figure::new(format!("{name}: CPU of {process} per event"), us, "µs"));
        }
        if let Some(mismatches) = run.outcome.snapshot_mismatches {
            figures.push(Figure::new(
                format!("{name}: users whose REST snapshot ≠ what they received"),
                mismatches as f64,
                "users",
            ));
        }
        if let Some(throttled) = &run.throttled {
            figures.push(Figure::new(
                format!("{name}: price ticks answered (throttled phase)"),
                throttled.ticks as f64,
                "ticks",
            ));
            for (label, latencies) in [
                ("first-in-window position_update", &throttled.first_in_window),
                ("batched position", &throttled.batched),
            ] {
                let mut latencies = latencies.clone();
                figures.push(Figure::new(format!("{name}: {label} samples"), latencies.len() as f64, "updates"));
                if let Some(ps) = latencies.percentiles_ms(&[50.0, 95.0, 99.0, 100.0]) {
                    for (p, v) in ["p50", "p95", "p99", "max"].iter().zip(ps) {
                        figures.push(Figure::new(format!("{name}: {p}, tick answered → {label} decoded"), v, "ms"));
                    }
                }
            }
        }
    }
    if let Some(error) = runs.iter().find_map(|r| r.outcome.first_http_error.as_ref()) {
        figures.push(Figure::new(format!("first HTTP error: {error}"), 1.0, "–"));
    }

    let mut goals = Vec::new();
    if let Some((_, ours)) = summaries.iter().find(|(k, _)| *k == Kind::Ours) {
        let p50 = ours.from_answer_ms.first().copied().unwrap_or(f64::NAN);
        let p99 = ours.from_answer_ms.get(2).copied().unwrap_or(f64::NAN);
        goals.push(Goal {
            name: "ours p50 ms (answer → decoded), BRIEF §7".to_owned(),
            target: 1.0,
            value: p50,
            met: p50 <= 1.0,
        });
        goals.push(Goal {
            name: "ours p99 ms (answer → decoded), BRIEF §7".to_owned(),
            target: 5.0,
            value: p99,
            met: p99 <= 5.0,
        });
        let bad = ours.lost + ours.duplicates + ours.seq_breaks;
        goals.push(Goal {
            name: "ours lost + duplicated + seq breaks".to_owned(),
            target: 0.0,
            value: bad as f64,
            met: bad == 0 && ours.answered > 0,
        });
        if let Some((_, peer)) = summaries.iter().find(|(k, _)| *k == Kind::Socketio) {
            let (ours_p99, peer_p99) = (p99, peer.from_answer_ms.get(2).copied().unwrap_or(f64::NAN));
            goals.push(Goal {
                name: "ours p99 ÷ peer p99 (ahead of the peer: < 1), BRIEF §7".to_owned(),
                target: 1.0,
                value: ours_p99 / peer_p99,
                met: ours_p99 < peer_p99,
            });
        }
    }

    Report {
        figures,
        comparisons,
        goals,
        notes: vec![
            format!(
                "{} users, one connection each (all channels); {} urgent order events/s for {} s, each POSTed for a random user through the system's ingest path; at most {} requests in flight. Systems run one after the other, each on a flushed redis-server of the bench's own.",
                options.users, options.rate, options.seconds, options.in_flight
            ),
            "ours: signed POST /queue/completions to the queue-completions function (local HTTP) → Lua publish to the user's Redis stream → edge-gateway → socket. peer: POST /publish to the publisher node → io.to(room).emit through the Redis streams adapter → Socket.IO node → socket. baseline: POST /publish → the socket's queue. The peer and the baseline are handed the JSON our gateway would send, so every client decodes the same bytes.".to_owned(),
            "Latency sample: from the moment the bench read the ingest endpoint's 2xx answer to the moment the connection decoded the event (same process and clock; 0 when the event came first). The bench, the systems and Redis share the machine's cores.".to_owned(),
        ],
        ..Report::comparing("latency", environment, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_prices_name_their_tick() {
        for k in [0, 1, 2, 999, 1_000, 99_999] {
            assert_eq!(tick_of_price(price_of_tick(k)), Some(k), "{k}");
        }
        assert_eq!(tick_of_price(Decimal::new(100_000_015, 6)), None, "between two ticks");
        assert_eq!(tick_of_price(Decimal::from(50)), None);
    }

    #[test]
    fn smoke_sizes_apply() {
        let o = Options { smoke: true, ..Options::default() }.effective().unwrap();
        assert_eq!((o.users, o.load(None).events()), (SMOKE_USERS, 400));
        let mut o = Options::default();
        o.flags.rate = 0;
        assert!(o.effective().is_err());
        let mut o = Options::default();
        o.flags.under.systems.clear();
        assert!(o.effective().is_err());
    }
}
