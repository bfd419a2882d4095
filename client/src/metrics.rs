//! Counters of what the client did, kept in relaxed atomics so the receive
//! path pays one uncontended add per counter; read as a [`Metrics`] copy.

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Attempts to open the socket (the first one included).
    pub connect_attempts: u64,
    /// Sessions that became live after an earlier one had (successful
    /// reconnects).
    pub reconnects: u64,
    /// Subscribes sent with `since` (resume instead of a fresh snapshot).
    pub resumes: u64,
    /// `snapshot` messages received.
    pub snapshots: u64,
    /// `batch` messages received.
    pub batches: u64,
    /// Single-event messages received.
    pub events: u64,
    /// Text messages received (every type).
    pub messages: u64,
    /// Bytes of text messages received.
    pub bytes_received: u64,
    /// Messages that did not decode (logged and skipped).
    pub decode_errors: u64,
    /// App-level pings sent.
    pub pings: u64,
    /// Pongs received.
    pub pongs: u64,
    /// Links given up as dead (silence past the pong timeout).
    pub dead_links: u64,
    /// Successful REST polls.
    pub polls: u64,
    /// Failed REST requests (polls, reconciles, health checks).
    pub rest_failures: u64,
    /// Reconciles against the REST snapshot while live.
    pub reconciles: u64,
    /// Positions, orders and account values that differed from REST at the
    /// same seq (or across an epoch change), summed over reconciles and polls.
    pub reconcile_differences: u64,
}

/// The live counters behind [`Metrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connect_attempts: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) pings: AtomicU64,
    pub(crate) pongs: AtomicU64,
    pub(crate) dead_links: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) rest_failures: AtomicU64,
    pub(crate) reconciles: AtomicU64,
    pub(crate) reconcile_differences: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn read(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            connect_attempts: get(&self.connect_attempts),
            reconnects: get(&self.reconnects),
            resumes: get(&self.resumes),
            snapshots: get(&self.snapshots),
            batches: get(&self.batches),
            events: get(&self.events),
            messages: get(&self.messages),
            bytes_received: get(&self.bytes_received),
            decode_errors: get(&self.decode_errors),
            pings: get(&self.pings),
            pongs: get(&self.pongs),
            dead_links: get(&self.dead_links),
            polls: get(&self.polls),
            rest_failures: get(&self.rest_failures),
            reconciles: get(&self.reconciles),
            reconcile_differences: get(&self.reconcile_differences),
        }
    }
}
