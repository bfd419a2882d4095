//! The one conformance suite every [`EventLog`] backend must pass
//! (feature `conformance`). A backend's test file implements [`Fixture`]
//! and expands [`conformance_suite!`](crate::conformance_suite), which makes
//! one `#[tokio::test]` per case.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use common::event::{Event, Mark, OrderStatus, Symbol, UserId};
pub use common::fixtures::{account, dec, order, position, trade, ts, user};
use common::protocol::SNAPSHOT_TRADES;

use crate::error::LogError;
use crate::index::IngestIndex;
use crate::log::{EventLog, LogSettings, NewEvent, Notice, Published, ReadAfter, StoredEvent};

/// A fresh backend for one case.
#[async_trait]
pub trait Fixture: Send + Sync + Sized + 'static {
    /// Builds an empty log with these settings.
    async fn new(settings: LogSettings) -> Self;
    /// The log under test.
    fn log(&self) -> Arc<dyn EventLog>;
    /// The same backend's ingest index.
    fn index(&self) -> Arc<dyn IngestIndex>;
    /// Deletes everything the backend holds for `user` (data loss).
    async fn lose_history(&self, user: &UserId);
}

/// Expands to one `#[tokio::test]` per conformance case for `$fixture`.
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:ty) => {
        $crate::conformance_suite!(@cases $fixture;
            publish_assigns_consecutive_seqs,
            concurrent_publishers_get_gapless_seqs_in_stream_order,
            concurrent_duplicates_publish_once,
            retried_publish_is_a_no_op,
            trimmed_history_reads_too_old,
            lost_history_starts_a_new_epoch,
            read_after_pages_and_bounds,
            snapshot_holds_the_latest_state,
            snapshot_matches_its_seq_under_concurrent_publishing,
            followers_are_notified_of_their_users_only,
            invalid_events_change_nothing,
            holders_follow_set_holding,
            batched_reads_match_the_snapshot,
            accounts_map_to_their_users,
            claims_never_move_an_account,
            marks_keep_the_newest_per_symbol,
            mark_followers_get_new_marks_of_their_symbols_only,
        );
    };
    (@cases $fixture:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case::<$fixture>().await;
            }
        )*
    };
}

async fn publish(log: &dyn EventLog, event: Event, dedupe_id: &str) -> Published {
    log.publish(&NewEvent::new(event, dedupe_id)).await.expect("publish")
}

/// Reads every event after `after`, page by page.
async fn read_all(log: &dyn EventLog, user_id: &UserId, after: u64) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    let mut last = after;
    loop {
        match log.read_after(user_id, None, last, 1_000).await.expect("read_after") {
            ReadAfter::Events { events: page, head, .. } => {
                let Some(tail) = page.last() else { return events };
                last = tail.seq;
                events.extend(page);
                if last >= head {
                    return events;
                }
            }
            other => panic!("expected events after {last}, got {other:?}"),
        }
    }
}

fn settings() -> LogSettings {
    LogSettings { stream_maxlen: 10_000, dedupe_ttl: Duration::from_secs(600) }
}

/// Seqs start at 1 and count up; the stored JSON carries the seq and
/// decodes to the published event.
pub async fn publish_assigns_consecutive_seqs<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-seq");
    let events = [position(&u, "AAPL", 100, 17_550), order(&u, "o-1", OrderStatus::New), account(&u, 1)];
    for (i, event) in events.iter().enumerate() {
        let published = publish(&*log, event.clone(), &format!("e-{i}")).await;
        assert!(matches!(published, Published::New { seq, .. } if seq == i as u64 + 1), "{published:?}");
    }
    let stored = read_all(&*log, &u, 0).await;
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    for (stored, original) in stored.iter().zip(events) {
        let mut expected = original;
        expected.set_seq(Some(stored.seq));
        assert_eq!(stored.decode().expect("decode"), expected);
        assert_eq!(stored.json, serde_json::to_string(&expected).expect("serialize").into_bytes());
    }
}

/// 8 concurrent publishers × 1,000 events for one user: seqs exactly
/// 1..=8000, and the stream holds them in seq order.
pub async fn concurrent_publishers_get_gapless_seqs_in_stream_order<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-concurrent");
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let log = log.clone();
            let u = u.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(1_000);
                for i in 0..1_000 {
                    let event = position(&u, &format!("S{}", i % 10), 1 + i, 10_000 + i);
                    seqs.push(publish(&*log, event, &format!("t{task}-{i}")).await.seq());
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("publisher task");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one publisher's seqs must rise");
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=8_000).collect::<Vec<u64>>());
    let stored = read_all(&*log, &u, 0).await;
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=8_000).collect::<Vec<u64>>());
    assert!(stored.iter().all(|e| e.decode().expect("decode").seq() == Some(e.seq)));
}

