//! Introspection: every live kthread (and kthreadd), as `ps` would show it.
//!
//! The top layer: it reads the task list (`task/list.rs`) and `/proc`, and
//! nothing below it depends on it.

use crate::sys::{procfs, sched};
use crate::task::{flags, list, Policy, Task, TaskState};
use std::fmt;
use std::time::Duration;

/// Flags of a task, as listed by [`list`].
///
/// ```
/// let k = kthread::create("flags", || ())?;
/// k.bind(0)?;
/// let info = kthread::list().into_iter().find(|i| i.tid == k.task().tid()).unwrap();
/// assert!(info.flags.bound);
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFlags {
    /// Affinity fixed by `bind` or a per-CPU set.
    pub bound: bool,
    /// Takes part in freezing.
    pub freezable: bool,
    /// Member of a per-CPU set.
    pub per_cpu: bool,
    /// This is kthreadd.
    pub kthreadd: bool,
    /// Runs a worker loop.
    pub worker: bool,
    /// A stop has been requested.
    pub should_stop: bool,
    /// A park has been requested.
    pub should_park: bool,
    /// Its blocking system calls can be interrupted: created with
    /// [`Builder::interrupt_on_stop`](crate::Builder::interrupt_on_stop),
    /// or it allowed a signal ([`allow_signal`](crate::allow_signal)).
    pub interruptible: bool,
    /// A signal sent to it ([`Task::send_signal`](crate::Task::send_signal))
    /// is pending (a stop, which also counts for `signal_pending()`, is
    /// `should_stop`).
    pub signal_pending: bool,
}

impl TaskFlags {
    fn of(t: &Task) -> TaskFlags {
        TaskFlags {
            interruptible: t.hooks().interruptible(),
            signal_pending: t.hooks().pending() != 0,
            ..TaskFlags::from_raw(t.flags().load())
        }
    }

    fn from_raw(f: u32) -> TaskFlags {
        TaskFlags {
            bound: f & flags::BOUND != 0,
            freezable: f & flags::FREEZABLE != 0,
            per_cpu: f & flags::PER_CPU != 0,
            kthreadd: f & flags::KTHREADD != 0,
            worker: f & flags::WORKER != 0,
            should_stop: f & flags::SHOULD_STOP != 0,
            should_park: f & flags::SHOULD_PARK != 0,
            interruptible: false,
            signal_pending: false,
        }
    }

    fn letters(self) -> String {
        [
            (self.kthreadd, 'K'),
            (self.worker, 'W'),
            (self.bound, 'B'),
            (self.per_cpu, 'C'),
            (self.freezable, 'Z'),
            (self.interruptible, 'i'),
            (self.signal_pending, 'g'),
            (self.should_park, 'p'),
            (self.should_stop, 's'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect::<String>()
    }
}

/// One row of [`list`]: a live kthread as `ps` would show it.
///
/// ```
/// let k = kthread::create("row", || ())?;
/// let row = kthread::list().into_iter().find(|i| i.name == "row").unwrap();
/// assert_eq!(row.state, kthread::TaskState::Uninterruptible);
/// assert!(!row.allowed_cpus.is_empty());
/// # Ok::<(), kthread::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskInfo {
    /// Full name.
    pub name: String,
    /// OS thread id.
    pub tid: i32,
    /// State word.
    pub state: TaskState,
    /// Flags.
    pub flags: TaskFlags,
    /// CPUs the thread may run on (`sched_getaffinity`).
    pub allowed_cpus: Vec<usize>,
    /// NUMA node asked for at creation.
    pub node: Option<usize>,
    /// CPU it last ran on (`/proc/self/task/TID/stat`).
    pub last_cpu: usize,
    /// User plus system CPU time (the thread's CPU clock: nanoseconds).
    pub cpu_time: Duration,
    /// Context switches by sleeping (`voluntary_ctxt_switches`).
    pub voluntary_switches: u64,
    /// Preemptions (`nonvoluntary_ctxt_switches`): many of these, and the
    /// thread competes for its CPU.
    pub involuntary_switches: u64,
    /// Scheduling policy (`sched_getscheduler`).
    pub policy: Policy,
    /// Nice value (`getpriority`).
    pub nice: i32,
    /// What could not be reset in its environment (e.g. nice without `CAP_SYS_NICE`).
    pub env_notes: Vec<String>,
}

/// Every live kthread and kthreadd, sorted by tid.
///
/// ```
/// let k = kthread::create("listed", || ())?;
/// let rows = kthread::list();
/// assert!(rows.iter().any(|r| r.flags.kthreadd && r.name == "kthreadd"));
/// assert!(rows.iter().any(|r| r.tid == k.task().tid()));
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn list() -> Vec<TaskInfo> {
    let tasks = list::snapshot();
    let mut out: Vec<TaskInfo> = tasks
        .iter()
        .filter_map(|t| {
            let tid = t.tid();
            let stat = procfs::thread_stat(tid)?;
            Some(TaskInfo {
                name: t.name().to_owned(),
                tid,
                state: t.state(),
                flags: TaskFlags::of(t),
                allowed_cpus: sched::affinity(tid).map(|s| s.to_vec()).unwrap_or_default(),
                node: t.node(),
                last_cpu: stat.last_cpu,
                cpu_time: stat.cpu_time,
                voluntary_switches: stat.voluntary_switches,
                involuntary_switches: stat.involuntary_switches,
                policy: t.policy(),
                nice: t.nice(),
                env_notes: t.env_notes(),
            })
        })
        .collect();
    out.sort_by_key(|i| i.tid);
    out
}

/// CPU time with three significant digits in a unit that fits (`812ns`,
/// `45.3µs`, `12.0ms`, `3.21s`): the clock is exact, the table is narrow.
fn cpu_time(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (v, unit) = if ns < 1e3 {
        return format!("{}ns", d.as_nanos());
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.digits$}{unit}")
}

/// A printable `ps`-like table of [`list`].
///
/// ```
/// let k = kthread::create("shown", || ())?;
/// let table = kthread::ps().to_string();
/// assert!(table.contains("kthreadd"));
/// assert!(table.contains("shown"));
/// assert!(table.contains("kthreadd/spare")); // the spare threads' line
/// # Ok::<(), kthread::Error>(())
/// ```
pub fn ps() -> Ps {
    Ps(list())
}

/// The table [`ps`] returns; print it with `{}`.
///
/// ```
/// println!("{}", kthread::ps());
/// ```
#[derive(Clone, Debug)]
pub struct Ps(pub Vec<TaskInfo>);

fn cpu_list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    out.join(",")
}

