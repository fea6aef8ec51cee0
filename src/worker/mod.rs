//! Workers: one kthread running queued work items in order (`kthread_worker`).
//!
//! A [`Work`] is *pending at most once*: [`Worker::queue`] returns `false`
//! while it is pending, so ten "please flush" requests before the worker
//! gets to it run the flush once. [`Work::flush`] waits for the instance
//! queued or running at the time of the call; [`Work::cancel_sync`] takes a
//! pending instance off the list and waits for a running one. Queueing
//! allocates nothing and wakes the worker only when it is idle.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use kthread::{Work, Worker};
//!
//! let worker = Worker::new("writeback")?;
//! let flushes = Arc::new(AtomicUsize::new(0));
//! let f = flushes.clone();
//! let flush = Work::new(move || {
//!     f.fetch_add(1, Ordering::Relaxed);
//! });
//! for _ in 0..10 {
//!     worker.queue(&flush); // coalesces while pending
//! }
//! worker.flush()?; // everything queued so far has run
//! let n = flushes.load(Ordering::Relaxed);
//! assert!(n >= 1 && n <= 10);
//! worker.destroy();
//! # Ok::<(), kthread::Error>(())
//! ```
//!
//! The safe types sit on [`raw`], the caller-owned layer the C ABI exposes.

pub(crate) mod lock;
pub mod raw;

use crate::error::Error;
use crate::kthread::{Builder, Kthread};
use crate::sync::lock;
use crate::task::Task;
use raw::{RawDelayedWork, RawWork, RawWorker};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A kthread running the worker loop; mirrors `kthread_create_worker()`.
///
/// `Drop` (or [`destroy`](Worker::destroy)) cancels armed delayed work,
/// runs everything already queued, then stops the thread.
///
/// ```
/// let w = kthread::Worker::new("events")?;
/// let job = kthread::Work::new(|| println!("ran on {}", kthread::current().unwrap().name()));
/// assert!(w.queue(&job));
/// job.flush();
/// # Ok::<(), kthread::Error>(())
/// ```
pub struct Worker {
    core: Arc<RawWorker>,
    thread: Option<Kthread<i32>>,
    task: Task,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("task", &self.task)
            .field("executed", &self.core.executed())
            .finish()
    }
}

/// Configures a [`Worker`] before creating it.
///
/// ```
/// let w = kthread::Worker::builder("io/0").cpu(0).freezable(true).stack_size(128 * 1024).create()?;
/// assert!(w.task().is_bound());
/// # Ok::<(), kthread::Error>(())
/// ```
#[must_use = "a WorkerBuilder does nothing until create()"]
#[derive(Debug)]
pub struct WorkerBuilder {
    builder: Builder,
    flags: u32,
}

impl WorkerBuilder {
    /// Bind the worker's thread to `cpu` (`kthread_create_worker_on_cpu()`).
    ///
    /// ```
    /// let w = kthread::Worker::builder("on0").cpu(0).create()?;
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn cpu(mut self, cpu: usize) -> Self {
        self.builder = self.builder.cpu(cpu);
        self
    }

    /// Prefer NUMA node `node` for the thread's memory.
    ///
    /// ```
    /// let w = kthread::Worker::builder("n0").node(0).create()?;
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn node(mut self, node: usize) -> Self {
        self.builder = self.builder.node(node);
        self
    }

    /// Freeze between items while the system is frozen (`KTW_FREEZABLE`).
    ///
    /// ```
    /// let w = kthread::Worker::builder("fz").freezable(true).create()?;
    /// assert!(w.task().is_freezable());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn freezable(mut self, yes: bool) -> Self {
        self.builder = self.builder.freezable(yes);
        if yes {
            self.flags |= raw::KTW_FREEZABLE;
        } else {
            self.flags &= !raw::KTW_FREEZABLE;
        }
        self
    }

    /// Stack size of the worker's thread.
    ///
    /// ```
    /// let w = kthread::Worker::builder("small").stack_size(64 * 1024).create()?;
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.builder = self.builder.stack_size(bytes);
        self
    }

    /// Creates the worker, running.
    ///
    /// ```
    /// let w = kthread::Worker::builder("w").create()?;
    /// assert_eq!(w.task().name(), "w");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn create(self) -> Result<Worker, Error> {
        let core = Arc::new(RawWorker::new(self.flags));
        let c = core.clone();
        let thread = self.builder.create(move || raw::worker_fn(&c))?;
        let task = thread.task().clone();
        thread.wake_up();
        let w = Worker {
            core,
            thread: Some(thread),
            task,
        };
        // Return only once the loop is attached and idle, so the caller sees
        // a running worker (and its state) as `kthread_create_worker` does.
        raw::flush_worker(&w.core)?;
        Ok(w)
    }
}

