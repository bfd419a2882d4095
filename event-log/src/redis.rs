//! The Redis event log (`fred`). Each publish is one server-side Lua script
//! (`redis/publish.lua`), called by SHA and reloaded when the server lost its
//! script cache. Notifications arrive on one sharded pub/sub connection per
//! process, subscribed per followed user, and are re-subscribed after every
//! reconnect before followers are told to resync.
//!
//! No command here blocks: the design needs no `XREAD BLOCK`, which would
//! stall every other command on the shared connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::clients::Pipeline;
use fred::prelude::{
    Builder, ClientLike, ClusterInterface, Config, Error as FredError, ErrorKind, EventInterface, HashesInterface,
    LuaInterface, Options, PubsubInterface, ReconnectPolicy, Value,
};
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand, MultipleKeys, MultipleValues};
use tokio::sync::{broadcast, OnceCell};
use tokio::task::JoinHandle;

use common::protocol::SNAPSHOT_TRADES;

use self::call::{is_noscript, loading_once, unavailable};
use crate::error::{LogError, LogResult};
use crate::keys::{self, UserKeys};
use crate::leases::{Leases, RedisLeases};
use crate::log::{
    new_epoch, parse_notify_payload, Encoded, EventLog, LogSettings, NewEvent, Notice, Published, ReadAfter, Snapshot,
    SnapshotEffect, StoredEvent, NOTICE_CAPACITY,
};
use common::event::{Mark, Symbol, UserId};
use common::sync::lock;

pub(crate) mod call;
mod index;
#[cfg(test)]
mod tests;

const PUBLISH_LUA: &str = include_str!("redis/publish.lua");
const READ_AFTER_LUA: &str = include_str!("redis/read_after.lua");
const SNAPSHOT_LUA: &str = include_str!("redis/snapshot.lua");
const MARK_LUA: &str = include_str!("redis/mark.lua");

/// The Lua script every publish runs, for tools that call it directly (the
/// bench's `redis-benchmark` baseline).
pub const PUBLISH_SCRIPT: &str = PUBLISH_LUA;

/// When a publish counts as done: on the master alone (the default), or
/// once `replicas` replicas have it (`WAIT replicas timeout`).
///
/// With replicas asked for, an event is acknowledged only after `WAIT` saw
/// them take it, and its notice is sent only then: an event a failover could
/// still lose is neither acknowledged (the sender retries it, same dedupe
/// id) nor shown to any follower, so no follower ever sees a seq that the
/// promoted replica then gives to another event. A wait that times out
/// answers [`LogError::Unavailable`]; the retry finds the event stored
/// (a duplicate), waits again, and sends its notice then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Replicas that must have an event before it is acknowledged; 0: none.
    pub replicas: u32,
    /// How long one publish waits for them.
    pub timeout: Duration,
}

impl Durability {
    /// Acknowledged once the master has it.
    pub const NONE: Durability = Durability { replicas: 0, timeout: Duration::from_millis(0) };

    /// Whether publishes wait for replicas.
    pub fn is_on(&self) -> bool {
        self.replicas > 0
    }
}

impl Default for Durability {
    fn default() -> Self {
        Self::NONE
    }
}

/// The `KEYS` (meta, events, positions, orders, account, trades, dedupe)
/// and `ARGV` (head, rest, data, effect, field, remove, maxlen, ttl, epoch
/// for a new history, notify channel, trades kept, defer the notice) that
/// publishing `new` passes to [`PUBLISH_SCRIPT`] (notices not deferred).
pub fn publish_script_call(
    new: &NewEvent,
    settings: &LogSettings,
    epoch: &str,
) -> Result<(Vec<String>, Vec<String>), LogError> {
    let call =
        PublishArgs::new(&Script::from_lua(PUBLISH_LUA), settings, Durability::NONE).call(new, epoch.to_owned())?;
    let mut strings = call.into_iter().skip(2).map(|v| v.into_string().ok_or_else(|| corrupt("publish argument")));
    let keys = strings.by_ref().take(PUBLISH_KEYS).collect::<Result<_, _>>()?;
    let args = strings.collect::<Result<_, _>>()?;
    Ok((keys, args))
}

