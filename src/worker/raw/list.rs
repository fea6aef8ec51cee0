//! The worker's lists and the lock guard that is the only way to touch them.
//!
//! Every cell of a worker and of its work items that is not an atomic is a
//! [`Guarded`] cell, readable and writable only with a [`Locked`] in hand
//! (the guard of the owning worker's lock), or, for a work's `next` link
//! between its claim and its push, with the [`Claimed`] token the claim
//! hands out. So "the caller holds the worker lock" is a type, not a comment.
//!
//! The lists: `incoming` (lock-free LIFO of pushed works, or `IDLE`), the
//! FIFO list (`head`/`tail`, doubly linked through `next`/`prev`), and the
//! timer list (`timers`, sorted by deadline, linked the same way). `whence`
//! says which of the last two a pending, drained work is on.

use super::{RawDelayedWork, RawWork, RawWorker, PENDING};
use crate::sync::{Ordering, UnsafeCell};
use crate::sys::futex;
use crate::sys::time::Deadline;
use crate::task::Task;
use std::ptr;
use std::time::Duration;

pub(super) const WHERE_NONE: u32 = 0;
pub(super) const WHERE_LIST: u32 = 1;
pub(super) const WHERE_TIMER: u32 = 2;

/// The `incoming` marker of a sleeping worker.
pub(super) const IDLE: *mut RawWork = ptr::dangling_mut();

/// In `RawWorker::wakers`: the thread has detached (or is detaching);
/// wakers that count in after it leave the task pointer alone. The other
/// bits count the wakers using the pointer now.
const DETACHED: u32 = 1 << 31;

/// A cell guarded by a worker's lock: its accessors need the [`Locked`] guard.
///
/// The guard passed is that of the worker that owns the cell: the worker's
/// own fields, or a work item linked on (or owned by) that worker. That
/// pairing is what the item invariants of `RawWork` / `RawWorker` give
/// every call site in this file.
#[derive(Debug)]
pub(super) struct Guarded<T>(UnsafeCell<T>);

impl<T> Guarded<T> {
    crate::sync::loom_const_fn! {
        pub(super) fn new(v: T) -> Guarded<T> {
            Guarded(UnsafeCell::new(v))
        }
    }
}

impl<T: Copy> Guarded<T> {
    #[inline(always)]
    fn get(&self, _: &Locked<'_>) -> T {
        // SAFETY: the guard proves the owning worker's lock is held, which
        // excludes every other access to this cell (type docs).
        self.0.with(|p| unsafe { *p })
    }

    #[inline(always)]
    fn set(&self, _: &Locked<'_>, v: T) {
        // SAFETY: as in `get`: the lock gives this thread the only access.
        self.0.with_mut(|p| unsafe { *p = v })
    }
}

/// A held worker lock; the only way to reach the worker's guarded cells.
///
/// Dropping it unlocks. Moving it into a function passes the lock.
#[must_use = "dropping the guard unlocks at once"]
pub(crate) struct Locked<'a> {
    w: &'a RawWorker,
}

impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        self.w.lock.unlock();
    }
}

/// A work whose `PENDING` bit this thread just claimed and has not pushed yet.
pub(super) struct Claimed<'a>(&'a RawWork);

impl<'a> Claimed<'a> {
    /// # Safety
    /// The caller's own CAS just set `PENDING` on `work` (so nothing else
    /// touches its links), and `work` stays valid until it has run or been
    /// cancelled (the queue contract).
    #[inline]
    pub(super) unsafe fn new(work: &'a RawWork) -> Claimed<'a> {
        Claimed(work)
    }
}

fn now_ns() -> u64 {
    let d = Deadline::now().as_timespec();
    d.tv_sec as u64 * 1_000_000_000 + d.tv_nsec as u64
}

/// `delay` from now on `CLOCK_MONOTONIC`, in nanoseconds (saturating).
pub(super) fn deadline_ns(delay: Duration) -> u64 {
    now_ns().saturating_add(delay.as_nanos().min(u64::MAX as u128) as u64)
}

/// The deadline `ns` (from [`deadline_ns`]) names; `None` for never.
pub(super) fn deadline_of(ns: u64) -> Option<Deadline> {
    (ns != u64::MAX).then(|| Deadline::after(Duration::from_nanos(ns.saturating_sub(now_ns()))))
}

impl RawWorker {
    /// Takes the worker lock.
    #[inline]
    pub(crate) fn lock(&self) -> Locked<'_> {
        self.lock.lock();
        Locked { w: self }
    }

