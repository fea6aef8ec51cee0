//! What reaches a task from outside its own loop: the stop fd, stop
//! callbacks, kernel-style signals, and the interruption of a blocking
//! system call (`docs/design.md`, "Reaching a blocked thread").
//!
//! A task pays for none of it until it asks: the flags word's `HOOKED` bit
//! (set by the first `stop_fd`, `on_stop`, `allow_signal` or a birth with
//! `interrupt_on_stop`) is what sends a stop, park or freeze request here.
//! Each request first changes the flags word (one RMW, which returns the
//! word before); a hook set up later changes the same word with its own
//! RMW and then looks at what it missed, so neither side can miss the
//! other (the RMWs on one word are totally ordered).
//!
//! # Interrupting a blocking call
//!
//! A task that opted in (`interrupt_on_stop`, or an allowed signal) has the
//! library's interruption signal unblocked, with a handler that does
//! nothing and is installed without `SA_RESTART`: a signal sent to the
//! thread makes its blocking system call fail with `EINTR`. A request
//! records its reason in `unacked` and sends the signal (`tgkill`). Then
//! it is sent again, 1 ms later, then 2, 4, ... up to 64 ms, as long as
//! `unacked` holds it: by the requester itself if it waits anyway (stop,
//! park, freeze: [`Resend::Waiter`]), else by the thread's own one-shot
//! POSIX timer (`SIGEV_THREAD_ID`), which the handler re-arms; the thread empties it when it *sees* the request (`should_stop()`
//! or `should_park()` true, `parkme`, `signal_pending()` true, an
//! interrupted wait, exit), and a freeze counts as seen while the thread
//! sits in the refrigerator. So a
//! signal that lands just before the thread enters `read()`, and is spent
//! on nothing, is sent again until the thread has noticed.

use super::{flags, freeze, with_current, Task, TaskInner, WAKE_INTERRUPTIBLE, WAKE_KILLABLE};
use crate::completion::Completion;
use crate::error::{drop_catching, Error};
use crate::sync::{fence, lock, lock_static, AtomicU32, AtomicU64, Mutex, OnceLock, Ordering};
use crate::sync::{StaticAtomicU32, StaticMutex};
use crate::sys::eventfd::EventFd;
use crate::sys::time::Deadline;
use crate::sys::{futex, sched::gettid, signal, timer::ThreadTimer};
use std::ffi::c_int;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Request reasons (bits of `unacked`).
pub(crate) const STOP: u32 = 1 << 0;
pub(crate) const PARK: u32 = 1 << 1;
pub(crate) const FREEZE: u32 = 1 << 2;
pub(crate) const SIGNAL: u32 = 1 << 3;

/// The first re-send comes this long after the request, each later one
/// twice as long after the one before, up to [`LAST_RESEND_US`].
const FIRST_RESEND_US: u32 = 1_000;
const LAST_RESEND_US: u32 = 64_000;

/// Which thread runs a callback (a guard dropped on it does not wait).
#[cfg(not(kthread_loom))]
type Me = i32;
#[cfg(kthread_loom)]
type Me = loom::thread::ThreadId;

#[cfg(not(kthread_loom))]
fn me() -> Me {
    gettid()
}

/// Models run every loom thread on one OS thread: its id tells them apart.
#[cfg(kthread_loom)]
fn me() -> Me {
    loom::thread::current().id()
}

/// `Hooks::senders`: the thread is exiting; send nothing.
const GONE: u32 = 1 << 31;

/// A callback registered with [`Task::on_stop`].
type Callback = Box<dyn FnOnce() + Send>;

/// The per-task state of this module (a field of the task).
pub(crate) struct Hooks {
    /// Signals the task allowed (bit `sig - 1`); written under `locked`.
    allowed: AtomicU64,
    /// Signals sent and not yet flushed (bit `sig - 1`); written under `locked`.
    pending: AtomicU64,
    /// Requests sent as an interruption that the thread has not yet seen.
    unacked: AtomicU32,
    /// The next re-send delay, in microseconds.
    resend_us: AtomicU32,
    /// The stop fd, created by the first `stop_fd()`, closed with the task.
    fd: OnceLock<EventFd>,
    /// The thread's re-send timer, created when it opts in and deleted
    /// with the task (it signals that thread and no other; the kernel drops
    /// what it sends once the thread has exited). `std`'s cell in every
    /// build: the signal handler reads it, and the annotated one of
    /// `kthread_valgrind` takes a lock.
    timer: std::sync::OnceLock<ThreadTimer>,
    /// Requesters inside their `tgkill` (low bits), and [`GONE`] once the
    /// thread is exiting: glibc's `pthread_kill` exit lock, without the
    /// lock. The thread waits at exit for the senders that came first, so
    /// no signal ever reaches a thread id after it is freed and reused.
    senders: AtomicU32,
    /// Bumped (and futex-woken) each time a stop callback has returned.
    callback_done: AtomicU32,
    locked: Mutex<Locked>,
}

