//! The library's kernel-tracepoint events of a short run, printed the way
//! `trace-cmd report` prints the kernel's:
//!
//! ```text
//!        trace-1841  [001]  9213.002114: kthread_create:        comm=flusher pid=1843
//!      flusher-1843  [000]  9213.002201: sched_kthread_work_execute_start: comm=flusher pid=1843 work=0x5581e3c0
//! ```
//!
//! Each line is the thread that emitted the event (name and thread id), the
//! CPU it was on, `CLOCK_MONOTONIC` in seconds (the kernel's trace clock
//! counts from boot too), the tracepoint and its fields. The events are
//! `tracing` events with target `kthread` and an `event` field naming the
//! tracepoint, so any `tracing` subscriber can take them; this one is a
//! small [`Layer`] that formats them.
//!
//! Run with `cargo run --example trace --features tracing`. It exits with a
//! failure if a tracepoint it exercised did not show up.

use kthread::{schedule, set_current_state, should_park, should_stop, TaskState, Work, Worker};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Formats every `kthread` event as one `trace-cmd report` line and
/// remembers which tracepoints it saw.
struct TraceCmd {
    seen: Arc<Mutex<BTreeSet<String>>>,
}

/// The `event` field (the tracepoint's name) and the rest as `key=value`.
#[derive(Default)]
struct Fields {
    event: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => self.event = value.to_owned(),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // Addresses print as the kernel's %p would; everything else in decimal.
        match field.name() {
            "work" | "worker" => {
                let _ = write!(self.rest, " {}={value:#x}", field.name());
            }
            _ => self.record_i128(field, i128::from(value)),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_i128(field, i128::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        // The kernel's tracepoints call a thread id `pid`.
        let name = if field.name() == "tid" {
            "pid"
        } else {
            field.name()
        };
        let _ = write!(self.rest, " {name}={value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let _ = write!(self.rest, " {}={}", field.name(), u8::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.rest, " {}={value:?}", field.name());
    }
}

impl<S: tracing::Subscriber> Layer<S> for TraceCmd {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "kthread" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let (comm, tid, cpu) = this_thread();
        println!(
            "{:>16}-{:<6} [{cpu:03}] {:>12.6}: {:<24} {}",
            comm,
            tid,
            monotonic_secs(),
            format!("{}:", f.event),
            f.rest.trim_start()
        );
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(f.event);
    }
}

/// The emitting thread's name (`/proc/thread-self/comm`), id and CPU.
fn this_thread() -> (String, i32, i32) {
    let comm = std::fs::read_to_string("/proc/thread-self/comm")
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "<unknown>".to_owned());
    // SAFETY: gettid and sched_getcpu take no arguments and only return numbers.
    let (tid, cpu) = unsafe { (libc::gettid(), libc::sched_getcpu()) };
    (comm, tid, cpu)
}

/// `CLOCK_MONOTONIC` in seconds.
fn monotonic_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() -> ExitCode {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let subscriber = tracing_subscriber::registry().with(TraceCmd { seen: seen.clone() });
    if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("trace: cannot install the subscriber: {e}");
        return ExitCode::FAILURE;
    }
    println!("# tracer: kthread");
    println!("#            TASK-PID     CPU#    TIMESTAMP  FUNCTION");
    if let Err(e) = run() {
        eprintln!("trace: {e}");
        return ExitCode::FAILURE;
    }
    // Every tracepoint the run went through must have printed a line.
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let expected = [
        "kthread_create",
        "sched_wakeup",
        "kthread_park",
        "kthread_unpark",
        "sched_kthread_work_queue_work",
        "sched_kthread_work_execute_start",
        "sched_kthread_work_execute_end",
        "sched_kthread_stop",
        "sched_kthread_stop_ret",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|e| !seen.contains(*e))
        .collect();
    if !missing.is_empty() {
        eprintln!("trace: no event for {missing:?} (saw {seen:?})");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A short life: create, wake, park, unpark, a worker runs one item, stop.
fn run() -> Result<(), Box<dyn std::error::Error>> {
    kthread::kthreadd::start()?;
    let poller = kthread::create("poller", || {
        while !should_stop() {
            if should_park() {
                kthread::parkme();
                continue;
            }
            set_current_state(TaskState::Interruptible);
            if !should_stop() && !should_park() {
                schedule();
            }
            set_current_state(TaskState::Running);
        }
    })?;
    poller.wake_up();
    poller.park()?;
    poller.unpark();

    let flusher = Worker::new("flusher")?;
    let work = Work::new(|| {});
    flusher.queue(&work);
    work.flush();

    poller.stop()?;
    drop(flusher);
    Ok(())
}
