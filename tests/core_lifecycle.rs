//! The life of one kthread: create stopped, wake, stop, data, bind, park,
//! introspection (SPEC §1–4, §8).

mod common;

use common::{
    affinity_of, allowed_cpus, gettid, os_state, os_thread_name, row, thread_exists,
    wait_briefly_until, watchdog, WATCHDOG,
};
use kthread::{
    parkme, schedule, schedule_timeout, set_current_state, should_park, should_stop, Builder,
    Completion, Error, Kthread, StopError, TaskState,
};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a negative check gives something the chance to (wrongly) happen.
const SHORT: Duration = Duration::from_millis(50);
/// Upper bound for "a few instructions from now" waits.
const BRIEF: Duration = Duration::from_secs(5);

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Counts how often it is dropped.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The kernel's canonical loop, with park support: sleeps `Interruptible`
/// until stopped; each round completes `tick`; `arrivals` counts how often it
/// saw a park request (incremented right before it calls `parkme`).
fn parkable_loop(
    tick: Arc<Completion>,
    arrivals: Arc<AtomicUsize>,
) -> impl FnOnce() -> u64 + Send + 'static {
    move || {
        let mut rounds = 0u64;
        while !should_stop() {
            if should_park() {
                arrivals.fetch_add(1, Ordering::SeqCst);
                parkme();
                continue;
            }
            set_current_state(TaskState::Interruptible);
            if !should_stop() && !should_park() {
                schedule();
            }
            set_current_state(TaskState::Running);
            rounds += 1;
            tick.complete();
        }
        rounds
    }
}

/// Runs a kthread that returns 1 by itself, completing the returned
/// completion just before it returns.
fn run_returning_one(name: &str) -> Result<(Kthread<u32>, Arc<Completion>), Error> {
    let returning = Arc::new(Completion::new());
    let r = returning.clone();
    let k = kthread::run(name, move || {
        r.complete();
        1
    })?;
    Ok((k, returning))
}

/// Waits until the kthread sleeps in the kernel (`S` in procfs) with `state`
/// published, so that what the test does next lands on a real sleeper.
fn wait_asleep<T>(k: &Kthread<T>, state: TaskState) {
    let tid = k.task().tid();
    wait_briefly_until("kthread asleep", BRIEF, || {
        k.task().state() == state && os_state(tid) == Some('S')
    });
}

#[test]
fn no_instruction_runs_before_first_wake() -> Res {
    let _w = watchdog("no_instruction_runs_before_first_wake", WATCHDOG);
    let ran = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Completion::new());
    let k = {
        let (ran, started) = (ran.clone(), started.clone());
        kthread::create("k-nowake", move || {
            ran.store(true, Ordering::SeqCst);
            started.complete();
            should_stop()
        })?
    };
    let tid = k.task().tid();
    assert!(
        tid > 0 && thread_exists(tid),
        "create returns an existing thread"
    );
    assert_eq!(k.task().state(), TaskState::Uninterruptible);
    // Give the function every chance to run (wrongly) before the first wake.
    assert!(
        !started.wait_timeout(SHORT),
        "function ran before the first wake"
    );
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(k.task().state(), TaskState::Uninterruptible);
    assert_eq!(
        os_state(tid),
        Some('S'),
        "a created kthread sleeps in the kernel"
    );
    assert!(!k.is_finished());

    assert!(k.wake_up(), "the first wake finds it sleeping");
    started.wait();
    assert!(ran.load(Ordering::SeqCst));
    k.stop().expect("a woken function runs and returns");
    Ok(())
}

#[test]
fn run_runs_the_function() -> Res {
    let _w = watchdog("run_runs_the_function", WATCHDOG);
    let k = kthread::run("k-run", || {
        let me = kthread::current().expect("inside a kthread");
        (
            gettid(),
            me.tid(),
            me.name().to_owned(),
            os_thread_name(gettid()),
        )
    })?;
    let tid = k.task().tid();
    let (os_tid, task_tid, name, comm) = k.stop()?;
    assert_eq!(os_tid, tid, "the function runs on the kthread's own thread");
    assert_eq!(task_tid, tid);
    assert_ne!(os_tid, gettid(), "not on the creator's thread");
    assert_eq!(name, "k-run");
    assert_eq!(comm, "k-run");
    assert!(
        kthread::current().is_none(),
        "the test thread is no kthread"
    );
    Ok(())
}

