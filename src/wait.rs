//! Wait queues: `wait_queue_head_t`, `wait_event*()`, `wake_up*()`,
//! `prepare_to_wait()` / `finish_wait()` (`kernel/sched/wait.c`).
//!
//! A [`WaitQueue`] is a lock and an intrusive FIFO list of [`WaitEntry`]s,
//! one per sleeping task. An entry lives in the waiter's own frame (the
//! `wait_event*` functions, the C `DEFINE_WAIT`) or in the [`Wait`] guard
//! of the open-coded form, so queueing allocates nothing but the guard's
//! box. Both types are `repr(C)` and all-zero is valid, so C code embeds
//! them and initialises them statically (`DECLARE_WAIT_QUEUE_HEAD`).
//!
//! # The protocol (as the kernel's)
//!
//! * `prepare_to_wait` takes the lock, links the entry if it is not linked
//!   (a non-exclusive one at the head, an exclusive one at the tail), and
//!   sets the caller's state *under the lock*; the caller then checks its
//!   condition and calls `schedule()`.
//! * `wake_up` takes the lock and walks the list from the head: each
//!   entry's task is woken if its state is in the wake's mask; an
//!   *autoremove* entry (every entry but `add_wait_queue`'s) that was
//!   woken is unlinked; the walk stops after the first exclusive entry
//!   whose task it woke (`wake_up_all`: never).
//! * `finish_wait` sets the caller `Running` and unlinks the entry if a
//!   waker has not.
//!
//! No wake-up is lost: a waker changes the condition before it takes the
//! lock; the sleeper's state is set under the lock before it checks the
//! condition, so either the waker's walk finds the entry with the sleeping
//! state (and wakes it), or the sleeper's check comes after the waker's
//! unlock and sees the condition. A woken waiter re-checks the condition;
//! `wake_up_process` on a waiter makes it re-check too, so `cond ||
//! should_stop()` is the idiom, as in the kernel.
//!
//! The waker reads an entry's task only under the lock, and a waiter's
//! frame never ends with its entry linked (`finish_wait` in a drop guard,
//! even if the condition panics), so the waker never touches a freed
//! entry or task.

use crate::lock::RawLock;
use crate::sync::{AtomicU32, Ordering, UnsafeCell};
use crate::sys::time::Deadline;
use crate::task::{self, SleepState, Task, TaskState};
use std::ffi::c_void;
use std::fmt;
use std::ptr;
use std::time::Duration;

/// Entry flag: woken waiters of this entry count against `wake_up`'s one
/// exclusive wake (`WQ_FLAG_EXCLUSIVE`); linked at the tail.
pub const WQ_FLAG_EXCLUSIVE: u32 = 0x01;
/// Entry flag: the entry stays linked when its task is woken
/// (`add_wait_queue` / `DECLARE_WAITQUEUE`'s `default_wake_function`).
pub const WQ_FLAG_KEEP: u32 = 0x100;
/// Entry flag: the entry is linked (set and cleared under the lock).
const QUEUED: u32 = 0x200;

pub use crate::task::Interrupted;

/// One waiter on a [`WaitQueue`] (`struct wait_queue_entry`).
///
/// Rust code never handles one directly: the `wait_event*` methods keep it
/// in their own frame and [`Wait`] in a box. It is public for the C ABI,
/// whose `DEFINE_WAIT` puts it on the caller's stack.
///
/// ```
/// let e = kthread::wait::WaitEntry::new(&kthread::Task::current(), 0);
/// assert!(!e.is_queued());
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct WaitEntry {
    flags: AtomicU32,
    /// The waiting task, `Task::as_ptr`; the waiter keeps it alive.
    task: UnsafeCell<*const c_void>,
    next: UnsafeCell<*mut WaitEntry>,
    prev: UnsafeCell<*mut WaitEntry>,
}

// SAFETY: the link and task fields are touched only under the owning
// queue's lock, or by the entry's own thread while it is not linked; the
// flags word is atomic.
unsafe impl Send for WaitEntry {}
// SAFETY: as above.
unsafe impl Sync for WaitEntry {}

