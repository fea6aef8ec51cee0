//! The freezer: quiesce every freezable kthread at a safe point, then thaw.
//!
//! Mirrors `freeze_kernel_threads()`, `thaw_kernel_threads()`,
//! `try_to_freeze()`, `set_freezable()` and `kthread_freezable_should_stop()`.
//! Use it to stop background threads at known points before `fork()`, a
//! snapshot or a live upgrade.
//!
//! # Protocol (details in `docs/design.md`)
//!
//! `freeze` sets the global *freezing* flag, then kicks every freezable task
//! out of an `Interruptible` sleep or a sleep marked freezable (an RMW on
//! its state word, which orders the flag before the task's next
//! `set_current_state`). As in Linux 6.1+, the freeze points are
//! `try_to_freeze`, `freezable_should_stop`, sleeps marked freezable
//! ([`TaskState::freezable`](crate::TaskState::freezable), the
//! `wait_event_freezable*` of [`WaitQueue`](crate::WaitQueue)) and the gap
//! between two items of a freezable worker; a plain interruptible sleep is
//! only woken, so the task goes round its loop to one. A task enters the
//! refrigerator at its next freeze point, marks itself `FROZEN` and bumps the
//! freezer's sequence word, on which `freeze` sleeps (a futex, no polling)
//! until every freezable task is quiescent. `thaw` clears the flag and does
//! an RMW on every freezable task's state word, so none can miss it.

use crate::kthread::{current, should_stop};
use crate::sync::{lock_static, Ordering, StaticAtomicU64, StaticMutex};
use crate::sys::fork::PerProcess;
use crate::sys::time::Deadline;
use crate::task::{self, flags, freeze, hooks, list, Task};
use std::fmt;
use std::time::Duration;

/// Whether the system is freezing (or frozen); mirrors `freezing(current)` for freezable tasks.
///
/// ```
/// assert!(!kthread::freezer::freezing());
/// ```
pub fn freezing() -> bool {
    freeze::freezing()
}

/// A task that did not reach a freeze point in time.
///
/// ```
/// let t = kthread::freezer::Unfrozen { name: "busy".into(), tid: 42 };
/// assert_eq!(t.to_string(), "busy (tid 42)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfrozen {
    /// The task's name.
    pub name: String,
    /// The task's thread id.
    pub tid: i32,
}

impl fmt::Display for Unfrozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (tid {})", self.name, self.tid)
    }
}

/// Why [`freeze`] failed.
///
/// ```
/// use kthread::freezer::{self, FreezeError};
/// use std::time::Duration;
/// let _frozen = freezer::freeze(Duration::from_secs(1))?;
/// assert!(matches!(freezer::freeze(Duration::from_secs(1)), Err(FreezeError::AlreadyFrozen)));
/// freezer::thaw()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum FreezeError {
    /// The system is already frozen (or being frozen).
    AlreadyFrozen,
    /// These tasks did not freeze in time; everything has been thawed again
    /// (the kernel's "Freezing of tasks failed").
    TimedOut(Vec<Unfrozen>),
    /// [`thaw`] while the system is not frozen.
    NotFrozen,
}

impl FreezeError {
    /// The tasks that did not freeze (empty for `AlreadyFrozen`).
    ///
    /// ```
    /// assert!(kthread::freezer::FreezeError::AlreadyFrozen.tasks().is_empty());
    /// ```
    pub fn tasks(&self) -> &[Unfrozen] {
        match self {
            FreezeError::TimedOut(t) => t,
            FreezeError::AlreadyFrozen | FreezeError::NotFrozen => &[],
        }
    }

    /// The errno the C ABI returns: `EBUSY` (the kernel's freeze failure
    /// code) for a failed freeze, `EINVAL` for a thaw with nothing frozen.
    ///
    /// ```
    /// use kthread::freezer::FreezeError;
    /// assert_eq!(FreezeError::AlreadyFrozen.errno(), libc::EBUSY);
    /// assert_eq!(FreezeError::NotFrozen.errno(), libc::EINVAL);
    /// ```
    pub fn errno(&self) -> i32 {
        match self {
            FreezeError::AlreadyFrozen | FreezeError::TimedOut(_) => libc::EBUSY,
            FreezeError::NotFrozen => libc::EINVAL,
        }
    }
}