impl Worker {
    /// Creates a worker called `name`, running; mirrors `kthread_create_worker()`.
    ///
    /// ```
    /// let w = kthread::Worker::new("kworker")?;
    /// assert_eq!(w.task().name(), "kworker");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn new(name: &str) -> Result<Worker, Error> {
        Self::builder(name).create()
    }

    /// A builder for a worker called `name`.
    ///
    /// ```
    /// let w = kthread::Worker::builder("b").create()?;
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn builder(name: &str) -> WorkerBuilder {
        WorkerBuilder {
            builder: Builder::new(name),
            flags: 0,
        }
    }

    /// The worker thread's task.
    ///
    /// ```
    /// let w = kthread::Worker::new("t")?;
    /// assert!(w.task().tid() > 0);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// How many items this worker has run.
    ///
    /// ```
    /// let w = kthread::Worker::new("n")?;
    /// let job = kthread::Work::new(|| ());
    /// w.queue(&job);
    /// w.flush()?;
    /// assert_eq!(w.executed(), 1);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn executed(&self) -> u64 {
        self.core.executed()
    }

    /// How many items panicked (each caught and reported; the worker went on).
    ///
    /// ```
    /// let w = kthread::Worker::new("p")?;
    /// assert_eq!(w.panics(), 0);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn panics(&self) -> u64 {
        self.core.panics()
    }

    /// Queues `work`; mirrors `kthread_queue_work()`.
    ///
    /// Returns `false` if it is already pending (the request coalesces with
    /// the pending one), being cancelled, or pending or running on another
    /// worker. Allocates nothing; wakes the worker only if it is idle.
    ///
    /// ```
    /// let w = kthread::Worker::new("q")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let job = kthread::Work::new(move || tx.send(()).unwrap());
    /// assert!(w.queue(&job));
    /// rx.recv().unwrap();
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn queue(&self, work: &Work) -> bool {
        let inner = &*work.0;
        let extra = work.0.clone();
        // SAFETY: `extra` is the queue's reference: it keeps the item alive
        // and unmoved until the worker or a canceller releases it; `Keep`
        // keeps any previous owner alive.
        let ok = inner
            .keep
            .claim(&self.core, |hook| unsafe {
                raw::queue_hooked(&self.core, &inner.raw, hook)
            })
            .is_ok();
        if ok {
            std::mem::forget(extra);
        }
        ok
    }

    /// Queues `work` to run after `delay`; mirrors `kthread_queue_delayed_work()`.
    ///
    /// A zero delay queues it at once. Returns `false` if already pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("later")?;
    /// let job = kthread::DelayedWork::new(|| ());
    /// assert!(w.queue_delayed(&job, Duration::from_millis(10)));
    /// assert!(!w.queue_delayed(&job, Duration::from_millis(10)));
    /// job.flush(); // runs it now
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn queue_delayed(&self, work: &DelayedWork, delay: Duration) -> bool {
        let inner = &*work.0;
        let extra = work.0.clone();
        // SAFETY: as in `queue`.
        let ok = inner
            .keep
            .claim(&self.core, |hook| unsafe {
                raw::queue_delayed_hooked(&self.core, &inner.raw, delay, hook)
            })
            .is_ok();
        if ok {
            std::mem::forget(extra);
        }
        ok
    }

    /// Re-arms `work` to run after `delay` (arms it if idle); mirrors
    /// `kthread_mod_delayed_work()`.
    ///
    /// Returns `false` if it was idle and is now armed, `true` if it was
    /// pending and its deadline moved (or a concurrent cancel wins).
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("sync")?;
    /// let tick = kthread::DelayedWork::new(|| ());
    /// assert!(!w.mod_delayed(&tick, Duration::from_secs(60)));
    /// assert!(w.mod_delayed(&tick, Duration::from_millis(1)));
    /// tick.flush();
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn mod_delayed(&self, work: &DelayedWork, delay: Duration) -> bool {
        let inner = &*work.0;
        let extra = work.0.clone();
        // SAFETY: as in `queue`.
        let was_pending = inner
            .keep
            .claim(&self.core, |hook| unsafe {
                raw::mod_delayed_hooked(&self.core, &inner.raw, delay, hook)
            })
            .unwrap_or(true);
        if !was_pending {
            // Armed afresh: `extra` is the new claim's queue reference.
            std::mem::forget(extra);
        }
        was_pending
    }

    /// Waits until everything queued before the call has run; mirrors
    /// `kthread_flush_worker()`.
    ///
    /// From one of this worker's own items it would wait for itself:
    /// [`Error::WouldDeadlock`].
    ///
    /// ```
    /// let w = kthread::Worker::new("f")?;
    /// w.flush()?;
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        raw::flush_worker(&self.core)
    }

    /// Cancels armed delayed work, runs everything queued, stops the thread;
    /// mirrors `kthread_destroy_worker()` (which flushes, then stops).
    ///
    /// ```
    /// let w = kthread::Worker::new("gone")?;
    /// let job = kthread::Work::new(|| ());
    /// w.queue(&job);
    /// w.destroy();
    /// assert!(!job.is_pending());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn destroy(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.core.is_current_thread() {
            // Dropped by one of its own items: stop after this item, without
            // waiting for ourselves. What is still queued is abandoned.
            let task = thread.detach();
            crate::kthread::request_stop(&task);
            return;
        }
        raw::cancel_timers(&self.core);
        let _ = raw::flush_worker(&self.core);
        let _ = thread.stop();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Keeps a work item's current owner alive, for `flush` and `cancel_sync`.
