//! The stop check every kthread loop makes: `should_stop()` against a bare flag.

use crate::Pin;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Runs `body` in a kthread and returns what it measured.
///
/// The kthread is stopped only after it has answered: a stop while the loop
/// runs would make `should_stop()` true and cut the loop short.
fn in_kthread(body: impl FnOnce() -> Duration + Send + 'static) -> Duration {
    let (tx, rx) = mpsc::sync_channel(1);
    let k = kthread::run("bench-flag", move || {
        tx.send(body()).expect("the measuring thread waits");
    })
    .expect("kthread::run");
    let d = rx.recv().expect("the loop answers");
    k.stop().expect("stop");
    d
}

/// `iters` calls of `kthread::should_stop()` in a loop inside a kthread.
///
/// # Panics
/// If `should_stop()` turned true before the loop ended (the figure would be wrong).
pub fn kthread_should_stop(iters: u64, _pin: Pin) -> Duration {
    in_kthread(move || {
        let t0 = Instant::now();
        let mut n = 0u64;
        while n < iters {
            if black_box(kthread::should_stop()) {
                break;
            }
            n += 1;
        }
        let d = t0.elapsed();
        assert_eq!(black_box(n), iters, "should_stop() turned true mid-loop");
        d
    })
}

/// `iters` relaxed loads of a shared `AtomicBool` in the same loop, same kind of thread.
///
/// # Panics
/// If the flag was set before the loop ended.
pub fn atomic_bool_load(iters: u64, _pin: Pin) -> Duration {
    // Shared, as a real stop flag is: the controller keeps the other handle.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let d = in_kthread(move || {
        let t0 = Instant::now();
        let mut n = 0u64;
        while n < iters {
            if black_box(flag.load(Ordering::Relaxed)) {
                break;
            }
            n += 1;
        }
        let d = t0.elapsed();
        assert_eq!(black_box(n), iters, "the flag turned true mid-loop");
        d
    });
    drop(stop);
    d
}
