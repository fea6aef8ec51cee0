//! Randomized model-based stress: a seeded mix of every operation on shared
//! workers, checked against a sequential reference (see `tests/stress/mod.rs`).
//! The seed is printed; `KTHREAD_STRESS_SEED=N` reproduces a run and
//! `KTHREAD_STRESS_OPS` sets its length.

mod common;
mod stress;

use common::watchdog;
use std::time::Duration;

#[test]
fn random_operation_mix_matches_the_reference() {
    let _w = watchdog(
        "random_operation_mix_matches_the_reference",
        Duration::from_secs(120),
    );
    let seed = stress::seed();
    let ops: u64 = std::env::var("KTHREAD_STRESS_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    println!("stress seed {seed} ({ops} ops per driver; KTHREAD_STRESS_SEED={seed} reproduces)");
    let totals = stress::run(seed, 3, |n| n < ops);
    let t = |c: &std::sync::atomic::AtomicU64| stress::Totals::get(c);
    println!(
        "ops {} claims {} runs {} cancels {} kthreads {} freezes {} (timeouts {})",
        t(&totals.ops),
        t(&totals.claims),
        t(&totals.runs),
        t(&totals.cancels),
        t(&totals.kthreads),
        t(&totals.freezes),
        t(&totals.freeze_timeouts)
    );
    assert_eq!(
        t(&totals.runs) + t(&totals.cancels),
        t(&totals.claims),
        "seed {seed}: items lost"
    );
    assert!(t(&totals.claims) > 0 && t(&totals.kthreads) > 0);
}