///
/// Invariant: `arc` holds the worker named in the item's state word. The
/// owner changes only inside a claim, and the raw layer calls back right
/// after such a claim, before the item is pushed (so before it can move
/// again); `arc` is re-pointed there. A queue to the same owner (the common
/// case) takes no lock.
struct Keep {
    arc: Mutex<Option<Arc<RawWorker>>>,
}

impl Keep {
    fn new() -> Keep {
        Keep {
            arc: Mutex::new(None),
        }
    }

    /// Runs a raw claim by `core`. First without allowing a move (the
    /// common case: first queue, or the same owner again; no lock); if the
    /// item sits idle on another worker, again with `arc` locked, so the old
    /// owner the claim locks stays alive through the move, and with `arc`
    /// re-pointed to `core` from inside the claim. The old owner's `Arc` is
    /// dropped only after the raw call has released that owner's lock.
    fn claim<R>(
        &self,
        core: &Arc<RawWorker>,
        op: impl Fn(&mut raw::Hook<'_>) -> Result<R, raw::Claim>,
    ) -> Result<R, raw::Claim> {
        let first = op(&mut raw::Hook {
            moved: &mut || *lock(&self.arc) = Some(core.clone()),
            may_move: false,
        });
        if !matches!(first, Err(raw::Claim::WouldMove)) {
            return first;
        }
        let mut arc = lock(&self.arc);
        let mut old = None;
        let r = op(&mut raw::Hook {
            moved: &mut || old = arc.replace(core.clone()),
            may_move: true,
        });
        drop(arc);
        drop(old);
        r
    }

    /// Runs `op` with the item's owner locked and alive; `None` if never queued.
    fn with_owner<R>(&self, raw: &RawWork, op: impl Fn(&RawWorker) -> R) -> Option<R> {
        loop {
            let owner = lock(&self.arc).clone()?;
            if raw::lock_if_owner(&owner, raw) {
                return Some(op(&owner));
            }
            // A claimer moved the item and is re-pointing `arc` right now.
            std::thread::yield_now();
        }
    }
}

#[repr(C)]
struct WorkInner<F: ?Sized> {
    raw: RawWork,
    keep: Keep,
    f: F,
}

/// Calls a Rust work's closure, catching and reporting a panic.
fn run_caught(raw: &RawWork, f: &dyn Fn()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        let owner = raw.owner();
        // SAFETY: the owner runs this item right now, so it exists.
        if let Some(o) = unsafe { owner.as_ref() } {
            o.note_panic();
        }
        let msg = p
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| p.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("<non-string payload>");
        crate::trace::work_panic(
            &crate::task::current_or_adopt(),
            raw as *const RawWork as usize,
            msg,
        );
    }
}

