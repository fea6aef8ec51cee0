//! Hand-off latency between two threads: idle wake, stop, park, flush,
//! wait queues.
//!
//! The peers use a raw futex, the floor of any user-space hand-off. Every
//! side takes `pin`: the measuring (calling) thread is pinned by
//! [`timed`](crate::timed), the other thread here.

use crate::sys::{futex_wait, futex_wake};
use crate::{yield_until, Pin, SETTLE};
use kthread::{schedule, schedule_timeout, set_current_state, should_park, should_stop, TaskState};
use kthread::{WaitQueue, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Nanoseconds since `base` (monotonic), as a timestamp two threads can compare.
fn ns_since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Creates a running worker, its thread bound to the other CPU if pinned.
pub(crate) fn worker(name: &str, pin: Pin) -> Worker {
    let b = Worker::builder(name);
    let b = match pin.other() {
        Some(cpu) => b.cpu(cpu),
        None => b,
    };
    b.create().expect("Worker create")
}

/// Waits until `task` sleeps in an interruptible wait, then a little more,
/// so that it sits in the kernel and not merely on its way there.
pub(crate) fn settle(task: &kthread::Task) {
    yield_until(|| task.state() == TaskState::Interruptible);
    thread::sleep(SETTLE);
}

/// Queues one item on an idle worker, `iters` times; sums the time from just
/// before `queue` to the item's first instruction.
///
/// The item then hands back as the futex peer's waiter does (store + futex
/// wake, the producer in `FUTEX_WAIT`), so that both sides block the
/// producer alike right after the wake: on a shared CPU that decides when
/// the woken thread gets to run.
///
/// # Panics
/// If the worker cannot be created or pinned.
pub fn kthread_idle_wake(iters: u64, pin: Pin) -> Duration {
    let worker = worker("bench-idle", pin);
    let base = Instant::now();
    let shared = Arc::new((AtomicU64::new(0), AtomicU32::new(0)));
    let item = {
        let shared = shared.clone();
        Work::new(move || {
            let (started, ack) = &*shared;
            started.store(ns_since(base), Ordering::Relaxed);
            ack.store(1, Ordering::Release);
            futex_wake(ack);
        })
    };
    let (started, ack) = &*shared;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        settle(worker.task());
        let t0 = ns_since(base);
        assert!(worker.queue(&item), "the item is idle between samples");
        while ack.load(Ordering::Acquire) == 0 {
            futex_wait(ack, 0);
        }
        ack.store(0, Ordering::Relaxed);
        total += Duration::from_nanos(started.load(Ordering::Relaxed).saturating_sub(t0));
    }
    total
}

/// What the idle-wake peer's waiter sleeps on.
const IDLE: u32 = 0;
const GO: u32 = 1;
const QUIT: u32 = 2;

/// A thread sleeping on a futex word is woken, `iters` times; sums the time
/// from just before the wake to the waiter's first instruction after it.
///
/// # Panics
/// If the waiter cannot be spawned or pinned.
pub fn futex_idle_wake(iters: u64, pin: Pin) -> Duration {
    let base = Instant::now();
    let state = AtomicU32::new(IDLE);
    let ack = AtomicU32::new(0);
    let armed = AtomicBool::new(false);
    let started = AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            pin.pin_other();
            loop {
                armed.store(true, Ordering::Release);
                let mut st = state.load(Ordering::Acquire);
                while st == IDLE {
                    futex_wait(&state, IDLE);
                    st = state.load(Ordering::Acquire);
                }
                if st == QUIT {
                    return;
                }
                started.store(ns_since(base), Ordering::Relaxed);
                armed.store(false, Ordering::Relaxed);
                state.store(IDLE, Ordering::Relaxed);
                ack.store(1, Ordering::Release);
                futex_wake(&ack);
            }
        });
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            yield_until(|| armed.load(Ordering::Acquire));
            thread::sleep(SETTLE);
            let t0 = ns_since(base);
            state.store(GO, Ordering::Release);
            futex_wake(&state);
            while ack.load(Ordering::Acquire) == 0 {
                futex_wait(&ack, 0);
            }
            ack.store(0, Ordering::Relaxed);
            total += Duration::from_nanos(started.load(Ordering::Relaxed).saturating_sub(t0));
        }
        state.store(QUIT, Ordering::Release);
        futex_wake(&state);
        total
    })
}

