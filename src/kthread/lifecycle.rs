//! A kthread's life: its main (the kernel's `kthread()`), its exit, the
//! packet its result waits in, and the stop request.

use super::park::{parkme_task, unpark_task};
use crate::error::{drop_catching, StopError};
use crate::kthreadd::{self, Reply};
use crate::sync::{lock, Arc, Mutex};
use crate::task::{self, flags, freeze, hooks, list, Task};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Where the thread function's outcome waits for `stop`.
///
/// Written once by the thread before it exits and taken once by `stop`
/// after the join; the lock only makes that hand-off safe to express (the
/// join already orders it), so it is never contended.
pub(crate) struct Packet<T>(Mutex<Option<Result<T, StopError>>>);

impl<T> Packet<T> {
    pub(crate) fn new() -> Arc<Packet<T>> {
        Arc::new(Packet(Mutex::new(None)))
    }

    /// The outcome; `NotStarted` if the thread left none (it never ran `f`).
    pub(crate) fn take(&self) -> Result<T, StopError> {
        lock(&self.0).take().unwrap_or(Err(StopError::NotStarted))
    }

    fn set(&self, result: Result<T, StopError>) {
        *lock(&self.0) = Some(result);
    }
}

/// The body of every kthread (the kernel's `kthread()`).
///
/// `#[inline]`: inlined into the boxed closure kthreadd calls, as it was
/// before the module split; without it the user's loop lands in a block
/// layout that costs `should_stop()` loops ~40% (bench `should_stop`).
#[inline]
pub(crate) fn thread_main<F, T>(task: Task, f: F, packet: Arc<Packet<T>>, reply: Option<Arc<Reply>>)
where
    F: FnOnce() -> T,
{
    task::set_current(&task);
    // The creator set up the rest from outside (and listed the task, in
    // the state of its first sleep), unless the thread must finish it.
    if let Some(reply) = reply {
        let setup = kthreadd::prefer_own_node(&task).and_then(|()| {
            if task.has(flags::INTERRUPT_ON_STOP) {
                hooks::opt_in(&task)
            } else {
                Ok(())
            }
        });
        if let Err(e) = setup {
            hooks::thread_exit(&task);
            // Creation failed: the creator joins us; `f` is dropped here,
            // once (a panic in its drop must not escape the thread's main).
            drop_catching(f);
            task::clear_current();
            reply.answer(Err(e));
            return;
        }
        list::add(&task);
        task.set_state(task::UNINTERRUPTIBLE);
        reply.answer(Ok(()));
    }
    // Sleep until the first wake (or a stop).
    task.sleep(None);
    // A `bind` racing with the first wake holds this lock until the
    // affinity is applied, so `f` never runs on the wrong CPU.
    drop(task.bind_lock());

    let result = if task.has(flags::WOKEN) {
        if task.has(flags::SHOULD_PARK) {
            parkme_task(&task);
        }
        if task.is_freezable() && freeze::freezing() {
            // Woken while frozen: wait for the thaw, or a stop (the
            // function must then still run, with should_stop() true).
            freeze::refrigerator(&task, true);
        }
        catch_unwind(AssertUnwindSafe(f)).map_err(StopError::Panicked)
    } else {
        // Never woken: `f` never runs. A panic in its drop is the user's
        // value's, reported by the panic hook; the answer stays NotStarted.
        drop_catching(f);
        Err(StopError::NotStarted)
    };
    packet.set(result);
    exit(&task);
    // The last references may be ours (a detached or dropped handle): the
    // packet then drops the result or a panic's payload, the task its
    // `data`, all the user's values whose `Drop` may panic. Caught here, as
    // every value the library drops for the user is.
    drop_catching(packet);
    drop_catching(task);
}

/// The end of a kthread: the order matters (design.md, "exit").
pub(crate) fn exit(task: &Task) {
    if task.has(flags::HOOKED) {
        // No interruption reaches the thread (or its reused id) after this.
        hooks::thread_exit(task);
    }
    task.set_state(task::DEAD);
    list::remove(task);
    // One RMW sets EXITED and clears a pending park: a parker still waiting
    // for an acknowledgement is released here and sees `Exited`.
    let prev = task.flags().mark_exited();
    if flags::releases_parker(prev) {
        task.parked().complete();
    }
    freeze::task_changed();
    task.exited().complete_all();
    task::clear_current();
}

/// Sets should-stop and wakes the task out of every sleep a stop ends;
/// with hooks, raises its stop fd, interrupts its blocking call and (the
/// first stopper only) runs its stop callbacks, before returning.
pub(crate) fn request_stop(task: &Task) {
    request_stop_by(task, hooks::Resend::Timer)
}

/// [`request_stop`], saying who re-sends an interruption: a stopper that
/// then waits passes [`hooks::Resend::Waiter`] and waits with
/// [`hooks::wait_resending`].
pub(crate) fn request_stop_by(task: &Task, by: hooks::Resend) {
    if task.has(flags::INTERRUPT_ON_STOP) {
        task.hooks().mark_unseen(hooks::STOP);
    }
    let prev = task.flags().request_stop();
    if prev & flags::HOOKED != 0 {
        hooks::requested(task, by);
    }
    unpark_task(task);
    task.wake_state(task::WAKE_NORMAL | task::WAKE_FROZEN);
    if prev & (flags::HOOKED | flags::SHOULD_STOP) == flags::HOOKED {
        // A callback registered after our RMW saw the stop and runs itself.
        hooks::run_stop_callbacks(task);
    }
}
