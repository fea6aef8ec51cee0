//! The `PENDING` claim and the queue side: `queue`, `queue_delayed`, `mod_delayed`.

use super::list::{deadline_ns, Claimed};
use super::{owner_of, RawDelayedWork, RawWork, RawWorker, CANCELING, PENDING, SENTINEL};
use crate::sync::Ordering;
use std::ptr;
use std::time::Duration;

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

impl Hook<'_> {
    /// The raw API's hook: nothing to re-point, moves allowed (the caller's
    /// contract covers the old owner).
    fn raw<R>(f: impl FnOnce(&mut Hook<'_>) -> R) -> R {
        f(&mut Hook {
            moved: &mut || {},
            may_move: true,
        })
    }
}

impl RawWork {
    /// Claims PENDING for `worker`. Returns `Ok(previous owner)` on success.
    ///
    /// A work idle on another worker may move only while that worker is not
    /// running it, which needs the old owner's lock (slow, rare path).
    ///
    /// `hook.moved` runs right after a claim that changed the owner (first
    /// queue, or a move), before the item is pushed: it cannot move again
    /// until it has run, so the safe layer can re-point its owner reference
    /// there without racing another move. With `hook.may_move` false a
    /// needed move is refused (`Claim::WouldMove`) without touching the old
    /// owner, whose lifetime the caller then need not guarantee.
    ///
    /// # Safety
    /// With `hook.may_move`, the previous owner, if any and different, must
    /// still exist.
    #[inline]
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
                // SAFETY: with `may_move` the caller guarantees the old owner exists.
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
        let l = old.lock();
        let ok = !l.is_running(self)
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
        drop(l);
        if ok {
            Ok(old)
        } else {
            Err(Claim::Busy)
        }
    }
}

/// Queues `work` on `worker`; mirrors `kthread_queue_work()`.
///
/// Returns `false` if it was already pending (anywhere), being cancelled, or
/// running on another worker. Allocates nothing; wakes the worker only if
/// it is idle. Async-signal-safe: no lock (only atomics and a futex wake)
/// unless the item moves from another worker, which takes that worker's
/// lock (see `docs/design.md`, "Async-signal-safe calls").
///
/// # Safety
/// `work` must stay valid and unmoved until it has run or been cancelled,
/// `worker` must outlive that too, and a worker the work was queued on
/// before must still exist.
#[inline]
pub unsafe fn queue(worker: &RawWorker, work: &RawWork) -> bool {
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    Hook::raw(|hook| unsafe { queue_hooked(worker, work, hook) }).is_ok()
}

/// As [`queue`], running `hook.moved` if the claim changed the item's owner
/// (see `RawWork::claim`).
///
/// # Safety
/// As for [`queue`]; the old owner need exist only with `hook.may_move`.
#[inline]
pub(crate) unsafe fn queue_hooked(
    worker: &RawWorker,
    work: &RawWork,
    hook: &mut Hook<'_>,
) -> Result<(), Claim> {
    if worker.is_inherited() {
        return Err(Claim::Busy); // fork() child's copy: nobody would run it
    }
    // SAFETY: forwarded caller contract.
    unsafe { work.claim(worker, hook) }?;
    // SAFETY: our claim just succeeded, and the queue contract keeps `work` valid.
    worker.push(unsafe { Claimed::new(work) });
    crate::trace::global!(
        TRACE,
        "sched_kthread_work_queue_work",
        worker = worker as *const RawWorker as usize,
        work = work as *const RawWork as usize
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
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    Hook::raw(|hook| unsafe { queue_delayed_hooked(worker, dwork, delay, hook) }).is_ok()
}

/// As [`queue_delayed`], running `hook.moved` if the claim changed the owner.
///
/// # Safety
/// As for [`queue_hooked`].
pub(crate) unsafe fn queue_delayed_hooked(
    worker: &RawWorker,
    dwork: &RawDelayedWork,
    delay: Duration,
    hook: &mut Hook<'_>,
) -> Result<(), Claim> {
    if worker.is_inherited() {
        return Err(Claim::Busy);
    }
    // SAFETY: forwarded caller contract.
    unsafe { dwork.work.claim(worker, hook) }?;
    // SAFETY: our claim just succeeded, and the queue contract keeps `dwork` valid.
    arm(worker, dwork, delay, unsafe { Claimed::new(&dwork.work) });
    Ok(())
}

/// Links a freshly claimed delayed work: pushed at once for a zero delay,
/// otherwise onto the timer list.
fn arm(worker: &RawWorker, dwork: &RawDelayedWork, delay: Duration, claimed: Claimed<'_>) {
    if delay.is_zero() {
        worker.push(claimed);
        return;
    }
    let at = deadline_ns(delay);
    worker.lock().timer_insert(dwork, at);
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
    // SAFETY: forwarded caller contract (which covers a move's old owner).
    Hook::raw(|hook| unsafe { mod_delayed_hooked(worker, dwork, delay, hook) }).unwrap_or(true)
}

/// As [`mod_delayed`], running `hook.moved` if arming it changed the owner.
///
/// # Safety
/// As for [`queue_hooked`].
pub(crate) unsafe fn mod_delayed_hooked(
    worker: &RawWorker,
    dwork: &RawDelayedWork,
    delay: Duration,
    hook: &mut Hook<'_>,
) -> Result<bool, Claim> {
    if worker.is_inherited() {
        return Err(Claim::Busy); // nothing changes (as a losing race)
    }
    let work = &dwork.work;
    loop {
        // SAFETY: forwarded caller contract.
        match unsafe { work.claim(worker, hook) } {
            Ok(_) => {
                // SAFETY: our claim just succeeded; the contract keeps it valid.
                arm(worker, dwork, delay, unsafe { Claimed::new(work) });
                return Ok(false);
            }
            Err(Claim::WouldMove) => return Err(Claim::WouldMove),
            Err(Claim::Busy) => {}
        }
        let s = work.state.load(Ordering::Acquire);
        if s & CANCELING != 0 || !ptr::eq(owner_of(s), worker) {
            return Ok(true);
        }
        let Some(mut l) = worker.lock_if_owner(work) else {
            continue;
        };
        if work.state.load(Ordering::Acquire) & CANCELING != 0 {
            return Ok(true);
        }
        // PENDING stays set throughout: clearing it even briefly would let a
        // lock-free queue claim the item while it is still linked here.
        if !l.take_pending(work, true) {
            // It ran (or was cancelled) meanwhile: queue it afresh.
            continue;
        }
        // Still ours: re-arm without releasing the queue's reference.
        if delay.is_zero() {
            l.append(work);
            l.kick();
        } else {
            l.timer_insert(dwork, deadline_ns(delay));
        }
        return Ok(true);
    }
}
