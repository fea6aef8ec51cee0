//! The bad-input table: every public call with each bad input it can get,
//! and the exact error it must give. Nothing here may panic the library or
//! abort the process; each row also checks nothing was left behind.

mod common;

use common::{allowed_cpus, watchdog, WATCHDOG};
use kthread::freezer::{self, FreezeError};
use kthread::{Builder, Error, StopError, Work, Worker};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The freezer is process-wide: serialise the rows that use it.
static FREEZER: Mutex<()> = Mutex::new(());

fn first_disallowed_cpu() -> usize {
    let allowed = allowed_cpus();
    (0..1024)
        .find(|c| !allowed.contains(c))
        .expect("some CPU number is not allowed")
}

#[test]
fn creation_rejects_each_bad_input_with_its_error() {
    let _w = watchdog("creation_rejects_each_bad_input", WATCHDOG);
    let bad_cpu = first_disallowed_cpu();
    type Row = (&'static str, Builder, fn(&Error) -> bool, i32);
    let rows: Vec<Row> = vec![
        (
            "NUL in name",
            Builder::new("a\0b"),
            |e| matches!(e, Error::InvalidName),
            libc::EINVAL,
        ),
        (
            "CPU beyond CPU_SETSIZE",
            Builder::new("bad-row-cpu").cpu(1 << 20),
            |e| matches!(e, Error::InvalidCpu(c) if *c == 1 << 20),
            libc::EINVAL,
        ),
        (
            "CPU not allowed",
            Builder::new("bad-row-cpu2").cpu(bad_cpu),
            |e| matches!(e, Error::CpuNotAllowed(_)),
            libc::EINVAL,
        ),
        (
            "node not online",
            Builder::new("bad-row-node").node(4096),
            |e| matches!(e, Error::InvalidNode(4096)),
            libc::EINVAL,
        ),
        (
            "zero stack",
            Builder::new("bad-row-stack").stack_size(0),
            |e| matches!(e, Error::InvalidStackSize(0)),
            libc::EINVAL,
        ),
        (
            "absurd stack",
            Builder::new("bad-row-stack2").stack_size(usize::MAX),
            |e| matches!(e, Error::InvalidStackSize(_)),
            libc::EINVAL,
        ),
    ];
    for (what, builder, is_expected, errno) in rows {
        let err = builder.create(|| ()).expect_err(what);
        assert!(is_expected(&err), "{what}: got {err:?}");
        assert_eq!(err.errno(), errno, "{what}");
        assert!(!err.to_string().is_empty());
        // Other tests run in parallel: look for the rows' own names.
        assert!(
            !kthread::list()
                .iter()
                .any(|r| r.name.starts_with("bad-row")),
            "{what}: left a registry entry"
        );
    }
    // A huge name is not an error: the OS gets 15 bytes, the task keeps all.
    let name = "n".repeat(1 << 16);
    let k = kthread::create(&name, || ()).unwrap();
    assert_eq!(k.task().name().len(), 1 << 16);
    drop(k);
}

#[test]
fn handle_calls_reject_bad_states() {
    let _w = watchdog("handle_calls_reject_bad_states", WATCHDOG);
    // bind: bad CPUs before wake, anything after wake.
    let k = kthread::create("bind", || ()).unwrap();
    assert!(matches!(k.bind(1 << 20), Err(Error::InvalidCpu(_))));
    assert!(matches!(
        k.bind(first_disallowed_cpu()),
        Err(Error::CpuNotAllowed(_))
    ));
    assert!(matches!(k.bind_mask(&[]), Err(Error::EmptyCpuMask)));
    assert_eq!(k.bind_mask(&[]).unwrap_err().errno(), libc::EINVAL);
    // The error names the CPU that is not allowed, wherever it sits in the mask.
    let bad = first_disallowed_cpu();
    let good = allowed_cpus()[0];
    assert!(matches!(k.bind_mask(&[good, bad]), Err(Error::CpuNotAllowed(c)) if c == bad));
    assert!(!k.task().is_bound(), "a refused mask binds nothing");
    k.wake_up();
    assert!(matches!(k.bind(0), Err(Error::AlreadyStarted)));
    assert_eq!(k.bind(0).unwrap_err().errno(), libc::EBUSY);
    k.stop().unwrap();

    // park twice, park after exit.
    let k = kthread::run("park", || {
        while !kthread::should_stop() {
            if kthread::should_park() {
                kthread::parkme();
                continue;
            }
            kthread::set_current_state(kthread::TaskState::Interruptible);
            if !kthread::should_stop() && !kthread::should_park() {
                kthread::schedule();
            }
            kthread::set_current_state(kthread::TaskState::Running);
        }
    })
    .unwrap();
    k.park().unwrap();
    assert!(matches!(k.park(), Err(Error::AlreadyParked)));
    k.unpark();
    k.unpark(); // unpark when not parked: documented no-op
    k.stop().unwrap();
    let done = Arc::new(kthread::Completion::new());
    let d = done.clone();
    let k = kthread::run("exits", move || d.complete()).unwrap();
    done.wait();
    while !k.is_finished() {
        std::thread::yield_now(); // a few instructions after complete()
    }
    assert!(matches!(k.park(), Err(Error::Exited)));
    assert_eq!(k.park().unwrap_err().errno(), libc::ENOSYS);
    k.stop().unwrap();

    // stop from inside the thread itself.
    let slot: Arc<Mutex<Option<kthread::Kthread<()>>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let k = kthread::create("self-stop", move || {
        let me = s.lock().unwrap().take().unwrap();
        tx.send(me.stop().map_err(|e| e.errno())).unwrap();
    })
    .unwrap();
    *slot.lock().unwrap() = Some(k);
    slot.lock().unwrap().as_ref().unwrap().wake_up();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Err(libc::EDEADLK)
    );

    // stop before wake.
    let k = kthread::create("never", || ()).unwrap();
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
}

