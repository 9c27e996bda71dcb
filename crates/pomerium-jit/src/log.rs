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
//!
//! [`Plain`] and [`PlainFields`] write the `text` format when stderr is not
//! a terminal: the line tracing-subscriber's default format writes without
//! colours, written straight out (its styling layer runs even with colours
//! off, 6% of `GET /`'s instructions), with control characters in messages
//! escaped so one event is always one line. Every request logs a line, so
//! the common cases skip `fmt`: the date and time up to the second are
//! written once a second per thread, and plain strings and integers are
//! copied rather than formatted through `Debug`.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use jit_web::scope::{ACCESS_TARGET, AccessLog, Request, with_current};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The writer thread's rest after each write: the longest a line waits
/// under load. At 50,000 access-log lines a second a batch is about 75 KiB.
pub const GAP: Duration = Duration::from_millis(10);
/// What the buffers keep between batches.
const USUAL_BYTES: usize = 128 * 1024;

struct Shared {
    buffer: Mutex<Buffer>,
    /// Signalled by the first line into an empty buffer, and on close.
    wake: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

/// What the writers and the thread share under one lock.
struct Buffer {
    lines: Vec<u8>,
    /// Set by the flusher: write out what is left, then stop.
    closed: bool,
}

impl Shared {
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock leaves at worst a partial line.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
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

/// Written through a reference: a line takes the buffer's lock and nothing
/// more (a clone per line was two more atomic operations on the line the
/// two workers share, 1% of `GET /`'s CPU time in perf).
impl Write for &LogWriter {
    /// Takes one whole line (the formatter hands over each event in one
    /// call), or drops it whole when it does not fit.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &*self.0;
        let mut buffer = shared.buffer();
        if buffer.lines.len() + line.len() > shared.capacity {
            drop(buffer);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        let was_empty = buffer.lines.is_empty();
        buffer.lines.extend_from_slice(line);
        drop(buffer);
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
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> &'a LogWriter {
        self
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
        self.shared.buffer().closed = true;
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
        buffer: Mutex::new(Buffer {
            lines: Vec::with_capacity(capacity.min(USUAL_BYTES)),
            closed: false,
        }),
        wake: Condvar::new(),
        capacity,
        dropped: AtomicU64::new(0),
    });
    let own = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut out = Vec::new();
            loop {
                let closed = {
                    let mut buffer = own
                        .wake
                        .wait_while(own.buffer(), |b| b.lines.is_empty() && !b.closed)
                        .unwrap_or_else(PoisonError::into_inner);
                    std::mem::swap(&mut buffer.lines, &mut out);
                    buffer.closed
                };
                if !out.is_empty() {
                    // Nowhere to report a failing stderr; the lines are lost.
                    let _ = sink.write_all(&out).and_then(|()| sink.flush());
                    out.clear();
                    // Give back what a stall grew, keep the usual size.
                    out.shrink_to(USUAL_BYTES);
                }
                if closed {
                    if own.buffer().lines.is_empty() {
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

/// `{time} {LEVEL} {span}{{fields}}: {target}: {message} {field=value}`,
/// as tracing-subscriber's default format without colours.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_now(&mut writer)?;
        writer.write_str(level_label(*meta.level()))?;
        // The request first: it is the root of whatever spans are open.
        let request = event.is_contextual()
            && with_current(|r| r.map(|r| write_request(&mut writer, r)))
                .transpose()?
                .is_some();
        let span = ctx.parent_span();
        if let Some(span) = &span {
            write_scope::<S, N>(&mut writer, span)?;
        }
        if request || span.is_some() {
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The level between the time and the rest, padded as tracing-subscriber
/// pads it.
fn level_label(level: Level) -> &'static str {
    match level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

/// The access log's lines written straight into the buffer
/// ([`jit_web::scope::AccessLog`]), each as [`Plain`] writes the edge's
/// `served` event, from a line kept per thread.
#[derive(Debug)]
pub struct PlainAccess(pub LogWriter);

impl AccessLog for PlainAccess {
    fn served(&self, request: &Request, status: u16, latency_us: u64) {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            if served_line(line, request, status, latency_us).is_ok() {
                // Never fails: a line that does not fit is dropped and counted.
                let _ = (&self.0).write(line.as_bytes());
            }
        });
    }
}

/// What the `served` event's fields come to: a message with nothing to
/// escape, then two integers.
fn served_line(line: &mut String, request: &Request, status: u16, latency_us: u64) -> fmt::Result {
    use fmt::Write as _;
    write_now(line)?;
    line.push_str(level_label(Level::INFO));
    write_request(line, request)?;
    line.push(' ');
    line.push_str(ACCESS_TARGET);
    line.push_str(": served status=");
    write_u64(line, u64::from(status), 1)?;
    line.push_str(" latency_us=");
    write_u64(line, latency_us, 1)?;
    line.write_char('\n')
}

/// `root{fields}:…:span{fields}:`, the root first. Written from the leaf
/// up by recursion: `Scope::from_root` gathers the spans into a vector
/// first, on every line.
fn write_scope<S, N>(
    writer: &mut Writer<'_>,
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    if let Some(parent) = span.parent() {
        write_scope::<S, N>(writer, &parent)?;
    }
    writer.write_str(span.name())?;
    let extensions = span.extensions();
    if let Some(fields) = extensions.get::<FormattedFields<N>>()
        && !fields.is_empty()
    {
        writer.write_char('{')?;
        writer.write_str(fields)?;
        writer.write_char('}')?;
    }
    writer.write_char(':')
}

/// `request{method="GET" path="/" request_id="…"}:`, as [`PlainFields`]
/// writes the request's span.
fn write_request(writer: &mut impl fmt::Write, request: &Request) -> fmt::Result {
    let (method, path, id) = (request.method(), request.path(), request.id());
    if quotes_as_is(method) && quotes_as_is(path) && quotes_as_is(id) {
        // The usual request, in seven pieces rather than twenty.
        for piece in [
            "request{method=\"",
            method,
            "\" path=\"",
            path,
            "\" request_id=\"",
            id,
            "\"}:",
        ] {
            writer.write_str(piece)?;
        }
        return Ok(());
    }
    writer.write_str("request{")?;
    let mut visitor = PlainVisitor {
        writer: Writer::new(writer),
        empty: true,
        result: Ok(()),
    };
    visitor.str_field("method", request.method());
    visitor.str_field("path", request.path());
    visitor.str_field("request_id", request.id());
    visitor.result?;
    writer.write_str("}:")
}

/// Fields as `name=value` (values in `Debug` form, so strings are quoted
/// and escaped), the message first and bare, separated by spaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        // A span's fields go into a `String` of their own that starts
        // empty: written piece by piece it grew four times per request.
        // Gathered on the stack first, they are allocated once.
        let mut staged = Staged::default();
        match record(Writer::new(&mut staged), &fields) {
            Ok(()) => writer.write_str(staged.as_str()?),
            // Longer than the stage: written straight out.
            Err(_) if staged.overflowed => record(writer, &fields),
            Err(e) => Err(e),
        }
    }
}

fn record<R: RecordFields>(writer: Writer<'_>, fields: &R) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        empty: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.result
}

/// Text gathered on the stack, up to a request span's usual fields and
/// then some.
struct Staged {
    bytes: [u8; 192],
    len: usize,
    overflowed: bool,
}

impl Default for Staged {
    fn default() -> Self {
        Staged {
            bytes: [0; 192],
            len: 0,
            overflowed: false,
        }
    }
}

impl Staged {
    fn as_str(&self) -> Result<&str, fmt::Error> {
        // Whole `str`s only were copied in.
        std::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)
    }
}

impl fmt::Write for Staged {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let Some(room) = self.bytes.get_mut(self.len..end) else {
            self.overflowed = true;
            return Err(fmt::Error);
        };
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }

