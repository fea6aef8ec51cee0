//! The list of live tasks (the kernel's task list): every kthread from the
//! moment it is set up until it exits, and kthreadd.
//!
//! The freezer walks it to find freezable tasks; the registry lists it.
//! Each task keeps its index, so adding and removing are O(1) however many
//! threads there are (ten thousand sleepers stop in linear time).

use super::Task;
use crate::sync::{lock_static, Ordering, StaticMutex};
use crate::sys::fork::PerProcess;

/// Per process: a `fork()` child starts with an empty list (its parent's
/// threads do not exist there), whatever state the parent's list was in.
static TASKS: PerProcess<StaticMutex<Vec<Task>>> = PerProcess::new(|| StaticMutex::new(Vec::new()));

/// Adds a task; the thread itself calls it before it answers its creator.
pub(crate) fn add(t: &Task) {
    let mut v = lock_static(TASKS.get());
    t.0.list_index.store(v.len(), Ordering::Relaxed);
    v.push(t.clone());
}

/// Removes a task; the thread itself calls it at exit, before `exited`
/// completes, so once `stop` returns the task is no longer listed.
pub(crate) fn remove(t: &Task) {
    let mut v = lock_static(TASKS.get());
    // Relaxed: the index is only touched under this lock.
    let i = t.0.list_index.swap(usize::MAX, Ordering::Relaxed);
    if v.get(i) != Some(t) {
        // Not listed here: never added, or a fork() child's list.
        return;
    }
    v.swap_remove(i);
    if let Some(moved) = v.get(i) {
        moved.0.list_index.store(i, Ordering::Relaxed);
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
