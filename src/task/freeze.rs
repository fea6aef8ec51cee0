//! The freezer's mechanism: the global *freezing* flag, the sequence word a
//! freezer waits on, and the refrigerator (`kernel/freezer.c`).
//!
//! This is what `schedule` and the worker loop need to be freeze points.
//! The policy (freeze every freezable task with a deadline, thaw, the
//! guard, `FreezeError`) is [`crate::freezer`], as Linux keeps
//! `kernel/power/process.c` apart from `kernel/freezer.c`.

use super::{current_task, flags, Task, FROZEN, RUNNING};
use crate::sync::{AtomicU32, Ordering};
use crate::sys::futex;
use crate::sys::time::Deadline;

struct System {
    /// The freeze epoch: odd while freezing (or frozen), even otherwise;
    /// each freeze and each thaw moves it on by one, so every freeze has
    /// its own odd value. A task in the refrigerator records the epoch it
    /// froze for (`TaskInner::frozen_for`), and the freezer counts it as
    /// frozen only for the epoch in force: a task that saw the thaw and is
    /// on its way out is never mistaken for one frozen by the next freeze.
    epoch: AtomicU32,
    /// Bumped (and futex-woken) whenever a task freezes, parks or exits.
    seq: AtomicU32,
}

/// Per process: a `fork()` child of a frozen process starts thawed (the
/// freeze was the parent's, over the parent's kthreads).
#[cfg(not(kthread_loom))]
fn system() -> &'static System {
    static SYSTEM: crate::sys::fork::PerProcess<System> =
        crate::sys::fork::PerProcess::new(|| System {
            epoch: AtomicU32::new(0),
            seq: AtomicU32::new(0),
        });
    SYSTEM.get()
}

#[cfg(kthread_loom)]
fn system() -> &'static System {
    loom::lazy_static! {
        static ref SYSTEM: System = System {
            epoch: AtomicU32::new(0),
            seq: AtomicU32::new(0),
        };
    }
    &SYSTEM
}

/// Whether the system is freezing (or frozen).
#[inline]
pub(crate) fn freezing() -> bool {
    epoch() & 1 != 0
}

/// The freeze epoch (odd while freezing; see `System::epoch`).
#[inline]
pub(crate) fn epoch() -> u32 {
    system().epoch.load(Ordering::Acquire)
}

/// Sets or clears the freezing flag; returns what it was.
///
/// `AcqRel`: the freezer's later kicks and the thaw's RMWs on each task's
/// state word carry the flag to every task's next `set_current_state`.
pub(crate) fn set_freezing(on: bool) -> bool {
    let prev = system()
        .epoch
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (on != (e & 1 != 0)).then_some(e.wrapping_add(1))
        });
    match prev {
        Ok(e) | Err(e) => e & 1 != 0,
    }
}

/// The sequence word's value, read before a scan of the tasks: a change
/// after the scan makes [`wait_for_change`] return at once.
pub(crate) fn seq() -> u32 {
    system().seq.load(Ordering::Acquire)
}

/// Sleeps until the sequence moves on from `seen` or `deadline` passes.
pub(crate) fn wait_for_change(seen: u32, deadline: Deadline) {
    futex::wait(&system().seq, seen, Some(deadline));
}

/// Called when a task freezes, parks or exits: wakes a waiting freezer.
pub(crate) fn task_changed() {
    let sys = system();
    sys.seq.fetch_add(1, Ordering::AcqRel);
    if sys.epoch.load(Ordering::Acquire) & 1 != 0 {
        futex::wake(&sys.seq, i32::MAX);
    }
}

/// Sits in the refrigerator until thawed (or, with `check_stop`, stopped).
/// Returns `true` (it froze). Mirrors `__refrigerator()`.
///
/// Each round publishes `Frozen` on the state word, then reads the epoch:
/// if a freeze is in force, the task records that epoch (`frozen_for`),
/// which is what the freezer waits for, and sleeps; it leaves only after
/// reading an epoch without a freeze (a thaw, whose RMW on the state word
/// also wakes it). So a task the freezer counts as frozen for epoch `e`
/// has read `e` after publishing `Frozen`, and stays until `e` ends.
pub(crate) fn refrigerator(t: &Task, check_stop: bool) -> bool {
    t.flags().enter_frozen();
    crate::trace::event!(DEBUG, "freezer_frozen", t.name(), t.tid());
    loop {
        // State first: once the freezer sees the epoch recorded, `state()`
        // already says Frozen.
        t.set_state(FROZEN);
        let e = epoch();
        if e & 1 == 0 || (check_stop && t.has(flags::SHOULD_STOP)) {
            break;
        }
        if t.inner().mark_frozen_for(e) {
            task_changed();
        }
        t.sleep(None);
    }
    t.inner().mark_frozen_for(0);
    t.flags().leave_frozen();
    t.set_state(RUNNING);
    crate::trace::event!(DEBUG, "freezer_thawed", t.name(), t.tid());
    true
}

/// Whether `t` sits in the refrigerator for the freeze in force now.
pub(crate) fn frozen_now(t: &Task) -> bool {
    let e = epoch();
    e & 1 != 0 && t.inner().frozen_for() == e
}

/// Enters the refrigerator if the system is freezing and the caller is a
/// freezable task; mirrors `try_to_freeze()`. Returns whether it froze.
#[inline]
pub(crate) fn try_to_freeze() -> bool {
    if !freezing() {
        return false;
    }
    match current_task() {
        Some(t) if t.is_freezable() => refrigerator(&t, false),
        _ => false,
    }
}