#[test]
fn freezer_rejects_bad_sequences() {
    let _w = watchdog("freezer_rejects_bad_sequences", WATCHDOG);
    let _g = FREEZER.lock().unwrap_or_else(|p| p.into_inner());
    assert!(matches!(freezer::thaw(), Err(FreezeError::NotFrozen)));
    let guard = freezer::freeze(Duration::from_secs(5)).unwrap();
    let again = freezer::freeze(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(again, FreezeError::AlreadyFrozen));
    assert!(again.tasks().is_empty());
    assert_eq!(again.errno(), libc::EBUSY);
    drop(guard);
    assert!(matches!(freezer::thaw(), Err(FreezeError::NotFrozen)));
    // Freeze points outside a freezable kthread are harmless no-ops.
    assert!(!kthread::try_to_freeze());
    assert!(!kthread::set_freezable());
    assert!(!kthread::freezable_should_stop());
}

#[test]
fn worker_calls_reject_deadlocks_and_bad_input() {
    let _w = watchdog("worker_calls_reject_deadlocks", WATCHDOG);
    assert!(matches!(Worker::new("bad\0"), Err(Error::InvalidName)));
    assert!(matches!(
        Worker::builder("w").cpu(1 << 20).create(),
        Err(Error::InvalidCpu(_))
    ));
    assert!(matches!(
        Worker::builder("w").stack_size(0).create(),
        Err(Error::InvalidStackSize(0))
    ));
    let worker = Arc::new(Worker::new("selfish").unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let w2 = Arc::downgrade(&worker);
    let item: Arc<Mutex<Option<Work>>> = Arc::new(Mutex::new(None));
    let it = item.clone();
    let job = Work::new(move || {
        let w = w2.upgrade().unwrap();
        let me = it.lock().unwrap().clone().unwrap();
        tx.send((
            w.flush().map_err(|e| e.errno()),
            me.try_flush().map_err(|e| e.errno()),
        ))
        .unwrap();
    });
    *item.lock().unwrap() = Some(job.clone());
    assert!(worker.queue(&job));
    let (worker_flush, work_flush) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        worker_flush,
        Err(libc::EDEADLK),
        "Worker::flush from its own item"
    );
    assert_eq!(
        work_flush,
        Err(libc::EDEADLK),
        "Work::flush of itself from its own worker"
    );
    // Idle items: flush and cancel are harmless.
    let idle = Work::new(|| ());
    assert!(!idle.flush());
    assert!(!idle.cancel_sync());
    item.lock().unwrap().take();
    worker.flush().unwrap();
}

#[test]
fn library_only_states_are_refused_by_set_current_state() {
    let _w = watchdog("library_only_states_are_refused", WATCHDOG);
    for state in [
        kthread::TaskState::Parked,
        kthread::TaskState::Frozen,
        kthread::TaskState::Dead,
    ] {
        // In a kthread: the function panics (a clear message), stop returns
        // at once with it instead of waiting for ever.
        let k = kthread::run("bad-state", move || {
            kthread::set_current_state(state);
            kthread::schedule();
        })
        .unwrap();
        match k.stop() {
            Err(e @ StopError::Panicked(_)) => {
                let msg = e.panic_message().unwrap_or_default().to_owned();
                assert!(msg.contains("only Running, Interruptible"), "{msg}");
            }
            other => panic!("set_current_state({state:?}) gave {other:?}"),
        }
    }
}

#[test]
fn request_stop_then_stop_collects_the_result() {
    let _w = watchdog("request_stop_then_stop", WATCHDOG);
    let k = kthread::run("rs", || {
        while !kthread::should_stop() {
            kthread::set_current_state(kthread::TaskState::Interruptible);
            if !kthread::should_stop() {
                kthread::schedule();
            }
            kthread::set_current_state(kthread::TaskState::Running);
        }
        11
    })
    .unwrap();
    k.request_stop();
    k.request_stop(); // idempotent
    assert_eq!(k.stop().unwrap(), 11);
    // Before the first wake: the function never runs.
    let k = kthread::create("rs-never", || 1).unwrap();
    k.request_stop();
    assert!(matches!(k.stop(), Err(StopError::NotStarted)));
}
