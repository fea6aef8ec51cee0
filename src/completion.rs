//! `Completion`: the one-shot handshake used by creation, stop, park and flush.
//!
//! Mirrors `struct completion` (`init_completion`, `complete`,
//! `complete_all`, `wait_for_completion`, `reinit_completion`).
//!
//! # The word
//!
//! One `u32`, so the C ABI can embed it and a futex can sleep on it:
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 0..30 | `done`: completions not yet consumed; `DONE_ALL` after `complete_all` |
//! | 30    | `ASYNC`: an async waiter parked its waker on the word's address (feature `async`); `complete` must wake the parked wakers |
//! | 31    | `WAITERS`: someone sleeps (or slept) on the word; `complete` must issue a futex wake |
//!
//! `complete` wakes after its release, so the `futex_wake` can name a
//! completion whose waiter has already returned (a completion on the
//! waiter's stack). That is the same pattern as `std`'s futex mutex unlock
//! (swap, then wake): a private `FUTEX_WAKE` only hashes the address and
//! touches no memory, and at worst wakes whatever waits there next, which
//! every futex waiter tolerates. Waiting for the completer instead (the
//! kernel holds its wait-queue lock across the wake) costs every
//! hand-off an extra switch when both threads share a CPU.
//!
//! `WAITERS` is sticky until [`Completion::reinit`]: clearing it safely would
//! need a waiter count, and a spare wake costs less than that bookkeeping on
//! the handshakes this type serves (one waiter, one completer). `ASYNC` is
//! sticky the same way.
//!
//! # Async waiters (feature `async`)
//!
//! [`Completion::wait_async`] parks the task's waker in the process-wide
//! table of parked wakers, keyed by the word's address as the futex keys
//! its sleepers (the word has no room for a list, and C embeds it). A poll:
//! consume a completion if there is one; else park the waker (or refresh
//! it), set `ASYNC` by an RMW, and consume if that RMW found one. A
//! completer's RMW is either later than that one (it sees `ASYNC` and wakes
//! the parked wakers) or earlier (the poll's RMW sees its count): no lost
//! wake-up. `complete` wakes every parked async waiter (each consumes or
//! parks again), since a woken future may be dropped before it is polled;
//! `complete_all` wakes them all anyway.

use crate::sync::{AtomicU32, Ordering};
use crate::sys::futex::{self, Wake};
use crate::sys::time::Deadline;
use std::time::Duration;

const WAITERS: u32 = 1 << 31;
/// An async waiter parked its waker on this word (feature `async`).
#[cfg_attr(not(feature = "async"), allow(dead_code))]
const ASYNC: u32 = 1 << 30;
const DONE_ALL: u32 = ASYNC - 1;

