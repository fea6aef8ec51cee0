//! The raw worker layer: caller-owned, pinned `RawWorker` / `RawWork`.
//!
//! This is the kernel's `struct kthread_worker` / `struct kthread_work`:
//! the list link lives inside the work item, so queueing allocates nothing.
//! The safe [`Worker`](super::Worker) / [`Work`](super::Work) and the C ABI
//! are two thin fronts over these functions. All-zero memory is a valid,
//! initialised worker and (with `func` set) work item, so C can define them
//! statically (`DEFINE_KTHREAD_WORKER`, `KTHREAD_WORK_INIT`).
//!
//! # Structure
//!
//! * `incoming`: a lock-free LIFO stack of newly queued works (producers
//!   push with one CAS), or the `IDLE` marker while the worker sleeps. A
//!   push that replaces `IDLE` wakes the worker: a busy worker takes new
//!   items with no syscall.
//! * Under `lock`: the FIFO `list` (stack batches are reversed onto its
//!   tail, so queue order is kept), the timer list of delayed works sorted by
//!   deadline, and `current`, the work being run.
//!
//! # The work state word
//!
//! `state` = owner worker address | `PENDING` | `CANCELING`. `PENDING` is
//! claimed by one CAS in `queue` (so a work is pending at most once) and
//! cleared under the owner's lock when the worker takes it or a cancel
//! removes it. *Running* is `owner.current == work` (as in the kernel), so
//! the worker never touches a work after calling its function: the
//! function may free it. Where a pending work sits (`whence`: stack, list,
//! timer list) is known only under the lock; a claimed work not yet pushed
//! is "in flight" for a few instructions, and lock holders that need it
//! placed retry (the kernel's `try_to_grab_pending` `-EAGAIN` busy-retry).
//!
//! See `docs/design.md` for the flush-sentinel and cancel protocols.

use super::lock::RawLock;
use crate::completion::Completion;
use crate::error::Error;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crate::sys::time::Deadline;
use crate::task::{self, TaskInner};
use std::ptr;
use std::time::Duration;

/// A work function: called on the worker thread with the work item.
pub type WorkFn = unsafe extern "C" fn(*mut RawWork);

const PENDING: usize = 1;
const CANCELING: usize = 2;
/// Marks a flush sentinel: not counted as an executed work item.
const SENTINEL: usize = 4;
const FLAG_MASK: usize = 63;

const WHERE_NONE: u32 = 0;
const WHERE_LIST: u32 = 1;
const WHERE_TIMER: u32 = 2;

/// The `incoming` marker of a sleeping worker.
const IDLE: *mut RawWork = 1 as *mut RawWork;

/// Worker flag: freeze between items (`KTW_FREEZABLE`).
pub const KTW_FREEZABLE: u32 = 1;

/// A work item; mirrors `struct kthread_work`.
///
/// Must not move while queued (pin it, or embed it in a heap or static object).
#[repr(C)]
#[derive(Debug)]
pub struct RawWork {
    state: AtomicUsize,
    next: UnsafeCell<*mut RawWork>,
    prev: UnsafeCell<*mut RawWork>,
    func: Option<WorkFn>,
    /// Called (outside the lock) when the worker or a canceller is done with
    /// a queued instance: the safe layer drops the queue's reference here.
    release: Option<WorkFn>,
    canceling: UnsafeCell<u32>,
    whence: UnsafeCell<u32>,
}

/// A delayed work item; mirrors `struct kthread_delayed_work`.
#[repr(C)]
#[derive(Debug)]
pub struct RawDelayedWork {
    /// The work item; `&dwork.work` is what runs.
    pub work: RawWork,
    /// Expiry on `CLOCK_MONOTONIC`, in nanoseconds (under the worker lock).
    deadline: UnsafeCell<u64>,
}

/// A worker; mirrors `struct kthread_worker`.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct RawWorker {
    /// Producers' line: nothing else lives on it, so their CASes do not
    /// steal the line of the worker's lock and list on every queue.
    incoming: CacheLine<AtomicPtr<RawWork>>,
    lock: RawLock,
    flags: AtomicU32,
    task: AtomicPtr<TaskInner>,
    head: UnsafeCell<*mut RawWork>,
    tail: UnsafeCell<*mut RawWork>,
    timers: UnsafeCell<*mut RawWork>,
    current: UnsafeCell<*mut RawWork>,
    /// When the idle worker wakes by itself (ns; `u64::MAX` = never).
    sleep_until: UnsafeCell<u64>,
    panics: AtomicU64,
    executed: AtomicU64,
}

/// A value alone on its cache line.
#[repr(C, align(64))]
#[derive(Debug)]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// SAFETY: all shared fields are atomics or UnsafeCells accessed only under
// `lock`; raw pointers in them are owned by the protocol, not by a thread.
unsafe impl Send for RawWorker {}
// SAFETY: as above.
unsafe impl Sync for RawWorker {}
// SAFETY: the cells are accessed only under the owning worker's lock, or by
// the one thread that holds the PENDING claim before it publishes the work.
unsafe impl Send for RawWork {}
// SAFETY: as above.
unsafe impl Sync for RawWork {}
// SAFETY: as for RawWork; `deadline` is accessed under the worker lock.
unsafe impl Send for RawDelayedWork {}
// SAFETY: as above.
unsafe impl Sync for RawDelayedWork {}