impl WaitEntry {
    /// An unlinked entry for `task` with `flags` (`WQ_FLAG_EXCLUSIVE`,
    /// `WQ_FLAG_KEEP`); `init_wait_entry()` / `init_waitqueue_entry()`.
    ///
    /// ```
    /// use kthread::wait::{WaitEntry, WQ_FLAG_EXCLUSIVE};
    /// let e = WaitEntry::new(&kthread::Task::current(), WQ_FLAG_EXCLUSIVE);
    /// assert!(!e.is_queued());
    /// ```
    pub fn new(task: &Task, flags: u32) -> WaitEntry {
        WaitEntry {
            flags: AtomicU32::new(flags & (WQ_FLAG_EXCLUSIVE | WQ_FLAG_KEEP)),
            task: UnsafeCell::new(task.as_ptr()),
            next: UnsafeCell::new(ptr::null_mut()),
            prev: UnsafeCell::new(ptr::null_mut()),
        }
    }

    /// Sets or clears `WQ_FLAG_EXCLUSIVE` (under the queue's lock).
    fn set_exclusive(&self, yes: bool) {
        if yes {
            self.flags.fetch_or(WQ_FLAG_EXCLUSIVE, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!WQ_FLAG_EXCLUSIVE, Ordering::Relaxed);
        }
    }

    /// Whether the entry is on a queue now (`!list_empty(&entry)`).
    ///
    /// ```
    /// let e = kthread::wait::WaitEntry::new(&kthread::Task::current(), 0);
    /// assert!(!e.is_queued());
    /// ```
    pub fn is_queued(&self) -> bool {
        self.flags.load(Ordering::Acquire) & QUEUED != 0
    }

    /// Sets the entry's task and flags, as `init_wait_entry()` (C callers
    /// whose entry was zeroed or reused).
    ///
    /// # Safety
    /// The entry is not linked on any queue.
    pub unsafe fn reinit(&self, task: &Task, flags: u32) {
        self.flags.store(
            flags & (WQ_FLAG_EXCLUSIVE | WQ_FLAG_KEEP),
            Ordering::Relaxed,
        );
        // SAFETY: not linked (caller's contract), so no waker reads it.
        self.task.with_mut(|p| unsafe { *p = task.as_ptr() });
    }
}

/// A wait queue (`wait_queue_head_t`): tasks sleep on it until a
/// condition holds; wakers change the condition, then wake it.
///
/// `const fn new()`, so it can be a `static` (`DECLARE_WAIT_QUEUE_HEAD`).
/// Works from any thread: a thread that is not a kthread is given a task.
///
/// ```
/// use kthread::WaitQueue;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// static WQ: WaitQueue = WaitQueue::new();
/// let items = Arc::new(AtomicU32::new(0));
/// let seen = items.clone();
/// let consumer = kthread::run("consumer", move || {
///     let mut handled = 0;
///     loop {
///         WQ.wait_event(|| seen.load(Ordering::Acquire) > handled || kthread::should_stop());
///         if kthread::should_stop() {
///             return handled;
///         }
///         handled += 1;
///     }
/// })?;
/// items.fetch_add(1, Ordering::Release);
/// WQ.wake_up();
/// while items.load(Ordering::Acquire) == 1 && consumer.task().state() == kthread::TaskState::Running {
///     std::thread::yield_now();
/// }
/// let handled = consumer.stop()?; // 0 or 1: the stop may come first
/// assert!(handled <= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
pub struct WaitQueue {
    lock: RawLock,
    /// Linked entries; changed under the lock by RMWs, read by `has_sleeper`.
    sleepers: AtomicU32,
    head: UnsafeCell<*mut WaitEntry>,
    tail: UnsafeCell<*mut WaitEntry>,
}

// SAFETY: the list is touched only under `lock`; the entries it links are
// kept alive by their waiters until unlinked (module docs).
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

impl Default for WaitQueue {
    fn default() -> WaitQueue {
        WaitQueue::new()
    }
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            .field("sleepers", &self.sleepers.load(Ordering::Relaxed))
            .finish()
    }
}

/// The lock held: the list may be walked and changed.
struct Locked<'a>(&'a WaitQueue);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.lock.unlock();
    }
}