#[derive(Default)]
struct Locked {
    /// The stop fd's level (raised: readable).
    raised: bool,
    /// Registered stop callbacks, oldest first.
    callbacks: Vec<(u64, Callback)>,
    /// Callbacks running now, and the thread running each.
    running: Vec<(u64, Me)>,
    next_id: u64,
}

impl Hooks {
    pub(crate) fn new() -> Hooks {
        Hooks {
            allowed: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            unacked: AtomicU32::new(0),
            resend_us: AtomicU32::new(FIRST_RESEND_US),
            fd: OnceLock::new(),
            timer: std::sync::OnceLock::new(),
            senders: AtomicU32::new(0),
            callback_done: AtomicU32::new(0),
            locked: Mutex::new(Locked::default()),
        }
    }

    /// The pending set; the owner's sleep reads it after publishing its
    /// state (the sender's wake is an RMW on the state word after its
    /// `pending` store, so a sleep that began before it sees the signal).
    #[inline]
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// A request of `reason` is about to be published (its flag set): from
    /// now until the thread sees it, it is re-sent. Marked *before* the
    /// flag, so a thread that sees the flag also sees this and clears it.
    #[inline]
    pub(crate) fn mark_unseen(&self, reason: u32) {
        self.unacked.fetch_or(reason, Ordering::AcqRel);
    }

    /// Whether the thread opted in to interruption (its timer exists).
    pub(crate) fn interruptible(&self) -> bool {
        self.timer.get().is_some()
    }

    /// Models only: the requests not yet seen.
    #[cfg(all(kthread_loom, test))]
    pub(crate) fn unseen(&self) -> u32 {
        self.unacked.load(Ordering::Acquire)
    }

    /// A request of `reason` was refused before it was published, or
    /// undone (unpark, thaw): nothing to re-send for it.
    #[inline]
    pub(crate) fn unmark(&self, reason: u32) {
        self.unacked.fetch_and(!reason, Ordering::AcqRel);
    }

    /// The thread has seen the requests of `reason` (module docs); the
    /// caller read the request's flag with `Acquire`.
    #[inline]
    pub(crate) fn ack(&self, reason: u32) {
        if self.unacked.load(Ordering::Relaxed) & reason != 0 {
            self.unacked.fetch_and(!reason, Ordering::AcqRel);
        }
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        let mut l = lock(&self.locked);
        // Callbacks that never ran: the user's values, whose drop may panic.
        for (_, f) in l.callbacks.drain(..) {
            drop_catching(f);
        }
        if let Some(t) = self.timer.take() {
            // Nothing useful to do on failure: the id is simply gone.
            let _ = t.delete();
        }
    }
}

/// `SIGKILL`'s bit: what `fatal_signal_pending` and a killable sleep look at.
pub(crate) const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);

fn bit(sig: c_int) -> Result<u64, Error> {
    if sig < 1 || sig > signal::max_signal() {
        return Err(Error::InvalidSignal(sig));
    }
    Ok(1u64 << (sig - 1))
}

// ---- The interruption signal ------------------------------------------

/// The interruption signal, once chosen (0 before).
static INTERRUPT_SIGNAL: StaticAtomicU32 = StaticAtomicU32::new(0);
/// Serialises choosing it.
static CHOOSING: StaticMutex<()> = StaticMutex::new(());

/// Chooses the real-time signal the library interrupts blocking calls
/// with; call before the first kthread that can be interrupted starts.
///
/// By default the library takes the highest real-time signal whose
/// disposition is still the default one when it first needs one
/// (`SIGRTMAX` in a process that uses none), and installs a handler on it
/// that does nothing, without `SA_RESTART`. Choose another if the program
/// or a library it uses claims that one later. The signal must be in
/// `SIGRTMIN..=SIGRTMAX` and have no handler of the process's.
///
/// Errors: [`Error::InvalidSignal`] outside the range,
/// [`Error::SignalInUse`] if the process has a handler on it or another
/// signal was already chosen.
///
/// ```
/// let sig = libc::SIGRTMAX() - 1;
/// kthread::set_interrupt_signal(sig)?;
/// assert_eq!(kthread::interrupt_signal(), Some(sig));
/// kthread::set_interrupt_signal(sig)?; // the same again: fine
/// assert!(kthread::set_interrupt_signal(libc::SIGTERM).is_err());
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn set_interrupt_signal(sig: c_int) -> Result<(), Error> {
    let (lo, hi) = signal::rt_range();
    if sig < lo || sig > hi {
        return Err(Error::InvalidSignal(sig));
    }
    let _g = lock_static(&CHOOSING);
    match INTERRUPT_SIGNAL.load(Ordering::Acquire) {
        0 => install(sig),
        s if s as c_int == sig => Ok(()),
        _ => Err(Error::SignalInUse(sig)),
    }
}