#[inline(always)]
fn get<T: Copy>(c: &UnsafeCell<T>) -> T {
    // SAFETY: callers hold the lock that guards `c` (or own it exclusively).
    c.with(|p| unsafe { *p })
}

#[inline(always)]
fn set<T>(c: &UnsafeCell<T>, v: T) {
    // SAFETY: as for `get`.
    c.with_mut(|p| unsafe { *p = v })
}

fn owner_of(state: usize) -> *const RawWorker {
    (state & !FLAG_MASK) as *const RawWorker
}

fn now_ns() -> u64 {
    let d = Deadline::now().as_timespec();
    d.tv_sec as u64 * 1_000_000_000 + d.tv_nsec as u64
}

/// `delay` from now on `CLOCK_MONOTONIC`, in nanoseconds (saturating).
fn deadline_ns(delay: Duration) -> u64 {
    now_ns().saturating_add(delay.as_nanos().min(u64::MAX as u128) as u64)
}

fn deadline_of(ns: u64) -> Option<Deadline> {
    (ns != u64::MAX).then(|| Deadline::after(Duration::from_nanos(ns.saturating_sub(now_ns()))))
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Pending, being cancelled, or running on another worker.
    Busy,
    /// Idle on another worker, and the caller did not allow a move.
    WouldMove,
}

