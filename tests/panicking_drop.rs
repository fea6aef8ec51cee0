//! Values whose `Drop` panics, captured by every closure the library owns
//! and drops on its own threads or across its `extern "C"` hooks: the
//! process must survive, the panic is counted, and the library goes on.

mod common;

use common::{watchdog, WATCHDOG};
use kthread::{DelayedWork, StopError, Work, Worker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Panics when dropped, after counting the drop.
struct Bomb(Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("bomb dropped");
    }
}

#[test]
fn worker_releasing_the_last_reference_survives_a_panicking_drop() {
    let _w = watchdog("worker_releasing_the_last_reference", WATCHDOG);
    let w = Worker::new("pd-run").unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    // Hold the worker until our handle is gone, so the worker's release
    // after the run is certainly the last reference.
    let gate = Arc::new(kthread::Completion::new());
    let g = gate.clone();
    let blocker = Work::new(move || g.wait());
    assert!(w.queue(&blocker));
    {
        let (bomb, ran) = (Bomb(drops.clone()), ran.clone());
        let item = Work::new(move || {
            let _armed = &bomb;
            ran.fetch_add(1, Ordering::SeqCst);
        });
        assert!(w.queue(&item));
    }
    gate.complete();
    w.flush().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the closure was dropped once"
    );
    assert_eq!(
        w.panics(),
        1,
        "the drop's panic is counted like a work panic"
    );
    // The worker goes on.
    let next = Work::new(|| ());
    assert!(w.queue(&next));
    w.flush().unwrap();
    assert_eq!(w.executed(), 3);
}

#[test]
fn destroy_cancelling_an_armed_timer_survives_a_panicking_drop() {
    let _w = watchdog("destroy_cancelling_an_armed_timer", WATCHDOG);
    let w = Worker::new("pd-timer").unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let bomb = Bomb(drops.clone());
        let item = DelayedWork::new(move || {
            let _armed = &bomb;
        });
        assert!(w.queue_delayed(&item, Duration::from_secs(3600)));
    }
    w.destroy(); // cancel_timers releases the last reference
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn cancel_sync_releasing_the_last_reference_survives_a_panicking_drop() {
    let _w = watchdog("cancel_sync_releasing_the_last_reference", WATCHDOG);
    let w = Worker::new("pd-cancel").unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let item = {
        let bomb = Bomb(drops.clone());
        DelayedWork::new(move || {
            let _armed = &bomb;
        })
    };
    assert!(w.queue_delayed(&item, Duration::from_secs(3600)));
    assert!(item.cancel_sync(), "the armed instance was pending");
    assert_eq!(drops.load(Ordering::SeqCst), 0, "our handle still holds it");
    // The last reference is ours: the panic is ours to see, as any Rust drop.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(item)));
    assert!(caught.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn kthread_stopped_before_its_first_wake_survives_a_panicking_drop() {
    let _w = watchdog("kthread_stopped_before_its_first_wake", WATCHDOG);
    let drops = Arc::new(AtomicUsize::new(0));
    let bomb = Bomb(drops.clone());
    let k = kthread::create("pd-never", move || {
        let _armed = &bomb;
    })
    .unwrap();
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "dropped once, on the kthread"
    );
    // kthreadd and creation still work.
    let k = kthread::run("pd-after", || 7).unwrap();
    assert_eq!(k.stop().unwrap(), 7);
}