/// The same dedupe id published 50 times at once: one event.
pub async fn concurrent_duplicates_publish_once<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-dup");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let log = log.clone();
            let event = trade(&u, "exec-1");
            tokio::spawn(async move { publish(&*log, event, "exec-1").await })
        })
        .collect();
    let mut new = 0;
    let mut seqs = BTreeSet::new();
    for task in tasks {
        let published = task.await.expect("publisher task");
        new += usize::from(matches!(published, Published::New { .. }));
        seqs.insert(published.seq());
    }
    assert_eq!(new, 1);
    assert_eq!(seqs, BTreeSet::from([1]));
    assert_eq!(read_all(&*log, &u, 0).await.len(), 1);
    assert_eq!(log.snapshot(&u).await.expect("snapshot").trades.len(), 1);
}

/// A retry after success answers with the first seq and changes nothing.
pub async fn retried_publish_is_a_no_op<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-retry");
    let first = publish(&*log, account(&u, 100), "acct-1").await;
    publish(&*log, account(&u, 200), "acct-2").await;
    let again = publish(&*log, account(&u, 100), "acct-1").await;
    assert_eq!(again, Published::Duplicate { seq: first.seq(), epoch: epoch_of(&first) });
    let snapshot = log.snapshot(&u).await.expect("snapshot");
    assert_eq!(snapshot.seq, 2);
    assert_eq!(snapshot.account.expect("account").cash, dec(200));
}

fn epoch_of(published: &Published) -> String {
    match published {
        Published::New { epoch, .. } | Published::Duplicate { epoch, .. } => epoch.clone(),
    }
}

/// Reading after a seq that `MAXLEN` trimmed away is "too old", not a
/// silently shortened answer.
pub async fn trimmed_history_reads_too_old<F: Fixture>() {
    let fixture = F::new(LogSettings { stream_maxlen: 100, ..settings() }).await;
    let log = fixture.log();
    let u = user("conf-trim");
    let events: Vec<_> = (0..1_000).map(|i| NewEvent::new(account(&u, i), format!("a-{i}"))).collect();
    for result in log.publish_many(&events).await {
        result.expect("publish");
    }
    match log.read_after(&u, None, 1, 10).await.expect("read_after") {
        ReadAfter::TooOld { head, .. } => assert_eq!(head, 1_000),
        other => panic!("expected TooOld, got {other:?}"),
    }
    let recent = read_all(&*log, &u, 990).await;
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), (991..=1_000).collect::<Vec<u64>>());
}

/// History lost (data loss in the backend): the next publish starts a new
/// epoch at seq 1, and a reader holding the old epoch is told.
pub async fn lost_history_starts_a_new_epoch<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-epoch");
    let mut old = None;
    for i in 0..5 {
        old = Some(publish(&*log, account(&u, i), &format!("a-{i}")).await);
    }
    let old_epoch = epoch_of(&old.expect("published"));
    fixture.lose_history(&u).await;
    let fresh = publish(&*log, account(&u, 9), "after-loss").await;
    assert_eq!(fresh.seq(), 1);
    assert_ne!(epoch_of(&fresh), old_epoch);
    for after in [0, 1, 5] {
        match log.read_after(&u, Some(&old_epoch), after, 10).await.expect("read_after") {
            ReadAfter::EpochChanged { epoch, head } => {
                assert_eq!(epoch, Some(epoch_of(&fresh)));
                assert_eq!(head, 1);
            }
            other => panic!("expected EpochChanged after {after}, got {other:?}"),
        }
    }
    let snapshot = log.snapshot(&u).await.expect("snapshot");
    assert_eq!((snapshot.seq, snapshot.epoch), (1, Some(epoch_of(&fresh))));
}

