//! Reaching a kthread blocked outside the library: the stop fd, stop
//! callbacks, kernel-style signals and `interrupt_on_stop`
//! (`src/task/hooks.rs`; `docs/design.md`, "Reaching a blocked thread").
//!
//! std's `accept`, `thread::sleep` and `read_exact` retry `EINTR` by
//! themselves, so the blocking calls here are the raw `libc` ones, on file
//! descriptors of std objects.
//!
//! Every test that could hang has a watchdog. The only timed waits are
//! (a) "wait until the kthread has entered the blocking call", by looking
//! at `/proc` (each such test also has a variant that stops at once,
//! without waiting), and (b) the negative signal checks, which assert that
//! a sleep ran to its (short) timeout.

mod common;

use common::{gettid, os_state, row, sleep_until_stopped, wait_briefly_until, watchdog, WATCHDOG};
use kthread::freezer;
use kthread::{
    freezable_should_stop, parkme, schedule, schedule_timeout, set_current_state, should_park,
    should_stop, Builder, Completion, Error, Kthread, StopCallback, Task, TaskState, WaitQueue,
};
use std::ffi::c_int;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// How long a condition the test already caused may take to show.
const BRIEF: Duration = Duration::from_secs(5);
/// The bound on a stop of a kthread blocked in a system call. Not a
/// performance claim: a hang is what the watchdog is for; this only
/// catches a stop that got through by some 60-second timeout.
const STOP_BOUND: Duration = Duration::from_secs(5);
/// Generous: the freezes here must succeed.
const FREEZE: Duration = Duration::from_secs(10);

/// Freezing is process-wide: the tests that freeze hold this.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- raw system calls -----------------------------------------------------

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn os_err(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

/// `poll()` for `POLLIN` on `fds`: which are ready, or the errno.
fn poll_in(fds: &[RawFd], timeout_ms: c_int) -> Result<Vec<bool>, i32> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` holds exactly `p.len()` initialised pollfds.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        return Err(errno());
    }
    Ok(p.iter().map(|p| p.revents != 0).collect())
}

/// Whether `fd` is readable now (a `poll` with a zero timeout).
fn readable(fd: RawFd) -> bool {
    loop {
        match poll_in(&[fd], 0) {
            Ok(r) => return r[0],
            Err(libc::EINTR) => continue,
            Err(e) => panic!("poll: {}", os_err(e)),
        }
    }
}

/// One raw, blocking (unless the socket is not) `accept()`; the new
/// connection is closed at once.
fn accept_raw(fd: RawFd) -> Result<(), i32> {
    // SAFETY: null address pointers are allowed: the peer is not asked for.
    let r = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: `r` is the connection just accepted, owned by nobody else.
    unsafe { libc::close(r) };
    Ok(())
}

/// One raw, blocking `read()`.
fn read_raw(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: reads at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    Ok(n as usize)
}

/// One non-blocking `recv()` on a socket.
fn recv_nowait(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: receives at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(errno());
    }
    Ok(n as usize)
}

/// A raw 60-second `nanosleep()`: `Ok` if it slept all of it.
fn nanosleep_long() -> Result<(), i32> {
    let req = libc::timespec {
        tv_sec: 60,
        tv_nsec: 0,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both point to valid timespecs.
    if unsafe { libc::nanosleep(&req, &mut rem) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// An epoll set watching each `(fd, token)` for input.
fn epoll_of(fds: &[(RawFd, u64)]) -> OwnedFd {
    // SAFETY: no pointers; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        ep >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `ep` is a new descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for &(fd, token) in fds {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a valid epoll descriptor, an open `fd`, a valid event.
        let r = unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(r, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    }
    ep
}

/// One raw `epoll_wait()`: the tokens of the ready descriptors.
fn epoll_wait_raw(ep: RawFd, timeout_ms: c_int) -> Result<Vec<u64>, i32> {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: `evs` has room for `evs.len()` events.
    let n = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), evs.len() as c_int, timeout_ms) };
    if n < 0 {
        return Err(errno());
    }
    Ok(evs[..n as usize].iter().map(|e| e.u64).collect())
}

/// A non-blocking eventfd.
fn eventfd() -> OwnedFd {
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Makes an eventfd readable.
fn eventfd_post(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`.
    let r = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    assert_eq!(r, 8, "eventfd write: {}", std::io::Error::last_os_error());
}

// ---- looking at a thread from outside -------------------------------------

/// The system call thread `tid` is blocked in (`/proc/<tid>/syscall`):
/// `None` while it runs (or if the file cannot be read).
fn syscall_of(tid: i32) -> Option<libc::c_long> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// System call numbers, per blocking call (glibc may use either of a pair).
mod nr {
    #[cfg(target_arch = "x86_64")]
    pub const POLL: &[libc::c_long] = &[libc::SYS_poll, libc::SYS_ppoll];
    #[cfg(not(target_arch = "x86_64"))]
    pub const POLL: &[libc::c_long] = &[libc::SYS_ppoll];
    #[cfg(target_arch = "x86_64")]
    pub const EPOLL: &[libc::c_long] = &[libc::SYS_epoll_wait, libc::SYS_epoll_pwait];
    #[cfg(not(target_arch = "x86_64"))]
    pub const EPOLL: &[libc::c_long] = &[libc::SYS_epoll_pwait];
    pub const ACCEPT: &[libc::c_long] = &[libc::SYS_accept, libc::SYS_accept4];
    pub const READ: &[libc::c_long] = &[libc::SYS_read];
    pub const NANOSLEEP: &[libc::c_long] = &[libc::SYS_nanosleep, libc::SYS_clock_nanosleep];
    pub const FUTEX: &[libc::c_long] = &[libc::SYS_futex];
}

/// Waits until thread `tid` sleeps inside one of the system calls `nrs`.
///
/// Polling `/proc` with short sleeps is used ONLY for this: to make the
/// stop land on a thread that has really entered the call. No outcome
/// depends on the timing (each such test has a variant that stops at once,
/// without this wait).
fn wait_in_syscall(tid: i32, nrs: &[libc::c_long], what: &str) {
    let start = Instant::now();
    loop {
        if os_state(tid) == Some('S') && syscall_of(tid).is_some_and(|n| nrs.contains(&n)) {
            return;
        }
        assert!(
            start.elapsed() < BRIEF,
            "thread {tid} not blocked in {what} ({nrs:?}) within {BRIEF:?}: state {:?}, syscall {:?}",
            os_state(tid),
            syscall_of(tid)
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// The signals pending for thread `tid` alone (`SigPnd` in its status).
fn thread_sigpnd(tid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).expect("status");
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix("SigPnd:"))
        .expect("SigPnd line");
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

fn sig_bit(sig: c_int) -> u64 {
    1u64 << (sig - 1)
}

// ---- stopping a kthread blocked in a system call --------------------------

/// How the stop reaches the blocked kthread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mech {
    /// It blocks in `poll`/`epoll` on its fd and the stop fd.
    StopFd,
    /// A stop callback ends the blocking call.
    Callback,
    /// `interrupt_on_stop(true)`: the call fails with `EINTR`.
    Interrupt,
}

/// The blocking call the kthread serves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Accept,
    Read,
    Nanosleep,
    EpollWait,
}

/// When the stop comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// Once the kthread sleeps inside the call (seen in `/proc`).
    InTheCall,
    /// At once, wherever the kthread is.
    AtOnce,
}

/// What the kthread hands back.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Connections accepted, bytes read, or 60-second sleeps completed.
    counted: u64,
    /// `should_stop()` when the function returned.
    saw_stop: bool,
}

/// Counts and publishes the count (the test waits on `progress`).
struct Counter<'a> {
    n: u64,
    progress: &'a AtomicU64,
}

impl Counter<'_> {
    fn add(&mut self, k: u64) {
        self.n += k;
        self.progress.store(self.n, Ordering::Release);
    }
}

/// Accepts every connection already queued, without blocking.
fn drain_listener(fd: RawFd, c: &mut Counter<'_>) {
    while readable(fd) {
        match accept_raw(fd) {
            Ok(()) => c.add(1),
            Err(libc::EINTR) => {}
            Err(libc::EAGAIN) => break,
            Err(e) => panic!("accept while draining: {}", os_err(e)),
        }
    }
}

/// Reads every byte already sent, without blocking.
fn drain_stream(fd: RawFd, c: &mut Counter<'_>) {
    let mut buf = [0u8; 4096];
    loop {
        match recv_nowait(fd, &mut buf) {
            Ok(0) => break, // EOF
            Ok(n) => c.add(n as u64),
            Err(libc::EINTR) => {}
            Err(libc::EAGAIN) => break,
            Err(e) => panic!("recv while draining: {}", os_err(e)),
        }
    }
}

/// What a serving kthread owns.
#[derive(Default)]
struct Ends {
    listener: Option<Arc<TcpListener>>,
    reader: Option<UnixStream>,
    wake: Option<Arc<OwnedFd>>,
}