    /// Locks the worker if it is still `work`'s owner (re-checked under the lock).
    #[inline]
    pub(crate) fn lock_if_owner(&self, work: &RawWork) -> Option<Locked<'_>> {
        let l = self.lock();
        work.owned_by(self).then_some(l)
    }

    /// Pushes a claimed work onto `incoming` (lock-free) and wakes an idle worker.
    #[inline]
    pub(super) fn push(&self, work: Claimed<'_>) {
        let work = work.0;
        let node = work.as_mut_ptr();
        let mut head = self.incoming.load(Ordering::Relaxed);
        loop {
            let next = if head == IDLE { ptr::null_mut() } else { head };
            // SAFETY: the claim gives this thread the only access to `next`
            // until the CAS below publishes the node (`Claimed`).
            work.next.0.with_mut(|p| unsafe { *p = next });
            // Release: the link and the claim are visible to the drainer
            // (pairs with the Acquire swap in `drain`).
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

    /// Wakes the worker's thread (it published `IDLE`), taking no lock, so
    /// a queue from a signal handler cannot deadlock with the thread it
    /// interrupted (which may hold this worker's lock).
    ///
    /// `wakers` counts us in while we use the task pointer. Every access to
    /// it is an RMW, so they are totally ordered: if our count came before
    /// the detaching thread's `DETACHED` mark, that thread waits for us to
    /// count out before it leaves (so the task we wake is alive); if after,
    /// we see the mark and leave the pointer alone.
    #[inline]
    fn wake_idle(&self) {
        // Acquire: a later attach's pointer is seen with its clear of the mark.
        if self.wakers.fetch_add(1, Ordering::Acquire) & DETACHED == 0 {
            let t = self.task.load(Ordering::Acquire);
            // SAFETY: a non-null `task` is the attached thread's live task,
            // and it stays so until we count out (`Locked::detach` waits).
            if let Some(t) = unsafe { t.as_ref() } {
                t.wake_up();
                #[cfg(kthread_loom)]
                t.model_use();
            }
        }
        // Release: our use of the task happens before the detacher's return.
        if self.wakers.fetch_sub(1, Ordering::Release) == DETACHED | 1 {
            // The last waker out of a detaching worker: it may sleep on the count.
            futex::wake(&self.wakers, 1);
        }
    }
}

impl<'a> Locked<'a> {
    /// The locked worker.
    #[inline]
    pub(super) fn worker(&self) -> &'a RawWorker {
        self.w
    }

    /// Attaches the calling thread's task; `false` if another thread serves the worker.
    pub(super) fn attach(&self, task: &Task) -> bool {
        // Only the lock holder writes `task`, so a load and a store suffice;
        // Release pairs with the wakers' Acquire loads (under this lock).
        if !self.w.task.load(Ordering::Acquire).is_null() {
            return false;
        }
        let p = task.inner() as *const _ as *mut _;
        // Release: a waker whose count sees the mark cleared sees no older
        // (freed) task pointer (pairs with `wake_idle`'s Acquire).
        self.w.wakers.fetch_and(!DETACHED, Ordering::Release);
        self.w
            .incoming
            .attached_in
            .store(crate::sys::fork::born().wrapping_add(1), Ordering::Release);
        self.w.task.store(p, Ordering::Release);
        true
    }

    /// Detaches the thread: clears the task pointer (under the lock, for
    /// `kick`), marks the worker `DETACHED`, and waits until the lock-free
    /// wakers that counted in before the mark have counted out
    /// (`RawWorker::wake_idle`): a few instructions of a producer that may
    /// have read the pointer just before it was cleared.
    pub(super) fn detach(&self) {
        let w = self.w;
        w.task.store(ptr::null_mut(), Ordering::Release);
        // Acquire: the wakers' uses of the task happen before we go on.
        let mut v = w.wakers.fetch_or(DETACHED, Ordering::Acquire) | DETACHED;
        while v != DETACHED {
            futex::wait(&w.wakers, v, None);
            v = w.wakers.load(Ordering::Acquire);
        }
    }

    /// The work being run now (null if none).
    #[inline]
    pub(super) fn current(&self) -> *mut RawWork {
        self.w.current.get(self)
    }

    #[inline]
    pub(super) fn set_current(&self, w: *mut RawWork) {
        self.w.current.set(self, w)
    }

    /// Whether `work` is running on this worker now.
    #[inline]
    pub(super) fn is_running(&self, work: &RawWork) -> bool {
        self.current() == work.as_mut_ptr()
    }

    #[inline]
    pub(super) fn list_is_empty(&self) -> bool {
        self.w.head.get(self).is_null()
    }

    #[inline]
    pub(super) fn set_sleep_until(&self, ns: u64) {
        self.w.sleep_until.set(self, ns)
    }

    /// Where a pending, drained `work` of this worker sits.
    #[inline]
    pub(super) fn whence(&self, work: &RawWork) -> u32 {
        work.whence.get(self)
    }

    /// Counts a canceller in (`work->canceling++`) and blocks queueing.
    pub(super) fn cancel_begin(&self, work: &RawWork) {
        work.canceling.set(self, work.canceling.get(self) + 1);
        work.state.fetch_or(super::CANCELING, Ordering::AcqRel);
    }

    /// Counts a canceller out; the last one lets queueing succeed again.
    pub(super) fn cancel_end(&self, work: &RawWork) {
        let left = work.canceling.get(self) - 1;
        work.canceling.set(self, left);
        if left == 0 {
            work.state.fetch_and(!super::CANCELING, Ordering::AcqRel);
        }
    }

    /// Drops the lock, yields and retakes it, to let a claimer a few
    /// instructions from its push finish (the kernel's `-EAGAIN` retry).
    /// Returns whether `work` is still this worker's: if not, the instance
    /// ran meanwhile and the item moved on.
    pub(super) fn wait_in_flight(&mut self, work: &RawWork) -> bool {
        self.w.lock.unlock();
        crate::sync::yield_now();
        self.w.lock.lock();
        work.owned_by(self.w)
    }

    /// Wakes the worker if it sleeps idle.
    #[inline]
    pub(super) fn kick(&self) {
        if self.w.incoming.load(Ordering::Acquire) == IDLE {
            let t = self.w.task.load(Ordering::Acquire);
            // SAFETY: a non-null task pointer is valid while the lock is held
            // (`worker_fn` clears it under the lock before its thread exits).
            if let Some(t) = unsafe { t.as_ref() } {
                t.wake_up();
            }
        }
    }

    /// Publishes `IDLE` if nothing arrived; `false` if something did.
    #[inline]
    pub(super) fn go_idle(&self) -> bool {
        self.w
            .incoming
            .compare_exchange(ptr::null_mut(), IDLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes `IDLE` back after a sleep (a producer may have replaced it).
    #[inline]
    pub(super) fn leave_idle(&self) {
        self.set_sleep_until(0);
        let _ = self.w.incoming.compare_exchange(
            IDLE,
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Moves everything from `incoming` to the tail of the list, in queue order.
    #[inline]
    pub(super) fn drain(&self) {
        let h = self.w.incoming.load(Ordering::Relaxed);
        if h.is_null() || h == IDLE {
            return;
        }
        // Only the lock holder replaces a node pointer, and only the worker
        // (also under the lock) installs IDLE, so this swap returns a chain.
        let mut p = self.w.incoming.swap(ptr::null_mut(), Ordering::AcqRel);
        // One pass: walking the stack newest-first, build the doubly linked
        // segment back to front (each node becomes the segment's new head),
        // then splice it onto the list tail. Queue order is kept.
        let newest = p;
        let mut seg: *mut RawWork = ptr::null_mut();
        while !p.is_null() {
            // SAFETY: every node on the stack is a live, claimed work of this
            // worker (the queue contract keeps it alive and unmoved).
            let w = unsafe { &*p };
            let next = w.next.get(self);
            w.next.set(self, seg);
            w.whence.set(self, WHERE_LIST);
            // SAFETY: `seg`, when not null, is the node handled just before: live.
            if let Some(s) = unsafe { seg.as_ref() } {
                s.prev.set(self, p);
            }
            seg = p;
            p = next;
        }
        let tail = self.w.tail.get(self);
        // SAFETY: `seg` is the oldest node of a non-empty chain, live as above.
        unsafe { &*seg }.prev.set(self, tail);
        // SAFETY: the tail, when not null, is a live node on the list.
        match unsafe { tail.as_ref() } {
            None => self.w.head.set(self, seg),
            Some(t) => t.next.set(self, seg),
        }
        self.w.tail.set(self, newest);
    }

    /// Links `w` at the list tail.
    #[inline]
    pub(super) fn append(&self, w: &RawWork) {
        let node = w.as_mut_ptr();
        let tail = self.w.tail.get(self);
        w.prev.set(self, tail);
        w.next.set(self, ptr::null_mut());
        // SAFETY: the tail, when not null, is a live node on the list.
        match unsafe { tail.as_ref() } {
            None => self.w.head.set(self, node),
            Some(t) => t.next.set(self, node),
        }
        self.w.tail.set(self, node);
        w.whence.set(self, WHERE_LIST);
    }

    /// Links `w` at the list head (a sentinel that must run next).
    pub(super) fn insert_front(&self, w: &RawWork) {
        let head = self.w.head.get(self);
        // SAFETY: the head, when not null, is a live node on the list.
        let Some(h) = (unsafe { head.as_ref() }) else {
            return self.append(w);
        };
        w.prev.set(self, ptr::null_mut());
        w.next.set(self, head);
        h.prev.set(self, w.as_mut_ptr());
        self.w.head.set(self, w.as_mut_ptr());
        w.whence.set(self, WHERE_LIST);
    }

    /// Links `w` right after `at`, which is on the list.
    pub(super) fn insert_after(&self, at: &RawWork, w: &RawWork) {
        let next = at.next.get(self);
        w.prev.set(self, at.as_mut_ptr());
        w.next.set(self, next);
        at.next.set(self, w.as_mut_ptr());
        // SAFETY: `at`'s successor, when not null, is a live node on the list.
        match unsafe { next.as_ref() } {
            None => self.w.tail.set(self, w.as_mut_ptr()),
            Some(n) => n.prev.set(self, w.as_mut_ptr()),
        }
        w.whence.set(self, WHERE_LIST);
    }

    /// Unlinks `w` from the list.
    #[inline]
    fn unlink(&self, w: &RawWork) {
        let (prev, next) = (w.prev.get(self), w.next.get(self));
        // SAFETY: `w`'s neighbours, when not null, are live nodes on the list.
        match unsafe { prev.as_ref() } {
            None => self.w.head.set(self, next),
            Some(p) => p.next.set(self, next),
        }
        // SAFETY: `w`'s successor, when not null, is a live node on the list.
        match unsafe { next.as_ref() } {
            None => self.w.tail.set(self, prev),
            Some(n) => n.prev.set(self, prev),
        }
        w.whence.set(self, WHERE_NONE);
    }

    /// Unlinks and returns the list head.
    #[inline]
    pub(super) fn pop(&self) -> Option<&'a RawWork> {
        let head = self.w.head.get(self);
        // SAFETY: list nodes are live while on the list (queue contract),
        // and stay so until their function has been called.
        let w = unsafe { head.as_ref() }?;
        self.unlink(w);
        Some(w)
    }

    /// Arms `dw` to fire at `at` (ns), keeping the timer list sorted, and
    /// kicks the worker if that is earlier than it means to wake.
    pub(super) fn timer_insert(&self, dw: &RawDelayedWork, at: u64) {
        dw.deadline.set(self, at);
        let w = &dw.work;
        let mut prev: *mut RawWork = ptr::null_mut();
        let mut p = self.w.timers.get(self);
        // Sorted by deadline; equal deadlines keep arming order.
        while !p.is_null() {
            // SAFETY: timer-list nodes are live RawDelayedWorks (`work` is
            // their first field, repr(C)).
            let d = unsafe { &*(p as *const RawDelayedWork) };
            if d.deadline.get(self) > at {
                break;
            }
            prev = p;
            p = d.work.next.get(self);
        }
        w.prev.set(self, prev);
        w.next.set(self, p);
        // SAFETY: `prev`, when not null, is a live timer-list node.
        match unsafe { prev.as_ref() } {
            None => self.w.timers.set(self, w.as_mut_ptr()),
            Some(pr) => pr.next.set(self, w.as_mut_ptr()),
        }
        // SAFETY: `p`, when not null, is a live timer-list node.
        if let Some(n) = unsafe { p.as_ref() } {
            n.prev.set(self, w.as_mut_ptr());
        }
        w.whence.set(self, WHERE_TIMER);
        if at < self.w.sleep_until.get(self) {
            self.kick();
        }
    }

    /// Unlinks `w` from the timer list.
    pub(super) fn timer_remove(&self, w: &RawWork) {
        let (prev, next) = (w.prev.get(self), w.next.get(self));
        // SAFETY: `w`'s timer-list neighbours, when not null, are live.
        match unsafe { prev.as_ref() } {
            None => self.w.timers.set(self, next),
            Some(p) => p.next.set(self, next),
        }
        // SAFETY: `w`'s timer-list successor, when not null, is a live armed work.
        if let Some(n) = unsafe { next.as_ref() } {
            n.prev.set(self, prev);
        }
        w.whence.set(self, WHERE_NONE);
    }

    /// The first armed timer, if any.
    pub(super) fn first_timer(&self) -> Option<&'a RawWork> {
        // SAFETY: timer-list nodes are live while armed (queue contract).
        unsafe { self.w.timers.get(self).as_ref() }
    }

    /// Moves expired timers to the list tail; returns the next deadline (ns).
    #[inline]
    pub(super) fn fire_timers(&self) -> u64 {
        let mut p = self.w.timers.get(self);
        if p.is_null() {
            return u64::MAX;
        }
        let now = now_ns();
        while !p.is_null() {
            // SAFETY: timer-list nodes are live RawDelayedWorks.
            let d = unsafe { &*(p as *const RawDelayedWork) };
            let at = d.deadline.get(self);
            if at > now {
                return at;
            }
            self.timer_remove(&d.work);
            self.append(&d.work);
            p = self.w.timers.get(self);
        }
        u64::MAX
    }

    /// Takes a pending `work` of this worker off wherever it sits, waiting
    /// out an in-flight push. With `keep_pending` the `PENDING` bit stays
    /// set (`mod_delayed` re-links it at once). Returns whether it was
    /// pending here and has been taken.
    pub(super) fn take_pending(&mut self, work: &RawWork, keep_pending: bool) -> bool {
        loop {
            self.drain();
            match self.whence(work) {
                WHERE_LIST => self.unlink(work),
                WHERE_TIMER => self.timer_remove(work),
                _ if work.is_pending() => {
                    // Claimed but not yet pushed: a few instructions away.
                    if !self.wait_in_flight(work) {
                        return false;
                    }
                    continue;
                }
                _ => return false,
            }
            if !keep_pending {
                work.state.fetch_and(!PENDING, Ordering::AcqRel);
            }
            return true;
        }
    }
}
