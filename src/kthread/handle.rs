//! `Kthread<T>`: the handle that wakes, binds, stops, parks and detaches a kthread.

use super::is_current;
use super::lifecycle::{request_stop, request_stop_by, Packet};
use crate::error::{drop_catching, fatal, Error, StopError};
use crate::sync::Arc;
use crate::sys::sched::{self, CpuSet};
use crate::sys::thread::RawThread;
use crate::sys::topology;
use crate::task::hooks::{self, Resend};
use crate::task::{flags, Task};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// A handle to a kthread that returns `T`; dropping it stops and joins the thread.
///
/// ```
/// use std::time::Duration;
/// let k = kthread::run("ticker", || {
///     let mut ticks = 0u64;
///     while !kthread::should_stop() {
///         kthread::set_current_state(kthread::TaskState::Interruptible);
///         if kthread::should_stop() {
///             break;
///         }
///         kthread::schedule_timeout(Duration::from_millis(1));
///         ticks += 1;
///     }
///     ticks
/// })?;
/// let _ticks = k.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Kthread<T> {
    task: Task,
    packet: Arc<Packet<T>>,
    thread: Option<RawThread>,
    /// The handle is `Send` when `T` is, and `Sync` (it only hands out `&Task`).
    _not_sync_result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Kthread<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Kthread").field(&self.task).finish()
    }
}

impl<T> Kthread<T> {
    pub(super) fn new(task: Task, packet: Arc<Packet<T>>, thread: RawThread) -> Kthread<T> {
        Kthread {
            task,
            packet,
            thread: Some(thread),
            _not_sync_result: PhantomData,
        }
    }

