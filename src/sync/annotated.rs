//! `std`'s atomics, mutex and once-cell with their happens-before edges told
//! to Helgrind and DRD (only under `--cfg kthread_valgrind`, which
//! `scripts/valgrind.sh` sets).
//!
//! Each type wraps the `std` type and behaves exactly like it; it adds a
//! client request (`sync/valgrind.rs`) named by the object's address:
//!
//! * atomics: [`happens_before`] before every operation whose ordering
//!   releases (`Release`, `AcqRel`, `SeqCst`), [`happens_after`] after every
//!   operation whose ordering acquires (`Acquire`, `AcqRel`, `SeqCst`; for a
//!   compare-exchange, the ordering of the outcome that happened);
//! * [`Mutex`]: [`happens_after`] once locked, [`happens_before`] just
//!   before the guard unlocks;
//! * [`OnceLock`]: every access goes through an annotated [`Mutex`];
//! * each object, when dropped, makes the tool [`forget`] its edges: its
//!   address may name a new object next.
//!
//! The tools then order everything the crate's protocols order, futex waits
//! included (the futex word is one of these atomics). They order a little
//! more than the memory model does: a request cannot be issued after the
//! operation it belongs to (another thread could acquire in between, which
//! would be a false report), so a compare-exchange that fails still
//! releases, and an acquire collects every earlier release on the object,
//! not only the release sequence it reads from. The loom models check the
//! orderings themselves; these runs check everything the protocols order.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use super::valgrind::{forget, happens_after, happens_before};

/// Whether an operation with ordering `o` releases.
#[inline]
fn releases(o: Ordering) -> bool {
    matches!(o, Ordering::Release | Ordering::AcqRel | Ordering::SeqCst)
}

/// Whether an operation with ordering `o` acquires.
#[inline]
fn acquires(o: Ordering) -> bool {
    matches!(o, Ordering::Acquire | Ordering::AcqRel | Ordering::SeqCst)
}

/// The tag of an object: its address.
#[inline]
fn tag<T: ?Sized>(x: &T) -> usize {
    x as *const T as *const () as usize
}

