//! Per-thread figures from `/proc/self/task/TID/stat`.

use std::time::Duration;

/// What the registry shows of a thread from procfs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadStat {
    /// CPU the thread last ran on.
    pub last_cpu: usize,
    /// User plus system CPU time.
    pub cpu_time: Duration,
}

/// Reads one thread's stat line; `None` once the thread is gone.
pub(crate) fn thread_stat(tid: libc::pid_t) -> Option<ThreadStat> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    parse_stat(&text)
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
}
