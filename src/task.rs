//! Tasks and the state word: `set_current_state`, `schedule`, `wake_up`.
//!
//! Every kthread has a [`Task`], the user-space `task_struct`. Its *state
//! word* is what the thread sleeps on (a futex) and what wakers change.
//!
//! # The state word
//!
//! | bits | meaning |
//! |------|---------|
//! | 0..8 | the [`TaskState`] (`RUNNING` = 0, `INTERRUPTIBLE`, `UNINTERRUPTIBLE`, `PARKED`, `FROZEN`, `DEAD`) |
//! | 8    | `WAITING`: the owner sleeps in `futex_wait` on this word, so a waker must `futex_wake` |
//!
//! | from | to | by | how |
//! |------|----|----|-----|
//! | `RUNNING` | any sleeping state | the owner | `set_current_state` (swap) |
//! | sleeping `s` | `s \| WAITING` | the owner | `schedule` (CAS), then `futex_wait` |
//! | `s` or `s \| WAITING` with `s` in the waker's mask | `RUNNING` | a waker | `wake_state` (CAS), `futex_wake` if `WAITING` was set |
//! | sleeping | `RUNNING` | the owner | `schedule_timeout` expiry, `__set_current_state(RUNNING)` (swap) |
//! | `RUNNING` | `DEAD` | the owner | thread exit (swap) |
//!
//! # Memory ordering: why every write is a read-modify-write
//!
//! The lost-wake-up-free pattern is a store-buffering race: the sleeper
//! writes its state then reads the condition; the waker writes the condition
//! then reads the state. Instead of relying on `SeqCst` fences, *every*
//! write to the state word is an RMW with `AcqRel`, including the waker's
//! "nothing to wake" case (a CAS of the value onto itself). RMWs on one word
//! are totally ordered, so either the waker's RMW comes after the sleeper's
//! `set_current_state` (it sees the sleeping state and wakes it), or before
//! it, and then the sleeper's swap reads from the waker's release sequence
//! and sees the condition the waker published. This is also what lets loom
//! check the protocol exactly.
//!
//! # Flags
//!
//! The flags word holds the kernel's `KTHREAD_SHOULD_STOP`,
//! `KTHREAD_SHOULD_PARK`, `KTHREAD_IS_PARKED`, `PF_NO_SETAFFINITY` and friends,
//! plus `WOKEN`, the one atomic decision between the first wake and a stop
//! (see `docs/design.md`, "First run versus stop").

use crate::completion::Completion;
use crate::sync::{lock, Arc, AtomicI32, AtomicU32, Ordering};
use crate::sys::futex::{self, Wake};
use crate::sys::sched::CpuSet;
use crate::sys::time::Deadline;
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) const RUNNING: u32 = 0;
pub(crate) const INTERRUPTIBLE: u32 = 1;
pub(crate) const UNINTERRUPTIBLE: u32 = 2;
pub(crate) const PARKED: u32 = 3;
pub(crate) const FROZEN: u32 = 4;
pub(crate) const DEAD: u32 = 5;
const STATE_MASK: u32 = 0xff;
const WAITING: u32 = 1 << 8;

/// Wake masks: bit `1 << state` is set for each state a wake may end.
pub(crate) const WAKE_NORMAL: u32 = (1 << INTERRUPTIBLE) | (1 << UNINTERRUPTIBLE);
pub(crate) const WAKE_INTERRUPTIBLE: u32 = 1 << INTERRUPTIBLE;
pub(crate) const WAKE_PARKED: u32 = 1 << PARKED;
pub(crate) const WAKE_FROZEN: u32 = 1 << FROZEN;

