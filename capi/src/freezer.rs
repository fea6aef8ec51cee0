//! The freezer: `set_freezable()`, `try_to_freeze()`,
//! `kthread_freezable_should_stop()`, and the system-wide
//! `freeze_kthreads()` / `thaw_kthreads()`.

use crate::{bad_ptr, guard};
use kthread_rs::freezer::{self, FreezeError};
use std::ffi::{c_int, c_uint};
use std::time::Duration;

/// Makes the calling kthread freezable, then freezes if the system is
/// freezing (`set_freezable()`): whether it froze. Nothing on a thread that
/// is not a kthread.
#[no_mangle]
pub extern "C" fn set_freezable() -> bool {
    guard("set_freezable", false, kthread_rs::set_freezable)
}

/// Enters the refrigerator if the system is freezing and the caller is a
/// freezable kthread (`try_to_freeze()`): whether it froze.
#[no_mangle]
pub extern "C" fn try_to_freeze() -> bool {
    guard("try_to_freeze", false, kthread_rs::try_to_freeze)
}

/// Freezes if asked, then returns whether the kthread should stop
/// (`kthread_freezable_should_stop()`); `*was_frozen` (if not NULL) tells
/// whether it froze. A stop releases a kthread frozen here.
///
/// # Safety
/// `was_frozen` is NULL, an error pointer, or valid for a `bool` write.
#[no_mangle]
pub unsafe extern "C" fn kthread_freezable_should_stop(was_frozen: *mut bool) -> bool {
    guard("kthread_freezable_should_stop", false, || {
        let (stop, frozen) = freezer::freezable_should_stop_frozen();
        if !bad_ptr(was_frozen) {
            // SAFETY: writable by the caller's contract.
            unsafe { was_frozen.write(frozen) };
        }
        stop
    })
}

/// Freezes every freezable kthread (`freeze_kernel_threads()` with a
/// timeout): 0 once each sits in the refrigerator (or is parked, exited or
/// never woken), and the system stays frozen until `thaw_kthreads()`.
///
/// `-EBUSY` if some did not freeze within `timeout_ms` (they are named on
/// stderr, as the kernel's "Freezing of tasks failed", and everything has
/// been thawed again) or if the system is already frozen.
#[no_mangle]
pub extern "C" fn freeze_kthreads(timeout_ms: c_uint) -> c_int {
    guard("freeze_kthreads", -libc::EFAULT, || {
        match freezer::freeze(Duration::from_millis(timeout_ms.into())) {
            Ok(frozen) => {
                frozen.keep();
                0
            }
            Err(e) => {
                if let FreezeError::TimedOut(_) = e {
                    crate::warn(format_args!("{e}"));
                }
                -e.errno()
            }
        }
    })
}

/// Thaws every frozen kthread (`thaw_kernel_threads()`): 0, or `-EINVAL`
/// if the system is not frozen.
#[no_mangle]
pub extern "C" fn thaw_kthreads() -> c_int {
    guard("thaw_kthreads", -libc::EFAULT, || match freezer::thaw() {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    })
}
