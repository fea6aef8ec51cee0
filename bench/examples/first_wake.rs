//! Where a kthread's first wake lands, and what that costs `create_wake_stop`.
//!
//! `cargo run --release -p kthread-bench --example first_wake [-- ITERS]`
//!
//! Times create, `wake_up`, the wake to `f`'s first instruction and `f`'s
//! end to `stop` returning, for an empty `f`, and splits the cycles by
//! whether `f` ran on the CPU of its creator. Beside them, in the same
//! process: a thread the caller spawned itself and that waits on a futex
//! (woken and joined the same way, so the same two hand-offs), and std's
//! `spawn` + `join`. The cycles are spaced out (`SPACING`), so kthreadd's
//! refill of its spare cache is done before the next create: every create
//! here is a cache hit (the misses are printed), as in a program whose
//! creates do not come back to back.
//!
//! A sleeping thread is woken, by the kernel's wake placement, where it
//! last ran while that CPU is idle; a spare last ran where kthreadd cloned
//! it, a thread spawned by the caller where the caller was. BENCHMARKS.md
//! ("Rows that miss") has the figures of this probe.

use kthread_bench::report::Spread;
use kthread_bench::sys::{current_cpu, futex_wait, futex_wake};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle time between two cycles: longer than kthreadd's refill of a spare.
const SPACING: Duration = Duration::from_micros(300);

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The bench's median; NaN when a split holds no cycle.
fn median(v: Vec<f64>) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        Spread::of(&v).mid
    }
}

/// One kthread cycle's phases, and whether `f` ran on the creator's CPU.
struct Cycle {
    create: f64,
    wake_call: f64,
    to_first: f64,
    to_stopped: f64,
    total: f64,
    same_cpu: bool,
}

fn kthread_cycle() -> Cycle {
    let seen: Arc<Mutex<Option<(Instant, usize)>>> = Arc::default();
    let s = seen.clone();
    let t0 = Instant::now();
    let k = kthread::create("first-wake", move || {
        let stamp = (Instant::now(), current_cpu());
        *s.lock().expect("stamp") = Some(stamp);
    })
    .expect("kthread::create");
    let t1 = Instant::now();
    let creator_cpu = current_cpu();
    k.wake_up();
    let t2 = Instant::now();
    k.stop().expect("stop");
    let t3 = Instant::now();
    let (first, cpu) = seen.lock().expect("stamp").expect("f ran");
    Cycle {
        create: micros(t1 - t0),
        wake_call: micros(t2 - t1),
        to_first: micros(first - t1),
        to_stopped: micros(t3 - first),
        total: micros(t3 - t0),
        same_cpu: cpu == creator_cpu,
    }
}

/// A thread the caller spawned, waiting on a futex: woken, then joined.
/// Returns the wake + join time and whether it ran on the caller's CPU.
fn caller_born_cycle() -> (f64, bool) {
    let gate = Arc::new(AtomicU32::new(0));
    let ran_on = Arc::new(AtomicUsize::new(usize::MAX));
    let (g, r) = (gate.clone(), ran_on.clone());
    let t = std::thread::spawn(move || {
        while g.load(Ordering::Acquire) == 0 {
            futex_wait(&g, 0);
        }
        r.store(current_cpu(), Ordering::Relaxed);
    });
    // Pacing, not synchronisation: the thread re-checks the gate, so a wake
    // that finds it still awake is correct (and then costs no futex sleep).
    std::thread::sleep(SPACING);
    let cpu = current_cpu();
    let t0 = Instant::now();
    gate.store(1, Ordering::Release);
    futex_wake(&gate);
    t.join().expect("join");
    let took = micros(t0.elapsed());
    (took, ran_on.load(Ordering::Relaxed) == cpu)
}

fn std_cycle() -> f64 {
    let t0 = Instant::now();
    std::thread::spawn(|| ()).join().expect("join");
    micros(t0.elapsed())
}

fn main() {
    let iters: usize = match std::env::args().nth(1) {
        Some(a) => match a.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: first_wake [ITERS > 0]");
                std::process::exit(2);
            }
        },
        None => 400,
    };
    kthread::kthreadd::start().expect("kthreadd");
    for round in 1..=3 {
        let misses = kthread::kthreadd::cache_stats().misses;
        let (mut cycles, mut caller, mut stds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..iters {
            std::thread::sleep(SPACING);
            cycles.push(kthread_cycle());
            caller.push(caller_born_cycle());
            std::thread::sleep(SPACING);
            stds.push(std_cycle());
        }
        let misses = kthread::kthreadd::cache_stats().misses - misses;
        let col = |f: fn(&Cycle) -> f64, same: Option<bool>| {
            median(
                cycles
                    .iter()
                    .filter(|c| same.is_none_or(|s| c.same_cpu == s))
                    .map(f)
                    .collect(),
            )
        };
        let same = cycles.iter().filter(|c| c.same_cpu).count();
        let caller_same = caller.iter().filter(|c| c.1).count();
        println!(
            "round {round}: kthread cycle {:.1} µs (create {:.1}, wake_up {:.1}, to f {:.1}, f to stopped {:.1}; {misses} cache misses)",
            col(|c| c.total, None),
            col(|c| c.create, None),
            col(|c| c.wake_call, None),
            col(|c| c.to_first, None),
            col(|c| c.to_stopped, None),
        );
        println!(
            "  f on the creator's CPU {same}/{iters}: cycle {:.1} µs (to f {:.1}); elsewhere: {:.1} µs (to f {:.1})",
            col(|c| c.total, Some(true)),
            col(|c| c.to_first, Some(true)),
            col(|c| c.total, Some(false)),
            col(|c| c.to_first, Some(false)),
        );
        println!(
            "  caller-spawned waiting thread: on the caller's CPU {caller_same}/{iters}, wake + join {:.1} µs; std spawn + join {:.1} µs",
            median(caller.iter().map(|c| c.0).collect()),
            median(stds),
        );
    }
}
