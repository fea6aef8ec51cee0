//! The raw worker layer: caller-owned, pinned `RawWorker` / `RawWork`.
//!
//! This is the kernel's `struct kthread_worker` / `struct kthread_work`:
//! the list link lives inside the work item, so queueing allocates nothing.
//! The safe [`Worker`](super::Worker) / [`Work`](super::Work) and the C ABI
//! are two thin fronts over these functions. All-zero memory is a valid,
//! initialised worker and (with `func` set) work item, so C can define them
//! statically (`DEFINE_KTHREAD_WORKER`, `KTHREAD_WORK_INIT`).
//!
//! Files: `mod.rs` (the types and the work state word), `lock.rs` (the
//! futex lock), `list.rs` (the incoming stack, the FIFO list and the timer
//! list, reachable only through the lock guard `list::Locked`),
//! `claim.rs` (the `PENDING` claim, queue, delayed queue, `mod_delayed`),
//! `flush.rs` (flush sentinels, flush, cancel), `run.rs` (the worker loop
//! and its idle spin). The protocols and their proof sketches are in
//! `README.md` beside this file.
//!
//! # Structure
//!
//! * `incoming`: a lock-free LIFO stack of newly queued works (producers
//!   push with one CAS), or the `IDLE` marker while the worker sleeps. A
//!   push that replaces `IDLE` wakes the worker: a busy worker takes new
//!   items with no syscall.
//! * Under `lock`: the FIFO list (stack batches are reversed onto its
//!   tail, so queue order is kept), the timer list of delayed works sorted
//!   by deadline, `current` (the work being run) and `sleep_until`.
//!
//! # The work state word
//!
//! `state` = owner worker address | flag bits:
//!
//! | bit | set by | cleared by | meaning |
//! |---|---|---|---|
//! | `PENDING` | the claim in `queue*` (one CAS, so pending at most once) | the worker taking it, a cancel removing it (under the owner's lock) | queued or armed, not started |
//! | `CANCELING` | `cancel_sync`, under the owner's lock, with the `canceling` count | the last canceller, under the lock | queue attempts fail |
//! | `SENTINEL` | a flush sentinel's constructor | never | not counted in `executed` |
//! | owner bits | the claim (first queue, or a move of an idle item, holding the old owner's lock) | never (a move replaces them) | the worker it was last queued on |
//!
//! *Running* is `owner.current == work` (as in the kernel), so the worker
//! never touches a work after calling its function: the function may free
//! it. Where a pending work sits (`whence`: stack, list, timer list) is
//! known only under the lock; a claimed work not yet pushed is "in flight"
//! for a few instructions, and lock holders that need it placed retry (the
//! kernel's `try_to_grab_pending` `-EAGAIN` busy-retry).

mod claim;
mod flush;
mod list;
mod run;

pub use claim::{mod_delayed, queue, queue_delayed};
pub(crate) use claim::{mod_delayed_hooked, queue_delayed_hooked, queue_hooked, Claim, Hook};
#[cfg(all(feature = "async", kthread_loom))]
pub(crate) use flush::flush_work_async;
#[cfg(feature = "async")]
pub(crate) use flush::{
    cancel_end, cancel_locked_async, flush_locked_async, flush_worker_async, FlushWait,
};
pub(crate) use flush::{cancel_locked, flush_locked};
pub use flush::{cancel_sync, cancel_timers, flush_work, flush_worker};
pub(crate) use list::Locked;
pub use run::worker_fn;

use crate::lock::RawLock;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::task::{self, TaskInner};
use list::Guarded;
use std::ptr;

/// A work function: called on the worker thread with the work item.
pub type WorkFn = unsafe extern "C" fn(*mut RawWork);

const PENDING: usize = 1;
const CANCELING: usize = 2;
/// Marks a flush sentinel: not counted as an executed work item.
const SENTINEL: usize = 4;
const FLAG_MASK: usize = 63;

/// Worker flag: freeze between items (`KTW_FREEZABLE`).
pub const KTW_FREEZABLE: u32 = 1;
/// Private worker flag: the loop leaves at its next idle point (a worker
/// destroyed from its own thread, which cannot wait for itself).
const STOP_WHEN_IDLE: u32 = 1 << 31;

/// A work item; mirrors `struct kthread_work`.
///
/// Must not move while queued (pin it, or embed it in a heap or static object).
///
/// # Invariants
/// * `state` holds the owner's address and the bits of the module docs'
///   table; `PENDING` is set by exactly one successful claim at a time.
/// * While `PENDING` is set and the item has been pushed, it is linked on
///   exactly one of its owner's stack, list or timer list, and `whence`
///   says which once the owner's lock holder has drained the stack.
/// * The `Guarded` cells (`next`, `prev`, `canceling`, `whence`) are
///   touched only by the holder of the owner's lock, or by the claimer
///   between its claim and its push (`list::Claimed`).
#[repr(C)]
#[derive(Debug)]
pub struct RawWork {
    state: AtomicUsize,
    next: Guarded<*mut RawWork>,
    prev: Guarded<*mut RawWork>,
    func: Option<WorkFn>,
    /// Called (outside the lock) when the worker or a canceller is done with
    /// a queued instance: the safe layer drops the queue's reference here.
    release: Option<WorkFn>,
    canceling: Guarded<u32>,
    whence: Guarded<u32>,
}

