//! Publish throughput of the Redis event log (`RedisLog`): several tasks
//! publishing realistic events one call at a time, then in `publish_many`
//! batches, next to two `redis-benchmark` baselines measured in the same run
//! on the same server: `EVALSHA` of the project's own `publish.lua` with the
//! arguments `RedisLog` sends (the server-side limit of this design), and a
//! bare `XADD` of an event of the same size (the floor cost of a stream
//! append). Runs are interleaved, the database is flushed before every
//! phase, and the report gives medians of the runs and ratios to `EVALSHA`,
//! with what each event cost in CPU time on the Redis main thread and in
//! the load generator: on a small machine they share the cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::redis::{Durability, RedisLog};
use event_log::{EventLog, LogSettings, NewEvent, Published, ReadAfter};
use fred::prelude::LuaInterface;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::measure::{median, Latencies, ProcessCpu};
use crate::redis_benchmark::{self, Measured, RedisBenchmark};
use crate::report::{Environment, Goal, Report, Row};
use crate::scenario::{self, check_range, FlagSet};
use crate::target::Target;

mod script_call;
mod workload;

use script_call::{publish_call, PUBLISH_LUA, PUBLISH_LUA_PATH};
use workload::Workload;

/// The default number of events per run and variant.
pub const DEFAULT_EVENTS: u64 = 200_000;
/// The default number of publishing tasks.
pub const DEFAULT_TASKS: usize = 16;
/// The default number of users the events are spread over.
pub const DEFAULT_USERS: usize = 1_000;
/// The default `publish_many` batch (a price tick touching many users).
pub const DEFAULT_BATCH: usize = 256;
/// The default number of runs.
pub const DEFAULT_RUNS: usize = 3;
/// `redis-benchmark`'s own default connection count.
pub const DEFAULT_BENCH_CLIENTS: u32 = 50;
/// Pipeline depth of the baselines.
pub const DEFAULT_BENCH_PIPELINE: u32 = 16;
/// Time limit of one phase.
pub const DEFAULT_PHASE_TIMEOUT_SECS: u64 = 300;

/// `__rand_int__` range of the `EVALSHA` baseline's dedupe ids: wide enough
/// that a repeat (answered as a cheaper duplicate) is rare: about
/// n²/2r, 20 of 200,000.
const DEDUPE_KEYSPACE: u64 = 1_000_000_000;

/// What `RedisLog` gets as its command timeout.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a durable publish waits for its replica (the template's 500 ms
/// would refuse events on a loaded machine; this measures cost, not refusals).
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `--smoke` sizes: seconds, for CI.
const SMOKE_EVENTS: u64 = 4_000;
const SMOKE_TASKS: usize = 4;
const SMOKE_USERS: usize = 20;
const SMOKE_BATCH: usize = 64;

/// Upper bounds that keep every loop and allocation bounded.
const MAX_EVENTS: u64 = 20_000_000;
const MAX_TASKS: usize = 4_096;
const MAX_USERS: usize = 1_000_000;
const MAX_BATCH: usize = 10_000;
const MAX_CONNECTIONS: usize = 64;
const MAX_RUNS: usize = 20;

const OURS_CALLS: &str = "ours: publish, one event per call";
const OURS_MANY: &str = "ours: publish_many";
const OURS_CALLS_DURABLE: &str = "ours: publish, one event per call, acknowledged once a replica has it";
const OURS_MANY_DURABLE: &str = "ours: publish_many, acknowledged once a replica has it";
const BASE_EVALSHA: &str = "baseline: redis-benchmark EVALSHA publish.lua";
const BASE_XADD: &str = "baseline: redis-benchmark XADD";

/// The `publish` scenario's command line.
pub type Options = scenario::Options<Flags>;

