//! Signal storms: a `SIGUSR1` handler queues on a worker (`Worker::queue`
//! and the raw `worker::raw::queue`, the user-space form of queueing from
//! an interrupt), delivered thousands of times a second by a helper thread
//! to threads that meanwhile `flush`, `queue_delayed` and `mod_delayed` on
//! the same worker, and to the worker thread itself (which keeps the signal
//! blocked, as every kthread does). No deadlock (watchdog), and every queue
//! that returned true runs.
//!
//! Before the queue became async-signal-safe (no lock on the queue path), a
//! handler that interrupted a thread holding the worker lock deadlocked.
//! The C `kthread_queue_work` is the same raw call.

use super::common::watchdog;
use super::{seed, Rng, LIMIT};
use kthread::worker::raw::{self, RawWork};
use kthread::{DelayedWork, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

static WORKER: OnceLock<Worker> = OnceLock::new();
static WORK: OnceLock<Work> = OnceLock::new();
static RAW: RawWork = RawWork::new(Some(raw_ran));
static CLAIMS: AtomicUsize = AtomicUsize::new(0);
static RUNS: AtomicUsize = AtomicUsize::new(0);
static RAW_CLAIMS: AtomicUsize = AtomicUsize::new(0);
static RAW_RUNS: AtomicUsize = AtomicUsize::new(0);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn raw_ran(_w: *mut RawWork) {
    RAW_RUNS.fetch_add(1, SeqCst);
}

/// The handler: only atomics, `OnceLock::get` (an atomic load) and the queue calls.
extern "C" fn on_signal(_sig: libc::c_int) {
    SIGNALS.fetch_add(1, SeqCst);
    if let (Some(w), Some(work)) = (WORKER.get(), WORK.get()) {
        if w.queue(work) {
            CLAIMS.fetch_add(1, SeqCst);
        }
        // SAFETY: RAW is a static (never moves or dies) and WORKER lives for
        // the process; RAW is only ever queued on WORKER.
        if unsafe { raw::queue(w.as_raw(), &RAW) } {
            RAW_CLAIMS.fetch_add(1, SeqCst);
        }
    }
}

#[test]
fn queue_from_a_signal_storm_never_deadlocks_and_loses_nothing() {
    const TEST: &str = "signals::queue_from_a_signal_storm_never_deadlocks_and_loses_nothing";
    let _w = watchdog(TEST, LIMIT);
    let seed = seed(TEST);
    let worker = WORKER.get_or_init(|| Worker::new("hz-sig").unwrap());
    WORK.get_or_init(|| {
        Work::new(|| {
            RUNS.fetch_add(1, SeqCst);
        })
    });
    // SAFETY: an all-zero sigaction is valid; we fill handler and flags.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    assert_eq!(
        // SAFETY: installs a handler that only does async-signal-safe work.
        unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) },
        0
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let (stop, tids) = (stop.clone(), tids.clone());
            let mut rng = Rng::new(seed, i);
            thread::spawn(move || {
                super::lock(&tids).push(super::common::gettid());
                let dw = DelayedWork::new(|| {});
                let w = WORKER.get().unwrap();
                let mut ops = 0u64;
                while !stop.load(SeqCst) {
                    match rng.below(3) {
                        0 => w.flush().unwrap(),
                        1 => {
                            w.queue_delayed(&dw, Duration::from_micros(rng.below(200)));
                        }
                        _ => {
                            w.mod_delayed(&dw, Duration::from_micros(rng.below(200)));
                        }
                    }
                    ops += 1;
                }
                dw.cancel_sync();
                ops
            })
        })
        .collect();
    while super::lock(&tids).len() < 2 {
        thread::yield_now();
    }
    let mut targets = super::lock(&tids).clone();
    targets.push(worker.task().tid());
    // The storm: about 20,000 signals over a second, round robin.
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        for &t in &targets {
            // SAFETY: tgkill to threads of this process that are alive
            // until `stop` is set.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), t, libc::SIGUSR1) };
            sent += 1;
        }
        // Pace the storm (not synchronisation): ~50 µs between volleys.
        thread::sleep(Duration::from_micros(50));
    }
    stop.store(true, SeqCst);
    // Signals still pending on the worker (which blocks them) are discarded.
    // SAFETY: SIG_IGN is always a valid disposition.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    let ops: u64 = busy.into_iter().map(|t| t.join().unwrap()).sum();
    worker.flush().unwrap();
    eprintln!(
        "{TEST}: {sent} signals sent, {} handled, {ops} ops, {} claims",
        SIGNALS.load(SeqCst),
        CLAIMS.load(SeqCst)
    );
    assert!(SIGNALS.load(SeqCst) > 0, "no signal was handled");
    assert_eq!(RUNS.load(SeqCst), CLAIMS.load(SeqCst), "every claim ran");
    assert_eq!(
        RAW_RUNS.load(SeqCst),
        RAW_CLAIMS.load(SeqCst),
        "every raw claim ran"
    );
}
