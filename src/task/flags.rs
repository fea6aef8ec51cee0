//! The flags word of a task: the kernel's `KTHREAD_*` bits and `PF_*` flags.
//!
//! One `u32` per task. Every change is one read-modify-write, made only by
//! the named methods of [`Flags`] below: each is the one place a transition
//! of the table happens, so the protocols built on the word (first run vs
//! stop, park, freeze) can be read off this file.
//!
//! # Bits
//!
//! * `SHOULD_STOP`: a stop was requested (`KTHREAD_SHOULD_STOP`). Never cleared.
//! * `SHOULD_PARK`: a park is requested and not yet undone (`KTHREAD_SHOULD_PARK`);
//!   claimed by one parker at a time.
//! * `IS_PARKED`: the thread sits in `parkme` and acknowledged the park (`KTHREAD_IS_PARKED`).
//! * `SELF_PARK`: the thread parked itself, so nobody waits for the acknowledgement.
//! * `WOKEN`: the first wake came before any stop: the function runs.
//! * `EXITED`: the thread function returned (or will never run).
//! * `BOUND`: the affinity was fixed by `bind` or `Builder::cpu` (`PF_NO_SETAFFINITY`).
//! * `PER_CPU`: member of a per-CPU set (`KTHREAD_IS_PER_CPU`).
//! * `FREEZABLE`: takes part in freezing (no `PF_NOFREEZE`).
//! * `FROZEN`: sits in the refrigerator (`PF_FROZEN`).
//! * `FROZE_IN_SLEEP`: froze inside an interruptible `schedule()`; reported
//!   (and cleared) by the next `freezable_should_stop()` as `was_frozen`.
//! * `HOOKED`: requests also go through `hooks.rs` (stop fd, stop callbacks,
//!   interruption); `INTERRUPT_ON_STOP`: they interrupt blocking calls.
//! * `KTHREADD`, `WORKER`, `FOREIGN`: what the thread is (kthreadd, a worker
//!   loop, a thread that is not a kthread but was given a task).
//!
//! # Transitions
//!
//! | method | who | precondition (else no change) | change |
//! |---|---|---|---|
//! | [`mark_woken`](Flags::mark_woken) | any waker | no `WOKEN`, no `SHOULD_STOP` | `+WOKEN` |
//! | [`request_stop`](Flags::request_stop) | stopper | — | `+SHOULD_STOP` |
//! | [`claim_park`](Flags::claim_park) | parker | no `SHOULD_PARK`, no `SHOULD_STOP`, no `EXITED` | `+SHOULD_PARK`, `+WOKEN`, `+SELF_PARK` if the thread itself |
//! | [`ack_park`](Flags::ack_park) | the thread, in `parkme` | `SHOULD_PARK`, no `IS_PARKED` | `+IS_PARKED` |
//! | [`clear_park`](Flags::clear_park) | unparker, stopper | — | `-SHOULD_PARK -IS_PARKED -SELF_PARK` |
//! | [`mark_exited`](Flags::mark_exited) | the thread, at exit | — | `+EXITED -SHOULD_PARK` |
//! | [`mark_bound`](Flags::mark_bound) | binder (holding the bind lock) | — | `+BOUND` |
//! | [`set_freezable`](Flags::set_freezable) | the thread | — | `+FREEZABLE` |
//! | [`mark_worker`](Flags::mark_worker) | the thread, entering the worker loop | — | `+WORKER` |
//! | [`enter_frozen`](Flags::enter_frozen) / [`leave_frozen`](Flags::leave_frozen) | the thread, in the refrigerator | — | `+FROZEN` / `-FROZEN` |
//! | [`mark_hooked`](Flags::mark_hooked) | a hook's registration (`stop_fd`, `on_stop`, opt-in) | — | `+HOOKED` |
//! | [`note_froze_in_sleep`](Flags::note_froze_in_sleep) / [`take_froze_in_sleep`](Flags::take_froze_in_sleep) | the thread | — | `+FROZE_IN_SLEEP` / `-FROZE_IN_SLEEP` |
//!
//! **Exactly one `complete` per waiting park.** Whoever removes `SHOULD_PARK`
//! while `IS_PARKED` and `SELF_PARK` are clear (unpark, stop, exit) completes
//! the parker's wait on the thread's behalf; the thread completes it when it
//! sets `IS_PARKED`. Both decide from the value their own RMW replaced
//! ([`releases_parker`]), so exactly one of them does.
//!
//! # Memory ordering
//!
//! Every RMW is `AcqRel`: a stop or park request publishes what the
//! requester wrote before it (pairs with the Acquire of the thread's next
//! RMW or [`Flags::load`]), and the first-run decision is the order of
//! `mark_woken` and `request_stop` in the word's modification order. The
//! hot read of `should_stop()` is `Relaxed` ([`Flags::load_relaxed`]): it
//! only has to see the bit eventually, and the thread's sleep and wake go
//! through the state word, whose RMWs order everything else.