/// `limit` bounds a read; reading at the head is empty; beyond the head is
/// a changed epoch; a user without history reads empty.
pub async fn read_after_pages_and_bounds<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-pages");
    match log.read_after(&u, None, 0, 10).await.expect("read_after") {
        ReadAfter::Events { epoch: None, head: 0, events } => assert!(events.is_empty()),
        other => panic!("expected an empty history, got {other:?}"),
    }
    let mut epoch = String::new();
    for i in 0..25 {
        epoch = epoch_of(&publish(&*log, account(&u, i), &format!("a-{i}")).await);
    }
    match log.read_after(&u, Some(&epoch), 5, 10).await.expect("read_after") {
        ReadAfter::Events { head: 25, events, .. } => {
            assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (6..=15).collect::<Vec<u64>>())
        }
        other => panic!("expected a page, got {other:?}"),
    }
    match log.read_after(&u, Some(&epoch), 25, 10).await.expect("read_after") {
        ReadAfter::Events { head: 25, events, .. } => assert!(events.is_empty()),
        other => panic!("expected nothing new, got {other:?}"),
    }
    assert!(matches!(
        log.read_after(&u, Some(&epoch), 26, 10).await.expect("read_after"),
        ReadAfter::EpochChanged { head: 25, .. }
    ));
}

/// Positions by symbol (closed ones removed), open orders by id, the latest
/// account, the most recent trades newest first.
pub async fn snapshot_holds_the_latest_state<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-snapshot");
    // A user with no history already has an epoch, and keeps it: a client
    // can resume from its very first snapshot.
    let empty = log.snapshot(&u).await.expect("snapshot");
    let epoch = empty.epoch.clone().expect("an epoch before the first event");
    assert_eq!((empty.seq, empty.positions.len()), (0, 0));
    assert_eq!(log.snapshot(&u).await.expect("snapshot").epoch.as_deref(), Some(epoch.as_str()));
    let steps = [
        position(&u, "AAPL", 100, 17_550),
        position(&u, "MSFT", 10, 40_000),
        position(&u, "AAPL", 150, 17_600),
        position(&u, "MSFT", 0, 40_100),
        order(&u, "o-1", OrderStatus::New),
        order(&u, "o-2", OrderStatus::Accepted),
        order(&u, "o-1", OrderStatus::PartiallyFilled),
        order(&u, "o-2", OrderStatus::Filled),
        account(&u, 1),
        account(&u, 2),
    ];
    for (i, event) in steps.into_iter().enumerate() {
        publish(&*log, event, &format!("s-{i}")).await;
    }
    for i in 0..60 {
        publish(&*log, trade(&u, &format!("t-{i}")), &format!("t-{i}")).await;
    }
    let snapshot = log.snapshot(&u).await.expect("snapshot");
    assert_eq!((snapshot.seq, snapshot.epoch.as_deref()), (70, Some(epoch.as_str())));
    assert_eq!(snapshot.positions.len(), 1);
    assert_eq!((snapshot.positions[0].symbol.as_str(), snapshot.positions[0].quantity), ("AAPL", Decimal::from(150)));
    assert_eq!(snapshot.orders.len(), 1);
    assert_eq!(
        (snapshot.orders[0].order_id.as_str(), snapshot.orders[0].status),
        ("o-1", OrderStatus::PartiallyFilled)
    );
    assert_eq!(snapshot.account.expect("account").cash, dec(2));
    assert_eq!(snapshot.trades.len(), SNAPSHOT_TRADES);
    assert_eq!(snapshot.trades[0].trade_id, "t-59");
}

/// Under concurrent publishing a snapshot never shows state newer or older
/// than the seq it reports: event `n` sets cash to `n`, so cash == seq.
pub async fn snapshot_matches_its_seq_under_concurrent_publishing<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-consistent");
    let publisher = {
        let log = log.clone();
        let u = u.clone();
        tokio::spawn(async move {
            for n in 1..=500 {
                let published = publish(&*log, account(&u, n), &format!("a-{n}")).await;
                assert_eq!(published.seq(), n as u64);
            }
        })
    };
    let mut checked = 0;
    while !publisher.is_finished() && checked < 10_000 {
        let snapshot = log.snapshot(&u).await.expect("snapshot");
        if let Some(account) = snapshot.account {
            assert_eq!(account.cash, dec(snapshot.seq as i64), "snapshot at seq {}", snapshot.seq);
        } else {
            assert_eq!(snapshot.seq, 0);
        }
        checked += 1;
        tokio::task::yield_now().await;
    }
    publisher.await.expect("publisher task");
    assert!(checked > 0);
    assert_eq!(log.snapshot(&u).await.expect("snapshot").seq, 500);
}

