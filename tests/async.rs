#![cfg(feature = "async")]
//! The futures of feature `async`: `Completion::wait_async`,
//! `Work`/`DelayedWork::flush_async` and `cancel_async`,
//! `Worker::flush_async` and `Kthread::stop_async`.
//!
//! 1. Each future resolves as its blocking twin returns, under
//!    `futures::executor::block_on` and tokio's `current_thread` and
//!    `multi_thread` runtimes.
//! 2. A `current_thread` runtime keeps running its other tasks while one
//!    of them awaits a busy worker (the only one that can free the worker is
//!    a timer task on the same thread).
//! 3. A future dropped while pending leaves the item, the worker or the
//!    kthread consistent, and its waker is never woken after the drop.
//! 4. Many round trips lose no wake-up.
//!
//! Synchronisation is by `Completion`s (often awaited), the library's own
//! flushes and manual polls. The one timer (`tokio::time::sleep`, test 2)
//! is what that test is about; the one polling loop waits until a kthread
//! has entered `read()` (as `tests/interrupt.rs` does), and each such case
//! also runs with the stop landing at once.

mod common;

use common::{os_state, sleep_until_stopped, wait_briefly_until, watchdog, WATCHDOG};
use kthread::{Builder, Completion, DelayedWork, Error, Kthread, StopError, Task, Work, Worker};
use std::fmt::Debug;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// How long something the test already caused may take to show.
const BRIEF: Duration = Duration::from_secs(5);
/// A delay that never expires during a test.
const HOUR: Duration = Duration::from_secs(3600);

/// The message of every panic these tests provoke on purpose.
const INTENTIONAL: &str = "intentional panic in a kthread (async test)";

/// The end of the panic message of a flush from the item's own worker.
const OWN_WORKER: &str = "called from its own worker";

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
            // The panics of `flush_async` from its own worker, provoked too.
            let expected = msg.is_some_and(|m| m == INTENTIONAL || m.ends_with(OWN_WORKER));
            if !expected {
                default(info);
            }
        }));
    });
}

// ---- executors --------------------------------------------------------------

