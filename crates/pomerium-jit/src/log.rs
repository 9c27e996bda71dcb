//! The serving log's writer. Each line (the access log among them) is
//! appended to a shared buffer under a short lock; a thread of its own
//! writes the buffer out. A line logged while the thread is idle wakes it
//! at once (start-up lines, a warning on a quiet service appear as they
//! happen), and after each write the thread rests [`GAP`], so under load
//! lines gather and are written at most once per gap. A request never
//! waits on stderr or a stalled log pipe, and a busy log costs a copy per
//! line, not a thread wake-up: a queue that woke its writer for every line
//! (tracing-appender's) cost `GET /` about a tenth of its rate in context
//! switches.
//!
//! When the reader of stderr stalls and the buffer is full, whole lines are
//! dropped and counted (the audit trail is in the database, never only in
//! the log).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// The writer thread's rest after each write: the longest a line waits
/// under load. At 50,000 access-log lines a second a batch is about 75 KiB.
pub const GAP: Duration = Duration::from_millis(10);
/// What the buffers keep between batches.
const USUAL_BYTES: usize = 128 * 1024;

struct Shared {
    lines: Mutex<Vec<u8>>,
    /// Signalled by the first line into an empty buffer, and on close.
    wake: Condvar,
    capacity: usize,
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
        let was_empty = lines.is_empty();
        lines.extend_from_slice(line);
        drop(lines);
        if was_empty {
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
        {
            // Under the lock, so the thread cannot miss it between its
            // check and its wait.
            let _lines = self.shared.lines();
            self.shared.closed.store(true, Ordering::Release);
        }
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
        lines: Mutex::new(Vec::with_capacity(capacity.min(USUAL_BYTES))),
        wake: Condvar::new(),
        capacity,
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
                    let mut lines = own
                        .wake
                        .wait_while(lines, |l| {
                            l.is_empty() && !own.closed.load(Ordering::Acquire)
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
                    out.shrink_to(USUAL_BYTES);
                }
                if closed {
                    if own.lines().is_empty() {
                        return;
                    }
                } else {
                    std::thread::sleep(GAP);
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

    /// A sink that says when a write starts, can be held still there, and
    /// hands each write to the test.
    struct Sink {
        started: mpsc::Sender<()>,
        writes: mpsc::Sender<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.started.send(()).unwrap();
            let _open = self.gate.lock().unwrap();
            self.writes.send(buf.to_vec()).unwrap();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Probe {
        started: mpsc::Receiver<()>,
        writes: mpsc::Receiver<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    fn sink() -> (Sink, Probe) {
        let (started_tx, started) = mpsc::channel();
        let (writes_tx, writes) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let sink = Sink {
            started: started_tx,
            writes: writes_tx,
            gate: gate.clone(),
        };
        (
            sink,
            Probe {
                started,
                writes,
                gate,
            },
        )
    }

    #[test]
    fn a_line_on_a_quiet_log_is_written_at_once() {
        let (sink, probe) = sink();
        let (mut writer, _flusher) = spawn(1 << 20, sink).unwrap();
        std::thread::sleep(GAP * 3);
        writer.write_all(b"listening\n").unwrap();
        let written = probe.writes.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(written, b"listening\n");
    }

    #[test]
    fn lines_logged_while_the_writer_is_busy_go_out_whole_in_order_in_one_write() {
        let (sink, probe) = sink();
        let held = probe.gate.lock().unwrap();
        let (mut writer, _flusher) = spawn(1 << 20, sink).unwrap();
        writer.write_all(b"first\n").unwrap();
        probe.started.recv_timeout(Duration::from_secs(5)).unwrap();
        for i in 0..100 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(held);
        assert_eq!(
            probe.writes.recv_timeout(Duration::from_secs(5)).unwrap(),
            b"first\n"
        );
        let batch = probe.writes.recv_timeout(Duration::from_secs(5)).unwrap();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(batch).unwrap(), expected);
    }

    #[test]
    fn a_stalled_sink_never_blocks_a_writer_and_a_full_buffer_drops_whole_lines() {
        let (sink, probe) = sink();
        let held = probe.gate.lock().unwrap();
        let (mut writer, flusher) = spawn(100, sink).unwrap();
        // The thread takes the first line and then waits on the sink.
        writer
            .write_all(&[[b'a'; 29].as_slice(), b"\n"].concat())
            .unwrap();
        probe.started.recv_timeout(Duration::from_secs(5)).unwrap();
        let started = Instant::now();
        for _ in 0..20 {
            writer.write_all(b"bbbbbbbbb\n").unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "writers never wait"
        );
        // 100 bytes hold ten of the twenty lines; the rest are dropped whole.
        assert_eq!(writer.dropped_lines(), 10);
        drop(held);
        drop(flusher);
        let written: Vec<u8> = probe.writes.try_iter().flatten().collect();
        assert_eq!(&written[..30], [[b'a'; 29].as_slice(), b"\n"].concat());
        assert_eq!(written.len(), 130);
        assert!(written[30..].chunks(10).all(|c| c == b"bbbbbbbbb\n"));
    }

    #[test]
    fn dropping_the_flusher_writes_everything_left() {
        let (sink, probe) = sink();
        let (mut writer, flusher) = spawn(1 << 20, sink).unwrap();
        writer.write_all(b"last words\n").unwrap();
        drop(flusher);
        let written: Vec<u8> = probe.writes.try_iter().flatten().collect();
        assert_eq!(written, b"last words\n");
    }
}
