//! Measurements for `docs/benchmarks.md`; ignored by default. Run with
//!
//! ```text
//! cargo test -p functions --release --test ingest -- --ignored --nocapture --test-threads 1 bench_
//! ```
//!
//! - `bench_price_tick_10k_holders`: one tick for a symbol held by 10,000
//!   users — wall time, Redis commands (`INFO commandstats`), and round trips
//!   measured by delaying every Redis reply by a fixed time on a loopback
//!   proxy: the extra wall time divided by the delay is the number of
//!   sequential round trips.
//! - `bench_function_binaries`: each function's binary (the release build when
//!   run with `--release`) — process start → first answered request, then
//!   warm per-request latency and CPU over one keep-alive connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Request, StatusCode};
use bytes::Bytes;
use event_log::redis::RedisLog;
use event_log::LogSettings;
use functions::prices::{self, TickBatch};
use functions::Deps;
use functions::Function;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use test_support::alpaca::{FakeAlpaca, KEY_ID, SECRET};
use test_support::net::free_port;
use test_support::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{sign, user, Harness, INGEST_SECRET, REDIS_TIMEOUT, WEBHOOK_SECRET};
use crate::prices::{command_calls, seed_many};

const HOLDERS: usize = 10_000;
const RUNS: usize = 5;
/// Added to every Redis reply by the proxy.
const REPLY_DELAY: Duration = Duration::from_millis(100);

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn tick(price: u32) -> TickBatch {
    serde_json::from_value(json!({"ticks": [{"symbol": "SPY", "price": format!("{price}.00"), "timestamp": format!("2026-01-03T15:{:02}:00.000Z", price % 60)}]}))
        .expect("batch")
}

