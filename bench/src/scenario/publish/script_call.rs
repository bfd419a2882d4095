//! The keys and arguments `RedisLog::publish` passes to `publish.lua`, taken
//! from `common` so that `redis-benchmark` calls the same script the same
//! way. The scenario's preflight check proves the two store byte-identical
//! events before anything is measured.

use common::event::Event;
use event_log::redis::publish_script_call;
use event_log::{LogSettings, NewEvent};

use crate::error::Error;

/// The script under test, the very one `RedisLog` runs.
pub(super) const PUBLISH_LUA: &str = event_log::redis::PUBLISH_SCRIPT;

/// Where the script lives, for the reproduce commands.
pub(super) const PUBLISH_LUA_PATH: &str = "event-log/src/redis/publish.lua";

/// An epoch id for a user's first event (16 hex digits, like the log's own).
pub(super) const EPOCH: &str = "00000000be4c4000";

/// `KEYS` and `ARGV` for publishing `event` with `dedupe_id`: exactly what
/// `RedisLog::publish` sends (`event_log::redis::publish_script_call`).
pub(super) fn publish_call(
    event: &Event,
    dedupe_id: &str,
    settings: &LogSettings,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let new = NewEvent::new(event.clone(), dedupe_id);
    publish_script_call(&new, settings, EPOCH)
        .map_err(|e| Error::Mismatch(format!("event does not serialize as the log expects: {e}")))
}
