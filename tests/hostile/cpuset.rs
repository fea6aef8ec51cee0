//! cgroup-v1 cpusets (root only): a child process (re-exec of this binary)
//! is moved, before it runs a single instruction of its own, into a fresh
//! cpuset limited to CPU 0. Inside, the library must see only CPU 0:
//! `PerCpu::spawn` spawns for CPU 0 alone, `bind` / `Builder::cpu` /
//! `WorkerBuilder::cpu` of another CPU fail with `CpuNotAllowed`, unbound
//! kthreads and workers get affinity {0}. The cpuset is removed afterwards.
//! Skipped, with a line saying why, when not root or without a v1 cpuset
//! hierarchy. (`tests/taskset.rs` covers the start affinity.)

use super::common::{affinity_of, watchdog};
use super::{child_command, child_mode, run_child, seed, LIMIT};
use kthread::{Builder, Error, PerCpu, Worker};
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::time::Duration;

const TEST: &str = "cpuset::a_v1_cpuset_of_cpu_0_bounds_every_kthread";

/// The mount point of the cgroup-v1 hierarchy with the cpuset controller.
fn v1_cpuset_mount() -> Option<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let (fstype, _src, opts) = (r.next()?, r.next()?, r.next()?);
        (fstype == "cgroup" && opts.split(',').any(|o| o == "cpuset"))
            .then(|| left.split_whitespace().nth(4).map(str::to_owned))
            .flatten()
    })
}

/// Removes the cpuset directory when dropped (after the child has exited).
struct Cpuset(String);

impl Drop for Cpuset {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            eprintln!("could not remove cpuset {}: {e}", self.0);
        }
    }
}

#[test]
fn a_v1_cpuset_of_cpu_0_bounds_every_kthread() {
    let _w = watchdog(TEST, LIMIT);
    if child_mode().as_deref() == Some("cpuset") {
        return inside();
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root (creating a cpuset needs it)");
        return;
    }
    let Some(mount) = v1_cpuset_mount() else {
        eprintln!("skipped: no cgroup-v1 cpuset hierarchy mounted");
        return;
    };
    // Our own cpuset: the child's goes beneath it.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            ctrl.split(',')
                .any(|c| c == "cpuset")
                .then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/".into());
    let parent = format!("{mount}{}", own.trim_end_matches('/'));
    let cpus = std::fs::read_to_string(format!("{parent}/cpuset.effective_cpus"))
        .or_else(|_| std::fs::read_to_string(format!("{parent}/cpuset.cpus")))
        .unwrap_or_default();
    if !cpus
        .split(',')
        .any(|r| r.trim().split('-').next() == Some("0"))
    {
        eprintln!("skipped: CPU 0 is not in our cpuset ({})", cpus.trim());
        return;
    }
    let dir = format!("{parent}/kthread-hostile-{}", std::process::id());
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("skipped: cannot create a cpuset under {parent}: {e}");
        return;
    }
    let cpuset = Cpuset(dir);
    let mems = std::fs::read_to_string(format!("{parent}/cpuset.mems")).unwrap();
    std::fs::write(format!("{}/cpuset.cpus", cpuset.0), "0").unwrap();
    std::fs::write(format!("{}/cpuset.mems", cpuset.0), mems.trim()).unwrap();
    let procs = CString::new(format!("{}/cgroup.procs", cpuset.0)).unwrap();
    let seed = seed(TEST);
    let mut cmd = child_command(TEST, "cpuset", seed);
    // SAFETY: the hook only calls open/write/close (async-signal-safe) on
    // memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" means the writer itself (cgroup v1).
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n != 1 {
                return Err(err);
            }
            Ok(())
        });
    }
    let run = run_child(cmd, LIMIT - Duration::from_secs(5));
    run.assert_ok(TEST);
    assert!(
        run.output.contains("hostile-child: ok"),
        "child did not finish:\n{}",
        run.output
    );
    drop(cpuset);
}

/// In the child, inside a cpuset of CPU 0.
fn inside() {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(own.contains("kthread-hostile-"), "not in the cpuset: {own}");
    assert_eq!(affinity_of(0), vec![0], "the kernel limited us to CPU 0");
    let set = PerCpu::spawn("hz-cs/%u", |c| c).unwrap();
    assert_eq!(set.cpus(), vec![0], "PerCpu spawns for CPU 0 only");
    for (c, r) in set.stop() {
        assert_eq!(r.unwrap(), c);
    }
    let k = kthread::create("hz-cs-unbound", || ()).unwrap();
    assert_eq!(
        affinity_of(k.task().tid()),
        vec![0],
        "an unbound kthread gets CPU 0"
    );
    assert!(matches!(k.bind(1), Err(Error::CpuNotAllowed(1))));
    assert!(matches!(k.bind_mask(&[0, 1]), Err(Error::CpuNotAllowed(1))));
    assert!(!k.task().is_bound());
    k.bind(0).unwrap();
    k.wake_up();
    k.stop().unwrap();
    let e = Builder::new("hz-cs-cpu1").cpu(1).create(|| ()).unwrap_err();
    assert!(matches!(e, Error::CpuNotAllowed(1)), "{e:?}");
    let e = Worker::builder("hz-cs-w1").cpu(1).create().unwrap_err();
    assert!(matches!(e, Error::CpuNotAllowed(1)), "{e:?}");
    let w = Worker::new("hz-cs-w").unwrap();
    assert_eq!(affinity_of(w.task().tid()), vec![0], "a worker gets CPU 0");
    w.destroy();
    println!("hostile-child: ok");
}
