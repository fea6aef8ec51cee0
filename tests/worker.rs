//! Workers and work items (SPEC §6): queueing, coalescing, ordering, flush,
//! cancel, delayed work, panics, destroy, freezing.
//!
//! Synchronisation is by `Completion`s, channels, atomics and the library's
//! own flushes. Sleeps appear only as bounded negative checks ("does not
//! happen within `SHORT`") and in the delayed-work timing checks.

mod common;

use common::{gettid, watchdog, WATCHDOG};
use kthread::{Completion, DelayedWork, Error, TaskState, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

/// How long a negative check gives something the chance to (wrongly) happen.
const SHORT: Duration = Duration::from_millis(50);
/// Upper bound for something that must happen (far below the watchdog).
const LONG: Duration = Duration::from_secs(10);
/// A delay that never expires during a test.
const HOUR: Duration = Duration::from_secs(3600);

/// The freezer is process-wide: tests that freeze run one at a time.
static FREEZER: Mutex<()> = Mutex::new(());

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The message of every panic these tests provoke on purpose.
const INTENTIONAL: &str = "intentional panic in a work item (test)";

/// Keeps the provoked panics out of the test output; others print as usual.
fn quiet_intentional_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str));
            if msg != Some(INTENTIONAL) {
                default(info);
            }
        }));
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A gate work items wait on. Opens when dropped, so a failing test unblocks
/// its worker (whose `Drop` flushes) instead of hanging. Declare it after
/// the workers it blocks, so it is dropped first.
struct Gate(Arc<Completion>);

impl Gate {
    fn new() -> Gate {
        Gate(Arc::new(Completion::new()))
    }
    fn handle(&self) -> Arc<Completion> {
        self.0.clone()
    }
    fn open(&self) {
        self.0.complete_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.0.complete_all();
    }
}

/// Waits for `c`, failing (not hanging) if it does not complete within `LONG`.
fn expect_done(c: &Completion, what: &str) {
    assert!(
        c.wait_timeout(LONG),
        "{what}: did not happen within {LONG:?}"
    );
}

/// A work item that signals `started`, then blocks until `gate` opens.
/// Queued first, it keeps its worker busy.
fn blocker(gate: &Gate, started: &Arc<Completion>) -> Work {
    let (g, s) = (gate.handle(), started.clone());
    Work::new(move || {
        s.complete();
        g.wait();
    })
}

/// Queues a blocker on `w` and returns once it runs.
fn block_worker(w: &Worker, gate: &Gate) -> Work {
    let started = Arc::new(Completion::new());
    let b = blocker(gate, &started);
    assert!(w.queue(&b));
    expect_done(&started, "blocker started");
    b
}

/// A work item counting its runs.
fn counting() -> (Work, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    (
        Work::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

/// A call running on its own thread, whose tid is known.
struct Bg<T> {
    tid: libc::pid_t,
    rx: mpsc::Receiver<T>,
}

fn background<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Bg<T> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let _ = tx.send(f());
    });
    let tid = tid_rx
        .recv_timeout(LONG)
        .expect("background thread started");
    Bg { tid, rx }
}

impl<T> Bg<T> {
    /// The call has reached its blocking point and has not returned within
    /// `SHORT` (a negative check).
    fn assert_blocked(&self, what: &str) {
        self.wait_blocked(what);
        self.assert_still_running(what);
    }

    /// Negative check: the call has not returned within `SHORT`.
    fn assert_still_running(&self, what: &str) {
        match self.rx.recv_timeout(SHORT) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(_) => panic!("{what}: returned too early"),
            Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
        }
    }

    /// Waits until the thread sleeps in a futex wait, i.e. the call has
    /// reached its blocking point. The moment is not observable through the
    /// API, hence `/proc`. The calls used here take no lock another thread
    /// holds for long before they publish their effect (flush marker queued,
    /// CANCELING set, freezing flag set), so a futex sleep means "published".
    fn wait_blocked(&self, what: &str) {
        let stat = format!("/proc/self/task/{}/stat", self.tid);
        let sys = format!("/proc/self/task/{}/syscall", self.tid);
        let start = Instant::now();
        loop {
            let state = std::fs::read_to_string(&stat).ok().and_then(|t| {
                t[t.rfind(')')? + 1..]
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            });
            if state.as_deref() == Some("S") {
                match std::fs::read_to_string(&sys) {
                    // First field: the syscall it sleeps in.
                    Ok(s) if s.split_whitespace().next() == Some(&libc::SYS_futex.to_string()) => {
                        return
                    }
                    Ok(_) => {}
                    // Unreadable (restricted procfs): the state is all we have.
                    Err(_) => return,
                }
            }
            assert!(start.elapsed() < LONG, "{what}: never blocked");
            thread::yield_now();
        }
    }

    /// The call's result, failing if it does not return within `LONG`.
    fn join(self, what: &str) -> T {
        match self.rx.recv_timeout(LONG) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("{what}: did not return within {LONG:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
        }
    }
}

/// A slot through which a work item reaches its own handle. Emptied on
/// drop, which breaks the handle → closure → slot → handle cycle.
struct SelfSlot(Arc<Mutex<Option<Work>>>);

impl SelfSlot {
    fn new() -> SelfSlot {
        SelfSlot(Arc::new(Mutex::new(None)))
    }
    fn handle(&self) -> Arc<Mutex<Option<Work>>> {
        self.0.clone()
    }
    fn set(&self, w: &Work) {
        *lock(&self.0) = Some(w.clone());
    }
}

impl Drop for SelfSlot {
    fn drop(&mut self) {
        lock(&self.0).take();
    }
}

