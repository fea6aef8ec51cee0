//! A producer/consumer pair on a `WaitQueue`, written as kernel code is:
//! the consumer kthread sleeps in `wait_event_freezable(cond || should_stop)`,
//! so it sleeps without using CPU, freezes with the system, and stops.
//!
//! Run with `cargo run --example wait-queue`.

use kthread::{freezer, should_stop, Builder, WaitQueue};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Queue {
    items: Mutex<VecDeque<u64>>,
    wq: WaitQueue,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        wq: WaitQueue::new(),
    });

    let consumer = {
        let q = q.clone();
        Builder::new("consumer").freezable(true).run(move || {
            let mut sum = 0;
            loop {
                let _ = q
                    .wq
                    .wait_event_freezable(|| !q.items.lock().unwrap().is_empty() || should_stop());
                // Drain what is there, then sleep again (or end once stopped).
                while let Some(item) = q.items.lock().unwrap().pop_front() {
                    sum += item;
                }
                if should_stop() {
                    return sum;
                }
            }
        })?
    };

    for i in 1..=100 {
        q.items.lock().unwrap().push_back(i);
        q.wq.wake_up();
    }

    // Freeze it (in its wait or between items), queue more while frozen, thaw.
    let frozen = freezer::freeze(Duration::from_secs(10))?;
    println!("frozen: consumer is {:?}", consumer.task().state());
    q.items.lock().unwrap().push_back(1000);
    q.wq.wake_up(); // acted on after the thaw
    drop(frozen);

    let sum = consumer.stop()?;
    println!("consumer summed {sum}");
    assert_eq!(sum, 5050 + 1000);
    Ok(())
}
