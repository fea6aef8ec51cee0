//! loom models of the protocols, one per protocol, over the real code.
//!
//! Run with `scripts/loom.sh` (`RUSTFLAGS="--cfg kthread_loom" cargo test
//! --lib loom_`). Under `cfg(kthread_loom)` every atomic of the protocols is
//! loom's and the futex is a loom mutex + condvar, so a missed wake-up is
//! reported as a deadlock and a broken ordering as a failed assertion.
//! Each model plays the kthread's side on a loom thread with the task
//! installed as `current`, exactly as `thread_main` does.

use crate::kthread::{exit, parkme_task, request_stop};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::task::{self, flags, Task, TaskInit};
use crate::worker::raw::{self, RawDelayedWork, RawWork, RawWorker};
use loom::sync::atomic::AtomicBool;
use loom::thread;

/// Runs a loom model and reports how many interleavings it explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    loom::model(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!(
        "loom: {name}: {} interleavings explored",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn new_task(flags: u32) -> Task {
    Task::new(TaskInit {
        name: "model".into(),
        start: Default::default(),
        flags,
        node: None,
        cpu: None,
        data: None,
    })
}

/// The kthread's start: sleep Uninterruptible until the first wake or a
/// stop, then decide with the WOKEN bit (as `thread_main`).
fn first_run(t: &Task) -> bool {
    task::set_current(t);
    t.sleep(None);
    let ran = t.has(flags::WOKEN);
    exit(t);
    ran
}

fn created() -> Task {
    let t = new_task(0);
    t.set_state(task::UNINTERRUPTIBLE);
    t
}

/// A wake racing a stop: the function runs iff the wake won the one atomic
/// decision, `stop` always returns, and nothing sleeps forever.
#[test]
fn loom_stop_vs_wake_vs_first_run() {
    model("loom_stop_vs_wake_vs_first_run", || {
        let t = created();
        let k = {
            let t = t.clone();
            thread::spawn(move || first_run(&t))
        };
        let waker = {
            let t = t.clone();
            thread::spawn(move || {
                t.wake_up();
            })
        };
        request_stop(&t);
        t.exited().wait();
        let ran = k.join().unwrap();
        waker.join().unwrap();
        assert_eq!(ran, t.has(flags::WOKEN), "ran without the WOKEN decision");
    });
}

/// Once `wake_up` has returned, a stop can no longer cancel the function.
#[test]
fn loom_wake_then_stop_always_runs() {
    model("loom_wake_then_stop_always_runs", || {
        let t = created();
        let k = {
            let t = t.clone();
            thread::spawn(move || first_run(&t))
        };
        t.wake_up();
        request_stop(&t);
        t.exited().wait();
        assert!(k.join().unwrap(), "a woken kthread must run its function");
    });
}

/// The kernel's sleep pattern against a concurrent wake: no lost wake-up.
#[test]
fn loom_set_current_state_schedule_vs_wake_up() {
    model("loom_set_current_state_schedule_vs_wake_up", || {
        let t = new_task(flags::WOKEN);
        let cond = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (t, cond) = (t.clone(), cond.clone());
            thread::spawn(move || {
                task::set_current(&t);
                loop {
                    task::set_current_state(task::TaskState::Interruptible);
                    if cond.load(Ordering::Relaxed) {
                        break;
                    }
                    task::schedule();
                }
                task::set_current_state(task::TaskState::Running);
                task::clear_current();
            })
        };
        cond.store(true, Ordering::Relaxed);
        t.wake_up();
        sleeper.join().unwrap();
    });
}

/// A stop lands while the thread sleeps in its loop: it must see it.
#[test]
fn loom_stop_vs_schedule_loop() {
    model("loom_stop_vs_schedule_loop", || {
        let t = new_task(flags::WOKEN);
        let k = {
            let t = t.clone();
            thread::spawn(move || {
                task::set_current(&t);
                while !crate::kthread::should_stop() {
                    task::set_current_state(task::TaskState::Uninterruptible);
                    if !crate::kthread::should_stop() {
                        task::schedule();
                    }
                    task::set_current_state(task::TaskState::Running);
                }
                exit(&t);
            })
        };
        request_stop(&t);
        t.exited().wait();
        k.join().unwrap();
    });
}

fn parkable_loop(t: &Task) {
    task::set_current(t);
    while !crate::kthread::should_stop() {
        if crate::kthread::should_park() {
            parkme_task(t);
            continue;
        }
        task::set_current_state(task::TaskState::Interruptible);
        if !crate::kthread::should_stop() && !crate::kthread::should_park() {
            task::schedule();
        }
        task::set_current_state(task::TaskState::Running);
    }
    exit(t);
}

