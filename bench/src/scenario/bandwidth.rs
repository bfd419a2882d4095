//! S4, bandwidth (issue 8, BRIEF §7: < 100 KB per user per day): one user
//! with 10 positions over a simulated trading day — 6.5 h of ticks at one
//! per second per symbol, a seeded random walk (1.5 % daily volatility,
//! cent prices) — and the bytes our client receives on the wire.
//!
//! Time is compressed by `--speedup`: the gateway runs with its throttle
//! window and settle time divided by the same factor (`THROTTLE_WINDOW_MS`,
//! `DIFF_SETTLE_MS`) and one tick batch (every symbol's tick for one
//! simulated second) is POSTed to the real `price-ticks` function every
//! 1/speedup s, so every window still sees one tick per symbol, as in real
//! time. Bytes are counted below the WebSocket (frame headers included)
//! from the moment the connection was subscribed.
//!
//! Our gateway does not offer permessage-deflate (axum's WebSocket does
//! not negotiate it); the report gives what it would save, estimated by
//! compressing the received frames with a DEFLATE stream flushed per
//! message (context takeover, as the extension does). Socket.IO and the
//! baseline do not throttle: every tick goes out; their figures are
//! computed from the same simulated day, frame by frame.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::Error;
use crate::report::{load_average, Comparison, Environment, Figure, Goal, Report};
use crate::scenario::{self, check_range, FlagSet};
use crate::system::{self, events, Kind, Locations, Settings, System};
use crate::target::Target;
use common::sync::lock;

/// Seconds in a trading day (6.5 h).
pub const TRADING_DAY_SECS: u32 = 23_400;
/// Default time compression.
pub const DEFAULT_SPEEDUP: u32 = 100;
/// Positions of the user.
pub const DEFAULT_POSITIONS: usize = 10;
/// Goal: bytes per user per day (BRIEF §7).
pub const GOAL_BYTES: f64 = 100_000.0;

const SMOKE_DAY_SECS: u32 = 60;
const SMOKE_SPEEDUP: u32 = 20;
/// Daily volatility of the random walk.
const DAILY_VOLATILITY: f64 = 0.015;
/// Ours' default throttle window and settle time, which the speedup divides.
const WINDOW_MS: u32 = 1_000;
const SETTLE_MS: u32 = 5_000;
/// The Socket.IO server's default ping interval.
const SOCKETIO_PING_SECS: u32 = 25;
const USER: &str = "bench-bandwidth";

/// The `bandwidth` scenario's command line.
pub type Options = scenario::Options<Flags>;

/// Flags of the `bandwidth` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Simulated seconds of trading.
    #[arg(long, default_value_t = TRADING_DAY_SECS)]
    pub day_seconds: u32,
    /// Time compression: simulated seconds per real second (divides the
    /// throttle window, so at most 1000).
    #[arg(long, default_value_t = DEFAULT_SPEEDUP)]
    pub speedup: u32,
    /// Positions the user holds (one symbol each, one tick per second each).
    #[arg(long, default_value_t = DEFAULT_POSITIONS)]
    pub positions: usize,
    /// Seed of the random walk.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A Redis on the loopback interface to use instead of starting one.
    /// Every key in it is DELETED (FLUSHALL) first.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub locations: Locations,
}

impl FlagSet for Flags {
    const SMOKE: &'static str = "A tiny run for CI: 60 simulated seconds at 20×.";

    fn shrink(&mut self) {
        self.day_seconds = SMOKE_DAY_SECS;
        self.speedup = SMOKE_SPEEDUP;
    }

    fn check(&self) -> Result<(), Error> {
        check_range("day-seconds", self.day_seconds, 1..=86_400)?;
        check_range("speedup", self.speedup, 1..=1_000)?;
        check_range("positions", self.positions, 1..=100)
    }
}

impl Flags {
    fn symbols(&self) -> Vec<String> {
        (0..self.positions).map(|i| format!("BW{i:02}")).collect()
    }
}

