//! `current`, task states, `schedule()`, `schedule_timeout()`, `wake_up_process()`.

use crate::{bad_ptr, duration_to_jiffies, guard, jiffies_to_duration, HZ};
use kthread_rs::{Policy, SleepState, Task, TaskState};
use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::sync::Mutex;
use std::time::Duration;

// The kernel's task-state bits (`include/linux/sched.h`, 6.1).
const TASK_INTERRUPTIBLE: c_uint = 0x0001;
const TASK_UNINTERRUPTIBLE: c_uint = 0x0002;
/// `TASK_NORMAL`: the states a plain wake ends.
pub(crate) const TASK_NORMAL: c_uint = TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE;
const TASK_WAKEKILL: c_uint = 0x0100;
const TASK_NOLOAD: c_uint = 0x0400;
const TASK_FREEZABLE: c_uint = 0x2000;
/// Lockdep's "freezable, and it is fine to hold a lock" mark: a freezable sleep here.
const TASK_FREEZABLE_UNSAFE: c_uint = 0x4000;
/// `__TASK_STOPPED`, `__TASK_TRACED`, `EXIT_DEAD`, `EXIT_ZOMBIE`,
/// `TASK_PARKED`, `TASK_DEAD`, `TASK_WAKING`, `TASK_NEW`,
/// `TASK_RTLOCK_WAIT`, `TASK_FROZEN`: states the scheduler, the signal
/// code or the library itself set, never kernel code that sleeps.
const OWNED: c_uint =
    0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0080 | 0x0200 | 0x0800 | 0x1000 | 0x8000;
/// Every bit the kernel defines (`TASK_STATE_MAX - 1`).
const KNOWN: c_uint = 0xffff;

/// `MAX_SCHEDULE_TIMEOUT`: sleep without a timeout.
const MAX_SCHEDULE_TIMEOUT: c_long = c_long::MAX;

/// Maps a C state to the library's: every bit the kernel defines is
/// honoured. A bit no sleeping kernel code sets (one of [`OWNED`]) or an
/// unknown bit is reported, once per call site, and the sleep becomes an
/// uninterruptible one: never a state that makes `schedule()` return at
/// once and turn a wait loop into a busy loop.
pub(crate) fn task_state(raw: c_uint, site: Site) -> SleepState {
    let odd = raw & (OWNED | !KNOWN);
    if odd != 0 {
        warn_once(site, raw, odd);
    }
    let state = if raw & TASK_INTERRUPTIBLE != 0 {
        TaskState::Interruptible
    } else if raw & TASK_UNINTERRUPTIBLE != 0 {
        if raw & TASK_NOLOAD != 0 {
            TaskState::Idle
        } else if raw & TASK_WAKEKILL != 0 {
            TaskState::Killable
        } else {
            TaskState::Uninterruptible
        }
    } else if raw == 0 {
        TaskState::Running
    } else {
        // Modifiers alone, or odd bits: a sleep nothing but an explicit wake ends.
        TaskState::Uninterruptible
    };
    if raw & (TASK_FREEZABLE | TASK_FREEZABLE_UNSAFE) != 0 {
        state.freezable()
    } else {
        state.into()
    }
}

/// Where a state came from, for the once-per-call-site warning: the
/// header's macros pass `__FILE__` and `__LINE__`; the plain entry points
/// (a call through a function pointer, a caller built against an older
/// header) give none, and are then reported once per state value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    file: usize,
    line: c_int,
}

impl Site {
    pub(crate) const UNKNOWN: Site = Site { file: 0, line: 0 };

    /// The call site a header macro passed (`__FILE__`, `__LINE__`).
    pub(crate) fn at(file: *const c_char, line: c_int) -> Site {
        Site {
            file: file as usize,
            line,
        }
    }
}

/// The call sites already warned about.
static SEEN: Mutex<Vec<(Site, c_uint)>> = Mutex::new(Vec::new());

/// The lock of [`SEEN`], for the fork handlers (`kthread::fork_prepare`).
pub(crate) fn lock_seen() -> std::sync::MutexGuard<'static, Vec<(Site, c_uint)>> {
    crate::lock(&SEEN)
}

fn warn_once(site: Site, raw: c_uint, odd: c_uint) {
    let key = (site, if site == Site::UNKNOWN { raw } else { 0 });
    {
        let mut seen = crate::lock(&SEEN);
        if seen.contains(&key) {
            return;
        }
        seen.push(key);
    }
    let owned = odd & OWNED;
    let what = if owned != 0 {
        format!("bits {owned:#x} are states only the scheduler or the library sets")
    } else {
        format!("bits {:#x} are not a task state", odd & !KNOWN)
    };
    let at = if site.file == 0 {
        String::from("a call without a call site")
    } else {
        // SAFETY: `file` is the `__FILE__` literal the header's macro passed.
        let file = unsafe { CStr::from_ptr(site.file as *const c_char) };
        format!("{}:{}", file.to_string_lossy(), site.line)
    };
    crate::warn(format_args!(
        "set_current_state({raw:#x}) at {at}: {what}; sleeping uninterruptibly instead \
         (reported once for this call site)"
    ));
}