/// Forwards `127.0.0.1:<port>` to `upstream`, delivering every chunk the
/// server sends `delay` after it arrived (in order).
/// Also counts the client's request bursts (see below).
async fn delay_proxy(upstream: SocketAddr, delay: Duration) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let bursts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = bursts.clone();
    tokio::spawn(async move {
        let bursts = counter;
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else { continue };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let bursts = bursts.clone();
            tokio::spawn(async move {
                // Client → server at once; a send after a quiet spell longer
                // than half the delay began a new round trip.
                let mut buffer = vec![0; 256 * 1024];
                let mut last = tokio::time::Instant::now() - delay;
                while let Ok(n) = client_read.read(&mut buffer).await {
                    if n == 0 || server_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                    let now = tokio::time::Instant::now();
                    if now.duration_since(last) > delay / 2 {
                        bursts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    last = now;
                }
            });
            let (chunks, mut queued) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
            tokio::spawn(async move {
                let mut buffer = vec![0; 256 * 1024];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 || chunks.send((tokio::time::Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((due, chunk)) = queued.recv().await {
                    tokio::time::sleep_until(due).await;
                    if client_write.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, bursts)
}

async fn run_batches(deps: &Deps, first_price: u32, runs: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for i in 0..runs {
        let started = Instant::now();
        let outcome = prices::handle(tick(first_price + i as u32), deps).await.expect("batch");
        times.push(started.elapsed());
        assert_eq!(outcome.outcome.published, 2 * HOLDERS);
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see docs/benchmarks.md"]
async fn bench_price_tick_10k_holders() {
    let h = Harness::start().await;
    seed_many(&h, HOLDERS, "SPY").await;

    let before = command_calls(&h);
    let usec_before = evalsha_usec(&h);
    let direct = run_batches(h.deps(), 151, RUNS).await;
    let after = command_calls(&h);
    let redis_ms = (evalsha_usec(&h) - usec_before) as f64 / 1_000.0 / RUNS as f64;
    let per_batch = |name: &str| {
        (after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)) as f64 / RUNS as f64
    };

    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, h.redis.port()));
    let (proxy, bursts) = delay_proxy(upstream, REPLY_DELAY).await;
    let slow = RedisLog::connect(&format!("redis://{proxy}"), LogSettings::default(), Duration::from_secs(30))
        .await
        .expect("connect through the proxy");
    let delayed_deps = Deps::new(event_log::Store::redis(slow)).with_limits(h.deps().limits);
    let bursts_before = bursts.load(std::sync::atomic::Ordering::SeqCst);
    let delayed = run_batches(&delayed_deps, 171, RUNS).await;
    let bursts_per_batch = (bursts.load(std::sync::atomic::Ordering::SeqCst) - bursts_before) as f64 / RUNS as f64;
    let round_trips = (ms(median(delayed.clone())) - ms(median(direct.clone()))) / ms(REPLY_DELAY);

    println!("price tick, {HOLDERS} holders, {RUNS} runs");
    println!(
        "  wall per batch: median {:.0} ms, all {:?}",
        ms(median(direct.clone())),
        direct.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    println!("  Redis CPU in the publish script per batch: {redis_ms:.0} ms");
    println!(
        "  commands per batch: evalsha {:.0}, hget {:.0}, get {:.0}, sscan {:.0}",
        per_batch("evalsha"),
        per_batch("hget"),
        per_batch("get"),
        per_batch("sscan")
    );
    println!(
        "  with {} ms added to every reply: median {:.0} ms → {round_trips:.1} sequential round trips; \
         {bursts_per_batch:.1} request bursts per batch seen by the proxy",
        ms(REPLY_DELAY),
        ms(median(delayed))
    );
}

/// Microseconds Redis spent in `EVALSHA` so far (`INFO commandstats`).
fn evalsha_usec(h: &Harness) -> u64 {
    let info = h.redis.command(&["INFO", "commandstats"]).expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:"))
        .and_then(|stats| stats.split(',').find_map(|kv| kv.strip_prefix("usec=")))
        .and_then(|usec| usec.parse().ok())
        .unwrap_or(0)
}

/// A function binary under measurement, and what it is asked.
struct Binary {
    label: &'static str,
    path: &'static str,
    request: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    /// A non-fill trade update: one `order_update`, no broker call.
    OrderUpdate,
    /// A fill: two broker calls (the fake Alpaca), four events.
    Fill,
    /// One completion: one `order_update`.
    Completion,
    /// One tick for a symbol held by 10 users: 20 events.
    Tick,
}

const BINARIES: [Binary; 4] = [
    Binary {
        label: "broker-webhook (order update)",
        path: env!("CARGO_BIN_EXE_broker-webhook"),
        request: Kind::OrderUpdate,
    },
    Binary { label: "broker-webhook (fill)", path: env!("CARGO_BIN_EXE_broker-webhook"), request: Kind::Fill },
    Binary { label: "queue-completions", path: env!("CARGO_BIN_EXE_queue-completions"), request: Kind::Completion },
    Binary { label: "price-ticks (10 holders)", path: env!("CARGO_BIN_EXE_price-ticks"), request: Kind::Tick },
];

/// Request `i` of a kind: `(path, body, secret)`, each distinct so each publishes.
fn request_for(kind: Kind, i: usize) -> (&'static str, String, &'static [u8]) {
    let unique = format!("{i}-{}", std::process::id());
    match kind {
        Kind::OrderUpdate | Kind::Fill => {
            let (event, order) = match kind {
                Kind::Fill => ("fill", crate::harness::order("filled", "10")),
                _ => ("new", crate::harness::order("new", "0")),
            };
            let body = crate::harness::trade_update("acct-bench", event, Some(&format!("exec-{unique}")), order);
            (Function::BrokerWebhook.path(), body, WEBHOOK_SECRET)
        }
        Kind::Completion => {
            let body = json!({
                "jobId": format!("job-{unique}"), "userId": "bench-user", "orderId": format!("order-{i}"),
                "status": "accepted", "order": {"symbol": "AAPL", "side": "buy", "type": "market", "qty": "1"}
            })
            .to_string();
            (Function::QueueCompletions.path(), body, INGEST_SECRET)
        }
        Kind::Tick => {
            let price = 100 + (i % 50);
            let at = 1_767_454_245_000_i64 + i as i64;
            let timestamp = chrono::DateTime::from_timestamp_millis(at).expect("time").to_rfc3339();
            let body = json!({"ticks": [{"symbol": "BENCH", "price": format!("{price}.00"), "timestamp": timestamp}]})
                .to_string();
            (Function::PriceTicks.path(), body, INGEST_SECRET)
        }
    }
}

fn spawn(binary: &Binary, redis: &RedisServer, alpaca: &FakeAlpaca, port: u16) -> Child {
    Command::new(binary.path)
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("FUNCTIONS_ADDR", format!("127.0.0.1:{port}"))
        .env("WEBHOOK_SECRET", std::str::from_utf8(WEBHOOK_SECRET).expect("text"))
        .env("INGEST_SECRET", std::str::from_utf8(INGEST_SECRET).expect("text"))
        .env("APCA_API_BASE_URL", alpaca.base_url())
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("FUNCTIONS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the function binary")
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    port: u16,
    path: &str,
    body: &str,
    secret: &[u8],
) -> Option<StatusCode> {
    let request = Request::post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .header(functions::signature::SIGNATURE_HEADER, sign(secret, body))
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = client.request(request).await.ok()?;
    let status = response.status();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// User + system CPU time of a process so far (Linux `/proc`).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see docs/benchmarks.md"]
async fn bench_function_binaries() {
    const COLD_RUNS: usize = 5;
    const WARM_REQUESTS: usize = 1_000;
    let redis = RedisServer::start();
    let alpaca = FakeAlpaca::start().await;
    alpaca.set_position("AAPL", "10", "170.25", "175.50");
    let index = RedisLog::connect(&redis.url(), LogSettings::default(), REDIS_TIMEOUT).await.expect("connect");
    event_log::index::IngestIndex::link_account(&index, "acct-bench", &user("bench-user")).await.expect("link");
    for i in 0..10 {
        let holder = user(&format!("bench-holder-{i}"));
        let event = crate::harness::position_event(&holder, "BENCH", "10", "100.00", "100.00");
        event_log::EventLog::publish(&index, &event_log::NewEvent::new(event, "seed")).await.expect("seed");
        event_log::index::IngestIndex::set_holding(&index, &holder, &crate::harness::symbol_of("BENCH"), true)
            .await
            .expect("hold");
    }

    println!(
        "function binaries ({}), cold start over {COLD_RUNS} runs, warm over {WARM_REQUESTS} requests",
        if cfg!(debug_assertions) { "debug build" } else { "release build" }
    );
    println!("| function | cold start median (min–max) | warm p50 | warm p99 | CPU per request | RSS after |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut request_id = 0;
    for binary in &BINARIES {
        let mut colds = Vec::new();
        let mut warm = None;
        for run in 0..COLD_RUNS {
            let port = free_port();
            let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let (path, body, secret) = request_for(binary.request, request_id);
            request_id += 1;
            let started = Instant::now();
            let mut child = spawn(binary, &redis, &alpaca, port);
            // Connection refused until the binary listens: retry at once.
            let status = loop {
                if let Some(status) = post(&client, port, path, &body, secret).await {
                    break status;
                }
                assert!(started.elapsed() < Duration::from_secs(10), "{} did not answer", binary.label);
                tokio::task::yield_now().await;
            };
            colds.push(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{}", binary.label);
            if run + 1 < COLD_RUNS {
                let _ = child.kill();
                let _ = child.wait();
            } else {
                warm = Some((child, port, client));
            }
        }
        let (mut child, port, client) = warm.expect("the last run stays up");
        let pid = child.id();
        let cpu_before = cpu_time(pid);
        let mut latencies = Vec::with_capacity(WARM_REQUESTS);
        for _ in 0..WARM_REQUESTS {
            let (path, body, secret) = request_for(binary.request, request_id);
            request_id += 1;
            let started = Instant::now();
            let status = post(&client, port, path, &body, secret).await;
            latencies.push(started.elapsed());
            assert_eq!(status, Some(StatusCode::OK), "{}", binary.label);
        }
        let cpu = cpu_time(pid).saturating_sub(cpu_before);
        let rss = rss_kib(pid);
        let _ = child.kill();
        let _ = child.wait();
        latencies.sort();
        let p = |q: f64| ms(latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]);
        let min = colds.iter().min().copied().unwrap_or_default();
        let max = colds.iter().max().copied().unwrap_or_default();
        println!(
            "| {} | {:.1} ms ({:.1}–{:.1}) | {:.2} ms | {:.2} ms | {:.0} µs | {} KiB |",
            binary.label,
            ms(median(colds)),
            ms(min),
            ms(max),
            p(0.50),
            p(0.99),
            cpu.as_secs_f64() * 1e6 / WARM_REQUESTS as f64,
            rss
        );
    }
}