#[test]
fn stop_before_wake_returns_not_started_and_drops_closure_once() -> Res {
    let _w = watchdog(
        "stop_before_wake_returns_not_started_and_drops_closure_once",
        WATCHDOG,
    );
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicBool::new(false));
    let token = DropCount(drops.clone());
    let k = {
        let ran = ran.clone();
        kthread::create("k-never-woken", move || {
            let _keep = &token;
            ran.store(true, Ordering::SeqCst);
            5
        })?
    };
    let tid = k.task().tid();
    let task = k.task().clone();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the closure lives in the thread"
    );
    match k.stop() {
        Err(e @ StopError::NotStarted) => assert_eq!(e.errno(), libc::EINTR),
        other => panic!("expected NotStarted, got {other:?}"),
    }
    assert!(
        !ran.load(Ordering::SeqCst),
        "a never-woken function must not run"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "closure dropped exactly once"
    );
    assert!(task.has_exited());
    assert!(row(tid).is_none(), "a stopped kthread leaves the registry");
    Ok(())
}

#[test]
fn stop_returns_value() -> Res {
    let _w = watchdog("stop_returns_value", WATCHDOG);
    let ready = Arc::new(Completion::new());
    let k = {
        let ready = ready.clone();
        kthread::run("k-value", move || {
            let mut rounds = 0u32;
            ready.complete();
            while !should_stop() {
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule();
                }
                set_current_state(TaskState::Running);
                rounds += 1;
            }
            // Computed on the kthread, handed back by stop.
            format!(
                "sum {} after {} round(s)",
                (1..=100u32).sum::<u32>(),
                rounds
            )
        })?
    };
    ready.wait();
    let value = k.stop()?;
    assert!(
        value == "sum 5050 after 0 round(s)" || value == "sum 5050 after 1 round(s)",
        "{value}"
    );
    Ok(())
}

