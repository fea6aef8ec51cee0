//! A tour of kthread: the kernel's thread model, step by step.
//!
//! Run it with `cargo run --release --example tour`. Each step prints the
//! `ps`-like table of live kthreads so the states can be seen.

use kthread::freezer;
use kthread::{
    schedule, schedule_timeout, set_current_state, should_park, should_stop, DelayedWork, Kthread,
    PerCpu, TaskState, Work, Worker,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn step(title: &str) {
    println!("\n== {title}");
}

fn table() {
    println!("{}", kthread::ps());
}

/// The kernel-style main loop: sleep until woken, stopped or parked.
fn sleeper_loop(counter: Arc<AtomicU64>) -> u64 {
    while !should_stop() {
        if should_park() {
            kthread::parkme();
            continue;
        }
        set_current_state(TaskState::Interruptible);
        if !should_stop() && !should_park() {
            schedule();
        }
        set_current_state(TaskState::Running);
        counter.fetch_add(1, Ordering::Relaxed);
    }
    counter.load(Ordering::Relaxed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Born first, from a clean main thread, as the kernel starts it at boot.
    kthread::kthreadd::start()?;

    step("1. create: the thread exists, stopped, and has run nothing");
    let wakes = Arc::new(AtomicU64::new(0));
    let w = wakes.clone();
    let sleeper: Kthread<u64> = kthread::create("sleeper", move || sleeper_loop(w))?;
    let pinned = kthread::Builder::new("pinned/0")
        .data(String::from("bound before its first instruction"))
        .create(|| {
            let me = kthread::current().expect("a kthread");
            let note = me.data::<String>().cloned().unwrap_or_default();
            while !should_stop() {
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule_timeout(Duration::from_secs(3600));
                }
                set_current_state(TaskState::Running);
            }
            note
        })?;
    pinned.bind(0)?;
    table();

    step("2. wake: both run; the sleeper sleeps Interruptible in schedule()");
    sleeper.wake_up();
    pinned.wake_up();
    for _ in 0..3 {
        sleeper.wake_up();
    }
    wait_for(|| sleeper.task().state() == TaskState::Interruptible);
    table();

    step("3. park: park() returns once the thread sits in parkme()");
    sleeper.park()?;
    table();
    sleeper.unpark();

    step("4. stop: should_stop() turns true, the thread returns, stop() hands back its value");
    let woken = sleeper.stop()?;
    println!(
        "sleeper was woken {woken} times; pinned said: {:?}",
        pinned.stop()?
    );
    let never = kthread::create("never-woken", || unreachable!("never runs"))?;
    println!(
        "stop before any wake: {:?} (the kernel's -EINTR)",
        never.stop().unwrap_err()
    );
    table();

    step("5. a worker as a write-back flusher: many writers, few flushes");
    writeback()?;

    step("6. freeze every freezable thread around a snapshot");
    freeze_demo()?;

    step("7. one thread per CPU; take a CPU offline and back");
    percpu_demo()?;

    step("8. done: only kthreadd is left");
    table();

    // How these calls compare with std::thread, crossbeam and a raw futex.
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.svg");
    if chart.exists() {
        println!(
            "\nBenchmarks against std, crossbeam and a raw futex, as a chart: {}",
            chart.display()
        );
        println!("(a new one: cargo run --release -p kthread-bench -- --svg FILE; BENCHMARKS.md explains the rows)");
    }
    Ok(())
}

/// Waits (bounded) for a condition the tour is about to display.
fn wait_for(cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() && start.elapsed() < Duration::from_secs(5) {
        std::thread::yield_now();
    }
}

fn writeback() -> Result<(), Box<dyn std::error::Error>> {
    let worker = Arc::new(Worker::new("writeback")?);
    let dirty = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let flushes = Arc::new(AtomicU64::new(0));
    let syncs = Arc::new(AtomicU64::new(0));

    let flush_work = {
        let (dirty, written, flushes) = (dirty.clone(), written.clone(), flushes.clone());
        Work::new(move || {
            // Write back everything dirty so far, in one go.
            written.store(dirty.load(Ordering::Acquire), Ordering::Release);
            flushes.fetch_add(1, Ordering::Relaxed);
        })
    };
    // A periodic sync that re-arms itself every 250 ms.
    let periodic: Arc<std::sync::OnceLock<DelayedWork>> = Arc::new(std::sync::OnceLock::new());
    let sync_work = {
        let (w, p, syncs) = (Arc::downgrade(&worker), periodic.clone(), syncs.clone());
        DelayedWork::new(move || {
            syncs.fetch_add(1, Ordering::Relaxed);
            if let (Some(w), Some(me)) = (w.upgrade(), p.get()) {
                w.mod_delayed(me, Duration::from_millis(250));
            }
        })
    };
    let _ = periodic.set(sync_work.clone());
    worker.queue_delayed(&sync_work, Duration::from_millis(250));

    let requests = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let (worker, flush_work, dirty, requests) = (
                worker.clone(),
                flush_work.clone(),
                dirty.clone(),
                requests.clone(),
            );
            kthread::run(&format!("writer/{i}"), move || {
                // Write for about a second, asking for a flush after each write.
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(1100) {
                    for _ in 0..1000 {
                        dirty.fetch_add(1, Ordering::AcqRel);
                        worker.queue(&flush_work);
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                    set_current_state(TaskState::Interruptible);
                    schedule_timeout(Duration::from_micros(200));
                }
            })
        })
        .collect::<Result<_, _>>()?;
    table();
    for w in writers {
        w.stop()?;
    }
    // Durability barrier: everything dirtied before this line is written.
    let before = dirty.load(Ordering::Acquire);
    worker.queue(&flush_work);
    flush_work.flush();
    assert!(written.load(Ordering::Acquire) >= before);
    println!(
        "flush requested {} times, ran {} times; written {} of {} dirty",
        requests.load(Ordering::Relaxed),
        flushes.load(Ordering::Relaxed),
        written.load(Ordering::Acquire),
        before
    );
    // Shutdown: cancel the periodic sync (it re-arms itself), then destroy.
    sync_work.cancel_sync();
    println!(
        "periodic sync ran {} times before cancel",
        syncs.load(Ordering::Relaxed)
    );
    drop(periodic);
    match Arc::try_unwrap(worker) {
        Ok(w) => w.destroy(),
        Err(_) => unreachable!("writers are stopped"),
    }
    Ok(())
}

