//! Valgrind client requests that tell Helgrind and DRD about a happens-before
//! edge the tools cannot see (only under `--cfg kthread_valgrind`).
//!
//! Every hand-off of the crate is a Rust atomic plus a raw futex, and the
//! tools see ordering only at pthread calls. `scripts/valgrind.sh` builds with
//! `--cfg kthread_valgrind`, under which the types of `crate::sync` call
//! [`happens_before`] before each releasing operation on an object and
//! [`happens_after`] after each acquiring one. These are the requests behind
//! `ANNOTATE_HAPPENS_BEFORE` / `ANNOTATE_HAPPENS_AFTER` of `helgrind.h`
//! (`_VG_USERREQ__HG_USERSO_SEND_PRE` / `_RECV_POST`); DRD implements the
//! same two codes (`VG_USERREQ__DRD_ANNOTATE_HAPPENS_BEFORE` / `_AFTER` of
//! `drd.h` have the same values), so one request serves both tools.
//!
//! A client request is no OS call (natively it is a few no-op
//! instructions), so it lives here beside the wrappers that issue it, and
//! `sync` needs nothing above it.
//!
//! Outside Valgrind a client request is a handful of register rotations that
//! change nothing. On architectures other than x86-64 the functions do
//! nothing at all.

/// `VG_USERREQ_TOOL_BASE('H', 'G')`, the base of Helgrind's request codes.
const HG_BASE: usize = ((b'H' as usize) << 24) | ((b'G' as usize) << 16);
/// `_VG_USERREQ__HG_USERSO_SEND_PRE` (= `VG_USERREQ__DRD_ANNOTATE_HAPPENS_BEFORE`).
const HAPPENS_BEFORE: usize = HG_BASE + 256 + 33;
/// `_VG_USERREQ__HG_USERSO_RECV_POST` (= `VG_USERREQ__DRD_ANNOTATE_HAPPENS_AFTER`).
const HAPPENS_AFTER: usize = HG_BASE + 256 + 34;
/// `_VG_USERREQ__HG_USERSO_FORGET_ALL` (Helgrind only; DRD drops its
/// record of an object by itself when the object's memory is freed).
const FORGET: usize = HG_BASE + 256 + 35;

/// Everything this thread did so far happens before whatever a later
/// [`happens_after`] with the same `tag` is followed by, on any thread.
///
/// `tag` names the synchronisation object, by convention the address of
/// the atomic or lock that carries the edge; it is never dereferenced.
#[inline]
pub(crate) fn happens_before(tag: usize) {
    request(HAPPENS_BEFORE, tag);
}

/// Whatever this thread does from now on happens after every earlier
/// [`happens_before`] with the same `tag`, on any thread.
#[inline]
pub(crate) fn happens_after(tag: usize) {
    request(HAPPENS_AFTER, tag);
}

/// The object named `tag` is gone: drop what the tool remembers about it.
///
/// Helgrind keeps a clock per tag for ever; without this, every freed
/// atomic would leave one behind (its cost grows with them), and a new
/// object at the same address would inherit the old one's edges.
#[inline]
pub(crate) fn forget(tag: usize) {
    request(FORGET, tag);
}

/// Issues a client request with one argument; its result is not needed.
#[cfg(target_arch = "x86_64")]
#[inline]
fn request(code: usize, arg: usize) {
    let args: [usize; 6] = [code, arg, 0, 0, 0, 0];
    // SAFETY: this is the amd64 client-request sequence of valgrind.h. The
    // four rotations of %rdi add up to 128 bits, so natively they leave every
    // register as it was except the flags (not `preserves_flags`; %rdi is
    // declared clobbered all the same), and `xchg %rbx,%rbx` is a no-op.
    // Under Valgrind the sequence is recognised and replaced by the request:
    // the tool reads the six words at %rax (`args`, alive and initialised
    // until the asm ends) and writes its result to %rdx. No stack is used.
    unsafe {
        core::arch::asm!(
            "rolq $3, %rdi",
            "rolq $13, %rdi",
            "rolq $61, %rdi",
            "rolq $51, %rdi",
            "xchgq %rbx, %rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0usize => _,
            out("rdi") _,
            options(att_syntax, nostack),
        );
    }
}

/// Client requests exist only for x86-64 here; elsewhere they do nothing.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn request(_code: usize, _arg: usize) {}
