//! A scenario's result: what ran, on what machine, the measured rows with
//! their ratios to the run's baseline, the goals checked, and the exact
//! commands that reproduce the baselines. Printed as a Markdown table (so it
//! can be pasted into `docs/benchmarks.md`) and written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's subcommand name.
    pub scenario: String,
    /// The machine and server it ran on.
    pub environment: Environment,
    /// The scenario's options after defaults and `--smoke`.
    pub parameters: serde_json::Value,
    /// The row the ratios are taken against, by name.
    pub baseline: Option<String>,
    /// One row per variant or baseline.
    pub rows: Vec<Row>,
    /// Single measured figures that do not fit a throughput row (latency
    /// percentiles, counts, memory), in the order they are printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
    /// Metrics measured on several systems in the same run (ours, the
    /// peer, the baseline), with ours' ratio to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    /// Targets checked against the rows.
    pub goals: Vec<Goal>,
    /// Shell commands that reproduce the baselines, exactly as run.
    pub commands: Vec<String>,
    /// What a reader needs to know to read the numbers.
    pub notes: Vec<String>,
}

impl Report {
    /// A report that compares systems (no throughput rows): its scenario,
    /// machine and options; the caller adds figures, comparisons, goals and
    /// notes with struct update syntax.
    pub fn comparing(scenario: &str, environment: Environment, options: &impl Serialize) -> Self {
        Self {
            scenario: scenario.to_owned(),
            environment,
            parameters: serde_json::to_value(options).unwrap_or_default(),
            baseline: None,
            rows: Vec::new(),
            figures: Vec::new(),
            comparisons: Vec::new(),
            goals: Vec::new(),
            commands: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Where a report was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Worker threads of the bench's runtime (the load generator's).
    pub client_worker_threads: usize,
    /// The 1-minute load average before the scenario started (other work
    /// on the machine skews timings), from `/proc/loadavg`.
    pub load_average_before: Option<f64>,
    /// Total memory, from `/proc/meminfo` where there is one.
    pub memory_total_bytes: Option<u64>,
    /// `redis_version` from `INFO server`.
    pub redis_version: String,
    /// Whether the server appends to an AOF (`aof_enabled` from `INFO`).
    pub redis_aof_enabled: bool,
    /// Seconds since the Unix epoch when the report was made.
    pub unix_time: u64,
}

impl Environment {
    /// This machine, with what the caller read from the server and the
    /// load average it read before starting.
    pub fn here(redis_version: String, redis_aof_enabled: bool, load_average_before: Option<f64>) -> Self {
        Self {
            cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            client_worker_threads: tokio::runtime::Handle::try_current()
                .map(|h| h.metrics().num_workers())
                .unwrap_or_default(),
            load_average_before,
            memory_total_bytes: memory_total_bytes(),
            redis_version,
            redis_aof_enabled,
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        }
    }
}

/// The 1-minute load average, from `/proc/loadavg`; `None` off Linux.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

fn memory_total_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One measured variant or baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What ran, e.g. `ours: publish (per call)`.
    pub name: String,
    /// Median over the runs.
    pub events_per_sec: f64,
    /// Each run's figure, in run order.
    pub runs_events_per_sec: Vec<f64>,
    /// Median over the runs of each run's p50, in milliseconds.
    pub p50_ms: Option<f64>,
    /// Median over the runs of each run's p99, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Median over the runs of the server's main-thread CPU time per event,
    /// in microseconds: what one event costs Redis.
    pub server_cpu_us_per_event: Option<f64>,
    /// Median over the runs of the load generator's CPU time per event, in
    /// microseconds: this process for ours, the `redis-benchmark` process
    /// for a baseline. With Redis on the same machine, both draw on the
    /// same cores.
    pub client_cpu_us_per_event: Option<f64>,
    /// Median over the runs of the server main thread's busy fraction
    /// (CPU time / wall time); near 1.0 means Redis was the limit.
    pub server_busy: Option<f64>,
    /// What one latency sample is, e.g. `one publish() call`.
    pub latency_of: String,
    /// `events_per_sec` divided by the baseline row's.
    pub ratio_to_baseline: Option<f64>,
}

