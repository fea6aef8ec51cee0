//! kthreadd: the process-wide spawner that gives every kthread a clean environment.
//!
//! Mirrors `kthreadd()` and `create_kthread()`. Creating a kthread posts a
//! request to kthreadd's list and waits; kthreadd clones the OS thread, which
//! inherits kthreadd's environment (every signal blocked), then resets the
//! rest itself (policy, nice, affinity, memory policy; the kernel's
//! "reset-after-create" in `kthread_create_on_node`) before it answers.
//!
//! kthreadd starts on first use, or explicitly with [`start`] first thing in
//! `main`, so that it is born from a clean thread as the kernel's is at boot.

use crate::completion::Completion;
use crate::error::Error;
use crate::sync::{lock, lock_static, Arc, AtomicU32, Mutex, OnceLock, Ordering, StaticMutex};
use crate::sys::fork::PerProcess;
use crate::sys::{self, mempolicy, sched, sched::CpuSet, signal, thread::RawThread, topology};
use crate::task::{self, flags, list, policy, Task, TaskInit};
use std::ffi::CString;

/// What kthreadd and the new thread hand back to the creator.
pub(crate) struct Reply {
    /// Completed when both kthreadd (spawned or failed) and the new thread
    /// (environment set up or failed) have answered: one wake for the creator.
    done: Completion,
    answers_left: AtomicU32,
    thread: Mutex<Option<RawThread>>,
    error: Mutex<Option<Error>>,
}

impl Reply {
    pub(crate) fn new() -> Arc<Reply> {
        Arc::new(Reply {
            done: Completion::new(),
            answers_left: AtomicU32::new(2),
            thread: Mutex::new(None),
            error: Mutex::new(None),
        })
    }

    fn answer(&self, n: u32) {
        // AcqRel: the last answer sees the other party's slots (thread/error).
        if self.answers_left.fetch_sub(n, Ordering::AcqRel) == n {
            self.done.complete();
        }
    }

    /// The new thread's answer: ready to be woken, or failed (it then exits).
    pub(crate) fn thread_answer(&self, result: Result<(), Error>) {
        if let Err(e) = result {
            *lock(&self.error) = Some(e);
        }
        self.answer(1);
    }
}

type Main = Box<dyn FnOnce() + Send>;

struct Request {
    main: Main,
    stack_size: usize,
    reply: Arc<Reply>,
}

struct Kthreadd {
    task: Task,
    /// Requests not yet taken (kthreadd's `kthread_create_list`).
    requests: StaticMutex<Vec<Request>>,
}

/// kthreadd of this process, and the lock that serialises its start.
struct Spawner {
    kthreadd: OnceLock<Arc<Kthreadd>>,
    start: StaticMutex<()>,
}

/// Per process: a `fork()` child starts its own kthreadd on first use (the
/// parent's thread does not exist there, and its request list may have
/// been locked by a thread that does not either).
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
        requests: StaticMutex::new(Vec::new()),
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
    reply.answer(1);
    reply.done.wait();
    if let Some(e) = lock(&reply.error).take() {
        return Err(e);
    }
    let _ = spawner.kthreadd.set(k);
    Ok(spawner.kthreadd.get().expect("just set"))
}

/// Resets the calling thread to the clean environment of SPEC §2; failures
/// that only lose cleanliness are noted on the task, the rest are errors.
pub(crate) fn clean_env(t: &Task, affinity: &CpuSet, os_name: &str) -> Result<(), Error> {
    signal::block_all()?;
    let note = |n: String| t.note(n);
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
    sched::set_affinity(0, affinity).map_err(|e| match (e.raw_os_error(), t.cpu()) {
        (Some(libc::EINVAL), Some(cpu)) => Error::CpuNotAllowed(cpu),
        _ => Error::Os(e),
    })?;
    match t.node() {
        Some(node) => mempolicy::prefer_node(node, sys::thread::stack_range()?)?,
        None => mempolicy::set_default()?,
    }
    let start = t.inner().start();
    if let Some(n) = start.nice {
        policy::apply_nice(0, n)?;
    }
    if let Some(p) = start.policy {
        policy::apply_policy(0, p)?;
    }
    let os = cut_name(os_name);
    sys::thread::set_name(&CString::new(os).map_err(|_| Error::InvalidName)?)?;
    t.set_tid(sched::gettid());
    Ok(())
}

pub(crate) use crate::task::cut_name;

fn kthreadd_main(k: Arc<Kthreadd>, reply: Arc<Reply>) {
    let me = &k.task;
    task::set_current(me);
    let start = topology::start_affinity().unwrap_or_else(CpuSet::all);
    let env = clean_env(me, &start, "kthreadd");
    let ok = env.is_ok();
    if ok {
        list::add(me);
    }
    reply.thread_answer(env);
    if !ok {
        return;
    }
    loop {
        task::set_current_state(task::TaskState::Interruptible);
        let batch = std::mem::take(&mut *lock_static(&k.requests));
        if batch.is_empty() {
            task::schedule();
            continue;
        }
        task::set_current_state(task::TaskState::Running);
        for req in batch {
            spawn_one(req);
        }
    }
}

fn spawn_one(req: Request) {
    #[cfg(feature = "fault-injection")]
    if let Err(e) = sys::fault::check(sys::fault::Point::Spawn) {
        crate::error::drop_catching(req.main);
        *lock(&req.reply.error) = Some(Error::Os(e));
        req.reply.answer(2);
        return;
    }
    match sys::thread::spawn(req.stack_size, req.main) {
        Ok(t) => {
            *lock(&req.reply.thread) = Some(t);
            req.reply.answer(1);
        }
        Err(e) => {
            // The thread never ran, so it never answers: answer for both.
            *lock(&req.reply.error) = Some(Error::Os(e));
            req.reply.answer(2);
        }
    }
}

/// Hands `main` to kthreadd and waits until the new thread is set up.
///
/// On error, no thread is left behind: a thread that failed its setup is
/// joined here, and `main` (with the user's closure) was dropped once.
pub(crate) fn create(main: Main, stack_size: usize, reply: Arc<Reply>) -> Result<RawThread, Error> {
    let k = get()?;
    lock_static(&k.requests).push(Request {
        main,
        stack_size,
        reply: reply.clone(),
    });
    k.task.wake_up();
    reply.done.wait();
    let thread = lock(&reply.thread).take();
    if let Some(e) = lock(&reply.error).take() {
        if let Some(t) = thread {
            t.join()?;
        }
        return Err(e);
    }
    Ok(thread.expect("kthreadd answered without a thread or an error"))
}
