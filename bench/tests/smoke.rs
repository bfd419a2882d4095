//! The publish scenario in smoke mode, through the library API: it starts
//! its own redis-server, runs every phase once with a few thousand events,
//! and must report positive numbers. Seconds, so CI runs it.

use bench::scenario::publish::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_smoke_reports_positive_numbers() {
    let options = Options { smoke: true, ..Options::default() };
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
    let options = Options { smoke: true, redis_url: Some("redis://192.0.2.1:7000".to_owned()), ..Options::default() };
    let error = publish::run(&options).await.expect_err("a non-loopback target is refused");
    assert!(error.to_string().contains("loopback"), "{error}");
}

/// S1 in smoke mode: 20 users, 200 events/s for 2 s through the real ingest
/// HTTP path, Redis and the in-process gateway; every event arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_smoke_delivers_every_event_once() {
    use bench::scenario::latency;

    let options = latency::Options { smoke: true, ..latency::Options::default() };
    let report = latency::run(&options).await.expect("the latency scenario runs");
    let figure = |name: &str| {
        report.figures.iter().find(|f| f.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {report:#?}")).value
    };
    assert_eq!(figure("answered 2xx"), 400.0, "{report:#?}");
    assert_eq!(figure("received by a client"), 400.0, "{report:#?}");
    assert_eq!(figure("lost"), 0.0);
    assert_eq!(figure("duplicated"), 0.0);
    let (p50, p99, max) = (figure("p50, ingest"), figure("p99, ingest"), figure("max, ingest"));
    assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{report:#?}");
    assert!(report.goals.iter().any(|g| g.name.starts_with("lost") && g.met), "{report:#?}");
}

/// S2 in smoke mode: 50 idle subscribed connections to the `edge-gateway`
/// binary (built here if missing, with the same profile as this test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_smoke_measures_the_gateway_child() {
    use bench::scenario::connections;

    let binary = match connections::gateway_binary(None) {
        Ok(binary) => binary,
        Err(_) => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut command = std::process::Command::new(cargo);
            command.args(["build", "-p", "edge-gateway", "--bin", "edge-gateway"]);
            if !cfg!(debug_assertions) {
                command.arg("--release");
            }
            let status = command.status().expect("run cargo build");
            assert!(status.success(), "cargo build -p edge-gateway failed");
            connections::gateway_binary(None).expect("edge-gateway next to the test binary after building it")
        }
    };
    let options = connections::Options { smoke: true, gateway_bin: Some(binary), ..connections::Options::default() };
    let report = connections::run(&options).await.expect("the connections scenario runs");
    let figure = |name: &str| {
        report.figures.iter().find(|f| f.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {report:#?}")).value
    };
    assert_eq!(figure("connections open"), 50.0);
    assert!(figure("gateway RSS before") > 0.0);
    assert!(figure("gateway RSS after") >= figure("gateway RSS before"), "{report:#?}");
    assert!(figure("connect rate") > 0.0);
}