/// Following a user delivers its events, with seq and epoch, and nobody
/// else's; unfollowing stops them.
pub async fn followers_are_notified_of_their_users_only<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let (followed, other) = (user("conf-followed"), user("conf-other"));
    let mut notices = log.notices();
    log.follow(&followed).await.expect("follow");
    publish(&*log, account(&other, 1), "o-1").await;
    let published = publish(&*log, account(&followed, 1), "f-1").await;
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("a notice in time");
    match notice.expect("notice") {
        Notice::Event { user, epoch, event } => {
            assert_eq!(user, followed);
            assert_eq!(epoch, epoch_of(&published));
            assert_eq!(event.seq, 1);
            assert!(matches!(event.decode().expect("decode"), Event::AccountUpdate(_)));
        }
        Notice::Resync | Notice::Mark(_) => panic!("unexpected resync or mark"),
    }
    log.unfollow(&followed).await.expect("unfollow");
    publish(&*log, account(&followed, 2), "f-2").await;
    log.follow(&other).await.expect("follow");
    publish(&*log, account(&other, 2), "o-2").await;
    // An unfollow takes effect in order with later (un)follows, not
    // necessarily before the very next publish: f-2 may still be in flight.
    // Once o-2 arrives (its follow came after the unfollow), nothing more of
    // the unfollowed user may come.
    loop {
        let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("a notice in time");
        match notice.expect("notice") {
            Notice::Event { user, event, .. } if user == other => {
                assert_eq!(event.seq, 2);
                break;
            }
            Notice::Event { user, event, .. } => assert_eq!((user, event.seq), (followed.clone(), 2), "in flight"),
            Notice::Resync | Notice::Mark(_) => panic!("unexpected resync or mark"),
        }
    }
    publish(&*log, account(&followed, 3), "f-3").await;
    publish(&*log, account(&other, 3), "o-3").await;
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("a notice in time");
    match notice.expect("notice") {
        Notice::Event { user, event, .. } => assert_eq!((user, event.seq), (other, 3)),
        Notice::Resync | Notice::Mark(_) => panic!("unexpected resync or mark"),
    }
}

/// A bad dedupe id is refused with a typed error and changes nothing.
pub async fn invalid_events_change_nothing<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let u = user("conf-invalid");
    publish(&*log, account(&u, 1), "ok").await;
    for bad in [String::new(), "x".repeat(crate::log::MAX_DEDUPE_ID_LEN + 1)] {
        let result = log.publish(&NewEvent::new(account(&u, 2), bad)).await;
        assert!(matches!(result, Err(LogError::InvalidEvent(_))), "{result:?}");
    }
    let batch = [NewEvent::new(account(&u, 3), ""), NewEvent::new(account(&u, 4), "fine")];
    let results = log.publish_many(&batch).await;
    assert!(matches!(results[0], Err(LogError::InvalidEvent(_))));
    assert_eq!(results[1].as_ref().expect("valid one publishes").seq(), 2);
    let snapshot = log.snapshot(&u).await.expect("snapshot");
    assert_eq!((snapshot.seq, snapshot.account.expect("account").cash), (2, dec(4)));
}

/// Holding is a set: adding twice holds once, removing twice is fine, and
/// symbols do not mix.
pub async fn holders_follow_set_holding<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let index = fixture.index();
    let (u1, u2, u3) = (user("conf-h1"), user("conf-h2"), user("conf-h3"));
    let (aapl, msft) = (Symbol::new("AAPL").expect("symbol"), Symbol::new("MSFT").expect("symbol"));
    let sorted = |mut users: Vec<UserId>| {
        users.sort();
        users
    };
    assert!(index.holders(&aapl).await.expect("holders").is_empty());
    for (u, symbol) in [(&u1, &aapl), (&u2, &aapl), (&u1, &aapl), (&u3, &msft)] {
        index.set_holding(u, symbol, true).await.expect("set_holding");
    }
    assert_eq!(sorted(index.holders(&aapl).await.expect("holders")), vec![u1.clone(), u2.clone()]);
    assert_eq!(index.holders(&msft).await.expect("holders"), vec![u3.clone()]);
    for _ in 0..2 {
        index.set_holding(&u1, &aapl, false).await.expect("set_holding");
    }
    index.set_holding(&u3, &aapl, false).await.expect("removing a non-holder is fine");
    assert_eq!(index.holders(&aapl).await.expect("holders"), vec![u2]);

    // More holders than one page or one pipeline.
    let many: Vec<UserId> = (0..12_345).map(|i| user(&format!("conf-many-{i}"))).collect();
    let adds = many.iter().map(|u| index.set_holding(u, &msft, true));
    for result in futures::future::join_all(adds).await {
        result.expect("set_holding");
    }
    let mut expected = many;
    expected.push(u3);
    assert_eq!(sorted(index.holders(&msft).await.expect("holders")), sorted(expected));
}

