//! A thread-local destructor that calls into the library after the
//! library's own thread-local state is gone: a per-thread log buffer
//! flushed at thread exit that tags its records with the current task.
//!
//! `scripts/valgrind.sh memcheck` runs this and fails on any invalid read
//! or free; `tests/tls_teardown.rs` runs the same scenario in the test suite.
//!
//! ```sh
//! cargo run --example tls-teardown
//! ```

use kthread::{schedule_timeout, set_current_state, should_stop, Task, TaskState};
use std::cell::RefCell;
use std::time::Duration;

/// What the destructor saw: `kthread::current()`, `should_stop()`, the time
/// `schedule_timeout` left, and whether `Task::current()` answered.
type Seen = (bool, bool, Duration, bool);

struct LogBuffer(std::sync::mpsc::Sender<Seen>);

impl Drop for LogBuffer {
    fn drop(&mut self) {
        // The thread's task was torn down before us: every call must still
        // answer cleanly, and the sleep must sleep (not spin, not crash).
        let current = kthread::current().is_some();
        let stop = should_stop();
        set_current_state(TaskState::Interruptible);
        let left = schedule_timeout(Duration::from_millis(2));
        let named = !Task::current().name().is_empty();
        let _ = self.0.send((current, stop, left, named));
    }
}

thread_local! {
    static LOG: RefCell<Option<LogBuffer>> = const { RefCell::new(None) };
}

fn run_once() -> Seen {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered first, so its destructor runs after the library's
        // (destructors run in reverse order of first use).
        LOG.with(|l| *l.borrow_mut() = Some(LogBuffer(tx)));
        // Gives this plain thread a task of its own.
        set_current_state(TaskState::Interruptible);
        schedule_timeout(Duration::from_millis(1));
    })
    .join()
    .expect("thread exits cleanly");
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the destructor ran and reported")
}

fn main() {
    for _ in 0..20 {
        let (current, stop, left, named) = run_once();
        assert!(!current, "a plain thread is not a kthread, even at exit");
        assert!(!stop, "nothing asked a plain thread to stop");
        assert_eq!(left, Duration::ZERO, "the sleep ran out its timeout");
        assert!(named, "Task::current() answers during teardown");
    }
    println!("tls-teardown: 20 threads, every destructor call answered cleanly");
}
