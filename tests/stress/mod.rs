//! The randomized model-based stress engine, shared by `tests/stress_model.rs`
//! (a short seeded run) and `examples/kthread-soak.rs` (a timed soak).
//!
//! Several driver threads run random operations — create, wake, stop, park,
//! unpark, queue, queue_delayed, mod_delayed, flush (work and worker),
//! cancel_sync, freeze, thaw, destroy — on shared workers. Each driver owns
//! its items and kthreads, so a simple sequential reference per item says
//! what may happen: every successful claim (queue, queue_delayed, or
//! mod_delayed that armed an idle item) ends in exactly one run or one
//! successful cancel; no item runs on two threads at once; after `flush`
//! every claim made before it has finished; after `cancel_sync` the item is
//! neither running nor pending; no kthread runs its function before its
//! wake or after a stop that returned `NotStarted`. A violation panics with
//! the seed, so the run reproduces.
#![allow(dead_code)]

use kthread::{DelayedWork, Kthread, StopError, TaskState, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A small, fast, seedable generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Totals across all drivers.
#[derive(Default)]
pub struct Totals {
    pub ops: AtomicU64,
    pub claims: AtomicU64,
    pub runs: AtomicU64,
    pub cancels: AtomicU64,
    pub kthreads: AtomicU64,
    pub freezes: AtomicU64,
    pub freeze_timeouts: AtomicU64,
}

impl Totals {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// One item and its sequential reference.
struct Item {
    work: Work,
    delayed: DelayedWork,
    is_delayed: bool,
    inside: Arc<AtomicBool>,
    runs: Arc<AtomicU64>,
    claims: u64,
    cancels: u64,
    worker: usize,
}

fn make_item(is_delayed: bool, worker: usize, totals: &Arc<Totals>) -> Item {
    let inside = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU64::new(0));
    let body = {
        let (inside, runs, totals) = (inside.clone(), runs.clone(), totals.clone());
        move || {
            assert!(
                !inside.swap(true, Ordering::SeqCst),
                "an item ran on two threads at once"
            );
            runs.fetch_add(1, Ordering::SeqCst);
            totals.runs.fetch_add(1, Ordering::Relaxed);
            std::hint::spin_loop();
            inside.store(false, Ordering::SeqCst);
        }
    };
    Item {
        work: Work::new(body.clone()),
        delayed: DelayedWork::new(body),
        is_delayed,
        inside,
        runs,
        claims: 0,
        cancels: 0,
        worker,
    }
}

impl Item {
    fn finished(&self) -> u64 {
        self.runs.load(Ordering::SeqCst) + self.cancels
    }

    fn check_settled(&self, seed: u64, what: &str) {
        assert_eq!(
            self.finished(),
            self.claims,
            "seed {seed}: after {what}: runs {} + cancels {} != claims {}",
            self.runs.load(Ordering::SeqCst),
            self.cancels,
            self.claims
        );
    }
}

/// A kthread of a driver and what the reference expects of it.
struct Thread {
    k: Kthread<u64>,
    woken: bool,
    ran: Arc<AtomicBool>,
    parked: bool,
    /// Half of them are created with `interrupt_on_stop`, a stop fd and a
    /// stop callback counting its runs: the callback runs exactly once.
    hooks: Option<(Arc<AtomicUsize>, kthread::StopCallback)>,
}

impl Thread {
    /// Stops the kthread; checks its stop callback ran exactly once.
    fn stop(self, seed: u64) -> Result<u64, StopError> {
        let r = self.k.stop();
        if let Some((runs, guard)) = self.hooks {
            assert_eq!(
                runs.load(Ordering::SeqCst),
                1,
                "seed {seed}: stop callback runs"
            );
            drop(guard);
        }
        r
    }
}

fn parkable(ran: Arc<AtomicBool>) -> impl FnOnce() -> u64 + Send + 'static {
    move || {
        ran.store(true, Ordering::SeqCst);
        let mut rounds = 0;
        while !kthread::should_stop() {
            if kthread::should_park() {
                kthread::parkme();
                continue;
            }
            kthread::set_current_state(TaskState::Interruptible);
            if !kthread::should_stop() && !kthread::should_park() {
                kthread::schedule();
            }
            kthread::set_current_state(TaskState::Running);
            rounds += 1;
        }
        rounds
    }
}

