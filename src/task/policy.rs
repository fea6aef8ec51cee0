//! Scheduling policy and nice value of a task: `sched_set_fifo()`,
//! `sched_set_normal()`, `set_user_nice()` (`kernel/sched/core.c`).

use super::Task;
use crate::error::Error;
use crate::sync::Ordering;
use crate::sys::sched;
use std::fmt;

/// The lowest and highest nice values (`MIN_NICE`, `MAX_NICE`).
pub const MIN_NICE: i32 = -20;
/// See [`MIN_NICE`].
pub const MAX_NICE: i32 = 19;
/// The highest real-time priority (`MAX_RT_PRIO - 1`); the lowest is 1.
pub const MAX_RT_PRIORITY: u8 = 99;

/// A scheduling policy (`SCHED_*`), with the static priority of the
/// real-time ones (1..=99, higher runs first).
///
/// ```
/// use kthread::Policy;
/// let k = kthread::Builder::new("batch").policy(Policy::Batch).nice(5).create(|| ())?;
/// assert_eq!(k.task().policy(), Policy::Batch);
/// assert_eq!(k.task().nice(), 5);
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// `SCHED_OTHER` (the kernel's `SCHED_NORMAL`): time-shared, weighted by nice.
    Normal,
    /// `SCHED_BATCH`: as `Normal`, for CPU-bound work that may wait longer to be woken.
    Batch,
    /// `SCHED_IDLE`: runs only when nothing else wants the CPU.
    Idle,
    /// `SCHED_FIFO` at the given priority (1..=99): runs until it blocks or
    /// a higher priority wants the CPU (`sched_set_fifo()` uses 50,
    /// `sched_set_fifo_low()` 1).
    Fifo(u8),
    /// `SCHED_RR` at the given priority (1..=99): as `Fifo`, time-sliced
    /// among equal priorities.
    RoundRobin(u8),
}

impl Policy {
    /// The `SCHED_*` value and static priority, if the priority is in range.
    pub(crate) fn raw(self) -> Result<(i32, i32), Error> {
        let rt = |p: u8| {
            if (1..=MAX_RT_PRIORITY).contains(&p) {
                Ok(i32::from(p))
            } else {
                Err(Error::InvalidPriority(i32::from(p)))
            }
        };
        Ok(match self {
            Policy::Normal => (libc::SCHED_OTHER, 0),
            Policy::Batch => (libc::SCHED_BATCH, 0),
            Policy::Idle => (libc::SCHED_IDLE, 0),
            Policy::Fifo(p) => (libc::SCHED_FIFO, rt(p)?),
            Policy::RoundRobin(p) => (libc::SCHED_RR, rt(p)?),
        })
    }

    fn from_raw(policy: i32, priority: i32) -> Policy {
        let p = u8::try_from(priority).unwrap_or(0);
        match policy {
            libc::SCHED_BATCH => Policy::Batch,
            libc::SCHED_IDLE => Policy::Idle,
            libc::SCHED_FIFO => Policy::Fifo(p),
            libc::SCHED_RR => Policy::RoundRobin(p),
            _ => Policy::Normal,
        }
    }

    /// Whether this is a real-time policy (`Fifo`, `RoundRobin`).
    ///
    /// ```
    /// assert!(kthread::Policy::Fifo(1).is_realtime());
    /// assert!(!kthread::Policy::Batch.is_realtime());
    /// ```
    pub fn is_realtime(self) -> bool {
        matches!(self, Policy::Fifo(_) | Policy::RoundRobin(_))
    }

    /// The short form `ps` prints (`TS`, `B`, `IDL`, `FF50`, `RR10`).
    fn short(self) -> String {
        match self {
            Policy::Normal => "TS".into(),
            Policy::Batch => "B".into(),
            Policy::Idle => "IDL".into(),
            Policy::Fifo(p) => format!("FF{p}"),
            Policy::RoundRobin(p) => format!("RR{p}"),
        }
    }
}

impl fmt::Display for Policy {
    /// The form `ps` prints: `TS`, `B`, `IDL`, `FF50`, `RR10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// Checks a nice value.
pub(crate) fn check_nice(nice: i32) -> Result<(), Error> {
    if (MIN_NICE..=MAX_NICE).contains(&nice) {
        Ok(())
    } else {
        Err(Error::InvalidPriority(nice))
    }
}

fn not_permitted(what: String, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::PolicyNotPermitted(what),
        _ => Error::Os(e),
    }
}

/// Applies `policy` to thread `tid` (0 = the caller).
pub(crate) fn apply_policy(tid: libc::pid_t, policy: Policy) -> Result<(), Error> {
    let (raw, prio) = policy.raw()?;
    sched::set_scheduler(tid, raw, prio).map_err(|e| not_permitted(format!("policy {policy:?}"), e))
}

