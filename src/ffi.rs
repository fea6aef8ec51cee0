//! Hidden hooks for the C ABI (`capi/`, the `kthread-capi` crate).
//!
//! The C ABI hands out `struct task_struct *`: a pointer to a task's shared
//! state (the `TaskInner` behind a [`Task`]), and calls park, unpark and
//! bind with nothing but that pointer, as kernel code does. These functions
//! are the few crate-private operations that need, each a one-line forward:
//! the C ABI stays a thin front over the same code as the Rust API.
//!
//! Not a stable interface: `#[doc(hidden)]`, for `kthread-capi` only.
#![cfg(not(kthread_loom))]

use crate::error::Error;
use crate::task::{self, Task};
use std::ffi::c_void;
use std::sync::Arc;

/// The address of `task`'s shared state: what the C ABI calls `struct task_struct *`.
///
/// Stable for the task's life and equal for every clone of the task.
///
/// ```
/// let k = kthread::create("ptr", || ())?;
/// let p = kthread::ffi::task_as_ptr(k.task());
/// assert_eq!(p, kthread::ffi::task_as_ptr(&k.task().clone()));
/// assert!(!p.is_null());
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn task_as_ptr(task: &Task) -> *const c_void {
    Arc::as_ptr(&task.0).cast()
}

/// A new reference to the task whose shared state is at `ptr`.
///
/// ```
/// let k = kthread::create("back", || ())?;
/// let p = kthread::ffi::task_as_ptr(k.task());
/// // SAFETY: `k` keeps the task alive while we clone it.
/// let t = unsafe { kthread::ffi::task_from_ptr(p) };
/// assert_eq!(&t, k.task());
/// # Ok::<(), kthread::Error>(())
/// ```
///
/// # Safety
/// `ptr` must come from [`task_as_ptr`] or [`current_ptr`], and the task
/// must still be alive: something (a handle, a `Task`, the thread itself
/// for its own task) must hold a reference to it for the whole call.
pub unsafe fn task_from_ptr(ptr: *const c_void) -> Task {
    let p = ptr.cast::<task::TaskInner>();
    // SAFETY: the caller guarantees `p` came from `Arc::as_ptr` of a live
    // task, so its strong count is at least one while we add ours.
    unsafe {
        Arc::increment_strong_count(p);
        Task(Arc::from_raw(p))
    }
}

/// The calling thread's task pointer (what C's `current` reads).
///
/// A thread that is not a kthread (such as `main`) is given a task of its
/// own on first use, so it can sleep in `schedule()` and be woken; that
/// task, and so the pointer, lives as long as the thread.
///
/// ```
/// let me = kthread::ffi::current_ptr();
/// assert_eq!(me, kthread::ffi::current_ptr()); // the same task every time
/// let k = kthread::run("cur", || kthread::ffi::current_ptr() as usize)?;
/// let theirs = kthread::ffi::task_as_ptr(k.task()) as usize;
/// assert_eq!(k.stop()?, theirs);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_ptr() -> *const c_void {
    // The pointer outlives the `Task` dropped here: the running kthread or
    // the adopting thread-local holds a reference for the thread's life.
    task_as_ptr(&task::current_or_adopt())
}

/// Parks `task` (as [`Kthread::park`](crate::Kthread::park)) without its handle.
///
/// ```
/// let k = kthread::create("p", || ())?;
/// kthread::ffi::park(k.task())?; // never woken: parks before its function
/// assert!(kthread::ffi::park(k.task()).is_err()); // already parked
/// kthread::ffi::unpark(k.task());
/// k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn park(task: &Task) -> Result<(), Error> {
    crate::kthread::park_task(task)
}

/// Unparks `task` (as [`Kthread::unpark`](crate::Kthread::unpark)) without its handle.
///
/// ```
/// let k = kthread::create("u", || ())?;
/// kthread::ffi::unpark(k.task()); // not parked: nothing happens
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn unpark(task: &Task) {
    crate::kthread::unpark_task(task)
}

/// Binds the not-yet-woken `task` to `cpus` (as
/// [`Kthread::bind_mask`](crate::Kthread::bind_mask)) without its handle.
///
/// ```
/// let k = kthread::create("b", || ())?;
/// kthread::ffi::bind_mask(k.task(), &[0])?;
/// assert!(k.task().is_bound());
/// k.wake_up();
/// assert!(kthread::ffi::bind_mask(k.task(), &[0]).is_err()); // already woken
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn bind_mask(task: &Task, cpus: &[usize]) -> Result<(), Error> {
    crate::kthread::bind_task(task, cpus)
}
