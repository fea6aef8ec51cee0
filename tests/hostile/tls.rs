//! Thread-local destructors calling into the library, in volume: many
//! short-lived std threads and kthreads register up to six thread-local
//! probes in a random order, interleaved with the calls that create the
//! library's own thread-local state; each probe's destructor then calls the
//! library (`current()`, `should_stop()`, `Task::current()`,
//! `set_current_state` + `schedule_timeout`, queueing on a `Worker`). The
//! destructors run in an order no one controls, before or after the
//! library's own. (`tests/tls_teardown.rs` has the single cases.)

use super::common::{gettid, watchdog};
use super::{seed, Failures, Rng, LIMIT};
use kthread::{set_current_state, should_stop, Task, TaskState, Work, Worker};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const STD_THREADS: u64 = 240;
const KTHREADS: u64 = 60;
const BATCH: u64 = 8;

/// What a probe's destructor saw.
struct Report {
    /// Failed expectations.
    bad: Vec<String>,
    /// Whether its queue call (if any) made a claim.
    claimed: bool,
}

#[derive(Clone)]
struct Ctx {
    worker: Arc<Worker>,
    work: Work,
    sink: mpsc::Sender<Report>,
    /// The kthread's name if the probe lives on a kthread.
    kthread: Option<String>,
}

struct Probe {
    action: u64,
    ctx: Ctx,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let mut bad = Vec::new();
        let mut claimed = false;
        let tid = gettid();
        let on_kthread = self.ctx.kthread.is_some();
        match self.action {
            0 => match kthread::current() {
                None => {}
                Some(t) => {
                    if t.tid() != tid && t.tid() != 0 {
                        bad.push(format!("current() has tid {} on thread {tid}", t.tid()));
                    }
                    if let Some(name) = &self.ctx.kthread {
                        if t.name() != name {
                            bad.push(format!("current() is {:?} on kthread {name:?}", t.name()));
                        }
                    }
                }
            },
            1 => {
                if !on_kthread && should_stop() {
                    bad.push("should_stop() true on a std thread".into());
                }
                if !on_kthread && kthread::should_park() {
                    bad.push("should_park() true on a std thread".into());
                }
            }
            2 => {
                // After the library's own teardown the task is a fresh,
                // unregistered one whose tid reads 0.
                let t = Task::current();
                if t.tid() != tid && t.tid() != 0 {
                    bad.push(format!("Task::current() has tid {} on {tid}", t.tid()));
                }
            }
            3 => {
                let limit = Duration::from_micros(200);
                set_current_state(TaskState::Interruptible);
                let left = kthread::schedule_timeout(limit);
                set_current_state(TaskState::Running);
                if left > limit {
                    bad.push(format!("schedule_timeout({limit:?}) left {left:?}"));
                }
            }
            4 => {
                // Woken before it sleeps. After the library's own teardown
                // `Task::current()` is a fresh task each time, so the wake may
                // name another task: the sleep is then bounded by its timeout.
                let me = Task::current();
                set_current_state(TaskState::Interruptible);
                me.wake_up();
                let limit = Duration::from_millis(1);
                let left = kthread::schedule_timeout(limit);
                set_current_state(TaskState::Running);
                if left > limit {
                    bad.push(format!(
                        "schedule_timeout({limit:?}) after a wake left {left:?}"
                    ));
                }
            }
            5 => claimed = self.ctx.worker.queue(&self.ctx.work),
            _ => {
                if kthread::try_to_freeze() {
                    bad.push("try_to_freeze() froze in a destructor".into());
                }
                if kthread::schedule_timeout(Duration::ZERO) != Duration::ZERO {
                    bad.push("schedule_timeout(0) left time".into());
                }
            }
        }
        let _ = self.ctx.sink.send(Report { bad, claimed });
    }
}

