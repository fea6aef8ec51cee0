//! Tasks and the state word: `set_current_state`, `schedule`, `wake_up`.
//!
//! Every kthread has a [`Task`], the user-space `task_struct`. Its *state
//! word* is what the thread sleeps on (a futex) and what wakers change; its
//! *flags word* (`flags.rs`) holds the stop/park/freeze requests. This
//! module owns both: every write to either is a named method here.
//!
//! Files: `mod.rs` (the task, the state word), `flags.rs` (the flags word
//! and its transition table), `current.rs` (the calling thread's task),
//! `sched.rs` (`set_current_state`, `schedule*`), `freeze.rs` (the
//! freezer's mechanism: the freezing flag and the refrigerator, which
//! `schedule` needs; the policy is `crate::freezer`), `list.rs` (the list of
//! live tasks).
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
//! | `RUNNING` (new, no thread yet) | `UNINTERRUPTIBLE \| WAITING` | the creator | `Task::adopt_sleeper`: its spare thread is moved onto this word asleep (futex requeue) |
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

mod current;
pub(crate) mod flags;
pub(crate) mod freeze;
pub(crate) mod hooks;
pub(crate) mod list;
pub(crate) mod policy;
mod sched;

pub(crate) use current::{
    clear_current, current_or_adopt, current_task, set_current, with_current,
};
pub use hooks::{
    allow_signal, dequeue_signal, disallow_signal, fatal_signal_pending, flush_signals,
    interrupt_signal, set_interrupt_signal, signal_pending, Interrupted, StopCallback,
};
pub use policy::{Policy, MAX_NICE, MAX_RT_PRIORITY, MIN_NICE};
pub use sched::{schedule, schedule_timeout, set_current_state, sleep_for, uptime};
pub(crate) use sched::{schedule_until, set_current_raw};

use crate::completion::Completion;
use crate::sync::{lock, Arc, AtomicI32, AtomicU32, AtomicUsize, Mutex, MutexGuard, Ordering};
use crate::sys::futex::{self, Wake};
use crate::sys::sched::CpuSet;
use crate::sys::time::Deadline;
use flags::Flags;
use std::any::Any;
use std::ffi::c_void;
use std::fmt;

pub(crate) const RUNNING: u32 = 0;
pub(crate) const INTERRUPTIBLE: u32 = 1;
pub(crate) const UNINTERRUPTIBLE: u32 = 2;
pub(crate) const PARKED: u32 = 3;
pub(crate) const FROZEN: u32 = 4;
pub(crate) const DEAD: u32 = 5;
const STATE_MASK: u32 = 0xff;
const WAITING: u32 = 1 << 8;
/// Modifier: the sleep is a freeze point (`TASK_FREEZABLE`).
pub(crate) const FREEZABLE_SLEEP: u32 = 1 << 9;
/// Modifier of an uninterruptible sleep: `TASK_NOLOAD`, which makes it `TASK_IDLE`.
const NOLOAD: u32 = 1 << 10;
/// Modifier of an uninterruptible sleep: `TASK_WAKEKILL`, which makes it `TASK_KILLABLE`.
const WAKEKILL: u32 = 1 << 11;
/// The modifiers that refine an uninterruptible sleep.
pub(crate) const MODIFIERS: u32 = NOLOAD | WAKEKILL;

/// Wake masks: bit `1 << state` is set for each state a wake may end.
pub(crate) const WAKE_NORMAL: u32 = (1 << INTERRUPTIBLE) | (1 << UNINTERRUPTIBLE);
pub(crate) const WAKE_INTERRUPTIBLE: u32 = 1 << INTERRUPTIBLE;
pub(crate) const WAKE_PARKED: u32 = 1 << PARKED;
pub(crate) const WAKE_FROZEN: u32 = 1 << FROZEN;
/// Wake-mask bit: also end any normal sleep marked [`FREEZABLE_SLEEP`]
/// (the freezer's kick: such a sleep is where the task freezes).
pub(crate) const WAKE_FREEZABLE: u32 = 1 << 16;
/// Wake-mask bit: also end any uninterruptible sleep marked `WAKEKILL`
/// (`TASK_KILLABLE`: a `SIGKILL` the task allowed ends it).
pub(crate) const WAKE_KILLABLE: u32 = 1 << 17;