/// Flags of the `publish` scenario.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Flags {
    /// Events per run and variant; also the baselines' request count (-n).
    #[arg(long, default_value_t = DEFAULT_EVENTS)]
    pub events: u64,
    /// Concurrent publishing tasks.
    #[arg(long, default_value_t = DEFAULT_TASKS)]
    pub tasks: usize,
    /// Users the events are spread over, round robin.
    #[arg(long, default_value_t = DEFAULT_USERS)]
    pub users: usize,
    /// Events per `publish_many` call (the price-tick path).
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// `RedisLog` clients, one connection each, the tasks are spread over.
    /// A function or gateway process uses one.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Runs; the report gives the median of each figure.
    #[arg(long, default_value_t = DEFAULT_RUNS)]
    pub runs: usize,
    /// Connections of the `redis-benchmark` baselines (-c).
    #[arg(long, default_value_t = DEFAULT_BENCH_CLIENTS)]
    pub bench_clients: u32,
    /// Pipeline depth of the `redis-benchmark` baselines (-P).
    #[arg(long, default_value_t = DEFAULT_BENCH_PIPELINE)]
    pub bench_pipeline: u32,
    /// Time limit of each phase, in seconds.
    #[arg(long, default_value_t = DEFAULT_PHASE_TIMEOUT_SECS)]
    pub phase_timeout_secs: u64,
    /// A Redis on the loopback interface to use instead of starting one.
    /// Every key in it is DELETED (FLUSHALL) before each phase.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Start this many replicas of the bench's server and add two phases
    /// publishing with the log waiting for one (`REDIS_WAIT_REPLICAS=1`),
    /// beside the same phases not waiting, in the same run: the cost of
    /// durability. 0: no replicas, no such phases.
    #[arg(long, default_value_t = 0)]
    pub replicas: u32,
}

impl FlagSet for Flags {
    const SMOKE: &'static str = "A tiny run for CI: 4,000 events, 4 tasks, 20 users, batches of 64, one run.";

    fn shrink(&mut self) {
        self.events = SMOKE_EVENTS;
        self.tasks = SMOKE_TASKS;
        self.users = SMOKE_USERS;
        self.batch = SMOKE_BATCH;
        self.runs = 1;
    }

    fn check(&self) -> Result<(), Error> {
        check_range("events", self.events, 1..=MAX_EVENTS)?;
        check_range("tasks", self.tasks, 1..=MAX_TASKS)?;
        check_range("users", self.users, 1..=MAX_USERS)?;
        check_range("batch", self.batch, 1..=MAX_BATCH)?;
        check_range("connections", self.connections, 1..=MAX_CONNECTIONS)?;
        check_range("runs", self.runs, 1..=MAX_RUNS)?;
        check_range("bench-clients", self.bench_clients, 1..=10_000)?;
        check_range("bench-pipeline", self.bench_pipeline, 1..=10_000)?;
        check_range("replicas", self.replicas, 0..=3)?;
        check_range("phase-timeout-secs", self.phase_timeout_secs, 1..=3_600)
    }
}

impl Flags {
    fn phase_limit(&self) -> Duration {
        Duration::from_secs(self.phase_timeout_secs)
    }
}

/// What one phase of one run measured.
#[derive(Debug, Clone, Copy)]
struct Phase {
    events_per_sec: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    server_cpu_us_per_event: Option<f64>,
    server_busy: Option<f64>,
    client_cpu_us_per_event: Option<f64>,
}

/// Whose CPU time is the load generator's.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// This process (ours).
    Own,
    /// A child process (`redis-benchmark`).
    Child,
}

impl From<Measured> for Phase {
    fn from(m: Measured) -> Self {
        Self {
            events_per_sec: m.rps,
            p50_ms: Some(m.p50_ms),
            p99_ms: Some(m.p99_ms),
            server_cpu_us_per_event: None,
            server_busy: None,
            client_cpu_us_per_event: None,
        }
    }
}