/// `positions` and `accounts` answer in request order with what the
/// snapshot holds, across more entries than one pipeline carries.
pub async fn batched_reads_match_the_snapshot<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let (log, index) = (fixture.log(), fixture.index());
    let users: Vec<UserId> = (0..6_000).map(|i| user(&format!("conf-read-{i}"))).collect();
    let mut events = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let i = i as i64;
        events.push(NewEvent::new(position(u, "AAPL", 1 + i, 17_550), format!("p-{i}")));
        if i % 3 == 0 {
            events.push(NewEvent::new(account(u, i), format!("a-{i}")));
        }
    }
    // The first user's MSFT position opens and closes: it reads as absent.
    events.push(NewEvent::new(position(&users[0], "MSFT", 5, 40_000), "m-open"));
    events.push(NewEvent::new(position(&users[0], "MSFT", 0, 40_000), "m-close"));
    for result in log.publish_many(&events).await {
        result.expect("publish");
    }

    let (aapl, msft) = (Symbol::new("AAPL").expect("symbol"), Symbol::new("MSFT").expect("symbol"));
    let mut wanted: Vec<(UserId, Symbol)> = users.iter().map(|u| (u.clone(), aapl.clone())).collect();
    wanted.push((users[0].clone(), msft));
    wanted.push((user("conf-read-nobody"), aapl));
    let positions = index.positions(&wanted).await.expect("positions");
    assert_eq!(positions.len(), wanted.len());
    for (i, position) in positions.iter().take(users.len()).enumerate() {
        let position = position.as_ref().expect("an open position");
        assert_eq!(position.quantity, Decimal::from(1 + i as i64), "user {i}");
    }
    assert_eq!(positions[users.len()], None, "a closed position reads as absent");
    assert_eq!(positions[users.len() + 1], None, "an unknown user has no position");
    let snapshot = log.snapshot(&users[42]).await.expect("snapshot");
    assert_eq!(positions[42].as_ref(), snapshot.positions.first());

    let accounts = index.accounts(&users).await.expect("accounts");
    assert_eq!(accounts.len(), users.len());
    for (i, account) in accounts.iter().enumerate() {
        match account {
            Some(account) => assert_eq!((i % 3, account.cash), (0, dec(i as i64))),
            None => assert_ne!(i % 3, 0, "user {i} has an account"),
        }
    }
    assert!(index.positions(&[]).await.expect("empty read").is_empty());
}

/// A linked account names its user; relinking replaces; unknown is `None`;
/// a bad account id is refused.
pub async fn accounts_map_to_their_users<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let index = fixture.index();
    let (u1, u2) = (user("conf-acct-1"), user("conf-acct-2"));
    assert_eq!(index.account_owner("acct-1").await.expect("owner"), None);
    index.link_account("acct-1", &u1).await.expect("link");
    index.link_account("acct-2", &u2).await.expect("link");
    assert_eq!(index.account_owner("acct-1").await.expect("owner"), Some(u1));
    index.link_account("acct-1", &u2).await.expect("relink");
    assert_eq!(index.account_owner("acct-1").await.expect("owner"), Some(u2.clone()));
    assert_eq!(index.account_owner("acct-2").await.expect("owner"), Some(u2.clone()));
    for bad in [String::new(), "x".repeat(super::index::MAX_ACCOUNT_ID_LEN + 1)] {
        assert!(matches!(index.link_account(&bad, &u2).await, Err(LogError::InvalidEvent(_))));
        assert!(matches!(index.claim_account(&bad, &u2).await, Err(LogError::InvalidEvent(_))));
        assert!(matches!(index.unlink_account(&bad, &u2).await, Err(LogError::InvalidEvent(_))));
    }
}

