//! Scheduling policy and nice value before the first instruction (the
//! "Real processes" issue, part 2). Real-time policies need
//! `CAP_SYS_NICE`: as root (CI) they are set and read back; elsewhere the
//! error path is checked instead. The unprivileged path is checked in a
//! child that became `nobody`.

mod common;

use common::{await_child_exit, reap_child, watchdog, WATCHDOG};
use kthread::{Builder, Error, Policy, Worker};
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// What the thread itself reads with the raw calls, on its first line.
fn own_sched() -> (i32, i32, i32) {
    // SAFETY: plain calls on the calling thread.
    unsafe {
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut param);
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        (libc::sched_getscheduler(0), param.sched_priority, nice)
    }
}

#[test]
fn each_policy_is_in_force_on_the_functions_first_line() -> Result<(), Box<dyn std::error::Error>> {
    let _w = watchdog("policies", WATCHDOG);
    let mut cases = vec![
        (Policy::Normal, None, (libc::SCHED_OTHER, 0)),
        (Policy::Batch, Some(7), (libc::SCHED_BATCH, 0)),
        (Policy::Idle, None, (libc::SCHED_IDLE, 0)),
    ];
    if is_root() {
        cases.push((Policy::Fifo(50), None, (libc::SCHED_FIFO, 50)));
        cases.push((Policy::RoundRobin(3), None, (libc::SCHED_RR, 3)));
        cases.push((Policy::Normal, Some(-5), (libc::SCHED_OTHER, 0)));
    } else {
        eprintln!("not root: real-time policies and negative nice checked as refusals only");
    }
    for (policy, nice, (raw, prio)) in cases {
        let mut b = Builder::new("pol-check").policy(policy);
        if let Some(n) = nice {
            b = b.nice(n);
        }
        let k = b.run(own_sched)?;
        let task = k.task().clone();
        let (got_policy, got_prio, got_nice) = k.stop()?;
        assert_eq!((got_policy, got_prio), (raw, prio), "{policy:?}");
        if !policy.is_realtime() {
            assert_eq!(got_nice, nice.unwrap_or(0), "{policy:?} nice");
        }
        // After the exit the last seen values stay readable.
        let _ = (task.policy(), task.nice());
    }
    Ok(())
}

#[test]
fn out_of_range_values_are_refused_before_anything_is_created() {
    let named_bad = || kthread::list().iter().filter(|r| r.name == "bad").count();
    for p in [Policy::Fifo(0), Policy::Fifo(100), Policy::RoundRobin(200)] {
        assert!(matches!(
            Builder::new("bad").policy(p).create(|| ()),
            Err(Error::InvalidPriority(_))
        ));
    }
    for n in [-21, 20, i32::MIN] {
        assert!(matches!(
            Builder::new("bad").nice(n).create(|| ()),
            Err(Error::InvalidPriority(v)) if v == n
        ));
        assert!(matches!(
            Worker::builder("bad").nice(n).create(),
            Err(Error::InvalidPriority(_))
        ));
    }
    assert_eq!(named_bad(), 0, "nothing left behind");
}

#[test]
fn a_task_changes_policy_and_nice_later_and_ps_shows_them() -> Result<(), Box<dyn std::error::Error>>
{
    let k = kthread::create("pol-later", || ())?;
    k.task().set_policy(Policy::Batch)?;
    k.task().set_nice(12)?;
    assert_eq!(k.task().policy(), Policy::Batch);
    assert_eq!(k.task().nice(), 12);
    let row = kthread::list()
        .into_iter()
        .find(|r| r.tid == k.task().tid())
        .expect("listed");
    assert_eq!((row.policy, row.nice), (Policy::Batch, 12));
    let table = kthread::ps().to_string();
    let line = table.lines().find(|l| l.contains("pol-later")).unwrap();
    assert!(line.contains(" B ") && line.contains(" 12 "), "{line}");
    let w = Worker::builder("pol-worker")
        .policy(Policy::Idle)
        .nice(3)
        .create()?;
    assert_eq!((w.task().policy(), w.task().nice()), (Policy::Idle, 3));
    let _ = k.stop();
    Ok(())
}

#[test]
fn without_privilege_a_real_time_policy_is_a_clear_error_and_leaves_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to become nobody in a child");
        return;
    }
    let _w = watchdog("unprivileged", WATCHDOG);
    // SAFETY: the child only makes async-signal-safe calls until it has
    // dropped privilege, then uses the library afresh (fork support).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // The limits a distribution gives ordinary users: no real-time
        // priority, no nice below 0.
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain calls in the child with valid arguments.
        let ok = unsafe {
            libc::setrlimit(libc::RLIMIT_RTPRIO, &zero) == 0
                && libc::setrlimit(libc::RLIMIT_NICE, &zero) == 0
                && libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(65534) == 0
                && libc::setuid(65534) == 0
        };
        let code = if !ok {
            3
        } else {
            let kthreads = || kthread::list().iter().filter(|r| !r.flags.kthreadd).count();
            let before = kthreads();
            let r = Builder::new("rt").policy(Policy::Fifo(10)).create(|| ());
            let lower = Builder::new("nice").nice(-10).create(|| ());
            match (r, lower) {
                (Err(Error::PolicyNotPermitted(_)), Err(Error::PolicyNotPermitted(_)))
                    if kthreads() == before =>
                {
                    0
                }
                (r, lower) => {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "child: {:?} / {:?}",
                        r.map(drop),
                        lower.map(drop)
                    );
                    1
                }
            }
        };
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    assert!(
        !await_child_exit(pid, Duration::from_secs(20)),
        "child hung: killed"
    );
    assert_eq!(
        reap_child(pid),
        0,
        "child: 1 = not refused cleanly, 3 = could not drop privilege"
    );
}