#[test]
fn panicking_function_gives_panicked_with_message() -> Res {
    let _w = watchdog("panicking_function_gives_panicked_with_message", WATCHDOG);
    // A formatted message: the payload is a String.
    let k = kthread::run("k-panic-string", || -> u32 {
        // A run-time argument, so the message cannot be folded into a &str.
        let disk = std::hint::black_box(3);
        panic!("disk {disk} on fire")
    })?;
    let e = k.stop().expect_err("a panic is not a value");
    assert_eq!(e.panic_message(), Some("disk 3 on fire"));
    assert_eq!(e.errno(), libc::EFAULT);
    match e {
        StopError::Panicked(payload) => {
            assert_eq!(*payload.downcast::<String>().unwrap(), "disk 3 on fire")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }

    // A literal message: the payload is a &'static str.
    let k = kthread::run("k-panic-str", || -> u32 { panic!("static message") })?;
    match k.stop() {
        Err(e @ StopError::Panicked(_)) => {
            assert_eq!(e.panic_message(), Some("static message"));
            let StopError::Panicked(payload) = e else {
                unreachable!()
            };
            assert_eq!(
                *payload.downcast::<&'static str>().unwrap(),
                "static message"
            );
        }
        other => panic!("expected Panicked, got {other:?}"),
    }

    // Any payload comes back intact.
    let k = kthread::run("k-panic-any", || -> u32 { std::panic::panic_any(42u64) })?;
    match k.stop() {
        Err(e @ StopError::Panicked(_)) => {
            assert_eq!(e.panic_message(), None);
            let StopError::Panicked(payload) = e else {
                unreachable!()
            };
            assert_eq!(*payload.downcast::<u64>().unwrap(), 42);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    Ok(())
}

#[test]
fn self_returned_kthread_can_still_be_stopped() -> Res {
    let _w = watchdog("self_returned_kthread_can_still_be_stopped", WATCHDOG);
    let returning = Arc::new(Completion::new());
    let k = {
        let returning = returning.clone();
        kthread::run("k-returns", move || {
            returning.complete();
            99u32
        })?
    };
    let tid = k.task().tid();
    returning.wait();
    // The thread is a few instructions from its end.
    wait_briefly_until("kthread finished", BRIEF, || k.is_finished());
    assert_eq!(k.task().state(), TaskState::Dead);
    assert!(row(tid).is_none(), "a finished kthread leaves the registry");
    assert_eq!(k.stop()?, 99, "the result was kept for stop");
    Ok(())
}

/// A kthread that sleeps once in `state`; returns whether it saw should_stop
/// right after `schedule` returned.
fn stop_wakes_sleeper(name: &str, state: TaskState) -> Res {
    let ready = Arc::new(Completion::new());
    let k = {
        let ready = ready.clone();
        kthread::run(name, move || {
            ready.complete();
            set_current_state(state);
            let slept = !should_stop();
            if slept {
                schedule();
            }
            set_current_state(TaskState::Running);
            (slept, should_stop())
        })?
    };
    ready.wait();
    wait_asleep(&k, state);
    let (slept, saw_stop) = k.stop()?;
    assert!(slept, "the stop landed while it slept");
    assert!(
        saw_stop,
        "only the stop can have woken it, so should_stop is true"
    );
    Ok(())
}

#[test]
fn stop_wakes_interruptible_sleeper() -> Res {
    let _w = watchdog("stop_wakes_interruptible_sleeper", WATCHDOG);
    stop_wakes_sleeper("k-sleep-int", TaskState::Interruptible)
}

#[test]
fn stop_wakes_uninterruptible_sleeper() -> Res {
    let _w = watchdog("stop_wakes_uninterruptible_sleeper", WATCHDOG);
    stop_wakes_sleeper("k-sleep-unint", TaskState::Uninterruptible)
}

#[test]
fn stop_wakes_schedule_timeout_one_hour_promptly() -> Res {
    let _w = watchdog("stop_wakes_schedule_timeout_one_hour_promptly", WATCHDOG);
    const HOUR: Duration = Duration::from_secs(3600);
    let ready = Arc::new(Completion::new());
    let k = {
        let ready = ready.clone();
        kthread::run("k-timeout-1h", move || {
            ready.complete();
            set_current_state(TaskState::Interruptible);
            let left = if should_stop() {
                None
            } else {
                Some(schedule_timeout(HOUR))
            };
            set_current_state(TaskState::Running);
            (left, should_stop())
        })?
    };
    ready.wait();
    wait_asleep(&k, TaskState::Interruptible);
    let (left, saw_stop) = k.stop()?;
    let left = left.expect("the stop landed while it slept");
    assert!(saw_stop);
    assert!(
        left > HOUR - Duration::from_secs(60) && left <= HOUR,
        "woken early by the stop, so most of the hour is left: {left:?}"
    );
    Ok(())
}

#[test]
fn no_lost_wakeup_stress() -> Res {
    let _w = watchdog("no_lost_wakeup_stress", Duration::from_secs(120));
    const N: u64 = 20_000;
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let k = {
        let (produced, consumed) = (produced.clone(), consumed.clone());
        kthread::run("k-lost-wake", move || {
            let mut mine = 0u64;
            while mine < N {
                set_current_state(TaskState::Interruptible);
                // Relaxed on purpose: set_current_state must order this load
                // after the state is published (the library's guarantee).
                if produced.load(Ordering::Relaxed) == mine {
                    schedule();
                }
                set_current_state(TaskState::Running);
                if produced.load(Ordering::Relaxed) > mine {
                    mine += 1;
                    consumed.store(mine, Ordering::Release);
                }
            }
            mine
        })?
    };
    let mut woke = 0u64;
    for i in 1..=N {
        if i > N / 2 {
            // Second half: produce only once the consumer has taken the
            // previous token, so nearly every token meets a consumer that
            // is somewhere between set_current_state and its futex sleep.
            // A lost wake-up leaves this loop spinning: the watchdog fires.
            while consumed.load(Ordering::Acquire) < i - 1 {
                std::thread::yield_now();
            }
        }
        produced.fetch_add(1, Ordering::Relaxed);
        if k.wake_up() {
            woke += 1;
        }
        if i % 7 == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(k.stop()?, N);
    assert!(
        woke > 0,
        "the consumer never slept: the test exercised nothing"
    );
    Ok(())
}

#[test]
fn wake_then_stop_at_once_always_runs_the_function() -> Res {
    let _w = watchdog("wake_then_stop_at_once_always_runs_the_function", WATCHDOG);
    for round in 0..300 {
        let k = kthread::create("k-wake-stop", should_stop)?;
        k.wake_up();
        // Once wake_up has returned, the function runs (SPEC §3), even though
        // the stop usually lands before the thread gets a CPU.
        if let Err(e) = k.stop() {
            panic!("round {round}: woken kthread did not run: {e:?}");
        }
    }
    Ok(())
}

#[test]
fn racing_wake_and_stop_agree_on_whether_the_function_ran() -> Res {
    let _w = watchdog(
        "racing_wake_and_stop_agree_on_whether_the_function_ran",
        WATCHDOG,
    );
    let (mut ran_count, mut not_started) = (0, 0);
    for round in 0..300 {
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicBool::new(false));
        let token = DropCount(drops.clone());
        let k = {
            let ran = ran.clone();
            kthread::create("k-race", move || {
                let _keep = &token;
                ran.store(true, Ordering::SeqCst);
            })?
        };
        let task = k.task().clone();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let waker = {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                task.wake_up()
            })
        };
        barrier.wait();
        let r = k.stop();
        waker.join().unwrap();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "round {round}: dropped once"
        );
        match r {
            Ok(()) => {
                assert!(
                    ran.load(Ordering::SeqCst),
                    "round {round}: Ok but never ran"
                );
                ran_count += 1;
            }
            Err(StopError::NotStarted) => {
                assert!(
                    !ran.load(Ordering::SeqCst),
                    "round {round}: ran yet NotStarted"
                );
                not_started += 1;
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
    }
    assert_eq!(ran_count + not_started, 300);
    Ok(())
}

#[test]
fn stop_from_inside_is_an_error_not_a_deadlock() -> Res {
    let _w = watchdog("stop_from_inside_is_an_error_not_a_deadlock", WATCHDOG);
    type Outcome = (bool, i32, bool);
    let slot: Arc<Mutex<Option<Kthread<u32>>>> = Arc::new(Mutex::new(None));
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(Completion::new());
    let k = {
        let (slot, outcome, done) = (slot.clone(), outcome.clone(), done.clone());
        kthread::create("k-self-stop", move || {
            let me = slot.lock().unwrap().take().expect("handle handed over");
            let r = me.stop();
            let current = matches!(r, Err(StopError::Current));
            let errno = r.err().map_or(0, |e| e.errno());
            *outcome.lock().unwrap() = Some((current, errno, should_stop()));
            done.complete();
            7
        })?
    };
    let task = k.task().clone();
    *slot.lock().unwrap() = Some(k);
    assert!(task.wake_up());
    done.wait();
    let (current, errno, stop_requested) = outcome.lock().unwrap().take().unwrap();
    assert!(current, "stop from inside gives StopError::Current");
    assert_eq!(errno, libc::EDEADLK);
    assert!(stop_requested, "the stop request stands");
    // The thread was left to finish on its own.
    wait_briefly_until("self-stopped kthread ends", BRIEF, || task.has_exited());
    Ok(())
}

#[test]
fn drop_stops_and_joins() -> Res {
    let _w = watchdog("drop_stops_and_joins", WATCHDOG);
    let saw_stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Completion::new());
    let k = {
        let (saw_stop, ready) = (saw_stop.clone(), ready.clone());
        kthread::run("k-dropped", move || {
            ready.complete();
            while !should_stop() {
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule();
                }
                set_current_state(TaskState::Running);
            }
            saw_stop.store(true, Ordering::SeqCst);
        })?
    };
    ready.wait();
    let tid = k.task().tid();
    let task = k.task().clone();
    assert!(thread_exists(tid));
    drop(k);
    // Drop returned only after the function saw the stop and returned.
    assert!(saw_stop.load(Ordering::SeqCst), "drop stopped it");
    assert!(task.has_exited());
    assert!(row(tid).is_none());
    // pthread_join returns once the kernel cleared the thread's tid word,
    // which it does a few instructions before it unhashes the thread.
    wait_briefly_until("joined thread gone from /proc", BRIEF, || {
        !thread_exists(tid)
    });
    Ok(())
}