    /// The kthread's task.
    ///
    /// ```
    /// let k = kthread::create("t", || ())?;
    /// assert_eq!(k.task().name(), "t");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Wakes the kthread; the first wake starts its function. Mirrors `wake_up_process()`.
    ///
    /// ```
    /// let k = kthread::create("w", || ())?;
    /// assert!(k.wake_up());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn wake_up(&self) -> bool {
        self.task.wake_up()
    }

    /// Binds the not-yet-woken kthread to `cpu`; mirrors `kthread_bind()`.
    ///
    /// Fails with [`Error::AlreadyStarted`] once the kthread was woken, and
    /// with [`Error::CpuNotAllowed`] / [`Error::InvalidCpu`] for a CPU the
    /// process cannot use.
    ///
    /// ```
    /// let k = kthread::create("bound", || kthread::current().unwrap().is_bound())?;
    /// k.bind(0)?;
    /// k.wake_up();
    /// assert!(k.stop()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(&self, cpu: usize) -> Result<(), Error> {
        self.bind_mask(&[cpu])
    }

    /// Binds the not-yet-woken kthread to a set of CPUs; mirrors `kthread_bind_mask()`.
    ///
    /// ```
    /// let k = kthread::create("mask", || ())?;
    /// k.bind_mask(&[0])?;
    /// assert!(k.bind_mask(&[]).is_err());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn bind_mask(&self, cpus: &[usize]) -> Result<(), Error> {
        self.task.bind_mask(cpus)
    }

    /// Whether the function has returned (its result waits for [`stop`](Self::stop)).
    ///
    /// ```
    /// let k = kthread::create("f", || ())?;
    /// assert!(!k.is_finished());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.has_exited()
    }

    /// Asks the kthread to stop, wakes it, waits for it and returns its
    /// result; mirrors `kthread_stop()`.
    ///
    /// Wakes it out of `schedule()` (`Interruptible` or `Uninterruptible`),
    /// `parkme()` and `freezable_should_stop()`. A kthread that was never
    /// woken never runs its function: [`StopError::NotStarted`]. Once woken,
    /// the function always runs, finding `should_stop()` true if the stop came
    /// at once. Called from the kthread itself: [`StopError::Current`].
    ///
    /// ```
    /// let k = kthread::run("loop", || {
    ///     let mut n = 0;
    ///     while !kthread::should_stop() {
    ///         kthread::set_current_state(kthread::TaskState::Interruptible);
    ///         if !kthread::should_stop() {
    ///             kthread::schedule();
    ///         }
    ///         kthread::set_current_state(kthread::TaskState::Running);
    ///         n += 1;
    ///     }
    ///     n
    /// })?;
    /// let rounds = k.stop()?; // 0 if the stop came before the first round
    /// # let _ = rounds;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(mut self) -> Result<T, StopError> {
        self.stop_inner()
    }

    /// As [`stop`](Self::stop), giving up after `timeout`: the stop is
    /// requested (and stays requested: `should_stop()` is true from now
    /// on), then this waits at most `timeout` for the function to return.
    /// On time it is `stop`'s result; otherwise
    /// [`StopTimeoutError::TimedOut`] hands the handle back, so the caller
    /// can wait again, [`detach`](Self::detach) it or drop it (which waits).
    /// One futex wait with a deadline: no polling.
    ///
    /// ```
    /// use kthread::StopTimeoutError;
    /// use std::time::Duration;
    /// let gate = std::sync::Arc::new(kthread::Completion::new());
    /// let g = gate.clone();
    /// // Ignores should_stop() until the gate opens.
    /// let k = kthread::run("slow", move || g.wait())?;
    /// let k = match k.stop_timeout(Duration::from_millis(10)) {
    ///     Err(StopTimeoutError::TimedOut(k)) => k,
    ///     other => panic!("{other:?}"),
    /// };
    /// gate.complete();
    /// assert!(k.stop_timeout(Duration::from_secs(60)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> Result<T, StopTimeoutError<T>> {
        let task = self.task.clone();
        if !is_current(&task) && !task.is_inherited() {
            request_stop_by(&task, Resend::Waiter);
            let deadline = crate::sys::time::Deadline::after(timeout);
            let exited = if task.has(flags::INTERRUPT_ON_STOP) {
                hooks::wait_resending(&task, hooks::STOP, Some(deadline), |slice| {
                    task.exited().wait_timeout(slice)
                })
            } else {
                task.exited().wait_timeout(timeout)
            };
            if !exited {
                return Err(StopTimeoutError::TimedOut(self));
            }
        }
        // Returned (or the caller is the kthread itself): the join is the
        // thread's last few instructions.
        self.stop_inner().map_err(StopTimeoutError::Stopped)
    }

    fn stop_inner(&mut self) -> Result<T, StopError> {
        let task = self.task.clone();
        let thread = self.thread.take();
        if task.is_inherited() {
            // A fork() child's copy: the thread is the parent's. Wait for
            // nothing; the id is simply forgotten (`RawThread` has no drop).
            let _forgotten = thread;
            return Err(StopError::Forked);
        }
        if is_current(&task) {
            request_stop_by(&task, Resend::Waiter); // nothing to interrupt
            if let Some(t) = thread {
                t.detach()
                    .unwrap_or_else(|e| fatal(&format!("pthread_detach: {e}")));
            }
            return Err(StopError::Current);
        }
        crate::trace::event!(DEBUG, "sched_kthread_stop", task.name(), task.tid());
        request_stop_by(&task, Resend::Waiter);
        // Joining is the wait: the thread writes its result, completes
        // `exited` (no syscall when nobody waits on it) and returns. An
        // interruptible kthread is re-sent its stop while we wait, until
        // it has seen it.
        let interrupting = task.has(flags::INTERRUPT_ON_STOP);
        match thread {
            Some(t) if interrupting => {
                let mut t = Some(t);
                hooks::wait_resending(&task, hooks::STOP, None, |slice| {
                    let th = t.take().expect("joined once");
                    match th.join_within(slice) {
                        Ok(Ok(())) => true,
                        Ok(Err(th)) => {
                            t = Some(th);
                            false
                        }
                        Err(e) => fatal(&format!("pthread_timedjoin_np: {e}")),
                    }
                });
            }
            Some(t) => t
                .join()
                .unwrap_or_else(|e| fatal(&format!("pthread_join: {e}"))),
            None if interrupting => {
                hooks::wait_resending(&task, hooks::STOP, None, |slice| {
                    task.exited().wait_timeout(slice)
                });
            }
            None => task.exited().wait(),
        }
        let result = self.packet.take();
        crate::trace::event!(
            DEBUG,
            "sched_kthread_stop_ret",
            task.name(),
            task.tid(),
            ret = match &result {
                Ok(_) => "ok",
                Err(StopError::NotStarted) => "-EINTR",
                Err(_) => "error",
            }
        );
        result
    }

    /// Stops the kthread without blocking the thread, as [`stop`](Self::stop)
    /// does (feature `async`): the stop is requested at the first poll, and
    /// the future resolves with the function's result once the thread is
    /// joined. The wait is a parked waker on the kthread's exit; the join is
    /// done by the library (a `pthread_tryjoin_np`, or its reaper kthread if
    /// the thread is still in its last instructions), never on the
    /// executor's thread. An interruptible kthread
    /// ([`interrupt_on_stop`](crate::Builder::interrupt_on_stop)) is re-sent
    /// its interruption by its own timer until it has seen the stop.
    ///
    /// Cancel-safe: a future dropped before it resolved still stops the
    /// kthread (requesting the stop if the first poll never came) and lets
    /// it end by itself, detached: the C library reaps it and its result is
    /// dropped. Nothing waits on the executor's thread and nothing leaks.
    ///
    /// ```
    /// use kthread::{schedule, set_current_state, should_stop, TaskState};
    /// let k = kthread::run("served", || {
    ///     while !should_stop() {
    ///         set_current_state(TaskState::Interruptible);
    ///         if !should_stop() {
    ///             schedule();
    ///         }
    ///         set_current_state(TaskState::Running);
    ///     }
    ///     42
    /// })?;
    /// assert_eq!(futures::executor::block_on(k.stop_async())?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn stop_async(self) -> impl std::future::Future<Output = Result<T, StopError>> + Send
    where
        T: Send,
    {
        StopAsync {
            handle: Some(self),
            phase: StopPhase::Start,
            parked: crate::wakers::Parked::new(0),
        }
    }

    /// Asks the kthread to stop and wakes it, without waiting; mirrors the
    /// first half of `kthread_stop()`.
    ///
    /// [`should_stop`](crate::should_stop) turns true in the kthread; a
    /// later [`stop`](Self::stop) (or the drop) waits and collects the
    /// result. Stopping many kthreads: request every stop, then stop each,
    /// and they wind down in parallel.
    ///
    /// ```
    /// let ks: Vec<_> = (0..3)
    ///     .map(|i| {
    ///         kthread::run(&format!("w{i}"), || {
    ///             while !kthread::should_stop() {
    ///                 kthread::set_current_state(kthread::TaskState::Interruptible);
    ///                 if !kthread::should_stop() {
    ///                     kthread::schedule();
    ///                 }
    ///                 kthread::set_current_state(kthread::TaskState::Running);
    ///             }
    ///         })
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// ks.iter().for_each(|k| k.request_stop());
    /// for k in ks {
    ///     k.stop()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request_stop(&self) {
        if !self.task.is_inherited() {
            request_stop(&self.task);
        }
    }

    /// Lets the kthread run on by itself and returns its task; its result is dropped.
    ///
    /// ```
    /// let k = kthread::run("free", || ())?;
    /// let task = k.detach();
    /// assert_eq!(task.name(), "free");
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn detach(mut self) -> Task {
        if self.task.is_inherited() {
            // The parent's thread: nothing to detach in this process.
            let _forgotten = self.thread.take();
        } else if let Some(t) = self.thread.take() {
            t.detach()
                .unwrap_or_else(|e| fatal(&format!("pthread_detach: {e}")));
        }
        self.task.clone()
    }

    /// Parks the kthread and returns once it sits in [`parkme`](crate::parkme); mirrors `kthread_park()`.
    ///
    /// A kthread never woken may be parked: that counts as its first wake,
    /// and it parks before its function runs. Errors: [`Error::AlreadyParked`]
    /// if it is parked or being parked, [`Error::Exited`] if it has returned or is being stopped.
    /// The thread must call [`should_park`](crate::should_park)/[`parkme`](crate::parkme) in its loop (as in the kernel).
    ///
    /// ```
    /// let k = kthread::run("parkable", || {
    ///     while !kthread::should_stop() {
    ///         if kthread::should_park() {
    ///             kthread::parkme();
    ///             continue;
    ///         }
    ///         kthread::set_current_state(kthread::TaskState::Interruptible);
    ///         if !kthread::should_stop() && !kthread::should_park() {
    ///             kthread::schedule();
    ///         }
    ///         kthread::set_current_state(kthread::TaskState::Running);
    ///     }
    /// })?;
    /// k.park()?;
    /// assert_eq!(k.task().state(), kthread::TaskState::Parked);
    /// k.unpark();
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn park(&self) -> Result<(), Error> {
        self.task.park()
    }

    /// Releases a parked kthread; mirrors `kthread_unpark()`. A no-op if not parked.
    ///
    /// ```
    /// let k = kthread::create("u", || ())?;
    /// k.unpark(); // not parked: nothing happens
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn unpark(&self) {
        self.task.unpark()
    }
}

