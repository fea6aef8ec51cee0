//! CPUs and NUMA nodes, read from sysfs and the process's cgroup.

use super::sched::{CpuSet, MAX_CPUS};
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

/// Every CPU this process may run on: the cgroup's effective cpuset, within
/// the online CPUs. This is the "full affinity" kthreads are given.
pub(crate) fn allowed_cpus() -> CpuSet {
    let online = online_cpus();
    let cpuset = fs::read_to_string("/proc/self/cgroup").ok().and_then(|cg| {
        let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?.to_owned();
        read_list(&format!(
            "/sys/fs/cgroup{}/cpuset.cpus.effective",
            path.trim_end()
        ))
    });
    let mut set = CpuSet::empty();
    for cpu in online.into_iter().filter(|&c| c < MAX_CPUS) {
        if cpuset.as_ref().map_or(true, |l| l.contains(&cpu)) {
            set.insert(cpu);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn parses_kernel_lists() {
        assert_eq!(parse_list("0-3,5,7-8\n"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
        assert_eq!(parse_list("0"), Some(vec![0]));
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }
}
