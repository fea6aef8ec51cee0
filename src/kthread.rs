//! The kthread handle and builder: create stopped, wake, bind, stop, park.
//!
//! Mirrors `kthread_create_on_node()`, `kthread_run()`, `kthread_bind()`,
//! `kthread_stop()`, `kthread_park()` and friends. See `docs/design.md` for
//! the creation, first-run/stop and park protocols.

use crate::error::{Error, StopError};
use crate::kthreadd::{self, Reply};
use crate::sync::{lock, Ordering};
use crate::sys::sched::{self, CpuSet, MAX_CPUS};
use crate::task::{self, flag, Task, TaskInit};
use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// Stack size of a kthread unless [`Builder::stack_size`] says otherwise.
pub const DEFAULT_STACK_SIZE: usize = 2 << 20;
/// The largest stack size accepted (1 GiB); beyond it is taken as a mistake.
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Where the thread function's outcome waits for `stop`.
struct Packet<T>(Mutex<Option<Result<T, StopError>>>);

/// Configures a kthread before creating it; mirrors `kthread_create_on_node()`'s arguments.
///
/// ```
/// let k = kthread::Builder::new("flusher/0")
///     .cpu(0)
///     .stack_size(256 * 1024)
///     .data(String::from("sda"))
///     .run(|| kthread::current().unwrap().data::<String>().unwrap().len())?;
/// assert_eq!(k.stop()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Builder does nothing until create() or run()"]
pub struct Builder {
    name: String,
    node: Option<usize>,
    cpu: Option<usize>,
    stack_size: usize,
    data: Option<Box<dyn Any + Send + Sync>>,
    extra_flags: u32,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("node", &self.node)
            .field("cpu", &self.cpu)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder for a kthread called `name` (any length; the OS keeps 15 bytes).
    ///
    /// ```
    /// let b = kthread::Builder::new("worker");
    /// # drop(b);
    /// ```
    pub fn new(name: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            node: None,
            cpu: None,
            stack_size: DEFAULT_STACK_SIZE,
            data: None,
            extra_flags: 0,
        }
    }

    /// Prefer NUMA node `node` for the stack and later allocations (`tsk_fork_get_node`).
    ///
    /// ```
    /// let k = kthread::Builder::new("numa").node(0).run(|| ())?;
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn node(mut self, node: usize) -> Builder {
        self.node = Some(node);
        self
    }

    /// Bind to `cpu` before the first instruction runs; mirrors `kthread_create_on_cpu()`.
    ///
    /// ```
    /// let k = kthread::Builder::new("on-cpu0").cpu(0).run(|| 0)?;
    /// assert!(k.task().is_bound());
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cpu(mut self, cpu: usize) -> Builder {
        self.cpu = Some(cpu);
        self
    }

    /// Stack size in bytes (rounded up to the OS minimum; zero is an error).
    ///
    /// ```
    /// let k = kthread::Builder::new("small").stack_size(64 * 1024).run(|| ())?;
    /// k.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Data the thread reads with [`Task::data`]; mirrors `kthread_data()`.
    ///
    /// ```
    /// let k = kthread::Builder::new("d").data(5u64).create(|| ())?;
    /// assert_eq!(k.task().data::<u64>(), Some(&5));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn data<D: Any + Send + Sync>(mut self, data: D) -> Builder {
        self.data = Some(Box::new(data));
        self
    }

    /// Make the kthread freezable from birth (as if it called [`crate::set_freezable`]).
    ///
    /// ```
    /// let k = kthread::Builder::new("fz").freezable(true).create(|| ())?;
    /// assert!(k.task().is_freezable());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn freezable(mut self, yes: bool) -> Builder {
        if yes {
            self.extra_flags |= flag::FREEZABLE;
        } else {
            self.extra_flags &= !flag::FREEZABLE;
        }
        self
    }

    pub(crate) fn flags(mut self, f: u32) -> Builder {
        self.extra_flags |= f;
        self
    }

    /// Creates the kthread stopped: it runs nothing of `f` until woken.
    ///
    /// Mirrors `kthread_create()`. Fails with a clear [`Error`] on bad input
    /// (NUL in the name, CPU out of range or not allowed, node not online,
    /// stack size zero or absurd) or when the OS cannot create a thread; then
    /// nothing is left behind and `f` has been dropped.
    ///
    /// ```
    /// let k = kthread::Builder::new("stopped").create(|| 1 + 1)?;
    /// assert!(k.wake_up());
    /// assert_eq!(k.stop()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create<F, T>(self, f: F) -> Result<Kthread<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.name.contains('\0') {
            return Err(Error::InvalidName);
        }
        if self.stack_size == 0 || self.stack_size > MAX_STACK_SIZE {
            return Err(Error::InvalidStackSize(self.stack_size));
        }
        if let Some(node) = self.node {
            if !crate::sys::topology::online_nodes().contains(&node) {
                return Err(Error::InvalidNode(node));
            }
        }
        let mut flags = self.extra_flags;
        let affinity = match self.cpu {
            Some(cpu) if cpu >= MAX_CPUS => return Err(Error::InvalidCpu(cpu)),
            Some(cpu) => {
                flags |= flag::BOUND;
                CpuSet::from_cpus(&[cpu]).map_err(Error::InvalidCpu)?
            }
            None => CpuSet::all(),
        };
        let task = Task::new(TaskInit {
            name: self.name.into_boxed_str(),
            flags,
            node: self.node,
            cpu: self.cpu,
            data: self.data,
        });
        let packet = Arc::new(Packet(Mutex::new(None)));
        let reply = Reply::new();
        let main = {
            let (task, packet, reply) = (task.clone(), packet.clone(), reply.clone());
            Box::new(move || thread_main(task, affinity, f, packet, reply))
        };
        let thread = kthreadd::create(main, self.stack_size, reply)?;
        crate::trace::create(&task);
        Ok(Kthread {
            task,
            packet,
            thread: Some(thread),
            _not_sync_result: PhantomData,
        })
    }

    /// Creates the kthread and wakes it; mirrors `kthread_run()`.
    ///
    /// ```
    /// let k = kthread::Builder::new("runner").run(|| "done")?;
    /// assert_eq!(k.stop()?, "done");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<F, T>(self, f: F) -> Result<Kthread<T>, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let k = self.create(f)?;
        k.wake_up();
        Ok(k)
    }
}

