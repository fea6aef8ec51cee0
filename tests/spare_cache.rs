//! kthreadd's spare cache: a create from it is still a fresh, clean
//! kthread that runs nothing before its first wake; the cache is bounded,
//! sized by `set_cache`, asleep while idle, and shown by `ps`.

mod common;

use common::{affinity_of, os_thread_name, watchdog, WATCHDOG};
use kthread::kthreadd::{self, cache_stats, set_cache, MAX_CACHE};
use kthread::{Error, StopError};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The cache size is process-wide: tests that set it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the cache for a test (returning once kthreadd has made it), and
/// back when dropped.
struct CacheSize(usize);
impl CacheSize {
    fn set(n: usize) -> CacheSize {
        kthreadd::start().unwrap();
        CacheSize(set_cache(n).unwrap())
    }
}
impl Drop for CacheSize {
    fn drop(&mut self) {
        set_cache(self.0).unwrap();
    }
}

thread_local! {
    static USES: Cell<u32> = const { Cell::new(0) };
}

static TLS_DROPS: AtomicUsize = AtomicUsize::new(0);
struct CountsDrop;
impl Drop for CountsDrop {
    fn drop(&mut self) {
        TLS_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}
thread_local! {
    static DROPPED_AT_EXIT: CountsDrop = const { CountsDrop };
}

#[test]
fn every_kthread_is_a_fresh_thread_with_its_thread_locals_torn_down() {
    let _w = watchdog("fresh_thread", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(4);
    let hits = cache_stats().hits;
    for _ in 0..12 {
        let before = TLS_DROPS.load(Ordering::SeqCst);
        let k = kthread::run("fresh", || {
            DROPPED_AT_EXIT.with(|_| ());
            USES.with(|u| {
                u.set(u.get() + 1);
                u.get()
            })
        })
        .unwrap();
        let uses = k.stop().unwrap();
        assert_eq!(
            uses, 1,
            "a thread-local was not fresh: the thread was reused"
        );
        assert_eq!(
            TLS_DROPS.load(Ordering::SeqCst),
            before + 1,
            "the thread-local destructor had not run when stop() returned"
        );
    }
    assert!(
        cache_stats().hits > hits,
        "no create was served from the cache"
    );
}

#[test]
fn a_cached_spare_runs_nothing_before_the_first_wake() {
    let _w = watchdog("nothing_before_wake", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(2);
    let hits = cache_stats().hits;
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let k = kthread::create("unwoken", move || r.store(true, Ordering::SeqCst)).unwrap();
    assert_eq!(cache_stats().hits, hits + 1, "not served by a spare");
    // Named and listed as the kernel's kthread_create() leaves it.
    assert_eq!(os_thread_name(k.task().tid()), "unwoken");
    assert_eq!(k.task().state(), kthread::TaskState::Uninterruptible);
    assert!(kthread::list().iter().any(|r| r.tid == k.task().tid()));
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
    assert!(
        !ran.load(Ordering::SeqCst),
        "the function ran without a wake"
    );
}

#[test]
fn a_bound_kthread_from_the_cache_starts_on_its_cpu_with_its_policy() {
    let _w = watchdog("bound_from_cache", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(2);
    let hits = cache_stats().hits;
    let k = kthread::Builder::new("warm-bound")
        .cpu(0)
        .nice(5)
        .run(|| {
            let t = kthread::current().unwrap();
            (affinity_of(0), t.nice())
        })
        .unwrap();
    assert_eq!(k.stop().unwrap(), (vec![0], 5));
    assert_eq!(cache_stats().hits, hits + 1, "not served by a spare");
}

#[test]
fn set_cache_sizes_the_cache_and_refuses_what_is_beyond_its_limit() {
    let _w = watchdog("set_cache", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(3);
    assert_eq!(
        cache_stats().spares,
        3,
        "set_cache returns with the cache made"
    );
    assert_eq!(cache_stats().target, 3);
    match set_cache(MAX_CACHE + 1) {
        Err(e @ Error::InvalidCacheSize(n)) => {
            assert_eq!(n, MAX_CACHE + 1);
            assert_eq!(e.errno(), libc::EINVAL);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cache_stats().target, 3, "a refused size changed nothing");
    assert_eq!(set_cache(0).unwrap(), 3);
    assert_eq!(cache_stats().spares, 0, "turned off, no spare is left");
    let misses = cache_stats().misses;
    let k = kthread::run("cold", || 9).unwrap();
    assert_eq!(
        k.stop().unwrap(),
        9,
        "with the cache off, creation still works"
    );
    assert_eq!(cache_stats().misses, misses + 1);
    assert_eq!(cache_stats().spares, 0, "the cache stays off");
}

#[test]
fn spares_sleep_and_are_shown_by_ps() {
    let _w = watchdog("spares_shown", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(2);
    let table = kthread::ps().to_string();
    let line = table
        .lines()
        .find(|l| l.contains("kthreadd/spare"))
        .unwrap_or_else(|| panic!("no spare line in\n{table}"));
    assert!(line.contains("2 of 2 waiting"), "{line}");
    let tids: Vec<i32> = line
        .split("(tids ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no tids in {line}"))
        .split(' ')
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(tids.len(), 2);
    for tid in tids {
        assert_eq!(os_thread_name(tid), "kthreadd/spare");
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
        assert_eq!(state, Some("S"), "a spare is not asleep: {stat}");
    }
}

#[test]
fn a_create_of_another_stack_size_is_served_and_refills_that_size() {
    let _w = watchdog("other_stack_size", WATCHDOG);
    let _g = serial();
    let _c = CacheSize::set(2);
    const SIZE: usize = 256 << 10;
    let k = kthread::Builder::new("small-stack")
        .stack_size(SIZE)
        .run(|| {
            // SAFETY: a zeroed pthread_attr_t is only written by
            // pthread_getattr_np below.
            let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
            // SAFETY: reads the calling thread's attributes into `attr`,
            // destroyed after use.
            unsafe {
                assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
                let mut size = 0;
                assert_eq!(libc::pthread_attr_getstacksize(&attr, &mut size), 0);
                libc::pthread_attr_destroy(&mut attr);
                size
            }
        })
        .unwrap();
    let size = k.stop().unwrap();
    assert!(
        (SIZE..SIZE + (64 << 10)).contains(&size),
        "stack of {size} bytes for {SIZE} asked"
    );
    assert_eq!(
        cache_stats().stack_size,
        SIZE,
        "refills follow the size asked"
    );
    // set_cache returns once kthreadd has refilled: the next one is a hit.
    set_cache(2).unwrap();
    let hits = cache_stats().hits;
    let k = kthread::Builder::new("small-again")
        .stack_size(SIZE)
        .run(|| ())
        .unwrap();
    k.stop().unwrap();
    assert_eq!(cache_stats().hits, hits + 1);
}
