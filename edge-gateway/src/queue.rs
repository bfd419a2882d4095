//! A bounded many-to-one queue that costs next to nothing while empty: the
//! hub's command queue and each connection's send queue. There is one of
//! each per idle connection, so their empty size is part of the gateway's
//! memory per connection (BRIEF §7).
//!
//! `tokio::sync::mpsc` allocates a cache-padded channel header and a first
//! block of 32 slots up front: about 1.5 KiB for a send queue and 2.5 KiB
//! for a hub queue. This queue is one small allocation (about 150 bytes);
//! its buffer exists only while items wait, and is given back when drained.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use common::sync::lock;
use tokio::sync::Notify;

/// A queue of at most `capacity` items.
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { items: VecDeque::new(), capacity, senders: 1, receiver: true, overflowed: false }),
        readable: Notify::new(),
        writable: Notify::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver: an item arrived, or the last sender left.
    readable: Notify,
    /// Wakes senders waiting for room, or for the receiver's end.
    writable: Notify,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    senders: usize,
    receiver: bool,
    /// An item was refused by [`Sender::send_or_overflow`].
    overflowed: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// `capacity` items are waiting.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The sending half; clones share the queue.
#[derive(Debug)]
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or the receiver is gone.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if !state.receiver {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() >= state.capacity {
            return Err(TrySendError::Full(item));
        }
        state.items.push_back(item);
        drop(state);
        self.shared.readable.notify_one();
        Ok(())
    }

    /// Queues `item`, or when the queue is full drops it and marks the
    /// queue overflowed (see [`Receiver::take_overflow`]): for a producer
    /// that must never wait, whose losses the receiver can repair.
    pub(crate) fn send_or_overflow(&self, item: T) {
        if let Err(TrySendError::Full(_)) = self.try_send(item) {
            self.shared.lock().overflowed = true;
        }
    }

    /// Queues `item`, waiting for room; gives it back if the receiver is gone.
    pub(crate) async fn send(&self, mut item: T) -> Result<(), T> {
        loop {
            // Registered before the check, so room made in between wakes us.
            let mut room = pin!(self.shared.writable.notified());
            room.as_mut().enable();
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(back),
                Err(TrySendError::Full(back)) => item = back,
            }
            room.await;
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.shared.readable.notify_one();
        }
    }
}

/// The receiving half.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is
    /// drained. Cancel-safe: an item is only taken by a poll that returns it.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(item) = state.items.pop_front() {
                    if state.items.is_empty() {
                        // An idle queue holds no buffer.
                        state.items = VecDeque::new();
                    }
                    drop(state);
                    self.shared.writable.notify_one();
                    return Some(item);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            // A send between the check and here left a permit: no lost wakeup.
            self.shared.readable.notified().await;
        }
    }
}

impl<T> Receiver<T> {
    /// The next item if one is queued now, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let mut state = self.shared.lock();
        let item = state.items.pop_front()?;
        if state.items.is_empty() {
            state.items = VecDeque::new();
        }
        drop(state);
        self.shared.writable.notify_one();
        Some(item)
    }

    /// Whether [`Sender::send_or_overflow`] dropped an item since the last
    /// call. The queue was full then, so the receiver is not waiting: it
    /// checks after each item.
    pub(crate) fn take_overflow(&mut self) -> bool {
        std::mem::take(&mut self.shared.lock().overflowed)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver = false;
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
        self.shared.writable.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lets spawned tasks run up to their next wait (current-thread runtime).
    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn delivers_in_order_then_ends_when_senders_are_gone() {
        let (tx, mut rx) = bounded(4);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        tx2.send(2).await.unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn full_and_closed() {
        let (tx, mut rx) = bounded(1);
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        assert!(!rx.take_overflow());
        tx.send_or_overflow(2);
        assert!(rx.take_overflow());
        assert!(!rx.take_overflow());
        drop(rx);
        assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
        assert_eq!(tx.send(4).await, Err(4));
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_or_learns_the_receiver_left() {
        let (tx, mut rx) = bounded(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await }
        });
        settle().await;
        assert!(!waiting.is_finished());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));

        tx.try_send(3).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(4).await }
        });
        settle().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(4));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_on_the_last_sender_leaving() {
        let (tx, mut rx) = bounded::<u32>(2);
        let reader = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        settle().await;
        tx.try_send(7).unwrap();
        settle().await;
        drop(tx);
        assert_eq!(reader.await.unwrap(), (Some(7), None));
    }
}