/// Runs the future `make()` returns on each executor in turn: `futures`'
/// `block_on`, a tokio `current_thread` runtime, and a task spawned on a
/// two-thread tokio `multi_thread` runtime (so the future is polled, and
/// woken, on a runtime worker, and must be `Send`).
fn on_every_executor<F, Fut>(what: &str, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    eprintln!("{what}: futures::executor::block_on");
    futures::executor::block_on(make());

    eprintln!("{what}: tokio current_thread");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current_thread runtime")
        .block_on(make());

    eprintln!("{what}: tokio multi_thread");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi_thread runtime");
    if let Err(e) = rt.block_on(rt.spawn(make())) {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One poll of `f` with the task's own waker, inside an async block (so
/// the test can see a future is pending, then await it to the end).
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// A waker counting its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The waker the drop tests poll with: a no-op one, or a counting one.
struct Probe {
    counter: Option<Arc<Counter>>,
    waker: Waker,
}

impl Probe {
    fn noop() -> Probe {
        Probe {
            counter: None,
            waker: Waker::noop().clone(),
        }
    }

    fn counting() -> Probe {
        let c = Arc::new(Counter::default());
        Probe {
            counter: Some(c.clone()),
            waker: Waker::from(c),
        }
    }

    /// Wakes so far (always 0 for the no-op waker).
    fn wakes(&self) -> usize {
        self.counter
            .as_ref()
            .map_or(0, |c| c.0.load(Ordering::SeqCst))
    }

    /// Polls `f` once with this waker.
    fn poll<F: Future + ?Sized>(&self, f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(&self.waker))
    }

    /// Polls `f` once, which must be pending.
    fn poll_pending<F: Future + ?Sized>(&self, what: &str, f: Pin<&mut F>) {
        assert!(self.poll(f).is_pending(), "{what}: must be pending here");
    }

    /// Boxes `f`, polls it once (it must be pending) and drops it; returns
    /// the wakes counted at the drop.
    fn pending_then_drop<F: Future>(&self, what: &str, f: F) -> usize {
        let mut f = Box::pin(f);
        self.poll_pending(what, f.as_mut());
        drop(f);
        self.wakes()
    }

    /// No wake reached the waker since the drop (`at_drop` wakes then).
    fn assert_no_wake_since(&self, at_drop: usize, what: &str) {
        assert_eq!(
            self.wakes(),
            at_drop,
            "{what}: the waker of a dropped future was woken"
        );
    }
}

// ---- gates and items --------------------------------------------------------

/// A gate work items (or kthreads) wait on. Opens when dropped, so a failing
/// test unblocks its worker (whose `Drop` flushes) instead of hanging.
/// Declare it after the workers it blocks, so it is dropped first.
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

/// A work item that signals `started` at each run, blocks until `gate`
/// opens, then sets `finished`.
struct Slow {
    work: Work,
    started: Arc<Completion>,
    finished: Arc<AtomicBool>,
}

fn slow(gate: &Gate) -> Slow {
    let started = Arc::new(Completion::new());
    let finished = Arc::new(AtomicBool::new(false));
    let (g, s, f) = (gate.handle(), started.clone(), finished.clone());
    Slow {
        work: Work::new(move || {
            s.complete();
            g.wait();
            f.store(true, Ordering::SeqCst);
        }),
        started,
        finished,
    }
}

/// Queues a slow item on `w` and returns once it runs: the worker is
/// busy until `gate` opens.
async fn block_worker(w: &Worker, gate: &Gate) -> Slow {
    let s = slow(gate);
    assert!(w.queue(&s.work));
    s.started.wait_async().await;
    s
}

/// As [`block_worker`], for the tests that poll by hand (blocking wait).
fn block_worker_now(w: &Worker, gate: &Gate) -> Slow {
    let s = slow(gate);
    assert!(w.queue(&s.work));
    assert!(s.started.wait_timeout(BRIEF), "the blocker did not start");
    s
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

/// A delayed work item counting its runs.
fn counting_delayed() -> (DelayedWork, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    (
        DelayedWork::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

fn runs(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

// ---- kthreads ----------------------------------------------------------------

/// A stop's result, comparable whatever `T` and the error are.
fn describe<T: Debug>(r: &Result<T, StopError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(StopError::Panicked(_)) => format!(
            "Panicked({:?})",
            r.as_ref().err().and_then(StopError::panic_message)
        ),
        Err(e) => format!("Err({e:?})"),
    }
}

/// An empty pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// What the pipe reader returns once stopped.
const STOPPED_IN_READ: &str = "stopped while blocked in read()";

/// An `interrupt_on_stop` kthread blocked in a raw `read()` of the empty
/// pipe `r` (its writer stays open), retrying `EINTR` until `should_stop()`.
fn pipe_reader(r: OwnedFd) -> Kthread<&'static str> {
    Builder::new("async-reader")
        .interrupt_on_stop(true)
        .run(move || {
            let mut buf = [0u8; 16];
            while !kthread::should_stop() {
                // SAFETY: reads at most `buf.len()` bytes into `buf`.
                let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                let e = std::io::Error::last_os_error();
                assert!(
                    n < 0 && e.raw_os_error() == Some(libc::EINTR),
                    "read of an empty pipe with its writer open returned {n} ({e})"
                );
            }
            STOPPED_IN_READ
        })
        .expect("pipe reader")
}

/// The system call thread `tid` is blocked in, from `/proc`.
fn syscall_of(tid: i32) -> Option<libc::c_long> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Waits until thread `tid` sleeps in `read()`. Looking at `/proc` is used
/// only for this, to make the stop land inside the call; no outcome depends
/// on it (each case also runs with the stop at once).
fn wait_in_read(tid: i32) {
    let start = Instant::now();
    while !(os_state(tid) == Some('S') && syscall_of(tid) == Some(libc::SYS_read)) {
        assert!(
            start.elapsed() < BRIEF,
            "thread {tid} not blocked in read() within {BRIEF:?}: state {:?}, syscall {:?}",
            os_state(tid),
            syscall_of(tid)
        );
        thread::yield_now();
    }
}

/// Tells (completes) when dropped: a kthread result whose drop is seen.
#[derive(Debug)]
struct Tell(Arc<Completion>);

impl Drop for Tell {
    fn drop(&mut self) {
        self.0.complete_all();
    }
}

// ==== 1. each future resolves as its blocking twin returns ====================

#[test]
fn wait_async_resolves_as_wait_returns() {
    let _w = watchdog("wait_async_resolves_as_wait_returns", WATCHDOG);
    on_every_executor("wait_async", || async {
        // Completed from a kthread, after the waiter parked.
        let go = Arc::new(Completion::new());
        let done = Arc::new(Completion::new());
        let (g, d) = (go.clone(), done.clone());
        let k = kthread::run("async-completer", move || {
            g.wait();
            d.complete();
        })
        .expect("run");
        let mut waiting = pin!(done.wait_async());
        assert!(poll_once(&mut waiting).await.is_pending());
        go.complete();
        waiting.await;
        assert!(!done.is_done(), "the wait consumed the completion");
        k.stop().expect("completer");

        // Counting: two completes, two waits, then none left.
        let c = Completion::new();
        c.complete();
        c.complete();
        c.wait_async().await;
        c.wait_async().await;
        assert!(!c.is_done(), "two completes are two waits, no more");
        {
            let mut third = pin!(c.wait_async());
            assert!(poll_once(&mut third).await.is_pending());
        }
        // The blocking twin counts the same.
        c.complete();
        c.complete();
        c.wait();
        c.wait();
        assert!(!c.is_done());

        // complete_all from a kthread: every parked waiter, and every later one.
        let go = Arc::new(Completion::new());
        let all = Arc::new(Completion::new());
        let (g, a) = (go.clone(), all.clone());
        let k = kthread::run("async-all", move || {
            g.wait();
            a.complete_all();
        })
        .expect("run");
        let mut waiters: Vec<_> = (0..8).map(|_| Box::pin(all.wait_async())).collect();
        for f in &mut waiters {
            assert!(poll_once(f).await.is_pending());
        }
        go.complete();
        futures::future::join_all(waiters).await;
        for _ in 0..100 {
            all.wait_async().await;
        }
        assert!(all.is_done(), "complete_all is never consumed");
        all.wait();
        k.stop().expect("complete_all kthread");
    });
}

#[test]
fn complete_releases_one_parked_async_waiter_and_complete_all_every_one() {
    let _w = watchdog("complete_releases_one_parked_async_waiter", WATCHDOG);
    let c = Completion::new();
    let probes: Vec<Probe> = (0..4).map(|_| Probe::counting()).collect();
    let mut futs: Vec<_> = (0..4).map(|_| Box::pin(c.wait_async())).collect();
    for (p, f) in probes.iter().zip(&mut futs) {
        p.poll_pending("a waiter before any complete", f.as_mut());
    }
    let mut ready = vec![false; 4];
    for round in 1..=2 {
        let before: Vec<usize> = probes.iter().map(Probe::wakes).collect();
        c.complete();
        assert!(
            probes
                .iter()
                .zip(&ready)
                .zip(&before)
                .any(|((p, &r), &b)| !r && p.wakes() > b),
            "complete #{round} woke no parked waiter"
        );
        for ((p, f), r) in probes.iter().zip(&mut futs).zip(&mut ready) {
            if !*r && p.poll(f.as_mut()).is_ready() {
                *r = true;
            }
        }
        let n = ready.iter().filter(|&&r| r).count();
        assert_eq!(n, round, "after {round} completes, {n} waiters resolved");
    }
    let before: Vec<usize> = probes.iter().map(Probe::wakes).collect();
    c.complete_all();
    for (((p, f), r), b) in probes.iter().zip(&mut futs).zip(&mut ready).zip(before) {
        if !*r {
            assert!(p.wakes() > b, "complete_all left a parked waiter asleep");
            assert!(p.poll(f.as_mut()).is_ready(), "complete_all: still pending");
            *r = true;
        }
    }
}

#[test]
fn work_flush_async_resolves_as_flush_returns() {
    let _w = watchdog("work_flush_async_resolves_as_flush_returns", WATCHDOG);
    on_every_executor("Work::flush_async", || async {
        let w = Worker::new("async-flush").expect("worker");
        let gate = Gate::new();
        let (job, n) = counting();
        // Never queued: idle, false at once, as flush.
        assert!(!job.flush_async().await);
        assert!(!job.flush());

        let blocker = block_worker(&w, &gate).await;
        assert!(w.queue(&job));
        let mut queued = pin!(job.flush_async());
        let mut running = pin!(blocker.work.flush_async());
        assert!(
            poll_once(&mut queued).await.is_pending(),
            "queued behind the blocker"
        );
        assert!(
            poll_once(&mut running).await.is_pending(),
            "the blocker runs"
        );
        assert_eq!(runs(&n), 0);
        gate.open();
        assert!(running.await, "the running instance: waited for");
        assert!(
            blocker.finished.load(Ordering::SeqCst),
            "resolved before the run ended"
        );
        assert!(queued.await, "the queued instance: waited for");
        assert_eq!(runs(&n), 1, "resolved before the item ran");
        assert!(!job.is_pending());

        // Idle again: false at once, as flush.
        assert!(!job.flush_async().await);
        assert!(!job.flush());
        assert!(!blocker.work.flush_async().await);
        // Later rounds are flushed the same way.
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        job.flush_async().await;
        assert_eq!(runs(&n), 2);
    });
}

#[test]
fn work_cancel_async_resolves_as_cancel_sync_returns() {
    let _w = watchdog(
        "work_cancel_async_resolves_as_cancel_sync_returns",
        WATCHDOG,
    );
    on_every_executor("Work::cancel_async", || async {
        let w = Worker::new("async-cancel").expect("worker");
        let gate = Gate::new();
        let (job, n) = counting();
        // Never queued.
        assert!(!job.cancel_async().await);
        assert!(!job.cancel_sync());

        // Pending: taken off, true, and it never runs.
        let _blocker = block_worker(&w, &gate).await;
        assert!(w.queue(&job));
        assert!(job.cancel_async().await, "pending: cancelled");
        assert!(!job.is_pending());
        gate.open();
        w.flush_async().await.expect("flush");
        assert_eq!(runs(&n), 0, "a cancelled instance ran");
        // Idle: false, as cancel_sync.
        assert!(!job.cancel_async().await);
        assert!(!job.cancel_sync());
        // Queueing works again.
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        job.flush_async().await;
        assert_eq!(runs(&n), 1);

        // Running: waits for the run to end, false; queueing fails meanwhile.
        let gate2 = Gate::new();
        let s = block_worker(&w, &gate2).await;
        let mut cancel = pin!(s.work.cancel_async());
        assert!(
            poll_once(&mut cancel).await.is_pending(),
            "a running instance is waited for"
        );
        assert!(!w.queue(&s.work), "a queue during the cancel must fail");
        assert!(!s.finished.load(Ordering::SeqCst));
        gate2.open();
        assert!(!cancel.await, "it was running, not pending");
        assert!(
            s.finished.load(Ordering::SeqCst),
            "resolved before the running instance finished"
        );
        assert!(
            w.queue(&s.work),
            "queueing works again once the cancel resolved"
        );
        w.flush_async().await.expect("flush");
    });
}

#[test]
fn delayed_work_flush_and_cancel_async_resolve_as_their_blocking_twins() {
    let _w = watchdog("delayed_work_flush_and_cancel_async", WATCHDOG);
    on_every_executor("DelayedWork::flush_async/cancel_async", || async {
        let w = Worker::new("async-delayed").expect("worker");
        let (d, n) = counting_delayed();
        assert!(!d.flush_async().await, "never queued");
        assert!(!d.cancel_async().await, "never queued");

        // Armed far in the future: flush fires it now, waits, true.
        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.is_pending());
        assert!(d.flush_async().await, "armed: fired and waited for");
        assert_eq!(runs(&n), 1, "resolved before the fired instance ran");
        assert!(!d.is_pending());
        assert!(!d.flush_async().await, "idle");
        assert!(!d.flush());
        // The blocking twin on the same state.
        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.flush());
        assert_eq!(runs(&n), 2);

        // Armed: cancel disarms it, true, and it never runs.
        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.cancel_async().await, "armed: cancelled");
        assert!(!d.is_pending());
        w.flush_async().await.expect("flush");
        assert_eq!(runs(&n), 2, "a cancelled instance ran");
        assert!(!d.cancel_async().await, "idle");
        assert!(!d.cancel_sync());
        // The blocking twin on the same state.
        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.cancel_sync());

        // Queued behind a busy worker (a zero delay queues at once): cancelled.
        let gate = Gate::new();
        let _blocker = block_worker(&w, &gate).await;
        assert!(w.queue_delayed(&d, Duration::ZERO));
        assert!(d.cancel_async().await, "queued: cancelled");
        gate.open();
        w.flush_async().await.expect("flush");
        assert_eq!(runs(&n), 2, "a cancelled instance ran");

        // Running: the cancel waits for the run, false; queueing fails meanwhile.
        let gate2 = Gate::new();
        let started = Arc::new(Completion::new());
        let finished = Arc::new(AtomicBool::new(false));
        let slow_d = {
            let (g, s, f) = (gate2.handle(), started.clone(), finished.clone());
            DelayedWork::new(move || {
                s.complete();
                g.wait();
                f.store(true, Ordering::SeqCst);
            })
        };
        assert!(w.queue_delayed(&slow_d, Duration::ZERO));
        started.wait_async().await;
        let mut cancel = pin!(slow_d.cancel_async());
        assert!(poll_once(&mut cancel).await.is_pending());
        assert!(
            !w.queue_delayed(&slow_d, Duration::ZERO),
            "queued during the cancel"
        );
        gate2.open();
        assert!(!cancel.await, "it was running, not pending");
        assert!(finished.load(Ordering::SeqCst));
        assert!(w.queue_delayed(&slow_d, HOUR), "queueing works again");
        assert!(slow_d.cancel_async().await);

        // Queueing works again after the async cancels.
        assert!(w.queue_delayed(&d, Duration::ZERO));
        // Idle at once if it ran before the call: no assertion on the bool.
        d.flush_async().await;
        assert_eq!(runs(&n), 3);
    });
}

