//! S1, event latency (issue 8, BRIEF §7): the whole data path on loopback.
//! A `redis-server`, the gateway in this process on the Redis event log, and
//! the functions' router served over real HTTP on its own port; N users,
//! each with one `portfolio-client` connection subscribed to every channel;
//! then signed work-queue completions POSTed to `/queue/completions` at R
//! events/s for D seconds, each for a random user, each published by the
//! function as one urgent `order_update`.
//!
//! One sample per event: from the moment the bench read the function's 2xx
//! answer to the moment the client's observer decoded the `order_update`
//! (same process, same monotonic clock). The answer and the delivery race:
//! when the event reaches the client before the HTTP answer reaches the
//! bench, the sample is 0 and counted as "delivered before the answer". A
//! second set of samples is taken from the moment the request was sent (an
//! upper bound that includes the HTTP round trip and the function's work).
//! Percentiles are exact, from every sample.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::auth::{sign_hs256, TokenClaims};
use common::config::Secret;
use common::log::redis::RedisLog;
use common::log::{LogSettings, SharedLog};
use common::protocol::ServerMessage;
use functions::signature::{self, Verifier, SIGNATURE_HEADER};
use functions::{AppState, Deps, Function};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use portfolio_client::{Client, ClientConfig, ClientHandle, Credentials, Observer, Status};
use rand::Rng as _;
use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

use crate::measure::{Latencies, ProcessCpu};
use crate::report::{load_average, Environment, Figure, Goal, Report, Row};
use crate::target::Target;
use crate::Error;

/// Default users, one connection each.
pub const DEFAULT_USERS: usize = 1_000;
/// Default events per second.
pub const DEFAULT_RATE: u32 = 1_000;
/// Default seconds of sending.
pub const DEFAULT_SECONDS: u64 = 10;
/// Default requests in flight at most.
pub const DEFAULT_IN_FLIGHT: usize = 256;

const SMOKE_USERS: usize = 20;
const SMOKE_RATE: u32 = 200;
const SMOKE_SECONDS: u64 = 2;

const MAX_USERS: usize = 100_000;
const MAX_RATE: u32 = 100_000;
const MAX_SECONDS: u64 = 3_600;
const MAX_IN_FLIGHT: usize = 10_000;

/// How long the clients may take to go live, and events to arrive after the
/// last answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections opened at once while the clients start.
const CONNECT_BATCH: usize = 100;

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123456789abcdef";
const INGEST_SECRET: &[u8] = b"bench-ingest-secret-0123456789abcdef";
const ORDER_PREFIX: &str = "bench-o-";
const COMPLETIONS_PATH: &str = "/queue/completions";

/// Flags of the `latency` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Options {
    /// Users, one client connection each.
    #[arg(long, default_value_t = DEFAULT_USERS)]
    pub users: usize,
    /// Events POSTed per second.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    pub seconds: u64,
    /// Requests to the function in flight at most (a slower function makes
    /// the sending rate fall short; the report gives the achieved rate).
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// A Redis on the loopback interface to use instead of starting one.
    /// Every key in it is DELETED (FLUSHALL) first.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// A tiny run for CI: 20 users, 200 events/s, 2 s.
    #[arg(long)]
    pub smoke: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: DEFAULT_USERS,
            rate: DEFAULT_RATE,
            seconds: DEFAULT_SECONDS,
            in_flight: DEFAULT_IN_FLIGHT,
            redis_url: None,
            smoke: false,
        }
    }
}

impl Options {
    fn effective(&self) -> Result<Self, Error> {
        let mut o = self.clone();
        if o.smoke {
            o.users = SMOKE_USERS;
            o.rate = SMOKE_RATE;
            o.seconds = SMOKE_SECONDS;
        }
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(Error::InvalidOption(what.to_owned())) };
        check((1..=MAX_USERS).contains(&o.users), "--users must be 1..=100000")?;
        check((1..=MAX_RATE).contains(&o.rate), "--rate must be 1..=100000")?;
        check((1..=MAX_SECONDS).contains(&o.seconds), "--seconds must be 1..=3600")?;
        check((1..=MAX_IN_FLIGHT).contains(&o.in_flight), "--in-flight must be 1..=10000")?;
        Ok(o)
    }

    fn events(&self) -> usize {
        usize::try_from(u64::from(self.rate) * self.seconds).unwrap_or(usize::MAX)
    }
}

/// What happened to one event.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    sent: Option<Instant>,
    answered: Option<Instant>,
    received: Option<Instant>,
    receipts: u32,
}

/// Shared between the senders and every client's observer.
#[derive(Debug)]
struct Tracker {
    slots: Mutex<Vec<Slot>>,
}

