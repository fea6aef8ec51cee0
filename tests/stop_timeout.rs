//! `Kthread::stop_timeout`: a stop with a deadline (the "Real processes" issue, part 3).

mod common;

use common::{watchdog, WATCHDOG};
use kthread::{Completion, StopError, StopTimeoutError, TaskState};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_kthread_that_returns_in_time_gives_its_result() -> Result<(), Box<dyn std::error::Error>> {
    let _w = watchdog("stop_timeout_in_time", WATCHDOG);
    let k = kthread::run("st-quick", || {
        while !kthread::should_stop() {
            kthread::set_current_state(TaskState::Interruptible);
            if !kthread::should_stop() {
                kthread::schedule();
            }
            kthread::set_current_state(TaskState::Running);
        }
        7
    })?;
    assert_eq!(k.stop_timeout(Duration::from_secs(60)).ok(), Some(7));
    Ok(())
}

#[test]
fn a_late_kthread_times_out_keeps_the_stop_requested_and_can_be_stopped_again(
) -> Result<(), Box<dyn std::error::Error>> {
    let _w = watchdog("stop_timeout_late", WATCHDOG);
    let gate = Arc::new(Completion::new());
    let saw_stop = Arc::new(Completion::new());
    let (g, s) = (gate.clone(), saw_stop.clone());
    let k = kthread::run("st-late", move || {
        g.wait(); // deaf to should_stop() until the gate opens
        if kthread::should_stop() {
            s.complete();
        }
        11
    })?;
    let t0 = Instant::now();
    let k = match k.stop_timeout(Duration::from_millis(30)) {
        Err(StopTimeoutError::TimedOut(k)) => k,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert!(
        t0.elapsed() >= Duration::from_millis(30),
        "waited out the deadline"
    );
    assert!(!k.task().has_exited());
    gate.complete();
    assert!(
        saw_stop.wait_timeout(Duration::from_secs(10)),
        "the stop stayed requested"
    );
    match k.stop_timeout(Duration::from_secs(60)) {
        Ok(v) => assert_eq!(v, 11),
        Err(e) => panic!("second stop: {e}"),
    }
    Ok(())
}

#[test]
fn stop_timeout_reports_a_kthread_that_never_ran_and_one_that_panicked(
) -> Result<(), kthread::Error> {
    let k = kthread::create("st-never", || 1)?;
    assert!(matches!(
        k.stop_timeout(Duration::ZERO),
        Err(StopTimeoutError::Stopped(StopError::NotStarted))
    ));
    let k = kthread::run("st-panic", || -> u8 { panic!("st-panic") })?;
    match k.stop_timeout(Duration::from_secs(60)) {
        Err(StopTimeoutError::Stopped(e)) => assert_eq!(e.panic_message(), Some("st-panic")),
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn a_timed_out_handle_dropped_still_stops_and_joins() -> Result<(), Box<dyn std::error::Error>> {
    let _w = watchdog("stop_timeout_drop", WATCHDOG);
    let gate = Arc::new(Completion::new());
    let g = gate.clone();
    let k = kthread::run("st-drop", move || g.wait())?;
    let task = k.task().clone();
    let Err(StopTimeoutError::TimedOut(k)) = k.stop_timeout(Duration::from_millis(1)) else {
        panic!("expected a timeout");
    };
    gate.complete();
    drop(k); // waits for the function, which returns now
    assert!(task.has_exited());
    Ok(())
}

#[test]
fn worker_destroy_timeout_gives_the_worker_back_with_its_queue_intact(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let _w = watchdog("destroy_timeout", WATCHDOG);
    let w = kthread::Worker::new("st-worker")?;
    let gate = Arc::new(Completion::new());
    let ran = Arc::new(AtomicU32::new(0));
    let g = gate.clone();
    let blocker = kthread::Work::new(move || g.wait());
    let items: Vec<_> = (0..3)
        .map(|_| {
            let r = ran.clone();
            kthread::Work::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    assert!(w.queue(&blocker));
    for it in &items {
        assert!(w.queue(it));
    }
    let w = match w.destroy_timeout(Duration::from_millis(20)) {
        Err(w) => w,
        Ok(()) => panic!("destroyed while an item was stuck"),
    };
    assert!(
        items.iter().all(|it| it.is_pending()),
        "the queue is intact"
    );
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    gate.complete_all();
    assert!(w.destroy_timeout(Duration::from_secs(60)).is_ok());
    assert_eq!(
        ran.load(Ordering::Relaxed),
        3,
        "destroy ran everything queued"
    );
    assert!(items.iter().all(|it| !it.is_pending()));
    Ok(())
}