impl fmt::Display for FreezeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreezeError::AlreadyFrozen => f.write_str("the system is already frozen"),
            FreezeError::NotFrozen => f.write_str("the system is not frozen"),
            FreezeError::TimedOut(t) => {
                write!(f, "freezing of tasks failed; not frozen: ")?;
                for (i, u) in t.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{u}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for FreezeError {}

/// Thaws on drop; returned by [`freeze`].
///
/// ```
/// use std::time::Duration;
/// {
///     let _guard = kthread::freezer::freeze(Duration::from_secs(1))?;
///     assert!(kthread::freezer::freezing());
/// }
/// assert!(!kthread::freezer::freezing());
/// # Ok::<(), kthread::freezer::FreezeError>(())
/// ```
#[must_use = "dropping the guard thaws at once"]
#[derive(Debug)]
pub struct FreezeGuard {
    /// The freeze this guard made; `None` once kept.
    generation: Option<u64>,
}

impl FreezeGuard {
    /// Keeps the system frozen after the guard is dropped (call [`thaw`] later).
    ///
    /// ```
    /// use std::time::Duration;
    /// kthread::freezer::freeze(Duration::from_secs(1))?.keep();
    /// assert!(kthread::freezer::freezing());
    /// kthread::freezer::thaw()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep(mut self) {
        self.generation = None;
    }
}

impl Drop for FreezeGuard {
    /// Thaws the freeze this guard made, and only that one: after someone
    /// else's `thaw()` and a new `freeze()`, an old guard leaves the new
    /// freeze alone.
    fn drop(&mut self) {
        if let Some(g) = self.generation {
            let mut st = lock_static(STATE.get());
            if st.active == Some(g) {
                st.active = None;
                thaw_tasks();
            }
        }
    }
}

/// The freezer's own state, serialising freeze and thaw (the kernel's
/// `system_transition_mutex`): held for the whole of a `freeze`, so a
/// `thaw` waits for a pending freeze to finish instead of cutting it short.
struct State {
    /// The generation of the freeze in force, if any.
    active: Option<u64>,
}

/// Per process: a `fork()` child starts thawed, and its freezes are its own
/// (a freeze in progress in the parent may hold the parent's lock).
static STATE: PerProcess<StaticMutex<State>> =
    PerProcess::new(|| StaticMutex::new(State { active: None }));

/// The next freeze generation. Process-wide and inherited, so a guard a
/// child inherited from its parent never matches a freeze of the child's.
static NEXT_GENERATION: StaticAtomicU64 = StaticAtomicU64::new(0);

/// A task that runs nothing: frozen, parked, exited, or never woken.
fn quiescent(t: &Task) -> bool {
    let f = t.flags().load();
    f & (flags::IS_PARKED | flags::EXITED) != 0 || f & flags::WOKEN == 0 || freeze::frozen_now(t)
}

/// Freezes every freezable kthread; mirrors `freeze_kernel_threads()`.
///
/// Returns once each sits in the refrigerator (or is parked, exited or was
/// never woken: all run nothing). Non-freezable kthreads are never touched.
/// If some do not freeze within `timeout`, everything is thawed and the
/// error names them. The returned guard thaws when dropped, and thaws only
/// this freeze. Freezes and thaws are serialised: a [`thaw`] or another
/// `freeze` called while this one is pending waits for it to finish (at
/// most `timeout`), so two freezes never both succeed.
///
/// ```
/// use std::time::Duration;
/// let k = kthread::Builder::new("fz").freezable(true).run(|| {
///     while !kthread::freezable_should_stop() {
///         kthread::set_current_state(kthread::TaskState::Interruptible);
///         if !kthread::should_stop() {
///             kthread::schedule();
///         }
///         kthread::set_current_state(kthread::TaskState::Running);
///     }
/// })?;
/// let guard = kthread::freezer::freeze(Duration::from_secs(5))?;
/// assert_eq!(k.task().state(), kthread::TaskState::Frozen);
/// drop(guard);
/// k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn freeze(timeout: Duration) -> Result<FreezeGuard, FreezeError> {
    let mut st = lock_static(STATE.get());
    if st.active.is_some() || freeze::set_freezing(true) {
        return Err(FreezeError::AlreadyFrozen);
    }
    // Stop fds and interruptible kthreads hear of the freeze.
    hooks::freeze_changed(&list::tasks_with(flags::FREEZABLE), true);
    let deadline = Deadline::after(timeout);
    let mut resend_us: u64 = 0;
    loop {
        // Read the sequence before scanning: a task that freezes after the
        // scan bumps it, and the futex wait below then returns at once.
        let seq = freeze::seq();
        let pending: Vec<Task> = list::tasks_with(flags::FREEZABLE)
            .into_iter()
            .filter(|t| !quiescent(t))
            .collect();
        if pending.is_empty() {
            crate::trace::global!(DEBUG, "freeze_done", tasks = 0);
            let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
            st.active = Some(generation);
            return Ok(FreezeGuard {
                generation: Some(generation),
            });
        }
        if deadline.passed() {
            let names = pending
                .iter()
                .map(|t| Unfrozen {
                    name: t.name().to_owned(),
                    tid: t.tid(),
                })
                .collect();
            thaw_tasks();
            return Err(FreezeError::TimedOut(names));
        }
        let mut interruptible = false;
        for t in &pending {
            // The kernel's `freeze_task()`: wake interruptible sleepers, and
            // any sleep marked freezable (the task freezes there).
            t.wake_state(task::WAKE_INTERRUPTIBLE | task::WAKE_FREEZABLE);
            if t.has(flags::INTERRUPT_ON_STOP) {
                interruptible = true;
                if resend_us > 0 {
                    // Its blocking call may have missed the first interruption.
                    hooks::resend(t, hooks::FREEZE);
                }
            }
        }
        if interruptible {
            // Come back to re-send (1 ms, doubling to 64 ms) if nothing changes.
            resend_us = (resend_us * 2).clamp(1_000, 64_000);
            let back = Deadline::after(Duration::from_micros(resend_us));
            freeze::wait_for_change(seq, if back < deadline { back } else { deadline });
        } else {
            freeze::wait_for_change(seq, deadline);
        }
    }
}

