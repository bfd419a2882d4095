//! The load S1 and S5 put on a [`System`]: N users with one bare connection
//! each, and R urgent order events per second for D seconds, each POSTed
//! through the system's ingest path for a random user. Every event is
//! tracked from the request to its first receipt; every connection checks
//! that its user's sequence numbers arrive one after the other.
//!
//! One latency sample per event: from the moment the bench read the ingest
//! endpoint's 2xx answer to the moment the connection decoded the event
//! (same process, same monotonic clock). When the event arrives before the
//! answer, the sample is 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::protocol::ServerMessage;
use rand::Rng as _;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::measure::Latencies;
use crate::system::{self, events, Connection, Kind, System};
use crate::target::Target;
use common::sync::lock;

/// Handshakes in flight at once while the connections open.
pub const CONNECT_CONCURRENCY: usize = 64;
/// How long events may take to arrive after the last answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to keep listening after the last event, so duplicates show.
const DUPLICATE_WINDOW: Duration = Duration::from_millis(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// Users, one connection each.
    pub users: usize,
    /// Events per second.
    pub rate: u32,
    /// Seconds of sending.
    pub seconds: u64,
    /// Requests in flight at most.
    pub in_flight: usize,
    /// Sample every process' RSS this often while sending (S5).
    pub sample_every: Option<Duration>,
}

impl Load {
    /// Events to send.
    pub fn events(&self) -> usize {
        usize::try_from(u64::from(self.rate) * self.seconds).unwrap_or(usize::MAX)
    }
}

/// What happened to one event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Slot {
    /// When its request was sent.
    pub sent: Option<Instant>,
    /// When its 2xx answer was read.
    pub answered: Option<Instant>,
    /// When a connection first decoded it.
    pub received: Option<Instant>,
    /// How many times it was decoded.
    pub receipts: u32,
}

/// One user's view, kept by its connection's reader.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserView {
    /// The highest sequence number seen.
    pub last_seq: u64,
    /// Times a sequence number was not the previous one plus one.
    pub seq_breaks: u64,
    /// Order events received.
    pub orders: u64,
}

/// One RSS reading of every process of the system.
#[derive(Debug, Clone, Serialize)]
pub struct RssSample {
    /// Seconds since sending started.
    pub at_secs: f64,
    /// KiB per process, in the system's process order.
    pub kib: Vec<u64>,
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Seconds to open every connection.
    pub connect_secs: f64,
    /// Seconds from the first request to the last answer.
    pub send_secs: f64,
    /// One per event.
    pub slots: Vec<Slot>,
    /// One per user.
    pub views: Vec<UserView>,
    /// Requests that failed or timed out.
    pub http_errors: u64,
    /// The first failure, for the report.
    pub first_http_error: Option<String>,
    /// Connections that failed or closed while the load ran.
    pub connection_errors: u64,
    /// CPU time per process during the load, in the system's process order.
    pub cpu: Vec<(&'static str, Option<Duration>)>,
    /// Redis' main-thread CPU time during the load.
    pub redis_cpu: Option<Duration>,
    /// RSS readings: before sending, every `sample_every`, after draining.
    pub rss: Vec<RssSample>,
    /// Ours: users whose REST snapshot disagrees with what their
    /// connection received (seq, or the number of orders).
    pub snapshot_mismatches: Option<u64>,
}

#[derive(Debug)]
struct Tracker {
    slots: Mutex<Vec<Slot>>,
    views: Mutex<Vec<UserView>>,
}

impl Tracker {
    fn with(&self, index: usize, f: impl FnOnce(&mut Slot)) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(index) {
            f(slot);
        }
    }

    fn observe(&self, user: usize, message: &ServerMessage) {
        let now = Instant::now();
        let (seq, orders): (Option<u64>, Vec<&str>) = match message {
            ServerMessage::OrderUpdate(envelope) => (envelope.seq, vec![envelope.data.order_id.as_str()]),
            ServerMessage::Batch(envelope) => {
                (envelope.seq, envelope.data.orders.iter().map(|o| o.order_id.as_str()).collect())
            }
            _ => return,
        };
        for index in orders.iter().filter_map(|o| events::order_index(o)) {
            self.with(index, |slot| {
                slot.receipts += 1;
                slot.received.get_or_insert(now);
            });
        }
        let mut views = lock(&self.views);
        if let Some(view) = views.get_mut(user) {
            view.orders += orders.len() as u64;
            if let Some(seq) = seq {
                if seq != view.last_seq + 1 {
                    view.seq_breaks += 1;
                }
                view.last_seq = view.last_seq.max(seq);
            }
        }
    }
}

/// The user id of user `n`.
pub fn user_id(n: usize) -> String {
    format!("bench-{n:06}")
}