use crate::sync::{AtomicU32, Ordering};

/// `kthread_stop()` was called (`KTHREAD_SHOULD_STOP`).
pub(crate) const SHOULD_STOP: u32 = 1 << 0;
/// `kthread_park()` was called and no unpark yet (`KTHREAD_SHOULD_PARK`).
pub(crate) const SHOULD_PARK: u32 = 1 << 1;
/// The first wake happened before any stop: the function will run.
pub(crate) const WOKEN: u32 = 1 << 2;
/// Affinity fixed by `bind` (`PF_NO_SETAFFINITY`).
pub(crate) const BOUND: u32 = 1 << 3;
/// Member of a per-CPU set (`KTHREAD_IS_PER_CPU`).
pub(crate) const PER_CPU: u32 = 1 << 4;
/// Takes part in freezing (no `PF_NOFREEZE`).
pub(crate) const FREEZABLE: u32 = 1 << 5;
/// Sits in `parkme()` and has acknowledged the park (`KTHREAD_IS_PARKED`).
pub(crate) const IS_PARKED: u32 = 1 << 6;
/// Sits in the refrigerator (`PF_FROZEN`).
pub(crate) const FROZEN: u32 = 1 << 7;
/// The thread function has returned (or never will run).
pub(crate) const EXITED: u32 = 1 << 8;
/// This task is kthreadd.
pub(crate) const KTHREADD: u32 = 1 << 9;
/// A thread that is not a kthread, given a task so it can sleep and be woken.
pub(crate) const FOREIGN: u32 = 1 << 10;
/// Runs the worker loop.
pub(crate) const WORKER: u32 = 1 << 11;
/// The thread parked itself: nobody waits for the acknowledgement.
pub(crate) const SELF_PARK: u32 = 1 << 12;
/// Froze inside an interruptible `schedule()` (reported as `was_frozen`).
pub(crate) const FROZE_IN_SLEEP: u32 = 1 << 13;
/// Requests must also go through `hooks.rs` (a stop fd, stop callbacks,
/// or an interruptible thread). Set once, never cleared.
pub(crate) const HOOKED: u32 = 1 << 14;
/// A stop, park or freeze request interrupts the thread's blocking system
/// call (`Builder::interrupt_on_stop`); born with `HOOKED`.
pub(crate) const INTERRUPT_ON_STOP: u32 = 1 << 15;

/// The bits a task may be born with (`TaskInit::flags`); the rest are
/// protocol state that only the methods below set.
pub(crate) const BIRTH: u32 =
    BOUND | PER_CPU | FREEZABLE | KTHREADD | FOREIGN | WOKEN | HOOKED | INTERRUPT_ON_STOP;

/// Whether an RMW that replaced `prev` and removed `SHOULD_PARK` must
/// complete the parker's wait on the thread's behalf (module docs).
#[inline]
pub(crate) fn releases_parker(prev: u32) -> bool {
    prev & SHOULD_PARK != 0 && prev & (IS_PARKED | SELF_PARK) == 0
}

/// A task's flags word; the only code that changes it.
#[derive(Debug)]
pub(crate) struct Flags(AtomicU32);

impl Flags {
    pub(crate) fn new(birth: u32) -> Flags {
        debug_assert_eq!(birth & !BIRTH, 0, "protocol bits set at birth");
        Flags(AtomicU32::new(birth))
    }

