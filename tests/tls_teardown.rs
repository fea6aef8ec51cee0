//! Thread-local destructors that call into the library after its own
//! thread-local state was destroyed (issue: use-after-free from safe code).

mod common;

use common::{watchdog, WATCHDOG};
use kthread::{schedule_timeout, set_current_state, should_park, should_stop, Task, TaskState};
use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Duration;

struct Probe(mpsc::Sender<Vec<(bool, String)>>);

impl Drop for Probe {
    fn drop(&mut self) {
        let mut seen = Vec::new();
        let mut check = |ok: bool, what: &str| seen.push((ok, what.to_owned()));
        check(kthread::current().is_none(), "current() is None");
        check(!should_stop(), "should_stop() is false");
        check(!should_park(), "should_park() is false");
        set_current_state(TaskState::Interruptible);
        check(
            schedule_timeout(Duration::from_millis(1)) == Duration::ZERO,
            "schedule_timeout sleeps out its timeout",
        );
        kthread::schedule(); // returns at once: nothing could ever wake it
        let a = Task::current();
        let b = Task::current();
        check(a.name() == "foreign", "Task::current() answers");
        check(a != b, "a torn-down thread's tasks are fresh, not kept");
        check(!kthread::try_to_freeze(), "try_to_freeze() is false");
        let _ = self.0.send(seen);
    }
}

thread_local! {
    static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
}

/// Runs `body` on a plain thread whose probe destructor runs after the
/// library's thread-local destructors, and returns what the probe saw.
fn probe_after(body: impl FnOnce() + Send + 'static) -> Vec<(bool, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        PROBE.with(|p| *p.borrow_mut() = Some(Probe(tx)));
        body();
    })
    .join()
    .expect("thread exits cleanly");
    rx.recv_timeout(Duration::from_secs(30))
        .expect("probe destructor ran")
}

fn assert_all(seen: Vec<(bool, String)>) {
    assert!(!seen.is_empty());
    for (ok, what) in seen {
        assert!(ok, "in a later thread-local destructor: {what}");
    }
}

#[test]
fn destructor_after_set_current_state_and_schedule() {
    let _w = watchdog("destructor_after_set_current_state_and_schedule", WATCHDOG);
    for _ in 0..50 {
        assert_all(probe_after(|| {
            set_current_state(TaskState::Interruptible);
            schedule_timeout(Duration::from_micros(10));
        }));
    }
}

#[test]
fn destructor_after_task_current_and_wake() {
    let _w = watchdog("destructor_after_task_current_and_wake", WATCHDOG);
    for _ in 0..50 {
        assert_all(probe_after(|| {
            let me = Task::current();
            me.wake_up();
            kthread::schedule();
        }));
    }
}

#[test]
fn destructor_of_a_thread_that_never_used_the_library() {
    let _w = watchdog(
        "destructor_of_a_thread_that_never_used_the_library",
        WATCHDOG,
    );
    // First use inside the destructor: the task is not kept, nothing leaks or crashes.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        PROBE.with(|p| *p.borrow_mut() = Some(Probe(tx)));
    })
    .join()
    .expect("thread exits cleanly");
    let seen = rx.recv_timeout(Duration::from_secs(30)).expect("probe ran");
    // Here the library's state may or may not be torn down yet; the answers
    // that hold either way:
    for (ok, what) in seen {
        if what != "a torn-down thread's tasks are fresh, not kept" {
            assert!(ok, "{what}");
        }
    }
}