/// How the safe layer takes part in a claim (see `RawWork::claim`).
pub(crate) struct Hook<'a> {
    /// Called after a claim that changed the owner, before the push.
    pub moved: &'a mut dyn FnMut(),
    /// Whether the item may move from another worker (whose lifetime the
    /// caller then guarantees).
    pub may_move: bool,
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
                next: UnsafeCell::new(ptr::null_mut()),
                prev: UnsafeCell::new(ptr::null_mut()),
                func,
                release,
                canceling: UnsafeCell::new(0),
                whence: UnsafeCell::new(WHERE_NONE),
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

    /// Claims PENDING for `worker`. Returns `Ok(previous owner)` on success.
    ///
    /// A work idle on another worker may move only while that worker is not
    /// running it, which needs the old owner's lock (slow, rare path).
    ///
    /// # Safety
    /// The previous owner, if any and different, must still exist.
    ///
    /// `hook.moved` runs right after a claim that changed the owner (first
    /// queue, or a move), before the item is pushed: it cannot move again
    /// until it has run, so the safe layer can re-point its owner reference
    /// there without racing another move. With `hook.may_move` false a
    /// needed move is refused (`Claim::WouldMove`) without touching the old
    /// owner, whose lifetime the caller then need not guarantee.
    unsafe fn claim(
        &self,
        worker: &RawWorker,
        hook: &mut Hook<'_>,
    ) -> Result<*const RawWorker, Claim> {
        let me = worker as *const RawWorker as usize;
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (PENDING | CANCELING) != 0 {
                return Err(Claim::Busy);
            }
            let old = owner_of(s);
            if !old.is_null() && old as usize != me {
                if !hook.may_move {
                    return Err(Claim::WouldMove);
                }
                // SAFETY: the caller guarantees the old owner exists.
                return unsafe { self.claim_moving(worker, &*old, s, &mut *hook.moved) };
            }
            // Acquire: see the previous run's effects before republishing.
            match self.state.compare_exchange_weak(
                s,
                me | PENDING | (s & SENTINEL),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if old.is_null() {
                        (hook.moved)();
                    }
                    return Ok(old);
                }
                Err(cur) => s = cur,
            }
        }
    }

    #[cold]
    fn claim_moving(
        &self,
        worker: &RawWorker,
        old: &RawWorker,
        s: usize,
        moved: &mut dyn FnMut(),
    ) -> Result<*const RawWorker, Claim> {
        old.lock.lock();
        let running = get(&old.current) == self.as_mut_ptr();
        let ok = !running
            && self
                .state
                .compare_exchange(
                    s,
                    worker as *const RawWorker as usize | PENDING | (s & SENTINEL),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok();
        if ok {
            moved();
        }
        old.lock.unlock();
        if ok {
            Ok(old)
        } else {
            Err(Claim::Busy)
        }
    }

    /// The worker this item was last queued on (null if never).
    pub(crate) fn owner(&self) -> *const RawWorker {
        owner_of(self.state.load(Ordering::Acquire))
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
                deadline: UnsafeCell::new(0),
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
                incoming: CacheLine(AtomicPtr::new(ptr::null_mut())),
                lock: RawLock::new(),
                flags: AtomicU32::new(flags),
                task: AtomicPtr::new(ptr::null_mut()),
                head: UnsafeCell::new(ptr::null_mut()),
                tail: UnsafeCell::new(ptr::null_mut()),
                timers: UnsafeCell::new(ptr::null_mut()),
                current: UnsafeCell::new(ptr::null_mut()),
                sleep_until: UnsafeCell::new(u64::MAX),
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

    /// Whether the calling thread is this worker's thread.
    pub(crate) fn is_current_thread(&self) -> bool {
        let t = self.task.load(Ordering::Acquire);
        !t.is_null() && task::with_current(|c| c.is_some_and(|c| ptr::eq(c, t)))
    }

    /// Wakes the worker if it sleeps idle. Call with the lock held (the
    /// task pointer is cleared under it when the thread leaves).
    fn kick_locked(&self) {
        if self.incoming.load(Ordering::Acquire) == IDLE {
            let t = self.task.load(Ordering::Acquire);
            // SAFETY: a non-null task pointer is valid while the lock is held:
            // `worker_fn` clears it under the lock before its thread exits.
            if let Some(t) = unsafe { t.as_ref() } {
                t.mark_woken();
                t.wake_state(task::WAKE_NORMAL);
            }
        }
    }

    /// Pushes a claimed work onto `incoming` (lock-free) and wakes an idle worker.
    fn push(&self, work: &RawWork) {
        let node = work.as_mut_ptr();
        let mut head = self.incoming.load(Ordering::Relaxed);
        loop {
            set(
                &work.next,
                if head == IDLE { ptr::null_mut() } else { head },
            );
            // Release: the link and the claim are visible to the drainer
            // (pairs with the Acquire swap in `drain_locked`).
            match self.incoming.compare_exchange_weak(
                head,
                node,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        if head == IDLE {
            self.wake_idle();
        }
    }

    /// Wakes the worker's thread (it published `IDLE`). The task is pinned
    /// with a reference under the lock and woken after unlocking, so a
    /// worker woken on this CPU does not run straight into our lock.
    fn wake_idle(&self) {
        self.lock.lock();
        let t = self.task.load(Ordering::Acquire);
        let task = (!t.is_null()).then(|| {
            // SAFETY: a non-null task pointer is valid while the lock is held
            // (`worker_fn` clears it under the lock before its thread exits),
            // and it came from a live `Arc<TaskInner>`: taking one more
            // strong reference keeps it valid after we unlock.
            unsafe {
                crate::sync::Arc::increment_strong_count(t);
                crate::task::Task(crate::sync::Arc::from_raw(t))
            }
        });
        self.lock.unlock();
        if let Some(t) = task {
            t.wake_up();
        }
    }

    /// Moves everything from `incoming` to the tail of the list, in queue order.
    fn drain_locked(&self) {
        let h = self.incoming.load(Ordering::Relaxed);
        if h.is_null() || h == IDLE {
            return;
        }
        // Only the lock holder replaces a node pointer, and only the worker
        // (also under the lock) installs IDLE, so this swap returns a chain.
        let mut p = self.incoming.swap(ptr::null_mut(), Ordering::AcqRel);
        // One pass: walking the stack newest-first, build the doubly linked
        // segment back to front (each node becomes the segment's new head),
        // then splice it onto the list tail. Queue order is kept.
        let newest = p;
        let mut seg: *mut RawWork = ptr::null_mut();
        while !p.is_null() {
            // SAFETY: every node on the stack is a live, claimed work (the
            // queue contract keeps it alive and unmoved while pending).
            let w = unsafe { &*p };
            let next = get(&w.next);
            set(&w.next, seg);
            set(&w.whence, WHERE_LIST);
            if !seg.is_null() {
                // SAFETY: as above.
                set(unsafe { &(*seg).prev }, p);
            }
            seg = p;
            p = next;
        }
        let tail = get(&self.tail);
        // SAFETY: `seg` is the oldest node of a non-empty chain, live as above.
        set(unsafe { &(*seg).prev }, tail);
        if tail.is_null() {
            set(&self.head, seg);
        } else {
            // SAFETY: list nodes are live while on the list.
            set(unsafe { &(*tail).next }, seg);
        }
        set(&self.tail, newest);
    }

    fn append_locked(&self, w: &RawWork) {
        let node = w.as_mut_ptr();
        let tail = get(&self.tail);
        set(&w.prev, tail);
        set(&w.next, ptr::null_mut());
        if tail.is_null() {
            set(&self.head, node);
        } else {
            // SAFETY: list nodes are live while on the list (queue contract).
            set(unsafe { &(*tail).next }, node);
        }
        set(&self.tail, node);
        set(&w.whence, WHERE_LIST);
    }

    fn insert_front_locked(&self, w: &RawWork) {
        let head = get(&self.head);
        if head.is_null() {
            return self.append_locked(w);
        }
        set(&w.prev, ptr::null_mut());
        set(&w.next, head);
        // SAFETY: list nodes are live while on the list.
        set(unsafe { &(*head).prev }, w.as_mut_ptr());
        set(&self.head, w.as_mut_ptr());
        set(&w.whence, WHERE_LIST);
    }

    fn insert_after_locked(&self, at: &RawWork, w: &RawWork) {
        let next = get(&at.next);
        set(&w.prev, at.as_mut_ptr());
        set(&w.next, next);
        set(&at.next, w.as_mut_ptr());
        if next.is_null() {
            set(&self.tail, w.as_mut_ptr());
        } else {
            // SAFETY: list nodes are live while on the list.
            set(unsafe { &(*next).prev }, w.as_mut_ptr());
        }
        set(&w.whence, WHERE_LIST);
    }

    fn unlink_locked(&self, w: &RawWork) {
        let (prev, next) = (get(&w.prev), get(&w.next));
        if prev.is_null() {
            set(&self.head, next);
        } else {
            // SAFETY: list nodes are live while on the list.
            set(unsafe { &(*prev).next }, next);
        }
        if next.is_null() {
            set(&self.tail, prev);
        } else {
            // SAFETY: as above.
            set(unsafe { &(*next).prev }, prev);
        }
        set(&w.whence, WHERE_NONE);
    }

    fn pop_locked(&self) -> Option<&RawWork> {
        let head = get(&self.head);
        // SAFETY: list nodes are live while on the list.
        let w = unsafe { head.as_ref() }?;
        self.unlink_locked(w);
        Some(w)
    }

    fn timer_insert_locked(&self, dw: &RawDelayedWork, at: u64) {
        set(&dw.deadline, at);
        let w = &dw.work;
        let mut prev: *mut RawWork = ptr::null_mut();
        let mut p = get(&self.timers);
        // Sorted by deadline; equal deadlines keep arming order.
        while !p.is_null() {
            // SAFETY: timer-list nodes are live RawDelayedWorks (`work` is
            // their first field, repr(C)).
            let d = unsafe { &*(p as *const RawDelayedWork) };
            if get(&d.deadline) > at {
                break;
            }
            prev = p;
            p = get(&d.work.next);
        }
        set(&w.prev, prev);
        set(&w.next, p);
        if prev.is_null() {
            set(&self.timers, w.as_mut_ptr());
        } else {
            // SAFETY: as above.
            set(unsafe { &(*prev).next }, w.as_mut_ptr());
        }
        if !p.is_null() {
            // SAFETY: as above.
            set(unsafe { &(*p).prev }, w.as_mut_ptr());
        }
        set(&w.whence, WHERE_TIMER);
        if at < get(&self.sleep_until) {
            self.kick_locked();
        }
    }

    fn timer_remove_locked(&self, w: &RawWork) {
        let (prev, next) = (get(&w.prev), get(&w.next));
        if prev.is_null() {
            set(&self.timers, next);
        } else {
            // SAFETY: timer-list nodes are live.
            set(unsafe { &(*prev).next }, next);
        }
        if !next.is_null() {
            // SAFETY: as above.
            set(unsafe { &(*next).prev }, prev);
        }
        set(&w.whence, WHERE_NONE);
    }

    /// Moves expired timers to the list tail; returns the next deadline (ns).
    fn fire_timers_locked(&self) -> u64 {
        let mut p = get(&self.timers);
        if p.is_null() {
            return u64::MAX;
        }
        let now = now_ns();
        while !p.is_null() {
            // SAFETY: timer-list nodes are live RawDelayedWorks.
            let d = unsafe { &*(p as *const RawDelayedWork) };
            let at = get(&d.deadline);
            if at > now {
                return at;
            }
            self.timer_remove_locked(&d.work);
            self.append_locked(&d.work);
            p = get(&self.timers);
        }
        u64::MAX
    }
}

/// Queues `work` on `worker`; mirrors `kthread_queue_work()`.
///
/// Returns `false` if it was already pending (anywhere), being cancelled, or
/// running on another worker. Allocates nothing; wakes the worker only if
/// it is idle.
///
/// # Safety
/// `work` must stay valid and unmoved until it has run or been cancelled,
/// `worker` must outlive that too, and a worker the work was queued on
/// before must still exist.
pub unsafe fn queue(worker: &RawWorker, work: &RawWork) -> bool {
    let mut hook = Hook {
        moved: &mut || {},
        may_move: true,
    };
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    unsafe { queue_hooked(worker, work, &mut hook) }.is_ok()
}

/// As [`queue`], running `moved` if the claim changed the item's owner
/// (see `RawWork::claim`).
///
/// # Safety
/// As for [`queue`].
pub(crate) unsafe fn queue_hooked(
    worker: &RawWorker,
    work: &RawWork,
    hook: &mut Hook<'_>,
) -> Result<(), Claim> {
    // SAFETY: forwarded caller contract.
    unsafe { work.claim(worker, hook) }?;
    worker.push(work);
    crate::trace::work_queue(
        worker as *const RawWorker as usize,
        work as *const RawWork as usize,
    );
    Ok(())
}

/// Queues `dwork` to run after `delay`; mirrors `kthread_queue_delayed_work()`.
///
/// A zero delay queues it at once. Returns `false` if it was already pending.
///
/// # Safety
/// As for [`queue`].
pub unsafe fn queue_delayed(worker: &RawWorker, dwork: &RawDelayedWork, delay: Duration) -> bool {
    let mut hook = Hook {
        moved: &mut || {},
        may_move: true,
    };
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    unsafe { queue_delayed_hooked(worker, dwork, delay, &mut hook) }.is_ok()
}

/// As [`queue_delayed`], running `moved` if the claim changed the owner.
///
/// # Safety
/// As for [`queue`].
pub(crate) unsafe fn queue_delayed_hooked(
    worker: &RawWorker,
    dwork: &RawDelayedWork,
    delay: Duration,
    hook: &mut Hook<'_>,
) -> Result<(), Claim> {
    // SAFETY: forwarded caller contract.
    unsafe { dwork.work.claim(worker, hook) }?;
    arm(worker, dwork, delay);
    Ok(())
}

fn arm(worker: &RawWorker, dwork: &RawDelayedWork, delay: Duration) {
    if delay.is_zero() {
        worker.push(&dwork.work);
        return;
    }
    let at = deadline_ns(delay);
    worker.lock.lock();
    worker.timer_insert_locked(dwork, at);
    worker.lock.unlock();
}

/// What a lock holder found of a work on its owner.
enum Grab {
    /// It was pending; it has been taken off the list or timer list.
    Taken,
    /// It was not pending.
    Idle,
}

/// With `owner` locked: take a pending `work` off wherever it sits,
/// waiting out an in-flight push (the lock is dropped while waiting).
fn grab_pending_locked(owner: &RawWorker, work: &RawWork, keep_pending: bool) -> Grab {
    loop {
        owner.drain_locked();
        match get(&work.whence) {
            WHERE_LIST => owner.unlink_locked(work),
            WHERE_TIMER => owner.timer_remove_locked(work),
            _ if work.is_pending() => {
                // Claimed but not yet pushed: a few instructions away.
                owner.lock.unlock();
                crate::sync::yield_now();
                owner.lock.lock();
                if !ptr::eq(work.owner(), owner) {
                    // Meanwhile it was pushed, ran, and moved to another
                    // worker: nothing of it is pending here any more.
                    return Grab::Idle;
                }
                continue;
            }
            _ => return Grab::Idle,
        }
        if !keep_pending {
            work.state.fetch_and(!PENDING, Ordering::AcqRel);
        }
        return Grab::Taken;
    }
}

/// Moves a delayed work's timer forward or back; mirrors `kthread_mod_delayed_work()`.
///
/// Arms it if idle (returns `false`), otherwise re-arms it with the new
/// delay (returns `true`). If it is being cancelled, or pending on another
/// worker, nothing changes and it returns `true` (the kernel lets the
/// other command win).
///
/// # Safety
/// As for [`queue`].
pub unsafe fn mod_delayed(worker: &RawWorker, dwork: &RawDelayedWork, delay: Duration) -> bool {
    let mut hook = Hook {
        moved: &mut || {},
        may_move: true,
    };
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    unsafe { mod_delayed_hooked(worker, dwork, delay, &mut hook) }.unwrap_or(true)
}

/// As [`mod_delayed`], running `moved` if arming it changed the owner.
///
/// # Safety
/// As for [`queue`].
pub(crate) unsafe fn mod_delayed_hooked(
    worker: &RawWorker,
    dwork: &RawDelayedWork,
    delay: Duration,
    hook: &mut Hook<'_>,
) -> Result<bool, Claim> {
    let work = &dwork.work;
    loop {
        // SAFETY: forwarded caller contract.
        match unsafe { work.claim(worker, hook) } {
            Ok(_) => {
                arm(worker, dwork, delay);
                return Ok(false);
            }
            Err(Claim::WouldMove) => return Err(Claim::WouldMove),
            Err(Claim::Busy) => {}
        }
        let s = work.state.load(Ordering::Acquire);
        if s & CANCELING != 0 || !ptr::eq(owner_of(s), worker) {
            return Ok(true);
        }
        worker.lock.lock();
        if !ptr::eq(owner_of(work.state.load(Ordering::Acquire)), worker) {
            worker.lock.unlock();
            continue;
        }
        if work.state.load(Ordering::Acquire) & CANCELING != 0 {
            worker.lock.unlock();
            return Ok(true);
        }
        // PENDING stays set throughout: clearing it even briefly would let a
        // lock-free queue claim the item while it is still linked here.
        match grab_pending_locked(worker, work, true) {
            Grab::Idle => {
                // It ran (or was cancelled) meanwhile: queue it afresh.
                worker.lock.unlock();
                continue;
            }
            Grab::Taken => {
                // Still ours: re-arm without releasing the queue's reference.
                if delay.is_zero() {
                    worker.append_locked(work);
                    worker.kick_locked();
                } else {
                    let at = deadline_ns(delay);
                    worker.timer_insert_locked(dwork, at);
                }
                worker.lock.unlock();
                return Ok(true);
            }
        }
    }
}

/// The flush sentinel: a work on the flusher's stack that completes a completion.
#[repr(C)]
struct Sentinel {
    work: RawWork,
    done: Completion,
}

unsafe extern "C" fn sentinel_fn(w: *mut RawWork) {
    // SAFETY: only `Sentinel`s are queued with this function; `work` is
    // their first field (repr(C)), and the flusher waits on `done`, so the
    // sentinel lives until `complete` has published.
    unsafe { (*(w as *const Sentinel)).done.complete() }
}

impl Sentinel {
    fn new() -> Sentinel {
        let s = Sentinel {
            work: RawWork::with_release(Some(sentinel_fn), None),
            done: Completion::new(),
        };
        s.work.state.store(SENTINEL, Ordering::Relaxed);
        s
    }
}

/// Locks `work`'s owner; `None` if it has none. Re-checks ownership under the lock.
///
/// # Safety
/// The owner must still exist.
unsafe fn lock_owner(work: &RawWork) -> Option<&RawWorker> {
    loop {
        let o = work.owner();
        // SAFETY: the caller guarantees the owner exists.
        let owner = unsafe { o.as_ref() }?;
        owner.lock.lock();
        if work.owner() == o {
            return Some(owner);
        }
        owner.lock.unlock();
    }
}

/// Waits for the instance of `work` queued or running now; mirrors `kthread_flush_work()`.
///
/// Returns `Ok(false)` at once if it is idle, `Ok(true)` after waiting.
/// From the owner's own thread it would wait for itself: `Err(WouldDeadlock)`.
/// An armed delayed work is fired at once and then waited for.
///
/// # Safety
/// The worker `work` was last queued on must still exist.
pub unsafe fn flush_work(work: &RawWork) -> Result<bool, Error> {
    // SAFETY: forwarded caller contract.
    match unsafe { lock_owner(work) } {
        Some(owner) => flush_locked(owner, work),
        None => Ok(false),
    }
}

/// `flush_work` with `owner` (the work's owner) locked; unlocks it.
pub(crate) fn flush_locked(owner: &RawWorker, work: &RawWork) -> Result<bool, Error> {
    if owner.is_current_thread() {
        let busy = work.is_pending() || get(&owner.current) == work.as_mut_ptr();
        owner.lock.unlock();
        return if busy {
            Err(Error::WouldDeadlock)
        } else {
            Ok(false)
        };
    }
    let sentinel = Sentinel::new();
    loop {
        owner.drain_locked();
        match get(&work.whence) {
            WHERE_LIST => {
                sentinel
                    .work
                    .state
                    .store(PENDING | SENTINEL, Ordering::Relaxed);
                owner.insert_after_locked(work, &sentinel.work);
            }
            WHERE_TIMER => {
                // An armed timer: fire it now, then wait for that run (the
                // kernel's `flush_delayed_work` semantics), so a flush never
                // sleeps out a timer.
                owner.timer_remove_locked(work);
                owner.append_locked(work);
                sentinel
                    .work
                    .state
                    .store(PENDING | SENTINEL, Ordering::Relaxed);
                owner.insert_after_locked(work, &sentinel.work);
                owner.kick_locked();
            }
            _ if get(&owner.current) == work.as_mut_ptr() => {
                sentinel
                    .work
                    .state
                    .store(PENDING | SENTINEL, Ordering::Relaxed);
                owner.insert_front_locked(&sentinel.work);
            }
            _ if work.is_pending() => {
                owner.lock.unlock();
                crate::sync::yield_now();
                owner.lock.lock();
                if !ptr::eq(work.owner(), owner) {
                    // That instance ran and the work moved on: done.
                    owner.lock.unlock();
                    return Ok(true);
                }
                continue;
            }
            _ => {
                owner.lock.unlock();
                return Ok(false);
            }
        }
        break;
    }
    owner.lock.unlock();
    sentinel.done.wait();
    Ok(true)
}

/// Locks `owner` if it is still `work`'s owner (the safe layer's entry).
pub(crate) fn lock_if_owner(owner: &RawWorker, work: &RawWork) -> bool {
    owner.lock.lock();
    if ptr::eq(work.owner(), owner) {
        return true;
    }
    owner.lock.unlock();
    false
}

/// Waits for everything queued on `worker` before the call; mirrors `kthread_flush_worker()`.
///
/// From the worker's own thread: `Err(WouldDeadlock)`.
///
/// ```
/// let w = kthread::worker::raw::RawWorker::new(0);
/// // No thread attached: nothing queued, but the sentinel would wait for a
/// // thread; flush a worker only once a thread runs it.
/// # let _ = &w;
/// ```
pub fn flush_worker(worker: &RawWorker) -> Result<(), Error> {
    if worker.is_current_thread() {
        return Err(Error::WouldDeadlock);
    }
    let sentinel = Sentinel::new();
    // SAFETY: the sentinel is fresh, and we wait for it to run before it
    // goes out of scope.
    let queued = unsafe { queue(worker, &sentinel.work) };
    debug_assert!(queued);
    sentinel.done.wait();
    Ok(())
}

/// Cancels `work` and waits for a running instance; mirrors `kthread_cancel_work_sync()`.
///
/// Takes a pending (or armed) instance off its list and returns `true`;
/// waits for a running instance to finish. Queue attempts meanwhile fail,
/// so it also works on an item that re-queues itself. Called from the
/// owner's own thread it cannot wait for the running instance (that would be
/// itself): it cancels the pending one and returns.
///
/// # Safety
/// The worker `work` was last queued on must still exist.
pub unsafe fn cancel_sync(work: &RawWork) -> bool {
    // SAFETY: forwarded caller contract.
    match unsafe { lock_owner(work) } {
        Some(owner) => cancel_locked(owner, work),
        None => false,
    }
}

/// `cancel_sync` with `owner` (the work's owner) locked; unlocks it.
pub(crate) fn cancel_locked(owner: &RawWorker, work: &RawWork) -> bool {
    // Block queueing first, so an instance that is running now cannot
    // re-queue itself behind our back (`work->canceling++`).
    set(&work.canceling, get(&work.canceling) + 1);
    work.state.fetch_or(CANCELING, Ordering::AcqRel);
    let was_pending = matches!(grab_pending_locked(owner, work, false), Grab::Taken);
    let running = get(&owner.current) == work.as_mut_ptr() && !owner.is_current_thread();
    let sentinel = Sentinel::new();
    if running {
        sentinel
            .work
            .state
            .store(PENDING | SENTINEL, Ordering::Relaxed);
        owner.insert_front_locked(&sentinel.work);
    }
    owner.lock.unlock();
    if was_pending {
        release(work);
    }
    if running {
        sentinel.done.wait();
    }
    owner.lock.lock();
    let left = get(&work.canceling) - 1;
    set(&work.canceling, left);
    if left == 0 {
        work.state.fetch_and(!CANCELING, Ordering::AcqRel);
    }
    owner.lock.unlock();
    was_pending
}

/// Cancels every armed timer of `worker` (used by destroy); returns how many.
pub fn cancel_timers(worker: &RawWorker) -> usize {
    let mut taken = Vec::new();
    worker.lock.lock();
    loop {
        let p = get(&worker.timers);
        // SAFETY: timer-list nodes are live.
        let Some(w) = (unsafe { p.as_ref() }) else {
            break;
        };
        worker.timer_remove_locked(w);
        w.state.fetch_and(!PENDING, Ordering::AcqRel);
        taken.push(p);
    }
    worker.lock.unlock();
    for &p in &taken {
        // SAFETY: each was pending, so the queue contract kept it alive;
        // we took it off the list and now drop the queue's reference.
        release(unsafe { &*p });
    }
    taken.len()
}

fn release(work: &RawWork) {
    if let Some(r) = work.release {
        // SAFETY: `release` was set by the safe layer for exactly this item;
        // it drops the reference the queue held.
        unsafe { r(work.as_mut_ptr()) }
    }
}

/// Spins (bounded, yielding) with the lock dropped, waiting for new work.
/// Returns with the lock held again; `true` if work arrived. The caller
/// must re-examine everything afterwards: lock holders may have drained
/// `incoming`, appended to the list or armed timers meanwhile.
fn idle_spin(worker: &RawWorker) -> bool {
    #[cfg(kthread_loom)]
    {
        let _ = worker;
        false
    }
    #[cfg(not(kthread_loom))]
    {
        worker.lock.unlock();
        let arrived = || {
            let p = worker.incoming.load(Ordering::Relaxed);
            !p.is_null() || crate::kthread::should_stop()
        };
        let mut found = false;
        'spin: for step in 0..IDLE_SPIN_STEPS {
            for _ in 0..1u32 << step {
                std::hint::spin_loop();
            }
            if arrived() {
                found = true;
                break 'spin;
            }
        }
        if !found {
            for _ in 0..IDLE_YIELDS {
                std::thread::yield_now();
                if arrived() {
                    found = true;
                    break;
                }
            }
        }
        worker.lock.lock();
        found
    }
}

/// Doubling spin rounds before the idle worker yields (2^7 - 1 pauses in all).
#[cfg(not(kthread_loom))]
const IDLE_SPIN_STEPS: u32 = 7;
/// A sleep shorter than this means work comes in streams: spin next time.
const SPIN_IF_SLEPT_UNDER: Duration = Duration::from_micros(50);
/// `sched_yield` rounds after the spin, before the worker sleeps.
#[cfg(not(kthread_loom))]
const IDLE_YIELDS: u32 = 4;

/// Runs the worker loop on the calling kthread until it is stopped;
/// mirrors `kthread_worker_fn()`.
///
/// Usable as any kthread's function over a caller-owned worker. Returns 0
/// when stopped, or `-EBUSY` if another thread already serves `worker`.
/// Stopping the thread directly abandons what is still queued (kernel
/// behaviour); [`Worker::destroy`](super::Worker::destroy) flushes first.
///
/// ```
/// use std::sync::Arc;
/// use kthread::worker::raw::{self, RawWorker};
/// let w = Arc::new(RawWorker::new(0));
/// let w2 = w.clone();
/// let k = kthread::run("my-worker", move || raw::worker_fn(&w2))?;
/// raw::flush_worker(&w)?;
/// assert_eq!(k.stop()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn worker_fn(worker: &RawWorker) -> i32 {
    let me = task::current_or_adopt();
    let me_ptr = &*me.0 as *const TaskInner as *mut TaskInner;
    worker.lock.lock();
    if !worker.task.load(Ordering::Acquire).is_null() {
        worker.lock.unlock();
        return -libc::EBUSY;
    }
    worker.task.store(me_ptr, Ordering::Release);
    worker.lock.unlock();
    me.0.flags.fetch_or(task::flag::WORKER, Ordering::AcqRel);
    if worker.flags.load(Ordering::Relaxed) & KTW_FREEZABLE != 0 {
        me.0.flags.fetch_or(task::flag::FREEZABLE, Ordering::AcqRel);
    }
    let freezable = me.is_freezable();
    let mut spin = false;
    // Whether this idle period already spun: after a spin (lock dropped)
    // the list, timers and `incoming` may all have changed, so the loop
    // starts over instead of sleeping on what it saw before the spin.
    let mut spun = false;

    worker.lock.lock();
    loop {
        set(&worker.current, ptr::null_mut());
        if crate::kthread::should_stop() {
            worker.task.store(ptr::null_mut(), Ordering::Release);
            worker.lock.unlock();
            return 0;
        }
        let next_timer = worker.fire_timers_locked();
        if get(&worker.head).is_null() {
            worker.drain_locked();
        }
        if let Some(w) = worker.pop_locked() {
            set(&worker.current, w.as_mut_ptr());
            // A plain store suffices: while PENDING is set no producer
            // writes the word (their CAS fails), and CANCELING changes only
            // under the lock we hold.
            let s = w.state.load(Ordering::Relaxed);
            w.state.store(s & !PENDING, Ordering::Release);
            let counts = s & SENTINEL == 0;
            // Read before the call: the function may free the item.
            let (func, rel) = (w.func, w.release);
            let wp = w.as_mut_ptr();
            worker.lock.unlock();
            crate::trace::work_start(&me, wp as usize);
            if let Some(f) = func {
                // SAFETY: the queue contract keeps `wp` valid until its
                // function has been called; Rust works catch their panics.
                unsafe { f(wp) };
            }
            crate::trace::work_end(&me, wp as usize);
            if counts {
                worker.executed.store(
                    worker.executed.load(Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
            }
            if let Some(r) = rel {
                // SAFETY: a work with a release hook is reference counted by
                // the safe layer: the queue's reference is still held.
                unsafe { r(wp) };
            }
            if freezable {
                crate::freezer::try_to_freeze();
            }
            spun = false;
            worker.lock.lock();
            continue;
        }
        // Nothing to run. A worker that sleeps at once makes the next
        // producer pay a futex wake (and the worker a context switch) per
        // batch; spin briefly first, yielding so a producer sharing our CPU
        // runs (PERF-NOTES: bare spinning is 5-10x worse there). Freezable
        // workers do not spin: their sleep is a freeze point.
        if spin && !spun && !freezable && next_timer == u64::MAX {
            spun = true;
            idle_spin(worker);
            continue;
        }
        spun = false;
        // Idle. Publish the sleeping state before the IDLE marker, so a
        // producer that sees IDLE and wakes us cannot be lost.
        task::set_current_state(task::TaskState::Interruptible);
        if worker
            .incoming
            .compare_exchange(ptr::null_mut(), IDLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            task::set_current_state(task::TaskState::Running);
            continue;
        }
        set(&worker.sleep_until, next_timer);
        worker.lock.unlock();
        if !crate::kthread::should_stop() {
            let slept_from = Deadline::now();
            task::schedule_until(deadline_of(next_timer));
            // Adaptive: spin before the next sleep only if this one was
            // short, i.e. work tends to follow quickly (a stream of queues).
            // A worker that idles between sparse requests sleeps at once,
            // so it never delays a flusher or producer sharing its CPU.
            // (Never under loom: a decision taken from the real clock would
            // make the model's schedule non-deterministic.)
            spin = cfg!(not(kthread_loom)) && slept_from.elapsed() < SPIN_IF_SLEPT_UNDER;
        }
        task::set_current_state(task::TaskState::Running);
        worker.lock.lock();
        set(&worker.sleep_until, 0);
        let _ = worker.incoming.compare_exchange(
            IDLE,
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}
