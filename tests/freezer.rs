//! The freezer: freeze, thaw, failure, stop while frozen, fork (SPEC §5).
//!
//! Freezing is process-wide, so every test here holds `SERIAL` for its whole
//! run, and each stops all its kthreads before releasing it.

mod common;

use common::{os_state, row, wait_briefly_until, watchdog, WATCHDOG};
use kthread::freezer::{self, FreezeError};
use kthread::{
    freezable_should_stop, schedule, set_current_state, should_stop, try_to_freeze, Builder,
    Completion, Error, Kthread, TaskState,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// Serializes the tests of this binary (a failed test must not block the rest).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a negative check gives something the chance to (wrongly) happen.
const SHORT: Duration = Duration::from_millis(50);
const BRIEF: Duration = Duration::from_secs(5);
/// Generous: the freezes here must succeed.
const FREEZE: Duration = Duration::from_secs(10);

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Thaws on drop if still frozen, so a failing test leaves the system thawed
/// (declare it after the kthreads: it must drop first).
struct ThawOnDrop;

impl Drop for ThawOnDrop {
    fn drop(&mut self) {
        let _ = freezer::thaw();
    }
}

/// Sets the flag on drop.
struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A kthread that serves requests: the kernel's canonical loop, sleeping
/// `Interruptible` in `schedule`, completing `acks` once per request.
struct Server {
    k: Kthread<u64>,
    requests: Arc<AtomicU64>,
    acks: Arc<Completion>,
}

impl Server {
    fn start(name: &str, freezable: bool) -> Result<Server, Error> {
        let requests = Arc::new(AtomicU64::new(0));
        let acks = Arc::new(Completion::new());
        let k = {
            let (requests, acks) = (requests.clone(), acks.clone());
            Builder::new(name).freezable(freezable).run(move || {
                let mut served = 0u64;
                while !freezable_should_stop() {
                    set_current_state(TaskState::Interruptible);
                    if !should_stop() && requests.load(Ordering::Acquire) == served {
                        schedule();
                    }
                    set_current_state(TaskState::Running);
                    while requests.load(Ordering::Acquire) > served {
                        served += 1;
                        acks.complete();
                    }
                }
                served
            })?
        };
        Ok(Server { k, requests, acks })
    }

    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Release);
        self.k.wake_up();
    }

    /// One request, answered (waits; the watchdog catches a hang).
    fn round_trip(&self) {
        self.request();
        self.acks.wait();
    }

    /// Waits until it sleeps in `schedule` (state published, asleep in the kernel).
    fn wait_asleep(&self) {
        let tid = self.k.task().tid();
        wait_briefly_until("server asleep", BRIEF, || {
            self.state() == TaskState::Interruptible && os_state(tid) == Some('S')
        });
    }

    fn state(&self) -> TaskState {
        self.k.task().state()
    }
}

/// A freezable kthread that never sleeps: it spins through `try_to_freeze`.
/// Returns once its function runs (so it freezes there, not in the prologue).
fn spinner(name: &str) -> Result<Kthread<u64>, Error> {
    let started = Arc::new(Completion::new());
    let s = started.clone();
    let k = Builder::new(name).freezable(true).run(move || {
        s.complete();
        let mut rounds = 0u64;
        loop {
            try_to_freeze();
            if should_stop() {
                return rounds;
            }
            rounds += 1;
            std::thread::yield_now();
        }
    })?;
    started.wait();
    Ok(k)
}

/// A freezable kthread whose only freeze point is `freezable_should_stop`;
/// returns once its function runs. Its result is 42.
fn fss_spinner(name: &str) -> Result<Kthread<u32>, Error> {
    let started = Arc::new(Completion::new());
    let s = started.clone();
    let k = Builder::new(name).freezable(true).run(move || {
        s.complete();
        while !freezable_should_stop() {
            std::thread::yield_now();
        }
        42u32
    })?;
    started.wait();
    Ok(k)
}

/// Waits until `t` sits in the refrigerator. (Right after `freeze` returns
/// its state should already read Frozen: that claim is checked only in
/// `freeze_returns_only_when_all_freezable_frozen`, so each test here fails
/// for one reason.)
fn wait_frozen(t: &kthread::Task) {
    wait_briefly_until("frozen", BRIEF, || t.state() == TaskState::Frozen);
}

