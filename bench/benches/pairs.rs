//! The timed pairs of `kthread_bench::PAIRS` under criterion: one group per
//! pair, with a `kthread` and a `peer` function, so criterion's report shows
//! both figures side by side. `rss_per_thread` measures bytes, not time, and
//! is left to the `kthread-bench` binary.

use criterion::{criterion_group, criterion_main, Criterion};
use kthread_bench::{Measure, Pin, PAIRS};
use std::time::Duration;

fn pairs(c: &mut Criterion) {
    kthread::kthreadd::start().expect("start kthreadd");
    for pair in PAIRS {
        let Measure::Time { kthread, peer, .. } = pair.measure else {
            continue;
        };
        let mut g = c.benchmark_group(pair.name);
        g.bench_function("kthread", |b| b.iter_custom(|n| kthread(n, Pin::Off)));
        g.bench_function("peer", |b| b.iter_custom(|n| peer(n, Pin::Off)));
        g.finish();
    }
}

fn config() -> Criterion {
    // Short enough that the whole suite stays within a few minutes on 2 vCPUs.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pairs
}
criterion_main!(benches);
