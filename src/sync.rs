//! The one place every atomic, lock and cell of the protocols comes from.
//!
//! Under `--cfg kthread_loom` these are `loom`'s instrumented types, so the
//! loom models in `tests/loom_*.rs` explore every interleaving of the real
//! protocol code; otherwise they are `std`'s. Process-wide tables that the
//! models never touch (the registry, kthreadd's request list) use `std`
//! directly, since loom types cannot live in statics.

#[cfg(not(kthread_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(kthread_loom))]
pub(crate) use std::sync::Arc;

#[cfg(kthread_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(kthread_loom)]
pub(crate) use loom::sync::Arc;

pub(crate) use std::sync::atomic::Ordering;

/// Defines a constructor that is `const` normally and a plain `fn` under
/// loom, whose types have no `const` constructors.
macro_rules! loom_const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$m])*
        #[cfg(not(kthread_loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        $(#[$m])*
        #[cfg(kthread_loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;

/// A cell whose accesses loom can check; `with`/`with_mut` hand out raw pointers.
#[cfg(not(kthread_loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(kthread_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(std::cell::UnsafeCell::new(v))
    }
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(kthread_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Locks a `std` mutex (process-wide tables, never modelled), treating
/// poisoning as harmless: every critical section in this crate leaves its
/// data consistent before anything in it can panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A hint inside a bounded retry loop that waits for another thread to finish
/// a few instructions (never used to wait for an event of unbounded length).
pub(crate) fn yield_now() {
    #[cfg(kthread_loom)]
    loom::thread::yield_now();
    #[cfg(not(kthread_loom))]
    std::thread::yield_now();
}
