//! The per-user hub: one task per user with connections on this gateway.
//! It follows the user's notifications, tracks the last seq (repairing gaps
//! with bounded reads), values the user's positions at the market marks of
//! the symbols held ([`Book`]), runs the user's throttle, and fans messages
//! out to the user's connections, each filtered by its channels. A
//! connection can only ever join its own user's hub (see `hubs`), which is
//! what isolates users.
//!
//! Updates derived at a mark carry the user's current seq (the last one
//! processed) and add nothing to the log; a connection is sent them even
//! when its snapshot was taken at that seq (`Conn::floor`).

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use common::event::{Channel, Envelope, Event, Mark, Symbol, Timestamp, UserId};
use common::pnl::Book;
use common::protocol::close::Close;
use common::protocol::delta::{AccountDelta, DeltaBatchData, DeltaMessage, Partial, PositionDelta};
use common::protocol::{BatchData, ServerMessage, Snapshot, SnapshotData};
use event_log::{LogError, ReadAfter, SharedLog, StoredEvent};
use tokio::time::{Instant, Sleep};

use crate::holders::Holders;
use crate::marks::{value_at_marks, value_snapshot};
use crate::queue::{self, TrySendError};
use crate::stats::Stats;
use crate::throttle::{self, Bases, Output, Throttle, ThrottleConfig};
/// Events read per `read_after` call.
const PAGE: usize = 1_000;
/// Pages a catch-up may read before a snapshot is cheaper.
const MAX_PAGES: usize = 10;

/// A set of channels as a bit mask (one byte per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Channels(u8);

impl Channels {
    fn bit(channel: Channel) -> u8 {
        match channel {
            Channel::Positions => 1,
            Channel::Orders => 2,
            Channel::Account => 4,
            Channel::Trades => 8,
        }
    }

    pub(crate) fn from_list(channels: &[Channel]) -> Self {
        Self(channels.iter().fold(0, |mask, c| mask | Self::bit(*c)))
    }

    pub(crate) fn with(self, other: Channels) -> Self {
        Self(self.0 | other.0)
    }

    pub(crate) fn without(self, other: Channels) -> Self {
        Self(self.0 & !other.0)
    }

    pub(crate) fn contains(self, channel: Channel) -> bool {
        self.0 & Self::bit(channel) != 0
    }

    pub(crate) fn list(self) -> Vec<Channel> {
        Channel::ALL.into_iter().filter(|c| self.contains(*c)).collect()
    }
}

/// What a hub sends a connection.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A JSON text frame.
    Text(Utf8Bytes),
    /// JSON text frames made by one change (a mark's position and account
    /// updates), written together with one flush.
    Texts(Box<[Utf8Bytes]>),
    /// Close the socket with this: the hub let go of the connection, and
    /// this is the last item it queued.
    Close(Close),
}

/// What connections and the dispatcher tell a hub.
#[derive(Debug)]
pub(crate) enum Command {
    Notice {
        epoch: String,
        event: StoredEvent,
    },
    Resync,
    /// A new market mark of a symbol the user holds.
    Mark(Arc<Mark>),
    /// Add channels; `since` resumes, otherwise a snapshot starts the stream.
    /// `tx` is given on the connection's first subscribe.
    Subscribe {
        conn: u64,
        channels: Channels,
        since: Option<(u64, Option<String>)>,
        /// Field deltas wanted (docs/protocol.md, "Field deltas").
        deltas: bool,
        tx: Option<queue::Sender<Outbound>>,
    },
    Unsubscribe {
        conn: u64,
        channels: Channels,
    },
    CatchUp {
        conn: u64,
        since: u64,
        epoch: Option<String>,
    },
    Leave {
        conn: u64,
    },
}

#[derive(Debug)]
struct Conn {
    id: u64,
    channels: Channels,
    /// Events up to this seq are already in what the connection was sent.
    floor: u64,
    tx: queue::Sender<Outbound>,
    /// It subscribed with `deltas`: position and account updates may carry
    /// only changed fields once it holds the full object.
    deltas: bool,
    /// What it holds a full object of, since its last snapshot, resume or
    /// catch-up (only for `deltas`; none for most connections).
    full: Option<Box<Held>>,
}

/// The symbols and account a delta connection holds full objects of.
#[derive(Debug, Default)]
struct Held {
    symbols: BTreeSet<Symbol>,
    account: bool,
}

