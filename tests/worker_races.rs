//! Stress tests: several threads racing queue / mod / cancel / flush on one
//! item (SPEC §6), checking the books: every accepted queue (or arming
//! `mod_delayed`) ends in exactly one run or one successful cancel, and the
//! item never runs twice at once.
//!
//! A separate binary from `tests/worker.rs`: a protocol race here can
//! corrupt the worker's lists, and a hung or crashed binary should not take
//! the other worker tests' results with it. Each test fails (rather than
//! hangs) when a racing thread gets stuck inside the library: the stuck
//! threads are left behind, holding their own references to the worker.

mod common;

use common::{watchdog, WATCHDOG};
use kthread::{DelayedWork, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long each racing thread keeps going.
const STRESS: Duration = Duration::from_millis(1500);
/// Upper bound for a racing thread to notice the end and report.
const LONG: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);

/// xorshift64*: enough randomness for choosing operations, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// What one racing thread saw: claims it made, cancels that took an instance.
#[derive(Debug, Default, Clone, Copy)]
struct Books {
    claims: usize,
    cancels: usize,
    ops: usize,
}

impl std::ops::Add for Books {
    type Output = Books;
    fn add(self, o: Books) -> Books {
        Books {
            claims: self.claims + o.claims,
            cancels: self.cancels + o.cancels,
            ops: self.ops + o.ops,
        }
    }
}

/// Runs `threads` copies of `op` (given a thread index and an Rng) for
/// `STRESS`, and sums their books; fails if one does not come back.
fn race(threads: usize, op: impl Fn(usize, &mut Rng, &mut Books) + Send + Sync + 'static) -> Books {
    let op = Arc::new(op);
    let (tx, rx) = mpsc::channel();
    for i in 0..threads {
        let (op, tx) = (op.clone(), tx.clone());
        thread::spawn(move || {
            let mut rng =
                Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
            let mut books = Books::default();
            let start = Instant::now();
            while start.elapsed() < STRESS {
                for _ in 0..64 {
                    op(i, &mut rng, &mut books);
                    books.ops += 1;
                }
            }
            // Drop this thread's handles before reporting, so reference
            // counts are final once every thread has reported.
            drop(op);
            let _ = tx.send(books);
        });
    }
    drop(tx);
    let mut total = Books::default();
    for _ in 0..threads {
        match rx.recv_timeout(STRESS + LONG) {
            Ok(b) => total = total + b,
            // The stuck thread holds the worker lock or spins inside the
            // library; the threads keep their references, nothing is dropped.
            Err(e) => panic!(
                "a racing thread is stuck inside the library ({e:?}); books so far: {total:?}\n{}",
                kthread::ps()
            ),
        }
    }
    total
}

/// Runs `f` on another thread, failing if it does not return within `LONG`.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LONG)
        .unwrap_or_else(|e| panic!("{what}: did not return within {LONG:?} ({e:?})"))
}

/// An item body counting runs and overlapping runs, holding `token`.
fn body(
    runs: &Arc<AtomicUsize>,
    overlaps: &Arc<AtomicUsize>,
    token: &Arc<()>,
) -> impl Fn() + Send + Sync + 'static {
    let inside = AtomicBool::new(false);
    let (runs, overlaps, token) = (runs.clone(), overlaps.clone(), token.clone());
    move || {
        std::hint::black_box(&token);
        if inside.swap(true, Ordering::SeqCst) {
            overlaps.fetch_add(1, Ordering::SeqCst);
        }
        runs.fetch_add(1, Ordering::SeqCst);
        inside.store(false, Ordering::SeqCst);
    }
}

/// `mod_delayed` on a pending item takes it off the timer list under the
/// worker lock and re-arms it. If it lets go of PENDING in between, a
/// lock-free `queue_delayed` claims the item in that window and links it a
/// second time (on `incoming` and on the timer list).
#[test]
fn mod_delayed_racing_queue_delayed_keeps_one_instance() {
    let _wd = watchdog(
        "mod_delayed_racing_queue_delayed_keeps_one_instance",
        WATCHDOG,
    );
    let w = Arc::new(Worker::new("wq-race-md").expect("worker"));
    let (runs, overlaps, token) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(()),
    );
    let d = DelayedWork::new(body(&runs, &overlaps, &token));
    let books = {
        let (w, d) = (w.clone(), d.clone());
        race(2, move |i, _, b| {
            if i == 0 {
                // Idle: arms it (a claim). Pending: moves the deadline.
                if !w.mod_delayed(&d, HOUR) {
                    b.claims += 1;
                }
            } else if w.queue_delayed(&d, Duration::ZERO) {
                b.claims += 1;
            }
        })
    };
    let d2 = d.clone();
    let cancelled = bounded("final cancel_sync", move || d2.cancel_sync());
    let w2 = w.clone();
    bounded("final worker flush", move || w2.flush().expect("flush"));
    assert!(!d.is_pending());
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "ran concurrently with itself"
    );
    assert_eq!(
        books.claims,
        runs.load(Ordering::SeqCst) + usize::from(cancelled),
        "claims must equal runs + cancels ({books:?})"
    );
    drop(d);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a queue reference leaked or was dropped twice"
    );
}