/// Stops `k` from a helper thread and waits at most `limit` for it. If the
/// stop hangs (a kthread held in the refrigerator), thaws to release it
/// and fails, instead of hanging the binary until the watchdog fires.
fn stop_within<T: Send + 'static>(k: Kthread<T>, limit: Duration) -> Res<T> {
    let stopped = Arc::new(Completion::new());
    let stopper = {
        let stopped = stopped.clone();
        std::thread::spawn(move || {
            let r = k.stop();
            stopped.complete();
            r.map_err(|e| e.to_string())
        })
    };
    let in_time = stopped.wait_timeout(limit);
    if !in_time {
        let _ = freezer::thaw();
    }
    let value = stopper.join().unwrap()?;
    assert!(in_time, "stop hung on a frozen kthread until it was thawed");
    Ok(value)
}

#[test]
fn freeze_returns_only_when_all_freezable_frozen() -> Res {
    let _s = serial();
    let _w = watchdog("freeze_returns_only_when_all_freezable_frozen", WATCHDOG);
    let a = Server::start("k-fz-a", true)?;
    let b = Server::start("k-fz-b", true)?;
    let spin = spinner("k-fz-spin")?;
    let fss = fss_spinner("k-fz-fss")?;
    let plain = Server::start("k-fz-plain", false)?;
    let unwoken = Builder::new("k-fz-unwoken").freezable(true).create(|| ())?;
    a.round_trip();
    b.round_trip();

    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    assert!(freezer::freezing());
    // Right when freeze returns, not eventually.
    let frozen = [a.k.task(), b.k.task(), spin.task(), fss.task()];
    let states: Vec<_> = frozen.iter().map(|t| (t.name(), t.state())).collect();
    let rows: Vec<_> = frozen
        .iter()
        .map(|t| (t.name(), row(t.tid()).map(|r| r.state)))
        .collect();
    for (name, state) in &states {
        assert_eq!(*state, TaskState::Frozen, "{name} not Frozen: {states:?}");
    }
    for (name, state) in &rows {
        assert_eq!(
            *state,
            Some(TaskState::Frozen),
            "{name} in list(): {rows:?}"
        );
    }
    assert_ne!(
        plain.state(),
        TaskState::Frozen,
        "not freezable, never frozen"
    );
    assert_eq!(
        unwoken.task().state(),
        TaskState::Uninterruptible,
        "a never-woken kthread runs nothing and is left alone"
    );
    drop(guard);
    assert!(!freezer::freezing());

    // Everyone runs again.
    a.round_trip();
    b.round_trip();
    plain.round_trip();
    a.k.stop()?;
    b.k.stop()?;
    plain.k.stop()?;
    spin.stop()?;
    fss.stop()?;
    assert!(unwoken.stop().is_err());
    Ok(())
}

