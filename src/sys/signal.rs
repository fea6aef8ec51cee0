//! Signal masks: kthreads run with every asynchronous signal blocked.

use super::cvt_pthread;
use std::io;

/// A saved signal mask.
#[derive(Clone, Copy)]
pub(crate) struct SigMask(libc::sigset_t);

/// Blocks every signal on the calling thread and returns the previous mask.
///
/// SIGKILL and SIGSTOP cannot be blocked (the kernel ignores them in the
/// mask); synchronous faults still kill the process, as they should.
pub(crate) fn block_all() -> io::Result<SigMask> {
    // SAFETY: both sigset_t values are written by sigfillset/pthread_sigmask
    // before they are read.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::sigfillset(&mut all) != 0 {
            return Err(io::Error::last_os_error());
        }
        cvt_pthread(libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old))?;
        Ok(SigMask(old))
    }
}

/// Restores a mask saved by [`block_all`].
pub(crate) fn restore(mask: &SigMask) -> io::Result<()> {
    // SAFETY: `mask.0` is a valid sigset_t; the old mask is not requested.
    cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut()) })
}

/// The real-time signal range of this libc (`SIGRTMIN..=SIGRTMAX`; glibc
/// keeps the first two for itself).
pub(crate) fn rt_range() -> (libc::c_int, libc::c_int) {
    (libc::SIGRTMIN(), libc::SIGRTMAX())
}

/// The highest signal number (`_NSIG - 1`).
pub(crate) fn max_signal() -> libc::c_int {
    libc::SIGRTMAX()
}

/// The signal's current handler address (`SIG_DFL` is 0, `SIG_IGN` 1).
pub(crate) fn handler_of(sig: libc::c_int) -> io::Result<usize> {
    // SAFETY: `old` is written by sigaction before it is read; a null new
    // action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        super::cvt(libc::sigaction(sig, std::ptr::null(), &mut old))?;
        Ok(old.sa_sigaction)
    }
}

/// Whether the signal's disposition is the default one.
pub(crate) fn is_default(sig: libc::c_int) -> io::Result<bool> {
    Ok(handler_of(sig)? == libc::SIG_DFL)
}

/// A handler with `SA_SIGINFO`'s arguments.
pub(crate) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut std::ffi::c_void);

/// Installs `handler` for `sig`, process-wide, with `SA_SIGINFO` and
/// *without* `SA_RESTART`: a system call it interrupts fails with `EINTR`
/// instead of restarting. The handler must be async-signal-safe and
/// preserve `errno`.
pub(crate) fn install(sig: libc::c_int, handler: Handler) -> io::Result<()> {
    // SAFETY: `act` is fully initialised (zeroed, then the handler, its
    // flag and an empty mask); the handler has the SA_SIGINFO signature.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler as usize;
        act.sa_flags = libc::SA_SIGINFO;
        if libc::sigemptyset(&mut act.sa_mask) != 0 {
            return Err(io::Error::last_os_error());
        }
        super::cvt(libc::sigaction(sig, &act, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// Whether the signal a `SA_SIGINFO` handler got came from a POSIX timer
/// (`SI_TIMER`), not from `tgkill` or `kill`.
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed to the running handler.
pub(crate) unsafe fn sent_by_timer(info: *const libc::siginfo_t) -> bool {
    // SAFETY: by the contract, a valid siginfo_t for this delivery.
    !info.is_null() && unsafe { (*info).si_code } == libc::SI_TIMER
}

fn change_one(how: libc::c_int, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: `set` is initialised by sigemptyset before use; the old mask
    // is not requested.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigemptyset(&mut set) != 0 || libc::sigaddset(&mut set, sig) != 0 {
            return Err(io::Error::last_os_error());
        }
        cvt_pthread(libc::pthread_sigmask(how, &set, std::ptr::null_mut()))
    }
}

/// Unblocks `sig` on the calling thread.
pub(crate) fn unblock(sig: libc::c_int) -> io::Result<()> {
    change_one(libc::SIG_UNBLOCK, sig)
}

/// Sends `sig` to the thread `tid` of this process (`tgkill`).
pub(crate) fn tgkill(tid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: a raw syscall with plain integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::c_long::from(libc::getpid()),
            libc::c_long::from(tid),
            libc::c_long::from(sig),
        )
    };
    super::cvt_long(r).map(drop)
}

/// The calling thread's `errno`, saved by a signal handler that makes
/// system calls and put back before it returns.
pub(crate) struct SavedErrno(libc::c_int);

impl SavedErrno {
    pub(crate) fn save() -> SavedErrno {
        // SAFETY: `__errno_location` returns the calling thread's errno slot.
        SavedErrno(unsafe { *libc::__errno_location() })
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: as in `save`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}
