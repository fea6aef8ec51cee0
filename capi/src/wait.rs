//! Wait queues (`<linux/wait.h>`): `wait_queue_head_t` is a
//! [`WaitQueue`], `struct wait_queue_entry` a [`WaitEntry`]; the
//! `wait_event*()` macros of the header loop over these entry points as the
//! kernel's do.

use crate::sched::{task_state, Site};
use crate::{guard, usable};
use kthread_rs::wait::{WaitEntry, WaitQueue, WQ_FLAG_EXCLUSIVE};
use kthread_rs::Task;
use std::ffi::{c_char, c_int, c_uint};

/// The kernel's `ERESTARTSYS`: an interruptible wait a signal ended.
const ERESTARTSYS: std::ffi::c_long = 512;

/// `TASK_INTERRUPTIBLE`, the one `mode` bit that narrows a wake.
const TASK_INTERRUPTIBLE: c_uint = 0x0001;

/// The queue behind `wq`, if it is usable.
fn queue<'a>(wq: *mut WaitQueue, what: &str) -> Option<&'a WaitQueue> {
    // SAFETY: checked usable; a live `wait_queue_head_t` by the C caller's
    // contract (the header's "valid while anyone uses it").
    usable(wq, what).then(|| unsafe { &*wq })
}

/// The entry behind `e`, if it is usable.
fn entry<'a>(e: *mut WaitEntry) -> Option<&'a WaitEntry> {
    // SAFETY: as for `queue`.
    usable(e, "struct wait_queue_entry").then(|| unsafe { &*e })
}

/// Makes `*wq` an empty queue (`init_waitqueue_head()`).
///
/// # Safety
/// `wq` is NULL or points to writable memory for a `wait_queue_head_t`
/// that no one uses now.
#[no_mangle]
pub unsafe extern "C" fn init_waitqueue_head(wq: *mut WaitQueue) {
    guard("init_waitqueue_head", (), || {
        if usable(wq, "wait_queue_head_t") {
            // SAFETY: writable and unused by the caller's contract.
            unsafe { wq.write(WaitQueue::new()) };
        }
    })
}

/// Makes `*e` an unlinked entry for `tsk` with `flags` (`init_wait_entry()`
/// with `current`, `init_waitqueue_entry()` with a task).
///
/// # Safety
/// `e` is NULL or points to writable memory for an entry that is on no
/// queue; `tsk` is a live task.
#[no_mangle]
pub unsafe extern "C" fn kthread_init_wait_entry(
    e: *mut WaitEntry,
    tsk: *mut std::ffi::c_void,
    flags: c_uint,
) {
    guard("init_wait_entry", (), || {
        if !usable(e, "struct wait_queue_entry") || crate::bad_ptr(tsk) {
            return;
        }
        // SAFETY: a live task by the caller's contract.
        let t = unsafe { Task::from_ptr(tsk) };
        // SAFETY: writable and on no queue by the caller's contract.
        unsafe { e.write(WaitEntry::new(&t, flags)) };
    })
}

/// Links `e` if it is not linked, then sets the caller's `state`, under
/// the queue's lock (`prepare_to_wait()`, `prepare_to_wait_exclusive()`,
/// `prepare_to_wait_event()`; `exclusive` < 0 keeps the entry's own flag).
/// Returns 0, or `-ERESTARTSYS` when a pending signal ends a sleep in
/// `state` (`signal_pending_state()`: any signal for an interruptible one,
/// `SIGKILL` for a killable one); the entry is then left for `finish_wait()`.
///
/// # Safety
/// `wq` and `e` are NULL or live; `e` stays valid and unmoved until
/// `finish_wait()` and is on no other queue.
#[no_mangle]
pub unsafe extern "C" fn kthread_prepare_to_wait(
    wq: *mut WaitQueue,
    e: *mut WaitEntry,
    state: c_uint,
    exclusive: c_int,
    file: *const c_char,
    line: c_int,
) -> std::ffi::c_long {
    guard("prepare_to_wait", 0, || {
        let (Some(q), Some(e)) = (queue(wq, "wait_queue_head_t"), entry(e)) else {
            return -(libc::EINVAL as std::ffi::c_long);
        };
        let raw = state;
        let state = task_state(state, Site::at(file, line));
        // SAFETY: the caller keeps `e` valid and unmoved until `finish_wait`.
        unsafe { q.prepare_to_wait_entry(e, state, (exclusive >= 0).then_some(exclusive > 0)) };
        if crate::signal::ends(raw) {
            -ERESTARTSYS
        } else {
            0
        }
    })
}

