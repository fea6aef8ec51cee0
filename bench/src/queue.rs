//! Queue throughput: no-op `Work` items on a `Worker` against a bounded channel.
//!
//! Under `--pin` the producers run on one CPU and the consumer (the
//! worker's kthread, the channel's receiver) on another.
//!
//! Each side is timed from the first queue to the moment all `n` items have
//! run, and ends with one blocking hand-off: `Worker::flush` for kthread,
//! dropping the sender and joining the consumer for the peer.

use crate::Pin;
use crossbeam_channel::bounded;
use kthread::{Work, Worker};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
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

/// Offers the items `0..len` in turn to `queue` until `quota` offers have
/// been accepted.
///
/// A refusal (that item is still pending) moves on to the next item; a
/// whole lap of refusals yields the CPU, which the consumer may need.
fn cycle(len: usize, quota: u64, mut queue: impl FnMut(usize) -> bool) {
    let mut queued = 0;
    let mut misses = 0;
    let mut i = 0;
    while queued < quota {
        if queue(i) {
            queued += 1;
            misses = 0;
        } else {
            misses += 1;
            if misses >= len {
                thread::yield_now();
                misses = 0;
            }
        }
        i = (i + 1) % len;
    }
}

/// Queues items of `ring` in turn until `quota` queue calls have succeeded.
fn produce(worker: &Worker, ring: &[Work], quota: u64) {
    cycle(ring.len(), quota, |i| worker.queue(&ring[i]));
}

/// `producers` threads queue no-op items on one worker until `n` have run.
fn kthread_queue(n: u64, producers: usize, pin: Pin) -> Duration {
    let builder = Worker::builder("bench-queue");
    let worker = match pin.other() {
        Some(cpu) => builder.cpu(cpu),
        None => builder,
    }
    .create()
    .expect("WorkerBuilder::create");
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
                    pin.pin_main();
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
fn crossbeam_closures(n: u64, producers: usize, pin: Pin) -> Duration {
    let (tx, rx) = bounded::<Job>(CAPACITY);
    let quotas = shares(n, producers);
    let go = Barrier::new(producers);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            pin.pin_other();
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
                    pin.pin_main();
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
pub fn kthread_queue_1p(n: u64, pin: Pin) -> Duration {
    kthread_queue(n, 1, pin)
}

/// 2 producers, each with its own 1024 items, until `n` have run in all.
///
/// # Panics
/// As [`kthread_queue_1p`].
pub fn kthread_queue_2p(n: u64, pin: Pin) -> Duration {
    kthread_queue(n, 2, pin)
}

/// 1 producer sends `n` boxed no-op closures over `bounded(1024)` to a thread that runs them.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_closure_1p(n: u64, pin: Pin) -> Duration {
    crossbeam_closures(n, 1, pin)
}

/// As [`crossbeam_closure_1p`] with 2 producers.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_closure_2p(n: u64, pin: Pin) -> Duration {
    crossbeam_closures(n, 2, pin)
}

/// 1 producer sends `n` `u64`s over `bounded(1024)` to a consumer thread that sums them.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn crossbeam_u64_1p(n: u64, pin: Pin) -> Duration {
    let (tx, rx) = bounded::<u64>(CAPACITY);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            pin.pin_other();
            rx.iter().fold(0u64, u64::wrapping_add)
        });
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

/// A work item of [`floor_1p`]: the least an intrusive pending-at-most-once
/// item needs (a claim flag, a link, a function), one allocation each as a
/// `Work` is.
struct FloorItem {
    pending: AtomicBool,
    next: AtomicPtr<FloorItem>,
    func: fn(),
}

/// The producers' stack head of [`floor_1p`], on its own cache line.
#[repr(align(64))]
struct FloorHead(AtomicPtr<FloorItem>);

/// Runs every item of the stack `top` (newest first) in queue order;
/// returns how many ran.
fn floor_run(top: *mut FloorItem) -> u64 {
    let mut oldest = std::ptr::null_mut::<FloorItem>();
    let mut p = top;
    while !p.is_null() {
        // SAFETY: every node on the stack is an item of the caller's ring,
        // alive until the scope that runs the consumer ends; its claim
        // (`pending` set) makes this thread the only one using `next` now.
        let item = unsafe { &*p };
        let next = item.next.load(Ordering::Relaxed);
        item.next.store(oldest, Ordering::Relaxed);
        oldest = p;
        p = next;
    }
    let mut ran = 0;
    while !oldest.is_null() {
        // SAFETY: as above.
        let item = unsafe { &*oldest };
        // Read the link before the release: a new claim may rewrite it.
        oldest = item.next.load(Ordering::Relaxed);
        item.pending.store(false, Ordering::Release);
        (item.func)();
        ran += 1;
    }
    ran
}

/// The floor of the intrusive design, as a peer: 1 producer claims and
/// pushes pre-made items (cycling 1024, as [`kthread_queue_1p`]) onto a
/// lock-free stack that a consumer thread swaps out, reverses and runs,
/// spinning while it is empty. No lock, no reference count, no sleep and no
/// wake: what a `Worker` adds to it is what the `queue_floor` row measures.
///
/// # Panics
/// If a thread cannot be spawned or an item is lost.
pub fn floor_1p(n: u64, pin: Pin) -> Duration {
    let ring: Vec<Box<FloorItem>> = (0..RING)
        .map(|_| {
            Box::new(FloorItem {
                pending: AtomicBool::new(false),
                next: AtomicPtr::new(std::ptr::null_mut()),
                func: || (),
            })
        })
        .collect();
    let head = FloorHead(AtomicPtr::new(std::ptr::null_mut()));
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let consumer = s.spawn(|| {
            pin.pin_other();
            let mut ran = 0u64;
            let mut empty = 0u32;
            loop {
                let top = head.0.swap(std::ptr::null_mut(), Ordering::Acquire);
                if !top.is_null() {
                    ran += floor_run(top);
                    empty = 0;
                } else if done.load(Ordering::Acquire) {
                    // Everything was pushed before `done`: one last swap.
                    return ran + floor_run(head.0.swap(std::ptr::null_mut(), Ordering::Acquire));
                } else {
                    empty += 1;
                    if empty % 64 == 0 {
                        thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        });
        let t0 = Instant::now();
        cycle(ring.len(), n, |i| {
            let item = &ring[i];
            if item
                .pending
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
            let node = std::ptr::from_ref::<FloorItem>(item).cast_mut();
            let mut top = head.0.load(Ordering::Relaxed);
            loop {
                item.next.store(top, Ordering::Relaxed);
                match head
                    .0
                    .compare_exchange_weak(top, node, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => return true,
                    Err(t) => top = t,
                }
            }
        });
        done.store(true, Ordering::Release);
        let ran = consumer.join().expect("consumer");
        let d = t0.elapsed();
        assert_eq!(ran, n, "every item ran once");
        d
    })
}
