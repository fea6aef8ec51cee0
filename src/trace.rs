//! `tracing` events where the kernel has tracepoints (feature `tracing`).
//!
//! A leaf: an event takes plain values (a task's name and tid, an address),
//! so any layer may emit events without this module knowing its types.
//! Events are macros, so without the feature their arguments are not even
//! evaluated: no atomic load of a tid on the worker's hot path, nothing
//! extra for the loom models to explore. Call sites name the kernel's
//! tracepoint (`sched_kthread_stop`, `sched_kthread_work_execute_start`, ...).

/// A task's event: `event!(LEVEL, "tracepoint", comm, tid, key = value, ...)`.
macro_rules! event {
    ($lvl:ident, $name:literal, $comm:expr, $tid:expr $(, $k:ident = $v:expr)* $(,)?) => {{
        #[cfg(feature = "tracing")]
        tracing::event!(
            target: "kthread",
            tracing::Level::$lvl,
            event = $name,
            comm = $comm,
            tid = $tid
            $(, $k = $v)*
        );
        // Names the arguments without evaluating them (no unused warnings).
        #[cfg(not(feature = "tracing"))]
        let _ = || ($comm, $tid $(, $v)*);
    }};
}
pub(crate) use event;

/// An event with no task attached: `global!(LEVEL, "name", key = value, ...)`.
macro_rules! global {
    ($lvl:ident, $name:literal $(, $k:ident = $v:expr)* $(,)?) => {{
        #[cfg(feature = "tracing")]
        tracing::event!(target: "kthread", tracing::Level::$lvl, event = $name $(, $k = $v)*);
        #[cfg(not(feature = "tracing"))]
        let _ = || ($($v,)*);
    }};
}
pub(crate) use global;
