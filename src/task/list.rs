//! The list of live tasks (the kernel's task list): every kthread from the
//! moment it is set up until it exits, and kthreadd.
//!
//! The freezer walks it to find freezable tasks; the registry lists it.
//! Removal is a linear scan, fine below some ten thousand threads.

use super::Task;
use crate::sync::{lock_static, StaticMutex};
use crate::sys::fork::PerProcess;

/// Per process: a `fork()` child starts with an empty list (its parent's
/// threads do not exist there), whatever state the parent's list was in.
static TASKS: PerProcess<StaticMutex<Vec<Task>>> = PerProcess::new(|| StaticMutex::new(Vec::new()));

/// Adds a task; the thread itself calls it before it answers its creator.
pub(crate) fn add(t: &Task) {
    lock_static(TASKS.get()).push(t.clone());
}

/// Removes a task; the thread itself calls it at exit, before `exited`
/// completes, so once `stop` returns the task is no longer listed.
pub(crate) fn remove(t: &Task) {
    let mut v = lock_static(TASKS.get());
    if let Some(i) = v.iter().position(|x| x == t) {
        v.swap_remove(i);
    }
}

/// The live tasks whose flags have all of `mask`.
pub(crate) fn tasks_with(mask: u32) -> Vec<Task> {
    lock_static(TASKS.get())
        .iter()
        .filter(|t| t.flags().load() & mask == mask)
        .cloned()
        .collect()
}

/// Every live task.
pub(crate) fn snapshot() -> Vec<Task> {
    lock_static(TASKS.get()).clone()
}
