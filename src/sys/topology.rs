//! CPUs and NUMA nodes, read from sysfs and the process's cgroup.

use super::sched::{self, CpuSet, MAX_CPUS};
use crate::sync::OnceLock;
use std::fs;

/// Parses the kernel's list format (`"0-3,5,7-8"`).
pub(crate) fn parse_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 20 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn read_list(path: &str) -> Option<Vec<usize>> {
    parse_list(&fs::read_to_string(path).ok()?)
}

/// Online NUMA nodes (`[0]` on a kernel without NUMA).
pub(crate) fn online_nodes() -> Vec<usize> {
    read_list("/sys/devices/system/node/online").unwrap_or_else(|| vec![0])
}

/// Online CPUs.
pub(crate) fn online_cpus() -> Vec<usize> {
    read_list("/sys/devices/system/cpu/online").unwrap_or_else(|| {
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
    })
}

/// Every CPU this process may use, defined once for the whole library:
/// the online CPUs, within the cgroup's cpuset (v2 `cpuset.cpus.effective`
/// or v1 `cpuset.effective_cpus`), within the affinity the process was
/// started with (`taskset -c 0 prog`: its main thread's, read on first use,
/// which kthreadd's start makes early). A creator thread's own later
/// affinity never enters it. This is the "full affinity" kthreads are
/// given, and what `bind`, `Builder::cpu` and per-CPU sets may use.
pub(crate) fn allowed_cpus() -> CpuSet {
    let cpuset = cgroup_cpuset();
    let start = start_affinity();
    let mut set = CpuSet::empty();
    for cpu in online_cpus().into_iter().filter(|&c| c < MAX_CPUS) {
        let in_cpuset = cpuset.as_ref().is_none_or(|l| l.contains(&cpu));
        let in_start = start.as_ref().is_none_or(|s| s.contains(cpu));
        if in_cpuset && in_start {
            set.insert(cpu);
        }
    }
    set
}

/// The main thread's affinity when first asked (the process's start affinity).
pub(crate) fn start_affinity() -> Option<CpuSet> {
    static START: OnceLock<Option<CpuSet>> = OnceLock::new();
    // The main thread's tid is the pid.
    *START.get_or_init(|| sched::affinity(std::process::id() as libc::pid_t).ok())
}

/// The CPUs of this process's cgroup cpuset, v2 or v1; `None` if unknown.
fn cgroup_cpuset() -> Option<Vec<usize>> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // v1: a line "N:...cpuset...:/path" names the cpuset hierarchy.
    let v1 = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == "cpuset")
            .then(|| path.trim_end().to_owned())
    });
    if let Some(path) = v1 {
        let dir = cgroup_dir(&mounts, "cgroup", Some("cpuset"), &path)
            .unwrap_or_else(|| format!("/sys/fs/cgroup/cpuset{path}"));
        return read_list(&format!("{dir}/cpuset.effective_cpus"))
            .or_else(|| read_list(&format!("{dir}/cpuset.cpus")));
    }
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_end();
    let dir = cgroup_dir(&mounts, "cgroup2", None, path)
        .unwrap_or_else(|| format!("/sys/fs/cgroup{path}"));
    read_list(&format!("{dir}/cpuset.cpus.effective"))
}

/// The directory of cgroup `path` under the mount of type `fstype` (with
/// super option `opt` for a v1 hierarchy), from `/proc/self/mountinfo`:
/// the mount point plus the part of `path` below the mount's root.
fn cgroup_dir(mountinfo: &str, fstype: &str, opt: Option<&str>, path: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split(' ');
        let (fs, _source, sopts) = (r.next()?, r.next()?, r.next().unwrap_or(""));
        if fs != fstype || opt.is_some_and(|o| !sopts.split(',').any(|s| s == o)) {
            return None;
        }
        let f: Vec<&str> = left.split(' ').collect();
        let (root, mount) = (*f.get(3)?, *f.get(4)?);
        let rel = if root == "/" {
            path
        } else {
            path.strip_prefix(root)?
        };
        Some(format!("{mount}{rel}").trim_end_matches('/').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::{cgroup_dir, parse_list};

    #[test]
    fn finds_cgroup_directories_in_mountinfo() {
        let mi = "29 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n\
                  30 25 0:27 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
                  31 25 0:28 /docker/abc /mnt/cpu rw - cgroup cgroup rw,cpu,cpuacct\n";
        assert_eq!(
            cgroup_dir(mi, "cgroup", Some("cpuset"), "/user/1").as_deref(),
            Some("/sys/fs/cgroup/cpuset/user/1")
        );
        assert_eq!(
            cgroup_dir(mi, "cgroup2", None, "/a.slice").as_deref(),
            Some("/sys/fs/cgroup/a.slice")
        );
        assert_eq!(
            cgroup_dir(mi, "cgroup", Some("cpu"), "/docker/abc/x").as_deref(),
            Some("/mnt/cpu/x")
        );
        assert_eq!(cgroup_dir(mi, "cgroup", Some("memory"), "/"), None);
    }

    #[test]
    fn parses_kernel_lists() {
        assert_eq!(parse_list("0-3,5,7-8\n"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
        assert_eq!(parse_list("0"), Some(vec![0]));
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }
}
