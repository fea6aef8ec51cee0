//! `fork()` from a process with kthreads: the child starts with no kthreads
//! of its own, kthreadd starts afresh on first use there, and creating,
//! running and stopping kthreads and workers in the child works — whatever
//! the parent's threads were doing at the fork (creating, queueing,
//! freezing), and also when a kthread itself forks.
//!
//! The child reports through its exit status only (no stdout, no panic
//! message: a lock of std's streams may have been held by a parent thread
//! at the fork). The parent waits with a blocking `waitpid`; a watchdog
//! thread kills a hung child, so a hang fails the test with a message.

mod common;

use kthread::{freezer, Builder, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a child may take before it counts as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(20);
/// The exit status of a child that was killed as hung.
const HUNG: i32 = 200;

/// What the child does with the library; `Err(n)` names the step that failed.
fn child_uses_the_library() -> Result<(), i32> {
    let before = kthread::list();
    // Only kthreads of this process: none before kthreadd has started here.
    if before.iter().any(|t| t.name != "kthreadd") {
        return Err(10);
    }
    let k = Builder::new("child-k").run(|| 7u32).map_err(|_| 11)?;
    if k.stop().map_err(|_| 12)? != 7 {
        return Err(13);
    }
    let w = Worker::new("child-w").map_err(|_| 14)?;
    let ran = Arc::new(AtomicU64::new(0));
    let r = ran.clone();
    let job = Work::new(move || {
        r.fetch_add(1, Ordering::Relaxed);
    });
    if !w.queue(&job) {
        return Err(15);
    }
    w.flush().map_err(|_| 16)?;
    if ran.load(Ordering::Relaxed) != 1 {
        return Err(17);
    }
    // A freezable kthread runs: the child is not frozen, even if the parent was.
    let fk = Builder::new("child-fz")
        .freezable(true)
        .run(kthread::try_to_freeze)
        .map_err(|_| 18)?;
    if fk.stop().map_err(|_| 19)? {
        return Err(20);
    }
    let g = freezer::freeze(Duration::from_secs(5)).map_err(|_| 21)?;
    drop(g);
    let names: Vec<String> = kthread::list().into_iter().map(|t| t.name).collect();
    if names.iter().any(|n| n != "kthreadd" && n != "child-w") {
        return Err(22);
    }
    w.destroy();
    Ok(())
}

/// Runs in the child right after `fork()`; never returns.
fn child_main() -> ! {
    let code = match std::panic::catch_unwind(child_uses_the_library) {
        Ok(Ok(())) => 0,
        Ok(Err(n)) => n,
        Err(_) => 99,
    };
    // SAFETY: _exit ends the child at once, running no destructors or
    // atexit handlers of the parent's copied state.
    unsafe { libc::_exit(code) }
}

/// Forks a child that runs `child_main`, and returns its exit status
/// (`HUNG` if the watchdog had to kill it).
fn fork_and_check() -> i32 {
    // SAFETY: the child runs only `child_main`, which ends in `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child_main();
    }
    let killed = common::await_child_exit(pid, CHILD_LIMIT);
    let status = common::reap_child(pid);
    if killed {
        HUNG
    } else {
        status
    }
}

/// The tests of this file freeze the whole process: one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn assert_child_ok(status: i32, what: &str) {
    assert!(
        status != HUNG,
        "{what}: the child hung (killed after {CHILD_LIMIT:?})"
    );
    assert_eq!(status, 0, "{what}: the child failed at step {status}");
}

#[test]
fn a_child_creates_runs_and_stops_its_own_kthreads_and_workers() {
    let _serial = serial();
    let _wd = common::watchdog("fork_child_uses_the_library", common::WATCHDOG);
    // The parent has kthreadd, a sleeping kthread and a worker with a queue.
    let k = Builder::new("parent-k")
        .run(|| {
            while !kthread::should_stop() {
                kthread::set_current_state(kthread::TaskState::Interruptible);
                if !kthread::should_stop() {
                    kthread::schedule();
                }
                kthread::set_current_state(kthread::TaskState::Running);
            }
        })
        .expect("parent kthread");
    let w = Worker::new("parent-w").expect("parent worker");
    let job = Work::new(|| ());
    w.queue(&job);
    assert_child_ok(fork_and_check(), "fork beside idle kthreads");
    // The parent is untouched.
    w.flush().expect("parent flush");
    k.stop().expect("parent stop");
}