impl Locked<'_> {
    fn link(&self, e: &WaitEntry) {
        let q = self.0;
        let ep = (e as *const WaitEntry).cast_mut();
        let exclusive = e.flags.load(Ordering::Relaxed) & WQ_FLAG_EXCLUSIVE != 0;
        // SAFETY: the lock is held, so the list and the unlinked entry's
        // links are ours; linked entries are alive (module docs).
        unsafe {
            let head = q.head.with(|p| *p);
            let tail = q.tail.with(|p| *p);
            if exclusive {
                e.prev.with_mut(|p| *p = tail);
                e.next.with_mut(|p| *p = ptr::null_mut());
                match tail.as_ref() {
                    Some(t) => t.next.with_mut(|p| *p = ep),
                    None => q.head.with_mut(|p| *p = ep),
                }
                q.tail.with_mut(|p| *p = ep);
            } else {
                e.next.with_mut(|p| *p = head);
                e.prev.with_mut(|p| *p = ptr::null_mut());
                match head.as_ref() {
                    Some(h) => h.prev.with_mut(|p| *p = ep),
                    None => q.tail.with_mut(|p| *p = ep),
                }
                q.head.with_mut(|p| *p = ep);
            }
        }
        e.flags.fetch_or(QUEUED, Ordering::Release);
        // AcqRel RMW: pairs with `has_sleeper`'s (see there).
        q.sleepers.fetch_add(1, Ordering::AcqRel);
    }

    fn unlink(&self, e: &WaitEntry) {
        let q = self.0;
        // SAFETY: the lock is held and `e` is linked on this queue, so it
        // and its neighbours are alive and their links are ours.
        unsafe {
            let next = e.next.with(|p| *p);
            let prev = e.prev.with(|p| *p);
            match prev.as_ref() {
                Some(p) => p.next.with_mut(|x| *x = next),
                None => q.head.with_mut(|x| *x = next),
            }
            match next.as_ref() {
                Some(n) => n.prev.with_mut(|x| *x = prev),
                None => q.tail.with_mut(|x| *x = prev),
            }
            e.next.with_mut(|p| *p = ptr::null_mut());
            e.prev.with_mut(|p| *p = ptr::null_mut());
        }
        q.sleepers.fetch_sub(1, Ordering::AcqRel);
        // Release, last: once a waiter sees the entry unlinked (without the
        // lock, in `finish_wait`) it may free it and its task.
        e.flags.fetch_and(!QUEUED, Ordering::Release);
    }

    /// The walk of `__wake_up_common`: returns how many tasks it woke.
    fn wake(&self, mask: u32, mut nr_exclusive: usize) -> usize {
        let mut woken = 0;
        // SAFETY: the lock is held; linked entries and their tasks are alive.
        let mut cur = self.0.head.with(|p| unsafe { *p });
        // SAFETY: as above, for every entry reached through the links.
        while let Some(e) = unsafe { cur.as_ref() } {
            // SAFETY: as above.
            let next = e.next.with(|p| unsafe { *p });
            // SAFETY: the task is alive while its entry is linked.
            let t = e.task.with(|p| unsafe { *p });
            // SAFETY: `t` is `Task::as_ptr` of the waiter's live task.
            let woke = unsafe { task::wake_ptr(t, mask) };
            let flags = e.flags.load(Ordering::Relaxed);
            if woke {
                woken += 1;
                if flags & WQ_FLAG_KEEP == 0 {
                    self.unlink(e);
                }
                if flags & WQ_FLAG_EXCLUSIVE != 0 {
                    nr_exclusive = nr_exclusive.saturating_sub(1);
                    if nr_exclusive == 0 {
                        break;
                    }
                }
            }
            cur = next;
        }
        woken
    }
}

/// How many exclusive waiters a wake ends: `wake_up_all`'s "all".
const ALL: usize = usize::MAX;

impl WaitQueue {
    crate::sync::loom_const_fn! {
        /// An empty wait queue (`DECLARE_WAIT_QUEUE_HEAD`, `init_waitqueue_head`).
        ///
        /// ```
        /// static WQ: kthread::WaitQueue = kthread::WaitQueue::new();
        /// assert!(!WQ.has_sleeper());
        /// ```
        pub fn new() -> WaitQueue {
            WaitQueue {
                lock: RawLock::new(),
                sleepers: AtomicU32::new(0),
                head: UnsafeCell::new(ptr::null_mut()),
                tail: UnsafeCell::new(ptr::null_mut()),
            }
        }
    }