/// Runs one phase on a flushed database and adds what it cost the server
/// and the client in CPU time.
async fn on_server(
    target: &Target,
    events: u64,
    client: Client,
    phase: impl std::future::Future<Output = Result<Phase, Error>>,
) -> Result<Phase, Error> {
    target.flush().await?;
    let server_cpu = target.server_cpu().await?;
    let client_cpu = ProcessCpu::now();
    let started = Instant::now();
    let mut phase = phase.await?;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = target.server_cpu().await?.saturating_sub(server_cpu).as_secs_f64();
    let per_event = |cpu: Duration| cpu.as_secs_f64() * 1e6 / events as f64;
    phase.server_cpu_us_per_event = Some(server_cpu * 1e6 / events as f64);
    phase.server_busy = (wall > 0.0).then(|| server_cpu / wall);
    phase.client_cpu_us_per_event = client_cpu.zip(ProcessCpu::now()).map(|(before, after)| {
        let used = after.since(&before);
        per_event(match client {
            Client::Own => used.own,
            Client::Child => used.children,
        })
    });
    Ok(phase)
}

/// Runs the scenario (see the module doc).
pub async fn run(options: &Options) -> Result<Report, Error> {
    let options = options.effective()?;
    let load_before = crate::report::load_average();
    redis_benchmark::require().await?;
    let target = Target::start_or_connect_with(options.redis_url.as_deref(), options.replicas).await?;
    let settings = LogSettings::default();
    let workload = Arc::new(Workload::new(options.users)?);

    let mut logs = Vec::with_capacity(options.connections);
    let mut durable = Vec::new();
    let durability = Durability { replicas: 1, timeout: WAIT_TIMEOUT };
    for _ in 0..options.connections {
        logs.push(RedisLog::connect(target.url(), settings, COMMAND_TIMEOUT).await?);
        if options.replicas > 0 {
            durable.push(RedisLog::connect_durable(target.url(), settings, COMMAND_TIMEOUT, durability).await?);
        }
    }
    let sha = target.script_load(PUBLISH_LUA).await?;
    check_baseline_call(&target, &logs[0], &workload, &sha, &settings).await?;
    let (evalsha, xadd) = baselines(&target, &options, &workload, &sha, &settings)?;

    let mut phases: [Vec<Phase>; 6] = Default::default();
    let (n, limit) = (options.events, options.phase_limit());
    for run in 0..options.runs {
        let own = Client::Own;
        phases[0].push(on_server(&target, n, own, publish_phase(&logs, &workload, &options, run, Calls::One)).await?);
        phases[1].push(
            on_server(&target, n, own, publish_phase(&logs, &workload, &options, run, Calls::Many(options.batch)))
                .await?,
        );
        let child = Client::Child;
        phases[2].push(on_server(&target, n, child, async { Ok(evalsha.run(limit).await?.into()) }).await?);
        phases[3].push(on_server(&target, n, child, async { Ok(xadd.run(limit).await?.into()) }).await?);
        let mut waiting = String::new();
        if !durable.is_empty() {
            phases[4]
                .push(on_server(&target, n, own, publish_phase(&durable, &workload, &options, run, Calls::One)).await?);
            let many = Calls::Many(options.batch);
            phases[5].push(on_server(&target, n, own, publish_phase(&durable, &workload, &options, run, many)).await?);
            waiting = format!(
                "; waiting for a replica: per call {:.0}/s, publish_many {:.0}/s",
                phases[4][run].events_per_sec, phases[5][run].events_per_sec
            );
        }
        eprintln!(
            "run {}/{}: per call {:.0}/s, publish_many {:.0}/s, EVALSHA {:.0}/s, XADD {:.0}/s{waiting}",
            run + 1,
            options.runs,
            phases[0][run].events_per_sec,
            phases[1][run].events_per_sec,
            phases[2][run].events_per_sec,
            phases[3][run].events_per_sec,
        );
    }
    target.flush().await?;
    drop((logs, durable));

    let (version, aof) = target.server_info().await?;
    let [calls, many, base_evalsha, base_xadd, calls_durable, many_durable] = phases;
    let mut report = Report {
        scenario: "publish".to_owned(),
        environment: Environment::here(version, aof, load_before),
        parameters: serde_json::to_value(&options).map_err(|e| Error::InvalidOption(e.to_string()))?,
        baseline: Some(BASE_EVALSHA.to_owned()),
        rows: vec![
            row(OURS_CALLS, &calls, "one publish() call"),
            row(&format!("{OURS_MANY}, batches of {}", options.batch), &many, "one publish_many() call"),
            row(BASE_EVALSHA, &base_evalsha, "one request in a pipeline"),
            row(BASE_XADD, &base_xadd, "one request in a pipeline"),
        ],
        figures: Vec::new(),
        comparisons: Vec::new(),
        goals: Vec::new(),
        commands: reproduce_commands(&target, &options, &evalsha, &xadd),
        notes: notes(&options, &workload),
    };
    if !calls_durable.is_empty() {
        report.rows.push(row(OURS_CALLS_DURABLE, &calls_durable, "one publish() call, then WAIT 1"));
        let name = format!("{OURS_MANY_DURABLE}, batches of {}", options.batch);
        report.rows.push(row(&name, &many_durable, "one publish_many() call, then WAIT 1 per slot"));
    }
    report.compute_ratios();
    for (name, row) in [("ours per call", &report.rows[0]), ("ours publish_many", &report.rows[1])] {
        let value = row.ratio_to_baseline.unwrap_or_default();
        report.goals.push(Goal { name: format!("{name} / EVALSHA baseline"), target: 0.8, value, met: value >= 0.8 });
    }
    Ok(report)
}

