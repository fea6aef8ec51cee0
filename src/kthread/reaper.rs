//! The reaper (feature `async`): a library kthread that joins the threads
//! of async stoppers, so an executor's thread never waits in `pthread_join`.
//!
//! [`Kthread::stop_async`](crate::Kthread::stop_async) resolves once the
//! thread is joined, as `stop()` returns: by then its thread-local
//! destructors have run. After the function returned (`exited`), the
//! thread has a few instructions and those destructors left; the future
//! first tries `pthread_tryjoin_np`, and only if the thread is still
//! running hands it here with a completion to wait on. One job at a time,
//! in order: a thread whose thread-local destructor never returns holds up
//! the joins queued behind it (it would hold up `stop()` the same way).
//!
//! The reaper is created on first use, named `kreaper`, and never stops; a
//! `fork()` child creates its own on first use (the parent's does not exist
//! there, and neither do the threads queued to it). If it cannot be
//! created, the thread is detached instead (the C library reaps it when it
//! ends) and the waiter released at once.

use crate::completion::Completion;
use crate::error::fatal;
use crate::sync::{lock_static, Arc, StaticMutex};
use crate::sys::thread::RawThread;
use crate::task::{self, Task};

struct Reaper {
    /// Threads to join, and the completion each joiner waits on.
    jobs: Vec<(RawThread, Arc<Completion>)>,
    /// The reaper's task, once created.
    task: Option<Task>,
}

static REAPER: StaticMutex<Reaper> = StaticMutex::new(Reaper {
    jobs: Vec::new(),
    task: None,
});

/// Joins `thread` on the reaper, then completes `joined`.
pub(super) fn join_later(thread: RawThread, joined: Arc<Completion>) {
    let mut r = lock_static(&REAPER);
    if r.task.as_ref().is_none_or(|t| t.is_inherited()) {
        // None yet, or a fork() child's copy of the parent's: the parent's
        // threads cannot be joined here; their ids are simply forgotten
        // (`RawThread` has no drop), and so are their waiters' completions.
        r.jobs.clear();
        match super::Builder::new("kreaper").create(reap) {
            Ok(k) => r.task = Some(k.detach()),
            Err(_) => {
                drop(r);
                thread
                    .detach()
                    .unwrap_or_else(|e| fatal(&format!("pthread_detach: {e}")));
                joined.complete();
                return;
            }
        }
    }
    r.jobs.push((thread, joined));
    let reaper = r.task.clone().expect("created above");
    drop(r);
    reaper.wake_up();
}

/// The reaper's loop: the kernel's sleep-until-there-is-work loop.
fn reap() {
    loop {
        task::set_current_state(task::TaskState::Interruptible);
        let jobs = std::mem::take(&mut lock_static(&REAPER).jobs);
        if jobs.is_empty() {
            task::schedule();
            continue;
        }
        task::set_current_state(task::TaskState::Running);
        for (thread, joined) in jobs {
            thread
                .join()
                .unwrap_or_else(|e| fatal(&format!("pthread_join: {e}")));
            joined.complete();
        }
    }
}