/// The interruption signal, once chosen (by [`set_interrupt_signal`] or
/// by the first kthread that can be interrupted).
///
/// ```
/// if let Some(sig) = kthread::interrupt_signal() {
///     assert!(sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX());
/// }
/// ```
pub fn interrupt_signal() -> Option<c_int> {
    match INTERRUPT_SIGNAL.load(Ordering::Acquire) {
        0 => None,
        s => Some(s as c_int),
    }
}

/// Installs the handler on `sig` (`CHOOSING` held, nothing chosen yet).
fn install(sig: c_int) -> Result<(), Error> {
    if !signal::is_default(sig)? {
        return Err(Error::SignalInUse(sig));
    }
    signal::install(sig, on_interrupt)?;
    INTERRUPT_SIGNAL.store(sig as u32, Ordering::Release);
    Ok(())
}

/// The interruption signal, choosing and installing it on first use.
fn chosen() -> Result<c_int, Error> {
    if let Some(s) = interrupt_signal() {
        return Ok(s);
    }
    let _g = lock_static(&CHOOSING);
    if let Some(s) = interrupt_signal() {
        return Ok(s);
    }
    let (lo, hi) = signal::rt_range();
    for sig in (lo..=hi).rev() {
        if signal::is_default(sig)? {
            install(sig)?;
            return Ok(sig);
        }
    }
    Err(Error::SignalInUse(hi))
}

/// The handler: its only work is the interruption itself (the `EINTR`).
/// While a request is still unseen, it arms the timer again, twice as far
/// out each time (1 ms after the first expiry, then 2, 4, ... 64 ms). Async-signal-safe: a thread-local
/// read, atomics and `timer_settime`; `errno` is preserved.
extern "C" fn on_interrupt(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut std::ffi::c_void) {
    // SAFETY: `info` is what the kernel passed to this handler.
    if !unsafe { signal::sent_by_timer(info) } {
        return; // a request's own `tgkill` (it armed the timer), or a stray `kill`
    }
    let _errno = signal::SavedErrno::save();
    with_current(|t| {
        let Some(t) = t else { return };
        let h = t.hooks();
        let mut unseen = h.unacked.load(Ordering::Acquire);
        if t.flags().load() & flags::FROZEN != 0 {
            unseen &= !FREEZE; // it sits in the refrigerator: seen
        }
        if unseen == 0 {
            return;
        }
        if let Some(timer) = h.timer.get() {
            let us = h
                .resend_us
                .load(Ordering::Relaxed)
                .saturating_mul(2)
                .min(LAST_RESEND_US);
            h.resend_us.store(us, Ordering::Relaxed);
            // A failure leaves the re-sends to the next request; nothing
            // else is safe to do here.
            let _ = timer.arm(Duration::from_micros(u64::from(us)));
        }
    });
}

// ---- The thread's side ----------------------------------------------------

/// Makes the calling thread, whose task is `t`, interruptible: the handler
/// installed, its timer made, the signal unblocked. Idempotent.
pub(crate) fn opt_in(t: &Task) -> Result<(), Error> {
    let h = t.inner().hooks();
    if h.timer.get().is_some() {
        return Ok(());
    }
    let sig = chosen()?;
    let timer = ThreadTimer::new(gettid(), sig)?;
    if let Err(timer) = h.timer.set(timer) {
        // Only the thread itself sets it, so this cannot happen; do not leak.
        let _ = timer.delete();
        return Ok(());
    }
    t.flags().mark_hooked();
    signal::unblock(sig)?;
    // Pairs with the fence in `interrupt`: a request that did not see the
    // timer is seen here, and sent now.
    fence(Ordering::SeqCst);
    if h.unacked.load(Ordering::Acquire) != 0 {
        arm_resend(h);
    }
    Ok(())
}

/// Arms the first re-send, [`FIRST_RESEND_US`] from now; the handler arms
/// the later ones.
fn arm_resend(h: &Hooks) {
    h.resend_us.store(FIRST_RESEND_US, Ordering::Relaxed);
    if let Some(timer) = h.timer.get() {
        // Fails only for a deleted timer, which a live task never has.
        let _ = timer.arm(Duration::from_micros(u64::from(FIRST_RESEND_US)));
    }
}

/// The thread's last act with its hooks, at exit: after it, no signal is
/// sent to its (reusable) thread id. Waits for a requester inside its
/// `tgkill` (a few instructions).
pub(crate) fn thread_exit(t: &Task) {
    let h = t.inner().hooks();
    if h.timer.get().is_none() {
        return;
    }
    let mut s = h.senders.fetch_or(GONE, Ordering::AcqRel) | GONE;
    while s != GONE {
        futex::wait(&h.senders, s, None);
        s = h.senders.load(Ordering::Acquire);
    }
}