/// Proves the baseline calls the script exactly as `RedisLog` does: the
/// same event published both ways is stored as the same bytes.
async fn check_baseline_call(
    target: &Target,
    log: &RedisLog,
    workload: &Workload,
    sha: &str,
    settings: &LogSettings,
) -> Result<(), Error> {
    target.flush().await?;
    let event = workload.event(0);
    let (keys, args) = publish_call(&event, "preflight-baseline", settings)?;
    target.admin().evalsha::<fred::prelude::Value, _, _, _>(sha, keys, args).await?;
    log.publish(&NewEvent::new(event.clone(), "preflight-log")).await?;
    let stored = match log.read_after(workload.first_user(), None, 0, 10).await? {
        ReadAfter::Events { events, .. } => events,
        other => return Err(Error::Mismatch(format!("reading the preflight events: {other:?}"))),
    };
    if stored.len() != 2 {
        return Err(Error::Mismatch(format!("expected 2 preflight events, found {}", stored.len())));
    }
    for (seq, stored) in (1..).zip(&stored) {
        let mut expected = event.clone();
        expected.set_seq(Some(seq));
        let json = serde_json::to_string(&expected).map_err(|e| Error::Mismatch(e.to_string()))?;
        if stored.seq != seq || stored.json != json.as_bytes() {
            return Err(Error::Mismatch(format!(
                "event {seq} stored as {:?}, expected {json}",
                String::from_utf8_lossy(&stored.json)
            )));
        }
    }
    target.flush().await
}

/// The two `redis-benchmark` invocations.
fn baselines(
    target: &Target,
    options: &Options,
    workload: &Workload,
    sha: &str,
    settings: &LogSettings,
) -> Result<(RedisBenchmark, RedisBenchmark), Error> {
    // One fixed user: redis-benchmark replaces every `__rand_int__` with its
    // own random number, so a random user id would give each of the seven
    // keys a different user. Only the dedupe id is random.
    let event = workload.event(0);
    let (keys, args) = publish_call(&event, "bench-__rand_int__", settings)?;
    let mut call = vec!["EVALSHA".to_owned(), sha.to_owned(), keys.len().to_string()];
    call.extend(keys);
    call.extend(args);
    let base = RedisBenchmark {
        host: target.host().to_owned(),
        port: target.port(),
        requests: options.events,
        clients: options.bench_clients,
        pipeline: options.bench_pipeline,
        keyspace: Some(DEDUPE_KEYSPACE),
        command: call,
    };
    let mut stored = event;
    stored.set_seq(Some(1));
    let json = serde_json::to_string(&stored).map_err(|e| Error::Mismatch(e.to_string()))?;
    let stream = event_log::keys::UserKeys::new(workload.first_user()).events;
    let xadd = RedisBenchmark {
        keyspace: None,
        command: vec![
            "XADD".to_owned(),
            stream,
            "MAXLEN".to_owned(),
            "~".to_owned(),
            settings.stream_maxlen.to_string(),
            "*".to_owned(),
            "e".to_owned(),
            json,
        ],
        ..base.clone()
    };
    Ok((base, xadd))
}

