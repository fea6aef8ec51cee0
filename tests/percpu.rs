//! Per-CPU kthread sets (SPEC §7): one bound thread per allowed CPU,
//! offline parks exactly that CPU's thread, online resumes it re-bound.

mod common;

use common::{affinity_of, allowed_cpus, set_affinity_of, wait_briefly_until, watchdog, WATCHDOG};
use kthread::{PerCpu, TaskState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What each per-CPU thread reports when stopped.
#[derive(Debug)]
struct Report {
    affinity: Vec<usize>,
    cpus_seen: Vec<usize>,
    rounds: u64,
}

fn current_cpu() -> usize {
    // SAFETY: sched_getcpu takes no arguments and only returns a number.
    let c = unsafe { libc::sched_getcpu() };
    assert!(c >= 0, "sched_getcpu failed");
    c as usize
}

/// A parkable per-CPU loop that records where it runs; `rounds[cpu]` counts wakes.
fn spawn_set(rounds: Arc<Vec<AtomicU64>>) -> PerCpu<Report> {
    PerCpu::spawn("poller/%u", move |cpu| {
        let mut seen = vec![current_cpu()];
        while !kthread::should_stop() {
            if kthread::should_park() {
                kthread::parkme();
                seen.push(current_cpu());
                continue;
            }
            kthread::set_current_state(TaskState::Interruptible);
            if !kthread::should_stop() && !kthread::should_park() {
                kthread::schedule();
            }
            kthread::set_current_state(TaskState::Running);
            seen.push(current_cpu());
            rounds[cpu].fetch_add(1, Ordering::SeqCst);
        }
        Report {
            affinity: affinity_of(0),
            cpus_seen: seen,
            rounds: rounds[cpu].load(Ordering::SeqCst),
        }
    })
    .expect("spawn per-CPU set")
}

fn counters() -> Arc<Vec<AtomicU64>> {
    Arc::new((0..1024).map(|_| AtomicU64::new(0)).collect())
}

#[test]
fn one_thread_per_allowed_cpu_each_only_on_its_cpu() {
    let _w = watchdog("one_thread_per_allowed_cpu_each_only_on_its_cpu", WATCHDOG);
    let rounds = counters();
    let set = spawn_set(rounds.clone());
    assert_eq!(set.cpus(), allowed_cpus());
    for cpu in set.cpus() {
        let t = set.task(cpu).unwrap();
        assert_eq!(t.name(), format!("poller/{cpu}"));
        assert!(t.is_bound() && t.is_per_cpu());
        // Wake it a few times so it runs (and could migrate, if unbound).
        for _ in 0..20 {
            t.wake_up();
            std::thread::yield_now();
        }
    }
    let results = set.stop();
    assert_eq!(results.len(), allowed_cpus().len());
    for (cpu, r) in results {
        let r = r.expect("per-CPU thread returns its report");
        assert_eq!(r.affinity, vec![cpu], "poller/{cpu} not bound to its CPU");
        assert!(
            r.cpus_seen.iter().all(|&c| c == cpu),
            "poller/{cpu} ran on {:?}",
            r.cpus_seen
        );
    }
}

#[test]
fn offline_parks_exactly_that_cpu_and_online_resumes_it_on_the_same_cpu() {
    let _w = watchdog("offline_parks_exactly_that_cpu", WATCHDOG);
    let rounds = counters();
    let set = spawn_set(rounds.clone());
    let cpus = set.cpus();
    let victim = *cpus.last().unwrap();
    set.offline(victim).expect("offline");
    assert_eq!(set.task(victim).unwrap().state(), TaskState::Parked);
    for &cpu in &cpus {
        if cpu != victim {
            assert_ne!(set.task(cpu).unwrap().state(), TaskState::Parked);
        }
    }
    // Parked: a wake does not make it run a round.
    let before = rounds[victim].load(Ordering::SeqCst);
    set.task(victim).unwrap().wake_up();
    std::thread::sleep(Duration::from_millis(30)); // negative check only
    assert_eq!(rounds[victim].load(Ordering::SeqCst), before);
    assert_eq!(set.task(victim).unwrap().state(), TaskState::Parked);
    // Double offline is an error; online resumes it.
    assert!(set.offline(victim).is_err());
    set.online(victim).expect("online");
    let t = set.task(victim).unwrap().clone();
    wait_briefly_until("victim leaves parkme", Duration::from_secs(5), || {
        t.state() != TaskState::Parked
    });
    t.wake_up();
    wait_briefly_until("victim runs a round again", Duration::from_secs(5), || {
        t.wake_up();
        rounds[victim].load(Ordering::SeqCst) > before
    });
    for (cpu, r) in set.stop() {
        let r = r.unwrap();
        assert!(
            r.cpus_seen.iter().all(|&c| c == cpu),
            "ran off its CPU: {:?}",
            r.cpus_seen
        );
        if cpu == victim {
            assert!(r.rounds > before);
        }
    }
}

#[test]
fn online_rebinds_a_thread_whose_affinity_was_changed_while_offline() {
    let _w = watchdog("online_rebinds", WATCHDOG);
    let set = spawn_set(counters());
    let cpu = set.cpus()[0];
    let tid = set.task(cpu).unwrap().tid();
    set.offline(cpu).unwrap();
    set_affinity_of(tid, &allowed_cpus()); // someone widens it behind our back
    assert_eq!(affinity_of(tid), allowed_cpus());
    set.online(cpu).unwrap();
    assert_eq!(affinity_of(tid), vec![cpu], "unpark must re-bind first");
    drop(set.stop());
}

#[test]
fn stop_returns_one_result_per_cpu_and_unknown_cpu_is_an_error() {
    let _w = watchdog("stop_returns_one_result_per_cpu", WATCHDOG);
    let set = PerCpu::spawn("ret/%u", |cpu| cpu * 10).unwrap();
    assert!(matches!(
        set.offline(100_000),
        Err(kthread::Error::CpuNotAllowed(100_000))
    ));
    assert!(set.online(100_000).is_err());
    let results = set.stop();
    let cpus: Vec<usize> = results.iter().map(|(c, _)| *c).collect();
    assert_eq!(cpus, allowed_cpus());
    for (cpu, r) in results {
        assert_eq!(r.unwrap(), cpu * 10);
    }
}
