//! Queueing from a signal handler (the user-space analogue of queueing from
//! an interrupt, which the kernel allows) never deadlocks.
//!
//! A "storm" thread sends `SIGUSR1` to a victim thread thousands of times a
//! second; the handler queues an item on a worker. The victim meanwhile
//! keeps the worker's lock busy: `Worker::flush`, `queue_delayed` and
//! `mod_delayed` on the same worker all take it, and the worker is idle
//! between them, so a handler's queue has to wake it. A queue that takes
//! the worker lock to wake the worker deadlocks here within milliseconds
//! (the handler spins on a lock its own thread holds). Every queue that
//! returned `true` must run exactly once.

mod common;

use kthread::worker::raw::{self, RawWork, RawWorker};
use kthread::{DelayedWork, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What the handler reaches: set once before the handler is installed.
struct Target {
    worker: Worker,
    work: Work,
    raw_worker: Arc<RawWorker>,
    raw_work: &'static RawWork,
}

static TARGET: OnceLock<Target> = OnceLock::new();
static QUEUED: AtomicU64 = AtomicU64::new(0);
static RAW_QUEUED: AtomicU64 = AtomicU64::new(0);
static RAN: AtomicU64 = AtomicU64::new(0);
static RAW_RAN: AtomicU64 = AtomicU64::new(0);
static HANDLED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn raw_fn(_: *mut RawWork) {
    RAW_RAN.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls: an atomic load (OnceLock::get) and the
    // two queue calls under test.
    let Some(t) = TARGET.get() else { return };
    if t.worker.queue(&t.work) {
        QUEUED.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: the raw item and worker live for the rest of the process
    // (leaked / held by TARGET), and the item is queued only on this worker.
    if unsafe { raw::queue(&t.raw_worker, t.raw_work) } {
        RAW_QUEUED.fetch_add(1, Ordering::Relaxed);
    }
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    // SAFETY: a plain sigaction with a handler that is async-signal-safe;
    // SA_RESTART keeps the victim's own system calls going.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigemptyset(&mut sa.sa_mask), 0);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

#[test]
fn queue_from_a_signal_handler_never_deadlocks_with_the_interrupted_thread() {
    let _wd = common::watchdog(
        "queue_from_a_signal_handler_never_deadlocks_with_the_interrupted_thread",
        common::WATCHDOG,
    );
    let worker = Worker::new("sigq").expect("create worker");
    let work = Work::new(|| {
        RAN.fetch_add(1, Ordering::Relaxed);
    });
    let raw_worker = Arc::new(RawWorker::new(0));
    let rw = raw_worker.clone();
    let raw_thread = kthread::run("sigq-raw", move || raw::worker_fn(&rw)).expect("raw worker");
    let raw_work: &'static RawWork = Box::leak(Box::new(RawWork::new(Some(raw_fn))));
    assert!(TARGET
        .set(Target {
            worker,
            work,
            raw_worker: raw_worker.clone(),
            raw_work,
        })
        .is_ok());
    let worker = &TARGET.get().expect("set above").worker;
    install_handler();

    let victim_tid = common::gettid();
    // SAFETY: pthread_self has no preconditions.
    let victim = unsafe { libc::pthread_self() };
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let storm = std::thread::spawn(move || {
        let mut sent = 0u64;
        while !d.load(Ordering::Relaxed) {
            // SAFETY: the victim thread outlives the storm (it joins it).
            let rc = unsafe { libc::pthread_kill(victim, libc::SIGUSR1) };
            assert_eq!(rc, 0, "pthread_kill");
            sent += 1;
            std::thread::yield_now();
        }
        sent
    });

    // The victim: operations that hold the worker lock while the worker
    // sleeps idle. Many armed timers make every `mod_delayed` walk the
    // sorted timer list under the lock, so most signals land inside it.
    let far = Duration::from_secs(3600);
    let armed: Vec<DelayedWork> = (0..2000).map(|_| DelayedWork::new(|| ())).collect();
    for (i, d) in armed.iter().enumerate() {
        assert!(worker.queue_delayed(d, far + Duration::from_micros(i as u64)));
    }
    let probe = DelayedWork::new(|| ());
    let later = far + Duration::from_secs(60);
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let mut rounds = 0u64;
    while std::time::Instant::now() < until {
        match rounds % 8 {
            0 => worker.flush().expect("flush"),
            1 => raw::flush_worker(&raw_worker).expect("raw flush"),
            _ => {
                worker.mod_delayed(&probe, later);
            }
        }
        rounds += 1;
    }
    done.store(true, Ordering::Relaxed);
    let sent = storm.join().expect("storm thread");
    probe.cancel_sync();
    for d in &armed {
        assert!(
            d.cancel_sync(),
            "an armed timer stays armed until cancelled"
        );
    }
    worker.flush().expect("final flush");
    raw::flush_worker(&raw_worker).expect("final raw flush");

    let handled = HANDLED.load(Ordering::Relaxed);
    eprintln!("victim tid {victim_tid}: {rounds} rounds, {sent} signals sent, {handled} handled");
    assert!(handled > 0, "no signal reached the handler");
    assert_eq!(
        RAN.load(Ordering::Relaxed),
        QUEUED.load(Ordering::Relaxed),
        "every successful queue runs exactly once"
    );
    assert_eq!(
        RAW_RAN.load(Ordering::Relaxed),
        RAW_QUEUED.load(Ordering::Relaxed),
        "every successful raw queue runs exactly once"
    );
    // Block the signal before the worker stops, so no handler queues after.
    // SAFETY: a valid signal set for this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
    raw_thread.request_stop();
    raw_thread.stop().expect("stop raw worker");
}
