//! `struct kthread_worker`, `struct kthread_work`, `struct kthread_delayed_work`.
//!
//! These are the raw layer's `RawWorker`, `RawWork` and `RawDelayedWork`
//! in C memory (see `layout.rs`), and every call forwards to
//! `kthread::worker::raw`. A caller-owned worker runs on any kthread whose
//! function is `kthread_worker_fn`. `kthread_create_worker()` is
//! `WorkerBuilder::create`: the `Worker` waits in [`WORKERS`], keyed by
//! its raw worker's address, for `kthread_destroy_worker()`, which is
//! `Worker::destroy`.
//!
//! The queue contract is the kernel's: a queued work must stay valid and
//! unmoved until it has run or been cancelled, and a worker must outlive the
//! works queued on it (flush or cancel them before freeing it).

use crate::kthread::{placement, NUMA_NO_NODE};
use crate::{bad_ptr, err_ptr, guard, jiffies_to_duration, lock, usable, warn};
use kthread_rs::worker::raw::{self, RawDelayedWork, RawWork, RawWorker, WorkFn, KTW_FREEZABLE};
use kthread_rs::{Task, Worker};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::sync::Mutex;

/// The workers made by `kthread_create_worker()`, by raw worker address.
static WORKERS: Mutex<BTreeMap<usize, Worker>> = Mutex::new(BTreeMap::new());

/// The table's lock, for the fork handlers (`kthread::fork_prepare`).
pub(crate) fn lock_table() -> std::sync::MutexGuard<'static, BTreeMap<usize, Worker>> {
    lock(&WORKERS)
}

/// The raw worker run by `task`, if it is the thread of a worker from
/// `kthread_create_worker()` (what `kthread_data()` gives for it).
pub(crate) fn worker_of(task: &Task) -> Option<*mut RawWorker> {
    let workers = lock(&WORKERS);
    let (addr, _) = workers.iter().find(|(_, w)| w.task() == task)?;
    Some(*addr as *mut RawWorker)
}

/// The worker at `w`, or `None` for NULL, an error pointer or a misaligned one.
///
/// # Safety
/// `w` is NULL, an error pointer, or a valid worker that outlives `'a`.
unsafe fn worker<'a>(w: *mut RawWorker) -> Option<&'a RawWorker> {
    if !usable(w, "struct kthread_worker") {
        return None;
    }
    // SAFETY: valid by the caller's contract; a RawWorker is shared by design.
    Some(unsafe { &*w })
}

/// The work at `w`, or `None` for NULL, an error pointer or a misaligned one.
///
/// # Safety
/// `w` is NULL, an error pointer, or a valid work that outlives `'a`.
unsafe fn work<'a, T>(w: *mut T) -> Option<&'a T> {
    if !usable(w, "struct kthread_work") {
        return None;
    }
    // SAFETY: valid by the caller's contract; works are shared by design.
    Some(unsafe { &*w })
}

/// Makes `worker` an empty worker with no thread (`kthread_init_worker()`).
/// All-zero memory (`DEFINE_KTHREAD_WORKER`) is the same.
///
/// # Safety
/// `worker` is NULL, an error pointer, or writable memory for a `struct
/// kthread_worker` that is not in use.
#[no_mangle]
pub unsafe extern "C" fn kthread_init_worker(worker: *mut RawWorker) {
    guard("kthread_init_worker", (), || {
        if usable(worker, "struct kthread_worker") {
            // SAFETY: writable and unused by the caller's contract; a
            // RawWorker owns nothing that needs dropping.
            unsafe { worker.write(RawWorker::new(0)) }
        }
    })
}

/// Runs the worker loop over `worker_ptr` (a `struct kthread_worker *`) until
/// the kthread is stopped (`kthread_worker_fn()`); a kthread function:
/// `kthread_run(kthread_worker_fn, &worker, "name")`.
///
/// Returns 0 when stopped, `-EBUSY` if another thread already serves the
/// worker, `-EINVAL` for NULL, an error pointer or a misaligned worker.
/// Stopping the thread
/// directly abandons what is still queued, as in the kernel: flush first.
///
/// # Safety
/// `worker_ptr` is NULL, an error pointer, or a worker that outlives the loop.
#[no_mangle]
pub unsafe extern "C" fn kthread_worker_fn(worker_ptr: *mut c_void) -> c_int {
    guard("kthread_worker_fn", -libc::EFAULT, || {
        // SAFETY: forwarded caller contract.
        match unsafe { worker(worker_ptr.cast()) } {
            Some(w) => raw::worker_fn(w),
            None => -libc::EINVAL,
        }
    })
}