/// `set_current_state()` as the header's macro calls it, with its call site.
///
/// # Safety
/// `file` is NULL or a NUL-terminated string that lives for ever (`__FILE__`).
#[no_mangle]
pub unsafe extern "C" fn kthread_set_current_state_at(
    state: c_uint,
    file: *const c_char,
    line: c_int,
) {
    guard("set_current_state", (), || {
        kthread_rs::set_current_state(task_state(state, Site::at(file, line)))
    })
}

/// The calling thread's task (`current`); a thread that is not a kthread
/// is given one on first use, valid for the thread's life.
#[no_mangle]
pub extern "C" fn get_current() -> *mut c_void {
    guard("get_current", std::ptr::null_mut(), || {
        Task::current().as_ptr().cast_mut()
    })
}

/// Publishes the caller's state before it checks its wake-up condition
/// (`set_current_state()`, for callers that do not use the header's macro).
#[no_mangle]
pub extern "C" fn set_current_state(state: c_uint) {
    guard("set_current_state", (), || {
        kthread_rs::set_current_state(task_state(state, Site::UNKNOWN))
    })
}

/// As [`set_current_state`] (`__set_current_state()`: the kernel's form
/// without a barrier; here the same, always ordered, operation).
#[no_mangle]
pub extern "C" fn __set_current_state(state: c_uint) {
    set_current_state(state)
}

/// Sleeps until woken unless already woken since `set_current_state()` (`schedule()`).
#[no_mangle]
pub extern "C" fn schedule() {
    guard("schedule", (), kthread_rs::schedule)
}

/// Sleeps at most `timeout` jiffies; returns the jiffies left, 0 on
/// timeout (`schedule_timeout()`).
///
/// `MAX_SCHEDULE_TIMEOUT` sleeps until woken and returns it; a negative
/// timeout sets `TASK_RUNNING` and returns 0 at once (the kernel logs it).
#[no_mangle]
pub extern "C" fn schedule_timeout(timeout: c_long) -> c_long {
    guard("schedule_timeout", 0, || {
        if timeout == MAX_SCHEDULE_TIMEOUT {
            kthread_rs::schedule();
            return MAX_SCHEDULE_TIMEOUT;
        }
        if timeout < 0 {
            crate::warn(format_args!(
                "schedule_timeout: wrong timeout value {timeout:#x}"
            ));
            kthread_rs::set_current_state(TaskState::Running);
            return 0;
        }
        let left = kthread_rs::schedule_timeout(jiffies_to_duration(timeout as u64));
        c_long::try_from(duration_to_jiffies(left)).unwrap_or(c_long::MAX)
    })
}

/// Wakes `p` if it sleeps in `TASK_INTERRUPTIBLE` or `TASK_UNINTERRUPTIBLE`
/// (`wake_up_process()`): 1 if it was woken, 0 if it was running; the first
/// wake of a kthread starts its function. `-EINVAL` for NULL or an error pointer.
///
/// # Safety
/// `p` is NULL, an error pointer, or a live task: one returned by
/// `kthread_create*()` and not yet stopped, or `current` of a running thread.
#[no_mangle]
pub unsafe extern "C" fn wake_up_process(p: *mut c_void) -> c_int {
    guard("wake_up_process", -libc::EINVAL, || {
        if bad_ptr(p) {
            return -libc::EINVAL;
        }
        // SAFETY: a live task by the caller's contract.
        let task = unsafe { Task::from_ptr(p) };
        c_int::from(task.wake_up())
    })
}

/// `jiffies`: the monotonic clock in jiffies since boot, offset by the
/// kernel's `INITIAL_JIFFIES` (so it starts 5 minutes before a 32-bit wrap,
/// as the kernel's does, and wrap-safe comparisons are needed as there).
#[no_mangle]
pub extern "C" fn kthread_jiffies() -> std::ffi::c_ulong {
    const INITIAL_JIFFIES: u64 = (-300i64 * HZ as i64) as u32 as u64;
    guard("jiffies", 0, || {
        let since_boot = kthread_rs::task::uptime();
        let j = INITIAL_JIFFIES.wrapping_add(duration_to_jiffies_floor(since_boot));
        j as std::ffi::c_ulong
    })
}

