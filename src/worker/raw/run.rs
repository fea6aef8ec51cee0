//! The worker loop (`kthread_worker_fn()`) and its adaptive idle spin.

use super::list::{deadline_of, Locked};
use super::{RawWorker, KTW_FREEZABLE, PENDING, SENTINEL, STOP_WHEN_IDLE};
use crate::kthread::should_stop;
use crate::sync::Ordering;
use crate::sys::time::Deadline;
use crate::task::{self, freeze, TaskState};
use std::time::Duration;

/// Doubling spin rounds before the idle worker yields (2^7 - 1 pauses in all).
#[cfg(not(kthread_loom))]
const IDLE_SPIN_STEPS: u32 = 7;
/// A sleep shorter than this means work comes in streams: spin next time.
const SPIN_IF_SLEPT_UNDER: Duration = Duration::from_micros(50);
/// `sched_yield` rounds after the spin, before the worker sleeps.
#[cfg(not(kthread_loom))]
const IDLE_YIELDS: u32 = 4;

/// Spins (bounded, yielding) with the lock dropped, waiting for new work.
/// Consumes the guard and returns the lock held again. The caller must
/// re-examine everything afterwards: lock holders may have drained
/// `incoming`, appended to the list or armed timers meanwhile.
fn idle_spin(l: Locked<'_>) -> Locked<'_> {
    #[cfg(kthread_loom)]
    {
        l
    }
    #[cfg(not(kthread_loom))]
    {
        let worker = l.worker();
        drop(l);
        let arrived = || !worker.incoming.load(Ordering::Relaxed).is_null() || should_stop();
        'spin: {
            for step in 0..IDLE_SPIN_STEPS {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
                if arrived() {
                    break 'spin;
                }
            }
            for _ in 0..IDLE_YIELDS {
                crate::sync::yield_now();
                if arrived() {
                    break 'spin;
                }
            }
        }
        worker.lock()
    }
}

/// Runs the worker loop on the calling kthread until it is stopped;
/// mirrors `kthread_worker_fn()`.
///
/// Usable as any kthread's function over a caller-owned worker. Returns 0
/// when stopped, or `-EBUSY` if another thread already serves `worker`.
/// Stopping the thread directly abandons what is still queued (kernel
/// behaviour); [`Worker::destroy`](crate::Worker::destroy) flushes first.
///
/// ```
/// use std::sync::Arc;
/// use kthread::worker::raw::{self, RawWorker};
/// let w = Arc::new(RawWorker::new(0));
/// let w2 = w.clone();
/// let k = kthread::run("my-worker", move || raw::worker_fn(&w2))?;
/// raw::flush_worker(&w)?;
/// assert_eq!(k.stop()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn worker_fn(worker: &RawWorker) -> i32 {
    let me = task::current_or_adopt();
    if !worker.lock().attach(&me) {
        return -libc::EBUSY;
    }
    me.flags().mark_worker();
    if worker.flags.load(Ordering::Relaxed) & KTW_FREEZABLE != 0 {
        me.flags().set_freezable();
    }
    let freezable = me.is_freezable();
    let mut spin = false;
    // Whether this idle period already spun: after a spin (lock dropped)
    // the list, timers and `incoming` may all have changed, so the loop
    // starts over instead of sleeping on what it saw before the spin.
    let mut spun = false;

    let mut l = worker.lock();
    loop {
        l.set_current(std::ptr::null_mut());
        if should_stop() {
            l.detach();
            return 0;
        }
        let next_timer = l.fire_timers();
        if l.list_is_empty() {
            l.drain();
        }
        if let Some(w) = l.pop() {
            l.set_current(w.as_mut_ptr());
            // A plain store suffices: while PENDING is set no producer
            // writes the word (their CAS fails), and CANCELING changes only
            // under the lock we hold.
            let s = w.state.load(Ordering::Relaxed);
            w.state.store(s & !PENDING, Ordering::Release);
            let counts = s & SENTINEL == 0;
            // Read before the call: the function may free the item.
            let (func, rel) = (w.func, w.release);
            let wp = w.as_mut_ptr();
            drop(l);
            crate::trace::event!(
                TRACE,
                "sched_kthread_work_execute_start",
                me.name(),
                me.tid(),
                work = wp as usize
            );
            if let Some(f) = func {
                // SAFETY: the queue contract keeps `wp` valid until its
                // function has been called; Rust works catch their panics.
                unsafe { f(wp) };
            }
            crate::trace::event!(
                TRACE,
                "sched_kthread_work_execute_end",
                me.name(),
                me.tid(),
                work = wp as usize
            );
            if counts {
                // Only this thread writes the counter: no RMW needed.
                worker.executed.store(
                    worker.executed.load(Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
            }
            if let Some(r) = rel {
                // SAFETY: a work with a release hook is reference counted by
                // the safe layer: the queue's reference is still held.
                unsafe { r(wp) };
            }
            if freezable {
                freeze::try_to_freeze();
            }
            spun = false;
            l = worker.lock();
            continue;
        }
        // Nothing to run: list and `incoming` were empty just now. A worker
        // destroyed from its own thread leaves here, its queue drained.
        if worker.flags.load(Ordering::Acquire) & STOP_WHEN_IDLE != 0 {
            l.detach();
            return 0;
        }
        // A worker that sleeps at once makes the next
        // producer pay a futex wake (and the worker a context switch) per
        // batch; spin briefly first, yielding so a producer sharing our CPU
        // runs (measured: bare spinning is 5-10x worse there). Freezable
        // workers do not spin: their sleep is a freeze point.
        if spin && !spun && !freezable && next_timer == u64::MAX {
            spun = true;
            l = idle_spin(l);
            continue;
        }
        spun = false;
        // Idle. Publish the sleeping state before the IDLE marker, so a
        // producer that sees IDLE and wakes us cannot be lost.
        // A freezable worker's idle sleep is a freeze point (the kernel's
        // worker loop is woken by the freeze and freezes right after).
        task::set_current_state(if freezable {
            TaskState::Interruptible.freezable()
        } else {
            TaskState::Interruptible.into()
        });
        if !l.go_idle() {
            task::set_current_state(TaskState::Running);
            continue;
        }
        l.set_sleep_until(next_timer);
        drop(l);
        if !should_stop() {
            let slept_from = Deadline::now();
            task::schedule_until(deadline_of(next_timer));
            // Adaptive: spin before the next sleep only if this one was
            // short, i.e. work tends to follow quickly (a stream of queues).
            // A worker that idles between sparse requests sleeps at once,
            // so it never delays a flusher or producer sharing its CPU.
            // (Never under loom: a decision taken from the real clock would
            // make the model's schedule non-deterministic.)
            spin = cfg!(not(kthread_loom)) && slept_from.elapsed() < SPIN_IF_SLEPT_UNDER;
        }
        task::set_current_state(TaskState::Running);
        l = worker.lock();
        l.leave_idle();
    }
}