impl<T> Drop for Kthread<T> {
    fn drop(&mut self) {
        // Nobody collects the result: stopped and dropped here, or, for a
        // detached kthread that already left it, taken from the packet and
        // dropped here (else the kthread drops it when it ends). A panic in
        // its `Drop` is caught: this may run during an unwind, where a
        // second panic would be an abort.
        if self.task.is_inherited() {
            // A fork() child's copy: release only memory. The packet (and
            // any result the parent's thread left in it) is leaked, so no
            // user `Drop` runs on a copy the parent still owns.
            std::mem::forget(self.packet.clone());
            let _forgotten = self.thread.take();
            return;
        }
        let result = if self.thread.is_some() {
            self.stop_inner()
        } else {
            self.packet.take()
        };
        drop_catching(result);
    }
}

impl Task {
    /// Binds the not-yet-woken task to a set of CPUs; mirrors `kthread_bind_mask()`.
    ///
    /// What [`Kthread::bind_mask`] does, for a caller that holds only the
    /// task (the C ABI's `struct task_struct *`). Errors:
    /// [`Error::EmptyCpuMask`], [`Error::InvalidCpu`] for a CPU number the
    /// OS cannot represent, [`Error::CpuNotAllowed`] naming the first CPU
    /// of the mask the process may not use (offline or outside its cpuset),
    /// [`Error::AlreadyStarted`] once the task was woken.
    ///
    /// ```
    /// let k = kthread::create("b", || ())?;
    /// k.task().bind_mask(&[0])?;
    /// assert!(k.task().is_bound());
    /// assert!(matches!(k.task().bind_mask(&[]), Err(kthread::Error::EmptyCpuMask)));
    /// k.wake_up();
    /// assert!(matches!(k.task().bind_mask(&[0]), Err(kthread::Error::AlreadyStarted)));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn bind_mask(&self, cpus: &[usize]) -> Result<(), Error> {
        if cpus.is_empty() {
            return Err(Error::EmptyCpuMask);
        }
        let set = CpuSet::from_cpus(cpus).map_err(Error::InvalidCpu)?;
        // Every CPU of the mask must be usable: name the first that is not,
        // rather than let the OS bind silently to the usable subset.
        let allowed = topology::allowed_cpus();
        let not_allowed = || cpus.iter().copied().find(|&c| !allowed.contains(c));
        if let Some(cpu) = not_allowed() {
            return Err(Error::CpuNotAllowed(cpu));
        }
        if self.is_inherited() {
            return Err(Error::Forked);
        }
        let mut bound = self.bind_lock();
        if self.has(flags::WOKEN | flags::EXITED) {
            return Err(Error::AlreadyStarted);
        }
        sched::set_affinity(self.tid(), &set).map_err(|e| match e.raw_os_error() {
            // The cpuset shrank since we looked: name the CPU it lost.
            Some(libc::EINVAL) => Error::CpuNotAllowed(not_allowed().unwrap_or(cpus[0])),
            _ => Error::Os(e),
        })?;
        *bound = Some(set);
        self.flags().mark_bound();
        Ok(())
    }
}