/// Allocates a worker and runs it on a new kthread called `name` (already
/// formatted); the entry point behind the header's printf-style
/// `kthread_create_worker()` family.
///
/// `flags` may hold `KTW_FREEZABLE`; `node` is a NUMA node or
/// `NUMA_NO_NODE`; `cpu` binds the thread to that CPU, or is negative.
/// Returns the worker, running (Linux 6.1–6.13's `kthread_create_worker()`),
/// or an error pointer: `-EINVAL` for unknown flags, a NULL name, a bad node
/// or CPU; `-EAGAIN`/`-ENOMEM` when no thread can be created.
///
/// # Safety
/// `name` is NULL, an error pointer, or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kthread_create_worker_name(
    flags: c_uint,
    node: c_int,
    cpu: c_int,
    name: *const c_char,
) -> *mut RawWorker {
    guard("kthread_create_worker", err_ptr(libc::EFAULT), || {
        if flags & !KTW_FREEZABLE != 0 || (node < 0 && node != NUMA_NO_NODE) {
            return err_ptr(libc::EINVAL);
        }
        // SAFETY: forwarded caller contract on `name`.
        let (name, node, cpu) = match unsafe { placement(name, node, cpu) } {
            Ok(p) => p,
            Err(e) => return err_ptr(e),
        };
        let mut b = Worker::builder(&name).freezable(flags & KTW_FREEZABLE != 0);
        if let Some(n) = node {
            b = b.node(n);
        }
        if let Some(c) = cpu {
            b = b.cpu(c);
        }
        match b.create() {
            Ok(w) => {
                let core = w.as_raw() as *const RawWorker as *mut RawWorker;
                crate::kthread::install_fork_handlers();
                lock(&WORKERS).insert(core as usize, w);
                core
            }
            Err(e) => err_ptr(e.errno()),
        }
    })
}

/// Cancels armed delayed works, runs everything queued, stops the thread
/// and frees a worker from `kthread_create_worker()` (`kthread_destroy_worker()`).
///
/// Nothing for NULL or an error pointer. A caller-owned worker (one run
/// with `kthread_run(kthread_worker_fn, ...)`) is not freed here: flush it
/// and `kthread_stop()` its thread instead; passing one only `WARN`s on
/// stderr. Called from the worker's own thread it would wait for itself: it
/// `WARN`s and does nothing.
///
/// # Safety
/// `worker` is NULL, an error pointer, or a worker from
/// `kthread_create_worker()` not yet destroyed; no work is queued on it
/// (or flushed, or cancelled through it) afterwards.
#[no_mangle]
pub unsafe extern "C" fn kthread_destroy_worker(worker: *mut RawWorker) {
    guard("kthread_destroy_worker", (), || {
        if bad_ptr(worker) {
            return;
        }
        let taken = {
            let mut workers = lock(&WORKERS);
            let Some(w) = workers.get(&(worker as usize)) else {
                warn(format_args!(
                    "kthread_destroy_worker({worker:p}): not a worker from kthread_create_worker()"
                ));
                return;
            };
            if kthread_rs::current().as_ref() == Some(w.task()) {
                warn(format_args!(
                    "kthread_destroy_worker({worker:p}) from its own thread: would deadlock"
                ));
                return;
            }
            workers.remove(&(worker as usize))
        };
        // Outside the table's lock: destroying runs every queued item, and
        // an item may create or destroy other workers.
        if let Some(w) = taken {
            w.destroy();
        }
    })
}

/// Makes `work` an idle work item that runs `func` (`kthread_init_work()`).
///
/// # Safety
/// `work` is NULL, an error pointer, or writable memory for a `struct
/// kthread_work` that is not queued.
#[no_mangle]
pub unsafe extern "C" fn kthread_init_work(work: *mut RawWork, func: Option<WorkFn>) {
    guard("kthread_init_work", (), || {
        if usable(work, "struct kthread_work") {
            // SAFETY: writable and not queued by the caller's contract.
            unsafe { work.write(RawWork::new(func)) }
        }
    })
}

/// Makes `dwork` an idle delayed work item that runs `func`
/// (`kthread_init_delayed_work()`).
///
/// # Safety
/// `dwork` is NULL, an error pointer, or writable memory for a `struct
/// kthread_delayed_work` that is not queued.
#[no_mangle]
pub unsafe extern "C" fn kthread_init_delayed_work(
    dwork: *mut RawDelayedWork,
    func: Option<WorkFn>,
) {
    guard("kthread_init_delayed_work", (), || {
        if usable(dwork, "struct kthread_delayed_work") {
            // SAFETY: writable and not queued by the caller's contract.
            unsafe { dwork.write(RawDelayedWork::new(func)) }
        }
    })
}

/// Queues `work` on `worker` (`kthread_queue_work()`): `true` if queued,
/// `false` if it was already pending (it then runs once), being cancelled,
/// busy on another worker, or a pointer is NULL or an error pointer.
///
/// # Safety
/// The raw layer's queue contract (module docs), for non-NULL pointers.
#[no_mangle]
pub unsafe extern "C" fn kthread_queue_work(worker: *mut RawWorker, work: *mut RawWork) -> bool {
    guard("kthread_queue_work", false, || {
        // SAFETY: forwarded caller contract.
        match unsafe { (self::worker(worker), self::work(work)) } {
            // SAFETY: the queue contract is the caller's.
            (Some(w), Some(k)) => unsafe { raw::queue(w, k) },
            _ => false,
        }
    })
}