/// Park against a concurrent stop: park returns (parked, or `Exited`),
/// the stop ends the thread, and nobody waits forever.
#[test]
fn loom_park_vs_unpark_vs_stop() {
    model("loom_park_vs_unpark_vs_stop", || {
        let t = new_task(flags::WOKEN);
        let k = {
            let t = t.clone();
            thread::spawn(move || parkable_loop(&t))
        };
        let stopper = {
            let t = t.clone();
            thread::spawn(move || {
                request_stop(&t);
                t.exited().wait();
            })
        };
        match t.park() {
            Ok(()) => t.unpark(),
            Err(e) => assert!(matches!(
                e,
                crate::Error::Exited | crate::Error::AlreadyParked
            )),
        }
        stopper.join().unwrap();
        k.join().unwrap();
    });
}

/// Park acknowledgement: `park` returns only once the thread sits in parkme.
#[test]
fn loom_park_is_acknowledged() {
    model("loom_park_is_acknowledged", || {
        let t = new_task(flags::WOKEN);
        let k = {
            let t = t.clone();
            thread::spawn(move || parkable_loop(&t))
        };
        t.park().unwrap();
        assert!(
            t.has(flags::IS_PARKED),
            "park returned before the thread parked"
        );
        t.unpark();
        request_stop(&t);
        t.exited().wait();
        k.join().unwrap();
    });
}

/// The kernel's freezable loop. With `freezable_sleep` its sleep is a
/// freeze point (`TASK_FREEZABLE`); without, a freeze only wakes it and it
/// freezes in `freezable_should_stop` (Linux 6.1).
fn freezable_loop(t: &Task, freezable_sleep: bool) {
    task::set_current(t);
    let sleep: task::SleepState = if freezable_sleep {
        task::TaskState::Interruptible.freezable()
    } else {
        task::TaskState::Interruptible.into()
    };
    while !crate::freezer::freezable_should_stop() {
        task::set_current_state(sleep);
        if !crate::kthread::should_stop() {
            task::schedule();
        }
        task::set_current_state(task::TaskState::Running);
    }
    exit(t);
}

/// The freezer models share the process-wide task list the freezer walks
/// (a `std` static, outside loom), so two of them running at once would see
/// each other's tasks and make the schedule non-deterministic: they take
/// this lock, one at a time.
fn freezer_model() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn_freezable() -> (Task, thread::JoinHandle<()>) {
    spawn_freezable_with(false)
}

fn spawn_freezable_with(freezable_sleep: bool) -> (Task, thread::JoinHandle<()>) {
    let t = new_task(flags::WOKEN | flags::FREEZABLE);
    crate::task::list::add(&t);
    let h = {
        let t = t.clone();
        thread::spawn(move || freezable_loop(&t, freezable_sleep))
    };
    (t, h)
}

/// Freeze entry against the task's own progress, then thaw: freeze returns
/// only with the task in the refrigerator, and the thaw always releases it.
/// The task's sleep is a plain interruptible one: the freeze must wake it
/// (its kick, or `schedule` seeing the freeze it began after) or the
/// model deadlocks.
#[test]
fn loom_freeze_entry_vs_thaw() {
    let _one = freezer_model();
    model("loom_freeze_entry_vs_thaw", || freeze_then_thaw(false));
}

/// As `loom_freeze_entry_vs_thaw`, with the sleep marked freezable: the
/// task freezes inside `schedule` (before or after sleeping).
#[test]
fn loom_freeze_in_a_freezable_sleep_vs_thaw() {
    let _one = freezer_model();
    model("loom_freeze_in_a_freezable_sleep_vs_thaw", || {
        freeze_then_thaw(true)
    });
}

fn freeze_then_thaw(freezable_sleep: bool) {
    {
        let (t, k) = spawn_freezable_with(freezable_sleep);
        let guard = crate::freezer::freeze(std::time::Duration::from_secs(3600))
            .expect("the only freezable task must freeze");
        assert!(
            t.has(flags::FROZEN),
            "freeze returned before the task froze"
        );
        assert_eq!(t.state(), task::TaskState::Frozen);
        drop(guard);
        request_stop(&t);
        t.exited().wait();
        k.join().unwrap();
    }
}