impl Tracker {
    fn with(&self, index: usize, f: impl FnOnce(&mut Slot)) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(index) {
            f(slot);
        }
    }

    fn observe(&self, message: &ServerMessage) {
        let now = Instant::now();
        if let ServerMessage::OrderUpdate(envelope) = message {
            if let Some(index) = envelope.data.order_id.strip_prefix(ORDER_PREFIX).and_then(|n| n.parse().ok()) {
                self.with(index, |slot| {
                    slot.receipts += 1;
                    slot.received.get_or_insert(now);
                });
            }
        }
    }
}

/// Runs S1 to its report.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    let load_before = load_average();
    let target = Target::start_or_connect(options.redis_url.as_deref()).await?;
    target.flush().await?;
    let (version, aof) = target.server_info().await?;

    let connect = |what: &'static str| {
        let url = target.url().to_owned();
        async move {
            RedisLog::connect(&url, LogSettings::default(), REQUEST_TIMEOUT)
                .await
                .map_err(|e| Error::Redis(format!("{what}: {e}")))
        }
    };
    let gateway_log: SharedLog = Arc::new(connect("the gateway's event log").await?);
    let functions_store = Arc::new(connect("the functions' event log").await?);

    // The gateway, in process.
    let mut vars = BTreeMap::new();
    vars.insert("JWT_SECRET".to_owned(), JWT_SECRET.to_owned());
    vars.insert("MAX_CONNECTIONS".to_owned(), (options.users + 1_000).to_string());
    let config = edge_gateway::GatewayConfig::from_source(&vars)
        .map_err(|e| Error::InvalidOption(format!("gateway config: {e}")))?;
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let (stop_gateway, gateway_stopped) = oneshot::channel::<()>();
    let gateway = tokio::spawn(edge_gateway::run(gateway_listener, config, gateway_log, async {
        let _ = gateway_stopped.await;
    }));

    // The functions' router, over real HTTP on its own port.
    let verifier = Verifier::new(Secret::new(INGEST_SECRET), Duration::from_secs(300));
    let state = AppState::new(Deps::new(functions_store), &[Function::QueueCompletions], None, Some(verifier))
        .map_err(|e| Error::InvalidOption(e.to_string()))?;
    let functions_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let functions_addr = functions_listener.local_addr()?;
    let (stop_functions, functions_stopped) = oneshot::channel::<()>();
    let functions = tokio::spawn(async move {
        axum::serve(functions_listener, functions::app(state))
            .with_graceful_shutdown(async {
                let _ = functions_stopped.await;
            })
            .await
    });

    let result = measure(&options, gateway_addr, functions_addr).await;

    let _ = stop_gateway.send(());
    let _ = stop_functions.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), gateway).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), functions).await;
    let measured = result?;

    Ok(report(&options, measured, Environment::here(version, aof, load_before)))
}

/// What one run measured.
#[derive(Debug)]
struct Measured {
    connect_secs: f64,
    send_secs: f64,
    slots: Vec<Slot>,
    http_errors: u64,
    reconnects: u64,
    cpu: Option<ProcessCpu>,
}

