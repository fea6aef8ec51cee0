//! Creating, stopping, binding and parking kthreads from C.
//!
//! A `struct task_struct *` is the address of the task's shared state
//! (`Task::as_ptr`). The typed handle, `Kthread<i32>`, of every kthread
//! created from C waits in [`KTHREADS`] until `kthread_stop()` takes it out,
//! or until the kthread ends on its own with no `get_task_struct()`
//! reference held: then it is reaped at its exit (its thread detached, its
//! stack and task freed), as the kernel frees a kthread nobody holds. With
//! a reference held, the handle stays until `put_task_struct()` (or a
//! `kthread_stop()`, which then returns the result).

use crate::layout::CpuMask;
use crate::{bad_ptr, err_ptr, guard, lock, SendPtr};
use kthread_rs::{Builder, Kthread, Task};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

/// A kthread function: `int threadfn(void *data)`. `C-unwind`: a
/// `kthread_exit()` deep inside it unwinds through its frames back to us.
pub(crate) type ThreadFn = unsafe extern "C-unwind" fn(*mut c_void) -> c_int;

/// The unwind payload of `kthread_exit()`: the kthread's result.
struct KthreadExit(c_int);

thread_local! {
    /// Whether this thread is inside a C threadfn, where `kthread_exit()`
    /// can unwind to the catch around it.
    static IN_THREADFN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `NUMA_NO_NODE`.
pub(crate) const NUMA_NO_NODE: c_int = -1;

/// `KTHREAD_NAME_MAX`: room for a formatted name, NUL included.
const NAME_MAX: usize = 256;

/// The `data` argument of a C kthread, kept as the task's data for `kthread_data()`.
pub(crate) struct CData(pub(crate) usize);

/// A kthread created from C.
struct Entry {
    handle: Kthread<i32>,
    /// `get_task_struct()` references held.
    refs: u32,
    /// Its function returned with no stop in progress (its handle is kept
    /// only for a reference holder's `kthread_stop()`).
    ended: bool,
}

/// Handles of the kthreads created from C, by task pointer, until stopped
/// or reaped.
static KTHREADS: Mutex<BTreeMap<usize, Entry>> = Mutex::new(BTreeMap::new());

/// How many reaped addresses [`REAPED`] remembers.
const REAPED_KEPT: usize = 4096;

/// The addresses of the last kthreads reaped at their exit, so that a
/// `kthread_stop()` of one (the kernel's use after free) is a detected
/// `-ESRCH` while the address has not been reused by a new kthread.
struct Reaped {
    order: std::collections::VecDeque<usize>,
    set: std::collections::HashSet<usize>,
}

static REAPED: Mutex<Option<Reaped>> = Mutex::new(None);

fn with_reaped<R>(f: impl FnOnce(&mut Reaped) -> R) -> R {
    let mut r = lock(&REAPED);
    f(r.get_or_insert_with(|| Reaped {
        order: std::collections::VecDeque::new(),
        set: std::collections::HashSet::new(),
    }))
}

fn remember_reaped(p: usize) {
    with_reaped(|r| {
        if r.set.insert(p) {
            r.order.push_back(p);
            if r.order.len() > REAPED_KEPT {
                if let Some(old) = r.order.pop_front() {
                    r.set.remove(&old);
                }
            }
        }
    })
}

/// Forgets `p` as reaped: a new kthread lives at that address.
fn reused(p: usize) {
    with_reaped(|r| {
        if r.set.remove(&p) {
            r.order.retain(|&a| a != p);
        }
    })
}

/// Whether `p` is the address of a kthread reaped at its exit (and not
/// reused since).
fn was_reaped(p: usize) -> bool {
    with_reaped(|r| r.set.contains(&p))
}

thread_local! {
    /// The table guards `fork_prepare` took, released by `fork_release` on
    /// the same (forking) thread, in parent and child.
    static FORK_HELD: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `pthread_atfork` prepare handler: takes the tables' locks (in this
/// order; no code holds one while taking the other), so a fork copies
/// them consistent and a ghost of the parent never holds them in the
/// child. Each is held only for a lookup, an insert or a removal, so a
/// `fork()` waits at most for one of those.
extern "C" fn fork_prepare() {
    let held: [Box<dyn std::any::Any>; 4] = [
        Box::new(lock(&KTHREADS)),
        Box::new(lock(&REAPED)),
        Box::new(crate::worker::lock_table()),
        Box::new(crate::sched::lock_seen()),
    ];
    FORK_HELD.with(|h| h.borrow_mut().extend(held));
}

/// `pthread_atfork` parent and child handler: releases them (the child's
/// copy then lists the parent's kthreads, which answer `-ECHILD`).
extern "C" fn fork_release() {
    FORK_HELD.with(|h| {
        let mut h = h.borrow_mut();
        while let Some(g) = h.pop() {
            drop(g);
        }
    });
}

/// Installs the fork handlers once per process image (children inherit them).
pub(crate) fn install_fork_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `extern "C"` fns without arguments that touch only the
        // tables' locks and a thread-local of the forking thread.
        let rc = unsafe {
            libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_release))
        };
        if rc != 0 {
            crate::warn(format_args!(
                "pthread_atfork: {}: a fork() child may find the kthread table locked",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
    });
}