/// A one-shot (or counting) handshake between threads; mirrors `struct completion`.
///
/// ```
/// use std::sync::Arc;
/// let done = Arc::new(kthread::Completion::new());
/// let d = done.clone();
/// let k = kthread::run("completer", move || d.complete())?;
/// done.wait();
/// k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct Completion {
    word: AtomicU32,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    crate::sync::loom_const_fn! {
        /// A completion that has not completed; mirrors `init_completion()`.
        ///
        /// ```
        /// let c = kthread::Completion::new();
        /// assert!(!c.is_done());
        /// ```
        pub fn new() -> Completion {
            Completion {
                word: AtomicU32::new(0),
            }
        }
    }

    /// Releases one waiter (or lets the next `wait` through); mirrors `complete()`.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete();
    /// c.wait(); // returns at once, consuming the completion
    /// assert!(!c.is_done());
    /// ```
    pub fn complete(&self) {
        // Release: everything before `complete` is visible to the waiter that
        // consumes it (pairs with the Acquire in `try_consume`). Acquire:
        // an async waiter whose `ASYNC` this reads has parked its waker.
        let prev = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
                if w & DONE_ALL >= DONE_ALL - 1 {
                    None
                } else {
                    Some(w + 1)
                }
            })
            .unwrap_or_else(|w| w);
        if prev & WAITERS != 0 {
            futex::wake(&self.word, 1);
        }
        #[cfg(feature = "async")]
        if prev & ASYNC != 0 {
            crate::wakers::wake_all(self.key());
        }
    }

    /// Releases every waiter, now and later, until `reinit`; mirrors `complete_all()`.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete_all();
    /// c.wait();
    /// c.wait();
    /// assert!(c.is_done());
    /// ```
    pub fn complete_all(&self) {
        let prev = self.word.fetch_or(DONE_ALL, Ordering::AcqRel);
        if prev & WAITERS != 0 {
            futex::wake(&self.word, i32::MAX);
        }
        #[cfg(feature = "async")]
        if prev & ASYNC != 0 {
            crate::wakers::wake_all(self.key());
        }
    }

    /// Whether a `wait` would return at once; mirrors `completion_done()`.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// assert!(!c.is_done());
    /// c.complete();
    /// assert!(c.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.word.load(Ordering::Acquire) & DONE_ALL != 0
    }

    /// Makes the completion usable again; mirrors `reinit_completion()`.
    ///
    /// Only valid while nobody waits on it.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete_all();
    /// c.reinit();
    /// assert!(!c.is_done());
    /// ```
    pub fn reinit(&self) {
        self.word.swap(0, Ordering::AcqRel);
    }

    /// Sleeps until completed; mirrors `wait_for_completion()`.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete();
    /// c.wait();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Sleeps until completed or `timeout` passes; returns whether it completed.
    ///
    /// Mirrors `wait_for_completion_timeout()` (which returns jiffies left;
    /// here a `bool`, since the caller can read a clock).
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = kthread::Completion::new();
    /// assert!(!c.wait_timeout(Duration::from_millis(1)));
    /// c.complete();
    /// assert!(c.wait_timeout(Duration::from_secs(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Deadline::after(timeout)))
    }

    /// Waits for a completion without blocking the thread: the future
    /// resolves once it has consumed one, as [`wait`](Self::wait) returns
    /// (feature `async`).
    ///
    /// Cancel-safe: a future dropped before it resolved has consumed
    /// nothing, so the completion stays for the next waiter, and its waker
    /// is never woken after the drop.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let done = Arc::new(kthread::Completion::new());
    /// let d = done.clone();
    /// let k = kthread::run("completer", move || d.complete())?;
    /// futures::executor::block_on(done.wait_async());
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn wait_async(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        WaitAsync {
            completion: self,
            parked: crate::wakers::Parked::new(self.key()),
        }
    }

    /// The key of this completion's parked wakers: the word's address.
    #[cfg(feature = "async")]
    pub(crate) fn key(&self) -> usize {
        &self.word as *const AtomicU32 as usize
    }

    /// One poll of an async wait: `Ready` once a completion was consumed;
    /// otherwise the waker is parked in `parked` (see the module docs).
    #[cfg(feature = "async")]
    pub(crate) fn poll_wait(
        &self,
        parked: &mut crate::wakers::Parked,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::task::Poll;
        loop {
            if self.try_consume().is_none() {
                parked.unpark();
                return Poll::Ready(());
            }
            parked.park(cx.waker());
            // Release: the parked waker is visible to a completer that
            // reads this bit (its RMW is Acquire).
            let w = self.word.fetch_or(ASYNC, Ordering::AcqRel);
            if w & DONE_ALL == 0 {
                return Poll::Pending;
            }
            // A completion came before our RMW: take it (or lose it to
            // another waiter and park again).
        }
    }

    fn try_consume(&self) -> Option<u32> {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            let done = w & DONE_ALL;
            if done == 0 {
                return Some(w);
            }
            if done == DONE_ALL {
                return None;
            }
            // Acquire pairs with the Release in `complete`.
            match self
                .word
                .compare_exchange_weak(w, w - 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return None,
                Err(cur) => w = cur,
            }
        }
    }

    pub(crate) fn wait_until(&self, deadline: Option<Deadline>) -> bool {
        self.wait_until_or(deadline, || false).unwrap_or(false)
    }

    /// As `wait_until`, giving up (`None`) when `interrupted()` holds
    /// before a sleep: after every wake, including a signal's `EINTR`.
    pub(crate) fn wait_until_or(
        &self,
        deadline: Option<Deadline>,
        interrupted: impl Fn() -> bool,
    ) -> Option<bool> {
        loop {
            let Some(mut w) = self.try_consume() else {
                return Some(true);
            };
            if interrupted() {
                return None;
            }
            if w & WAITERS == 0 {
                match self.word.compare_exchange(
                    w,
                    w | WAITERS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => w |= WAITERS,
                    Err(_) => continue,
                }
            }
            if futex::wait(&self.word, w, deadline) == Wake::TimedOut {
                // One last look: a completion racing the timeout still counts.
                return Some(self.try_consume().is_none());
            }
        }
    }
}

/// The future of [`Completion::wait_async`].
#[cfg(feature = "async")]
struct WaitAsync<'a> {
    completion: &'a Completion,
    parked: crate::wakers::Parked,
}

#[cfg(feature = "async")]
impl std::future::Future for WaitAsync<'_> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = &mut *self;
        this.completion.poll_wait(&mut this.parked, cx)
    }
}