#[test]
fn worker_flush_async_resolves_as_flush_returns() {
    let _w = watchdog("worker_flush_async_resolves_as_flush_returns", WATCHDOG);
    on_every_executor("Worker::flush_async", || async {
        let w = Worker::new("async-wflush").expect("worker");
        w.flush_async().await.expect("an idle worker");
        w.flush().expect("an idle worker");

        // Everything queued before the call has run when it resolves.
        let gate = Gate::new();
        let _blocker = block_worker(&w, &gate).await;
        let jobs: Vec<_> = (0..10).map(|_| counting()).collect();
        for (j, _) in &jobs {
            assert!(w.queue(j));
        }
        let mut f = pin!(w.flush_async());
        assert!(poll_once(&mut f).await.is_pending(), "the worker is busy");
        // Queued after the call: not waited for (but may have run).
        let (late, _) = counting();
        assert!(w.queue(&late));
        gate.open();
        f.await.expect("flush");
        for (i, (j, n)) in jobs.iter().enumerate() {
            assert_eq!(runs(n), 1, "job {i} had not run when the flush resolved");
            assert!(!j.is_pending());
        }
        w.flush_async().await.expect("flush");
        assert!(!late.is_pending());

        // From one of the worker's own items: WouldDeadlock, as flush.
        let w = Arc::new(w);
        let me = Arc::downgrade(&w);
        let (tx, rx) = std::sync::mpsc::channel();
        let probe = Work::new(move || {
            // The upgraded handle is dropped before the send: the test's
            // handle stays the last one.
            let got = {
                let w = me.upgrade().expect("the worker outlives its items");
                (futures::executor::block_on(w.flush_async()), w.flush())
            };
            tx.send(got).expect("send");
        });
        assert!(w.queue(&probe));
        // Idle at once if it ran before the call: no assertion on the bool.
        probe.flush_async().await;
        let (asynchronous, blocking) = rx
            .try_recv()
            .expect("the probe ran before the flush resolved");
        assert!(
            matches!(asynchronous, Err(Error::WouldDeadlock)),
            "flush_async from the worker's own item: {asynchronous:?}"
        );
        assert!(
            matches!(blocking, Err(Error::WouldDeadlock)),
            "flush from the worker's own item: {blocking:?}"
        );
        w.flush_async().await.expect("the worker goes on");
    });
}

