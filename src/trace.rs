//! `tracing` events where the kernel has tracepoints (feature `tracing`).
//!
//! A leaf: every function takes plain values (a task's name and tid, an
//! address), so any layer may emit events without this module knowing its
//! types. Every function compiles to nothing without the feature. Event
//! names follow the kernel's `sched_kthread_*` tracepoints.

#![cfg_attr(not(feature = "tracing"), allow(unused_variables))]

macro_rules! event {
    ($lvl:ident, $name:literal, $comm:expr, $tid:expr $(, $k:ident = $v:expr)*) => {
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "kthread",
            tracing::Level::$lvl,
            event = $name,
            comm = $comm,
            tid = $tid
            $(, $k = $v)*
        );
    };
}

pub(crate) fn create(comm: &str, tid: i32) {
    event!(DEBUG, "kthread_create", comm, tid);
}
pub(crate) fn wake(comm: &str, tid: i32, woke: bool) {
    event!(TRACE, "sched_wakeup", comm, tid, woke = woke);
}
pub(crate) fn stop(comm: &str, tid: i32) {
    event!(DEBUG, "sched_kthread_stop", comm, tid);
}
pub(crate) fn stop_ret(comm: &str, tid: i32, ret: &str) {
    event!(DEBUG, "sched_kthread_stop_ret", comm, tid, ret = ret);
}
pub(crate) fn park(comm: &str, tid: i32) {
    event!(DEBUG, "kthread_park", comm, tid);
}
pub(crate) fn unpark(comm: &str, tid: i32) {
    event!(DEBUG, "kthread_unpark", comm, tid);
}
pub(crate) fn freeze(comm: &str, tid: i32) {
    event!(DEBUG, "freezer_frozen", comm, tid);
}
pub(crate) fn thaw(comm: &str, tid: i32) {
    event!(DEBUG, "freezer_thawed", comm, tid);
}
pub(crate) fn env_note(comm: &str, tid: i32, note: &str) {
    event!(WARN, "kthread_env_unclean", comm, tid, note = note);
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
pub(crate) fn work_start(comm: &str, tid: i32, work: usize) {
    event!(
        TRACE,
        "sched_kthread_work_execute_start",
        comm,
        tid,
        work = work
    );
}
pub(crate) fn work_end(comm: &str, tid: i32, work: usize) {
    event!(
        TRACE,
        "sched_kthread_work_execute_end",
        comm,
        tid,
        work = work
    );
}
pub(crate) fn work_panic(comm: &str, tid: i32, work: usize, msg: &str) {
    event!(
        ERROR,
        "kthread_work_panicked",
        comm,
        tid,
        work = work,
        msg = msg
    );
}

/// Whole-system freezer events (no task attached).
pub(crate) fn freezer(what: &'static str, count: usize) {
    #[cfg(feature = "tracing")]
    tracing::event!(target: "kthread", tracing::Level::DEBUG, event = what, tasks = count);
}