/// Two threads queue one item on two workers (so it keeps moving between
/// them while idle), a third flushes it. Every owner change must be seen by
/// later flushes; a flush must never act on the worker the item just left.
#[test]
fn queue_racing_a_move_keeps_flush_working() {
    let _wd = watchdog("queue_racing_a_move_keeps_flush_working", WATCHDOG);
    let ws = [
        Arc::new(Worker::new("wq-race-ma").expect("worker")),
        Arc::new(Worker::new("wq-race-mb").expect("worker")),
    ];
    let (runs, overlaps, token) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(()),
    );
    let x = Work::new(body(&runs, &overlaps, &token));
    let books = {
        let (ws, x) = (ws.clone(), x.clone());
        race(3, move |i, _, b| {
            if i < 2 {
                if ws[i].queue(&x) {
                    b.claims += 1;
                }
            } else {
                x.flush();
            }
        })
    };
    let x2 = x.clone();
    bounded("final flush", move || x2.flush());
    for w in &ws {
        let w = w.clone();
        bounded("final worker flush", move || w.flush().expect("flush"));
    }
    assert!(!x.is_pending());
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "ran concurrently with itself"
    );
    assert_eq!(
        books.claims,
        runs.load(Ordering::SeqCst),
        "claims must equal runs ({books:?})"
    );
    drop(x);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a queue reference leaked or was dropped twice"
    );
}

#[test]
fn random_ops_on_one_item_keep_the_books() {
    let _wd = watchdog("random_ops_on_one_item_keep_the_books", WATCHDOG);
    let ws = [
        Arc::new(Worker::new("wq-race-a").expect("worker")),
        Arc::new(Worker::new("wq-race-b").expect("worker")),
    ];
    let (runs, overlaps, token) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(()),
    );
    let x = Work::new(body(&runs, &overlaps, &token));
    let books = {
        let (ws, x) = (ws.clone(), x.clone());
        race(3, move |_, rng, b| match rng.below(10) {
            0..=5 => {
                if ws[rng.below(2) as usize].queue(&x) {
                    b.claims += 1;
                }
            }
            6 | 7 => {
                if x.cancel_sync() {
                    b.cancels += 1;
                }
            }
            8 => {
                x.flush();
            }
            _ => {
                ws[rng.below(2) as usize].flush().expect("flush");
            }
        })
    };
    let x2 = x.clone();
    let cancelled = bounded("final cancel_sync", move || x2.cancel_sync());
    for w in &ws {
        let w = w.clone();
        bounded("final worker flush", move || w.flush().expect("flush"));
    }
    assert!(!x.is_pending());
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "ran concurrently with itself"
    );
    assert_eq!(
        books.claims,
        runs.load(Ordering::SeqCst) + books.cancels + usize::from(cancelled),
        "claims must equal runs + cancels ({books:?})"
    );
    drop(x);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a queue reference leaked or was dropped twice"
    );
}

#[test]
fn random_ops_on_one_delayed_item_keep_the_books() {
    let _wd = watchdog("random_ops_on_one_delayed_item_keep_the_books", WATCHDOG);
    let ws = [
        Arc::new(Worker::new("wq-race-da").expect("worker")),
        Arc::new(Worker::new("wq-race-db").expect("worker")),
    ];
    let (runs, overlaps, token) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(()),
    );
    let d = DelayedWork::new(body(&runs, &overlaps, &token));
    let delays = [
        Duration::ZERO,
        Duration::from_micros(200),
        Duration::from_millis(2),
        HOUR,
    ];
    let books = {
        let (ws, d) = (ws.clone(), d.clone());
        race(3, move |_, rng, b| {
            let w = &ws[rng.below(2) as usize];
            let delay = delays[rng.below(4) as usize];
            match rng.below(10) {
                0..=3 => {
                    if w.queue_delayed(&d, delay) {
                        b.claims += 1;
                    }
                }
                4..=6 => {
                    if !w.mod_delayed(&d, delay) {
                        b.claims += 1;
                    }
                }
                7 => {
                    if d.cancel_sync() {
                        b.cancels += 1;
                    }
                }
                8 => {
                    d.flush();
                }
                _ => w.flush().expect("flush"),
            }
        })
    };
    let d2 = d.clone();
    let cancelled = bounded("final cancel_sync", move || d2.cancel_sync());
    for w in &ws {
        let w = w.clone();
        bounded("final worker flush", move || w.flush().expect("flush"));
    }
    assert!(!d.is_pending());
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "ran concurrently with itself"
    );
    assert_eq!(
        books.claims,
        runs.load(Ordering::SeqCst) + books.cancels + usize::from(cancelled),
        "claims must equal runs + cancels ({books:?})"
    );
    drop(d);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a queue reference leaked or was dropped twice"
    );
}
