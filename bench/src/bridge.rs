//! The async bridge: awaiting a kthread worker's flush from a tokio
//! `current_thread` runtime, against the bridge a user would hand-roll
//! (a `tokio::sync::oneshot` answered by a std thread asleep in `park()`).

use crate::wake::{settle, worker};
use crate::{yield_until, Pin, SETTLE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio current_thread runtime")
}

/// Awaits `Worker::flush_async` of an idle worker (asleep, then
/// [`SETTLE`]) `iters` times inside one `block_on`; sums the awaits.
///
/// # Panics
/// If the worker cannot be created or a flush fails.
pub fn kthread_flush_async_idle(iters: u64, pin: Pin) -> Duration {
    let worker = worker("bench-aflush", pin);
    let rt = current_thread_runtime();
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            settle(worker.task());
            let t0 = Instant::now();
            worker.flush_async().await.expect("flush_async");
            total += t0.elapsed();
        }
        total
    })
}

/// A std thread asleep in `park()` answers each request's oneshot; the
/// runtime sends one (the sender in a slot, then `unpark`) and awaits the
/// answer, `iters` times, each with the thread asleep (then [`SETTLE`]).
///
/// # Panics
/// If the thread cannot be spawned or pinned.
pub fn oneshot_park_idle(iters: u64, pin: Pin) -> Duration {
    let slot: Arc<Mutex<Option<oneshot::Sender<()>>>> = Arc::new(Mutex::new(None));
    let asleep = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let partner = {
        let (slot, asleep, done) = (slot.clone(), asleep.clone(), done.clone());
        thread::spawn(move || {
            pin.pin_other();
            loop {
                asleep.store(true, Ordering::Release);
                let request = loop {
                    if let Some(tx) = slot.lock().unwrap().take() {
                        break Some(tx);
                    }
                    if done.load(Ordering::Acquire) {
                        break None;
                    }
                    thread::park();
                };
                asleep.store(false, Ordering::Relaxed);
                match request {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => return,
                }
            }
        })
    };
    let rt = current_thread_runtime();
    let total = rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            yield_until(|| asleep.load(Ordering::Acquire));
            thread::sleep(SETTLE);
            let t0 = Instant::now();
            let (tx, rx) = oneshot::channel();
            *slot.lock().unwrap() = Some(tx);
            partner.thread().unpark();
            rx.await.expect("the partner answers");
            total += t0.elapsed();
        }
        total
    });
    done.store(true, Ordering::Release);
    partner.thread().unpark();
    partner.join().expect("partner thread");
    total
}
