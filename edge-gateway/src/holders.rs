//! Which connected users hold which symbols, on this gateway: the route of
//! a market mark to the hubs that value it. Sharded by symbol like the hub
//! registry, so one popular symbol's lock is not every symbol's.
//!
//! Hubs keep it current as their users' positions open and close; the
//! gateway follows a symbol's marks in the log while anyone here holds it
//! (the log counts follows, so each hub follows for itself).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use common::event::{Symbol, UserId};
use common::sync::lock;

/// Shards of the registry.
const SHARDS: usize = 64;

type Shard = Mutex<HashMap<Symbol, HashSet<UserId>>>;

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Holders {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Shard]>,
}

impl Holders {
    pub(crate) fn new() -> Self {
        Self { hasher: Default::default(), shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    fn shard(&self, symbol: &Symbol) -> MutexGuard<'_, HashMap<Symbol, HashSet<UserId>>> {
        lock(&self.shards[self.hasher.hash_one(symbol) as usize % SHARDS])
    }

    /// `user` holds `symbol` now.
    pub(crate) fn add(&self, symbol: &Symbol, user: &UserId) {
        self.shard(symbol).entry(symbol.clone()).or_default().insert(user.clone());
    }

    /// `user` no longer holds `symbol`.
    pub(crate) fn remove(&self, symbol: &Symbol, user: &UserId) {
        let mut shard = self.shard(symbol);
        if let Some(users) = shard.get_mut(symbol) {
            users.remove(user);
            if users.is_empty() {
                shard.remove(symbol);
            }
        }
    }

    /// Calls `each` with every user holding `symbol`, under the symbol's
    /// shard lock (so `each` must not call back into `Holders`; the hub
    /// registry's locks may be taken inside, never the other way round).
    pub(crate) fn for_each(&self, symbol: &Symbol, mut each: impl FnMut(&UserId)) {
        if let Some(users) = self.shard(symbol).get(symbol) {
            users.iter().for_each(&mut each);
        }
    }

    #[cfg(test)]
    fn of(&self, symbol: &Symbol) -> Vec<UserId> {
        let mut users = Vec::new();
        self.for_each(symbol, |user| users.push(user.clone()));
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_come_and_go() {
        let holders = Holders::new();
        let (aapl, msft) = (Symbol::new("AAPL").unwrap(), Symbol::new("MSFT").unwrap());
        let (u1, u2) = (UserId::new("u1").unwrap(), UserId::new("u2").unwrap());
        holders.add(&aapl, &u1);
        holders.add(&aapl, &u2);
        holders.add(&msft, &u1);
        let mut of_aapl = holders.of(&aapl);
        of_aapl.sort();
        assert_eq!(of_aapl, [u1.clone(), u2.clone()]);
        holders.remove(&aapl, &u1);
        holders.remove(&msft, &u1);
        assert_eq!((holders.of(&aapl), holders.of(&msft)), (vec![u2], vec![]));
        assert!(holders.shard(&msft).is_empty(), "a symbol nobody holds is forgotten");
    }
}
