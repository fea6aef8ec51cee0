//! `fork()` at random moments: from a test thread while other threads
//! create and stop kthreads, queue and flush items and freeze / thaw, and
//! from inside a kthread. The child may then use the library at once: it
//! creates, runs and stops a kthread, creates a worker, queues an item and
//! flushes it, and exits 0. The parent waits with a blocking `waitpid`; a
//! watchdog thread kills a child that overruns its limit.
//!
//! Before the fork handling (`sys/fork.rs`: the child starts with no
//! kthreads and its own kthreadd) the child hung the first time it created
//! a kthread.

use super::common::watchdog;
use super::{lock, parkable_loop, seed, Rng, FREEZER, LIMIT};
use kthread::{freezer, Builder, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const FORKS: u64 = 12;
const CHILD_LIMIT: Duration = Duration::from_secs(10);

/// The child's life after `fork()`: library calls, then `_exit`. No
/// printing (another thread may have held the stdout lock at the fork).
fn child_body() -> ! {
    let code = std::panic::catch_unwind(|| {
        let k = kthread::run("hz-fork-k", || 42).map_err(|_| 2)?;
        if k.stop().map_err(|_| 3)? != 42 {
            return Err(4);
        }
        let w = Worker::new("hz-fork-w").map_err(|_| 5)?;
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let item = Work::new(move || {
            r.fetch_add(1, SeqCst);
        });
        if !w.queue(&item) {
            return Err(6);
        }
        w.flush().map_err(|_| 7)?;
        if ran.load(SeqCst) != 1 {
            return Err(8);
        }
        w.destroy();
        Ok(())
    });
    let code = match code {
        Ok(Ok(())) => 0,
        Ok(Err(c)) => c,
        Err(_) => 9,
    };
    // SAFETY: _exit ends the child without running the parent's atexit work.
    unsafe { libc::_exit(code) }
}

/// Waits for child `pid`, killed after `CHILD_LIMIT`: its exit code, or
/// `None` if it had to be killed.
fn wait_child(pid: libc::pid_t) -> Option<i32> {
    let killed = super::common::await_child_exit(pid, CHILD_LIMIT);
    let status = super::common::reap_child(pid);
    (!killed).then_some(status)
}

/// Forks; the child runs `child_body`. Returns the child's pid.
fn fork_child() -> libc::pid_t {
    // SAFETY: the child runs only `child_body`, which ends in `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child_body();
    }
    pid
}

#[test]
fn fork_at_random_moments_leaves_a_working_library_in_the_child() {
    const TEST: &str = "fork::fork_at_random_moments_leaves_a_working_library_in_the_child";
    let _w = watchdog(TEST, LIMIT);
    let _f = lock(&FREEZER);
    let seed = seed(TEST);
    let mut rng = Rng::new(seed, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Arc::new(Worker::new("hz-fork-bg").unwrap());
    let busy: Vec<_> = (0..3u64)
        .map(|role| {
            let (stop, worker) = (stop.clone(), worker.clone());
            thread::spawn(move || {
                let item = Work::new(|| {});
                let fz = Builder::new(format!("hz-fork-fz{role}"))
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
                    .unwrap();
                while !stop.load(SeqCst) {
                    match role {
                        0 => {
                            let k = kthread::run("hz-fork-bgk", parkable_loop).unwrap();
                            k.stop().unwrap();
                        }
                        1 => {
                            worker.queue(&item);
                            worker.flush().unwrap();
                        }
                        _ => {
                            if let Ok(g) = freezer::freeze(Duration::from_secs(5)) {
                                drop(g);
                            }
                        }
                    }
                }
                fz.stop().unwrap();
            })
        })
        .collect();
    let mut failures = Vec::new();
    for i in 0..FORKS {
        // A random moment: spin a random while, then fork.
        for _ in 0..rng.below(200_000) {
            std::hint::spin_loop();
        }
        let pid = if i % 4 == 3 {
            // From inside a kthread: the kthread forks and hands back the pid.
            kthread::run("hz-forker", fork_child)
                .unwrap()
                .stop()
                .unwrap()
        } else {
            fork_child()
        };
        match wait_child(pid) {
            Some(0) => {}
            Some(c) => failures.push(format!("fork {i}: child exited {c}")),
            None => failures.push(format!(
                "fork {i}: child hung, killed after {CHILD_LIMIT:?}"
            )),
        }
    }
    stop.store(true, SeqCst);
    for t in busy {
        t.join().unwrap();
    }
    assert!(
        failures.is_empty(),
        "seed {seed}:\n  {}",
        failures.join("\n  ")
    );
}
