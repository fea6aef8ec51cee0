//! A TCP server whose kthread blocks in `accept()`, and a shutdown that
//! does not wait for the next client: the kthread's stop callback shuts
//! the listening socket down, `accept()` fails at once, and `stop`
//! returns within milliseconds with the number of clients served.
//!
//! (`should_stop()` alone cannot reach a thread blocked in a system call;
//! std's `accept` restarts after a signal, so the callback is the way here.
//! The stop fd and `Builder::interrupt_on_stop` are the other two ways.)
//!
//! Run with `cargo run --example accept_loop`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let addr = listener.local_addr()?;

    let server = {
        let listener = listener.clone();
        kthread::run("acceptor", move || {
            let mut served = 0u32;
            while !kthread::should_stop() {
                match listener.accept() {
                    Ok((mut client, _)) => {
                        served += 1;
                        let _ = writeln!(client, "hello, client {served}");
                    }
                    // The stop callback shut the listener down.
                    Err(_) if kthread::should_stop() => break,
                    Err(e) => eprintln!("accept: {e}"),
                }
            }
            served
        })?
    };
    // Runs on the thread that calls `stop`, before `stop` waits.
    let fd = listener.as_raw_fd();
    let _shutdown = server.task().on_stop(move || {
        // SAFETY: `fd` is the listener's, which `main` keeps open until
        // after the stop; shutdown() does not close it.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    });

    for _ in 0..3 {
        let mut line = String::new();
        BufReader::new(TcpStream::connect(addr)?).read_line(&mut line)?;
        print!("{line}");
    }

    // The kthread now sits in accept() with no client to come.
    let t = Instant::now();
    let served = server.stop()?;
    println!(
        "served {served} clients; stop returned in {:?}",
        t.elapsed()
    );
    assert_eq!(served, 3);
    Ok(())
}