/// How a phase hands events to the log.
#[derive(Debug, Clone, Copy)]
enum Calls {
    /// One event per `publish` call.
    One,
    /// Batches of this many per `publish_many` call.
    Many(usize),
}

/// Ours: task `t` of `T` publishes events `t, t+T, t+2T, …`, one call (of
/// one event, or of a batch) awaited before the next.
async fn publish_phase(
    logs: &[RedisLog],
    workload: &Arc<Workload>,
    options: &Options,
    run: usize,
    calls: Calls,
) -> Result<Phase, Error> {
    let limit = options.phase_limit();
    let started = Instant::now();
    let deadline = started + limit;
    let (what, batch) = match calls {
        Calls::One => ("publish, one event per call", 1),
        Calls::Many(batch) => ("publish_many", batch),
    };
    let mut tasks = JoinSet::new();
    for task in 0..options.tasks {
        let log = logs[task % logs.len()].clone();
        let workload = workload.clone();
        let (stride, events) = (options.tasks as u64, options.events);
        tasks.spawn(async move {
            let mut latencies = Latencies::with_capacity((events / stride / batch as u64 + 1) as usize);
            let mut chunk = Vec::with_capacity(batch);
            let mut k = task as u64;
            while k < events {
                chunk.clear();
                while chunk.len() < batch && k < events {
                    chunk.push(workload.new_event(run, k));
                    k += stride;
                }
                let sent = Instant::now();
                match calls {
                    Calls::One => {
                        let published = log.publish(&chunk[0]).await;
                        latencies.record(sent.elapsed());
                        expect_new(&published?)?;
                    }
                    Calls::Many(_) => {
                        let results = log.publish_many(&chunk).await;
                        latencies.record(sent.elapsed());
                        for result in results {
                            expect_new(&result?)?;
                        }
                    }
                }
                if Instant::now() > deadline {
                    return Err(Error::Timeout { what: what.to_owned(), limit });
                }
            }
            Ok(latencies)
        });
    }
    let latencies = join(tasks).await?;
    Ok(phase(options.events, started.elapsed(), latencies))
}

/// Every event of a run has a fresh dedupe id; a duplicate means the bench
/// is wrong, and its cheaper path would flatter the figures.
fn expect_new(published: &Published) -> Result<(), Error> {
    match published {
        Published::New { .. } => Ok(()),
        Published::Duplicate { seq, .. } => {
            Err(Error::Mismatch(format!("a fresh dedupe id was answered as a duplicate of seq {seq}")))
        }
    }
}

/// Waits for every task; the first failure aborts the rest (dropping the set).
async fn join(mut tasks: JoinSet<Result<Latencies, Error>>) -> Result<Latencies, Error> {
    let mut all = Latencies::default();
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined.map_err(|e| Error::Mismatch(format!("a publishing task failed: {e}")))??;
        all.merge(latencies);
    }
    Ok(all)
}

fn phase(events: u64, elapsed: Duration, mut latencies: Latencies) -> Phase {
    let percentiles = latencies.percentiles_ms(&[50.0, 99.0]);
    Phase {
        events_per_sec: events as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        p50_ms: percentiles.as_ref().map(|p| p[0]),
        p99_ms: percentiles.as_ref().map(|p| p[1]),
        server_cpu_us_per_event: None,
        server_busy: None,
        client_cpu_us_per_event: None,
    }
}