async fn measure(
    options: &Options,
    gateway: std::net::SocketAddr,
    functions: std::net::SocketAddr,
) -> Result<Measured, Error> {
    let events = options.events();
    let tracker = Arc::new(Tracker { slots: Mutex::new(vec![Slot::default(); events]) });

    // The clients.
    let started = Instant::now();
    let mut clients: Vec<ClientHandle> = Vec::with_capacity(options.users);
    let expires = now_unix() + 24 * 3_600;
    for chunk_start in (0..options.users).step_by(CONNECT_BATCH) {
        let chunk_end = (chunk_start + CONNECT_BATCH).min(options.users);
        for user in chunk_start..chunk_end {
            let token = sign_hs256(JWT_SECRET.as_bytes(), &TokenClaims::new(user_id(user), expires))
                .map_err(|e| Error::InvalidOption(format!("signing a token: {e}")))?;
            let mut config = ClientConfig::new(&format!("http://{gateway}"), Credentials::Bearer(token))
                .map_err(|e| Error::InvalidOption(format!("client config: {e}")))?;
            let observer = tracker.clone();
            config.observer = Some(Observer(Arc::new(move |message| observer.observe(message))));
            clients.push(Client::connect(config).map_err(|e| Error::InvalidOption(format!("client: {e}")))?);
        }
        for client in &clients[chunk_start..chunk_end] {
            let deadline = CONNECT_TIMEOUT.saturating_sub(started.elapsed());
            let status =
                client.wait_for_status(deadline, |s| s == Status::Live || s.is_final()).await.map_err(|_| {
                    Error::Timeout { what: format!("{} clients going live", options.users), limit: CONNECT_TIMEOUT }
                })?;
            if status != Status::Live {
                return Err(Error::Mismatch(format!("a client ended {status:?} instead of going live")));
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let reconnects_before: u64 = clients.iter().map(|c| c.metrics().reconnects).sum();

    // The load: one signed completion per event, at the rate.
    let http: HttpClient<_, Full<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).pool_max_idle_per_host(options.in_flight).build_http();
    let limit = Arc::new(Semaphore::new(options.in_flight));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / f64::from(options.rate));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let run_id = now_unix();
    let cpu_before = ProcessCpu::now();
    let send_started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut rng = rand::thread_rng();
    for index in 0..events {
        ticker.tick().await;
        let permit = limit.clone().acquire_owned().await.map_err(|e| Error::InvalidOption(e.to_string()))?;
        let user = rng.gen_range(0..options.users);
        let body = completion(run_id, index, &user_id(user));
        let (http, tracker, errors) = (http.clone(), tracker.clone(), errors.clone());
        let uri = format!("http://{functions}{COMPLETIONS_PATH}");
        tasks.spawn(async move {
            let _permit = permit;
            let signature = signature::sign(INGEST_SECRET, signature::now_unix(), body.as_bytes());
            let request = axum::http::Request::post(uri)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(Full::new(Bytes::from(body)));
            let Ok(request) = request else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            };
            let sent = Instant::now();
            tracker.with(index, |slot| slot.sent = Some(sent));
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let response = http.request(request).await.ok()?;
                let ok = response.status().is_success();
                response.into_body().collect().await.ok()?;
                Some(ok)
            })
            .await;
            let answered = Instant::now();
            if matches!(answer, Ok(Some(true))) {
                tracker.with(index, |slot| slot.answered = Some(answered));
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let send_bound = Duration::from_secs(options.seconds * 2) + REQUEST_TIMEOUT;
    if tokio::time::timeout(send_bound, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tasks.abort_all();
    }
    let send_secs = send_started.elapsed().as_secs_f64();

    // Wait for the last deliveries (bounded).
    let drain_started = Instant::now();
    while drain_started.elapsed() < DRAIN_TIMEOUT {
        let missing = {
            let slots = tracker.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.iter().any(|s| s.answered.is_some() && s.received.is_none())
        };
        if !missing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer, so that duplicates would show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = ProcessCpu::now().zip(cpu_before).map(|(after, before)| after.since(&before));
    let reconnects = clients.iter().map(|c| c.metrics().reconnects).sum::<u64>() - reconnects_before;

    let mut closing = JoinSet::new();
    for client in clients {
        closing.spawn(client.close());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while closing.join_next().await.is_some() {} }).await;

    let slots = std::mem::take(&mut *tracker.slots.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Measured {
        connect_secs,
        send_secs,
        slots,
        http_errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        reconnects,
        cpu,
    })
}

fn report(options: &Options, measured: Measured, environment: Environment) -> Report {
    let events = measured.slots.len();
    let mut from_answer = Latencies::with_capacity(events);
    let mut from_send = Latencies::with_capacity(events);
    let (mut answered, mut received, mut lost, mut before_answer, mut unasked) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut duplicates = 0u64;
    for slot in &measured.slots {
        if slot.received.is_some() {
            received += 1;
        }
        duplicates += u64::from(slot.receipts.saturating_sub(1));
        match (slot.answered, slot.received) {
            (Some(answer), Some(receipt)) => {
                answered += 1;
                if receipt < answer {
                    before_answer += 1;
                }
                from_answer.record(receipt.saturating_duration_since(answer));
            }
            (Some(_), None) => {
                answered += 1;
                lost += 1;
            }
            (None, Some(_)) => unasked += 1,
            (None, None) => {}
        }
        if let (Some(sent), Some(receipt)) = (slot.sent, slot.received) {
            from_send.record(receipt.saturating_duration_since(sent));
        }
    }
    let ps = [50.0, 95.0, 99.0, 100.0];
    let answer_ps = from_answer.percentiles_ms(&ps).unwrap_or_default();
    let send_ps = from_send.percentiles_ms(&ps).unwrap_or_default();
    let rate = if measured.send_secs > 0.0 { answered as f64 / measured.send_secs } else { 0.0 };
    let cpu_us = measured.cpu.filter(|_| answered > 0).map(|cpu| cpu.own.as_secs_f64() * 1e6 / answered as f64);

    let mut figures = Vec::new();
    for (label, values) in
        [("ingest answered → client decoded", &answer_ps), ("request sent → client decoded", &send_ps)]
    {
        for (p, value) in ["p50", "p95", "p99", "max"].iter().zip(values.iter()) {
            figures.push(Figure::new(format!("{p}, {label}"), *value, "ms"));
        }
    }
    figures.extend([
        Figure::new("events to send (rate × seconds)", events as f64, "events"),
        Figure::new("answered 2xx by the function", f64::from(answered), "events"),
        Figure::new("HTTP errors or timeouts", measured.http_errors as f64, "requests"),
        Figure::new("received by a client (order_update, first copy)", f64::from(received), "events"),
        Figure::new("lost (answered, never received)", f64::from(lost), "events"),
        Figure::new("duplicated (extra copies received)", duplicates as f64, "events"),
        Figure::new("received without a 2xx answer", f64::from(unasked), "events"),
        Figure::new("delivered before the answer reached the bench (sample = 0)", f64::from(before_answer), "events"),
        Figure::new("client reconnects during the load", measured.reconnects as f64, "reconnects"),
        Figure::new("achieved rate (answered / sending time)", rate, "events/s"),
        Figure::new("time to bring all clients live", measured.connect_secs, "s"),
    ]);
    if let Some(cpu) = cpu_us {
        figures.push(Figure::new("CPU of this process (gateway + functions + clients) per event", cpu, "µs"));
    }

    let p50 = answer_ps.first().copied().unwrap_or(f64::NAN);
    let p99 = answer_ps.get(2).copied().unwrap_or(f64::NAN);
    let goals = vec![
        Goal { name: "p50 ms (answer → decoded), BRIEF §7".to_owned(), target: 1.0, value: p50, met: p50 <= 1.0 },
        Goal { name: "p99 ms (answer → decoded), BRIEF §7".to_owned(), target: 5.0, value: p99, met: p99 <= 5.0 },
        Goal {
            name: "lost + duplicated events".to_owned(),
            target: 0.0,
            value: (u64::from(lost) + duplicates) as f64,
            met: lost == 0 && duplicates == 0 && answered > 0,
        },
    ];
    let row = Row {
        name: "ours: ingest HTTP → Redis → gateway → client, order_update".to_owned(),
        events_per_sec: rate,
        runs_events_per_sec: vec![rate],
        p50_ms: answer_ps.first().copied(),
        p99_ms: answer_ps.get(2).copied(),
        server_cpu_us_per_event: None,
        client_cpu_us_per_event: cpu_us,
        server_busy: None,
        latency_of: "function's 2xx answer → client's observer decoded it".to_owned(),
        ratio_to_baseline: None,
    };
    Report {
        scenario: "latency".to_owned(),
        environment,
        parameters: serde_json::to_value(options).unwrap_or_default(),
        baseline: None,
        rows: vec![row],
        figures,
        goals,
        commands: Vec::new(),
        notes: vec![
            format!(
                "{} users, one portfolio-client connection each, all channels; {} events/s for {} s, each a signed POST {COMPLETIONS_PATH} for a random user (urgent order_update); at most {} requests in flight.",
                options.users, options.rate, options.seconds, options.in_flight
            ),
            "Everything runs in this one process on loopback (redis-server apart): the gateway (RedisLog), the functions' router (axum over HTTP), the clients and the load generator share the runtime and the machine's cores; gateway memory is not separable here (see the connections scenario).".to_owned(),
            "One run; no peer or raw baseline yet (issue 8: Socket.IO peer and minimal tokio fanout server to come).".to_owned(),
        ],
    }
}

fn user_id(n: usize) -> String {
    format!("bench-{n:06}")
}

fn now_unix() -> i64 {
    signature::now_unix()
}

/// The completion of event `index`: its job id is unique per run (the
/// dedupe id), its order id carries the index the observer looks up.
fn completion(run_id: i64, index: usize, user: &str) -> String {
    serde_json::json!({
        "jobId": format!("bench-j-{run_id}-{index}"),
        "userId": user,
        "orderId": format!("{ORDER_PREFIX}{index}"),
        "brokerOrderId": format!("bench-b-{index}"),
        "status": "accepted",
        "order": {"symbol": "AAPL", "side": "buy", "type": "limit", "qty": "10", "limitPrice": "175.50"},
        "submittedAt": "2026-01-03T15:29:30.000Z"
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_decode_as_the_function_expects() {
        let body = completion(1, 42, "bench-000007");
        let decoded: functions::completion::Completion = serde_json::from_str(&body).expect("a completion");
        assert_eq!(decoded.order_id, "bench-o-42");
        assert_eq!(decoded.job_id, "bench-j-1-42");
    }

    #[test]
    fn smoke_sizes_apply() {
        let o = Options { smoke: true, ..Options::default() }.effective().unwrap();
        assert_eq!((o.users, o.events()), (SMOKE_USERS, 400));
        assert!(Options { rate: 0, ..Options::default() }.effective().is_err());
    }
}
