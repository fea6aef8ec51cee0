//! Flush sentinels, flush and cancel: `kthread_flush_work()`,
//! `kthread_flush_worker()`, `kthread_cancel_work_sync()`.

use super::claim::queue;
use super::list::{Locked, WHERE_LIST, WHERE_TIMER};
use super::{release, RawWork, RawWorker, PENDING, SENTINEL};
use crate::completion::Completion;
use crate::error::Error;
use crate::sync::Ordering;

/// The flush sentinel: a work that completes a completion. A blocking
/// flusher keeps it on its stack and waits; an async one (feature `async`)
/// keeps it on the heap, shared with the worker (see [`FlushWait`]).
#[repr(C)]
#[derive(Debug)]
struct Sentinel {
    work: RawWork,
    done: Completion,
}

unsafe extern "C" fn sentinel_fn(w: *mut RawWork) {
    // SAFETY: only `Sentinel`s are queued with this function; `work` is
    // their first field (repr(C)). A stack sentinel's flusher waits on
    // `done`, so it lives until `complete` has published; a heap sentinel
    // is kept alive by the queue's reference until `heap_release`.
    unsafe { (*(w as *const Sentinel)).done.complete() }
}

/// The release hook of a heap sentinel: drops the queue's reference.
#[cfg(feature = "async")]
unsafe extern "C" fn heap_release(w: *mut RawWork) {
    // SAFETY: only heap sentinels have this hook, and their queue's
    // reference was leaked from this `DynArc` by `FlushWait::place`.
    unsafe { crate::sync::DynArc::decrement_strong_count(w as *const Sentinel) }
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

    /// A sentinel for a waiter that is not a thread: the worker's release
    /// hook drops the queue's reference after it ran.
    #[cfg(feature = "async")]
    fn on_heap() -> crate::sync::DynArc<Sentinel> {
        let s = crate::sync::DynArc::new(Sentinel {
            work: RawWork::with_release(Some(sentinel_fn), Some(heap_release)),
            done: Completion::new(),
        });
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

/// Where a flush of one item stands once its sentinel is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placed {
    /// The item was idle: nothing to wait for (`false`).
    Idle,
    /// The instance ran while the flush looked for it (`true`, no wait).
    Ran,
    /// The sentinel is queued behind the instance: wait for it (`true`).
    Queued,
}

/// [`flush_work`] with the work's owner locked by `l`; consumes the lock.
pub(crate) fn flush_locked(l: Locked<'_>, work: &RawWork) -> Result<bool, Error> {
    let sentinel = Sentinel::new();
    let placed = place_flush(l, work, &sentinel)?;
    if placed == Placed::Queued {
        sentinel.done.wait();
    }
    Ok(placed != Placed::Idle)
}

/// The first half of a flush: queues `sentinel` right behind the instance
/// of `work` queued or running now (firing an armed timer first), under
/// the owner's lock `l`, which it consumes.
fn place_flush(mut l: Locked<'_>, work: &RawWork, sentinel: &Sentinel) -> Result<Placed, Error> {
    if l.worker().is_current_thread() {
        let busy = work.is_pending() || l.is_running(work);
        return if busy {
            Err(Error::WouldDeadlock)
        } else {
            Ok(Placed::Idle)
        };
    }
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
                    return Ok(Placed::Ran);
                }
                continue;
            }
            _ => return Ok(Placed::Idle),
        }
        return Ok(Placed::Queued);
    }
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

/// An async flush or cancel's wait for its sentinel (feature `async`): the
/// heap sentinel, shared with the worker, and the waker parked on its
/// completion.
///
/// The worker holds one reference from the queueing to the release after
/// the run, so the sentinel outlives whichever side lets go first; dropping
/// a `FlushWait` only unparks its waker (no wake reaches it afterwards) and
/// leaves the sentinel to run and free itself.
#[cfg(feature = "async")]
#[derive(Debug)]
pub(crate) struct FlushWait {
    /// `None`: nothing to wait for.
    sentinel: Option<crate::sync::DynArc<Sentinel>>,
    parked: crate::wakers::Parked,
}

#[cfg(feature = "async")]
impl FlushWait {
    /// Nothing to wait for: resolves at the first poll.
    pub(crate) fn ready() -> FlushWait {
        FlushWait {
            sentinel: None,
            parked: crate::wakers::Parked::new(0),
        }
    }

    /// A fresh heap sentinel with the queue's reference taken; `place`
    /// links it (or not) under the worker's lock.
    fn place(place: impl FnOnce(&Sentinel) -> Result<bool, Error>) -> Result<FlushWait, Error> {
        let s = Sentinel::on_heap();
        let queue_ref = crate::sync::DynArc::into_raw(s.clone());
        match place(&s) {
            Ok(true) => Ok(FlushWait {
                parked: crate::wakers::Parked::new(s.done.key()),
                sentinel: Some(s),
            }),
            other => {
                // Never linked: the queue's reference is ours to drop.
                // SAFETY: leaked just above, and nothing else saw it.
                drop(unsafe { crate::sync::DynArc::from_raw(queue_ref) });
                other.map(|_| FlushWait::ready())
            }
        }
    }

