//! Queue throughput: no-op `Work` items on a `Worker` against a bounded channel.
//!
//! Each side is timed from the first queue to the moment all `n` items have
//! run, and ends with one blocking hand-off: `Worker::flush` for kthread,
//! dropping the sender and joining the consumer for the peer.

use crate::Pin;
use crossbeam_channel::bounded;
use kthread::{Work, Worker};
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// Pre-made work items each producer cycles through.
pub const RING: usize = 1024;

/// The peer channels' capacity.
pub const CAPACITY: usize = 1024;

/// Splits `n` into `parts` shares that add up to `n`.
fn shares(n: u64, parts: usize) -> Vec<u64> {
    let p = parts as u64;
    (0..p).map(|i| n / p + u64::from(i < n % p)).collect()
}

/// Queues items of `ring` in turn until `quota` queue calls have succeeded.
///
/// A `false` (that item is still pending) is retried with the next item; a
/// whole lap of pending items yields the CPU, which the worker may need.
fn produce(worker: &Worker, ring: &[Work], quota: u64) {
    let mut queued = 0;
    let mut misses = 0;
    let mut i = 0;
    while queued < quota {
        if worker.queue(&ring[i]) {
            queued += 1;
            misses = 0;
        } else {
            misses += 1;
            if misses >= ring.len() {
                thread::yield_now();
                misses = 0;
            }
        }
        i = (i + 1) % ring.len();
    }
}

/// `producers` threads queue no-op items on one worker until `n` have run.
fn kthread_queue(n: u64, producers: usize) -> Duration {
    let worker = Worker::new("bench-queue").expect("Worker::new");
    let rings: Vec<Vec<Work>> = (0..producers)
        .map(|_| (0..RING).map(|_| Work::new(|| ())).collect())
        .collect();
    let quotas = shares(n, producers);
    let start = worker.executed();
    let go = Barrier::new(producers);
    let elapsed = thread::scope(|s| {
        let others: Vec<_> = rings
            .iter()
            .zip(&quotas)
            .skip(1)
            .map(|(ring, &quota)| {
                let (worker, go) = (&worker, &go);
                s.spawn(move || {
                    go.wait();
                    produce(worker, ring, quota);
                })
            })
            .collect();
        go.wait();
        let t0 = Instant::now();
        produce(&worker, &rings[0], quotas[0]);
        for h in others {
            h.join().expect("producer");
        }
        worker.flush().expect("flush");
        t0.elapsed()
    });
    // `executed` also counts flush sentinels (this one and the one in
    // `Worker::new`), each bumped just after it has woken its flusher.
    let ran = worker.executed() - start;
    assert!(
        (n..=n + 2).contains(&ran),
        "{ran} items ran, {n} were queued"
    );
    elapsed
}

/// A no-op job as the peer sends it: a boxed closure.
type Job = Box<dyn FnOnce() + Send>;

/// `producers` threads send `n` boxed no-op closures to one consumer that runs them.
fn crossbeam_closures(n: u64, producers: usize) -> Duration {
    let (tx, rx) = bounded::<Job>(CAPACITY);
    let quotas = shares(n, producers);
    let go = Barrier::new(producers);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            let mut ran = 0u64;
            for job in rx {
                job();
                ran += 1;
            }
            ran
        });
        let others: Vec<_> = quotas[1..]
            .iter()
            .map(|&quota| {
                let (tx, go) = (tx.clone(), &go);
                s.spawn(move || {
                    go.wait();
                    for _ in 0..quota {
                        tx.send(Box::new(|| ())).expect("consumer alive");
                    }
                })
            })
            .collect();
        go.wait();
        let t0 = Instant::now();
        for _ in 0..quotas[0] {
            tx.send(Box::new(|| ())).expect("consumer alive");
        }
        drop(tx);
        for h in others {
            h.join().expect("producer");
        }
        let ran = consumer.join().expect("consumer");
        let d = t0.elapsed();
        assert_eq!(ran, n, "every job ran once");
        d
    })
}

/// 1 producer queues pre-made no-op `Work`s (cycling 1024) until `n` have run.
///
/// # Panics
/// If the worker cannot be created or does not run every item.
pub fn kthread_queue_1p(n: u64, _pin: Pin) -> Duration {
    kthread_queue(n, 1)
}

/// 2 producers, each with its own 1024 items, until `n` have run in all.
///
/// # Panics
/// As [`kthread_queue_1p`].
pub fn kthread_queue_2p(n: u64, _pin: Pin) -> Duration {
    kthread_queue(n, 2)
}

/// 1 producer sends `n` boxed no-op closures over `bounded(1024)` to a thread that runs them.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_closure_1p(n: u64, _pin: Pin) -> Duration {
    crossbeam_closures(n, 1)
}

/// As [`crossbeam_closure_1p`] with 2 producers.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_closure_2p(n: u64, _pin: Pin) -> Duration {
    crossbeam_closures(n, 2)
}

/// 1 producer sends `n` `u64`s over `bounded(1024)` to a consumer thread that sums them.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_u64_1p(n: u64, _pin: Pin) -> Duration {
    let (tx, rx) = bounded::<u64>(CAPACITY);
    thread::scope(|s| {
        let consumer = s.spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
        let t0 = Instant::now();
        for i in 0..n {
            tx.send(i).expect("consumer alive");
        }
        drop(tx);
        let sum = consumer.join().expect("consumer");
        let d = t0.elapsed();
        black_box(sum);
        d
    })
}