/// The methods every annotated atomic has, for an atomic type `$std` of
/// value type `$v`.
macro_rules! atomic_common {
    ($name:ident, $std:ty, $v:ty) => {
        // One macro serves every width; not every width uses every operation.
        #[allow(dead_code)]
        impl $name {
            /// As `std`'s `new`.
            pub(crate) const fn new(v: $v) -> Self {
                Self(<$std>::new(v))
            }

            /// As `std`'s `load`.
            #[inline]
            pub(crate) fn load(&self, o: Ordering) -> $v {
                let v = self.0.load(o);
                self.after(o);
                v
            }

            /// As `std`'s `store`.
            #[inline]
            pub(crate) fn store(&self, v: $v, o: Ordering) {
                self.before(o);
                self.0.store(v, o);
            }

            /// As `std`'s `swap`.
            #[inline]
            pub(crate) fn swap(&self, v: $v, o: Ordering) -> $v {
                self.before(o);
                let old = self.0.swap(v, o);
                self.after(o);
                old
            }

            /// As `std`'s `compare_exchange`.
            #[inline]
            pub(crate) fn compare_exchange(
                &self,
                current: $v,
                new: $v,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$v, $v> {
                self.before(success);
                let r = self.0.compare_exchange(current, new, success, failure);
                self.after(if r.is_ok() { success } else { failure });
                r
            }

            /// As `std`'s `compare_exchange_weak`.
            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $v,
                new: $v,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$v, $v> {
                self.before(success);
                let r = self.0.compare_exchange_weak(current, new, success, failure);
                self.after(if r.is_ok() { success } else { failure });
                r
            }

            /// As `std`'s `as_ptr` (the futex word's address).
            #[inline]
            pub(crate) fn as_ptr(&self) -> *mut $v {
                self.0.as_ptr()
            }

            /// As `std`'s `into_inner`: the caller owns the atomic, so every
            /// other access happened before (whatever gave it ownership).
            #[inline]
            pub(crate) fn into_inner(mut self) -> $v {
                *self.0.get_mut()
            }

            #[inline]
            fn before(&self, o: Ordering) {
                if releases(o) {
                    happens_before(tag(self));
                }
            }

            #[inline]
            fn after(&self, o: Ordering) {
                if acquires(o) {
                    happens_after(tag(self));
                }
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                forget(tag(self));
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

/// An annotated integer atomic: the common methods plus the RMW family.
macro_rules! atomic_int {
    ($name:ident, $v:ty) => {
        /// `std`'s atomic of the same name, annotated (module docs).
        #[derive(Default)]
        #[repr(transparent)]
        pub(crate) struct $name(std::sync::atomic::$name);

        atomic_common!($name, std::sync::atomic::$name, $v);

        // One macro serves every width; not every width uses every operation.
        #[allow(dead_code)]
        impl $name {
            /// As `std`'s `fetch_add`.
            #[inline]
            pub(crate) fn fetch_add(&self, v: $v, o: Ordering) -> $v {
                self.before(o);
                let old = self.0.fetch_add(v, o);
                self.after(o);
                old
            }

            /// As `std`'s `fetch_sub`.
            #[inline]
            pub(crate) fn fetch_sub(&self, v: $v, o: Ordering) -> $v {
                self.before(o);
                let old = self.0.fetch_sub(v, o);
                self.after(o);
                old
            }

            /// As `std`'s `fetch_or`.
            #[inline]
            pub(crate) fn fetch_or(&self, v: $v, o: Ordering) -> $v {
                self.before(o);
                let old = self.0.fetch_or(v, o);
                self.after(o);
                old
            }

            /// As `std`'s `fetch_and`.
            #[inline]
            pub(crate) fn fetch_and(&self, v: $v, o: Ordering) -> $v {
                self.before(o);
                let old = self.0.fetch_and(v, o);
                self.after(o);
                old
            }

            /// As `std`'s `fetch_update`.
            #[inline]
            pub(crate) fn fetch_update(
                &self,
                set: Ordering,
                fetch: Ordering,
                f: impl FnMut($v) -> Option<$v>,
            ) -> Result<$v, $v> {
                self.before(set);
                let r = self.0.fetch_update(set, fetch, f);
                // The last load used `fetch`; a successful exchange used `set`.
                self.after(match r {
                    Ok(_) if acquires(set) => set,
                    _ => fetch,
                });
                r
            }
        }
    };
}

atomic_int!(AtomicI32, i32);
atomic_int!(AtomicU32, u32);
atomic_int!(AtomicU64, u64);
atomic_int!(AtomicUsize, usize);

/// `std`'s `AtomicPtr`, annotated (module docs).
#[repr(transparent)]
pub(crate) struct AtomicPtr<T>(std::sync::atomic::AtomicPtr<T>);

impl<T> Default for AtomicPtr<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

/// A raw pointer, as the value type of [`AtomicPtr`].
type P<T> = *mut T;

impl<T> AtomicPtr<T> {
    /// As `std`'s `new`.
    pub(crate) const fn new(v: P<T>) -> Self {
        Self(std::sync::atomic::AtomicPtr::new(v))
    }

    /// As `std`'s `load`.
    #[inline]
    pub(crate) fn load(&self, o: Ordering) -> P<T> {
        let v = self.0.load(o);
        self.after(o);
        v
    }

    /// As `std`'s `store`.
    #[inline]
    pub(crate) fn store(&self, v: P<T>, o: Ordering) {
        self.before(o);
        self.0.store(v, o);
    }

    /// As `std`'s `swap`.
    #[inline]
    pub(crate) fn swap(&self, v: P<T>, o: Ordering) -> P<T> {
        self.before(o);
        let old = self.0.swap(v, o);
        self.after(o);
        old
    }

    /// As `std`'s `compare_exchange`.
    #[inline]
    pub(crate) fn compare_exchange(
        &self,
        current: P<T>,
        new: P<T>,
        success: Ordering,
        failure: Ordering,
    ) -> Result<P<T>, P<T>> {
        self.before(success);
        let r = self.0.compare_exchange(current, new, success, failure);
        self.after(if r.is_ok() { success } else { failure });
        r
    }

    /// As `std`'s `compare_exchange_weak`.
    #[inline]
    pub(crate) fn compare_exchange_weak(
        &self,
        current: P<T>,
        new: P<T>,
        success: Ordering,
        failure: Ordering,
    ) -> Result<P<T>, P<T>> {
        self.before(success);
        let r = self.0.compare_exchange_weak(current, new, success, failure);
        self.after(if r.is_ok() { success } else { failure });
        r
    }

    #[inline]
    fn before(&self, o: Ordering) {
        if releases(o) {
            happens_before(tag(self));
        }
    }

    #[inline]
    fn after(&self, o: Ordering) {
        if acquires(o) {
            happens_after(tag(self));
        }
    }
}

impl<T> Drop for AtomicPtr<T> {
    fn drop(&mut self) {
        forget(tag(self));
    }
}

impl<T> fmt::Debug for AtomicPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// `std`'s `Mutex`, annotated (module docs); lock it with [`lock`].
#[derive(Default)]
pub(crate) struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    /// As `std`'s `new`.
    pub(crate) const fn new(v: T) -> Self {
        Self(std::sync::Mutex::new(v))
    }
}

impl<T: ?Sized> Drop for Mutex<T> {
    fn drop(&mut self) {
        forget(tag(self));
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The guard of an annotated [`Mutex`]; unlocks when dropped.
pub(crate) struct MutexGuard<'a, T: ?Sized> {
    guard: std::sync::MutexGuard<'a, T>,
    tag: usize,
}

/// Locks `m`, treating poisoning as harmless (as `crate::sync::lock`).
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    let guard = m.0.lock().unwrap_or_else(|p| p.into_inner());
    let tag = tag(m);
    happens_after(tag);
    MutexGuard { guard, tag }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Before the field `guard` is dropped, which unlocks.
        happens_before(self.tag);
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// `std`'s `OnceLock`, every access under an annotated [`Mutex`].
///
/// `std`'s cell publishes its value through a futex-based `Once` the tools
/// cannot see, and no request can be placed between its write of the value
/// and its release; taking a lock around each access gives the same edge.
pub(crate) struct OnceLock<T> {
    cell: std::sync::OnceLock<T>,
    lock: Mutex<()>,
}

impl<T> OnceLock<T> {
    /// As `std`'s `new`.
    pub(crate) const fn new() -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
            lock: Mutex::new(()),
        }
    }

    /// As `std`'s `get`.
    pub(crate) fn get(&self) -> Option<&T> {
        let _g = lock(&self.lock);
        self.cell.get()
    }

    /// As `std`'s `set`.
    pub(crate) fn set(&self, v: T) -> Result<(), T> {
        let _g = lock(&self.lock);
        self.cell.set(v)
    }

    /// As `std`'s `get_or_init` (`f` runs under the cell's lock, so it must
    /// not use the same cell; `std`'s would deadlock or panic as well).
    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        let _g = lock(&self.lock);
        self.cell.get_or_init(f)
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.cell, f)
    }
}
