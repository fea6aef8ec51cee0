//! `current`, task states, `schedule()`, `schedule_timeout()`, `wake_up_process()`.

use crate::{bad_ptr, duration_to_jiffies, guard, jiffies_to_duration};
use kthread_rs::{Task, TaskState};
use std::ffi::{c_int, c_long, c_uint, c_void};

/// `TASK_RUNNING`, `TASK_INTERRUPTIBLE`, `TASK_UNINTERRUPTIBLE`: the kernel's values.
const TASK_RUNNING: c_uint = 0;
const TASK_INTERRUPTIBLE: c_uint = 1;
const TASK_UNINTERRUPTIBLE: c_uint = 2;

/// `MAX_SCHEDULE_TIMEOUT`: sleep without a timeout.
const MAX_SCHEDULE_TIMEOUT: c_long = c_long::MAX;

fn task_state(raw: c_uint) -> Option<TaskState> {
    match raw {
        TASK_RUNNING => Some(TaskState::Running),
        TASK_INTERRUPTIBLE => Some(TaskState::Interruptible),
        TASK_UNINTERRUPTIBLE => Some(TaskState::Uninterruptible),
        _ => None,
    }
}

/// The calling thread's task (`current`); a thread that is not a kthread
/// is given one on first use, valid for the thread's life.
#[no_mangle]
pub extern "C" fn get_current() -> *mut c_void {
    guard("get_current", std::ptr::null_mut(), || {
        Task::current().as_ptr().cast_mut()
    })
}

/// Publishes the caller's state before it checks its wake-up condition
/// (`set_current_state()`); an unknown state is ignored.
#[no_mangle]
pub extern "C" fn set_current_state(state: c_uint) {
    guard("set_current_state", (), || {
        if let Some(s) = task_state(state) {
            kthread_rs::set_current_state(s);
        }
    })
}

/// As [`set_current_state`] (`__set_current_state()`: the kernel's form
/// without a barrier; here the same, always ordered, operation).
#[no_mangle]
pub extern "C" fn __set_current_state(state: c_uint) {
    guard("__set_current_state", (), || {
        if let Some(s) = task_state(state) {
            kthread_rs::set_current_state(s);
        }
    })
}

/// Sleeps until woken unless already woken since `set_current_state()` (`schedule()`).
#[no_mangle]
pub extern "C" fn schedule() {
    guard("schedule", (), kthread_rs::schedule)
}

/// Sleeps at most `timeout` jiffies; returns the jiffies left, 0 on
/// timeout (`schedule_timeout()`).
///
/// `MAX_SCHEDULE_TIMEOUT` sleeps until woken and returns it; a negative
/// timeout sets `TASK_RUNNING` and returns 0 at once (the kernel logs it).
#[no_mangle]
pub extern "C" fn schedule_timeout(timeout: c_long) -> c_long {
    guard("schedule_timeout", 0, || {
        if timeout == MAX_SCHEDULE_TIMEOUT {
            kthread_rs::schedule();
            return MAX_SCHEDULE_TIMEOUT;
        }
        if timeout < 0 {
            crate::warn(format_args!(
                "schedule_timeout: wrong timeout value {timeout:#x}"
            ));
            kthread_rs::set_current_state(TaskState::Running);
            return 0;
        }
        let left = kthread_rs::schedule_timeout(jiffies_to_duration(timeout as u64));
        c_long::try_from(duration_to_jiffies(left)).unwrap_or(c_long::MAX)
    })
}

/// Wakes `p` if it sleeps in `TASK_INTERRUPTIBLE` or `TASK_UNINTERRUPTIBLE`
/// (`wake_up_process()`): 1 if it was woken, 0 if it was running; the first
/// wake of a kthread starts its function. `-EINVAL` for NULL or an error pointer.
///
/// # Safety
/// `p` is NULL, an error pointer, or a live task: one returned by
/// `kthread_create*()` and not yet stopped, or `current` of a running thread.
#[no_mangle]
pub unsafe extern "C" fn wake_up_process(p: *mut c_void) -> c_int {
    guard("wake_up_process", -libc::EINVAL, || {
        if bad_ptr(p) {
            return -libc::EINVAL;
        }
        // SAFETY: a live task by the caller's contract.
        let task = unsafe { Task::from_ptr(p) };
        c_int::from(task.wake_up())
    })
}