// ---- The requester's side ----------------------------------------------

/// Whether `t` is the calling thread's task.
fn is_current(t: &Task) -> bool {
    with_current(|c| c.is_some_and(|c| std::ptr::eq(c, t.inner())))
}

/// The stop fd's level: a stop, park or freeze is requested and not cleared.
fn level(t: &Task) -> bool {
    let f = t.flags().load();
    f & (flags::SHOULD_STOP | flags::SHOULD_PARK) != 0
        || (f & flags::FREEZABLE != 0 && freeze::freezing())
}

/// Brings the stop fd to its level (`locked` held).
fn sync_fd(t: &Task, l: &mut Locked) {
    let Some(fd) = t.inner().hooks().fd.get() else {
        return;
    };
    let want = level(t);
    if want == l.raised {
        return;
    }
    let r = if want { fd.raise() } else { fd.lower() };
    match r {
        Ok(()) => l.raised = want,
        Err(e) => t.note(format!("stop fd update failed: {e}")),
    }
}

/// Who re-sends an interruption until the thread has seen it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Resend {
    /// The thread's timer (a request nobody waits for).
    Timer,
    /// The requester, which waits for the request to be served (stop,
    /// park, freeze) and calls [`wait_resending`] or [`resend`]: no timer
    /// to program (on a virtual machine, arming one costs more than the
    /// whole interruption).
    Waiter,
}

/// Interrupts the thread's blocking call, for a request already marked
/// unseen (module docs); with [`Resend::Timer`], arms the re-sends.
fn interrupt(t: &Task, by: Resend) {
    // Pairs with the fence in `opt_in`: either we see its timer, or it
    // sees the mark (and arms the re-send itself).
    fence(Ordering::SeqCst);
    if send(t) && by == Resend::Timer {
        arm_resend(t.inner().hooks());
    }
}

/// `tgkill`s the thread with the interruption signal unless it is exiting
/// (the `senders` protocol); whether it is (or was) interruptible.
fn send(t: &Task) -> bool {
    let h = t.inner().hooks();
    let (Some(_), Some(sig)) = (h.timer.get(), interrupt_signal()) else {
        return false;
    };
    let s = h.senders.fetch_add(1, Ordering::Acquire);
    if s & GONE == 0 {
        if let Err(e) = signal::tgkill(t.tid(), sig) {
            t.note(format!("interrupting the thread failed: {e}"));
        }
    }
    if h.senders.fetch_sub(1, Ordering::Release) == GONE | 1 {
        futex::wake(&h.senders, 1);
    }
    s & GONE == 0
}

/// Sends the interruption for `reason` again if the thread has not seen
/// it yet (a waiter's re-send, [`Resend::Waiter`]).
pub(crate) fn resend(t: &Task, reason: u32) {
    let mut unseen = t.inner().hooks().unacked.load(Ordering::Acquire) & reason;
    if t.flags().load() & flags::FROZEN != 0 {
        unseen &= !FREEZE;
    }
    if unseen != 0 {
        send(t);
    }
}

/// Waits with `wait(slice)` (true: done) in slices of the re-send backoff
/// (1 ms, doubling to 64 ms), re-sending the interruption for `reason`
/// after each slice while it is unseen; until done or `deadline`.
pub(crate) fn wait_resending(
    t: &Task,
    reason: u32,
    deadline: Option<Deadline>,
    mut wait: impl FnMut(Duration) -> bool,
) -> bool {
    let mut us = FIRST_RESEND_US;
    loop {
        let mut slice = Duration::from_micros(u64::from(us));
        if let Some(d) = deadline {
            slice = slice.min(d.remaining());
        }
        if wait(slice) {
            return true;
        }
        if deadline.is_some_and(|d| d.passed()) {
            return false;
        }
        resend(t, reason);
        us = us.saturating_mul(2).min(LAST_RESEND_US);
    }
}

/// A stop, park or freeze of `t` was requested (its flag is set); `t`
/// has hooks. Raises the stop fd and, if `t` was created with
/// `interrupt_on_stop`, interrupts its blocking call.
pub(crate) fn requested(t: &Task, by: Resend) {
    let mut l = lock(&t.inner().hooks().locked);
    sync_fd(t, &mut l);
    drop(l);
    if t.has(flags::INTERRUPT_ON_STOP) && !is_current(t) {
        interrupt(t, by);
    }
}

/// A park or freeze of `t` was undone (unpark, thaw); `t` has hooks.
pub(crate) fn withdrawn(t: &Task, reason: u32) {
    let h = t.inner().hooks();
    let mut l = lock(&h.locked);
    sync_fd(t, &mut l);
    h.unmark(reason);
}