/// The simulated day: for each second, every symbol's price.
fn random_walk(options: &Options) -> Vec<Vec<Decimal>> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let sigma = DAILY_VOLATILITY / f64::from(TRADING_DAY_SECS).sqrt();
    let mut prices: Vec<f64> = (0..options.positions).map(|i| 50.0 + 25.0 * i as f64).collect();
    (0..options.day_seconds)
        .map(|_| {
            prices
                .iter_mut()
                .map(|p| {
                    // Irwin–Hall: the sum of 12 uniforms minus 6 is ~N(0, 1).
                    let z: f64 = (0..12).map(|_| rng.gen::<f64>()).sum::<f64>() - 6.0;
                    *p = (*p * (1.0 + sigma * z)).max(0.01);
                    Decimal::from_f64_retain(*p).unwrap_or(Decimal::ONE).round_dp(2).max(Decimal::new(1, 2))
                })
                .collect()
        })
        .collect()
}

/// A DEFLATE stream flushed after every message, as permessage-deflate
/// with context takeover sends it: what each message would cost.
struct Deflate {
    compress: flate2::Compress,
    out: Vec<u8>,
}

impl Deflate {
    fn new() -> Self {
        Self {
            compress: flate2::Compress::new(flate2::Compression::default(), false),
            out: Vec::with_capacity(64 * 1024),
        }
    }

    /// The compressed size of `message` (the 4-byte sync-flush tail
    /// removed, as the extension does).
    fn size(&mut self, message: &[u8]) -> usize {
        let before = self.compress.total_out();
        let mut input = message;
        loop {
            self.out.clear();
            let consumed_before = self.compress.total_in();
            let _ = self.compress.compress_vec(input, &mut self.out, flate2::FlushCompress::Sync);
            let consumed = (self.compress.total_in() - consumed_before) as usize;
            input = &input[consumed.min(input.len())..];
            if input.is_empty() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        ((self.compress.total_out() - before) as usize).saturating_sub(4)
    }
}

/// A WebSocket server frame header for a payload of `len` bytes.
fn frame_header(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    }
}

#[derive(Debug, Default)]
struct Received {
    messages: u64,
    payload_bytes: u64,
    deflated_bytes: u64,
}

/// Runs S4 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    let load_before = load_average();
    let day = random_walk(&options);
    let target = Target::start_or_connect(options.redis_url.as_deref()).await?;
    let (version, aof) = target.server_info().await?;
    target.flush().await?;
    let settings = Settings {
        capacity: 10,
        throttle_window: Some(Duration::from_millis(u64::from((WINDOW_MS / options.speedup).max(1)))),
        diff_settle: Some(Duration::from_millis(u64::from((SETTLE_MS / options.speedup).max(1)))),
        deltas: false,
        no_heartbeat: true,
    };
    let system = System::start(Kind::Ours, &options.locations, target.url(), &settings).await?;
    let result = measure(&options, &system, &target, &day).await;
    system.stop().await;
    let (full, deltas, real_secs) = result?;
    Ok(report(&options, &day, &full, &deltas, real_secs, Environment::here(version, aof, load_before)))
}

/// One connection's count: bytes on the wire, and what it decoded.
#[derive(Debug, Default)]
struct Counted {
    wire: u64,
    received: Received,
}