/// The scheduler state of a task; mirrors `TASK_RUNNING`, `TASK_INTERRUPTIBLE`, ...
///
/// The states a thread may set itself with [`set_current_state`] are
/// `Running`, `Interruptible`, `Uninterruptible`, `Idle` and `Killable`,
/// each sleeping one optionally [freezable](TaskState::freezable). The
/// others belong to the library (`parkme`, the refrigerator, exit).
///
/// ```
/// use kthread::TaskState;
/// let k = kthread::create("idle", || ())?;
/// assert_eq!(k.task().state(), TaskState::Uninterruptible); // created stopped
/// k.stop().unwrap_err();
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Runnable or running (`TASK_RUNNING`).
    Running,
    /// About to sleep or asleep; any wake, stop, park or freeze request wakes it.
    Interruptible,
    /// About to sleep or asleep; only an explicit wake (`wake_up`, stop, unpark) wakes it.
    Uninterruptible,
    /// An uninterruptible sleep that does not count as load (`TASK_IDLE`):
    /// what an idle kthread waiting for work uses; `I` in `ps`.
    Idle,
    /// An uninterruptible sleep that a fatal signal would end
    /// (`TASK_KILLABLE`). In user space a fatal signal ends the whole
    /// process, so it behaves exactly as `Uninterruptible`; `D` in `ps`.
    Killable,
    /// Inside `parkme()` (`TASK_PARKED`).
    Parked,
    /// Inside the refrigerator (`__refrigerator()`).
    Frozen,
    /// Returned; its result waits for `stop` (`TASK_DEAD`).
    Dead,
}

impl TaskState {
    /// The state word's bits for this state (without modifiers but the
    /// ones that define it).
    pub(crate) fn raw(self) -> u32 {
        match self {
            TaskState::Running => RUNNING,
            TaskState::Interruptible => INTERRUPTIBLE,
            TaskState::Uninterruptible => UNINTERRUPTIBLE,
            TaskState::Idle => UNINTERRUPTIBLE | NOLOAD,
            TaskState::Killable => UNINTERRUPTIBLE | WAKEKILL,
            TaskState::Parked => PARKED,
            TaskState::Frozen => FROZEN,
            TaskState::Dead => DEAD,
        }
    }

    fn from_raw(s: u32) -> TaskState {
        match s & STATE_MASK {
            RUNNING => TaskState::Running,
            INTERRUPTIBLE => TaskState::Interruptible,
            UNINTERRUPTIBLE if s & NOLOAD != 0 => TaskState::Idle,
            UNINTERRUPTIBLE if s & WAKEKILL != 0 => TaskState::Killable,
            UNINTERRUPTIBLE => TaskState::Uninterruptible,
            PARKED => TaskState::Parked,
            FROZEN => TaskState::Frozen,
            _ => TaskState::Dead,
        }
    }

    /// This sleep, marked as a freeze point (`state | TASK_FREEZABLE`).
    ///
    /// A freezable kthread freezes inside such a sleep when the system
    /// freezes, and returns from `schedule()` after the thaw (a spurious
    /// wake: its caller re-checks its condition). A plain sleep is not a
    /// freeze point: a freeze *wakes* a freezable kthread out of a plain
    /// `Interruptible` sleep, so it goes round its loop to one, and waits
    /// for one in any other. On `Running` the mark means nothing.
    ///
    /// ```
    /// use kthread::{schedule, set_current_state, TaskState};
    /// let k = kthread::Builder::new("fz").freezable(true).run(|| {
    ///     while !kthread::should_stop() {
    ///         set_current_state(TaskState::Interruptible.freezable());
    ///         if !kthread::should_stop() {
    ///             schedule(); // sleeps; freezes here during a freeze
    ///         }
    ///         set_current_state(TaskState::Running);
    ///     }
    /// })?;
    /// let frozen = kthread::freezer::freeze(std::time::Duration::from_secs(10))?;
    /// drop(frozen);
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn freezable(self) -> SleepState {
        SleepState {
            state: self,
            freezable: true,
        }
    }

    /// The one-letter code `ps` uses (`R`, `S`, `D`, `I`, `P`, `F`, `X`).
    ///
    /// ```
    /// assert_eq!(kthread::TaskState::Parked.letter(), 'P');
    /// assert_eq!(kthread::TaskState::Idle.letter(), 'I');
    /// ```
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Interruptible => 'S',
            TaskState::Uninterruptible | TaskState::Killable => 'D',
            TaskState::Idle => 'I',
            TaskState::Parked => 'P',
            TaskState::Frozen => 'F',
            TaskState::Dead => 'X',
        }
    }

    /// Whether the thread itself may set this state.
    fn settable(self) -> bool {
        matches!(
            self,
            TaskState::Running
                | TaskState::Interruptible
                | TaskState::Uninterruptible
                | TaskState::Idle
                | TaskState::Killable
        )
    }
}