fn duration_to_jiffies_floor(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(HZ) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// Sleeps at least `min` microseconds, uninterruptibly: a wake does not
/// end it early (`usleep_range()`; `max` is the slack the kernel may add,
/// here unused: the sleep ends at `min`).
#[no_mangle]
pub extern "C" fn usleep_range(min: std::ffi::c_ulong, max: std::ffi::c_ulong) {
    guard("usleep_range", (), || {
        let _ = max;
        kthread_rs::task::sleep_for(Duration::from_micros(min), TaskState::Uninterruptible);
    })
}

/// Sleeps `msecs` milliseconds interruptibly; returns the milliseconds
/// left when a signal ended the sleep early (`msleep_interruptible()`). A
/// `wake_up_process()` does not end it.
#[no_mangle]
pub extern "C" fn msleep_interruptible(msecs: c_uint) -> std::ffi::c_ulong {
    guard("msleep_interruptible", 0, || {
        let left = kthread_rs::task::sleep_for(
            jiffies_to_duration(u64::from(msecs).div_ceil(1000 / HZ) + 1),
            TaskState::Interruptible,
        );
        // The kernel's `jiffies_to_msecs()` of the jiffies left.
        duration_to_jiffies(left) * (1000 / HZ)
    })
}

/// Copies `tsk->comm` (NUL-terminated, cut to fit) into `buf` of `len`
/// bytes and returns `buf` (`get_task_comm()` / `__get_task_comm()`).
///
/// # Safety
/// `buf` has room for `len` bytes; `tsk` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn __get_task_comm(
    buf: *mut c_char,
    len: usize,
    tsk: *mut c_void,
) -> *mut c_char {
    guard("get_task_comm", buf, || {
        if buf.is_null() || len == 0 {
            return buf;
        }
        let n = if bad_ptr(tsk) {
            0
        } else {
            // SAFETY: a live task by the caller's contract.
            let t = unsafe { Task::from_ptr(tsk) };
            let comm = t.comm();
            let n = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
            let n = n.min(len - 1);
            // SAFETY: `buf` has room for `len > n` bytes.
            unsafe { std::ptr::copy_nonoverlapping(comm.as_ptr().cast(), buf, n) };
            n
        };
        // SAFETY: `n < len`.
        unsafe { *buf.add(n) = 0 };
        buf
    })
}

/// Takes a reference to `tsk`, which then stays valid (its fields
/// readable, `wake_up_process()` harmless) after it ends, until
/// [`put_task_struct`] (`get_task_struct()`). Returns `tsk`.
///
/// # Safety
/// `tsk` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn get_task_struct(tsk: *mut c_void) -> *mut c_void {
    guard("get_task_struct", tsk, || {
        if !bad_ptr(tsk) {
            // SAFETY: a live task by the caller's contract; the reference
            // taken here is given back by `put_task_struct`.
            let _ = unsafe { Task::from_ptr(tsk) }.into_raw();
            crate::kthread::hold(tsk as usize);
        }
        tsk
    })
}

/// Drops a reference taken by [`get_task_struct`] (`put_task_struct()`).
///
/// # Safety
/// `tsk` is NULL, an error pointer, or a task the caller holds a
/// `get_task_struct()` reference to, which this call gives back.
#[no_mangle]
pub unsafe extern "C" fn put_task_struct(tsk: *mut c_void) {
    guard("put_task_struct", (), || {
        if !bad_ptr(tsk) {
            // A C kthread that ended on its own goes with its last reference.
            crate::kthread::release(tsk as usize);
            // SAFETY: the caller's reference from `get_task_struct`, given
            // back here once.
            drop(unsafe { Task::from_raw(tsk) });
        }
    })
}

/// Whether `p` should freeze now: the system is freezing and `p` is
/// freezable (`freezing(p)`); `false` for NULL or an error pointer.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn kthread_freezing(p: *mut c_void) -> bool {
    guard("freezing", false, || {
        if bad_ptr(p) {
            return false;
        }
        // SAFETY: a live task by the caller's contract.
        let t = unsafe { Task::from_ptr(p) };
        t.is_freezable() && kthread_rs::freezer::freezing()
    })
}

/// `MAX_RT_PRIO / 2`: the priority `sched_set_fifo()` gives.
const FIFO_DEFAULT: u8 = 50;

/// Runs `f` on the task behind `p`, or reports a bad pointer (`what`).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
unsafe fn with_task<R>(p: *mut c_void, what: &str, bad: R, f: impl FnOnce(&Task) -> R) -> R {
    if bad_ptr(p) {
        crate::warn(format_args!("{what}: NULL or error pointer"));
        return bad;
    }
    // SAFETY: a live task by the caller's contract.
    f(&unsafe { Task::from_ptr(p) })
}

