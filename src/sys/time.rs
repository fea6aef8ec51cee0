//! Monotonic time as the kernel sees it, for absolute futex deadlines.

use std::time::Duration;

/// A point on `CLOCK_MONOTONIC`, the clock futex deadlines are measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(Duration);

impl Deadline {
    /// The current time.
    pub(crate) fn now() -> Deadline {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
        let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        assert_eq!(ret, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
        Deadline(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// The time since boot (`CLOCK_MONOTONIC` itself).
    pub(crate) fn since_boot(self) -> Duration {
        self.0
    }

    /// `d` from now, saturating far in the future instead of overflowing.
    pub(crate) fn after(d: Duration) -> Deadline {
        let now = Self::now().0;
        Deadline(
            now.checked_add(d)
                .unwrap_or(Duration::from_secs(i64::MAX as u64 / 2)),
        )
    }

    /// Time left until the deadline (zero once passed).
    pub(crate) fn remaining(self) -> Duration {
        self.0.saturating_sub(Self::now().0)
    }

    /// Time since this point (zero if it is in the future).
    pub(crate) fn elapsed(self) -> Duration {
        Self::now().0.saturating_sub(self.0)
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(self) -> bool {
        Self::now() >= self
    }

    pub(crate) fn as_timespec(self) -> libc::timespec {
        libc::timespec {
            tv_sec: self.0.as_secs().min(i64::MAX as u64 / 2) as libc::time_t,
            tv_nsec: self.0.subsec_nanos() as libc::c_long,
        }
    }
}