fn me(slot: &Mutex<Option<Work>>) -> Work {
    lock(slot)
        .clone()
        .expect("self slot filled before queueing")
}

/// The name of the kthread running the caller (inside a work item: the worker).
fn current_name() -> String {
    kthread::current()
        .expect("runs on a kthread")
        .name()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Queueing and ordering

#[test]
fn fifo_order_on_one_worker() -> Res {
    let _wd = watchdog("fifo_order_on_one_worker", WATCHDOG);
    let w = Worker::new("wq-fifo")?;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let items: Vec<Work> = (0..1000)
        .map(|i| {
            let log = log.clone();
            Work::new(move || lock(&log).push(i))
        })
        .collect();
    // The first half piles up behind a busy worker (one batch), the second
    // half is queued while the worker runs through the first.
    let _b = block_worker(&w, &gate);
    for it in &items[..500] {
        assert!(w.queue(it));
    }
    gate.open();
    for it in &items[500..] {
        assert!(w.queue(it));
    }
    w.flush()?;
    let got = lock(&log).clone();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    Ok(())
}

/// Checks an item is never run twice at once, and that each successful
/// queue is exactly one run, while `producers` re-queue it on `workers`.
fn hammer_one_item(workers: &[Arc<Worker>], producers: usize, target: usize) {
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let reached = Arc::new(Completion::new());
    let x = {
        let (inside, overlaps, runs, reached) = (
            inside.clone(),
            overlaps.clone(),
            runs.clone(),
            reached.clone(),
        );
        Work::new(move || {
            if inside.swap(true, Ordering::SeqCst) {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            for _ in 0..200 {
                std::hint::spin_loop();
            }
            inside.store(false, Ordering::SeqCst);
            if runs.fetch_add(1, Ordering::SeqCst) + 1 == target {
                reached.complete();
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (x, stop) = (x.clone(), stop.clone());
            let workers: Vec<_> = workers.to_vec();
            thread::spawn(move || {
                let mut ok = 0usize;
                let mut i = p;
                while !stop.load(Ordering::Relaxed) {
                    if workers[i % workers.len()].queue(&x) {
                        ok += 1;
                    }
                    i += 1;
                    if i % 64 == 0 {
                        thread::yield_now();
                    }
                }
                ok
            })
        })
        .collect();
    // Four spinning producers oversubscribe two CPUs: give the worker time
    // (still inside the watchdog) rather than fail on a slow machine.
    assert!(
        reached.wait_timeout(Duration::from_secs(25)),
        "enough runs: {} of {target} within 25 s",
        runs.load(Ordering::SeqCst)
    );
    stop.store(true, Ordering::SeqCst);
    let queued: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    x.flush();
    for w in workers {
        w.flush().unwrap();
    }
    assert!(!x.is_pending());
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "the item ran concurrently with itself"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        queued,
        "each successful queue must be exactly one run"
    );
}

#[test]
fn item_never_runs_concurrently_with_itself() -> Res {
    let _wd = watchdog("item_never_runs_concurrently_with_itself", WATCHDOG);
    let w = Arc::new(Worker::new("wq-excl")?);
    hammer_one_item(&[w], 4, 5_000);
    Ok(())
}

#[test]
fn item_never_runs_concurrently_with_itself_across_workers() -> Res {
    let _wd = watchdog(
        "item_never_runs_concurrently_with_itself_across_workers",
        WATCHDOG,
    );
    let a = Arc::new(Worker::new("wq-excl-a")?);
    let b = Arc::new(Worker::new("wq-excl-b")?);
    hammer_one_item(&[a, b], 4, 5_000);
    Ok(())
}

#[test]
fn queue_returns_false_while_pending() -> Res {
    let _wd = watchdog("queue_returns_false_while_pending", WATCHDOG);
    let w = Arc::new(Worker::new("wq-pend")?);
    let gate = Gate::new();
    let (x, runs) = counting();
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&x));
    assert!(x.is_pending());
    assert!(!w.queue(&x));
    assert!(!w.queue(&x.clone()), "a clone is the same item");
    let (w2, x2) = (w.clone(), x.clone());
    assert!(
        !thread::spawn(move || w2.queue(&x2)).join().unwrap(),
        "from another thread"
    );
    gate.open();
    w.flush()?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!x.is_pending());
    // Idle again: it can be queued again.
    assert!(w.queue(&x));
    w.flush()?;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn n_queues_while_pending_run_once() -> Res {
    let _wd = watchdog("n_queues_while_pending_run_once", WATCHDOG);
    let w = Worker::new("wq-coal")?;
    let gate = Gate::new();
    let (x, runs) = counting();
    let _b = block_worker(&w, &gate);
    let accepted = (0..100).filter(|_| w.queue(&x)).count();
    assert_eq!(accepted, 1);
    gate.open();
    w.flush()?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!x.is_pending());
    Ok(())
}

#[test]
fn queue_from_inside_running_item_runs_once_more() -> Res {
    let _wd = watchdog("queue_from_inside_running_item_runs_once_more", WATCHDOG);
    let w = Arc::new(Worker::new("wq-again")?);
    let slot = SelfSlot::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let requeued = Arc::new(AtomicBool::new(false));
    let second = Arc::new(Completion::new());
    let x = {
        let (w, s, runs, requeued, second) = (
            w.clone(),
            slot.handle(),
            runs.clone(),
            requeued.clone(),
            second.clone(),
        );
        Work::new(move || {
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                let me = me(&s);
                // Running, not pending: the re-queue is accepted.
                requeued.store(!me.is_pending() && w.queue(&me), Ordering::SeqCst);
            } else {
                second.complete();
            }
        })
    };
    slot.set(&x);
    assert!(w.queue(&x));
    expect_done(&second, "second run");
    w.flush()?;
    assert!(requeued.load(Ordering::SeqCst));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(!x.is_pending());
    Ok(())
}

