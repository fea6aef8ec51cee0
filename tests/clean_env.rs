//! A kthread's environment is clean whatever thread creates it (SPEC §2).
//!
//! Its own binary, with one test: kthreadd must be started lazily here, from
//! a thread whose environment was changed, and the signal storm changes the
//! signal masks of the process's threads.

mod common;

use common::{
    affinity_of, gettid, set_affinity_of, set_own_affinity, wait_briefly_until, watchdog, WATCHDOG,
};
use kthread::{should_stop, Completion};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// `MPOL_PREFERRED` from `<linux/mempolicy.h>`.
const MPOL_PREFERRED: libc::c_long = 1;

/// SIGUSR1 handler runs, and how many of them ran on a kthread or kthreadd.
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static ON_KTHREADS: AtomicUsize = AtomicUsize::new(0);
static LAST_HANDLER_TID: AtomicI32 = AtomicI32::new(0);
static KTHREAD_TID: AtomicI32 = AtomicI32::new(-1);
static KTHREADD_TID: AtomicI32 = AtomicI32::new(-1);
/// Set by the SIGUSR2 handler once it has blocked SIGUSR1 for its thread.
static MASKED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigusr1(_sig: libc::c_int) {
    // Only async-signal-safe work: a syscall and lock-free atomics.
    let tid = gettid();
    HANDLED.fetch_add(1, Ordering::SeqCst);
    LAST_HANDLER_TID.store(tid, Ordering::SeqCst);
    if tid == KTHREAD_TID.load(Ordering::SeqCst) || tid == KTHREADD_TID.load(Ordering::SeqCst) {
        ON_KTHREADS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Blocks SIGUSR1 in the thread it runs on, by editing the mask that
/// `rt_sigreturn` restores: the only way to change another thread's mask
/// (here: the test harness's main thread, which we do not control).
extern "C" fn on_sigusr2(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t for the
    // interrupted context; sigaddset is async-signal-safe and writes only
    // inside the sigset_t it is given.
    unsafe { libc::sigaddset(&mut (*uc).uc_sigmask, libc::SIGUSR1) };
    MASKED.store(true, Ordering::SeqCst);
}

fn install(sig: libc::c_int, handler: usize, flags: libc::c_int) {
    // SAFETY: an all-zero sigaction is a valid starting point; every field
    // the kernel reads is set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags | libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t owned by `sa`.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is fully initialised; the handler is an extern "C" fn of
    // the signature `flags` announces and does only async-signal-safe work.
    let r = unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    assert_eq!(r, 0, "sigaction: {}", std::io::Error::last_os_error());
}

/// Blocks (`how = SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) `sig` in the calling thread.
fn mask_own(how: libc::c_int, sig: libc::c_int) {
    // SAFETY: the set is initialised by sigemptyset/sigaddset before use;
    // the old mask is not requested.
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    assert_eq!(r, 0, "pthread_sigmask");
}

/// Signals the environment test checks for "blocked".
fn async_signals() -> Vec<libc::c_int> {
    let mut sigs = vec![
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGALRM,
        libc::SIGCHLD,
        libc::SIGPIPE,
        libc::SIGWINCH,
    ];
    sigs.push(libc::SIGRTMIN());
    sigs.push(libc::SIGRTMAX());
    sigs
}

/// What a thread sees of its own environment.
#[derive(Debug, Clone, PartialEq)]
struct Env {
    nice: i32,
    policy: libc::c_int,
    affinity: Vec<usize>,
    /// (signal, blocked?) for each of `async_signals()`.
    blocked: Vec<(libc::c_int, bool)>,
    /// `get_mempolicy` mode, `None` on a kernel without NUMA support.
    mempolicy: Option<libc::c_int>,
}

fn own_env() -> Env {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getpriority takes plain integers; 0 means the calling thread.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    // SAFETY: as above; errno tells -1 (a valid nice) from a failure.
    assert!(nice != -1 || unsafe { *libc::__errno_location() } == 0);
    // SAFETY: sched_getscheduler takes a thread id (0 = caller), returns a number.
    let policy = unsafe { libc::sched_getscheduler(0) };
    assert!(policy >= 0);
    // SAFETY: with a NULL new set, pthread_sigmask only writes `cur`.
    let cur = unsafe {
        let mut cur: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur),
            0
        );
        cur
    };
    let blocked = async_signals()
        .into_iter()
        // SAFETY: `cur` is an initialised sigset_t; sigismember only reads it.
        .map(|s| (s, unsafe { libc::sigismember(&cur, s) } == 1))
        .collect();
    let mut mode: libc::c_int = -1;
    // SAFETY: get_mempolicy writes only `mode`; a NULL nodemask with
    // maxnode 0, a NULL address and flags 0 ask for the thread's policy.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    let mempolicy = if r == 0 {
        Some(mode)
    } else {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "get_mempolicy: {e}");
        None
    };
    Env {
        nice,
        policy,
        affinity: affinity_of(0),
        blocked,
        mempolicy,
    }
}