    fn locked(&self) -> Locked<'_> {
        self.lock.lock();
        Locked(self)
    }

    /// Whether a task waits on the queue (`wq_has_sleeper()`, and
    /// `waitqueue_active()`, here with the barrier always).
    ///
    /// The waker's idiom `cond = true; if wq.has_sleeper() { wq.wake_up() }`
    /// loses no wake-up: this is an RMW on the word `prepare_to_wait`
    /// increments, so either it sees the waiter or the waiter's increment
    /// comes after it and the waiter's check sees `cond`.
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// assert!(!wq.has_sleeper());
    /// let w = wq.prepare_to_wait(kthread::TaskState::Interruptible);
    /// assert!(wq.has_sleeper());
    /// drop(w); // finish_wait
    /// assert!(!wq.has_sleeper());
    /// ```
    pub fn has_sleeper(&self) -> bool {
        self.sleepers.fetch_add(0, Ordering::AcqRel) != 0
    }

    /// Wakes every non-exclusive waiter and one exclusive one
    /// (`wake_up()`); returns how many tasks it woke.
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up(), 0);
    /// ```
    pub fn wake_up(&self) -> usize {
        self.wake(task::WAKE_NORMAL, 1)
    }

    /// Wakes every waiter, exclusive or not (`wake_up_all()`).
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up_all(), 0);
    /// ```
    pub fn wake_up_all(&self) -> usize {
        self.wake(task::WAKE_NORMAL, ALL)
    }

    /// As [`wake_up`](Self::wake_up), for interruptible sleepers only
    /// (`wake_up_interruptible()`): an uninterruptible waiter sleeps on.
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up_interruptible(), 0);
    /// ```
    pub fn wake_up_interruptible(&self) -> usize {
        self.wake(task::WAKE_INTERRUPTIBLE, 1)
    }

    /// As [`wake_up_all`](Self::wake_up_all), for interruptible sleepers
    /// only (`wake_up_interruptible_all()`).
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up_interruptible_all(), 0);
    /// ```
    pub fn wake_up_interruptible_all(&self) -> usize {
        self.wake(task::WAKE_INTERRUPTIBLE, ALL)
    }

    /// Wakes every non-exclusive waiter and `nr` exclusive ones, all of
    /// them if `nr` is 0 (`wake_up_nr()`).
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up_nr(2), 0);
    /// ```
    pub fn wake_up_nr(&self, nr: usize) -> usize {
        self.wake(task::WAKE_NORMAL, if nr == 0 { ALL } else { nr })
    }

    /// As [`wake_up_nr`](Self::wake_up_nr), for interruptible sleepers
    /// only (`wake_up_interruptible_nr()`).
    ///
    /// ```
    /// assert_eq!(kthread::WaitQueue::new().wake_up_interruptible_nr(2), 0);
    /// ```
    pub fn wake_up_interruptible_nr(&self, nr: usize) -> usize {
        self.wake(task::WAKE_INTERRUPTIBLE, if nr == 0 { ALL } else { nr })
    }

    fn wake(&self, mask: u32, nr: usize) -> usize {
        let woken = self.locked().wake(mask, nr);
        crate::trace::global!(TRACE, "wake_up", woken = woken);
        woken
    }

    /// Links `e` if it is not linked and sets the caller's state, both
    /// under the lock (`prepare_to_wait()`, `prepare_to_wait_exclusive()`
    /// with `WQ_FLAG_EXCLUSIVE` set in `e`).
    ///
    /// # Safety
    /// `e` stays valid and unmoved until it is unlinked: the caller calls
    /// [`finish_wait_entry`](Self::finish_wait_entry) before `e` goes
    /// away, and `e` is not linked on another queue.
    /// `exclusive` sets or clears `WQ_FLAG_EXCLUSIVE` first (`Some`), or
    /// keeps the entry's own (`None`).
    pub unsafe fn prepare_to_wait_entry(
        &self,
        e: &WaitEntry,
        state: SleepState,
        exclusive: Option<bool>,
    ) {
        let raw = checked_raw(state);
        let l = self.locked();
        if let Some(x) = exclusive {
            e.set_exclusive(x);
        }
        if !e.is_queued() {
            l.link(e);
        }
        task::set_current_raw(raw);
    }

    /// `prepare_to_wait` with the state's bits (`e` kept valid by the caller).
    fn prepare_raw(&self, e: &WaitEntry, raw: u32) {
        let l = self.locked();
        if !e.is_queued() {
            l.link(e);
        }
        task::set_current_raw(raw);
    }

    /// Sets the caller `Running` and unlinks `e` if a waker has not
    /// (`finish_wait()`).
    ///
    /// # Safety
    /// `e` is unlinked, or linked on this queue.
    pub unsafe fn finish_wait_entry(&self, e: &WaitEntry) {
        task::set_current_raw(task::RUNNING);
        // Acquire: a waker that unlinked the entry is done with it.
        if e.is_queued() {
            let l = self.locked();
            if e.is_queued() {
                l.unlink(e);
            }
        }
    }

    /// Links `e`, marked `WQ_FLAG_KEEP` (it stays linked across wakes),
    /// without touching the caller's state (`add_wait_queue()`, and
    /// `add_wait_queue_exclusive()` with `exclusive`).
    ///
    /// # Safety
    /// As [`prepare_to_wait_entry`](Self::prepare_to_wait_entry); the
    /// caller unlinks it with [`remove_wait_queue`](Self::remove_wait_queue).
    pub unsafe fn add_wait_queue(&self, e: &WaitEntry, exclusive: bool) {
        let l = self.locked();
        e.set_exclusive(exclusive);
        e.flags.fetch_or(WQ_FLAG_KEEP, Ordering::Relaxed);
        if !e.is_queued() {
            l.link(e);
        }
    }

    /// Unlinks `e` if it is linked (`remove_wait_queue()`).
    ///
    /// # Safety
    /// `e` is unlinked, or linked on this queue.
    pub unsafe fn remove_wait_queue(&self, e: &WaitEntry) {
        let l = self.locked();
        if e.is_queued() {
            l.unlink(e);
        }
    }

    /// The open-coded wait, as `DEFINE_WAIT(w); prepare_to_wait(wq, &w, state)`:
    /// on return the caller is on the queue and in `state`; it checks its
    /// condition and calls [`schedule`](crate::schedule). Call
    /// [`Wait::prepare`] before each further check; dropping the guard is
    /// `finish_wait()`.
    ///
    /// # Panics
    /// For a state the thread may not set (see [`set_current_state`](crate::set_current_state)).
    ///
    /// ```
    /// use kthread::{schedule, TaskState, WaitQueue};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// static WQ: WaitQueue = WaitQueue::new();
    /// static READY: AtomicBool = AtomicBool::new(false);
    /// let k = kthread::run("waiter", || {
    ///     let mut w = WQ.prepare_to_wait(TaskState::Interruptible);
    ///     while !READY.load(Ordering::Acquire) && !kthread::should_stop() {
    ///         schedule();
    ///         w.prepare(TaskState::Interruptible);
    ///     }
    ///     drop(w); // finish_wait
    ///     READY.load(Ordering::Acquire)
    /// })?;
    /// READY.store(true, Ordering::Release);
    /// WQ.wake_up();
    /// assert!(k.stop()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_to_wait(&self, state: impl Into<SleepState>) -> Wait<'_> {
        self.open_coded(state.into(), 0)
    }

    /// As [`prepare_to_wait`](Self::prepare_to_wait), as an exclusive
    /// waiter (`prepare_to_wait_exclusive()`): linked at the tail, and a
    /// [`wake_up`](Self::wake_up) wakes only one such waiter.
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// let w = wq.prepare_to_wait_exclusive(kthread::TaskState::Uninterruptible);
    /// assert_eq!(wq.wake_up(), 1); // ourselves: the state was set
    /// drop(w);
    /// ```
    pub fn prepare_to_wait_exclusive(&self, state: impl Into<SleepState>) -> Wait<'_> {
        self.open_coded(state.into(), WQ_FLAG_EXCLUSIVE)
    }

    fn open_coded(&self, state: SleepState, flags: u32) -> Wait<'_> {
        let raw = checked_raw(state);
        let task = Task::current();
        let entry = Box::new(WaitEntry::new(&task, flags));
        let w = Wait {
            wq: self,
            entry,
            _task: task,
        };
        w.prepare_raw(raw);
        w
    }

    /// The loop of `___wait_event()`: `Ok(true)` once `cond` holds,
    /// `Ok(false)` when `deadline` passed with it false.
    fn wait_loop(
        &self,
        state: SleepState,
        exclusive: bool,
        deadline: Option<Deadline>,
        mut cond: impl FnMut() -> bool,
    ) -> Result<bool, Interrupted> {
        let raw = checked_raw(state);
        let t = Task::current();
        let entry = WaitEntry::new(&t, if exclusive { WQ_FLAG_EXCLUSIVE } else { 0 });
        let w = Finish {
            wq: self,
            entry: &entry,
        };
        loop {
            w.wq.prepare_raw(w.entry, raw);
            if cond() {
                return Ok(true);
            }
            if t.inner().signal_ends(raw) {
                // `prepare_to_wait_event()`'s `-ERESTARTSYS`: seen, so no
                // further interruption is sent for it.
                t.inner().hooks().ack(task::hooks::SIGNAL);
                return Err(Interrupted);
            }
            if deadline.is_some_and(|d| d.passed()) {
                return Ok(false);
            }
            task::schedule_until(deadline);
        }
    }

    /// Sleeps uninterruptibly until `cond` holds (`wait_event()`).
    ///
    /// `cond` is checked first, then after every wake; a wake between a
    /// check and the sleep is never lost.
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// wq.wait_event(|| true); // holds at once: no sleep
    /// ```
    pub fn wait_event(&self, mut cond: impl FnMut() -> bool) {
        if cond() {
            return;
        }
        let _ = self.wait_loop(TaskState::Uninterruptible.into(), false, None, cond);
    }

    /// Sleeps interruptibly until `cond` holds (`wait_event_interruptible()`).
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_interruptible(|| true), Ok(()));
    /// ```
    pub fn wait_event_interruptible(
        &self,
        mut cond: impl FnMut() -> bool,
    ) -> Result<(), Interrupted> {
        if cond() {
            return Ok(());
        }
        self.wait_loop(TaskState::Interruptible.into(), false, None, cond)
            .map(drop)
    }

    /// As [`wait_event_interruptible`](Self::wait_event_interruptible), as
    /// an exclusive waiter (`wait_event_interruptible_exclusive()`).
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_interruptible_exclusive(|| true), Ok(()));
    /// ```
    pub fn wait_event_interruptible_exclusive(
        &self,
        mut cond: impl FnMut() -> bool,
    ) -> Result<(), Interrupted> {
        if cond() {
            return Ok(());
        }
        self.wait_loop(TaskState::Interruptible.into(), true, None, cond)
            .map(drop)
    }

    /// Sleeps uninterruptibly until `cond` holds or `timeout` passes
    /// (`wait_event_timeout()`): `Some(time left)` once `cond` held (it is
    /// checked once more at expiry, so a condition that became true just
    /// then still counts), `None` if the time passed with it false.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_timeout(|| false, Duration::from_millis(2)), None);
    /// assert!(wq.wait_event_timeout(|| true, Duration::from_secs(1)).is_some());
    /// ```
    pub fn wait_event_timeout(
        &self,
        cond: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Option<Duration> {
        self.timed(TaskState::Uninterruptible.into(), cond, timeout)
            .unwrap_or(None)
    }

    /// As [`wait_event_timeout`](Self::wait_event_timeout), interruptibly
    /// (`wait_event_interruptible_timeout()`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_interruptible_timeout(|| false, Duration::ZERO), Ok(None));
    /// ```
    pub fn wait_event_interruptible_timeout(
        &self,
        cond: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<Option<Duration>, Interrupted> {
        self.timed(TaskState::Interruptible.into(), cond, timeout)
    }

    /// As [`wait_event_interruptible`](Self::wait_event_interruptible), in
    /// a freezable sleep (`wait_event_freezable()`): a freezable kthread
    /// freezes here while the system is frozen, then re-checks `cond`.
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_freezable(|| true), Ok(()));
    /// ```
    pub fn wait_event_freezable(&self, mut cond: impl FnMut() -> bool) -> Result<(), Interrupted> {
        if cond() {
            return Ok(());
        }
        self.wait_loop(TaskState::Interruptible.freezable(), false, None, cond)
            .map(drop)
    }

    /// As [`wait_event_interruptible_timeout`](Self::wait_event_interruptible_timeout),
    /// in a freezable sleep (`wait_event_freezable_timeout()`). Time spent
    /// frozen counts against the timeout, as in the kernel.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wq = kthread::WaitQueue::new();
    /// assert_eq!(wq.wait_event_freezable_timeout(|| true, Duration::ZERO), Ok(Some(Duration::ZERO)));
    /// ```
    pub fn wait_event_freezable_timeout(
        &self,
        cond: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<Option<Duration>, Interrupted> {
        self.timed(TaskState::Interruptible.freezable(), cond, timeout)
    }

    fn timed(
        &self,
        state: SleepState,
        mut cond: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<Option<Duration>, Interrupted> {
        let deadline = Deadline::after(timeout);
        if cond() {
            return Ok(Some(deadline.remaining()));
        }
        Ok(self
            .wait_loop(state, false, Some(deadline), cond)?
            .then(|| deadline.remaining()))
    }
}

/// The state's bits, or the same panic as `set_current_state`.
fn checked_raw(state: SleepState) -> u32 {
    match state.raw() {
        Some(raw) => raw,
        None => panic!(
            "a wait in {:?}: only Running, Interruptible, Uninterruptible, Idle and Killable \
             may be set",
            state.state()
        ),
    }
}

/// `finish_wait` for an entry in a waiter's frame, run even if the
/// condition panics, so the queue never keeps a dangling entry.
struct Finish<'a> {
    wq: &'a WaitQueue,
    entry: &'a WaitEntry,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        // SAFETY: the entry is linked only on `wq` (this guard's queue).
        unsafe { self.wq.finish_wait_entry(self.entry) };
    }
}