#[test]
fn pending_on_worker_a_cannot_queue_on_b() -> Res {
    let _wd = watchdog("pending_on_worker_a_cannot_queue_on_b", WATCHDOG);
    let a = Worker::new("wq-pa")?;
    let b = Worker::new("wq-pb")?;
    let gate = Gate::new();
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = names.clone();
    let x = Work::new(move || lock(&n).push(current_name()));
    let _blk = block_worker(&a, &gate);
    assert!(a.queue(&x));
    assert!(!b.queue(&x), "pending on A: queue on B must fail");
    gate.open();
    a.flush()?;
    b.flush()?;
    assert_eq!(*lock(&names), ["wq-pa"]);
    Ok(())
}

#[test]
fn running_on_a_cannot_queue_on_b() -> Res {
    let _wd = watchdog("running_on_a_cannot_queue_on_b", WATCHDOG);
    let a = Worker::new("wq-ra")?;
    let b = Worker::new("wq-rb")?;
    let gate = Gate::new();
    let started = Arc::new(Completion::new());
    let names = Arc::new(Mutex::new(Vec::new()));
    let x = {
        let (g, s, n) = (gate.handle(), started.clone(), names.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            lock(&n).push(current_name());
        })
    };
    assert!(a.queue(&x));
    expect_done(&started, "x running on A");
    assert!(!x.is_pending());
    assert!(!b.queue(&x), "running on A: queue on B must fail");
    gate.open();
    x.flush();
    b.flush()?;
    assert_eq!(*lock(&names), ["wq-ra"]);
    Ok(())
}

#[test]
fn idle_item_may_move_to_another_worker() -> Res {
    let _wd = watchdog("idle_item_may_move_to_another_worker", WATCHDOG);
    let a = Worker::new("wq-ma")?;
    let b = Worker::new("wq-mb")?;
    let gate = Gate::new();
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = names.clone();
    let x = Work::new(move || lock(&n).push(current_name()));
    assert!(a.queue(&x));
    x.flush();
    assert_eq!(*lock(&names), ["wq-ma"]);
    // Idle: it may move to B. Keep B busy so the move is observable by flush.
    let _blk = block_worker(&b, &gate);
    assert!(b.queue(&x), "idle: may move to B");
    let x2 = x.clone();
    let flusher = background(move || x2.flush());
    flusher.assert_blocked("flush of the item pending on the blocked worker B");
    gate.open();
    assert!(
        flusher.join("flush after the move"),
        "flush follows the item to B"
    );
    assert!(a.queue(&x), "and back to A");
    x.flush();
    assert_eq!(*lock(&names), ["wq-ma", "wq-mb", "wq-ma"]);
    Ok(())
}

// ---------------------------------------------------------------------------
// Flush

#[test]
fn work_flush_waits_for_queued_instance() -> Res {
    let _wd = watchdog("work_flush_waits_for_queued_instance", WATCHDOG);
    let w = Worker::new("wq-fq")?;
    let gate = Gate::new();
    let (x, runs) = counting();
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&x));
    let (x2, r2) = (x.clone(), runs.clone());
    let flusher = background(move || (x2.flush(), r2.load(Ordering::SeqCst)));
    flusher.assert_blocked("flush of a queued item behind a blocked worker");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    gate.open();
    assert_eq!(flusher.join("flush"), (true, 1), "(waited, runs at return)");
    Ok(())
}

#[test]
fn work_flush_waits_for_running_instance() -> Res {
    let _wd = watchdog("work_flush_waits_for_running_instance", WATCHDOG);
    let w = Worker::new("wq-fr")?;
    let gate = Gate::new();
    let started = Arc::new(Completion::new());
    let done = Arc::new(AtomicBool::new(false));
    let x = {
        let (g, s, d) = (gate.handle(), started.clone(), done.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            d.store(true, Ordering::SeqCst);
        })
    };
    assert!(w.queue(&x));
    expect_done(&started, "x running");
    let (x2, d2) = (x.clone(), done.clone());
    let flusher = background(move || (x2.flush(), d2.load(Ordering::SeqCst)));
    flusher.assert_blocked("flush of a running item");
    gate.open();
    assert_eq!(
        flusher.join("flush"),
        (true, true),
        "(waited, run finished at return)"
    );
    Ok(())
}

