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