/// Stops a kthread asleep in `schedule_timeout(1 h)`, `iters` times (a fresh
/// kthread each); sums the time `stop` takes to return.
///
/// # Panics
/// If a kthread cannot be created or stopped.
pub fn kthread_stop_sleeping(iters: u64, pin: Pin) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let k = pin
            .builder("bench-sleep")
            .run(|| {
                while !should_stop() {
                    set_current_state(TaskState::Interruptible);
                    if !should_stop() {
                        schedule_timeout(Duration::from_secs(3600));
                    }
                    set_current_state(TaskState::Running);
                }
            })
            .expect("kthread run");
        settle(k.task());
        let t0 = Instant::now();
        k.stop().expect("stop");
        total += t0.elapsed();
    }
    total
}

/// Ends a std thread asleep in `thread::park()` with flag + `unpark` + `join`,
/// `iters` times (a fresh thread each); sums the time to `join`'s return.
///
/// # Panics
/// If a thread cannot be spawned or pinned.
pub fn std_unpark_join(iters: u64, pin: Pin) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let stop = Arc::new(AtomicBool::new(false));
        let parking = Arc::new(AtomicBool::new(false));
        let h = {
            let (stop, parking) = (stop.clone(), parking.clone());
            thread::spawn(move || {
                pin.pin_other();
                while !stop.load(Ordering::Acquire) {
                    parking.store(true, Ordering::Release);
                    thread::park();
                }
            })
        };
        yield_until(|| parking.load(Ordering::Acquire));
        thread::sleep(SETTLE);
        let t0 = Instant::now();
        stop.store(true, Ordering::Release);
        h.thread().unpark();
        h.join().expect("join");
        total += t0.elapsed();
    }
    total
}

/// The kernel's parkable kthread loop (`smpboot_thread_fn` in miniature).
fn parkable() {
    while !should_stop() {
        if should_park() {
            kthread::parkme();
            continue;
        }
        set_current_state(TaskState::Interruptible);
        if !should_stop() && !should_park() {
            schedule();
        }
        set_current_state(TaskState::Running);
    }
}

/// `park` + `unpark` of a parkable kthread loop, `iters` round trips.
///
/// # Panics
/// If the kthread cannot be created, parked or stopped.
pub fn kthread_park_unpark(iters: u64, pin: Pin) -> Duration {
    let k = pin
        .builder("bench-park")
        .run(parkable)
        .expect("kthread run");
    settle(k.task());
    let t0 = Instant::now();
    for _ in 0..iters {
        k.park().expect("park");
        k.unpark();
    }
    let d = t0.elapsed();
    k.stop().expect("stop");
    d
}

/// `Worker::flush` on an idle worker, `iters` times; sums the flushes' times.
///
/// Before each flush the worker is left until it sleeps (state
/// `Interruptible`, then [`SETTLE`]): a worker that spins before sleeping
/// would otherwise still be spinning when the next flush comes, and the row
/// would measure a busy worker, not an idle one.
///
/// # Panics
/// If the worker cannot be created or flushed.
pub fn kthread_flush_idle(iters: u64, pin: Pin) -> Duration {
    let worker = worker("bench-flush", pin);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        settle(worker.task());
        let t0 = Instant::now();
        worker.flush().expect("flush");
        total += t0.elapsed();
    }
    total
}

/// Whose turn it is in the ping-pong.
const PING: u32 = 0;
const PONG: u32 = 1;
const DONE: u32 = 2;

/// Two threads pass a turn back and forth over one futex word, `iters` round trips.
///
/// Each hand-off is a store, a `FUTEX_WAKE` and a `FUTEX_WAIT`: the floor
/// that `park` + `unpark` and `flush` pay twice per call.
///
/// # Panics
/// If the partner cannot be spawned or pinned.
pub fn futex_round_trip(iters: u64, pin: Pin) -> Duration {
    let turn = AtomicU32::new(PING);
    thread::scope(|s| {
        s.spawn(|| {
            pin.pin_other();
            loop {
                let mut t = turn.load(Ordering::Acquire);
                while t == PING {
                    futex_wait(&turn, PING);
                    t = turn.load(Ordering::Acquire);
                }
                if t == DONE {
                    return;
                }
                turn.store(PING, Ordering::Release);
                futex_wake(&turn);
            }
        });
        let t0 = Instant::now();
        for _ in 0..iters {
            turn.store(PONG, Ordering::Release);
            futex_wake(&turn);
            while turn.load(Ordering::Acquire) == PONG {
                futex_wait(&turn, PONG);
            }
        }
        let d = t0.elapsed();
        turn.store(DONE, Ordering::Release);
        futex_wake(&turn);
        d
    })
}