/// A delayed work item; mirrors `struct kthread_delayed_work`.
///
/// # Invariants
/// As [`RawWork`]; `deadline` is a `Guarded` cell of the owner's lock.
#[repr(C)]
#[derive(Debug)]
pub struct RawDelayedWork {
    /// The work item; `&dwork.work` is what runs.
    pub work: RawWork,
    /// Expiry on `CLOCK_MONOTONIC`, in nanoseconds (under the worker lock).
    deadline: Guarded<u64>,
}

/// A worker; mirrors `struct kthread_worker`.
///
/// # Invariants
/// * Every node on `incoming`, the list and the timer list is a live,
///   claimed work whose owner is this worker.
/// * `task` is null or points at the live task of the one thread running
///   [`worker_fn`] on this worker; that thread clears it under the lock,
///   then waits until no producer is between reading it and waking it
///   (`wakers`), before it leaves the loop.
/// * The `Guarded` fields are touched only through `Locked`.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct RawWorker {
    /// Producers' line (`incoming` and the read-mostly `attached_in`), so
    /// their CASes do not steal the line of the worker's lock and list.
    incoming: ProducerLine,
    lock: RawLock,
    flags: AtomicU32,
    /// Producers waking the idle worker right now (`wake_idle` in `list.rs`): the
    /// thread waits for them to finish before it detaches, so a lock-free
    /// wake never touches a task that has gone.
    wakers: AtomicU32,
    task: AtomicPtr<TaskInner>,
    head: Guarded<*mut RawWork>,
    tail: Guarded<*mut RawWork>,
    timers: Guarded<*mut RawWork>,
    current: Guarded<*mut RawWork>,
    /// When the idle worker wakes by itself (ns; `u64::MAX` = never).
    sleep_until: Guarded<u64>,
    panics: AtomicU64,
    executed: AtomicU64,
}

/// The producers' cache line: `incoming`, which every queue CASes, and
/// `attached_in`, which every queue reads and only an attaching thread
/// writes. Nothing the worker thread writes often lives here, so queueing
/// does not steal the line of the worker's lock and list (a read of a field
/// on that line, once per queue, doubled the cost of a queue).
#[repr(C, align(64))]
#[derive(Debug)]
struct ProducerLine {
    incoming: AtomicPtr<RawWork>,
    /// One more than the process generation (`sys::fork`) of the thread
    /// that last attached, 0 if none ever did: another one means this is a
    /// `fork()` child's copy, whose thread does not exist.
    attached_in: AtomicU32,
}

impl std::ops::Deref for ProducerLine {
    type Target = AtomicPtr<RawWork>;
    fn deref(&self) -> &AtomicPtr<RawWork> {
        &self.incoming
    }
}

// SAFETY: the worker's shared fields are atomics, or `Guarded` cells that
// only the holder of `lock` touches (`Locked` is the only accessor); the raw
// pointers in them are owned by the protocol, not by any thread.
unsafe impl Send for RawWorker {}
// SAFETY: as for `Send`: every `&RawWorker` access is atomic or under `lock`.
unsafe impl Sync for RawWorker {}
// SAFETY: the cells are touched only under the owning worker's lock, or by
// the one thread that holds the PENDING claim before it publishes the work.
unsafe impl Send for RawWork {}
// SAFETY: as for `Send`.
unsafe impl Sync for RawWork {}
// SAFETY: as for RawWork; `deadline` is touched only under the worker lock.
unsafe impl Send for RawDelayedWork {}
// SAFETY: as for `Send`.
unsafe impl Sync for RawDelayedWork {}

fn owner_of(state: usize) -> *const RawWorker {
    (state & !FLAG_MASK) as *const RawWorker
}

impl RawWork {
    crate::sync::loom_const_fn! {
        /// A work item that will run `func`; mirrors `KTHREAD_WORK_INIT` / `kthread_init_work()`.
        ///
        /// ```
        /// use kthread::worker::raw::RawWork;
        /// unsafe extern "C" fn hello(_w: *mut RawWork) {}
        /// let w = RawWork::new(Some(hello));
        /// assert!(!w.is_pending());
        /// ```
        pub fn new(func: Option<WorkFn>) -> RawWork {
            Self::with_release(func, None)
        }
    }

    crate::sync::loom_const_fn! {
        pub(crate) fn with_release(func: Option<WorkFn>, release: Option<WorkFn>) -> RawWork {
            RawWork {
                state: AtomicUsize::new(0),
                next: Guarded::new(ptr::null_mut()),
                prev: Guarded::new(ptr::null_mut()),
                func,
                release,
                canceling: Guarded::new(0),
                whence: Guarded::new(list::WHERE_NONE),
            }
        }
    }

