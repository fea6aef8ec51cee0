//! Per-thread figures: `/proc/self/task/TID/stat` and `status`, and the
//! thread's CPU clock.

use std::time::Duration;

/// What the registry shows of a thread from procfs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadStat {
    /// CPU the thread last ran on.
    pub last_cpu: usize,
    /// User plus system CPU time: from the thread's CPU clock (exact to
    /// the nanosecond), else `stat`'s clock ticks (10 ms steps).
    pub cpu_time: Duration,
    /// Context switches the thread made by sleeping (`voluntary_ctxt_switches`).
    pub voluntary_switches: u64,
    /// Times it was preempted (`nonvoluntary_ctxt_switches`).
    pub involuntary_switches: u64,
}

/// Reads one thread's stat line; `None` once the thread is gone.
pub(crate) fn thread_stat(tid: libc::pid_t) -> Option<ThreadStat> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let mut st = parse_stat(&text)?;
    if let Some(t) = thread_cpu_clock(tid) {
        st.cpu_time = t;
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) {
        let (v, i) = parse_switches(&status);
        st.voluntary_switches = v;
        st.involuntary_switches = i;
    }
    Some(st)
}

/// The CPU time of thread `tid` of this process from its CPU clock: the
/// clock id glibc's `pthread_getcpuclockid` makes (`MAKE_THREAD_CPUCLOCK(tid,
/// CPUCLOCK_SCHED)`), which needs no `pthread_t`.
fn thread_cpu_clock(tid: libc::pid_t) -> Option<Duration> {
    let clock = (!(tid as libc::clockid_t) << 3) | 4 | 2;
    // SAFETY: clock_gettime writes the timespec it is given.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above; an id of a gone thread fails with EINVAL.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of a status file.
fn parse_switches(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim_start_matches(':').trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches"),
        field("nonvoluntary_ctxt_switches"),
    )
}

fn parse_stat(text: &str) -> Option<ThreadStat> {
    // The name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `f[0]` is field 3 (state); field N is f[N - 3].
    let ticks = clock_ticks();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let total = utime + stime;
    Some(ThreadStat {
        last_cpu: f.get(36)?.parse().ok()?,
        cpu_time: Duration::from_secs(total / ticks)
            + Duration::from_nanos((total % ticks) * 1_000_000_000 / ticks),
        voluntary_switches: 0,
        involuntary_switches: 0,
    })
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer name and returns a number.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_stat_line_with_odd_name() {
        // Fields 3.. after the name: state, then 11 zeros up to utime (14).
        let mut f = vec!["0"; 41];
        f[0] = "S";
        f[11] = "250"; // utime (field 14)
        f[12] = "50"; // stime (field 15)
        f[36] = "1"; // processor (field 39)
        let line = format!("123 (a) b (c)) {}\n", f.join(" "));
        let s = super::parse_stat(&line).unwrap();
        assert_eq!(s.last_cpu, 1);
        assert_eq!(s.cpu_time, std::time::Duration::from_secs(3));
    }

    #[test]
    fn parses_the_context_switch_counts() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(super::parse_switches(status), (17, 3));
    }

    #[test]
    fn the_cpu_clock_of_this_thread_moves() {
        let tid = crate::sys::sched::gettid();
        let a = super::thread_cpu_clock(tid).expect("own clock");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let b = super::thread_cpu_clock(tid).expect("own clock");
        assert!(b > a, "{a:?} then {b:?}");
        let gone = std::thread::spawn(crate::sys::sched::gettid)
            .join()
            .unwrap();
        // `join` returns when the kernel clears the thread's tid, a moment
        // before it releases the task (and its clock): bounded wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while super::thread_cpu_clock(gone).is_some() {
            assert!(std::time::Instant::now() < deadline, "a thread that ended");
            std::thread::yield_now();
        }
    }
}
