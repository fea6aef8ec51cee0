//! Fault injection (feature `fault-injection`): make chosen OS calls fail.
//!
//! Each [`Point`] has a budget of failures; while it is non-zero the next
//! call at that point fails with the armed errno and the budget drops by one.
//! Tests use it to show that failures come back to the caller and leave
//! nothing behind.
//!
//! **For tests only, and outside semver**: this module may change or go in
//! any release, and a program must not enable the feature outside its
//! tests (an armed point fails every kthread creation of the process).
//!
//! ```
//! use kthread::fault::{self, Point};
//! fault::arm(Point::Spawn, 1, libc::EAGAIN);
//! let err = kthread::create("doomed", || ()).unwrap_err();
//! assert_eq!(err.errno(), libc::EAGAIN);
//! assert!(kthread::create("fine", || ()).is_ok());
//! ```

use crate::sync::{Ordering, StaticAtomicI32 as AtomicI32, StaticAtomicU32 as AtomicU32};
use std::io;

/// A place where a failure can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Point {
    /// kthreadd's creation of the OS thread (`pthread_create`).
    Spawn,
    /// Setting a thread's CPU affinity.
    Affinity,
    /// Setting a thread's NUMA memory policy.
    Mempolicy,
}

const POINTS: usize = 3;
static BUDGET: [AtomicU32; POINTS] = [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)];
static ERRNO: [AtomicI32; POINTS] = [AtomicI32::new(0), AtomicI32::new(0), AtomicI32::new(0)];
static INJECTED: AtomicU32 = AtomicU32::new(0);

fn idx(p: Point) -> usize {
    match p {
        Point::Spawn => 0,
        Point::Affinity => 1,
        Point::Mempolicy => 2,
    }
}

/// Makes the next `times` calls at `point` fail with `errno`.
///
/// ```
/// kthread::fault::arm(kthread::fault::Point::Mempolicy, 0, libc::ENOMEM);
/// ```
pub fn arm(point: Point, times: u32, errno: i32) {
    ERRNO[idx(point)].store(errno, Ordering::SeqCst);
    BUDGET[idx(point)].store(times, Ordering::SeqCst);
}

/// How many failures have been injected so far in this process.
///
/// ```
/// let _ = kthread::fault::injected();
/// ```
pub fn injected() -> u32 {
    INJECTED.load(Ordering::SeqCst)
}

pub(crate) fn check(point: Point) -> io::Result<()> {
    let i = idx(point);
    let took = BUDGET[i].fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1));
    if took.is_ok() {
        INJECTED.fetch_add(1, Ordering::SeqCst);
        return Err(io::Error::from_raw_os_error(
            ERRNO[i].load(Ordering::SeqCst),
        ));
    }
    Ok(())
}