/// Creates a stopped kthread called `name`; mirrors `kthread_create()`.
///
/// ```
/// let k = kthread::create("lazy", || 3)?;
/// k.wake_up();
/// assert_eq!(k.stop()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create<F, T>(name: &str, f: F) -> Result<Kthread<T>, Error>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new(name).create(f)
}

/// Creates and wakes a kthread called `name`; mirrors `kthread_run()`.
///
/// ```
/// let k = kthread::run("eager", || 4)?;
/// assert_eq!(k.stop()?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<F, T>(name: &str, f: F) -> Result<Kthread<T>, Error>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new(name).run(f)
}

/// The body of every kthread (the kernel's `kthread()`).
fn thread_main<F, T>(task: Task, affinity: CpuSet, f: F, packet: Arc<Packet<T>>, reply: Arc<Reply>)
where
    F: FnOnce() -> T,
{
    task::set_current(&task);
    if let Err(e) = kthreadd::clean_env(&task, &affinity, task.name()) {
        // Creation failed: the creator joins us; `f` is dropped here, once.
        task::clear_current();
        reply.thread_answer(Err(e));
        return;
    }
    crate::registry::add(&task);
    // Tell the creator we exist, then sleep until the first wake (or a stop).
    task.set_state(task::UNINTERRUPTIBLE);
    reply.thread_answer(Ok(()));
    drop(reply);
    task.sleep(None);
    // A `bind` racing with the first wake holds this lock until the
    // affinity is applied, so `f` never runs on the wrong CPU.
    drop(lock(&task.0.bind));

    let result = if task.has(flag::WOKEN) {
        if task.has(flag::SHOULD_PARK) {
            parkme_task(&task);
        }
        if task.is_freezable() && crate::freezer::freezing() {
            // Woken while frozen: wait for the thaw, or a stop (the
            // function must then still run, with should_stop() true).
            crate::freezer::refrigerator(&task, true);
        }
        catch_unwind(AssertUnwindSafe(f)).map_err(StopError::Panicked)
    } else {
        drop(f);
        Err(StopError::NotStarted)
    };
    *lock(&packet.0) = Some(result);
    exit(&task);
}