/// Queues `dwork` on `worker` to run after `delay` jiffies
/// (`kthread_queue_delayed_work()`); 0 queues it at once. Returns as
/// [`kthread_queue_work`].
///
/// # Safety
/// The raw layer's queue contract (module docs), for non-NULL pointers.
#[no_mangle]
pub unsafe extern "C" fn kthread_queue_delayed_work(
    worker: *mut RawWorker,
    dwork: *mut RawDelayedWork,
    delay: c_ulong,
) -> bool {
    guard("kthread_queue_delayed_work", false, || {
        // SAFETY: forwarded caller contract.
        match unsafe { (self::worker(worker), self::work(dwork)) } {
            // SAFETY: the queue contract is the caller's.
            (Some(w), Some(d)) => unsafe { raw::queue_delayed(w, d, jiffies_to_duration(delay)) },
            _ => false,
        }
    })
}

/// Re-arms `dwork` to run `delay` jiffies from now, or arms it if idle
/// (`kthread_mod_delayed_work()`): `false` if it was idle and is now
/// queued, `true` if it was pending and its timer moved (or a concurrent
/// cancel won). `false` for NULL or error pointers.
///
/// # Safety
/// The raw layer's queue contract (module docs), for non-NULL pointers.
#[no_mangle]
pub unsafe extern "C" fn kthread_mod_delayed_work(
    worker: *mut RawWorker,
    dwork: *mut RawDelayedWork,
    delay: c_ulong,
) -> bool {
    guard("kthread_mod_delayed_work", false, || {
        // SAFETY: forwarded caller contract.
        match unsafe { (self::worker(worker), self::work(dwork)) } {
            // SAFETY: the queue contract is the caller's.
            (Some(w), Some(d)) => unsafe { raw::mod_delayed(w, d, jiffies_to_duration(delay)) },
            _ => false,
        }
    })
}

/// Waits for the instance of `work` queued or running now (`kthread_flush_work()`);
/// an armed delayed work runs at once. Nothing for an idle work, NULL or an
/// error pointer; from the work's own worker it would wait for itself: it
/// `WARN`s and returns.
///
/// # Safety
/// `work` is NULL, an error pointer, or a valid work whose last worker
/// still exists.
#[no_mangle]
pub unsafe extern "C" fn kthread_flush_work(work: *mut RawWork) {
    guard("kthread_flush_work", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(w) = unsafe { self::work(work) } {
            // SAFETY: its last worker exists by the caller's contract.
            if let Err(e) = unsafe { raw::flush_work(w) } {
                warn(format_args!("kthread_flush_work({work:p}): {e}"));
            }
        }
    })
}

/// Waits until everything queued on `worker` before the call has run
/// (`kthread_flush_worker()`). Nothing for NULL or an error pointer; from
/// one of the worker's own items it would wait for itself: it `WARN`s and
/// returns. A worker with no thread yet waits for one, as in the kernel.
///
/// # Safety
/// `worker` is NULL, an error pointer, or a valid worker.
#[no_mangle]
pub unsafe extern "C" fn kthread_flush_worker(worker: *mut RawWorker) {
    guard("kthread_flush_worker", (), || {
        // SAFETY: forwarded caller contract.
        if let Some(w) = unsafe { self::worker(worker) } {
            if let Err(e) = raw::flush_worker(w) {
                warn(format_args!("kthread_flush_worker({worker:p}): {e}"));
            }
        }
    })
}

/// Cancels a pending `work` and waits for a running one
/// (`kthread_cancel_work_sync()`): whether it was pending. `false` for
/// NULL or an error pointer.
///
/// # Safety
/// `work` is NULL, an error pointer, or a valid work whose last worker
/// still exists.
#[no_mangle]
pub unsafe extern "C" fn kthread_cancel_work_sync(work: *mut RawWork) -> bool {
    guard("kthread_cancel_work_sync", false, || {
        // SAFETY: forwarded caller contract (twice).
        unsafe { self::work(work) }.is_some_and(|w| unsafe { raw::cancel_sync(w) })
    })
}

/// Disarms or dequeues `dwork` and waits for a running instance
/// (`kthread_cancel_delayed_work_sync()`): whether it was pending.
///
/// # Safety
/// As for [`kthread_cancel_work_sync`].
#[no_mangle]
pub unsafe extern "C" fn kthread_cancel_delayed_work_sync(dwork: *mut RawDelayedWork) -> bool {
    guard("kthread_cancel_delayed_work_sync", false, || {
        // SAFETY: forwarded caller contract (twice).
        unsafe { self::work(dwork) }.is_some_and(|d| unsafe { raw::cancel_sync(&d.work) })
    })
}