#[test]
fn the_async_calls_from_an_item_on_its_own_worker_answer_as_the_blocking_ones() {
    let _w = watchdog("the_async_calls_from_an_item_on_its_own_worker", WATCHDOG);
    quiet_intentional_panics();
    let w = Worker::new("async-own").expect("worker");
    let gate = Gate::new();
    let (other, other_runs) = counting();
    let (idle, _) = counting();
    let (tx, rx) = std::sync::mpsc::channel();
    // The item reaches itself through this slot; it takes itself out at its
    // run, so no cycle outlives the test.
    let me: Arc<std::sync::Mutex<Option<Work>>> = Arc::default();
    let probe = {
        let (me, other, idle, g) = (me.clone(), other.clone(), idle.clone(), gate.handle());
        Work::new(move || {
            let Some(me) = me.lock().unwrap().take() else {
                return;
            };
            g.wait();
            use futures::executor::block_on;
            use std::panic::{catch_unwind, AssertUnwindSafe};
            let flush_pending_other = catch_unwind(AssertUnwindSafe(|| other.flush_async()))
                .err()
                .and_then(|p| p.downcast_ref::<String>().cloned());
            let flush_pending_other_blocking = catch_unwind(AssertUnwindSafe(|| other.flush()))
                .err()
                .and_then(|p| p.downcast_ref::<String>().cloned());
            let got = (
                flush_pending_other,
                flush_pending_other_blocking,
                block_on(idle.flush_async()),
                idle.flush(),
                // Itself, running: nothing to wait for (it would be itself).
                block_on(me.cancel_async()),
                // The other one, pending: taken off.
                block_on(other.cancel_async()),
            );
            tx.send(got).expect("send");
        })
    };
    *me.lock().unwrap() = Some(probe.clone());
    assert!(w.queue(&probe));
    assert!(w.queue(&other));
    gate.open();
    w.flush().expect("flush");
    let (flush_async_panic, flush_panic, idle_async, idle_blocking, cancel_self, cancel_other) = rx
        .try_recv()
        .expect("the probe ran before the flush returned");
    let flush_async_panic = flush_async_panic.expect("flush_async of a pending item did not panic");
    let flush_panic = flush_panic.expect("flush of a pending item did not panic");
    assert!(
        flush_async_panic.ends_with(OWN_WORKER),
        "{flush_async_panic}"
    );
    assert!(flush_panic.ends_with(OWN_WORKER), "{flush_panic}");
    assert!(!idle_async && !idle_blocking, "an idle item: false at once");
    assert!(!cancel_self, "the running item itself was not pending");
    assert!(cancel_other, "the pending item was taken off");
    assert_eq!(runs(&other_runs), 0, "a cancelled instance ran");
    // Queueing works again after both cancels.
    assert!(w.queue(&other));
    assert!(w.queue(&probe));
    w.flush().expect("flush");
    assert_eq!(runs(&other_runs), 1);
}

#[test]
fn the_futures_outlive_the_handles_they_came_from() {
    let _w = watchdog("the_futures_outlive_the_handles_they_came_from", WATCHDOG);
    on_every_executor("futures without their handles", || async {
        // A flush of an item whose every handle is gone.
        let w = Worker::new("async-outlive").expect("worker");
        let gate = Gate::new();
        let _b = block_worker(&w, &gate).await;
        let (job, n) = counting();
        assert!(w.queue(&job));
        let flushed = job.flush_async();
        drop(job);
        let mut flushed = pin!(flushed);
        assert!(poll_once(&mut flushed).await.is_pending());
        gate.open();
        assert!(flushed.await);
        assert_eq!(runs(&n), 1);

        // A cancel of an item whose every handle is gone.
        let gate = Gate::new();
        let s = block_worker(&w, &gate).await;
        let Slow { work, finished, .. } = s;
        let cancel = work.cancel_async();
        drop(work);
        let mut cancel = pin!(cancel);
        assert!(poll_once(&mut cancel).await.is_pending());
        gate.open();
        assert!(!cancel.await);
        assert!(finished.load(Ordering::SeqCst));

        // A worker flush pending when the worker is destroyed: the destroy
        // runs what is queued, the flush sentinel too.
        let gate = Gate::new();
        let _b = block_worker(&w, &gate).await;
        let (job, n) = counting();
        assert!(w.queue(&job));
        let mut flushed = Box::pin(w.flush_async());
        let mut item_flushed = Box::pin(job.flush_async());
        assert!(poll_once(&mut flushed).await.is_pending());
        assert!(poll_once(&mut item_flushed).await.is_pending());
        gate.open();
        drop(w);
        flushed.await.expect("the flush of a destroyed worker");
        assert!(item_flushed.await);
        assert_eq!(runs(&n), 1);

        // A stop spawned as a task of its own (the future is 'static).
        let k = kthread::run("async-spawned", || {
            sleep_until_stopped();
            3
        })
        .expect("run");
        let stopped = std::thread::spawn(move || futures::executor::block_on(k.stop_async()));
        assert_eq!(stopped.join().expect("stopper thread").expect("stop"), 3);
    });
}

