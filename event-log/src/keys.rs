//! Every Redis key and channel name of the system, in one place (BRIEF §2).
//!
//! All keys of one user share the hash tag `{u:<userId>}`, so one Lua script
//! can touch them all in Redis Cluster. `UserId` admits no `{` or `}`, so a
//! user id cannot change the tag.

use common::event::{Symbol, UserId};

/// Prefix of every key this system writes, so it can share a Redis.
pub const PREFIX: &str = "ps";

/// The keys of one user's event log and snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    /// Hash: `seq` (last sequence number) and `epoch` (id of this history).
    pub meta: String,
    /// Stream of events, entry id `<seq>-0`, trimmed `MAXLEN ~`.
    pub events: String,
    /// Hash: symbol → position JSON (open positions only).
    pub positions: String,
    /// Hash: order id → order JSON (open orders only).
    pub orders: String,
    /// String: account JSON.
    pub account: String,
    /// List: most recent trades first, capped.
    pub trades: String,
    /// Sharded pub/sub channel carrying each new event (the gateway's fast path).
    pub notify: String,
    /// Sorted set of connection leases: member = connection id, score = expiry.
    pub conns: String,
    /// Prefix of the per-event idempotency keys; append the dedupe id.
    pub dedupe_prefix: String,
}

impl UserKeys {
    /// The keys of `user`.
    pub fn new(user: &UserId) -> Self {
        let base = format!("{PREFIX}:{{u:{user}}}");
        Self {
            meta: format!("{base}:meta"),
            events: format!("{base}:events"),
            positions: format!("{base}:positions"),
            orders: format!("{base}:orders"),
            account: format!("{base}:account"),
            trades: format!("{base}:trades"),
            notify: format!("{base}:notify"),
            conns: format!("{base}:conns"),
            dedupe_prefix: format!("{base}:dedupe:"),
        }
    }

    /// The idempotency key of one event.
    pub fn dedupe(&self, dedupe_id: &str) -> String {
        format!("{}{dedupe_id}", self.dedupe_prefix)
    }
}

/// Hash: broker account id → user id. Written when a user links a broker
/// account; the broker webhook reads it to learn whose events a signed
/// trade update carries. One small hash, in one slot of a cluster.
pub fn accounts() -> String {
    format!("{PREFIX}:accounts")
}

/// Set of the users holding an open position in `symbol`, so a price tick
/// reaches every holder. Its hash tag `{s:<symbol>}` is a symbol's, not a
/// user's: the set lives in another cluster slot than the users' keys, so it
/// is maintained beside the publish script (after it, idempotently), never
/// inside it. `Symbol` admits no `{` or `}`.
pub fn holders(symbol: &Symbol) -> String {
    format!("{PREFIX}:holders:{{s:{symbol}}}")
}

/// Hash of a symbol's latest market mark: `ms` (its timestamp, Unix
/// milliseconds) and `json`. Its hash tag `{m:<symbol>}` spreads symbols
/// over the cluster's slots; one key per symbol, whatever its holders.
pub fn mark(symbol: &Symbol) -> String {
    format!("{PREFIX}:mark:{{m:{symbol}}}")
}

/// Sharded pub/sub channel carrying each new mark of `symbol` (same slot
/// as [`mark`]).
pub fn mark_channel(symbol: &Symbol) -> String {
    format!("{PREFIX}:mark:{{m:{symbol}}}:notify")
}

/// Whether `channel` is a mark channel.
pub fn is_mark_channel(channel: &str) -> bool {
    channel
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix(":mark:{m:"))
        .is_some_and(|rest| rest.ends_with("}:notify"))
}

/// The user a notify channel belongs to, or `None` for a foreign channel.
pub fn user_of_notify_channel(channel: &str) -> Option<UserId> {
    let rest = channel.strip_prefix(PREFIX)?.strip_prefix(":{u:")?;
    let user = rest.strip_suffix("}:notify")?;
    UserId::new(user).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let user = UserId::new("user-abc-123").unwrap();
        let keys = UserKeys::new(&user);
        for key in [&keys.meta, &keys.events, &keys.positions, &keys.orders, &keys.account, &keys.notify] {
            assert!(key.starts_with("ps:{u:user-abc-123}:"), "{key}");
        }
        assert_eq!(keys.dedupe("exec-1"), "ps:{u:user-abc-123}:dedupe:exec-1");
    }

    #[test]
    fn index_keys_have_their_own_hash_tags() {
        let symbol = Symbol::new("BRK.B").unwrap();
        assert_eq!(holders(&symbol), "ps:holders:{s:BRK.B}");
        assert_eq!(accounts(), "ps:accounts");
        assert_eq!(mark(&symbol), "ps:mark:{m:BRK.B}");
        assert_eq!(mark_channel(&symbol), "ps:mark:{m:BRK.B}:notify");
        assert!(is_mark_channel(&mark_channel(&symbol)));
        assert!(!is_mark_channel(&UserKeys::new(&UserId::new("u1").unwrap()).notify));
    }

    #[test]
    fn notify_channel_names_its_user() {
        let user = UserId::new("u1").unwrap();
        assert_eq!(user_of_notify_channel(&UserKeys::new(&user).notify), Some(user));
        assert_eq!(user_of_notify_channel("ps:{u:u1}:events"), None);
        assert_eq!(user_of_notify_channel("other"), None);
    }
}
