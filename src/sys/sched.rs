//! CPU affinity, scheduling policy and nice value of one thread.

use super::{cvt, cvt_long};
use std::io;

/// The largest CPU number a `cpu_set_t` can hold, plus one.
pub(crate) const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

/// A set of CPU numbers below [`MAX_CPUS`].
#[derive(Clone, Copy)]
pub(crate) struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The empty set.
    pub(crate) fn empty() -> CpuSet {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        CpuSet(unsafe { std::mem::zeroed() })
    }

    /// Every CPU number there can be; the kernel narrows it to what the
    /// thread may use (cpuset, online CPUs) when it is applied.
    pub(crate) fn all() -> CpuSet {
        let mut s = Self::empty();
        for cpu in 0..MAX_CPUS {
            s.insert(cpu);
        }
        s
    }

    /// Adds `cpu`, which must be below [`MAX_CPUS`].
    pub(crate) fn insert(&mut self, cpu: usize) {
        debug_assert!(cpu < MAX_CPUS);
        // SAFETY: `cpu` is below CPU_SETSIZE, so CPU_SET stays inside the array.
        unsafe { libc::CPU_SET(cpu, &mut self.0) }
    }

    /// Whether `cpu` is in the set.
    pub(crate) fn contains(&self, cpu: usize) -> bool {
        // SAFETY: CPU_ISSET reads only inside the array for cpu < CPU_SETSIZE.
        cpu < MAX_CPUS && unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// The CPU numbers in ascending order.
    pub(crate) fn to_vec(self) -> Vec<usize> {
        (0..MAX_CPUS).filter(|&c| self.contains(c)).collect()
    }

    /// A set from a list of CPU numbers, or the first one out of range.
    pub(crate) fn from_cpus(cpus: &[usize]) -> Result<CpuSet, usize> {
        let mut s = Self::empty();
        for &c in cpus {
            if c >= MAX_CPUS {
                return Err(c);
            }
            s.insert(c);
        }
        Ok(s)
    }
}

impl std::fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.to_vec()).finish()
    }
}

/// Sets the affinity of thread `tid` (0 = the caller).
pub(crate) fn set_affinity(tid: libc::pid_t, set: &CpuSet) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    super::fault::check(super::fault::Point::Affinity)?;
    // SAFETY: `set.0` is a valid cpu_set_t of the size passed.
    cvt(unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set.0) })
        .map(drop)
}

/// The affinity of thread `tid` (0 = the caller).
pub(crate) fn affinity(tid: libc::pid_t) -> io::Result<CpuSet> {
    let mut s = CpuSet::empty();
    // SAFETY: `s.0` is a writable cpu_set_t of the size passed.
    cvt(unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut s.0) })?;
    Ok(s)
}

/// Puts thread `tid` (0 = the caller) in `SCHED_OTHER` at priority 0.
pub(crate) fn set_policy_normal(tid: libc::pid_t) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    cvt(unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) }).map(drop)
}

/// Sets the scheduling policy of thread `tid` (0 = the caller) with its
/// static priority (`sched_setscheduler`; 0 for the non-real-time ones).
pub(crate) fn set_scheduler(tid: libc::pid_t, policy: i32, priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    cvt(unsafe { libc::sched_setscheduler(tid, policy, &param) }).map(drop)
}

/// The scheduling policy (without `SCHED_RESET_ON_FORK`) and static
/// priority of thread `tid` (0 = the caller).
pub(crate) fn scheduler(tid: libc::pid_t) -> io::Result<(i32, i32)> {
    // SAFETY: plain integer argument.
    let policy = cvt(unsafe { libc::sched_getscheduler(tid) })?;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, writable sched_param.
    cvt(unsafe { libc::sched_getparam(tid, &mut param) })?;
    Ok((policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority))
}

/// Sets the nice value of thread `tid` (0 = the caller); Linux keeps it per thread.
pub(crate) fn set_nice(tid: libc::pid_t, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) }).map(drop)
}

/// The nice value of thread `tid` (0 = the caller).
pub(crate) fn nice(tid: libc::pid_t) -> io::Result<i32> {
    // getpriority can legitimately return -1, so errno must be cleared and checked.
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getpriority takes plain integers.
    let ret = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if ret == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(0) {
            return Err(err);
        }
    }
    Ok(ret)
}

/// The caller's kernel thread id.
pub(crate) fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    match cvt_long(tid) {
        Ok(t) => t as libc::pid_t,
        Err(e) => crate::error::fatal(&format!("gettid failed: {e}")),
    }
}
