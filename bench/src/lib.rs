//! Benchmarks of `kthread` against the peers a competent user would write.
//!
//! Every benchmark is a *pair*: the kthread path and a peer doing the same
//! job with `std`, a raw futex or `crossbeam-channel`, measured in the same
//! process and reported as the ratio kthread / peer (lower is better). Absolute
//! times drift ±30% between processes on the 2-vCPU VMs this runs on, so only
//! the ratio of two figures taken in the same run means anything.
//!
//! [`PAIRS`] is the one list of pairs: the `kthread-bench` binary runs them
//! interleaved (A B A B …) and prints a table, and `benches/pairs.rs` runs the
//! same timed pairs under criterion.
//!
//! ```
//! use kthread_bench::{Measure, Pin, PAIRS};
//! let pair = PAIRS.iter().find(|p| p.name == "create_wake_stop").unwrap();
//! if let Measure::Time { kthread, peer, .. } = pair.measure {
//!     let a = kthread(3, Pin::Off); // three create + wake + stop
//!     let b = peer(3, Pin::Off); // three spawn + join
//!     assert!(a.as_nanos() > 0 && b.as_nanos() > 0);
//! }
//! ```

#![cfg(target_os = "linux")]

pub mod blocked;
pub mod bridge;
pub mod flag;
pub mod queue;
pub mod report;
pub mod spawn;
pub mod sys;
pub mod wake;

use std::time::Duration;

/// Where the two threads of a latency pair run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The scheduler places both threads.
    Off,
    /// The measuring thread on `main`, the other one (worker, sleeper, waiter) on `other`.
    On {
        /// CPU of the thread that takes the time.
        main: usize,
        /// CPU of the thread it hands off to.
        other: usize,
    },
}

impl Pin {
    /// The measuring thread's CPU, if pinned.
    ///
    /// ```
    /// assert_eq!(kthread_bench::Pin::On { main: 0, other: 1 }.main(), Some(0));
    /// ```
    pub fn main(self) -> Option<usize> {
        match self {
            Pin::Off => None,
            Pin::On { main, .. } => Some(main),
        }
    }

    /// The other thread's CPU, if pinned.
    ///
    /// ```
    /// assert_eq!(kthread_bench::Pin::Off.other(), None);
    /// ```
    pub fn other(self) -> Option<usize> {
        match self {
            Pin::Off => None,
            Pin::On { other, .. } => Some(other),
        }
    }

    /// A kthread builder named `name`, bound to the other CPU if pinned.
    ///
    /// ```
    /// let k = kthread_bench::Pin::Off.builder("b").run(|| 1)?;
    /// assert_eq!(k.stop()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(self, name: &str) -> kthread::Builder {
        let b = kthread::Builder::new(name);
        match self.other() {
            Some(cpu) => b.cpu(cpu),
            None => b,
        }
    }

    /// Pins the calling thread to the measuring thread's CPU, if pinned
    /// (for further producers beside it).
    ///
    /// ```
    /// kthread_bench::Pin::Off.pin_main(); // unpinned: nothing happens
    /// ```
    pub fn pin_main(self) {
        if let Some(cpu) = self.main() {
            sys::pin_thread(cpu);
        }
    }

    /// Pins the calling thread to the other CPU, if pinned (for peer threads).
    ///
    /// ```
    /// kthread_bench::Pin::Off.pin_other(); // unpinned: nothing happens
    /// ```
    pub fn pin_other(self) {
        if let Some(cpu) = self.other() {
            sys::pin_thread(cpu);
        }
    }
}

/// What `--pin` does with a pair's threads.
///
/// ```
/// use kthread_bench::{Placement, PAIRS};
/// let queue = PAIRS.iter().find(|p| p.name == "queue_noop_1p").unwrap();
/// assert_eq!(queue.placement, Placement::Split);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Never pinned: the scheduler's placement is part of what is measured
    /// (creation, where the new thread lands; a single thread's loop).
    Free,
    /// A throughput pair: `--pin` puts the producing threads on one CPU and
    /// the consuming one on another, so every round runs the same streaming
    /// regime instead of whichever placement the scheduler picked.
    Split,
    /// A hand-off latency pair: `--pin` times on one CPU with the partner
    /// on another, and adds a `_samecpu` row with both on one CPU.
    Latency,
}

