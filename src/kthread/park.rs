//! Park: `kthread_park()`, `kthread_parkme()`, `kthread_unpark()`.
//!
//! The flags word decides everything (`task/flags.rs`): one parker claims
//! `SHOULD_PARK`, the thread acknowledges with `IS_PARKED`, and exactly one
//! party completes the parker's wait (design.md §5).

use super::{is_current, not_a_task, seen};
use crate::error::Error;
use crate::sys::sched::{self, CpuSet};
use crate::task::{self, flags, freeze, hooks, Task};

impl Task {
    /// Parks the task and returns once it sits in [`parkme`]; mirrors `kthread_park()`.
    ///
    /// What [`Kthread::park`](crate::Kthread::park) does, for a caller that
    /// holds only the task (the C ABI's `struct task_struct *`). A task
    /// never woken may be parked: that counts as its first wake, and it
    /// parks before its function runs. Errors: [`Error::AlreadyParked`],
    /// [`Error::Exited`] if it has returned or a stop has been requested (a
    /// park after the stop's unpark would hold the stopping thread for ever).
    ///
    /// ```
    /// let k = kthread::create("p", || ())?;
    /// k.task().park()?; // never woken: parks before its function
    /// assert!(matches!(k.task().park(), Err(kthread::Error::AlreadyParked)));
    /// k.task().unpark();
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn park(&self) -> Result<(), Error> {
        if self.is_inherited() {
            return Err(Error::Forked);
        }
        let own = is_current(self);
        let interrupting = self.has(flags::INTERRUPT_ON_STOP) && !own;
        if interrupting {
            // Before the flag, so a thread that sees the park clears it.
            self.hooks().mark_unseen(hooks::PARK);
        }
        let prev = match self.flags().claim_park(own) {
            Ok(prev) => prev,
            Err(f) => {
                if interrupting && f & (flags::EXITED | flags::SHOULD_STOP) != 0 {
                    self.hooks().unmark(hooks::PARK); // no park can follow
                }
                return Err(if f & (flags::EXITED | flags::SHOULD_STOP) != 0 {
                    Error::Exited
                } else {
                    Error::AlreadyParked
                });
            }
        };
        if prev & flags::HOOKED != 0 {
            hooks::requested(self, hooks::Resend::Waiter);
        }
        crate::trace::event!(DEBUG, "kthread_park", self.name(), self.tid());
        if own {
            return Ok(());
        }
        self.wake_state(task::WAKE_NORMAL);
        if interrupting {
            hooks::wait_resending(self, hooks::PARK, None, |slice| {
                self.parked().wait_timeout(slice)
            });
        } else {
            self.parked().wait();
        }
        if self.has(flags::EXITED) {
            return Err(Error::Exited);
        }
        Ok(())
    }

    /// Releases a parked task; mirrors `kthread_unpark()`. A no-op if not parked.
    ///
    /// A per-CPU task is re-bound to its CPU before it runs again.
    ///
    /// ```
    /// let k = kthread::create("u", || ())?;
    /// k.task().unpark(); // not parked: nothing happens
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn unpark(&self) {
        if !self.is_inherited() {
            unpark_task(self)
        }
    }
}

/// `kthread_unpark()`; also the first step of a stop.
pub(super) fn unpark_task(task: &Task) {
    let prev = task.flags().clear_park();
    if prev & flags::SHOULD_PARK == 0 {
        return;
    }
    if prev & flags::HOOKED != 0 {
        hooks::withdrawn(task, hooks::PARK);
    }
    if flags::releases_parker(prev) {
        task.parked().complete();
    }
    if prev & flags::IS_PARKED != 0 && prev & flags::PER_CPU != 0 {
        if let Some(cpu) = task.cpu() {
            // Re-bind before it runs again (`__kthread_bind` in `kthread_unpark`).
            let set = CpuSet::from_cpus(&[cpu]).expect("validated at creation");
            if let Err(e) = sched::set_affinity(task.tid(), &set) {
                task.note(format!("re-bind to CPU {cpu} failed: {e}"));
            }
        }
    }
    crate::trace::event!(DEBUG, "kthread_unpark", task.name(), task.tid());
    task.wake_state(task::WAKE_PARKED);
}

/// `kthread_parkme()` for `task`, the caller's own.
pub(crate) fn parkme_task(task: &Task) {
    task.hooks().ack(hooks::PARK);
    loop {
        task.set_state(task::PARKED);
        let f = task.flags().load();
        if f & flags::SHOULD_PARK == 0 {
            break;
        }
        if f & flags::IS_PARKED == 0 {
            match task.flags().ack_park() {
                Ok(prev) => {
                    if prev & flags::SELF_PARK == 0 {
                        task.parked().complete();
                    }
                    freeze::task_changed();
                }
                Err(_) => continue,
            }
        }
        task.sleep(None);
    }
    task.set_state(task::RUNNING);
}

/// Whether the current kthread has been asked to park; mirrors `kthread_should_park()`.
///
/// ```
/// assert!(!kthread::should_park());
/// ```
#[inline]
pub fn should_park() -> bool {
    task::with_current(|t| match t {
        Some(t) => {
            let f = t.flags().load_relaxed();
            if f & flags::SHOULD_PARK == 0 {
                return false;
            }
            if f & flags::HOOKED != 0 {
                seen(t, hooks::PARK);
            }
            true
        }
        None => not_a_task(),
    })
}

/// Parks the current kthread while a park is requested; mirrors `kthread_parkme()`.
///
/// Acknowledges the park (so [`Kthread::park`](crate::Kthread::park)
/// returns), sleeps in `Parked` until unparked or stopped. Returns at once
/// when no park is requested or the caller is not a kthread.
///
/// ```
/// kthread::parkme(); // no park requested: returns at once
/// ```
pub fn parkme() {
    if let Some(t) = task::current_task() {
        parkme_task(&t);
    }
}
