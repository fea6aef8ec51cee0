//! Wait queues and the full set of task states (SPEC §1, §5; the kernel's
//! `kernel/sched/wait.c` and 6.1's `TASK_FREEZABLE`).
//!
//! The freezer is process-wide, so every test that freezes holds `SERIAL`.

mod common;

use common::{wait_briefly_until, watchdog, WATCHDOG};
use kthread::freezer::{self, FreezeError};
use kthread::{
    freezable_should_stop, schedule, set_current_state, should_stop, Builder, Completion, Task,
    TaskState, WaitQueue,
};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const BRIEF: Duration = Duration::from_secs(5);
const FREEZE: Duration = Duration::from_secs(10);

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Waits until `t` sleeps in `state` (it is then certainly past its check).
fn until_state(t: &Task, state: TaskState) {
    wait_briefly_until(&format!("{} in {state:?}", t.name()), BRIEF, || {
        t.state() == state
    });
}

#[test]
fn wait_event_sleeps_until_the_condition_holds_and_rechecks_after_each_wake() -> Res {
    let _w = watchdog("wait_event_rechecks", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let level = Arc::new(AtomicU64::new(0));
    let checks = Arc::new(AtomicU64::new(0));
    let (q, l, c) = (wq.clone(), level.clone(), checks.clone());
    let k = kthread::run("we-recheck", move || {
        q.wait_event(|| {
            c.fetch_add(1, Ordering::Relaxed);
            l.load(Ordering::Acquire) >= 2
        });
        l.load(Ordering::Acquire)
    })?;
    until_state(k.task(), TaskState::Uninterruptible);
    // A wake with the condition still false: the waiter checks and sleeps on.
    level.store(1, Ordering::Release);
    let before = checks.load(Ordering::Relaxed);
    assert_eq!(wq.wake_up(), 1, "the waiter was asleep on the queue");
    wait_briefly_until("the waiter re-checked", BRIEF, || {
        checks.load(Ordering::Relaxed) > before && k.task().state() == TaskState::Uninterruptible
    });
    assert!(
        wq.has_sleeper(),
        "a false condition puts the waiter back on the queue"
    );
    level.store(2, Ordering::Release);
    wq.wake_up();
    assert_eq!(k.stop()?, 2);
    assert!(!wq.has_sleeper(), "finish_wait took it off");
    Ok(())
}

#[test]
fn no_wake_up_is_lost_in_a_hundred_thousand_handshakes() -> Res {
    let _w = watchdog("no_lost_wake", WATCHDOG);
    const ROUNDS: u64 = 100_000;
    let to_consumer = Arc::new(WaitQueue::new());
    let to_producer = Arc::new(WaitQueue::new());
    let seq = Arc::new(AtomicU64::new(0));
    let (a, b, s) = (to_consumer.clone(), to_producer.clone(), seq.clone());
    let consumer = kthread::run("we-consumer", move || {
        for i in 0..ROUNDS {
            // Wait for the producer's odd step, answer with the even one.
            a.wait_event(|| s.load(Ordering::Acquire) == 2 * i + 1);
            s.store(2 * i + 2, Ordering::Release);
            b.wake_up();
        }
    })?;
    for i in 0..ROUNDS {
        seq.store(2 * i + 1, Ordering::Release);
        to_consumer.wake_up();
        to_producer.wait_event(|| seq.load(Ordering::Acquire) == 2 * i + 2);
    }
    consumer.stop()?;
    assert_eq!(seq.load(Ordering::Acquire), 2 * ROUNDS);
    Ok(())
}

/// A waiter of the open-coded form that counts its wakes.
fn open_coded_waiter(
    name: &str,
    wq: &Arc<WaitQueue>,
    exclusive: bool,
    queued: &Arc<Completion>,
    woke: &Arc<AtomicUsize>,
) -> Result<kthread::Kthread<()>, kthread::Error> {
    let (wq, queued, woke) = (wq.clone(), queued.clone(), woke.clone());
    kthread::run(name, move || {
        let mut w = if exclusive {
            wq.prepare_to_wait_exclusive(TaskState::Interruptible)
        } else {
            wq.prepare_to_wait(TaskState::Interruptible)
        };
        queued.complete();
        loop {
            if should_stop() {
                return;
            }
            schedule();
            if !w.is_queued() {
                // Woken by the queue (autoremove took us off): count it once.
                woke.fetch_add(1, Ordering::AcqRel);
                drop(w);
                while !should_stop() {
                    set_current_state(TaskState::Interruptible);
                    if !should_stop() {
                        schedule();
                    }
                    set_current_state(TaskState::Running);
                }
                return;
            }
            w.prepare(TaskState::Interruptible);
        }
    })
}

#[test]
fn wake_up_wakes_every_non_exclusive_waiter_and_one_exclusive_one() -> Res {
    let _w = watchdog("exclusive_wakes", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let queued = Arc::new(Completion::new());
    let shared = Arc::new(AtomicUsize::new(0));
    let excl = Arc::new(AtomicUsize::new(0));
    let mut ks = Vec::new();
    for i in 0..3 {
        ks.push(open_coded_waiter(
            &format!("we-sh/{i}"),
            &wq,
            false,
            &queued,
            &shared,
        )?);
        ks.push(open_coded_waiter(
            &format!("we-ex/{i}"),
            &wq,
            true,
            &queued,
            &excl,
        )?);
    }
    for _ in 0..6 {
        assert!(queued.wait_timeout(BRIEF), "a waiter did not queue");
    }
    assert_eq!(wq.wake_up(), 4, "three shared waiters and one exclusive");
    wait_briefly_until(
        &format!("four wakes counted (shared {shared:?}, exclusive {excl:?})"),
        BRIEF,
        || shared.load(Ordering::Acquire) + excl.load(Ordering::Acquire) >= 4,
    );
    assert_eq!(shared.load(Ordering::Acquire), 3);
    assert_eq!(excl.load(Ordering::Acquire), 1);
    assert!(wq.has_sleeper(), "two exclusive waiters are still queued");
    assert_eq!(wq.wake_up(), 1, "the next exclusive waiter, in FIFO order");
    assert_eq!(wq.wake_up_all(), 1, "wake_up_all wakes the last one");
    wait_briefly_until("all exclusive wakes counted", BRIEF, || {
        excl.load(Ordering::Acquire) == 3
    });
    assert!(!wq.has_sleeper());
    for k in ks {
        k.stop()?;
    }
    Ok(())
}

#[test]
fn wake_up_interruptible_leaves_an_uninterruptible_waiter_asleep() -> Res {
    let _w = watchdog("wake_up_interruptible", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let go = Arc::new(AtomicBool::new(false));
    let (q, g) = (wq.clone(), go.clone());
    let k = kthread::run("we-unint", move || {
        q.wait_event(|| g.load(Ordering::Acquire))
    })?;
    until_state(k.task(), TaskState::Uninterruptible);
    go.store(true, Ordering::Release);
    assert_eq!(
        wq.wake_up_interruptible(),
        0,
        "an uninterruptible sleep is not ended"
    );
    assert_eq!(k.task().state(), TaskState::Uninterruptible);
    assert!(wq.has_sleeper());
    assert_eq!(wq.wake_up(), 1);
    k.stop()?;

    // ... while an interruptible waiter is woken by it.
    go.store(false, Ordering::Release);
    let (q, g) = (wq.clone(), go.clone());
    let k = kthread::run("we-int", move || {
        q.wait_event_interruptible(|| g.load(Ordering::Acquire))
    })?;
    until_state(k.task(), TaskState::Interruptible);
    go.store(true, Ordering::Release);
    assert_eq!(wq.wake_up_interruptible(), 1);
    assert_eq!(k.stop()?, Ok(()));
    Ok(())
}

#[test]
fn a_stop_reaches_a_waiter_whose_condition_includes_should_stop() -> Res {
    let _w = watchdog("stop_of_waiter", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let q = wq.clone();
    let k = kthread::run("we-stop", move || {
        q.wait_event_interruptible(should_stop).map(|()| 7)
    })?;
    until_state(k.task(), TaskState::Interruptible);
    assert_eq!(k.stop()?, Ok(7), "wake_up_process made it re-check");
    assert!(!wq.has_sleeper());
    Ok(())
}

#[test]
fn timeouts_return_none_when_the_time_passed_and_the_time_left_otherwise() {
    let _w = watchdog("timeouts", WATCHDOG);
    let wq = WaitQueue::new();
    let start = Instant::now();
    assert_eq!(
        wq.wait_event_timeout(|| false, Duration::from_millis(20)),
        None
    );
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "slept out the timeout"
    );
    let left = wq.wait_event_timeout(|| true, Duration::from_secs(60));
    assert!(left.is_some_and(|d| d > Duration::from_secs(50)));
    // A condition that becomes true only at expiry still counts: it is
    // checked once more after the timeout (the kernel returns 1 then).
    let deadline = Instant::now() + Duration::from_millis(20);
    let left = wq.wait_event_timeout(|| Instant::now() >= deadline, Duration::from_millis(20));
    assert!(left.is_some(), "true at expiry is a success");
    assert_eq!(
        wq.wait_event_interruptible_timeout(|| false, Duration::from_millis(5)),
        Ok(None)
    );
    assert_eq!(
        wq.wait_event_freezable_timeout(|| false, Duration::from_millis(5)),
        Ok(None)
    );
    assert!(!wq.has_sleeper());
}

#[test]
fn a_timed_wait_is_ended_by_the_wake_with_time_left() -> Res {
    let _w = watchdog("timed_wake", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let go = Arc::new(AtomicBool::new(false));
    let (q, g) = (wq.clone(), go.clone());
    let k = kthread::run("we-timed", move || {
        q.wait_event_interruptible_timeout(|| g.load(Ordering::Acquire), Duration::from_secs(60))
    })?;
    until_state(k.task(), TaskState::Interruptible);
    go.store(true, Ordering::Release);
    wq.wake_up();
    let left = k
        .stop()?
        .expect("no signal")
        .expect("woken before the timeout");
    assert!(left > Duration::from_secs(50), "left {left:?}");
    Ok(())
}

#[test]
fn a_thread_that_is_not_a_kthread_can_wait_and_be_woken() {
    let _w = watchdog("std_thread_waits", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let go = Arc::new(AtomicBool::new(false));
    let (q, g) = (wq.clone(), go.clone());
    let t = std::thread::spawn(move || q.wait_event(|| g.load(Ordering::Acquire)));
    wait_briefly_until("the std thread queued", BRIEF, || wq.has_sleeper());
    go.store(true, Ordering::Release);
    wq.wake_up();
    t.join().unwrap();
    assert!(!wq.has_sleeper());
}

#[test]
fn a_panicking_condition_leaves_the_queue_empty() {
    let wq = WaitQueue::new();
    let mut calls = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wq.wait_event(|| {
            calls += 1;
            assert!(calls < 2, "condition panics on its second check");
            false
        })
    }));
    assert!(r.is_err());
    assert!(
        !wq.has_sleeper(),
        "the entry was taken off during the unwind"
    );
    assert_eq!(Task::current().state(), TaskState::Running);
    assert_eq!(wq.wake_up_all(), 0);
}

#[test]
fn idle_and_killable_are_sleeps_a_wake_up_ends() -> Res {
    let _w = watchdog("idle_killable", WATCHDOG);
    for state in [TaskState::Idle, TaskState::Killable] {
        let k = kthread::run("we-state", move || {
            while !should_stop() {
                set_current_state(state);
                if !should_stop() {
                    schedule();
                }
                set_current_state(TaskState::Running);
            }
        })?;
        until_state(k.task(), state);
        let letter = if state == TaskState::Idle { 'I' } else { 'D' };
        assert_eq!(k.task().state().letter(), letter);
        assert!(k.task().wake_up(), "{state:?} is a normal sleep");
        k.stop()?;
    }
    Ok(())
}

#[test]
fn states_the_library_owns_are_refused_freezable_or_not() {
    for s in [TaskState::Parked, TaskState::Frozen, TaskState::Dead] {
        assert!(std::panic::catch_unwind(|| set_current_state(s.freezable())).is_err());
        assert!(std::panic::catch_unwind(|| {
            let wq = WaitQueue::new();
            let _w = wq.prepare_to_wait(s);
        })
        .is_err());
    }
    assert_eq!(Task::current().state(), TaskState::Running);
}

// ---- freezing (Linux 6.1+: TASK_FREEZABLE) ------------------------------------

/// A freezable kthread in `wait_event_freezable(cond || should_stop)`.
#[test]
fn wait_event_freezable_freezes_in_place_and_handles_the_wake_after_the_thaw() -> Res {
    let _s = serial();
    let _w = watchdog("wait_event_freezable", WATCHDOG);
    let wq = Arc::new(WaitQueue::new());
    let pending = Arc::new(AtomicU64::new(0));
    let handled = Arc::new(AtomicU64::new(0));
    let (q, p, h) = (wq.clone(), pending.clone(), handled.clone());
    let k = Builder::new("we-freezable")
        .freezable(true)
        .run(move || loop {
            let _ = q.wait_event_freezable(|| p.load(Ordering::Acquire) > 0 || should_stop());
            if should_stop() {
                return h.load(Ordering::Acquire);
            }
            p.fetch_sub(1, Ordering::AcqRel);
            h.fetch_add(1, Ordering::AcqRel);
        })?;
    until_state(k.task(), TaskState::Interruptible);
    let guard = freezer::freeze(FREEZE)?;
    assert_eq!(
        k.task().state(),
        TaskState::Frozen,
        "frozen inside the wait"
    );
    pending.store(1, Ordering::Release);
    assert_eq!(wq.wake_up(), 0, "a wake does not reach a frozen task");
    assert_eq!(k.task().state(), TaskState::Frozen);
    assert_eq!(handled.load(Ordering::Acquire), 0);
    drop(guard);
    wait_briefly_until("handled after the thaw", BRIEF, || {
        handled.load(Ordering::Acquire) == 1
    });
    // And again: it went back to its freezable wait.
    until_state(k.task(), TaskState::Interruptible);
    let guard = freezer::freeze(FREEZE)?;
    drop(guard);
    assert_eq!(k.stop()?, 1);
    Ok(())
}

#[test]
fn a_freezable_sleep_in_any_normal_state_is_a_freeze_point() -> Res {
    let _s = serial();
    let _w = watchdog("freezable_states", WATCHDOG);
    for state in [
        TaskState::Interruptible,
        TaskState::Uninterruptible,
        TaskState::Idle,
    ] {
        let rounds = Arc::new(AtomicU64::new(0));
        let r = rounds.clone();
        let k = Builder::new("we-fz-state").freezable(true).run(move || {
            while !should_stop() {
                set_current_state(state.freezable());
                if !should_stop() {
                    schedule();
                }
                set_current_state(TaskState::Running);
                r.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        until_state(k.task(), state);
        let before = rounds.load(Ordering::Relaxed);
        let guard = freezer::freeze(FREEZE)?;
        assert_eq!(
            k.task().state(),
            TaskState::Frozen,
            "{state:?}: frozen in the sleep"
        );
        drop(guard);
        // The thaw is a spurious wake: the loop goes round once and sleeps again.
        until_state(k.task(), state);
        let after = rounds.load(Ordering::Relaxed);
        assert!(
            after - before <= 2,
            "{state:?}: {} rounds, not a busy loop",
            after - before
        );
        k.stop()?;
    }
    Ok(())
}

/// The bug this replaces: `TASK_INTERRUPTIBLE | TASK_FREEZABLE` returned at
/// once, so an idle loop spun at 100% CPU.
#[test]
fn a_freezable_sleep_sleeps() -> Res {
    let _s = serial();
    let _w = watchdog("freezable_sleep_sleeps", WATCHDOG);
    let rounds = Arc::new(AtomicU64::new(0));
    let r = rounds.clone();
    let k = Builder::new("we-fz-idle").freezable(true).run(move || {
        while !should_stop() {
            set_current_state(TaskState::Interruptible.freezable());
            if !should_stop() {
                schedule();
            }
            set_current_state(TaskState::Running);
            r.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    until_state(k.task(), TaskState::Interruptible);
    // Asleep: nothing wakes it until our wake, which ends exactly one round.
    let before = rounds.load(Ordering::Relaxed);
    assert!(k.task().wake_up());
    wait_briefly_until("one round", BRIEF, || {
        rounds.load(Ordering::Relaxed) == before + 1
    });
    until_state(k.task(), TaskState::Interruptible);
    assert_eq!(rounds.load(Ordering::Relaxed), before + 1);
    k.stop()?;
    Ok(())
}

#[test]
fn a_freeze_wakes_a_plain_interruptible_sleep_once_and_freezes_at_the_next_freeze_point() -> Res {
    let _s = serial();
    let _w = watchdog("plain_interruptible", WATCHDOG);
    // With a freeze point in its loop: woken by the freeze, frozen there.
    let k = Builder::new("we-plain").freezable(true).run(|| {
        let mut was_frozen = false;
        loop {
            let (stop, froze) = kthread::freezer::freezable_should_stop_frozen();
            was_frozen |= froze;
            if stop {
                return was_frozen;
            }
            set_current_state(TaskState::Interruptible);
            if !should_stop() {
                schedule();
            }
            set_current_state(TaskState::Running);
        }
    })?;
    until_state(k.task(), TaskState::Interruptible);
    let guard = freezer::freeze(FREEZE)?;
    assert_eq!(k.task().state(), TaskState::Frozen);
    drop(guard);
    assert!(
        k.stop()?,
        "it froze in freezable_should_stop, not in the sleep"
    );

    // Without one, the freeze fails after its timeout, naming the kthread,
    // and has woken it only a handful of times (no busy loop).
    let wakes = Arc::new(AtomicU64::new(0));
    let wk = wakes.clone();
    let k = Builder::new("we-nofreeze").freezable(true).run(move || {
        while !should_stop() {
            set_current_state(TaskState::Interruptible);
            if !should_stop() {
                schedule();
            }
            set_current_state(TaskState::Running);
            wk.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    until_state(k.task(), TaskState::Interruptible);
    match freezer::freeze(Duration::from_millis(300)) {
        Err(FreezeError::TimedOut(names)) => {
            assert!(names.iter().any(|u| u.name == "we-nofreeze"), "{names:?}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let n = wakes.load(Ordering::Relaxed);
    assert!((1..=3).contains(&n), "woken {n} times by one freeze");
    k.stop()?;
    Ok(())
}

#[test]
fn a_plain_uninterruptible_sleep_is_left_alone_and_the_freeze_waits_for_it() -> Res {
    let _s = serial();
    let _w = watchdog("plain_uninterruptible", WATCHDOG);
    let k = Builder::new("we-idle").freezable(true).run(|| {
        while !freezable_should_stop() {
            set_current_state(TaskState::Idle);
            if !should_stop() {
                schedule();
            }
            set_current_state(TaskState::Running);
        }
    })?;
    until_state(k.task(), TaskState::Idle);
    match freezer::freeze(Duration::from_millis(200)) {
        Err(FreezeError::TimedOut(names)) => assert_eq!(names.len(), 1),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        k.task().state(),
        TaskState::Idle,
        "never woken by the freeze"
    );
    k.stop()?;
    Ok(())
}
