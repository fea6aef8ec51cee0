//! Stopping a thread blocked in a system call: a kthread created with
//! `interrupt_on_stop` against the flag + `pthread_kill` + `join` a
//! competent user writes around a std thread.

use crate::sys::{install_noop_handler, pipe, pthread_kill, read_once};
use crate::{yield_until, Pin, SETTLE};
use kthread::should_stop;
use std::os::fd::AsFd;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

/// Stops a kthread blocked in `read()` on an empty pipe, `iters` times (a
/// fresh kthread each, created with `interrupt_on_stop`); sums the time
/// `stop` takes to return.
///
/// # Panics
/// If a kthread cannot be created or stopped.
pub fn kthread_stop_blocked_read(iters: u64, pin: Pin) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (r, _w) = pipe();
        let entering = Arc::new(AtomicBool::new(false));
        let e = entering.clone();
        let k = pin
            .builder("bench-read")
            .interrupt_on_stop(true)
            .run(move || {
                while !should_stop() {
                    e.store(true, Ordering::Release);
                    read_once(r.as_fd());
                }
            })
            .expect("kthread run");
        yield_until(|| entering.load(Ordering::Acquire));
        thread::sleep(SETTLE); // let it reach the read
        let t0 = Instant::now();
        k.stop().expect("stop");
        total += t0.elapsed();
    }
    total
}

/// Ends a std thread blocked in `read()` with a flag, `pthread_kill` of a
/// signal whose handler does nothing (no `SA_RESTART`) and `join`, `iters`
/// times; sums the time to `join`'s return. (It has the race the kthread
/// side closes: a signal that lands just before the `read` is lost.)
///
/// # Panics
/// If a thread cannot be spawned or signalled.
pub fn std_pthread_kill_join(iters: u64, pin: Pin) -> Duration {
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| install_noop_handler(libc::SIGUSR1));
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (r, _w) = pipe();
        let stop = Arc::new(AtomicBool::new(false));
        let entering = Arc::new(AtomicBool::new(false));
        let h = {
            let (stop, entering) = (stop.clone(), entering.clone());
            thread::spawn(move || {
                pin.pin_other();
                while !stop.load(Ordering::Acquire) {
                    entering.store(true, Ordering::Release);
                    read_once(r.as_fd());
                }
            })
        };
        yield_until(|| entering.load(Ordering::Acquire));
        thread::sleep(SETTLE);
        let t0 = Instant::now();
        stop.store(true, Ordering::Release);
        pthread_kill(h.as_pthread_t(), libc::SIGUSR1);
        h.join().expect("join");
        total += t0.elapsed();
    }
    total
}
