//! Locking a std `Mutex` whose last holder panicked.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, even when poisoned. Every critical section in this
/// workspace is a single insert, update, removal or read, so a panic
/// elsewhere never leaves the data half-written; going on serves every later
/// caller, where honouring the poison would fail them all.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
