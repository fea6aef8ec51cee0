//! Races between API calls on ONE object: a work item hammered from several
//! threads across three workers, one kthread stopped / parked / unparked /
//! woken from several threads through `Task` clones, and the freezer's
//! `freeze` / `thaw` / guard drops from several threads at once.
//!
//! (`tests/worker_races.rs` keeps the books for two workers; this adds a
//! third worker, `is_pending` and `flush`-of-my-instance checks, the "no run
//! after a quiet cancel" check, and exact books at every round's barrier.)

use super::common::watchdog;
use super::{lock, parkable_loop, seed, Failures, Rng, FREEZER, LIMIT};
use kthread::freezer::{self, FreezeError, FreezeGuard};
use kthread::{Builder, DelayedWork, Error, StopError, Task, TaskState, Work, Worker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long each racing test keeps going.
const BUDGET: Duration = Duration::from_millis(1200);
const THREADS: usize = 4;
const OPS_PER_ROUND: usize = 150;

/// One item under attack, plain or delayed.
enum Item {
    Plain(Work),
    Delayed(DelayedWork),
}

/// The item's own books, kept by its function and by the racing threads.
#[derive(Default)]
struct Books {
    running: AtomicBool,
    overlaps: AtomicUsize,
    /// Runs begun / finished (runs are sequential when `overlaps` is 0).
    starts: AtomicUsize,
    ends: AtomicUsize,
    /// Queue-like calls (queue, queue_delayed, mod_delayed) begun / finished.
    attempts_started: AtomicUsize,
    attempts_finished: AtomicUsize,
    /// `attempts_started` as of a cancel that no queue attempt overlapped.
    quiet_mark: AtomicUsize,
    late_runs: AtomicUsize,
    cancels_begun: AtomicUsize,
    /// Cancel-like calls finished: with `cancels_begun`, says whether one
    /// is in progress (it may take an instance queued after it began).
    cancels_finished: AtomicUsize,
    claims: AtomicUsize,
    cancels: AtomicUsize,
    quiet_cancels: AtomicUsize,
    flush_checks: AtomicUsize,
}

impl Books {
    fn new() -> Arc<Books> {
        let b = Books::default();
        b.quiet_mark.store(usize::MAX, SeqCst);
        Arc::new(b)
    }

    /// The item's function.
    fn run(&self) {
        // A run that begins after a quiet cancel with no queue attempt since.
        let mark = self.quiet_mark.load(SeqCst);
        if self.attempts_started.load(SeqCst) == mark {
            self.late_runs.fetch_add(1, SeqCst);
        }
        if self.running.swap(true, SeqCst) {
            self.overlaps.fetch_add(1, SeqCst);
        }
        self.starts.fetch_add(1, SeqCst);
        for _ in 0..20 {
            std::hint::spin_loop();
        }
        self.running.store(false, SeqCst);
        self.ends.fetch_add(1, SeqCst);
    }
}

impl Item {
    fn new(delayed: bool, books: &Arc<Books>) -> Item {
        let b = books.clone();
        if delayed {
            Item::Delayed(DelayedWork::new(move || b.run()))
        } else {
            Item::Plain(Work::new(move || b.run()))
        }
    }

    /// A queue-like call on `w`; returns whether it made a new claim.
    fn attempt(&self, w: &Worker, rng: &mut Rng, b: &Books) -> bool {
        b.attempts_started.fetch_add(1, SeqCst);
        let claimed = match self {
            Item::Plain(work) => w.queue(work),
            Item::Delayed(dw) => {
                let d = match rng.below(3) {
                    0 => Duration::ZERO,
                    1 => Duration::from_micros(50),
                    _ => Duration::from_millis(1),
                };
                if rng.chance(50) {
                    w.queue_delayed(dw, d)
                } else {
                    // Re-arming a pending instance takes it off the list as a
                    // cancel does (kthread_mod_delayed_work()): a flush
                    // racing it may return without that instance having run.
                    b.cancels_begun.fetch_add(1, SeqCst);
                    // `false`: it was idle and is armed afresh (a new claim).
                    let armed_afresh = !w.mod_delayed(dw, d);
                    b.cancels_finished.fetch_add(1, SeqCst);
                    armed_afresh
                }
            }
        };
        b.attempts_finished.fetch_add(1, SeqCst);
        if claimed {
            b.claims.fetch_add(1, SeqCst);
        }
        claimed
    }

    fn cancel_sync(&self, b: &Books) -> bool {
        b.cancels_begun.fetch_add(1, SeqCst);
        let took = match self {
            Item::Plain(w) => w.cancel_sync(),
            Item::Delayed(w) => w.cancel_sync(),
        };
        if took {
            b.cancels.fetch_add(1, SeqCst);
        }
        b.cancels_finished.fetch_add(1, SeqCst);
        took
    }

    fn flush(&self) -> bool {
        match self {
            Item::Plain(w) => w.flush(),
            Item::Delayed(w) => w.flush(),
        }
    }

    fn is_pending(&self) -> bool {
        match self {
            Item::Plain(w) => w.is_pending(),
            Item::Delayed(w) => w.is_pending(),
        }
    }
}

/// One random operation of racing thread `me`.
fn one_op(
    item: &Item,
    workers: &[Worker],
    rng: &mut Rng,
    b: &Books,
    fails: &Failures,
    check_flush: bool,
) {
    let w = &workers[rng.below(workers.len() as u64) as usize];
    match rng.below(10) {
        0..=2 => {
            item.attempt(w, rng, b);
        }
        3 | 4 => {
            // Cancel; if no queue attempt overlapped it, nothing may be
            // pending afterwards and nothing may run until the next attempt.
            let f_pre = b.attempts_finished.load(SeqCst);
            let s_pre = b.attempts_started.load(SeqCst);
            item.cancel_sync(b);
            let pending = item.is_pending();
            let s_post = b.attempts_started.load(SeqCst);
            if f_pre == s_pre && s_post == s_pre {
                b.quiet_cancels.fetch_add(1, SeqCst);
                if pending {
                    fails.add("pending right after a cancel_sync no queue overlapped".into());
                }
                b.quiet_mark.store(s_pre, SeqCst);
            }
        }
        5 | 6 => {
            // Flush my own instance: it must have finished when flush returns
            // (unless a cancel or a re-arming mod_delayed may have taken it).
            let s = b.starts.load(SeqCst);
            // No cancel may be in progress when we queue (one that began
            // earlier can still take our instance) nor begin until we checked.
            let c_done = b.cancels_finished.load(SeqCst);
            let c = b.cancels_begun.load(SeqCst);
            if item.attempt(w, rng, b) {
                let waited = item.flush();
                if check_flush && c == c_done && b.cancels_begun.load(SeqCst) == c {
                    b.flush_checks.fetch_add(1, SeqCst);
                    let ends = b.ends.load(SeqCst);
                    if ends < s + 1 {
                        fails.add(format!(
                            "flush returned {waited} before the instance it covered ran \
                             (starts before queue {s}, ends after flush {ends}, \
                             pending now {})",
                            item.is_pending()
                        ));
                    }
                }
            }
        }
        7 => {
            item.flush();
        }
        _ => {
            item.is_pending();
        }
    }
}

fn hammer_one_item(test: &'static str, delayed: bool, check_flush: bool) {
    let _w = watchdog(test, LIMIT);
    let seed = seed(test);
    let books = Books::new();
    let item = Arc::new(Item::new(delayed, &books));
    let workers: Arc<Vec<Worker>> = Arc::new(
        (0..3)
            .map(|i| Worker::new(&format!("hz-race{i}")).unwrap())
            .collect(),
    );
    let fails = Arc::new(Failures::default());
    let barrier = Arc::new(Barrier::new(THREADS));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let rounds = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|me| {
            let (item, workers, books, fails) =
                (item.clone(), workers.clone(), books.clone(), fails.clone());
            let (barrier, done, rounds) = (barrier.clone(), done.clone(), rounds.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(seed, me as u64);
                loop {
                    for _ in 0..OPS_PER_ROUND {
                        one_op(&item, &workers, &mut rng, &books, &fails, check_flush);
                    }
                    barrier.wait();
                    if me == 0 {
                        // Everyone is still: settle and check the exact books.
                        item.cancel_sync(&books);
                        if item.is_pending() {
                            fails.add("pending after a solo cancel_sync".into());
                        }
                        let ends = books.ends.load(SeqCst);
                        for w in workers.iter() {
                            w.flush().unwrap();
                        }
                        if books.ends.load(SeqCst) != ends {
                            fails.add("ran after a solo cancel_sync returned".into());
                        }
                        let (claims, cancels) =
                            (books.claims.load(SeqCst), books.cancels.load(SeqCst));
                        if claims != ends + cancels {
                            fails.add(format!(
                                "books: {claims} claims != {ends} runs + {cancels} cancels"
                            ));
                        }
                        rounds.fetch_add(1, SeqCst);
                        done.store(start.elapsed() >= BUDGET, SeqCst);
                    }
                    barrier.wait();
                    if done.load(SeqCst) {
                        return;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("racing thread panicked");
    }
    let b = &books;
    eprintln!(
        "{test}: {} rounds, {} claims, {} runs, {} cancels, {} quiet cancels, {} flush checks",
        rounds.load(SeqCst),
        b.claims.load(SeqCst),
        b.ends.load(SeqCst),
        b.cancels.load(SeqCst),
        b.quiet_cancels.load(SeqCst),
        b.flush_checks.load(SeqCst)
    );
    assert_eq!(b.overlaps.load(SeqCst), 0, "ran concurrently with itself");
    assert_eq!(
        b.late_runs.load(SeqCst),
        0,
        "ran after a quiet cancel_sync with no queue since"
    );
    assert!(b.claims.load(SeqCst) > 0, "the race made no claim at all");
    fails.check(test, seed);
    let Ok(workers) = Arc::try_unwrap(workers) else {
        panic!("racing threads still hold the workers")
    };
    for w in workers {
        w.destroy();
    }
}

#[test]
fn one_work_raced_across_three_workers_keeps_its_invariants() {
    hammer_one_item(
        "races::one_work_raced_across_three_workers_keeps_its_invariants",
        false,
        false,
    );
}

#[test]
fn one_delayed_work_raced_across_three_workers_keeps_its_invariants() {
    hammer_one_item(
        "races::one_delayed_work_raced_across_three_workers_keeps_its_invariants",
        true,
        false,
    );
}

// The same races, also checking that `flush` of the instance a thread has
// just queued returns only once that instance ran — unless a cancel was in
// progress when it queued or began before the check: a `cancel_sync` that
// began earlier may still take an instance queued after it began (as in
// the kernel), which a first version of this check missed.
#[test]
fn flush_of_my_instance_waits_for_it_while_others_race_on_the_item() {
    hammer_one_item(
        "races::flush_of_my_instance_waits_for_it_while_others_race_on_the_item",
        false,
        true,
    );
}

#[test]
fn flush_of_my_delayed_instance_waits_for_it_while_others_race_on_the_item() {
    hammer_one_item(
        "races::flush_of_my_delayed_instance_waits_for_it_while_others_race_on_the_item",
        true,
        true,
    );
}

/// Random stop / park / unpark / wake on one kthread from three threads.
///
/// Hung before `claim_park` refused a park once a stop is requested: a
/// `park()` that landed after `stop()` had unparked the thread parked it
/// again, and `stop()` waited for ever on a thread parked with flags `ps`.
#[test]
fn one_kthread_raced_by_stop_park_unpark_and_wake() {
    const TEST: &str = "races::one_kthread_raced_by_stop_park_unpark_and_wake";
    let _w = watchdog(TEST, LIMIT);
    let seed = seed(TEST);
    let mut rng = Rng::new(seed, 99);
    let fails = Arc::new(Failures::default());
    let start = Instant::now();
    let (mut rounds, mut ran, mut not_started) = (0u64, 0, 0);
    while start.elapsed() < BUDGET && rounds < 400 {
        rounds += 1;
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = super::DropCount(drops.clone());
        let token = rounds;
        let f = move || {
            let _g = &guard;
            parkable_loop();
            token
        };
        let b = Builder::new(format!("hz-k{rounds}"));
        let started = rng.chance(50);
        let k = if started { b.run(f) } else { b.create(f) }.unwrap();
        let task: Task = k.task().clone();
        let slot = Arc::new(Mutex::new(Some(k)));
        // `run` returned: the function must run, whatever the racers do.
        let woken = Arc::new(AtomicBool::new(started));
        let results = Arc::new(Mutex::new(Vec::new()));
        let racers: Vec<_> = (0..3)
            .map(|i| {
                let (task, slot, woken, results, fails) = (
                    task.clone(),
                    slot.clone(),
                    woken.clone(),
                    results.clone(),
                    fails.clone(),
                );
                let mut rng = Rng::new(seed, rounds * 8 + i);
                thread::spawn(move || {
                    for _ in 0..(4 + rng.below(12)) {
                        match rng.below(8) {
                            0 | 1 => {
                                task.wake_up();
                                woken.store(true, SeqCst);
                            }
                            2 | 3 => match task.park() {
                                Ok(()) => woken.store(true, SeqCst),
                                Err(Error::AlreadyParked | Error::Exited) => {}
                                Err(e) => fails.add(format!("park gave {e:?}")),
                            },
                            4 | 5 => task.unpark(),
                            6 => {
                                let _ = task.state();
                                let _ = task.has_exited();
                            }
                            _ => {
                                let k = lock(&slot).take();
                                if let Some(k) = k {
                                    let was_woken = woken.load(SeqCst);
                                    let r = k.stop();
                                    lock(&results).push((was_woken, r));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for r in racers {
            r.join().expect("racer panicked");
        }
        if let Some(k) = lock(&slot).take() {
            let was_woken = woken.load(SeqCst);
            lock(&results).push((was_woken, k.stop()));
        }
        let results = std::mem::take(&mut *lock(&results));
        assert_eq!(results.len(), 1, "stop collected the result once");
        match &results[0] {
            (_, Ok(v)) => {
                ran += 1;
                if *v != token {
                    fails.add(format!("stop returned {v}, not the token {token}"));
                }
            }
            (false, Err(StopError::NotStarted)) => not_started += 1,
            (true, Err(StopError::NotStarted)) => {
                fails.add("NotStarted although a wake or park had returned before the stop".into())
            }
            (_, Err(e)) => fails.add(format!("stop gave {e:?}")),
        }
        // After the stop the task is gone for good; calls on it answer at once.
        match task.park() {
            Err(Error::Exited) => {}
            other => fails.add(format!("park after stop gave {other:?}")),
        }
        task.unpark();
        task.wake_up();
        if drops.load(SeqCst) != 1 {
            fails.add(format!(
                "the function was dropped {} times",
                drops.load(SeqCst)
            ));
        }
    }
    eprintln!("{TEST}: {rounds} rounds, {ran} ran, {not_started} never started");
    fails.check(TEST, seed);
}

/// A kthread loop that naps 1 ms at a time (interruptibly) until `done()`
/// says so; returns its round count. `done` is the loop's freeze point
/// too: `freezable_should_stop`, or `try_to_freeze` then `should_stop`.
fn nap_loop(done: impl Fn() -> bool) -> u64 {
    let mut n = 0u64;
    while !done() {
        kthread::set_current_state(TaskState::Interruptible);
        if !kthread::should_stop() {
            kthread::schedule_timeout(Duration::from_millis(1));
        }
        kthread::set_current_state(TaskState::Running);
        n += 1;
    }
    n
}

/// `freeze` / `thaw` / guard drops / `keep` from three threads while
/// freezable kthreads run. A ledger taken around each thaw-like call
/// (never around `freeze`) proves, without false alarms, when a freeze is
/// certainly in effect; then a second freeze must fail, `thaw` must succeed,
/// `freezing()` must hold and every freezable kthread must be frozen.
///
/// Failed before freeze epochs: a `freeze()` right after a thaw returned
/// `Ok` at once while the kthreads that thaw released were running (state
/// `Running`): a plain freeze / drop(guard) loop on one freezable kthread
/// saw it 1,999 times in 2,000.
#[test]
fn freeze_thaw_and_guard_drops_race_from_several_threads() {
    const TEST: &str = "races::freeze_thaw_and_guard_drops_race_from_several_threads";
    let _w = watchdog(TEST, LIMIT);
    let _f = lock(&FREEZER);
    let seed = seed(TEST);
    let fss = |i: u32| {
        Builder::new(format!("hz-fz{i}"))
            .freezable(true)
            .run(|| nap_loop(kthread::freezable_should_stop))
            .unwrap()
    };
    let ttf = Builder::new("hz-fz-try")
        .freezable(true)
        .run(|| {
            nap_loop(|| {
                kthread::try_to_freeze();
                kthread::should_stop()
            })
        })
        .unwrap();
    let plain = kthread::run("hz-nofz", || nap_loop(kthread::should_stop)).unwrap();
    let freezable = [fss(0), fss(1)];
    let tasks: Arc<Vec<Task>> = Arc::new(
        freezable
            .iter()
            .map(|k| k.task().clone())
            .chain([ttf.task().clone()])
            .collect(),
    );
    let plain_task = plain.task().clone();

    /// `thaws` counts thaw-like calls begun (bumped before the call);
    /// `known` is `Some((thaws, id))` while freeze `id` is certainly in effect.
    #[derive(Default)]
    struct Ledger {
        thaws: u64,
        known: Option<(u64, u64)>,
        /// Guards whose freeze a `thaw()` certainly ended.
        dead: Vec<u64>,
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let fails = Arc::new(Failures::default());
    let next_id = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let start = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|me| {
            let (ledger, fails, tasks, next_id, counts) = (
                ledger.clone(),
                fails.clone(),
                tasks.clone(),
                next_id.clone(),
                counts.clone(),
            );
            let plain_task = plain_task.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(seed, me);
                let mut mine: Vec<(u64, FreezeGuard)> = Vec::new();
                while start.elapsed() < BUDGET {
                    match rng.below(10) {
                        0..=3 => {
                            let (seen, in_effect) = {
                                let l = lock(&ledger);
                                (l.thaws, matches!(l.known, Some((t, _)) if t == l.thaws))
                            };
                            match freezer::freeze(Duration::from_secs(10)) {
                                Ok(g) => {
                                    counts[0].fetch_add(1, SeqCst);
                                    let id = next_id.fetch_add(1, SeqCst) as u64;
                                    let mut l = lock(&ledger);
                                    if l.thaws == seen {
                                        if in_effect {
                                            fails.add(
                                                "two freezes in effect: a freeze succeeded \
                                                 while another was, with no thaw between"
                                                    .into(),
                                            );
                                        }
                                        l.known = Some((seen, id));
                                        for t in tasks.iter() {
                                            if t.state() != TaskState::Frozen {
                                                fails.add(format!(
                                                    "{} is {:?} while a freeze is in effect",
                                                    t.name(),
                                                    t.state()
                                                ));
                                            }
                                        }
                                    }
                                    drop(l);
                                    mine.push((id, g));
                                }
                                Err(FreezeError::AlreadyFrozen) => {}
                                Err(e) => fails.add(format!("freeze gave {e}")),
                            }
                        }
                        4 | 5 => {
                            let mut l = lock(&ledger);
                            let certain = l.known.filter(|&(t, _)| t == l.thaws);
                            l.thaws += 1;
                            match freezer::thaw() {
                                Ok(()) => {
                                    counts[1].fetch_add(1, SeqCst);
                                    if let Some((_, id)) = certain {
                                        l.dead.push(id);
                                    }
                                }
                                Err(FreezeError::NotFrozen) => {
                                    if certain.is_some() {
                                        fails.add("thaw said NotFrozen during a freeze".into());
                                    }
                                }
                                Err(e) => fails.add(format!("thaw gave {e}")),
                            }
                        }
                        6..=8 if !mine.is_empty() => {
                            let (id, g) = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                            let mut l = lock(&ledger);
                            if l.dead.contains(&id) {
                                // An old guard: its drop must leave a later
                                // freeze alone (no thaw-like event counted).
                                drop(g);
                                counts[2].fetch_add(1, SeqCst);
                                if matches!(l.known, Some((t, _)) if t == l.thaws)
                                    && !freezer::freezing()
                                {
                                    fails.add("an old guard's drop thawed a later freeze".into());
                                }
                            } else {
                                l.thaws += 1;
                                if rng.chance(20) {
                                    // Keep it instead: the freeze stays; thaw() ends it later.
                                    g.keep();
                                } else {
                                    drop(g);
                                }
                            }
                        }
                        _ => {
                            if plain_task.state() == TaskState::Frozen {
                                fails.add("a non-freezable kthread was frozen".into());
                            }
                        }
                    }
                }
                let mut l = lock(&ledger);
                l.thaws += 1;
                drop(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("freezer thread panicked");
    }
    // Whatever is left (a kept guard): thaw it; then nothing is frozen.
    let _ = freezer::thaw();
    assert!(matches!(freezer::thaw(), Err(FreezeError::NotFrozen)));
    assert!(!freezer::freezing());
    eprintln!(
        "{TEST}: {} freezes, {} thaws, {} old-guard drops",
        counts[0].load(SeqCst),
        counts[1].load(SeqCst),
        counts[2].load(SeqCst)
    );
    assert!(counts[0].load(SeqCst) > 0, "no freeze ever succeeded");
    for k in freezable {
        k.stop().expect("freezable kthread stops");
    }
    ttf.stop().expect("try_to_freeze kthread stops");
    plain.stop().expect("plain kthread stops");
    fails.check(TEST, seed);
}
