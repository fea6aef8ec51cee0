//! `fork()`: the process generation and state that starts afresh in a child.
//!
//! A child of a process with kthreads inherits a copy of every process-wide
//! object of the library (kthreadd, the task list, the freezer) but none of
//! their threads, and any of their locks may have been held by a thread
//! that does not exist in the child. So the child does not reuse them: a
//! `pthread_atfork` child handler, installed on first use, bumps the
//! *process generation*, and every process-wide object lives in a
//! [`PerProcess`] cell that builds a fresh value the first time it is used
//! in a new generation. The parent's copy is left as it is (never dropped:
//! it may hold locks and references nobody can release), so nothing in the
//! child ever waits for a thread of the parent.
//!
//! The handler only bumps an atomic, so it is async-signal-safe, and a
//! `fork()` never waits for the library's core (no lock is taken around
//! it; the C ABI takes its own tables' locks, briefly, in handlers of its own).

use crate::sync::{Once, Ordering, StaticAtomicPtr as AtomicPtr, StaticAtomicU32 as AtomicU32};

/// Bumped in every child; a static atomic (never loom's), for a `static`.
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The process generation: 0 in the first process, one more in each
/// child than in its parent at the fork.
#[inline]
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Acquire)
}

/// The generation an object born now belongs to; installs the handler
/// first, so a child of this process is sure to see a new generation.
#[inline]
pub(crate) fn born() -> u32 {
    install();
    generation()
}

extern "C" fn in_child() {
    // The child has one thread, this one; Release orders nothing it needs,
    // but costs nothing and keeps `generation`'s Acquire meaningful.
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Installs the fork handler once per process image (it is inherited by
/// children, so a child never installs it again).
fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `in_child` is an `extern "C"` fn with no arguments that
        // touches only an atomic; no prepare or parent handler.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if rc != 0 {
            // ENOMEM only: without the handler a child would reuse the
            // parent's objects and hang; refusing to go on is the safe end.
            crate::error::fatal(&format!(
                "pthread_atfork failed: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
    });
}

/// A process-wide value that starts afresh in a `fork()` child.
///
/// `get` returns the value of the current process generation, building it
/// with `init` on first use there. Values are never dropped (a parent's
/// value may be referenced by its threads for ever, and a child's copy of
/// it may be in any state), so `get` can hand out `&'static T`.
pub(crate) struct PerProcess<T: 'static> {
    slot: AtomicPtr<Slot<T>>,
    init: fn() -> T,
}

struct Slot<T> {
    generation: u32,
    value: T,
}

impl<T: Send + Sync + 'static> PerProcess<T> {
    /// A cell whose value `init` builds, once per process.
    pub(crate) const fn new(init: fn() -> T) -> PerProcess<T> {
        PerProcess {
            slot: AtomicPtr::new(std::ptr::null_mut()),
            init,
        }
    }

    /// The value of this process.
    #[inline]
    pub(crate) fn get(&'static self) -> &'static T {
        // Acquire: the slot's fields were written before it was published.
        let p = self.slot.load(Ordering::Acquire);
        // SAFETY: a published slot is never freed (type docs).
        match unsafe { p.as_ref() } {
            Some(s) if s.generation == generation() => &s.value,
            _ => self.renew(p),
        }
    }

    #[cold]
    fn renew(&'static self, mut seen: *mut Slot<T>) -> &'static T {
        install();
        let generation = generation();
        let fresh = Box::into_raw(Box::new(Slot {
            generation,
            value: (self.init)(),
        }));
        loop {
            match self
                .slot
                .compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // The old slot (the parent's, or none) is left alone for ever.
                // SAFETY: just published, never freed.
                Ok(_) => return unsafe { &(*fresh).value },
                Err(cur) => {
                    // SAFETY: a published slot is never freed.
                    let c = unsafe { &*cur };
                    if c.generation == generation {
                        // Another thread of this process built it first.
                        // SAFETY: `fresh` was never published.
                        drop(unsafe { Box::from_raw(fresh) });
                        return &c.value;
                    }
                    seen = cur;
                }
            }
        }
    }
}