/// What an update is of: a delta of it needs the connection to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Position(Symbol),
    Account,
}

impl Conn {
    /// Whether a delta of every one of `keys` can go to this connection.
    fn takes_delta(&self, keys: &[Key]) -> bool {
        let Some(held) = self.full.as_ref().filter(|_| self.deltas) else { return false };
        keys.iter().all(|key| match key {
            Key::Position(symbol) => held.symbols.contains(symbol),
            Key::Account => held.account,
        })
    }

    /// It was sent `keys` (full, or as deltas over what it held).
    fn holds(&mut self, keys: &[Key]) {
        if !self.deltas || keys.is_empty() {
            return;
        }
        let held = self.full.get_or_insert_with(Box::default);
        for key in keys {
            match key {
                Key::Position(symbol) => {
                    held.symbols.insert(symbol.clone());
                }
                Key::Account => held.account = true,
            }
        }
    }
}

/// A single update's wire forms: full, and as a delta when it has a base.
#[derive(Debug)]
struct Forms {
    channel: Channel,
    full: Utf8Bytes,
    delta: Option<Utf8Bytes>,
    /// What it updates, when a connection may take deltas.
    key: Option<Key>,
    kind: &'static str,
    at: Timestamp,
}

impl Forms {
    /// The form `conn` gets; notes what it then holds.
    fn for_conn(&self, conn: &mut Conn) -> Option<Utf8Bytes> {
        if !conn.channels.contains(self.channel) {
            return None;
        }
        let keys = self.key.as_slice();
        let text = match &self.delta {
            Some(delta) if conn.takes_delta(keys) => delta.clone(),
            _ => self.full.clone(),
        };
        conn.holds(keys);
        Some(text)
    }
}

/// One user's hub: its connections and what it knows of the user's stream.
#[derive(Debug)]
pub(crate) struct Hub {
    user: UserId,
    log: SharedLog,
    throttle_config: ThrottleConfig,
    /// Made with the user's first event: a hub whose user has had none
    /// (most idle connections) does not carry the throttle's state.
    throttle: Option<Box<Throttle>>,
    /// The last seq processed and its epoch; `None` until the first subscribe.
    last: Option<u64>,
    epoch: Option<String>,
    conns: Vec<Conn>,
    /// Made from a snapshot holding a position (read at the first
    /// subscribe, or when a position opens later): a user holding nothing
    /// (most idle connections) carries none.
    valuation: Option<Box<Valuation>>,
    holders: Arc<Holders>,
    stats: Arc<Stats>,
    /// A connection subscribed with deltas: outputs carry their bases.
    deltas: bool,
}

/// What valuing the user at market marks takes.
#[derive(Debug, Default)]
struct Valuation {
    book: Book,
    /// The book holds the effects of the events up to this seq.
    seq: u64,
    /// The symbols whose marks the hub follows (in the log and in
    /// [`Holders`]): the book's.
    followed: BTreeSet<Symbol>,
}

impl Hub {
    pub(crate) fn new(
        user: UserId,
        log: SharedLog,
        throttle: ThrottleConfig,
        stats: Arc<Stats>,
        holders: Arc<Holders>,
    ) -> Self {
        Self {
            user,
            log,
            throttle_config: throttle,
            throttle: None,
            last: None,
            epoch: None,
            conns: Vec::new(),
            valuation: None,
            holders,
            stats,
            deltas: false,
        }
    }

    fn throttle(&mut self) -> &mut Throttle {
        let (config, deltas) = (self.throttle_config, self.deltas);
        self.throttle.get_or_insert_with(|| {
            let mut throttle = Box::new(Throttle::new(config));
            throttle.set_bases(deltas);
            throttle
        })
    }

    /// Outputs carry their bases while a connection wants deltas.
    fn update_deltas(&mut self) {
        self.deltas = self.conns.iter().any(|c| c.deltas);
        let deltas = self.deltas;
        if let Some(throttle) = self.throttle.as_mut() {
            throttle.set_bases(deltas);
        }
    }

