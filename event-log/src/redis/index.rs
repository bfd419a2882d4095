//! The Redis [`IngestIndex`]: holders in one set per symbol
//! ([`keys::holders`]), the account directory in one hash
//! ([`keys::accounts`]), and snapshot entries of many users read with
//! pipelined `HGET`/`GET`, [`READ_CHUNK`] per round trip.

use std::collections::HashSet;

use async_trait::async_trait;
use fred::clients::Pipeline;
use fred::prelude::{
    ClientLike, Error as FredError, HashesInterface, KeysInterface, LuaInterface, SetsInterface, Value,
};
use fred::types::{ClusterHash, CustomCommand};

use super::{corrupt, unavailable, RedisLog};
use crate::error::LogError;
use crate::index::{check_account_id, Claim, IngestIndex, HOLDERS_PAGE, READ_CHUNK};
use crate::keys::{self, UserKeys};
use common::event::{Account, Position, Symbol, UserId};
#[async_trait]
impl IngestIndex for RedisLog {
    /// `SSCAN` pages of [`HOLDERS_PAGE`]: a page may repeat a member while
    /// the set grows, so members are deduplicated here.
    async fn holders(&self, symbol: &Symbol) -> Result<Vec<UserId>, LogError> {
        let key = keys::holders(symbol);
        let client = self.inner.client.with_options(&self.inner.options);
        let sscan = CustomCommand::new_static("SSCAN", ClusterHash::FirstKey, false);
        let mut holders = HashSet::new();
        let mut cursor = String::from("0");
        loop {
            let args: Vec<Value> =
                vec![key.as_str().into(), cursor.as_str().into(), "COUNT".into(), HOLDERS_PAGE.to_string().into()];
            let reply: Value = client.custom(sscan.clone(), args).await.map_err(unavailable)?;
            let mut parts = reply.into_array().into_iter();
            let (Some(next), Some(members)) = (parts.next(), parts.next()) else {
                return Err(corrupt("SSCAN reply"));
            };
            for member in members.into_array() {
                match member.into_string().map(UserId::new) {
                    Some(Ok(user)) => {
                        holders.insert(user);
                    }
                    _ => tracing::warn!(%symbol, "Unreadable holder ignored."),
                }
            }
            cursor = next.into_string().ok_or_else(|| corrupt("SSCAN cursor"))?;
            if cursor == "0" {
                return Ok(holders.into_iter().collect());
            }
        }
    }

    async fn set_holding(&self, user: &UserId, symbol: &Symbol, held: bool) -> Result<(), LogError> {
        let client = self.inner.client.with_options(&self.inner.options);
        let key = keys::holders(symbol);
        let changed: Result<i64, FredError> =
            if held { client.sadd(key, user.as_str()).await } else { client.srem(key, user.as_str()).await };
        changed.map(drop).map_err(unavailable)
    }

    async fn positions(&self, wanted: &[(UserId, Symbol)]) -> Result<Vec<Option<Position>>, LogError> {
        let mut positions = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(READ_CHUNK) {
            let pipeline: Pipeline<fred::clients::Client> = self.inner.client.pipeline();
            for (user, symbol) in chunk {
                let queued: Result<(), FredError> = pipeline.hget(UserKeys::new(user).positions, symbol.as_str()).await;
                queued.map_err(unavailable)?;
            }
            for answer in pipeline.try_all::<Value>().await {
                positions.push(decode_optional(answer.map_err(unavailable)?, "snapshot position")?);
            }
        }
        Ok(positions)
    }

    async fn accounts(&self, users: &[UserId]) -> Result<Vec<Option<Account>>, LogError> {
        let mut accounts = Vec::with_capacity(users.len());
        for chunk in users.chunks(READ_CHUNK) {
            let pipeline: Pipeline<fred::clients::Client> = self.inner.client.pipeline();
            for user in chunk {
                let queued: Result<(), FredError> = pipeline.get(UserKeys::new(user).account).await;
                queued.map_err(unavailable)?;
            }
            for answer in pipeline.try_all::<Value>().await {
                accounts.push(decode_optional(answer.map_err(unavailable)?, "snapshot account")?);
            }
        }
        Ok(accounts)
    }

    async fn account_owner(&self, account_id: &str) -> Result<Option<UserId>, LogError> {
        let client = self.inner.client.with_options(&self.inner.options);
        let owner: Option<String> = client.hget(keys::accounts(), account_id).await.map_err(unavailable)?;
        owner.map(|id| UserId::new(id).map_err(|_| corrupt("account owner"))).transpose()
    }

    async fn link_account(&self, account_id: &str, user: &UserId) -> Result<(), LogError> {
        check_account_id(account_id)?;
        let client = self.inner.client.with_options(&self.inner.options);
        let _: i64 = client.hset(keys::accounts(), (account_id, user.as_str())).await.map_err(unavailable)?;
        Ok(())
    }

    async fn claim_account(&self, account_id: &str, user: &UserId) -> Result<Claim, LogError> {
        check_account_id(account_id)?;
        let client = self.inner.client.with_options(&self.inner.options);
        let previous: Option<String> = client
            .eval(CLAIM_SCRIPT, vec![keys::accounts()], vec![account_id, user.as_str()])
            .await
            .map_err(unavailable)?;
        let previous = previous.map(|id| UserId::new(id).map_err(|_| corrupt("account owner"))).transpose()?;
        Ok(Claim::from_previous(previous, user))
    }

    async fn unlink_account(&self, account_id: &str, user: &UserId) -> Result<bool, LogError> {
        check_account_id(account_id)?;
        let client = self.inner.client.with_options(&self.inner.options);
        let removed: i64 = client
            .eval(UNLINK_SCRIPT, vec![keys::accounts()], vec![account_id, user.as_str()])
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }
}

/// The owner before the claim (nil: it was free and is now linked), read
/// and written in one step.
const CLAIM_SCRIPT: &str = r#"
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner then return owner end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
"#;

/// `HDEL` only while the account is still the user's: compare and delete in
/// one step, so an unlink never removes someone else's link.
const UNLINK_SCRIPT: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"#;

/// A JSON value that may be absent (`nil`).
fn decode_optional<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<Option<T>, LogError> {
    if value.is_null() {
        return Ok(None);
    }
    let bytes = value.into_bytes().ok_or_else(|| corrupt(what))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| LogError::Corrupt(format!("{what}: {e}")))
}
