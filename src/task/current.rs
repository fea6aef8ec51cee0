//! The calling thread's task (the kernel's `current`).
//!
//! A thread-local pointer to the task's shared state. A kthread installs its
//! own task at birth and clears it at exit, and holds a strong reference
//! the whole time; any other thread that sleeps or wakes through the task
//! API is given a task of its own on first use, kept in `ADOPTED`.

use super::{Task, TaskInner};
use std::cell::{Cell, RefCell};

#[cfg(not(kthread_loom))]
std::thread_local! {
    static CURRENT: Cell<*const TaskInner> = const { Cell::new(std::ptr::null()) };
    /// Keeps a foreign thread's task alive for the thread's life.
    static ADOPTED: RefCell<Option<Task>> = const { RefCell::new(None) };
}

#[cfg(kthread_loom)]
loom::thread_local! {
    static CURRENT: Cell<*const TaskInner> = Cell::new(std::ptr::null());
    static ADOPTED: RefCell<Option<Task>> = RefCell::new(None);
}

/// Installs `task` as the calling thread's current task (thread start, loom models).
///
/// The caller keeps a strong reference to `task` until [`clear_current`].
pub(crate) fn set_current(task: &Task) {
    let p: *const TaskInner = &*task.0;
    CURRENT.with(|c| c.set(p));
}

/// Clears the calling thread's current task (thread exit).
pub(crate) fn clear_current() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// Runs `f` with the calling thread's task, if it has one.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskInner>) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: a non-null CURRENT points at a TaskInner that this very thread
    // keeps alive until `clear_current` runs (a kthread's main holds a
    // strong reference for its whole life, a foreign thread's is in ADOPTED).
    f(unsafe { p.as_ref() })
}

/// The calling thread's task, giving a foreign thread one on first use.
pub(crate) fn current_or_adopt() -> Task {
    if let Some(t) = current_task() {
        return t;
    }
    let t = Task::foreign("foreign");
    ADOPTED.with(|a| *a.borrow_mut() = Some(t.clone()));
    set_current(&t);
    t
}

/// The calling thread's task (kthread or adopted foreign thread).
pub(crate) fn current_task() -> Option<Task> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is `Arc::as_ptr` of a task this thread keeps alive (as in
    // `with_current`), which is `Task::from_ptr`'s contract.
    Some(unsafe { Task::from_ptr(p.cast()) })
}