#[test]
fn stop_async_resolves_as_stop_returns() {
    let _w = watchdog("stop_async_resolves_as_stop_returns", WATCHDOG);
    quiet_intentional_panics();
    on_every_executor("Kthread::stop_async", || async {
        // Each case stopped both ways: the same result.
        for blocking in [false, true] {
            let stop = |k: Kthread<i32>| async move {
                if blocking {
                    k.stop()
                } else {
                    k.stop_async().await
                }
            };
            let how = if blocking { "stop" } else { "stop_async" };

            let k = kthread::run("async-stop", || {
                sleep_until_stopped();
                42
            })
            .expect("run");
            assert_eq!(
                describe(&stop(k).await),
                "Ok(42)",
                "{how}: a running kthread"
            );

            let returned = Arc::new(Completion::new());
            let r = returned.clone();
            let k = kthread::run("async-ret", move || {
                r.complete();
                7
            })
            .expect("run");
            returned.wait_async().await;
            assert_eq!(
                describe(&stop(k).await),
                "Ok(7)",
                "{how}: a kthread that returned"
            );

            let k = kthread::create("async-unwoken", || -> i32 { unreachable!("never woken") })
                .expect("create");
            assert_eq!(
                describe(&stop(k).await),
                describe::<i32>(&Err(StopError::NotStarted)),
                "{how}: never woken"
            );

            let k =
                kthread::run("async-boom", || -> i32 { panic!("{}", INTENTIONAL) }).expect("run");
            assert_eq!(
                describe(&stop(k).await),
                format!("Panicked({:?})", Some(INTENTIONAL)),
                "{how}: a panicking kthread"
            );
        }

        // The payload of a panic is intact.
        let k = kthread::run("async-boom2", || -> i32 { panic!("{}", INTENTIONAL) }).expect("run");
        match k.stop_async().await {
            Err(e @ StopError::Panicked(_)) => assert_eq!(e.panic_message(), Some(INTENTIONAL)),
            other => panic!("a panicking kthread: {}", describe(&other)),
        }

        // From the kthread itself: Current at once, as stop; the stop stays
        // requested and the kthread ends by itself.
        for blocking in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel::<Kthread<()>>();
            let (rtx, rrx) = std::sync::mpsc::channel();
            let ended = Arc::new(Completion::new());
            let e = ended.clone();
            let k = kthread::run("async-self", move || {
                let me = rx.recv().expect("own handle");
                let r = if blocking {
                    me.stop()
                } else {
                    futures::executor::block_on(me.stop_async())
                };
                rtx.send((describe(&r), kthread::should_stop()))
                    .expect("send");
                e.complete();
            })
            .expect("run");
            let task = k.task().clone();
            tx.send(k).expect("send the handle");
            ended.wait_async().await;
            let (r, saw_stop) = rrx
                .try_recv()
                .expect("the kthread answered before it ended");
            assert_eq!(
                r,
                describe::<()>(&Err(StopError::Current)),
                "blocking: {blocking}"
            );
            assert!(saw_stop, "the stop from the kthread itself stays requested");
            wait_briefly_until("the self-stopped kthread has exited", BRIEF, || {
                task.has_exited()
            });
        }

        // interrupt_on_stop: a kthread blocked in read() of an empty pipe,
        // once inside the call, then a few times with the stop at once.
        for at_once in [false, true, true, true, true] {
            let (r, writer) = pipe();
            let k = pipe_reader(r);
            if !at_once {
                wait_in_read(k.task().tid());
            }
            assert_eq!(
                k.stop_async().await.expect("pipe reader"),
                STOPPED_IN_READ,
                "at once: {at_once}"
            );
            drop(writer);
        }
    });
}

thread_local! {
    /// Holds a kthread in its thread-local destructors (see [`InDtor`]).
    static HOLD: std::cell::RefCell<Option<InDtor>> = const { std::cell::RefCell::new(None) };
}

/// A thread-local value whose destructor tells `entered`, waits for
/// `gate`, then sets `left`: the kthread's function has returned (its
/// `exited` is complete) but its thread cannot be joined yet.
struct InDtor {
    entered: Arc<Completion>,
    gate: Arc<Completion>,
    left: Arc<AtomicBool>,
}

impl Drop for InDtor {
    fn drop(&mut self) {
        self.entered.complete_all();
        self.gate.wait();
        self.left.store(true, Ordering::SeqCst);
    }
}

/// A kthread that, once stopped, returns `Tell(dropped)` and then blocks
/// in a thread-local destructor until `gate` opens. Returns the handle,
/// `entered` (the destructor runs) and `left` (it returned).
fn held_in_dtor(
    gate: &Gate,
    dropped: &Arc<Completion>,
) -> (Kthread<Tell>, Arc<Completion>, Arc<AtomicBool>) {
    let entered = Arc::new(Completion::new());
    let left = Arc::new(AtomicBool::new(false));
    let hold = InDtor {
        entered: entered.clone(),
        gate: gate.handle(),
        left: left.clone(),
    };
    let d = dropped.clone();
    let k = kthread::run("async-tls", move || {
        HOLD.with(|h| *h.borrow_mut() = Some(hold));
        sleep_until_stopped();
        Tell(d)
    })
    .expect("run");
    (k, entered, left)
}

#[test]
fn stop_async_resolves_only_once_the_thread_is_joined_after_its_thread_local_destructors() {
    let _w = watchdog(
        "stop_async_resolves_only_once_the_thread_is_joined",
        WATCHDOG,
    );
    on_every_executor("stop_async in thread-local destructors", || async {
        let gate = Gate::new();
        let dropped = Arc::new(Completion::new());
        let (k, entered, left) = held_in_dtor(&gate, &dropped);
        let mut stop = pin!(k.stop_async());
        assert!(
            poll_once(&mut stop).await.is_pending(),
            "the stop was just requested"
        );
        entered.wait_async().await;
        // The function has returned; the thread is in its destructors: the
        // stop now waits for the join.
        assert!(
            poll_once(&mut stop).await.is_pending(),
            "resolved while the thread ran its thread-local destructors"
        );
        assert!(!left.load(Ordering::SeqCst));
        gate.open();
        let r = stop.await.expect("stop");
        assert!(
            left.load(Ordering::SeqCst),
            "resolved before the thread-local destructors had run"
        );
        assert!(!dropped.is_done(), "the result is the caller's");
        drop(r);
        assert!(dropped.is_done());
    });
}

#[test]
fn a_stop_async_dropped_while_waiting_for_the_join_is_never_woken() {
    let _w = watchdog("a_stop_async_dropped_while_waiting_for_the_join", WATCHDOG);
    with_each_probe(|p| {
        let gate = Gate::new();
        let dropped = Arc::new(Completion::new());
        let (k, entered, left) = held_in_dtor(&gate, &dropped);
        let mut stop = Box::pin(k.stop_async());
        p.poll_pending("stop_async (stop requested)", stop.as_mut());
        assert!(entered.wait_timeout(BRIEF), "the kthread did not return");
        p.poll_pending("stop_async (waiting for the join)", stop.as_mut());
        drop(stop);
        let at = p.wakes();
        assert!(
            dropped.wait_timeout(BRIEF),
            "the result was not dropped with the future"
        );
        gate.open();
        // The reaper joins in order: once a later stop that also waited
        // for the join has resolved, the dropped one's join is done too.
        let gate2 = Gate::new();
        let dropped2 = Arc::new(Completion::new());
        let (k2, entered2, _) = held_in_dtor(&gate2, &dropped2);
        let mut stop2 = Box::pin(k2.stop_async());
        let p2 = Probe::counting();
        p2.poll_pending("the second stop_async", stop2.as_mut());
        assert!(entered2.wait_timeout(BRIEF));
        p2.poll_pending("the second stop_async (join)", stop2.as_mut());
        gate2.open();
        let r = futures::executor::block_on(stop2).expect("the second stop");
        drop(r);
        assert!(
            left.load(Ordering::SeqCst),
            "the second stop resolved before the first thread was joined"
        );
        p.assert_no_wake_since(at, "stop_async (join)");
    });
}

// ==== 2. the executor runs on while a future waits ============================