/// One measured figure, e.g. `p99, ingest answer → client decoded`.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit, e.g. `ms`, `KiB`, `events`.
    pub unit: String,
}

impl Figure {
    /// A figure named `name` of `value` `unit`.
    pub fn new(name: impl Into<String>, value: f64, unit: &str) -> Self {
        Self { name: name.into(), value, unit: unit.to_owned() }
    }
}

/// One metric measured on several systems in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What was measured, e.g. `p99 latency, answer → decoded`.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Whether a smaller value is better (latency, memory) or worse (rate).
    pub lower_is_better: bool,
    /// Each system's value, in report order; `None` where it did not run
    /// or the metric does not apply.
    pub values: Vec<(String, Option<f64>)>,
    /// Ours divided by the peer's value.
    pub ours_to_peer: Option<f64>,
    /// Ours divided by the baseline's value.
    pub ours_to_baseline: Option<f64>,
    /// The goal beside the figure (BRIEF §7), if there is one.
    pub goal: Option<String>,
}

impl Comparison {
    /// A metric with no values yet.
    pub fn new(metric: impl Into<String>, unit: &str, lower_is_better: bool) -> Self {
        Self {
            metric: metric.into(),
            unit: unit.to_owned(),
            lower_is_better,
            values: Vec::new(),
            ours_to_peer: None,
            ours_to_baseline: None,
            goal: None,
        }
    }

    /// With the goal `goal`.
    pub fn goal(mut self, goal: impl Into<String>) -> Self {
        self.goal = Some(goal.into());
        self
    }

    /// Adds `system`'s value and recomputes the ratios.
    pub fn value(mut self, system: &str, value: Option<f64>) -> Self {
        self.values.push((system.to_owned(), value));
        let of = |name: &str| self.values.iter().find(|(s, _)| s == name).and_then(|(_, v)| *v);
        let ratio = |other: Option<f64>| match (of("ours"), other) {
            (Some(ours), Some(other)) if other > 0.0 => Some(ours / other),
            _ => None,
        };
        self.ours_to_peer = ratio(of("socketio"));
        self.ours_to_baseline = ratio(of("baseline"));
        self
    }
}

/// A target checked against the rows.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What is checked, e.g. `ours per call ≥ 0.8× EVALSHA baseline`.
    pub name: String,
    /// The threshold.
    pub target: f64,
    /// The measured value.
    pub value: f64,
    /// Whether the value reaches the target.
    pub met: bool,
}

impl Report {
    /// Fills in every row's ratio to the baseline row.
    pub fn compute_ratios(&mut self) {
        let Some(base) = self.baseline.as_ref().and_then(|name| self.row(name)).map(|r| r.events_per_sec) else {
            return;
        };
        for row in &mut self.rows {
            row.ratio_to_baseline = (base > 0.0).then(|| row.events_per_sec / base);
        }
    }

