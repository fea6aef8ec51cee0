//! A non-blocking eventfd used as a level: readable while raised.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An `eventfd(2)` whose counter is 0 (not readable) or 1 (readable).
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    /// A new, unreadable eventfd (`EFD_NONBLOCK | EFD_CLOEXEC`).
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain integer arguments.
        let fd = super::cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes it readable (adds 1 to the counter).
    pub(crate) fn raise(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, which outlives the call.
        let n = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n == 8 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Makes it unreadable (reads the counter back to 0).
    pub(crate) fn lower(&self) -> io::Result<()> {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into `v`.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            Ok(()) // already 0
        } else {
            Err(e)
        }
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