/// Sets nice 10, SCHED_BATCH, affinity {cpu} and (when the kernel has NUMA)
/// a preferred-node memory policy on the calling thread.
fn dirty_own_env(cpu: usize) {
    // SAFETY: setpriority takes plain integers; Linux keeps nice per thread.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, gettid() as libc::id_t, 10) };
    assert_eq!(r, 0, "setpriority: {}", std::io::Error::last_os_error());
    set_own_affinity(&[cpu]);
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    assert_eq!(
        r,
        0,
        "sched_setscheduler: {}",
        std::io::Error::last_os_error()
    );
    let mask: [libc::c_ulong; 2] = [1, 0]; // node 0
                                           // SAFETY: `mask` holds 128 bits, more than the 65 - 1 the kernel reads.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_PREFERRED,
            mask.as_ptr(),
            65 as libc::c_ulong,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "set_mempolicy: {e}");
    }
}

/// Signal `sig` is in the hex mask `field` (`SigBlk`, `ShdPnd`, ...) of
/// `/proc/self/task/TID/status`.
fn proc_sig_bit(tid: libc::pid_t, field: &str, sig: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in status"))
        .trim();
    let bits = u64::from_str_radix(hex, 16).unwrap();
    bits & (1u64 << (sig - 1)) != 0
}

