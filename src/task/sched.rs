//! `set_current_state`, `schedule`, `schedule_timeout`: the owner's side of
//! the state word (the waker's is `Task::wake_up` / `wake_state`).

use super::current::torn_down;
use super::freeze;
use super::{
    current_or_adopt, with_current, SleepState, FREEZABLE_SLEEP, INTERRUPTIBLE, RUNNING,
    UNINTERRUPTIBLE,
};
use crate::sys::time::Deadline;
use std::time::Duration;

/// Publishes the calling thread's state before it checks its wake-up
/// condition; mirrors `set_current_state()`.
///
/// Then call [`schedule`], which sleeps only while the state is still not
/// `Running`: a [`Task::wake_up`](crate::Task::wake_up) between the two
/// makes `schedule` return at once. On a thread that is not a kthread this
/// gives the thread a task of its own, so the same pattern works anywhere.
///
/// `state` is a [`TaskState`](crate::TaskState) or a freezable one
/// ([`TaskState::freezable`](crate::TaskState::freezable), the kernel's
/// `state | TASK_FREEZABLE`).
///
/// # Panics
/// For `Parked`, `Frozen` and `Dead`: those states belong to `parkme`, the
/// refrigerator and thread exit, and nothing would ever wake a thread that
/// set them itself (a `stop` would wait for ever).
///
/// ```
/// use kthread::{set_current_state, schedule, TaskState};
/// let k = kthread::run("sleeper", || {
///     while !kthread::should_stop() {
///         set_current_state(TaskState::Interruptible);
///         if kthread::should_stop() {
///             break;
///         }
///         schedule();
///     }
///     kthread::set_current_state(TaskState::Running);
/// })?;
/// k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_current_state(state: impl Into<SleepState>) {
    let state = state.into();
    let Some(raw) = state.raw() else {
        panic!(
            "set_current_state({:?}): only Running, Interruptible, Uninterruptible, Idle and \
             Killable may be set; {:?} belongs to the library (parkme, the refrigerator, exit)",
            state.state(),
            state.state()
        );
    };
    set_current_raw(raw);
}

/// Sets the caller's state word to `raw` (a settable state with modifiers).
pub(crate) fn set_current_raw(raw: u32) {
    with_current(|t| match t {
        Some(t) => t.set_state(raw),
        None => current_or_adopt().set_state(raw),
    })
}

/// Sleeps until woken, unless already woken since `set_current_state`;
/// mirrors `schedule()`.
///
/// For a freezable kthread while the system freezes (Linux 6.1+):
/// - a sleep marked [freezable](crate::TaskState::freezable) is a freeze
///   point: the kthread enters the refrigerator inside `schedule` and
///   returns after the thaw, or at once when it is stopped (a spurious
///   wake: the caller re-checks its condition anyway);
/// - a plain `Interruptible` sleep is ended once by the freeze (the
///   kernel's `freeze_task()` wake), so the kthread goes round its loop to
///   a freeze point ([`try_to_freeze`](crate::try_to_freeze),
///   [`freezable_should_stop`](crate::freezable_should_stop)); it is never
///   frozen inside it, since it might hold a lock there;
/// - any other sleep is left alone: the freeze waits for it to end.
///
/// ```
/// // Without a preceding set_current_state the task is Running: returns at once.
/// kthread::schedule();
/// ```
pub fn schedule() {
    schedule_until(None);
}

/// Sleeps at most `timeout`, returning the time left (zero if it expired);
/// mirrors `schedule_timeout()`.
///
/// ```
/// use std::time::Duration;
/// kthread::set_current_state(kthread::TaskState::Interruptible);
/// let left = kthread::schedule_timeout(Duration::from_millis(5));
/// assert_eq!(left, Duration::ZERO);
/// ```
pub fn schedule_timeout(timeout: Duration) -> Duration {
    let deadline = Deadline::after(timeout);
    if schedule_until(Some(deadline)) {
        Duration::ZERO
    } else {
        deadline.remaining()
    }
}

