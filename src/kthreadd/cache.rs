//! The spare cache: OS threads kthreadd cloned ahead of demand, and the
//! creators waiting for one.
//!
//! Plain state under kthreadd's lock; every transition is a method here,
//! so the protocol reads in one place (design.md, "The spare cache") and
//! the loom models drive it directly. Wakes (the gate, a waiter's
//! completion) are left to the caller, outside the lock.
//!
//! A spare is a fresh thread that has set up the clean environment and
//! then sleeps in its [`Gate`]; a create takes one, finishes the set-up
//! from outside (tid, affinity, policy) and opens the gate with the
//! thread's body. Each spare runs one body, or none: a spare never goes
//! back to the cache.

use crate::completion::Completion;
use crate::error::Error;
use crate::sync::{lock, Arc, AtomicU32, Mutex, Ordering};
use crate::sys::futex;
use crate::sys::thread::{NameFile, RawThread};
use crate::task::Task;
use std::collections::VecDeque;

/// What a spare runs once: the kthread's main.
pub(crate) type Main = Box<dyn FnOnce() + Send>;

/// A thread cloned ahead of demand, waiting in its gate.
pub(crate) struct Spare {
    /// Its pthread, joined by whoever ends up with its kthread.
    pub(crate) thread: RawThread,
    pub(crate) tid: libc::pid_t,
    pub(crate) stack_size: usize,
    pub(crate) gate: Arc<Gate>,
    /// What its clean environment could not reset (copied to its task).
    pub(crate) notes: Vec<String>,
    /// Its OS name file, for the creator to name it with one write.
    pub(crate) comm: Option<NameFile>,
}

/// Where a spare sleeps until it is given a body, or retired: a futex
/// word (`EMPTY`, then `ASSIGNED` or `RETIRED`) and the body.
pub(crate) struct Gate {
    word: AtomicU32,
    main: Mutex<Option<Main>>,
}

const EMPTY: u32 = 0;
const ASSIGNED: u32 = 1;
const RETIRED: u32 = 2;

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate {
            word: AtomicU32::new(EMPTY),
            main: Mutex::new(None),
        })
    }

    fn open(&self, to: u32) {
        // Release: the body written before is visible to the spare that
        // reads the word with Acquire.
        self.word.store(to, Ordering::Release);
    }

    /// Gives the spare its body and lets it run now (one wake, if it sleeps).
    pub(crate) fn assign(&self, main: Main) {
        *lock(&self.main) = Some(main);
        self.open(ASSIGNED);
        futex::wake(&self.word, 1);
    }

    /// Gives the spare its body without waking it: it sleeps on in `task`'s
    /// first sleep, and the task's first wake starts it
    /// ([`Task::adopt_sleeper`]). No wake on the creator's path.
    pub(crate) fn hand_over(&self, main: Main, task: &Task) {
        task.adopt_sleeper(&self.word, ASSIGNED, || {
            *lock(&self.main) = Some(main);
            self.open(ASSIGNED);
        });
    }

    /// Lets the spare go without a body: it detaches itself and ends.
    pub(crate) fn retire(&self) {
        self.open(RETIRED);
        futex::wake(&self.word, 1);
    }

    /// The spare's side: its body, or `None` when retired.
    pub(crate) fn wait(&self) -> Option<Main> {
        loop {
            match self.word.load(Ordering::Acquire) {
                EMPTY => drop(futex::wait(&self.word, EMPTY, None)),
                // Woken here, or on its task's word after a hand-over: the
                // body's first sleep waits for the task's wake either way.
                ASSIGNED => return lock(&self.main).take(),
                _ => return None,
            }
        }
    }
}

/// A creator that found no spare of its stack size: kthreadd clones one
/// for it and the spare hands itself over (or the error comes here).
pub(crate) struct Waiter {
    stack_size: usize,
    done: Completion,
    got: Mutex<Option<Result<Spare, Error>>>,
}

impl Waiter {
    fn new(stack_size: usize) -> Arc<Waiter> {
        Arc::new(Waiter {
            stack_size,
            done: Completion::new(),
            got: Mutex::new(None),
        })
    }

    /// Hands the waiter its spare or the reason there is none.
    pub(crate) fn give(&self, got: Result<Spare, Error>) {
        *lock(&self.got) = Some(got);
        self.done.complete();
    }

