//! S2, connections and memory (issue 8, BRIEF §7), ours next to the
//! Socket.IO peer and the raw baseline in one run: for each system in turn
//! (child processes on a flushed `redis-server` of the bench's own), C idle
//! connections, one user each, authenticated and subscribed (ours: bearer
//! token and `subscribed`; peer: JWT in the CONNECT packet and its ack;
//! baseline: none). The socket process' RSS (`VmRSS` of
//! `/proc/<pid>/status`) is read before the first connection and after the
//! last; their difference over C is the memory per connection. The connect
//! rate is C over the time from the first handshake to the last one done.
//!
//! Connections are spread over source addresses 127.0.0.1, .2, … to pass
//! the ephemeral-port limit. Every process needs C + a few file
//! descriptors: raise `ulimit -n` in the shell first (the bench checks).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Error;
use crate::load;
use crate::measure::{own_rss_kib, require_open_files};
use crate::report::{Comparison, Environment, Figure, Goal, Report};
use crate::scenario::{self, check_range, FlagSet};
use crate::system::{events, Kind, Settings, System, Under};
use crate::target::Target;

/// Default connections.
pub const DEFAULT_CONNECTIONS: usize = 10_000;
/// Default handshakes in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 64;

const SMOKE_CONNECTIONS: usize = 50;
const MAX_CONNECTIONS: usize = 1_000_000;
const MAX_CONCURRENCY: usize = 4_096;
const MAX_POSITIONS: usize = 100;

/// Time for a system to settle before each RSS reading.
const SETTLE: Duration = Duration::from_millis(1_000);

/// The `connections` scenario's command line.
pub type Options = scenario::Options<Flags>;

/// Flags of the `connections` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Idle, authenticated, subscribed connections to open (one user each).
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Open positions each user holds (ours: seeded before connecting, so
    /// each hub keeps a valuation book; 0: users hold nothing).
    #[arg(long, default_value_t = 0)]
    pub positions: usize,
    /// Which systems, on which Redis.
    #[command(flatten)]
    pub under: Under,
}

impl FlagSet for Flags {
    const SMOKE: &'static str = "A tiny run for CI: 50 connections.";

    fn shrink(&mut self) {
        self.connections = SMOKE_CONNECTIONS;
    }

    fn check(&self) -> Result<(), Error> {
        check_range("connections", self.connections, 1..=MAX_CONNECTIONS)?;
        check_range("concurrency", self.concurrency, 1..=MAX_CONCURRENCY)?;
        check_range("positions", self.positions, 0..=MAX_POSITIONS)?;
        self.under.check()
    }
}

/// One system's measurement.
#[derive(Debug)]
struct Measured {
    kind: Kind,
    process: &'static str,
    rss_before_kib: u64,
    rss_after_kib: u64,
    connect_secs: f64,
    bench_rss_growth_kib: Option<u64>,
}

impl Measured {
    fn per_connection_kib(&self, connections: usize) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / connections as f64
    }
}

/// Runs S2 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    require_open_files(options.connections)?;
    let settings = Settings { no_heartbeat: true, ..Settings::with_capacity(options.connections) };
    let (measured, environment) =
        options.under.each(&settings, async |system, target| measure(&options, system, target).await).await?;
    Ok(report(&options, &measured, environment))
}

async fn measure(options: &Options, system: &System, target: &Target) -> Result<Measured, Error> {
    if system.kind == Kind::Ours && options.positions > 0 {
        let users: Vec<String> = (0..options.connections).map(load::user_id).collect();
        let symbols: Vec<String> = (0..options.positions).map(|i| format!("P{i:03}")).collect();
        let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        events::seed_holders(target.url(), &users, &symbols).await?;
    }
    let process = system.socket_process();
    let rss = || process.rss_kib().ok_or_else(|| Error::Mismatch(format!("cannot read /proc/{}/status", process.pid)));
    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = rss()?;
    let bench_before = own_rss_kib();
    let expires = functions::signature::now_unix() + 24 * 3_600;
    let started = Instant::now();
    let connections = load::connect_all(system, options.connections, options.concurrency, expires).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = rss()?;
    let bench_rss_growth_kib = own_rss_kib().zip(bench_before).map(|(after, before)| after.saturating_sub(before));
    for connection in connections {
        drop(connection);
    }
    Ok(Measured {
        kind: system.kind,
        process: process.name,
        rss_before_kib,
        rss_after_kib,
        connect_secs,
        bench_rss_growth_kib,
    })
}

