//! The decision log: whole JSON lines appended to one shared buffer, written
//! to the file by one thread in batches.
//!
//! Handing each line to the writer thread over a channel woke that thread for
//! nearly every request, and the wake-ups (a futex call in the sender, a
//! context switch to the writer and back) cost about a sixth of the gateway's
//! CPU under load. Now a request only appends its line to the buffer under a
//! short lock, and the writer takes the whole buffer every
//! [`FLUSH_EVERY`] (sooner when [`WAKE_AT`] bytes are waiting) and writes it
//! with one call, outside the lock. Lines never interleave, because each is
//! appended whole. The buffer is bounded: when [`MAX_PENDING`] bytes wait
//! (the disk has stalled), requests wait for the writer instead of growing
//! memory. After a write error the log stops taking lines and the error is
//! what [`super::Gateway::shutdown`] returns. Dropping the log (when the
//! gateway stops) writes what is left and ends the writer.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};

/// The writer takes the buffer at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// The writer is woken early when this many bytes are waiting.
pub const WAKE_AT: usize = 256 * 1024;
/// Requests wait for the writer when this many bytes are waiting.
pub const MAX_PENDING: usize = 16 * 1024 * 1024;

/// The sending side of the decision log; the gateway keeps one.
pub(super) struct DecisionLog {
    shared: Arc<Shared>,
}

struct Shared {
    buf: Mutex<Pending>,
    /// Wakes the writer (enough bytes waiting, or closed).
    wake: Condvar,
    /// Wakes requests waiting for room.
    room: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
    failed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DecisionLog {
    /// Opens (creates or appends to) the log at `path` and starts its writer.
    pub(super) fn open(path: &Path) -> Result<(DecisionLog, std::thread::JoinHandle<Result<()>>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open decision log {}", path.display()))?;
        let shared = Arc::new(Shared {
            buf: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
        });
        let shown = path.display().to_string();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("a2a-decision-log".to_string())
                .spawn(move || {
                    let out = write_batches(&shared, file);
                    if out.is_err() {
                        let mut pending = shared.lock();
                        pending.failed = true;
                        pending.bytes = Vec::new();
                        shared.room.notify_all();
                    }
                    out.with_context(|| format!("cannot write decision log {shown}"))
                })
                .context("cannot start the decision log writer")?
        };
        Ok((DecisionLog { shared }, writer))
    }

    /// Appends one whole line (ending in a newline).
    pub(super) fn send(&self, line: &[u8]) {
        let mut pending = self.shared.lock();
        while pending.bytes.len() >= MAX_PENDING && !pending.failed {
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        if pending.failed {
            return;
        }
        let was_below = pending.bytes.len() < WAKE_AT;
        pending.bytes.extend_from_slice(line);
        if was_below && pending.bytes.len() >= WAKE_AT {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The writer thread: takes the buffer every [`FLUSH_EVERY`] (or when woken)
/// and writes it, until the log is closed and drained.
fn write_batches(shared: &Shared, mut file: std::fs::File) -> std::io::Result<()> {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut pending = shared.lock();
            if !pending.closed && pending.bytes.len() < WAKE_AT {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut pending.bytes, &mut batch);
            shared.room.notify_all();
            pending.closed
        };
        if !batch.is_empty() {
            file.write_all(&batch)?;
            batch.clear();
            // A batch that grew large once is not kept at that size.
            batch.shrink_to(WAKE_AT * 2);
        }
        if closed {
            // The only sender is gone: nothing can be appended any more.
            return file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_many_threads_arrive_whole_and_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/log.jsonl");
        let (log, writer) = DecisionLog::open(&path).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..5_000 {
                        let pad = "x".repeat(i % 300);
                        log.send(format!("{{\"t\":{t},\"i\":{i},\"pad\":\"{pad}\"}}\n").as_bytes());
                    }
                });
            }
        });
        drop(log);
        writer.join().unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(seen.insert((v["t"].as_u64().unwrap(), v["i"].as_u64().unwrap())));
        }
        assert_eq!(seen.len(), 20_000);
    }

    #[test]
    fn lines_are_written_while_the_gateway_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (log, writer) = DecisionLog::open(&path).unwrap();
        log.send(b"{\"a\":1}\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap() != "{\"a\":1}\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(log);
        writer.join().unwrap().unwrap();
    }
}