#[test]
fn fork_at_random_moments_of_creation_queueing_and_freezing() {
    let _serial = serial();
    let _wd = common::watchdog("fork_at_random_moments", Duration::from_secs(120));
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy = Vec::new();
    // Creating and stopping kthreads.
    let s = stop.clone();
    busy.push(std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let k = Builder::new("churn").run(|| ()).expect("create");
            k.stop().expect("stop");
        }
    }));
    // Queueing and flushing on a worker.
    let s = stop.clone();
    busy.push(std::thread::spawn(move || {
        let w = Worker::new("busy-w").expect("worker");
        let job = Work::new(|| ());
        while !s.load(Ordering::Relaxed) {
            w.queue(&job);
            if job.is_pending() {
                w.flush().expect("flush");
            }
        }
    }));
    // Freezing and thawing a freezable kthread.
    let s = stop.clone();
    busy.push(std::thread::spawn(move || {
        let fk = Builder::new("busy-fz")
            .freezable(true)
            .run(|| {
                while !kthread::freezable_should_stop() {
                    kthread::set_current_state(kthread::TaskState::Interruptible);
                    if !kthread::should_stop() {
                        kthread::schedule_timeout(Duration::from_millis(1));
                    }
                    kthread::set_current_state(kthread::TaskState::Running);
                }
            })
            .expect("freezable");
        while !s.load(Ordering::Relaxed) {
            if let Ok(g) = freezer::freeze(Duration::from_secs(5)) {
                drop(g);
            }
        }
        fk.stop().expect("stop freezable");
    }));
    for i in 0..12 {
        assert_child_ok(fork_and_check(), &format!("fork {i} amid churn"));
    }
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().expect("busy thread");
    }
}

#[test]
fn a_kthread_that_forks_has_a_working_child() {
    let _serial = serial();
    let _wd = common::watchdog("a_kthread_that_forks", common::WATCHDOG);
    let k = Builder::new("forker").run(fork_and_check).expect("create");
    assert_child_ok(k.stop().expect("stop forker"), "fork from a kthread");
}

#[test]
fn a_child_of_a_frozen_process_starts_thawed() {
    let _serial = serial();
    let _wd = common::watchdog("a_child_of_a_frozen_process", common::WATCHDOG);
    let fk = Builder::new("frozen-parent")
        .freezable(true)
        .run(|| while !kthread::freezable_should_stop() {})
        .expect("freezable");
    let guard = freezer::freeze(Duration::from_secs(10)).expect("freeze");
    // The child's freezer is its own: `child_uses_the_library` freezes and
    // thaws there while the parent stays frozen.
    assert_child_ok(fork_and_check(), "fork while frozen");
    assert!(freezer::freezing(), "the parent is still frozen");
    drop(guard);
    fk.stop().expect("stop");
}

