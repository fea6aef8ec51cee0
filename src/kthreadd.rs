//! kthreadd: the process-wide spawner that gives every kthread a clean environment.
//!
//! Mirrors `kthreadd()` and `create_kthread()`. Every kthread's OS thread
//! is cloned by kthreadd, so it inherits kthreadd's environment (every
//! signal blocked) and resets the rest itself (policy, nice, affinity,
//! memory policy) before it is used: the kernel's clean start.
//!
//! kthreadd clones ahead of demand: it keeps a few such threads, the
//! *spares*, asleep ([`set_cache`], [`DEFAULT_CACHE`]). A create takes one,
//! finishes the kernel's "reset-after-create" (`kthread_create_on_node`:
//! affinity, policy) from outside, and opens the spare's gate with the
//! kthread's body: one wake, no clone and no answer on the creator's path,
//! while kthreadd refills in the background. Each spare runs one body and
//! ends with it: a kthread is always a fresh thread. A create the cache
//! cannot serve (another stack size, or the cache empty) waits for
//! kthreadd to clone a thread for it, which also makes the refills that
//! size. design.md, "The spare cache", has the protocol and the wakes.
//!
//! kthreadd starts on first use, or explicitly with [`start`] first thing in
//! `main`, so that it is born from a clean thread as the kernel's is at boot.

pub(crate) mod cache;

use crate::completion::Completion;
use crate::error::{drop_catching, fatal, Error};
use crate::sync::{lock, lock_static, Arc, Mutex, OnceLock, Ordering, StaticMutex};
use crate::sys::fork::PerProcess;
use crate::sys::{self, mempolicy, sched, sched::CpuSet, signal, thread::RawThread, topology};
use crate::task::{self, flags, list, policy, Task, TaskInit};
use cache::{Cache, Gate, Spare, Take};
use std::ffi::CString;
use std::io;

pub use cache::CacheStats;

/// The stack size of a kthread unless its builder says otherwise
/// ([`crate::DEFAULT_STACK_SIZE`]); the spare cache starts with it.
pub(crate) const DEFAULT_STACK_SIZE: usize = 2 << 20;

/// How many spare threads kthreadd keeps by default ([`set_cache`]).
///
/// Eight covers a burst of creates while kthreadd refills in the
/// background (it is woken when half are taken); each spare costs a
/// sleeping thread (about 10 KiB resident, its stack reserved but
/// untouched), an open `/proc/thread-self/comm`, and no CPU. Measured on
/// 2 vCPUs: creating 10,000 kthreads took 1.28–1.71× std's time with 8,
/// 1.38–2.72× with 4 (BENCHMARKS.md); a create + wake + stop loop is the
/// same with either.
pub const DEFAULT_CACHE: usize = 8;

/// The largest cache [`set_cache`] accepts.
pub const MAX_CACHE: usize = 64;

/// The cache size asked for, kept across kthreadd's start (and inherited
/// by a `fork()` child, whose kthreadd starts with it). A setting read
/// under no protocol, so std's atomic even under loom (a static needs a
/// `const` constructor).
static CACHE_TARGET: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(DEFAULT_CACHE);

/// The answer of a thread that finishes its own set-up (kthreadd at its
/// start; a kthread with a NUMA node or interruption): one wake.
pub(crate) struct Reply {
    done: Completion,
    error: Mutex<Option<Error>>,
}

impl Reply {
    pub(crate) fn new() -> Arc<Reply> {
        Arc::new(Reply {
            done: Completion::new(),
            error: Mutex::new(None),
        })
    }

    /// The thread's answer: ready to be woken, or failed (it then exits).
    pub(crate) fn answer(&self, result: Result<(), Error>) {
        if let Err(e) = result {
            *lock(&self.error) = Some(e);
        }
        self.done.complete();
    }

    /// The creator's side: the thread's answer.
    fn wait(&self) -> Result<(), Error> {
        self.done.wait();
        lock(&self.error).take().map_or(Ok(()), Err)
    }
}