/// Awaits `fut`, which can only resolve once `gate` opens, while a task on
/// the same runtime sleeps 5 ms on tokio's timer and then opens it. Were
/// the await blocking the (single) thread, the timer task could never run
/// and the watchdog would fire.
async fn opened_by_a_timer_task<F: Future>(what: &str, gate: &Gate, fut: F) -> F::Output {
    let opened = Arc::new(AtomicBool::new(false));
    let (g, o) = (gate.handle(), opened.clone());
    let timer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        o.store(true, Ordering::SeqCst);
        g.complete_all();
    });
    let out = fut.await;
    assert!(
        opened.load(Ordering::SeqCst),
        "{what}: resolved before the timer task opened the gate"
    );
    timer.await.expect("timer task");
    out
}

#[test]
fn a_current_thread_runtime_runs_other_tasks_while_an_await_on_a_busy_worker_is_pending() {
    let _w = watchdog("a_current_thread_runtime_runs_other_tasks", WATCHDOG);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current_thread runtime");
    rt.block_on(async {
        let w = Worker::new("async-busy").expect("worker");

        // Work::flush_async of an item queued behind a blocked one.
        let gate = Gate::new();
        let blocker = block_worker(&w, &gate).await;
        let (job, n) = counting();
        assert!(w.queue(&job));
        let flushed = job.flush_async();
        assert!(opened_by_a_timer_task("Work::flush_async", &gate, flushed).await);
        assert_eq!(runs(&n), 1);
        assert!(blocker.finished.load(Ordering::SeqCst));

        // Worker::flush_async of a worker held by a blocked item.
        let gate = Gate::new();
        let _blocker = block_worker(&w, &gate).await;
        assert!(w.queue(&job));
        let flushed = w.flush_async();
        opened_by_a_timer_task("Worker::flush_async", &gate, flushed)
            .await
            .expect("flush");
        assert_eq!(runs(&n), 2);

        // DelayedWork::flush_async of an armed item, fired behind a blocked one.
        let gate = Gate::new();
        let _blocker = block_worker(&w, &gate).await;
        let (d, dn) = counting_delayed();
        assert!(w.queue_delayed(&d, HOUR));
        let flushed = d.flush_async();
        assert!(opened_by_a_timer_task("DelayedWork::flush_async", &gate, flushed).await);
        assert_eq!(runs(&dn), 1);

        // Work::cancel_async of a running item.
        let gate = Gate::new();
        let s = block_worker(&w, &gate).await;
        let cancelled = s.work.cancel_async();
        assert!(!opened_by_a_timer_task("Work::cancel_async", &gate, cancelled).await);
        assert!(s.finished.load(Ordering::SeqCst));

        // Completion::wait_async on the gate itself.
        let gate = Gate::new();
        let c = gate.handle();
        opened_by_a_timer_task("Completion::wait_async", &gate, c.wait_async()).await;

        // Kthread::stop_async of a kthread that returns once the gate opens.
        let gate = Gate::new();
        let g = gate.handle();
        let k = kthread::run("async-held", move || {
            sleep_until_stopped();
            g.wait();
            5
        })
        .expect("run");
        let stopped = k.stop_async();
        assert_eq!(
            opened_by_a_timer_task("Kthread::stop_async", &gate, stopped)
                .await
                .expect("stop"),
            5
        );
    });
}

// ==== 3. dropped while pending ================================================

/// Runs a drop scenario with a no-op waker, then with a counting one.
fn with_each_probe(scenario: impl Fn(&Probe)) {
    scenario(&Probe::noop());
    scenario(&Probe::counting());
}

#[test]
fn a_dropped_wait_async_consumes_nothing_and_is_never_woken() {
    let _w = watchdog("a_dropped_wait_async", WATCHDOG);
    with_each_probe(|p| {
        let c = Completion::new();
        let at = p.pending_then_drop("wait_async", c.wait_async());
        c.complete();
        p.assert_no_wake_since(at, "wait_async");
        assert!(c.is_done(), "the dropped waiter consumed the completion");
        assert!(c.wait_timeout(BRIEF));
        assert!(!c.is_done());

        // A live waiter next to a dropped one still gets its completion.
        let live = Probe::counting();
        let mut alive = Box::pin(c.wait_async());
        live.poll_pending("the live waiter", alive.as_mut());
        let at = p.pending_then_drop("wait_async", c.wait_async());
        c.complete();
        p.assert_no_wake_since(at, "wait_async");
        assert!(live.wakes() > 0, "the live waiter was not woken");
        assert!(live.poll(alive.as_mut()).is_ready());
        assert!(!c.is_done());

        let at = p.pending_then_drop("wait_async", c.wait_async());
        c.complete_all();
        p.assert_no_wake_since(at, "wait_async");
        c.wait();
    });
}

#[test]
fn a_dropped_work_flush_async_leaves_the_item_queued_and_usable() {
    let _w = watchdog("a_dropped_work_flush_async", WATCHDOG);
    with_each_probe(|p| {
        let w = Worker::new("async-dflush").expect("worker");
        let gate = Gate::new();
        let blocker = block_worker_now(&w, &gate);
        let (job, n) = counting();
        assert!(w.queue(&job));
        let at = p.pending_then_drop("Work::flush_async (queued)", job.flush_async());
        let at_running =
            p.pending_then_drop("Work::flush_async (running)", blocker.work.flush_async());
        assert!(job.is_pending(), "the drop took the item off the queue");
        gate.open();
        w.flush().expect("flush");
        p.assert_no_wake_since(at.max(at_running), "Work::flush_async");
        assert_eq!(runs(&n), 1, "the item still runs once");
        assert!(blocker.finished.load(Ordering::SeqCst));

        // Queue, flush and cancel work as before.
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        job.flush();
        assert_eq!(runs(&n), 2);
        let gate = Gate::new();
        let _b = block_worker_now(&w, &gate);
        assert!(w.queue(&job));
        assert!(job.cancel_sync());
        gate.open();
        w.flush().expect("flush");
        assert_eq!(runs(&n), 2, "cancelled");
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        futures::executor::block_on(job.flush_async());
        assert_eq!(runs(&n), 3);
        p.assert_no_wake_since(at.max(at_running), "Work::flush_async");
    });
}

#[test]
fn a_dropped_delayed_work_flush_async_leaves_the_fired_item_queued() {
    let _w = watchdog("a_dropped_delayed_work_flush_async", WATCHDOG);
    with_each_probe(|p| {
        let w = Worker::new("async-ddflush").expect("worker");
        let gate = Gate::new();
        let _b = block_worker_now(&w, &gate);
        let (d, n) = counting_delayed();
        assert!(w.queue_delayed(&d, HOUR));
        let at = p.pending_then_drop("DelayedWork::flush_async", d.flush_async());
        assert!(d.is_pending(), "the fired instance stays queued");
        gate.open();
        w.flush().expect("flush");
        p.assert_no_wake_since(at, "DelayedWork::flush_async");
        assert_eq!(runs(&n), 1, "fired at the call: it ran with the queue");

        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.cancel_sync());
        assert!(w.queue_delayed(&d, HOUR));
        assert!(d.flush());
        assert_eq!(runs(&n), 2);
        assert!(w.queue_delayed(&d, HOUR));
        assert!(futures::executor::block_on(d.flush_async()));
        assert_eq!(runs(&n), 3);
        p.assert_no_wake_since(at, "DelayedWork::flush_async");
    });
}