/// A timed side: runs `iters` operations and returns the time they took.
///
/// The time may be the wall time of the whole run or the sum of per-operation
/// latencies; either way, time / `iters` is the cost of one operation.
pub type TimeFn = fn(iters: u64, pin: Pin) -> Duration;

/// A memory side: keeps `threads` threads alive and returns the resident
/// bytes each one added.
pub type BytesFn = fn(threads: usize) -> f64;

/// Operations per sample, in a full run and under `--quick`.
#[derive(Clone, Copy, Debug)]
pub struct Count {
    /// In a full run.
    pub full: u64,
    /// Under `--quick`.
    pub quick: u64,
}

/// What a pair measures.
#[derive(Clone, Copy, Debug)]
pub enum Measure {
    /// Time per operation.
    Time {
        /// The kthread side.
        kthread: TimeFn,
        /// The peer side.
        peer: TimeFn,
        /// Operations per sample.
        iters: Count,
    },
    /// Resident bytes per live thread.
    Bytes {
        /// The kthread side.
        kthread: BytesFn,
        /// The peer side.
        peer: BytesFn,
        /// Live threads per sample.
        threads: Count,
    },
}

/// One benchmark: a kthread path, its peer, and the ratio it should reach.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// Row name (stable: CI and BENCHMARKS.md refer to it).
    pub name: &'static str,
    /// What the peer does.
    pub peer: &'static str,
    /// The kthread / peer ratio to stay at or under.
    pub target: f64,
    /// What is measured.
    pub measure: Measure,
    /// What `--pin` does with the row's threads.
    pub placement: Placement,
    /// Interleaved rounds in a full run (`--quick` uses at most 3).
    pub rounds: usize,
}