    /// Whether the item is queued or armed and has not started yet.
    ///
    /// ```
    /// let w = kthread::worker::raw::RawWork::new(None);
    /// assert!(!w.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) & PENDING != 0
    }

    fn as_mut_ptr(&self) -> *mut RawWork {
        self as *const RawWork as *mut RawWork
    }

    /// The worker this item was last queued on (null if never).
    pub(crate) fn owner(&self) -> *const RawWorker {
        owner_of(self.state.load(Ordering::Acquire))
    }

    /// Whether `worker` is the item's owner.
    fn owned_by(&self, worker: &RawWorker) -> bool {
        ptr::eq(self.owner(), worker)
    }
}

/// Drops the queue's reference of a queued instance the caller took off its
/// list (the safe layer's `release` hook; nothing for a C item). The item
/// may be freed by the call, so it is named by pointer, not by reference.
///
/// # Safety
/// `work` points at a live item whose queued instance the caller has just
/// taken off its list (so the caller owns that instance's reference).
unsafe fn release(work: *mut RawWork) {
    // SAFETY: live by the contract; the hook is read before it may free the item.
    if let Some(r) = unsafe { (*work).release } {
        // SAFETY: `release` was set by the safe layer for exactly this item,
        // and the caller hands over the queued instance's reference.
        unsafe { r(work) }
    }
}

impl RawDelayedWork {
    crate::sync::loom_const_fn! {
        /// A delayed work item that will run `func`; mirrors `kthread_init_delayed_work()`.
        ///
        /// ```
        /// use kthread::worker::raw::{RawDelayedWork, RawWork};
        /// unsafe extern "C" fn tick(_w: *mut RawWork) {}
        /// let d = RawDelayedWork::new(Some(tick));
        /// assert!(!d.work.is_pending());
        /// ```
        pub fn new(func: Option<WorkFn>) -> RawDelayedWork {
            Self::with_release(func, None)
        }
    }

    crate::sync::loom_const_fn! {
        pub(crate) fn with_release(
            func: Option<WorkFn>,
            release: Option<WorkFn>,
        ) -> RawDelayedWork {
            RawDelayedWork {
                work: RawWork::with_release(func, release),
                deadline: Guarded::new(0),
            }
        }
    }
}

impl Default for RawWorker {
    fn default() -> Self {
        Self::new(0)
    }
}

impl RawWorker {
    crate::sync::loom_const_fn! {
        /// An empty worker with no thread attached; mirrors `kthread_init_worker()`.
        ///
        /// `flags` may hold [`KTW_FREEZABLE`].
        ///
        /// ```
        /// let w = kthread::worker::raw::RawWorker::new(0);
        /// assert_eq!(w.executed(), 0);
        /// ```
        pub fn new(flags: u32) -> RawWorker {
            RawWorker {
                incoming: ProducerLine {
                    incoming: AtomicPtr::new(ptr::null_mut()),
                    attached_in: AtomicU32::new(0),
                },
                lock: RawLock::new(),
                flags: AtomicU32::new(flags),
                wakers: AtomicU32::new(0),
                task: AtomicPtr::new(ptr::null_mut()),
                head: Guarded::new(ptr::null_mut()),
                tail: Guarded::new(ptr::null_mut()),
                timers: Guarded::new(ptr::null_mut()),
                current: Guarded::new(ptr::null_mut()),
                sleep_until: Guarded::new(u64::MAX),
                panics: AtomicU64::new(0),
                executed: AtomicU64::new(0),
            }
        }
    }

    /// How many work items this worker has run.
    ///
    /// ```
    /// assert_eq!(kthread::worker::raw::RawWorker::new(0).executed(), 0);
    /// ```
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    /// How many work items panicked (caught; the worker went on).
    ///
    /// ```
    /// assert_eq!(kthread::worker::raw::RawWorker::new(0).panics(), 0);
    /// ```
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    pub(crate) fn note_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes the loop run everything queued, then leave at its next idle
    /// point (`worker_fn` returns 0), as a destroy from outside would.
    pub(crate) fn stop_when_idle(&self) {
        // Release: pairs with the loop's Acquire at its idle check.
        self.flags.fetch_or(STOP_WHEN_IDLE, Ordering::Release);
    }

    /// Whether the calling thread is this worker's thread.
    /// Whether this is a `fork()` child's copy of a worker a thread of the
    /// parent served: that thread does not exist here, so every call
    /// answers at once instead of waiting for it.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        let g = self.incoming.attached_in.load(Ordering::Acquire);
        g != 0 && g.wrapping_sub(1) != crate::sys::fork::generation()
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        let t = self.task.load(Ordering::Acquire);
        !t.is_null() && task::with_current(|c| c.is_some_and(|c| ptr::eq(c, t)))
    }
}