/// The kthread's function: serves from `call` until stopped by `mech`.
fn serve(
    mech: Mech,
    call: Call,
    ends: Ends,
    progress: &AtomicU64,
    allowed: &Completion,
) -> Outcome {
    let me = kthread::current().expect("runs on a kthread");
    let stop_fd = match mech {
        Mech::StopFd => me.stop_fd().expect("stop fd").as_raw_fd(),
        _ => -1,
    };
    let mut c = Counter { n: 0, progress };
    let mut buf = [0u8; 4096];
    match call {
        Call::Accept => {
            let lfd = ends.listener.as_ref().expect("a listener").as_raw_fd();
            match mech {
                Mech::StopFd => {
                    while !should_stop() {
                        match poll_in(&[lfd, stop_fd], -1) {
                            Ok(r) if r[0] => drain_listener(lfd, &mut c),
                            Ok(_) | Err(libc::EINTR) => {}
                            Err(e) => panic!("poll: {}", os_err(e)),
                        }
                    }
                    drain_listener(lfd, &mut c);
                }
                Mech::Callback => {
                    // The callback shuts the listener down: accept() fails
                    // with EINVAL from then on. (That also drops what is
                    // still queued, so the test lets us accept all first.)
                    while !should_stop() {
                        match accept_raw(lfd) {
                            Ok(()) => c.add(1),
                            Err(libc::EINVAL | libc::EINTR) => {}
                            Err(e) => panic!("accept: {}", os_err(e)),
                        }
                    }
                }
                Mech::Interrupt => {
                    while !should_stop() {
                        match accept_raw(lfd) {
                            Ok(()) => c.add(1),
                            Err(libc::EINTR) => {} // interrupted: look at should_stop()
                            Err(e) => panic!("accept: {}", os_err(e)),
                        }
                    }
                    drain_listener(lfd, &mut c);
                }
            }
        }
        Call::Read => {
            let rfd = ends.reader.as_ref().expect("a reader").as_raw_fd();
            match mech {
                Mech::StopFd => {
                    while !should_stop() {
                        match poll_in(&[rfd, stop_fd], -1) {
                            Ok(r) if r[0] => drain_stream(rfd, &mut c),
                            Ok(_) | Err(libc::EINTR) => {}
                            Err(e) => panic!("poll: {}", os_err(e)),
                        }
                    }
                    drain_stream(rfd, &mut c);
                }
                Mech::Callback => {
                    // The callback shuts the writer's side down: read()
                    // returns every byte sent before the stop, then EOF.
                    // EOF, not should_stop(), ends this loop: a stop seen
                    // first would leave bytes unread.
                    loop {
                        match read_raw(rfd, &mut buf) {
                            Ok(0) => break,
                            Ok(n) => c.add(n as u64),
                            Err(libc::EINTR) => {}
                            Err(e) => panic!("read: {}", os_err(e)),
                        }
                    }
                }
                Mech::Interrupt => {
                    while !should_stop() {
                        match read_raw(rfd, &mut buf) {
                            Ok(0) => panic!("EOF before the stop"),
                            Ok(n) => c.add(n as u64),
                            Err(libc::EINTR) => {}
                            Err(e) => panic!("read: {}", os_err(e)),
                        }
                    }
                    drain_stream(rfd, &mut c);
                }
            }
        }
        Call::Nanosleep => match mech {
            // The sleep is a poll of the stop fd with a 60-second timeout.
            Mech::StopFd => {
                while !should_stop() {
                    match poll_in(&[stop_fd], 60_000) {
                        Ok(r) if !r[0] => c.add(1), // slept it all
                        Ok(_) | Err(libc::EINTR) => {}
                        Err(e) => panic!("poll: {}", os_err(e)),
                    }
                }
            }
            // The callback sends SIGUSR2, which we allowed: the sleep fails
            // with EINTR (through the library's interruption signal).
            Mech::Callback => {
                kthread::allow_signal(libc::SIGUSR2).expect("allow SIGUSR2");
                allowed.complete();
                while !should_stop() {
                    match nanosleep_long() {
                        Ok(()) => c.add(1),
                        Err(libc::EINTR) => {
                            if kthread::signal_pending() {
                                kthread::flush_signals();
                            }
                        }
                        Err(e) => panic!("nanosleep: {}", os_err(e)),
                    }
                }
            }
            Mech::Interrupt => {
                while !should_stop() {
                    match nanosleep_long() {
                        Ok(()) => c.add(1),
                        Err(libc::EINTR) => {}
                        Err(e) => panic!("nanosleep: {}", os_err(e)),
                    }
                }
            }
        },
        Call::EpollWait => {
            let rfd = ends.reader.as_ref().expect("a reader").as_raw_fd();
            let mut set = vec![(rfd, 0)];
            match mech {
                Mech::StopFd => set.push((stop_fd, 1)),
                // The callback makes this eventfd readable.
                Mech::Callback => set.push((ends.wake.as_ref().expect("eventfd").as_raw_fd(), 1)),
                Mech::Interrupt => {}
            }
            let ep = epoll_of(&set);
            while !should_stop() {
                match epoll_wait_raw(ep.as_raw_fd(), -1) {
                    Ok(tokens) if tokens.contains(&0) => drain_stream(rfd, &mut c),
                    Ok(_) | Err(libc::EINTR) => {}
                    Err(e) => panic!("epoll_wait: {}", os_err(e)),
                }
            }
            drain_stream(rfd, &mut c);
        }
    }
    drop(ends);
    Outcome {
        counted: c.n,
        saw_stop: should_stop(),
    }
}

/// The system calls the kthread of `mech` × `call` blocks in.
fn blocking_nrs(mech: Mech, call: Call) -> &'static [libc::c_long] {
    match (mech, call) {
        (_, Call::EpollWait) => nr::EPOLL,
        (Mech::StopFd, _) => nr::POLL,
        (_, Call::Accept) => nr::ACCEPT,
        (_, Call::Read) => nr::READ,
        (_, Call::Nanosleep) => nr::NANOSLEEP,
    }
}

const CONNECTIONS: u64 = 4;
const CHUNKS: u64 = 3;
const CHUNK: usize = 100;

/// One kthread blocked in `call`, fed, then stopped through `mech`.
fn stop_case(mech: Mech, call: Call, when: When) -> Res {
    let what = format!("{mech:?} × {call:?} × {when:?}");
    let progress = Arc::new(AtomicU64::new(0));
    let allowed = Arc::new(Completion::new());
    let mut ends = Ends::default();
    let mut writer = None;
    match call {
        Call::Accept => ends.listener = Some(Arc::new(TcpListener::bind("127.0.0.1:0")?)),
        Call::Read | Call::EpollWait => {
            let (r, w) = UnixStream::pair()?;
            ends.reader = Some(r);
            writer = Some(w);
            if call == Call::EpollWait && mech == Mech::Callback {
                ends.wake = Some(Arc::new(eventfd()));
            }
        }
        Call::Nanosleep => {}
    }
    let addr = ends.listener.as_ref().map(|l| l.local_addr()).transpose()?;
    // What the callback needs, shared with the kthread (never a bare fd
    // number the kthread might close first).
    let listener = ends.listener.clone();
    let wake = ends.wake.clone();
    let k = {
        let (p, a) = (progress.clone(), allowed.clone());
        Builder::new(format!("{mech:?}-{call:?}"))
            .interrupt_on_stop(mech == Mech::Interrupt)
            .create(move || serve(mech, call, ends, &p, &a))?
    };
    let on_stop: Option<Box<dyn FnOnce() + Send>> = match (mech, call) {
        (Mech::Callback, Call::Accept) => {
            let l = listener.expect("listener");
            Some(Box::new(move || {
                // SAFETY: shuts down a socket this closure keeps open.
                let r = unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
                assert_eq!(r, 0, "shutdown: {}", std::io::Error::last_os_error());
            }))
        }
        (Mech::Callback, Call::Read) => {
            let w = writer.as_ref().expect("writer").try_clone()?;
            Some(Box::new(move || {
                w.shutdown(Shutdown::Write).expect("shutdown(SHUT_WR)");
            }))
        }
        (Mech::Callback, Call::EpollWait) => {
            let e = wake.expect("eventfd");
            Some(Box::new(move || eventfd_post(e.as_raw_fd())))
        }
        (Mech::Callback, Call::Nanosleep) => {
            let t = k.task().clone();
            Some(Box::new(move || {
                t.send_signal(libc::SIGUSR2).expect("send_signal");
            }))
        }
        _ => None,
    };
    let _cb = on_stop.map(|f| k.task().on_stop(f));
    k.wake_up();

    // What the kthread must count, sent before the stop.
    let mut clients = Vec::new();
    let expected = match call {
        Call::Accept => {
            let addr = addr.expect("address");
            for _ in 0..CONNECTIONS {
                clients.push(TcpStream::connect(addr)?);
            }
            CONNECTIONS
        }
        Call::Read | Call::EpollWait => {
            let w = writer.as_mut().expect("writer");
            for i in 0..CHUNKS {
                w.write_all(&[i as u8; CHUNK])?;
            }
            CHUNKS * CHUNK as u64
        }
        Call::Nanosleep => 0,
    };
    if mech == Mech::Callback && call == Call::Nanosleep {
        // A signal sent before allow_signal is ignored, as in the kernel.
        assert!(allowed.wait_timeout(BRIEF), "{what}: allow_signal");
    }
    // A shutdown() drops the connections still queued on the listener.
    let settle = when == When::InTheCall || (mech == Mech::Callback && call == Call::Accept);
    if settle {
        wait_briefly_until(&format!("{what}: all counted"), BRIEF, || {
            progress.load(Ordering::Acquire) == expected
        });
    }
    if when == When::InTheCall {
        wait_in_syscall(k.task().tid(), blocking_nrs(mech, call), &what);
    }
    let t0 = Instant::now();
    let out = k.stop()?;
    let took = t0.elapsed();
    assert!(took < STOP_BOUND, "{what}: the stop took {took:?}");
    assert_eq!(
        out,
        Outcome {
            counted: expected,
            saw_stop: true
        },
        "{what}"
    );
    drop(clients);
    Ok(())
}

/// Stops at once this many times per case: the stop lands at a different
/// point each time (before the call, inside it, between two).
const AT_ONCE_ROUNDS: usize = 20;

