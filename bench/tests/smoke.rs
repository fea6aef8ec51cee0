//! Every pair runs to completion on a tiny count and reports a positive figure.
//!
//! No timing is asserted (the figures belong to the `kthread-bench` table);
//! this only proves the harness neither hangs nor panics, pinned or not.

use kthread_bench::{sys, timed, Measure, Pin, Placement, PAIRS};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `f` on another thread and fails with a message if it takes over `secs`.
fn within<T: Send + 'static>(what: &str, secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

fn placements() -> Vec<Pin> {
    let cpus = sys::allowed_cpus();
    let mut v = vec![
        Pin::Off,
        Pin::On {
            main: cpus[0],
            other: cpus[0],
        },
    ];
    if cpus.len() > 1 {
        v.push(Pin::On {
            main: cpus[0],
            other: cpus[1],
        });
    }
    v
}

#[test]
fn every_timed_pair_runs() {
    for pair in PAIRS {
        let Measure::Time { kthread, peer, .. } = pair.measure else {
            continue;
        };
        // Split pairs run unpinned and on two CPUs; latency pairs also on one.
        let pins = match pair.placement {
            Placement::Latency => placements(),
            Placement::Split => placements()
                .into_iter()
                .filter(|p| !matches!(*p, Pin::On { main, other } if main == other))
                .collect(),
            Placement::Free => vec![Pin::Off],
        };
        for pin in pins {
            // Small counts, but enough for two producers and a ring lap.
            let n = 2_000;
            let n = if pair.placement == Placement::Latency || pair.name.starts_with("create") {
                3
            } else {
                n
            };
            for (side, f) in [("kthread", kthread), ("peer", peer)] {
                let what = format!("{} {side} {pin:?}", pair.name);
                let d = within(&what, 60, move || timed(pin, || f(n, pin)));
                assert!(d > Duration::ZERO, "{what}: measured nothing");
            }
        }
    }
}

#[test]
fn rss_pair_runs() {
    for pair in PAIRS {
        let Measure::Bytes { kthread, peer, .. } = pair.measure else {
            continue;
        };
        for (side, f) in [("kthread", kthread), ("peer", peer)] {
            let what = format!("{} {side}", pair.name);
            let bytes = within(&what, 60, move || f(20));
            assert!(bytes.is_finite(), "{what}: {bytes}");
        }
    }
}
