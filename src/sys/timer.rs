//! A one-shot timer that signals one thread (`timer_create` with
//! `SIGEV_THREAD_ID`): the re-send of an interruption that landed just
//! before its target entered a blocking call.

use std::io;
use std::time::Duration;

/// A POSIX timer aimed at one thread; deleted by [`ThreadTimer::delete`]
/// (not on drop: the owner decides when no signal may come any more).
///
/// Timers are not inherited across `fork()`, and the child numbers its
/// own from the start again: a copy inherited from the parent (its
/// process generation is older) is never armed nor deleted, so it cannot
/// touch a timer of the child's that got the same id.
#[derive(Debug)]
pub(crate) struct ThreadTimer(libc::timer_t, u32);

// SAFETY: a timer id is a process-wide handle; any thread may arm it.
unsafe impl Send for ThreadTimer {}
// SAFETY: as for Send; `timer_settime` on one id from two threads is
// serialised by the kernel.
unsafe impl Sync for ThreadTimer {}

impl ThreadTimer {
    /// Whether this is a `fork()` child's copy of its parent's timer.
    /// Async-signal-safe (one atomic load).
    fn inherited(&self) -> bool {
        self.1 != super::fork::generation()
    }

    /// A timer on `CLOCK_MONOTONIC` that sends `sig` to thread `tid` of
    /// this process when it expires; disarmed.
    pub(crate) fn new(tid: libc::pid_t, sig: libc::c_int) -> io::Result<ThreadTimer> {
        // SAFETY: `ev` is zeroed then filled; `id` is written by
        // timer_create before it is read.
        unsafe {
            let mut ev: libc::sigevent = std::mem::zeroed();
            ev.sigev_notify = libc::SIGEV_THREAD_ID;
            ev.sigev_signo = sig;
            ev.sigev_notify_thread_id = tid;
            let mut id: libc::timer_t = std::mem::zeroed();
            super::cvt(libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id))?;
            Ok(ThreadTimer(id, super::fork::born()))
        }
    }

    /// Arms the timer to fire once, `after` from now (replacing any earlier
    /// arming). Async-signal-safe.
    pub(crate) fn arm(&self, after: Duration) -> io::Result<()> {
        if self.inherited() {
            return Ok(()); // the parent's: its thread does not exist here
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                // At least 1 ns: a zero value would disarm the timer.
                tv_nsec: libc::c_long::from(after.subsec_nanos())
                    .max(libc::c_long::from(after.as_secs() == 0)),
            },
        };
        // SAFETY: `self.0` is a live timer (deleted only by `delete`, which
        // consumes it); `spec` is initialised; the old value is not asked for.
        super::cvt(unsafe { libc::timer_settime(self.0, 0, &spec, std::ptr::null_mut()) }).map(drop)
    }

    /// Deletes the timer; a pending expiry is cancelled.
    pub(crate) fn delete(self) -> io::Result<()> {
        if self.inherited() {
            return Ok(());
        }
        // SAFETY: a live timer, consumed here.
        super::cvt(unsafe { libc::timer_delete(self.0) }).map(drop)
    }
}