/// Counts what `connection` receives from now on, until aborted.
struct Counter {
    counted: Arc<Mutex<Counted>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Counter {
    fn start(mut connection: system::Connection) -> Self {
        let start_bytes = connection.bytes_received().unwrap_or(0);
        let counted: Arc<Mutex<Counted>> = Arc::default();
        let shared = counted.clone();
        let reader = tokio::spawn(async move {
            let mut deflate = Deflate::new();
            while let Some(Ok(text)) = connection.next_text().await {
                let deflated = deflate.size(text.as_bytes());
                let mut c = lock(&shared);
                c.received.messages += 1;
                c.received.payload_bytes += text.len() as u64;
                c.received.deflated_bytes += (deflated + frame_header(deflated)) as u64;
                c.wire = connection.bytes_received().unwrap_or(0).saturating_sub(start_bytes);
            }
        });
        Self { counted, reader }
    }

    fn wire(&self) -> u64 {
        lock(&self.counted).wire
    }

    fn finish(self) -> Counted {
        self.reader.abort();
        std::mem::take(&mut *lock(&self.counted))
    }
}

async fn measure(
    options: &Options,
    system: &System,
    target: &Target,
    day: &[Vec<Decimal>],
) -> Result<(Counted, Counted, f64), Error> {
    let symbols = options.symbols();
    let symbol_refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
    events::seed_holders(target.url(), &[USER.to_owned()], &symbol_refs).await?;
    let expires = functions::signature::now_unix() + 24 * 3_600;
    // Two connections of the user in the same run: full objects, and field
    // deltas (what our clients ask for).
    let full = system.connector().connect(USER, 2, expires).await.map_err(Error::Mismatch)?;
    let deltas = system.connector().with_deltas(true).connect(USER, 3, expires).await.map_err(Error::Mismatch)?;
    let (full, deltas) = (Counter::start(full), Counter::start(deltas));

    let day_start = chrono::DateTime::parse_from_rfc3339("2026-01-05T14:30:00Z")
        .map_err(|e| Error::InvalidOption(e.to_string()))?
        .with_timezone(&chrono::Utc);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(options.speedup)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for (second, prices) in day.iter().enumerate() {
        ticker.tick().await;
        let at = day_start + chrono::Duration::seconds(second as i64);
        let timestamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let ticks: Vec<serde_json::Value> = symbols
            .iter()
            .zip(prices)
            .map(|(symbol, price)| serde_json::json!({"symbol": symbol, "price": price.to_string(), "timestamp": timestamp}))
            .collect();
        let request = system.signed_prices(serde_json::json!({ "ticks": ticks }).to_string())?;
        system::send(system.http(), request).await.map_err(|e| Error::Mismatch(format!("tick batch {second}: {e}")))?;
    }
    let real_secs = started.elapsed().as_secs_f64();
    // Quiet for 20 windows (the settle flush included) ends the day.
    let quiet = Duration::from_millis(u64::from(20 * WINDOW_MS / options.speedup).max(100));
    let mut last = (full.wire() + deltas.wire(), Instant::now());
    crate::measure::wait_until(Duration::from_secs(30), || {
        let now = full.wire() + deltas.wire();
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() >= quiet
    })
    .await;
    Ok((full.finish(), deltas.finish(), real_secs))
}

/// What a system that forwards every tick would send: (bytes, deflated).
fn forwarded(options: &Options, day: &[Vec<Decimal>], socketio: bool) -> (u64, u64) {
    let symbols = options.symbols();
    let mut deflate = Deflate::new();
    let (mut bytes, mut deflated) = (0u64, 0u64);
    for (second, prices) in day.iter().enumerate() {
        for (seq, (symbol, price)) in symbols.iter().zip(prices).enumerate() {
            let event = events::position_update(symbol, *price, USER, (second * symbols.len() + seq + 1) as u64);
            let mut text = event.to_string();
            if socketio {
                text = format!("42[\"portfolio\",{text}]");
            }
            bytes += (text.len() + frame_header(text.len())) as u64;
            let d = deflate.size(text.as_bytes());
            deflated += (d + frame_header(d)) as u64;
        }
        if socketio && (second as u32 + 1).is_multiple_of(SOCKETIO_PING_SECS) {
            bytes += 3;
            deflated += 3;
        }
    }
    (bytes, deflated)
}

fn report(
    options: &Options,
    day: &[Vec<Decimal>],
    full: &Counted,
    deltas: &Counted,
    real_secs: f64,
    environment: Environment,
) -> Report {
    let (wire, received) = (full.wire, &full.received);
    // Per trading day, scaled when a shorter day ran.
    let scale = f64::from(TRADING_DAY_SECS) / f64::from(options.day_seconds);
    let per_day = |bytes: u64| bytes as f64 * scale / 1_000.0;
    let (socketio, socketio_deflated) = forwarded(options, day, true);
    let (baseline, baseline_deflated) = forwarded(options, day, false);
    let ours_deflated = received.deflated_bytes;
    let comparisons = vec![
        Comparison::new("bytes on the wire per user per trading day", "KB", true)
            .goal("< 100 KB")
            .value("ours", Some(per_day(wire)))
            .value("socketio", Some(per_day(socketio)))
            .value("baseline", Some(per_day(baseline))),
        Comparison::new("… with permessage-deflate (estimated)", "KB", true)
            .goal("< 100 KB")
            .value("ours", Some(per_day(ours_deflated)))
            .value("socketio", Some(per_day(socketio_deflated)))
            .value("baseline", Some(per_day(baseline_deflated))),
        Comparison::new("… with field deltas (our clients' default)", "KB", true)
            .goal("< 100 KB")
            .value("ours", Some(per_day(deltas.wire)))
            .value("socketio", Some(per_day(socketio)))
            .value("baseline", Some(per_day(baseline))),
        Comparison::new("… with field deltas and permessage-deflate (estimated)", "KB", true)
            .goal("< 100 KB")
            .value("ours", Some(per_day(deltas.received.deflated_bytes)))
            .value("socketio", Some(per_day(socketio_deflated)))
            .value("baseline", Some(per_day(baseline_deflated))),
        Comparison::new("messages per user per trading day", "messages", true)
            .value("ours", Some(received.messages as f64 * scale))
            .value("socketio", Some(day.len() as f64 * options.positions as f64 * scale))
            .value("baseline", Some(day.len() as f64 * options.positions as f64 * scale)),
    ];
    let ticks = day.len() * options.positions;
    let figures = vec![
        Figure::new("ticks simulated", ticks as f64, "ticks"),
        Figure::new("ours: messages received", received.messages as f64, "messages"),
        Figure::new("ours: bytes on the wire (frames + headers)", wire as f64, "bytes"),
        Figure::new("ours: JSON payload bytes", received.payload_bytes as f64, "bytes"),
        Figure::new(
            "ours: mean message size",
            received.payload_bytes as f64 / received.messages.max(1) as f64,
            "bytes",
        ),
        Figure::new("ours with field deltas: bytes on the wire", deltas.wire as f64, "bytes"),
        Figure::new(
            "ours with field deltas: mean message size",
            deltas.received.payload_bytes as f64 / deltas.received.messages.max(1) as f64,
            "bytes",
        ),
        Figure::new("real seconds for the simulated day", real_secs, "s"),
        Figure::new(
            "achieved speedup (simulated s / real s)",
            f64::from(options.day_seconds) / real_secs.max(f64::EPSILON),
            "×",
        ),
    ];
    let goal = |name: &str, kb: f64| Goal {
        name: name.to_owned(),
        target: GOAL_BYTES / 1_000.0,
        value: kb,
        met: kb * 1_000.0 < GOAL_BYTES,
    };
    Report {
        figures,
        comparisons,
        goals: vec![
            goal("ours KB per user per trading day (full objects), BRIEF §7", per_day(wire)),
            goal("ours KB per user per trading day (field deltas), BRIEF §7", per_day(deltas.wire)),
        ],
        notes: vec![
            format!(
                "One user, {} positions, {} simulated seconds (scaled to a {TRADING_DAY_SECS} s day where shorter) of one tick per second per symbol: a seeded random walk (seed {}, {:.1} % daily volatility, cent prices). Speedup {}×: THROTTLE_WINDOW_MS={} and DIFF_SETTLE_MS={} on the gateway; one signed batch per simulated second to the price-ticks function.",
                options.positions,
                options.day_seconds,
                options.seed,
                DAILY_VOLATILITY * 100.0,
                options.speedup,
                (WINDOW_MS / options.speedup).max(1),
                (SETTLE_MS / options.speedup).max(1),
            ),
            "ours: bytes counted below the WebSocket from `subscribed` on (position and account updates, batches, pings), for two connections of the user in the same run: one with full objects, one subscribed with `deltas`. Peer and baseline: computed, not run — they do not throttle, so each of the day's ticks is one position_update frame (Socket.IO adds its `42[\"portfolio\",…]` wrapper and a ping every 25 s).".to_owned(),
            "permessage-deflate: our gateway does not negotiate it; the figure is an estimate (one DEFLATE stream, sync flush per message, context takeover).".to_owned(),
        ],
        ..Report::comparing("bandwidth", environment, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_seeded_and_stays_near_its_start() {
        let mut options = Options::default();
        options.flags.day_seconds = 1_000;
        let (a, b) = (random_walk(&options), random_walk(&options));
        assert_eq!(a, b);
        assert_eq!(a.len(), 1_000);
        let first = a[0][0];
        let last = a[999][0];
        assert!((last - first).abs() < first / Decimal::from(10), "{first} → {last}");
    }

    #[test]
    fn deflate_shrinks_repeated_messages() {
        let mut deflate = Deflate::new();
        let message = br#"{"type":"position_update","data":{"symbol":"AAPL","quantity":"10"}}"#;
        let first = deflate.size(message);
        let second = deflate.size(message);
        assert!(second < first && second < message.len() / 2, "{first} then {second}");
    }
}