/// The kernel's WARN for a scheduling call that returns nothing.
fn warn_failed(what: &str, r: Result<(), kthread_rs::Error>) {
    if let Err(e) = r {
        crate::warn(format_args!("{what}: {e}"));
    }
}

/// Sets `p` to `SCHED_FIFO` at priority 50 (`sched_set_fifo()`, 5.9+: void;
/// a failure, such as no `CAP_SYS_NICE`, is reported on stderr as the
/// kernel WARNs). Use `kthread_sched_setscheduler()` to get the error.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn sched_set_fifo(p: *mut c_void) {
    guard("sched_set_fifo", (), || {
        // SAFETY: the caller's contract.
        unsafe {
            with_task(p, "sched_set_fifo", (), |t| {
                warn_failed("sched_set_fifo", t.set_policy(Policy::Fifo(FIFO_DEFAULT)))
            })
        }
    })
}

/// Sets `p` to `SCHED_FIFO` at priority 1 (`sched_set_fifo_low()`).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn sched_set_fifo_low(p: *mut c_void) {
    guard("sched_set_fifo_low", (), || {
        // SAFETY: the caller's contract.
        unsafe {
            with_task(p, "sched_set_fifo_low", (), |t| {
                warn_failed("sched_set_fifo_low", t.set_policy(Policy::Fifo(1)))
            })
        }
    })
}

/// Sets `p` to `SCHED_NORMAL` at `nice` (`sched_set_normal()`).
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn sched_set_normal(p: *mut c_void, nice: c_int) {
    guard("sched_set_normal", (), || {
        // SAFETY: the caller's contract.
        unsafe {
            with_task(p, "sched_set_normal", (), |t| {
                warn_failed(
                    "sched_set_normal",
                    t.set_policy(Policy::Normal).and_then(|()| t.set_nice(nice)),
                )
            })
        }
    })
}

/// Sets `p`'s nice value (`set_user_nice()`): a value outside
/// `MIN_NICE..=MAX_NICE` is ignored, as in the kernel; a refused one
/// (lowering it without `CAP_SYS_NICE`) is reported on stderr.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn set_user_nice(p: *mut c_void, nice: std::ffi::c_long) {
    guard("set_user_nice", (), || {
        let Ok(nice) = i32::try_from(nice) else {
            return;
        };
        if !(kthread_rs::task::MIN_NICE..=kthread_rs::task::MAX_NICE).contains(&nice) {
            return;
        }
        // SAFETY: the caller's contract.
        unsafe {
            with_task(p, "set_user_nice", (), |t| {
                warn_failed("set_user_nice", t.set_nice(nice))
            })
        }
    })
}

/// `p`'s nice value (`task_nice()`); 0 for a bad pointer.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn task_nice(p: *mut c_void) -> c_int {
    guard("task_nice", 0, || {
        // SAFETY: the caller's contract.
        unsafe { with_task(p, "task_nice", 0, Task::nice) }
    })
}

/// Sets `p`'s policy (`SCHED_OTHER` 0, `SCHED_FIFO` 1, `SCHED_RR` 2,
/// `SCHED_BATCH` 3, `SCHED_IDLE` 5) and static priority (1..=99 for the
/// real-time ones, 0 otherwise); 0 or a negative errno: `-EINVAL` for a bad
/// pointer, policy or priority, `-EPERM` when the process may not, `-ESRCH`
/// once `p`'s function has returned. The error-returning form of
/// `sched_set_fifo()` and friends, which return nothing since 5.9.
///
/// # Safety
/// `p` is NULL, an error pointer or a live task.
#[no_mangle]
pub unsafe extern "C" fn kthread_sched_setscheduler(
    p: *mut c_void,
    policy: c_int,
    priority: c_int,
) -> c_int {
    guard("kthread_sched_setscheduler", -libc::EFAULT, || {
        let rt = u8::try_from(priority).unwrap_or(0);
        let policy = match (policy, priority) {
            (libc::SCHED_OTHER, 0) => Policy::Normal,
            (libc::SCHED_BATCH, 0) => Policy::Batch,
            (libc::SCHED_IDLE, 0) => Policy::Idle,
            (libc::SCHED_FIFO, _) if rt > 0 && i32::from(rt) == priority => Policy::Fifo(rt),
            (libc::SCHED_RR, _) if rt > 0 && i32::from(rt) == priority => Policy::RoundRobin(rt),
            _ => return -libc::EINVAL,
        };
        // SAFETY: the caller's contract.
        unsafe {
            with_task(
                p,
                "kthread_sched_setscheduler",
                -libc::EINVAL,
                |t| match t.set_policy(policy) {
                    Ok(()) => 0,
                    Err(kthread_rs::Error::Exited) => -libc::ESRCH,
                    Err(e) => -e.errno(),
                },
            )
        }
    })
}
