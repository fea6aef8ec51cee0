//! The safe work items, `Work` and `DelayedWork`: one generic item type over
//! the raw `RawWork` / `RawDelayedWork`, shared by both.

use super::raw::{self, Claim, Hook, Locked, RawDelayedWork, RawWork, RawWorker, WorkFn};
use crate::error::{drop_payload, panic_message, Error};
use crate::sync::{lock, yield_now, AtomicPtr, DynArc, Mutex, MutexGuard, Ordering};
use crate::task;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Keeps a work item's current owner alive, for `flush` and `cancel_sync`.
///
/// Invariant: `owner` holds one strong count of the worker named in the
/// item's state word (null until the first queue). The owner changes only
/// inside a claim, and the raw layer calls back right after such a claim,
/// before the item is pushed (so before it can move again); `owner` is set
/// there. The first queue stores it with no lock (it is the only claim that
/// ever finds no owner, and nothing can move the item before its push), so
/// a queue takes no lock unless it moves the item: `queue` stays
/// async-signal-safe. A move swaps it under `moving`, which the readers
/// that take a count of it hold too, so no reader clones a count being
/// dropped.
struct Keep {
    owner: AtomicPtr<RawWorker>,
    moving: Mutex<()>,
}

impl Keep {
    fn new() -> Keep {
        Keep {
            owner: AtomicPtr::new(std::ptr::null_mut()),
            moving: Mutex::new(()),
        }
    }

    /// Runs a raw claim by `core`. First without allowing a move (the
    /// common case: first queue, or the same owner again; no lock); if the
    /// item sits idle on another worker, again with `moving` held, so the
    /// old owner the claim locks stays alive through the move, and with
    /// `owner` swapped to `core` from inside the claim. The old owner's
    /// count is dropped only after the raw call has released its lock.
    ///
    /// `op` has one call site (the loop), so it is inlined into the queue
    /// path; with two call sites it became an out-of-line call that cost
    /// every queue a third more instructions (callgrind).
    #[inline]
    fn claim<R>(
        &self,
        core: &DynArc<RawWorker>,
        op: impl Fn(&mut Hook<'_>) -> Result<R, Claim>,
    ) -> Result<R, Claim> {
        // `moving` held for the second attempt, and the owner it replaced.
        let mut moving: Option<MutexGuard<'_, ()>> = None;
        let mut old: *mut RawWorker = std::ptr::null_mut();
        loop {
            let may_move = moving.is_some();
            let mut moved = || {
                let new = DynArc::into_raw(core.clone()).cast_mut();
                if may_move {
                    old = self.owner.swap(new, Ordering::AcqRel);
                } else {
                    // The first queue: no owner before, no reader to exclude.
                    self.owner.store(new, Ordering::Release);
                }
            };
            let r = op(&mut Hook {
                moved: &mut moved,
                may_move,
            });
            if !may_move && matches!(r, Err(Claim::WouldMove)) {
                moving = Some(lock(&self.moving));
                continue;
            }
            drop(moving);
            if !old.is_null() {
                // SAFETY: `old` is the count `owner` held, handed to us by the swap.
                drop(unsafe { DynArc::from_raw(old) });
            }
            return r;
        }
    }

    /// A count of the current owner; `None` if the item was never queued.
    fn owner(&self) -> Option<DynArc<RawWorker>> {
        let _g = lock(&self.moving);
        let p = self.owner.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `owner` holds a count of `p`, and only a move, which
        // holds `moving` as we do, gives that count away.
        Some(unsafe {
            DynArc::increment_strong_count(p);
            DynArc::from_raw(p)
        })
    }

    /// Runs `op` with the item's owner (a count of it) locked (the guard
    /// passes the lock) and alive; `None` if the item was never queued.
    fn with_owner<R>(
        &self,
        raw: &RawWork,
        op: impl Fn(&DynArc<RawWorker>, Locked<'_>) -> R,
    ) -> Option<R> {
        loop {
            let owner = self.owner()?;
            if owner.is_inherited() {
                // A fork() child's copy of the owner: nothing runs there,
                // and its lock may be held by a thread that is gone. Idle.
                return None;
            }
            if let Some(l) = owner.lock_if_owner(raw) {
                return Some(op(&owner, l));
            }
            // A claimer moved the item and is setting `owner` right now.
            yield_now();
        }
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        let p = self.owner.swap(std::ptr::null_mut(), Ordering::Relaxed);
        if !p.is_null() {
            // SAFETY: the count `owner` held; nothing else can reach it now.
            drop(unsafe { DynArc::from_raw(p) });
        }
    }
}

/// The raw item under a safe one: `RawWork` or `RawDelayedWork`.
pub(super) trait RawItem: Send + Sync + 'static {
    /// A raw item running `func`, released by `release`.
    fn with_release(func: Option<WorkFn>, release: Option<WorkFn>) -> Self;
    /// The work every raw call takes (at offset 0 of the item, `repr(C)`).
    fn work(&self) -> &RawWork;
}

impl RawItem for RawWork {
    fn with_release(func: Option<WorkFn>, release: Option<WorkFn>) -> Self {
        RawWork::with_release(func, release)
    }
    fn work(&self) -> &RawWork {
        self
    }
}

impl RawItem for RawDelayedWork {
    fn with_release(func: Option<WorkFn>, release: Option<WorkFn>) -> Self {
        RawDelayedWork::with_release(func, release)
    }
    fn work(&self) -> &RawWork {
        &self.work
    }
}

/// A safe work item: the raw item first (so the raw layer's `*mut RawWork`
/// is the item's address), its owner keep-alive, then the closure.
#[repr(C)]
pub(super) struct Item<R, F: ?Sized> {
    raw: R,
    keep: Keep,
    f: F,
}

/// The shared handle of both item kinds: `Arc<Item<R, dyn Fn>>`.
pub(super) type ItemRef<R> = DynArc<Item<R, dyn Fn() + Send + Sync>>;

/// Calls a work's closure, catching and reporting a panic (the worker goes on).
fn run_caught(raw: &RawWork, f: &dyn Fn()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        // SAFETY: the owner runs this item right now, so it exists.
        let owner = unsafe { raw.owner().as_ref() };
        note_panic(owner, raw as *const RawWork as usize, &*p);
        // A `panic_any` payload may panic when dropped: not across `extern "C"`.
        drop_payload(p);
    }
}