    /// Runs until every connection left. The hub waits far more than it
    /// works, so the work (`handle`, `repair`) runs in boxed futures: the
    /// task keeps only what waiting needs (BRIEF §7, memory per connection).
    pub(crate) async fn run(&mut self, rx: &mut queue::Receiver<Command>) {
        if let Err(error) = self.log.follow(&self.user).await {
            // Subscribed once Redis is back (then a resync repairs the gap).
            tracing::warn!(user = %self.user, %error, "Follow failed; relying on repair.");
        }
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        loop {
            match (self.throttle.as_ref().and_then(|t| t.deadline()), timer.as_mut()) {
                (Some(at), Some(sleep)) => {
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                }
                (Some(at), None) => timer = Some(Box::pin(tokio::time::sleep_until(at))),
                (None, _) => timer = None,
            }
            tokio::select! {
                command = rx.recv() => match command {
                    Some(command) => {
                        Box::pin(self.handle(command)).await;
                        if rx.take_overflow() {
                            self.stats.repair("lagged");
                            Box::pin(self.repair()).await;
                            Box::pin(self.refresh_marks()).await;
                        }
                    }
                    None => break,
                },
                () = expired(&mut timer) => {
                    if let Some(output) = self.throttle().tick(Instant::now()) {
                        self.send_output(output);
                    }
                }
            }
        }
        // Every follow gets its unfollow, even a failed one: the log counts
        // follows (see `EventLog::follow`).
        if let Err(error) = self.log.unfollow(&self.user).await {
            tracing::warn!(user = %self.user, %error, "Unfollow failed.");
        }
        if let Some(valuation) = self.valuation.take() {
            Box::pin(self.unfollow_marks(valuation.followed)).await;
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Notice { epoch, event } => self.on_notice(epoch, event).await,
            Command::Resync => {
                self.stats.repair("resync");
                self.repair().await;
                self.refresh_marks().await;
            }
            Command::Mark(mark) => self.on_mark(&mark),
            Command::Subscribe { conn, channels, since, deltas, tx } => {
                if let Some(tx) = tx {
                    // Most users have one connection: no room for four.
                    self.conns.reserve_exact(1);
                    let channels = Channels::default();
                    self.conns.push(Conn { id: conn, channels, floor: 0, tx, deltas, full: None });
                }
                let Some(index) = self.conns.iter().position(|c| c.id == conn) else { return };
                let all = self.conns[index].channels.with(channels);
                self.conns[index].channels = all;
                self.conns[index].deltas = deltas;
                self.conns[index].full = None;
                self.update_deltas();
                match since {
                    Some((since, epoch)) => self.catch_up(conn, since, epoch).await,
                    None => self.send_snapshot(conn).await,
                }
                let (seq, epoch) = (self.last.unwrap_or(0), self.epoch.clone());
                let reply = ServerMessage::Subscribed { channels: all.list(), seq, epoch };
                self.send_to(conn, &reply);
            }
            Command::Unsubscribe { conn, channels } => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
                    c.channels = c.channels.without(channels);
                }
            }
            Command::CatchUp { conn, since, epoch } => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
                    c.full = None;
                }
                self.catch_up(conn, since, epoch).await;
            }
            Command::Leave { conn } => {
                self.conns.retain(|c| c.id != conn);
                self.update_deltas();
            }
        }
    }

    async fn on_notice(&mut self, epoch: String, event: StoredEvent) {
        let Some(last) = self.last else { return };
        if self.epoch.as_deref().is_some_and(|known| known != epoch) {
            self.resnapshot_all().await;
        } else if event.seq == last + 1 {
            self.epoch.get_or_insert(epoch);
            self.process(event).await;
        } else if event.seq > last + 1 {
            self.stats.repair("gap");
            self.repair().await;
        }
    }

    /// Every event after `after` of `epoch`, in order, up to the head: the
    /// one paging loop behind gap repair and client catch-up.
    async fn read_missed(&self, epoch: Option<&str>, after: u64) -> Missed {
        let mut last = after;
        let mut missed = Vec::new();
        for _ in 0..MAX_PAGES {
            match self.log.read_after(&self.user, epoch, last, PAGE).await {
                Ok(ReadAfter::Events { epoch, head, events }) => {
                    if let Some(tail) = events.last() {
                        last = tail.seq;
                    }
                    let done = events.is_empty() || last >= head;
                    missed.extend(events);
                    if done {
                        return Missed::Events { epoch, last, events: missed };
                    }
                }
                Ok(ReadAfter::TooOld { .. } | ReadAfter::EpochChanged { .. }) => return Missed::Snapshot,
                Err(error) => return Missed::Failed(error),
            }
        }
        Missed::Snapshot
    }

    /// Reads what was missed since `last`, or re-snapshots when it cannot.
    async fn repair(&mut self) {
        let Some(last) = self.last else { return };
        match self.read_missed(self.epoch.as_deref(), last).await {
            Missed::Events { epoch, events, .. } => {
                if self.epoch.is_none() {
                    self.epoch = epoch;
                }
                for event in events {
                    self.process(event).await;
                }
            }
            Missed::Snapshot => self.resnapshot_all().await,
            Missed::Failed(error) => {
                tracing::warn!(user = %self.user, %error, "Repair failed; retrying on the next notice.");
            }
        }
    }

    async fn process(&mut self, stored: StoredEvent) {
        self.last = Some(stored.seq);
        match stored.decode() {
            Ok(event) => {
                self.stats.event_in(event.type_name());
                let mut newly_held = Vec::new();
                if let Some(valuation) = self.valuation.as_mut().filter(|v| stored.seq > v.seq) {
                    valuation.book.apply(&event);
                    valuation.seq = stored.seq;
                    if matches!(event, Event::PositionUpdate(_)) {
                        newly_held = self.follow_held().await;
                    }
                } else if self.valuation.is_none() && matches!(&event, Event::PositionUpdate(e) if !e.data.is_closed())
                {
                    // The first position: the book starts from a snapshot
                    // (which holds this event already).
                    self.load_book().await;
                }
                for output in self.throttle().push(Instant::now(), event, stored) {
                    self.send_output(output);
                }
                // A mark published between the event that opened a position
                // and its follow would be missed until the next one: the
                // stored marks of what is newly held, after the event itself.
                self.apply_stored_marks(&newly_held).await;
            }
            Err(error) => tracing::error!(user = %self.user, %error, "Undecodable event skipped."),
        }
    }

    /// Revalues the position in the mark's symbol and the account, and
    /// hands them to the throttle as derived updates.
    fn on_mark(&mut self, mark: &Mark) {
        let Some(seq) = self.last else { return };
        let Some(valuation) = self.valuation.as_mut() else { return };
        let now = Timestamp::now();
        let Some(revalued) = valuation.book.mark(mark, now) else { return };
        let mut updates = vec![Event::from(Envelope::new(self.user.clone(), now, revalued.position).with_seq(seq))];
        if let Some(account) = revalued.account {
            updates.push(Event::from(Envelope::new(self.user.clone(), now, account).with_seq(seq)));
        }
        let outputs = self.throttle().push_derived(Instant::now(), seq, updates);
        self.send_together(seq, outputs);
    }

    /// Sends a mark's outputs; when they are updates going out at once,
    /// each connection gets its share as one queue item, so its socket
    /// writes them with one flush (one `send` instead of two).
    fn send_together(&mut self, seq: u64, outputs: Vec<Output>) {
        let singles = outputs.iter().all(|o| matches!(o, Output::Single { derived: true, .. }));
        if outputs.len() < 2 || !singles {
            for output in outputs {
                self.send_output(output);
            }
            return;
        }
        let forms: Vec<Forms> = outputs.into_iter().filter_map(|output| self.forms(output)).collect();
        let mut counts = vec![0u64; forms.len()];
        self.fan_out_frames(seq, true, |conn| {
            let mut mine = Vec::with_capacity(forms.len());
            for (i, form) in forms.iter().enumerate() {
                if let Some(text) = form.for_conn(conn) {
                    counts[i] += 1;
                    mine.push(text);
                }
            }
            match mine.len() {
                0 => None,
                1 => mine.pop().map(Outbound::Text),
                _ => Some(Outbound::Texts(mine.into_boxed_slice())),
            }
        });
        for (form, sent) in forms.iter().zip(counts) {
            self.stats.delivered(form.kind, sent, Some(form.at.unix_millis()));
        }
    }

    /// A single update's full text and, when it has a base, its delta.
    fn forms(&self, output: Output) -> Option<Forms> {
        let Output::Single { event, stored, derived, bases } = output else { return None };
        let full =
            if derived { encode_json(&event, event.type_name()) } else { Utf8Bytes::try_from(stored.json).ok() }?;
        // Bases come only while a connection wants deltas: without them no
        // key is needed (nothing is cloned on the common path).
        let key = bases.as_ref().and_then(|_| match &event {
            Event::PositionUpdate(e) => Some(Key::Position(e.data.symbol.clone())),
            Event::AccountUpdate(_) => Some(Key::Account),
            Event::OrderUpdate(_) | Event::TradeExecuted(_) => None,
        });
        let delta = bases.and_then(|bases| delta_text(&self.user, &event, stored.seq, &bases));
        Some(Forms { channel: event.channel(), full, delta, key, kind: event.type_name(), at: event.timestamp() })
    }

    /// Follows the marks of the symbols the book holds, and only those;
    /// answers the symbols newly followed.
    async fn follow_held(&mut self) -> Vec<Symbol> {
        let Some(valuation) = self.valuation.as_mut() else { return Vec::new() };
        let held: BTreeSet<Symbol> = valuation.book.symbols().cloned().collect();
        let gone: BTreeSet<Symbol> = valuation.followed.difference(&held).cloned().collect();
        let new: Vec<Symbol> = held.difference(&valuation.followed).cloned().collect();
        valuation.followed = held;
        for symbol in &new {
            self.holders.add(symbol, &self.user);
            if let Err(error) = self.log.follow_mark(symbol).await {
                // Counted by the log: subscribed once Redis is back.
                tracing::warn!(user = %self.user, %symbol, %error, "Mark follow failed.");
            }
        }
        self.unfollow_marks(gone).await;
        new
    }

    async fn unfollow_marks(&self, symbols: BTreeSet<Symbol>) {
        for symbol in symbols {
            self.holders.remove(&symbol, &self.user);
            if let Err(error) = self.log.unfollow_mark(&symbol).await {
                tracing::warn!(user = %self.user, %symbol, %error, "Mark unfollow failed.");
            }
        }
    }

    /// Reads the stored marks of the followed symbols and applies those the
    /// hub missed (after a resync or an overflow).
    async fn refresh_marks(&mut self) {
        let Some(valuation) = self.valuation.as_ref() else { return };
        let symbols: Vec<Symbol> = valuation.followed.iter().cloned().collect();
        self.apply_stored_marks(&symbols).await;
    }

    /// Applies the stored marks of `symbols` (older ones change nothing).
    async fn apply_stored_marks(&mut self, symbols: &[Symbol]) {
        if symbols.is_empty() {
            return;
        }
        match self.log.marks(symbols).await {
            Ok(marks) => {
                for mark in marks.iter().flatten() {
                    self.on_mark(mark);
                }
            }
            Err(error) => tracing::warn!(user = %self.user, %error, "Stored marks unread."),
        }
    }

    /// Reads a snapshot to start the book from.
    async fn load_book(&mut self) {
        match self.log.snapshot(&self.user).await {
            Ok(mut snapshot) => self.value(&mut snapshot).await,
            Err(error) => tracing::warn!(user = %self.user, %error, "Snapshot for the book failed."),
        }
    }

    /// Values `snapshot` at the latest marks (following its symbols first,
    /// so no newer mark falls in between) and, unless the hub's book is
    /// newer, makes it the book. A snapshot without positions starts no book.
    async fn value(&mut self, snapshot: &mut Snapshot) {
        if self.valuation.is_none() && snapshot.positions.is_empty() {
            return;
        }
        let valuation = self.valuation.get_or_insert_with(Box::default);
        let valued = if snapshot.seq >= valuation.seq {
            valuation.book = Book::of_snapshot(snapshot);
            valuation.seq = snapshot.seq;
            // The book is valued at the stored marks just below.
            let _ = self.follow_held().await;
            match self.valuation.as_mut() {
                Some(valuation) => value_at_marks(&*self.log, &mut valuation.book).await.map(|()| {
                    valuation.book.write_to(snapshot);
                }),
                None => Ok(()),
            }
        } else {
            value_snapshot(&*self.log, snapshot).await
        };
        if let Err(error) = valued {
            tracing::warn!(user = %self.user, %error, "Marks unavailable; snapshot at its own prices.");
        }
    }

    /// Sends a throttle output to every connection that wants it.
    fn send_output(&mut self, output: Output) {
        let (seq, data, events, newest, derived, bases) = match output {
            Output::Single { ref stored, derived, .. } => {
                let seq = stored.seq;
                let Some(forms) = self.forms(output) else { return };
                let sent = self.fan_out_frames(seq, derived, |conn| forms.for_conn(conn).map(Outbound::Text));
                self.stats.delivered(forms.kind, sent, Some(forms.at.unix_millis()));
                return;
            }
            Output::Batch { seq, data, events, newest, derived, bases } => (seq, data, events, newest, derived, bases),
        };
        let mut keys: Vec<Key> = Vec::new();
        if bases.is_some() {
            keys.extend(data.positions.iter().map(|p| Key::Position(p.symbol.clone())));
            if data.account.is_some() {
                keys.push(Key::Account);
            }
        }
        // Encoded once per distinct channel set and form (most users
        // have one connection).
        let mut serialized: Vec<(Channels, bool, Option<Utf8Bytes>)> = Vec::new();
        let user = self.user.clone();
        let sent = self.fan_out_frames(seq, derived, |conn| {
            let delta = bases.is_some() && conn.takes_delta(&keys);
            let channels = conn.channels;
            conn.holds(&keys);
            if let Some((_, _, text)) = serialized.iter().find(|(c, d, _)| *c == channels && *d == delta) {
                return text.clone().map(Outbound::Text);
            }
            let part = data.filtered(|c| channels.contains(c));
            let text = match (&bases, delta) {
                _ if part.is_empty() => None,
                (Some(bases), true) => delta_batch_text(&user, seq, part, bases),
                _ => batch_text(&user, seq, part),
            };
            serialized.push((channels, delta, text.clone()));
            text.map(Outbound::Text)
        });
        if sent > 0 {
            self.stats.batch(events);
        }
        self.stats.delivered("batch", sent, newest.map(|t| t.unix_millis()));
    }

    /// Gives each connection whose floor is below `seq` (not above it, for
    /// `derived` values: they are newer than any snapshot at that seq)
    /// whatever `frames_for` makes for it; drops connections whose queue is
    /// full. Returns how many connections it was queued to.
    fn fan_out_frames(
        &mut self,
        seq: u64,
        derived: bool,
        mut frames_for: impl FnMut(&mut Conn) -> Option<Outbound>,
    ) -> u64 {
        let mut sent = 0;
        let stats = &self.stats;
        self.conns.retain_mut(|conn| {
            if seq < conn.floor || (seq == conn.floor && !derived) {
                return true;
            }
            let Some(frames) = frames_for(conn) else { return true };
            let kept = queue_frames(conn, frames);
            if kept {
                sent += 1;
            } else {
                stats.dropped("slow_consumer");
            }
            kept
        });
        sent
    }

    /// Queues `text` to one connection, dropping the connection when it
    /// cannot take it.
    fn send_text(&mut self, conn: u64, text: Utf8Bytes) {
        self.conns.retain(|c| c.id != conn || queue(c, text.clone()));
    }

    /// Lets go of a connection, its socket to be closed with `close` once
    /// what was queued before is written. Nothing more goes to it (a
    /// `subscribed` that would follow finds it gone).
    fn close(&mut self, conn: u64, close: Close) {
        if let Some(index) = self.conns.iter().position(|c| c.id == conn) {
            let c = self.conns.remove(index);
            // A full queue closes the socket anyway (as too slow).
            let _ = c.tx.try_send(Outbound::Close(close));
            self.update_deltas();
        }
    }

    fn send_to(&mut self, conn: u64, message: &ServerMessage) {
        if let Some(text) = encode(message) {
            self.send_text(conn, text);
        }
    }

    /// Brings one connection to the present from `since`: the events it
    /// missed, coalesced into one batch, or a snapshot when the log cannot.
    async fn catch_up(&mut self, conn: u64, since: u64, epoch: Option<String>) {
        match self.read_missed(epoch.as_deref(), since).await {
            Missed::Events { epoch, last, events } => {
                self.stats.resumed(true);
                let first = self.last.is_none();
                self.init(last, epoch);
                if first {
                    // A first subscribe that resumes: the book starts from a
                    // snapshot, read after the events so it is as new.
                    self.load_book().await;
                }
                let mut data = throttle::coalesce(events.iter().filter_map(|e| e.decode().ok()));
                self.overlay_marks(&mut data, last);
                let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else { return };
                c.floor = c.floor.max(last);
                let part = data.filtered(|ch| c.channels.contains(ch));
                if part.is_empty() {
                    return;
                }
                if let Some(text) = batch_text(&self.user, last, part) {
                    self.send_text(conn, text);
                }
            }
            Missed::Snapshot => {
                self.stats.resumed(false);
                self.send_snapshot(conn).await;
            }
            Missed::Failed(error) => {
                tracing::warn!(user = %self.user, %error, "Catch-up read failed; closing the connection to resume later.");
                self.close(conn, Close::LogUnavailable);
            }
        }
    }

    /// Marks may have moved prices while the client was away, and they are
    /// not in the log: when the book is as new as the catch-up (`last`), the
    /// batch carries every open position and the account as the book values
    /// them now.
    fn overlay_marks(&self, data: &mut BatchData, last: u64) {
        let Some(valuation) = self.valuation.as_ref().filter(|v| v.seq >= last) else { return };
        let mut positions: std::collections::BTreeMap<Symbol, common::event::Position> =
            data.positions.drain(..).map(|p| (p.symbol.clone(), p)).collect();
        for position in valuation.book.positions() {
            positions.insert(position.symbol.clone(), position.clone());
        }
        data.positions = positions.into_values().collect();
        if let Some(account) = valuation.book.account() {
            data.account = Some(account.clone());
        }
    }

    /// Sends one connection the full state.
    async fn send_snapshot(&mut self, conn: u64) {
        match self.log.snapshot(&self.user).await {
            Ok(mut snapshot) => {
                self.value(&mut snapshot).await;
                self.init(snapshot.seq, snapshot.epoch.clone());
                let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else { return };
                c.floor = snapshot.seq;
                if let Some(text) = snapshot_text(&snapshot, c.channels) {
                    self.send_text(conn, text);
                }
            }
            Err(error) => {
                tracing::warn!(user = %self.user, %error, "Snapshot read failed; closing the connection to resume later.");
                self.close(conn, Close::LogUnavailable);
            }
        }
    }

    /// Every connection gets a new snapshot (history changed or too far behind).
    async fn resnapshot_all(&mut self) {
        self.stats.repair("snapshot");
        match self.log.snapshot(&self.user).await {
            Ok(mut snapshot) => {
                self.value(&mut snapshot).await;
                self.last = Some(snapshot.seq);
                self.epoch = snapshot.epoch.clone();
                self.throttle().reset(snapshot.seq, snapshot.positions.iter().cloned(), snapshot.account.clone());
                let mut texts: HashMap<Channels, Option<Utf8Bytes>> = HashMap::new();
                self.conns.retain_mut(|c| {
                    c.floor = snapshot.seq;
                    c.full = None;
                    let text = texts.entry(c.channels).or_insert_with(|| snapshot_text(&snapshot, c.channels));
                    text.as_ref().is_none_or(|text| queue(c, text.clone()))
                });
            }
            Err(error) => tracing::warn!(user = %self.user, %error, "Re-snapshot failed; retrying on the next notice."),
        }
    }

    /// Starts seq tracking at the first subscribe.
    fn init(&mut self, seq: u64, epoch: Option<String>) {
        if self.last.is_none() {
            self.last = Some(seq);
            self.epoch = epoch;
        }
    }
}