#[test]
fn detach_lets_it_run_on() -> Res {
    let _w = watchdog("detach_lets_it_run_on", WATCHDOG);
    let go = Arc::new(Completion::new());
    let finished = Arc::new(Completion::new());
    let saw_stop = Arc::new(AtomicBool::new(true));
    let k = {
        let (go, finished, saw_stop) = (go.clone(), finished.clone(), saw_stop.clone());
        kthread::run("k-detached", move || {
            go.wait();
            saw_stop.store(should_stop(), Ordering::SeqCst);
            finished.complete();
        })?
    };
    let task = k.detach();
    assert_eq!(task.name(), "k-detached");
    assert!(!task.has_exited(), "detach does not stop it");
    assert!(row(task.tid()).is_some(), "still listed while it runs");
    go.complete();
    finished.wait();
    assert!(
        !saw_stop.load(Ordering::SeqCst),
        "a detached kthread is not asked to stop"
    );
    wait_briefly_until("detached kthread ends", BRIEF, || task.has_exited());
    Ok(())
}

#[test]
fn data_is_readable_from_handle_and_inside() -> Res {
    let _w = watchdog("data_is_readable_from_handle_and_inside", WATCHDOG);
    let k = Builder::new("k-data")
        .data(String::from("sda"))
        .create(|| {
            let me = kthread::current().expect("inside a kthread");
            (me.data::<String>().cloned(), me.data::<u32>().is_none())
        })?;
    assert_eq!(k.task().data::<String>().map(String::as_str), Some("sda"));
    assert!(k.task().data::<u32>().is_none(), "wrong type gives None");
    k.wake_up();
    assert_eq!(k.stop()?, (Some(String::from("sda")), true));

    let k = kthread::run("k-nodata", || {
        kthread::current().unwrap().data::<String>().is_none()
    })?;
    assert!(k.task().data::<String>().is_none());
    assert!(k.stop()?);
    Ok(())
}

#[test]
fn long_name_is_cut_for_os_but_kept_whole() -> Res {
    let _w = watchdog("long_name_is_cut_for_os_but_kept_whole", WATCHDOG);
    let cases = [
        ("a-rather-long-kthread-name", "a-rather-long-k"),
        ("exactly-15-byte", "exactly-15-byte"),
        // 18 bytes of two-byte characters: byte 15 is inside the eighth one.
        ("ééééééééé", "ééééééé"),
        // 14 ASCII bytes then a two-byte character straddling byte 15.
        ("abcdefghijklmné", "abcdefghijklmn"),
        ("short", "short"),
    ];
    for (name, os_name) in cases {
        let k = kthread::create(name, || ())?;
        let tid = k.task().tid();
        assert_eq!(os_thread_name(tid), os_name, "OS name of {name:?}");
        assert!(os_name.len() <= 15);
        assert_eq!(k.task().name(), name, "the task keeps the full name");
        assert_eq!(row(tid).expect("listed").name, name);
        assert!(matches!(k.stop(), Err(StopError::NotStarted)));
    }
    Ok(())
}

