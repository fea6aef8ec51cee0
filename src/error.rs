//! Error types: small, specific, each with the errno the C ABI returns.

use std::any::Any;
use std::fmt;
use std::io;

/// Why a kthread call failed.
///
/// Each variant maps to the negative errno the kernel (and the C ABI)
/// would return; see [`Error::errno`].
///
/// ```
/// let err = kthread::create("bad\0name", || ()).unwrap_err();
/// assert!(matches!(err, kthread::Error::InvalidName));
/// assert_eq!(err.errno(), libc::EINVAL);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name holds an interior NUL byte.
    InvalidName,
    /// The CPU number is beyond what the OS can represent.
    InvalidCpu(usize),
    /// The CPU exists in no allowed set: offline, or outside this process's cpuset.
    CpuNotAllowed(usize),
    /// The NUMA node is not online.
    InvalidNode(usize),
    /// A stack size of zero or beyond [`crate::MAX_STACK_SIZE`].
    InvalidStackSize(usize),
    /// The kthread was already woken, so it can no longer be bound.
    AlreadyStarted,
    /// The kthread is already parked or being parked.
    AlreadyParked,
    /// The kthread's function has returned, or a stop was requested: it
    /// can no longer be parked.
    Exited,
    /// The call would wait for the calling thread itself.
    WouldDeadlock,
    /// A CPU mask with no CPU in it.
    EmptyCpuMask,
    /// The object was inherited across `fork()`: its thread is the
    /// parent's and does not exist in this process (C: `-ECHILD`).
    Forked,
    /// A nice value outside -20..=19, or a real-time priority outside 1..=99.
    InvalidPriority(i32),
    /// The process may not set this scheduling policy or nice value (it
    /// needs `CAP_SYS_NICE`, or a high enough `RLIMIT_RTPRIO` /
    /// `RLIMIT_NICE`); the text names what was asked.
    PolicyNotPermitted(String),
    /// A signal number outside `1..=SIGRTMAX`, or, for the interruption
    /// signal, outside `SIGRTMIN..=SIGRTMAX`.
    InvalidSignal(i32),
    /// The signal cannot be the library's interruption signal: the process
    /// has a handler on it, or another one was chosen already (C: `-EBUSY`).
    SignalInUse(i32),
    /// The call is for kthreads only, and the caller is not one.
    NotAKthread,
    /// A spare-thread cache larger than [`crate::kthreadd::MAX_CACHE`].
    InvalidCacheSize(usize),
    /// An operating-system call failed.
    Os(io::Error),
}