fn row(name: &str, phases: &[Phase], latency_of: &str) -> Row {
    let pick = |f: fn(&Phase) -> Option<f64>| median(&phases.iter().filter_map(f).collect::<Vec<_>>());
    let runs: Vec<f64> = phases.iter().map(|p| p.events_per_sec).collect();
    Row {
        name: name.to_owned(),
        events_per_sec: median(&runs).unwrap_or_default(),
        runs_events_per_sec: runs,
        p50_ms: pick(|p| p.p50_ms),
        p99_ms: pick(|p| p.p99_ms),
        server_cpu_us_per_event: pick(|p| p.server_cpu_us_per_event),
        server_busy: pick(|p| p.server_busy),
        client_cpu_us_per_event: pick(|p| p.client_cpu_us_per_event),
        latency_of: latency_of.to_owned(),
        ratio_to_baseline: None,
    }
}

fn reproduce_commands(
    target: &Target,
    options: &Options,
    evalsha: &RedisBenchmark,
    xadd: &RedisBenchmark,
) -> Vec<String> {
    let port = target.port();
    let replicas = if options.replicas > 0 { format!(" --replicas {}", options.replicas) } else { String::new() };
    let bench = if options.smoke {
        format!("cargo run --release -p bench -- publish --smoke{replicas}")
    } else {
        format!(
            "cargo run --release -p bench -- publish --events {} --tasks {} --users {} --batch {} --connections {} \
             --runs {} --bench-clients {} --bench-pipeline {}{replicas}",
            options.events,
            options.tasks,
            options.users,
            options.batch,
            options.connections,
            options.runs,
            options.bench_clients,
            options.bench_pipeline,
        )
    };
    vec![
        bench,
        format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --daemonize no"
        ),
        format!("redis-cli -p {port} SCRIPT LOAD \"$(cat {PUBLISH_LUA_PATH})\""),
        evalsha.command_line(),
        format!("redis-cli -p {port} FLUSHALL"),
        xadd.command_line(),
    ]
}

fn notes(options: &Options, workload: &Workload) -> Vec<String> {
    let mut notes = vec![
        format!(
            "Ours: {} tasks over {} RedisLog connection(s), {} users; events are position_update (4 in 5) and \
             account_update (1 in 5) with decimal strings, {:.0} bytes of stored JSON on average.",
            options.tasks,
            options.connections,
            options.users,
            workload.mean_json_bytes(options.events.min(1_000)),
        ),
        format!(
            "Baselines: redis-benchmark with {} connections × pipeline {} = {} requests in flight; ours has at most {} \
             (per call) or {} (publish_many) in flight. Their latencies are per pipelined request and not comparable.",
            options.bench_clients,
            options.bench_pipeline,
            u64::from(options.bench_clients) * u64::from(options.bench_pipeline),
            options.tasks,
            options.tasks * options.batch,
        ),
        "The EVALSHA baseline publishes a position_update for one fixed user with a random dedupe id: \
         redis-benchmark replaces each `__rand_int__` independently, so randomizing the user would give the \
         seven keys of one call seven different users. A preflight check proves it stores the same bytes as \
         RedisLog::publish."
            .to_owned(),
        "The database is flushed (FLUSHALL) before every phase; runs interleave the phases.".to_owned(),
    ];
    if options.replicas > 0 {
        notes.push(format!(
            "The server has {} replica(s), in sync, for every phase: the phases that wait for one \
             (REDIS_WAIT_REPLICAS=1, WAIT timeout {} s) and the ones that do not pay the same replication; the \
             difference is the wait, and the notice sent after it instead of inside the script.",
            options.replicas,
            WAIT_TIMEOUT.as_secs()
        ));
    }
    notes
}