unsafe extern "C" fn work_trampoline<F: Fn() + Send + Sync>(w: *mut RawWork) {
    // SAFETY: only `WorkInner<F>`s are created with this function, `raw` is
    // their first field (repr(C)), and the queue's reference keeps it alive.
    let inner = unsafe { &*(w as *const WorkInner<F>) };
    run_caught(&inner.raw, &inner.f);
}

unsafe extern "C" fn work_release<F: Fn() + Send + Sync>(w: *mut RawWork) {
    // SAFETY: the queue's reference was leaked from an `Arc<WorkInner<F>>`
    // (unsized to `dyn Fn`, same allocation and layout) when it was queued.
    unsafe { Arc::decrement_strong_count(w as *const WorkInner<F>) }
}

/// A work item: a function run on a worker; mirrors `struct kthread_work`.
///
/// Cheap to clone (one reference count); all clones are the same item.
/// Dropping every handle while it is queued is safe: the worker keeps it
/// alive until it has run or been cancelled.
///
/// ```
/// let w = kthread::Worker::new("w")?;
/// let job = kthread::Work::new(|| ());
/// let same = job.clone();
/// assert!(w.queue(&job));
/// assert!(!w.queue(&same) || !same.is_pending()); // pending at most once
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone)]
pub struct Work(Arc<WorkInner<dyn Fn() + Send + Sync>>);

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Work")
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

impl Work {
    /// A work item running `f`; mirrors `kthread_init_work()`.
    ///
    /// ```
    /// let job = kthread::Work::new(|| println!("hello"));
    /// assert!(!job.is_pending());
    /// ```
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> Work {
        let inner: Arc<WorkInner<F>> = Arc::new(WorkInner {
            raw: RawWork::with_release(Some(work_trampoline::<F>), Some(work_release::<F>)),
            keep: Keep::new(),
            f,
        });
        Work(inner)
    }

    /// Whether it is queued and has not started yet.
    ///
    /// ```
    /// assert!(!kthread::Work::new(|| ()).is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.0.raw.is_pending()
    }

    /// Waits for the instance queued or running now; mirrors `kthread_flush_work()`.
    ///
    /// Returns `false` at once if idle, `true` after waiting. Later
    /// re-queues are not waited for.
    ///
    /// # Panics
    /// From its own worker's thread while it is pending or running (it
    /// would wait for itself); [`try_flush`](Work::try_flush) returns the error instead.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// assert!(!job.flush());
    /// w.queue(&job);
    /// job.flush();
    /// assert!(!job.is_pending());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn flush(&self) -> bool {
        match self.try_flush() {
            Ok(waited) => waited,
            Err(e) => panic!("Work::flush: {e}: called from its own worker"),
        }
    }

    /// As [`flush`](Work::flush), returning [`Error::WouldDeadlock`] instead of panicking.
    ///
    /// ```
    /// let job = kthread::Work::new(|| ());
    /// assert_eq!(job.try_flush()?, false);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn try_flush(&self) -> Result<bool, Error> {
        let inner = &*self.0;
        inner
            .keep
            .with_owner(&inner.raw, |o| raw::flush_locked(o, &inner.raw))
            .unwrap_or(Ok(false))
    }

    /// Cancels a pending instance and waits for a running one; mirrors
    /// `kthread_cancel_work_sync()`. Returns whether it was pending.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// assert!(!job.cancel_sync());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn cancel_sync(&self) -> bool {
        let inner = &*self.0;
        inner
            .keep
            .with_owner(&inner.raw, |o| raw::cancel_locked(o, &inner.raw))
            .unwrap_or(false)
    }
}