#[test]
fn work_flush_does_not_wait_for_later_requeue() -> Res {
    let _wd = watchdog("work_flush_does_not_wait_for_later_requeue", WATCHDOG);
    let w = Arc::new(Worker::new("wq-flr")?);
    let gate1 = Gate::new();
    let gate2 = Gate::new();
    let slot = SelfSlot::new();
    let started = Arc::new(Completion::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let first_finished = Arc::new(AtomicUsize::new(0));
    let second_done = Arc::new(AtomicBool::new(false));
    let requeued = Arc::new(AtomicBool::new(false));
    let x = {
        let (w, s, g1, g2, st) = (
            w.clone(),
            slot.handle(),
            gate1.handle(),
            gate2.handle(),
            started.clone(),
        );
        let (runs, ff, sd, rq) = (
            runs.clone(),
            first_finished.clone(),
            second_done.clone(),
            requeued.clone(),
        );
        Work::new(move || {
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                st.complete();
                g1.wait();
                rq.store(w.queue(&me(&s)), Ordering::SeqCst);
                ff.store(1, Ordering::SeqCst);
            } else {
                g2.wait();
                sd.store(true, Ordering::SeqCst);
            }
        })
    };
    slot.set(&x);
    assert!(w.queue(&x));
    expect_done(&started, "first instance running");
    let (x2, ff, sd) = (x.clone(), first_finished.clone(), second_done.clone());
    let flusher = background(move || {
        let waited = x2.flush();
        (waited, ff.load(Ordering::SeqCst), sd.load(Ordering::SeqCst))
    });
    // The re-queue must come after the flush call: let the flusher block first.
    flusher.wait_blocked("flush of the running first instance");
    gate1.open();
    let got = flusher.join("flush (it must not wait for the re-queue made after it was called)");
    assert_eq!(
        got,
        (true, 1, false),
        "(waited, first finished, second done) at return"
    );
    assert!(requeued.load(Ordering::SeqCst));
    gate2.open();
    x.flush();
    assert!(second_done.load(Ordering::SeqCst));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn work_flush_on_idle_returns_false_at_once() -> Res {
    let _wd = watchdog("work_flush_on_idle_returns_false_at_once", WATCHDOG);
    let (x, runs) = counting();
    assert!(!x.flush(), "never queued");
    let w = Worker::new("wq-fi")?;
    let gate = Gate::new();
    assert!(w.queue(&x));
    x.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Idle on a worker that is now blocked: flush must not wait for the worker.
    let _b = block_worker(&w, &gate);
    let x2 = x.clone();
    let flusher = background(move || x2.flush());
    assert!(!flusher.join("flush of an idle item on a busy worker"));
    gate.open();
    Ok(())
}

/// A weaker check than "an item queued after flush started is not waited
/// for", since the moment flush queues its marker is not observable from
/// outside. Instead a self-re-queueing item `R` keeps the worker busy for
/// ever: every instance of `R` but the one pending when flush is called is
/// queued after flush's marker. A flush that waited for more than what was
/// queued before it (e.g. for the worker to go idle) never returns.
#[test]
fn worker_flush_waits_for_everything_before_and_nothing_after() -> Res {
    let _wd = watchdog(
        "worker_flush_waits_for_everything_before_and_nothing_after",
        WATCHDOG,
    );
    let w = Arc::new(Worker::new("wq-wf")?);
    let gate = Gate::new();
    let started = Arc::new(Completion::new());
    let a_done = Arc::new(AtomicBool::new(false));
    let a = {
        let (g, s, d) = (gate.handle(), started.clone(), a_done.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            d.store(true, Ordering::SeqCst);
        })
    };
    let (b, b_runs) = counting();
    let slot = SelfSlot::new();
    let r_runs = Arc::new(AtomicUsize::new(0));
    let r = {
        let (w, s, n) = (w.clone(), slot.handle(), r_runs.clone());
        Work::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
            w.queue(&me(&s));
        })
    };
    slot.set(&r);
    assert!(w.queue(&a));
    expect_done(&started, "A running");
    assert!(w.queue(&b));
    assert!(w.queue(&r));
    let (w2, ad, bn, rn) = (w.clone(), a_done.clone(), b_runs.clone(), r_runs.clone());
    let flusher = background(move || {
        w2.flush().unwrap();
        (
            ad.load(Ordering::SeqCst),
            bn.load(Ordering::SeqCst),
            rn.load(Ordering::SeqCst),
        )
    });
    flusher.assert_blocked("worker flush while A runs");
    gate.open();
    let (a_ran, b_ran, r_at_return) =
        flusher.join("worker flush (must not wait for items queued after it)");
    assert!(a_ran, "A was queued before the flush");
    assert_eq!(b_ran, 1, "B was queued before the flush");
    assert!(
        r_at_return >= 1,
        "R's first instance was queued before the flush"
    );
    // The worker was still busy with later instances when flush returned.
    let target = r_at_return + 3;
    let start = Instant::now();
    while r_runs.load(Ordering::SeqCst) < target {
        assert!(start.elapsed() < LONG, "R stopped running");
        thread::yield_now();
    }
    r.cancel_sync();
    assert!(!r.is_pending());
    Ok(())
}

// ---------------------------------------------------------------------------
// Cancel

#[test]
fn cancel_pending_item_removes_it() -> Res {
    let _wd = watchdog("cancel_pending_item_removes_it", WATCHDOG);
    let w = Worker::new("wq-cp")?;
    let gate = Gate::new();
    let token = Arc::new(());
    let runs = Arc::new(AtomicUsize::new(0));
    let x = {
        let (t, n) = (token.clone(), runs.clone());
        Work::new(move || {
            std::hint::black_box(&t);
            n.fetch_add(1, Ordering::SeqCst);
        })
    };
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&x));
    assert!(x.cancel_sync(), "it was pending");
    assert!(!x.is_pending());
    assert!(!x.cancel_sync(), "no longer pending");
    gate.open();
    w.flush()?;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "a cancelled item must not run"
    );
    // The queue's reference was released: dropping the handle frees the closure.
    drop(x);
    assert_eq!(Arc::strong_count(&token), 1, "the cancelled item leaked");
    Ok(())
}

