//! The keys and arguments `RedisLog::publish` passes to `publish.lua`,
//! rebuilt here (that code is private to `common`) so that `redis-benchmark`
//! can call the same script the same way. The scenario's preflight check
//! proves the two store byte-identical events before anything is measured.

use common::event::Event;
use common::keys::UserKeys;
use common::log::{LogSettings, SNAPSHOT_TRADES};

use crate::Error;

/// The script under test, the very file `RedisLog` embeds.
pub(super) const PUBLISH_LUA: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../common/src/log/redis/publish.lua"));

/// Where the script lives, for the reproduce commands.
pub(super) const PUBLISH_LUA_PATH: &str = "common/src/log/redis/publish.lua";

/// An epoch id for a user's first event (16 hex digits, like the log's own).
pub(super) const EPOCH: &str = "00000000be4c4000";

/// `KEYS` (meta, events, positions, orders, account, trades, dedupe) and
/// `ARGV` (head, rest, data, effect, field, remove, maxlen, ttl, epoch,
/// notify channel, trades kept) for publishing `event` with `dedupe_id`.
pub(super) fn publish_call(
    event: &Event,
    dedupe_id: &str,
    settings: &LogSettings,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut event = event.clone();
    event.set_seq(None);
    let shape = |what: &str| Error::Mismatch(format!("event does not serialize as the log expects: {what}"));
    let full = serde_json::to_string(&event).map_err(|e| shape(&e.to_string()))?;
    let (data, effect, field, remove) = match &event {
        Event::PositionUpdate(e) => {
            (to_json(&e.data)?, "p", e.data.symbol.to_string(), if e.data.is_closed() { "1" } else { "0" })
        }
        Event::AccountUpdate(e) => (to_json(&e.data)?, "a", String::new(), "0"),
        Event::OrderUpdate(_) | Event::TradeExecuted(_) => return Err(shape("only position and account updates")),
    };
    // serde writes `{"type":"…",` first and `data` last.
    let head_len = full.find(',').map(|i| i + 1).ok_or_else(|| shape("no fields"))?;
    let body_end =
        full.len().checked_sub(data.len() + 1).filter(|end| *end >= head_len).ok_or_else(|| shape("short"))?;
    if !full[body_end..].starts_with(&data) {
        return Err(shape("data is not last"));
    }
    let keys = UserKeys::new(event.user_id());
    let argv = vec![
        full[..head_len].to_owned(),
        full[head_len..body_end].to_owned(),
        data,
        effect.to_owned(),
        field,
        remove.to_owned(),
        settings.stream_maxlen.to_string(),
        settings.dedupe_ttl.as_secs().max(1).to_string(),
        EPOCH.to_owned(),
        keys.notify.clone(),
        SNAPSHOT_TRADES.to_string(),
    ];
    let key_list = vec![
        keys.meta.clone(),
        keys.events.clone(),
        keys.positions.clone(),
        keys.orders.clone(),
        keys.account.clone(),
        keys.trades.clone(),
        keys.dedupe(dedupe_id),
    ];
    Ok((key_list, argv))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Mismatch(format!("event data does not serialize: {e}")))
}