macro_rules! stop_tests {
    ($($name:ident: $mech:ident, $call:ident;)*) => {$(
        #[test]
        fn $name() -> Res {
            let _w = watchdog(stringify!($name), WATCHDOG);
            stop_case(Mech::$mech, Call::$call, When::InTheCall)?;
            for _ in 0..AT_ONCE_ROUNDS {
                stop_case(Mech::$mech, Call::$call, When::AtOnce)?;
            }
            Ok(())
        }
    )*};
}

stop_tests! {
    stop_fd_ends_a_poll_on_a_listener: StopFd, Accept;
    stop_fd_ends_a_poll_on_a_stream: StopFd, Read;
    stop_fd_ends_a_long_poll_sleep: StopFd, Nanosleep;
    stop_fd_ends_an_epoll_wait: StopFd, EpollWait;
    stop_callback_shutting_the_listener_ends_accept: Callback, Accept;
    stop_callback_shutting_the_writer_ends_read: Callback, Read;
    stop_callback_sending_a_signal_ends_nanosleep: Callback, Nanosleep;
    stop_callback_posting_an_eventfd_ends_epoll_wait: Callback, EpollWait;
    interrupt_on_stop_ends_accept: Interrupt, Accept;
    interrupt_on_stop_ends_read: Interrupt, Read;
    interrupt_on_stop_ends_nanosleep: Interrupt, Nanosleep;
    interrupt_on_stop_ends_epoll_wait: Interrupt, EpollWait;
}

#[test]
fn interrupt_on_stop_reaches_a_kthread_that_was_never_woken() -> Res {
    let _w = watchdog("interrupt_never_woken", WATCHDOG);
    let k = Builder::new("intr-unwoken")
        .interrupt_on_stop(true)
        .create(|| unreachable!("never woken"))?;
    assert!(matches!(k.stop(), Err(kthread::StopError::NotStarted)));
    Ok(())
}

#[test]
fn interrupt_on_stop_lets_a_park_through_a_blocking_read_and_the_unpark_resumes_it() -> Res {
    let _w = watchdog("interrupt_park", WATCHDOG);
    let (r, mut w) = UnixStream::pair()?;
    let progress = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let k = Builder::new("intr-park")
        .interrupt_on_stop(true)
        .run(move || {
            let mut buf = [0u8; 64];
            let mut c = Counter { n: 0, progress: &p };
            let mut parks = 0;
            while !should_stop() {
                if should_park() {
                    parkme();
                    parks += 1;
                    continue;
                }
                match read_raw(r.as_raw_fd(), &mut buf) {
                    Ok(0) => panic!("EOF"),
                    Ok(n) => c.add(n as u64),
                    Err(libc::EINTR) => {}
                    Err(e) => panic!("read: {}", os_err(e)),
                }
            }
            drain_stream(r.as_raw_fd(), &mut c);
            (c.n, parks)
        })?;
    let tid = k.task().tid();
    for round in 1..=3u64 {
        wait_in_syscall(tid, nr::READ, "read");
        k.park()?; // returns only once the kthread sits in parkme()
        assert_eq!(k.task().state(), TaskState::Parked);
        k.unpark();
        w.write_all(&[7; 10])?;
        wait_briefly_until("read after the unpark", BRIEF, || {
            progress.load(Ordering::Acquire) == 10 * round
        });
    }
    // A park at once, wherever the kthread is.
    for _ in 0..20 {
        k.park()?;
        k.unpark();
    }
    // Each park() returned with the kthread in parkme(); a park that comes
    // before it has left parkme() keeps it there, so fewer rounds of its own.
    let (read, parks) = k.stop()?;
    assert_eq!(read, 30);
    assert!((4..=23).contains(&parks), "{parks} parks seen");
    Ok(())
}

#[test]
fn interrupt_on_stop_lets_a_freeze_through_a_blocking_read() -> Res {
    let _s = serial();
    let _w = watchdog("interrupt_freeze", WATCHDOG);
    let (r, _w_end) = UnixStream::pair()?;
    let k = Builder::new("intr-freeze")
        .interrupt_on_stop(true)
        .freezable(true)
        .run(move || {
            let mut buf = [0u8; 64];
            let mut froze = 0;
            loop {
                let (stop, f) = kthread::freezer::freezable_should_stop_frozen();
                froze += u32::from(f);
                if stop {
                    return froze;
                }
                match read_raw(r.as_raw_fd(), &mut buf) {
                    Err(libc::EINTR) => {}
                    other => panic!("read: {other:?}"),
                }
            }
        })?;
    for _ in 0..3 {
        wait_in_syscall(k.task().tid(), nr::READ, "read");
        let guard = freezer::freeze(FREEZE)?;
        assert_eq!(k.task().state(), TaskState::Frozen);
        drop(guard);
    }
    assert_eq!(k.stop()?, 3);
    Ok(())
}

// ---- stress -----------------------------------------------------------------

/// xorshift64: seeded from the clock (or `INTERRUPT_SEED`), printed.
struct XorShift(u64);