/// Called on a C kthread's own thread once its function has returned:
/// reaps it if nobody is stopping it and nobody holds a reference.
fn ended_by_itself(p: usize) {
    let mut map = lock(&KTHREADS);
    let Some(e) = map.get_mut(&p) else {
        return; // a kthread_stop() took the handle: it collects the result
    };
    if e.refs > 0 || kthread_rs::should_stop() {
        // Held, or a stop was requested (a kthread_stop(current) that got
        // -EDEADLK): the handle waits for that kthread_stop().
        e.ended = true;
        return;
    }
    let Some(e) = map.remove(&p) else { return };
    drop(map);
    remember_reaped(p);
    // On its own thread: detach (never join ourselves); the task and the
    // result go when the thread's last reference does.
    drop(e.handle.detach());
}

/// `get_task_struct()` on a C kthread: one more reference held.
pub(crate) fn hold(p: usize) {
    if let Some(e) = lock(&KTHREADS).get_mut(&p) {
        e.refs += 1;
    }
}

/// `put_task_struct()` on a C kthread: the last reference to one that
/// ended on its own reaps it.
pub(crate) fn release(p: usize) {
    let mut map = lock(&KTHREADS);
    let Some(e) = map.get_mut(&p) else { return };
    e.refs = e.refs.saturating_sub(1);
    if e.refs > 0 || !e.ended {
        return;
    }
    let Some(e) = map.remove(&p) else { return };
    drop(map);
    remember_reaped(p);
    // Its function has returned: the join is its last instructions.
    drop(e.handle);
}

/// The kthread task at `p`, if it is a live kthread: the caller's own (a
/// kthread may use `current` until it returns, even once a `kthread_stop()`
/// has taken its handle), or one created from C and not yet stopped.
///
/// Found by address, without dereferencing `p`: a stale or foreign task
/// pointer (`current` of `main`, say, which no park would ever answer) is
/// refused instead of used.
pub(crate) fn c_task(p: *const c_void) -> Option<Task> {
    if bad_ptr(p) {
        return None;
    }
    if let Some(me) = kthread_rs::current().filter(|t| t.as_ptr() == p) {
        return Some(me);
    }
    lock(&KTHREADS)
        .get(&(p as usize))
        .map(|e| e.handle.task().clone())
}

/// The name, node and CPU of a kthread or worker from C: `node` is
/// `NUMA_NO_NODE` or a node number, `cpu` negative for "not bound";
/// `Err(errno)` for bad arguments. Shared by `kthread_create*()` and
/// `kthread_create_worker*()`.
///
/// # Safety
/// `name` is NULL, an error pointer, or a NUL-terminated string.
pub(crate) unsafe fn placement(
    name: *const c_char,
    node: c_int,
    cpu: c_int,
) -> Result<(String, Option<usize>, Option<usize>), c_int> {
    if bad_ptr(name) {
        return Err(libc::EINVAL);
    }
    // SAFETY: a NUL-terminated string by the caller's contract.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let node = match node {
        NUMA_NO_NODE => None,
        n if n >= 0 => Some(n as usize),
        _ => return Err(libc::EINVAL),
    };
    Ok((name, node, usize::try_from(cpu).ok()))
}

