//! The one place every atomic, lock, cell, `Arc` and yield of the crate comes from.
//!
//! Under `--cfg kthread_loom` these are `loom`'s instrumented types, so the
//! models in `src/loom_models.rs` (run by `scripts/loom.sh`) explore every
//! interleaving of the real protocol code; otherwise they are `std`'s.
//! Nothing outside this module names `std::sync` or `std::thread::yield_now`.
//!
//! Under `--cfg kthread_valgrind` (set by `scripts/valgrind.sh` only, and
//! ignored together with `kthread_loom`) the atomics, mutexes and once-cells
//! are `std`'s wrapped in [`annotated`]'s types, which tell Helgrind and DRD
//! about every happens-before edge they carry. Normal builds use `std`'s
//! types directly.
//!
//! Two kinds are deliberately `std`'s under loom too, each for a reason:
//!
//! * [`StaticMutex`]: the process-wide tables (the task list, kthreadd's
//!   request list) live in `static`s, and loom's types have no `const`
//!   constructor. The models create their tasks directly and never contend
//!   on these tables, so no interleaving is lost.
//! * [`DynArc`]: the safe worker items are `Arc<Item<F>>` unsized to
//!   `Arc<Item<dyn Fn()>>`, which needs the unstable `CoerceUnsized` that
//!   loom's `Arc` cannot implement. The models drive the raw layer, which
//!   holds no `Arc`.

#[cfg(all(kthread_valgrind, not(kthread_loom)))]
mod annotated;
#[cfg(all(kthread_valgrind, not(kthread_loom)))]
mod valgrind;

#[cfg(not(any(kthread_loom, kthread_valgrind)))]
pub(crate) use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(any(kthread_loom, kthread_valgrind)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(all(kthread_valgrind, not(kthread_loom)))]
pub(crate) use annotated::{
    lock, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, MutexGuard,
};

#[cfg(not(kthread_loom))]
pub(crate) use std::sync::Arc;

#[cfg(kthread_loom)]
pub(crate) use loom::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(kthread_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

#[cfg(kthread_loom)]
pub(crate) use loom::sync::atomic::fence;
/// A fence, for the two places where a store on one word and a load of
/// another must not be reordered (a store-buffering pair on a slow path).
#[cfg(not(kthread_loom))]
pub(crate) use std::sync::atomic::fence;

#[cfg(all(kthread_valgrind, not(kthread_loom)))]
pub(crate) use annotated::{
    AtomicPtr as StaticAtomicPtr, AtomicU32 as StaticAtomicU32, AtomicU64 as StaticAtomicU64,
};
/// Atomics of process-wide `static`s that no model touches (the freezer's
/// generation counter, the process generation and per-process slots of
/// `sys::fork`), `std`'s for the same reason as [`StaticMutex`] (annotated
/// under `kthread_valgrind`).
#[cfg(not(all(kthread_valgrind, not(kthread_loom))))]
pub(crate) use std::sync::atomic::{
    AtomicPtr as StaticAtomicPtr, AtomicU32 as StaticAtomicU32, AtomicU64 as StaticAtomicU64,
};

#[cfg(all(feature = "fault-injection", kthread_valgrind, not(kthread_loom)))]
pub(crate) use annotated::AtomicI32 as StaticAtomicI32;
/// The other atomic of the test-only fault-injection switches (with
/// [`StaticAtomicU32`]), `std`'s for the same reason as [`StaticMutex`].
#[cfg(all(
    feature = "fault-injection",
    not(all(kthread_valgrind, not(kthread_loom)))
))]
pub(crate) use std::sync::atomic::AtomicI32 as StaticAtomicI32;

pub(crate) use std::sync::Arc as DynArc;

#[cfg(all(kthread_valgrind, not(kthread_loom)))]
pub(crate) use annotated::Mutex as StaticMutex;
#[cfg(not(all(kthread_valgrind, not(kthread_loom))))]
pub(crate) use std::sync::Mutex as StaticMutex;

#[cfg(all(kthread_valgrind, not(kthread_loom)))]
pub(crate) use annotated::OnceLock;
#[cfg(not(all(kthread_valgrind, not(kthread_loom))))]
pub(crate) use std::sync::OnceLock;

/// A one-time initialisation that publishes no data (the fork handler's
/// installation), `std`'s everywhere.
pub(crate) use std::sync::Once;

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

/// Locks a mutex (modelled or static), treating poisoning as harmless:
/// every critical section in this crate leaves its data consistent before
/// anything in it can panic.
#[cfg(not(all(kthread_valgrind, not(kthread_loom))))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// As [`lock`], for a process-wide [`StaticMutex`].
#[cfg(kthread_loom)]
pub(crate) fn lock_static<T>(m: &StaticMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// As [`lock`], for a process-wide [`StaticMutex`] (the same type outside loom).
#[cfg(not(kthread_loom))]
pub(crate) use lock as lock_static;

/// A hint inside a bounded retry loop that waits for another thread to finish
/// a few instructions (never used to wait for an event of unbounded length).
pub(crate) fn yield_now() {
    #[cfg(kthread_loom)]
    loom::thread::yield_now();
    #[cfg(not(kthread_loom))]
    std::thread::yield_now();
}