/// A freeze right after a thaw, racing the thawed task on its way out of
/// the refrigerator: the second freeze returns only with the task frozen
/// for it (before the freeze epochs, a task that had seen the thaw still
/// carried its FROZEN mark and counted as frozen while it left).
#[test]
fn loom_refreeze_right_after_thaw() {
    let _one = freezer_model();
    model("loom_refreeze_right_after_thaw", || {
        let (t, k) = spawn_freezable();
        let first = crate::freezer::freeze(std::time::Duration::from_secs(3600)).unwrap();
        drop(first);
        let second = crate::freezer::freeze(std::time::Duration::from_secs(3600))
            .expect("the only freezable task must freeze again");
        assert_eq!(
            t.state(),
            task::TaskState::Frozen,
            "the second freeze returned with the task running"
        );
        drop(second);
        request_stop(&t);
        t.exited().wait();
        k.join().unwrap();
    });
}

/// A task frozen in `freezable_should_stop` leaves the refrigerator on a stop, while the system stays frozen.
#[test]
fn loom_stop_of_frozen_task() {
    let _one = freezer_model();
    model("loom_stop_of_frozen_task", || {
        let (t, k) = spawn_freezable();
        let guard = crate::freezer::freeze(std::time::Duration::from_secs(3600)).unwrap();
        request_stop(&t);
        t.exited().wait();
        k.join().unwrap();
        drop(guard);
    });
}

#[repr(C)]
struct Counted {
    work: RawWork,
    runs: AtomicUsize,
}

unsafe extern "C" fn count_fn(w: *mut RawWork) {
    // SAFETY: only `Counted`s use this function; `work` is their first field.
    unsafe {
        (*(w as *const Counted))
            .runs
            .fetch_add(1, Ordering::Relaxed)
    };
}

#[repr(C)]
struct CountedDelayed {
    dwork: RawDelayedWork,
    runs: AtomicUsize,
}

unsafe extern "C" fn count_delayed_fn(w: *mut RawWork) {
    // SAFETY: only `CountedDelayed`s use this function; the work is at offset 0.
    unsafe {
        (*(w as *const CountedDelayed))
            .runs
            .fetch_add(1, Ordering::Relaxed)
    };
}

fn start_worker(w: &Arc<RawWorker>) -> (Task, thread::JoinHandle<()>) {
    let t = new_task(flags::WOKEN);
    let h = {
        let (t, w) = (t.clone(), w.clone());
        thread::spawn(move || {
            task::set_current(&t);
            raw::worker_fn(&w);
            exit(&t);
        })
    };
    (t, h)
}

/// A counted item that has never run.
fn counted() -> Arc<Counted> {
    Arc::new(Counted {
        work: RawWork::new(Some(count_fn)),
        runs: AtomicUsize::new(0),
    })
}

/// A producer thread queueing `item` on `w`; joins to whether it queued.
fn spawn_queue(w: &Arc<RawWorker>, item: &Arc<Counted>) -> thread::JoinHandle<bool> {
    let (w, item) = (w.clone(), item.clone());
    // SAFETY: the item and worker outlive the model's threads.
    thread::spawn(move || unsafe { raw::queue(&w, &item.work) })
}

fn stop_worker(t: Task, h: thread::JoinHandle<()>) {
    request_stop(&t);
    t.exited().wait();
    h.join().unwrap();
}

