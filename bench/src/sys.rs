//! Every OS call the benchmarks make: a raw futex, CPU affinity, resident memory.
//!
//! The peers are written against the raw futex on purpose: it is the floor
//! any thread hand-off in user space pays, so a kthread path that matches it
//! adds nothing of its own.

use std::io;
use std::sync::atomic::AtomicU32;

/// Sleeps while `word` holds `expected`; mirrors `FUTEX_WAIT_PRIVATE`.
///
/// Returns on a wake, at once if the word already differs, or on a signal:
/// callers re-check their condition in a loop, as every futex user must.
///
/// # Panics
/// On an errno other than `EAGAIN` / `EINTR` (a broken futex is no benchmark).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned u32 for the whole call; a null
    // timeout means "no timeout"; the other arguments are ignored by WAIT.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
    if ret == -1 {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => {}
            _ => panic!("futex wait: {e}"),
        }
    }
}

/// Wakes at most one thread sleeping on `word`; mirrors `FUTEX_WAKE_PRIVATE`.
///
/// # Panics
/// If the kernel refuses the call (it cannot, for a valid address).
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; WAKE reads no other argument.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
    if ret == -1 {
        panic!("futex wake: {}", io::Error::last_os_error());
    }
}

fn get_affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let ret =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(set)
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs this thread may run on, lowest first.
///
/// # Panics
/// If `sched_getaffinity` fails (it cannot for the calling thread).
pub fn allowed_cpus() -> Vec<usize> {
    let set = get_affinity().unwrap_or_else(|e| panic!("sched_getaffinity: {e}"));
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads a bit of a valid set; `cpu` is below its size.
    (0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// The CPU the calling thread runs on now (`sched_getcpu`).
///
/// ```
/// assert!(kthread_bench::sys::allowed_cpus().contains(&kthread_bench::sys::current_cpu()));
/// ```
///
/// # Panics
/// If the kernel cannot say (`sched_getcpu` fails only without vDSO or
/// `getcpu` support, where no placement figure would mean anything).
pub fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or_else(|_| panic!("sched_getcpu: {}", io::Error::last_os_error()))
}

/// Pins the calling thread to `cpu` for good (threads made for one measurement).
///
/// # Panics
/// If the CPU cannot be used: a pinned measurement on the wrong CPU is a wrong figure.
pub fn pin_thread(cpu: usize) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of a valid set; an out-of-range cpu is ignored.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set_affinity(&set).unwrap_or_else(|e| panic!("pin to CPU {cpu}: {e}"));
}

/// Restores the calling thread's previous affinity when dropped.
#[derive(Debug)]
#[must_use = "the pin ends when the guard is dropped"]
pub struct AffinityGuard(Option<libc::cpu_set_t>);

impl AffinityGuard {
    /// Pins the calling thread to `cpu` (if any) until the guard is dropped.
    ///
    /// # Panics
    /// As [`pin_thread`].
    pub fn pin(cpu: Option<usize>) -> AffinityGuard {
        let Some(cpu) = cpu else {
            return AffinityGuard(None);
        };
        let saved = get_affinity().unwrap_or_else(|e| panic!("sched_getaffinity: {e}"));
        pin_thread(cpu);
        AffinityGuard(Some(saved))
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            if let Err(e) = set_affinity(saved) {
                // Going on would measure the next pairs on one CPU by mistake.
                eprintln!("kthread-bench: restoring affinity failed: {e}");
                std::process::abort();
            }
        }
    }
}

/// The process's resident memory in bytes (`/proc/self/statm`, second field).
///
/// # Errors
/// If `/proc` is not mounted or the file is not as the kernel documents it.
pub fn resident_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/statm"))?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page <= 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pages * page as u64)
}

/// A pipe: (read end, write end), both close-on-exec.
///
/// # Panics
/// If the process is out of file descriptors.
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// One `read(2)` of up to 64 bytes; whether it failed with `EINTR`.
///
/// # Panics
/// On an error other than `EINTR`, or end of file (the benchmarks never
/// close the write end first).
pub fn read_once(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 64];
    // SAFETY: reads at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::EINTR), "read: {e}");
        return true;
    }
    assert!(n > 0, "read: unexpected end of file");
    false
}

extern "C" fn noop_handler(_sig: libc::c_int) {}

/// Installs a handler that does nothing on `sig`, without `SA_RESTART`, so
/// a blocking call it interrupts fails with `EINTR` (what a competent user
/// writes to unblock a thread with `pthread_kill`).
///
/// # Panics
/// If `sigaction` refuses the signal.
pub fn install_noop_handler(sig: libc::c_int) {
    // SAFETY: `act` is zeroed then given a handler of the right type and an
    // empty mask.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = noop_handler as *const () as usize;
        libc::sigemptyset(&mut act.sa_mask);
        let ret = libc::sigaction(sig, &act, std::ptr::null_mut());
        assert_eq!(ret, 0, "sigaction: {}", io::Error::last_os_error());
    }
}

/// Sends `sig` to the thread `t` (`pthread_kill`).
///
/// # Panics
/// If the thread is gone or the signal invalid.
pub fn pthread_kill(t: libc::pthread_t, sig: libc::c_int) {
    // SAFETY: `t` is a live thread the caller has not joined yet.
    let ret = unsafe { libc::pthread_kill(t, sig) };
    assert_eq!(
        ret,
        0,
        "pthread_kill: {}",
        io::Error::from_raw_os_error(ret)
    );
}
