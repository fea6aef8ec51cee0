//! Every operating-system call the crate makes, behind one small interface.
//!
//! Nothing outside this module calls `libc`. Each function checks the call's
//! result and turns an unexpected errno into an [`io::Error`]; callers decide
//! whether that is the user's error or a broken invariant.

use std::io;

pub(crate) mod eventfd;
pub(crate) mod fork;
pub(crate) mod futex;
pub(crate) mod mempolicy;
pub(crate) mod procfs;
pub(crate) mod sched;
pub(crate) mod signal;
pub(crate) mod thread;
pub(crate) mod time;
pub(crate) mod timer;
pub(crate) mod topology;

#[cfg(feature = "fault-injection")]
pub mod fault;

/// Turns a `-1`-on-error return into an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a `-1`-on-error `syscall()` return into an `io::Result`.
fn cvt_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a pthread-style return (the errno itself) into an `io::Result`.
fn cvt_pthread(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}