struct Kthreadd {
    task: Task,
    /// Spares and the creators waiting for one (design.md, "The spare cache").
    cache: Mutex<Cache>,
}

/// kthreadd of this process, and the lock that serialises its start.
struct Spawner {
    kthreadd: OnceLock<Arc<Kthreadd>>,
    start: StaticMutex<()>,
}

/// Per process: a `fork()` child starts its own kthreadd (and cache) on
/// first use: the parent's threads, spares among them, do not exist there,
/// and its locks may have been held by a thread that does not either.
static SPAWNER: PerProcess<Spawner> = PerProcess::new(|| Spawner {
    kthreadd: OnceLock::new(),
    start: StaticMutex::new(()),
});

/// Starts kthreadd if it is not running yet and returns its task.
///
/// Call it first thing in `main` so kthreadd (and so every kthread) is born
/// from a thread whose environment nobody has changed yet; otherwise it
/// starts on the first `create`.
///
/// ```
/// let kthreadd = kthread::kthreadd::start()?;
/// assert_eq!(kthreadd.name(), "kthreadd");
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn start() -> Result<Task, Error> {
    get().map(|k| k.task.clone())
}

fn get() -> Result<&'static Arc<Kthreadd>, Error> {
    let spawner = SPAWNER.get();
    if let Some(k) = spawner.kthreadd.get() {
        return Ok(k);
    }
    let _g = lock_static(&spawner.start);
    if let Some(k) = spawner.kthreadd.get() {
        return Ok(k);
    }
    let task = Task::new(TaskInit {
        name: "kthreadd".into(),
        start: Default::default(),
        flags: flags::KTHREADD | flags::WOKEN,
        node: None,
        cpu: None,
        data: None,
    });
    let k = Arc::new(Kthreadd {
        task,
        cache: Mutex::new(Cache::new(
            CACHE_TARGET.load(Ordering::Relaxed),
            DEFAULT_STACK_SIZE,
        )),
    });
    // The process's start affinity is read now at the latest (the main
    // thread's, before anyone's later changes).
    let _ = topology::start_affinity();
    let reply = Reply::new();
    let (kd, r) = (k.clone(), reply.clone());
    // Block every signal around the clone so kthreadd is never, not even for
    // one instruction, a candidate for a process-directed signal.
    let saved = signal::block_all()?;
    let spawned = sys::thread::spawn(256 * 1024, Box::new(move || kthreadd_main(kd, r)));
    signal::restore(&saved)?;
    spawned?.detach()?;
    reply.wait()?;
    let _ = spawner.kthreadd.set(k);
    Ok(spawner.kthreadd.get().expect("just set"))
}

/// Resets the calling thread to the clean environment of SPEC §2 (signals
/// blocked, normal policy, nice 0, `affinity`, default memory policy);
/// what fails only to lose cleanliness goes to `note`, the rest is an error.
///
/// kthreadd does this once, when it starts; the threads it clones inherit
/// all of it. Of these, only the scheduling attributes can be changed from
/// outside afterwards (`renice`, `chrt`, `taskset -p` on kthreadd's tid):
/// the signal mask and the memory policy are set only by the thread itself.
/// So before each batch of clones kthreadd redoes just those
/// ([`reset_sched`]), as the kernel's "root may have changed our
/// (kthreadd's) priority or CPU mask" reset does.
fn reset_env(affinity: &CpuSet, note: &mut dyn FnMut(String)) -> Result<(), Error> {
    signal::block_all()?;
    reset_sched(affinity, note)?;
    mempolicy::set_default()?;
    Ok(())
}