/// The open-coded form's waiter: on its queue until dropped
/// (`DEFINE_WAIT` + `prepare_to_wait`; the drop is `finish_wait`).
///
/// ```
/// use kthread::{TaskState, WaitQueue};
/// let wq = WaitQueue::new();
/// let mut w = wq.prepare_to_wait(TaskState::Interruptible);
/// assert!(w.is_queued());
/// assert_eq!(wq.wake_up(), 1); // woken (and taken off: autoremove)
/// assert!(!w.is_queued());
/// w.prepare(TaskState::Interruptible); // back on, before the next check
/// assert!(w.is_queued());
/// ```
#[must_use = "dropping the guard takes the waiter off the queue (finish_wait)"]
pub struct Wait<'a> {
    wq: &'a WaitQueue,
    entry: Box<WaitEntry>,
    /// The waiter's task, kept alive while the entry may name it.
    _task: Task,
}

impl Wait<'_> {
    /// Back on the queue if a wake took it off, and in `state` again: call
    /// before each re-check of the condition (`prepare_to_wait()` again).
    ///
    /// # Panics
    /// For a state the thread may not set.
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// let mut w = wq.prepare_to_wait(kthread::TaskState::Idle);
    /// w.prepare(kthread::TaskState::Idle);
    /// assert_eq!(kthread::Task::current().state(), kthread::TaskState::Idle);
    /// ```
    pub fn prepare(&mut self, state: impl Into<SleepState>) {
        self.prepare_raw(checked_raw(state.into()));
    }

    fn prepare_raw(&self, raw: u32) {
        self.wq.prepare_raw(&self.entry, raw);
    }

    /// Whether the waiter is on the queue: a wake that ended its sleep
    /// took it off. Exact (it takes the queue's lock, so it never sees a
    /// waker half-way between its wake and the removal).
    ///
    /// ```
    /// let wq = kthread::WaitQueue::new();
    /// let w = wq.prepare_to_wait(kthread::TaskState::Interruptible);
    /// assert!(w.is_queued());
    /// ```
    pub fn is_queued(&self) -> bool {
        let _l = self.wq.locked();
        self.entry.is_queued()
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        // SAFETY: the entry is linked only on `wq`.
        unsafe { self.wq.finish_wait_entry(&self.entry) };
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("queued", &self.is_queued())
            .finish()
    }
}