unsafe extern "C" fn trampoline<R: RawItem, F: Fn() + Send + Sync>(w: *mut RawWork) {
    // SAFETY: only `Item<R, F>`s are created with this function, their raw
    // work is at offset 0 (repr(C), twice for a delayed item), and the
    // queue's reference keeps the item alive while it runs.
    let item = unsafe { &*(w as *const Item<R, F>) };
    run_caught(item.raw.work(), &item.f);
}

unsafe extern "C" fn release<R: RawItem, F: Fn() + Send + Sync>(w: *mut RawWork) {
    // Read before the release: the last reference frees the item.
    // SAFETY: the queue's reference keeps the item alive until the release below.
    let owner = unsafe { (*w).owner() };
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the queue's reference was leaked from an `Arc<Item<R, F>>`
        // (unsized to `dyn Fn`: the same allocation and layout) when it was
        // queued; this gives it back exactly once.
        unsafe { DynArc::decrement_strong_count(w as *const Item<R, F>) }
    }));
    // The last reference dropped the closure, whose captures' `Drop` may
    // panic: it must not unwind through this `extern "C"` hook (an abort).
    // Counted and reported as the work's own panics are.
    if let Err(p) = dropped {
        // SAFETY: `owner` is the worker that ran or held this instance: the
        // worker itself, or the canceller's locked-then-released owner, which
        // the safe layer's `Keep` holds alive for the caller.
        note_panic(unsafe { owner.as_ref() }, w as usize, &*p);
        drop_payload(p);
    }
}

/// Counts and reports a panic of a work's closure or of its drop.
fn note_panic(owner: Option<&RawWorker>, work: usize, p: &(dyn std::any::Any + Send)) {
    if let Some(o) = owner {
        o.note_panic();
    }
    let me = task::current_or_adopt();
    let msg = panic_message(p).unwrap_or("<non-string payload>");
    crate::trace::event!(
        ERROR,
        "kthread_work_panicked",
        me.name(),
        me.tid(),
        work = work,
        msg = msg
    );
}

impl<R: RawItem> Item<R, ()> {
    /// A new item running `f`.
    pub(super) fn new<F: Fn() + Send + Sync + 'static>(f: F) -> ItemRef<R> {
        DynArc::new(Item {
            raw: R::with_release(Some(trampoline::<R, F>), Some(release::<R, F>)),
            keep: Keep::new(),
            f,
        })
    }
}

impl<R: RawItem> Item<R, dyn Fn() + Send + Sync> {
    pub(super) fn is_pending(&self) -> bool {
        self.raw.work().is_pending()
    }

    /// The raw item, for the raw queue operations.
    #[inline]
    pub(super) fn raw(&self) -> &R {
        &self.raw
    }

