//! The hostile-user suite: what a hostile but
//! plausible user tries, one module per class of attack.
//!
//! Every test is seeded, bounded and watched:
//! * the seed comes from `KTHREAD_HOSTILE_SEED` or the clock and is printed
//!   (shown when the test fails), so `KTHREAD_HOSTILE_SEED=N cargo test
//!   --test hostile` replays a failure;
//! * each test runs a fixed number of operations or a fixed time budget;
//! * a watchdog fails the binary with a message instead of hanging, and a
//!   child process (re-exec of this binary for the tests that need a
//!   process of their own) is killed when it overruns its limit.
//!
//! Nothing is skipped except `cpuset` where it cannot run (not root, or no
//! cgroup-v1 cpuset hierarchy), which says so. The defects this suite found
//! are listed in RELIABILITY.md with the tests that keep them out.

#[path = "common/mod.rs"]
mod common;

#[path = "hostile/bad_inputs.rs"]
mod bad_inputs;
#[path = "hostile/cpuset.rs"]
mod cpuset;
#[path = "hostile/drops.rs"]
mod drops;
#[path = "hostile/exhaustion.rs"]
mod exhaustion;
#[path = "hostile/fork.rs"]
mod fork;
#[path = "hostile/races.rs"]
mod races;
#[path = "hostile/signals.rs"]
mod signals;
#[path = "hostile/tls.rs"]
mod tls;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// The environment variable that replays a run.
pub(crate) const SEED_ENV: &str = "KTHREAD_HOSTILE_SEED";
/// Set in a re-executed child: which child body to run.
pub(crate) const CHILD_ENV: &str = "KTHREAD_HOSTILE_CHILD";
/// Each test's watchdog limit (the whole file runs in well under this).
pub(crate) const LIMIT: Duration = Duration::from_secs(40);

/// xorshift64*: enough randomness for choosing operations, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of `seed` (one stream per thread).
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        let mut s = seed ^ (stream.wrapping_add(1)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if s == 0 {
            s = 0x2545_f491_4f6c_dd1d;
        }
        let mut r = Rng(s);
        r.next();
        r
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 33) % n
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Shuffles `v` in place (Fisher–Yates).
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// The seed for `test`: `KTHREAD_HOSTILE_SEED` if set, else the clock; printed.
pub(crate) fn seed(test: &str) -> u64 {
    let s = match std::env::var(SEED_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={v:?} is not a u64")),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970");
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    eprintln!("{test}: seed {s} (replay with {SEED_ENV}={s})");
    s
}

/// Failures seen by racing threads, reported together at the end.
#[derive(Debug, Default)]
pub(crate) struct Failures(Mutex<Vec<String>>);

impl Failures {
    pub(crate) fn add(&self, what: String) {
        let mut v = lock(&self.0);
        if v.len() < 20 {
            v.push(what);
        }
    }

    /// Panics with every recorded failure (and the seed) if there is one.
    pub(crate) fn check(&self, test: &str, seed: u64) {
        let v = lock(&self.0);
        assert!(
            v.is_empty(),
            "{test} (seed {seed}) saw:\n  {}",
            v.join("\n  ")
        );
    }
}

/// Locks `m`, ignoring poisoning (a failed racer must not hide the report).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The freezer is process-wide: tests of this binary that freeze take this.
pub(crate) static FREEZER: Mutex<()> = Mutex::new(());

/// Counts its drops.
#[derive(Debug)]
pub(crate) struct DropCount(pub(crate) Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The body a re-executed child runs, if this process is one.
pub(crate) fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A command that re-runs this test binary for exactly `test` as child `mode`.
pub(crate) fn child_command(test: &str, mode: &str, seed: u64) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut c = Command::new(exe);
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env(SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// What a child did: how it ended and what it printed.
#[derive(Debug)]
pub(crate) struct ChildRun {
    pub(crate) status: ExitStatus,
    pub(crate) output: String,
    pub(crate) killed: bool,
}

impl ChildRun {
    /// Panics with the child's output unless it exited 0.
    pub(crate) fn assert_ok(&self, what: &str) {
        assert!(
            !self.killed,
            "{what}: child hung and was killed after its limit:\n{}",
            self.output
        );
        assert!(
            self.status.success(),
            "{what}: child failed ({:?}):\n{}",
            self.status,
            self.output
        );
    }
}

/// Runs `cmd`, killing it after `limit`; waits with a blocking `waitid`
/// (no polling): the killer thread acts only on a child not yet waited for.
pub(crate) fn run_child(mut cmd: Command, limit: Duration) -> ChildRun {
    let mut child = cmd.spawn().expect("spawn child");
    let pid = child.id() as libc::pid_t;
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    })
    .collect();
    let killed = common::await_child_exit(pid, limit);
    let status = child.wait().expect("reap child");
    let output = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n--- stderr ---\n");
    ChildRun {
        status,
        output,
        killed,
    }
}

/// Every CPU this process may use, ascending (see `common::allowed_cpus`).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    common::allowed_cpus()
}

/// A parkable, stoppable kthread loop (the kernel's smpboot shape).
pub(crate) fn parkable_loop() -> u64 {
    let mut rounds = 0;
    while !kthread::should_stop() {
        if kthread::should_park() {
            kthread::parkme();
            continue;
        }
        kthread::set_current_state(kthread::TaskState::Interruptible);
        if !kthread::should_stop() && !kthread::should_park() {
            kthread::schedule();
        }
        kthread::set_current_state(kthread::TaskState::Running);
        rounds += 1;
    }
    rounds
}
