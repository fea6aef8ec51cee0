//! The kthread: builder, handle, life cycle and park.
//!
//! Mirrors `kthread_create_on_node()`, `kthread_run()`, `kthread_bind()`,
//! `kthread_stop()`, `kthread_park()` and friends. See `docs/design.md` for
//! the creation, first-run/stop and park protocols.
//!
//! Files, as std splits `thread/`: `builder.rs` (validation and creation
//! through kthreadd), `handle.rs` (`Kthread`: wake, bind, stop, detach),
//! `lifecycle.rs` (the thread's main, its exit, the result packet, the stop
//! request), `park.rs` (park, unpark, parkme).

mod builder;
mod handle;
mod lifecycle;
mod park;
#[cfg(feature = "async")]
mod reaper;

pub use builder::{create, run, Builder, DEFAULT_STACK_SIZE, MAX_STACK_SIZE};
pub use handle::{Kthread, StopTimeoutError};
pub use park::{parkme, should_park};

#[cfg(all(test, kthread_loom))]
pub(crate) use lifecycle::{exit, request_stop};
#[cfg(all(test, kthread_loom))]
pub(crate) use park::parkme_task;

use crate::task::{self, flags, Task};

/// Whether the current kthread has been asked to stop; mirrors `kthread_should_stop()`.
///
/// A thread-local read and one atomic load; `false` on threads that are not kthreads.
///
/// ```
/// assert!(!kthread::should_stop()); // not a kthread
/// let k = kthread::create("s", kthread::should_stop)?;
/// k.wake_up();
/// let _ = k.stop()?; // true or false: depends on whether the stop came first
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn should_stop() -> bool {
    task::with_current(|t| match t {
        Some(t) => {
            let f = t.flags().load_relaxed();
            if f & flags::SHOULD_STOP == 0 {
                return false;
            }
            if f & flags::HOOKED != 0 {
                seen(t, task::hooks::STOP);
            }
            true
        }
        None => not_a_task(),
    })
}

/// The kthread has seen a request of `reason`: no further interruption.
#[cold]
#[inline(never)]
fn seen(t: &task::TaskInner, reason: u32) {
    // Acquire: orders the read of `unacked` after the requester's mark,
    // which came before the flag the relaxed hot check saw.
    let _ = t.flags().load();
    t.hooks().ack(reason);
}

/// The answer of `should_stop()` and `should_park()` on a thread without a
/// task: `false`, kept out of line so the kthread's own loop is laid out
/// around the path it really takes.
#[cold]
#[inline(never)]
fn not_a_task() -> bool {
    false
}

/// The current kthread's task, or `None` on a thread that is not a kthread.
///
/// ```
/// assert!(kthread::current().is_none());
/// let k = kthread::run("me", || kthread::current().map(|t| t.name().to_owned()))?;
/// assert_eq!(k.stop()?.as_deref(), Some("me"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current() -> Option<Task> {
    task::current_task().filter(|t| !t.has(flags::FOREIGN))
}

/// Whether `task` is the calling thread's own.
fn is_current(task: &Task) -> bool {
    task::with_current(|c| c.is_some_and(|c| std::ptr::eq(c, task.inner())))
}