/// Applies `nice` to thread `tid` (0 = the caller).
pub(crate) fn apply_nice(tid: libc::pid_t, nice: i32) -> Result<(), Error> {
    check_nice(nice)?;
    sched::set_nice(tid, nice).map_err(|e| not_permitted(format!("nice {nice}"), e))
}

impl Task {
    /// The thread to change: `Exited` once the function has returned (its
    /// tid may already name another thread).
    fn live_tid(&self) -> Result<libc::pid_t, Error> {
        if self.is_inherited() {
            return Err(Error::Forked);
        }
        if self.has_exited() {
            return Err(Error::Exited);
        }
        Ok(self.tid())
    }

    /// Sets the task's scheduling policy (`sched_setscheduler()`;
    /// `sched_set_fifo()` is `Policy::Fifo(50)`).
    ///
    /// `InvalidPriority` for a real-time priority outside 1..=99,
    /// `PolicyNotPermitted` when the process may not (no `CAP_SYS_NICE`,
    /// `RLIMIT_RTPRIO` too low), `Exited` once its function has returned.
    ///
    /// ```
    /// use kthread::Policy;
    /// let k = kthread::create("p", || ())?;
    /// k.task().set_policy(Policy::Idle)?;
    /// assert_eq!(k.task().policy(), Policy::Idle);
    /// assert!(k.task().set_policy(Policy::Fifo(0)).is_err());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn set_policy(&self, policy: Policy) -> Result<(), Error> {
        apply_policy(self.live_tid()?, policy)?;
        self.inner().note_policy(policy);
        Ok(())
    }

    /// Sets the task's nice value (`set_user_nice()`): -20 (first) to 19
    /// (last); lowering it needs `CAP_SYS_NICE` (or `RLIMIT_NICE`).
    ///
    /// ```
    /// let k = kthread::create("n", || ())?;
    /// k.task().set_nice(10)?;
    /// assert_eq!(k.task().nice(), 10);
    /// assert!(k.task().set_nice(20).is_err());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn set_nice(&self, nice: i32) -> Result<(), Error> {
        apply_nice(self.live_tid()?, nice)?;
        self.inner().note_nice(nice);
        Ok(())
    }

    /// The task's scheduling policy, read from the OS while the thread
    /// lives (so a change made from outside, `chrt`, shows), and the last
    /// one seen once its function has returned.
    ///
    /// ```
    /// let k = kthread::create("pol", || ())?;
    /// assert_eq!(k.task().policy(), kthread::Policy::Normal);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn policy(&self) -> Policy {
        match self.live_tid().map(sched::scheduler) {
            Ok(Ok((raw, prio))) => {
                let p = Policy::from_raw(raw, prio);
                self.inner().note_policy(p);
                p
            }
            _ => self.inner().last_policy(),
        }
    }

    /// The task's nice value, read as [`policy`](Self::policy) is.
    ///
    /// ```
    /// let k = kthread::create("nice", || ())?;
    /// assert_eq!(k.task().nice(), 0); // the clean environment
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn nice(&self) -> i32 {
        match self.live_tid().map(sched::nice) {
            Ok(Ok(n)) => {
                self.inner().note_nice(n);
                n
            }
            _ => self.inner().last_nice(),
        }
    }
}

/// The scheduling a new kthread applies to itself before its first
/// instruction (`Builder::policy`, `Builder::nice`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Start {
    pub(crate) policy: Option<Policy>,
    pub(crate) nice: Option<i32>,
}

/// The last policy and nice value seen of a task, for after it exits.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// `policy << 8 | priority`.
    policy: crate::sync::AtomicU32,
    nice: crate::sync::AtomicI32,
}

impl Seen {
    pub(crate) fn new() -> Seen {
        Seen {
            policy: crate::sync::AtomicU32::new(0),
            nice: crate::sync::AtomicI32::new(0),
        }
    }

    pub(crate) fn set_policy(&self, p: Policy) {
        let (raw, prio) = p.raw().unwrap_or((libc::SCHED_OTHER, 0));
        self.policy.store(
            ((raw as u32) << 8) | (prio as u32 & 0xff),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn policy(&self) -> Policy {
        let v = self.policy.load(Ordering::Relaxed);
        Policy::from_raw((v >> 8) as i32, (v & 0xff) as i32)
    }

    pub(crate) fn set_nice(&self, n: i32) {
        self.nice.store(n, Ordering::Relaxed);
    }

    pub(crate) fn nice(&self) -> i32 {
        self.nice.load(Ordering::Relaxed)
    }
}
