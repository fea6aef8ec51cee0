//! Wakers parked on an address: the async twin of the futex's waiter hash
//! (feature `async`).
//!
//! A [`Completion`](crate::Completion) is one `u32` that C embeds, so it has
//! no room for a waiter list; a blocking waiter sleeps in the kernel's
//! futex hash, keyed by the word's address. An async waiter has no thread
//! to put to sleep: its [`Waker`] is parked here instead, in a table keyed
//! the same way, and the completer wakes every waker of its key after it
//! published the completion.
//!
//! # Protocol
//!
//! A waiter's [`Parked`] names its key and, once parked, its entry (a
//! unique id). [`Parked::park`] adds the entry, or refreshes the waker of
//! the entry it still has (so a poll allocates nothing once the bucket has
//! room, and a waker that would wake the same task is not even cloned).
//! [`wake_all`] removes every entry of its key and wakes it, under the
//! bucket's lock; [`Parked::unpark`] (and the drop) removes the waiter's own
//! entry under the same lock. So a wake and an unpark are ordered: once
//! `unpark` has returned, no wake of that entry is running or will run (no
//! wake after drop), and a wake that came first made `unpark` find nothing
//! (which it reports, so the waiter knows it was woken).
//!
//! The waiter's side of "no lost wake-up" is its caller's: park first, then
//! publish that an async waiter exists (a bit in the completion word, by an
//! RMW with `Release`), then look at the condition once more. A completer's
//! RMW either comes later in the word's modification order, sees the bit
//! and calls [`wake_all`] (its `Acquire` makes the parked entry visible),
//! or comes earlier, and then the waiter's second look sees the completion.
//!
//! Wakers are woken under the bucket lock, as the kernel's `__wake_up`
//! calls wake functions under the wait-queue lock. A waker's `wake` must
//! therefore not poll or drop a future of this crate on the same thread;
//! executors only schedule the task there.
//!
//! Keys may be reused (a completion freed, another allocated at its
//! address): a stale entry then gets a spurious wake, which every future
//! tolerates, and never a lost one, since entries are removed only by a wake
//! or by their own `Parked`.

use crate::sync::{lock, Ordering, StaticAtomicU64};
use std::task::Waker;

/// Buckets of the table; keys are spread by address.
#[cfg(not(kthread_loom))]
const BUCKETS: usize = 64;
/// One bucket under loom: the models care about the protocol, not the spread.
#[cfg(kthread_loom)]
const BUCKETS: usize = 1;

struct Entry {
    key: usize,
    id: u64,
    waker: Waker,
}

/// A bucket: `std`'s mutex (annotated under valgrind) in a `static`; loom's,
/// made fresh for every execution of a model, under loom.
#[cfg(not(kthread_loom))]
type Bucket = crate::sync::StaticMutex<Vec<Entry>>;
#[cfg(kthread_loom)]
type Bucket = crate::sync::Mutex<Vec<Entry>>;

#[cfg(not(kthread_loom))]
static TABLE: [Bucket; BUCKETS] = [const { Bucket::new(Vec::new()) }; BUCKETS];

#[cfg(kthread_loom)]
loom::lazy_static! {
    static ref TABLE: [Bucket; BUCKETS] = [Bucket::new(Vec::new())];
}

/// Ids of entries; never 0 (a [`Parked`] with id 0 has no entry).
static NEXT_ID: StaticAtomicU64 = StaticAtomicU64::new(1);

fn bucket(key: usize) -> &'static Bucket {
    // Completions are at least 4-byte aligned and often in arrays of
    // structs: mix the bits above the alignment.
    let h = (key >> 2) ^ (key >> 8) ^ (key >> 14);
    &TABLE[h % BUCKETS]
}

/// An async waiter's place in the table: its key and, while parked, its entry.
#[derive(Debug)]
pub(crate) struct Parked {
    key: usize,
    id: u64,
}

impl Parked {
    /// A waiter on `key` (the address of the word it waits on), not parked yet.
    pub(crate) const fn new(key: usize) -> Parked {
        Parked { key, id: 0 }
    }

    /// Parks `waker` under the key, or refreshes the waker of this
    /// waiter's entry if a wake has not removed it yet.
    pub(crate) fn park(&mut self, waker: &Waker) {
        let mut b = lock(bucket(self.key));
        if self.id != 0 {
            if let Some(e) = b.iter_mut().find(|e| e.id == self.id) {
                if !e.waker.will_wake(waker) {
                    e.waker = waker.clone();
                }
                return;
            }
        }
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        b.push(Entry {
            key: self.key,
            id: self.id,
            waker: waker.clone(),
        });
    }

    /// Removes this waiter's entry; whether it was still parked (`false`:
    /// never parked, or a wake took it). Once this returns, no wake of the
    /// entry is running or will run.
    pub(crate) fn unpark(&mut self) -> bool {
        if self.id == 0 {
            return false;
        }
        let id = std::mem::replace(&mut self.id, 0);
        let mut b = lock(bucket(self.key));
        match b.iter().position(|e| e.id == id) {
            Some(i) => {
                b.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.unpark();
    }
}

/// Wakes (and removes) every waker parked under `key`; returns how many.
pub(crate) fn wake_all(key: usize) -> usize {
    let mut b = lock(bucket(key));
    let mut woken = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].key == key {
            b.swap_remove(i).waker.wake();
            woken += 1;
        } else {
            i += 1;
        }
    }
    woken
}

#[cfg(all(test, not(kthread_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_wake_reaches_every_waiter_of_its_key_once_and_no_other() {
        let (a, wa) = counting();
        let (b, wb) = counting();
        let (other, wo) = counting();
        let key = &a as *const _ as usize;
        let (mut pa, mut pb) = (Parked::new(key), Parked::new(key));
        let mut po = Parked::new(key + 4);
        pa.park(&wa);
        pa.park(&wa); // a refresh, not a second entry
        pb.park(&wb);
        po.park(&wo);
        assert_eq!(wake_all(key), 2);
        assert_eq!(wake_all(key), 0);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert_eq!(other.0.load(Ordering::SeqCst), 0);
        // Woken: the entries are gone, and unpark says so.
        assert!(!pa.unpark());
        assert!(po.unpark());
        assert_eq!(wake_all(key + 4), 0);
    }

    #[test]
    fn a_refresh_replaces_the_waker_and_a_dropped_waiter_is_never_woken() {
        let (old, w_old) = counting();
        let (new, w_new) = counting();
        let key = &old as *const _ as usize;
        let mut p = Parked::new(key);
        p.park(&w_old);
        p.park(&w_new);
        assert_eq!(wake_all(key), 1);
        assert_eq!(old.0.load(Ordering::SeqCst), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
        p.park(&w_new);
        drop(p);
        assert_eq!(wake_all(key), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
    }
}