#[test]
fn cancel_running_item_waits_for_it_to_end() -> Res {
    let _wd = watchdog("cancel_running_item_waits_for_it_to_end", WATCHDOG);
    let w = Worker::new("wq-cr")?;
    let gate = Gate::new();
    let started = Arc::new(Completion::new());
    let ended = Arc::new(AtomicBool::new(false));
    let x = {
        let (g, s, e) = (gate.handle(), started.clone(), ended.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            e.store(true, Ordering::SeqCst);
        })
    };
    assert!(w.queue(&x));
    expect_done(&started, "x running");
    let (x2, e2) = (x.clone(), ended.clone());
    let canceller = background(move || (x2.cancel_sync(), e2.load(Ordering::SeqCst)));
    canceller.assert_blocked("cancel of a running item");
    gate.open();
    assert_eq!(
        canceller.join("cancel"),
        (false, true),
        "(was pending, run ended at return)"
    );
    assert!(!x.is_pending());
    Ok(())
}

#[test]
fn queue_during_cancel_returns_false() -> Res {
    let _wd = watchdog("queue_during_cancel_returns_false", WATCHDOG);
    let w = Arc::new(Worker::new("wq-qc")?);
    let other = Worker::new("wq-qc2")?;
    let gate = Gate::new();
    let slot = SelfSlot::new();
    let started = Arc::new(Completion::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let inner_requeue = Arc::new(Mutex::new(None));
    let x = {
        let (w, s, g, st, n, ir) = (
            w.clone(),
            slot.handle(),
            gate.handle(),
            started.clone(),
            runs.clone(),
            inner_requeue.clone(),
        );
        Work::new(move || {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                st.complete();
                g.wait();
                // Still running, a cancel waits for us: re-queueing must fail.
                *lock(&ir) = Some(w.queue(&me(&s)));
            }
        })
    };
    slot.set(&x);
    assert!(w.queue(&x));
    expect_done(&started, "x running");
    let x2 = x.clone();
    let canceller = background(move || x2.cancel_sync());
    canceller.wait_blocked("cancel of a running item");
    assert!(!w.queue(&x), "queue while a cancel is in progress");
    assert!(
        !other.queue(&x),
        "queue on another worker while a cancel is in progress"
    );
    gate.open();
    assert!(!canceller.join("cancel"), "it was running, not pending");
    assert_eq!(
        *lock(&inner_requeue),
        Some(false),
        "re-queue from the item during its cancel"
    );
    assert!(!x.is_pending());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Cancel over: queueing works again.
    assert!(w.queue(&x));
    x.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn cancel_works_on_self_requeueing_item() -> Res {
    let _wd = watchdog("cancel_works_on_self_requeueing_item", WATCHDOG);
    let w = Arc::new(Worker::new("wq-cs")?);
    let slot = SelfSlot::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let hundred = Arc::new(Completion::new());
    let x = {
        let (w, s, n, h) = (w.clone(), slot.handle(), runs.clone(), hundred.clone());
        Work::new(move || {
            if n.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                h.complete();
            }
            w.queue(&me(&s));
        })
    };
    slot.set(&x);
    assert!(w.queue(&x));
    expect_done(&hundred, "100 runs");
    x.cancel_sync();
    assert!(!x.is_pending());
    let after = runs.load(Ordering::SeqCst);
    w.flush()?;
    thread::sleep(SHORT); // negative check: it must not run again
    assert_eq!(
        runs.load(Ordering::SeqCst),
        after,
        "ran after cancel_sync returned"
    );
    assert!(!x.is_pending());
    assert!(!x.flush(), "idle after cancel");
    Ok(())
}

// ---------------------------------------------------------------------------
// Delayed work

/// A delayed item recording when it ran (and how often), completing `ran`.
struct Timed {
    d: DelayedWork,
    at: Arc<Mutex<Vec<Instant>>>,
    ran: Arc<Completion>,
}

fn timed() -> Timed {
    let at = Arc::new(Mutex::new(Vec::new()));
    let ran = Arc::new(Completion::new());
    let (a, r) = (at.clone(), ran.clone());
    let d = DelayedWork::new(move || {
        lock(&a).push(Instant::now());
        r.complete();
    });
    Timed { d, at, ran }
}

impl Timed {
    fn runs(&self) -> Vec<Instant> {
        lock(&self.at).clone()
    }
}

#[test]
fn delayed_runs_no_earlier_than_delay() -> Res {
    let _wd = watchdog("delayed_runs_no_earlier_than_delay", WATCHDOG);
    let w = Worker::new("wq-dl")?;
    let t = timed();
    let delay = Duration::from_millis(100);
    let queued_at = Instant::now();
    assert!(w.queue_delayed(&t.d, delay));
    assert!(t.d.is_pending());
    expect_done(&t.ran, "delayed item ran");
    let runs = t.runs();
    assert_eq!(runs.len(), 1);
    let after = runs[0] - queued_at;
    assert!(after >= delay, "ran after {after:?}, delay was {delay:?}");
    assert!(!t.d.is_pending());
    Ok(())
}

#[test]
fn mod_delayed_moves_deadline_earlier() -> Res {
    let _wd = watchdog("mod_delayed_moves_deadline_earlier", WATCHDOG);
    let w = Worker::new("wq-me")?;
    let t = timed();
    assert!(w.queue_delayed(&t.d, HOUR));
    let delay = Duration::from_millis(20);
    let modded_at = Instant::now();
    assert!(w.mod_delayed(&t.d, delay), "it was pending");
    expect_done(&t.ran, "re-armed item ran (long before the original hour)");
    let runs = t.runs();
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0] - modded_at >= delay,
        "ran {:?} after mod",
        runs[0] - modded_at
    );
    Ok(())
}