/// Queues a text for a connection; `false` when it must be dropped (queue
/// full: too slow; or closed: gone). Dropping the sender closes the socket.
fn queue(conn: &Conn, text: Utf8Bytes) -> bool {
    queue_frames(conn, Outbound::Text(text))
}

fn queue_frames(conn: &Conn, frames: Outbound) -> bool {
    match conn.tx.try_send(frames) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::info!(conn = conn.id, "Send queue full; closing slow connection.");
            false
        }
        Err(TrySendError::Closed(_)) => false,
    }
}

/// What was missed after a seq, as [`Hub::read_missed`] found it.
enum Missed {
    /// Every event after the seq, up to `last` (the head when it was read).
    Events { epoch: Option<String>, last: u64, events: Vec<StoredEvent> },
    /// The log cannot give them (trimmed, another epoch, or too many to
    /// page through): a snapshot is cheaper.
    Snapshot,
    /// The read failed.
    Failed(LogError),
}

/// A server message as a text frame; `None` (logged) if it does not
/// serialize, so a failure never goes out as an empty frame.
pub(crate) fn encode(message: &ServerMessage) -> Option<Utf8Bytes> {
    encode_json(message, message.type_name())
}

/// Most messages fit: no regrowth while serializing.
const ENCODE_CAPACITY: usize = 512;