/// The scheduling part of [`reset_env`]: normal policy, nice 0, `affinity`.
fn reset_sched(affinity: &CpuSet, note: &mut dyn FnMut(String)) -> Result<(), Error> {
    if let Err(e) = sched::set_policy_normal(0) {
        note(format!("scheduling policy not reset: {e}"));
    }
    match sched::nice(0) {
        Ok(0) => {}
        Ok(n) => {
            if let Err(e) = sched::set_nice(0, 0) {
                note(format!("nice {n} not reset to 0 ({e}; needs CAP_SYS_NICE)"));
            }
        }
        Err(e) => note(format!("nice value unreadable: {e}")),
    }
    sched::set_affinity(0, affinity)?;
    Ok(())
}

/// `name` cut to the 15 bytes of an OS thread name.
fn os_name(name: &str) -> Result<CString, Error> {
    CString::new(cut_name(name)).map_err(|_| Error::InvalidName)
}

/// Sets the calling thread's OS name to `name` cut to 15 bytes.
fn name_self(name: &str) -> Result<(), Error> {
    Ok(sys::thread::set_name(&os_name(name)?)?)
}

/// The part of a kthread's set-up only the thread itself can do, for the
/// kthreads that need it: its NUMA node's memory policy, and the
/// interruption hooks are installed by the caller (layer above).
pub(crate) fn prefer_own_node(t: &Task) -> Result<(), Error> {
    match t.node() {
        Some(node) => Ok(mempolicy::prefer_node(node, sys::thread::stack_range()?)?),
        None => Ok(()),
    }
}

pub(crate) use crate::task::cut_name;

fn kthreadd_main(k: Arc<Kthreadd>, reply: Arc<Reply>) {
    let me = &k.task;
    task::set_current(me);
    let start = topology::start_affinity().unwrap_or_else(CpuSet::all);
    let env = reset_env(&start, &mut |n| me.note(n)).and_then(|()| {
        me.set_tid(sched::gettid());
        name_self("kthreadd")
    });
    let ok = env.is_ok();
    if ok {
        list::add(me);
    }
    reply.answer(env);
    if !ok {
        return;
    }
    loop {
        task::set_current_state(task::TaskState::Interruptible);
        let (plan, settled) = lock(&k.cache).plan();
        settled.iter().for_each(|c| c.complete());
        if plan.is_empty() {
            task::schedule();
            continue;
        }
        task::set_current_state(task::TaskState::Running);
        // The spares inherit kthreadd's environment: what may have been
        // changed from outside since the last batch is reset first.
        let mut notes = Vec::new();
        let env = reset_sched(&start, &mut |n| notes.push(n));
        for stack_size in plan {
            match &env {
                Ok(()) => clone_spare(&k, stack_size, &notes),
                // Each waiter gets the errno (an `Error` is not `Clone`).
                Err(e) => fail_clone(
                    &k,
                    stack_size,
                    Error::Os(io::Error::from_raw_os_error(e.errno())),
                ),
            }
        }
    }
}

/// Clones one spare; it registers itself. A failure goes to the first
/// creator waiting for that stack size.
fn clone_spare(k: &Arc<Kthreadd>, stack_size: usize, notes: &[String]) {
    let (kd, notes) = (k.clone(), notes.to_vec());
    match sys::thread::spawn(
        stack_size,
        Box::new(move || spare_main(kd, stack_size, notes)),
    ) {
        // The spare hands out its own id when it registers.
        Ok(_id) => {}
        Err(e) => fail_clone(k, stack_size, Error::Os(e)),
    }
}

/// A spare of `stack_size` that could not be made: the first creator
/// waiting for that size gets `e`.
fn fail_clone(k: &Kthreadd, stack_size: usize, e: Error) {
    let (waiter, settled) = lock(&k.cache).clone_failed(stack_size);
    if let Some(w) = waiter {
        w.give(Err(e));
    }
    settled.iter().for_each(|c| c.complete());
}

