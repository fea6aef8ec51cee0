//! Queueing allocates nothing (SPEC §6): the list link lives in the item.
//!
//! A counting global allocator wraps `System`. While armed it counts every
//! allocation on every thread (the worker thread included: running items
//! must not allocate either), except this binary's own watchdog thread. Its
//! own binary, since the allocator is process-wide, and a single test, since
//! a concurrent test's allocations would be counted.

use kthread::{DelayedWork, Work, Worker};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Sizes of the first few counted allocations, for the failure message.
static SIZES: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

thread_local! {
    /// Set on threads whose allocations are not the library's doing.
    static EXEMPT: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

fn note(layout: Layout) {
    if ARMED.load(Ordering::Relaxed) && !EXEMPT.try_with(Cell::get).unwrap_or(false) {
        let i = ALLOCS.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = SIZES.get(i) {
            s.store(layout.size(), Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; counting touches only atomics
// and a const-initialised thread-local (which never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout);
        // SAFETY: forwarded caller contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout);
        // SAFETY: forwarded caller contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(layout);
        // SAFETY: forwarded caller contract (`ptr` came from `System` via us).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract (`ptr` came from `System` via us).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A watchdog like `tests/common`'s, but on an exempt thread (its first
/// blocking receive may allocate, possibly after the counter is armed).
struct Watchdog(Option<mpsc::Sender<()>>, Option<thread::JoinHandle<()>>);

fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        EXEMPT.with(|e| e.set(true));
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** watchdog: test `{name}` still running after {limit:?}: hung ***\n{}",
                kthread::ps()
            );
            std::process::exit(101);
        }
    });
    Watchdog(Some(tx), Some(t))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

static RAN: AtomicUsize = AtomicUsize::new(0);

/// `n` queue+run cycles over `items`, round-robin. Each lap ends with a
/// flush (alternately the worker's and the lap's last item's), after which
/// every item is idle again, so every queue must succeed.
fn cycles(w: &Worker, items: &[Work], n: usize) {
    let mut queued = 0;
    let mut lap = 0usize;
    while queued < n {
        let take = items.len().min(n - queued);
        for it in &items[..take] {
            assert!(w.queue(it), "an idle item must queue");
        }
        queued += take;
        if lap % 2 == 0 {
            w.flush().expect("flush from the test thread");
        } else {
            items[take - 1].flush();
        }
        lap += 1;
    }
}

/// Delayed work: arm + fire-now flush, arm + cancel, zero-delay queue, mod.
fn delayed_cycles(w: &Worker, items: &[DelayedWork], rounds: usize) {
    const HOUR: Duration = Duration::from_secs(3600);
    for _ in 0..rounds {
        for d in items {
            assert!(w.queue_delayed(d, HOUR));
        }
        for d in items {
            assert!(d.flush(), "an armed item is run now and waited for");
        }
        for d in items {
            assert!(!w.mod_delayed(d, HOUR), "idle: mod arms it");
            assert!(w.mod_delayed(d, HOUR * 2), "armed: mod moves it");
            assert!(d.cancel_sync());
        }
        for d in items {
            assert!(w.queue_delayed(d, Duration::ZERO));
        }
        w.flush().expect("flush");
    }
}

#[test]
fn queue_allocates_nothing() {
    let _wd = watchdog("queue_allocates_nothing", Duration::from_secs(60));
    let w = Worker::new("wq-alloc").expect("create worker");
    let items: Vec<Work> = (0..1024)
        .map(|_| {
            Work::new(|| {
                RAN.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let delayed: Vec<DelayedWork> = (0..64)
        .map(|_| {
            DelayedWork::new(|| {
                RAN.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();

    // Warm up: lazily created per-thread state, first sleeps, first wakes.
    cycles(&w, &items, 10_000);
    delayed_cycles(&w, &delayed, 2);
    let before = RAN.load(Ordering::Relaxed);

    ARMED.store(true, Ordering::SeqCst);
    cycles(&w, &items, 100_000);
    let plain = RAN.load(Ordering::Relaxed) - before;
    delayed_cycles(&w, &delayed, 20);
    ARMED.store(false, Ordering::SeqCst);

    let n = ALLOCS.load(Ordering::SeqCst);
    let sizes: Vec<usize> = SIZES
        .iter()
        .take(n.min(SIZES.len()))
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    assert_eq!(plain, 100_000, "every queued item ran once");
    assert_eq!(
        RAN.load(Ordering::Relaxed) - before,
        100_000 + 20 * 64 * 2,
        "every delayed item ran (flushed, then zero-delay)"
    );
    assert_eq!(
        n, 0,
        "queue/run/flush/cancel allocated {n} times (first sizes: {sizes:?})"
    );
}
