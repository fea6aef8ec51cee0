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
//! out of an `Interruptible` sleep (an RMW on its state word, which orders
//! the flag before the task's next `set_current_state`). A task enters the
//! refrigerator at its next freeze point, marks itself `FROZEN` and bumps the
//! freezer's sequence word, on which `freeze` sleeps (a futex, no polling)
//! until every freezable task is quiescent. `thaw` clears the flag and does
//! an RMW on every freezable task's state word, so none can miss it.

use crate::error::Error;
use crate::sync::{AtomicBool, AtomicU32, Ordering};
use crate::sys::futex;
use crate::sys::time::Deadline;
use crate::task::{self, flag, Task};
use std::fmt;
use std::time::Duration;

struct System {
    freezing: AtomicBool,
    /// Bumped (and futex-woken) whenever a task freezes, parks or exits.
    seq: AtomicU32,
}

#[cfg(not(kthread_loom))]
fn system() -> &'static System {
    static SYSTEM: System = System {
        freezing: AtomicBool::new(false),
        seq: AtomicU32::new(0),
    };
    &SYSTEM
}

#[cfg(kthread_loom)]
fn system() -> &'static System {
    loom::lazy_static! {
        static ref SYSTEM: System = System {
            freezing: AtomicBool::new(false),
            seq: AtomicU32::new(0),
        };
    }
    &SYSTEM
}

/// Whether the system is freezing (or frozen); mirrors `freezing(current)` for freezable tasks.
///
/// ```
/// assert!(!kthread::freezer::freezing());
/// ```
pub fn freezing() -> bool {
    system().freezing.load(Ordering::Acquire)
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
            FreezeError::AlreadyFrozen => &[],
        }
    }

    /// The errno the C ABI returns (`EBUSY`, the kernel's freeze failure code).
    ///
    /// ```
    /// assert_eq!(kthread::freezer::FreezeError::AlreadyFrozen.errno(), libc::EBUSY);
    /// ```
    pub fn errno(&self) -> i32 {
        libc::EBUSY
    }
}

impl fmt::Display for FreezeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreezeError::AlreadyFrozen => f.write_str("the system is already frozen"),
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
    armed: bool,
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
        self.armed = false;
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = thaw();
        }
    }
}

/// A task that runs nothing: frozen, parked, exited, or never woken.
fn quiescent(t: &Task) -> bool {
    let f = t.flags();
    f & (flag::FROZEN | flag::IS_PARKED | flag::EXITED) != 0 || f & flag::WOKEN == 0
}

/// Freezes every freezable kthread; mirrors `freeze_kernel_threads()`.
///
/// Returns once each sits in the refrigerator (or is parked, exited or was
/// never woken: all run nothing). Non-freezable kthreads are never touched.
/// If some do not freeze within `timeout`, everything is thawed and the
/// error names them. The returned guard thaws when dropped.
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
    let sys = system();
    if sys.freezing.swap(true, Ordering::AcqRel) {
        return Err(FreezeError::AlreadyFrozen);
    }
    let deadline = Deadline::after(timeout);
    loop {
        // Read the sequence before scanning: a task that freezes after the
        // scan bumps it, and the futex wait below then returns at once.
        let seq = sys.seq.load(Ordering::Acquire);
        let pending: Vec<Task> = crate::registry::tasks_with(flag::FREEZABLE)
            .into_iter()
            .filter(|t| !quiescent(t))
            .collect();
        if pending.is_empty() {
            crate::trace::freezer("freeze_done", 0);
            return Ok(FreezeGuard { armed: true });
        }
        if deadline.passed() {
            let names = pending
                .iter()
                .map(|t| Unfrozen {
                    name: t.name().to_owned(),
                    tid: t.tid(),
                })
                .collect();
            let _ = thaw();
            return Err(FreezeError::TimedOut(names));
        }
        for t in &pending {
            // The kernel's `freeze_task()`: wake interruptible sleepers only.
            t.wake_state(task::WAKE_INTERRUPTIBLE);
        }
        futex::wait(&sys.seq, seq, Some(deadline));
    }
}

/// Thaws every frozen kthread; mirrors `thaw_kernel_threads()`.
///
/// Fails with [`Error::NotFrozen`] when the system is not frozen.
///
/// ```
/// assert!(matches!(kthread::freezer::thaw(), Err(kthread::Error::NotFrozen)));
/// ```
pub fn thaw() -> Result<(), Error> {
    let sys = system();
    if !sys.freezing.swap(false, Ordering::AcqRel) {
        return Err(Error::NotFrozen);
    }
    let tasks = crate::registry::tasks_with(flag::FREEZABLE);
    crate::trace::freezer("thaw", tasks.len());
    for t in &tasks {
        // An RMW on every freezable task's state word, frozen or not: a task
        // entering the refrigerator right now then sees `freezing` false.
        t.wake_state(task::WAKE_FROZEN);
    }
    Ok(())
}

/// Called when a task freezes, parks or exits: wakes a waiting `freeze`.
pub(crate) fn task_changed() {
    let sys = system();
    sys.seq.fetch_add(1, Ordering::AcqRel);
    if sys.freezing.load(Ordering::Acquire) {
        futex::wake(&sys.seq, i32::MAX);
    }
}

/// Sits in the refrigerator until thawed (or, with `check_stop`, stopped).
/// Returns `true` (it froze). Mirrors `__refrigerator()`.
pub(crate) fn refrigerator(t: &Task, check_stop: bool) -> bool {
    // State first: once `freeze` sees the flag, `state()` already says Frozen.
    t.set_state(task::FROZEN);
    t.0.flags.fetch_or(flag::FROZEN, Ordering::AcqRel);
    crate::trace::freeze(t);
    task_changed();
    loop {
        if !freezing() || (check_stop && t.has(flag::SHOULD_STOP)) {
            break;
        }
        t.sleep(None);
        t.set_state(task::FROZEN);
    }
    t.0.flags.fetch_and(!flag::FROZEN, Ordering::AcqRel);
    t.set_state(task::RUNNING);
    crate::trace::thaw(t);
    true
}

/// Enters the refrigerator if the system is freezing and the caller is a
/// freezable kthread; mirrors `try_to_freeze()`. Returns whether it froze.
///
/// ```
/// assert!(!kthread::try_to_freeze()); // not a freezable kthread
/// ```
#[inline]
pub fn try_to_freeze() -> bool {
    if !freezing() {
        return false;
    }
    match task::current_task() {
        Some(t) if t.is_freezable() => refrigerator(&t, false),
        _ => false,
    }
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
    let Some(t) = crate::kthread::current() else {
        return false;
    };
    t.0.flags.fetch_or(flag::FREEZABLE, Ordering::AcqRel);
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
    let mut frozen = task::with_current(|t| {
        t.is_some_and(|t| {
            t.flags.load(Ordering::Relaxed) & flag::FROZE_IN_SLEEP != 0
                && t.flags.fetch_and(!flag::FROZE_IN_SLEEP, Ordering::AcqRel) & flag::FROZE_IN_SLEEP
                    != 0
        })
    });
    if freezing() {
        if let Some(t) = task::current_task().filter(|t| t.is_freezable()) {
            frozen |= refrigerator(&t, true);
        }
    }
    (crate::kthread::should_stop(), frozen)
}