/// 100 process-directed SIGUSR1 spread over about 50 ms (pacing, not
/// synchronisation: the kthread spins through all of it).
fn storm(pid: libc::pid_t) {
    let pace = Completion::new(); // never completed
    for _ in 0..100 {
        // SAFETY: kill with our own pid and a valid signal; a handler is
        // installed, so SIGUSR1 does not terminate the process.
        let r = unsafe { libc::kill(pid, libc::SIGUSR1) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
        pace.wait_timeout(std::time::Duration::from_micros(500));
    }
}

fn other_policy_of(tid: libc::pid_t) -> libc::c_int {
    // SAFETY: sched_getscheduler takes a thread id and returns a number.
    unsafe { libc::sched_getscheduler(tid) }
}

fn nice_of(tid: libc::pid_t) -> i32 {
    // SAFETY: getpriority takes plain integers; no thread here has nice -1.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
}

fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The checks on a kthread's reported environment.
fn assert_clean(what: &str, env: &Env, allowed: &[usize], notes: &[String]) {
    if is_root() {
        assert_eq!(env.nice, 0, "{what}: nice reset to 0");
        assert!(
            notes.is_empty(),
            "{what}: nothing left to report: {notes:?}"
        );
    } else {
        // Lowering a raised nice needs CAP_SYS_NICE: then it must say so.
        assert!(
            env.nice == 0 || notes.iter().any(|n| n.contains("nice")),
            "{what}: nice {} neither reset nor reported: {notes:?}",
            env.nice
        );
    }
    assert_eq!(env.policy, libc::SCHED_OTHER, "{what}: SCHED_OTHER");
    assert_eq!(env.affinity, allowed, "{what}: every allowed CPU");
    for &(sig, blocked) in &env.blocked {
        assert!(blocked, "{what}: signal {sig} not blocked");
    }
    if let Some(mode) = env.mempolicy {
        assert_eq!(mode, 0, "{what}: MPOL_DEFAULT");
    }
}

#[test]
fn clean_environment_is_not_inherited() {
    // Before anything changes: the process's CPUs, and no kthreadd yet.
    let mine = affinity_of(0);
    let allowed = common::allowed_cpus();
    assert!(
        mine.iter().all(|c| allowed.contains(c)),
        "the test thread's CPUs {mine:?} are within the allowed {allowed:?}"
    );
    assert!(
        kthread::list().iter().all(|r| !r.flags.kthreadd),
        "kthreadd must start lazily in this binary"
    );
    // This thread never takes SIGUSR1; threads it spawns inherit that.
    mask_own(libc::SIG_BLOCK, libc::SIGUSR1);
    let _w = watchdog("clean_environment_is_not_inherited", WATCHDOG);

    let cpu = mine[0];
    let ready = Arc::new(Completion::new());
    let phase_a_done = Arc::new(Completion::new());
    let (tx, rx) = mpsc::channel();
    let creator = {
        let (ready, phase_a_done) = (ready.clone(), phase_a_done.clone());
        std::thread::Builder::new()
            .name("dirty-creator".into())
            .spawn(move || {
                dirty_own_env(cpu);
                install(libc::SIGUSR1, on_sigusr1 as *const () as usize, 0);
                mask_own(libc::SIG_UNBLOCK, libc::SIGUSR1);
                let mine = own_env();
                // The creator's environment really is dirty.
                assert_eq!(mine.nice, 10);
                assert_eq!(mine.policy, libc::SCHED_BATCH);
                assert_eq!(mine.affinity, vec![cpu]);
                assert!(mine.blocked.iter().all(|&(_, b)| !b), "{mine:?}");
                if let Some(mode) = mine.mempolicy {
                    assert_eq!(mode, MPOL_PREFERRED as libc::c_int);
                }
                let k = kthread::run("k-clean", move || {
                    let env = own_env();
                    KTHREAD_TID.store(gettid(), Ordering::SeqCst);
                    ready.complete();
                    // Spin, running, through the signal storm.
                    let mut spins = 0u64;
                    while !should_stop() {
                        spins = spins.wrapping_add(1);
                        std::hint::spin_loop();
                    }
                    (env, spins)
                })
                .expect("create from a dirty thread");
                tx.send(k).unwrap();
                // Stay alive, SIGUSR1 unblocked, during phase A.
                phase_a_done.wait();
            })
            .unwrap()
    };
    let k = rx.recv().unwrap();
    ready.wait();
    let kthreadd = kthread::list()
        .into_iter()
        .find(|r| r.flags.kthreadd)
        .expect("kthreadd started by the creator");
    KTHREADD_TID.store(kthreadd.tid, Ordering::SeqCst);

    // kthreadd itself, born from the dirty creator, was cleaned up.
    assert_eq!(
        other_policy_of(kthreadd.tid),
        libc::SCHED_OTHER,
        "kthreadd policy"
    );
    assert_eq!(kthreadd.allowed_cpus, allowed, "kthreadd affinity");
    if is_root() {
        assert_eq!(nice_of(kthreadd.tid), 0, "kthreadd nice");
        assert!(kthreadd.env_notes.is_empty(), "{:?}", kthreadd.env_notes);
    }
    for sig in [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        assert!(
            proc_sig_bit(kthreadd.tid, "SigBlk", sig),
            "kthreadd blocks {sig}"
        );
    }

    // Signal storm, phase A: the creator and the harness's main thread may
    // take SIGUSR1; the running kthread must never.
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { libc::getpid() };
    storm(pid);
    phase_a_done.complete();
    creator.join().unwrap();
    assert_eq!(
        ON_KTHREADS.load(Ordering::SeqCst),
        0,
        "handler ran on a kthread"
    );

    // Phase B: block SIGUSR1 in the harness's main thread too (its tid is
    // the pid). Now no thread but kthreadd and the kthread could take it: a
    // leaked mask would show at once, a clean one leaves it pending.
    install(
        libc::SIGUSR2,
        on_sigusr2 as *const () as usize,
        libc::SA_SIGINFO,
    );
    // SAFETY: tgkill with this process's pid, its main thread's tid and a
    // valid signal whose handler is installed.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGUSR2) };
    assert_eq!(r, 0);
    wait_briefly_until(
        "main thread masked SIGUSR1",
        std::time::Duration::from_secs(5),
        || MASKED.load(Ordering::SeqCst) && proc_sig_bit(pid, "SigBlk", libc::SIGUSR1),
    );
    // Any signal from phase A still in flight has landed by now or stays pending.
    let handled_before_b = HANDLED.load(Ordering::SeqCst);
    storm(pid);
    assert!(
        proc_sig_bit(pid, "ShdPnd", libc::SIGUSR1),
        "SIGUSR1 must stay pending: only kthreads were left to take it"
    );
    assert_eq!(HANDLED.load(Ordering::SeqCst), handled_before_b);
    let (env, spins) = k.stop().expect("kthread returns its report");
    assert!(spins > 0, "the kthread was running during the storm");
    assert_eq!(
        ON_KTHREADS.load(Ordering::SeqCst),
        0,
        "handler ran on a kthread"
    );
    // Take the pending one here, proving the storm was real.
    mask_own(libc::SIG_UNBLOCK, libc::SIGUSR1);
    assert!(HANDLED.load(Ordering::SeqCst) > handled_before_b);
    assert_eq!(LAST_HANDLER_TID.load(Ordering::SeqCst), gettid());
    mask_own(libc::SIG_BLOCK, libc::SIGUSR1);

    // The kthread's environment is clean, not the creator's.
    assert_clean("k-clean", &env, &allowed, &[]);

    // Reset again at creation even though kthreadd's own policy, nice and
    // affinity were changed behind its back (as in the kernel).
    let kd = kthreadd.tid;
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param; kd is a live thread of ours.
    let r = unsafe { libc::sched_setscheduler(kd, libc::SCHED_BATCH, &param) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: setpriority takes plain integers.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, kd as libc::id_t, 5) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    set_affinity_of(kd, &[cpu]);
    assert_eq!(affinity_of(kd), vec![cpu]);
    assert_eq!(other_policy_of(kd), libc::SCHED_BATCH);
    let k2 = kthread::create("k-clean-again", own_env).unwrap();
    let tid2 = k2.task().tid();
    let notes = kthread::list()
        .into_iter()
        .find(|r| r.tid == tid2)
        .expect("a created kthread is listed")
        .env_notes;
    k2.wake_up();
    let env2 = k2.stop().unwrap();
    assert_clean("k-clean-again", &env2, &allowed, &notes);
}