/// One item: a producer queues it, the worker runs it, the main thread
/// flushes or cancels it. Every successful queue ends in exactly one run or
/// one successful cancel; after cancel_sync the item is not running.
#[test]
fn loom_queue_execute_flush_cancel() {
    model("loom_queue_execute_flush_cancel", || {
        let w = Arc::new(RawWorker::new(0));
        let item = counted();
        let (t, h) = start_worker(&w);
        let producer = spawn_queue(&w, &item);
        let queued = producer.join().unwrap();
        assert!(queued, "first queue of an idle item succeeds");
        // SAFETY: the worker is alive.
        let cancelled = unsafe { raw::cancel_sync(&item.work) };
        let runs_after_cancel = item.runs.load(Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { raw::flush_work(&item.work) }.unwrap();
        let runs = item.runs.load(Ordering::Relaxed);
        assert_eq!(runs_after_cancel, runs, "ran after cancel_sync returned");
        assert_eq!(runs + cancelled as usize, 1, "lost or duplicated item");
        stop_worker(t, h);
    });
}

/// Flush of an item racing its queue: if the queue happened before the
/// flush started, the flush waits for that run.
#[test]
fn loom_flush_work_vs_queue() {
    model("loom_flush_work_vs_queue", || {
        let w = Arc::new(RawWorker::new(0));
        let item = counted();
        let (t, h) = start_worker(&w);
        // SAFETY: the item and worker outlive the model's threads.
        assert!(unsafe { raw::queue(&w, &item.work) });
        // SAFETY: as above.
        let waited = unsafe { raw::flush_work(&item.work) }.unwrap();
        if waited {
            assert_eq!(item.runs.load(Ordering::Relaxed), 1);
        }
        // A second flush finds it idle or waits for the same instance.
        // SAFETY: as above.
        unsafe { raw::flush_work(&item.work) }.unwrap();
        assert_eq!(item.runs.load(Ordering::Relaxed), 1);
        stop_worker(t, h);
    });
}

/// Worker flush sentinel against a concurrent queue: what was queued
/// before the flush began has run when it returns.
#[test]
fn loom_worker_flush_vs_queue() {
    model("loom_worker_flush_vs_queue", || {
        let w = Arc::new(RawWorker::new(0));
        let item = counted();
        let queued = Arc::new(AtomicBool::new(false));
        let (t, h) = start_worker(&w);
        let producer = {
            let (w, item, queued) = (w.clone(), item.clone(), queued.clone());
            thread::spawn(move || {
                // SAFETY: the item and worker outlive the model's threads.
                assert!(unsafe { raw::queue(&w, &item.work) });
                queued.store(true, Ordering::Release);
            })
        };
        let before = queued.load(Ordering::Acquire);
        raw::flush_worker(&w).unwrap();
        if before {
            assert_eq!(
                item.runs.load(Ordering::Relaxed),
                1,
                "flush returned before an earlier item ran"
            );
        }
        producer.join().unwrap();
        raw::flush_worker(&w).unwrap();
        assert_eq!(item.runs.load(Ordering::Relaxed), 1);
        stop_worker(t, h);
    });
}

/// A work item that records when it ran: `at` gets the next tick of a
/// clock its items share (0: never ran).
#[repr(C)]
struct Stamped {
    work: RawWork,
    clock: Arc<AtomicUsize>,
    at: AtomicUsize,
}

unsafe extern "C" fn stamp_fn(w: *mut RawWork) {
    // SAFETY: only `Stamped`s use this function; `work` is their first field.
    let item = unsafe { &*(w as *const Stamped) };
    let tick = item.clock.fetch_add(1, Ordering::Relaxed) + 1;
    item.at.store(tick, Ordering::Relaxed);
}

fn stamped(clock: &Arc<AtomicUsize>) -> Arc<Stamped> {
    Arc::new(Stamped {
        work: RawWork::new(Some(stamp_fn)),
        clock: clock.clone(),
        at: AtomicUsize::new(0),
    })
}

/// The batch pop: A and B are queued back to back, so both can reach the
/// worker in one batch (one swap of the producers' stack, reversed onto
/// the list under one lock hold), and B is cancelled right after, while
/// the worker may be anywhere in that batch. A runs exactly once; B runs
/// exactly once or is cancelled, never both (so never after a cancel_sync
/// that took it off); and if B runs, it runs after A (FIFO through the
/// batch).
#[test]
fn loom_batch_pop_fifo_vs_cancel_mid_batch() {
    model("loom_batch_pop_fifo_vs_cancel_mid_batch", || {
        let w = Arc::new(RawWorker::new(0));
        let clock = Arc::new(AtomicUsize::new(0));
        let (a, b) = (stamped(&clock), stamped(&clock));
        let (t, h) = start_worker(&w);
        // SAFETY: the items and the worker outlive the model's threads.
        unsafe {
            assert!(raw::queue(&w, &a.work), "first queue of A succeeds");
            assert!(raw::queue(&w, &b.work), "first queue of B succeeds");
        }
        // SAFETY: as above.
        let cancelled = unsafe { raw::cancel_sync(&b.work) };
        let b_at_cancel = b.at.load(Ordering::Relaxed);
        raw::flush_worker(&w).unwrap();
        let (a_at, b_at) = (a.at.load(Ordering::Relaxed), b.at.load(Ordering::Relaxed));
        assert_ne!(a_at, 0, "A was lost");
        assert_eq!(b_at, b_at_cancel, "B ran after cancel_sync returned");
        let ticks = clock.load(Ordering::Relaxed);
        assert_eq!(ticks, 1 + (b_at != 0) as usize, "an item ran twice");
        if cancelled {
            assert_eq!(b_at, 0, "B ran and was also cancelled");
        } else {
            assert_ne!(b_at, 0, "B neither ran nor was cancelled");
            assert!(a_at < b_at, "B ran before A: the batch lost FIFO order");
        }
        stop_worker(t, h);
    });
}

/// The lock-free wake of an idle worker against the worker's exit: a
/// producer that read the task pointer finishes with the task before the
/// worker thread leaves, so the task is never touched after it is freed
/// (the model "frees" it right after the thread has been joined).
#[test]
fn loom_lock_free_wake_vs_worker_exit() {
    model("loom_lock_free_wake_vs_worker_exit", || {
        let w = Arc::new(RawWorker::new(0));
        let item = counted();
        let (t, h) = start_worker(&w);
        let producer = spawn_queue(&w, &item);
        stop_worker(t.clone(), h);
        t.inner().model_free();
        assert!(
            producer.join().unwrap(),
            "first queue of an idle item succeeds"
        );
    });
}

/// Delayed work: arm, re-arm to now, cancel. It runs at most once, and not
/// after a cancel that found it pending.
#[test]
fn loom_delayed_arm_mod_cancel() {
    model("loom_delayed_arm_mod_cancel", || {
        let w = Arc::new(RawWorker::new(0));
        let item = Arc::new(CountedDelayed {
            dwork: RawDelayedWork::new(Some(count_delayed_fn)),
            runs: AtomicUsize::new(0),
        });
        let (t, h) = start_worker(&w);
        let hour = std::time::Duration::from_secs(3600);
        // SAFETY: the item and worker outlive the model's threads.
        assert!(unsafe { raw::queue_delayed(&w, &item.dwork, hour) });
        let modder = {
            let (w, item) = (w.clone(), item.clone());
            // SAFETY: as above.
            thread::spawn(move || unsafe {
                raw::mod_delayed(&w, &item.dwork, std::time::Duration::ZERO)
            })
        };
        // SAFETY: as above.
        let cancelled = unsafe { raw::cancel_sync(&item.dwork.work) };
        let was_pending = modder.join().unwrap();
        // SAFETY: as above.
        unsafe { raw::flush_work(&item.dwork.work) }.unwrap();
        let runs = item.runs.load(Ordering::Relaxed);
        let claims = 1 + usize::from(!was_pending);
        assert_eq!(
            runs + usize::from(cancelled),
            claims,
            "lost or duplicated item"
        );
        assert_eq!(
            raw::cancel_timers(&w),
            0,
            "a timer outlived the re-arm to zero"
        );
        stop_worker(t, h);
    });
}

/// Wait queue: a non-exclusive and an exclusive waiter in `wait_event`
/// against `cond = true; wake_up()`. `wake_up` wakes every non-exclusive
/// waiter and one exclusive one, so both must return (a lost wake-up is a
/// deadlock), and `finish_wait` leaves the queue empty. The waiters'
/// entries live in their frames: a waker touching one after its waiter
/// returned would be a causality violation on the entry's cells.
#[test]
fn loom_wait_queue_prepare_wake_finish() {
    model("loom_wait_queue_prepare_wake_finish", || {
        let wq = Arc::new(crate::wait::WaitQueue::new());
        let ready = Arc::new(AtomicBool::new(false));
        let waiter = |exclusive: bool| {
            let (wq, ready) = (wq.clone(), ready.clone());
            thread::spawn(move || {
                let t = new_task(flags::WOKEN);
                task::set_current(&t);
                let cond = || ready.load(Ordering::Relaxed);
                if exclusive {
                    wq.wait_event_interruptible_exclusive(cond).unwrap();
                } else {
                    wq.wait_event(cond);
                }
                assert_eq!(t.state(), task::TaskState::Running);
                task::clear_current();
            })
        };
        let shared = waiter(false);
        let exclusive = waiter(true);
        ready.store(true, Ordering::Relaxed);
        wq.wake_up();
        shared.join().unwrap();
        exclusive.join().unwrap();
        assert!(!wq.has_sleeper(), "an entry was left on the queue");
    });
}

/// Stop callbacks: one registered before the stop and one registered
/// racing it each run exactly once; the early one has run when
/// `request_stop` returns, the late one when both calls have (the stopper
/// runs those registered before its stop, a registrant that saw the stop
/// only its own: the parent of that rule failed here).
#[test]
fn loom_stop_callbacks_run_once_against_a_racing_registration() {
    model(
        "loom_stop_callbacks_run_once_against_a_racing_registration",
        || {
            let t = new_task(flags::WOKEN);
            let runs = Arc::new(AtomicUsize::new(0));
            let r = runs.clone();
            let early = t.on_stop(move || {
                r.fetch_add(1, Ordering::Relaxed);
            });
            let late = {
                let (t, r) = (t.clone(), runs.clone());
                thread::spawn(move || {
                    t.on_stop(move || {
                        r.fetch_add(10, Ordering::Relaxed);
                    })
                })
            };
            request_stop(&t);
            // The stopper ran the early one (a late registrant runs only its own).
            assert_eq!(
                runs.load(Ordering::Relaxed) % 10,
                1,
                "request_stop returned before a callback registered before it ran"
            );
            let late = late.join().unwrap();
            assert_eq!(
                runs.load(Ordering::Relaxed),
                11,
                "a callback ran twice or not at all"
            );
            drop((early, late));
        },
    );
}

/// A stop callback's guard dropped on one thread while another stops the
/// task: after the drop has returned, the callback is not running and
/// never will (the drop takes it off the list or waits for its run).
#[test]
fn loom_stop_callback_guard_drop_vs_stop() {
    model("loom_stop_callback_guard_drop_vs_stop", || {
        let t = new_task(flags::WOKEN);
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let guard = t.on_stop(move || {
            assert!(
                !d.load(Ordering::SeqCst),
                "ran after its guard's drop returned"
            );
            loom::thread::yield_now();
            assert!(
                !d.load(Ordering::SeqCst),
                "ran on after its guard's drop returned"
            );
        });
        let dropper = {
            let dropped = dropped.clone();
            thread::spawn(move || {
                drop(guard);
                dropped.store(true, Ordering::SeqCst);
            })
        };
        request_stop(&t);
        dropper.join().unwrap();
    });
}

/// Interruption: a request is marked unseen before its flag is published,
/// so a kthread that sees the stop also clears the mark and nothing is
/// re-sent to it afterwards (the re-sends stop once it has seen it).
#[test]
fn loom_a_seen_stop_is_not_re_sent() {
    model("loom_a_seen_stop_is_not_re_sent", || {
        let t = new_task(flags::WOKEN | flags::HOOKED | flags::INTERRUPT_ON_STOP);
        let k = {
            let t = t.clone();
            thread::spawn(move || {
                task::set_current(&t);
                let saw = crate::kthread::should_stop();
                task::clear_current();
                saw
            })
        };
        request_stop(&t);
        if k.join().unwrap() {
            assert_eq!(
                t.hooks().unseen() & task::hooks::STOP,
                0,
                "the kthread saw the stop, but it would be re-sent"
            );
        }
    });
}

/// A waker that counts its wakes (a loom atomic, so the models see them).
#[cfg(feature = "async")]
struct CountingWaker(AtomicUsize);

#[cfg(feature = "async")]
impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `f` once with a counting waker, then drops it; returns whether it
/// was ready and the waker's count (read after the drop).
#[cfg(feature = "async")]
fn poll_once_then_drop<F: std::future::Future>(f: F) -> (bool, std::sync::Arc<CountingWaker>) {
    let count = std::sync::Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let ready = {
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    };
    (ready, count)
}

/// Async wait on a completion: a poll racing `complete`, then a drop. A
/// ready poll consumed the completion; a pending one consumed nothing, and
/// its waker is never woken after the drop returned.
#[cfg(feature = "async")]
#[test]
fn loom_completion_poll_complete_drop() {
    model("loom_completion_poll_complete_drop", || {
        let c = Arc::new(crate::Completion::new());
        let completer = {
            let c = c.clone();
            thread::spawn(move || c.complete())
        };
        let (ready, count) = poll_once_then_drop(c.wait_async());
        let after_drop = count.0.load(Ordering::SeqCst);
        completer.join().unwrap();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            after_drop,
            "woken after the future was dropped"
        );
        assert_eq!(
            c.is_done(),
            !ready,
            "a dropped future consumed the completion, or a ready one did not"
        );
    });
}