/// Flag bits.
pub(crate) mod flag {
    /// `kthread_stop()` was called (`KTHREAD_SHOULD_STOP`).
    pub const SHOULD_STOP: u32 = 1 << 0;
    /// `kthread_park()` was called and no unpark yet (`KTHREAD_SHOULD_PARK`).
    pub const SHOULD_PARK: u32 = 1 << 1;
    /// The first wake happened before any stop: the function will run.
    pub const WOKEN: u32 = 1 << 2;
    /// Affinity fixed by `bind` (`PF_NO_SETAFFINITY`).
    pub const BOUND: u32 = 1 << 3;
    /// Member of a per-CPU set (`KTHREAD_IS_PER_CPU`).
    pub const PER_CPU: u32 = 1 << 4;
    /// Takes part in freezing (no `PF_NOFREEZE`).
    pub const FREEZABLE: u32 = 1 << 5;
    /// Sits in `parkme()` and has acknowledged the park (`KTHREAD_IS_PARKED`).
    pub const IS_PARKED: u32 = 1 << 6;
    /// Sits in the refrigerator (`PF_FROZEN`).
    pub const FROZEN: u32 = 1 << 7;
    /// The thread function has returned (or never will run).
    pub const EXITED: u32 = 1 << 8;
    /// This task is kthreadd.
    pub const KTHREADD: u32 = 1 << 9;
    /// A thread that is not a kthread, given a task so it can sleep and be woken.
    pub const FOREIGN: u32 = 1 << 10;
    /// Runs the worker loop.
    pub const WORKER: u32 = 1 << 11;
    /// Froze inside an interruptible `schedule()`; reported (and cleared) by
    /// the next `freezable_should_stop()` as the kernel's `was_frozen`.
    pub const FROZE_IN_SLEEP: u32 = 1 << 13;
    /// The thread parked itself: nobody waits for the acknowledgement.
    pub const SELF_PARK: u32 = 1 << 12;
}

/// The scheduler state of a task; mirrors `TASK_RUNNING`, `TASK_INTERRUPTIBLE`, ...
///
/// ```
/// use kthread::TaskState;
/// let k = kthread::create("idle", || ())?;
/// assert_eq!(k.task().state(), TaskState::Uninterruptible); // created stopped
/// k.stop().unwrap_err();
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Runnable or running (`TASK_RUNNING`).
    Running,
    /// About to sleep or asleep; any wake, stop, park or freeze request wakes it.
    Interruptible,
    /// About to sleep or asleep; only an explicit wake (`wake_up`, stop, unpark) wakes it.
    Uninterruptible,
    /// Inside `parkme()` (`TASK_PARKED`).
    Parked,
    /// Inside the refrigerator (`__refrigerator()`).
    Frozen,
    /// Returned; its result waits for `stop` (`TASK_DEAD`).
    Dead,
}

impl TaskState {
    pub(crate) fn raw(self) -> u32 {
        match self {
            TaskState::Running => RUNNING,
            TaskState::Interruptible => INTERRUPTIBLE,
            TaskState::Uninterruptible => UNINTERRUPTIBLE,
            TaskState::Parked => PARKED,
            TaskState::Frozen => FROZEN,
            TaskState::Dead => DEAD,
        }
    }

    fn from_raw(s: u32) -> TaskState {
        match s & STATE_MASK {
            RUNNING => TaskState::Running,
            INTERRUPTIBLE => TaskState::Interruptible,
            UNINTERRUPTIBLE => TaskState::Uninterruptible,
            PARKED => TaskState::Parked,
            FROZEN => TaskState::Frozen,
            _ => TaskState::Dead,
        }
    }

    /// The one-letter code `ps` uses (`R`, `S`, `D`, `P`, `F`, `X`).
    ///
    /// ```
    /// assert_eq!(kthread::TaskState::Parked.letter(), 'P');
    /// ```
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Interruptible => 'S',
            TaskState::Uninterruptible => 'D',
            TaskState::Parked => 'P',
            TaskState::Frozen => 'F',
            TaskState::Dead => 'X',
        }
    }
}

pub(crate) struct TaskInner {
    /// The state word; see the module docs. Every write is an RMW.
    pub(crate) state: AtomicU32,
    pub(crate) flags: AtomicU32,
    tid: AtomicI32,
    name: Box<str>,
    /// NUMA node asked for at creation.
    pub(crate) node: Option<usize>,
    /// CPU of a per-CPU kthread, or the one given to `Builder::cpu`.
    pub(crate) cpu: Option<usize>,
    data: Option<Box<dyn Any + Send + Sync>>,
    /// Completed (once per park) when the thread sits in `parkme()`.
    pub(crate) parked: Completion,
    /// Completed (`complete_all`) when the thread function has returned.
    pub(crate) exited: Completion,
    /// The mask `bind` set; held while binding so the first run waits for it.
    pub(crate) bind: Mutex<Option<CpuSet>>,
    /// What kthreadd could not reset in this thread's environment.
    pub(crate) env_notes: Mutex<Vec<String>>,
}