/// `KEYS` of `publish.lua`.
const PUBLISH_KEYS: usize = 7;

/// `ARGV` of `publish.lua`.
const PUBLISH_ARGV: usize = 12;

/// What every publish sends besides the event's own parts, built once per
/// log: the script's SHA and the settings, as values that clone without
/// allocating.
#[derive(Debug)]
struct PublishArgs {
    sha: Value,
    maxlen: Value,
    ttl: Value,
    trades_kept: Value,
    /// `1` when the notice waits for the replicas ([`Durability`]).
    defer: Value,
}

impl PublishArgs {
    fn new(script: &Script, settings: &LogSettings, durability: Durability) -> Self {
        Self {
            sha: script.sha1().clone().into(),
            maxlen: settings.stream_maxlen.to_string().into(),
            ttl: settings.dedupe_ttl.as_secs().max(1).to_string().into(),
            trades_kept: SNAPSHOT_TRADES.to_string().into(),
            defer: Value::from_static_str(if durability.is_on() { "1" } else { "0" }),
        }
    }

    /// The arguments of `EVALSHA <sha> 7 KEYS… ARGV…` publishing `new`, in
    /// one list; `epoch` is used if the user's history starts with it.
    fn call(&self, new: &NewEvent, epoch: String) -> Result<Vec<Value>, LogError> {
        new.validate()?;
        let encoded = Encoded::new(&new.event)?;
        let keys = UserKeys::new(new.event.user_id());
        let (effect, field, remove) = match encoded.effect {
            SnapshotEffect::Position { symbol, remove } => ("p", symbol, remove),
            SnapshotEffect::Order { order_id, remove } => ("o", order_id, remove),
            SnapshotEffect::Account => ("a", String::new(), false),
            SnapshotEffect::Trade => ("t", String::new(), false),
        };
        let dedupe = keys.dedupe(&new.dedupe_id);
        let mut call = Vec::with_capacity(2 + PUBLISH_KEYS + PUBLISH_ARGV);
        call.push(self.sha.clone());
        call.push(Value::Integer(PUBLISH_KEYS as i64));
        call.extend(
            [keys.meta, keys.events, keys.positions, keys.orders, keys.account, keys.trades, dedupe].map(Value::from),
        );
        call.extend([
            encoded.head.into(),
            encoded.rest.into(),
            encoded.data.into(),
            Value::from_static_str(effect),
            field.into(),
            Value::from_static_str(if remove { "1" } else { "0" }),
            self.maxlen.clone(),
            self.ttl.clone(),
            epoch.into(),
            keys.notify.into(),
            self.trades_kept.clone(),
            self.defer.clone(),
        ]);
        Ok(call)
    }
}

/// `EVALSHA` as a custom command for the argument list `call` (`sha`,
/// `numkeys`, `KEYS…`, `ARGV…`), routed in a cluster to the slot of its first
/// key. fred hashes a custom command by its first string argument (the SHA)
/// unless it is given the slot itself (`ClusterHash::Custom`); every key of
/// one call shares a hash tag, so the first key's slot is the call's.
fn evalsha(call: &[Value]) -> CustomCommand {
    let slot = call.get(2).and_then(Value::as_bytes).map(fred::util::redis_keyslot);
    let cluster_hash = slot.map_or(ClusterHash::FirstKey, ClusterHash::Custom);
    CustomCommand::new_static("EVALSHA", cluster_hash, false)
}

/// Events sent in one pipeline by `publish_many`; bounds the memory of one
/// flush while keeping round trips few.
const PIPELINE_CHUNK: usize = 1_000;

/// Follows subscribed concurrently when re-subscribing after a reconnect.
const RESUBSCRIBE_CONCURRENCY: usize = 256;

/// Capacity of each of the pub/sub client's own broadcast channels. `fred`
/// gives every client eight of them (messages, errors, reconnects, …), all
/// of this capacity and allocated in full up front (about 100 bytes a
/// slot): at [`NOTICE_CAPACITY`] that was 54 MB per gateway. Only the
/// message channel carries traffic, and the forwarder drains it at once into
/// the notice channel, which is the real buffer; a lag here is a resync.
const PUBSUB_BUFFER: usize = 4_096;