/// Async wait on a completion until it resolves, against `complete`: no
/// lost wake-up (loom reports a park that nothing ends as a deadlock).
#[cfg(feature = "async")]
#[test]
fn loom_completion_wait_async_vs_complete() {
    model("loom_completion_wait_async_vs_complete", || {
        let c = Arc::new(crate::Completion::new());
        let completer = {
            let c = c.clone();
            thread::spawn(move || c.complete())
        };
        loom::future::block_on(c.wait_async());
        assert!(!c.is_done(), "the wait consumed the completion");
        completer.join().unwrap();
    });
}

/// Async flush of a queued item: polled to the end it resolves after the
/// run (no lost wake-up); polled once and dropped it leaves the item to run
/// once, the heap sentinel to free itself, and wakes nothing after the drop.
#[cfg(feature = "async")]
#[test]
fn loom_flush_async_poll_complete_drop() {
    model("loom_flush_async_poll_complete_drop", || {
        let w = Arc::new(RawWorker::new(0));
        let item = counted();
        let (t, h) = start_worker(&w);
        // SAFETY: the item and worker outlive the model's threads.
        assert!(unsafe { raw::queue(&w, &item.work) });
        // SAFETY: as above.
        let (covers, mut wait) = unsafe { raw::flush_work_async(&item.work) }.unwrap();
        if covers {
            loom::future::block_on(std::future::poll_fn(|cx| wait.poll_done(cx)));
            assert_eq!(
                item.runs.load(Ordering::Relaxed),
                1,
                "resolved before the run"
            );
        } else {
            assert_eq!(item.runs.load(Ordering::Relaxed), 1, "idle before its run");
        }
        // A second flush, polled once and dropped while the worker may run its sentinel.
        // SAFETY: as above.
        assert!(unsafe { raw::queue(&w, &item.work) } || item.runs.load(Ordering::Relaxed) == 1);
        // SAFETY: as above.
        let (_, mut wait) = unsafe { raw::flush_work_async(&item.work) }.unwrap();
        let (_, count) = poll_once_then_drop(std::future::poll_fn(move |cx| wait.poll_done(cx)));
        let after_drop = count.0.load(Ordering::SeqCst);
        stop_worker(t, h);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            after_drop,
            "woken after the flush future was dropped"
        );
    });
}