#[test]
fn mod_delayed_moves_deadline_later() -> Res {
    let _wd = watchdog("mod_delayed_moves_deadline_later", WATCHDOG);
    let w = Worker::new("wq-ml")?;
    let later = Duration::from_millis(300);
    // If this thread is descheduled for 50 ms between arming and re-arming,
    // the first deadline passes before the mod (the mod then reports the item
    // idle): nothing to check that round, try again.
    for _attempt in 0..5 {
        let t = timed();
        assert!(w.queue_delayed(&t.d, Duration::from_millis(50)));
        let modded_at = Instant::now();
        if !w.mod_delayed(&t.d, later) {
            t.d.cancel_sync();
            continue;
        }
        expect_done(&t.ran, "re-armed item ran");
        let runs = t.runs();
        assert_eq!(runs.len(), 1, "ran at the old deadline too");
        let after = runs[0] - modded_at;
        assert!(after >= later, "ran {after:?} after mod to {later:?}");
        return Ok(());
    }
    panic!("could not re-arm within 50 ms in 5 attempts");
}

#[test]
fn cancel_sync_on_armed_timer_prevents_run() -> Res {
    let _wd = watchdog("cancel_sync_on_armed_timer_prevents_run", WATCHDOG);
    let w = Worker::new("wq-ct")?;
    let t = timed();
    // Long enough that this thread is not descheduled past it before the
    // cancel; the idle worker sleeps until it.
    let delay = Duration::from_millis(200);
    assert!(w.queue_delayed(&t.d, delay));
    assert!(t.d.cancel_sync(), "armed counts as pending");
    assert!(!t.d.is_pending());
    thread::sleep(delay + Duration::from_millis(100)); // negative check past the deadline
    w.flush()?;
    assert!(t.runs().is_empty(), "a cancelled timer fired");
    assert!(!t.d.cancel_sync());
    Ok(())
}

#[test]
fn delayed_flush_on_armed_item_runs_it_now_and_waits() -> Res {
    let _wd = watchdog(
        "delayed_flush_on_armed_item_runs_it_now_and_waits",
        WATCHDOG,
    );
    let w = Worker::new("wq-df")?;
    let t = timed();
    assert!(w.queue_delayed(&t.d, HOUR));
    let (d, at) = (t.d.clone(), t.at.clone());
    let flusher = background(move || (d.flush(), lock(&at).len()));
    assert_eq!(
        flusher.join("flush of an item armed for an hour"),
        (true, 1),
        "(waited, runs at return)"
    );
    assert!(!t.d.is_pending());
    assert!(!t.d.flush(), "idle now");
    Ok(())
}

#[test]
fn delay_zero_queues_at_once() -> Res {
    let _wd = watchdog("delay_zero_queues_at_once", WATCHDOG);
    let w = Worker::new("wq-dz")?;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let d = DelayedWork::new(move || lock(&l1).push("delayed"));
    let plain = Work::new(move || lock(&l2).push("plain"));
    let _b = block_worker(&w, &gate);
    assert!(w.queue_delayed(&d, Duration::ZERO));
    assert!(d.is_pending());
    assert!(w.queue(&plain));
    gate.open();
    w.flush()?;
    // Queued at once, so in queue order with plain items.
    assert_eq!(*lock(&log), ["delayed", "plain"]);
    assert!(!d.is_pending());
    Ok(())
}

#[test]
fn queue_delayed_returns_false_while_pending() -> Res {
    let _wd = watchdog("queue_delayed_returns_false_while_pending", WATCHDOG);
    let w = Worker::new("wq-dp")?;
    let t = timed();
    assert!(w.queue_delayed(&t.d, HOUR));
    assert!(!w.queue_delayed(&t.d, HOUR));
    assert!(!w.queue_delayed(&t.d, Duration::ZERO));
    assert!(t.d.cancel_sync());
    assert!(
        w.queue_delayed(&t.d, Duration::ZERO),
        "idle again after cancel"
    );
    expect_done(&t.ran, "zero-delay run");
    t.d.flush();
    assert!(!t.d.is_pending());
    assert_eq!(t.runs().len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------
// Panics, self-flush

#[test]
fn panicking_item_is_caught_and_worker_continues() -> Res {
    let _wd = watchdog("panicking_item_is_caught_and_worker_continues", WATCHDOG);
    quiet_intentional_panics();
    let w = Worker::new("wq-pan")?;
    let gate = Gate::new();
    let started = Arc::new(Completion::new());
    let x = {
        let (g, s) = (gate.handle(), started.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            std::panic::panic_any(INTENTIONAL);
        })
    };
    assert!(w.queue(&x));
    expect_done(&started, "x running");
    let x2 = x.clone();
    let flusher = background(move || x2.flush());
    flusher.assert_blocked("flush of the running (soon panicking) item");
    gate.open();
    assert!(flusher.join("flush of a panicking item must be released"));
    assert_eq!(w.panics(), 1);
    assert!(!x.is_pending());
    let (y, y_runs) = counting();
    assert!(w.queue(&y));
    y.flush();
    assert_eq!(y_runs.load(Ordering::SeqCst), 1, "the worker went on");
    // And the panicking item can run (and panic) again.
    assert!(w.queue(&x));
    x.flush();
    assert_eq!(w.panics(), 2);
    w.flush()?;
    Ok(())
}

#[test]
fn worker_flush_from_own_item_is_refused() -> Res {
    let _wd = watchdog("worker_flush_from_own_item_is_refused", WATCHDOG);
    let w = Arc::new(Worker::new("wq-sf")?);
    let result = Arc::new(Mutex::new(None));
    let x = {
        // The test keeps its own Arc, so the worker is never dropped here.
        let (w, r) = (w.clone(), result.clone());
        Work::new(move || {
            let res = w.flush();
            *lock(&r) = Some((matches!(res, Err(Error::WouldDeadlock)), format!("{res:?}")));
        })
    };
    assert!(w.queue(&x));
    x.flush();
    let (refused, dbg) = lock(&result).clone().expect("item ran");
    assert!(refused, "worker.flush() from its own item returned {dbg}");
    w.flush()?;
    Ok(())
}

#[test]
fn work_flush_from_own_item_is_refused() -> Res {
    let _wd = watchdog("work_flush_from_own_item_is_refused", WATCHDOG);
    let w = Worker::new("wq-sw")?;
    let slot = SelfSlot::new();
    let later = Work::new(|| ());
    let result = Arc::new(Mutex::new(Vec::new()));
    let x = {
        let (s, later, r) = (slot.handle(), later.clone(), result.clone());
        Work::new(move || {
            let own = me(&s).try_flush();
            let pending_behind = later.try_flush();
            let mut r = lock(&r);
            r.push((
                matches!(own, Err(Error::WouldDeadlock)),
                format!("own: {own:?}"),
            ));
            r.push((
                matches!(pending_behind, Err(Error::WouldDeadlock)),
                format!("pending behind: {pending_behind:?}"),
            ));
        })
    };
    slot.set(&x);
    let gate = Gate::new();
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&x));
    assert!(w.queue(&later));
    gate.open();
    w.flush()?;
    let got = lock(&result).clone();
    assert_eq!(got.len(), 2, "item ran once");
    for (refused, dbg) in got {
        assert!(refused, "try_flush from the worker's own item: {dbg}");
    }
    Ok(())
}

