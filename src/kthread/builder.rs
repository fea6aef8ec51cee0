//! `Builder`: validates a kthread's configuration and creates it through kthreadd.

use super::handle::Kthread;
use super::lifecycle::{self, Packet};
use crate::error::Error;
use crate::kthreadd::{self, Reply};
use crate::sync::Arc;
use crate::sys::sched::{CpuSet, MAX_CPUS};
use crate::sys::topology;
use crate::task::policy::{self, Policy};
use crate::task::{flags, Task, TaskInit};
use std::any::Any;

/// Stack size of a kthread unless [`Builder::stack_size`] says otherwise
/// (2 MiB); kthreadd's spares are made with it until a create asks for
/// another size.
pub const DEFAULT_STACK_SIZE: usize = kthreadd::DEFAULT_STACK_SIZE;
/// The largest stack size accepted (1 GiB); beyond it is taken as a mistake.
pub const MAX_STACK_SIZE: usize = 1 << 30;

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
    start: policy::Start,
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
            start: policy::Start::default(),
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
            self.extra_flags |= flags::FREEZABLE;
        } else {
            self.extra_flags &= !flags::FREEZABLE;
        }
        self
    }

    /// Let a stop, park or freeze request interrupt the kthread's blocking
    /// system call (it fails with `EINTR`), as a signal the kthread allowed
    /// does ([`allow_signal`](crate::allow_signal)).
    ///
    /// The kthread then has the library's interruption signal
    /// ([`interrupt_signal`](crate::interrupt_signal)) unblocked and is sent
    /// it on each request; it is sent again (after 1 ms, then less and less
    /// often) until the kthread has seen the request (`should_stop()` or
    /// `should_park()` true, `parkme`, the refrigerator), so a request that
    /// lands just before the call is entered still interrupts it. The
    /// function must treat `EINTR` as "look at `should_stop()`": calls that
    /// restart by themselves (std's `accept`, `thread::sleep`, `read_exact`)
    /// are not interrupted; use the raw call, or a [stop
    /// callback](crate::Task::on_stop) or the [stop fd](crate::Task::stop_fd).
    /// To sleep, use the library's own interruptible sleeps
    /// ([`sleep_for`](crate::task::sleep_for) with `Interruptible`,
    /// [`schedule_timeout`](crate::schedule_timeout)): a stop ends them at
    /// once, with or without this option.
    ///
    /// ```
    /// let (r, w) = std::os::unix::net::UnixStream::pair()?;
    /// let k = kthread::Builder::new("reader").interrupt_on_stop(true).run(move || {
    ///     use std::os::fd::AsRawFd;
    ///     let mut buf = [0u8; 64];
    ///     while !kthread::should_stop() {
    ///         // SAFETY: reads into a buffer of the stated size.
    ///         let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    ///         if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
    ///             continue; // interrupted: look at should_stop()
    ///         }
    ///     }
    ///     "stopped while blocked in read()"
    /// })?;
    /// assert_eq!(k.stop()?, "stopped while blocked in read()");
    /// drop(w);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn interrupt_on_stop(mut self, yes: bool) -> Builder {
        if yes {
            self.extra_flags |= flags::INTERRUPT_ON_STOP | flags::HOOKED;
        } else {
            self.extra_flags &= !(flags::INTERRUPT_ON_STOP | flags::HOOKED);
        }
        self
    }

    /// The scheduling policy the thread runs with, set by the thread itself
    /// before `create` returns, so before its first instruction (the clean
    /// environment is `Policy::Normal`). A real-time priority outside 1..=99
    /// is `InvalidPriority`; a policy the process may not set is
    /// `PolicyNotPermitted` from `create`, and nothing is left behind.
    ///
    /// ```
    /// use kthread::Policy;
    /// let k = kthread::Builder::new("bg").policy(Policy::Idle).run(|| {
    ///     kthread::current().unwrap().policy() // already set on the first line
    /// })?;
    /// assert_eq!(k.stop()?, Policy::Idle);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(mut self, policy: Policy) -> Builder {
        self.start.policy = Some(policy);
        self
    }

    /// The nice value the thread runs with (-20..=19), set as
    /// [`policy`](Self::policy) is; lowering it below the creator's needs
    /// `CAP_SYS_NICE`.
    ///
    /// ```
    /// let k = kthread::Builder::new("low").nice(19).create(|| ())?;
    /// assert_eq!(k.task().nice(), 19);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn nice(mut self, nice: i32) -> Builder {
        self.start.nice = Some(nice);
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
            if !topology::online_nodes().contains(&node) {
                return Err(Error::InvalidNode(node));
            }
        }
        if let Some(p) = self.start.policy {
            p.raw()?;
        }
        if let Some(n) = self.start.nice {
            policy::check_nice(n)?;
        }
        let mut birth = self.extra_flags;
        // The process's start affinity (`taskset`), cached: no file is read
        // on the creation path. The cgroup cpuset the kernel applies itself.
        let start = topology::start_affinity().unwrap_or_else(CpuSet::all);
        let affinity = match self.cpu {
            Some(cpu) if cpu >= MAX_CPUS => return Err(Error::InvalidCpu(cpu)),
            Some(cpu) if !start.contains(cpu) => return Err(Error::CpuNotAllowed(cpu)),
            Some(cpu) => {
                birth |= flags::BOUND;
                CpuSet::from_cpus(&[cpu]).map_err(Error::InvalidCpu)?
            }
            None => start,
        };
        let task = Task::new(TaskInit {
            name: self.name.into_boxed_str(),
            start: self.start,
            flags: birth,
            node: self.node,
            cpu: self.cpu,
            data: self.data,
        });
        let packet = Packet::new();
        let body = {
            let (task, packet) = (task.clone(), packet.clone());
            Box::new(move |reply: Option<Arc<Reply>>| {
                lifecycle::thread_main(task, f, packet, reply)
            })
        };
        // Only the thread can set its own memory policy or take signals.
        let self_setup = self.node.is_some() || birth & flags::INTERRUPT_ON_STOP != 0;
        let thread = kthreadd::create(&task, &affinity, self.stack_size, self_setup, body)?;
        crate::trace::event!(DEBUG, "kthread_create", task.name(), task.tid());
        Ok(Kthread::new(task, packet, thread))
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
