//! Panicking `Drop`s in every closure and value the library owns: a
//! kthread's closure and result (dropped by `stop`, by the handle's drop,
//! by a detached kthread, or never woken), its `data`, a panic payload whose
//! own `Drop` panics, work closures released by the worker, `cancel_sync`,
//! `Worker` drop / destroy, a moved item, armed delayed work of a destroyed
//! worker, and `PerCpu`'s closure. The process must never abort (each case
//! runs in a child process so an abort is reported, not fatal), the library
//! keeps working afterwards, and `Worker::panics` counts what it can see.
//! (`tests/panicking_drop.rs` has the four single cases this extends.)

use super::common::{wait_briefly_until, watchdog};
use super::{child_command, child_mode, run_child, seed, Rng, LIMIT};
use kthread::{Builder, DelayedWork, Error, PerCpu, StopError, Work, Worker};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// Panics when dropped, after counting the drop.
struct Bomb(Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("bomb dropped");
    }
}

/// Runs the child `mode` of test `test` and insists it exits 0.
fn in_child(test: &'static str, mode: &str, body: fn(u64)) {
    let _w = watchdog(test, LIMIT);
    if child_mode().as_deref() == Some(mode) {
        let seed = seed(test);
        body(seed);
        println!("hostile-child: ok");
        return;
    }
    let seed = seed(test);
    let run = run_child(
        child_command(test, mode, seed),
        LIMIT - Duration::from_secs(5),
    );
    run.assert_ok(test);
    assert!(
        run.output.contains("hostile-child: ok"),
        "{test}: child did not finish its body:\n{}",
        run.output
    );
}

/// Holds `w` at a gate item until the returned completion is completed.
fn gated(w: &Worker) -> Arc<kthread::Completion> {
    let gate = Arc::new(kthread::Completion::new());
    let g = gate.clone();
    assert!(w.queue(&Work::new(move || g.wait())));
    gate
}

/// The library still works: a fresh worker runs an item, a kthread runs.
fn still_works() {
    let w = Worker::new("hz-after").unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let item = Work::new(move || {
        r.fetch_add(1, SeqCst);
    });
    assert!(w.queue(&item));
    w.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 1, "a fresh worker runs items");
    assert_eq!(kthread::run("hz-after-k", || 5).unwrap().stop().unwrap(), 5);
}

#[test]
fn panicking_drops_of_work_closures_released_anywhere() {
    in_child(
        "drops::panicking_drops_of_work_closures_released_anywhere",
        "drops-work",
        work_closures,
    );
}