/// A state [`set_current_state`] sets: a [`TaskState`], and whether the
/// sleep is a freeze point (`TASK_FREEZABLE`). Every `TaskState` converts
/// into one (not freezable); [`TaskState::freezable`] makes the other kind.
///
/// ```
/// use kthread::{SleepState, TaskState};
/// let s: SleepState = TaskState::Idle.into();
/// assert!(!s.is_freezable());
/// assert!(TaskState::Idle.freezable().is_freezable());
/// assert_eq!(TaskState::Idle.freezable().state(), TaskState::Idle);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SleepState {
    state: TaskState,
    freezable: bool,
}

impl SleepState {
    /// The task state.
    ///
    /// ```
    /// assert_eq!(kthread::TaskState::Killable.freezable().state(), kthread::TaskState::Killable);
    /// ```
    pub const fn state(self) -> TaskState {
        self.state
    }

    /// Whether the sleep is a freeze point.
    ///
    /// ```
    /// assert!(kthread::TaskState::Interruptible.freezable().is_freezable());
    /// ```
    pub const fn is_freezable(self) -> bool {
        self.freezable
    }

    /// The state word's bits, or `None` for a state the thread may not set.
    pub(crate) fn raw(self) -> Option<u32> {
        if !self.state.settable() {
            return None;
        }
        let raw = self.state.raw();
        Some(if self.freezable && raw != RUNNING {
            raw | FREEZABLE_SLEEP
        } else {
            raw
        })
    }
}

impl From<TaskState> for SleepState {
    fn from(state: TaskState) -> SleepState {
        SleepState {
            state,
            freezable: false,
        }
    }
}

/// Wakes the task at `p` if its state is in `mask` (`wake_state`), for
/// the raw layers that keep a task by address (a wait queue's entries).
///
/// # Safety
/// `p` is [`Task::as_ptr`] of a live task.
#[inline]
pub(crate) unsafe fn wake_ptr(p: *const c_void, mask: u32) -> bool {
    // SAFETY: by the contract `p` points to a live `TaskInner`.
    unsafe { &*p.cast::<TaskInner>() }.wake_state(mask)
}

/// The shared state behind a [`Task`].
///
/// # Invariants
/// `state` is changed only by the methods of this module (an RMW each, see
/// the module docs); `flags` only by [`Flags`]' methods.
///
/// `repr(C)`, with the fields C code reads directly first: `pid` and
/// `comm` of the header's `struct task_struct`.
#[repr(C)]
pub(crate) struct TaskInner {
    /// The OS thread id (`task->pid`).
    tid: AtomicI32,
    /// The name cut to 15 bytes and NUL-terminated (`task->comm`).
    comm: [u8; COMM_LEN],
    state: AtomicU32,
    flags: Flags,
    name: Box<str>,
    /// NUMA node asked for at creation.
    node: Option<usize>,
    /// CPU of a per-CPU kthread, or the one given to `Builder::cpu`.
    cpu: Option<usize>,
    data: Option<Box<dyn Any + Send + Sync>>,
    /// Completed (once per park) when the thread sits in `parkme()`.
    parked: Completion,
    /// Completed (`complete_all`) when the thread function has returned.
    exited: Completion,
    /// The mask `bind` set; held while binding so the first run waits for it.
    bind: Mutex<Option<CpuSet>>,
    /// What kthreadd could not reset in this thread's environment.
    env_notes: Mutex<Vec<String>>,
    /// The freeze epoch this task sits in the refrigerator for (odd), or 0;
    /// written only by the task itself (`freeze::refrigerator`).
    frozen_for: AtomicU32,
    /// Where it is in the task list (`list.rs`), read and written only
    /// under the list's lock; `usize::MAX` while not listed.
    pub(super) list_index: AtomicUsize,
    /// The policy and nice value to apply at birth (`Builder::policy`, `nice`).
    start: policy::Start,
    /// The last policy and nice value seen, for after the thread ends.
    seen: policy::Seen,
    /// The process generation it was born in (`sys::fork`): another one
    /// means this is a `fork()` child's copy, whose thread does not exist.
    generation: u32,
    /// The freeze epoch in which a freeze last woke (or found awake) this
    /// task in a plain interruptible sleep; written only by the task
    /// itself (`schedule`), so the freeze ends such a sleep once.
    kicked_for: AtomicU32,
    /// Models only: the task's memory, "freed" by a model when no one may
    /// touch the task any more; a lock-free waker reads it, so loom reports
    /// a wake that is not ordered before the free.
    /// Stop fd, stop callbacks, signals, interruption (`hooks.rs`).
    hooks: hooks::Hooks,
    #[cfg(kthread_loom)]
    freed: ModelCell,
}