/// A spare's life: born in kthreadd's clean environment (`notes`: what
/// kthreadd could not reset in it), into the cache (or straight to a
/// waiting creator), then one body or none.
fn spare_main(k: Arc<Kthreadd>, stack_size: usize, notes: Vec<String>) {
    let born = name_self("kthreadd/spare");
    let gate = Gate::new();
    let me = Spare {
        // SAFETY: spawned joinable by `clone_spare`, which keeps no id of
        // it; this is the only `RawThread` of it, and whoever takes the
        // spare joins it, or it detaches itself below.
        thread: unsafe { RawThread::current() },
        tid: sched::gettid(),
        stack_size,
        gate: gate.clone(),
        notes,
        // Without it the creator names the thread the slow way.
        comm: sys::thread::NameFile::open_own().ok(),
    };
    let (next, settled) = lock(&k.cache).register(me, born);
    settled.iter().for_each(|c| c.complete());
    drop(k);
    let main = next.follow(&gate);
    match main {
        Some(main) => main(),
        // SAFETY: joinable (see above), and the `Spare` holding the only
        // other id was dropped unjoined: retired, or never handed out.
        None => unsafe { sys::thread::detach_self() }
            .unwrap_or_else(|e| fatal(&format!("pthread_detach: {e}"))),
    }
}

/// A spare of `stack_size`: from the cache, or cloned for this create;
/// with whether kthreadd should be woken to refill once the caller is done.
fn take_spare(k: &Kthreadd, stack_size: usize) -> Result<(Spare, bool), Error> {
    let taken = lock(&k.cache).take(stack_size);
    match taken {
        Take::Hit { spare, refill } => Ok((spare, refill)),
        Take::Wait(w) => {
            k.task.wake_up();
            Ok((w.wait()?, false))
        }
    }
}

/// The kthread's thread body: `None` when the creator did the whole
/// set-up, `Some(reply)` when the thread finishes it and answers.
pub(crate) type Body = Box<dyn FnOnce(Option<Arc<Reply>>) + Send>;

/// Makes the OS thread of `t` (set up, sleeping until its first wake) with
/// `affinity` and `stack_size`, and returns it.
///
/// A spare from the cache (or one kthreadd clones now, if none of the size
/// waits) gets its tid, affinity, nice value and policy set from here, so
/// an error comes back at once; then `body` runs on it. Only a kthread with
/// a NUMA node or interruption (`self_setup`) finishes its set-up itself,
/// and this waits for its answer. On error nothing is left behind and
/// `body` (with the user's closure) was dropped once.
pub(crate) fn create(
    t: &Task,
    affinity: &CpuSet,
    stack_size: usize,
    self_setup: bool,
    body: Body,
) -> Result<RawThread, Error> {
    let (k, (mut spare, refill)) = match get().and_then(|k| Ok((k, take_spare(k, stack_size)?))) {
        Ok(got) => got,
        Err(e) => {
            drop_catching(body);
            return Err(e);
        }
    };
    // kthreadd refills once this create is on its way (its wake is not on
    // the path of the spare's), and after the set-up from outside below,
    // whose calls a fault-injection test counts on being the next ones.
    let _refill = Refill(refill.then_some(k));
    t.set_tid(spare.tid);
    for n in &spare.notes {
        t.note(n.clone());
    }
    if let Err(e) = set_up_from_outside(t, affinity, &mut spare) {
        // Maybe with a policy half applied: it ends rather than serve, and
        // is joined, so nothing is left when the error returns.
        drop_catching(body);
        spare.gate.assign(Box::new(|| ()));
        spare.thread.join()?;
        return Err(e);
    }
    if !self_setup {
        // The spare sleeps on, now in the task's first sleep: the task's
        // first wake is the one that starts it. Listed only after, so no
        // wake can come between (`adopt_sleeper`).
        spare.gate.hand_over(Box::new(move || body(None)), t);
        list::add(t);
        return Ok(spare.thread);
    }
    let reply = Reply::new();
    let r = reply.clone();
    spare.gate.assign(Box::new(move || body(Some(r))));
    if let Err(e) = reply.wait() {
        spare.thread.join()?;
        return Err(e);
    }
    Ok(spare.thread)
}

