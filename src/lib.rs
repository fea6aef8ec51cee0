//! The Linux kernel's kernel-thread model in user space.
//!
//! A *kthread* is an OS thread whose life follows `kernel/kthread.c`: it is
//! created through a spawner thread, [`kthreadd`], that hands it a clean
//! environment (signals blocked, `SCHED_OTHER` at nice 0, full affinity,
//! default memory policy); it starts *stopped* and runs only once woken; it
//! can be bound to a CPU or NUMA node before its first instruction; it stops
//! cooperatively ([`should_stop`]) and hands back a result; it can be
//! parked and frozen. [`Worker`]s run queued [`Work`] items with the
//! kernel's "pending at most once" coalescing, flush and cancel.
//!
//! ```
//! use kthread::{schedule, set_current_state, should_stop, TaskState};
//!
//! // Created stopped and bound before it runs a single instruction.
//! let k = kthread::Builder::new("poller").cpu(0).create(|| {
//!     let mut rounds = 0u64;
//!     while !should_stop() {
//!         set_current_state(TaskState::Interruptible);
//!         if !should_stop() {
//!             schedule(); // sleeps until woken or stopped: no lost wake-up
//!         }
//!         set_current_state(TaskState::Running);
//!         rounds += 1;
//!     }
//!     rounds
//! })?;
//! k.wake_up();
//! println!("{}", kthread::ps());
//! let rounds = k.stop()?; // sets should_stop, wakes it, joins, returns its value
//! println!("woke {rounds} times"); // 0 if the stop came before its first round
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layers, lowest first, each using only those below it (CI checks it with
//! `scripts/layers.py`): `sys` (every OS call), `sync`, the errors and the
//! trace events; [`completion`]; [`task`] (the state and flags words,
//! `schedule`, the current task, the freezer's mechanism, the task list);
//! [`kthreadd`]; the [`Kthread`] handle and [`Builder`]; then [`freezer`]
//! (policy), [`percpu`] and [`worker`]; and at the top the registry
//! ([`list`], [`ps`]).
//!
//! # Features
//!
//! - `tracing`: [`tracing`](https://docs.rs/tracing) events (target
//!   `kthread`) where the kernel has tracepoints: `kthread_create`,
//!   `sched_kthread_stop`, `sched_kthread_stop_ret`,
//!   `sched_kthread_work_queue_work`, `sched_kthread_work_execute_start` and
//!   `_end`, `sched_wakeup`, the park and freezer events, `signal_generate`.
//!   `examples/trace.rs` prints them as `trace-cmd report` does. Without the
//!   feature the call sites compile to nothing.
//! - `async`: futures that wait without blocking the executor's thread:
//!   [`Completion::wait_async`], [`Work::flush_async`] and
//!   [`cancel_async`](Work::cancel_async) (and [`DelayedWork`]'s),
//!   [`Worker::flush_async`], [`Kthread::stop_async`]. No runtime
//!   dependency: they use only `core::task`, and work under tokio,
//!   `futures::executor` or any other executor. `examples/async_flusher.rs`
//!   is a tokio service with a kthread write-back worker.
//! - `fault-injection`: the `fault` module, which makes chosen OS calls
//!   fail. **For the crate's own tests, outside semver**, and not in the
//!   published documentation.
//!
//! The crate needs Rust 1.85 or newer and builds on Linux only.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The kernel's thread model over Linux's futexes, `/proc`, affinity,
// signals and timers: on any other system, one clear error first.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "kthread runs on Linux only: it is built on futexes, /proc, sched_setaffinity, \
     eventfd and per-thread POSIX timers"
);

pub mod completion;
mod error;
pub mod freezer;
mod kthread;
pub mod kthreadd;
mod lock;
#[cfg(all(test, kthread_loom))]
mod loom_models;
pub mod percpu;
mod registry;
mod sync;
mod sys;
pub mod task;
mod trace;
pub mod wait;
#[cfg(feature = "async")]
mod wakers;
pub mod worker;

#[cfg(feature = "fault-injection")]
#[cfg_attr(docsrs, doc(cfg(feature = "fault-injection")))]
pub use sys::fault;

pub use completion::Completion;
pub use error::{Error, StopError};
pub use freezer::{freezable_should_stop, set_freezable, try_to_freeze};
pub use kthread::{
    create, current, parkme, run, should_park, should_stop, Builder, Kthread, StopTimeoutError,
    DEFAULT_STACK_SIZE, MAX_STACK_SIZE,
};
pub use percpu::PerCpu;
pub use registry::{list, ps, Ps, TaskFlags, TaskInfo};
pub use task::{
    allow_signal, dequeue_signal, disallow_signal, fatal_signal_pending, flush_signals,
    interrupt_signal, schedule, schedule_timeout, set_current_state, set_interrupt_signal,
    signal_pending, Policy, SleepState, StopCallback, Task, TaskState,
};
pub use wait::{Interrupted, Wait, WaitQueue};
pub use worker::{DelayedWork, Work, Worker};

/// The README's example, compiled and run as a doc test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide for `std::thread` users, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide-std-thread.md")]
pub struct GuideStdThreadDoctests;
