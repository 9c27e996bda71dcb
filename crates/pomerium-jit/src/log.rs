//! The serving log's writer. Each line (the access log among them) is
//! appended to a shared buffer under a short lock; a thread of its own
//! writes the buffer out every [`FLUSH_EVERY`], or sooner once it holds
//! [`WAKE_AT`] bytes. So a request never waits on stderr or a stalled log pipe,
//! and a line costs a copy, not a thread wake-up: a queue that woke its
//! writer for every line (tracing-appender's) cost `GET /` about a tenth of
//! its rate in context switches.
//!
//! When the reader of stderr stalls and the buffer is full, whole lines are
//! dropped and counted (the audit trail is in the database, never only in
//! the log).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Bytes after which the writer thread is woken early: about 200 access-log
/// lines, so a burst neither waits long nor grows the buffers.
pub const WAKE_AT: usize = 32 * 1024;

struct Shared {
    lines: Mutex<Vec<u8>>,
    /// Signalled when the buffer passes `wake_at` bytes, and on close.
    wake: Condvar,
    capacity: usize,
    wake_at: usize,
    dropped: AtomicU64,
    closed: AtomicBool,
}

impl Shared {
    fn lines(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves at worst a partial line.
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands out writers to the shared buffer (a `MakeWriter`); cheap to clone.
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("capacity", &self.0.capacity)
            .field("dropped", &self.dropped_lines())
            .finish()
    }
}

impl LogWriter {
    /// Lines dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

impl Write for LogWriter {
    /// Takes one whole line (the formatter hands over each event in one
    /// call), or drops it whole when it does not fit.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &*self.0;
        let mut lines = shared.lines();
        if lines.len() + line.len() > shared.capacity {
            drop(lines);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        let before = lines.len();
        lines.extend_from_slice(line);
        let crossed = before < shared.wake_at && lines.len() >= shared.wake_at;
        drop(lines);
        if crossed {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

/// Writes out what is left and stops the thread when dropped.
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A writer holding at most `capacity` bytes of lines for `sink`, written
/// by a thread named `log-writer`.
pub fn spawn<W: Write + Send + 'static>(
    capacity: usize,
    mut sink: W,
) -> io::Result<(LogWriter, Flusher)> {
    let shared = Arc::new(Shared {
        lines: Mutex::new(Vec::with_capacity(capacity.min(2 * WAKE_AT))),
        wake: Condvar::new(),
        capacity,
        wake_at: WAKE_AT.min(capacity / 4),
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    let own = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut out = Vec::new();
            loop {
                let closed = {
                    let lines = own.lines();
                    let (mut lines, _) = own
                        .wake
                        .wait_timeout_while(lines, FLUSH_EVERY, |l| {
                            l.len() < own.wake_at && !own.closed.load(Ordering::Acquire)
                        })
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::swap(&mut *lines, &mut out);
                    own.closed.load(Ordering::Acquire)
                };
                if !out.is_empty() {
                    // Nowhere to report a failing stderr; the lines are lost.
                    let _ = sink.write_all(&out).and_then(|()| sink.flush());
                    out.clear();
                    // Give back what a stall grew, keep the usual size.
                    out.shrink_to(2 * WAKE_AT);
                }
                if closed && own.lines().is_empty() {
                    return;
                }
            }
        })?;
    Ok((
        LogWriter(shared.clone()),
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A sink that hands each write to the test, and can be held still.
    struct Sink {
        writes: mpsc::Sender<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.writes.send(buf.to_vec()).unwrap();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink() -> (Sink, mpsc::Receiver<Vec<u8>>, Arc<Mutex<()>>) {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let sink = Sink {
            writes: tx,
            gate: gate.clone(),
        };
        (sink, rx, gate)
    }

    #[test]
    fn lines_arrive_whole_in_order_within_the_interval_and_in_one_write() {
        let (sink, rx, _gate) = sink();
        let (mut writer, _flusher) = spawn(1 << 20, sink).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        let first = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert!(
            started.elapsed() < FLUSH_EVERY * 5,
            "{:?}",
            started.elapsed()
        );
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(first).unwrap(), expected);
    }

    #[test]
    fn a_stalled_sink_never_blocks_a_writer_and_a_full_buffer_drops_whole_lines() {
        let (sink, rx, gate) = sink();
        let held = gate.lock().unwrap();
        let (mut writer, flusher) = spawn(100, sink).unwrap();
        // The thread takes the first line (a quarter) and then waits on the sink.
        writer
            .write_all(&[[b'a'; 29].as_slice(), b"\n"].concat())
            .unwrap();
        std::thread::sleep(FLUSH_EVERY * 3);
        let started = Instant::now();
        for _ in 0..20 {
            writer.write_all(b"bbbbbbbbb\n").unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "writers never wait"
        );
        // 100 bytes hold ten of the twenty lines; the rest are dropped whole.
        assert_eq!(writer.dropped_lines(), 10);
        drop(held);
        drop(flusher);
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        assert_eq!(&written[..30], [[b'a'; 29].as_slice(), b"\n"].concat());
        assert_eq!(written.len(), 130);
        assert!(written[30..].chunks(10).all(|c| c == b"bbbbbbbbb\n"));
    }

    #[test]
    fn dropping_the_flusher_writes_everything_left() {
        let (sink, rx, _gate) = sink();
        let (mut writer, flusher) = spawn(1 << 20, sink).unwrap();
        writer.write_all(b"last words\n").unwrap();
        drop(flusher);
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        assert_eq!(written, b"last words\n");
    }
}
