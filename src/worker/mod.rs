//! Workers: one kthread running queued work items in order (`kthread_worker`).
//!
//! A [`Work`] is *pending at most once*: [`Worker::queue`] returns `false`
//! while it is pending, so ten "please flush" requests before the worker
//! gets to it run the flush once. [`Work::flush`] waits for the instance
//! queued or running at the time of the call; [`Work::cancel_sync`] takes a
//! pending instance off the list and waits for a running one. Queueing
//! allocates nothing and wakes the worker only when it is idle.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use kthread::{Work, Worker};
//!
//! let worker = Worker::new("writeback")?;
//! let flushes = Arc::new(AtomicUsize::new(0));
//! let f = flushes.clone();
//! let flush = Work::new(move || {
//!     f.fetch_add(1, Ordering::Relaxed);
//! });
//! for _ in 0..10 {
//!     worker.queue(&flush); // coalesces while pending
//! }
//! worker.flush()?; // everything queued so far has run
//! let n = flushes.load(Ordering::Relaxed);
//! assert!(n >= 1 && n <= 10);
//! worker.destroy();
//! # Ok::<(), kthread::Error>(())
//! ```
//!
//! The safe types sit on [`raw`], the caller-owned layer the C ABI exposes.
//! Files: `worker.rs` (`Worker`, its builder, creation and shutdown),
//! `work.rs` (`Work` and `DelayedWork`, one generic item type), `raw/`.

pub mod raw;
mod work;
#[allow(clippy::module_inception)]
mod worker;

pub use work::{DelayedWork, Work};
pub use worker::{Worker, WorkerBuilder};