/// What [`Kthread::stop_timeout`] gives when it has no value.
///
/// ```
/// use kthread::{StopError, StopTimeoutError};
/// let k = kthread::create("never-woken", || 1)?;
/// let e = k.stop_timeout(std::time::Duration::from_secs(1)).unwrap_err();
/// assert!(matches!(e, StopTimeoutError::Stopped(StopError::NotStarted)));
/// # Ok::<(), kthread::Error>(())
/// ```
pub enum StopTimeoutError<T> {
    /// The stop completed without a value (`NotStarted`, `Panicked`, `Current`).
    Stopped(StopError),
    /// The function did not return in time; the stop stays requested and
    /// here is the handle back.
    TimedOut(Kthread<T>),
}

impl<T> fmt::Debug for StopTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopTimeoutError::Stopped(e) => f.debug_tuple("Stopped").field(e).finish(),
            StopTimeoutError::TimedOut(k) => f.debug_tuple("TimedOut").field(k).finish(),
        }
    }
}

impl<T> fmt::Display for StopTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopTimeoutError::Stopped(e) => e.fmt(f),
            StopTimeoutError::TimedOut(k) => write!(
                f,
                "kthread {:?} (tid {}) did not return before the stop's deadline",
                k.task().name(),
                k.task().tid()
            ),
        }
    }
}