/// A `Builder` from [`placement`]'s arguments.
///
/// # Safety
/// As for [`placement`].
unsafe fn builder(name: *const c_char, node: c_int, cpu: c_int) -> Result<Builder, c_int> {
    // SAFETY: forwarded caller contract.
    let (name, node, cpu) = unsafe { placement(name, node, cpu) }?;
    let mut b = Builder::new(name);
    if let Some(n) = node {
        b = b.node(n);
    }
    if let Some(c) = cpu {
        b = b.cpu(c);
    }
    Ok(b)
}

/// Creates a stopped kthread running `threadfn(data)`; the task pointer or an error pointer.
///
/// # Safety
/// As for [`kthread_create_on_node_name`].
unsafe fn create(
    threadfn: Option<ThreadFn>,
    data: *mut c_void,
    node: c_int,
    cpu: c_int,
    name: *const c_char,
) -> *mut c_void {
    let Some(threadfn) = threadfn else {
        return err_ptr(libc::EINVAL);
    };
    // SAFETY: forwarded caller contract on `name`.
    let b = match unsafe { builder(name, node, cpu) } {
        Ok(b) => b,
        Err(e) => return err_ptr(e),
    };
    install_fork_handlers();
    let arg = SendPtr(data);
    let created = b.data(CData(data as usize)).create(move || {
        let _reap = ReapOnReturn;
        IN_THREADFN.with(|f| f.set(true));
        // SAFETY: the C caller gave `threadfn` and `data` for this thread.
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| unsafe { threadfn(arg.get()) }));
        IN_THREADFN.with(|f| f.set(false));
        match run {
            Ok(result) => result,
            Err(payload) => match payload.downcast::<KthreadExit>() {
                Ok(exit) => exit.0,
                Err(payload) => std::panic::resume_unwind(payload),
            },
        }
    });
    match created {
        Ok(k) => {
            let p = k.task().as_ptr().cast_mut();
            reused(p as usize);
            lock(&KTHREADS).insert(
                p as usize,
                Entry {
                    handle: k,
                    refs: 0,
                    ended: false,
                },
            );
            p
        }
        Err(e) => err_ptr(e.errno()),
    }
}

/// Reaps a C kthread that ended on its own, when its function's frame
/// goes (a return, `kthread_exit()`, or a panic).
struct ReapOnReturn;

impl Drop for ReapOnReturn {
    fn drop(&mut self) {
        if let Some(me) = kthread_rs::current() {
            ended_by_itself(me.as_ptr() as usize);
        }
    }
}

/// Creates a stopped kthread called `name` (already formatted) on NUMA
/// `node` (`NUMA_NO_NODE` for any); the entry point behind the header's
/// printf-style `kthread_create_on_node()`.
///
/// Returns the task, stopped until `wake_up_process()`, or an error
/// pointer: `-EINVAL` for a NULL `threadfn` or `name`, a node that is not
/// online; `-EAGAIN`/`-ENOMEM` when no thread can be created.
///
/// # Safety
/// `name` is NULL, an error pointer or a NUL-terminated string;
/// `threadfn(data)` may be called on the new thread.
#[no_mangle]
pub unsafe extern "C" fn kthread_create_on_node_name(
    threadfn: Option<ThreadFn>,
    data: *mut c_void,
    node: c_int,
    name: *const c_char,
) -> *mut c_void {
    guard("kthread_create_on_node", err_ptr(libc::EFAULT), || {
        // SAFETY: forwarded caller contract.
        unsafe { create(threadfn, data, node, -1, name) }
    })
}

