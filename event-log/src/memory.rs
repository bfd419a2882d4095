//! The in-process event log: the Redis backend's semantics without Redis,
//! for the embedded single-node mode and fast tests.
//!
//! One `std::sync::Mutex` guards all state. Every operation is a few map
//! updates and never awaits while holding it, which keeps the lock short and
//! the code obviously atomic (mini-redis `db.rs` makes the same choice).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use common::event::{Account, Event, Mark, Order, Position, Symbol, Trade, UserId};
use common::protocol::SNAPSHOT_TRADES;

use crate::error::{LogError, LogResult};
use crate::leases::{Leases, MemoryLeases};
use crate::log::{
    new_epoch, Encoded, EventLog, LogSettings, NewEvent, Notice, Published, ReadAfter, Snapshot, StoredEvent,
    NOTICE_CAPACITY,
};
use common::sync::lock;

mod index;

/// The in-memory event log.
#[derive(Debug)]
pub struct MemoryLog {
    state: Mutex<State>,
    notices: broadcast::Sender<Notice>,
    settings: LogSettings,
    leases: Arc<MemoryLeases>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, UserLog>,
    /// Followed users, with how many follows each.
    followed: HashMap<UserId, usize>,
    /// The ingest index (see [`index`]).
    index: index::IndexState,
    /// The latest mark of each symbol.
    marks: HashMap<Symbol, Mark>,
    /// Followed symbols, with how many follows each.
    followed_marks: HashMap<Symbol, usize>,
}

/// One more follow of `key`.
fn count_up<K: std::hash::Hash + Eq + Clone>(follows: &mut HashMap<K, usize>, key: &K) {
    *follows.entry(key.clone()).or_default() += 1;
}

/// One follow fewer of `key`; the last one removes it.
fn count_down<K: std::hash::Hash + Eq>(follows: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = follows.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            follows.remove(key);
        }
    }
}

#[derive(Debug)]
struct UserLog {
    epoch: String,
    seq: u64,
    events: VecDeque<StoredEvent>,
    positions: BTreeMap<String, Position>,
    orders: BTreeMap<String, Order>,
    account: Option<Account>,
    trades: VecDeque<Trade>,
    /// dedupe id → (seq, expiry); `expiries` lists the same ids oldest first
    /// (one TTL for all, so insertion order is expiry order).
    dedupe: HashMap<String, u64>,
    expiries: VecDeque<(Instant, String)>,
}

impl UserLog {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            seq: 0,
            events: VecDeque::new(),
            positions: BTreeMap::new(),
            orders: BTreeMap::new(),
            account: None,
            trades: VecDeque::new(),
            dedupe: HashMap::new(),
            expiries: VecDeque::new(),
        }
    }

    fn expire_dedupe(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiries.front() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.expiries.pop_front() {
                self.dedupe.remove(&id);
            }
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::PositionUpdate(e) => {
                let symbol = e.data.symbol.to_string();
                if e.data.is_closed() {
                    self.positions.remove(&symbol);
                } else {
                    self.positions.insert(symbol, e.data.clone());
                }
            }
            Event::OrderUpdate(e) => {
                if e.data.status.is_closed() {
                    self.orders.remove(&e.data.order_id);
                } else {
                    self.orders.insert(e.data.order_id.clone(), e.data.clone());
                }
            }
            Event::AccountUpdate(e) => self.account = Some(e.data.clone()),
            Event::TradeExecuted(e) => {
                self.trades.push_front(e.data.clone());
                self.trades.truncate(SNAPSHOT_TRADES);
            }
        }
    }
}

impl MemoryLog {
    /// An empty log.
    pub fn new(settings: LogSettings) -> Self {
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        Self { state: Mutex::new(State::default()), notices, settings, leases: Arc::new(MemoryLeases::new()) }
    }

    /// Forgets everything about `user`, as if the backend lost its data: the
    /// next publish starts a new epoch. For fault-injection tests.
    pub fn lose_history(&self, user: &UserId) {
        self.lock().users.remove(user);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied publish
        // (every mutation is after all checks), so a poisoned lock is usable.
        lock(&self.state)
    }