/// Thaws every frozen kthread; mirrors `thaw_kernel_threads()`.
///
/// Fails with [`FreezeError::NotFrozen`] when the system is not frozen.
/// Called while a [`freeze`] is pending, it waits for that freeze to end.
///
/// ```
/// use kthread::freezer::{self, FreezeError};
/// assert!(matches!(freezer::thaw(), Err(FreezeError::NotFrozen)));
/// ```
pub fn thaw() -> Result<(), FreezeError> {
    let mut st = lock_static(STATE.get());
    if st.active.take().is_none() {
        return Err(FreezeError::NotFrozen);
    }
    thaw_tasks();
    Ok(())
}

/// Clears the freezing flag and releases every freezable task (`STATE` held).
fn thaw_tasks() {
    freeze::set_freezing(false);
    let tasks = list::tasks_with(flags::FREEZABLE);
    hooks::freeze_changed(&tasks, false);
    crate::trace::global!(DEBUG, "thaw", tasks = tasks.len());
    for t in &tasks {
        // An RMW on every freezable task's state word, frozen or not: a task
        // entering the refrigerator right now then sees `freezing` false.
        t.wake_state(task::WAKE_FROZEN);
    }
}

/// Enters the refrigerator if the system is freezing and the caller is a
/// freezable kthread; mirrors `try_to_freeze()`. Returns whether it froze.
///
/// ```
/// assert!(!kthread::try_to_freeze()); // not a freezable kthread
/// ```
#[inline]
pub fn try_to_freeze() -> bool {
    freeze::try_to_freeze()
}

/// Makes the current kthread freezable, then freezes if the system is
/// freezing; mirrors `set_freezable()`. Returns whether it froze.
///
/// ```
/// let k = kthread::run("late-freezable", || {
///     kthread::set_freezable();
///     kthread::current().unwrap().is_freezable()
/// })?;
/// assert!(k.stop()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_freezable() -> bool {
    let Some(t) = current() else {
        return false;
    };
    t.flags().set_freezable();
    try_to_freeze()
}

/// Freezes if asked, then returns whether the kthread should stop;
/// mirrors `kthread_freezable_should_stop()`.
///
/// A kthread frozen here leaves the refrigerator when a stop arrives.
///
/// ```
/// let k = kthread::Builder::new("fss").freezable(true).run(|| {
///     while !kthread::freezable_should_stop() {
///         kthread::set_current_state(kthread::TaskState::Interruptible);
///         if !kthread::should_stop() {
///             kthread::schedule();
///         }
///         kthread::set_current_state(kthread::TaskState::Running);
///     }
///     "stopped"
/// })?;
/// assert_eq!(k.stop()?, "stopped");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn freezable_should_stop() -> bool {
    freezable_should_stop_frozen().0
}

/// As [`freezable_should_stop`], also telling whether it froze (the C ABI's `was_frozen`).
///
/// ```
/// assert_eq!(kthread::freezer::freezable_should_stop_frozen(), (false, false));
/// ```
pub fn freezable_should_stop_frozen() -> (bool, bool) {
    // A freeze inside an interruptible sleep since the last call counts: in
    // the kernel the sleep is interrupted and the thread freezes here.
    let mut frozen = task::with_current(|t| t.is_some_and(|t| t.flags().take_froze_in_sleep()));
    if freezing() {
        if let Some(t) = task::current_task().filter(|t| t.is_freezable()) {
            frozen |= freeze::refrigerator(&t, true);
        }
    }
    (should_stop(), frozen)
}
