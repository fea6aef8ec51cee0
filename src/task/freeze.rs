//! The freezer's mechanism: the global *freezing* flag, the sequence word a
//! freezer waits on, and the refrigerator (`kernel/freezer.c`).
//!
//! This is what `schedule` and the worker loop need to be freeze points.
//! The policy (freeze every freezable task with a deadline, thaw, the
//! guard, `FreezeError`) is [`crate::freezer`], as Linux keeps
//! `kernel/power/process.c` apart from `kernel/freezer.c`.

use super::{current_task, flags, Task, FROZEN, RUNNING};
use crate::sync::{AtomicBool, AtomicU32, Ordering};
use crate::sys::futex;
use crate::sys::time::Deadline;

struct System {
    freezing: AtomicBool,
    /// Bumped (and futex-woken) whenever a task freezes, parks or exits.
    seq: AtomicU32,
}

/// Per process: a `fork()` child of a frozen process starts thawed (the
/// freeze was the parent's, over the parent's kthreads).
#[cfg(not(kthread_loom))]
fn system() -> &'static System {
    static SYSTEM: crate::sys::fork::PerProcess<System> =
        crate::sys::fork::PerProcess::new(|| System {
            freezing: AtomicBool::new(false),
            seq: AtomicU32::new(0),
        });
    SYSTEM.get()
}

#[cfg(kthread_loom)]
fn system() -> &'static System {
    loom::lazy_static! {
        static ref SYSTEM: System = System {
            freezing: AtomicBool::new(false),
            seq: AtomicU32::new(0),
        };
    }
    &SYSTEM
}

/// Whether the system is freezing (or frozen).
#[inline]
pub(crate) fn freezing() -> bool {
    system().freezing.load(Ordering::Acquire)
}

/// Sets or clears the freezing flag; returns what it was.
///
/// `AcqRel`: the freezer's later kicks and the thaw's RMWs on each task's
/// state word carry the flag to every task's next `set_current_state`.
pub(crate) fn set_freezing(on: bool) -> bool {
    system().freezing.swap(on, Ordering::AcqRel)
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
    if sys.freezing.load(Ordering::Acquire) {
        futex::wake(&sys.seq, i32::MAX);
    }
}

/// Sits in the refrigerator until thawed (or, with `check_stop`, stopped).
/// Returns `true` (it froze). Mirrors `__refrigerator()`.
pub(crate) fn refrigerator(t: &Task, check_stop: bool) -> bool {
    // State first: once the freezer sees the flag, `state()` already says Frozen.
    t.set_state(FROZEN);
    t.flags().enter_frozen();
    crate::trace::event!(DEBUG, "freezer_frozen", t.name(), t.tid());
    task_changed();
    loop {
        if !freezing() || (check_stop && t.has(flags::SHOULD_STOP)) {
            break;
        }
        t.sleep(None);
        t.set_state(FROZEN);
    }
    t.flags().leave_frozen();
    t.set_state(RUNNING);
    crate::trace::event!(DEBUG, "freezer_thawed", t.name(), t.tid());
    true
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