/// The Redis event log.
#[derive(Debug, Clone)]
pub struct RedisLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: fred::clients::Client,
    options: Options,
    publish: Script,
    publish_args: PublishArgs,
    read_after: Script,
    snapshot: Script,
    mark: Script,
    notices: broadcast::Sender<Notice>,
    /// The pub/sub connection, made on the first `follow`.
    pubsub: OnceCell<PubSub>,
    url: String,
    command_timeout: Duration,
    durability: Durability,
}

#[derive(Debug)]
struct PubSub {
    client: fred::clients::Client,
    /// Channels we follow, with their follow counts; the truth for
    /// re-subscribing after a reconnect.
    channels: Arc<Mutex<HashMap<String, usize>>>,
    /// Serializes (un)subscribe commands so that the server sees them in the
    /// order the counts changed.
    order: tokio::sync::Mutex<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for PubSub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisLog {
    /// Connects to `url` (`redis://`, `rediss://`, `redis-cluster://`).
    /// Commands that cannot complete within `command_timeout`, or are issued
    /// while the connection is down, fail with [`LogError::Unavailable`].
    pub async fn connect(url: &str, settings: LogSettings, command_timeout: Duration) -> Result<Self, LogError> {
        Self::connect_durable(url, settings, command_timeout, Durability::NONE).await
    }

    /// [`RedisLog::connect`], acknowledging a publish only once `durability`
    /// says so.
    pub async fn connect_durable(
        url: &str,
        settings: LogSettings,
        command_timeout: Duration,
        durability: Durability,
    ) -> Result<Self, LogError> {
        let client = build_client(url, command_timeout, 32)?;
        client.init().await.map_err(unavailable)?;
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        let publish = Script::from_lua(PUBLISH_LUA);
        let log = Self {
            inner: Arc::new(Inner {
                client,
                options: Options { fail_fast: true, timeout: Some(command_timeout), ..Options::default() },
                publish_args: PublishArgs::new(&publish, &settings, durability),
                publish,
                read_after: Script::from_lua(READ_AFTER_LUA),
                snapshot: Script::from_lua(SNAPSHOT_LUA),
                mark: Script::from_lua(MARK_LUA),
                notices,
                pubsub: OnceCell::new(),
                url: url.to_owned(),
                command_timeout,
                durability,
            }),
        };
        // Load once now; `eval` reloads if the server loses its cache later.
        for script in [&log.inner.publish, &log.inner.read_after, &log.inner.snapshot, &log.inner.mark] {
            script.load(&log.inner.client).await.map_err(unavailable)?;
        }
        Ok(log)
    }

    /// Opens the pub/sub connection now rather than with the first
    /// `follow`: a gateway calls this at start, so that its fixed cost (a
    /// connection, two tasks, `fred`'s buffers) is paid before any socket
    /// and not counted against the first ones (`docs/benchmarks.md`).
    pub async fn open_notices(&self) -> Result<(), LogError> {
        self.pubsub().await.map(|_| ())
    }

    /// The underlying command client, for tests and operational commands.
    pub fn client(&self) -> &fred::clients::Client {
        &self.inner.client
    }

    /// Calls a script by SHA; on `NOSCRIPT` loads it and calls again.
    async fn eval<K, V>(&self, script: &Script, keys: K, args: V) -> Result<Value, LogError>
    where
        K: Into<MultipleKeys> + Send,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<FredError> + Send,
    {
        let keys: MultipleKeys = keys.into();
        let args: MultipleValues = args.try_into().map_err(|e| unavailable(e.into()))?;
        let client = self.inner.client.with_options(&self.inner.options);
        loading_once(&self.inner.client, script, || {
            Ok(client.evalsha(script.sha1().clone(), keys.clone(), args.clone()))
        })
        .await
    }

    /// The arguments of `EVALSHA` publishing `new`, each built once and
    /// moved into the command (no copies for the rare `NOSCRIPT` retry:
    /// that rebuilds them).
    fn publish_call(&self, new: &NewEvent) -> Result<Vec<Value>, LogError> {
        self.inner.publish_args.call(new, new_epoch())
    }

    /// One event, one `EVALSHA`, on the shared connection: concurrent
    /// publishes leave in one write when they queue up behind each other.
    async fn publish_one(&self, new: &NewEvent) -> Result<Published, LogError> {
        let client = self.inner.client.with_options(&self.inner.options);
        let reply = loading_once(&self.inner.client, &self.inner.publish, || {
            let call = self.publish_call(new)?;
            Ok(client.custom::<Value, _>(evalsha(&call), call))
        })
        .await;
        let answer = reply.and_then(parse_published);
        if !self.inner.durability.is_on() {
            return answer.map(|(published, _)| published);
        }
        self.replicated(std::slice::from_ref(new), vec![answer]).await.pop().unwrap_or_else(|| Err(corrupt("publish")))
    }

    /// With [`Durability`] on: waits, once per slot, for the replicas to
    /// have the published events, then sends their deferred notices (all
    /// at once, so a batch costs one round trip per node, not per event);
    /// an event whose wait fell short (or whose notice failed) is answered
    /// unavailable, so its sender retries. Without: the answers as they are.
    async fn replicated(
        &self,
        events: &[NewEvent],
        answers: Vec<Result<(Published, Option<Value>), LogError>>,
    ) -> Vec<Result<Published, LogError>> {
        let durability = self.inner.durability;
        if !durability.is_on() {
            return answers.into_iter().map(|a| a.map(|(published, _)| published)).collect();
        }
        let keys: Vec<UserKeys> = events.iter().map(|event| UserKeys::new(event.event.user_id())).collect();
        let slot_of: Vec<u16> = keys.iter().map(|k| fred::util::redis_keyslot(k.meta.as_bytes())).collect();
        let mut slots: Vec<u16> =
            slot_of.iter().zip(&answers).filter(|(_, a)| a.is_ok()).map(|(&slot, _)| slot).collect();
        slots.sort_unstable();
        slots.dedup();
        let waits = futures::future::join_all(slots.iter().map(|&slot| self.wait_replicas(slot, durability))).await;
        let waited: HashMap<u16, Result<(), LogError>> = slots.into_iter().zip(waits).collect();
        let waited = &waited;
        let sends = answers.into_iter().zip(keys).zip(slot_of).map(|((answer, keys), slot)| async move {
            let (published, notice) = answer?;
            match waited.get(&slot) {
                Some(Err(LogError::Unavailable(why))) => Err(LogError::Unavailable(why.clone())),
                Some(Err(other)) => Err(LogError::Unavailable(other.to_string())),
                _ => self.notify(keys.notify, notice).await.map(|()| published),
            }
        });
        futures::future::join_all(sends).await
    }

    /// `WAIT replicas timeout` on the connection of `slot`'s master: every
    /// write sent on it so far, the scripts just run included.
    async fn wait_replicas(&self, slot: u16, durability: Durability) -> Result<(), LogError> {
        let timeout_ms = durability.timeout.as_millis().max(1) as i64;
        let options =
            Options { timeout: Some(self.inner.command_timeout + durability.timeout), ..self.inner.options.clone() };
        let command = CustomCommand::new_static("WAIT", ClusterHash::Custom(slot), false);
        let args = vec![Value::Integer(i64::from(durability.replicas)), Value::Integer(timeout_ms)];
        let reached: i64 = self.inner.client.with_options(&options).custom(command, args).await.map_err(unavailable)?;
        if reached < i64::from(durability.replicas) {
            return Err(LogError::Unavailable(format!(
                "written to {reached} of {} replicas within {:?}: not acknowledged",
                durability.replicas, durability.timeout
            )));
        }
        Ok(())
    }

    /// Sends a deferred notice on the user's channel.
    async fn notify(&self, channel: String, notice: Option<Value>) -> Result<(), LogError> {
        let Some(notice) = notice else { return Ok(()) };
        let client = self.inner.client.with_options(&self.inner.options);
        client.spublish::<(), _, _>(channel, notice).await.map_err(unavailable)
    }

    async fn pubsub(&self) -> Result<&PubSub, LogError> {
        self.inner
            .pubsub
            .get_or_try_init(|| async {
                let client = build_client(&self.inner.url, self.inner.command_timeout, PUBSUB_BUFFER)?;
                let channels = Arc::new(Mutex::new(HashMap::new()));
                let (initial, started) = tokio::sync::oneshot::channel();
                let tasks = vec![
                    spawn_forwarder(&client, self.inner.notices.clone()),
                    spawn_resubscriber(&client, channels.clone(), self.inner.notices.clone(), started),
                ];
                client.init().await.map_err(unavailable)?;
                let _ = initial.send(client.active_connections());
                Ok(PubSub { client, channels, order: tokio::sync::Mutex::new(()), tasks })
            })
            .await
    }
}

fn build_client(url: &str, timeout: Duration, broadcast_capacity: usize) -> Result<fred::clients::Client, LogError> {
    let config = Config::from_url(url).map_err(|e| LogError::Unavailable(format!("bad Redis URL: {}", e.details())))?;
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = timeout;
            p.broadcast_channel_capacity = broadcast_capacity;
        })
        // Retry forever, 100 ms doubling to 2 s: a gateway outlives Redis outages.
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()
        .map_err(unavailable)
}

