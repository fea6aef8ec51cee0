//! `kthread-bench`: runs every pair interleaved (A B A B …) and prints a table.
//!
//! ```text
//! kthread-bench [--quick] [--json] [--pin] [--only NAME[,NAME…]] [--svg FILE]
//! ```
//!
//! * `--quick`: fewer operations and at most 3 rounds (CI's smoke run, < 45 s).
//! * `--json`: the rows as a JSON array instead of the table (progress goes to stderr).
//! * `--pin`: latency pairs with the timing thread on one CPU and its partner
//!   on another, plus `_samecpu` rows with both on the same CPU; queue pairs
//!   with the producers on one CPU and the consumer on another.
//! * `--only`: just the named rows (comma-separated pair names).
//! * `--svg FILE`: also write the ratios and their spread as an SVG bar chart.
//!
//! Each row's ratio is the median of its per-round ratios (kthread sample /
//! the peer sample taken right after it), with their interquartile range.
//!
//! The verdict column reports; the exit status is 0 whatever the ratios.

#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

use kthread_bench::report::{self, Row, Unit};
use kthread_bench::{spawn, sys, timed, BytesFn, Measure, Pair, Pin, Placement, TimeFn, PAIRS};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: kthread-bench [--quick] [--json] [--pin] [--only NAME[,NAME...]] [--svg FILE]";

/// Rounds a pair gets under `--quick`, at most.
const QUICK_ROUNDS: usize = 3;