#[test]
fn bad_input_errors() -> Res {
    let _w = watchdog("bad_input_errors", WATCHDOG);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicBool::new(false));
    // Each failing create must drop the closure exactly once and run nothing.
    let mut expected_drops = 0;
    let mut try_create = |b: Builder| -> Error {
        let token = DropCount(drops.clone());
        let ran = ran.clone();
        let e = b
            .create(move || {
                let _keep = &token;
                ran.store(true, Ordering::SeqCst);
            })
            .expect_err("bad input must fail");
        expected_drops += 1;
        assert_eq!(
            drops.load(Ordering::SeqCst),
            expected_drops,
            "{e}: dropped once"
        );
        assert_eq!(e.errno(), libc::EINVAL, "{e}");
        e
    };

    let e = try_create(Builder::new("bad\0name"));
    assert!(matches!(e, Error::InvalidName), "{e:?}");

    let e = try_create(Builder::new("k-bad-cpu").cpu(100_000));
    assert!(matches!(e, Error::InvalidCpu(100_000)), "{e:?}");

    let allowed = allowed_cpus();
    let not_allowed = (0..1024).find(|c| !allowed.contains(c)).unwrap();
    let e = try_create(Builder::new("k-cpu-not-allowed").cpu(not_allowed));
    assert!(
        matches!(e, Error::CpuNotAllowed(c) if c == not_allowed),
        "{e:?}"
    );

    let e = try_create(Builder::new("k-bad-node").node(999));
    assert!(matches!(e, Error::InvalidNode(999)), "{e:?}");

    let e = try_create(Builder::new("k-stack-0").stack_size(0));
    assert!(matches!(e, Error::InvalidStackSize(0)), "{e:?}");

    let absurd = kthread::MAX_STACK_SIZE + 1;
    let e = try_create(Builder::new("k-stack-huge").stack_size(absurd));
    assert!(
        matches!(e, Error::InvalidStackSize(s) if s == absurd),
        "{e:?}"
    );

    assert!(
        !ran.load(Ordering::SeqCst),
        "no failed kthread ran anything"
    );
    let names = [
        "k-bad-cpu",
        "k-cpu-not-allowed",
        "k-bad-node",
        "k-stack-0",
        "k-stack-huge",
    ];
    assert!(
        kthread::list()
            .iter()
            .all(|r| !names.contains(&r.name.as_str())),
        "a failed creation leaves no registry entry:\n{}",
        kthread::ps()
    );

    // The same checks on bind.
    let k = kthread::create("k-bad-bind", || ())?;
    let e = k.bind(not_allowed).unwrap_err();
    assert!(
        matches!(e, Error::CpuNotAllowed(c) if c == not_allowed),
        "{e:?}"
    );
    assert_eq!(e.errno(), libc::EINVAL);
    let e = k.bind(100_000).unwrap_err();
    assert!(matches!(e, Error::InvalidCpu(100_000)), "{e:?}");
    assert!(!k.task().is_bound(), "a failed bind leaves it unbound");
    assert_eq!(affinity_of(k.task().tid()), allowed);
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
    Ok(())
}

#[test]
fn bind_before_wake_pins_thread() -> Res {
    let _w = watchdog("bind_before_wake_pins_thread", WATCHDOG);
    let allowed = allowed_cpus();
    // The last allowed CPU: on a multi-CPU machine not the default choice.
    let cpu = *allowed.last().unwrap();
    let ran = Arc::new(Completion::new());
    let go = Arc::new(Completion::new());
    let k = {
        let (ran, go) = (ran.clone(), go.clone());
        kthread::create("k-bound", move || {
            // SAFETY: sched_getcpu takes no arguments and returns a number.
            let now = unsafe { libc::sched_getcpu() };
            let report = (affinity_of(0), now, kthread::current().unwrap().is_bound());
            ran.complete();
            go.wait();
            report
        })?
    };
    assert!(!k.task().is_bound());
    k.bind(cpu)?;
    assert!(k.task().is_bound());
    let r = row(k.task().tid()).unwrap();
    assert!(r.flags.bound);
    assert_eq!(r.allowed_cpus, vec![cpu]);
    k.wake_up();
    ran.wait();
    // The registry's "last CPU" (from procfs) agrees while it is alive.
    assert_eq!(row(k.task().tid()).unwrap().last_cpu, cpu);
    go.complete();
    let (mask, now, bound) = k.stop()?;
    assert_eq!(mask, vec![cpu], "affinity inside the thread");
    assert_eq!(now, cpu as i32, "running on the bound CPU");
    assert!(bound);

    // Builder::cpu binds before the first instruction too (kthread_create_on_cpu).
    let k = Builder::new("k-on-cpu").cpu(cpu).run(|| {
        // SAFETY: sched_getcpu takes no arguments and returns a number.
        let now = unsafe { libc::sched_getcpu() };
        (affinity_of(0), now)
    })?;
    assert!(k.task().is_bound());
    assert_eq!(k.stop()?, (vec![cpu], cpu as i32));
    Ok(())
}