/// A freeze began or ended: every hooked freezable task hears of it. The
/// fence pairs with the one in `stop_fd`: either the freezer sees the new
/// hook, or the hook's first sync sees the freeze.
pub(crate) fn freeze_changed(tasks: &[Task], freezing: bool) {
    fence(Ordering::SeqCst);
    for t in tasks.iter().filter(|t| t.has(flags::HOOKED)) {
        if freezing {
            if t.has(flags::INTERRUPT_ON_STOP) {
                t.hooks().mark_unseen(FREEZE); // seen once it sits frozen
            }
            requested(t, Resend::Waiter);
        } else {
            withdrawn(t, FREEZE);
        }
    }
}

/// Runs the stop callbacks registered on `t` before the stop, each once,
/// on the calling thread (the first stopper), in the order of their
/// registration. One registered after the stop (a larger id than the
/// last one at the start) is its registrant's to run ([`Task::on_stop`]).
pub(crate) fn run_stop_callbacks(t: &Task) {
    let h = t.inner().hooks();
    let me = me();
    let last = lock(&h.locked).next_id;
    while let Some(id) = {
        let l = lock(&h.locked);
        l.callbacks
            .first()
            .map(|&(id, _)| id)
            .filter(|&id| id <= last)
    } {
        run_callback(h, id, me);
    }
}

/// Takes callback `id` off the list, if it is still there, and runs it
/// here; whether it did.
fn run_callback(h: &Hooks, id: u64, me: Me) -> bool {
    let f = {
        let mut l = lock(&h.locked);
        let Some(pos) = l.callbacks.iter().position(|&(c, _)| c == id) else {
            return false;
        };
        let (_, f) = l.callbacks.remove(pos);
        l.running.push((id, me));
        f
    };
    // A panic is the callback's own: reported by the panic hook, its
    // payload dropped under a catch; the other callbacks still run.
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        drop_catching(p);
    }
    {
        let mut l = lock(&h.locked);
        l.running.retain(|&(r, _)| r != id);
        h.callback_done.fetch_add(1, Ordering::AcqRel);
    }
    futex::wake(&h.callback_done, i32::MAX);
    true
}

// ---- The public calls -------------------------------------------------

/// A stop callback's registration ([`Task::on_stop`]); dropping it
/// deregisters the callback (C++'s `std::stop_callback`).
///
/// The drop never returns while the callback runs on another thread, so a
/// callback never outlives its guard; if the callback has not run, it
/// never will (it is dropped). Dropped on the thread that runs the
/// callback (from inside it), it does not wait.
///
/// ```
/// let k = kthread::create("cb", || ())?;
/// let guard = k.task().on_stop(|| unreachable!("deregistered before the stop"));
/// drop(guard);
/// let _ = k.stop();
/// # Ok::<(), kthread::Error>(())
/// ```
#[must_use = "dropping the guard deregisters the callback"]
pub struct StopCallback {
    task: Task,
    /// 0: ran (or never will) at registration; nothing to deregister.
    id: u64,
}

impl fmt::Debug for StopCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopCallback")
            .field("task", &self.task.name())
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for StopCallback {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        let h = self.task.inner().hooks();
        let me = me();
        let mut l = lock(&h.locked);
        loop {
            if let Some(pos) = l.callbacks.iter().position(|&(id, _)| id == self.id) {
                let (_, f) = l.callbacks.remove(pos);
                drop(l);
                drop_catching(f);
                return;
            }
            match l.running.iter().find(|&&(id, _)| id == self.id) {
                None => return,                         // ran already
                Some(&(_, who)) if who == me => return, // dropped from inside it
                Some(_) => {}
            }
            let seen = h.callback_done.load(Ordering::Acquire);
            drop(l);
            futex::wait(&h.callback_done, seen, None);
            l = lock(&h.locked);
        }
    }
}

impl Task {
    /// The task's hooks.
    #[inline]
    pub(crate) fn hooks(&self) -> &Hooks {
        self.inner().hooks()
    }