/// A claim links a free account, keeps the owner's, and never moves
/// another's; an unlink removes only the named user's link.
pub async fn claims_never_move_an_account<F: Fixture>() {
    use crate::index::Claim;
    let fixture = F::new(settings()).await;
    let index = fixture.index();
    let (u1, u2) = (user("conf-claim-1"), user("conf-claim-2"));
    assert_eq!(index.claim_account("claim-1", &u1).await.expect("claim"), Claim::Linked);
    assert_eq!(index.claim_account("claim-1", &u1).await.expect("again"), Claim::Unchanged);
    assert_eq!(index.claim_account("claim-1", &u2).await.expect("other"), Claim::Taken(u1.clone()));
    assert_eq!(index.account_owner("claim-1").await.expect("owner"), Some(u1.clone()));

    assert!(!index.unlink_account("claim-1", &u2).await.expect("not theirs"), "another user's link is kept");
    assert_eq!(index.account_owner("claim-1").await.expect("owner"), Some(u1.clone()));
    assert!(index.unlink_account("claim-1", &u1).await.expect("unlink"));
    assert_eq!(index.account_owner("claim-1").await.expect("owner"), None);
    assert!(!index.unlink_account("claim-1", &u1).await.expect("twice"), "nothing left to remove");
    assert_eq!(index.claim_account("claim-1", &u2).await.expect("free again"), Claim::Linked);
}

fn mark(symbol: &str, price: i64, at: &str) -> Mark {
    Mark { symbol: Symbol::new(symbol).expect("symbol"), price: dec(price), timestamp: at.parse().expect("timestamp") }
}

/// A mark is stored only when newer than its symbol's; an older or equal
/// one changes nothing. Reads give each symbol's latest, `None` for none.
pub async fn marks_keep_the_newest_per_symbol<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let first = [mark("CFA", 10, "2026-01-03T15:30:45.000Z"), mark("CFB", 20, "2026-01-03T15:30:45.000Z")];
    let stored: Vec<bool> = log.put_marks(&first).await.into_iter().map(|r| r.expect("put")).collect();
    assert_eq!(stored, [true, true]);
    let later = [
        mark("CFA", 11, "2026-01-03T15:30:45.000Z"),
        mark("CFA", 12, "2026-01-03T15:30:44.999Z"),
        mark("CFB", 21, "2026-01-03T15:30:45.001Z"),
    ];
    let stored: Vec<bool> = log.put_marks(&later).await.into_iter().map(|r| r.expect("put")).collect();
    assert_eq!(stored, [false, false, true], "equal and older change nothing");
    let symbols = [Symbol::new("CFA").unwrap(), Symbol::new("CFB").unwrap(), Symbol::new("CFC").unwrap()];
    let marks = log.marks(&symbols).await.expect("marks");
    assert_eq!(marks, [Some(first[0].clone()), Some(later[2].clone()), None]);
}

/// Following a symbol delivers its new marks and no other symbol's; a mark
/// that changed nothing notifies nobody; unfollowing stops them.
pub async fn mark_followers_get_new_marks_of_their_symbols_only<F: Fixture>() {
    let fixture = F::new(settings()).await;
    let log = fixture.log();
    let (followed, other) = (Symbol::new("CFF").unwrap(), Symbol::new("CFO").unwrap());
    let mut notices = log.notices();
    log.follow_mark(&followed).await.expect("follow");
    let marks = [
        mark("CFO", 1, "2026-01-03T15:30:45.000Z"),
        mark("CFF", 2, "2026-01-03T15:30:45.000Z"),
        mark("CFF", 3, "2026-01-03T15:30:44.000Z"),
        mark("CFF", 4, "2026-01-03T15:30:46.000Z"),
    ];
    for result in log.put_marks(&marks).await {
        result.expect("put");
    }
    for expected in [&marks[1], &marks[3]] {
        let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("a notice in time");
        match notice.expect("notice") {
            Notice::Mark(mark) => assert_eq!(&mark, expected),
            other => panic!("expected a mark of {followed}, got {other:?}"),
        }
    }
    log.unfollow_mark(&followed).await.expect("unfollow");
    log.follow_mark(&other).await.expect("follow");
    let next = [mark("CFF", 5, "2026-01-03T15:30:47.000Z"), mark("CFO", 6, "2026-01-03T15:30:47.000Z")];
    for result in log.put_marks(&next).await {
        result.expect("put");
    }
    // As for users: the unfollow takes effect in order with the follow
    // after it, so the unfollowed symbol's mark may still be in flight.
    loop {
        let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.expect("a notice in time");
        match notice.expect("notice") {
            Notice::Mark(mark) if mark == next[1] => break,
            Notice::Mark(mark) => assert_eq!(mark, next[0], "in flight"),
            other => panic!("expected a mark, got {other:?}"),
        }
    }
}
