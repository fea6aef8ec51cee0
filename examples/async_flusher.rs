//! A tokio service with a kthread write-back flusher: a durability barrier
//! without `spawn_blocking`.
//!
//! Each request appends a record to the in-memory log, queues the one
//! write-back `Work` on a kthread `Worker` (queueing is non-blocking and
//! coalesces: a flush already pending picks the record up) and awaits
//! `flush_async()` before it answers. When the future resolves, the
//! write-back that covers the record has written and `fdatasync`ed it, so
//! the answer means "durable". Many concurrent requests share one write-back,
//! which is the point: the log is synced far fewer times than it is written.
//!
//! A checkpoint kthread runs beside it and is stopped at shutdown with
//! `stop_async()`, which hands back its result without blocking the runtime.
//!
//! Run with `cargo run --example async_flusher --features async`. It serves
//! its own clients on a loopback port, prints what happened and fails if a
//! record answered "durable" is not in the file.

use kthread::{schedule_timeout, set_current_state, should_stop, TaskState, Work, Worker};
use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: u64 = 8;
const REQUESTS: u64 = 50;

/// The log: records waiting for write-back, and the file they go to.
struct Log {
    path: PathBuf,
    pending: Mutex<Vec<String>>,
    file: Mutex<File>,
    /// Write-backs that ran (each one `fdatasync`).
    syncs: AtomicU64,
    /// Records written and synced.
    durable: AtomicU64,
}

impl Log {
    fn create() -> std::io::Result<Log> {
        let path =
            std::env::temp_dir().join(format!("kthread-async-flusher-{}.log", std::process::id()));
        Ok(Log {
            file: Mutex::new(File::create(&path)?),
            path,
            pending: Mutex::new(Vec::new()),
            syncs: AtomicU64::new(0),
            durable: AtomicU64::new(0),
        })
    }

    /// The write-back, on the worker's kthread: everything appended so far,
    /// in one write and one `fdatasync`.
    fn write_back(&self) {
        let records = std::mem::take(&mut *self.pending.lock().unwrap());
        if records.is_empty() {
            return;
        }
        let mut file = self.file.lock().unwrap();
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        file.write_all(text.as_bytes()).expect("write the log");
        file.sync_data().expect("fdatasync the log");
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable
            .fetch_add(records.len() as u64, Ordering::Release);
    }
}

/// What a request handler needs: the log, the worker and its write-back item.
struct Service {
    log: Arc<Log>,
    worker: Worker,
    write_back: Work,
}

impl Service {
    /// Appends `record` and returns once it is on disk.
    async fn append_durably(&self, record: String) {
        self.log.pending.lock().unwrap().push(record);
        // Pending already? Then that instance has not started and will take
        // our record; either way the flush below covers it.
        self.worker.queue(&self.write_back);
        self.write_back.flush_async().await;
    }
}

async fn handle(service: Arc<Service>, stream: TcpStream) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        service.append_durably(line).await;
        writer.write_all(b"durable\n").await?;
    }
    Ok(())
}

async fn client(addr: std::net::SocketAddr, id: u64) -> std::io::Result<u64> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut answers = BufReader::new(reader).lines();
    for n in 0..REQUESTS {
        writer
            .write_all(format!("client {id} record {n}\n").as_bytes())
            .await?;
        let answer = answers.next_line().await?;
        assert_eq!(answer.as_deref(), Some("durable"), "client {id} record {n}");
    }
    Ok(REQUESTS)
}

fn main() -> Result<(), Box<dyn Error>> {
    // Born first, from a thread nobody changed, as the kthreadd docs advise.
    kthread::kthreadd::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn Error>> {
    let log = Arc::new(Log::create()?);
    let write_back = {
        let log = log.clone();
        Work::new(move || log.write_back())
    };
    let service = Arc::new(Service {
        log: log.clone(),
        worker: Worker::new("writeback")?,
        write_back,
    });

    // Every 10 ms, until stopped, note how far the log is durable (where a
    // real store would write its checkpoint record); returns the rounds and
    // the last mark.
    let checkpointer = kthread::run("checkpoint", {
        let log = log.clone();
        move || {
            let (mut rounds, mut mark) = (0u64, 0u64);
            while !should_stop() {
                set_current_state(TaskState::Interruptible);
                if !should_stop() {
                    schedule_timeout(Duration::from_millis(10));
                }
                set_current_state(TaskState::Running);
                mark = log.durable.load(Ordering::Acquire);
                rounds += 1;
            }
            (rounds, mark)
        }
    })?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(handle(service.clone(), stream));
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        })
    };

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id)))
        .collect();
    let mut answered = 0;
    for c in clients {
        answered += c.await??;
    }
    server.abort();

    // Shutdown: stop the checkpointer without blocking the runtime, then
    // a last barrier on the worker.
    let (rounds, mark) = checkpointer.stop_async().await?;
    service.worker.flush_async().await?;

    let durable = log.durable.load(Ordering::Acquire);
    let syncs = log.syncs.load(Ordering::Relaxed);
    let on_disk = std::fs::read_to_string(&log.path)?.lines().count() as u64;
    std::fs::remove_file(&log.path)?;
    println!("{answered} requests answered \"durable\" by {CLIENTS} clients");
    println!("{durable} records written back in {syncs} fdatasyncs ({on_disk} lines on disk)");
    println!("checkpoint kthread stopped by stop_async after {rounds} rounds, last mark {mark}");
    if durable != answered || on_disk != answered || syncs == 0 || syncs > answered {
        return Err(format!(
            "lost durability: {answered} answered, {durable} durable, {on_disk} on disk"
        )
        .into());
    }
    Ok(())
}