    /// Runs `op`, a raw queue operation of `core` on this item, with the
    /// queue's reference taken: kept if `queued(&result)` says the item was
    /// claimed. (`op` is handed on as it is: wrapping it in another closure
    /// costs every queue a call the optimiser no longer removes.)
    #[inline]
    pub(super) fn claim<T>(
        item: &ItemRef<R>,
        core: &DynArc<RawWorker>,
        op: impl Fn(&mut Hook<'_>) -> Result<T, Claim>,
        queued: impl FnOnce(&Result<T, Claim>) -> bool,
    ) -> Result<T, Claim> {
        let extra = item.clone();
        let r = item.keep.claim(core, op);
        if queued(&r) {
            // The queue's reference: `release` drops it after the run or a
            // successful cancel.
            std::mem::forget(extra);
        }
        r
    }

    /// `flush` on the item's owner; `Ok(false)` if never queued.
    pub(super) fn try_flush(&self) -> Result<bool, Error> {
        let w = self.raw.work();
        self.keep
            .with_owner(w, |_, l| raw::flush_locked(l, w))
            .unwrap_or(Ok(false))
    }

    /// [`try_flush`](Self::try_flush) for an async waiter: the sentinel is
    /// placed now; the future resolves once it ran.
    #[cfg(feature = "async")]
    pub(super) fn try_flush_async(&self) -> Result<Flushed<bool>, Error> {
        let w = self.raw.work();
        let (covers, wait) = self
            .keep
            .with_owner(w, |_, l| raw::flush_locked_async(l, w))
            .unwrap_or_else(|| Ok((false, raw::FlushWait::ready())))?;
        Ok(Flushed::new(wait, covers))
    }

    /// [`cancel_sync`](Self::cancel_sync) for an async waiter: queueing is
    /// blocked and a pending instance taken off now; the future waits for a
    /// running one and lets queueing succeed again when it resolves or is
    /// dropped.
    #[cfg(feature = "async")]
    pub(super) fn cancel_async(item: &ItemRef<R>) -> CancelAsync<R> {
        let w = item.raw.work();
        let started = item.keep.with_owner(w, |owner, l| {
            let (was_pending, wait) = raw::cancel_locked_async(l, w);
            (owner.clone(), was_pending, wait)
        });
        match started {
            Some((owner, was_pending, wait)) => CancelAsync {
                item: item.clone(),
                owner: Some(owner),
                was_pending,
                wait,
            },
            None => CancelAsync {
                item: item.clone(),
                owner: None,
                was_pending: false,
                wait: raw::FlushWait::ready(),
            },
        }
    }

    /// `cancel_sync` on the item's owner; `false` if never queued.
    pub(super) fn cancel_sync(&self) -> bool {
        let w = self.raw.work();
        self.keep
            .with_owner(w, |_, l| raw::cancel_locked(l, w))
            .unwrap_or(false)
    }

    pub(super) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

/// A work item: a function run on a worker; mirrors `struct kthread_work`.
///
/// Cheap to clone (one reference count); all clones are the same item.
/// Dropping every handle while it is queued is safe: the worker keeps it
/// alive until it has run or been cancelled.
///
/// ```
/// use std::sync::Arc;
/// let w = kthread::Worker::new("w")?;
/// let gate = Arc::new(kthread::Completion::new());
/// let g = gate.clone();
/// let blocker = kthread::Work::new(move || g.wait()); // holds the worker
/// let job = kthread::Work::new(|| ());
/// let same = job.clone();
/// assert!(w.queue(&blocker));
/// assert!(w.queue(&job));
/// assert!(!w.queue(&same)); // the same item: pending at most once
/// gate.complete();
/// w.flush()?;
/// assert!(!same.is_pending());
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone)]
pub struct Work(pub(super) ItemRef<RawWork>);

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Work", f)
    }
}

impl Work {
    /// A work item running `f`; mirrors `kthread_init_work()`.
    ///
    /// ```
    /// let job = kthread::Work::new(|| println!("hello"));
    /// assert!(!job.is_pending());
    /// ```
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> Work {
        Work(Item::new(f))
    }