/// Every pair, in table order.
pub const PAIRS: &[Pair] = &[
    Pair {
        name: "create_wake_stop",
        peer: "std::thread::spawn + join",
        target: 0.5,
        measure: Measure::Time {
            kthread: spawn::kthread_create_wake_stop,
            peer: spawn::std_spawn_join,
            iters: Count {
                full: 250,
                quick: 100,
            },
        },
        placement: Placement::Free,
        rounds: 21,
    },
    Pair {
        name: "create_wake_stop_cold",
        peer: "std::thread::spawn + join",
        target: 1.5,
        measure: Measure::Time {
            kthread: spawn::kthread_create_wake_stop_cold,
            peer: spawn::std_spawn_join,
            iters: Count {
                full: 250,
                quick: 100,
            },
        },
        placement: Placement::Free,
        rounds: 21,
    },
    Pair {
        name: "should_stop",
        peer: "relaxed AtomicBool load",
        target: 1.5,
        measure: Measure::Time {
            kthread: flag::kthread_should_stop,
            peer: flag::atomic_bool_load,
            iters: Count {
                full: 10_000_000,
                quick: 5_000_000,
            },
        },
        placement: Placement::Free,
        rounds: 21,
    },
    Pair {
        name: "queue_noop_1p",
        peer: "crossbeam bounded(1024) Box<dyn FnOnce>, 1 producer",
        target: 0.3,
        measure: Measure::Time {
            kthread: queue::kthread_queue_1p,
            peer: queue::crossbeam_closure_1p,
            iters: Count {
                full: 100_000,
                quick: 50_000,
            },
        },
        placement: Placement::Split,
        rounds: 21,
    },
    Pair {
        name: "queue_noop_2p",
        peer: "crossbeam bounded(1024) Box<dyn FnOnce>, 2 producers",
        target: 0.5,
        measure: Measure::Time {
            kthread: queue::kthread_queue_2p,
            peer: queue::crossbeam_closure_2p,
            iters: Count {
                full: 100_000,
                quick: 50_000,
            },
        },
        placement: Placement::Split,
        rounds: 21,
    },
    Pair {
        name: "queue_vs_u64",
        peer: "crossbeam bounded(1024) u64, 1 producer",
        target: 0.5,
        measure: Measure::Time {
            kthread: queue::kthread_queue_1p,
            peer: queue::crossbeam_u64_1p,
            iters: Count {
                full: 100_000,
                quick: 50_000,
            },
        },
        placement: Placement::Split,
        rounds: 21,
    },
    Pair {
        name: "queue_floor",
        peer: "bare intrusive pending-once stack, spinning consumer, 1 producer",
        target: 1.3,
        measure: Measure::Time {
            kthread: queue::kthread_queue_1p,
            peer: queue::floor_1p,
            iters: Count {
                full: 100_000,
                quick: 50_000,
            },
        },
        placement: Placement::Split,
        rounds: 21,
    },
    Pair {
        name: "idle_wake",
        peer: "futex wake -> waiter running",
        target: 1.1,
        measure: Measure::Time {
            kthread: wake::kthread_idle_wake,
            peer: wake::futex_idle_wake,
            iters: Count {
                full: 150,
                quick: 60,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "stop_sleeping",
        peer: "std thread in park(): unpark + join",
        target: 1.1,
        measure: Measure::Time {
            kthread: wake::kthread_stop_sleeping,
            peer: wake::std_unpark_join,
            iters: Count {
                full: 80,
                quick: 30,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "stop_blocked_read",
        peer: "std thread in read(): flag + pthread_kill + join",
        target: 1.2,
        measure: Measure::Time {
            kthread: blocked::kthread_stop_blocked_read,
            peer: blocked::std_pthread_kill_join,
            iters: Count {
                full: 80,
                quick: 30,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "waitqueue_round_trip",
        peer: "std Mutex + 2 Condvars ping-pong",
        target: 1.0,
        measure: Measure::Time {
            kthread: wake::kthread_waitqueue_round_trip,
            peer: wake::std_condvar_round_trip,
            iters: Count {
                full: 2_000,
                quick: 500,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "park_unpark",
        peer: "futex ping-pong round trip",
        target: 1.1,
        measure: Measure::Time {
            kthread: wake::kthread_park_unpark,
            peer: wake::futex_round_trip,
            iters: Count {
                full: 1_000,
                quick: 300,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "flush_idle_worker",
        peer: "futex round trip, partner asleep",
        target: 1.1,
        measure: Measure::Time {
            kthread: wake::kthread_flush_idle,
            peer: wake::futex_round_trip_idle,
            iters: Count {
                full: 150,
                quick: 40,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "flush_async_idle_worker",
        peer: "tokio oneshot answered by a std thread in park()",
        target: 1.2,
        measure: Measure::Time {
            kthread: bridge::kthread_flush_async_idle,
            peer: bridge::oneshot_park_idle,
            iters: Count {
                full: 150,
                quick: 40,
            },
        },
        placement: Placement::Latency,
        rounds: 21,
    },
    Pair {
        name: "create_10k",
        peer: "std::thread 64 KiB + park/unpark + join",
        target: 1.2,
        measure: Measure::Time {
            kthread: spawn::kthread_create_many,
            peer: spawn::std_create_many,
            iters: Count {
                full: 10_000,
                quick: 1_000,
            },
        },
        placement: Placement::Free,
        rounds: 3,
    },
    Pair {
        name: "rss_per_thread",
        peer: "std thread, 64 KiB stack",
        target: 1.1,
        measure: Measure::Bytes {
            kthread: spawn::kthread_rss_per_thread,
            peer: spawn::std_rss_per_thread,
            threads: Count {
                full: 1_000,
                quick: 300,
            },
        },
        placement: Placement::Free,
        rounds: 7,
    },
];

/// Pins the calling (measuring) thread as `pin` says, runs `f`, unpins.
///
/// ```
/// use kthread_bench::{timed, Pin};
/// let d = timed(Pin::Off, || std::time::Duration::from_nanos(5));
/// assert_eq!(d.as_nanos(), 5);
/// ```
pub fn timed(pin: Pin, f: impl FnOnce() -> Duration) -> Duration {
    let _guard = sys::AffinityGuard::pin(pin.main());
    f()
}

/// Waits, yielding the CPU, until `done()` holds.
///
/// Yielding rather than spinning hard: the thread we wait for may share our CPU.
pub(crate) fn yield_until(mut done: impl FnMut() -> bool) {
    while !done() {
        std::thread::yield_now();
    }
}

/// How long a hand-off partner is left alone before a latency sample, so that
/// it is truly asleep in the kernel (and its CPU may go idle), not about to be.
pub(crate) const SETTLE: Duration = Duration::from_micros(100);