/// Wakes kthreadd (if set) when dropped: at the end of a create, on
/// every path.
struct Refill(Option<&'static Arc<Kthreadd>>);

impl Drop for Refill {
    fn drop(&mut self) {
        if let Some(k) = self.0 {
            k.task.wake_up();
        }
    }
}

/// What the creator sets on the spare for `t`: the kernel's
/// reset-after-create (`kthread_create_on_node`: the affinity, then the
/// policy asked for), then its OS name, done from outside. The spare was born with
/// the start affinity, so only a bound kthread's is set here.
fn set_up_from_outside(t: &Task, affinity: &CpuSet, spare: &mut Spare) -> Result<(), Error> {
    let name = os_name(t.name())?;
    if t.cpu().is_some() {
        sched::set_affinity(spare.tid, affinity).map_err(|e| {
            match (e.raw_os_error(), t.cpu()) {
                (Some(libc::EINVAL), Some(cpu)) => Error::CpuNotAllowed(cpu),
                _ => Error::Os(e),
            }
        })?;
    }
    let start = t.inner().start();
    if let Some(n) = start.nice {
        policy::apply_nice(spare.tid, n)?;
    }
    if let Some(p) = start.policy {
        policy::apply_policy(spare.tid, p)?;
    }
    // Last: a spare that failed above never bore the kthread's name.
    match spare.comm.take() {
        Some(comm) => comm.set(&name)?,
        None => spare.thread.set_name(&name)?,
    }
    Ok(())
}

/// Sets how many spare threads kthreadd keeps waiting (0 turns the cache
/// off: every create then waits for kthreadd to clone its thread) and
/// returns the previous size. Spares beyond the new size end; this
/// returns once kthreadd has made the rest (or could not), with no spare
/// being born. The default is [`DEFAULT_CACHE`];
/// more than [`MAX_CACHE`] is [`Error::InvalidCacheSize`].
///
/// ```
/// let before = kthread::kthreadd::set_cache(0)?;
/// let k = kthread::run("cold", || 1)?; // cloned for this create
/// assert_eq!(k.stop()?, 1);
/// assert_eq!(kthread::kthreadd::cache_stats().spares, 0);
/// kthread::kthreadd::set_cache(before)?;
/// assert_eq!(kthread::kthreadd::cache_stats().spares, before); // refilled
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_cache(n: usize) -> Result<usize, Error> {
    if n > MAX_CACHE {
        return Err(Error::InvalidCacheSize(n));
    }
    let before = CACHE_TARGET.swap(n, Ordering::Relaxed);
    let Some(k) = SPAWNER.get().kthreadd.get() else {
        return Ok(before);
    };
    let (retired, settled) = {
        let mut c = lock(&k.cache);
        (c.set_target(n), c.settled())
    };
    for s in retired {
        s.gate.retire();
    }
    k.task.wake_up();
    settled.wait();
    Ok(before)
}

/// The spare cache's counters (all zero but the size before kthreadd
/// starts).
///
/// ```
/// kthread::kthreadd::start()?;
/// let s = kthread::kthreadd::cache_stats();
/// assert!(s.spares <= s.target);
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn cache_stats() -> CacheStats {
    match SPAWNER.get().kthreadd.get() {
        Some(k) => lock(&k.cache).stats(),
        None => CacheStats {
            target: CACHE_TARGET.load(Ordering::Relaxed),
            stack_size: DEFAULT_STACK_SIZE,
            ..CacheStats::default()
        },
    }
}

/// The thread ids of the waiting spares, for `ps`.
pub(crate) fn spare_tids() -> Vec<libc::pid_t> {
    SPAWNER
        .get()
        .kthreadd
        .get()
        .map_or_else(Vec::new, |k| lock(&k.cache).tids())
}