#[test]
fn delayed_try_flush_from_own_worker_is_refused_not_panicked() -> Res {
    let _wd = watchdog("delayed_try_flush_from_own_worker", WATCHDOG);
    let w = Worker::new("wq-sd")?;
    let armed = DelayedWork::new(|| ());
    let idle = DelayedWork::new(|| ());
    let result = Arc::new(Mutex::new(Vec::new()));
    let x = {
        let (armed, idle, r) = (armed.clone(), idle.clone(), result.clone());
        Work::new(move || {
            let a = armed.try_flush();
            let i = idle.try_flush();
            let mut r = lock(&r);
            r.push((
                matches!(a, Err(Error::WouldDeadlock)),
                format!("armed: {a:?}"),
            ));
            r.push((matches!(i, Ok(false)), format!("never queued: {i:?}")));
        })
    };
    assert!(w.queue_delayed(&armed, Duration::from_secs(3600)));
    assert!(w.queue(&x));
    x.flush();
    let got = lock(&result).clone();
    assert_eq!(got.len(), 2, "item ran once");
    for (ok, dbg) in got {
        assert!(
            ok,
            "DelayedWork::try_flush from the worker's own item: {dbg}"
        );
    }
    assert!(armed.is_pending(), "a refused flush leaves the timer armed");
    assert!(armed.cancel_sync());
    Ok(())
}

// ---------------------------------------------------------------------------
// Destroy, lifetime

/// Sends once its thread ends (a thread-local destructor).
struct EndOfThread(mpsc::Sender<()>);
impl Drop for EndOfThread {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static THREAD_END: std::cell::RefCell<Option<EndOfThread>> = const { std::cell::RefCell::new(None) };
}

/// Counts drops of the value a closure captured.
struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn worker_dropped_by_its_own_item_runs_its_queue_and_ends() -> Res {
    let _wd = watchdog("worker_dropped_by_its_own_item", WATCHDOG);
    let slot: Arc<Mutex<Option<Worker>>> = Arc::new(Mutex::new(None));
    let w = Worker::new("wq-self-drop")?;
    let task = w.task().clone();
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let (end_tx, end_rx) = mpsc::channel();
    // Behind the dropping item: three items, one armed timer.
    let behind: Vec<Work> = (0..3)
        .map(|_| {
            let (ran, d) = (ran.clone(), DropCount(dropped.clone()));
            Work::new(move || {
                let _keep = &d;
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let timer = {
        let d = DropCount(dropped.clone());
        DelayedWork::new(move || {
            let _keep = &d;
        })
    };
    let dropper = {
        let slot = slot.clone();
        let end_tx = Mutex::new(Some(end_tx));
        Work::new(move || {
            // Reports the end of the worker's OS thread (its TLS destructors run).
            if let Some(tx) = end_tx.lock().unwrap().take() {
                THREAD_END.with(|e| *e.borrow_mut() = Some(EndOfThread(tx)));
            }
            let last = slot.lock().unwrap().take();
            drop(last); // the last handle, dropped on the worker's own thread
            let _ = done_tx.send(());
        })
    };
    let gate = Gate::new();
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&dropper));
    for b in &behind {
        assert!(w.queue(b));
    }
    assert!(w.queue_delayed(&timer, Duration::from_secs(3600)));
    *slot.lock().unwrap() = Some(w);
    gate.open();
    done_rx
        .recv_timeout(WATCHDOG)
        .expect("the dropping item ran and its drop returned");
    // Everything queued behind it still runs: flush waits for it and returns.
    for b in &behind {
        b.flush();
        assert!(!b.is_pending(), "left pending after its worker was dropped");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 3, "every queued item ran once");
    assert!(!timer.is_pending(), "the armed timer was cancelled");
    assert!(!timer.cancel_sync(), "nothing left to cancel");
    // The thread ends by itself; then no reference to an item is left.
    end_rx
        .recv_timeout(WATCHDOG)
        .expect("the worker's thread ended by itself");
    assert!(task.has_exited());
    let reuse = behind[0].clone();
    drop(behind);
    drop(timer);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        3,
        "the worker kept no reference: only our clone of one item is left"
    );
    // The items are idle and reusable on another worker.
    let other = Worker::new("wq-after")?;
    assert!(other.queue(&reuse));
    other.flush()?;
    assert_eq!(
        ran.load(Ordering::SeqCst),
        4,
        "the reused item ran on the other worker"
    );
    drop(reuse);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        4,
        "every closure was dropped"
    );
    Ok(())
}