    /// Whether it is queued and has not started yet.
    ///
    /// ```
    /// assert!(!kthread::Work::new(|| ()).is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.0.is_pending()
    }

    /// Waits for the instance queued or running now; mirrors `kthread_flush_work()`.
    ///
    /// Returns `false` at once if idle, `true` after waiting. Later
    /// re-queues are not waited for.
    ///
    /// # Panics
    /// From its own worker's thread while it is pending or running (it
    /// would wait for itself); [`try_flush`](Work::try_flush) returns the error instead.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// assert!(!job.flush());
    /// w.queue(&job);
    /// job.flush();
    /// assert!(!job.is_pending());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn flush(&self) -> bool {
        match self.try_flush() {
            Ok(waited) => waited,
            Err(e) => panic!("Work::flush: {e}: called from its own worker"),
        }
    }

    /// As [`flush`](Work::flush), returning [`Error::WouldDeadlock`] instead of panicking.
    ///
    /// ```
    /// let job = kthread::Work::new(|| ());
    /// assert_eq!(job.try_flush()?, false);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn try_flush(&self) -> Result<bool, Error> {
        self.0.try_flush()
    }

    /// Cancels a pending instance and waits for a running one; mirrors
    /// `kthread_cancel_work_sync()`. Returns whether it was pending.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// assert!(!job.cancel_sync());
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn cancel_sync(&self) -> bool {
        self.0.cancel_sync()
    }

    /// Waits for the instance queued or running now without blocking the
    /// thread, as [`flush`](Work::flush) does (feature `async`): the flush
    /// is placed behind that instance at the call, and the future resolves
    /// with `true` once it ran, or with `false` at once if the item was idle.
    ///
    /// Cancel-safe: dropping the future leaves the item as it is (queued,
    /// running or idle) and only stops waiting; nothing is woken after the drop.
    ///
    /// # Panics
    /// As [`flush`](Work::flush): at the call, from its own worker's thread
    /// while the item is pending or running.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// w.queue(&job);
    /// futures::executor::block_on(job.flush_async());
    /// assert!(!job.is_pending());
    /// assert!(!futures::executor::block_on(job.flush_async())); // idle now
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn flush_async(&self) -> impl std::future::Future<Output = bool> + Send {
        match self.0.try_flush_async() {
            Ok(f) => f,
            Err(e) => panic!("Work::flush_async: {e}: called from its own worker"),
        }
    }

    /// Cancels a pending instance and waits for a running one without
    /// blocking the thread, as [`cancel_sync`](Work::cancel_sync) does
    /// (feature `async`). At the call, queueing is blocked and a pending
    /// instance is taken off the list; the future resolves with whether it
    /// was pending, once no instance runs. Until then queue attempts fail,
    /// as they do during `cancel_sync`.
    ///
    /// Cancel-safe: dropping the future before it resolved ends the cancel
    /// (queueing succeeds again); a pending instance stays cancelled, a
    /// running one runs to its end.
    ///
    /// ```
    /// let w = kthread::Worker::new("w")?;
    /// let job = kthread::Work::new(|| ());
    /// assert!(!futures::executor::block_on(job.cancel_async())); // idle
    /// w.queue(&job);
    /// futures::executor::block_on(job.cancel_async());
    /// assert!(!job.is_pending());
    /// assert!(w.queue(&job)); // queueing works again
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn cancel_async(&self) -> impl std::future::Future<Output = bool> + Send {
        Item::cancel_async(&self.0)
    }
}

/// A work item that runs after a delay; mirrors `struct kthread_delayed_work`.
///
/// Timers are kept by the worker itself (no timer thread).
///
/// ```
/// use std::time::Duration;
/// let w = kthread::Worker::new("w")?;
/// let sync = kthread::DelayedWork::new(|| println!("sync"));
/// w.queue_delayed(&sync, Duration::from_secs(1));
/// assert!(sync.cancel_sync()); // armed: cancelled before it ran
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone)]
pub struct DelayedWork(pub(super) ItemRef<RawDelayedWork>);

impl fmt::Debug for DelayedWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("DelayedWork", f)
    }
}

impl DelayedWork {
    /// A delayed work item running `f`; mirrors `kthread_init_delayed_work()`.
    ///
    /// ```
    /// let tick = kthread::DelayedWork::new(|| ());
    /// assert!(!tick.is_pending());
    /// ```
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> DelayedWork {
        DelayedWork(Item::new(f))
    }