#[test]
fn non_freezable_keeps_running_during_freeze() -> Res {
    let _s = serial();
    let _w = watchdog("non_freezable_keeps_running_during_freeze", WATCHDOG);
    let frozen = Server::start("k-fz-frozen", true)?;
    let plain = Server::start("k-nf-plain", false)?;
    let counter = Arc::new(AtomicU64::new(0));
    let busy = {
        let counter = counter.clone();
        kthread::run("k-nf-busy", move || {
            // Freeze points that a non-freezable kthread passes straight through.
            while !freezable_should_stop() {
                try_to_freeze();
                counter.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
        })?
    };
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    wait_frozen(frozen.k.task());
    // While frozen: the non-freezable server answers, the counter advances.
    for _ in 0..10 {
        plain.round_trip();
    }
    let c0 = counter.load(Ordering::Relaxed);
    wait_briefly_until("non-freezable counter advances", BRIEF, || {
        counter.load(Ordering::Relaxed) > c0 + 100
    });
    assert!(freezer::freezing());
    assert_eq!(frozen.state(), TaskState::Frozen, "still frozen meanwhile");
    drop(guard);
    busy.stop()?;
    plain.k.stop()?;
    frozen.k.stop()?;
    Ok(())
}

#[test]
fn thaw_resumes() -> Res {
    let _s = serial();
    let _w = watchdog("thaw_resumes", WATCHDOG);
    let s = Server::start("k-thaw", true)?;
    let spin = spinner("k-thaw-spin")?;
    s.round_trip();
    freezer::freeze(FREEZE)?.keep();
    let _thaw = ThawOnDrop;
    wait_frozen(s.k.task());
    s.request();
    assert!(
        !s.acks.wait_timeout(SHORT),
        "a frozen kthread served a request"
    );
    assert_eq!(s.state(), TaskState::Frozen, "a wake does not thaw");
    wait_frozen(spin.task());

    freezer::thaw()?;
    assert!(!freezer::freezing());
    s.acks.wait(); // the pending request is served after the thaw
    wait_briefly_until("spinner thawed", BRIEF, || {
        spin.task().state() != TaskState::Frozen
    });
    s.round_trip();
    s.k.stop()?;
    spin.stop()?;
    Ok(())
}

#[test]
fn unfrozen_thread_makes_freeze_fail_with_its_name_and_everything_thawed() -> Res {
    let _s = serial();
    let _w = watchdog(
        "unfrozen_thread_makes_freeze_fail_with_its_name_and_everything_thawed",
        WATCHDOG,
    );
    let good = Server::start("k-fz-good", true)?;
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Completion::new());
    let busy = {
        let (release, started) = (release.clone(), started.clone());
        // Freezable, but it never reaches a freeze point until released.
        Builder::new("k-fz-busy").freezable(true).run(move || {
            started.complete();
            let mut spins = 0u64;
            while !release.load(Ordering::Acquire) {
                spins = spins.wrapping_add(1);
                std::hint::spin_loop();
            }
            spins
        })?
    };
    // Releases the busy loop even if an assertion fails (or stop would hang).
    let _release = ReleaseOnDrop(release.clone());
    started.wait();
    good.round_trip();
    let _thaw = ThawOnDrop;
    let err = freezer::freeze(Duration::from_millis(100)).unwrap_err();
    let FreezeError::TimedOut(ref unfrozen) = err else {
        panic!("expected TimedOut, got {err:?}");
    };
    assert_eq!(unfrozen.len(), 1, "only the busy one failed: {unfrozen:?}");
    assert_eq!(unfrozen[0].name, "k-fz-busy");
    assert_eq!(unfrozen[0].tid, busy.task().tid());
    assert_eq!(err.tasks(), unfrozen.as_slice());
    assert_eq!(err.errno(), libc::EBUSY);
    assert!(err.to_string().contains("k-fz-busy"), "{err}");

    // Everything was thawed again: the good one serves requests.
    assert!(!freezer::freezing());
    good.round_trip();
    assert_ne!(good.state(), TaskState::Frozen);
    // And the system can be frozen again later.
    release.store(true, Ordering::Release);
    busy.stop()?;
    let guard = freezer::freeze(FREEZE)?;
    wait_frozen(good.k.task());
    drop(guard);
    good.k.stop()?;
    Ok(())
}

#[test]
fn frozen_in_freezable_should_stop_can_be_stopped() -> Res {
    let _s = serial();
    let _w = watchdog("frozen_in_freezable_should_stop_can_be_stopped", WATCHDOG);
    // Running its function, whose only freeze point is freezable_should_stop.
    let k = fss_spinner("k-fz-stop")?;
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    wait_frozen(k.task());
    let task = k.task().clone();
    assert_eq!(
        stop_within(k, Duration::from_secs(5))?,
        42,
        "stop takes it out of the refrigerator"
    );
    assert!(task.has_exited());
    assert!(freezer::freezing(), "a stop thaws nobody else");
    drop(guard);
    Ok(())
}

#[test]
fn frozen_in_interruptible_sleep_can_be_stopped() -> Res {
    let _s = serial();
    let _w = watchdog("frozen_in_interruptible_sleep_can_be_stopped", WATCHDOG);
    // The kernel's canonical freezable loop (and this crate's own example for
    // freezable_should_stop): freezing finds it asleep in schedule().
    let s = Server::start("k-fz-canon", true)?;
    s.round_trip();
    // Asleep in schedule(), not on its way to freezable_should_stop().
    s.wait_asleep();
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    wait_frozen(s.k.task());
    assert_eq!(stop_within(s.k, Duration::from_secs(2))?, 1);
    assert!(freezer::freezing(), "the stop thawed nothing else");
    drop(guard);
    Ok(())
}

#[test]
fn stop_of_kthread_frozen_before_its_function_runs_runs_it() -> Res {
    let _s = serial();
    let _w = watchdog(
        "stop_of_kthread_frozen_before_its_function_runs_runs_it",
        WATCHDOG,
    );
    let k = Builder::new("k-fz-prologue")
        .freezable(true)
        .create(|| (should_stop(), 7u32))?;
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    // Woken while the system is frozen: it freezes before its function.
    assert!(k.wake_up());
    wait_frozen(k.task());
    // Once woken, the function always runs, even when a stop follows (SPEC §3).
    assert_eq!(stop_within(k, Duration::from_secs(2))?, (true, 7));
    drop(guard);
    Ok(())
}

