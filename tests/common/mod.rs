//! Helpers shared by the integration-test binaries.
//!
//! Each binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test may take before its watchdog fails the whole binary.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// Fails the test binary loudly if not dropped in time.
///
/// A hung test would otherwise hang `cargo test` forever; instead the
/// watchdog prints the test name and the kthread table, then exits with 101.
#[must_use = "the watchdog is disarmed when this guard is dropped"]
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Arms a watchdog for the test `name`, firing after `limit`.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    watchdog_with(name, limit, String::new)
}

/// As [`watchdog`], adding `context()` (how far a stress run got, its
/// seed) to the report.
pub fn watchdog_with(
    name: &'static str,
    limit: Duration,
    context: impl FnOnce() -> String + Send + 'static,
) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name(format!("watchdog:{name}"))
        .spawn(move || match rx.recv_timeout(limit) {
            // Disarmed (message sent or sender dropped).
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => {
                // Straight to fd 2: the test harness captures `eprintln!`
                // (also in spawned threads) and would swallow it on exit.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** watchdog: test `{name}` still running after {limit:?}: hung {} ***",
                    context()
                );
                // Printing the table takes the registry lock; if that lock is
                // what hangs, exit anyway after a grace period.
                let (ptx, prx) = mpsc::channel::<()>();
                thread::spawn(move || {
                    let _ = writeln!(std::io::stderr(), "{}", kthread::ps());
                    let _ = ptx.send(());
                });
                let _ = prx.recv_timeout(Duration::from_secs(2));
                std::process::exit(101);
            }
        })
        .expect("spawn watchdog thread");
    Watchdog {
        disarm: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.disarm.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits for `cond`, which becomes true within a few instructions of
/// something the test already synchronised with (e.g. a thread that completed
/// a `Completion` just before returning). Yields between looks; panics after
/// `limit` so a wrong assumption fails instead of hanging.
pub fn wait_briefly_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition `{what}` not reached within {limit:?}"
        );
        thread::yield_now();
    }
}

/// The calling thread's kernel thread id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: SYS_gettid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// The CPUs thread `tid` may run on (0 = the caller), ascending.
pub fn affinity_of(tid: libc::pid_t) -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of exactly the size passed.
    let r =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(
        r,
        0,
        "sched_getaffinity({tid}): {}",
        std::io::Error::last_os_error()
    );
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE, so CPU_ISSET reads inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Restricts the calling thread to `cpus`.
pub fn set_own_affinity(cpus: &[usize]) {
    set_affinity_of(0, cpus)
}

/// Restricts thread `tid` (0 = the caller) to `cpus`.
pub fn set_affinity_of(tid: libc::pid_t, cpus: &[usize]) {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        assert!(c < libc::CPU_SETSIZE as usize);
        // SAFETY: `c` is below CPU_SETSIZE, so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of exactly the size passed.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        r,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

/// The kernel's name for thread `tid` of this process (`comm`, without the newline).
pub fn os_thread_name(tid: libc::pid_t) -> String {
    let raw = std::fs::read(format!("/proc/self/task/{tid}/comm")).expect("read comm");
    let mut s = String::from_utf8(raw).expect("comm is UTF-8 here");
    assert_eq!(s.pop(), Some('\n'));
    s
}

/// Whether thread `tid` still exists in this process.
pub fn thread_exists(tid: libc::pid_t) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// The kernel's one-letter state of thread `tid` (`R`, `S`, `D`, ...), if it exists.
pub fn os_state(tid: libc::pid_t) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The name may hold spaces and parentheses: the state follows the last ')'.
    text[text.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// The kernel's kthread loop: sleeps `Interruptible` until stopped.
pub fn sleep_until_stopped() {
    while !kthread::should_stop() {
        kthread::set_current_state(kthread::TaskState::Interruptible);
        if !kthread::should_stop() {
            kthread::schedule();
        }
        kthread::set_current_state(kthread::TaskState::Running);
    }
}

/// The registry row of thread `tid`, if the registry lists it.
pub fn row(tid: libc::pid_t) -> Option<kthread::TaskInfo> {
    kthread::list().into_iter().find(|r| r.tid == tid)
}

/// Every CPU this process may use: what the kernel grants a thread that asks
/// for all of them (online CPUs within the cgroup's cpuset). This is wider
/// than the caller's affinity when the test runs under `taskset`.
pub fn allowed_cpus() -> Vec<usize> {
    thread::spawn(|| {
        let all: Vec<usize> = (0..libc::CPU_SETSIZE as usize).collect();
        set_own_affinity(&all);
        affinity_of(0)
    })
    .join()
    .expect("probe thread")
}

/// Waits until child `pid` has exited, without reaping it, and kills it
/// with `SIGKILL` if it runs past `limit` (a hung child fails its test
/// instead of hanging it). Returns whether it had to be killed. The wait is
/// a blocking `waitid(WNOWAIT)`, not polling; the killer thread is joined
/// before this returns, and the child is still unreaped until the caller
/// reaps it, so the kill can never reach a recycled pid.
pub fn await_child_exit(pid: libc::pid_t, limit: Duration) -> bool {
    let (disarm, armed) = mpsc::channel::<()>();
    let killer = thread::spawn(move || {
        if armed.recv_timeout(limit) == Err(RecvTimeoutError::Timeout) {
            // SAFETY: our own child, not reaped before this thread is joined.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child without reaping it (WNOWAIT).
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::EINTR), "waitid: {e}");
    }
    let _ = disarm.send(());
    killer.join().expect("child killer thread")
}

/// Reaps child `pid` once it has exited ([`await_child_exit`] first):
/// its exit code, or 128 + the signal that ended it.
pub fn reap_child(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: reaps our own exited child; `status` is writable.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}
