//! NUMA memory policy of the calling thread and of its stack.
//!
//! On kernels built without NUMA the calls fail with ENOSYS; that machine has
//! one node, so "default policy" and "prefer node 0" both already hold.

use super::cvt_long;
use std::io;

const MPOL_DEFAULT: libc::c_long = 0;
const MPOL_PREFERRED: libc::c_long = 1;
/// Bits in the node masks passed to the kernel.
const MAX_NODES: usize = 1024;

fn node_mask(node: usize) -> [libc::c_ulong; MAX_NODES / 64] {
    let mut mask = [0; MAX_NODES / 64];
    mask[node / 64] |= 1 << (node % 64);
    mask
}

fn no_numa(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSYS)
}

/// Resets the calling thread to the default memory policy.
pub(crate) fn set_default() -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    super::fault::check(super::fault::Point::Mempolicy)?;
    // SAFETY: MPOL_DEFAULT takes no node mask.
    match cvt_long(unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_DEFAULT,
            std::ptr::null::<u64>(),
            0,
        )
    }) {
        Err(e) if !no_numa(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Makes the calling thread's allocations, and the pages of `stack`, prefer `node`.
pub(crate) fn prefer_node(node: usize, stack: (usize, usize)) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    super::fault::check(super::fault::Point::Mempolicy)?;
    if node >= MAX_NODES {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mask = node_mask(node);
    // SAFETY: `mask` holds MAX_NODES bits and lives across the call.
    let r = cvt_long(unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_PREFERRED,
            mask.as_ptr(),
            MAX_NODES + 1,
        )
    });
    match r {
        Err(e) if no_numa(&e) => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let page = 4096;
    let start = stack.0 & !(page - 1);
    let len = (stack.0 + stack.1 - start) & !(page - 1);
    // SAFETY: [start, start+len) is this thread's own mapped stack, page
    // aligned; MPOL_PREFERRED with flags 0 only changes placement policy.
    match cvt_long(unsafe {
        libc::syscall(
            libc::SYS_mbind,
            start,
            len,
            MPOL_PREFERRED,
            mask.as_ptr(),
            MAX_NODES + 1,
            0,
        )
    }) {
        Err(e) if !no_numa(&e) => Err(e),
        _ => Ok(()),
    }
}
