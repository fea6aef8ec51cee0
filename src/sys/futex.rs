//! Futex wait and wake on a 32-bit atomic: the only way anything here sleeps.
//!
//! Under `cfg(kthread_loom)` the futex is modelled with one loom mutex and
//! condition variable: the waiter compares the word under the lock, exactly
//! as the kernel compares it under the hash-bucket lock, so a wake that a
//! protocol forgets to issue shows up as a loom deadlock.

use super::time::Deadline;
use crate::sync::AtomicU32;

/// Why a futex wait returned. Every caller re-checks its condition anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, interrupted, or the word no longer held `expected`.
    Woken,
    /// The deadline passed.
    TimedOut,
}

#[cfg(not(kthread_loom))]
mod imp {
    use super::*;
    use std::io;

    /// Sleeps while `*word == expected`, at most until `deadline`.
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Wake {
        let ts = deadline.map(Deadline::as_timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live, aligned u32 for the duration of the call;
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout (or NULL
        // for none) in `ts_ptr`, which lives until the call returns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                libc::FUTEX_BITSET_MATCH_ANY,
            )
        };
        if ret == 0 {
            return Wake::Woken;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Wake::Woken,
            Some(libc::ETIMEDOUT) => Wake::TimedOut,
            // EFAULT/EINVAL/ENOSYS mean the word or the kernel is not what every
            // sleeping protocol here relies on; continuing would spin or hang.
            _ => crate::error::fatal(&format!("futex wait failed: {err}")),
        }
    }

    /// Moves one thread sleeping on `from` to sleep on `to` instead,
    /// without waking it, if `*from == expected` (`FUTEX_CMP_REQUEUE`);
    /// returns how many moved (0: nobody slept there, or the word changed).
    pub(crate) fn requeue(from: &AtomicU32, expected: u32, to: &AtomicU32) -> usize {
        // SAFETY: both words are live, aligned u32s of this process (private
        // futexes); nr_wake is 0, nr_requeue 1 (passed in the timeout slot,
        // as the kernel reads it for this op), val3 the expected value.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                from.as_ptr(),
                libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG,
                0,
                1usize,
                to.as_ptr(),
                expected,
            )
        };
        match super::super::cvt_long(ret) {
            Ok(n) => n as usize,
            Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => 0,
            Err(err) => crate::error::fatal(&format!("futex requeue failed: {err}")),
        }
    }

    /// Wakes up to `n` threads sleeping on `word`; returns how many woke.
    pub(crate) fn wake(word: &AtomicU32, n: i32) -> usize {
        // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE reads no other argument.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                n,
            )
        };
        match super::super::cvt_long(ret) {
            Ok(n) => n as usize,
            Err(err) => crate::error::fatal(&format!("futex wake failed: {err}")),
        }
    }
}

#[cfg(kthread_loom)]
mod imp {
    use super::*;
    use crate::sync::Ordering;
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        static ref TABLE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    /// Sleeps while `*word == expected` (loom model: no timeouts, so a timed
    /// wait is an untimed one; models never rely on a timeout firing).
    pub(crate) fn wait(word: &AtomicU32, expected: u32, _deadline: Option<Deadline>) -> Wake {
        let guard = TABLE.0.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return Wake::Woken;
        }
        drop(TABLE.1.wait(guard).unwrap());
        Wake::Woken
    }

    /// Modelled sleepers have no address (every wake wakes them all), so a
    /// requeue moves nothing: the sleeper waits for the next wake, as a
    /// requeued one does. A protocol that forgets that wake deadlocks.
    pub(crate) fn requeue(_from: &AtomicU32, _expected: u32, _to: &AtomicU32) -> usize {
        0
    }

    /// Wakes every modelled sleeper (spurious wakes are allowed by contract).
    pub(crate) fn wake(_word: &AtomicU32, _n: i32) -> usize {
        let _guard = TABLE.0.lock().unwrap();
        TABLE.1.notify_all();
        1
    }
}

pub(crate) use imp::{requeue, wait, wake};

/// Sleeps until `deadline` passes, with nothing to wake the caller (a futex
/// wait on a word of its own, which nobody else can name).
pub(crate) fn sleep_until(deadline: Deadline) {
    let word = AtomicU32::new(0);
    while wait(&word, 0, Some(deadline)) != Wake::TimedOut && !deadline.passed() {}
}