impl fmt::Display for Ps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>7}  {:<20} {:<2} {:<7} {:<4} {:>3} {:<8} {:>4} {:>4} {:>9} {:>13}",
            "TID", "NAME", "S", "FLAGS", "POL", "NI", "CPUS", "NODE", "LAST", "TIME", "CSW VOL/INV"
        )?;
        for i in &self.0 {
            writeln!(
                f,
                "{:>7}  {:<20} {:<2} {:<7} {:<4} {:>3} {:<8} {:>4} {:>4} {:>9} {:>13}{}",
                i.tid,
                i.name,
                i.state.letter(),
                i.flags.letters(),
                i.policy.to_string(),
                if i.policy.is_realtime() {
                    "-".to_owned()
                } else {
                    i.nice.to_string()
                },
                cpu_list(&i.allowed_cpus),
                i.node.map_or("-".to_owned(), |n| n.to_string()),
                i.last_cpu,
                cpu_time(i.cpu_time),
                format!("{}/{}", i.voluntary_switches, i.involuntary_switches),
                if i.env_notes.is_empty() {
                    String::new()
                } else {
                    format!("  ! {}", i.env_notes.join("; "))
                }
            )?;
        }
        // kthreadd's spares are not kthreads yet: one line for them all.
        let cache = crate::kthreadd::cache_stats();
        let tids = crate::kthreadd::spare_tids();
        writeln!(
            f,
            "{:>7}  kthreadd/spare: {} of {} waiting{}, {} KiB stacks; {} creates served, {} waited",
            "-",
            cache.spares,
            cache.target,
            if tids.is_empty() {
                String::new()
            } else {
                let t: Vec<_> = tids.iter().map(|t| t.to_string()).collect();
                format!(" (tids {})", t.join(" "))
            },
            cache.stack_size / 1024,
            cache.hits,
            cache.misses
        )?;
        write!(
            f,
            "(S: R run, S sleep, D uninterruptible, I idle, P parked, F frozen, X dead; \
             POL: TS normal, B batch, IDL idle, FF fifo, RR round-robin, with priority; \
             FLAGS: K kthreadd, W worker, B bound, C per-CPU, Z freezable, i interruptible, g signal pending, p should-park, s should-stop; \
             TIME: CPU time; CSW: context switches, voluntary (sleeps) / involuntary (preempted))"
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists_compress_ranges() {
        assert_eq!(super::cpu_list(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
        assert_eq!(super::cpu_list(&[]), "");
    }

    #[test]
    fn cpu_times_keep_three_significant_digits() {
        use std::time::Duration;
        assert_eq!(super::cpu_time(Duration::from_nanos(812)), "812ns");
        assert_eq!(super::cpu_time(Duration::from_nanos(45_300)), "45.3µs");
        assert_eq!(super::cpu_time(Duration::from_micros(1_234)), "1.23ms");
        assert_eq!(super::cpu_time(Duration::from_millis(120)), "120ms");
        assert_eq!(super::cpu_time(Duration::from_millis(3_210)), "3.21s");
    }
}
