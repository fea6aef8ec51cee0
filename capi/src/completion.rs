//! `struct completion`: the Rust [`Completion`], embedded in C memory.
//!
//! All-zero memory is a fresh completion (`COMPLETION_INITIALIZER`,
//! `DECLARE_COMPLETION_ONSTACK`), so C may define one statically or on the
//! stack; the calls below borrow it in place. A NULL or error pointer makes
//! every call a no-op (the waits return at once, as if timed out).

use crate::{duration_to_jiffies, guard, jiffies_to_duration, usable};
use kthread_rs::Completion;
use std::ffi::{c_int, c_long, c_ulong};
use std::time::Instant;

/// The completion at `x`, or `None` for NULL or an error pointer.
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion` that
/// stays valid for `'a`.
unsafe fn completion<'a>(x: *mut Completion) -> Option<&'a Completion> {
    if !usable(x, "struct completion") {
        return None;
    }
    // SAFETY: valid for 'a by the caller's contract; Completion is all
    // atomics, so shared references from many threads are fine.
    Some(unsafe { &*x })
}

/// Makes `x` a fresh completion (`init_completion()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or writable memory for a `struct
/// completion` that nobody waits on.
#[no_mangle]
pub unsafe extern "C" fn init_completion(x: *mut Completion) {
    guard("init_completion", (), || {
        if usable(x, "struct completion") {
            // SAFETY: writable and unused by the caller's contract; the old
            // value (plain atomics) needs no drop.
            unsafe { x.write(Completion::new()) }
        }
    })
}

/// Makes a used completion usable again; only while nobody waits on it
/// (`reinit_completion()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn reinit_completion(x: *mut Completion) {
    guard("reinit_completion", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(c) = unsafe { completion(x) } {
            c.reinit();
        }
    })
}

/// Releases one waiter, or lets the next wait through (`complete()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn complete(x: *mut Completion) {
    guard("complete", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(c) = unsafe { completion(x) } {
            c.complete();
        }
    })
}

/// Releases every waiter, now and later, until reinitialised (`complete_all()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn complete_all(x: *mut Completion) {
    guard("complete_all", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(c) = unsafe { completion(x) } {
            c.complete_all();
        }
    })
}

/// Sleeps until `x` is completed (`wait_for_completion()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn wait_for_completion(x: *mut Completion) {
    guard("wait_for_completion", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(c) = unsafe { completion(x) } {
            c.wait();
        }
    })
}

/// Sleeps until `x` is completed or `timeout` jiffies pass
/// (`wait_for_completion_timeout()`): 0 on timeout, else the jiffies left,
/// at least 1. A timeout of `MAX_SCHEDULE_TIMEOUT` or more never expires.
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn wait_for_completion_timeout(
    x: *mut Completion,
    timeout: c_ulong,
) -> c_ulong {
    guard("wait_for_completion_timeout", 0, || {
        // SAFETY: forwarded caller contract.
        let Some(c) = (unsafe { completion(x) }) else {
            return 0;
        };
        if timeout >= c_long::MAX as c_ulong {
            c.wait();
            return timeout;
        }
        let limit = jiffies_to_duration(timeout);
        let start = Instant::now();
        if !c.wait_timeout(limit) {
            return 0;
        }
        let left = limit.saturating_sub(start.elapsed());
        duration_to_jiffies(left).clamp(1, timeout.max(1))
    })
}

/// The interruptible (`killable` 0) and killable (`killable` 1) waits,
/// with a timeout in jiffies (`MAX_SCHEDULE_TIMEOUT` or more: none):
/// `-ERESTARTSYS` when a pending signal ended the wait (any signal, or
/// `SIGKILL` for the killable form), else as `wait_for_completion_timeout()`
/// (`wait_for_completion_{interruptible,killable}(_timeout)()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn kthread_wait_for_completion_signalled(
    x: *mut Completion,
    timeout: c_ulong,
    killable: c_int,
) -> c_long {
    const ERESTARTSYS: c_long = 512;
    guard("wait_for_completion_interruptible", 0, || {
        // SAFETY: forwarded caller contract.
        let Some(c) = (unsafe { completion(x) }) else {
            return 0;
        };
        let forever = timeout >= c_long::MAX as c_ulong;
        let limit = jiffies_to_duration(timeout);
        let start = Instant::now();
        let r = match (killable != 0, forever) {
            (false, true) => c.wait_interruptible().map(|()| true),
            (true, true) => c.wait_killable().map(|()| true),
            (false, false) => c.wait_interruptible_timeout(limit),
            (true, false) => c.wait_killable_timeout(limit),
        };
        match r {
            Err(_) => -ERESTARTSYS,
            Ok(false) => 0,
            Ok(true) if forever => timeout as c_long,
            Ok(true) => {
                let left = limit.saturating_sub(start.elapsed());
                duration_to_jiffies(left).clamp(1, timeout.max(1)) as c_long
            }
        }
    })
}

/// Consumes a completion if one is there, without sleeping
/// (`try_wait_for_completion()`): whether it did.
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn try_wait_for_completion(x: *mut Completion) -> bool {
    guard("try_wait_for_completion", false, || {
        // SAFETY: forwarded caller contract.
        unsafe { completion(x) }.is_some_and(|c| c.is_done() && c.wait_timeout(Default::default()))
    })
}

/// Whether a wait on `x` would return at once (`completion_done()`).
///
/// # Safety
/// `x` is NULL, an error pointer, or a valid `struct completion`.
#[no_mangle]
pub unsafe extern "C" fn completion_done(x: *mut Completion) -> bool {
    guard("completion_done", false, || {
        // SAFETY: forwarded caller contract.
        unsafe { completion(x) }.is_some_and(Completion::is_done)
    })
}