/// Creates a stopped kthread bound to `cpu`, its name `namefmt` formatted
/// with `cpu` (`kthread_create_on_cpu()`, e.g. `"ksoftirqd/%u"`).
///
/// # Safety
/// `namefmt` is NULL, an error pointer, or a printf format taking at most
/// one `unsigned int`; `threadfn(data)` may be called on the new thread.
#[no_mangle]
pub unsafe extern "C" fn kthread_create_on_cpu(
    threadfn: Option<ThreadFn>,
    data: *mut c_void,
    cpu: c_uint,
    namefmt: *const c_char,
) -> *mut c_void {
    guard("kthread_create_on_cpu", err_ptr(libc::EFAULT), || {
        if bad_ptr(namefmt) {
            return err_ptr(libc::EINVAL);
        }
        let Ok(cpu_i) = c_int::try_from(cpu) else {
            return err_ptr(libc::EINVAL);
        };
        let mut name = [0u8; NAME_MAX];
        // SAFETY: `name` has room for NAME_MAX bytes and snprintf writes at
        // most that, NUL included; the format's contract is the caller's.
        let n = unsafe { libc::snprintf(name.as_mut_ptr().cast(), NAME_MAX, namefmt, cpu) };
        if n < 0 {
            return err_ptr(libc::EINVAL);
        }
        // SAFETY: `name` is NUL-terminated (snprintf always terminates).
        unsafe { create(threadfn, data, NUMA_NO_NODE, cpu_i, name.as_ptr().cast()) }
    })
}

/// Stops `k`: sets should-stop, wakes it, waits for it to end and returns
/// `threadfn`'s result (`kthread_stop()`).
///
/// `-EINTR` if it was never woken (its function never ran); `-EINVAL` for
/// NULL, an error pointer, or a task not created by `kthread_create*()` (or
/// already stopped); `-EDEADLK` from the kthread itself (the stop request
/// stands: it should return, and a later `kthread_stop()` from another
/// thread collects its result); `-EFAULT` if a Rust panic ended it. The task
/// pointer is invalid afterwards. `k` is looked up, never dereferenced, so
/// any pointer is safe to pass.
#[no_mangle]
pub extern "C" fn kthread_stop(k: *mut c_void) -> c_int {
    guard("kthread_stop", -libc::EFAULT, || {
        if bad_ptr(k) {
            return -libc::EINVAL;
        }
        if kthread_rs::current().is_some_and(|me| me.as_ptr() == k.cast_const()) {
            // It would wait for itself. The stop request stands, and the
            // handle stays, so a later kthread_stop() from another thread
            // still joins it and gets its result.
            if let Some(e) = lock(&KTHREADS).get(&(k as usize)) {
                e.handle.request_stop();
            }
            return -libc::EDEADLK;
        }
        let Some(handle) = take(k) else {
            return if was_reaped(k as usize) {
                -libc::ESRCH
            } else {
                -libc::EINVAL
            };
        };
        match handle.stop() {
            Ok(ret) => ret,
            Err(e) => -e.errno(),
        }
    })
}

/// As [`kthread_stop`], waiting at most `timeout` jiffies
/// (`MAX_SCHEDULE_TIMEOUT`: for ever) for `threadfn` to return. On time:
/// `kthread_stop()`'s result. Otherwise `-ETIMEDOUT`: the stop stays
/// requested and `k` stays valid, to be stopped again (with or without a
/// deadline). While this waits, a `kthread_stop()` of `k` from another
/// thread gets `-EINVAL`.
#[no_mangle]
pub extern "C" fn kthread_stop_timeout(k: *mut c_void, timeout: std::ffi::c_long) -> c_int {
    if timeout == std::ffi::c_long::MAX {
        return kthread_stop(k);
    }
    guard("kthread_stop_timeout", -libc::EFAULT, || {
        if bad_ptr(k) {
            return -libc::EINVAL;
        }
        if kthread_rs::current().is_some_and(|me| me.as_ptr() == k.cast_const()) {
            return kthread_stop(k);
        }
        let Some(Entry {
            handle,
            refs,
            ended,
        }) = lock(&KTHREADS).remove(&(k as usize))
        else {
            return if was_reaped(k as usize) {
                -libc::ESRCH
            } else {
                -libc::EINVAL
            };
        };
        let wait = crate::jiffies_to_duration(u64::try_from(timeout).unwrap_or(0));
        match handle.stop_timeout(wait) {
            Ok(ret) => ret,
            Err(kthread_rs::StopTimeoutError::Stopped(e)) => -e.errno(),
            Err(kthread_rs::StopTimeoutError::TimedOut(handle)) => {
                // Back in the table with its references, for the next stop.
                lock(&KTHREADS).insert(
                    k as usize,
                    Entry {
                        handle,
                        refs,
                        ended,
                    },
                );
                -libc::ETIMEDOUT
            }
        }
    })
}