    /// The creator's side: sleeps until [`give`](Self::give).
    pub(crate) fn wait(&self) -> Result<Spare, Error> {
        self.done.wait();
        lock(&self.got)
            .take()
            .expect("a waiter is completed only by give()")
    }
}

/// What a create got from the cache.
pub(crate) enum Take {
    /// A spare of the size asked; `refill`: kthreadd should be woken to
    /// top the cache up (it has fallen to half).
    Hit { spare: Spare, refill: bool },
    /// None: wait on this (kthreadd must be woken to clone one).
    Wait(Arc<Waiter>),
}

/// What a newly born spare does next.
pub(crate) enum Registered {
    /// In the cache; the spare it displaced (another stack size) must be
    /// retired by the caller.
    Cached(Option<Spare>),
    /// Handed to a waiting creator: the caller gives it and then waits in
    /// its gate.
    Handed(Arc<Waiter>, Spare),
    /// Its set-up failed and a creator was waiting: the caller gives it
    /// the error, then ends.
    Failed(Arc<Waiter>, Error),
    /// Not needed (the cache is full or was turned off, or its set-up
    /// failed with nobody waiting): it ends.
    Retire,
}

impl Registered {
    /// The spare's side after registering (outside the lock): retire the
    /// spare it displaced, or hand itself to its waiter, then wait in its
    /// `gate` for a body; `None`: it ends (retired, or not needed).
    pub(crate) fn follow(self, gate: &Gate) -> Option<Main> {
        match self {
            Registered::Cached(displaced) => {
                if let Some(old) = displaced {
                    old.gate.retire();
                }
                gate.wait()
            }
            Registered::Handed(w, me) => {
                w.give(Ok(me));
                gate.wait()
            }
            Registered::Failed(w, e) => {
                w.give(Err(e));
                None
            }
            Registered::Retire => None,
        }
    }
}

/// Counters of the cache, as [`crate::kthreadd::cache_stats`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Spares waiting now.
    pub spares: usize,
    /// How many spares kthreadd keeps ([`crate::kthreadd::set_cache`]).
    pub target: usize,
    /// The stack size kthreadd refills with: that of the last create the
    /// cache could not serve (at first the default stack size).
    pub stack_size: usize,
    /// Creates served by a waiting spare.
    pub hits: u64,
    /// Creates that had to wait for kthreadd to clone a thread.
    pub misses: u64,
}

/// The cache proper.
pub(crate) struct Cache {
    /// Waiting spares, oldest first; a create takes the newest of its size.
    spares: Vec<Spare>,
    waiters: VecDeque<Arc<Waiter>>,
    /// Stack sizes of the spares cloned and not yet registered.
    in_flight: Vec<usize>,
    /// Released when `in_flight` empties ([`Cache::settled`]).
    settling: Vec<Arc<Completion>>,
    target: usize,
    class: usize,
    /// A refill failed (the process is out of threads or memory): no
    /// refills until the next create asks again, so kthreadd never loops.
    refill_failed: bool,
    hits: u64,
    misses: u64,
}

impl Cache {
    pub(crate) fn new(target: usize, class: usize) -> Cache {
        Cache {
            spares: Vec::new(),
            waiters: VecDeque::new(),
            in_flight: Vec::new(),
            settling: Vec::new(),
            target,
            class,
            refill_failed: false,
            hits: 0,
            misses: 0,
        }
    }

    /// Spares of the refill size, waiting or on their way.
    fn stocked(&self) -> usize {
        let class = self.class;
        self.spares.iter().filter(|s| s.stack_size == class).count()
            + self.in_flight.iter().filter(|&&s| s == class).count()
    }

    /// A create's request for a spare of `stack_size`.
    pub(crate) fn take(&mut self, stack_size: usize) -> Take {
        self.refill_failed = false;
        if let Some(i) = self.spares.iter().rposition(|s| s.stack_size == stack_size) {
            let spare = self.spares.remove(i);
            self.hits += 1;
            let stocked = self.stocked();
            let refill = stocked < self.target && stocked <= self.target / 2;
            return Take::Hit { spare, refill };
        }
        self.misses += 1;
        self.class = stack_size;
        let w = Waiter::new(stack_size);
        self.waiters.push_back(w.clone());
        Take::Wait(w)
    }