#[test]
fn woken_while_frozen_runs_only_after_thaw() -> Res {
    let _s = serial();
    let _w = watchdog("woken_while_frozen_runs_only_after_thaw", WATCHDOG);
    let started = Arc::new(Completion::new());
    let k = {
        let started = started.clone();
        Builder::new("k-fz-late").freezable(true).create(move || {
            started.complete();
        })?
    };
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    assert!(k.wake_up());
    assert!(
        !started.wait_timeout(SHORT),
        "a freezable kthread first woken while frozen ran its function"
    );
    drop(guard);
    started.wait();
    k.stop()?;
    Ok(())
}

#[test]
fn freeze_twice_is_error() -> Res {
    let _s = serial();
    let _w = watchdog("freeze_twice_is_error", WATCHDOG);
    let s = Server::start("k-fz-twice", true)?;
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    let err = freezer::freeze(FREEZE).unwrap_err();
    assert!(matches!(err, FreezeError::AlreadyFrozen), "{err:?}");
    assert_eq!(err.errno(), libc::EBUSY);
    assert!(err.tasks().is_empty());
    // The refused freeze thawed nothing.
    assert!(freezer::freezing());
    wait_frozen(s.k.task());
    drop(guard);
    assert!(!freezer::freezing());
    s.round_trip();
    s.k.stop()?;
    Ok(())
}

#[test]
fn thaw_when_not_frozen_is_error() -> Res {
    let _s = serial();
    let _w = watchdog("thaw_when_not_frozen_is_error", WATCHDOG);
    let e = freezer::thaw().unwrap_err();
    assert!(matches!(e, FreezeError::NotFrozen), "{e:?}");
    assert_eq!(e.errno(), libc::EINVAL);
    freezer::freeze(FREEZE)?.keep();
    freezer::thaw()?;
    assert!(
        matches!(freezer::thaw(), Err(FreezeError::NotFrozen)),
        "second thaw"
    );
    Ok(())
}

#[test]
fn fork_while_frozen() -> Res {
    let _s = serial();
    let _w = watchdog("fork_while_frozen", WATCHDOG);
    let s = Server::start("k-fork", true)?;
    let spin = spinner("k-fork-spin")?;
    s.round_trip();
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let guard = freezer::freeze(FREEZE)?;
    let _thaw = ThawOnDrop;
    wait_frozen(s.k.task());
    wait_frozen(spin.task());

    // SAFETY: the child runs only async-signal-safe calls (write, _exit).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: async-signal-safe calls on descriptors this process owns;
        // _exit never returns and runs no destructors or atexit handlers.
        unsafe {
            libc::write(fds[1], b"k".as_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(fds[1]) };
    let mut byte = [0u8; 1];
    // SAFETY: `byte` is a writable buffer of the length passed.
    let n = unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) };
    // SAFETY: closing the read end, which we own.
    unsafe { libc::close(fds[0]) };
    assert_eq!((n, byte[0]), (1, b'k'), "the child ran");
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is writable.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status:#x}"
    );

    assert_eq!(s.state(), TaskState::Frozen, "still frozen across the fork");
    drop(guard);
    s.round_trip();
    s.k.stop()?;
    spin.stop()?;
    Ok(())
}

/// A freeze inside the interruptible sleep of the kernel's loop is reported
/// as `was_frozen` by the next `kthread_freezable_should_stop`, as in the
/// kernel (where the sleep is interrupted and the thread freezes there).
#[test]
fn freeze_in_interruptible_sleep_is_reported_as_was_frozen() -> Res {
    let _g = serial();
    let _w = watchdog("freeze_in_interruptible_sleep_is_reported", WATCHDOG);
    let asleep = Arc::new(Completion::new());
    let a = asleep.clone();
    let k = Builder::new("k-wasfrozen").freezable(true).run(move || {
        let mut reported = 0u32;
        loop {
            let (stop, was_frozen) = freezer::freezable_should_stop_frozen();
            reported += u32::from(was_frozen);
            if stop {
                return reported;
            }
            set_current_state(TaskState::Interruptible);
            if !should_stop() {
                a.complete();
                schedule();
            }
            set_current_state(TaskState::Running);
        }
    })?;
    let _thaw = ThawOnDrop;
    asleep.wait();
    let guard = freezer::freeze(FREEZE)?;
    assert_eq!(k.task().state(), TaskState::Frozen);
    drop(guard);
    // After the thaw the loop comes round once (reporting the freeze) and
    // sleeps again; then stop it.
    asleep.wait();
    assert_eq!(
        stop_within(k, BRIEF)?,
        1,
        "the freeze must be reported exactly once"
    );
    Ok(())
}