#[test]
fn bind_after_wake_is_an_error() -> Res {
    let _w = watchdog("bind_after_wake_is_an_error", WATCHDOG);
    let allowed = allowed_cpus();
    let go = Arc::new(Completion::new());
    let k = {
        let go = go.clone();
        kthread::run("k-late-bind", move || {
            go.wait();
            affinity_of(0)
        })?
    };
    let e = k.bind(allowed[0]).unwrap_err();
    assert!(matches!(e, Error::AlreadyStarted), "{e:?}");
    assert_eq!(e.errno(), libc::EBUSY);
    assert!(matches!(k.bind_mask(&allowed), Err(Error::AlreadyStarted)));
    assert!(!k.task().is_bound());
    go.complete();
    assert_eq!(k.stop()?, allowed, "a refused bind changes nothing");

    // A kthread that has returned cannot be bound either.
    let (k, returning) = run_returning_one("k-bind-dead")?;
    returning.wait();
    wait_briefly_until("finished", BRIEF, || k.is_finished());
    assert!(matches!(k.bind(allowed[0]), Err(Error::AlreadyStarted)));
    assert_eq!(k.stop()?, 1);
    Ok(())
}

#[test]
fn list_shows_kthreadd_and_live_kthreads_with_states() -> Res {
    let _w = watchdog(
        "list_shows_kthreadd_and_live_kthreads_with_states",
        WATCHDOG,
    );
    let allowed = allowed_cpus();
    let created = kthread::create("k-list-created", || ())?;
    let sleeper = kthread::run("k-list-sleeper", || {
        while !should_stop() {
            set_current_state(TaskState::Interruptible);
            if !should_stop() {
                schedule();
            }
            set_current_state(TaskState::Running);
        }
    })?;
    let tick = Arc::new(Completion::new());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let parked = kthread::run("k-list-parked", parkable_loop(tick, arrivals))?;
    parked.park()?;
    wait_briefly_until("sleeper asleep", BRIEF, || {
        sleeper.task().state() == TaskState::Interruptible
    });

    let rows = kthread::list();
    let kthreadd: Vec<_> = rows.iter().filter(|r| r.flags.kthreadd).collect();
    assert_eq!(kthreadd.len(), 1, "exactly one kthreadd");
    assert_eq!(kthreadd[0].name, "kthreadd");
    assert!(thread_exists(kthreadd[0].tid));
    assert_eq!(os_thread_name(kthreadd[0].tid), "kthreadd");
    assert!(
        rows.windows(2).all(|w| w[0].tid < w[1].tid),
        "sorted by tid"
    );
    let find = |k: &kthread::Task| -> kthread::TaskInfo {
        rows.iter()
            .find(|r| r.tid == k.tid())
            .cloned()
            .unwrap_or_else(|| panic!("{} not listed", k.name()))
    };
    let r = find(created.task());
    assert_eq!(
        (r.name.as_str(), r.state),
        ("k-list-created", TaskState::Uninterruptible)
    );
    assert_eq!(r.allowed_cpus, allowed, "full affinity");
    assert!(!r.flags.bound && !r.flags.kthreadd);
    let r = find(sleeper.task());
    assert_eq!(
        (r.name.as_str(), r.state),
        ("k-list-sleeper", TaskState::Interruptible)
    );
    let r = find(parked.task());
    assert_eq!(
        (r.name.as_str(), r.state),
        ("k-list-parked", TaskState::Parked)
    );
    assert!(r.flags.should_park);

    let tids = [
        created.task().tid(),
        sleeper.task().tid(),
        parked.task().tid(),
    ];
    assert!(matches!(created.stop(), Err(StopError::NotStarted)));
    sleeper.stop()?;
    parked.stop()?;
    let rows = kthread::list();
    for tid in tids {
        assert!(rows.iter().all(|r| r.tid != tid), "tid {tid} still listed");
    }
    assert!(rows.iter().any(|r| r.flags.kthreadd), "kthreadd stays");
    Ok(())
}

