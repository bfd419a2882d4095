//! S5, soak (issue 8, BRIEF §7: 1 h sustained, memory growth < 5 %, zero
//! lost events): S1's urgent load for `--seconds` (S1's flag, so its
//! default is S1's 10 s: pass `--seconds 600` for the 10-minute soak) on
//! each system in turn, every process' RSS sampled every few seconds. The
//! report gives each process' growth from the first reading under load to
//! the last, the lost and duplicated events, sequence breaks, and — ours —
//! the users whose REST snapshot disagrees with what they received.

use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::report::{Comparison, Figure, Goal, Report};
use crate::scenario::{check_range, latency};
use crate::system::Kind;

/// Seconds of load of [`Options::default`] (the library's; the command
/// line takes S1's `--seconds`).
pub const DEFAULT_SECONDS: u64 = 600;
/// Default RSS sampling period.
pub const DEFAULT_SAMPLE_SECS: u64 = 5;
/// Goal: RSS growth over the soak (BRIEF §7).
pub const GOAL_GROWTH_PERCENT: f64 = 5.0;

/// Flags of the `soak` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Options {
    /// The load (S1's flags; `--seconds` is the soak's duration).
    #[command(flatten)]
    pub load: latency::Options,
    /// Seconds between RSS readings.
    #[arg(long, default_value_t = DEFAULT_SAMPLE_SECS)]
    pub sample_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        let mut load = latency::Options::default();
        load.flags.seconds = DEFAULT_SECONDS;
        load.flags.tick_rate = 0;
        Self { load, sample_secs: DEFAULT_SAMPLE_SECS }
    }
}

/// Runs S5 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let load = options.load.effective()?;
    check_range("sample-secs", options.sample_secs, 1..=600)?;
    let every = Duration::from_secs(options.sample_secs);
    let (runs, environment) = latency::run_systems(&load, Some(every)).await?;
    let mut report = latency::report(&load, &runs, environment);
    report.scenario = "soak".to_owned();
    report.parameters = serde_json::to_value(options).unwrap_or_default();

    let mut growth =
        Comparison::new("RSS growth of the socket process under load (first → last reading)", "%", true).goal("< 5 %");
    let mut worst_ours = None;
    for run in &runs {
        let (Some(first), Some(last)) = (run.outcome.rss.first(), run.outcome.rss.last()) else { continue };
        for (i, process) in run.processes.iter().enumerate() {
            let (a, b) = (first.kib.get(i).copied().unwrap_or(0), last.kib.get(i).copied().unwrap_or(0));
            let percent = if a > 0 { (b as f64 - a as f64) * 100.0 / a as f64 } else { f64::NAN };
            report.figures.push(Figure::new(
                format!("{}: {process} RSS {a} → {b} KiB over {} readings", run.kind.name(), run.outcome.rss.len()),
                percent,
                "%",
            ));
            if i == 0 {
                growth = growth.value(run.kind.name(), Some(percent));
            }
            if run.kind == Kind::Ours {
                worst_ours = Some(worst_ours.map_or(percent, |w: f64| w.max(percent)));
            }
        }
        let peak = run.outcome.rss.iter().filter_map(|s| s.kib.first()).max().copied().unwrap_or(0);
        report.figures.push(Figure::new(format!("{}: peak socket-process RSS", run.kind.name()), peak as f64, "KiB"));
    }
    report.comparisons.insert(0, growth);
    if let Some(worst) = worst_ours {
        report.goals.push(Goal {
            name: "ours RSS growth % (worst process), BRIEF §7".to_owned(),
            target: GOAL_GROWTH_PERCENT,
            value: worst,
            met: worst < GOAL_GROWTH_PERCENT,
        });
    }
    report.notes.push(format!(
        "RSS of every process of each system every {} s from the start of the load (after the connections opened) to the end; growth is last ÷ first reading.",
        options.sample_secs
    ));
    Ok(report)
}