/// The end of a kthread: the order matters (design.md, "exit").
pub(crate) fn exit(task: &Task) {
    task.set_state(task::DEAD);
    crate::registry::remove(task);
    // One RMW sets EXITED and clears a pending park: a parker still waiting
    // for an acknowledgement is released here and sees `Exited`.
    let prev = task
        .0
        .flags
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
            Some((f | flag::EXITED) & !flag::SHOULD_PARK)
        })
        .unwrap_or_else(|f| f);
    release_parker(task, prev);
    crate::freezer::task_changed();
    task.0.exited.complete_all();
    task::clear_current();
}

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
    thread: Option<crate::sys::thread::RawThread>,
    /// The handle is `Send` when `T` is, and `Sync` (it only hands out `&Task`).
    _not_sync_result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Kthread<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Kthread").field(&self.task).finish()
    }
}

impl<T> Kthread<T> {
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
        bind_task(&self.task, cpus)
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

    fn stop_inner(&mut self) -> Result<T, StopError> {
        let task = self.task.clone();
        let thread = self.thread.take();
        if is_current(&task) {
            request_stop(&task);
            if let Some(t) = thread {
                crate::sys::thread::RawThread::detach(t)
                    .unwrap_or_else(|e| crate::fatal(&format!("pthread_detach: {e}")));
            }
            return Err(StopError::Current);
        }
        crate::trace::stop(&task);
        request_stop(&task);
        // Joining is the wait: the thread writes its result, completes
        // `exited` (no syscall when nobody waits on it) and returns.
        match thread {
            Some(t) => t
                .join()
                .unwrap_or_else(|e| crate::fatal(&format!("pthread_join: {e}"))),
            None => task.0.exited.wait(),
        }
        let result = lock(&self.packet.0)
            .take()
            .unwrap_or(Err(StopError::NotStarted));
        crate::trace::stop_ret(
            &task,
            match &result {
                Ok(_) => "ok",
                Err(e) => match e {
                    StopError::NotStarted => "-EINTR",
                    _ => "error",
                },
            },
        );
        result
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
        if let Some(t) = self.thread.take() {
            t.detach()
                .unwrap_or_else(|e| crate::fatal(&format!("pthread_detach: {e}")));
        }
        self.task.clone()
    }

    /// Parks the kthread and returns once it sits in [`parkme`]; mirrors `kthread_park()`.
    ///
    /// A kthread never woken may be parked: that counts as its first wake,
    /// and it parks before its function runs. Errors: [`Error::AlreadyParked`]
    /// if it is parked or being parked, [`Error::Exited`] if it has returned.
    /// The thread must call [`should_park`]/[`parkme`] in its loop (as in the kernel).
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
        park_task(&self.task)
    }

    /// Releases a parked kthread; mirrors `kthread_unpark()`. A no-op if not parked.
    ///
    /// ```
    /// let k = kthread::create("u", || ())?;
    /// k.unpark(); // not parked: nothing happens
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn unpark(&self) {
        unpark_task(&self.task)
    }
}

impl<T> Drop for Kthread<T> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_inner();
        }
    }
}

fn is_current(task: &Task) -> bool {
    task::with_current(|c| c.is_some_and(|c| std::ptr::eq(c, &*task.0)))
}

pub(crate) fn bind_task(task: &Task, cpus: &[usize]) -> Result<(), Error> {
    if cpus.is_empty() {
        return Err(Error::Os(std::io::Error::from_raw_os_error(libc::EINVAL)));
    }
    let set = CpuSet::from_cpus(cpus).map_err(Error::InvalidCpu)?;
    let mut bound = lock(&task.0.bind);
    if task.has(flag::WOKEN | flag::EXITED) {
        return Err(Error::AlreadyStarted);
    }
    sched::set_affinity(task.tid(), &set).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => Error::CpuNotAllowed(cpus[0]),
        _ => Error::Os(e),
    })?;
    *bound = Some(set);
    task.0.flags.fetch_or(flag::BOUND, Ordering::AcqRel);
    Ok(())
}

/// Sets should-stop and wakes the task out of every sleep a stop ends.
pub(crate) fn request_stop(task: &Task) {
    task.0.flags.fetch_or(flag::SHOULD_STOP, Ordering::AcqRel);
    unpark_task(task);
    task.wake_state(task::WAKE_NORMAL | task::WAKE_FROZEN);
}

/// Completes `parked` on behalf of a thread that will now never acknowledge
/// the park in flight, given the flags before SHOULD_PARK was cleared.
fn release_parker(task: &Task, prev: u32) {
    if prev & flag::SHOULD_PARK != 0 && prev & flag::IS_PARKED == 0 && prev & flag::SELF_PARK == 0 {
        task.0.parked.complete();
    }
}

