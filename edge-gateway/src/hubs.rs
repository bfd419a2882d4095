//! Every hub of this gateway, by user, and the dispatcher that routes the
//! log's notices to them: a user's events to its hub, a symbol's market mark
//! to the hubs of its holders ([`Holders`]). The registry is sharded: joining, leaving and
//! routing a notice lock one shard of [`SHARDS`], never the whole map, so one
//! lock is not taken for every message at tens of thousands of connections.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use common::event::UserId;
use event_log::{Notice, SharedLog};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::holders::Holders;
use crate::hub::{Command, Hub};
use crate::queue;
use crate::stats::Stats;
use crate::throttle::ThrottleConfig;
use common::sync::lock;

/// Commands queued per hub before the dispatcher marks it overflowed (the
/// hub then repairs from the log).
const HUB_QUEUE: usize = 1_024;

/// Shards of the registry.
const SHARDS: usize = 64;

#[derive(Debug)]
struct Entry {
    /// Commands for the hub; a notice the dispatcher could not queue marks
    /// it overflowed, and the hub repairs from the log.
    tx: queue::Sender<Command>,
    refs: usize,
    since: std::time::Instant,
    task: JoinHandle<()>,
}

impl Entry {
    /// Queues a command without waiting; a full hub is marked overflowed
    /// instead (it then repairs), so one busy user never stalls the
    /// dispatcher.
    fn deliver(&self, command: Command) {
        self.tx.send_or_overflow(command);
    }
}

type Shard = Mutex<HashMap<UserId, Entry>>;

/// Every hub of this gateway, by user.
#[derive(Debug)]
pub(crate) struct Hubs {
    log: SharedLog,
    throttle: ThrottleConfig,
    stats: Arc<Stats>,
    holders: Arc<Holders>,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Shard]>,
}

/// A connection's membership in its user's hub; leaving is on drop.
#[derive(Debug)]
pub(crate) struct Membership {
    hubs: Arc<Hubs>,
    user: UserId,
    conn: u64,
    tx: queue::Sender<Command>,
}

impl Membership {
    /// Sends a command to the hub (waits if the hub is busy).
    pub(crate) async fn send(&self, command: Command) {
        // A closed hub means the gateway is shutting down; nothing to do.
        let _ = self.tx.send(command).await;
    }

    /// This connection's id.
    pub(crate) fn conn(&self) -> u64 {
        self.conn
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Command::Leave { conn: self.conn });
        self.hubs.release(&self.user);
    }
}

impl Hubs {
    pub(crate) fn new(log: SharedLog, throttle: ThrottleConfig, stats: Arc<Stats>) -> Arc<Self> {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Arc::new(Self { log, throttle, stats, holders: Arc::new(Holders::new()), hasher: Default::default(), shards })
    }

    fn shard(&self, user: &UserId) -> MutexGuard<'_, HashMap<UserId, Entry>> {
        let index = self.hasher.hash_one(user) as usize % SHARDS;
        lock(&self.shards[index])
    }

    /// Users with a hub: id, connections, and how long the hub has lived.
    pub(crate) fn connections(&self) -> Vec<(String, usize, std::time::Duration)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(lock(shard).iter().map(|(user, e)| (user.to_string(), e.refs, e.since.elapsed())));
        }
        all
    }

    /// Joins `user`'s hub, starting it if this is the user's first connection.
    pub(crate) fn join(self: &Arc<Self>, user: &UserId, conn: u64) -> Membership {
        let mut entries = self.shard(user);
        let entry = entries.entry(user.clone()).or_insert_with(|| {
            let (tx, mut rx) = queue::bounded(HUB_QUEUE);
            let mut hub =
                Hub::new(user.clone(), self.log.clone(), self.throttle, self.stats.clone(), self.holders.clone());
            // The block owns the hub and its queue, and `run` borrows them: as
            // arguments of an `async fn` they would be stored twice in the
            // task (rust-lang/rust#62958).
            let task = tokio::spawn(async move { hub.run(&mut rx).await });
            Entry { tx, refs: 0, since: std::time::Instant::now(), task }
        });
        entry.refs += 1;
        Membership { hubs: self.clone(), user: user.clone(), conn, tx: entry.tx.clone() }
    }

    fn release(&self, user: &UserId) {
        let mut entries = self.shard(user);
        if let Some(entry) = entries.get_mut(user) {
            entry.refs -= 1;
            if entry.refs == 0 {
                // Dropping the sender ends the hub task, which unfollows.
                entries.remove(user);
            }
        }
    }

    /// Routes the log's notices to the hubs, until the log closes.
    pub(crate) fn spawn_dispatcher(self: &Arc<Self>) -> JoinHandle<()> {
        let hubs = self.clone();
        let mut notices = self.log.notices();
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(Notice::Event { user, epoch, event }) => {
                        if let Some(entry) = hubs.shard(&user).get(&user) {
                            entry.deliver(Command::Notice { epoch, event });
                        }
                    }
                    Ok(Notice::Mark(mark)) => {
                        let mark = Arc::new(mark);
                        hubs.holders.for_each(&mark.symbol, |user| {
                            if let Some(entry) = hubs.shard(user).get(user) {
                                entry.deliver(Command::Mark(mark.clone()));
                            }
                        });
                    }
                    Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                        for shard in hubs.shards.iter() {
                            for entry in lock(shard).values() {
                                entry.deliver(Command::Resync);
                            }
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    /// Stops every hub (gateway shutdown).
    pub(crate) fn abort_all(&self) {
        for shard in self.shards.iter() {
            for (_, entry) in lock(shard).drain() {
                entry.task.abort();
            }
        }
    }
}
