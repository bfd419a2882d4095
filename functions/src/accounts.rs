//! Account links: the app's broker-linking flow tells us which user a broker
//! account belongs to (`POST /internal/account-links`, signed with the
//! ingest secret). The broker webhook and position sync then map that
//! account's updates to the user, and only to them.
//!
//! A link never moves silently: linking an account that belongs to another
//! user is refused (409 `account_linked`); the flow unlinks it first. An
//! unlink removes the link only if it is the named user's.

use common::event::UserId;
use event_log::index::Claim;
use serde::{Deserialize, Serialize};

use crate::deps::Deps;
use crate::error::Error;

/// One request of the linking flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkRequest {
    /// The broker's account id (1 to 128 printable ASCII characters).
    pub account_id: String,
    /// The user it belongs to.
    pub user_id: UserId,
    /// `link` (the default) or `unlink`.
    #[serde(default)]
    pub action: LinkAction,
}

/// What to do with the link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Link the account to the user.
    #[default]
    Link,
    /// Remove the user's link of the account.
    Unlink,
}

/// The answer: the request's ids and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkOutcome {
    /// The account.
    pub account_id: String,
    /// The user.
    pub user_id: UserId,
    /// What happened.
    pub result: LinkResult,
}

/// What a link request changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkResult {
    /// The account is now linked to the user.
    Linked,
    /// It was linked to the user already: nothing changed.
    Unchanged,
    /// The user's link was removed.
    Unlinked,
    /// The account was not linked to the user: nothing changed.
    NotLinked,
}

/// The account id rule of every route that takes one.
pub(crate) fn check_account_id(field: &str, account_id: &str) -> Result<broker::AccountId, Error> {
    broker::AccountId::new(account_id).ok_or_else(|| Error::field(field, "must be 1 to 128 printable ASCII characters"))
}

/// The rules a link request meets beyond its shape (the account id; the
/// user id is checked when decoded); a refusal names the field.
pub fn check(request: &LinkRequest) -> Result<broker::AccountId, Error> {
    check_account_id("accountId", &request.account_id)
}

/// Handles one link request.
pub async fn handle(request: LinkRequest, deps: &Deps) -> Result<LinkOutcome, Error> {
    check(&request)?;
    let result = match request.action {
        LinkAction::Link => match deps.index.claim_account(&request.account_id, &request.user_id).await? {
            Claim::Linked => LinkResult::Linked,
            Claim::Unchanged => LinkResult::Unchanged,
            Claim::Taken(owner) => {
                tracing::warn!(
                    account = %request.account_id,
                    user = %request.user_id,
                    %owner,
                    "Account link refused: the account belongs to another user."
                );
                return Err(Error::AccountLinked);
            }
        },
        LinkAction::Unlink => match deps.index.unlink_account(&request.account_id, &request.user_id).await? {
            true => LinkResult::Unlinked,
            false => LinkResult::NotLinked,
        },
    };
    tracing::info!(account = %request.account_id, user = %request.user_id, ?result, "Account link request.");
    Ok(LinkOutcome { account_id: request.account_id, user_id: request.user_id, result })
}