    /// A file descriptor that is readable while a stop, a park or a freeze
    /// is requested for the task and not cleared (an unpark or a thaw
    /// makes it unreadable again; a stop is never cleared).
    ///
    /// An `eventfd` made on the first call, non-blocking and close-on-exec,
    /// closed when the last reference to the task is dropped. A kthread
    /// that serves sockets puts it in its `poll`/`epoll` set and wakes the
    /// moment a request arrives: no signal, no race (a request before the
    /// first call leaves it readable from the start). Never read it: the
    /// library keeps its level.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let k = kthread::run("poller", || {
    ///     let me = kthread::current().unwrap();
    ///     let fd = me.stop_fd().unwrap().as_raw_fd();
    ///     let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    ///     while !kthread::should_stop() {
    ///         // SAFETY: one valid pollfd.
    ///         unsafe { libc::poll(&mut p, 1, -1) };
    ///     }
    ///     "stopped"
    /// })?;
    /// assert_eq!(k.stop()?, "stopped");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop_fd(&self) -> Result<BorrowedFd<'_>, Error> {
        if self.is_inherited() {
            return Err(Error::Forked);
        }
        let h = self.hooks();
        if let Some(fd) = h.fd.get() {
            return Ok(fd.as_fd());
        }
        let mut l = lock(&h.locked);
        if h.fd.get().is_none() {
            let fd = EventFd::new()?;
            let _ = h.fd.set(fd);
            self.flags().mark_hooked();
            // Pairs with `freeze_changed` (the flags RMW orders the rest).
            fence(Ordering::SeqCst);
            sync_fd(self, &mut l);
        }
        drop(l);
        Ok(h.fd.get().expect("set above").as_fd())
    }

    /// Registers `f` to run once when a stop of this task is requested
    /// (C++20's `std::stop_callback`).
    ///
    /// `f` runs on the thread that requests the stop (`stop`,
    /// `request_stop`, `stop_timeout`, the handle's drop, `kthread_stop`),
    /// before that thread starts waiting; if the stop was already
    /// requested, it runs at once, here. Dropping the returned
    /// [`StopCallback`] deregisters it. The use: end a blocking call the
    /// kthread sits in, which `should_stop()` cannot reach — shut a
    /// listening socket down, close a pipe, write to an eventfd. A panic
    /// in `f` is reported and caught; the stop goes on. On a task
    /// inherited across `fork()`, `f` never runs (it is dropped).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let gate = Arc::new(kthread::Completion::new());
    /// let g = gate.clone();
    /// let k = kthread::run("gated", move || g.wait())?; // ignores should_stop()
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// let _cb = k.task().on_stop(move || {
    ///     r.store(true, Ordering::SeqCst);
    ///     gate.complete(); // what unblocks the kthread
    /// });
    /// k.stop()?;
    /// assert!(ran.load(Ordering::SeqCst));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_stop(&self, f: impl FnOnce() + Send + 'static) -> StopCallback {
        let inert = StopCallback {
            task: self.clone(),
            id: 0,
        };
        if self.is_inherited() {
            drop_catching(f);
            return inert;
        }
        let h = self.hooks();
        let id = {
            let mut l = lock(&h.locked);
            l.next_id += 1;
            let id = l.next_id;
            l.callbacks.push((id, Box::new(f)));
            id
        };
        let prev = self.flags().mark_hooked();
        if prev & flags::SHOULD_STOP != 0 {
            // The stop came first: we run our callback, unless a stopper
            // that began before our registration took it (then the guard
            // waits for it, as for any running callback).
            if run_callback(h, id, me()) {
                return inert;
            }
        }
        StopCallback {
            task: self.clone(),
            id,
        }
    }

    /// Sends signal `sig` to the task; mirrors `send_sig()`.
    ///
    /// If the task allowed `sig` ([`allow_signal`]), it is recorded for
    /// that task alone ([`signal_pending`] turns true there), an
    /// interruptible sleep of the task ends, and its blocking system call
    /// fails with `EINTR` (through the library's interruption signal: the
    /// process never receives `sig`, whatever it is, `SIGKILL` included).
    /// A signal the task did not allow is ignored, as in the kernel.
    /// `sig == 0` checks only that the task is alive.
    ///
    /// Errors: [`Error::InvalidSignal`] for a number outside `1..=SIGRTMAX`,
    /// [`Error::Exited`] if the thread function has returned (C: `-ESRCH`),
    /// [`Error::Forked`] for a task inherited across `fork()`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let allowed = Arc::new(kthread::Completion::new());
    /// let a = allowed.clone();
    /// let k = kthread::run("sig", move || {
    ///     kthread::allow_signal(libc::SIGUSR1).unwrap();
    ///     a.complete();
    ///     let wq = kthread::WaitQueue::new();
    ///     let r = wq.wait_event_interruptible(|| false); // only a signal ends it
    ///     (r.is_err(), kthread::dequeue_signal(), kthread::dequeue_signal())
    /// })?;
    /// allowed.wait();
    /// k.task().send_signal(libc::SIGUSR1)?; // ends the wait, before or in it
    /// assert_eq!(k.stop()?, (true, Some(libc::SIGUSR1), None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_signal(&self, sig: c_int) -> Result<(), Error> {
        if self.is_inherited() {
            return Err(Error::Forked);
        }
        let b = if sig == 0 { 0 } else { bit(sig)? };
        if self.has_exited() {
            return Err(Error::Exited);
        }
        let h = self.hooks();
        let l = lock(&h.locked);
        if b == 0 || h.allowed.load(Ordering::Relaxed) & b == 0 {
            return Ok(());
        }
        // Unseen before it is published: a thread that sees it clears it.
        if !is_current(self) {
            h.mark_unseen(SIGNAL);
        }
        h.pending.fetch_or(b, Ordering::AcqRel);
        crate::trace::event!(DEBUG, "signal_generate", self.name(), self.tid(), sig = sig);
        let mask = if b == SIGKILL_BIT {
            WAKE_INTERRUPTIBLE | WAKE_KILLABLE
        } else {
            WAKE_INTERRUPTIBLE
        };
        drop(l);
        self.wake_state(mask);
        if !is_current(self) {
            interrupt(self, Resend::Timer);
        }
        Ok(())
    }

    /// Whether a signal is pending for the task (`signal_pending(p)`).
    /// Asked by the task itself, it also counts as having seen it: no
    /// further interruption is sent for it.
    ///
    /// ```
    /// assert!(!kthread::Task::current().signal_pending());
    /// ```
    pub fn signal_pending(&self) -> bool {
        if is_current(self) {
            return signal_pending_of(self.inner(), false);
        }
        self.inner().signal_pending()
    }

    /// Whether `SIGKILL` is pending for the task (`fatal_signal_pending(p)`).
    ///
    /// ```
    /// assert!(!kthread::Task::current().fatal_signal_pending());
    /// ```
    pub fn fatal_signal_pending(&self) -> bool {
        if is_current(self) {
            return signal_pending_of(self.inner(), true);
        }
        self.hooks().pending() & SIGKILL_BIT != 0
    }

    /// Forgets every pending signal of the task (`flush_signals(p)`).
    ///
    /// ```
    /// kthread::Task::current().flush_signals();
    /// assert!(!kthread::signal_pending());
    /// ```
    pub fn flush_signals(&self) {
        let h = self.hooks();
        let _l = lock(&h.locked);
        h.pending.store(0, Ordering::Release);
        h.unmark(SIGNAL);
    }
}

