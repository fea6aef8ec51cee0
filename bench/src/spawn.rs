//! Thread life cycle: create + wake + stop, ten thousand sleepers, resident memory.

use crate::{sys, yield_until, Pin};
use kthread::{schedule, set_current_state, should_stop, TaskState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Stack of the many-thread pairs (`create_10k`, `rss_per_thread`).
pub const SMALL_STACK: usize = 64 * 1024;

/// The body of a kthread that sleeps until stopped, the kernel's idiom.
fn sleeper() {
    while !should_stop() {
        set_current_state(TaskState::Interruptible);
        if !should_stop() {
            schedule();
        }
        set_current_state(TaskState::Running);
    }
}

/// `kthread::create` + `wake_up` + `stop` of an empty function, `iters` times.
///
/// # Panics
/// If a kthread cannot be created or stopped.
pub fn kthread_create_wake_stop(iters: u64, _pin: Pin) -> Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        let k = kthread::create("bench-cws", || ()).expect("kthread::create");
        k.wake_up();
        k.stop().expect("stop");
    }
    t0.elapsed()
}

/// [`kthread_create_wake_stop`] with kthreadd's spare cache off: every
/// create waits for kthreadd to clone its thread (the cold path).
///
/// # Panics
/// If a kthread cannot be created or stopped, or the cache not resized.
pub fn kthread_create_wake_stop_cold(iters: u64, pin: Pin) -> Duration {
    let before = kthread::kthreadd::set_cache(0).expect("cache off");
    let t = kthread_create_wake_stop(iters, pin);
    kthread::kthreadd::set_cache(before).expect("cache back");
    t
}

/// `std::thread::spawn` + `join` of an empty closure, `iters` times.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn std_spawn_join(iters: u64, _pin: Pin) -> Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        thread::spawn(|| ()).join().expect("join");
    }
    t0.elapsed()
}

/// Creates and wakes `n` sleeping kthreads with 64 KiB stacks, then stops them all.
///
/// # Panics
/// If a kthread cannot be created (e.g. `ulimit -u` or `vm.max_map_count` too low).
pub fn kthread_create_many(n: u64, _pin: Pin) -> Duration {
    let t0 = Instant::now();
    let ks: Vec<_> = (0..n)
        .map(|_| {
            let k = kthread::Builder::new("bench-many")
                .stack_size(SMALL_STACK)
                .create(sleeper)
                .expect("kthread create");
            k.wake_up();
            k
        })
        .collect();
    for k in ks {
        k.stop().expect("stop");
    }
    t0.elapsed()
}

/// Spawns `n` std threads with 64 KiB stacks that park until told to stop,
/// then stops them as a competent user would: flag, unpark all, join all.
///
/// # Panics
/// If a thread cannot be spawned.
pub fn std_create_many(n: u64, _pin: Pin) -> Duration {
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let stop = stop.clone();
            thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
                .expect("spawn")
        })
        .collect();
    stop.store(true, Ordering::Release);
    for h in &hs {
        h.thread().unpark();
    }
    for h in hs {
        h.join().expect("join");
    }
    t0.elapsed()
}

/// Resident bytes now, for a figure that cannot go on without it.
fn resident() -> u64 {
    sys::resident_bytes().expect("read /proc/self/statm")
}

/// Warms what the first thread of either kind sets up once per process
/// (kthreadd, the registry, malloc arenas), so it is not counted per thread.
fn warm_up() {
    kthread::kthreadd::start().expect("start kthreadd");
    for _ in 0..4 {
        let k = kthread::Builder::new("bench-warm")
            .stack_size(SMALL_STACK)
            .run(sleeper)
            .expect("kthread create");
        k.stop().expect("stop");
        thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(|| ())
            .expect("spawn")
            .join()
            .expect("join");
    }
}

/// Resident bytes each of `n` live, sleeping kthreads (64 KiB stacks) adds.
///
/// Meant to run in a fresh process (the binary runs it in a child), so that
/// glibc's cache of freed thread stacks does not hide the growth.
///
/// # Panics
/// If a kthread cannot be created or `/proc/self/statm` read.
pub fn kthread_rss_per_thread(n: usize) -> f64 {
    warm_up();
    let before = resident();
    let ks: Vec<_> = (0..n)
        .map(|_| {
            kthread::Builder::new("bench-rss")
                .stack_size(SMALL_STACK)
                .run(sleeper)
                .expect("kthread create")
        })
        .collect();
    for k in &ks {
        yield_until(|| k.task().state() == TaskState::Interruptible);
    }
    thread::sleep(Duration::from_millis(10));
    let after = resident();
    for k in ks {
        k.stop().expect("stop");
    }
    (after as f64 - before as f64) / n as f64
}

/// Resident bytes each of `n` live, parked std threads (64 KiB stacks) adds.
///
/// # Panics
/// If a thread cannot be spawned or `/proc/self/statm` read.
pub fn std_rss_per_thread(n: usize) -> f64 {
    warm_up();
    let before = resident();
    let stop = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (stop, parked) = (stop.clone(), parked.clone());
            thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    parked.fetch_add(1, Ordering::Release);
                    while !stop.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
                .expect("spawn")
        })
        .collect();
    yield_until(|| parked.load(Ordering::Acquire) == n);
    thread::sleep(Duration::from_millis(10));
    let after = resident();
    stop.store(true, Ordering::Release);
    for h in &hs {
        h.thread().unpark();
    }
    for h in hs {
        h.join().expect("join");
    }
    (after as f64 - before as f64) / n as f64
}
