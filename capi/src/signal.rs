//! Kernel-style signals for kthreads: `allow_signal()`, `send_sig()`,
//! `signal_pending()`, `flush_signals()` (`<linux/sched/signal.h>`).
//!
//! A signal a kthread allowed is recorded for that kthread alone and
//! interrupts its sleeps and blocking system calls; the process never
//! receives it (`SIGKILL` included).

use crate::{bad_ptr, guard};
use kthread_rs::{Error, Task};
use std::ffi::{c_int, c_void};

/// The kernel's WARN for a signal call that returns nothing.
fn warn_failed(what: &str, r: Result<(), Error>) {
    if let Err(e) = r {
        crate::warn(format_args!("{what}: {e}"));
    }
}

/// Lets `sig` reach the calling kthread (`allow_signal()`); a failure (not
/// a kthread, a bad number) is reported on stderr.
#[no_mangle]
pub extern "C" fn allow_signal(sig: c_int) {
    guard("allow_signal", (), || {
        warn_failed("allow_signal", kthread_rs::allow_signal(sig))
    })
}

/// Stops `sig` reaching the calling kthread and forgets it if pending
/// (`disallow_signal()`).
#[no_mangle]
pub extern "C" fn disallow_signal(sig: c_int) {
    guard("disallow_signal", (), || {
        warn_failed("disallow_signal", kthread_rs::disallow_signal(sig))
    })
}

/// Runs `f` on the task behind `p`; `bad` for NULL or an error pointer.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
unsafe fn on_task<R>(p: *mut c_void, bad: R, f: impl FnOnce(&Task) -> R) -> R {
    if bad_ptr(p) {
        return bad;
    }
    // SAFETY: a live task by the caller's contract.
    f(&unsafe { Task::from_ptr(p) })
}

/// 1 if a signal is pending for `p` (`signal_pending()`), else 0 (also
/// for NULL or an error pointer).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn signal_pending(p: *mut c_void) -> c_int {
    guard("signal_pending", 0, || {
        // SAFETY: the caller's contract, passed on.
        unsafe { on_task(p, 0, |t| c_int::from(t.signal_pending())) }
    })
}

/// 1 if `SIGKILL` is pending for `p` (`fatal_signal_pending()`), else 0.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn fatal_signal_pending(p: *mut c_void) -> c_int {
    guard("fatal_signal_pending", 0, || {
        // SAFETY: the caller's contract, passed on.
        unsafe { on_task(p, 0, |t| c_int::from(t.fatal_signal_pending())) }
    })
}

/// Forgets every pending signal of `p` (`flush_signals()`).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn flush_signals(p: *mut c_void) {
    guard("flush_signals", (), || {
        // SAFETY: the caller's contract, passed on.
        unsafe { on_task(p, (), Task::flush_signals) }
    })
}

/// Sends `sig` to `p` (`send_sig()`): 0 (also when `p` did not allow it:
/// ignored, as in the kernel), `-EINVAL` for a bad number or pointer,
/// `-ESRCH` if `p`'s function has returned, `-ECHILD` for a task
/// inherited across `fork()`. `priv` is accepted and unused (every
/// sender is the kernel here).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn send_sig(sig: c_int, p: *mut c_void, priv_: c_int) -> c_int {
    let _ = priv_;
    guard("send_sig", -libc::EINVAL, || {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            on_task(p, -libc::EINVAL, |t| match t.send_signal(sig) {
                Ok(()) => 0,
                Err(Error::Exited) => -libc::ESRCH,
                Err(e) => -e.errno(),
            })
        }
    })
}

/// Takes the lowest-numbered pending signal of the calling thread and
/// returns it, 0 if none (`kernel_dequeue_signal()`, 6.1's form).
#[no_mangle]
pub extern "C" fn kernel_dequeue_signal() -> c_int {
    guard("kernel_dequeue_signal", 0, || {
        kthread_rs::dequeue_signal().unwrap_or(0)
    })
}

/// Whether a sleep in the C state `state` would be ended by a pending
/// signal of the caller (`signal_pending_state()`).
pub(crate) fn ends(state: std::ffi::c_uint) -> bool {
    const TASK_INTERRUPTIBLE: std::ffi::c_uint = 0x0001;
    const TASK_WAKEKILL: std::ffi::c_uint = 0x0100;
    if state & TASK_INTERRUPTIBLE != 0 {
        kthread_rs::signal_pending()
    } else if state & TASK_WAKEKILL != 0 {
        kthread_rs::fatal_signal_pending()
    } else {
        false
    }
}