impl Error {
    /// The positive errno for this error (the C ABI returns its negation).
    ///
    /// ```
    /// assert_eq!(kthread::Error::AlreadyParked.errno(), libc::EBUSY);
    /// ```
    pub fn errno(&self) -> i32 {
        match self {
            Error::InvalidName
            | Error::InvalidCpu(_)
            | Error::CpuNotAllowed(_)
            | Error::InvalidNode(_)
            | Error::InvalidStackSize(_)
            | Error::EmptyCpuMask
            | Error::InvalidPriority(_)
            | Error::InvalidSignal(_)
            | Error::NotAKthread
            | Error::InvalidCacheSize(_) => libc::EINVAL,
            Error::SignalInUse(_) => libc::EBUSY,
            Error::PolicyNotPermitted(_) => libc::EPERM,
            Error::Forked => libc::ECHILD,
            Error::AlreadyStarted | Error::AlreadyParked => libc::EBUSY,
            Error::Exited => libc::ENOSYS,
            Error::WouldDeadlock => libc::EDEADLK,
            Error::Os(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName => f.write_str("kthread name contains a NUL byte"),
            Error::InvalidCpu(c) => write!(f, "CPU {c} is out of range"),
            Error::CpuNotAllowed(c) => {
                write!(f, "CPU {c} is offline or not allowed for this process")
            }
            Error::InvalidNode(n) => write!(f, "NUMA node {n} is not online"),
            Error::InvalidStackSize(s) => write!(f, "invalid stack size {s}"),
            Error::AlreadyStarted => f.write_str("kthread was already woken"),
            Error::AlreadyParked => f.write_str("kthread is already parked or being parked"),
            Error::Exited => f.write_str("kthread has exited or is being stopped"),
            Error::WouldDeadlock => f.write_str("call would wait for the calling thread itself"),
            Error::Forked => f.write_str(
                "inherited from the parent across fork(): its thread does not exist here",
            ),
            Error::InvalidPriority(p) => write!(
                f,
                "priority {p} is out of range (nice -20..=19, real-time 1..=99)"
            ),
            Error::PolicyNotPermitted(what) => write!(
                f,
                "{what} is not permitted (needs CAP_SYS_NICE or RLIMIT_RTPRIO / RLIMIT_NICE)"
            ),
            Error::EmptyCpuMask => f.write_str("the CPU mask is empty"),
            Error::InvalidSignal(s) => write!(f, "signal {s} is out of range"),
            Error::SignalInUse(s) => write!(
                f,
                "signal {s} cannot interrupt kthreads: it has a handler, or another was chosen"
            ),
            Error::NotAKthread => f.write_str("the calling thread is not a kthread"),
            Error::InvalidCacheSize(n) => write!(
                f,
                "a cache of {n} spare threads is beyond kthreadd::MAX_CACHE"
            ),
            Error::Os(e) => write!(f, "OS call failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Os(e)
    }
}

/// Why [`Kthread::stop`](crate::Kthread::stop) returned no value.
///
/// ```
/// let k = kthread::create("never-woken", || 1)?;
/// assert!(matches!(k.stop(), Err(kthread::StopError::NotStarted)));
/// # Ok::<(), kthread::Error>(())
/// ```
#[non_exhaustive]
pub enum StopError {
    /// The kthread was never woken, so its function never ran (the kernel's `-EINTR`).
    NotStarted,
    /// The function panicked; the payload is intact.
    Panicked(Box<dyn Any + Send + 'static>),
    /// `stop` was called from inside the kthread itself (`-EDEADLK`); the
    /// stop request stands and the thread is left to finish on its own.
    Current,
    /// The handle was inherited across `fork()`: its thread is the
    /// parent's and does not exist in this process (`-ECHILD`). Nothing
    /// was waited for; dropping the handle releases only memory.
    Forked,
}

impl StopError {
    /// The panic message, when the payload is a string.
    ///
    /// ```
    /// let k = kthread::run("boom", || -> () { panic!("disk on fire") })?;
    /// match k.stop() {
    ///     Err(e) => assert_eq!(e.panic_message(), Some("disk on fire")),
    ///     Ok(()) => unreachable!(),
    /// }
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            StopError::Panicked(p) => panic_message(&**p),
            _ => None,
        }
    }

    /// The errno the C ABI's `kthread_stop` returns for this outcome (positive).
    ///
    /// ```
    /// assert_eq!(kthread::StopError::NotStarted.errno(), libc::EINTR);
    /// ```
    pub fn errno(&self) -> i32 {
        match self {
            StopError::NotStarted => libc::EINTR,
            StopError::Panicked(_) => libc::EFAULT,
            StopError::Current => libc::EDEADLK,
            StopError::Forked => libc::ECHILD,
        }
    }
}

impl fmt::Debug for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopError::NotStarted => f.write_str("NotStarted"),
            StopError::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
            StopError::Current => f.write_str("Current"),
            StopError::Forked => f.write_str("Forked"),
        }
    }
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopError::NotStarted => f.write_str("kthread was stopped before it was ever woken"),
            StopError::Panicked(_) => write!(
                f,
                "kthread panicked: {}",
                self.panic_message().unwrap_or("<non-string payload>")
            ),
            StopError::Current => f.write_str("a kthread cannot stop itself"),
            StopError::Forked => f.write_str(
                "the kthread belongs to the parent process: fork() did not copy its thread",
            ),
        }
    }
}

impl std::error::Error for StopError {}

/// The message of a panic payload, when it is a string (as `panic!` makes it).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Drops `v`, catching a panic in its `Drop`: the library drops values the
/// user made (a closure and its captures) on its own threads and across
/// `extern "C"` hooks, where an unwinding panic would abort the process or
/// kill a library thread. The panic hook has already reported the panic.
/// Returns whether one was caught; its payload is dropped the same way.
pub(crate) fn drop_catching<T>(v: T) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(v))) {
        Ok(()) => false,
        Err(p) => {
            drop_payload(p);
            true
        }
    }
}

/// Drops a caught panic's payload, catching a panic in *its* `Drop` (a
/// `panic_any` value may panic when dropped, and so may that panic's
/// payload): each round drops the payload of the previous one.
pub(crate) fn drop_payload(p: Box<dyn Any + Send>) {
    let mut p = p;
    while let Err(next) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(p))) {
        p = next;
    }
}

/// Reports a broken invariant and aborts: used only where continuing would
/// corrupt state (an OS call that cannot fail did), never for bad input.
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    eprintln!("kthread: fatal: {msg}");
    std::process::abort()
}
