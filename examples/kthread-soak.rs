//! A timed soak of the randomized stress engine (`tests/stress/mod.rs`).
//!
//! Runs the engine's operation mix (create, wake, park, unpark, stop, queue,
//! queue_delayed, mod_delayed, flush, cancel_sync, freeze, thaw) in rounds
//! of `--interval` seconds until `--seconds` have passed. Every round builds
//! and destroys its own workers, so creation and destruction are soaked as
//! well. After each round it prints a progress line with the cumulative
//! operations, items run, claims, cancels and kthreads created; the live
//! kthreads from `kthread::list()` (now, and the peak sampled during the
//! round); and the RSS from `/proc/self/statm`. It also checks that no
//! kthread but kthreadd is left.
//!
//! ```text
//! cargo run --release --example kthread-soak -- --seconds 600
//! cargo run --release --example kthread-soak -- --seconds 60 --seed 42 --drivers 4
//! cargo run --example kthread-soak -- --ops 2000 --rounds 2   # fixed length (scripts/valgrind.sh)
//! ```
//!
//! Options:
//! * `--seconds N` (default 600).
//! * `--interval N`: round length and progress period (default 10).
//! * `--seed N`: default `KTHREAD_STRESS_SEED`, else the clock. Round `i`
//!   uses seed `N + i`, so `--seed N+i` replays it.
//! * `--drivers N` (default 3).
//! * `--ops N`: instead of a duration, each round runs `N` operations per
//!   driver. One round by default; see `--rounds N`.
//! * `--rss-slack-kib N`.
//!
//! Exit status:
//! * 0 when clean.
//! * 101, a panic naming the seed, when the engine's sequential reference
//!   is violated, an item is lost (runs + cancels != claims) or a kthread
//!   is left behind.
//! * 2 for bad arguments.
//! * 3 when RSS grew after warm-up by more than the slack.
//!
//! # RSS check
//!
//! Warm-up is the first round. RSS is taken after it (at 10 s with the
//! defaults) and after the last round. At both points every worker and
//! kthread of the rounds is gone. The default slack, 4096 KiB, is set from
//! measurements on a 2-CPU machine. A 60 s run (7.5 million operations,
//! 457,000 kthreads) went from 2668 KiB at 10 s to 2728 KiB at the end:
//! +60 KiB. A 300 s run (34 million operations, 2.07 million kthreads) grew
//! +104 KiB after warm-up and stayed flat for its last 100 s. glibc's
//! per-thread malloc arenas and its cache of freed thread stacks settle in
//! that time. A leak of even the smallest malloc chunk (32 bytes) per
//! kthread created (6,000 to 8,000 a second here) adds about 200 KiB/s and
//! crosses the slack within about 20 s. A leak per item claim (about 25,000/s) crosses
//! it sooner.

#[path = "../tests/stress/mod.rs"]
mod stress;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parsed command line.
struct Args {
    seconds: u64,
    interval: u64,
    seed: u64,
    drivers: usize,
    ops: Option<u64>,
    rounds: Option<u64>,
    rss_slack_kib: u64,
}

const USAGE: &str = "usage: kthread-soak [--seconds N] [--interval N] [--seed N] [--drivers N] \
                     [--ops N] [--rounds N] [--rss-slack-kib N]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seconds: 600,
        interval: 10,
        seed: stress::seed(),
        drivers: 3,
        ops: None,
        rounds: None,
        rss_slack_kib: 4096,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}\n{USAGE}"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = n,
            "--interval" => a.interval = n.max(1),
            "--seed" => a.seed = n,
            "--drivers" => a.drivers = (n as usize).max(1),
            "--ops" => a.ops = Some(n),
            "--rounds" => a.rounds = Some(n.max(1)),
            "--rss-slack-kib" => a.rss_slack_kib = n,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// Cumulative counts over all rounds.
#[derive(Default)]
struct Sum {
    ops: u64,
    claims: u64,
    runs: u64,
    cancels: u64,
    kthreads: u64,
    freezes: u64,
    freeze_timeouts: u64,
}

impl Sum {
    fn add(&mut self, t: &stress::Totals) {
        let g = stress::Totals::get;
        self.ops += g(&t.ops);
        self.claims += g(&t.claims);
        self.runs += g(&t.runs);
        self.cancels += g(&t.cancels);
        self.kthreads += g(&t.kthreads);
        self.freezes += g(&t.freezes);
        self.freeze_timeouts += g(&t.freeze_timeouts);
    }
}