fn work_closures(seed: u64) {
    let mut rng = Rng::new(seed, 1);
    let drops = Arc::new(AtomicUsize::new(0));
    let mut bombs = 0;
    let keep = Worker::new("hz-pd-keep").unwrap();
    let other = Worker::new("hz-pd-other").unwrap();
    let (mut expect_keep, mut expect_other) = (0u64, 0u64);
    for _ in 0..60 {
        bombs += 1;
        let bomb = Bomb(drops.clone());
        match rng.below(7) {
            // Released by the worker after its run (our handle goes first:
            // the worker is held at a gate until then).
            0 => {
                let item = Work::new(move || {
                    let _b = &bomb;
                });
                let gate = gated(&keep);
                assert!(keep.queue(&item));
                drop(item);
                gate.complete();
                expect_keep += 1;
            }
            // Panics when run, and its closure's drop panics too.
            1 => {
                let item = Work::new(move || {
                    let _b = &bomb;
                    panic!("work panicked");
                });
                let gate = gated(&keep);
                assert!(keep.queue(&item));
                drop(item);
                gate.complete();
                expect_keep += 2;
            }
            // Moved to another worker, released there.
            2 => {
                let item = Work::new(move || {
                    let _b = &bomb;
                });
                assert!(keep.queue(&item));
                item.flush(); // false if it already ran: idle either way
                let gate = gated(&other);
                assert!(other.queue(&item));
                drop(item);
                gate.complete();
                expect_other += 1;
            }
            // Armed delayed work; the handle goes; destroy of its worker cancels it.
            3 => {
                let w = Worker::new("hz-pd-timer").unwrap();
                let item = DelayedWork::new(move || {
                    let _b = &bomb;
                });
                assert!(w.queue_delayed(&item, HOUR));
                drop(item);
                if rng.chance(50) {
                    w.destroy();
                } else {
                    drop(w);
                }
            }
            // Queued behind a slow item on a worker that is dropped: drop drains it.
            4 => {
                let w = Worker::new("hz-pd-drain").unwrap();
                let item = Work::new(move || {
                    let _b = &bomb;
                });
                let gate = gated(&w);
                assert!(w.queue(&item));
                drop(item);
                gate.complete();
                drop(w);
            }
            // Cancelled while pending (the queue's reference is released by
            // cancel_sync), then the last handle dropped by us.
            5 => {
                let item = DelayedWork::new(move || {
                    let _b = &bomb;
                });
                assert!(keep.queue_delayed(&item, HOUR));
                assert!(item.cancel_sync());
                let caught = catch_unwind(AssertUnwindSafe(move || drop(item)));
                assert!(caught.is_err(), "our own drop of the last handle panics");
            }
            // Dropped on the worker by one of its own items.
            _ => {
                let w = Arc::new(std::sync::Mutex::new(Some(
                    Worker::new("hz-pd-self").unwrap(),
                )));
                let w2 = w.clone();
                let taker = Work::new(move || {
                    drop(super::lock(&w2).take());
                });
                let item = Work::new(move || {
                    let _b = &bomb;
                });
                let gate = {
                    let g = super::lock(&w);
                    let wk = g.as_ref().unwrap();
                    let gate = gated(wk);
                    assert!(wk.queue(&taker));
                    assert!(wk.queue(&item));
                    gate
                };
                drop(item);
                gate.complete();
                assert!(taker.flush() || !taker.is_pending());
                wait_briefly_until(
                    "the self-dropped worker drains",
                    Duration::from_secs(10),
                    || super::lock(&w).is_none(),
                );
            }
        }
    }
    keep.flush().unwrap();
    other.flush().unwrap();
    wait_briefly_until("every bomb dropped", Duration::from_secs(10), || {
        drops.load(SeqCst) >= bombs
    });
    assert_eq!(
        drops.load(SeqCst),
        bombs,
        "each closure dropped exactly once"
    );
    assert_eq!(keep.panics(), expect_keep, "panics counted on `keep`");
    assert_eq!(other.panics(), expect_other, "panics counted on `other`");
    still_works();
}

// The worker drops a caught panic's payload inside its `extern "C"` hook;
// a payload whose `Drop` panics ended the process there ("panic in a
// function that cannot unwind") before that drop was caught too.
#[test]
fn panicking_payload_drop_of_a_work_panic() {
    in_child(
        "drops::panicking_payload_drop_of_a_work_panic",
        "drops-payload",
        |_| {
            let drops = Arc::new(AtomicUsize::new(0));
            let w = Worker::new("hz-pd-payload").unwrap();
            let d = drops.clone();
            let item = Work::new(move || std::panic::panic_any(Bomb(d.clone())));
            for _ in 0..5 {
                assert!(w.queue(&item));
                w.flush().unwrap();
            }
            assert_eq!(drops.load(SeqCst), 5, "each payload dropped once");
            assert!(w.panics() >= 5, "the work panics are counted");
            let next = Work::new(|| ());
            assert!(w.queue(&next));
            w.flush().unwrap();
            still_works();
        },
    );
}