/// A cheap, shareable reference to a kthread's shared state (its `task_struct`).
///
/// ```
/// let k = kthread::Builder::new("reader").data(42u32).create(|| {
///     let me = kthread::current().expect("inside a kthread");
///     *me.data::<u32>().unwrap()
/// })?;
/// let task = k.task().clone();
/// assert_eq!(task.name(), "reader");
/// assert!(task.tid() > 0);
/// k.wake_up();
/// assert_eq!(k.stop()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Task(pub(crate) Arc<TaskInner>);

impl PartialEq for Task {
    fn eq(&self, other: &Task) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Task {}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("tid", &self.tid())
            .field("state", &self.state())
            .finish()
    }
}

pub(crate) struct TaskInit {
    pub name: Box<str>,
    pub flags: u32,
    pub node: Option<usize>,
    pub cpu: Option<usize>,
    pub data: Option<Box<dyn Any + Send + Sync>>,
}

impl Task {
    pub(crate) fn new(init: TaskInit) -> Task {
        Task(Arc::new(TaskInner {
            state: AtomicU32::new(RUNNING),
            flags: AtomicU32::new(init.flags),
            tid: AtomicI32::new(0),
            name: init.name,
            node: init.node,
            cpu: init.cpu,
            data: init.data,
            parked: Completion::new(),
            exited: Completion::new(),
            bind: Mutex::new(None),
            env_notes: Mutex::new(Vec::new()),
        }))
    }

    /// A task for a thread that is not a kthread (loom models, foreign threads).
    pub(crate) fn foreign(name: &str) -> Task {
        Task::new(TaskInit {
            name: name.into(),
            flags: flag::FOREIGN,
            node: None,
            cpu: None,
            data: None,
        })
    }

