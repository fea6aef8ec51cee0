//! Regression tests, each named after the bug it reproduces.

mod common;

use common::{watchdog, WATCHDOG};
use kthread::{DelayedWork, Work, Worker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The idle worker used to spin with its lock dropped and then sleep on the
/// timer deadline and list it had seen *before* the spin, so a timer armed
/// (or an item moved to the list by a flush) during the spin was lost and
/// the next flush hung. Found by the randomized stress test.
#[test]
fn timer_armed_during_idle_spin_is_not_lost() {
    let _w = watchdog("timer_armed_during_idle_spin_is_not_lost", WATCHDOG);
    let w = Worker::new("regress-spin").unwrap();
    let job = Work::new(|| ());
    let fired = Arc::new(AtomicU64::new(0));
    let f = fired.clone();
    let d = DelayedWork::new(move || {
        f.fetch_add(1, Ordering::SeqCst);
    });
    for round in 1..=300u64 {
        // A stream of short sleeps turns the adaptive spin on...
        assert!(w.queue(&job));
        job.flush();
        // ...and the timer is armed while the worker spins.
        assert!(w.queue_delayed(&d, Duration::from_micros(500)));
        job.flush();
        w.queue(&job);
        assert!(d.flush() || fired.load(Ordering::SeqCst) == round);
        assert_eq!(fired.load(Ordering::SeqCst), round);
    }
}

/// Flush sentinels were counted as executed work items.
#[test]
fn flush_sentinels_are_not_counted_as_executed_items() {
    let _w = watchdog("flush_sentinels_are_not_counted", WATCHDOG);
    let w = Worker::new("regress-count").unwrap();
    let job = Work::new(|| ());
    for _ in 0..3 {
        w.queue(&job);
        job.flush();
        w.flush().unwrap();
    }
    assert_eq!(w.executed(), 3);
}

/// Moving an idle item to another worker dropped the old worker's last
/// reference inside the claim, while the claim still held that worker's
/// lock (use after free, seen by memcheck).
#[test]
fn moving_an_item_off_a_dropped_worker_is_safe() {
    let _w = watchdog("moving_an_item_off_a_dropped_worker_is_safe", WATCHDOG);
    let ran = Arc::new(AtomicU64::new(0));
    let r = ran.clone();
    let job = Work::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    for round in 1..=50u64 {
        let a = Worker::new("regress-old").unwrap();
        assert!(a.queue(&job));
        job.flush();
        drop(a); // the item's owner reference is now the last one
        let b = Worker::new("regress-new").unwrap();
        assert!(b.queue(&job));
        job.flush();
        assert_eq!(ran.load(Ordering::SeqCst), 2 * round);
        drop(b);
    }
}