/// `schedule` with an optional deadline; returns `true` if it expired.
///
/// An interruptible sleep of a freezable task is a freeze point, before
/// sleeping and after waking (the kernel's `TASK_FREEZABLE` sleep).
pub(crate) fn schedule_until(deadline: Option<Deadline>) -> bool {
    if torn_down() {
        // Thread-local teardown: no task, so nothing can wake us. Sleep out
        // a timeout (a retry loop in a destructor must not spin); without
        // one, return at once, as `schedule()` in `TASK_RUNNING` does.
        return match deadline {
            Some(d) => {
                crate::sys::futex::sleep_until(d);
                true
            }
            None => false,
        };
    }
    let t = current_or_adopt();
    let s = t.raw_state();
    if t.inner().signal_ends(s) {
        // The kernel's `signal_pending_state()` in `__schedule()`: a
        // pending signal the sleep is interruptible by ends it at once.
        t.set_state(RUNNING);
        return false;
    }
    let base = s & !(FREEZABLE_SLEEP | super::MODIFIERS);
    let normal = base == INTERRUPTIBLE || base == UNINTERRUPTIBLE;
    let freeze_point = normal && s & FREEZABLE_SLEEP != 0 && t.is_freezable();
    let kickable = base == INTERRUPTIBLE && s & FREEZABLE_SLEEP == 0 && t.is_freezable();
    if freeze_point || kickable {
        let e = freeze::epoch();
        if e & 1 != 0 {
            if freeze_point {
                t.set_state(RUNNING);
                freeze::refrigerator(&t, true);
                t.flags().note_froze_in_sleep();
                return false;
            }
            if t.inner().note_kicked(e) {
                // The freeze's wake, which this sleep began too late to get.
                t.set_state(RUNNING);
                return false;
            }
            // Woken by this freeze already: sleep as asked.
        }
    }
    let timed_out = t.sleep(deadline);
    if freeze_point || kickable {
        let e = freeze::epoch();
        if e & 1 != 0 {
            if freeze_point {
                freeze::refrigerator(&t, true);
                t.flags().note_froze_in_sleep();
            } else {
                t.inner().note_kicked(e);
            }
        }
    }
    timed_out
}

/// The time since boot on the clock every timeout of the library uses
/// (`CLOCK_MONOTONIC`, which stops during suspend as the kernel's jiffies
/// do); the C ABI's `jiffies` count it.
///
/// ```
/// let a = kthread::task::uptime();
/// assert!(kthread::task::uptime() >= a);
/// ```
pub fn uptime() -> Duration {
    Deadline::now().since_boot()
}

/// Sleeps for all of `d` in `state`: a wake ends the current sleep but not
/// the wait, which sleeps on until the time has passed (the kernel's
/// `msleep()` with `Uninterruptible`, `msleep_interruptible()` with
/// `Interruptible`, `usleep_range()`). A freezable state is a freeze point.
///
/// Returns the time left: zero, unless a signal the sleep is
/// interruptible by (see [`allow_signal`](crate::allow_signal)) ended it
/// early, as `msleep_interruptible()` returns the milliseconds left.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let left = kthread::task::sleep_for(Duration::from_millis(3), kthread::TaskState::Uninterruptible);
/// assert!(start.elapsed() >= Duration::from_millis(3));
/// assert_eq!(left, Duration::ZERO);
/// ```
pub fn sleep_for(d: Duration, state: impl Into<SleepState>) -> Duration {
    let state = state.into();
    let deadline = Deadline::after(d);
    loop {
        set_current_state(state);
        if schedule_until(Some(deadline)) {
            return Duration::ZERO;
        }
        if deadline.passed() {
            set_current_state(super::TaskState::Running);
            return Duration::ZERO;
        }
        let t = current_or_adopt();
        if state.raw().is_some_and(|raw| t.inner().signal_ends(raw)) {
            t.inner().hooks().ack(super::hooks::SIGNAL);
            return deadline.remaining();
        }
    }
}
