//! `Worker` and `WorkerBuilder`: a kthread running the raw worker loop, its
//! creation and its shutdown (the one implementation the C ABI uses too).

use super::raw::{self, RawWorker};
use super::work::{DelayedWork, Item, Work};
use crate::error::Error;
use crate::kthread::{Builder, Kthread};
use crate::sync::DynArc;
use crate::task::{freeze, Task};
use std::fmt;
use std::time::Duration;

/// A kthread running the worker loop; mirrors `kthread_create_worker()`.
///
/// `Drop` (or [`destroy`](Worker::destroy)) cancels armed delayed work,
/// runs everything already queued, then stops the thread. Dropped by one
/// of its own items, it does the same without waiting: the thread runs
/// what is queued and ends by itself once idle.
///
/// ```
/// let w = kthread::Worker::new("events")?;
/// let job = kthread::Work::new(|| println!("ran on {}", kthread::current().unwrap().name()));
/// assert!(w.queue(&job));
/// job.flush();
/// # Ok::<(), kthread::Error>(())
/// ```
pub struct Worker {
    core: DynArc<RawWorker>,
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

    /// The worker thread's scheduling policy, set before it runs (see
    /// [`Builder::policy`](crate::Builder::policy)).
    ///
    /// ```
    /// let w = kthread::Worker::builder("rt-io").policy(kthread::Policy::Batch).create()?;
    /// assert_eq!(w.task().policy(), kthread::Policy::Batch);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn policy(mut self, policy: crate::task::Policy) -> Self {
        self.builder = self.builder.policy(policy);
        self
    }

    /// The worker thread's nice value (see [`Builder::nice`](crate::Builder::nice)).
    ///
    /// ```
    /// let w = kthread::Worker::builder("bg-io").nice(10).create()?;
    /// assert_eq!(w.task().nice(), 10);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn nice(mut self, nice: i32) -> Self {
        self.builder = self.builder.nice(nice);
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
    /// Returns once the worker's loop is attached and idle; a freezable
    /// worker created while the system is frozen returns at once, its
    /// thread in the refrigerator until the thaw.
    ///
    /// ```
    /// let w = kthread::Worker::builder("w").create()?;
    /// assert_eq!(w.task().name(), "w");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn create(self) -> Result<Worker, Error> {
        let core = DynArc::new(RawWorker::new(self.flags));
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
        // Not for a freezable worker while the system is frozen: its thread
        // goes straight into the refrigerator, and the caller may be the
        // one holding the freeze. (A freeze that starts after this check
        // only makes the caller wait for the thaw; it cannot be its own.)
        if !(self.flags & raw::KTW_FREEZABLE != 0 && freeze::freezing()) {
            raw::flush_worker(&w.core)?;
        }
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
    /// # Signal handlers
    /// Async-signal-safe (the kernel queues from interrupts; this is the
    /// user-space analogue): it takes no lock, only atomics and a futex
    /// wake, unless `work` last ran on *another* worker, whose lock a move
    /// takes (keep an item on one worker if a handler queues it). Tracing
    /// (the `tracing` feature) is not async-signal-safe.
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
        // SAFETY: the queue's reference (taken by `Item::claim`) keeps the
        // item alive and unmoved until the worker or a canceller releases it;
        // `Keep` keeps any previous owner alive for a move.
        Item::claim(
            &work.0,
            &self.core,
            |hook| unsafe { raw::queue_hooked(&self.core, work.0.raw(), hook) },
            Result::is_ok,
        )
        .is_ok()
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
        // SAFETY: as in `queue`.
        Item::claim(
            &work.0,
            &self.core,
            |hook| unsafe { raw::queue_delayed_hooked(&self.core, work.0.raw(), delay, hook) },
            Result::is_ok,
        )
        .is_ok()
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
        // SAFETY: as in `queue`.
        Item::claim(
            &work.0,
            &self.core,
            |hook| unsafe { raw::mod_delayed_hooked(&self.core, work.0.raw(), delay, hook) },
            // `Ok(false)`: it was idle and is armed afresh, so the new claim
            // holds the queue's reference.
            |r| matches!(r, Ok(false)),
        )
        .unwrap_or(true)
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

    /// Waits for everything queued before the call without blocking the
    /// thread, as [`flush`](Worker::flush) does (feature `async`): a flush
    /// sentinel is queued at the call, and the future resolves once it ran.
    ///
    /// Cancel-safe: dropping the future leaves the queue as it is (the
    /// sentinel runs and frees itself); nothing is woken after the drop.
    /// The errors of `flush` come at the first poll.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// w.queue(&job);
    /// futures::executor::block_on(w.flush_async())?;
    /// assert!(!job.is_pending());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn flush_async(&self) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        match raw::flush_worker_async(&self.core) {
            Ok(wait) => super::work::Flushed::new(wait, Ok(())),
            Err(e) => super::work::Flushed::new(raw::FlushWait::ready(), Err(e)),
        }
    }

    /// The raw worker this worker runs, for raw-layer items and the C ABI
    /// (`struct kthread_worker *`); it lives as long as the `Worker`.
    ///
    /// ```
    /// use kthread::worker::raw::{self, RawWork};
    /// unsafe extern "C" fn hello(_w: *mut RawWork) {}
    /// static HELLO: RawWork = RawWork::new(Some(hello));
    /// let w = kthread::Worker::new("raw")?;
    /// // SAFETY: a static item outlives the worker and never moves.
    /// assert!(unsafe { raw::queue(w.as_raw(), &HELLO) });
    /// w.flush()?;
    /// assert_eq!(w.executed(), 1);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn as_raw(&self) -> &RawWorker {
        &self.core
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

    /// As [`destroy`](Self::destroy), giving up after `timeout`: armed
    /// delayed work is cancelled at once (as `destroy` does); then this
    /// waits at most `timeout` for everything queued before the call to
    /// run. If that does not finish in time, the worker comes back
    /// (`Err`), running and with its queue intact, to be destroyed again
    /// or dropped. If it does, the worker is destroyed: what was queued in
    /// the meantime runs too, then the idle thread stops (that last part is
    /// not bounded by `timeout`, as a concurrent queuer could extend it).
    /// One futex wait with a deadline: no polling.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("slow-io")?;
    /// let gate = Arc::new(kthread::Completion::new());
    /// let g = gate.clone();
    /// let job = kthread::Work::new(move || g.wait());
    /// w.queue(&job);
    /// let w = w.destroy_timeout(Duration::from_millis(10)).unwrap_err(); // the job is stuck
    /// gate.complete_all();
    /// assert!(w.destroy_timeout(Duration::from_secs(60)).is_ok());
    /// assert!(!job.is_pending());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn destroy_timeout(mut self, timeout: Duration) -> Result<(), Worker> {
        if self.thread.is_none() || self.core.is_current_thread() || self.core.is_inherited() {
            self.shutdown();
            return Ok(());
        }
        raw::cancel_timers(&self.core);
        // A marker queued behind everything queued now: once it has run,
        // so has all of that (one thread, FIFO).
        let done = DynArc::new(crate::completion::Completion::new());
        let marker = {
            let done = done.clone();
            Work::new(move || done.complete_all())
        };
        if self.queue(&marker) && !done.wait_timeout(timeout) {
            // The marker stays queued and runs (and is freed) later.
            return Err(self);
        }
        self.shutdown();
        Ok(())
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.core.is_inherited() {
            // A fork() child's copy: its thread is the parent's. Release
            // memory only (the handle's drop waits for nothing).
            drop(thread);
            return;
        }
        if self.core.is_current_thread() {
            // Dropped by one of its own items: we cannot wait for ourselves,
            // so the loop does destroy's work. Armed timers are cancelled
            // now; the loop runs everything queued (this item returns
            // first), then leaves at its next idle point and the detached
            // thread ends. Every item is left idle and reusable.
            raw::cancel_timers(&self.core);
            self.core.stop_when_idle();
            drop(thread.detach());
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