    /// Whether it is armed or queued and has not started yet.
    ///
    /// ```
    /// assert!(!kthread::DelayedWork::new(|| ()).is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.0.is_pending()
    }

    /// Runs an armed instance now and waits for it (or for a queued or
    /// running one); mirrors `kthread_flush_work()` on a delayed work, with
    /// `flush_delayed_work()`'s "fire the timer now". Returns whether it waited.
    ///
    /// # Panics
    /// From its own worker's thread while pending or running (see [`Work::flush`]);
    /// [`try_flush`](DelayedWork::try_flush) returns the error instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("w")?;
    /// let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    /// let r = ran.clone();
    /// let d = kthread::DelayedWork::new(move || r.store(true, std::sync::atomic::Ordering::SeqCst));
    /// w.queue_delayed(&d, Duration::from_secs(3600));
    /// assert!(d.flush());
    /// assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn flush(&self) -> bool {
        match self.try_flush() {
            Ok(waited) => waited,
            Err(e) => panic!("DelayedWork::flush: {e}: called from its own worker"),
        }
    }

    /// As [`flush`](DelayedWork::flush), returning [`Error::WouldDeadlock`] instead of panicking.
    ///
    /// ```
    /// let tick = kthread::DelayedWork::new(|| ());
    /// assert_eq!(tick.try_flush()?, false);
    /// # Ok::<(), kthread::Error>(())
    /// ```
    pub fn try_flush(&self) -> Result<bool, Error> {
        self.0.try_flush()
    }

    /// Disarms or dequeues it and waits for a running instance; mirrors
    /// `kthread_cancel_delayed_work_sync()`. Returns whether it was pending.
    ///
    /// ```
    /// assert!(!kthread::DelayedWork::new(|| ()).cancel_sync());
    /// ```
    pub fn cancel_sync(&self) -> bool {
        self.0.cancel_sync()
    }

    /// As [`flush`](DelayedWork::flush), without blocking the thread
    /// (feature `async`): an armed instance is fired at the call, and the
    /// future resolves once the instance queued or running then has run
    /// (`true`), or at once with `false` if idle. Cancel-safe as
    /// [`Work::flush_async`].
    ///
    /// # Panics
    /// As [`flush`](DelayedWork::flush).
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("w")?;
    /// let d = kthread::DelayedWork::new(|| ());
    /// w.queue_delayed(&d, Duration::from_secs(3600));
    /// assert!(futures::executor::block_on(d.flush_async())); // fired now, and ran
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn flush_async(&self) -> impl std::future::Future<Output = bool> + Send {
        match self.0.try_flush_async() {
            Ok(f) => f,
            Err(e) => panic!("DelayedWork::flush_async: {e}: called from its own worker"),
        }
    }

    /// As [`cancel_sync`](DelayedWork::cancel_sync), without blocking the
    /// thread (feature `async`): disarms or dequeues at the call, then
    /// waits for a running instance. Cancel-safe as [`Work::cancel_async`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = kthread::Worker::new("w")?;
    /// let d = kthread::DelayedWork::new(|| ());
    /// w.queue_delayed(&d, Duration::from_secs(3600));
    /// assert!(futures::executor::block_on(d.cancel_async())); // armed: cancelled
    /// # Ok::<(), kthread::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn cancel_async(&self) -> impl std::future::Future<Output = bool> + Send {
        Item::cancel_async(&self.0)
    }
}

/// The future of an async flush: resolves with `out` once its sentinel ran.
#[cfg(feature = "async")]
#[derive(Debug)]
pub(super) struct Flushed<T> {
    wait: raw::FlushWait,
    out: Option<T>,
}

#[cfg(feature = "async")]
impl<T> Flushed<T> {
    pub(super) fn new(wait: raw::FlushWait, out: T) -> Flushed<T> {
        Flushed {
            wait,
            out: Some(out),
        }
    }
}

#[cfg(feature = "async")]
impl<T: Unpin> std::future::Future for Flushed<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        let this = &mut *self;
        std::task::ready!(this.wait.poll_done(cx));
        std::task::Poll::Ready(
            this.out
                .take()
                .expect("a Flushed future polled after it resolved"),
        )
    }
}

/// The future of an async cancel: waits for a running instance, then ends
/// the cancel (also when dropped first).
#[cfg(feature = "async")]
pub(super) struct CancelAsync<R: RawItem> {
    item: ItemRef<R>,
    /// The owner whose cancel count this holds; `None` once ended (or never begun).
    owner: Option<DynArc<RawWorker>>,
    was_pending: bool,
    wait: raw::FlushWait,
}

#[cfg(feature = "async")]
impl<R: RawItem> CancelAsync<R> {
    fn end(&mut self) {
        if let Some(owner) = self.owner.take() {
            raw::cancel_end(&owner, self.item.raw().work());
        }
    }
}

#[cfg(feature = "async")]
impl<R: RawItem> std::future::Future for CancelAsync<R> {
    type Output = bool;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        let this = &mut *self;
        std::task::ready!(this.wait.poll_done(cx));
        this.end();
        std::task::Poll::Ready(this.was_pending)
    }
}

#[cfg(feature = "async")]
impl<R: RawItem> Drop for CancelAsync<R> {
    fn drop(&mut self) {
        self.end();
    }
}