    fn publish_locked(&self, state: &mut State, new: &NewEvent, now: Instant) -> Result<Published, LogError> {
        new.validate()?;
        let encoded = Encoded::new(&new.event)?;
        let user = new.event.user_id();
        let log = state.users.entry(user.clone()).or_insert_with(UserLog::new);
        log.expire_dedupe(now);
        if let Some(&seq) = log.dedupe.get(&new.dedupe_id) {
            return Ok(Published::Duplicate { seq, epoch: log.epoch.clone() });
        }
        log.seq += 1;
        let seq = log.seq;
        let stored = StoredEvent { seq, json: Bytes::from(encoded.with_seq(seq)) };
        log.events.push_back(stored.clone());
        let maxlen = usize::try_from(self.settings.stream_maxlen).unwrap_or(usize::MAX);
        while log.events.len() > maxlen {
            log.events.pop_front();
        }
        log.apply(&new.event);
        log.dedupe.insert(new.dedupe_id.clone(), seq);
        log.expiries.push_back((now + self.settings.dedupe_ttl, new.dedupe_id.clone()));
        let epoch = log.epoch.clone();
        if state.followed.contains_key(user) {
            // No receiver is fine: nobody follows right now.
            let _ = self.notices.send(Notice::Event { user: user.clone(), epoch: epoch.clone(), event: stored });
        }
        Ok(Published::New { seq, epoch })
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn publish(&self, event: &NewEvent) -> Result<Published, LogError> {
        let mut state = self.lock();
        self.publish_locked(&mut state, event, Instant::now())
    }

    async fn publish_many(&self, events: &[NewEvent]) -> Vec<Result<Published, LogError>> {
        let mut state = self.lock();
        let now = Instant::now();
        events.iter().map(|event| self.publish_locked(&mut state, event, now)).collect()
    }

    async fn read_after(&self, user: &UserId, epoch: Option<&str>, after: u64, limit: usize) -> LogResult<ReadAfter> {
        let state = self.lock();
        let Some(log) = state.users.get(user) else {
            return Ok(if epoch.is_some() || after > 0 {
                ReadAfter::EpochChanged { epoch: None, head: 0 }
            } else {
                ReadAfter::Events { epoch: None, head: 0, events: Vec::new() }
            });
        };
        let current = Some(log.epoch.clone());
        if epoch.is_some_and(|e| e != log.epoch) || after > log.seq {
            return Ok(ReadAfter::EpochChanged { epoch: current, head: log.seq });
        }
        if after == log.seq {
            return Ok(ReadAfter::Events { epoch: current, head: log.seq, events: Vec::new() });
        }
        match log.events.front() {
            Some(first) if first.seq <= after + 1 => {
                let skip = usize::try_from(after + 1 - first.seq).unwrap_or(usize::MAX);
                let events = log.events.iter().skip(skip).take(limit).cloned().collect();
                Ok(ReadAfter::Events { epoch: current, head: log.seq, events })
            }
            _ => Ok(ReadAfter::TooOld { epoch: current, head: log.seq }),
        }
    }

    async fn snapshot(&self, user: &UserId) -> Result<Snapshot, LogError> {
        let mut state = self.lock();
        // A user with no history gets its epoch now, as in Redis.
        let log = state.users.entry(user.clone()).or_insert_with(UserLog::new);
        Ok(Snapshot {
            epoch: Some(log.epoch.clone()),
            seq: log.seq,
            positions: log.positions.values().cloned().collect(),
            orders: log.orders.values().cloned().collect(),
            account: log.account.clone(),
            trades: log.trades.iter().cloned().collect(),
        })
    }

    async fn follow(&self, user: &UserId) -> Result<(), LogError> {
        count_up(&mut self.lock().followed, user);
        Ok(())
    }

    async fn unfollow(&self, user: &UserId) -> Result<(), LogError> {
        count_down(&mut self.lock().followed, user);
        Ok(())
    }

    async fn put_marks(&self, marks: &[Mark]) -> Vec<Result<bool, LogError>> {
        let mut state = self.lock();
        let mut stored = Vec::with_capacity(marks.len());
        for mark in marks {
            let newer = state.marks.get(&mark.symbol).is_none_or(|old| mark.supersedes(old));
            if newer {
                state.marks.insert(mark.symbol.clone(), mark.clone());
                if state.followed_marks.contains_key(&mark.symbol) {
                    let _ = self.notices.send(Notice::Mark(mark.clone()));
                }
            }
            stored.push(Ok(newer));
        }
        stored
    }

    async fn marks(&self, symbols: &[Symbol]) -> LogResult<Vec<Option<Mark>>> {
        let state = self.lock();
        Ok(symbols.iter().map(|symbol| state.marks.get(symbol).cloned()).collect())
    }

    async fn follow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        count_up(&mut self.lock().followed_marks, symbol);
        Ok(())
    }

    async fn unfollow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        count_down(&mut self.lock().followed_marks, symbol);
        Ok(())
    }

    fn leases(&self) -> Arc<dyn Leases> {
        self.leases.clone()
    }

    fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    async fn ping(&self) -> Result<(), LogError> {
        Ok(())
    }
}
