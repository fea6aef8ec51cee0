//! The C ABI of the `kthread` crate: `libkthread.a`, `libkthread.so` and
//! the hand-written `include/kthread.h`.
//!
//! Every function here is a thin front over the Rust crate: the public API
//! (`Builder`, `Kthread`, `Task`, `Worker`, `Completion`, `freezer`,
//! `schedule`...) and its documented raw worker layer
//! (`kthread::worker::raw`). A `struct task_struct *` is `Task::as_ptr`.
//! Nothing is implemented twice: creating and destroying a worker is
//! `WorkerBuilder::create` and `Worker::destroy`.
//!
//! Conventions, as in the kernel: errors come back as a negative errno, or
//! as an error pointer (`ERR_PTR(-EINVAL)`) where a pointer is returned. A
//! NULL or error pointer passed in gives `-EINVAL` (or `false`, `NULL`, or
//! nothing at all for the `void` calls), never a crash. No Rust panic ever
//! unwinds into C: every entry point catches it, reports it on stderr and
//! returns its error value.
//!
//! The printf-style calls (`kthread_create_on_node`, `kthread_create_worker`)
//! are `static inline` in the header: they format the name with `vsnprintf`
//! and call the `*_name` entry points here, which take the finished name.

#![cfg(target_os = "linux")]

mod completion;
mod freezer;
mod kthread;
mod layout;
mod sched;
mod signal;
mod wait;
mod worker;

use std::ffi::{c_int, c_void};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// `HZ`: jiffies per second, as `#define HZ` in the header.
pub(crate) const HZ: u64 = 1000;

/// The largest errno an error pointer carries (the kernel's `MAX_ERRNO`).
const MAX_ERRNO: usize = 4095;

/// Whether `p` is NULL or an error pointer (`IS_ERR_OR_NULL`).
pub(crate) fn bad_ptr<T>(p: *const T) -> bool {
    p.is_null() || p as usize >= MAX_ERRNO.wrapping_neg()
}

/// The error pointer carrying `-errno` (`ERR_PTR(-errno)`).
pub(crate) fn err_ptr<T>(errno: c_int) -> *mut T {
    (errno as isize).wrapping_neg() as usize as *mut T
}

/// Runs the body of an entry point, turning a panic into `on_panic`.
///
/// Unwinding into C is undefined behaviour, so nothing may escape; the
/// panic is reported on stderr (after the panic hook's own message).
pub(crate) fn guard<R>(entry: &str, on_panic: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            // The crate's own payload-to-message rule, through its public type.
            let e = kthread_rs::StopError::Panicked(payload);
            let msg = e.panic_message().unwrap_or("<non-string payload>");
            // A failing stderr must not turn into a second panic here.
            let _ = writeln!(std::io::stderr(), "kthread: panic in {entry}(): {msg}");
            on_panic
        }
    }
}

/// Whether `p` may be used as a `T`: not NULL, not an error pointer, and
/// aligned. A misaligned one (a `struct kthread_worker` from `malloc()`,
/// which only guarantees 16 bytes) is reported, then refused.
pub(crate) fn usable<T>(p: *const T, what: &str) -> bool {
    if bad_ptr(p) {
        return false;
    }
    if p as usize % std::mem::align_of::<T>() != 0 {
        warn(format_args!(
            "{what} at {p:p} is not {}-byte aligned (use aligned_alloc())",
            std::mem::align_of::<T>()
        ));
        return false;
    }
    true
}

/// Reports a misuse the kernel would `WARN()` about, on stderr.
pub(crate) fn warn(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "kthread: WARNING: {msg}");
}

/// Locks a process-wide table, treating poisoning as harmless: every
/// critical section only inserts or removes one entry.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pointer handed to a C callback on another thread; C's contract makes
/// it valid there.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut c_void);

// SAFETY: the pointer is never dereferenced by Rust: it only travels to the
// C function it was given for, which the C caller wrote for that thread.
unsafe impl Send for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

/// `jiffies` as a `Duration` (saturating).
pub(crate) fn jiffies_to_duration(j: u64) -> Duration {
    Duration::from_secs(j / HZ) + Duration::from_nanos((j % HZ) * (1_000_000_000 / HZ))
}

/// A `Duration` in jiffies, rounded up, so any time left is at least one jiffy.
pub(crate) fn duration_to_jiffies(d: Duration) -> u64 {
    let j = (d.as_nanos() * u128::from(HZ)).div_ceil(1_000_000_000);
    u64::try_from(j).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pointers_round_trip() {
        let p: *mut c_void = err_ptr(libc::EINVAL);
        assert_eq!(p as isize, -(libc::EINVAL as isize));
        assert!(bad_ptr(p));
        assert!(bad_ptr(err_ptr::<c_void>(MAX_ERRNO as c_int)));
        assert!(bad_ptr(std::ptr::null::<u8>()));
        let x = 5u8;
        assert!(!bad_ptr(&x));
        // One below the error range is an ordinary (if odd) pointer.
        assert!(!bad_ptr((MAX_ERRNO + 1).wrapping_neg() as *const u8));
    }

    #[test]
    fn guard_catches_panics() {
        assert_eq!(guard("test", -1, || 7), 7);
        assert_eq!(guard("test", -1, || -> i32 { panic!("boom") }), -1);
        let owned = String::from("owned payload");
        assert_eq!(guard("test", 0u8, move || -> u8 { panic!("{owned}") }), 0);
    }

    #[test]
    fn jiffies_conversions() {
        assert_eq!(jiffies_to_duration(0), Duration::ZERO);
        assert_eq!(jiffies_to_duration(1500), Duration::from_millis(1500));
        assert_eq!(duration_to_jiffies(Duration::ZERO), 0);
        assert_eq!(duration_to_jiffies(Duration::from_nanos(1)), 1);
        assert_eq!(duration_to_jiffies(Duration::from_millis(20)), 20);
        assert_eq!(duration_to_jiffies(Duration::from_micros(20_001)), 21);
        assert_eq!(duration_to_jiffies(Duration::MAX), u64::MAX);
        assert_eq!(jiffies_to_duration(u64::MAX).as_secs(), u64::MAX / HZ);
    }
}