/// Models only: a loom cell shared between the model's threads.
#[cfg(kthread_loom)]
struct ModelCell(crate::sync::UnsafeCell<bool>);

// SAFETY: loom tracks every access to the cell and reports the unordered
// ones, which is the cell's purpose.
#[cfg(kthread_loom)]
unsafe impl Sync for ModelCell {}

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
pub struct Task(Arc<TaskInner>);

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

/// `TASK_COMM_LEN`: the bytes of `task->comm`, its NUL included.
pub const COMM_LEN: usize = 16;

/// `name` as the OS keeps it (`cut_name`), NUL-padded.
fn comm_of(name: &str) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    let cut = cut_name(name);
    comm[..cut.len()].copy_from_slice(cut.as_bytes());
    comm
}

/// Linux keeps 15 bytes of a thread name; cut on a character boundary.
pub(crate) fn cut_name(name: &str) -> &str {
    let mut end = name.len().min(COMM_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What a task is born with.
pub(crate) struct TaskInit {
    pub name: Box<str>,
    /// The scheduling the thread applies before it first runs.
    pub start: policy::Start,
    /// Bits of [`flags::BIRTH`] only.
    pub flags: u32,
    pub node: Option<usize>,
    pub cpu: Option<usize>,
    pub data: Option<Box<dyn Any + Send + Sync>>,
}

impl Task {
    pub(crate) fn new(init: TaskInit) -> Task {
        Task(Arc::new(TaskInner {
            tid: AtomicI32::new(0),
            comm: comm_of(&init.name),
            state: AtomicU32::new(RUNNING),
            flags: Flags::new(init.flags),
            name: init.name,
            node: init.node,
            cpu: init.cpu,
            data: init.data,
            parked: Completion::new(),
            exited: Completion::new(),
            bind: Mutex::new(None),
            env_notes: Mutex::new(Vec::new()),
            frozen_for: AtomicU32::new(0),
            list_index: AtomicUsize::new(usize::MAX),
            start: init.start,
            seen: policy::Seen::new(),
            generation: crate::sys::fork::born(),
            kicked_for: AtomicU32::new(0),
            hooks: hooks::Hooks::new(),
            #[cfg(kthread_loom)]
            freed: ModelCell(crate::sync::UnsafeCell::new(false)),
        }))
    }

    /// A task for a thread that is not a kthread (loom models, foreign threads).
    pub(crate) fn foreign(name: &str) -> Task {
        Task::new(TaskInit {
            name: name.into(),
            start: policy::Start::default(),
            flags: flags::FOREIGN,
            node: None,
            cpu: None,
            data: None,
        })
    }

    /// The calling thread's task, what C's `current` names.
    ///
    /// A kthread gets its own task. Any other thread (such as `main`) is
    /// given a task of its own on first use, so it can sleep in
    /// [`schedule`] and be woken, as `set_current_state` does; that task
    /// lives as long as the thread. [`crate::current`] is the kthread-only form.
    ///
    /// ```
    /// let me = kthread::Task::current();
    /// assert_eq!(me, kthread::Task::current()); // the same task every time
    /// assert!(kthread::current().is_none()); // but not a kthread
    /// let k = kthread::run("cur", || kthread::Task::current().name().to_owned())?;
    /// assert_eq!(k.stop()?, "cur");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn current() -> Task {
        current_or_adopt()
    }

    /// The address of the task's shared state: what the C ABI calls `struct task_struct *`.
    ///
    /// Stable for the task's life and equal for every clone of the task.
    ///
    /// ```
    /// let k = kthread::create("ptr", || ())?;
    /// assert_eq!(k.task().as_ptr(), k.task().clone().as_ptr());
    /// assert!(!k.task().as_ptr().is_null());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *const c_void {
        Arc::as_ptr(&self.0).cast()
    }

    /// A new reference to the task whose shared state is at `ptr`.
    ///
    /// ```
    /// let k = kthread::create("back", || ())?;
    /// let p = k.task().as_ptr();
    /// // SAFETY: `p` is from `as_ptr`, and `k` keeps the task alive.
    /// let t = unsafe { kthread::Task::from_ptr(p) };
    /// assert_eq!(&t, k.task());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    ///
    /// # Safety
    /// `ptr` must come from [`Task::as_ptr`], and the task must be alive:
    /// something (a handle, a `Task`, the running thread for its own task)
    /// must hold a reference to it for the whole call.
    #[inline]
    pub unsafe fn from_ptr(ptr: *const c_void) -> Task {
        let p = ptr.cast::<TaskInner>();
        // SAFETY: by the contract `p` is `Arc::as_ptr` of a live task, so its
        // strong count is at least one while we add ours, and `from_raw`
        // adopts exactly the reference just added.
        unsafe {
            Arc::increment_strong_count(p);
            Task(Arc::from_raw(p))
        }
    }

    /// Gives up this reference as a pointer (`get_task_struct()` then keeps
    /// it); [`Task::from_raw`] takes it back.
    ///
    /// ```
    /// let p = kthread::Task::current().into_raw();
    /// // SAFETY: `p` came from `into_raw` and is taken back once.
    /// let t = unsafe { kthread::Task::from_raw(p) };
    /// assert_eq!(t, kthread::Task::current());
    /// ```
    pub fn into_raw(self) -> *const c_void {
        Arc::into_raw(self.0).cast()
    }

    /// Takes back a reference given up by [`Task::into_raw`] (`put_task_struct()`
    /// when the result is dropped).
    ///
    /// # Safety
    /// `ptr` comes from [`Task::into_raw`] and is taken back at most once.
    pub unsafe fn from_raw(ptr: *const c_void) -> Task {
        // SAFETY: by the contract, the reference `into_raw` gave up.
        Task(unsafe { Arc::from_raw(ptr.cast::<TaskInner>()) })
    }

    /// The shared state, for the raw layers that keep a task by address.
    #[inline]
    pub(crate) fn inner(&self) -> &TaskInner {
        &self.0
    }

    /// The full name given at creation (the OS name is cut to 15 bytes).
    ///
    /// ```
    /// let k = kthread::create("a-rather-long-kthread-name", || ())?;
    /// assert_eq!(k.task().name(), "a-rather-long-kthread-name");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[inline]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The name as C sees it in `task->comm`: cut to 15 bytes (on a character
    /// boundary, as the OS thread name), NUL-terminated.
    ///
    /// ```
    /// let k = kthread::create("a-rather-long-kthread-name", || ())?;
    /// assert_eq!(&k.task().comm()[..16], b"a-rather-long-k\0");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[inline]
    pub fn comm(&self) -> &[u8; COMM_LEN] {
        &self.0.comm
    }

    /// Whether this task was inherited across `fork()`: it is the parent's,
    /// and its thread does not exist in this process. Calls on it (and on
    /// the `Kthread`, `Worker` or items behind it) then answer at once:
    /// [`Error::Forked`](crate::Error::Forked), `false`, or nothing.
    ///
    /// ```
    /// assert!(!kthread::Task::current().is_inherited());
    /// ```
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.0.is_inherited()
    }

    /// The OS thread id (as in `/proc/self/task`); stable for the task's life.
    ///
    /// ```
    /// let k = kthread::create("tid", || ())?;
    /// assert!(std::path::Path::new(&format!("/proc/self/task/{}", k.task().tid())).exists());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[inline]
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
        crate::trace::event!(
            WARN,
            "kthread_env_unclean",
            self.name(),
            self.tid(),
            note = &note
        );
        lock(&self.0.env_notes).push(note);
    }

    /// What [`note`](Self::note) recorded.
    pub(crate) fn env_notes(&self) -> Vec<String> {
        lock(&self.0.env_notes).clone()
    }

    /// The flags word (`flags.rs`).
    #[inline]
    pub(crate) fn flags(&self) -> &Flags {
        &self.0.flags
    }

    /// Whether any flag bit of `mask` is set.
    #[inline]
    pub(crate) fn has(&self, mask: u32) -> bool {
        self.0.flags.has(mask)
    }

    /// The bind lock: held by `bind` while it sets the affinity, and taken
    /// once by the thread after its first wake, so a bind racing the first
    /// wake is applied before the function runs.
    pub(crate) fn bind_lock(&self) -> MutexGuard<'_, Option<CpuSet>> {
        lock(&self.0.bind)
    }

    /// Completed once per park, when the thread acknowledges it.
    pub(crate) fn parked(&self) -> &Completion {
        &self.0.parked
    }

    /// Completed for good when the thread function has returned.
    pub(crate) fn exited(&self) -> &Completion {
        &self.0.exited
    }

    /// The CPU of `Builder::cpu` or of a per-CPU set.
    pub(crate) fn cpu(&self) -> Option<usize> {
        self.0.cpu
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
        self.has(flags::BOUND)
    }

    /// Whether the task takes part in freezing.
    ///
    /// ```
    /// let k = kthread::Builder::new("f").freezable(true).create(|| ())?;
    /// assert!(k.task().is_freezable());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[inline]
    pub fn is_freezable(&self) -> bool {
        self.has(flags::FREEZABLE)
    }

    /// Whether the task belongs to a per-CPU set.
    ///
    /// ```
    /// let k = kthread::create("p", || ())?;
    /// assert!(!k.task().is_per_cpu());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn is_per_cpu(&self) -> bool {
        self.has(flags::PER_CPU)
    }

    /// Whether the thread function has returned (or was never run and is gone).
    ///
    /// ```
    /// let k = kthread::create("e", || ())?;
    /// assert!(!k.task().has_exited());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn has_exited(&self) -> bool {
        self.has(flags::EXITED)
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
    #[inline]
    pub fn wake_up(&self) -> bool {
        if self.is_inherited() {
            return false;
        }
        let woke = self.0.wake_up();
        crate::trace::event!(TRACE, "sched_wakeup", self.name(), self.tid(), woke = woke);
        woke
    }

    /// See [`TaskInner::wake_state`].
    #[inline]
    pub(crate) fn wake_state(&self, mask: u32) -> bool {
        self.0.wake_state(mask)
    }

    /// The creator's side of a spare's hand-over (kthreadd's cache): the
    /// task, whose thread has not run yet, is put in its first sleep
    /// (`Uninterruptible`) with a sleeper marked; then `publish` makes the
    /// spare's gate say "yours" (after which the spare may run into that
    /// first sleep itself), and the spare, if it sleeps on `gate` (whose
    /// word `publish` set to `assigned`), is moved onto this task's state
    /// word without being woken. The task's first wake, or its stop, is
    /// then the one wake that starts the thread.
    ///
    /// Only for a task nobody else can reach yet (not listed, no handle
    /// out): a wake between the mark and the move would find nobody.
    pub(crate) fn adopt_sleeper(&self, gate: &AtomicU32, assigned: u32, publish: impl FnOnce()) {
        self.0.set_state(UNINTERRUPTIBLE | WAITING);
        publish();
        futex::requeue(gate, assigned, &self.0.state);
    }

    /// The owner's state change (`set_current_state` / `__set_current_state`).
    #[inline]
    pub(crate) fn set_state(&self, s: u32) {
        self.0.set_state(s)
    }

    /// The raw state with its modifiers (without `WAITING`), for the
    /// owner's own checks.
    #[inline]
    pub(crate) fn raw_state(&self) -> u32 {
        self.0.state.load(Ordering::Acquire) & !WAITING
    }

    /// Sleeps until the state is `RUNNING` again or `deadline` passes.
    /// Returns `true` on timeout (the state is then `RUNNING` again).
    #[inline]
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
    /// The owner's state change: an `AcqRel` swap, so it reads from any
    /// waker's release sequence (module docs) and publishes the state
    /// before the caller's checks.
    #[inline]
    pub(crate) fn set_state(&self, s: u32) {
        self.state.swap(s, Ordering::AcqRel);
    }

    /// `wake_up_process()` without the trace event: marks the first wake and
    /// wakes a normal sleep.
    #[inline]
    pub(crate) fn wake_up(&self) -> bool {
        self.flags.mark_woken();
        self.wake_state(WAKE_NORMAL)
    }

    /// Records the freeze epoch the task sits in the refrigerator for (0:
    /// none); returns whether it changed. Release: the `Frozen` state
    /// published before is visible to the freezer that reads the epoch.
    #[inline]
    pub(crate) fn mark_frozen_for(&self, epoch: u32) -> bool {
        self.frozen_for.swap(epoch, Ordering::AcqRel) != epoch
    }

    /// See [`Task::is_inherited`].
    #[inline]
    pub(crate) fn is_inherited(&self) -> bool {
        self.generation != crate::sys::fork::generation()
    }

    /// The scheduling to apply at birth.
    pub(crate) fn start(&self) -> policy::Start {
        self.start
    }

    pub(crate) fn note_policy(&self, p: policy::Policy) {
        self.seen.set_policy(p)
    }

    pub(crate) fn last_policy(&self) -> policy::Policy {
        self.seen.policy()
    }

    pub(crate) fn note_nice(&self, n: i32) {
        self.seen.set_nice(n)
    }

    pub(crate) fn last_nice(&self) -> i32 {
        self.seen.nice()
    }

    /// Records that a freeze of `epoch` has ended (or found awake) a plain
    /// interruptible sleep of this task; returns whether it was the first
    /// time in that epoch. Only the task itself calls it.
    #[inline]
    pub(crate) fn note_kicked(&self, epoch: u32) -> bool {
        self.kicked_for.swap(epoch, Ordering::Relaxed) != epoch
    }

    /// The freeze epoch the task is frozen for (0: none).
    #[inline]
    pub(crate) fn frozen_for(&self) -> u32 {
        self.frozen_for.load(Ordering::Acquire)
    }

    /// Models only: a use of the task's memory by a thread that holds no
    /// reference (see `freed`).
    #[cfg(kthread_loom)]
    pub(crate) fn model_use(&self) {
        // SAFETY: a loom cell; loom checks the access itself.
        self.freed
            .0
            .with(|p| assert!(!unsafe { *p }, "task used after it was freed"));
    }

    /// Models only: the task's memory is freed now (see `freed`).
    #[cfg(all(kthread_loom, test))]
    pub(crate) fn model_free(&self) {
        // SAFETY: a loom cell; loom checks the access itself.
        self.freed.0.with_mut(|p| unsafe { *p = true });
    }

    /// The flags word.
    #[inline]
    pub(crate) fn flags(&self) -> &Flags {
        &self.flags
    }

    /// Stop fd, stop callbacks, signals (`hooks.rs`).
    #[inline]
    pub(crate) fn hooks(&self) -> &hooks::Hooks {
        &self.hooks
    }

    /// `signal_pending(p)`: a signal was sent and not flushed, or a stop
    /// was requested (the kernel's `TIF_NOTIFY_SIGNAL`, which
    /// `flush_signals()` does not clear).
    #[inline]
    pub(crate) fn signal_pending(&self) -> bool {
        self.hooks.pending() != 0 || self.flags.load() & flags::SHOULD_STOP != 0
    }

    /// Whether a signal pending for the task ends a sleep in raw state `s`
    /// (`signal_pending_state()`): any for an interruptible one, `SIGKILL`
    /// for a killable one. A stop counts as a signal for an interruptible
    /// sleep, as Linux 5.11+'s `kthread_stop()` sets `TIF_NOTIFY_SIGNAL`
    /// (so `signal_pending()` stays true in a stopped kthread).
    #[inline]
    pub(crate) fn signal_ends(&self, s: u32) -> bool {
        let base = s & STATE_MASK;
        if base == INTERRUPTIBLE {
            self.signal_pending()
        } else if base == UNINTERRUPTIBLE && s & WAKEKILL != 0 {
            self.hooks.pending() & hooks::SIGKILL_BIT != 0
        } else {
            false
        }
    }

    /// Sets the task `RUNNING` if its state is in `mask` (bits `1 << state`),
    /// waking it from its futex; mirrors `wake_up_state()`.
    ///
    /// Always performs an RMW on the state word, even when there is nothing to
    /// wake, so the owner's next `set_current_state` synchronizes with
    /// everything the waker published before calling this (module docs).
    #[inline]
    pub(crate) fn wake_state(&self, mask: u32) -> bool {
        let state = &self.state;
        let mut s = state.load(Ordering::Relaxed);
        loop {
            let base = 1u32 << (s & STATE_MASK);
            let sleeping = base & mask != 0
                || (base & WAKE_NORMAL != 0
                    && ((mask & WAKE_FREEZABLE != 0 && s & FREEZABLE_SLEEP != 0)
                        || (mask & WAKE_KILLABLE != 0 && s & WAKEKILL != 0)));
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