fn encode_json<T: serde::Serialize>(message: &T, kind: &str) -> Option<Utf8Bytes> {
    let mut json = Vec::with_capacity(ENCODE_CAPACITY);
    let encoded = serde_json::to_writer(&mut json, message)
        .map_err(|e| e.to_string())
        .and_then(|()| String::from_utf8(json).map_err(|e| e.to_string()));
    match encoded {
        Ok(json) => Some(Utf8Bytes::from(json)),
        Err(error) => {
            tracing::error!(%error, kind, "Message does not serialize; not sent.");
            None
        }
    }
}

fn batch_text(user: &UserId, seq: u64, data: BatchData) -> Option<Utf8Bytes> {
    encode(&ServerMessage::Batch(Envelope::new(user.clone(), Timestamp::now(), data).with_seq(seq)))
}

/// An update as a delta over its base; `None` when it has none, or only a
/// full object can say it (docs/protocol.md, "Field deltas").
fn delta_text(user: &UserId, event: &Event, seq: u64, bases: &Bases) -> Option<Utf8Bytes> {
    let message = match event {
        Event::PositionUpdate(e) => {
            let delta = PositionDelta::between(bases.position(&e.data.symbol)?, &e.data)?;
            DeltaMessage::PositionUpdate(Partial::new(user.clone(), e.timestamp, seq, delta))
        }
        Event::AccountUpdate(e) => {
            let delta = AccountDelta::between(bases.account.as_ref()?, &e.data);
            DeltaMessage::AccountUpdate(Partial::new(user.clone(), e.timestamp, seq, delta))
        }
        Event::OrderUpdate(_) | Event::TradeExecuted(_) => return None,
    };
    encode_json(&message, message.type_name())
}

