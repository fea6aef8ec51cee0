//! A futex lock whose all-zero state is "unlocked", so the structures that
//! embed it (a worker, a wait queue) can be static C objects
//! (`DEFINE_KTHREAD_WORKER`, `DECLARE_WAIT_QUEUE_HEAD`) with no constructor.

use crate::sync::{AtomicU32, Ordering};
use crate::sys::futex;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and someone may sleep on it: unlock must wake.
const CONTENDED: u32 = 2;

/// The kernel's `raw_spinlock_t` of a worker or a wait queue, sleeping instead of spinning.
#[repr(transparent)]
#[derive(Debug, Default)]
pub(crate) struct RawLock(AtomicU32);

impl RawLock {
    crate::sync::loom_const_fn! {
        pub(crate) fn new() -> RawLock {
            RawLock(AtomicU32::new(UNLOCKED))
        }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        // Acquire pairs with the Release in `unlock`.
        if self
            .0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        // Drepper's "mutex3": once contended, every acquirer marks CONTENDED.
        while self.0.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex::wait(&self.0, CONTENDED, None);
        }
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        if self.0.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex::wake(&self.0, 1);
        }
    }
}