    /// kthreadd's side: the stack sizes to clone now (one per waiter not
    /// already covered by a spare on its way, then the refill), counted as
    /// on their way from here on.
    pub(crate) fn plan(&mut self) -> (Vec<usize>, Vec<Arc<Completion>>) {
        let mut flying = self.in_flight.clone();
        let mut plan = Vec::new();
        for w in &self.waiters {
            match flying.iter().position(|&s| s == w.stack_size) {
                Some(i) => drop(flying.swap_remove(i)),
                None => plan.push(w.stack_size),
            }
        }
        if !self.refill_failed {
            let class = self.class;
            let have = self.spares.iter().filter(|s| s.stack_size == class).count()
                + flying.iter().filter(|&&s| s == class).count();
            plan.extend(std::iter::repeat_n(class, self.target.saturating_sub(have)));
        }
        self.in_flight.extend_from_slice(&plan);
        let settled = if self.in_flight.is_empty() {
            std::mem::take(&mut self.settling)
        } else {
            Vec::new()
        };
        (plan, settled)
    }

    fn landed(&mut self, stack_size: usize) -> Vec<Arc<Completion>> {
        if let Some(i) = self.in_flight.iter().position(|&s| s == stack_size) {
            self.in_flight.swap_remove(i);
        }
        if self.in_flight.is_empty() {
            std::mem::take(&mut self.settling)
        } else {
            Vec::new()
        }
    }

    fn waiter_for(&mut self, stack_size: usize) -> Option<Arc<Waiter>> {
        let i = self
            .waiters
            .iter()
            .position(|w| w.stack_size == stack_size)?;
        self.waiters.remove(i)
    }

    /// A spare born: `born` is how its environment set-up went. Also
    /// returns the completions of [`settled`](Self::settled) callers to
    /// release.
    pub(crate) fn register(
        &mut self,
        spare: Spare,
        born: Result<(), Error>,
    ) -> (Registered, Vec<Arc<Completion>>) {
        let settled = self.landed(spare.stack_size);
        let next = match (self.waiter_for(spare.stack_size), born) {
            (Some(w), Ok(())) => Registered::Handed(w, spare),
            (Some(w), Err(e)) => Registered::Failed(w, e),
            (None, Err(_)) => {
                self.refill_failed = true;
                Registered::Retire
            }
            (None, Ok(())) if self.spares.len() < self.target => {
                self.spares.push(spare);
                Registered::Cached(None)
            }
            (None, Ok(())) => {
                let class = self.class;
                match self.spares.iter().position(|s| s.stack_size != class) {
                    Some(i) if spare.stack_size == class => {
                        let old = self.spares.remove(i);
                        self.spares.push(spare);
                        Registered::Cached(Some(old))
                    }
                    _ => Registered::Retire,
                }
            }
        };
        (next, settled)
    }

    /// kthreadd could not clone a thread of `stack_size`: the first
    /// creator waiting for one gets the error (none waiting: refills
    /// pause until the next create).
    pub(crate) fn clone_failed(
        &mut self,
        stack_size: usize,
    ) -> (Option<Arc<Waiter>>, Vec<Arc<Completion>>) {
        let settled = self.landed(stack_size);
        let w = self.waiter_for(stack_size);
        if w.is_none() {
            self.refill_failed = true;
        }
        (w, settled)
    }

    /// Sets how many spares to keep; returns the ones to retire now
    /// (oldest first beyond the new size).
    pub(crate) fn set_target(&mut self, target: usize) -> Vec<Spare> {
        self.target = target;
        self.refill_failed = false;
        let extra = self.spares.len().saturating_sub(target);
        self.spares.drain(..extra).collect()
    }

    /// A completion released when kthreadd next finds nothing to clone
    /// and no spare on its way: the cache then holds what its size asks
    /// (or a refill failed), so a caller of `set_cache` knows where it
    /// stands. kthreadd must be woken after this.
    pub(crate) fn settled(&mut self) -> Arc<Completion> {
        let c = Arc::new(Completion::new());
        self.settling.push(c.clone());
        c
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            spares: self.spares.len(),
            target: self.target,
            stack_size: self.class,
            hits: self.hits,
            misses: self.misses,
        }
    }

    /// The thread ids of the waiting spares, for `ps`.
    pub(crate) fn tids(&self) -> Vec<libc::pid_t> {
        self.spares.iter().map(|s| s.tid).collect()
    }
}
