//! A daemon that forks while its kthreads run: quiesce them with a freeze,
//! fork, thaw. The child starts with no kthreads (kthreadd, the task list
//! and the freezer are per process) and creates its own worker.
//!
//! Run with `cargo run --example fork_daemon`.
//!
//! What the child must not do (until inherited objects answer `Forked`):
//! use or drop the parent's `Kthread`s, `Worker`s or items; it ends with
//! `_exit` so they are never dropped there.

use kthread::{freezer, Builder, Work, Worker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The parent's background machinery: a freezable flusher.
    let flushed = Arc::new(AtomicU64::new(0));
    let flusher = Worker::builder("flusher").freezable(true).create()?;
    let f = flushed.clone();
    let flush = Work::new(move || {
        f.fetch_add(1, Ordering::Relaxed);
    });
    flusher.queue(&flush);
    flusher.flush()?;

    // Quiesce: every freezable kthread sits at a freeze point, so the
    // parent's data is consistent in the child's copy.
    let frozen = freezer::freeze(Duration::from_secs(10))?;
    // SAFETY: the child only uses the library afresh and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid == 0 {
        child(); // ends with _exit: nothing inherited is dropped
    }
    drop(frozen); // thaw the parent's kthreads

    // The parent goes on with its own kthreads.
    flusher.queue(&flush);
    flusher.flush()?;
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is writable.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return Err(std::io::Error::last_os_error().into());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    println!(
        "parent: flusher ran {} times; child exited {code}",
        flushed.load(Ordering::Relaxed)
    );
    flusher.destroy();
    if code != 0 {
        return Err(format!("child failed with {code}").into());
    }
    Ok(())
}

/// The child: its own worker and kthread, then out.
fn child() -> ! {
    let run = || -> Result<u64, kthread::Error> {
        let w = Worker::new("child-io")?;
        let n = Arc::new(AtomicU64::new(0));
        let items: Vec<Work> = (0..10)
            .map(|_| {
                let n = n.clone();
                Work::new(move || {
                    n.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for it in &items {
            w.queue(it);
        }
        w.flush()?;
        w.destroy();
        let k = Builder::new("child-kthread").run(|| 7u64)?;
        let seven = k.stop().unwrap_or(0);
        Ok(n.load(Ordering::Relaxed) + seven)
    };
    match run() {
        Ok(17) => {
            println!("child: own worker ran 10 items, own kthread returned 7");
            // SAFETY: ends the child without unwinding or running the
            // parent's destructors on inherited objects.
            unsafe { libc::_exit(0) }
        }
        other => {
            eprintln!("child: {other:?}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}