// Values the library drops for the user on the kthread itself (a detached
// kthread's result or panic payload, the task's data with its last
// reference) once aborted with "kthread: internal panic escaped a thread
// main"; each is now dropped under a catch.
#[test]
fn panicking_drops_of_kthread_closures_results_and_data() {
    in_child(
        "drops::panicking_drops_of_kthread_closures_results_and_data",
        "drops-kthread",
        |_| {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut bombs = 0;
            // The closure's captures drop at the end of its run: a panic of
            // the function, reported by stop.
            bombs += 1;
            let b = Bomb(drops.clone());
            let k = kthread::run("hz-pd-cl", move || {
                let _b = &b;
                1
            })
            .unwrap();
            assert!(matches!(k.stop(), Err(e @ StopError::Panicked(_))
                if e.panic_message() == Some("bomb dropped")));
            // Never woken, handle dropped instead of stopped.
            bombs += 1;
            let b = Bomb(drops.clone());
            let k = kthread::create("hz-pd-never", move || drop(b)).unwrap();
            drop(k);
            // A result nobody collects: the handle's drop drops it here.
            bombs += 1;
            let d = drops.clone();
            let k = kthread::run("hz-pd-res", move || Bomb(d)).unwrap();
            // Whether the panic reaches us or is caught inside, it is survived.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(k)));
            // A result of a detached kthread: dropped by the library.
            bombs += 1;
            let d = drops.clone();
            let gate = Arc::new(kthread::Completion::new());
            let g = gate.clone();
            let k = kthread::run("hz-pd-det", move || {
                g.wait();
                Bomb(d)
            })
            .unwrap();
            let _task = k.detach();
            gate.complete();
            // A panic payload whose drop panics, of a detached kthread.
            bombs += 1;
            let d = drops.clone();
            let k = kthread::run("hz-pd-pay", move || -> () {
                std::panic::panic_any(Bomb(d))
            })
            .unwrap();
            let _task2 = k.detach();
            // ... and the same collected by stop: the error holds it; our drop panics.
            bombs += 1;
            let d = drops.clone();
            let k = kthread::run("hz-pd-pay2", move || -> () {
                std::panic::panic_any(Bomb(d))
            })
            .unwrap();
            let err = k.stop().unwrap_err();
            assert!(matches!(err, StopError::Panicked(_)));
            assert!(catch_unwind(AssertUnwindSafe(move || drop(err))).is_err());
            // Data whose drop panics, dropped with the last task reference.
            bombs += 1;
            let k = Builder::new("hz-pd-data")
                .data(Bomb(drops.clone()))
                .run(|| 3)
                .unwrap();
            let _ = catch_unwind(AssertUnwindSafe(move || k.stop()));
            wait_briefly_until("every bomb dropped", Duration::from_secs(10), || {
                drops.load(SeqCst) >= bombs
            });
            assert_eq!(drops.load(SeqCst), bombs, "each value dropped exactly once");
            still_works();
        },
    );
}

#[test]
fn panicking_drop_of_a_percpu_closure() {
    in_child(
        "drops::panicking_drop_of_a_percpu_closure",
        "drops-percpu",
        |_| {
            let drops = Arc::new(AtomicUsize::new(0));
            let b = Bomb(drops.clone());
            // Held until spawn has returned, so the last user of the
            // closure is one of the set's kthreads, not spawn's caller.
            let gate = Arc::new(kthread::Completion::new());
            let g = gate.clone();
            let set = PerCpu::spawn("hz-pd/%u", move |cpu| {
                let _b = &b;
                g.wait();
                cpu
            })
            .unwrap();
            gate.complete_all();
            let n = set.cpus().len();
            let results = set.stop();
            assert_eq!(results.len(), n);
            let panicked = results.iter().filter(|(_, r)| r.is_err()).count();
            assert!(
                panicked <= 1,
                "only the last user drops the closure: {panicked} panicked"
            );
            for (cpu, r) in results {
                if let Ok(c) = r {
                    assert_eq!(c, cpu);
                }
            }
            wait_briefly_until("the closure dropped", Duration::from_secs(10), || {
                drops.load(SeqCst) >= 1
            });
            assert_eq!(drops.load(SeqCst), 1);
            // A spawn that fails drops its closure once, and says why.
            let b = Bomb(drops.clone());
            let r = catch_unwind(AssertUnwindSafe(move || {
                PerCpu::spawn("hz\0bad/%u", move |cpu| {
                    let _b = &b;
                    cpu
                })
                .map(|_| ())
            }));
            if let Ok(r) = r {
                assert!(matches!(r, Err(Error::InvalidName)), "{r:?}");
            }
            assert_eq!(drops.load(SeqCst), 2);
            still_works();
        },
    );
}
