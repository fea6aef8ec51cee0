//! Detached kthreads that end on their own free everything at exit: 100,000
//! of them leave resident memory, the mapping count and the thread count
//! flat, and creation never fails (the "Real processes" issue, part 4).

mod common;

use common::{wait_briefly_until, watchdog};
use std::time::Duration;

fn status_field(name: &str) -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(-1)
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("maps")
        .lines()
        .count()
}

#[test]
fn a_hundred_thousand_detached_self_ending_kthreads_leave_nothing() {
    let _w = watchdog("self_ending", Duration::from_secs(120));
    let spawn = |i: u32| {
        kthread::run(&format!("self-end/{i}"), || ())
            .map(kthread::Kthread::detach)
            .map(drop)
    };
    for i in 0..2_000 {
        spawn(i).expect("warm-up create");
    }
    let settle = |n: i64| {
        wait_briefly_until("threads end", Duration::from_secs(30), || {
            status_field("Threads") <= n
        })
    };
    // The test harness's own threads, kthreadd, its spares and this one.
    settle(8 + kthread::kthreadd::cache_stats().target as i64);
    let threads0 = status_field("Threads");
    let (rss0, maps0) = (status_field("VmRSS"), map_count());
    let mut failed = 0;
    for i in 0..100_000 {
        if spawn(i).is_err() {
            failed += 1;
        }
    }
    // kthreadd's spares may be more now than when threads0 was read (a
    // refill was on its way): at most its cache size more.
    settle(threads0 + kthread::kthreadd::cache_stats().target as i64);
    let (rss1, maps1) = (status_field("VmRSS"), map_count());
    println!("VmRSS {rss0} -> {rss1} kB, maps {maps0} -> {maps1}, threads {threads0}");
    assert_eq!(failed, 0, "creation failed");
    assert!(maps1 < maps0 + 64, "mappings grew: {maps0} -> {maps1}");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "resident memory grew: {rss0} -> {rss1} kB"
    );
}