#[test]
fn a_dropped_cancel_async_ends_the_cancel_so_queueing_works_again() {
    let _w = watchdog("a_dropped_cancel_async", WATCHDOG);
    with_each_probe(|p| {
        let w = Worker::new("async-dcancel").expect("worker");

        // Running: dropped while it waits for the run.
        let gate = Gate::new();
        let s = block_worker_now(&w, &gate);
        let mut cancel = Box::pin(s.work.cancel_async());
        p.poll_pending("Work::cancel_async (running)", cancel.as_mut());
        assert!(!w.queue(&s.work), "a queue during the cancel must fail");
        drop(cancel);
        let at = p.wakes();
        assert!(
            w.queue(&s.work),
            "after the drop, queueing works again (the instance still runs)"
        );
        assert!(
            !s.finished.load(Ordering::SeqCst),
            "the run is still blocked"
        );
        gate.open();
        w.flush().expect("flush");
        p.assert_no_wake_since(at, "Work::cancel_async");
        assert!(s.finished.load(Ordering::SeqCst));
        assert!(
            s.started.wait_timeout(BRIEF),
            "the re-queued instance ran too"
        );
        assert!(!s.work.cancel_sync(), "idle");
        assert!(w.queue(&s.work));
        // Idle at once if it ran before the call: no assertion on the bool.
        s.work.flush();

        // Pending: the cancel is done at the call; dropping the (never
        // polled) future ends it, and the instance stays cancelled.
        let gate = Gate::new();
        let _b = block_worker_now(&w, &gate);
        let (job, n) = counting();
        assert!(w.queue(&job));
        drop(job.cancel_async());
        assert!(!job.is_pending(), "the pending instance was taken off");
        assert!(w.queue(&job), "after the drop, queueing works again");
        gate.open();
        w.flush().expect("flush");
        assert_eq!(runs(&n), 1, "only the re-queued instance ran");
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        job.flush();
        assert_eq!(runs(&n), 2);

        // A delayed item, running.
        let gate = Gate::new();
        let started = Arc::new(Completion::new());
        let (g, st) = (gate.handle(), started.clone());
        let dn = Arc::new(AtomicUsize::new(0));
        let c = dn.clone();
        let d = DelayedWork::new(move || {
            st.complete();
            g.wait();
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(w.queue_delayed(&d, Duration::ZERO));
        assert!(started.wait_timeout(BRIEF));
        let mut cancel = Box::pin(d.cancel_async());
        p.poll_pending("DelayedWork::cancel_async (running)", cancel.as_mut());
        assert!(
            !w.queue_delayed(&d, HOUR),
            "a queue during the cancel must fail"
        );
        drop(cancel);
        let at = p.wakes();
        assert!(
            w.queue_delayed(&d, HOUR),
            "after the drop, queueing works again"
        );
        gate.open();
        w.flush().expect("flush");
        p.assert_no_wake_since(at, "DelayedWork::cancel_async");
        assert_eq!(runs(&dn), 1);
        assert!(d.cancel_sync(), "the re-armed instance is pending");
        assert_eq!(runs(&dn), 1);
    });
}

#[test]
fn a_dropped_worker_flush_async_leaves_the_queue_as_it_is() {
    let _w = watchdog("a_dropped_worker_flush_async", WATCHDOG);
    with_each_probe(|p| {
        let w = Worker::new("async-dwflush").expect("worker");
        let gate = Gate::new();
        let _b = block_worker_now(&w, &gate);
        let (job, n) = counting();
        assert!(w.queue(&job));
        let at = p.pending_then_drop("Worker::flush_async", w.flush_async());
        assert!(job.is_pending());
        gate.open();
        w.flush().expect("flush");
        p.assert_no_wake_since(at, "Worker::flush_async");
        assert_eq!(runs(&n), 1);
        assert!(w.queue(&job));
        futures::executor::block_on(w.flush_async()).expect("flush");
        assert_eq!(runs(&n), 2);
        assert!(w.queue(&job));
        // Idle at once if it ran before the call: no assertion on the bool.
        job.flush();
        assert_eq!(runs(&n), 3);
        p.assert_no_wake_since(at, "Worker::flush_async");
    });
}

/// What a test sees of a kthread that, once stopped, tells `saw_stop`,
/// waits for its gate, then tells `returning` and returns a [`Tell`] on
/// `dropped`.
struct Held {
    task: Task,
    saw_stop: Arc<Completion>,
    returning: Arc<Completion>,
    dropped: Arc<Completion>,
}

/// Runs a kthread that ends only once it was stopped and `gate` opened.
fn held(gate: &Gate) -> (Kthread<Tell>, Held) {
    let saw_stop = Arc::new(Completion::new());
    let returning = Arc::new(Completion::new());
    let dropped = Arc::new(Completion::new());
    let (g, s, r, d) = (
        gate.handle(),
        saw_stop.clone(),
        returning.clone(),
        dropped.clone(),
    );
    let k = kthread::run("async-held", move || {
        sleep_until_stopped();
        s.complete_all();
        g.wait();
        r.complete_all();
        Tell(d)
    })
    .expect("run");
    let task = k.task().clone();
    (
        k,
        Held {
            task,
            saw_stop,
            returning,
            dropped,
        },
    )
}

impl Held {
    /// The stop was requested: the kthread saw it.
    fn assert_saw_stop(&self, what: &str) {
        assert!(
            self.saw_stop.wait_timeout(BRIEF),
            "{what}: the stop was not requested"
        );
    }

    /// The kthread ends: it returned, its result was dropped (nobody
    /// collects it) and its task reports `has_exited()`.
    fn assert_ends(&self, what: &str) {
        assert!(self.returning.wait_timeout(BRIEF), "{what}: did not return");
        assert!(
            self.dropped.wait_timeout(BRIEF),
            "{what}: its result was never dropped"
        );
        wait_briefly_until(&format!("{what}: has_exited"), BRIEF, || {
            self.task.has_exited()
        });
    }
}

#[test]
fn a_stop_async_dropped_after_one_poll_still_stops_the_kthread() {
    let _w = watchdog("a_stop_async_dropped_after_one_poll", WATCHDOG);
    with_each_probe(|p| {
        let gate = Gate::new();
        let (k, h) = held(&gate);
        let mut stop = Box::pin(k.stop_async());
        p.poll_pending("stop_async", stop.as_mut());
        h.assert_saw_stop("the first poll");
        drop(stop);
        let at = p.wakes();
        assert!(!h.task.has_exited(), "held by the gate");
        gate.open();
        h.assert_ends("stop_async dropped after one poll");
        p.assert_no_wake_since(at, "stop_async");
    });
}

#[test]
fn a_stop_async_dropped_unpolled_still_stops_the_kthread() {
    let _w = watchdog("a_stop_async_dropped_unpolled", WATCHDOG);
    // A running kthread: the drop requests the stop.
    let gate = Gate::new();
    let (k, h) = held(&gate);
    drop(k.stop_async());
    h.assert_saw_stop("the drop of an unpolled stop_async");
    gate.open();
    h.assert_ends("stop_async dropped unpolled");

    // A kthread never woken: the drop stops it, its function never runs.
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let k =
        kthread::create("async-unwoken2", move || r.store(true, Ordering::SeqCst)).expect("create");
    let task = k.task().clone();
    drop(k.stop_async());
    wait_briefly_until("a never-woken kthread has exited", BRIEF, || {
        task.has_exited()
    });
    assert!(
        !ran.load(Ordering::SeqCst),
        "the function of a never-woken kthread ran"
    );

    // A kthread that already returned.
    let returned = Arc::new(Completion::new());
    let dropped = Arc::new(Completion::new());
    let (r, d) = (returned.clone(), dropped.clone());
    let k = kthread::run("async-done", move || {
        r.complete();
        Tell(d)
    })
    .expect("run");
    assert!(returned.wait_timeout(BRIEF));
    let task = k.task().clone();
    drop(k.stop_async());
    assert!(dropped.wait_timeout(BRIEF), "its result was never dropped");
    wait_briefly_until("has_exited", BRIEF, || task.has_exited());
}

#[test]
fn a_stop_async_dropped_after_one_poll_still_stops_a_kthread_blocked_in_read() {
    let _w = watchdog("a_stop_async_dropped_after_one_poll_in_read", WATCHDOG);
    for at_once in [false, true, true, true] {
        let (r, writer) = pipe();
        let k = pipe_reader(r);
        let task = k.task().clone();
        if !at_once {
            wait_in_read(task.tid());
        }
        let p = Probe::counting();
        let mut stop = Box::pin(k.stop_async());
        let resolved = p.poll(stop.as_mut()).is_ready();
        drop(stop);
        let at = p.wakes();
        // Nobody waits to re-send the interruption: the kthread's own timer
        // does, until the kthread has seen the stop and left read().
        wait_briefly_until("the reader has exited", BRIEF, || task.has_exited());
        if !resolved {
            p.assert_no_wake_since(at, "stop_async (in read)");
        }
        drop(writer);
    }
}

// ==== 4. no lost wake-ups =====================================================

/// Round trips of [`queue_then_flush_async_round_trips`].
const ROUNDS: usize = 100_000;
/// Round trips on a tokio `current_thread` runtime.
const TOKIO_ROUNDS: usize = 20_000;

/// A waker that unparks its thread and records the wake.
struct Unparker {
    thread: thread::Thread,
    woken: AtomicBool,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// `block_on` that counts lost wake-ups instead of hanging on one: when no
/// wake came for a long while, it polls anyway, and a future found ready
/// then had lost its wake-up. Returns the output and the wake-ups lost
/// (0 or 1).
fn block_on_counting_lost<F: Future>(f: F) -> (F::Output, usize) {
    /// Far longer than any hand-off here; only a lost wake-up waits it out.
    const LOST_AFTER: Duration = Duration::from_secs(2);
    let u = Arc::new(Unparker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(u.clone());
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, 0);
        }
        let start = Instant::now();
        while !u.woken.swap(false, Ordering::SeqCst) {
            let waited = start.elapsed();
            if waited >= LOST_AFTER {
                if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                    // Ready, and no wake came: that one was lost.
                    return (v, 1);
                }
                break;
            }
            thread::park_timeout(LOST_AFTER - waited);
        }
    }
}

