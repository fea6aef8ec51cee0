//! Flush sentinels, flush and cancel: `kthread_flush_work()`,
//! `kthread_flush_worker()`, `kthread_cancel_work_sync()`.

use super::claim::queue;
use super::list::{Locked, WHERE_LIST, WHERE_TIMER};
use super::{release, RawWork, RawWorker, PENDING, SENTINEL};
use crate::completion::Completion;
use crate::error::Error;
use crate::sync::Ordering;

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

    /// Marks the sentinel pending before a lock holder links it directly
    /// (no claim: nobody else can see it yet).
    fn armed(&self) -> &RawWork {
        self.work.state.store(PENDING | SENTINEL, Ordering::Relaxed);
        &self.work
    }
}

/// Locks `work`'s owner; `None` if it has none. Re-checks ownership under the lock.
///
/// # Safety
/// The owner must still exist.
unsafe fn lock_owner(work: &RawWork) -> Option<Locked<'_>> {
    loop {
        // SAFETY: the caller guarantees the owner exists.
        let owner = unsafe { work.owner().as_ref() }?;
        if owner.is_inherited() {
            // A fork() child's copy: its lock may be held by a thread that
            // does not exist here, and nothing will run the item. Idle.
            return None;
        }
        if let Some(l) = owner.lock_if_owner(work) {
            return Some(l);
        }
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
        Some(l) => flush_locked(l, work),
        None => Ok(false),
    }
}

/// [`flush_work`] with the work's owner locked by `l`; consumes the lock.
pub(crate) fn flush_locked(mut l: Locked<'_>, work: &RawWork) -> Result<bool, Error> {
    if l.worker().is_current_thread() {
        let busy = work.is_pending() || l.is_running(work);
        return if busy {
            Err(Error::WouldDeadlock)
        } else {
            Ok(false)
        };
    }
    let sentinel = Sentinel::new();
    loop {
        l.drain();
        match l.whence(work) {
            WHERE_LIST => l.insert_after(work, sentinel.armed()),
            WHERE_TIMER => {
                // An armed timer: fire it now, then wait for that run (the
                // kernel's `flush_delayed_work` semantics), so a flush never
                // sleeps out a timer.
                l.timer_remove(work);
                l.append(work);
                l.insert_after(work, sentinel.armed());
                l.kick();
            }
            _ if l.is_running(work) => l.insert_front(sentinel.armed()),
            _ if work.is_pending() => {
                if !l.wait_in_flight(work) {
                    // That instance ran and the work moved on: done.
                    return Ok(true);
                }
                continue;
            }
            _ => return Ok(false),
        }
        break;
    }
    drop(l);
    sentinel.done.wait();
    Ok(true)
}

/// Waits for everything queued on `worker` before the call; mirrors `kthread_flush_worker()`.
///
/// From the worker's own thread: `Err(WouldDeadlock)`. A worker with no
/// thread attached yet waits for one, as in the kernel.
///
/// ```
/// use std::sync::Arc;
/// use kthread::worker::raw::{self, RawWorker};
/// let w = Arc::new(RawWorker::new(0));
/// let w2 = w.clone();
/// let k = kthread::run("flushed", move || raw::worker_fn(&w2))?;
/// raw::flush_worker(&w)?; // the loop is attached and has run everything queued
/// k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn flush_worker(worker: &RawWorker) -> Result<(), Error> {
    if worker.is_inherited() {
        return Err(Error::Forked);
    }
    if worker.is_current_thread() {
        return Err(Error::WouldDeadlock);
    }
    let sentinel = Sentinel::new();
    // SAFETY: the sentinel is fresh (never queued, so no old owner), and we
    // wait for it to run before it goes out of scope.
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
        Some(l) => cancel_locked(l, work),
        None => false,
    }
}

/// [`cancel_sync`] with the work's owner locked by `l`; consumes the lock.
pub(crate) fn cancel_locked(mut l: Locked<'_>, work: &RawWork) -> bool {
    let owner = l.worker();
    // Block queueing first, so an instance that is running now cannot
    // re-queue itself behind our back (`work->canceling++`).
    l.cancel_begin(work);
    let was_pending = l.take_pending(work, false);
    let running = l.is_running(work) && !owner.is_current_thread();
    let sentinel = Sentinel::new();
    if running {
        l.insert_front(sentinel.armed());
    }
    drop(l);
    if was_pending {
        // SAFETY: we took the pending instance off its list; the caller's
        // `&work` keeps the item itself alive across the call.
        unsafe { release(work.as_mut_ptr()) };
    }
    if running {
        sentinel.done.wait();
    }
    owner.lock().cancel_end(work);
    was_pending
}

/// Cancels every armed timer of `worker` (used by destroy); returns how many.
///
/// ```
/// let w = kthread::worker::raw::RawWorker::new(0);
/// assert_eq!(kthread::worker::raw::cancel_timers(&w), 0);
/// ```
pub fn cancel_timers(worker: &RawWorker) -> usize {
    if worker.is_inherited() {
        return 0;
    }
    let mut taken = Vec::new();
    let l = worker.lock();
    while let Some(w) = l.first_timer() {
        l.timer_remove(w);
        w.state.fetch_and(!PENDING, Ordering::AcqRel);
        taken.push(w.as_mut_ptr());
    }
    drop(l);
    for &w in &taken {
        // SAFETY: each was pending, so the queue contract kept it alive, and
        // we took it off the timer list: we own its queued reference.
        unsafe { release(w) };
    }
    taken.len()
}