/// `list()` reads each thread's CPU clock (not `stat`'s 10 ms ticks) and
/// its context switches: a kthread that ran and slept shows both.
#[test]
fn list_shows_exact_cpu_time_and_context_switches() -> Res {
    let _w = watchdog("list_cpu_time", WATCHDOG);
    let slept = Arc::new(kthread::Completion::new());
    let s = slept.clone();
    let k = kthread::run("k-cpu-time", move || {
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        kthread::task::sleep_for(Duration::from_millis(1), TaskState::Uninterruptible);
        s.complete();
        common::sleep_until_stopped();
        x
    })?;
    slept.wait();
    let row = common::row(k.task().tid()).expect("listed");
    k.stop()?;
    assert!(row.cpu_time > Duration::ZERO, "{:?}", row.cpu_time);
    assert!(
        row.cpu_time.subsec_nanos() % 1_000_000 != 0 || row.cpu_time.as_millis() % 10 != 0,
        "in clock ticks, not nanoseconds: {:?}",
        row.cpu_time
    );
    assert!(row.voluntary_switches >= 1, "it slept: {row:?}");
    Ok(())
}

#[test]
fn ps_table_prints() -> Res {
    let _w = watchdog("ps_table_prints", WATCHDOG);
    let k = kthread::create("k-ps-shown", || ())?;
    let table = kthread::ps().to_string();
    let header = table.lines().next().unwrap();
    for col in ["TID", "NAME", "S", "FLAGS", "CPUS", "TIME", "CSW"] {
        assert!(header.contains(col), "header lacks {col}: {header}");
    }
    let line = table
        .lines()
        .find(|l| l.contains("k-ps-shown"))
        .unwrap_or_else(|| panic!("k-ps-shown missing:\n{table}"));
    assert!(line.contains(&k.task().tid().to_string()), "{line}");
    assert!(
        line.split_whitespace().any(|w| w == "D"),
        "a created kthread shows as D: {line}"
    );
    assert!(table.lines().any(|l| l.contains("kthreadd")), "{table}");
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
    assert!(!kthread::ps().to_string().contains("k-ps-shown"));
    Ok(())
}

#[test]
fn park_returns_only_after_thread_is_in_parkme() -> Res {
    let _w = watchdog("park_returns_only_after_thread_is_in_parkme", WATCHDOG);
    let tick = Arc::new(Completion::new());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let k = kthread::run("k-park-ack", parkable_loop(tick, arrivals.clone()))?;
    // Let the function start first: a park that lands before it does is
    // acknowledged by the kthread's own prologue, before the function
    // (as in the kernel's kthread()), and never reaches this parkme.
    wait_asleep(&k, TaskState::Interruptible);
    k.park()?;
    assert_eq!(
        arrivals.load(Ordering::SeqCst),
        1,
        "it reached parkme first"
    );
    assert_eq!(k.task().state(), TaskState::Parked);
    k.unpark();
    // Repeatedly: every acknowledged park finds it in parkme, Parked.
    for round in 0..500 {
        k.park()?;
        assert_eq!(k.task().state(), TaskState::Parked, "round {round}");
        assert!(arrivals.load(Ordering::SeqCst) >= 1);
        k.unpark();
        if round % 2 == 0 {
            k.wake_up();
        }
    }
    k.stop()?;
    Ok(())
}

#[test]
fn unpark_releases() -> Res {
    let _w = watchdog("unpark_releases", WATCHDOG);
    let tick = Arc::new(Completion::new());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let k = kthread::run("k-unpark", parkable_loop(tick.clone(), arrivals))?;
    k.park()?;
    // While parked, a plain wake does not release it.
    assert!(!k.wake_up(), "a wake does not end Parked");
    tick.reinit();
    assert!(!tick.wait_timeout(SHORT), "it ran a round while parked");
    assert_eq!(k.task().state(), TaskState::Parked);

    k.unpark();
    wait_briefly_until("left parkme", BRIEF, || {
        k.task().state() != TaskState::Parked
    });
    assert!(!row(k.task().tid()).unwrap().flags.should_park);
    // It runs again: a wake makes it do one more round.
    wait_asleep(&k, TaskState::Interruptible);
    assert!(k.wake_up());
    tick.wait();
    assert!(k.stop()? >= 1);
    Ok(())
}

#[test]
fn parked_thread_uses_no_cpu() -> Res {
    let _w = watchdog("parked_thread_uses_no_cpu", WATCHDOG);
    // Busy when not parked: any polling in parkme would show as CPU time.
    let k = kthread::run("k-park-cpu", || {
        let mut spins = 0u64;
        while !should_stop() {
            if should_park() {
                parkme();
            }
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
        }
        spins
    })?;
    k.park()?;
    let tid = k.task().tid();
    let before = row(tid).unwrap();
    assert_eq!(before.state, TaskState::Parked);
    // A bounded negative check: nothing to synchronise with.
    assert!(!Completion::new().wait_timeout(Duration::from_millis(200)));
    let after = row(tid).unwrap();
    assert_eq!(after.state, TaskState::Parked);
    assert_eq!(
        os_state(tid),
        Some('S'),
        "parked means asleep in the kernel"
    );
    assert!(
        after.cpu_time <= before.cpu_time + Duration::from_millis(10),
        "parked thread used CPU: {:?} -> {:?}",
        before.cpu_time,
        after.cpu_time
    );
    k.unpark();
    k.stop()?;
    Ok(())
}

