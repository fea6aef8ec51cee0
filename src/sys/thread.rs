//! Raw OS threads: pthread create/join/detach, names and the stack range.
//!
//! kthreads are plain pthreads rather than `std::thread`s so that kthreadd
//! controls everything they inherit (signal mask, stack placement) and so the
//! thread id is known before the user's function runs.

use super::cvt_pthread;
use std::ffi::CStr;
use std::io;
use std::time::Duration;

/// An OS thread that has not been joined or detached yet.
#[derive(Debug)]
pub(crate) struct RawThread(libc::pthread_t);

// SAFETY: a pthread_t is an opaque id that any thread may join or detach.
unsafe impl Send for RawThread {}
// SAFETY: shared references only read the opaque id; joining or
// detaching takes the `RawThread` by value.
unsafe impl Sync for RawThread {}

type Main = Box<dyn FnOnce() + Send>;

extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the Box<Main> leaked by `spawn` for exactly this thread.
    let main = unsafe { Box::from_raw(arg.cast::<Main>()) };
    // The thread main catches the user's panics itself; a panic escaping here
    // would be a bug in this crate, and unwinding into C is undefined.
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(main)) {
        crate::error::drop_payload(p);
        crate::error::fatal("kthread: internal panic escaped a thread main");
    }
    std::ptr::null_mut()
}

/// Starts an OS thread running `main` with the given stack size.
///
/// The new thread inherits the caller's signal mask, nice value, policy and
/// affinity (pthread's defaults); kthreadd calls this with its clean ones.
pub(crate) fn spawn(stack_size: usize, main: Main) -> io::Result<RawThread> {
    #[cfg(feature = "fault-injection")]
    super::fault::check(super::fault::Point::Spawn)?;
    let arg = Box::into_raw(Box::new(main));
    // SAFETY: the attr is initialised before use and destroyed on every path;
    // `arg` is handed to the new thread on success and reclaimed on failure.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        cvt_pthread(libc::pthread_attr_init(&mut attr))?;
        let size = stack_size.max(libc::PTHREAD_STACK_MIN);
        let mut ret = libc::pthread_attr_setstacksize(&mut attr, size);
        let mut native: libc::pthread_t = std::mem::zeroed();
        if ret == 0 {
            ret = libc::pthread_create(&mut native, &attr, start, arg.cast());
        }
        libc::pthread_attr_destroy(&mut attr);
        if ret != 0 {
            // The user's closure is inside: its drop may panic (caught).
            crate::error::drop_catching(Box::from_raw(arg));
            return Err(io::Error::from_raw_os_error(ret));
        }
        Ok(RawThread(native))
    }
}

impl RawThread {
    /// The calling thread, for a thread that hands itself to its future
    /// joiner (a kthreadd spare).
    ///
    /// # Safety
    /// The calling thread is joinable, and no other `RawThread` of it is
    /// ever joined or detached (joining a thread twice is undefined).
    pub(crate) unsafe fn current() -> RawThread {
        // SAFETY: pthread_self has no preconditions and cannot fail.
        RawThread(unsafe { libc::pthread_self() })
    }