/// The error of an interruptible wait that a pending signal ended
/// (`-ERESTARTSYS`): a signal the kthread allowed
/// ([`allow_signal`](crate::allow_signal)) and that was sent to it
/// ([`Task::send_signal`]). A killable wait returns it for `SIGKILL`.
///
/// ```
/// let e = kthread::wait::Interrupted;
/// assert_eq!(e.to_string(), "interrupted by a signal");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted by a signal")
    }
}

impl std::error::Error for Interrupted {}

/// Waits for `c`, giving up when a signal within `mask` is pending for the
/// caller: `Err` then, else whether it completed before `deadline`.
fn wait_signalled(
    c: &Completion,
    deadline: Option<Deadline>,
    fatal: bool,
) -> Result<bool, Interrupted> {
    let t = super::current_or_adopt();
    let h = t.hooks();
    let ends = || {
        if fatal {
            h.pending() & SIGKILL_BIT != 0
        } else {
            t.inner().signal_pending()
        }
    };
    match c.wait_until_or(deadline, ends) {
        Some(done) => Ok(done),
        None => {
            h.ack(SIGNAL);
            Err(Interrupted)
        }
    }
}

/// The interruptible and killable waits (`wait_for_completion_interruptible()`
/// & co). A signal's interruption ends the futex sleep with `EINTR`, and
/// the wait then looks at the pending set; the re-sends cover a signal
/// that lands just before the sleep.
impl Completion {
    /// As [`wait`](Completion::wait), ended early by a pending signal
    /// (`wait_for_completion_interruptible()`): `Err(Interrupted)` then.
    /// Completed first, it returns `Ok` even with a signal pending.
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete();
    /// assert_eq!(c.wait_interruptible(), Ok(()));
    /// ```
    pub fn wait_interruptible(&self) -> Result<(), Interrupted> {
        wait_signalled(self, None, false).map(drop)
    }

    /// As [`wait_timeout`](Completion::wait_timeout), ended early by a
    /// pending signal (`wait_for_completion_interruptible_timeout()`).
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// assert_eq!(c.wait_interruptible_timeout(std::time::Duration::from_millis(1)), Ok(false));
    /// ```
    pub fn wait_interruptible_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        wait_signalled(self, Some(Deadline::after(timeout)), false)
    }

    /// As [`wait`](Completion::wait), ended early by a pending `SIGKILL`
    /// only (`wait_for_completion_killable()`).
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// c.complete();
    /// assert_eq!(c.wait_killable(), Ok(()));
    /// ```
    pub fn wait_killable(&self) -> Result<(), Interrupted> {
        wait_signalled(self, None, true).map(drop)
    }

    /// As [`wait_timeout`](Completion::wait_timeout), ended early by a
    /// pending `SIGKILL` only (`wait_for_completion_killable_timeout()`).
    ///
    /// ```
    /// let c = kthread::Completion::new();
    /// assert_eq!(c.wait_killable_timeout(std::time::Duration::ZERO), Ok(false));
    /// ```
    pub fn wait_killable_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        wait_signalled(self, Some(Deadline::after(timeout)), true)
    }
}