fn freeze_demo() -> Result<(), Box<dyn std::error::Error>> {
    let ticks = Arc::new(AtomicU64::new(0));
    let t = ticks.clone();
    let scrubber = kthread::Builder::new("scrubber")
        .freezable(true)
        .run(move || {
            while !kthread::freezable_should_stop() {
                t.fetch_add(1, Ordering::Relaxed);
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule_timeout(Duration::from_millis(2));
                }
                set_current_state(TaskState::Running);
            }
        })?;
    let fw = Worker::builder("fsync").freezable(true).create()?;
    let busy = Arc::new(AtomicU64::new(0));
    let b = busy.clone();
    let counter = kthread::run("counter", move || {
        while !should_stop() {
            b.fetch_add(1, Ordering::Relaxed);
            set_current_state(TaskState::Interruptible);
            if !should_stop() {
                schedule_timeout(Duration::from_millis(1));
            }
            set_current_state(TaskState::Running);
        }
    })?;
    let guard = freezer::freeze(Duration::from_secs(5))?;
    let frozen_at = ticks.load(Ordering::Relaxed);
    let busy_at = busy.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(50)); // the "snapshot"
    table();
    println!("scrubber (freezable) and the fsync worker are frozen; the counter is not");
    println!(
        "during the freeze: scrubber ticks {} -> {}, non-freezable counter {} -> {}",
        frozen_at,
        ticks.load(Ordering::Relaxed),
        busy_at,
        busy.load(Ordering::Relaxed)
    );
    drop(guard); // thaw
    println!("after thaw: scrubber is {:?}", scrubber.task().state());
    scrubber.stop()?;
    counter.stop()?;
    fw.destroy();
    Ok(())
}

fn percpu_demo() -> Result<(), Box<dyn std::error::Error>> {
    let set = PerCpu::spawn("poller/%u", |cpu| {
        let mut seen = Vec::new();
        while !should_stop() {
            if should_park() {
                kthread::parkme();
                continue;
            }
            // SAFETY: sched_getcpu takes no arguments and only returns a number.
            seen.push(unsafe { libc::sched_getcpu() });
            set_current_state(TaskState::Interruptible);
            if !should_stop() && !should_park() {
                schedule_timeout(Duration::from_millis(20));
            }
            set_current_state(TaskState::Running);
        }
        // A bound thread only ever runs on its own CPU.
        assert!(seen.iter().all(|&c| c == cpu as i32), "ran off CPU {cpu}");
        cpu
    })?;
    let cpus = set.cpus();
    table();
    let last = *cpus.last().expect("at least one CPU");
    set.offline(last)?;
    println!("CPU {last} offline: its thread is parked");
    table();
    set.online(last)?;
    println!("CPU {last} online again");
    for (cpu, r) in set.stop() {
        println!("poller/{cpu} returned {:?}", r?);
    }
    Ok(())
}