impl XorShift {
    fn from_env_or_clock() -> XorShift {
        let seed = std::env::var("INTERRUPT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9e37_79b9_7f4a_7c15)
            })
            | 1;
        XorShift(seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn spin(n: u64) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

/// Spin iterations that take about `target`.
fn calibrate_spin(target: Duration) -> u64 {
    let probe = 100_000;
    let t0 = Instant::now();
    spin(probe);
    let per = t0.elapsed().as_nanos().max(1) as f64 / probe as f64;
    ((target.as_nanos() as f64 / per) as u64).max(1)
}

/// Rounds per stress run (`INTERRUPT_ROUNDS` overrides).
fn stress_rounds() -> u64 {
    std::env::var("INTERRUPT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// A watchdog that also reports how far a stress run got.
fn stress_watchdog(
    name: &'static str,
    limit: Duration,
    seed: u64,
    done: Arc<AtomicU64>,
) -> common::Watchdog {
    common::watchdog_with(name, limit, move || {
        format!(
            "after {} rounds (seed {seed})",
            done.load(Ordering::Relaxed)
        )
    })
}

/// Where the stress kthread is, for the round under way (nanoseconds
/// since `base`; `u64::MAX`: not yet).
struct Times {
    base: Instant,
    /// Its first `should_stop()` that returned false.
    looked: AtomicU64,
    /// Its last entry into the blocking call, and the return from it.
    entry: AtomicU64,
    exit: AtomicU64,
}

impl Times {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn reset(&self) {
        for a in [&self.looked, &self.entry, &self.exit] {
            a.store(u64::MAX, Ordering::SeqCst);
        }
    }

    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::SeqCst)
    }

    /// `should_stop()` returned false.
    fn looked(&self) {
        if Times::get(&self.looked) == u64::MAX {
            self.looked.store(self.now(), Ordering::SeqCst);
        }
    }

    /// Runs `call`, recording when it was entered and left.
    fn around<R>(&self, call: impl FnOnce() -> R) -> R {
        self.entry.store(self.now(), Ordering::SeqCst);
        let r = call();
        self.exit.store(self.now(), Ordering::SeqCst);
        r
    }
}

/// The stress kthread's function: the fd it blocks on, the round's times,
/// how long to spin between its look at `should_stop()` and the call;
/// returns how often its call returned (`EINTR`, or woken).
type StressBody = fn(RawFd, &Times, u64) -> u32;

/// Creates, wakes and stops `rounds` kthreads that block in `body`, the
/// stop landing at a random moment, and prints where the stops landed.
///
/// Two rounds in three aim at the entry into the call: the kthread spins
/// 0..~20 µs between its look at `should_stop()` and the call (work between
/// the two, where an interruption is spent on nothing), and the stopper
/// waits for that look, then spins a random part of that. The third round
/// stops after a random spin from the wake (range adjusted so that about
/// half of those come before the kthread's first look).
fn stress(name: &'static str, interrupt: bool, body: StressBody) -> Res {
    let rounds = stress_rounds();
    let mut rng = XorShift::from_env_or_clock();
    let seed = rng.0;
    let done = Arc::new(AtomicU64::new(0));
    let _w = stress_watchdog(name, Duration::from_secs(120), seed, done.clone());
    let (r, _w_end) = UnixStream::pair()?;
    let fd = r.as_raw_fd(); // both ends live until every kthread is stopped
    let times = Arc::new(Times {
        base: Instant::now(),
        looked: AtomicU64::new(u64::MAX),
        entry: AtomicU64::new(u64::MAX),
        exit: AtomicU64::new(u64::MAX),
    });
    let max_pre = calibrate_spin(Duration::from_micros(20));
    let mut max_free = calibrate_spin(Duration::from_micros(50));
    eprintln!("{name}: seed {seed} (INTERRUPT_SEED), {rounds} rounds, kthread spin 0..{max_pre}");
    let start = Instant::now();
    let (mut before_look, mut in_spin, mut resent, mut in_call) = (0u64, 0u64, 0u64, 0u64);
    // The slowest stops: (time, where it came, how long the last call blocked).
    let mut slowest: Vec<(Duration, &str, Duration)> = Vec::new();
    let (mut free_before, mut free) = (0u64, 0u64);
    for i in 0..rounds {
        times.reset();
        let pre = rng.next() % max_pre;
        let t = times.clone();
        let k = Builder::new(name)
            .interrupt_on_stop(interrupt)
            .create(move || body(fd, &t, pre))?;
        k.wake_up();
        let aimed = i % 3 != 0;
        if aimed {
            // Spinning, not yielding: the look is to be seen at once.
            let t0 = Instant::now();
            for n in 0u64.. {
                if Times::get(&times.looked) != u64::MAX {
                    break;
                }
                std::hint::spin_loop();
                if n % 4096 == 4095 {
                    assert!(t0.elapsed() < BRIEF, "round {i}: the kthread never looked");
                    thread::yield_now(); // it may be waiting for this CPU
                }
            }
            spin(rng.next() % (pre + max_pre / 4 + 1));
        } else {
            spin(rng.next() % max_free);
        }
        let requested = times.now();
        let t0 = Instant::now();
        let returned = k.stop()?;
        let took = t0.elapsed();
        let (looked, entry, exit) = (
            Times::get(&times.looked),
            Times::get(&times.entry),
            Times::get(&times.exit),
        );
        assert_eq!(
            looked == u64::MAX,
            entry == u64::MAX,
            "round {i}: looked, then called"
        );
        assert_eq!(
            returned > 0,
            entry != u64::MAX,
            "round {i}: the call returned once per entry"
        );
        let blocked = Duration::from_nanos(exit.saturating_sub(entry));
        let landed = if entry == u64::MAX {
            before_look += 1; // should_stop() was true at its first look
            "before the look"
        } else if entry > requested {
            in_spin += 1;
            // The interruption came before the call and was spent on
            // nothing: the call blocked until the re-send (after 1 ms).
            if blocked >= Duration::from_micros(900) {
                resent += 1;
            }
            "before the call"
        } else {
            in_call += 1;
            "in the call"
        };
        slowest.push((took, landed, blocked));
        slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        slowest.truncate(3);
        if !aimed {
            free += 1;
            free_before += u64::from(entry == u64::MAX);
            if free == 100 {
                match free_before {
                    0..=29 => max_free = (max_free * 9 / 10).max(2),
                    30..=70 => {}
                    _ => max_free += max_free / 5 + 1,
                }
                (free_before, free) = (0, 0);
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    eprintln!(
        "{name}: {rounds} rounds in {:?}; the stop came before the first look {before_look}, \
         between a look and the call {in_spin} (the call then blocked >= 0.9 ms, i.e. until a \
         re-send if interrupt_on_stop: {resent}), in the call {in_call}; slowest stops \
         (time, where, call blocked): {slowest:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn stress_interrupt_on_stop_against_the_entry_into_read() -> Res {
    stress("stress-intr", true, |fd, times, pre| {
        let mut buf = [0u8; 64];
        let mut eintr = 0;
        while !should_stop() {
            times.looked();
            spin(pre);
            match times.around(|| read_raw(fd, &mut buf)) {
                Err(libc::EINTR) => eintr += 1, // interrupted: look at should_stop()
                other => panic!("read: {other:?}"),
            }
        }
        eintr
    })
}

#[test]
fn stress_stop_fd_against_the_entry_into_poll() -> Res {
    stress("stress-stopfd", false, |fd, times, pre| {
        let me = kthread::current().expect("a kthread");
        let sfd = me.stop_fd().expect("stop fd").as_raw_fd();
        let mut woke = 0;
        while !should_stop() {
            times.looked();
            spin(pre);
            match times.around(|| poll_in(&[fd, sfd], -1)) {
                Ok(_) => woke += 1,
                Err(e) => panic!("poll: {}", os_err(e)),
            }
        }
        woke
    })
}

// ---- stop callbacks -------------------------------------------------------

/// Per-callback records: how often each ran, and on which thread.
struct Runs {
    count: Vec<AtomicU32>,
    on: Vec<AtomicI32>,
}

impl Runs {
    fn new(n: usize) -> Arc<Runs> {
        Arc::new(Runs {
            count: (0..n).map(|_| AtomicU32::new(0)).collect(),
            on: (0..n).map(|_| AtomicI32::new(0)).collect(),
        })
    }

    fn register(self: &Arc<Runs>, t: &Task, i: usize) -> StopCallback {
        let runs = self.clone();
        t.on_stop(move || {
            runs.on[i].store(gettid(), Ordering::SeqCst);
            runs.count[i].fetch_add(1, Ordering::SeqCst);
        })
    }

    fn count(&self, i: usize) -> u32 {
        self.count[i].load(Ordering::SeqCst)
    }

    fn on(&self, i: usize) -> i32 {
        self.on[i].load(Ordering::SeqCst)
    }
}

#[test]
fn stop_callbacks_run_exactly_once_under_racing_stops_and_registrations() -> Res {
    let _w = watchdog("callbacks_exactly_once", WATCHDOG);
    const ROUNDS: usize = 200;
    const BEFORE: usize = 4;
    const RACERS: usize = 3;
    const PER_RACER: usize = 6;
    const STOPPERS: usize = 3;
    const AFTER: usize = 3;
    const TOTAL: usize = BEFORE + RACERS * PER_RACER + AFTER;
    for round in 0..ROUNDS {
        let k = kthread::run("cb-race", sleep_until_stopped)?;
        let runs = Runs::new(TOTAL);
        let mut guards: Vec<StopCallback> =
            (0..BEFORE).map(|i| runs.register(k.task(), i)).collect();
        let barrier = Barrier::new(RACERS + STOPPERS);
        thread::scope(|s| {
            let racers: Vec<_> = (0..RACERS)
                .map(|r| {
                    let (k, runs, barrier) = (&k, &runs, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..PER_RACER)
                            .map(|j| runs.register(k.task(), BEFORE + r * PER_RACER + j))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for _ in 0..STOPPERS {
                s.spawn(|| {
                    barrier.wait();
                    k.request_stop();
                });
            }
            for h in racers {
                guards.extend(h.join().expect("racer"));
            }
        });
        // Every stopper and registrant returned: everything registered so
        // far ran, once (before the stop by a stopper, after it at once).
        for i in 0..BEFORE + RACERS * PER_RACER {
            assert_eq!(runs.count(i), 1, "round {round}: callback {i}");
        }
        let task = k.task().clone();
        k.stop()?; // not the first stop: runs nothing again
                   // After the stop: at once, here, before on_stop returns.
        let me = gettid();
        for i in BEFORE + RACERS * PER_RACER..TOTAL {
            guards.push(runs.register(&task, i));
            assert_eq!(
                runs.count(i),
                1,
                "round {round}: after-stop callback {i} ran at once"
            );
            assert_eq!(runs.on(i), me, "round {round}: on the registrant");
        }
        drop(guards);
        for i in 0..TOTAL {
            assert_eq!(
                runs.count(i),
                1,
                "round {round}: callback {i} after the guards' drop"
            );
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum StopBy {
    Stop,
    RequestStop,
    StopTimeout,
    Drop,
}

#[test]
fn a_stop_callback_runs_on_the_stopping_thread_before_the_stop_waits() -> Res {
    let _w = watchdog("callback_before_wait", WATCHDOG);
    for by in [
        StopBy::Stop,
        StopBy::RequestStop,
        StopBy::StopTimeout,
        StopBy::Drop,
    ] {
        let gate = Arc::new(Completion::new());
        let g = gate.clone();
        // Deaf to should_stop(): only the callback lets it return, so a
        // stop that waited before running the callback would hang.
        let k = kthread::run("cb-before-wait", move || {
            g.wait();
            5
        })?;
        let ran_on = Arc::new(AtomicI32::new(0));
        let r = ran_on.clone();
        let _cb = k.task().on_stop(move || {
            r.store(gettid(), Ordering::SeqCst);
            gate.complete();
        });
        let r = ran_on.clone();
        let (tid, value) = thread::spawn(move || {
            let me = gettid();
            let v = match by {
                StopBy::Stop => k.stop().ok(),
                StopBy::RequestStop => {
                    k.request_stop();
                    assert_eq!(
                        r.load(Ordering::SeqCst),
                        me,
                        "ran before request_stop returned"
                    );
                    k.stop().ok()
                }
                StopBy::StopTimeout => k.stop_timeout(Duration::from_secs(60)).ok(),
                StopBy::Drop => {
                    drop(k);
                    Some(5)
                }
            };
            (me, v)
        })
        .join()
        .expect("stopper");
        assert_eq!(value, Some(5), "{by:?}");
        assert_eq!(
            ran_on.load(Ordering::SeqCst),
            tid,
            "{by:?}: on the stopping thread"
        );
    }
    Ok(())
}

#[test]
fn a_callback_registered_after_the_stop_runs_at_once_on_the_registrant() -> Res {
    let _w = watchdog("callback_after_stop", WATCHDOG);
    let k = kthread::run("cb-after", sleep_until_stopped)?;
    let task = k.task().clone();
    k.request_stop();
    let runs = Runs::new(2);
    let (t, r) = (task.clone(), runs.clone());
    let tid = thread::spawn(move || {
        let g = r.register(&t, 0);
        assert_eq!(r.count(0), 1, "ran before on_stop returned");
        drop(g);
        gettid()
    })
    .join()
    .expect("registrant");
    assert_eq!(runs.on(0), tid);
    k.stop()?;
    assert!(task.has_exited());
    // On an exited task too.
    let g = runs.register(&task, 1);
    assert_eq!((runs.count(1), runs.on(1)), (1, gettid()));
    drop(g);
    assert_eq!((runs.count(0), runs.count(1)), (1, 1));
    Ok(())
}

#[test]
fn a_callback_whose_guard_was_dropped_never_runs() -> Res {
    let _w = watchdog("callback_dropped", WATCHDOG);
    let k = kthread::run("cb-dropped", sleep_until_stopped)?;
    let runs = Runs::new(1);
    drop(runs.register(k.task(), 0));
    k.stop()?;
    assert_eq!(runs.count(0), 0);

    // The drop racing the stop: once the drop has returned, it never runs.
    const ROUNDS: u32 = 500;
    let mut ran_first = 0;
    for round in 0..ROUNDS {
        let k = kthread::run("cb-drop-race", sleep_until_stopped)?;
        let runs = Runs::new(1);
        let g = runs.register(k.task(), 0);
        let barrier = Barrier::new(2);
        let at_drop = thread::scope(|s| {
            let (barrier, runs, k) = (&barrier, &runs, &k);
            let dropper = s.spawn(move || {
                barrier.wait();
                drop(g);
                runs.count(0)
            });
            s.spawn(move || {
                barrier.wait();
                k.request_stop();
            });
            dropper.join().expect("dropper")
        });
        k.stop()?;
        assert_eq!(
            runs.count(0),
            at_drop,
            "round {round}: ran after its guard's drop returned"
        );
        ran_first += at_drop;
    }
    eprintln!("guard drop vs stop: the callback ran first in {ran_first} of {ROUNDS} rounds");
    Ok(())
}

#[test]
fn dropping_the_guard_waits_for_the_callback_running_on_another_thread() -> Res {
    let _w = watchdog("callback_drop_waits", WATCHDOG);
    let k = kthread::run("cb-drop-waits", sleep_until_stopped)?;
    let started = Arc::new(Completion::new());
    let release = Arc::new(Completion::new());
    let finished = Arc::new(AtomicBool::new(false));
    let guard = {
        let (s, r, f) = (started.clone(), release.clone(), finished.clone());
        k.task().on_stop(move || {
            s.complete();
            r.wait();
            f.store(true, Ordering::SeqCst);
        })
    };
    let drop_returned = AtomicBool::new(false);
    let dropper_tid = AtomicI32::new(0);
    thread::scope(|s| {
        // Runs the callback, which blocks until released.
        let stopper = s.spawn(|| k.request_stop());
        assert!(started.wait_timeout(BRIEF), "the callback started");
        let dropper = {
            let (drop_returned, dropper_tid, finished) = (&drop_returned, &dropper_tid, &finished);
            s.spawn(move || {
                dropper_tid.store(gettid(), Ordering::SeqCst);
                drop(guard);
                let fin = finished.load(Ordering::SeqCst);
                drop_returned.store(true, Ordering::SeqCst);
                fin
            })
        };
        // Only so that the release comes while the dropper is inside the
        // drop (asleep on a futex); the verdict is the dropper's own look
        // at `finished` once the drop returned.
        let start = Instant::now();
        loop {
            let tid = dropper_tid.load(Ordering::SeqCst);
            if drop_returned.load(Ordering::SeqCst)
                || (tid != 0
                    && os_state(tid) == Some('S')
                    && syscall_of(tid).is_some_and(|n| nr::FUTEX.contains(&n)))
            {
                break;
            }
            assert!(
                start.elapsed() < BRIEF,
                "the dropper neither returned nor slept"
            );
            thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !drop_returned.load(Ordering::SeqCst),
            "the guard's drop returned while its callback ran on another thread"
        );
        release.complete();
        assert!(
            dropper.join().expect("dropper"),
            "the callback had finished when the drop returned"
        );
        stopper.join().expect("stopper");
    });
    k.stop()?;
    Ok(())
}

#[test]
fn a_guard_dropped_inside_its_own_callback_does_not_deadlock() -> Res {
    let _w = watchdog("callback_drops_itself", WATCHDOG);
    let slot: Arc<Mutex<Option<StopCallback>>> = Arc::new(Mutex::new(None));
    let dropped = Arc::new(AtomicBool::new(false));
    let k = kthread::run("cb-self-drop", sleep_until_stopped)?;
    let g = {
        let (slot, dropped) = (slot.clone(), dropped.clone());
        k.task().on_stop(move || {
            let g = slot.lock().unwrap().take();
            assert!(g.is_some(), "the guard is in its slot");
            drop(g); // on the thread running this callback: must not wait for it
            dropped.store(true, Ordering::SeqCst);
        })
    };
    *slot.lock().unwrap() = Some(g);
    k.stop()?;
    assert!(dropped.load(Ordering::SeqCst));
    assert!(slot.lock().unwrap().is_none());
    Ok(())
}

#[test]
fn a_panicking_callback_leaves_the_others_and_the_stop_alone() -> Res {
    let _w = watchdog("callback_panics", WATCHDOG);
    let k = kthread::run("cb-panics", || {
        sleep_until_stopped();
        9
    })?;
    let runs = Runs::new(2);
    let _a = runs.register(k.task(), 0);
    let _p = k
        .task()
        .on_stop(|| panic!("a stop callback panics (the test expects this message)"));
    let _b = runs.register(k.task(), 1);
    assert_eq!(k.stop()?, 9);
    assert_eq!((runs.count(0), runs.count(1)), (1, 1));
    Ok(())
}

#[test]
fn a_callback_may_register_another_which_runs_at_once_on_the_same_thread() -> Res {
    let _w = watchdog("callback_nested", WATCHDOG);
    let k = kthread::run("cb-nested", sleep_until_stopped)?;
    let runs = Runs::new(1);
    let outer_on = Arc::new(AtomicI32::new(0));
    let inner: Arc<Mutex<Option<StopCallback>>> = Arc::new(Mutex::new(None));
    let _g = {
        let (t, runs, outer_on, inner) = (
            k.task().clone(),
            runs.clone(),
            outer_on.clone(),
            inner.clone(),
        );
        k.task().on_stop(move || {
            outer_on.store(gettid(), Ordering::SeqCst);
            let g = runs.register(&t, 0);
            assert_eq!(runs.count(0), 1);
            *inner.lock().unwrap() = Some(g);
        })
    };
    k.stop()?;
    assert_eq!(runs.count(0), 1);
    assert_eq!(runs.on(0), outer_on.load(Ordering::SeqCst));
    drop(inner.lock().unwrap().take());
    Ok(())
}

/// Regression: a registrant that came after the stop used to run not only
/// its own callback but every one still on the list, including those
/// registered *before* the stop, which then ran on the registrant instead
/// of the stopper, and were still running when `request_stop()` returned.
#[test]
fn callbacks_registered_before_the_stop_run_on_the_stopper_and_finish_before_it_returns() -> Res {
    let _w = watchdog("callback_order", WATCHDOG);
    let k = kthread::run("cb-order", sleep_until_stopped)?;
    let first_started = Arc::new(Completion::new());
    let release_first = Arc::new(Completion::new());
    let release_second = Arc::new(Completion::new());
    let second_on = Arc::new(AtomicI32::new(0));
    let second_done = Arc::new(AtomicBool::new(false));
    let _first = {
        let (s, r) = (first_started.clone(), release_first.clone());
        k.task().on_stop(move || {
            s.complete();
            r.wait();
        })
    };
    let _second = {
        let (r, on, done) = (
            release_second.clone(),
            second_on.clone(),
            second_done.clone(),
        );
        k.task().on_stop(move || {
            on.store(gettid(), Ordering::SeqCst);
            r.wait();
            done.store(true, Ordering::SeqCst);
        })
    };
    let stopper_tid = AtomicI32::new(0);
    let late_returned = AtomicBool::new(false);
    let (late_tid, second_done_at_stop) = thread::scope(|s| {
        let stopper = s.spawn(|| {
            stopper_tid.store(gettid(), Ordering::SeqCst);
            k.request_stop(); // runs the first callback, then (should) the second
            second_done.load(Ordering::SeqCst)
        });
        assert!(first_started.wait_timeout(BRIEF));
        // While the stopper is inside the first callback, a registration.
        let late = s.spawn(|| {
            let runs = Runs::new(1);
            let g = runs.register(k.task(), 0);
            assert_eq!(runs.count(0), 1, "its own callback ran at once");
            drop(g);
            late_returned.store(true, Ordering::SeqCst);
            gettid()
        });
        // Correct: the late registrant returns; the second callback waits
        // for the stopper. Defect: the registrant is now running it.
        wait_briefly_until(
            "late registrant returned or ran the second callback",
            BRIEF,
            || late_returned.load(Ordering::SeqCst) || second_on.load(Ordering::SeqCst) != 0,
        );
        release_first.complete();
        // Correct: the stopper runs the second callback now. Defect: the
        // stopper's request_stop() returns with it still running.
        wait_briefly_until(
            "second callback started on the stopper, or the stop returned",
            BRIEF,
            || {
                second_on.load(Ordering::SeqCst) == stopper_tid.load(Ordering::SeqCst)
                    || stopper.is_finished()
            },
        );
        release_second.complete();
        let done = stopper.join().expect("stopper");
        (late.join().expect("late registrant"), done)
    });
    k.stop()?;
    let (second, stopper) = (
        second_on.load(Ordering::SeqCst),
        stopper_tid.load(Ordering::SeqCst),
    );
    let mut wrong = Vec::new();
    if second != stopper {
        wrong.push(format!(
            "a callback registered before the stop ran on thread {second} (the late registrant \
             is {late_tid}), not on the stopper {stopper}"
        ));
    }
    if !second_done_at_stop {
        wrong
            .push("request_stop() returned while a callback registered before it still ran".into());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("; "));
    Ok(())
}

// ---- the stop fd ------------------------------------------------------------

fn parkable_idle() {
    while !should_stop() {
        if should_park() {
            parkme();
            continue;
        }
        set_current_state(TaskState::Interruptible);
        if !should_stop() && !should_park() {
            schedule();
        }
        set_current_state(TaskState::Running);
    }
}

fn freezable_idle() {
    while !freezable_should_stop() {
        set_current_state(TaskState::Interruptible.freezable());
        if !should_stop() {
            schedule();
        }
        set_current_state(TaskState::Running);
    }
}

#[test]
fn the_stop_fd_follows_park_and_unpark_and_stays_readable_after_the_stop() -> Res {
    let _w = watchdog("stop_fd_park", WATCHDOG);
    let k = kthread::run("fd-park", parkable_idle)?;
    let t = k.task().clone();
    let fd = t.stop_fd()?.as_raw_fd();
    assert_eq!(t.stop_fd()?.as_raw_fd(), fd, "one fd per task");
    assert!(!readable(fd), "nothing requested yet");
    for _ in 0..3 {
        k.park()?;
        assert!(readable(fd), "parked");
        k.unpark();
        assert!(!readable(fd), "unparked");
    }
    k.park()?;
    k.request_stop(); // the stop's unpark leaves it readable
    assert!(readable(fd), "stop requested while parked");
    k.stop()?;
    assert!(readable(fd), "stopped");

    // Made after the request: readable from the start.
    let k = kthread::run("fd-late-park", parkable_idle)?;
    k.park()?;
    let t = k.task().clone();
    let fd = t.stop_fd()?.as_raw_fd();
    assert!(readable(fd), "made while parked");
    k.unpark();
    assert!(!readable(fd));
    k.stop()?;
    assert!(readable(fd));

    let k = kthread::create("fd-late-stop", || ())?; // never woken
    k.request_stop();
    let t = k.task().clone();
    assert!(
        readable(t.stop_fd()?.as_raw_fd()),
        "made after the stop request"
    );
    assert!(k.stop().is_err());
    Ok(())
}

#[test]
fn the_stop_fd_of_a_freezable_kthread_is_readable_while_the_system_is_frozen() -> Res {
    let _s = serial();
    let _w = watchdog("stop_fd_freeze", WATCHDOG);
    let fz = Builder::new("fd-freeze")
        .freezable(true)
        .run(freezable_idle)?;
    let late = Builder::new("fd-freeze-late")
        .freezable(true)
        .run(freezable_idle)?;
    let plain = kthread::run("fd-nofreeze", sleep_until_stopped)?;
    let (tf, tl, tp) = (fz.task().clone(), late.task().clone(), plain.task().clone());
    let fd = tf.stop_fd()?.as_raw_fd();
    let pfd = tp.stop_fd()?.as_raw_fd();
    assert!(!readable(fd) && !readable(pfd));
    for round in 0..2 {
        let guard = freezer::freeze(FREEZE)?;
        assert_eq!(tf.state(), TaskState::Frozen);
        assert!(readable(fd), "round {round}: frozen");
        assert!(
            !readable(pfd),
            "round {round}: a kthread that is not freezable"
        );
        // The first call comes during the freeze, in round 0.
        let lfd = tl.stop_fd()?.as_raw_fd();
        assert!(readable(lfd), "round {round}: made during the freeze");
        drop(guard);
        assert!(!readable(fd), "round {round}: thawed");
        assert!(!readable(lfd), "round {round}: thawed (late)");
    }
    fz.stop()?;
    assert!(readable(fd), "stopped");
    late.stop()?;
    plain.stop()?;
    Ok(())
}

// ---- signals ------------------------------------------------------------------

/// A kthread that allows `allow`, then runs `body` once the test says go.
struct SigKthread<T> {
    k: Kthread<T>,
    /// The signals are allowed.
    ready: Arc<Completion>,
    go: Arc<Completion>,
    /// `body` returned (by itself: no stop has woken anything in it).
    done: Arc<Completion>,
}

fn sig_kthread<T: Send + 'static>(
    name: &str,
    allow: &'static [c_int],
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<SigKthread<T>, Error> {
    let ready = Arc::new(Completion::new());
    let go = Arc::new(Completion::new());
    let done = Arc::new(Completion::new());
    let (r, g, d) = (ready.clone(), go.clone(), done.clone());
    let k = kthread::run(name, move || {
        for &s in allow {
            kthread::allow_signal(s).expect("allow_signal");
        }
        r.complete();
        g.wait();
        let v = body();
        d.complete();
        v
    })?;
    Ok(SigKthread { k, ready, go, done })
}

impl<T> SigKthread<T> {
    fn wait_ready(&self) {
        assert!(
            self.ready.wait_timeout(BRIEF),
            "the kthread allowed its signals"
        );
    }

    /// Waits for `body` to return by itself, then stops the kthread: the
    /// stop's wake must not be what ended one of its sleeps.
    fn finish(self) -> Result<T, kthread::StopError> {
        let by_itself = self.done.wait_timeout(Duration::from_secs(10));
        let v = self.k.stop();
        assert!(by_itself, "the kthread's body did not return by itself");
        v
    }
}

fn until_state(t: &Task, state: TaskState) {
    wait_briefly_until(&format!("{} in {state:?}", t.name()), BRIEF, || {
        t.state() == state
    });
}

#[test]
fn a_signal_the_kthread_did_not_allow_is_ignored() -> Res {
    let _w = watchdog("signal_not_allowed", WATCHDOG);
    let s = sig_kthread("sig-ignored", &[libc::SIGUSR2], || {
        (
            kthread::signal_pending(),
            kthread::fatal_signal_pending(),
            kthread::dequeue_signal(),
        )
    })?;
    s.wait_ready();
    for sig in [
        libc::SIGUSR1,
        libc::SIGTERM,
        libc::SIGKILL,
        libc::SIGRTMIN(),
    ] {
        s.k.task().send_signal(sig)?;
    }
    assert!(!s.k.task().signal_pending());
    s.go.complete();
    assert_eq!(s.finish()?, (false, false, None));

    let k = kthread::run("sig-none", sleep_until_stopped)?; // allowed nothing
    k.task().send_signal(libc::SIGUSR1)?;
    assert!(!k.task().signal_pending() && !k.task().fatal_signal_pending());
    k.stop()?;
    Ok(())
}

#[test]
fn disallow_signal_forgets_it_and_ignores_it_from_then_on() -> Res {
    let _w = watchdog("signal_disallow", WATCHDOG);
    let s = sig_kthread("sig-disallow", &[libc::SIGUSR1, libc::SIGUSR2], || {
        let before = kthread::signal_pending();
        kthread::disallow_signal(libc::SIGUSR1).expect("disallow");
        let after = kthread::signal_pending();
        let me = kthread::current().expect("a kthread");
        me.send_signal(libc::SIGUSR1).expect("send");
        let resent = kthread::signal_pending();
        me.send_signal(libc::SIGUSR2).expect("send"); // still allowed
        (
            before,
            after,
            resent,
            kthread::dequeue_signal(),
            kthread::dequeue_signal(),
        )
    })?;
    s.wait_ready();
    s.k.task().send_signal(libc::SIGUSR1)?;
    assert!(s.k.task().signal_pending());
    s.go.complete();
    assert_eq!(s.finish()?, (true, false, false, Some(libc::SIGUSR2), None));
    Ok(())
}

/// The signals pending for the whole process (`ShdPnd`).
fn process_shdpnd() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .expect("ShdPnd line");
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

#[test]
fn fatal_signals_sent_to_a_kthread_never_reach_the_process() -> Res {
    let _w = watchdog("signal_fatal_stays_inside", WATCHDOG);
    const SIGS: &[c_int] = &[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGABRT,
        libc::SIGKILL,
        libc::SIGTERM,
    ];
    let s = sig_kthread("sig-fatal", SIGS, || {
        let fatal = kthread::fatal_signal_pending();
        let mut got = Vec::new();
        while let Some(sig) = kthread::dequeue_signal() {
            got.push(sig);
        }
        (fatal, got, kthread::signal_pending())
    })?;
    s.wait_ready();
    let tid = s.k.task().tid();
    for &sig in SIGS.iter().rev() {
        s.k.task().send_signal(sig)?;
    }
    // Had any reached the OS, the process would be gone (or SIGTERM would
    // sit queued on the kthread, which blocks it).
    let bits = SIGS.iter().fold(0, |m, &s| m | sig_bit(s));
    assert_eq!(
        thread_sigpnd(tid) & bits,
        0,
        "queued by the OS on the kthread"
    );
    assert_eq!(
        process_shdpnd() & bits,
        0,
        "queued by the OS on the process"
    );
    s.k.task().send_signal(0)?; // still alive
    assert!(s.k.task().fatal_signal_pending());
    s.go.complete();
    let mut want = SIGS.to_vec();
    want.sort_unstable();
    assert_eq!(s.finish()?, (true, want, false));
    Ok(())
}

#[test]
fn allow_signal_is_for_kthreads_only() -> Res {
    assert!(matches!(
        kthread::allow_signal(libc::SIGUSR1),
        Err(Error::NotAKthread)
    ));
    assert!(matches!(
        kthread::disallow_signal(libc::SIGUSR1),
        Err(Error::NotAKthread)
    ));
    let on_std = thread::spawn(|| {
        (
            matches!(
                kthread::allow_signal(libc::SIGUSR1),
                Err(Error::NotAKthread)
            ),
            kthread::signal_pending(),
            kthread::dequeue_signal(),
        )
    })
    .join()
    .expect("std thread");
    assert_eq!(on_std, (true, false, None));
    // A thread that uses the library's sleeps gets a task, but is still no kthread.
    let adopted = thread::spawn(|| {
        set_current_state(TaskState::Interruptible);
        schedule_timeout(Duration::from_millis(1));
        matches!(
            kthread::allow_signal(libc::SIGUSR1),
            Err(Error::NotAKthread)
        )
    })
    .join()
    .expect("adopted thread");
    assert!(adopted);
    Ok(())
}

#[test]
fn signal_numbers_out_of_range_are_refused() -> Res {
    let _w = watchdog("signal_invalid", WATCHDOG);
    let bad = [-1, libc::SIGRTMAX() + 1, 65, 1000];
    let k = kthread::run("sig-invalid", move || {
        let mut wrong = Vec::new();
        for sig in [0].iter().chain(bad.iter()).copied() {
            if !matches!(kthread::allow_signal(sig), Err(Error::InvalidSignal(s)) if s == sig) {
                wrong.push(("allow", sig));
            }
            if !matches!(kthread::disallow_signal(sig), Err(Error::InvalidSignal(s)) if s == sig) {
                wrong.push(("disallow", sig));
            }
        }
        wrong
    })?;
    for sig in bad {
        assert!(
            matches!(k.task().send_signal(sig), Err(Error::InvalidSignal(s)) if s == sig),
            "send_signal({sig})"
        );
    }
    assert!(
        matches!(kthread::allow_signal(0), Err(Error::InvalidSignal(0))),
        "checked first"
    );
    assert_eq!(k.stop()?, Vec::<(&str, c_int)>::new());
    Ok(())
}

#[test]
fn send_signal_zero_checks_the_kthread_is_alive_and_an_exited_one_is_refused() -> Res {
    let _w = watchdog("signal_exited", WATCHDOG);
    let k = kthread::run("sig-alive", sleep_until_stopped)?;
    let t = k.task().clone();
    t.send_signal(0)?;
    k.stop()?;
    assert!(matches!(t.send_signal(0), Err(Error::Exited)));
    assert!(matches!(t.send_signal(libc::SIGUSR1), Err(Error::Exited)));
    // One that returned by itself, not yet stopped.
    let k = kthread::run("sig-returned", || ())?;
    let t = k.task().clone();
    wait_briefly_until("returned", BRIEF, || t.has_exited());
    assert!(matches!(t.send_signal(0), Err(Error::Exited)));
    k.stop()?;
    Ok(())
}

#[test]
fn wait_event_interruptible_is_ended_by_a_signal() -> Res {
    let _w = watchdog("signal_wait_event", WATCHDOG);
    let s = sig_kthread("sig-wait-event", &[libc::SIGUSR1], || {
        let wq = WaitQueue::new();
        let r = wq.wait_event_interruptible(|| false);
        let pending = kthread::signal_pending();
        let timed = wq.wait_event_interruptible_timeout(|| false, Duration::from_secs(60));
        // An uninterruptible wait is not ended by it: runs to its timeout.
        let plain = wq.wait_event_timeout(|| false, Duration::from_millis(50));
        // The condition is checked first, signal or not.
        let holds = wq.wait_event_interruptible(|| true);
        (r, pending, timed, plain, holds)
    })?;
    s.wait_ready();
    s.go.complete();
    until_state(s.k.task(), TaskState::Interruptible);
    s.k.task().send_signal(libc::SIGUSR1)?;
    let (r, pending, timed, plain, holds) = s.finish()?;
    assert_eq!(r, Err(kthread::Interrupted));
    assert!(pending);
    assert_eq!(timed, Err(kthread::Interrupted));
    assert_eq!(plain, None);
    assert_eq!(holds, Ok(()));
    Ok(())
}

#[test]
fn schedule_in_an_interruptible_state_returns_at_once_while_a_signal_is_pending() -> Res {
    let _w = watchdog("signal_schedule", WATCHDOG);
    let returned = Arc::new(Completion::new());
    let rt = returned.clone();
    let s = sig_kthread("sig-schedule", &[libc::SIGUSR1], move || {
        set_current_state(TaskState::Interruptible);
        schedule(); // nothing wakes it but the pending signal
        rt.complete();
        set_current_state(TaskState::Interruptible);
        let interruptible = schedule_timeout(Duration::from_secs(60));
        set_current_state(TaskState::Uninterruptible);
        let uninterruptible = schedule_timeout(Duration::from_millis(50));
        set_current_state(TaskState::Killable); // SIGUSR1 is not fatal
        let killable = schedule_timeout(Duration::from_millis(50));
        kthread::flush_signals();
        set_current_state(TaskState::Interruptible);
        let flushed = schedule_timeout(Duration::from_millis(50));
        (interruptible, uninterruptible, killable, flushed)
    })?;
    s.wait_ready();
    s.k.task().send_signal(libc::SIGUSR1)?;
    s.go.complete();
    if !returned.wait_timeout(Duration::from_secs(10)) {
        s.k.task().wake_up();
        panic!("schedule() in Interruptible slept with a signal pending");
    }
    let (i, u, k, f) = s.finish()?;
    assert!(
        i > Duration::from_secs(50),
        "interruptible: slept, {i:?} left"
    );
    assert_eq!((u, k, f), (Duration::ZERO, Duration::ZERO, Duration::ZERO));
    Ok(())
}

#[test]
fn an_interruptible_sleep_for_ends_early_on_a_signal_with_the_time_left() -> Res {
    let _w = watchdog("signal_sleep_for", WATCHDOG);
    let s = sig_kthread("sig-sleep-for", &[libc::SIGUSR1], || {
        let left = kthread::task::sleep_for(Duration::from_secs(60), TaskState::Interruptible);
        let pending = kthread::signal_pending();
        let t0 = Instant::now();
        let plain = kthread::task::sleep_for(Duration::from_millis(50), TaskState::Uninterruptible);
        (left, pending, plain, t0.elapsed())
    })?;
    s.wait_ready();
    s.go.complete();
    until_state(s.k.task(), TaskState::Interruptible);
    s.k.task().send_signal(libc::SIGUSR1)?;
    let (left, pending, plain, slept) = s.finish()?;
    assert!(
        left > Duration::ZERO && left < Duration::from_secs(60),
        "{left:?} left"
    );
    assert!(pending, "sleep_for does not flush it");
    assert_eq!(plain, Duration::ZERO);
    assert!(
        slept >= Duration::from_millis(50),
        "the uninterruptible sleep slept"
    );
    Ok(())
}

#[test]
fn dequeue_signal_takes_the_lowest_pending_first() -> Res {
    let _w = watchdog("signal_dequeue", WATCHDOG);
    static ALLOWED: [c_int; 5] = [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGTERM, 0];
    let rtmin = libc::SIGRTMIN();
    let mut allowed = ALLOWED;
    allowed[4] = rtmin;
    let allowed: &'static [c_int] = Box::leak(Box::new(allowed));
    let s = sig_kthread("sig-dequeue", allowed, || {
        let mut got = Vec::new();
        while let Some(sig) = kthread::dequeue_signal() {
            got.push(sig);
        }
        (got, kthread::dequeue_signal(), kthread::signal_pending())
    })?;
    s.wait_ready();
    for sig in [
        rtmin,
        libc::SIGTERM,
        libc::SIGUSR2,
        libc::SIGUSR1,
        libc::SIGHUP,
        libc::SIGTERM,
    ] {
        s.k.task().send_signal(sig)?;
    }
    s.go.complete();
    let want = vec![
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTERM,
        rtmin,
    ];
    assert_eq!(s.finish()?, (want, None, false));
    Ok(())
}

#[test]
fn a_killable_sleep_is_ended_by_sigkill_but_not_by_sigterm() -> Res {
    let _w = watchdog("signal_killable", WATCHDOG);
    let stage = Arc::new(Completion::new());
    let st = stage.clone();
    let s = sig_kthread("sig-killable", &[libc::SIGKILL, libc::SIGTERM], move || {
        // SIGTERM sent during the sleep: it runs to its timeout.
        set_current_state(TaskState::Killable);
        let term_during = schedule_timeout(Duration::from_millis(300));
        let term_pending = kthread::signal_pending() && !kthread::fatal_signal_pending();
        // SIGTERM pending before it: the same.
        set_current_state(TaskState::Killable);
        let term_before = schedule_timeout(Duration::from_millis(50));
        st.complete();
        // SIGKILL sent during the sleep: it ends early.
        set_current_state(TaskState::Killable);
        let kill_during = schedule_timeout(Duration::from_secs(60));
        let fatal = kthread::fatal_signal_pending();
        // SIGKILL pending: a killable sleep returns at once, on a queue too.
        set_current_state(TaskState::Killable);
        let kill_before = schedule_timeout(Duration::from_secs(60));
        let wq = WaitQueue::new();
        let w = wq.prepare_to_wait(TaskState::Killable);
        let on_queue = schedule_timeout(Duration::from_secs(60));
        drop(w);
        (
            term_during,
            term_pending,
            term_before,
            kill_during,
            fatal,
            kill_before,
            on_queue,
        )
    })?;
    s.wait_ready();
    s.go.complete();
    until_state(s.k.task(), TaskState::Killable);
    s.k.task().send_signal(libc::SIGTERM)?;
    assert!(stage.wait_timeout(BRIEF), "past the SIGTERM sleeps");
    until_state(s.k.task(), TaskState::Killable);
    s.k.task().send_signal(libc::SIGKILL)?;
    let (td, tp, tb, kd, fatal, kb, q) = s.finish()?;
    assert_eq!(
        (td, tp, tb),
        (Duration::ZERO, true, Duration::ZERO),
        "SIGTERM"
    );
    assert!(
        kd > Duration::ZERO && kd < Duration::from_secs(60),
        "SIGKILL during: {kd:?} left"
    );
    assert!(fatal);
    assert!(kb > Duration::from_secs(50), "SIGKILL before: {kb:?} left");
    assert!(
        q > Duration::from_secs(50),
        "SIGKILL before, on a queue: {q:?} left"
    );
    Ok(())
}

static USR1_HANDLED: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_usr1(_: c_int) {
    USR1_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// The process's handler address for `sig`.
fn handler_of(sig: c_int) -> usize {
    // SAFETY: an all-zero sigaction is a valid out-parameter; a null new
    // action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn the_process_handler_of_an_allowed_signal_is_never_replaced_nor_called() -> Res {
    let _w = watchdog("signal_process_handler", WATCHDOG);
    let ours = on_usr1 as extern "C" fn(c_int) as usize;
    // SAFETY: a plain handler that only bumps an atomic (async-signal-safe).
    // It stays installed: no SIGUSR1 is ever sent to this process.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ours;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let s = sig_kthread("sig-handler", &[libc::SIGUSR1], || {
        (kthread::signal_pending(), handler_of(libc::SIGUSR1))
    })?;
    s.wait_ready();
    assert_eq!(
        handler_of(libc::SIGUSR1),
        ours,
        "allow_signal left it alone"
    );
    for _ in 0..3 {
        s.k.task().send_signal(libc::SIGUSR1)?;
    }
    assert_eq!(thread_sigpnd(s.k.task().tid()) & sig_bit(libc::SIGUSR1), 0);
    s.go.complete();
    assert_eq!(s.finish()?, (true, ours));
    assert_eq!(
        USR1_HANDLED.load(Ordering::Relaxed),
        0,
        "the process's handler ran"
    );
    assert_eq!(handler_of(libc::SIGUSR1), ours, "still installed");
    let sig = kthread::interrupt_signal().expect("chosen by now");
    assert!(sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() && sig != libc::SIGUSR1);
    Ok(())
}

// ---- re-sends that outlive what they were for ----------------------------------

/// Counts the `EINTR`s a 300 ms `poll()` sleep gets.
fn eintrs_in_300_ms() -> u32 {
    let end = Instant::now() + Duration::from_millis(300);
    let mut eintr = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return eintr;
        }
        match poll_in(&[], left.as_millis().max(1) as c_int) {
            Ok(_) => {}
            Err(libc::EINTR) => eintr += 1,
            Err(e) => panic!("poll: {}", os_err(e)),
        }
    }
}

/// Regression: the request's flag used to be set before its `unacked`
/// bit, so a kthread that saw `should_stop()` true in between never
/// acknowledged it, and was re-sent the interruption (up to every 64 ms)
/// for as long as it ran on without calling `should_stop()` again. The
/// race hit about one round in three.
#[test]
fn no_interruption_is_re_sent_once_the_kthread_has_seen_the_stop() -> Res {
    let _w = watchdog("resend_after_seen", WATCHDOG);
    let mut counts = Vec::new();
    for _ in 0..20 {
        let spinning = Arc::new(AtomicBool::new(false));
        let sp = spinning.clone();
        let k = Builder::new("intr-seen")
            .interrupt_on_stop(true)
            .run(move || {
                sp.store(true, Ordering::Release);
                while !should_stop() {
                    std::hint::spin_loop(); // sees the stop the moment it is set
                }
                // Seen: from here nothing should interrupt us again.
                eintrs_in_300_ms()
            })?;
        // A stop fd makes the stop do more between its flag and `unacked`.
        let _fd = k.task().stop_fd()?;
        wait_briefly_until("spinning", BRIEF, || spinning.load(Ordering::Acquire));
        counts.push(k.stop()?);
    }
    assert!(
        counts.iter().all(|&n| n <= 1),
        "EINTRs in the 300 ms after should_stop() had returned true, per round: {counts:?}"
    );
    Ok(())
}

/// Regression: `disallow_signal` used to forget the pending signal but not
/// that it was unseen, so the interruption was re-sent (up to every 64 ms)
/// until the kthread exited or called `flush_signals`.
#[test]
fn no_interruption_is_re_sent_for_a_signal_disallow_signal_forgot() -> Res {
    let _w = watchdog("resend_after_disallow", WATCHDOG);
    let s = sig_kthread("sig-forgot", &[libc::SIGUSR1], || {
        kthread::disallow_signal(libc::SIGUSR1).expect("disallow");
        assert!(!kthread::signal_pending());
        eintrs_in_300_ms()
    })?;
    s.wait_ready();
    s.k.task().send_signal(libc::SIGUSR1)?;
    s.go.complete();
    let eintr = s.finish()?;
    assert!(
        eintr <= 1,
        "{eintr} EINTRs after the only pending signal was disallowed"
    );
    Ok(())
}

/// As in Linux 5.11+ (`kthread_stop()` sets `TIF_NOTIFY_SIGNAL`), a stop
/// counts as a pending signal: a long interruptible sleep ends at once with
/// the time left, a later one does not sleep at all, and `flush_signals`
/// does not clear it; no `interrupt_on_stop` is needed for the library's
/// own sleeps.
#[test]
fn a_stop_ends_the_library_s_interruptible_sleeps_and_stays_pending() -> Res {
    let _w = watchdog("stop_ends_sleep_for", WATCHDOG);
    let k = kthread::run("stop-sleep-for", || {
        let left = kthread::task::sleep_for(Duration::from_secs(60), TaskState::Interruptible);
        kthread::flush_signals();
        let t0 = Instant::now();
        let again = kthread::task::sleep_for(Duration::from_secs(60), TaskState::Interruptible);
        (
            left,
            again,
            t0.elapsed(),
            kthread::signal_pending(),
            kthread::fatal_signal_pending(),
        )
    })?;
    until_state(k.task(), TaskState::Interruptible);
    let (left, again, took, pending, fatal) = k.stop()?;
    assert!(
        left > Duration::ZERO,
        "the stop ended the first sleep: {left:?} left"
    );
    assert!(
        again > Duration::from_secs(59),
        "the second did not sleep: {again:?} left"
    );
    assert!(
        took < Duration::from_secs(5),
        "the second sleep took {took:?}"
    );
    assert!(
        pending && !fatal,
        "a stop is a pending, not a fatal, signal"
    );
    Ok(())
}

/// `list()` and `ps()` show which kthreads can be interrupted and which
/// have a signal pending.
#[test]
fn the_registry_shows_interruptible_kthreads_and_pending_signals() -> Res {
    let _w = watchdog("registry_hooks", WATCHDOG);
    let plain = kthread::run("reg-plain", sleep_until_stopped)?;
    let allowed = Arc::new(kthread::Completion::new());
    let release = Arc::new(kthread::Completion::new());
    let (a, r) = (allowed.clone(), release.clone());
    let hooked = kthread::Builder::new("reg-hooked")
        .interrupt_on_stop(true)
        .run(move || {
            kthread::allow_signal(libc::SIGUSR1).expect("allow");
            a.complete();
            r.wait(); // uninterruptible: the signal stays pending, no busy loop
        })?;
    allowed.wait();
    hooked.task().send_signal(libc::SIGUSR1)?;
    let (p, h) = (
        row(plain.task().tid()).expect("listed"),
        row(hooked.task().tid()).expect("listed"),
    );
    assert!(
        !p.flags.interruptible && !p.flags.signal_pending,
        "{:?}",
        p.flags
    );
    assert!(
        h.flags.interruptible && h.flags.signal_pending,
        "{:?}",
        h.flags
    );
    let table = kthread::ps().to_string();
    let flags_of = |name: &str| {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no ps line for {name}:\n{table}"));
        line.split_whitespace().nth(3).unwrap_or("").to_owned()
    };
    // (An empty FLAGS column is blank, so only a non-empty one is read.)
    let hf = flags_of("reg-hooked");
    assert!(hf.contains('i') && hf.contains('g'), "FLAGS {hf}\n{table}");
    release.complete();
    plain.stop()?;
    hooked.stop()?;
    Ok(())
}

/// A mask field (`SigBlk`, ...) of thread `tid`'s status.
fn thread_sig_field(tid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).expect("status");
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|l| l.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{field} line"));
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

/// Every asynchronous signal stays blocked on kthreads; one that opted in
/// (`interrupt_on_stop`, or an allowed signal) has exactly the library's
/// interruption signal unblocked, and allowing a signal unblocks nothing
/// else (it is recorded, never delivered).
#[test]
fn an_interruptible_kthread_unblocks_only_the_interruption_signal() -> Res {
    let _w = watchdog("interrupt_mask", WATCHDOG);
    let ready = Arc::new(kthread::Completion::new());
    let release = Arc::new(kthread::Completion::new());
    let spawn = |name: &str, interruptible: bool, allow: bool| {
        let (ready, release) = (ready.clone(), release.clone());
        kthread::Builder::new(name)
            .interrupt_on_stop(interruptible)
            .run(move || {
                if allow {
                    kthread::allow_signal(libc::SIGTERM).expect("allow");
                }
                ready.complete();
                release.wait();
            })
    };
    let plain = spawn("mask-plain", false, false)?;
    let on_stop = spawn("mask-on-stop", true, false)?;
    let allowed = spawn("mask-allowed", false, true)?;
    for _ in 0..3 {
        ready.wait();
    }
    let sig = kthread::interrupt_signal().expect("chosen by now");
    // SIGKILL and SIGSTOP cannot be blocked (the kernel never shows them),
    // nor can glibc's own signals below SIGRTMIN (pthread_sigmask drops them).
    let unblockable = (32..libc::SIGRTMIN())
        .fold(sig_bit(libc::SIGKILL) | sig_bit(libc::SIGSTOP), |m, s| {
            m | sig_bit(s)
        });
    let all = (u64::MAX >> (64 - libc::SIGRTMAX() as u32)) & !unblockable;
    let blk = |k: &kthread::Kthread<()>| thread_sig_field(k.task().tid(), "SigBlk") & !unblockable;
    let masks = [blk(&plain), blk(&on_stop), blk(&allowed)];
    let caught = thread_sig_field(on_stop.task().tid(), "SigCgt");
    release.complete_all(); // before any assert: a failed one must not hang the drops
    for k in [plain, on_stop, allowed] {
        k.stop()?;
    }
    assert_eq!(
        masks[0], all,
        "a plain kthread blocks everything: {:#x}",
        masks[0]
    );
    assert_eq!(
        masks[1],
        all & !sig_bit(sig),
        "interrupt_on_stop: {:#x}",
        masks[1]
    );
    assert_eq!(
        masks[2],
        all & !sig_bit(sig),
        "allow_signal(SIGTERM): {:#x}",
        masks[2]
    );
    assert!(
        caught & sig_bit(sig) != 0,
        "the handler is installed: {caught:#x}"
    );
    Ok(())
}