    /// The full name given at creation (the OS name is cut to 15 bytes).
    ///
    /// ```
    /// let k = kthread::create("a-rather-long-kthread-name", || ())?;
    /// assert_eq!(k.task().name(), "a-rather-long-kthread-name");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The OS thread id (as in `/proc/self/task`); stable for the task's life.
    ///
    /// ```
    /// let k = kthread::create("tid", || ())?;
    /// assert!(std::path::Path::new(&format!("/proc/self/task/{}", k.task().tid())).exists());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn tid(&self) -> i32 {
        self.0.tid.load(Ordering::Acquire)
    }

    pub(crate) fn set_tid(&self, tid: i32) {
        self.0.tid.store(tid, Ordering::Release);
    }

    /// The current scheduler state.
    ///
    /// ```
    /// let k = kthread::create("state", || ())?;
    /// assert_eq!(k.task().state(), kthread::TaskState::Uninterruptible);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn state(&self) -> TaskState {
        TaskState::from_raw(self.0.state.load(Ordering::Acquire))
    }

    /// The data given at creation, if it is a `D`; mirrors `kthread_data()`.
    ///
    /// ```
    /// let k = kthread::Builder::new("d").data(String::from("hello")).create(|| ())?;
    /// assert_eq!(k.task().data::<String>().map(String::as_str), Some("hello"));
    /// assert!(k.task().data::<u8>().is_none());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn data<D: Any>(&self) -> Option<&D> {
        self.0.data.as_ref()?.downcast_ref::<D>()
    }

    /// Records something about the thread's environment the library could
    /// not do (registry `env_notes`, and a `tracing` warning).
    pub(crate) fn note(&self, note: String) {
        crate::trace::env_note(self, &note);
        lock(&self.0.env_notes).push(note);
    }

    pub(crate) fn flags(&self) -> u32 {
        self.0.flags.load(Ordering::Acquire)
    }

    pub(crate) fn has(&self, f: u32) -> bool {
        self.flags() & f != 0
    }

    /// Whether `bind`, `Builder::cpu` or a per-CPU set fixed the affinity.
    ///
    /// ```
    /// let k = kthread::create("b", || ())?;
    /// assert!(!k.task().is_bound());
    /// k.bind(0)?;
    /// assert!(k.task().is_bound());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn is_bound(&self) -> bool {
        self.has(flag::BOUND)
    }

    /// Whether the task takes part in freezing.
    ///
    /// ```
    /// let k = kthread::Builder::new("f").freezable(true).create(|| ())?;
    /// assert!(k.task().is_freezable());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn is_freezable(&self) -> bool {
        self.has(flag::FREEZABLE)
    }

    /// Whether the task belongs to a per-CPU set.
    ///
    /// ```
    /// let k = kthread::create("p", || ())?;
    /// assert!(!k.task().is_per_cpu());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn is_per_cpu(&self) -> bool {
        self.has(flag::PER_CPU)
    }

    /// Whether the thread function has returned (or was never run and is gone).
    ///
    /// ```
    /// let k = kthread::create("e", || ())?;
    /// assert!(!k.task().has_exited());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn has_exited(&self) -> bool {
        self.has(flag::EXITED)
    }

    /// The NUMA node asked for at creation.
    ///
    /// ```
    /// let k = kthread::Builder::new("n").node(0).create(|| ())?;
    /// assert_eq!(k.task().node(), Some(0));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn node(&self) -> Option<usize> {
        self.0.node
    }

    /// Wakes the task if it sleeps in `Interruptible` or `Uninterruptible`;
    /// mirrors `wake_up_process()`.
    ///
    /// Returns `true` if it was sleeping (or about to) and is now `Running`,
    /// `false` if it was running already. The first wake of a kthread lets
    /// its function run.
    ///
    /// ```
    /// let k = kthread::create("w", || 7)?;
    /// assert!(k.task().wake_up());
    /// assert_eq!(k.stop()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake_up(&self) -> bool {
        self.mark_woken();
        let woke = self.wake_state(WAKE_NORMAL);
        crate::trace::wake(self, woke);
        woke
    }

    #[inline]
    pub(crate) fn mark_woken(&self) {
        self.0.mark_woken()
    }

    /// See [`TaskInner::wake_state`].
    pub(crate) fn wake_state(&self, mask: u32) -> bool {
        self.0.wake_state(mask)
    }

    /// The owner's state change (`set_current_state` / `__set_current_state`).
    #[inline]
    pub(crate) fn set_state(&self, s: u32) {
        // AcqRel swap: an RMW, so it reads from any waker's release sequence
        // (module docs) and publishes the state before the caller's checks.
        self.0.state.swap(s, Ordering::AcqRel);
    }

    /// Sleeps until the state is `RUNNING` again or `deadline` passes.
    /// Returns `true` on timeout (the state is then `RUNNING` again).
    pub(crate) fn sleep(&self, deadline: Option<Deadline>) -> bool {
        let state = &self.0.state;
        let mut s = state.load(Ordering::Acquire);
        loop {
            if s & STATE_MASK == RUNNING {
                return false;
            }
            if s & WAITING == 0 {
                match state.compare_exchange_weak(
                    s,
                    s | WAITING,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => s |= WAITING,
                    Err(cur) => {
                        s = cur;
                        continue;
                    }
                }
            }
            if futex::wait(state, s, deadline) == Wake::TimedOut {
                self.set_state(RUNNING);
                return true;
            }
            s = state.load(Ordering::Acquire);
        }
    }
}