/// Takes `k`'s handle out of the table for a stop.
fn take(k: *mut c_void) -> Option<Kthread<i32>> {
    lock(&KTHREADS).remove(&(k as usize)).map(|e| e.handle)
}

/// [`kthread_stop`], then [`put_task_struct`](crate::sched::put_task_struct)
/// (`kthread_stop_put()`, 6.6+): for a kthread the caller held with
/// `get_task_struct()`.
///
/// # Safety
/// As for `put_task_struct`: the caller holds a `get_task_struct()` reference to `k`.
#[no_mangle]
pub unsafe extern "C" fn kthread_stop_put(k: *mut c_void) -> c_int {
    let ret = kthread_stop(k);
    // SAFETY: the caller's reference, given back once.
    unsafe { crate::sched::put_task_struct(k) };
    ret
}

/// Whether the calling kthread has been asked to stop (`kthread_should_stop()`);
/// `false` on a thread that is not a kthread.
#[no_mangle]
pub extern "C" fn kthread_should_stop() -> bool {
    guard("kthread_should_stop", false, kthread_rs::should_stop)
}

/// The `data` given when `k` was created (`kthread_data()`), for the
/// caller's own kthread (`current`) or one from `kthread_create*()` not yet
/// stopped; NULL for anything else (NULL, an error pointer, `main`'s task).
/// A worker's thread from `kthread_create_worker()` has the worker as data.
#[no_mangle]
pub extern "C" fn kthread_data(k: *mut c_void) -> *mut c_void {
    guard("kthread_data", std::ptr::null_mut(), || {
        let Some(task) = c_task(k) else {
            return std::ptr::null_mut();
        };
        match task.data::<CData>() {
            Some(d) => d.0 as *mut c_void,
            None => crate::worker::worker_of(&task).map_or(std::ptr::null_mut(), |w| w.cast()),
        }
    })
}

/// Binds the not-yet-woken `k` to `cpu` (`kthread_bind()`, which returns
/// `void` in the kernel and `WARN`s instead): 0, `-EBUSY` once woken,
/// `-EINVAL` for a CPU the process may not use, or for a `k` that is not a
/// live kthread from `kthread_create*()`.
#[no_mangle]
pub extern "C" fn kthread_bind(k: *mut c_void, cpu: c_uint) -> c_int {
    guard("kthread_bind", -libc::EFAULT, || match c_task(k) {
        Some(task) => errno_of(task.bind_mask(&[cpu as usize])),
        None => -libc::EINVAL,
    })
}

/// Binds the not-yet-woken `k` to the CPUs in `mask` (`kthread_bind_mask()`);
/// returns as [`kthread_bind`] (`-EINVAL` for an empty mask).
///
/// # Safety
/// `mask` is NULL, an error pointer, or a valid `struct cpumask`.
#[no_mangle]
pub unsafe extern "C" fn kthread_bind_mask(k: *mut c_void, mask: *const CpuMask) -> c_int {
    guard("kthread_bind_mask", -libc::EFAULT, || {
        if !crate::usable(mask, "struct cpumask") {
            return -libc::EINVAL;
        }
        // SAFETY: a valid mask by the caller's contract.
        let cpus = unsafe { &*mask }.cpus();
        match c_task(k) {
            Some(task) => errno_of(task.bind_mask(&cpus)),
            None => -libc::EINVAL,
        }
    })
}

/// Parks `k` and returns once it sits in `kthread_parkme()` (`kthread_park()`):
/// 0, `-EBUSY` if parked or being parked, `-ENOSYS` if it has exited,
/// `-EINVAL` for a `k` that is not a live kthread from `kthread_create*()`
/// (a thread that is not a kthread would never acknowledge the park).
/// Parking a never-woken kthread counts as its first wake: it parks before
/// its function runs.
#[no_mangle]
pub extern "C" fn kthread_park(k: *mut c_void) -> c_int {
    guard("kthread_park", -libc::EFAULT, || match c_task(k) {
        Some(task) => errno_of(task.park()),
        None => -libc::EINVAL,
    })
}

