//! The in-memory [`IngestIndex`]: holders and the account directory kept in
//! the log's one locked state, snapshot reads straight from the user logs.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::MemoryLog;
use crate::error::LogError;
use crate::index::{check_account_id, Claim, IngestIndex};
use common::event::{Account, Position, Symbol, UserId};

/// The index part of the memory log's state.
#[derive(Debug, Default)]
pub(super) struct IndexState {
    /// Symbol → the users holding it.
    holders: HashMap<Symbol, HashSet<UserId>>,
    /// Broker account id → user.
    accounts: HashMap<String, UserId>,
}

#[async_trait]
impl IngestIndex for MemoryLog {
    async fn holders(&self, symbol: &Symbol) -> Result<Vec<UserId>, LogError> {
        let state = self.lock();
        Ok(state.index.holders.get(symbol).map(|users| users.iter().cloned().collect()).unwrap_or_default())
    }

    async fn set_holding(&self, user: &UserId, symbol: &Symbol, held: bool) -> Result<(), LogError> {
        let mut state = self.lock();
        let holders = &mut state.index.holders;
        if held {
            holders.entry(symbol.clone()).or_default().insert(user.clone());
        } else if let Some(users) = holders.get_mut(symbol) {
            users.remove(user);
            if users.is_empty() {
                holders.remove(symbol);
            }
        }
        Ok(())
    }

    async fn positions(&self, wanted: &[(UserId, Symbol)]) -> Result<Vec<Option<Position>>, LogError> {
        let state = self.lock();
        Ok(wanted
            .iter()
            .map(|(user, symbol)| state.users.get(user).and_then(|log| log.positions.get(symbol.as_str()).cloned()))
            .collect())
    }

    async fn accounts(&self, users: &[UserId]) -> Result<Vec<Option<Account>>, LogError> {
        let state = self.lock();
        Ok(users.iter().map(|user| state.users.get(user).and_then(|log| log.account.clone())).collect())
    }

    async fn account_owner(&self, account_id: &str) -> Result<Option<UserId>, LogError> {
        Ok(self.lock().index.accounts.get(account_id).cloned())
    }

    async fn link_account(&self, account_id: &str, user: &UserId) -> Result<(), LogError> {
        check_account_id(account_id)?;
        self.lock().index.accounts.insert(account_id.to_owned(), user.clone());
        Ok(())
    }

    async fn claim_account(&self, account_id: &str, user: &UserId) -> Result<Claim, LogError> {
        check_account_id(account_id)?;
        let mut state = self.lock();
        let previous = state.index.accounts.get(account_id).cloned();
        if previous.is_none() {
            state.index.accounts.insert(account_id.to_owned(), user.clone());
        }
        Ok(Claim::from_previous(previous, user))
    }

    async fn unlink_account(&self, account_id: &str, user: &UserId) -> Result<bool, LogError> {
        check_account_id(account_id)?;
        let mut state = self.lock();
        let owned = state.index.accounts.get(account_id) == Some(user);
        if owned {
            state.index.accounts.remove(account_id);
        }
        Ok(owned)
    }
}
