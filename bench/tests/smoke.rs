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