#[repr(C)]
struct DelayedInner<F: ?Sized> {
    raw: RawDelayedWork,
    keep: Keep,
    f: F,
}

unsafe extern "C" fn delayed_trampoline<F: Fn() + Send + Sync>(w: *mut RawWork) {
    // SAFETY: only `DelayedInner<F>`s are created with this function;
    // `raw.work` is at offset 0 (repr(C) twice); the queue's reference keeps it alive.
    let inner = unsafe { &*(w as *const DelayedInner<F>) };
    run_caught(&inner.raw.work, &inner.f);
}

unsafe extern "C" fn delayed_release<F: Fn() + Send + Sync>(w: *mut RawWork) {
    // SAFETY: as in `work_release`, for `DelayedInner<F>`.
    unsafe { Arc::decrement_strong_count(w as *const DelayedInner<F>) }
}

/// A work item that runs after a delay; mirrors `struct kthread_delayed_work`.
///
/// Timers are kept by the worker itself (no timer thread).
///
/// ```
/// use std::time::Duration;
/// let w = kthread::Worker::new("w")?;
/// let sync = kthread::DelayedWork::new(|| println!("sync"));
/// w.queue_delayed(&sync, Duration::from_secs(1));
/// assert!(sync.cancel_sync()); // armed: cancelled before it ran
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone)]
pub struct DelayedWork(Arc<DelayedInner<dyn Fn() + Send + Sync>>);

impl fmt::Debug for DelayedWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedWork")
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

impl DelayedWork {
    /// A delayed work item running `f`; mirrors `kthread_init_delayed_work()`.
    ///
    /// ```
    /// let tick = kthread::DelayedWork::new(|| ());
    /// assert!(!tick.is_pending());
    /// ```
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> DelayedWork {
        let inner: Arc<DelayedInner<F>> = Arc::new(DelayedInner {
            raw: RawDelayedWork::with_release(
                Some(delayed_trampoline::<F>),
                Some(delayed_release::<F>),
            ),
            keep: Keep::new(),
            f,
        });
        DelayedWork(inner)
    }

    /// Whether it is armed or queued and has not started yet.
    ///
    /// ```
    /// assert!(!kthread::DelayedWork::new(|| ()).is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.0.raw.work.is_pending()
    }

    /// Runs an armed instance now and waits for it (or for a queued or
    /// running one); mirrors `kthread_flush_work()` on a delayed work, with
    /// `flush_delayed_work()`'s "fire the timer now". Returns whether it waited.
    ///
    /// # Panics
    /// From its own worker's thread while pending or running (see [`Work::flush`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("w")?;
    /// let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    /// let r = ran.clone();
    /// let d = kthread::DelayedWork::new(move || r.store(true, std::sync::atomic::Ordering::SeqCst));
    /// w.queue_delayed(&d, Duration::from_secs(3600));
    /// assert!(d.flush());
    /// assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn flush(&self) -> bool {
        let inner = &*self.0;
        match inner
            .keep
            .with_owner(&inner.raw.work, |o| raw::flush_locked(o, &inner.raw.work))
        {
            None => false,
            Some(Ok(w)) => w,
            Some(Err(e)) => panic!("DelayedWork::flush: {e}: called from its own worker"),
        }
    }

    /// Disarms or dequeues it and waits for a running instance; mirrors
    /// `kthread_cancel_delayed_work_sync()`. Returns whether it was pending.
    ///
    /// ```
    /// assert!(!kthread::DelayedWork::new(|| ()).cancel_sync());
    /// ```
    pub fn cancel_sync(&self) -> bool {
        let inner = &*self.0;
        inner
            .keep
            .with_owner(&inner.raw.work, |o| raw::cancel_locked(o, &inner.raw.work))
            .unwrap_or(false)
    }
}