#[test]
fn freezable_worker_created_while_frozen_returns_and_runs_after_thaw() -> Res {
    let _s = serial();
    let _w = watchdog("freezable_worker_created_while_frozen", WATCHDOG);
    let guard = freezer::freeze(FREEZE)?;
    // The thread holding the freeze creates a freezable worker: this used
    // to wait for the new worker to go idle, which it never does while frozen.
    let w = kthread::Worker::builder("fz-born-frozen")
        .freezable(true)
        .create()?;
    let ran = Arc::new(AtomicBool::new(false));
    let item = {
        let ran = ran.clone();
        kthread::Work::new(move || ran.store(true, Ordering::SeqCst))
    };
    assert!(w.queue(&item));
    std::thread::sleep(SHORT); // negative check: must not run while frozen
    assert!(
        !ran.load(Ordering::SeqCst),
        "a freezable worker ran while frozen"
    );
    drop(guard);
    item.flush();
    assert!(ran.load(Ordering::SeqCst), "runs after the thaw");
    // The same through the plain kthread path (it never waited).
    let guard = freezer::freeze(FREEZE)?;
    let k = kthread::Builder::new("fz-plain")
        .freezable(true)
        .run(|| 5)?;
    drop(guard);
    assert_eq!(k.stop()?, 5);
    Ok(())
}

#[test]
fn an_old_guard_does_not_thaw_a_later_freeze() -> Res {
    let _s = serial();
    let _w = watchdog("an_old_guard_does_not_thaw_a_later_freeze", WATCHDOG);
    let _t = ThawOnDrop;
    let old = freezer::freeze(FREEZE)?;
    freezer::thaw()?; // someone else thaws ...
    let new = freezer::freeze(FREEZE)?; // ... and freezes again
    drop(old);
    assert!(
        freezer::freezing(),
        "the old guard thawed someone else's freeze"
    );
    drop(new);
    assert!(!freezer::freezing(), "its own guard thaws it");
    Ok(())
}

#[test]
fn thaw_waits_for_a_pending_freeze_and_freezes_never_overlap() -> Res {
    let _s = serial();
    let _w = watchdog("thaw_waits_for_a_pending_freeze", WATCHDOG);
    let _t = ThawOnDrop;
    // A freezable kthread that reaches its freeze point only when released.
    let started = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let k = {
        let (started, go) = (started.clone(), go.clone());
        kthread::Builder::new("fz-late")
            .freezable(true)
            .run(move || {
                started.store(true, Ordering::SeqCst);
                while !go.load(Ordering::SeqCst) {
                    std::hint::spin_loop(); // busy: no freeze point until released
                }
                while !kthread::freezable_should_stop() {
                    kthread::set_current_state(TaskState::Interruptible);
                    if !kthread::should_stop() {
                        kthread::schedule();
                    }
                    kthread::set_current_state(TaskState::Running);
                }
            })?
    };
    // Declared after the kthread: released first if an assertion fails, so
    // the kthread's drop (a stop) does not wait for a spin that never ends.
    let _release = ReleaseOnDrop(go.clone());
    // Past its start-of-function freeze point before the freeze begins.
    wait_briefly_until("the kthread spins", BRIEF, || {
        started.load(Ordering::SeqCst)
    });
    let froze = Arc::new(Mutex::new(None));
    let thawed = Arc::new(Mutex::new(None));
    let freezer_thread = {
        let froze = froze.clone();
        std::thread::spawn(move || {
            let r = freezer::freeze(FREEZE).map(freezer::FreezeGuard::keep);
            *froze.lock().unwrap() = Some(r.is_ok());
        })
    };
    wait_briefly_until("the freeze is pending", BRIEF, freezer::freezing);
    let thawer = {
        let thawed = thawed.clone();
        std::thread::spawn(move || {
            let r = freezer::thaw();
            *thawed.lock().unwrap() = Some(r.is_ok());
        })
    };
    std::thread::sleep(SHORT); // negative check: neither may return yet
    let early = (*froze.lock().unwrap(), *thawed.lock().unwrap());
    assert_eq!(
        early,
        (None, None),
        "(freeze, thaw) returned while the freeze was pending"
    );
    go.store(true, Ordering::SeqCst);
    freezer_thread.join().unwrap();
    thawer.join().unwrap();
    assert_eq!(
        *froze.lock().unwrap(),
        Some(true),
        "the pending freeze completed"
    );
    assert_eq!(
        *thawed.lock().unwrap(),
        Some(true),
        "then the thaw ended it"
    );
    assert!(!freezer::freezing());
    k.stop()?;
    Ok(())
}
