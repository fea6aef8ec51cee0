//! Bad inputs at the public calls `tests/bad_input.rs` does not reach, and
//! what it does not check there: that a refused creation drops its closure
//! exactly once, that an item survives an absurd duration and stays
//! reusable, masks out of range / duplicated / beyond `CPU_SETSIZE`,
//! `PerCpu` calls for CPUs outside the set, `WorkerBuilder` inputs, empty
//! and odd names, zero and `Duration::MAX` everywhere a duration goes.

use super::common::{affinity_of, watchdog};
use super::{allowed_cpus, lock, parkable_loop, DropCount, FREEZER, LIMIT};
use kthread::freezer;
use kthread::{Builder, Completion, DelayedWork, Error, PerCpu, Task, Work, Worker};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn disallowed_cpu() -> usize {
    let a = allowed_cpus();
    (0..1024).find(|c| !a.contains(c)).unwrap()
}

#[test]
fn every_refused_creation_drops_its_closure_exactly_once() {
    let _w = watchdog("bad_inputs::every_refused_creation_drops", LIMIT);
    type Check = fn(&Error) -> bool;
    type Row = (&'static str, fn() -> Builder, Check);
    let rows: Vec<Row> = vec![
        (
            "NUL",
            || Builder::new("x\0"),
            |e| matches!(e, Error::InvalidName),
        ),
        (
            "NUL at end of a long name",
            || Builder::new(format!("{}\0", "y".repeat(40))),
            |e| matches!(e, Error::InvalidName),
        ),
        (
            "cpu usize::MAX",
            || Builder::new("c").cpu(usize::MAX),
            |e| matches!(e, Error::InvalidCpu(usize::MAX)),
        ),
        (
            "cpu CPU_SETSIZE",
            || Builder::new("c").cpu(libc::CPU_SETSIZE as usize),
            |e| matches!(e, Error::InvalidCpu(_)),
        ),
        (
            "cpu not allowed",
            || Builder::new("c").cpu(disallowed_cpu()),
            |e| matches!(e, Error::CpuNotAllowed(_)),
        ),
        (
            "node usize::MAX",
            || Builder::new("n").node(usize::MAX),
            |e| matches!(e, Error::InvalidNode(usize::MAX)),
        ),
        (
            "stack MAX+1",
            || Builder::new("s").stack_size(kthread::MAX_STACK_SIZE + 1),
            |e| matches!(e, Error::InvalidStackSize(_)),
        ),
        (
            "stack 0 and bad cpu",
            || Builder::new("s").stack_size(0).cpu(usize::MAX),
            |e| matches!(e, Error::InvalidStackSize(0) | Error::InvalidCpu(_)),
        ),
    ];
    for (what, builder, check) in rows {
        for run in [false, true] {
            let drops = Arc::new(AtomicUsize::new(0));
            let g = DropCount(drops.clone());
            let f = move || {
                let _g = &g;
            };
            let r = if run {
                builder().run(f)
            } else {
                builder().create(f)
            };
            let e = r.expect_err(what);
            assert!(check(&e), "{what}: {e:?}");
            assert_eq!(e.errno(), libc::EINVAL, "{what}");
            assert_eq!(drops.load(SeqCst), 1, "{what}: closure dropped once");
        }
    }
    // Worker builders refuse the same inputs.
    let wrows: Vec<(&str, Result<Worker, Error>, Check)> = vec![
        (
            "worker node",
            Worker::builder("w").node(usize::MAX).create(),
            |e| matches!(e, Error::InvalidNode(_)),
        ),
        (
            "worker cpu",
            Worker::builder("w").cpu(disallowed_cpu()).create(),
            |e| matches!(e, Error::CpuNotAllowed(_)),
        ),
        (
            "worker stack",
            Worker::builder("w").stack_size(usize::MAX).create(),
            |e| matches!(e, Error::InvalidStackSize(_)),
        ),
        (
            "worker NUL",
            Worker::builder("w\0w").freezable(true).create(),
            |e| matches!(e, Error::InvalidName),
        ),
    ];
    for (what, r, check) in wrows {
        let e = r.expect_err(what);
        assert!(check(&e), "{what}: {e:?}");
    }
    // A PerCpu set with a bad pattern: refused, closure dropped once, nothing left.
    let drops = Arc::new(AtomicUsize::new(0));
    let g = DropCount(drops.clone());
    let e = PerCpu::spawn("hz-bad\0/%u", move |c| {
        let _g = &g;
        c
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidName), "{e:?}");
    assert_eq!(drops.load(SeqCst), 1);
    assert!(!kthread::list().iter().any(|r| r.name.starts_with("hz-bad")));
}

#[test]
fn odd_names_are_kept_whole() {
    let _w = watchdog("bad_inputs::odd_names_are_kept_whole", LIMIT);
    for name in [
        "",
        " ",
        "%u",
        "a/b",
        "\u{1F980}\u{1F980}\u{1F980}\u{1F980}x",
        "\n",
    ] {
        let k = kthread::run(name, || kthread::current().map(|t| t.name().to_owned())).unwrap();
        assert_eq!(k.task().name(), name);
        assert_eq!(k.stop().unwrap().as_deref(), Some(name));
        let w = Worker::new(name).unwrap();
        assert_eq!(w.task().name(), name);
        w.destroy();
    }
    // A pattern without %u: every CPU's thread has the same name.
    let set = PerCpu::spawn("hz-same", |c| c).unwrap();
    assert!(set.tasks().all(|t| t.name() == "hz-same"));
    set.stop();
}

#[test]
fn cpu_masks_out_of_range_duplicated_or_huge_are_judged() {
    let _w = watchdog("bad_inputs::cpu_masks", LIMIT);
    let first = allowed_cpus()[0];
    let bad = disallowed_cpu();
    let k = kthread::create("hz-mask", || ()).unwrap();
    let t = k.task();
    // Out of range for the OS, anywhere in the mask.
    assert!(matches!(
        t.bind_mask(&[first, usize::MAX]),
        Err(Error::InvalidCpu(usize::MAX))
    ));
    let setsize = libc::CPU_SETSIZE as usize;
    assert!(matches!(k.bind_mask(&[setsize]), Err(Error::InvalidCpu(c)) if c == setsize));
    // A CPU that does not exist, first or last: named, not dropped silently.
    assert!(matches!(
        k.bind_mask(&[1000, first]),
        Err(Error::CpuNotAllowed(1000))
    ));
    assert!(matches!(k.bind_mask(&[first, bad]), Err(Error::CpuNotAllowed(c)) if c == bad));
    assert!(!t.is_bound(), "a refused mask binds nothing");
    // Duplicates are one CPU.
    k.bind_mask(&[first, first, first]).unwrap();
    assert!(t.is_bound());
    assert_eq!(affinity_of(t.tid()), vec![first]);
    // A refused bind leaves the kthread as it was: it still runs.
    assert!(k.bind(usize::MAX).is_err());
    k.wake_up();
    assert!(matches!(
        k.bind_mask(&[]),
        Err(Error::EmptyCpuMask | Error::AlreadyStarted)
    ));
    k.stop().unwrap();
}

#[test]
fn percpu_calls_for_cpus_outside_the_set() {
    let _w = watchdog("bad_inputs::percpu_calls", LIMIT);
    let set = PerCpu::spawn("hz-pc/%u", |_| parkable_loop()).unwrap();
    for cpu in [disallowed_cpu(), usize::MAX] {
        assert!(matches!(set.offline(cpu), Err(Error::CpuNotAllowed(c)) if c == cpu));
        assert!(matches!(set.online(cpu), Err(Error::CpuNotAllowed(c)) if c == cpu));
        assert!(set.task(cpu).is_none());
    }
    let c = set.cpus()[0];
    set.offline(c).unwrap();
    assert!(matches!(set.offline(c), Err(Error::AlreadyParked)));
    set.online(c).unwrap();
    set.online(c).unwrap(); // online when online: nothing to do
    for (_, r) in set.stop() {
        r.unwrap();
    }
}

#[test]
fn zero_and_max_durations_never_panic_and_leave_items_reusable() {
    let _w = watchdog("bad_inputs::zero_and_max_durations", LIMIT);
    // schedule_timeout.
    kthread::set_current_state(kthread::TaskState::Interruptible);
    assert_eq!(kthread::schedule_timeout(Duration::ZERO), Duration::ZERO);
    let me = Task::current();
    let waker = {
        let go = Arc::new(Completion::new());
        let g = go.clone();
        // A wake between set_current_state and schedule_timeout is never lost.
        let h = std::thread::spawn(move || {
            g.wait();
            me.wake_up();
        });
        (go, h)
    };
    kthread::set_current_state(kthread::TaskState::Interruptible);
    waker.0.complete();
    let left = kthread::schedule_timeout(Duration::MAX);
    assert!(left > Duration::from_secs(3600), "woken with {left:?} left");
    waker.1.join().unwrap();
    // Completion timeouts.
    let c = Completion::new();
    assert!(!c.wait_timeout(Duration::ZERO));
    c.complete();
    assert!(c.wait_timeout(Duration::MAX));
    // Delayed work: MAX is armed (no overflow), cancelled, then reusable.
    let w = Worker::new("hz-dur").unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let dw = DelayedWork::new(move || {
        r.fetch_add(1, SeqCst);
    });
    assert!(w.queue_delayed(&dw, Duration::MAX));
    assert!(dw.is_pending());
    assert!(
        !w.queue_delayed(&dw, Duration::ZERO),
        "pending at most once"
    );
    assert!(w.mod_delayed(&dw, Duration::MAX), "re-armed while pending");
    assert!(dw.cancel_sync());
    assert_eq!(runs.load(SeqCst), 0);
    assert!(!w.mod_delayed(&dw, Duration::MAX), "armed afresh");
    let start = Instant::now();
    assert!(w.mod_delayed(&dw, Duration::ZERO), "brought forward to now");
    while runs.load(SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mod_delayed(0) never ran"
        );
        std::thread::yield_now();
    }
    assert!(w.queue_delayed(&dw, Duration::MAX));
    assert!(dw.flush(), "flush runs an item armed for ever, now");
    assert_eq!(runs.load(SeqCst), 2);
    // An item armed for ever on a worker that is destroyed is cancelled, and moves on.
    assert!(w.queue_delayed(&dw, Duration::MAX));
    w.destroy();
    assert!(!dw.is_pending());
    let w2 = Worker::new("hz-dur2").unwrap();
    assert!(w2.queue_delayed(&dw, Duration::ZERO));
    w2.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 3);
    // A plain work left by a destroyed worker is reusable too.
    let item = Work::new(|| ());
    assert!(w2.queue(&item));
    w2.destroy();
    let w3 = Worker::new("hz-dur3").unwrap();
    assert!(w3.queue(&item));
    w3.flush().unwrap();
    // Freeze timeouts: zero and MAX with nothing to freeze.
    let _f = lock(&FREEZER);
    drop(freezer::freeze(Duration::ZERO).expect("nothing to wait for"));
    drop(freezer::freeze(Duration::MAX).expect("MAX does not overflow"));
    assert!(!freezer::freezing());
    // data of the wrong type is None, not a panic.
    let k = Builder::new("hz-data").data(7u32).create(|| ()).unwrap();
    assert_eq!(k.task().data::<u32>(), Some(&7));
    assert!(k.task().data::<u64>().is_none());
    assert!(kthread::create("hz-nodata", || ())
        .unwrap()
        .task()
        .data::<u32>()
        .is_none());
}
