//! The sizes and alignments the header promises, checked at compile time.
//!
//! `include/kthread.h` declares `struct kthread_work`, `struct
//! kthread_delayed_work` and `struct completion` with the same fields, in
//! the same order, as the Rust `RawWork`, `RawDelayedWork` and `Completion`
//! (all `repr(C)`), and `struct kthread_worker` as opaque bytes of the size
//! and alignment of `RawWorker`, so C can embed them in its own structures
//! and initialise them statically (all-zero is valid for each). The header
//! checks its side with `_Static_assert`; this module checks the Rust side
//! against the same numbers, and its tests check that the numbers are the
//! header's. A change of these Rust types fails the build here: update the
//! numbers in both places.

use kthread_rs::worker::raw::{RawDelayedWork, RawWork, RawWorker};
use kthread_rs::Completion;
use std::mem::{align_of, size_of};

/// `KTHREAD_NR_CPUS`: the CPUs a `struct cpumask` can name (`CPU_SETSIZE`).
pub(crate) const NR_CPUS: usize = 1024;
const BITS_PER_LONG: usize = std::ffi::c_ulong::BITS as usize;

/// `struct cpumask`: a bitmap of CPU numbers below `KTHREAD_NR_CPUS`.
#[repr(C)]
pub struct CpuMask {
    bits: [std::ffi::c_ulong; NR_CPUS / BITS_PER_LONG],
}

impl CpuMask {
    /// The CPU numbers in the mask, ascending.
    pub(crate) fn cpus(&self) -> Vec<usize> {
        (0..NR_CPUS)
            .filter(|&c| self.bits[c / BITS_PER_LONG] & (1 << (c % BITS_PER_LONG)) != 0)
            .collect()
    }
}

/// `sizeof`/`_Alignof` of the header's types (`KTHREAD_SIZEOF_*`, `KTHREAD_ALIGNOF_*`).
pub(crate) const SIZEOF_WORKER: usize = 192;
pub(crate) const ALIGNOF_WORKER: usize = 64;
pub(crate) const SIZEOF_WORK: usize = 48;
pub(crate) const ALIGNOF_WORK: usize = 8;
pub(crate) const SIZEOF_DELAYED_WORK: usize = 56;
pub(crate) const ALIGNOF_DELAYED_WORK: usize = 8;
pub(crate) const SIZEOF_COMPLETION: usize = 4;
pub(crate) const ALIGNOF_COMPLETION: usize = 4;
pub(crate) const SIZEOF_CPUMASK: usize = 128;

const _: () = assert!(
    size_of::<usize>() == 8,
    "the C ABI is for 64-bit targets (x86-64, aarch64)"
);
const _: () = assert!(size_of::<RawWorker>() == SIZEOF_WORKER);
const _: () = assert!(align_of::<RawWorker>() == ALIGNOF_WORKER);
const _: () = assert!(size_of::<RawWork>() == SIZEOF_WORK);
const _: () = assert!(align_of::<RawWork>() == ALIGNOF_WORK);
const _: () = assert!(size_of::<RawDelayedWork>() == SIZEOF_DELAYED_WORK);
const _: () = assert!(align_of::<RawDelayedWork>() == ALIGNOF_DELAYED_WORK);
const _: () = assert!(size_of::<Completion>() == SIZEOF_COMPLETION);
const _: () = assert!(align_of::<Completion>() == ALIGNOF_COMPLETION);
const _: () = assert!(size_of::<CpuMask>() == SIZEOF_CPUMASK);
// `wait_queue_head_t` and `struct wait_queue_entry` (asserted in the header too).
const _: () = assert!(size_of::<kthread_rs::WaitQueue>() == 24);
const _: () = assert!(align_of::<kthread_rs::WaitQueue>() == 8);
const _: () = assert!(size_of::<kthread_rs::wait::WaitEntry>() == 32);
const _: () = assert!(align_of::<kthread_rs::wait::WaitEntry>() == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    /// The header's `struct kthread_work`, field for field.
    #[repr(C)]
    struct CWork {
        state: usize,
        next: *mut c_void,
        prev: *mut c_void,
        func: Option<unsafe extern "C" fn(*mut RawWork)>,
        release: *mut c_void,
        canceling: u32,
        whence: u32,
    }

    /// The header's `struct kthread_delayed_work`.
    #[repr(C)]
    struct CDelayedWork {
        work: CWork,
        deadline: u64,
    }

    fn bytes<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a live `T`; every type compared here
        // is repr(C) with no padding, so all bytes are initialised.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
    }

    unsafe extern "C" fn f(_: *mut RawWork) {}

    fn c_work() -> CWork {
        CWork {
            state: 0,
            next: std::ptr::null_mut(),
            prev: std::ptr::null_mut(),
            func: Some(f),
            release: std::ptr::null_mut(),
            canceling: 0,
            whence: 0,
        }
    }

    /// `KTHREAD_WORK_INIT(w, f)` in C gives the bytes of `RawWork::new(Some(f))`:
    /// `func` sits where the header says and everything else starts zero.
    #[test]
    fn static_work_initialiser_matches_rust() {
        assert_eq!(size_of::<CWork>(), SIZEOF_WORK);
        assert_eq!(bytes(&c_work()), bytes(&RawWork::new(Some(f))));
        let d = CDelayedWork {
            work: c_work(),
            deadline: 0,
        };
        assert_eq!(size_of::<CDelayedWork>(), SIZEOF_DELAYED_WORK);
        assert_eq!(bytes(&d), bytes(&RawDelayedWork::new(Some(f))));
        assert_eq!(bytes(&Completion::new()), vec![0; SIZEOF_COMPLETION]);
    }

    /// The numbers above are the header's.
    #[test]
    fn header_agrees() {
        let header = include_str!("../include/kthread.h");
        let define = |name: &str| -> usize {
            let line = header
                .lines()
                .find(|l| l.split_whitespace().take(2).eq(["#define", name]))
                .unwrap_or_else(|| panic!("kthread.h lacks #define {name}"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        assert_eq!(define("KTHREAD_SIZEOF_WORKER"), SIZEOF_WORKER);
        assert_eq!(define("KTHREAD_ALIGNOF_WORKER"), ALIGNOF_WORKER);
        assert_eq!(define("KTHREAD_SIZEOF_WORK"), SIZEOF_WORK);
        assert_eq!(define("KTHREAD_ALIGNOF_WORK"), ALIGNOF_WORK);
        assert_eq!(define("KTHREAD_SIZEOF_DELAYED_WORK"), SIZEOF_DELAYED_WORK);
        assert_eq!(define("KTHREAD_ALIGNOF_DELAYED_WORK"), ALIGNOF_DELAYED_WORK);
        assert_eq!(define("KTHREAD_SIZEOF_COMPLETION"), SIZEOF_COMPLETION);
        assert_eq!(define("KTHREAD_ALIGNOF_COMPLETION"), ALIGNOF_COMPLETION);
        assert_eq!(define("KTHREAD_NR_CPUS"), NR_CPUS);
        assert_eq!(define("HZ"), crate::HZ as usize);
    }

    #[test]
    fn cpumask_bits() {
        let mut m = CpuMask {
            bits: [0; NR_CPUS / BITS_PER_LONG],
        };
        assert!(m.cpus().is_empty());
        m.bits[0] = 0b101;
        m.bits[1] = 1;
        assert_eq!(m.cpus(), vec![0, 2, 64]);
    }
}