impl TaskInner {
    /// Records the first wake, unless a stop got there first: the one atomic
    /// decision of whether the thread function will run (SPEC §3).
    #[inline]
    pub(crate) fn mark_woken(&self) {
        let f = self.flags.load(Ordering::Relaxed);
        if f & flag::WOKEN == 0 {
            let _ = self
                .flags
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |f| {
                    if f & (flag::WOKEN | flag::SHOULD_STOP) != 0 {
                        None
                    } else {
                        Some(f | flag::WOKEN)
                    }
                });
        }
    }

    /// Sets the task `RUNNING` if its state is in `mask` (bits `1 << state`),
    /// waking it from its futex; mirrors `wake_up_state()`.
    ///
    /// Always performs an RMW on the state word, even when there is nothing to
    /// wake, so the owner's next `set_current_state` synchronizes with
    /// everything the waker published before calling this (module docs).
    pub(crate) fn wake_state(&self, mask: u32) -> bool {
        let state = &self.state;
        let mut s = state.load(Ordering::Relaxed);
        loop {
            let sleeping = (1u32 << (s & STATE_MASK)) & mask != 0;
            let new = if sleeping { RUNNING } else { s };
            // AcqRel: Release publishes the waker's condition (pairs with the
            // Acquire of the owner's swap in `set_state`); Acquire orders the
            // futex wake after the owner's WAITING mark.
            match state.compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if sleeping && s & WAITING != 0 {
                        futex::wake(state, 1);
                    }
                    return sleeping;
                }
                Err(cur) => s = cur,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The current task.

#[cfg(not(kthread_loom))]
std::thread_local! {
    static CURRENT: Cell<*const TaskInner> = const { Cell::new(std::ptr::null()) };
    /// Keeps a foreign thread's task alive for the thread's life.
    static ADOPTED: std::cell::RefCell<Option<Task>> = const { std::cell::RefCell::new(None) };
}

#[cfg(kthread_loom)]
loom::thread_local! {
    static CURRENT: Cell<*const TaskInner> = Cell::new(std::ptr::null());
    static ADOPTED: std::cell::RefCell<Option<Task>> = std::cell::RefCell::new(None);
}

/// Installs `task` as the calling thread's current task (thread start, loom models).
pub(crate) fn set_current(task: &Task) {
    let p: *const TaskInner = &*task.0;
    CURRENT.with(|c| c.set(p));
}

/// Clears the calling thread's current task (thread exit).
pub(crate) fn clear_current() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// Runs `f` with the calling thread's task, if it has one.
///
/// The pointer stays valid while the thread runs: a kthread's main holds a
/// strong reference for its whole life, and a foreign thread's lives in `ADOPTED`.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskInner>) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: see above: a non-null CURRENT points at a TaskInner kept alive
    // by this very thread until `clear_current` runs.
    f(unsafe { p.as_ref() })
}

/// The calling thread's task, giving a foreign thread one on first use.
pub(crate) fn current_or_adopt() -> Task {
    if let Some(t) = current_task() {
        return t;
    }
    let t = Task::foreign("foreign");
    ADOPTED.with(|a| *a.borrow_mut() = Some(t.clone()));
    set_current(&t);
    t
}

/// The calling thread's task (kthread or adopted foreign thread).
pub(crate) fn current_task() -> Option<Task> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: as in `with_current`; the strong count is at least one while
    // the thread runs, so adding one more from the raw pointer is sound.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Task(Arc::from_raw(p)))
    }
}

/// Publishes the calling thread's state before it checks its wake-up
/// condition; mirrors `set_current_state()`.
///
/// Then call [`schedule`], which sleeps only while the state is still not
/// `Running`: a [`Task::wake_up`] between the two makes `schedule` return at
/// once. On a thread that is not a kthread this gives the thread a task of
/// its own, so the same pattern works anywhere.
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
pub fn set_current_state(state: TaskState) {
    let raw = state.raw();
    with_current(|t| match t {
        Some(t) => {
            t.state.swap(raw, Ordering::AcqRel);
        }
        None => current_or_adopt().set_state(raw),
    })
}

/// Sleeps until woken, unless already woken since `set_current_state`;
/// mirrors `schedule()`.
///
/// A freezable kthread in an `Interruptible` sleep enters the refrigerator
/// when the system freezes, and returns from `schedule` after the thaw, or
/// at once when it is stopped (as a spurious wake: the caller re-checks its
/// condition anyway), so a frozen kthread can always be stopped.
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

/// Returns `true` if the deadline expired.
pub(crate) fn schedule_until(deadline: Option<Deadline>) -> bool {
    let t = current_or_adopt();
    let s = t.0.state.load(Ordering::Acquire) & STATE_MASK;
    let freezable = s == INTERRUPTIBLE && t.has(flag::FREEZABLE);
    if freezable && crate::freezer::freezing() {
        t.set_state(RUNNING);
        crate::freezer::refrigerator(&t, true);
        t.0.flags.fetch_or(flag::FROZE_IN_SLEEP, Ordering::AcqRel);
        return false;
    }
    let timed_out = t.sleep(deadline);
    if freezable && crate::freezer::freezing() {
        crate::freezer::refrigerator(&t, true);
        t.0.flags.fetch_or(flag::FROZE_IN_SLEEP, Ordering::AcqRel);
    }
    timed_out
}