/// Opens `users` connections, one per user, `concurrency` handshakes at a
/// time.
pub async fn connect_all(
    system: &System,
    users: usize,
    concurrency: usize,
    expires: i64,
) -> Result<Vec<Connection>, Error> {
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for n in 0..users {
        let permit = limit.clone().acquire_owned().await.map_err(|e| Error::InvalidOption(e.to_string()))?;
        let source = system::source_address(n).map_err(Error::InvalidOption)?;
        let connector = system.connector();
        tasks.spawn(async move {
            let result = connector.connect(&user_id(n), source, expires).await;
            drop(permit);
            (n, result)
        });
    }
    let mut connections: Vec<Option<Connection>> = (0..users).map(|_| None).collect();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((n, Ok(connection))) => connections[n] = Some(connection),
            Ok((_, Err(error))) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    if let Some(error) = first_error {
        let failed = connections.iter().filter(|c| c.is_none()).count();
        return Err(Error::Mismatch(format!("{failed} of {users} connections failed; first: {error}")));
    }
    Ok(connections.into_iter().flatten().collect())
}

/// Runs `load` against `system` to its outcome.
pub async fn drive(system: &System, target: &Target, load: &Load) -> Result<Outcome, Error> {
    let events = load.events();
    let tracker = Arc::new(Tracker {
        slots: Mutex::new(vec![Slot::default(); events]),
        views: Mutex::new(vec![UserView::default(); load.users]),
    });
    let expires = functions::signature::now_unix() + 24 * 3_600;

    let started = Instant::now();
    let connections = connect_all(system, load.users, CONNECT_CONCURRENCY, expires).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let connection_errors = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for (user, mut connection) in connections.into_iter().enumerate() {
        let (tracker, errors) = (tracker.clone(), connection_errors.clone());
        readers.spawn(async move {
            while let Some(message) = connection.next().await {
                match message {
                    Ok(message) => tracker.observe(user, &message),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return connection;
                    }
                }
            }
            errors.fetch_add(1, Ordering::Relaxed);
            connection
        });
    }

    // RSS and CPU before, and a sampler while sending.
    let pids: Vec<u32> = system.processes.iter().map(|p| p.pid).collect();
    let rss_now = {
        let pids = pids.clone();
        move |at: Instant| RssSample {
            at_secs: at.elapsed().as_secs_f64(),
            kib: pids.iter().map(|pid| crate::measure::rss_kib(*pid).unwrap_or(0)).collect(),
        }
    };
    let cpu_before: Vec<Option<Duration>> = system.processes.iter().map(|p| p.cpu()).collect();
    let redis_before = target.server_cpu().await.ok();
    let send_started = Instant::now();
    let mut rss = vec![rss_now(send_started)];
    // The sampler keeps its readings where an abort cannot lose them.
    let samples: Arc<Mutex<Vec<RssSample>>> = Arc::default();
    let sampler = load.sample_every.map(|every| {
        let (rss_now, samples) = (rss_now.clone(), samples.clone());
        let bound = Duration::from_secs(load.seconds) + DRAIN_TIMEOUT;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            while send_started.elapsed() < bound {
                ticker.tick().await;
                lock(&samples).push(rss_now(send_started));
            }
        })
    });

    // The load.
    let limit = Arc::new(Semaphore::new(load.in_flight));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / f64::from(load.rate));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let run_id = functions::signature::now_unix();
    let mut next_seq = vec![0u64; load.users];
    let mut tasks = JoinSet::new();
    let mut rng = rand::thread_rng();
    for index in 0..events {
        ticker.tick().await;
        let permit = limit.clone().acquire_owned().await.map_err(|e| Error::InvalidOption(e.to_string()))?;
        let user = rng.gen_range(0..load.users);
        next_seq[user] += 1;
        let request = system.order_request(run_id, index, &user_id(user), next_seq[user]);
        let (http, tracker, errors, first_error) =
            (system.http().clone(), tracker.clone(), errors.clone(), first_error.clone());
        tasks.spawn(async move {
            let _permit = permit;
            tracker.with(index, |slot| slot.sent = Some(Instant::now()));
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, system::send(&http, request)).await;
            let answered = Instant::now();
            match answer {
                Ok(Ok(())) => tracker.with(index, |slot| slot.answered = Some(answered)),
                Ok(Err(error)) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    lock(&first_error).get_or_insert(error);
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    lock(&first_error).get_or_insert_with(|| format!("no answer within {REQUEST_TIMEOUT:?}"));
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let send_bound = Duration::from_secs(load.seconds * 2) + REQUEST_TIMEOUT;
    if tokio::time::timeout(send_bound, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tasks.abort_all();
    }
    let send_secs = send_started.elapsed().as_secs_f64();

    // The last deliveries (bounded), then a little longer for duplicates.
    crate::measure::wait_until(DRAIN_TIMEOUT, || {
        let slots = lock(&tracker.slots);
        !slots.iter().any(|s| s.answered.is_some() && s.received.is_none())
    })
    .await;
    tokio::time::sleep(DUPLICATE_WINDOW).await;
    let cpu: Vec<(&'static str, Option<Duration>)> = system
        .processes
        .iter()
        .zip(&cpu_before)
        .map(|(p, before)| (p.name, p.cpu().zip(*before).map(|(after, before)| after.saturating_sub(before))))
        .collect();
    let redis_cpu =
        target.server_cpu().await.ok().zip(redis_before).map(|(after, before)| after.saturating_sub(before));
    if let Some(sampler) = sampler {
        sampler.abort();
        let _ = sampler.await;
    }
    rss.extend(std::mem::take(&mut *lock(&samples)));
    rss.push(rss_now(send_started));

    // Ours: each user's final state, as REST serves it, against what its
    // connection received.
    let snapshot_mismatches = if system.kind == Kind::Ours {
        let views = lock(&tracker.views).clone();
        let mut mismatches = 0;
        for (user, view) in views.iter().enumerate() {
            let snapshot = system.snapshot(&user_id(user), expires).await?;
            let seq = snapshot["seq"].as_u64().unwrap_or(0);
            let orders = snapshot["orders"].as_array().map_or(0, Vec::len) as u64;
            if seq != view.last_seq || orders != view.orders {
                mismatches += 1;
            }
        }
        Some(mismatches)
    } else {
        None
    };

    readers.abort_all();
    let slots = std::mem::take(&mut *lock(&tracker.slots));
    let views = std::mem::take(&mut *lock(&tracker.views));
    let first_http_error = lock(&first_error).take();
    Ok(Outcome {
        connect_secs,
        send_secs,
        slots,
        views,
        http_errors: errors.load(Ordering::Relaxed),
        first_http_error,
        // Aborting the readers above closes the connections; count only
        // what failed before.
        connection_errors: connection_errors.load(Ordering::Relaxed),
        cpu,
        redis_cpu,
        rss,
        snapshot_mismatches,
    })
}

/// The figures of an outcome that every scenario built on the load reads.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Events with a 2xx answer.
    pub answered: u64,
    /// Events received at least once.
    pub received: u64,
    /// Answered, never received.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Received without a 2xx answer.
    pub unasked: u64,
    /// Sequence breaks over every connection.
    pub seq_breaks: u64,
    /// p50, p95, p99, max of answer → decoded, in ms.
    pub from_answer_ms: Vec<f64>,
    /// p50, p95, p99, max of request sent → decoded, in ms.
    pub from_send_ms: Vec<f64>,
    /// Answered events per second of sending.
    pub rate: f64,
}

impl Outcome {
    /// Counts and percentiles.
    pub fn summary(&self) -> Summary {
        let mut from_answer = Latencies::with_capacity(self.slots.len());
        let mut from_send = Latencies::with_capacity(self.slots.len());
        let mut s = Summary::default();
        for slot in &self.slots {
            s.received += u64::from(slot.received.is_some());
            s.duplicates += u64::from(slot.receipts.saturating_sub(1));
            match (slot.answered, slot.received) {
                (Some(answer), Some(receipt)) => {
                    s.answered += 1;
                    from_answer.record(receipt.saturating_duration_since(answer));
                }
                (Some(_), None) => {
                    s.answered += 1;
                    s.lost += 1;
                }
                (None, Some(_)) => s.unasked += 1,
                (None, None) => {}
            }
            if let (Some(sent), Some(receipt)) = (slot.sent, slot.received) {
                from_send.record(receipt.saturating_duration_since(sent));
            }
        }
        s.seq_breaks = self.views.iter().map(|v| v.seq_breaks).sum();
        let ps = [50.0, 95.0, 99.0, 100.0];
        s.from_answer_ms = from_answer.percentiles_ms(&ps).unwrap_or_default();
        s.from_send_ms = from_send.percentiles_ms(&ps).unwrap_or_default();
        s.rate = if self.send_secs > 0.0 { s.answered as f64 / self.send_secs } else { 0.0 };
        s
    }

    /// CPU µs per answered event of each process, and of Redis.
    pub fn cpu_per_event_us(&self, answered: u64) -> Vec<(String, f64)> {
        if answered == 0 {
            return Vec::new();
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / answered as f64;
        let mut out: Vec<(String, f64)> =
            self.cpu.iter().filter_map(|(name, cpu)| cpu.map(|c| ((*name).to_owned(), per(c)))).collect();
        if let Some(redis) = self.redis_cpu {
            out.push(("redis-server (main thread)".to_owned(), per(redis)));
        }
        out
    }
}