    /// The quotes and `=` around every field, put in place (the default
    /// encodes each as UTF-8 and copies it as a string).
    fn write_char(&mut self, c: char) -> fmt::Result {
        if !c.is_ascii() {
            return self.write_str(c.encode_utf8(&mut [0; 4]));
        }
        let Some(byte) = self.bytes.get_mut(self.len) else {
            self.overflowed = true;
            return Err(fmt::Error);
        };
        *byte = c as u8;
        self.len += 1;
        Ok(())
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.message(value);
        }
        self.str_field(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field_with(field.name(), |w| write_u64(w, value, 1));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field_with(field.name(), |w| {
            if value < 0 {
                w.write_char('-')?;
            }
            write_u64(w, value.unsigned_abs(), 1)
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field_with(field.name(), |w| {
            w.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.debug_field(field.name(), value);
    }
}

impl PlainVisitor<'_> {
    /// `name="value"` as `Debug` writes a string, copied when there is
    /// nothing to escape.
    fn str_field(&mut self, name: &str, value: &str) {
        if !quotes_as_is(value) {
            return self.debug_field(name, &value);
        }
        self.field_with(name, |w| {
            w.write_char('"')?;
            w.write_str(value)?;
            w.write_char('"')
        });
    }

    /// A message given as a string (`message = "served"`, as the access
    /// log's is): bare, as tracing-subscriber writes it, with control
    /// characters escaped, copied without `fmt`'s machinery.
    fn message(&mut self, text: &str) {
        if self.result.is_err() {
            return;
        }
        let gap = if self.empty { "" } else { " " };
        self.empty = false;
        let w = &mut self.writer;
        self.result = w
            .write_str(gap)
            .and_then(|()| fmt::Write::write_str(&mut Escaping(w), text));
    }

    /// `name=value` in `Debug` form; the message bare, with control
    /// characters escaped.
    fn debug_field(&mut self, name: &str, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let w = &mut self.writer;
        let gap = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = match name {
            "message" => w
                .write_str(gap)
                .and_then(|()| fmt::Write::write_fmt(&mut Escaping(w), format_args!("{value:?}"))),
            name => write!(w, "{gap}{}={value:?}", strip_raw(name)),
        };
    }

    /// ` name=` (or `name=` first), then what `value` writes; never for the
    /// message, which is written bare.
    fn field_with(&mut self, name: &str, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let w = &mut self.writer;
        let gap = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = w
            .write_str(gap)
            .and_then(|()| w.write_str(strip_raw(name)))
            .and_then(|()| w.write_char('='))
            .and_then(|()| value(w));
    }
}

/// Whether `Debug` writes `value` between quotes as it is (nothing to
/// escape); checked by a fold without an early exit, which goes over
/// several bytes at once.
fn quotes_as_is(value: &str) -> bool {
    value.bytes().fold(true, |plain, b| {
        plain & (b' '..=b'~').contains(&b) & (b != b'"') & (b != b'\\')
    })
}

/// `type` for a field written `r#type` (a prefix check: `trim_start_matches`
/// with a string pattern builds a searcher each time).
fn strip_raw(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

/// Decimal digits without `fmt`'s machinery, zero-padded to `width`
/// (digits made by hand went through a UTF-8 check: 300 of `GET /`'s
/// instructions for its access-log line).
fn write_u64(w: &mut impl fmt::Write, n: u64, width: usize) -> fmt::Result {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n);
    const ZEROS: &str = "00000000000000000000";
    let pad = width.saturating_sub(digits.len()).min(ZEROS.len());
    if pad > 0 {
        w.write_str(&ZEROS[..pad])?;
    }
    w.write_str(digits)
}

/// The time as tracing-subscriber's `SystemTime` writes it (RFC 3339 in UTC
/// with microseconds, `2026-11-30T14:54:12.123456Z`). The part up to the
/// second is formatted once a second per thread.
fn write_now(w: &mut impl fmt::Write) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(since) = std::time::SystemTime::now().duration_since(UNIX_EPOCH) else {
        // A clock before 1970: tracing-subscriber's own copes.
        return SystemTime.format_time(&mut Writer::new(w));
    };
    let second = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            text.clear();
            second_prefix(text, second)?;
            *cached = second;
        }
        w.write_str(text)
    })?;
    write_u64(w, u64::from(since.subsec_micros()), 6)?;
    w.write_char('Z')
}

