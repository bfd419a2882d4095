//! What the ingest functions keep and read beside the event log: which users
//! hold a symbol (so one price tick reaches every holder), which user a broker
//! account belongs to, and many users' snapshot entries read in a few
//! pipelined round trips instead of one per user.
//!
//! Both backends implement [`IngestIndex`] and pass the same conformance
//! cases as for [`crate::EventLog`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::LogError;
use common::event::{Account, Position, Symbol, UserId};

/// Longest accepted broker account id, in bytes.
pub const MAX_ACCOUNT_ID_LEN: usize = 128;

/// Reads sent in one pipeline by [`IngestIndex::positions`] and
/// [`IngestIndex::accounts`]: few round trips, bounded reply size.
pub const READ_CHUNK: usize = 5_000;

/// Members asked for per `SSCAN` page by [`IngestIndex::holders`]: one or two
/// round trips for ten thousand holders, while no single call blocks Redis
/// for long.
pub const HOLDERS_PAGE: usize = 10_000;

/// The holders index, the account directory, and batched snapshot reads.
#[async_trait]
pub trait IngestIndex: Send + Sync + std::fmt::Debug + 'static {
    /// The users holding `symbol`, each once, in no particular order.
    async fn holders(&self, symbol: &Symbol) -> Result<Vec<UserId>, LogError>;

    /// Records that `user` holds (`true`) or no longer holds `symbol`.
    /// Idempotent, so a retried delivery can simply do it again.
    async fn set_holding(&self, user: &UserId, symbol: &Symbol, held: bool) -> Result<(), LogError>;

    /// The snapshot position of each `(user, symbol)`, in order: `None` where
    /// the user has no open position in it.
    async fn positions(&self, wanted: &[(UserId, Symbol)]) -> Result<Vec<Option<Position>>, LogError>;

    /// The snapshot account of each user, in order: `None` where the user has
    /// none yet.
    async fn accounts(&self, users: &[UserId]) -> Result<Vec<Option<Account>>, LogError>;

    /// The user a broker account belongs to, if it is linked.
    async fn account_owner(&self, account_id: &str) -> Result<Option<UserId>, LogError>;

    /// Links a broker account to a user (replacing an earlier link). Dev
    /// mode and tests call this; the app's linking flow goes through
    /// [`Self::claim_account`], which never moves an account silently.
    async fn link_account(&self, account_id: &str, user: &UserId) -> Result<(), LogError>;

    /// Links a broker account to `user` unless it is linked already, in one
    /// atomic step: [`Claim::Linked`], [`Claim::Unchanged`] (already
    /// `user`'s), or [`Claim::Taken`] with the owner, nothing changed.
    async fn claim_account(&self, account_id: &str, user: &UserId) -> Result<Claim, LogError>;

    /// Removes the link of a broker account if, and only if, it belongs to
    /// `user`, in one atomic step; `true` when a link was removed.
    async fn unlink_account(&self, account_id: &str, user: &UserId) -> Result<bool, LogError>;
}

/// What [`IngestIndex::claim_account`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The account was free and is now the user's.
    Linked,
    /// The account was the user's already.
    Unchanged,
    /// The account belongs to this other user; nothing changed.
    Taken(UserId),
}

impl Claim {
    /// The claim given the owner before an insert-if-absent: `None` means
    /// it was inserted.
    pub(crate) fn from_previous(previous: Option<UserId>, user: &UserId) -> Self {
        match previous {
            None => Claim::Linked,
            Some(owner) if &owner == user => Claim::Unchanged,
            Some(owner) => Claim::Taken(owner),
        }
    }
}

/// A shared, type-erased index.
pub type SharedIndex = Arc<dyn IngestIndex>;

/// Refuses account ids that are empty or too long.
pub(crate) fn check_account_id(account_id: &str) -> Result<(), LogError> {
    if account_id.is_empty() || account_id.len() > MAX_ACCOUNT_ID_LEN {
        return Err(LogError::InvalidEvent("broker account id must be 1 to 128 bytes"));
    }
    Ok(())
}