/// The calling kthread's task, or the error for a thread that is not one.
fn current_kthread() -> Result<Task, Error> {
    super::current_task()
        .filter(|t| !t.has(flags::FOREIGN))
        .ok_or(Error::NotAKthread)
}

/// Lets signal `sig` reach the calling kthread; mirrors `allow_signal()`.
///
/// From now on [`Task::send_signal`] with `sig` (C: `send_sig()`) records
/// it for this kthread and interrupts its interruptible sleeps and blocking
/// system calls (which fail with `EINTR`). Nothing changes for the rest of
/// the process: the signal stays blocked here, its handler is not touched,
/// and a `kill()` of the process never reaches a kthread.
///
/// Errors: [`Error::InvalidSignal`], [`Error::NotAKthread`] on a thread
/// that is not a kthread, or the error of setting up the interruption
/// (the first time).
///
/// ```
/// let k = kthread::run("allows", || kthread::allow_signal(libc::SIGTERM).is_ok())?;
/// assert!(k.stop()?);
/// assert!(kthread::allow_signal(libc::SIGTERM).is_err()); // not a kthread
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn allow_signal(sig: c_int) -> Result<(), Error> {
    let b = bit(sig)?;
    let t = current_kthread()?;
    opt_in(&t)?;
    let h = t.hooks();
    let _l = lock(&h.locked);
    h.allowed.fetch_or(b, Ordering::AcqRel);
    Ok(())
}

/// Stops signal `sig` reaching the calling kthread and forgets it if
/// pending; mirrors `disallow_signal()`.
///
/// ```
/// let k = kthread::run("disallows", || {
///     kthread::allow_signal(libc::SIGUSR2).unwrap();
///     kthread::disallow_signal(libc::SIGUSR2).unwrap();
///     let me = kthread::current().unwrap();
///     me.send_signal(libc::SIGUSR2).unwrap(); // ignored now
///     kthread::dequeue_signal()
/// })?;
/// assert_eq!(k.stop()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn disallow_signal(sig: c_int) -> Result<(), Error> {
    let b = bit(sig)?;
    let t = current_kthread()?;
    let h = t.hooks();
    let _l = lock(&h.locked);
    h.allowed.fetch_and(!b, Ordering::AcqRel);
    if h.pending.fetch_and(!b, Ordering::AcqRel) & !b == 0 {
        h.unmark(SIGNAL); // nothing left to see
    }
    Ok(())
}

/// Whether a signal is pending for the calling thread; mirrors
/// `signal_pending(current)`. `false` on a thread without a task.
///
/// A stop requested of the calling kthread counts, and
/// [`flush_signals`] does not clear it: since Linux 5.11 `kthread_stop()`
/// sets `TIF_NOTIFY_SIGNAL`, so every interruptible sleep of a stopped
/// kthread returns at once, here as there.
///
/// ```
/// assert!(!kthread::signal_pending());
/// let k = kthread::create("stopped", kthread::signal_pending)?;
/// k.wake_up();
/// let _ = k.stop()?; // true if the stop came before the call
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn signal_pending() -> bool {
    with_current(|t| t.is_some_and(|t| signal_pending_of(t, false)))
}

/// Whether `SIGKILL` is pending for the calling thread; mirrors
/// `fatal_signal_pending(current)`.
///
/// ```
/// assert!(!kthread::fatal_signal_pending());
/// ```
pub fn fatal_signal_pending() -> bool {
    with_current(|t| t.is_some_and(|t| signal_pending_of(t, true)))
}

/// The calling thread's `signal_pending` (or, `fatal`, only `SIGKILL`);
/// a pending signal it sees is acknowledged (no further interruption).
fn signal_pending_of(t: &TaskInner, fatal: bool) -> bool {
    let h = t.hooks();
    let sent = h.pending() & if fatal { SIGKILL_BIT } else { u64::MAX } != 0;
    if sent {
        h.ack(SIGNAL);
    }
    sent || (!fatal && t.signal_pending())
}

/// Forgets every pending signal of the calling thread; mirrors
/// `flush_signals(current)`.
///
/// ```
/// kthread::flush_signals();
/// assert!(!kthread::signal_pending());
/// ```
pub fn flush_signals() {
    if let Some(t) = super::current_task() {
        t.flush_signals();
    }
}

/// Takes the lowest-numbered pending signal of the calling thread off its
/// pending set and returns it; mirrors `kernel_dequeue_signal()`.
///
/// ```
/// assert_eq!(kthread::dequeue_signal(), None);
/// ```
pub fn dequeue_signal() -> Option<c_int> {
    let t = super::current_task()?;
    let h = t.hooks();
    let _l = lock(&h.locked);
    let p = h.pending();
    if p == 0 {
        return None;
    }
    let low = p.trailing_zeros();
    h.pending.fetch_and(!(1u64 << low), Ordering::AcqRel);
    h.ack(SIGNAL);
    Some(low as c_int + 1)
}