fn report(options: &Options, measured: &[Measured], environment: Environment) -> Report {
    let c = options.connections;
    let mut per_connection = Comparison::new("RSS per idle connection ((after − before) / C)", "KiB", true)
        .goal("≤ 2 KiB (1 KiB stretch); peer seen at ~15 KB");
    let mut rate = Comparison::new("connect rate (handshake + auth + subscribed)", "conn/s", false);
    let mut total = Comparison::new(format!("socket process RSS with {c} connections"), "MiB", true);
    let mut figures = Vec::new();
    for m in measured {
        let name = m.kind.name();
        per_connection = per_connection.value(name, Some(m.per_connection_kib(c)));
        rate = rate.value(name, (m.connect_secs > 0.0).then(|| c as f64 / m.connect_secs));
        total = total.value(name, Some(m.rss_after_kib as f64 / 1024.0));
        figures.extend([
            Figure::new(format!("{name}: {} RSS before", m.process), m.rss_before_kib as f64, "KiB"),
            Figure::new(format!("{name}: {} RSS after", m.process), m.rss_after_kib as f64, "KiB"),
            Figure::new(format!("{name}: time to open all"), m.connect_secs, "s"),
        ]);
        if let Some(growth) = m.bench_rss_growth_kib {
            figures.push(Figure::new(
                format!("{name}: bench (client side) RSS growth per connection"),
                growth as f64 / c as f64,
                "KiB",
            ));
        }
    }
    let mut goals = Vec::new();
    if let Some(ours) = measured.iter().find(|m| m.kind == Kind::Ours) {
        let kib = ours.per_connection_kib(c);
        goals.push(Goal {
            name: "ours KiB per idle connection, BRIEF §7".to_owned(),
            target: 2.0,
            value: kib,
            met: kib <= 2.0,
        });
        if let Some(peer) = measured.iter().find(|m| m.kind == Kind::Socketio) {
            let ratio = kib / peer.per_connection_kib(c);
            goals.push(Goal {
                name: "ours ÷ peer KiB per connection (ahead: < 1), BRIEF §7".to_owned(),
                target: 1.0,
                value: ratio,
                met: ratio < 1.0,
            });
        }
    }
    Report {
        figures,
        comparisons: vec![per_connection, rate, total],
        goals,
        notes: vec![
            format!(
                "{c} idle connections, one user each, subscribed to every channel (ours: bearer token, `subscribe`, `subscribed`; peer: JWT in the Socket.IO CONNECT packet, per-user room; baseline: no auth); {} handshakes in flight. Systems one after the other, each on a flushed redis-server of the bench's own (ours and the peer follow every user through Redis).",
                options.concurrency
            ),
            format!(
                "Each user holds {} open positions (ours: seeded before connecting; each hub then keeps a valuation book and follows the symbols' marks). Compare with a --positions 0 run for the cost per position.",
                options.positions
            ),
            "RSS is VmRSS of the process holding the sockets (edge-gateway; the Socket.IO node; ws-baseline), 1 s after it started and 1 s after the last handshake; it includes allocator slack, so small C overstates the per-connection figure. Heartbeats are pushed out of the run (ours HEARTBEAT_INTERVAL_MS, the peer's pingInterval): idle bench sockets do not read.".to_owned(),
        ],
        ..Report::comparing("connections", environment, options)
    }
}