/// Objects inherited from the parent answer at once in the child and
/// never touch the parent's vanished threads; dropping them waits for
/// nothing. Each step that hung or answered wrongly names itself.
#[test]
fn inherited_objects_answer_forked_at_once_and_drop_without_waiting() {
    let _s = serial();
    let _w = common::watchdog("inherited_objects", common::WATCHDOG);
    let sleeper = kthread::run("parent-sleeper", || {
        while !kthread::should_stop() {
            kthread::set_current_state(kthread::TaskState::Interruptible);
            if !kthread::should_stop() {
                kthread::schedule();
            }
            kthread::set_current_state(kthread::TaskState::Running);
        }
        5u32
    })
    .expect("run");
    let worker = Worker::new("parent-worker").expect("worker");
    let gate = Arc::new(kthread::Completion::new());
    let g = gate.clone();
    let stuck = Work::new(move || g.wait()); // busy in the parent at the fork
    let queued = Work::new(|| ());
    let delayed = kthread::DelayedWork::new(|| ());
    assert!(worker.queue(&stuck));
    assert!(worker.queue(&queued));
    assert!(worker.queue_delayed(&delayed, Duration::from_secs(3600)));
    let task = sleeper.task().clone();

    // SAFETY: the child ends in `_exit` and only checks the inherited objects.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = (|| {
            if !task.is_inherited() || !worker.task().is_inherited() {
                return 1;
            }
            if task.wake_up() || sleeper.wake_up() {
                return 2;
            }
            if !matches!(sleeper.bind(0), Err(kthread::Error::Forked))
                || !matches!(task.park(), Err(kthread::Error::Forked))
                || !matches!(task.set_nice(1), Err(kthread::Error::Forked))
            {
                return 3;
            }
            let fresh = Work::new(|| ());
            if worker.queue(&fresh) || worker.queue_delayed(&delayed, Duration::ZERO) {
                return 4;
            }
            if !matches!(worker.flush(), Err(kthread::Error::Forked)) {
                return 5;
            }
            if queued.flush() || stuck.cancel_sync() || delayed.flush() || delayed.cancel_sync() {
                return 6;
            }
            if !matches!(sleeper.stop(), Err(kthread::StopError::Forked)) {
                return 7;
            }
            drop(worker); // waits for nothing
            drop((stuck, queued, delayed));
            if kthread::list()
                .iter()
                .any(|t| t.name.starts_with("parent-"))
            {
                return 8;
            }
            // And the child's own kthreads work.
            match child_uses_the_library() {
                Ok(()) => 0,
                Err(n) => n,
            }
        })();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let killed = common::await_child_exit(pid, CHILD_LIMIT);
    let status = common::reap_child(pid);
    gate.complete_all(); // before any assert: the worker's drop flushes
    assert!(!killed, "the child hung on an inherited object");
    assert_eq!(status, 0, "child step {status} failed");
    assert_eq!(sleeper.stop().expect("parent stop"), 5);
    worker.destroy();
}

/// A blocking `read()` on `fd` until the stop: `EINTR` means "look at
/// `should_stop()` again".
fn read_until_stopped(fd: std::os::fd::RawFd) -> u32 {
    let mut interrupted = 0;
    let mut buf = [0u8; 8];
    while !kthread::should_stop() {
        // SAFETY: reads at most 8 bytes into `buf`.
        if unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } < 0 {
            interrupted += 1;
        }
    }
    interrupted
}

#[test]
fn inherited_hooks_answer_forked_and_the_child_interrupts_its_own_kthreads() {
    use std::os::fd::AsRawFd;
    let _s = serial();
    let _w = common::watchdog("inherited_hooks", common::WATCHDOG);
    let (r, _w_end) = std::os::unix::net::UnixStream::pair().expect("pair");
    let fd = r.as_raw_fd();
    let blocked = kthread::Builder::new("parent-reader")
        .interrupt_on_stop(true)
        .run(move || read_until_stopped(fd))
        .expect("run");
    let task = blocked.task().clone();
    let _fd = task.stop_fd().expect("stop fd in the parent");
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = ran.clone();
    let _cb = task.on_stop(move || r2.store(true, std::sync::atomic::Ordering::SeqCst));

    // SAFETY: the child ends in `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = (|| {
            if !matches!(task.stop_fd(), Err(kthread::Error::Forked))
                || !matches!(task.send_signal(libc::SIGTERM), Err(kthread::Error::Forked))
            {
                return 1;
            }
            let late = task.on_stop(|| unreachable!("an inherited task is never stopped here"));
            drop(late);
            drop(task); // the parent's timer is not the child's to delete
                        // The child's own interruptible kthread, stopped while in read().
            let (r, _w) = std::os::unix::net::UnixStream::pair().expect("pair");
            let fd = r.as_raw_fd();
            let own = kthread::Builder::new("child-reader")
                .interrupt_on_stop(true)
                .run(move || read_until_stopped(fd))
                .expect("child run");
            own.request_stop(); // re-sent by its timer if the first is spent
            match own.stop() {
                Ok(_) => 0,
                Err(_) => 2,
            }
        })();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let killed = common::await_child_exit(pid, CHILD_LIMIT);
    let status = common::reap_child(pid);
    assert!(!killed, "the child hung");
    assert_eq!(status, 0, "child step {status} failed");
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    blocked.stop().expect("parent stop");
    assert!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        "the parent's callback ran"
    );
}