/// Shared state of one run.
pub struct Shared {
    workers: Vec<Worker>,
    freezer: Mutex<()>,
    pub totals: Arc<Totals>,
}

fn driver(seed: u64, id: usize, shared: &Shared, keep_going: &dyn Fn(u64) -> bool) {
    let mut rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let nworkers = shared.workers.len();
    let mut items: Vec<Item> = (0..8)
        .map(|i| make_item(i % 3 == 0, i % nworkers, &shared.totals))
        .collect();
    let mut threads: Vec<Thread> = Vec::new();
    let mut n = 0u64;
    while keep_going(n) {
        n += 1;
        shared.totals.ops.fetch_add(1, Ordering::Relaxed);
        let it = rng.below(items.len() as u64) as usize;
        let item = &mut items[it];
        let worker = &shared.workers[item.worker];
        match rng.below(16) {
            0..=3 => {
                let ok = if item.is_delayed {
                    worker.queue_delayed(&item.delayed, Duration::from_micros(rng.below(300)))
                } else {
                    worker.queue(&item.work)
                };
                if ok {
                    item.claims += 1;
                    shared.totals.claims.fetch_add(1, Ordering::Relaxed);
                }
            }
            4 if item.is_delayed => {
                if !worker.mod_delayed(&item.delayed, Duration::from_micros(rng.below(200))) {
                    item.claims += 1;
                    shared.totals.claims.fetch_add(1, Ordering::Relaxed);
                }
            }
            4 | 5 => {
                if item.is_delayed {
                    item.delayed.flush();
                } else {
                    item.work.flush();
                }
                item.check_settled(seed, "flush");
            }
            6 => {
                let was = if item.is_delayed {
                    item.delayed.cancel_sync()
                } else {
                    item.work.cancel_sync()
                };
                if was {
                    item.cancels += 1;
                    shared.totals.cancels.fetch_add(1, Ordering::Relaxed);
                }
                assert!(
                    !item.inside.load(Ordering::SeqCst),
                    "seed {seed}: cancel_sync returned while the item runs"
                );
                let pending = if item.is_delayed {
                    item.delayed.is_pending()
                } else {
                    item.work.is_pending()
                };
                assert!(!pending, "seed {seed}: pending after cancel_sync");
                item.check_settled(seed, "cancel_sync");
            }
            7 => {
                worker.flush().expect("flush from a driver thread");
                if !item.is_delayed {
                    item.check_settled(seed, "worker flush");
                }
            }
            8 | 9 if threads.len() < 4 => {
                let ran = Arc::new(AtomicBool::new(false));
                let hooked = rng.below(2) == 0;
                let k = kthread::Builder::new(format!("stress/{id}"))
                    .interrupt_on_stop(hooked)
                    .create(parkable(ran.clone()))
                    .expect("create");
                shared.totals.kthreads.fetch_add(1, Ordering::Relaxed);
                assert!(!ran.load(Ordering::SeqCst), "seed {seed}: ran before wake");
                let hooks = hooked.then(|| {
                    k.task().stop_fd().expect("stop fd");
                    let runs = Arc::new(AtomicUsize::new(0));
                    let r = runs.clone();
                    let guard = k.task().on_stop(move || {
                        r.fetch_add(1, Ordering::SeqCst);
                    });
                    (runs, guard)
                });
                threads.push(Thread {
                    k,
                    woken: false,
                    ran,
                    parked: false,
                    hooks,
                });
            }
            10 if !threads.is_empty() => {
                let t = rng.below(threads.len() as u64) as usize;
                threads[t].k.wake_up();
                threads[t].woken = true;
            }
            11 if !threads.is_empty() => {
                let pick = rng.below(threads.len() as u64) as usize;
                let t = &mut threads[pick];
                match t.k.park() {
                    Ok(()) => {
                        assert!(!t.parked, "seed {seed}: parked twice");
                        t.parked = true;
                        t.woken = true; // parking counts as the first wake
                        assert_eq!(t.k.task().state(), TaskState::Parked);
                    }
                    Err(kthread::Error::AlreadyParked) => assert!(t.parked),
                    Err(e) => panic!("seed {seed}: park: {e}"),
                }
            }
            12 if !threads.is_empty() => {
                let pick = rng.below(threads.len() as u64) as usize;
                let t = &mut threads[pick];
                t.k.unpark();
                t.parked = false;
            }
            13 if !threads.is_empty() => {
                let t = threads.swap_remove(rng.below(threads.len() as u64) as usize);
                let (woken, ran) = (t.woken, t.ran.clone());
                match t.stop(seed) {
                    Ok(_) => assert!(woken, "seed {seed}: ran without a wake"),
                    Err(StopError::NotStarted) => {
                        assert!(!woken, "seed {seed}: woken but never ran");
                        assert!(
                            !ran.load(Ordering::SeqCst),
                            "seed {seed}: ran after NotStarted"
                        );
                    }
                    Err(e) => panic!("seed {seed}: stop: {e}"),
                }
            }
            14 => {
                let _g = shared.freezer.lock().unwrap_or_else(|p| p.into_inner());
                match kthread::freezer::freeze(Duration::from_secs(5)) {
                    Ok(guard) => {
                        shared.totals.freezes.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        drop(guard);
                    }
                    Err(_) => {
                        shared
                            .totals
                            .freeze_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => std::thread::yield_now(),
        }
    }
    // Settle: every claim ends in a run or a cancel.
    for item in &mut items {
        let _ = if item.is_delayed {
            item.delayed.flush()
        } else {
            item.work.flush()
        };
        item.check_settled(seed, "final flush");
    }
    for t in threads {
        let woken = t.woken;
        match t.stop(seed) {
            Ok(_) => assert!(woken),
            Err(StopError::NotStarted) => assert!(!woken),
            Err(e) => panic!("seed {seed}: stop: {e}"),
        }
    }
}

/// Runs `drivers` driver threads until `keep_going(ops_done_by_a_driver)`
/// says stop; returns the totals. Destroys the workers at the end and checks
/// that no kthread of the run is left.
pub fn run(seed: u64, drivers: usize, keep_going: impl Fn(u64) -> bool + Sync) -> Arc<Totals> {
    let totals = Arc::new(Totals::default());
    let shared = Shared {
        workers: vec![
            Worker::new("stress-w0").expect("worker"),
            Worker::builder("stress-w1")
                .freezable(true)
                .create()
                .expect("worker"),
        ],
        freezer: Mutex::new(()),
        totals: totals.clone(),
    };
    std::thread::scope(|s| {
        for id in 0..drivers {
            let (shared, keep_going) = (&shared, &keep_going);
            s.spawn(move || driver(seed, id, shared, keep_going));
        }
    });
    for w in shared.workers {
        w.destroy();
    }
    let left: Vec<_> = kthread::list()
        .into_iter()
        .filter(|r| r.name.starts_with("stress"))
        .collect();
    assert!(
        left.is_empty(),
        "seed {seed}: kthreads left behind: {left:?}"
    );
    totals
}

/// The seed: `KTHREAD_STRESS_SEED` if set, else from the clock.
pub fn seed() -> u64 {
    std::env::var("KTHREAD_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Resident set size in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// Keeps going for `d`.
pub fn for_duration(d: Duration) -> impl Fn(u64) -> bool + Sync {
    let end = Instant::now() + d;
    move |_| Instant::now() < end
}
