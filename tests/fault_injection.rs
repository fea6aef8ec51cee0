//! Fault injection (feature `fault-injection`): creation failures come back
//! to the caller and leave nothing behind; kthreadd keeps serving; a
//! panicking work item never loses another item.
#![cfg(feature = "fault-injection")]

mod common;

use common::{watchdog, WATCHDOG};
use kthread::fault::{self, Point};
use kthread::{Error, Work, Worker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Fault points are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// OS threads of this process named `name` (other tests run in parallel,
/// so only the name tells whose thread it is).
fn os_threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Sets kthreadd's spare cache for a test, and back when dropped.
struct CacheSize(usize);
impl CacheSize {
    fn set(n: usize) -> CacheSize {
        CacheSize(kthread::kthreadd::set_cache(n).unwrap())
    }
}
impl Drop for CacheSize {
    fn drop(&mut self) {
        kthread::kthreadd::set_cache(self.0).unwrap();
    }
}

/// Arms `point` once with `errno`, creates a kthread, and checks the error
/// comes back, the closure was dropped exactly once without running, and no
/// thread or registry entry is left.
///
/// With the spare cache off, so the create's own clone and the new
/// thread's own set-up are what fail (a spare born earlier has done both).
fn check_creation_fails(point: Point, errno: i32, name: &str, builder: kthread::Builder) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    kthread::kthreadd::start().unwrap();
    let _cache = CacheSize::set(0);
    check_creation_fails_now(point, errno, name, builder);
}

fn check_creation_fails_now(point: Point, errno: i32, name: &str, builder: kthread::Builder) {
    let rows = |n: &str| kthread::list().iter().filter(|r| r.name == n).count();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(drops.clone());
    let r = ran.clone();
    let injected = fault::injected();
    fault::arm(point, 1, errno);
    let err = builder
        .create(move || {
            let _keep = &guard;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .expect_err("the injected failure must come back");
    assert_eq!(
        fault::injected(),
        injected + 1,
        "the fault was not injected"
    );
    assert_eq!(err.errno(), errno, "{err}");
    assert!(matches!(err, Error::Os(_)), "{err:?}");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "closure dropped exactly once"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the function never runs");
    assert_eq!(rows(name), 0, "registry entry leaked");
    assert_eq!(os_threads_named(name), 0, "OS thread leaked");
    // kthreadd keeps serving.
    let k = kthread::run("after-fault", || 7).unwrap();
    assert_eq!(k.stop().unwrap(), 7);
}

#[test]
fn spawn_eagain_comes_back_and_leaves_nothing() {
    let _w = watchdog("spawn_eagain", WATCHDOG);
    check_creation_fails(
        Point::Spawn,
        libc::EAGAIN,
        "f-eagain",
        kthread::Builder::new("f-eagain"),
    );
}

#[test]
fn spawn_enomem_comes_back_and_leaves_nothing() {
    let _w = watchdog("spawn_enomem", WATCHDOG);
    check_creation_fails(
        Point::Spawn,
        libc::ENOMEM,
        "f-enomem",
        kthread::Builder::new("f-enomem"),
    );
}

#[test]
fn affinity_failure_comes_back_and_leaves_nothing() {
    let _w = watchdog("affinity_failure", WATCHDOG);
    check_creation_fails(
        Point::Affinity,
        libc::EPERM,
        "f-aff",
        kthread::Builder::new("f-aff"),
    );
}

/// A spare taken from the cache for a bound kthread gets its affinity from
/// the creator: that failure comes back too, and the spare ends rather
/// than serve again.
#[test]
fn affinity_failure_of_a_cached_spare_comes_back_and_leaves_nothing() {
    let _w = watchdog("affinity_failure_cached", WATCHDOG);
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    kthread::kthreadd::start().unwrap();
    // set_cache returns once both spares are there: the create takes one.
    let _cache = CacheSize::set(2);
    let hits = kthread::kthreadd::cache_stats().hits;
    check_creation_fails_now(
        Point::Affinity,
        libc::EPERM,
        "f-aff-warm",
        kthread::Builder::new("f-aff-warm").cpu(0),
    );
    assert!(
        kthread::kthreadd::cache_stats().hits > hits,
        "the failing create did not take a cached spare"
    );
}

#[test]
fn mempolicy_failure_comes_back_and_leaves_nothing() {
    let _w = watchdog("mempolicy_failure", WATCHDOG);
    // Only a kthread with a node sets a memory policy: the others inherit
    // kthreadd's default one.
    check_creation_fails(
        Point::Mempolicy,
        libc::EIO,
        "f-mpol-node",
        kthread::Builder::new("f-mpol-node").node(0),
    );
}

#[test]
fn kthreadds_reset_failure_comes_back_and_leaves_nothing() {
    let _w = watchdog("kthreadd_reset_failure", WATCHDOG);
    // With the cache off, kthreadd clones this create's thread, and first
    // resets its own scheduling attributes (which the clone inherits): an
    // affinity failure there goes to the waiting creator.
    check_creation_fails(
        Point::Affinity,
        libc::EPERM,
        "f-kd-reset",
        kthread::Builder::new("f-kd-reset"),
    );
}

#[test]
fn bind_affinity_failure_is_an_error_and_the_thread_stays_usable() {
    let _w = watchdog("bind_affinity_failure", WATCHDOG);
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let k = kthread::create("f-bind", || 3).unwrap();
    fault::arm(Point::Affinity, 1, libc::EPERM);
    let err = k.bind(0).expect_err("injected");
    assert_eq!(err.errno(), libc::EPERM);
    assert!(
        !k.task().is_bound(),
        "a failed bind must not mark the task bound"
    );
    k.bind(0).unwrap();
    k.wake_up();
    assert_eq!(k.stop().unwrap(), 3);
}

#[test]
fn panicking_items_never_lose_another_item() {
    let _w = watchdog("panicking_items_never_lose_another_item", WATCHDOG);
    // Creating the worker must not consume a fault armed by another test.
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let worker = Worker::new("f-panics").unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..700)
        .map(|i| {
            let ran = ran.clone();
            Work::new(move || {
                if i % 7 == 0 {
                    panic!("injected panic in item {i}");
                }
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for w in &items {
        assert!(worker.queue(w));
    }
    worker.flush().unwrap();
    assert_eq!(worker.panics(), 100);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        600,
        "an item was lost or run twice"
    );
    assert!(items.iter().all(|w| !w.is_pending()));
    // The panicked items can be queued again and the worker still serves.
    assert!(worker.queue(&items[0]));
    assert!(worker.queue(&items[1]));
    worker.flush().unwrap();
    assert_eq!(worker.panics(), 101);
    assert_eq!(ran.load(Ordering::SeqCst), 601);
}