/// `2026-11-30T14:54:12.` for `second` seconds after the epoch.
fn second_prefix(out: &mut String, second: u64) -> fmt::Result {
    use fmt::Write as _;
    let at = i64::try_from(second)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or(fmt::Error)?;
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Writes control characters (newlines, terminal escapes) as escapes, so
/// a message cannot end its line or drive the reader's terminal.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(|c: char| c.is_control()) {
            let (clean, tail) = rest.split_at(at);
            self.0.write_str(clean)?;
            let mut chars = tail.chars();
            let control = chars.next().expect("found above");
            write!(self.0, "{}", control.escape_default())?;
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
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
        let (writer, _flusher) = spawn(1 << 20, sink).unwrap();
        std::thread::sleep(GAP * 3);
        (&writer).write_all(b"listening\n").unwrap();
        let written = probe.writes.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(written, b"listening\n");
    }

    #[test]
    fn lines_logged_while_the_writer_is_busy_go_out_whole_in_order_in_one_write() {
        let (sink, probe) = sink();
        let held = probe.gate.lock().unwrap();
        let (writer, _flusher) = spawn(1 << 20, sink).unwrap();
        (&writer).write_all(b"first\n").unwrap();
        probe.started.recv_timeout(Duration::from_secs(5)).unwrap();
        for i in 0..100 {
            (&writer)
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
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
        let (writer, flusher) = spawn(100, sink).unwrap();
        // The thread takes the first line and then waits on the sink.
        (&writer)
            .write_all(&[[b'a'; 29].as_slice(), b"\n"].concat())
            .unwrap();
        probe.started.recv_timeout(Duration::from_secs(5)).unwrap();
        let started = Instant::now();
        for _ in 0..20 {
            (&writer).write_all(b"bbbbbbbbb\n").unwrap();
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

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The lines without their timestamps.
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| l.split_once(' ').unwrap().1.to_owned())
                .collect()
        }
    }

    /// Events inside a request (its span, or its scope when `scoped`), and
    /// outside.
    fn events(scoped: bool) {
        let inside = || {
            // The access log's shape: its message a string field.
            tracing::info!(message = "served", status = 200u16, latency_us = 42u64);
            tracing::info!(status = 200u16, cached = true, "formatted {}", "message");
            tracing::info!(
                quoted = "say \"hi\" \\ bye",
                tab = "a\tb",
                accent = "café",
                empty = "",
                big = u64::MAX,
                small = i64::MIN,
                no = false,
                "kinds"
            );
            tracing::warn!(error = %"Zero said no", "could not sync {}", "deploy");
            // Spans within spans, written from the root.
            tracing::info_span!("inner", n = 7u64).in_scope(|| {
                tracing::info_span!("empty").in_scope(|| tracing::info!("nested"));
            });
            tracing::info!(parent: None, "a root event inside a span");
        };
        // A usual id, and one with a quote, escaped in both.
        for id in ["b-2", "a-\"1"] {
            if scoped {
                let id = http::HeaderValue::from_static(id);
                let path = http::uri::PathAndQuery::from_static("/requests/7?x=1");
                Request::new("GET", Some(path), id).in_scope(inside);
            } else {
                let span = tracing::info_span!(
                    "request",
                    method = "GET",
                    path = "/requests/7",
                    request_id = id
                );
                span.in_scope(inside);
            }
        }
        let orphan = tracing::info_span!("explicit", k = "v");
        tracing::info!(parent: &orphan, "an explicit parent outside it");
        tracing::info!(r#type = "x", ratio = 0.5, "outside");
        tracing::error!(count = -3i64);
        // Longer than the stage the fields are gathered on.
        let long = "x".repeat(300);
        tracing::info_span!("long", long = long.as_str()).in_scope(|| {
            tracing::info!(long = long.as_str(), "and \"quoted\" {}", long);
        });
    }

    /// What `subscriber` writes of [`events`].
    fn captured<S>(subscriber: impl FnOnce(Captured) -> S, scoped: bool) -> Vec<String>
    where
        S: Subscriber + Send + Sync + 'static,
    {
        let out = Captured::default();
        tracing::subscriber::with_default(subscriber(out.clone()), || events(scoped));
        out.lines()
    }

    /// The access log's lines written straight out are tracing-subscriber's
    /// lines for the edge's own `served` event in the request's span; ids
    /// and paths with something to escape included.
    #[test]
    fn access_lines_are_the_served_events_line() {
        let requests = [
            ("/", "0a1b2c3d4e5f-1f", 200u16, 42u64),
            ("/requests/7?x=1", "a-\"1", 404, 0),
            ("/say\"hi\"/%C3%A9", "", 503, u64::MAX),
        ];
        let out = Captured::default();
        let theirs = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer({
                let out = out.clone();
                move || out.clone()
            });
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::with_default(tracing_subscriber::registry().with(theirs), || {
            for (path, id, status, latency_us) in requests {
                let path = path.split_once('?').map_or(path, |(p, _)| p);
                tracing::info_span!(
                    target: ACCESS_TARGET,
                    "request",
                    method = "GET",
                    path,
                    request_id = id
                )
                .in_scope(|| jit_web::scope::served_event(status, latency_us));
            }
        });
        let expected = out.lines();
        assert_eq!(expected.len(), 3);

        let ours = Captured::default();
        let (writer, flusher) = spawn(1 << 16, ours.clone()).expect("the writer thread");
        let access = PlainAccess(writer);
        for (path, id, status, latency_us) in requests {
            let path = http::uri::PathAndQuery::try_from(path).expect("a path");
            let id = http::HeaderValue::from_str(id).expect("an id");
            access.served(&Request::new("GET", Some(path), id), status, latency_us);
        }
        drop(flusher);
        assert_eq!(ours.lines(), expected);
    }

    #[test]
    fn plain_lines_are_the_default_formats_without_colours_with_a_span_or_a_scope() {
        use tracing_subscriber::layer::SubscriberExt;
        let plain = |out: Captured| {
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || out.clone())
                    .event_format(Plain)
                    .fmt_fields(PlainFields),
            )
        };
        let theirs = |out: Captured| {
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || out.clone()),
            )
        };
        let expected = captured(theirs, false);
        assert_eq!(expected.len(), 16);
        assert!(
            expected
                .iter()
                .any(|l| l.ends_with("served status=200 latency_us=42")),
            "a string message is bare: {expected:?}"
        );
        assert_eq!(captured(plain, false), expected);
        assert_eq!(captured(plain, true), expected);
        for nested in [
            r#"request{method="GET" path="/requests/7" request_id="b-2"}:inner{n=7}:empty: "#,
            r#"request{method="GET" path="/requests/7" request_id="a-\"1"}:inner{n=7}:empty: "#,
        ] {
            assert!(expected.iter().any(|l| l.contains(nested)), "{expected:?}");
        }
    }

    #[test]
    fn the_stage_takes_characters_up_to_its_last_byte_and_then_says_it_overflowed() {
        use fmt::Write as _;
        let mut staged = Staged::default();
        let fill = "x".repeat(staged.bytes.len() - 3);
        staged.write_str(&fill).unwrap();
        staged.write_char('=').unwrap();
        staged.write_char('é').unwrap();
        assert_eq!(staged.as_str().unwrap(), format!("{fill}=é"));
        assert!(!staged.overflowed);
        assert!(staged.write_char('"').is_err());
        assert!(staged.overflowed);
        assert_eq!(
            staged.as_str().unwrap(),
            format!("{fill}=é"),
            "nothing partial"
        );
    }

    #[test]
    fn digits_are_decimal_and_padded_as_asked() {
        for (n, width, text) in [
            (0, 1, "0"),
            (7, 1, "7"),
            (7, 6, "000007"),
            (123_456, 6, "123456"),
            (999_999, 6, "999999"),
            (u64::MAX, 1, "18446744073709551615"),
        ] {
            let mut out = String::new();
            write_u64(&mut out, n, width).unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn the_time_is_tracing_subscribers_to_the_microsecond() {
        let mut prefix = String::new();
        for (second, text) in [
            (0, "1970-01-01T00:00:00."),
            (951_782_400, "2000-02-29T00:00:00."),
            (1_700_000_000, "2023-11-14T22:13:20."),
            (4_102_444_799, "2099-12-31T23:59:59."),
        ] {
            prefix.clear();
            second_prefix(&mut prefix, second).unwrap();
            assert_eq!(prefix, text);
        }
        // Both clocks read now: equal up to the second unless a second
        // ended in between, so try again then.
        for _ in 0..3 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            write_now(&mut Writer::new(&mut ours)).unwrap();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), "2026-11-30T14:54:12.123456Z".len(), "{ours}");
            assert_eq!(theirs.len(), ours.len(), "{theirs}");
            if ours[..20] == theirs[..20] {
                assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()) && ours.ends_with('Z'));
                return;
            }
        }
        panic!("the seconds never agreed");
    }

    #[test]
    fn a_message_is_always_one_line_without_terminal_escapes() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Captured::default();
        let o = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || o.clone())
                .event_format(Plain)
                .fmt_fields(PlainFields),
        );
        let forged = "forged\n2026-01-01T00:00:00Z  INFO \u{1b}[31mred";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(reason = "a\nb", "{}", forged);
            // A message given as a string is written by another path.
            tracing::warn!(message = forged, reason = "a\nb");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in lines {
            assert!(!line.contains('\u{1b}'), "{line}");
            assert!(
                line.ends_with(r#"forged\n2026-01-01T00:00:00Z  INFO \u{1b}[31mred reason="a\nb""#),
                "{line}"
            );
        }
    }

    #[test]
    fn dropping_the_flusher_writes_everything_left() {
        let (sink, probe) = sink();
        let (writer, flusher) = spawn(1 << 20, sink).unwrap();
        (&writer).write_all(b"last words\n").unwrap();
        drop(flusher);
        let written: Vec<u8> = probe.writes.try_iter().flatten().collect();
        assert_eq!(written, b"last words\n");
    }
}
