//! The process's start affinity (`taskset -c N prog`) bounds every kthread:
//! unbound kthreads, `bind`, `Builder::cpu` and per-CPU sets.
//!
//! The test re-runs this binary under `taskset -c <first allowed CPU>` and
//! checks from inside; the outer run only launches and reports.

mod common;

use common::{allowed_cpus, watchdog, WATCHDOG};
use kthread::{Error, PerCpu};
use std::process::Command;

const CHILD: &str = "KTHREAD_TASKSET_CHILD";

#[test]
fn start_affinity_bounds_every_kthread() {
    let _w = watchdog("start_affinity_bounds_every_kthread", WATCHDOG);
    if let Ok(cpu) = std::env::var(CHILD) {
        return inside(cpu.parse().expect("cpu number"));
    }
    let allowed = allowed_cpus();
    if allowed.len() < 2 {
        eprintln!("skipped: needs two usable CPUs (have {allowed:?})");
        return;
    }
    let cpu = allowed[0];
    let exe = std::env::current_exe().expect("test binary");
    let out = match Command::new("taskset")
        .args(["-c", &cpu.to_string()])
        .arg(exe)
        .args([
            "--exact",
            "start_affinity_bounds_every_kthread",
            "--nocapture",
        ])
        .env(CHILD, cpu.to_string())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run taskset ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "under taskset -c {cpu}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs in the child, whose every thread started with affinity {cpu}.
fn inside(cpu: usize) {
    let other = (0..64).find(|&c| c != cpu).unwrap();
    // Unbound kthreads get the start affinity, not every CPU (set before
    // `create` returns; the kthread sleeps, listed, until woken or stopped).
    let k = kthread::create("ts-unbound", || ()).unwrap();
    let row = kthread::list()
        .into_iter()
        .find(|r| r.tid == k.task().tid());
    assert_eq!(
        row.map(|r| r.allowed_cpus),
        Some(vec![cpu]),
        "unbound kthread"
    );
    k.stop().unwrap_err();
    // bind and Builder::cpu refuse a CPU outside it.
    let k = kthread::create("ts-bind", || ()).unwrap();
    assert!(matches!(k.bind(other), Err(Error::CpuNotAllowed(c)) if c == other));
    assert!(k.bind(cpu).is_ok());
    k.stop().unwrap_err();
    let e = kthread::Builder::new("ts-cpu")
        .cpu(other)
        .create(|| ())
        .unwrap_err();
    assert!(matches!(e, Error::CpuNotAllowed(c) if c == other), "{e:?}");
    // A per-CPU set has exactly that CPU, and following affinity changes nothing.
    let set = PerCpu::spawn("ts/%u", |c| c).unwrap();
    assert_eq!(set.cpus(), vec![cpu]);
    assert_eq!(set.follow_affinity(), (vec![], vec![]));
    for (c, r) in set.stop() {
        assert_eq!(r.unwrap(), c);
    }
}
