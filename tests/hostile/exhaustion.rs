//! Resource exhaustion under `setrlimit`, in a child process of its own: with
//! `RLIMIT_AS` lowered (thread stacks cannot be mapped) or `RLIMIT_NPROC`
//! lowered (the kernel refuses the clone; root is exempt, so the child
//! first becomes `nobody`), create kthreads and workers until creation
//! fails. The failure must be an `Err` with an errno (never a panic, an
//! abort or a hang), the closure of the failed creation is dropped once,
//! everything created before stops normally, and once the limit is raised
//! again creation works. The library holds no file descriptor per thread
//! (`RLIMIT_NOFILE` has nothing to exhaust) and passes its stack size
//! explicitly (`RLIMIT_STACK` is not consulted).

use super::common::watchdog;
use super::{child_command, child_mode, run_child, seed, DropCount, LIMIT};
use kthread::{Builder, Error, TaskState, Work, Worker};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const STACK: usize = 16 << 20;
const MAX_CREATED: usize = 200;

fn getrlimit(res: libc::__rlimit_resource_t) -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid out-parameter.
    assert_eq!(unsafe { libc::getrlimit(res, &mut r) }, 0);
    r
}

fn setrlimit(res: libc::__rlimit_resource_t, r: libc::rlimit) {
    // SAFETY: `r` is a valid rlimit.
    let rc = unsafe { libc::setrlimit(res, &r) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// This process's address-space size (`VmSize`), in bytes.
fn vm_size() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A stoppable kthread loop returning `i`.
fn waiter(i: usize) -> usize {
    while !kthread::should_stop() {
        kthread::set_current_state(TaskState::Interruptible);
        if !kthread::should_stop() {
            kthread::schedule();
        }
        kthread::set_current_state(TaskState::Running);
    }
    i
}

/// Fills the limit with kthreads, then checks the failure and the recovery.
/// `lower` lowers the limit and returns how to raise it again.
fn exhaust(lower: impl FnOnce() -> Box<dyn FnOnce()>) {
    kthread::kthreadd::start().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let item = Work::new(move || {
        r.fetch_add(1, SeqCst);
    });
    let early = Worker::new("hz-ex-w").unwrap();
    let raise = lower();
    let mut created = Vec::new();
    let mut failure = None;
    for i in 0..MAX_CREATED {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        match Builder::new(format!("hz-ex{i}"))
            .stack_size(STACK)
            .run(move || {
                let _g = &guard;
                waiter(i)
            }) {
            Ok(k) => created.push(k),
            Err(e) => {
                assert_eq!(drops.load(SeqCst), 1, "the failed closure dropped once");
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.unwrap_or_else(|| panic!("{MAX_CREATED} kthreads fitted under the limit"));
    assert!(
        matches!(e, Error::Os(_)) && [libc::EAGAIN, libc::ENOMEM].contains(&e.errno()),
        "creation failed with {e:?} (errno {})",
        e.errno()
    );
    assert!(!e.to_string().is_empty());
    // A worker of the same size does not fit either, unless a spare that
    // kthreadd made before the limit was reached still waits (then it is
    // served by it, which is the spare cache's point).
    match Worker::builder("hz-ex-w2").stack_size(STACK).create() {
        Err(we) => assert!(
            [libc::EAGAIN, libc::ENOMEM].contains(&we.errno()),
            "worker creation failed with {we:?}"
        ),
        Ok(w) => w.destroy(),
    }
    // What exists keeps working under the limit.
    assert!(early.queue(&item));
    early.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 1);
    raise();
    let n = created.len();
    for (i, k) in created.into_iter().enumerate() {
        assert_eq!(k.stop().unwrap(), i, "kthread {i} stops with its result");
    }
    // Raised again: creation works, as many as before and a worker.
    let again: Vec<_> = (0..n.clamp(1, 8))
        .map(|i| {
            Builder::new(format!("hz-ex-again{i}"))
                .stack_size(STACK)
                .run(move || waiter(i))
                .expect("creation works once the limit is raised")
        })
        .collect();
    for (i, k) in again.into_iter().enumerate() {
        assert_eq!(k.stop().unwrap(), i);
    }
    let w = Worker::new("hz-ex-w3").unwrap();
    assert!(w.queue(&item));
    w.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 2);
    early.destroy();
    println!("hostile-child: ok ({n} kthreads fitted, then {e})");
}

fn parent(test: &'static str, mode: &str) {
    let seed = seed(test);
    let run = run_child(
        child_command(test, mode, seed),
        LIMIT - Duration::from_secs(5),
    );
    run.assert_ok(test);
    assert!(
        run.output.contains("hostile-child: ok"),
        "{test}: child did not finish:\n{}",
        run.output
    );
}

#[test]
fn creation_under_a_low_rlimit_as_fails_cleanly_and_recovers() {
    const TEST: &str = "exhaustion::creation_under_a_low_rlimit_as_fails_cleanly_and_recovers";
    let _w = watchdog(TEST, LIMIT);
    if child_mode().as_deref() != Some("rlimit-as") {
        return parent(TEST, "rlimit-as");
    }
    exhaust(|| {
        // One arena: per-thread malloc arenas would reserve address space
        // of their own and make small allocations, not stacks, fail first.
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only tunes the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        let old = getrlimit(libc::RLIMIT_AS);
        setrlimit(
            libc::RLIMIT_AS,
            libc::rlimit {
                rlim_cur: vm_size() + 20 * STACK as u64,
                rlim_max: old.rlim_max,
            },
        );
        Box::new(move || setrlimit(libc::RLIMIT_AS, old))
    });
}

#[test]
fn creation_under_a_low_rlimit_nproc_fails_cleanly_and_recovers() {
    const TEST: &str = "exhaustion::creation_under_a_low_rlimit_nproc_fails_cleanly_and_recovers";
    let _w = watchdog(TEST, LIMIT);
    if child_mode().as_deref() != Some("rlimit-nproc") {
        return parent(TEST, "rlimit-nproc");
    }
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        // Root ignores RLIMIT_NPROC: become `nobody` before any kthread exists.
        // SAFETY: plain credential calls; glibc applies them to every thread.
        unsafe {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
    }
    exhaust(|| {
        let old = getrlimit(libc::RLIMIT_NPROC);
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count() as u64;
        setrlimit(
            libc::RLIMIT_NPROC,
            libc::rlimit {
                rlim_cur: threads + 6,
                rlim_max: old.rlim_max,
            },
        );
        Box::new(move || setrlimit(libc::RLIMIT_NPROC, old))
    });
}