/// The command line.
#[derive(Debug, Default)]
struct Opts {
    quick: bool,
    json: bool,
    pin: bool,
    only: Option<Vec<String>>,
    svg: Option<std::path::PathBuf>,
    /// Internal: measure one `rss_per_thread` side in this fresh process.
    rss_child: Option<(String, usize)>,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--json" => o.json = true,
            "--pin" => o.pin = true,
            "--only" => {
                let names = args.next().ok_or("--only needs a name")?;
                o.only = Some(names.split(',').map(str::to_owned).collect());
            }
            "--svg" => o.svg = Some(args.next().ok_or("--svg needs a file name")?.into()),
            "--rss-child" => {
                let side = args.next().ok_or("--rss-child needs a side")?;
                let n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--rss-child needs a thread count")?;
                o.rss_child = Some((side, n));
            }
            // `cargo bench` passes this to every target; nothing to do.
            "--bench" => {}
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(only) = &o.only {
        for name in only {
            if !PAIRS.iter().any(|p| p.name == name) {
                return Err(format!("no pair named {name:?}"));
            }
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("kthread-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some((side, n)) = &opts.rss_child {
        let f: BytesFn = match side.as_str() {
            "kthread" => spawn::kthread_rss_per_thread,
            "std" => spawn::std_rss_per_thread,
            _ => {
                eprintln!("kthread-bench: --rss-child: side is kthread or std");
                return ExitCode::from(2);
            }
        };
        println!("{}", f(*n));
        return ExitCode::SUCCESS;
    }
    // Born first, from a thread nobody changed: as the kthreadd docs advise.
    if let Err(e) = kthread::kthreadd::start() {
        eprintln!("kthread-bench: cannot start kthreadd: {e}");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for pair in PAIRS {
        if let Some(only) = &opts.only {
            if !only.iter().any(|n| n == pair.name) {
                continue;
            }
        }
        let rounds = if opts.quick {
            pair.rounds.min(QUICK_ROUNDS)
        } else {
            pair.rounds
        };
        match pair.measure {
            Measure::Time {
                kthread,
                peer,
                iters,
            } => {
                let n = if opts.quick { iters.quick } else { iters.full };
                for (suffix, pin) in placements(pair, opts.pin, &mut notes) {
                    let row = run_time(pair, suffix, pin, (kthread, peer), n, rounds, !opts.quick);
                    rows.push(row);
                }
                if pair.name == "create_10k" {
                    notes.push(format!(
                        "create_10k: {n} threads per sample{}.",
                        if opts.quick {
                            " (--quick; a full run uses 10,000)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Measure::Bytes {
                kthread: _,
                peer: _,
                threads,
            } => {
                let n = if opts.quick {
                    threads.quick
                } else {
                    threads.full
                } as usize;
                match run_rss(pair, n, rounds) {
                    Ok(row) => rows.push(row),
                    Err(e) => notes.push(format!("{}: not measured: {e}", pair.name)),
                }
                notes.push(format!(
                    "{}: resident bytes per live thread (not ns), {n} threads of 64 KiB stack, \
                     a fresh child process per sample.",
                    pair.name
                ));
            }
        }
    }
    let took = started.elapsed();
    if let Some(path) = &opts.svg {
        let caption = format!(
            "kthread-bench{}{}: {}",
            if opts.quick { " --quick" } else { "" },
            if opts.pin { " --pin" } else { "" },
            machine()
        );
        if let Err(e) = std::fs::write(path, report::svg(&rows, &caption)) {
            eprintln!("kthread-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("kthread-bench: chart written to {}", path.display());
    }
    if opts.json {
        println!("{}", report::json(&rows));
    } else {
        print!("{}", report::table(&rows));
        println!();
        println!(
            "{} interleaved rounds (A B A B ...) per row{}; ratio = median of the per-round \
             ratios kthread / peer (IQR: their quartiles), lower is better; the verdict reports \
             and never fails the run.",
            if opts.quick {
                "≤ 3"
            } else {
                "3-21 (up to twice that where the IQR is over 30% of the median)"
            },
            if opts.quick { ", --quick" } else { "" }
        );
        if !opts.pin {
            notes.push("Latency and queue pairs unpinned (--pin pins them).".to_owned());
        }
        for n in &notes {
            println!("{n}");
        }
        println!("Machine: {}. Took {:.1} s.", machine(), took.as_secs_f64());
    }
    ExitCode::SUCCESS
}

/// Where a pair runs: unpinned, or (`--pin`) two CPUs, and for latency
/// pairs also one.
fn placements(pair: &Pair, pin: bool, notes: &mut Vec<String>) -> Vec<(&'static str, Pin)> {
    let cpus = sys::allowed_cpus();
    if !pin || pair.placement == Placement::Free {
        return vec![("", Pin::Off)];
    }
    if cpus.len() < 2 {
        if pair.placement == Placement::Split {
            notes.push(format!("{}: one CPU allowed: unpinned.", pair.name));
            return vec![("", Pin::Off)];
        }
        notes.push(format!(
            "{}: one CPU allowed: only the _samecpu row.",
            pair.name
        ));
        return vec![(
            "_samecpu",
            Pin::On {
                main: cpus[0],
                other: cpus[0],
            },
        )];
    }
    if !notes.iter().any(|n| n.starts_with("--pin")) {
        notes.push(format!(
            "--pin: latency rows time on CPU {} with the partner on CPU {}; _samecpu rows put both on CPU {}; queue rows produce on CPU {} and consume on CPU {}.",
            cpus[0], cpus[1], cpus[0], cpus[0], cpus[1]
        ));
    }
    let split = Pin::On {
        main: cpus[0],
        other: cpus[1],
    };
    if pair.placement == Placement::Split {
        return vec![("", split)];
    }
    let same = Pin::On {
        main: cpus[0],
        other: cpus[0],
    };
    vec![("", split), ("_samecpu", same)]
}

/// A row whose per-round ratios spread wider than this (IQR / median)
/// gets more rounds in a full run.
const WIDE_SPREAD: f64 = 0.3;
/// At most this many times its planned rounds, and only while the row has
/// taken less than [`ROW_BUDGET`].
const MAX_ROUNDS_FACTOR: usize = 2;
const ROW_BUDGET: Duration = Duration::from_secs(8);

/// Whether the per-round ratios so far spread wide.
fn spread_wide(kthread: &[f64], peer: &[f64]) -> bool {
    let s = report::Spread::of_ratios(kthread, peer);
    s.mid > 0.0 && (s.hi - s.lo) / s.mid > WIDE_SPREAD
}

/// Interleaves `rounds` samples of each side; each sample is `n` operations.
/// With `extend` (a full run), a row whose ratios spread wide gets more
/// rounds (see [`WIDE_SPREAD`]).
fn run_time(
    pair: &Pair,
    suffix: &str,
    pin: Pin,
    sides: (TimeFn, TimeFn),
    n: u64,
    rounds: usize,
    extend: bool,
) -> Row {
    let (k, p) = sides;
    let t0 = Instant::now();
    let name = format!("{}{suffix}", pair.name);
    let per_op = |f: TimeFn, n: u64| timed(pin, || f(n, pin)).as_nanos() as f64 / n as f64;
    // One small untimed sample of each: first-touch costs, kthreadd, page faults.
    let warm = (n / 10).max(1);
    per_op(k, warm);
    per_op(p, warm);
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        a.push(per_op(k, n));
        b.push(per_op(p, n));
    }
    while extend
        && a.len() < rounds * MAX_ROUNDS_FACTOR
        && t0.elapsed() < ROW_BUDGET
        && spread_wide(&a, &b)
    {
        a.push(per_op(k, n));
        b.push(per_op(p, n));
    }
    let row = Row::from_samples(&name, &a, &b, pair.peer, pair.target, Unit::Nanos);
    progress(&row, t0);
    row
}

/// Interleaves `rounds` child processes of each side, each keeping `n` threads alive.
fn run_rss(pair: &Pair, n: usize, rounds: usize) -> Result<Row, String> {
    let t0 = Instant::now();
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let child = |side: &str| -> Result<f64, String> {
        let out = Command::new(&exe)
            .args(["--rss-child", side, &n.to_string()])
            .output()
            .map_err(|e| format!("spawn child: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "child ({side}) failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .map_err(|e| format!("child ({side}) said {text:?}: {e}"))
    };
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        a.push(child("kthread")?);
        b.push(child("std")?);
    }
    let row = Row::from_samples(pair.name, &a, &b, pair.peer, pair.target, Unit::Bytes);
    progress(&row, t0);
    Ok(row)
}

fn progress(r: &Row, since: Instant) {
    eprintln!(
        "{:<28} kthread {:>10}  peer {:>10}  ratio {:>5.2} ({:.2}–{:.2}, ≤ {}) {:<4} [{:.1} s]",
        r.name,
        report::human(r.kthread, r.unit),
        report::human(r.peer, r.unit),
        r.ratio(),
        r.ratios.lo,
        r.ratios.hi,
        report::target(r.target),
        if r.ok() { "ok" } else { "MISS" },
        since.elapsed().as_secs_f64()
    );
}

/// "2 CPUs (<model>), Linux <release>, load average <1 min>" from /proc.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    // Other processes' load moves cross-CPU wake figures the most: say it.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    format!("{cpus} CPUs ({model}), Linux {kernel}, load average {load} at the end")
}
