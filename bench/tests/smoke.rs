//! The publish scenario in smoke mode, through the library API: it starts
//! its own redis-server, runs every phase once with a few thousand events,
//! and must report positive numbers. Seconds, so CI runs it.

use bench::scenario::publish;
use bench::scenario::{FlagSet, Options};

/// A scenario's options as `--smoke` gives them.
fn smoke<S: FlagSet + serde::Serialize>() -> Options<S> {
    Options { smoke: true, ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_smoke_reports_positive_numbers() {
    let options = smoke::<publish::Flags>();
    let report = publish::run(&options).await.expect("the publish scenario runs");

    assert_eq!(report.rows.len(), 4, "{report:#?}");
    for row in &report.rows {
        assert_eq!(row.runs_events_per_sec.len(), 1, "smoke mode is one run: {row:?}");
        assert!(row.events_per_sec > 0.0, "{row:?}");
        let (p50, p99) = (row.p50_ms.expect("p50"), row.p99_ms.expect("p99"));
        assert!(p50 >= 0.0 && p99 >= p50, "{row:?}");
        assert!(row.ratio_to_baseline.is_some_and(|r| r > 0.0), "{row:?}");
    }
    assert!(report.commands.iter().any(|c| c.starts_with("redis-benchmark") && c.contains("EVALSHA")));
    assert!(report.commands.iter().any(|c| c.starts_with("redis-benchmark") && c.contains("XADD")));
    assert_eq!(report.goals.len(), 2);

    let dir = std::env::temp_dir().join(format!("bench-smoke-{}", std::process::id()));
    let path = dir.join("publish.json");
    report.write_json(&path).expect("write the JSON report");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read it back")).expect("JSON");
    assert_eq!(json["scenario"], "publish");
    assert!(json["rows"][0]["events_per_sec"].as_f64().is_some_and(|v| v > 0.0));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn remote_targets_are_refused() {
    let mut options = smoke::<publish::Flags>();
    options.flags.redis_url = Some("redis://192.0.2.1:7000".to_owned());
    let error = publish::run(&options).await.expect_err("a non-loopback target is refused");
    assert!(error.to_string().contains("loopback"), "{error}");
}

/// The systems' programs next to the test binary: built here (same
/// profile) when a lone `cargo test -p bench` has not built them.
fn locations() -> bench::system::Locations {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>").to_owned();
    let missing = ["edge-gateway", "queue-completions", "price-ticks"].iter().any(|b| !dir.join(b).is_file());
    if missing {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "-p", "edge-gateway", "-p", "functions", "--bins"]);
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        assert!(command.status().expect("run cargo build").success(), "cargo build of the systems failed");
    }
    bench::system::Locations { bin_dir: Some(dir), peer_dir: None }
}

fn under() -> bench::system::Under {
    bench::system::Under { locations: locations(), ..bench::system::Under::default() }
}

fn value(report: &bench::Report, metric: &str, system: &str) -> f64 {
    let comparison = report
        .comparisons
        .iter()
        .find(|c| c.metric.starts_with(metric))
        .unwrap_or_else(|| panic!("{metric}: {report:#?}"));
    comparison
        .values
        .iter()
        .find(|(s, _)| s == system)
        .and_then(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{metric} of {system}: {report:#?}"))
}

fn figure(report: &bench::Report, name: &str) -> f64 {
    report.figures.iter().find(|f| f.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {report:#?}")).value
}

/// S1 in smoke mode, all three systems: 20 users, 200 events/s for 2 s;
/// every event arrives once, in order, and ours' snapshots agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_smoke_delivers_every_event_once_on_every_system() {
    use bench::scenario::latency;

    let mut options = smoke::<latency::Flags>();
    options.flags.under = under();
    let report = latency::run(&options).await.expect("the latency scenario runs");
    for system in ["ours", "socketio", "baseline"] {
        assert_eq!(figure(&report, &format!("{system}: answered 2xx")), 400.0, "{report:#?}");
        assert_eq!(figure(&report, &format!("{system}: received (first copy)")), 400.0, "{report:#?}");
        assert_eq!(value(&report, "lost + duplicated", system), 0.0, "{report:#?}");
        let (p50, p99) = (value(&report, "p50, ingest", system), value(&report, "p99, ingest", system));
        assert!(0.0 <= p50 && p50 <= p99, "{report:#?}");
    }
    assert_eq!(figure(&report, "ours: seq not previous + 1"), 0.0, "{report:#?}");
    assert_eq!(figure(&report, "ours: users whose REST snapshot"), 0.0, "{report:#?}");
    assert!(figure(&report, "ours: price ticks answered") > 0.0, "{report:#?}");
    assert!(figure(&report, "ours: first-in-window position_update samples") > 0.0, "{report:#?}");
    assert!(report.comparisons.iter().any(|c| c.ours_to_peer.is_some() && c.ours_to_baseline.is_some()));
}

/// S2 in smoke mode: 50 idle subscribed connections to each system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_smoke_measures_every_system() {
    use bench::scenario::connections;

    let mut options = smoke::<connections::Flags>();
    options.flags.under = under();
    let report = connections::run(&options).await.expect("the connections scenario runs");
    for system in ["ours", "socketio", "baseline"] {
        assert!(value(&report, "connect rate", system) > 0.0, "{report:#?}");
        assert!(value(&report, "RSS per idle connection", system) >= 0.0, "{report:#?}");
    }
    assert!(report.to_table().contains("ours ÷ peer"));
}

/// S3 in smoke mode: a tick for a symbol held by 50 users reaches all 50
/// on every system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_smoke_reaches_every_holder() {
    use bench::scenario::fanout;

    let mut options = smoke::<fanout::Flags>();
    options.flags.under = under();
    let report = fanout::run(&options).await.expect("the fanout scenario runs");
    for system in ["ours", "socketio", "baseline"] {
        let (p50, max) = (value(&report, "p50, tick sent", system), value(&report, "max, tick sent", system));
        assert!(0.0 <= p50 && p50 <= max, "{report:#?}");
    }
}

/// S4 in smoke mode: one simulated minute at 20×; ours sends far fewer
/// bytes than a system that forwards every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_smoke_counts_the_bytes() {
    use bench::scenario::bandwidth;

    let mut options = smoke::<bandwidth::Flags>();
    options.flags.locations = locations();
    let report = bandwidth::run(&options).await.expect("the bandwidth scenario runs");
    let ours = value(&report, "bytes on the wire", "ours");
    assert!(ours > 0.0, "{report:#?}");
    assert!(ours < value(&report, "bytes on the wire", "baseline"), "{report:#?}");
    assert!(figure(&report, "ours: messages received") > 0.0, "{report:#?}");
}

/// S5 in smoke mode: two seconds of load on ours with RSS sampled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_smoke_samples_memory() {
    use bench::scenario::{latency, soak};

    let mut load = smoke::<latency::Flags>();
    load.flags.under = bench::system::Under { systems: vec![bench::system::Kind::Ours], ..under() };
    let options = soak::Options { load, sample_secs: 1 };
    let report = soak::run(&options).await.expect("the soak scenario runs");
    assert!(value(&report, "RSS growth", "ours").is_finite(), "{report:#?}");
    assert_eq!(value(&report, "lost + duplicated", "ours"), 0.0, "{report:#?}");
    assert!(report.goals.iter().any(|g| g.name.starts_with("ours RSS growth")), "{report:#?}");
}