#[test]
fn park_before_first_wake_parks_before_function() -> Res {
    let _w = watchdog("park_before_first_wake_parks_before_function", WATCHDOG);
    let started = Arc::new(Completion::new());
    let k = {
        let started = started.clone();
        kthread::create("k-park-first", move || {
            let stop_at_start = should_stop();
            started.complete();
            while !should_stop() {
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule();
                }
                set_current_state(TaskState::Running);
            }
            stop_at_start
        })?
    };
    k.park()?;
    assert_eq!(k.task().state(), TaskState::Parked);
    assert!(
        !started.wait_timeout(SHORT),
        "the function ran while parked"
    );
    assert_eq!(row(k.task().tid()).unwrap().state, TaskState::Parked);
    k.unpark();
    started.wait();
    k.wake_up(); // harmless
    let stop_at_start = k.stop()?;
    assert!(!stop_at_start, "unpark, not stop, let the function run");
    Ok(())
}

#[test]
fn stop_of_parked_never_run_thread_runs_function_with_should_stop_true() -> Res {
    let _w = watchdog(
        "stop_of_parked_never_run_thread_runs_function_with_should_stop_true",
        WATCHDOG,
    );
    let ran = Arc::new(AtomicBool::new(false));
    let k = {
        let ran = ran.clone();
        kthread::create("k-park-stop", move || {
            ran.store(true, Ordering::SeqCst);
            (should_stop(), 11)
        })?
    };
    k.park()?;
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(k.stop()?, (true, 11), "parking counted as the first wake");
    assert!(ran.load(Ordering::SeqCst));
    Ok(())
}

#[test]
fn stop_of_parked_thread_ends_it() -> Res {
    let _w = watchdog("stop_of_parked_thread_ends_it", WATCHDOG);
    let tick = Arc::new(Completion::new());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let k = kthread::run("k-park-end", parkable_loop(tick, arrivals))?;
    k.park()?;
    let task = k.task().clone();
    let tid = task.tid();
    k.stop()?;
    assert!(task.has_exited());
    assert_eq!(task.state(), TaskState::Dead);
    assert!(row(tid).is_none());
    Ok(())
}

#[test]
fn double_park_is_error() -> Res {
    let _w = watchdog("double_park_is_error", WATCHDOG);
    let tick = Arc::new(Completion::new());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let k = kthread::run("k-park-twice", parkable_loop(tick, arrivals.clone()))?;
    wait_asleep(&k, TaskState::Interruptible);
    k.park()?;
    let e = k.park().unwrap_err();
    assert!(matches!(e, Error::AlreadyParked), "{e:?}");
    assert_eq!(e.errno(), libc::EBUSY);
    assert_eq!(k.task().state(), TaskState::Parked);
    assert_eq!(arrivals.load(Ordering::SeqCst), 1);
    k.unpark();
    // After unpark it can be parked again.
    k.park()?;
    k.unpark();
    k.stop()?;

    // Same for a never-woken kthread.
    let k = kthread::create("k-park-twice-new", || 3)?;
    k.park()?;
    assert!(matches!(k.park(), Err(Error::AlreadyParked)));
    assert_eq!(k.stop()?, 3);
    Ok(())
}

#[test]
fn park_after_exit_is_error() -> Res {
    let _w = watchdog("park_after_exit_is_error", WATCHDOG);
    let (k, returning) = run_returning_one("k-park-exited")?;
    returning.wait();
    wait_briefly_until("finished", BRIEF, || k.is_finished());
    let e = k.park().unwrap_err();
    assert!(matches!(e, Error::Exited), "{e:?}");
    assert_eq!(e.errno(), libc::ENOSYS);
    k.unpark(); // harmless
    assert_eq!(k.stop()?, 1);
    Ok(())
}

#[test]
fn a_plain_thread_sleeping_in_schedule_is_woken_through_its_task() {
    let _w = watchdog("a_plain_thread_sleeping_in_schedule", WATCHDOG);
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let sleeper = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            // Not a kthread: Task::current() gives it a task others can wake.
            tx.send(kthread::Task::current()).unwrap();
            let mut rounds = 0u32;
            loop {
                kthread::set_current_state(TaskState::Interruptible);
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                kthread::schedule();
                rounds += 1;
            }
            kthread::set_current_state(TaskState::Running);
            rounds
        })
    };
    let task = rx.recv_timeout(WATCHDOG).expect("the thread's task");
    assert!(kthread::current().is_none(), "main is not a kthread either");
    flag.store(true, Ordering::SeqCst);
    task.wake_up();
    let rounds = sleeper.join().expect("woken and returned");
    assert!(rounds <= 1, "one wake ends the sleep (rounds: {rounds})");
}
