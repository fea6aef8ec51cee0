//! The calling thread's task (the kernel's `current`).
//!
//! A thread-local pointer to the task's shared state. A kthread installs its
//! own task at birth and clears it at exit, and holds a strong reference
//! the whole time; any other thread that sleeps or wakes through the task
//! API is given a task of its own on first use, kept in `ADOPTED`.
//!
//! # Thread-local destruction
//!
//! Thread-local destructors run in an unspecified order, and a user's
//! destructor may call `current()`, `should_stop()` or `schedule*()` after
//! ours ran (as std's `thread::current()` must handle). So:
//!
//! * `CURRENT` has no destructor: it is readable until the thread's last
//!   instruction.
//! * `ADOPTED`'s destructor first turns `CURRENT` into `TORN_DOWN`, then
//!   drops the task: nothing can reach the freed task through `CURRENT`.
//! * From then on the thread has no task: `with_current`/`current_task`
//!   answer `None`, a call that needs a task gets a fresh one that is not
//!   kept (std's `thread::current()` does the same once its key is gone),
//!   and `schedule*` sleeps out a timeout without a task (nobody could
//!   wake it) and returns at once without one.

use super::{Task, TaskInner};
use std::cell::{Cell, RefCell};

/// `CURRENT` after the adopted task was destroyed at thread exit.
const TORN_DOWN: *const TaskInner = std::ptr::dangling();

/// An adopted task; dropping it (thread-local destruction) first makes
/// `CURRENT` stop pointing at it.
struct Adopted(Task);

impl Drop for Adopted {
    fn drop(&mut self) {
        let me: *const TaskInner = self.0.inner();
        CURRENT.with(|c| {
            if c.get() == me {
                c.set(TORN_DOWN);
            }
        });
    }
}

#[cfg(not(kthread_loom))]
std::thread_local! {
    static CURRENT: Cell<*const TaskInner> = const { Cell::new(std::ptr::null()) };
    /// Keeps a foreign thread's task alive for the thread's life.
    static ADOPTED: RefCell<Option<Adopted>> = const { RefCell::new(None) };
}

#[cfg(kthread_loom)]
loom::thread_local! {
    static CURRENT: Cell<*const TaskInner> = Cell::new(std::ptr::null());
    static ADOPTED: RefCell<Option<Adopted>> = RefCell::new(None);
}

/// The valid task pointer in `CURRENT`, if any.
#[inline]
fn current_ptr() -> Option<*const TaskInner> {
    let p = CURRENT.with(|c| c.get());
    (!p.is_null() && p != TORN_DOWN).then_some(p)
}

/// Installs `task` as the calling thread's current task (thread start, loom models).
///
/// The caller keeps a strong reference to `task` until [`clear_current`].
pub(crate) fn set_current(task: &Task) {
    let p: *const TaskInner = task.inner();
    CURRENT.with(|c| c.set(p));
}

/// Clears the calling thread's current task (thread exit).
pub(crate) fn clear_current() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// Whether the thread's adopted task was destroyed (thread-local teardown).
pub(crate) fn torn_down() -> bool {
    CURRENT.with(|c| c.get()) == TORN_DOWN
}

/// Runs `f` with the calling thread's task, if it has one.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskInner>) -> R) -> R {
    // SAFETY: a valid CURRENT points at a TaskInner that this very thread
    // keeps alive until it clears or tears down CURRENT (a kthread's main
    // holds a strong reference for its whole life, a foreign thread's is in
    // ADOPTED, whose destructor turns CURRENT to TORN_DOWN first).
    f(current_ptr().map(|p| unsafe { &*p }))
}

/// The calling thread's task, giving a foreign thread one on first use.
///
/// During thread-local teardown the task is fresh and not kept (module docs).
pub(crate) fn current_or_adopt() -> Task {
    if let Some(t) = current_task() {
        return t;
    }
    let t = Task::foreign("foreign");
    t.set_tid(crate::sys::sched::gettid());
    if !torn_down() {
        // `try_with`: ADOPTED itself may be gone if we are called from a
        // later thread-local destructor; the task is then simply not kept.
        let kept = ADOPTED.try_with(|a| {
            *a.borrow_mut() = Some(Adopted(t.clone()));
        });
        if kept.is_ok() {
            set_current(&t);
        }
    }
    t
}

/// The calling thread's task (kthread or adopted foreign thread).
pub(crate) fn current_task() -> Option<Task> {
    let p = current_ptr()?;
    // SAFETY: `p` is `Arc::as_ptr` of a task this thread keeps alive (as in
    // `with_current`), which is `Task::from_ptr`'s contract.
    Some(unsafe { Task::from_ptr(p.cast()) })
}