/// A batch whose positions and account are deltas over their bases (full
/// where they have none).
fn delta_batch_text(user: &UserId, seq: u64, data: BatchData, bases: &Bases) -> Option<Utf8Bytes> {
    let positions = data
        .positions
        .iter()
        .map(|p| {
            bases
                .position(&p.symbol)
                .and_then(|base| PositionDelta::between(base, p))
                .unwrap_or_else(|| PositionDelta::full(p))
        })
        .collect();
    let account = data.account.as_ref().map(|account| match &bases.account {
        Some(base) => AccountDelta::between(base, account),
        None => AccountDelta::full(account),
    });
    let delta = DeltaBatchData { positions, orders: data.orders, account, trades: data.trades };
    let message = DeltaMessage::Batch(Partial::new(user.clone(), Timestamp::now(), seq, delta));
    encode_json(&message, "batch")
}

fn snapshot_text(snapshot: &Snapshot, channels: Channels) -> Option<Utf8Bytes> {
    let data = SnapshotData {
        positions: if channels.contains(Channel::Positions) { snapshot.positions.clone() } else { Vec::new() },
        orders: if channels.contains(Channel::Orders) { snapshot.orders.clone() } else { Vec::new() },
        account: snapshot.account.clone().filter(|_| channels.contains(Channel::Account)),
        // The log keeps trades newest first; the protocol sends them oldest first.
        trades: if channels.contains(Channel::Trades) {
            snapshot.trades.iter().rev().cloned().collect()
        } else {
            Vec::new()
        },
    };
    encode(&ServerMessage::Snapshot {
        seq: snapshot.seq,
        epoch: snapshot.epoch.clone(),
        timestamp: Timestamp::now(),
        data,
    })
}

/// Resolves when `timer` expires; never without one.
async fn expired(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connected user keeps a hub task (BRIEF §7: 1,544 bytes before
    /// `docs/benchmarks.md` "Memory per connection", 472 after). If this
    /// fails, look for work awaited inline in `run` (box it).
    #[test]
    fn a_hub_future_stays_small() {
        fn future_size<'a, F: std::future::Future>(_: fn(&'a mut Hub, &'a mut queue::Receiver<Command>) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = future_size(Hub::run) + std::mem::size_of::<Hub>();
        assert!(size <= 640, "the hub task grew to {size} bytes");
    }
}
