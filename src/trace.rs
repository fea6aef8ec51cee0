//! `tracing` events where the kernel has tracepoints (feature `tracing`).
//!
//! Every function here compiles to nothing without the feature. Event names
//! follow the kernel's `sched_kthread_*` tracepoints.

#![cfg_attr(not(feature = "tracing"), allow(unused_variables))]

use crate::task::Task;

macro_rules! event {
    ($lvl:ident, $name:literal, $task:expr $(, $k:ident = $v:expr)*) => {
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "kthread",
            tracing::Level::$lvl,
            event = $name,
            comm = $task.name(),
            tid = $task.tid()
            $(, $k = $v)*
        );
    };
}

pub(crate) fn create(t: &Task) {
    event!(DEBUG, "kthread_create", t);
}
pub(crate) fn wake(t: &Task, woke: bool) {
    event!(TRACE, "sched_wakeup", t, woke = woke);
}
pub(crate) fn stop(t: &Task) {
    event!(DEBUG, "sched_kthread_stop", t);
}
pub(crate) fn stop_ret(t: &Task, ret: &str) {
    event!(DEBUG, "sched_kthread_stop_ret", t, ret = ret);
}
pub(crate) fn park(t: &Task) {
    event!(DEBUG, "kthread_park", t);
}
pub(crate) fn unpark(t: &Task) {
    event!(DEBUG, "kthread_unpark", t);
}
pub(crate) fn freeze(t: &Task) {
    event!(DEBUG, "freezer_frozen", t);
}
pub(crate) fn thaw(t: &Task) {
    event!(DEBUG, "freezer_thawed", t);
}
pub(crate) fn env_note(t: &Task, note: &str) {
    event!(WARN, "kthread_env_unclean", t, note = note);
}
pub(crate) fn work_queue(worker: usize, work: usize) {
    #[cfg(feature = "tracing")]
    tracing::event!(
        target: "kthread",
        tracing::Level::TRACE,
        event = "sched_kthread_work_queue_work",
        worker = worker,
        work = work
    );
}
pub(crate) fn work_start(worker: &Task, work: usize) {
    event!(
        TRACE,
        "sched_kthread_work_execute_start",
        worker,
        work = work
    );
}
pub(crate) fn work_end(worker: &Task, work: usize) {
    event!(TRACE, "sched_kthread_work_execute_end", worker, work = work);
}
pub(crate) fn work_panic(worker: &Task, work: usize, msg: &str) {
    event!(
        ERROR,
        "kthread_work_panicked",
        worker,
        work = work,
        msg = msg
    );
}

/// Whole-system freezer events (no task attached).
pub(crate) fn freezer(what: &'static str, count: usize) {
    #[cfg(feature = "tracing")]
    tracing::event!(target: "kthread", tracing::Level::DEBUG, event = what, tasks = count);
}