#[test]
fn destroy_runs_everything_queued_before_it() -> Res {
    let _wd = watchdog("destroy_runs_everything_queued_before_it", WATCHDOG);
    let w = Worker::new("wq-dr")?;
    let gate = Gate::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..100)
        .map(|_| {
            let n = runs.clone();
            Work::new(move || {
                n.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let _b = block_worker(&w, &gate);
    for it in &items {
        assert!(w.queue(it));
    }
    let destroyer = background(move || w.destroy());
    destroyer.assert_blocked("destroy behind a blocked item");
    gate.open();
    destroyer.join("destroy");
    assert_eq!(runs.load(Ordering::SeqCst), 100);
    assert!(items.iter().all(|i| !i.is_pending()));
    Ok(())
}

#[test]
fn destroy_cancels_armed_delayed_items() -> Res {
    let _wd = watchdog("destroy_cancels_armed_delayed_items", WATCHDOG);
    let w = Worker::new("wq-dc")?;
    let token = Arc::new(());
    let ran = Arc::new(AtomicBool::new(false));
    let d = {
        let (t, r) = (token.clone(), ran.clone());
        DelayedWork::new(move || {
            std::hint::black_box(&t);
            r.store(true, Ordering::SeqCst);
        })
    };
    assert!(w.queue_delayed(&d, HOUR));
    let destroyer = background(move || w.destroy());
    destroyer.join("destroy with an hour-long timer armed");
    assert!(!d.is_pending());
    assert!(!ran.load(Ordering::SeqCst));
    assert!(!d.flush(), "nothing left to flush");
    drop(d);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the cancelled timer's item leaked"
    );
    Ok(())
}

#[test]
fn dropping_work_while_queued_is_safe() -> Res {
    let _wd = watchdog("dropping_work_while_queued_is_safe", WATCHDOG);
    let w = Worker::new("wq-drop")?;
    let gate = Gate::new();
    let token = Arc::new(());
    let runs = Arc::new(AtomicUsize::new(0));
    let x = {
        let (t, n) = (token.clone(), runs.clone());
        Work::new(move || {
            std::hint::black_box(&t);
            n.fetch_add(1, Ordering::SeqCst);
        })
    };
    let _b = block_worker(&w, &gate);
    assert!(w.queue(&x));
    let x2 = x.clone();
    drop(x);
    drop(x2);
    assert_eq!(
        Arc::strong_count(&token),
        2,
        "the queue keeps the item alive"
    );
    gate.open();
    w.flush()?;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(Arc::strong_count(&token), 1, "freed once it ran");
    Ok(())
}

/// Documented: "How many items this worker has run" (flushes are not items).
#[test]
fn executed_counts_only_work_items() -> Res {
    let _wd = watchdog("executed_counts_only_work_items", WATCHDOG);
    let w = Worker::new("wq-exec")?;
    assert_eq!(w.executed(), 0, "a new worker has run no items");
    let (x, _) = counting();
    for _ in 0..3 {
        assert!(w.queue(&x));
        w.flush()?;
    }
    assert!(!x.flush());
    assert_eq!(w.executed(), 3, "three items ran (flushes are not items)");
    Ok(())
}

// ---------------------------------------------------------------------------
// Freezer

#[test]
fn freezable_worker_freezes_between_items() -> Res {
    let _wd = watchdog("freezable_worker_freezes_between_items", WATCHDOG);
    let _serial = lock(&FREEZER);
    let w = Worker::builder("wq-frz").freezable(true).create()?;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let item = |i: usize| {
        let l = log.clone();
        Work::new(move || lock(&l).push(i))
    };
    let items: Vec<Work> = (0..30).map(item).collect();
    for it in &items[..10] {
        assert!(w.queue(it));
    }
    w.flush()?;
    assert_eq!(lock(&log).len(), 10);

    // Freeze while an item runs: the freeze completes only once that item
    // is over, and the worker freezes before the next one.
    let started = Arc::new(Completion::new());
    let b = {
        let (g, s, l) = (gate.handle(), started.clone(), log.clone());
        Work::new(move || {
            s.complete();
            g.wait();
            lock(&l).push(100);
        })
    };
    assert!(w.queue(&b));
    expect_done(&started, "item running");
    for it in &items[10..20] {
        assert!(w.queue(it));
    }
    let freezer =
        background(|| kthread::freezer::freeze(Duration::from_secs(5)).map_err(|e| e.to_string()));
    freezer.assert_blocked("freeze while a freezable worker runs an item");
    gate.open();
    let guard = freezer.join("freeze")?;
    assert_eq!(w.task().state(), TaskState::Frozen);
    let frozen_at = lock(&log).len();
    assert_eq!(
        frozen_at, 11,
        "froze right after the running item, before the next"
    );
    for it in &items[20..] {
        assert!(w.queue(it));
    }
    thread::sleep(SHORT); // negative check: nothing runs while frozen
    assert_eq!(lock(&log).len(), frozen_at, "ran items while frozen");
    assert_eq!(w.task().state(), TaskState::Frozen);
    drop(guard); // thaw
    w.flush()?;
    let want: Vec<usize> = (0..10).chain([100]).chain(10..30).collect();
    assert_eq!(
        *lock(&log),
        want,
        "order kept and nothing lost across the freeze"
    );
    Ok(())
}