    /// The word, ordered after the last RMW this thread synchronised with.
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// The word for a hot check that needs no ordering (`should_stop()`).
    #[inline]
    pub(crate) fn load_relaxed(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether any bit of `mask` is set.
    #[inline]
    pub(crate) fn has(&self, mask: u32) -> bool {
        self.load() & mask != 0
    }

    /// Records the first wake, unless a stop got there first: the one
    /// atomic decision of whether the thread function will run (SPEC §3).
    #[inline]
    pub(crate) fn mark_woken(&self) {
        if self.0.load(Ordering::Relaxed) & WOKEN != 0 {
            return; // the common case: no RMW on an already-woken task
        }
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |f| {
                (f & (WOKEN | SHOULD_STOP) == 0).then_some(f | WOKEN)
            });
    }

    /// Sets `SHOULD_STOP`; returns the word before.
    pub(crate) fn request_stop(&self) -> u32 {
        self.0.fetch_or(SHOULD_STOP, Ordering::AcqRel)
    }

    /// Claims a park for one parker (`self_park`: the thread itself).
    /// Parking a never-woken thread counts as its first wake. Refused once
    /// a stop is requested: the stop unparks once, right after it sets
    /// `SHOULD_STOP`, so a park claimed later would park the stopping
    /// thread for ever. `Err` carries the word that refused the claim.
    pub(crate) fn claim_park(&self, self_park: bool) -> Result<u32, u32> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                if f & (SHOULD_PARK | SHOULD_STOP | EXITED) != 0 {
                    return None;
                }
                let mut n = f | SHOULD_PARK | WOKEN;
                if self_park {
                    n |= SELF_PARK;
                }
                Some(n)
            })
    }

    /// The thread acknowledges a park in `parkme`. `Ok(prev)` if this call
    /// set `IS_PARKED`; `Err` if no park is pending or it was acknowledged.
    pub(crate) fn ack_park(&self) -> Result<u32, u32> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                (f & SHOULD_PARK != 0 && f & IS_PARKED == 0).then_some(f | IS_PARKED)
            })
    }

    /// Undoes a park (unpark, stop); returns the word before.
    pub(crate) fn clear_park(&self) -> u32 {
        self.0
            .fetch_and(!(SHOULD_PARK | IS_PARKED | SELF_PARK), Ordering::AcqRel)
    }

    /// Marks the thread exited and drops a pending park in the same RMW, so
    /// a parker still waiting is released exactly once; returns the word before.
    pub(crate) fn mark_exited(&self) -> u32 {
        let prev = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some((f | EXITED) & !SHOULD_PARK)
            });
        prev.unwrap_or_else(|f| f)
    }

    /// Records a fixed affinity (`PF_NO_SETAFFINITY`).
    pub(crate) fn mark_bound(&self) {
        self.0.fetch_or(BOUND, Ordering::AcqRel);
    }

    /// Makes the task freezable (`set_freezable()`, a freezable worker).
    pub(crate) fn set_freezable(&self) {
        self.0.fetch_or(FREEZABLE, Ordering::AcqRel);
    }

    /// Marks the thread as running a worker loop.
    pub(crate) fn mark_worker(&self) {
        self.0.fetch_or(WORKER, Ordering::AcqRel);
    }

    /// Sends later requests through `hooks.rs`; returns the word before,
    /// so the caller sees the requests that came first (they did not).
    pub(crate) fn mark_hooked(&self) -> u32 {
        self.0.fetch_or(HOOKED, Ordering::AcqRel)
    }

    /// The thread enters the refrigerator.
    pub(crate) fn enter_frozen(&self) {
        self.0.fetch_or(FROZEN, Ordering::AcqRel);
    }

    /// The thread leaves the refrigerator.
    pub(crate) fn leave_frozen(&self) {
        self.0.fetch_and(!FROZEN, Ordering::AcqRel);
    }

    /// The thread froze inside an interruptible sleep.
    pub(crate) fn note_froze_in_sleep(&self) {
        self.0.fetch_or(FROZE_IN_SLEEP, Ordering::AcqRel);
    }

    /// Whether the thread froze in a sleep since the last call; clears it.
    pub(crate) fn take_froze_in_sleep(&self) -> bool {
        // The relaxed pre-check spares the RMW on every call that has nothing to take.
        self.0.load(Ordering::Relaxed) & FROZE_IN_SLEEP != 0
            && self.0.fetch_and(!FROZE_IN_SLEEP, Ordering::AcqRel) & FROZE_IN_SLEEP != 0
    }
}