// ---- kthreadd's spare cache ----------------------------------------------

use crate::kthreadd::cache::{Cache, Gate, Spare, Take};
use crate::sync::{lock, Mutex};

const STACK: usize = 1 << 16;

/// A spare as `spare_main` makes it: born, registered, then waiting in its
/// gate; `ran` counts the bodies it runs, `retired` whether it ended
/// without one.
fn spare_thread(
    cache: Arc<Mutex<Cache>>,
    ran: Arc<AtomicUsize>,
    retired: Arc<AtomicUsize>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let gate = Gate::new();
        let me = Spare {
            // SAFETY: the model never joins nor detaches this id.
            thread: unsafe { crate::sys::thread::RawThread::current() },
            tid: 0,
            stack_size: STACK,
            gate: gate.clone(),
            notes: Vec::new(),
            comm: None,
        };
        let (next, settled) = lock(&cache).register(me, Ok(()));
        settled.iter().for_each(|c| c.complete());
        let main = next.follow(&gate);
        match main {
            Some(main) => {
                main();
                ran.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                retired.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
}

/// A create as `kthreadd::create` takes a spare: from the cache, or by
/// waiting for the one kthreadd clones; then the body through the gate.
fn take_and_assign(cache: &Mutex<Cache>, body_ran: Arc<AtomicUsize>) {
    let taken = lock(cache).take(STACK);
    let spare = match taken {
        Take::Hit { spare, .. } => spare,
        Take::Wait(w) => w.wait().expect("no clone fails in the model"),
    };
    spare.gate.assign(Box::new(move || {
        body_ran.fetch_add(1, Ordering::SeqCst);
    }));
}

/// A create racing the birth of the spare kthreadd cloned: whichever comes
/// first, the create gets that spare (from the cache, or handed over as it
/// registers), its body runs exactly once, on the spare, and nobody waits
/// for ever (loom reports a lost hand-off as a deadlock).
#[test]
fn loom_spare_cache_create_vs_birth() {
    model("loom_spare_cache_create_vs_birth", || {
        let cache = Arc::new(Mutex::new(Cache::new(1, STACK)));
        // kthreadd's round: one spare to clone for the refill.
        let (plan, _) = lock(&cache).plan();
        assert_eq!(plan, vec![STACK]);
        let (ran, retired, body) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let spare = spare_thread(cache.clone(), ran.clone(), retired.clone());
        take_and_assign(&cache, body.clone());
        spare.join().unwrap();
        assert_eq!(body.load(Ordering::SeqCst), 1, "the body ran once");
        assert_eq!(ran.load(Ordering::SeqCst), 1, "on the spare");
        assert_eq!(retired.load(Ordering::SeqCst), 0);
        let stats = lock(&cache).stats();
        assert_eq!(stats.hits + stats.misses, 1);
        assert_eq!(stats.spares, 0, "the spare was not left in the cache");
    });
}

/// `set_cache(0)` racing a create that finds a spare: exactly one of them
/// gets it: the create (the spare runs its body) or the retirement (the
/// spare ends without one, and the create waits for the next spare
/// kthreadd clones, which it gets). Nothing runs twice, nothing is lost.
#[test]
fn loom_spare_cache_off_vs_create() {
    model("loom_spare_cache_off_vs_create", || {
        let cache = Arc::new(Mutex::new(Cache::new(1, STACK)));
        let (ran, retired, body) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        // One spare born and waiting before the race.
        let (plan, _) = lock(&cache).plan();
        assert_eq!(plan.len(), 1);
        let first = spare_thread(cache.clone(), ran.clone(), retired.clone());
        while lock(&cache).stats().spares == 0 {
            thread::yield_now();
        }
        let off = {
            let cache = cache.clone();
            thread::spawn(move || {
                let out = lock(&cache).set_target(0);
                for s in out {
                    s.gate.retire();
                }
            })
        };
        // The create wakes kthreadd after its take (as `create` does, for
        // a wait or a refill).
        let kick = Arc::new(crate::Completion::new());
        let creator = {
            let (cache, body, kick) = (cache.clone(), body.clone(), kick.clone());
            thread::spawn(move || {
                let taken = lock(&cache).take(STACK);
                kick.complete();
                let spare = match taken {
                    Take::Hit { spare, .. } => spare,
                    Take::Wait(w) => w.wait().expect("no clone fails in the model"),
                };
                spare.gate.assign(Box::new(move || {
                    body.fetch_add(1, Ordering::SeqCst);
                }));
            })
        };
        off.join().unwrap();
        // kthreadd's next round: a spare for a waiting create, if any
        // (never a refill: the cache is off).
        kick.wait();
        let (plan, _) = lock(&cache).plan();
        let second = match plan.len() {
            0 => None,
            1 => Some(spare_thread(cache.clone(), ran.clone(), retired.clone())),
            n => panic!("{n} spares planned for at most one waiter"),
        };
        creator.join().unwrap();
        first.join().unwrap();
        if let Some(s) = second {
            s.join().unwrap();
        }
        assert_eq!(body.load(Ordering::SeqCst), 1, "the body ran once");
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(
            retired.load(Ordering::SeqCst),
            usize::from(plan.len() == 1),
            "the first spare retired exactly when the create had to wait"
        );
        assert_eq!(lock(&cache).stats().spares, 0);
    });
}

/// A create handing its body to a spare without waking it (the spare is
/// moved, asleep, onto the task's state word), then the task's first wake
/// (`wake`) or a stop: the body's first sleep ends exactly once, the
/// function runs iff woken, and no wake is lost whether the spare was
/// still registering, asleep in its gate, or already past it.
fn hand_over_then(wake: bool) {
    let cache = Arc::new(Mutex::new(Cache::new(1, STACK)));
    let (plan, _) = lock(&cache).plan();
    assert_eq!(plan.len(), 1);
    let (ran, retired, f_ran) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let spare = spare_thread(cache.clone(), ran.clone(), retired.clone());
    let t = new_task(0);
    let taken = lock(&cache).take(STACK);
    let s = match taken {
        Take::Hit { spare, .. } => spare,
        Take::Wait(w) => w.wait().expect("no clone fails in the model"),
    };
    let (t2, f) = (t.clone(), f_ran.clone());
    s.gate.hand_over(
        Box::new(move || {
            if first_run(&t2) {
                f.fetch_add(1, Ordering::SeqCst);
            }
        }),
        &t,
    );
    if wake {
        t.wake_up();
    } else {
        request_stop(&t);
    }
    spare.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the body ran once");
    assert_eq!(f_ran.load(Ordering::SeqCst), usize::from(wake));
    assert!(t.has(flags::EXITED));
}

#[test]
fn loom_spare_hand_over_then_first_wake() {
    model("loom_spare_hand_over_then_first_wake", || {
        hand_over_then(true)
    });
}

#[test]
fn loom_spare_hand_over_then_stop() {
    model("loom_spare_hand_over_then_stop", || hand_over_then(false));
}