/// Sets the caller `TASK_RUNNING` and unlinks `e` if a wake has not (`finish_wait()`).
///
/// # Safety
/// `wq` and `e` are NULL or live, and `e` is unlinked or on `wq`.
#[no_mangle]
pub unsafe extern "C" fn finish_wait(wq: *mut WaitQueue, e: *mut WaitEntry) {
    guard("finish_wait", (), || {
        if let (Some(q), Some(e)) = (queue(wq, "wait_queue_head_t"), entry(e)) {
            // SAFETY: unlinked or on `q` by the caller's contract.
            unsafe { q.finish_wait_entry(e) };
        }
    })
}

/// Links `e` at the head, to stay linked across wakes (`add_wait_queue()`).
///
/// # Safety
/// As for `kthread_prepare_to_wait`, until `remove_wait_queue()`.
#[no_mangle]
pub unsafe extern "C" fn add_wait_queue(wq: *mut WaitQueue, e: *mut WaitEntry) {
    // SAFETY: the caller's contract, passed on.
    unsafe { add(wq, e, false) }
}

/// As `add_wait_queue()`, as an exclusive waiter at the tail (`add_wait_queue_exclusive()`).
///
/// # Safety
/// As for `add_wait_queue`.
#[no_mangle]
pub unsafe extern "C" fn add_wait_queue_exclusive(wq: *mut WaitQueue, e: *mut WaitEntry) {
    // SAFETY: the caller's contract, passed on.
    unsafe { add(wq, e, true) }
}

/// # Safety
/// As for `add_wait_queue`.
unsafe fn add(wq: *mut WaitQueue, e: *mut WaitEntry, exclusive: bool) {
    guard("add_wait_queue", (), || {
        if let (Some(q), Some(e)) = (queue(wq, "wait_queue_head_t"), entry(e)) {
            // SAFETY: the caller keeps `e` valid until `remove_wait_queue`.
            unsafe { q.add_wait_queue(e, exclusive) };
        }
    })
}

/// Unlinks `e` if it is linked (`remove_wait_queue()`).
///
/// # Safety
/// `wq` and `e` are NULL or live, and `e` is unlinked or on `wq`.
#[no_mangle]
pub unsafe extern "C" fn remove_wait_queue(wq: *mut WaitQueue, e: *mut WaitEntry) {
    guard("remove_wait_queue", (), || {
        if let (Some(q), Some(e)) = (queue(wq, "wait_queue_head_t"), entry(e)) {
            // SAFETY: unlinked or on `q` by the caller's contract.
            unsafe { q.remove_wait_queue(e) };
        }
    })
}

/// Wakes the waiters whose state `mode` covers: every non-exclusive one
/// and `nr_exclusive` exclusive ones, all if 0 (`__wake_up()`, behind
/// `wake_up()`, `wake_up_all()`, `wake_up_interruptible*()`, `wake_up_nr()`).
/// Returns how many tasks it woke.
///
/// # Safety
/// `wq` is NULL or a live `wait_queue_head_t`.
#[no_mangle]
pub unsafe extern "C" fn __wake_up(
    wq: *mut WaitQueue,
    mode: c_uint,
    nr_exclusive: c_int,
    key: *mut std::ffi::c_void,
) -> c_int {
    let _ = key;
    guard("wake_up", 0, || {
        let Some(q) = queue(wq, "wait_queue_head_t") else {
            return 0;
        };
        let nr = usize::try_from(nr_exclusive).unwrap_or(0);
        let n = if mode & crate::sched::TASK_NORMAL == TASK_INTERRUPTIBLE {
            q.wake_up_interruptible_nr(nr)
        } else {
            q.wake_up_nr(nr)
        };
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}

/// Whether a task waits on `wq` (`wq_has_sleeper()`, `waitqueue_active()`).
///
/// # Safety
/// `wq` is NULL or a live `wait_queue_head_t`.
#[no_mangle]
pub unsafe extern "C" fn wq_has_sleeper(wq: *mut WaitQueue) -> bool {
    guard("wq_has_sleeper", false, || {
        queue(wq, "wait_queue_head_t").is_some_and(WaitQueue::has_sleeper)
    })
}

const _: () = assert!(WQ_FLAG_EXCLUSIVE == 0x01, "the kernel's WQ_FLAG_EXCLUSIVE");