macro_rules! keys {
    ($($k:ident),*) => {
        thread_local! { $(static $k: RefCell<Option<Probe>> = const { RefCell::new(None) };)* }
        /// Registers a probe in key `i`.
        fn register(i: usize, p: Probe) {
            let keys = [$(&$k),*];
            keys[i].with(|c| *c.borrow_mut() = Some(p));
        }
        const KEYS: usize = [$(stringify!($k)),*].len();
    };
}
keys!(K0, K1, K2, K3, K4, K5);

/// Touches the library so that its own thread-locals get registered now.
fn touch_library(rng: &mut Rng, ctx: &Ctx) -> bool {
    match rng.below(5) {
        0 => {
            let _ = Task::current();
        }
        1 => {
            set_current_state(TaskState::Interruptible);
            kthread::schedule_timeout(Duration::ZERO);
            set_current_state(TaskState::Running);
        }
        2 => return ctx.worker.queue(&ctx.work),
        3 => {
            let _ = should_stop();
        }
        _ => {
            let _ = kthread::current();
        }
    }
    false
}

/// A thread's life: probes and library calls in a random order. Returns how
/// many probes it registered and how many claims its own calls made.
fn body(mut rng: Rng, ctx: Ctx) -> (usize, usize) {
    let mut keys: Vec<usize> = (0..KEYS).collect();
    rng.shuffle(&mut keys);
    keys.truncate(1 + rng.below(KEYS as u64) as usize);
    let mut claims = 0;
    for &k in &keys {
        if rng.chance(50) && touch_library(&mut rng, &ctx) {
            claims += 1;
        }
        register(
            k,
            Probe {
                action: rng.below(7),
                ctx: ctx.clone(),
            },
        );
    }
    if rng.chance(50) && touch_library(&mut rng, &ctx) {
        claims += 1;
    }
    (keys.len(), claims)
}

#[test]
fn thread_local_destructors_in_random_orders_call_into_the_library() {
    const TEST: &str = "tls::thread_local_destructors_in_random_orders_call_into_the_library";
    let _w = watchdog(TEST, LIMIT);
    let seed = seed(TEST);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let work = Work::new(move || {
        r.fetch_add(1, SeqCst);
    });
    let worker = Arc::new(Worker::new("hz-tls").unwrap());
    let (tx, rx) = mpsc::channel();
    let ctx = Ctx {
        worker: worker.clone(),
        work: work.clone(),
        sink: tx,
        kthread: None,
    };
    let (mut probes, mut claims) = (0, 0);
    let mut n = 0;
    while n < STD_THREADS + KTHREADS {
        let batch: Vec<_> = (0..BATCH)
            .map(|_| {
                n += 1;
                let trng = Rng::new(seed, n);
                if n <= STD_THREADS {
                    let ctx = ctx.clone();
                    Err(thread::spawn(move || body(trng, ctx)))
                } else {
                    let name = format!("hz-tls{n}");
                    let ctx = Ctx {
                        kthread: Some(name.clone()),
                        ..ctx.clone()
                    };
                    let k = kthread::run(&name, move || body(trng, ctx)).unwrap();
                    Ok(k)
                }
            })
            .collect();
        for t in batch {
            let (p, c) = match t {
                Err(h) => h.join().expect("std thread exits cleanly"),
                // The stop joins the thread: its destructors have run.
                Ok(k) => k.stop().expect("kthread returns its books"),
            };
            probes += p;
            claims += c;
        }
    }
    drop(ctx);
    let fails = Failures::default();
    for i in 0..probes {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(rep) => {
                claims += usize::from(rep.claimed);
                for b in rep.bad {
                    fails.add(b);
                }
            }
            Err(e) => panic!("only {i} of {probes} probe destructors reported ({e})"),
        }
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(1)).is_err(),
        "a probe reported twice"
    );
    worker.flush().unwrap();
    fails.check(TEST, seed);
    assert_eq!(
        runs.load(SeqCst),
        claims,
        "every queue that returned true ran (one shared item, flushed)"
    );
    eprintln!("{TEST}: {probes} probes, {claims} claims");
}