impl<T> std::error::Error for StopTimeoutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StopTimeoutError::Stopped(e) => Some(e),
            StopTimeoutError::TimedOut(_) => None,
        }
    }
}

/// Where a [`Kthread::stop_async`] future stands.
#[cfg(feature = "async")]
enum StopPhase {
    /// Not polled yet: the stop is not requested.
    Start,
    /// Requested; waiting for the function to return (`exited`).
    Exit,
    /// Returned; the reaper joins the thread and completes this.
    Join(Arc<crate::completion::Completion>),
}

/// The future of [`Kthread::stop_async`].
#[cfg(feature = "async")]
struct StopAsync<T> {
    /// `None` once resolved.
    handle: Option<Kthread<T>>,
    phase: StopPhase,
    /// The waker, parked on `exited` or on the join's completion.
    parked: crate::wakers::Parked,
}

#[cfg(feature = "async")]
impl<T> std::future::Future for StopAsync<T> {
    type Output = Result<T, StopError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::{ready, Poll};
        let this = &mut *self;
        let k = this
            .handle
            .as_mut()
            .expect("a stop_async future polled after it resolved");
        loop {
            match &this.phase {
                StopPhase::Start => {
                    if k.task.is_inherited() || is_current(&k.task) {
                        // Both answer at once, without waiting (`stop`'s
                        // `Forked` and `Current`).
                        let r = k.stop_inner();
                        this.handle = None;
                        return Poll::Ready(r);
                    }
                    crate::trace::event!(DEBUG, "sched_kthread_stop", k.task.name(), k.task.tid());
                    // Nobody waits here to re-send an interruption: the
                    // kthread's own timer does.
                    request_stop_by(&k.task, Resend::Timer);
                    this.parked = crate::wakers::Parked::new(k.task.exited().key());
                    this.phase = StopPhase::Exit;
                }
                StopPhase::Exit => {
                    ready!(k.task.exited().poll_wait(&mut this.parked, cx));
                    let Some(thread) = k.thread.take() else {
                        break;
                    };
                    match thread.try_join() {
                        Ok(Ok(())) => break,
                        Ok(Err(thread)) => {
                            let joined = Arc::new(crate::completion::Completion::new());
                            this.parked = crate::wakers::Parked::new(joined.key());
                            super::reaper::join_later(thread, joined.clone());
                            this.phase = StopPhase::Join(joined);
                        }
                        Err(e) => fatal(&format!("pthread_tryjoin_np: {e}")),
                    }
                }
                StopPhase::Join(joined) => {
                    ready!(joined.poll_wait(&mut this.parked, cx));
                    break;
                }
            }
        }
        let result = k.packet.take();
        crate::trace::event!(
            DEBUG,
            "sched_kthread_stop_ret",
            k.task.name(),
            k.task.tid(),
            ret = match &result {
                Ok(_) => "ok",
                Err(StopError::NotStarted) => "-EINTR",
                Err(_) => "error",
            }
        );
        this.handle = None;
        Poll::Ready(result)
    }
}

#[cfg(feature = "async")]
impl<T> Drop for StopAsync<T> {
    fn drop(&mut self) {
        let Some(k) = self.handle.take() else {
            return;
        };
        if matches!(self.phase, StopPhase::Start) && !k.task.is_inherited() && !is_current(&k.task)
        {
            request_stop_by(&k.task, Resend::Timer);
        }
        // Still running: it ends by itself and the C library reaps it. Its
        // result, if already left, is dropped here by the handle's drop
        // (which, with no thread left to join, waits for nothing).
        if k.thread.is_some() {
            drop(k.detach());
        }
    }
}