pub(crate) fn park_task(task: &Task) -> Result<(), Error> {
    let own = is_current(task);
    let claim = task
        .0
        .flags
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
            if f & (flag::SHOULD_PARK | flag::EXITED) != 0 {
                return None;
            }
            let mut n = f | flag::SHOULD_PARK;
            if f & flag::SHOULD_STOP == 0 {
                n |= flag::WOKEN; // parking counts as the first wake
            }
            if own {
                n |= flag::SELF_PARK;
            }
            Some(n)
        });
    if let Err(f) = claim {
        return Err(if f & flag::EXITED != 0 {
            Error::Exited
        } else {
            Error::AlreadyParked
        });
    }
    crate::trace::park(task);
    if own {
        return Ok(());
    }
    task.wake_state(task::WAKE_NORMAL);
    task.0.parked.wait();
    if task.has(flag::EXITED) {
        return Err(Error::Exited);
    }
    Ok(())
}

pub(crate) fn unpark_task(task: &Task) {
    let prev = task.0.flags.fetch_and(
        !(flag::SHOULD_PARK | flag::IS_PARKED | flag::SELF_PARK),
        Ordering::AcqRel,
    );
    if prev & flag::SHOULD_PARK == 0 {
        return;
    }
    release_parker(task, prev);
    if prev & flag::IS_PARKED != 0 && prev & flag::PER_CPU != 0 {
        if let Some(cpu) = task.0.cpu {
            // Re-bind before it runs again (`__kthread_bind` in `kthread_unpark`).
            let set = CpuSet::from_cpus(&[cpu]).expect("validated at creation");
            if let Err(e) = sched::set_affinity(task.tid(), &set) {
                task.note(format!("re-bind to CPU {cpu} failed: {e}"));
            }
        }
    }
    crate::trace::unpark(task);
    task.wake_state(task::WAKE_PARKED);
}

pub(crate) fn parkme_task(task: &Task) {
    loop {
        task.set_state(task::PARKED);
        let f = task.flags();
        if f & flag::SHOULD_PARK == 0 {
            break;
        }
        if f & flag::IS_PARKED == 0 {
            let acked = task
                .0
                .flags
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                    (f & flag::SHOULD_PARK != 0 && f & flag::IS_PARKED == 0)
                        .then_some(f | flag::IS_PARKED)
                });
            match acked {
                Ok(prev) => {
                    if prev & flag::SELF_PARK == 0 {
                        task.0.parked.complete();
                    }
                    crate::freezer::task_changed();
                }
                Err(_) => continue,
            }
        }
        task.sleep(None);
    }
    task.set_state(task::RUNNING);
}

/// Whether the current kthread has been asked to stop; mirrors `kthread_should_stop()`.
///
/// A thread-local read and one atomic load; `false` on threads that are not kthreads.
///
/// ```
/// assert!(!kthread::should_stop()); // not a kthread
/// let k = kthread::create("s", kthread::should_stop)?;
/// k.wake_up();
/// let _ = k.stop()?; // true or false: depends on whether the stop came first
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn should_stop() -> bool {
    task::with_current(|t| {
        t.is_some_and(|t| t.flags.load(Ordering::Relaxed) & flag::SHOULD_STOP != 0)
    })
}

/// Whether the current kthread has been asked to park; mirrors `kthread_should_park()`.
///
/// ```
/// assert!(!kthread::should_park());
/// ```
#[inline]
pub fn should_park() -> bool {
    task::with_current(|t| {
        t.is_some_and(|t| t.flags.load(Ordering::Relaxed) & flag::SHOULD_PARK != 0)
    })
}

/// Parks the current kthread while a park is requested; mirrors `kthread_parkme()`.
///
/// Acknowledges the park (so [`Kthread::park`] returns), sleeps in
/// `Parked` until unparked or stopped. Returns at once when no park is
/// requested or the caller is not a kthread.
///
/// ```
/// kthread::parkme(); // no park requested: returns at once
/// ```
pub fn parkme() {
    if let Some(t) = task::current_task() {
        parkme_task(&t);
    }
}

/// The current kthread's task, or `None` on a thread that is not a kthread.
///
/// ```
/// assert!(kthread::current().is_none());
/// let k = kthread::run("me", || kthread::current().map(|t| t.name().to_owned()))?;
/// assert_eq!(k.stop()?.as_deref(), Some("me"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current() -> Option<Task> {
    task::current_task().filter(|t| !t.has(flag::FOREIGN))
}