    /// Ready once the sentinel has run (at once if there is none).
    pub(crate) fn poll_done(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        match &self.sentinel {
            None => std::task::Poll::Ready(()),
            Some(s) => {
                let p = s.done.poll_wait(&mut self.parked, cx);
                if p.is_ready() {
                    self.sentinel = None;
                }
                p
            }
        }
    }
}

/// [`flush_locked`] for an async waiter: places a heap sentinel and returns
/// at once, with whether the flush covers an instance (`false`: idle).
#[cfg(feature = "async")]
pub(crate) fn flush_locked_async(
    l: Locked<'_>,
    work: &RawWork,
) -> Result<(bool, FlushWait), Error> {
    let mut covers = false;
    let wait = FlushWait::place(|s| {
        let placed = place_flush(l, work, s)?;
        covers = placed != Placed::Idle;
        Ok(placed == Placed::Queued)
    })?;
    Ok((covers, wait))
}

/// [`flush_work`] for an async waiter (the loom models' entry; the safe
/// layer goes through [`flush_locked_async`] with the owner it keeps alive).
///
/// # Safety
/// The worker `work` was last queued on must still exist.
#[cfg(all(feature = "async", kthread_loom))]
pub(crate) unsafe fn flush_work_async(work: &RawWork) -> Result<(bool, FlushWait), Error> {
    // SAFETY: forwarded caller contract.
    match unsafe { lock_owner(work) } {
        Some(l) => flush_locked_async(l, work),
        None => Ok((false, FlushWait::ready())),
    }
}

/// [`flush_worker`] for an async waiter: queues a heap sentinel and returns at once.
#[cfg(feature = "async")]
pub(crate) fn flush_worker_async(worker: &RawWorker) -> Result<FlushWait, Error> {
    if worker.is_inherited() {
        return Err(Error::Forked);
    }
    if worker.is_current_thread() {
        return Err(Error::WouldDeadlock);
    }
    FlushWait::place(|s| {
        // SAFETY: the sentinel is fresh (never queued, so no old owner), and
        // the queue's reference keeps it alive until its release.
        Ok(unsafe { queue(worker, &s.work) })
    })
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
pub(crate) fn cancel_locked(l: Locked<'_>, work: &RawWork) -> bool {
    let owner = l.worker();
    let sentinel = Sentinel::new();
    let (was_pending, running) = cancel_begin(l, work, &sentinel);
    if running {
        sentinel.done.wait();
    }
    owner.lock().cancel_end(work);
    was_pending
}

/// The first half of a cancel: blocks queueing, takes a pending instance
/// off its list (and drops its queue reference), and queues `sentinel` at
/// the front if an instance runs on another thread. Returns (was pending,
/// the sentinel is queued). The caller waits for the sentinel if queued,
/// then calls [`cancel_end`].
fn cancel_begin(mut l: Locked<'_>, work: &RawWork, sentinel: &Sentinel) -> (bool, bool) {
    let owner = l.worker();
    // Block queueing first, so an instance that is running now cannot
    // re-queue itself behind our back (`work->canceling++`).
    l.cancel_begin(work);
    let was_pending = l.take_pending(work, false);
    let running = l.is_running(work) && !owner.is_current_thread();
    if running {
        l.insert_front(sentinel.armed());
    }
    drop(l);
    if was_pending {
        // SAFETY: we took the pending instance off its list; the caller's
        // `&work` keeps the item itself alive across the call.
        unsafe { release(work.as_mut_ptr()) };
    }
    (was_pending, running)
}

/// The end of a cancel begun by [`cancel_locked_async`]: queueing `work`
/// succeeds again once the last canceller has ended.
#[cfg(feature = "async")]
pub(crate) fn cancel_end(owner: &RawWorker, work: &RawWork) {
    owner.lock().cancel_end(work);
}

/// [`cancel_locked`] for an async waiter: returns at once with whether the
/// instance was pending and the wait for a running one. The caller must call
/// [`cancel_end`] after that wait, or when it gives up waiting.
#[cfg(feature = "async")]
pub(crate) fn cancel_locked_async(l: Locked<'_>, work: &RawWork) -> (bool, FlushWait) {
    let mut was_pending = false;
    let wait = FlushWait::place(|s| {
        let (pending, running) = cancel_begin(l, work, s);
        was_pending = pending;
        Ok(running)
    });
    (was_pending, wait.unwrap_or_else(|_| FlushWait::ready()))
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