/// As [`futex_round_trip`], but each round trip starts with the partner
/// asleep in `FUTEX_WAIT` (then [`SETTLE`]); sums the round trips' times.
///
/// # Panics
/// If the partner cannot be spawned or pinned.
pub fn futex_round_trip_idle(iters: u64, pin: Pin) -> Duration {
    let turn = AtomicU32::new(PING);
    let armed = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            pin.pin_other();
            loop {
                armed.store(true, Ordering::Release);
                let mut t = turn.load(Ordering::Acquire);
                while t == PING {
                    futex_wait(&turn, PING);
                    t = turn.load(Ordering::Acquire);
                }
                if t == DONE {
                    return;
                }
                armed.store(false, Ordering::Relaxed);
                turn.store(PING, Ordering::Release);
                futex_wake(&turn);
            }
        });
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            yield_until(|| armed.load(Ordering::Acquire));
            thread::sleep(SETTLE);
            let t0 = Instant::now();
            turn.store(PONG, Ordering::Release);
            futex_wake(&turn);
            while turn.load(Ordering::Acquire) == PONG {
                futex_wait(&turn, PONG);
            }
            total += t0.elapsed();
        }
        turn.store(DONE, Ordering::Release);
        futex_wake(&turn);
        total
    })
}

/// Two threads pass a turn back and forth through two [`WaitQueue`]s
/// (`wait_event` / `wake_up`), `iters` round trips.
///
/// # Panics
/// If the partner cannot be spawned or pinned.
pub fn kthread_waitqueue_round_trip(iters: u64, pin: Pin) -> Duration {
    let turn = AtomicU32::new(PING);
    let (to_ping, to_pong) = (WaitQueue::new(), WaitQueue::new());
    thread::scope(|s| {
        s.spawn(|| {
            pin.pin_other();
            loop {
                to_pong.wait_event(|| turn.load(Ordering::Acquire) != PING);
                if turn.load(Ordering::Acquire) == DONE {
                    return;
                }
                turn.store(PING, Ordering::Release);
                to_ping.wake_up();
            }
        });
        let t0 = Instant::now();
        for _ in 0..iters {
            turn.store(PONG, Ordering::Release);
            to_pong.wake_up();
            to_ping.wait_event(|| turn.load(Ordering::Acquire) != PONG);
        }
        let d = t0.elapsed();
        turn.store(DONE, Ordering::Release);
        to_pong.wake_up();
        d
    })
}

/// Locks the peer's mutex, treating poisoning as harmless (a counter).
fn lock(m: &Mutex<u32>) -> std::sync::MutexGuard<'_, u32> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// As [`kthread_waitqueue_round_trip`], over a `std::sync::Mutex` and two
/// `Condvar`s: what the same hand-off costs with std.
///
/// # Panics
/// If the partner cannot be spawned or pinned.
pub fn std_condvar_round_trip(iters: u64, pin: Pin) -> Duration {
    let turn = Mutex::new(PING);
    let (to_ping, to_pong) = (Condvar::new(), Condvar::new());
    thread::scope(|s| {
        s.spawn(|| {
            pin.pin_other();
            let mut t = lock(&turn);
            loop {
                while *t == PING {
                    t = to_pong.wait(t).unwrap_or_else(|p| p.into_inner());
                }
                if *t == DONE {
                    return;
                }
                *t = PING;
                to_ping.notify_one();
            }
        });
        let t0 = Instant::now();
        for _ in 0..iters {
            let mut t = lock(&turn);
            *t = PONG;
            to_pong.notify_one();
            while *t == PONG {
                t = to_ping.wait(t).unwrap_or_else(|p| p.into_inner());
            }
        }
        let d = t0.elapsed();
        *lock(&turn) = DONE;
        to_pong.notify_one();
        d
    })
}