/// Turns pub/sub messages into notices.
fn spawn_forwarder(client: &fred::clients::Client, notices: broadcast::Sender<Notice>) -> JoinHandle<()> {
    let mut messages = client.message_rx();
    tokio::spawn(async move {
        loop {
            match messages.recv().await {
                Ok(message) if keys::is_mark_channel(&message.channel) => {
                    let Some(payload) = message.value.as_bytes() else { continue };
                    match serde_json::from_slice(payload) {
                        Ok(mark) => {
                            let _ = notices.send(Notice::Mark(mark));
                        }
                        Err(error) => tracing::warn!(channel = %message.channel, %error, "Unreadable mark ignored."),
                    }
                }
                Ok(message) => {
                    let Some(user) = keys::user_of_notify_channel(&message.channel) else { continue };
                    let Some(payload) = message.value.as_bytes() else { continue };
                    match parse_notify_payload(payload) {
                        Some((epoch, event)) => {
                            let _ = notices.send(Notice::Event { user, epoch, event });
                        }
                        None => tracing::warn!(%user, "Unreadable notification ignored."),
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "Notification receiver lagged; resyncing.");
                    let _ = notices.send(Notice::Resync);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// After every reconnect, and in a cluster after every change of which
/// master owns which slots: subscribe to every followed channel again (fred
/// routes each to its slot's owner), then tell followers to repair what they
/// missed. A master that loses a slot drops its shard-channel subscriptions
/// (Redis pushes `sunsubscribe`, which fred does not surface), so without
/// this the followers of users and symbols whose slots moved would go deaf.
/// The first connection to each server the client made at start (one per
/// node in a cluster) is no reconnect; `initial` names them once `init`
/// returned.
fn spawn_resubscriber(
    client: &fred::clients::Client,
    channels: Arc<Mutex<HashMap<String, usize>>>,
    notices: broadcast::Sender<Notice>,
    initial: tokio::sync::oneshot::Receiver<Vec<fred::types::config::Server>>,
) -> JoinHandle<()> {
    let mut reconnects = client.reconnect_rx();
    let client = client.clone();
    tokio::spawn(async move {
        let mut initial: std::collections::HashSet<_> = initial.await.unwrap_or_default().into_iter().collect();
        let mut layout = slot_layout(&client);
        let mut check = tokio::time::interval(TOPOLOGY_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                reconnect = reconnects.recv() => match reconnect {
                    // The start's own connection to this server.
                    Ok(server) if initial.remove(&server) => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::info!("Pub/sub reconnected; subscribing again.");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = check.tick(), if client.is_clustered() => {
                    if let Err(error) = client.sync_cluster().await {
                        tracing::debug!(%error, "Cluster topology check failed.");
                        continue;
                    }
                    let now = slot_layout(&client);
                    if now == layout {
                        continue;
                    }
                    layout = now;
                    tracing::info!("Cluster slots moved; subscribing again.");
                }
            }
            let wanted: Vec<String> = lock(&channels).keys().cloned().collect();
            for chunk in wanted.chunks(RESUBSCRIBE_CONCURRENCY) {
                let results = futures::future::join_all(chunk.iter().map(|c| client.ssubscribe(c.clone()))).await;
                if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
                    tracing::warn!(%error, channels = wanted.len(), "Re-subscribing failed; waiting for the next change.");
                }
            }
            let _ = notices.send(Notice::Resync);
        }
    })
}

/// How often a cluster client asks which master owns which slots.
const TOPOLOGY_CHECK: Duration = Duration::from_secs(1);

/// Which master owns which slots, as the client last learned it (empty
/// outside a cluster).
fn slot_layout(client: &fred::clients::Client) -> Vec<(u16, u16, fred::types::config::Server)> {
    client
        .cached_cluster_state()
        .map(|state| state.slots().iter().map(|range| (range.start, range.end, range.primary.clone())).collect())
        .unwrap_or_default()
}

fn corrupt(what: &str) -> LogError {
    LogError::Corrupt(what.to_owned())
}

/// The publish script's answer, and the deferred notice it returned (see
/// [`Durability`]).
fn parse_published(value: Value) -> Result<(Published, Option<Value>), LogError> {
    let mut parts = value.into_array().into_iter();
    let (Some(flag), Some(seq), Some(epoch)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt("publish reply"));
    };
    let seq = seq.as_u64().ok_or_else(|| corrupt("publish seq"))?;
    let epoch = epoch.into_string().ok_or_else(|| corrupt("publish epoch"))?;
    let published = match flag.as_u64() {
        Some(1) => Published::New { seq, epoch },
        Some(0) => Published::Duplicate { seq, epoch },
        _ => return Err(corrupt("publish flag")),
    };
    Ok((published, parts.next()))
}

fn optional_string(value: Value) -> Option<String> {
    if value.is_null() {
        None
    } else {
        value.into_string()
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<Vec<T>, LogError> {
    value
        .into_array()
        .into_iter()
        .map(|v| {
            let bytes = v.into_bytes().ok_or_else(|| corrupt(what))?;
            serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt(format!("{what}: {e}")))
        })
        .collect()
}

#[async_trait]
impl EventLog for RedisLog {
    async fn publish(&self, event: &NewEvent) -> Result<Published, LogError> {
        self.publish_one(event).await
    }

    async fn publish_many(&self, events: &[NewEvent]) -> Vec<Result<Published, LogError>> {
        if let [event] = events {
            // One event (a completion, most webhook calls): no pipeline to build.
            return vec![self.publish_one(event).await];
        }
        let mut results = Vec::with_capacity(events.len());
        for chunk in events.chunks(PIPELINE_CHUNK) {
            results.extend(self.publish_pipelined(chunk).await);
        }
        results
    }

    async fn read_after(&self, user: &UserId, epoch: Option<&str>, after: u64, limit: usize) -> LogResult<ReadAfter> {
        let keys = UserKeys::new(user);
        let args = vec![after.to_string(), limit.max(1).to_string(), epoch.unwrap_or_default().to_owned()];
        let reply = self.eval(&self.inner.read_after, vec![keys.meta, keys.events], args).await?;
        let mut parts = reply.into_array().into_iter();
        let (Some(status), Some(epoch), Some(head)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(corrupt("read_after reply"));
        };
        let epoch = optional_string(epoch);
        let head = head.as_u64().ok_or_else(|| corrupt("read_after head"))?;
        match status.as_str().as_deref() {
            Some("epoch") => Ok(ReadAfter::EpochChanged { epoch, head }),
            Some("old") => Ok(ReadAfter::TooOld { epoch, head }),
            Some("ok") => {
                let mut events = Vec::new();
                while let (Some(id), Some(json)) = (parts.next(), parts.next()) {
                    let id = id.as_str().ok_or_else(|| corrupt("stream id"))?.into_owned();
                    let seq = id.split('-').next().and_then(|s| s.parse().ok()).ok_or_else(|| corrupt("stream id"))?;
                    let json: Bytes = json.into_bytes().ok_or_else(|| corrupt("stream entry"))?;
                    events.push(StoredEvent { seq, json });
                }
                Ok(ReadAfter::Events { epoch, head, events })
            }
            _ => Err(corrupt("read_after status")),
        }
    }

    async fn snapshot(&self, user: &UserId) -> Result<Snapshot, LogError> {
        let keys = UserKeys::new(user);
        let key_list = vec![keys.meta, keys.positions, keys.orders, keys.account, keys.trades];
        let reply = self.eval(&self.inner.snapshot, key_list, vec![new_epoch()]).await?;
        let mut parts = reply.into_array().into_iter();
        let (Some(seq), Some(epoch), Some(positions), Some(orders), Some(account), Some(trades)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt("snapshot reply"));
        };
        let mut positions: Vec<common::event::Position> = decode_all(positions, "snapshot position")?;
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let mut orders: Vec<common::event::Order> = decode_all(orders, "snapshot order")?;
        orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        let account = match optional_string(account) {
            Some(json) => Some(serde_json::from_str(&json).map_err(|e| LogError::Corrupt(format!("account: {e}")))?),
            None => None,
        };
        Ok(Snapshot {
            epoch: optional_string(epoch),
            seq: seq.as_u64().ok_or_else(|| corrupt("snapshot seq"))?,
            positions,
            orders,
            account,
            trades: decode_all(trades, "snapshot trade")?,
        })
    }

    async fn follow(&self, user: &UserId) -> Result<(), LogError> {
        self.follow_channel(UserKeys::new(user).notify).await
    }

    async fn unfollow(&self, user: &UserId) -> Result<(), LogError> {
        self.unfollow_channel(UserKeys::new(user).notify).await
    }

    async fn put_marks(&self, marks: &[Mark]) -> Vec<Result<bool, LogError>> {
        let mut results = Vec::with_capacity(marks.len());
        for chunk in marks.chunks(PIPELINE_CHUNK) {
            results.extend(self.put_marks_pipelined(chunk).await);
        }
        results
    }

    async fn marks(&self, symbols: &[Symbol]) -> LogResult<Vec<Option<Mark>>> {
        let mut marks = Vec::with_capacity(symbols.len());
        for chunk in symbols.chunks(PIPELINE_CHUNK) {
            let pipeline: Pipeline<fred::clients::Client> =
                self.inner.client.with_options(&self.inner.options).pipeline();
            for symbol in chunk {
                pipeline.hget::<(), _, _>(keys::mark(symbol), "json").await.map_err(unavailable)?;
            }
            for answer in pipeline.all::<Vec<Value>>().await.map_err(unavailable)? {
                marks.push(match optional_string(answer) {
                    Some(json) => {
                        Some(serde_json::from_str(&json).map_err(|e| LogError::Corrupt(format!("mark: {e}")))?)
                    }
                    None => None,
                });
            }
        }
        Ok(marks)
    }

    async fn follow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        self.follow_channel(keys::mark_channel(symbol)).await
    }

    async fn unfollow_mark(&self, symbol: &Symbol) -> Result<(), LogError> {
        self.unfollow_channel(keys::mark_channel(symbol)).await
    }

    fn leases(&self) -> Arc<dyn Leases> {
        Arc::new(RedisLeases::new(self.inner.client.clone(), self.inner.command_timeout))
    }

    fn notices(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    async fn ping(&self) -> Result<(), LogError> {
        self.inner.client.with_options(&self.inner.options).ping::<()>(None).await.map_err(unavailable)
    }
}

impl RedisLog {
    /// One more follow of `channel`; the first subscribes.
    async fn follow_channel(&self, channel: String) -> Result<(), LogError> {
        let pubsub = self.pubsub().await?;
        let _order = pubsub.order.lock().await;
        // Counted first: if the subscribe fails now, the next reconnect makes it.
        let count = {
            let mut channels = lock(&pubsub.channels);
            let count = channels.entry(channel.clone()).or_default();
            *count += 1;
            *count
        };
        if count > 1 {
            return Ok(());
        }
        pubsub.client.ssubscribe(channel).await.map_err(unavailable)
    }

    /// One follow fewer of `channel`; the last one unsubscribes.
    async fn unfollow_channel(&self, channel: String) -> Result<(), LogError> {
        let pubsub = self.pubsub().await?;
        let _order = pubsub.order.lock().await;
        let last = {
            let mut channels = lock(&pubsub.channels);
            match channels.get_mut(&channel) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => channels.remove(&channel).is_some(),
                None => false,
            }
        };
        if !last {
            return Ok(());
        }
        pubsub.client.sunsubscribe(channel).await.map_err(unavailable)
    }

    /// One pipeline of `mark.lua` calls.
    async fn put_marks_pipelined(&self, marks: &[Mark]) -> Vec<Result<bool, LogError>> {
        let sha: Value = self.inner.mark.sha1().clone().into();
        let calls = marks.iter().map(|mark| {
            let json = serde_json::to_string(mark).map_err(|_| LogError::InvalidEvent("mark does not serialize"))?;
            Ok(vec![
                sha.clone(),
                Value::Integer(1),
                keys::mark(&mark.symbol).into(),
                mark.timestamp.unix_millis().to_string().into(),
                json.into(),
                keys::mark_channel(&mark.symbol).into(),
            ])
        });
        let answers = self.script_pipeline(&self.inner.mark, calls.collect()).await;
        answers
            .into_iter()
            .map(|answer| match answer?.as_u64() {
                Some(stored) => Ok(stored == 1),
                None => Err(corrupt("mark reply")),
            })
            .collect()
    }

    /// One pipeline of `EVALSHA` calls of `script` (each call its argument
    /// list, or the error that kept it out); `NOSCRIPT` answers are retried
    /// once after reloading, which is safe for every script here (publishes
    /// carry dedupe ids, an equal mark changes nothing). One answer per
    /// call, in order.
    async fn script_pipeline(
        &self,
        script: &Script,
        calls: Vec<Result<Vec<Value>, LogError>>,
    ) -> Vec<Result<Value, LogError>> {
        let pipeline: Pipeline<fred::clients::Client> = self.inner.client.pipeline();
        let count = calls.len();
        let all_failed = |error: FredError| {
            let error = unavailable(error);
            (0..count).map(|_| Err(LogError::Unavailable(error.to_string()))).collect()
        };
        // What each call became: queued in the pipeline, or refused here.
        let mut queued: Vec<Result<(), LogError>> = Vec::with_capacity(count);
        for call in calls {
            match call {
                Ok(call) => {
                    if let Err(error) = pipeline.custom::<(), _>(evalsha(&call), call).await {
                        return all_failed(error);
                    }
                    queued.push(Ok(()));
                }
                Err(error) => queued.push(Err(error)),
            }
        }
        // The pipeline keeps its commands: a NOSCRIPT retry sends them again.
        let mut answers = pipeline.try_all::<Value>().await;
        if answers.iter().any(|r| matches!(r, Err(e) if is_noscript(e))) {
            if let Err(error) = script.load(&self.inner.client).await {
                return all_failed(error);
            }
            answers = pipeline.try_all::<Value>().await;
        }
        let mut answers = answers.into_iter();
        queued
            .into_iter()
            .map(|queued| {
                queued?;
                answers
                    .next()
                    .unwrap_or_else(|| Err(FredError::new(ErrorKind::Unknown, "missing reply")))
                    .map_err(unavailable)
            })
            .collect()
    }

    /// One pipeline of publishes.
    async fn publish_pipelined(&self, events: &[NewEvent]) -> Vec<Result<Published, LogError>> {
        let calls = events.iter().map(|event| self.publish_call(event)).collect();
        let answers = self.script_pipeline(&self.inner.publish, calls).await;
        let answers = answers.into_iter().map(|answer| answer.and_then(parse_published)).collect();
        self.replicated(events, answers).await
    }
}