/// Releases a parked `k` (`kthread_unpark()`); nothing for a task that is
/// not parked or not a live kthread from `kthread_create*()`.
#[no_mangle]
pub extern "C" fn kthread_unpark(k: *mut c_void) {
    guard("kthread_unpark", (), || {
        if let Some(task) = c_task(k) {
            task.unpark();
        }
    })
}

/// Whether the calling kthread has been asked to park (`kthread_should_park()`).
#[no_mangle]
pub extern "C" fn kthread_should_park() -> bool {
    guard("kthread_should_park", false, kthread_rs::should_park)
}

/// Parks the calling kthread while a park is requested (`kthread_parkme()`).
#[no_mangle]
pub extern "C" fn kthread_parkme() {
    guard("kthread_parkme", (), kthread_rs::parkme)
}

fn errno_of(r: Result<(), kthread_rs::Error>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    }
}

/// Ends the calling kthread with `result`, which `kthread_stop()` returns,
/// from anywhere in its threadfn's call chain (`kthread_exit()`). It
/// unwinds the C frames between here and the threadfn (they need unwind
/// tables: gcc's and clang's default on x86-64 and aarch64 Linux). Called
/// on a thread that is not a kthread of the C API, it is reported and
/// returns (the kernel's would be a bug there too).
#[no_mangle]
pub extern "C-unwind" fn kthread_exit(result: std::ffi::c_long) {
    let mine = IN_THREADFN.try_with(std::cell::Cell::get).unwrap_or(false);
    if !mine {
        crate::warn(format_args!(
            "kthread_exit({result}) outside a kthread created through kthread.h: ignored"
        ));
        return;
    }
    std::panic::resume_unwind(Box::new(KthreadExit(result as c_int)));
}

/// Completes `comp` (if not NULL), then [`kthread_exit`]s with `code`
/// (`kthread_complete_and_exit()`).
///
/// # Safety
/// `comp` is NULL, an error pointer or a live `struct completion`.
#[no_mangle]
pub unsafe extern "C-unwind" fn kthread_complete_and_exit(
    comp: *mut kthread_rs::Completion,
    code: std::ffi::c_long,
) {
    // SAFETY: the caller's contract, passed on.
    unsafe { crate::completion::complete(comp) };
    kthread_exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::wake_up_process;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C-unwind" fn add_one(data: *mut c_void) -> c_int {
        RUNS.fetch_add(1, Ordering::SeqCst);
        data as usize as c_int + 1
    }

    #[test]
    fn create_wake_stop_returns_the_threadfn_result() {
        let name = b"capi-unit\0";
        // SAFETY: a valid name; add_one accepts any data.
        let k = unsafe {
            kthread_create_on_node_name(Some(add_one), 41 as *mut c_void, -1, name.as_ptr().cast())
        };
        assert!(!bad_ptr(k));
        // SAFETY: `k` is live until kthread_stop; held, since add_one
        // returns by itself and would otherwise be reaped at its exit.
        unsafe {
            crate::sched::get_task_struct(k);
            assert_eq!(kthread_data(k) as usize, 41);
            assert_eq!(wake_up_process(k), 1);
            assert_eq!(kthread_stop_put(k), 42);
            assert_eq!(kthread_stop(k), -libc::EINVAL); // gone
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let name = b"x\0";
        // SAFETY: every pointer is NULL, an error pointer or valid.
        unsafe {
            let p =
                kthread_create_on_node_name(None, std::ptr::null_mut(), -1, name.as_ptr().cast());
            assert_eq!(p as isize, -(libc::EINVAL as isize));
            let p = kthread_create_on_node_name(
                Some(add_one),
                std::ptr::null_mut(),
                -1,
                std::ptr::null(),
            );
            assert_eq!(p as isize, -(libc::EINVAL as isize));
            let p = kthread_create_on_node_name(
                Some(add_one),
                std::ptr::null_mut(),
                -7,
                name.as_ptr().cast(),
            );
            assert_eq!(p as isize, -(libc::EINVAL as isize));
            assert_eq!(kthread_stop(std::ptr::null_mut()), -libc::EINVAL);
            assert_eq!(kthread_park(err_ptr(libc::ENOMEM)), -libc::EINVAL);
            assert!(kthread_data(std::ptr::null_mut()).is_null());
        }
    }
}