#[test]
fn queue_then_flush_async_round_trips_lose_no_wake_up() {
    let _w = watchdog("queue_then_flush_async_round_trips", WATCHDOG);
    let w = Worker::new("async-rounds").expect("worker");
    let (job, n) = counting();
    let mut resolved = 0;
    let mut lost = 0;
    let mut waited_for = 0;
    for i in 0..ROUNDS {
        assert!(w.queue(&job), "round {i}: the item was not idle");
        if i % 2 == 0 {
            let (waited, l) = block_on_counting_lost(job.flush_async());
            lost += l;
            // `false` only if the item had run by the call (checked below).
            waited_for += usize::from(waited);
        } else {
            let (r, l) = block_on_counting_lost(w.flush_async());
            lost += l;
            r.expect("flush");
        }
        resolved += 1;
        // Every instance ran before its flush resolved.
        assert_eq!(runs(&n), i + 1, "round {i}: resolved before the item ran");
    }
    assert_eq!(lost, 0, "lost wake-ups in {ROUNDS} round trips");
    eprintln!(
        "{waited_for} of {} item flushes found the item queued or running",
        ROUNDS / 2
    );
    assert_eq!(resolved, ROUNDS);
    assert_eq!(runs(&n), ROUNDS);
}

#[test]
fn flush_async_round_trips_on_a_current_thread_runtime() {
    let _w = watchdog(
        "flush_async_round_trips_on_a_current_thread_runtime",
        WATCHDOG,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current_thread runtime");
    let w = Worker::new("async-trounds").expect("worker");
    let (job, n) = counting();
    let resolved = rt.block_on(async {
        let mut resolved = 0;
        for i in 0..TOKIO_ROUNDS {
            assert!(w.queue(&job), "round {i}: the item was not idle");
            if i % 2 == 0 {
                // `false` only if the item had run by the call (checked below).
                job.flush_async().await;
            } else {
                w.flush_async().await.expect("flush");
            }
            resolved += 1;
            assert_eq!(runs(&n), i + 1, "round {i}: resolved before the item ran");
        }
        resolved
    });
    assert_eq!(resolved, TOKIO_ROUNDS);
    assert_eq!(runs(&n), TOKIO_ROUNDS);
}

#[test]
fn wait_async_ping_pong_with_a_kthread_loses_no_wake_up() {
    let _w = watchdog("wait_async_ping_pong_with_a_kthread", WATCHDOG);
    const PINGS: usize = 20_000;
    let ping = Arc::new(Completion::new());
    let pong = Arc::new(Completion::new());
    let (pi, po) = (ping.clone(), pong.clone());
    let k = kthread::run("async-pong", move || {
        for _ in 0..PINGS {
            pi.wait();
            po.complete();
        }
    })
    .expect("run");
    let mut lost = 0;
    for _ in 0..PINGS {
        ping.complete();
        lost += block_on_counting_lost(pong.wait_async()).1;
    }
    assert_eq!(lost, 0, "lost wake-ups in {PINGS} ping-pongs");
    k.stop().expect("pong kthread");
}