    /// Sets the thread's OS name (at most 15 bytes; the caller cuts it).
    /// For another thread than the caller this writes its
    /// `/proc/self/task/TID/comm`, as `pthread_setname_np` does.
    pub(crate) fn set_name(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: the id names a live thread (not joined or detached: `self`
        // is still owned); the name is NUL-terminated and at most 16 bytes.
        cvt_pthread(unsafe { libc::pthread_setname_np(self.0, name.as_ptr()) })
    }

    /// Waits for the thread to end and reaps it.
    pub(crate) fn join(self) -> io::Result<()> {
        // SAFETY: the id came from pthread_create and is joined exactly once
        // (`self` is consumed).
        cvt_pthread(unsafe { libc::pthread_join(self.0, std::ptr::null_mut()) })
    }

    /// As [`join`](Self::join), giving up after `timeout`: `Ok(Err(self))`
    /// hands the thread back if it has not ended. The wait is against
    /// `CLOCK_REALTIME` (`pthread_timedjoin_np`); a clock jump only makes
    /// it end early or late.
    pub(crate) fn join_within(self, timeout: Duration) -> io::Result<Result<(), RawThread>> {
        // SAFETY: clock_gettime writes the timespec it is given.
        let mut now: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: as above; CLOCK_REALTIME always exists.
        super::cvt(unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) })?;
        let total = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
        let abs = libc::timespec {
            tv_sec: now.tv_sec
                + libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX / 2)
                + (total / 1_000_000_000) as libc::time_t,
            tv_nsec: (total % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: the id came from pthread_create and was neither joined nor
        // detached (`self` is owned); on a timeout it stays joinable and is
        // handed back.
        match unsafe { libc::pthread_timedjoin_np(self.0, std::ptr::null_mut(), &abs) } {
            0 => Ok(Ok(())),
            libc::ETIMEDOUT => Ok(Err(self)),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Reaps the thread if it has ended: `Ok(Err(self))` hands it back if
    /// it is still running (`pthread_tryjoin_np`).
    #[cfg(feature = "async")]
    pub(crate) fn try_join(self) -> io::Result<Result<(), RawThread>> {
        // SAFETY: the id came from pthread_create and was neither joined nor
        // detached (`self` is owned); if busy it stays joinable and is handed back.
        match unsafe { libc::pthread_tryjoin_np(self.0, std::ptr::null_mut()) } {
            0 => Ok(Ok(())),
            libc::EBUSY => Ok(Err(self)),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Lets the thread be reaped by itself when it ends.
    pub(crate) fn detach(self) -> io::Result<()> {
        // SAFETY: the id came from pthread_create and is detached exactly once.
        cvt_pthread(unsafe { libc::pthread_detach(self.0) })
    }
}

/// Detaches the calling thread, which then ends without a joiner (a
/// retired kthreadd spare).
///
/// # Safety
/// The calling thread is joinable, and no `RawThread` of it is joined or
/// detached, now or later.
pub(crate) unsafe fn detach_self() -> io::Result<()> {
    // SAFETY: the caller's obligation: joinable and nobody else's to reap.
    cvt_pthread(unsafe { libc::pthread_detach(libc::pthread_self()) })
}

/// A thread's OS name file (`/proc/thread-self/comm` of the thread that
/// opened it), so that another thread renames it later with one write:
/// `pthread_setname_np` on another thread looks the file up each time,
/// which costs more than the rest of a create from the spare cache.
#[derive(Debug)]
pub(crate) struct NameFile(std::fs::File);

impl NameFile {
    /// Opens the calling thread's name file (close-on-exec).
    pub(crate) fn open_own() -> io::Result<NameFile> {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/comm")
            .map(NameFile)
    }

    /// Renames the thread that opened the file (at most 15 bytes; the
    /// caller cuts it).
    pub(crate) fn set(&self, name: &CStr) -> io::Result<()> {
        use std::io::Write;
        let bytes = name.to_bytes();
        // A whole name per write (the file is not seekable).
        match (&self.0).write(bytes)? {
            n if n == bytes.len() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of a thread name",
            )),
        }
    }
}

/// Sets the calling thread's OS name (at most 15 bytes; the caller cuts it).
pub(crate) fn set_name(name: &CStr) -> io::Result<()> {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    super::cvt(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) }).map(drop)
}

/// The calling thread's stack as (lowest address, length).
pub(crate) fn stack_range() -> io::Result<(usize, usize)> {
    // SAFETY: the attr is filled by pthread_getattr_np and destroyed after use.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        cvt_pthread(libc::pthread_getattr_np(libc::pthread_self(), &mut attr))?;
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut len: libc::size_t = 0;
        let ret = libc::pthread_attr_getstack(&attr, &mut addr, &mut len);
        libc::pthread_attr_destroy(&mut attr);
        cvt_pthread(ret)?;
        Ok((addr as usize, len))
    }
}