/// Samples `kthread::list().len()` while a round runs: last and peak.
struct LiveSampler {
    stop: Arc<AtomicBool>,
    last: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveSampler {
    fn start(period: Duration) -> LiveSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, last, peak) = (stop.clone(), last.clone(), peak.clone());
            std::thread::Builder::new()
                .name("soak-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let n = kthread::list().len();
                        last.store(n, Ordering::SeqCst);
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(period);
                    }
                })
                .expect("spawn the sampler thread")
        };
        LiveSampler {
            stop,
            last,
            peak,
            thread: Some(thread),
        }
    }

    /// Last and peak sample since the previous call (resets the peak).
    fn take(&self) -> (usize, usize) {
        let last = self.last.load(Ordering::SeqCst);
        (last, self.peak.swap(last, Ordering::SeqCst))
    }
}

impl Drop for LiveSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn main() -> ExitCode {
    // Born from a clean main thread, as the crate docs recommend.
    kthread::kthreadd::start().expect("start kthreadd");
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let interval = Duration::from_secs(args.interval);
    let budget = Duration::from_secs(args.seconds);
    match args.ops {
        Some(ops) => println!(
            "kthread-soak: seed {} (round i uses seed {}+i), {} drivers, {} rounds of {ops} ops per driver",
            args.seed,
            args.seed,
            args.drivers,
            args.rounds.unwrap_or(1)
        ),
        None => println!(
            "kthread-soak: seed {} (round i uses seed {}+i), {} drivers, {} s in rounds of {} s",
            args.seed, args.seed, args.drivers, args.seconds, args.interval
        ),
    }
    let rss_start = stress::rss_kib();
    let sampler = LiveSampler::start(Duration::from_millis(200));
    let start = Instant::now();
    let mut sum = Sum::default();
    let mut rss_warm: Option<(f64, u64)> = None;
    let mut round = 0u64;
    loop {
        let elapsed = start.elapsed();
        let more = match (args.ops, args.rounds) {
            (_, Some(r)) => round < r,
            (Some(_), None) => round < 1,
            (None, None) => round == 0 || elapsed < budget,
        };
        if !more {
            break;
        }
        let seed = args.seed.wrapping_add(round);
        let totals = match args.ops {
            Some(ops) => stress::run(seed, args.drivers, move |n| n < ops),
            None => {
                let len = interval.min(budget.saturating_sub(elapsed));
                stress::run(seed, args.drivers, stress::for_duration(len))
            }
        };
        round += 1;
        sum.add(&totals);
        let (_, peak) = sampler.take();
        // Workers and driver kthreads are all gone now: only kthreadd lives.
        let after: Vec<_> = kthread::list()
            .into_iter()
            .filter(|t| !t.flags.kthreadd)
            .collect();
        assert!(
            after.is_empty(),
            "seed {seed}: kthreads left after round {round}: {after:?}"
        );
        let rss = stress::rss_kib();
        let secs = start.elapsed().as_secs_f64();
        if rss_warm.is_none() {
            rss_warm = Some((secs, rss));
        }
        println!(
            "[{secs:7.1}s] round {round}: ops {} runs {} claims {} cancels {} \
             kthreads created {} | live kthreads now {}, peak {peak} | rss {rss} KiB",
            sum.ops,
            sum.runs,
            sum.claims,
            sum.cancels,
            sum.kthreads,
            after.len() + 1,
        );
        assert_eq!(
            sum.runs + sum.cancels,
            sum.claims,
            "seed {seed}: items lost (runs + cancels != claims)"
        );
    }
    drop(sampler);
    let secs = start.elapsed().as_secs_f64();
    let rss_end = stress::rss_kib();
    println!(
        "totals: {round} rounds in {secs:.1} s: ops {} runs {} claims {} cancels {} \
         kthreads created {} freezes {} (timeouts {})",
        sum.ops, sum.runs, sum.claims, sum.cancels, sum.kthreads, sum.freezes, sum.freeze_timeouts
    );
    let lost = sum.claims as i128 - (sum.runs + sum.cancels) as i128;
    println!(
        "lost items: {lost} (runs {} + cancels {} vs claims {})",
        sum.runs, sum.cancels, sum.claims
    );
    let (warm_at, warm) = rss_warm.unwrap_or((0.0, rss_start));
    let growth = rss_end as i64 - warm as i64;
    let verdict = if round < 2 {
        "not checked (one round)"
    } else if growth > args.rss_slack_kib as i64 {
        "GREW"
    } else {
        "flat"
    };
    println!(
        "rss: start {rss_start} KiB, after warm-up ({warm_at:.1} s) {warm} KiB, end ({secs:.1} s) \
         {rss_end} KiB, growth {growth:+} KiB (slack {} KiB): {verdict}",
        args.rss_slack_kib
    );
    if lost != 0 {
        return ExitCode::FAILURE;
    }
    if verdict == "GREW" {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