    /// The row called `name`.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The report for people: a Markdown table, the goals, the commands.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## {}\n", self.scenario);
        if let Some(base) = &self.baseline {
            let _ = writeln!(out, "Ratios are to \"{base}\".\n");
        }
        if !self.rows.is_empty() {
            self.rows_table(&mut out);
        }
        if !self.figures.is_empty() {
            if !self.rows.is_empty() {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "| figure | value | unit |");
            let _ = writeln!(out, "| --- | ---: | --- |");
            for figure in &self.figures {
                let decimals = if figure.value.fract() == 0.0 { 0 } else { 3 };
                let _ = writeln!(out, "| {} | {:.decimals$} | {} |", figure.name, figure.value, figure.unit);
            }
        }
        if !self.comparisons.is_empty() {
            let _ = writeln!(out);
            self.comparisons_table(&mut out);
        }
        if !self.goals.is_empty() {
            let _ = writeln!(out);
            for goal in &self.goals {
                let verdict = if goal.met { "met" } else { "NOT met" };
                let _ =
                    writeln!(out, "- goal {}: {:.2} (target {:.2}) — {verdict}", goal.name, goal.value, goal.target);
            }
        }
        if !self.commands.is_empty() {
            let _ = writeln!(out, "\nCommands, as run:\n");
            for command in &self.commands {
                let _ = writeln!(out, "    {command}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }

    fn comparisons_table(&self, out: &mut String) {
        let systems: Vec<&str> = {
            let mut names: Vec<&str> = Vec::new();
            for (name, _) in self.comparisons.iter().flat_map(|c| &c.values) {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
            names
        };
        let _ = writeln!(out, "| metric | {} | ours ÷ peer | ours ÷ baseline | goal |", systems.join(" | "));
        let _ = writeln!(out, "| --- |{} ---: | ---: | --- |", " ---: |".repeat(systems.len()));
        for c in &self.comparisons {
            let cells: Vec<String> = systems
                .iter()
                .map(|s| {
                    let value = c.values.iter().find(|(name, _)| name == s).and_then(|(_, v)| *v);
                    value.map(|v| format!("{} {}", significant(v), c.unit)).unwrap_or_else(|| "–".to_owned())
                })
                .collect();
            let ratio = |r: Option<f64>| r.map(|r| format!("{}×", significant(r))).unwrap_or_else(|| "–".to_owned());
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {} |",
                c.metric,
                if c.lower_is_better { "lower is better" } else { "higher is better" },
                cells.join(" | "),
                ratio(c.ours_to_peer),
                ratio(c.ours_to_baseline),
                c.goal.as_deref().unwrap_or("–"),
            );
        }
    }

    fn rows_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| variant | events/s (median) | runs | ratio | p50 ms | p99 ms | latency of | Redis CPU µs/event | Redis busy | client CPU µs/event |"
        );
        let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |");
        for row in &self.rows {
            let runs: Vec<String> = row.runs_events_per_sec.iter().map(|v| thousands(*v)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.name,
                thousands(row.events_per_sec),
                runs.join(" / "),
                row.ratio_to_baseline.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".to_owned()),
                optional(row.p50_ms, 3),
                optional(row.p99_ms, 3),
                row.latency_of,
                optional(row.server_cpu_us_per_event, 1),
                row.server_busy.map(|b| format!("{:.0} %", b * 100.0)).unwrap_or_else(|| "–".to_owned()),
                optional(row.client_cpu_us_per_event, 1),
            );
        }
    }

    /// Writes the report as pretty JSON to `path`, creating its directory.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }
}

/// A value with about four significant digits, grouped when large.
fn significant(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1_000.0 {
        thousands(value)
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else if magnitude >= 0.01 || magnitude == 0.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.4}")
    }
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map(|v| format!("{v:.decimals$}")).unwrap_or_else(|| "–".to_owned())
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, events_per_sec: f64) -> Row {
        Row {
            name: name.to_owned(),
            events_per_sec,
            runs_events_per_sec: vec![events_per_sec],
            p50_ms: Some(0.5),
            p99_ms: None,
            server_cpu_us_per_event: Some(9.25),
            server_busy: Some(0.5),
            client_cpu_us_per_event: None,
            latency_of: "a call".to_owned(),
            ratio_to_baseline: None,
        }
    }

    #[test]
    fn ratios_are_against_the_baseline_row() {
        let mut report = Report {
            scenario: "test".to_owned(),
            environment: Environment::here("7.0.0".to_owned(), true, None),
            parameters: serde_json::json!({}),
            baseline: Some("base".to_owned()),
            rows: vec![row("ours", 80_000.0), row("base", 100_000.0)],
            figures: vec![],
            comparisons: Vec::new(),
            goals: vec![],
            commands: vec!["redis-benchmark -p 1".to_owned()],
            notes: vec![],
        };
        report.compute_ratios();
        assert_eq!(report.rows[0].ratio_to_baseline, Some(0.8));
        let table = report.to_table();
        assert!(table.contains("| ours | 80,000 | 80,000 | 0.80× | 0.500 | – | a call | 9.2 | 50 % | – |"), "{table}");
        assert!(table.contains("    redis-benchmark -p 1"), "{table}");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
