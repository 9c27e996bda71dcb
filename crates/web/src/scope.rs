//! The request a thread is serving, as its log lines show it.
//!
//! Every line logged while a request is served carries the request's
//! method, path and id (`request{method="GET" path="/" request_id="…"}:` in
//! the text log). A tracing span does that at a price paid by every request,
//! logged or not: a slot in the registry, the fields formatted into a string
//! of their own, reference counts on every poll, the close (about 3% of
//! `GET /`'s rate held side by side). Where the log's format can read it
//! ([`RequestLog::Scope`]: the text log outside a terminal, filtered by
//! level and target), the edge instead puts the request in a thread-local
//! slot while the request's services run, and the format writes the same
//! prefix from there. The JSON log, a terminal's coloured one and span
//! directives in `RUST_LOG` (`[request]=debug`) read tracing's spans, so
//! they get the span.

use std::cell::RefCell;
use std::sync::OnceLock;

use axum::http::HeaderValue;
use axum::http::uri::PathAndQuery;
use tracing::Span;

/// How a request's fields reach the lines logged while it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLog {
    /// A tracing span named `request`, for any subscriber.
    Span,
    /// [`Request`], read by the log's format through [`with_current`].
    Scope,
}

static REQUEST_LOG: OnceLock<RequestLog> = OnceLock::new();

/// The target of the request's span and of the access log's `served` event.
pub const ACCESS_TARGET: &str = "jit_web::layers";

/// Writes the access log's line for a request served, in place of the edge's
/// `served` event, where the log's format reads requests from their scopes
/// ([`RequestLog::Scope`]): straight into the log, without tracing's
/// dispatch, its visitor and its formatter's writer (2,300 of `GET /`'s
/// 46,000 instructions).
pub trait AccessLog: Send + Sync {
    /// The line for `request`, answered with `status` after `latency_us`
    /// microseconds, as the format writes the `served` event (no span is
    /// open where the edge runs, so the line names none).
    fn served(&self, request: &Request, status: u16, latency_us: u64);
}

static ACCESS_LOG: OnceLock<Box<dyn AccessLog>> = OnceLock::new();

/// Hands the access log's lines to `log`; only the first call counts, and
/// only with [`RequestLog::Scope`]. A line is handed over only while the
/// edge's scope is current, which it is only when the log's filter lets the
/// `served` event through.
pub fn set_access_log(log: Box<dyn AccessLog>) {
    let _ = ACCESS_LOG.set(log);
}

/// The access log's line for a request answered with `status` after
/// `latency_us` microseconds: through the [`AccessLog`] set, if there is one
/// and a request's scope is current, else as the `served` event.
pub(crate) fn log_served(status: u16, latency_us: u64) {
    let written = ACCESS_LOG.get().is_some_and(|log| {
        with_current(|request| request.map(|r| log.served(r, status, latency_us)).is_some())
    });
    if !written {
        served_event(status, latency_us);
    }
}

/// The access log's `served` event, as every format but the direct line
/// gets it (and as that line is tested against).
pub fn served_event(status: u16, latency_us: u64) {
    // The message as a string field: the text log copies it, where a
    // formatted message goes through `fmt` on every request.
    tracing::info!(
        target: ACCESS_TARGET,
        message = "served",
        status,
        latency_us
    );
}

/// Says how the process's log subscriber, installed alongside, reads a
/// request's fields; a span until this is called. Only the first call counts.
pub fn set_request_log(how: RequestLog) {
    let _ = REQUEST_LOG.set(how);
}

/// A request's fields, as its log lines show them.
#[derive(Debug, Clone)]
pub struct Request {
    method: &'static str,
    path: Option<PathAndQuery>,
    id: HeaderValue,
}

impl Request {
    pub fn new(method: &'static str, path: Option<PathAndQuery>, id: HeaderValue) -> Self {
        Request { method, path, id }
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The path without its query, as the span shows it (`/` when the
    /// request named none).
    pub fn path(&self) -> &str {
        self.path.as_ref().map_or("/", PathAndQuery::path)
    }

    /// The request id, empty if it is not visible ASCII (as the span shows it).
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }

    /// Runs `f` with this request as the thread's current one.
    pub fn in_scope<T>(self, f: impl FnOnce() -> T) -> T {
        let mut scope = Scope::Request(Some(self));
        let _entered = scope.enter();
        f()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Request>> = const { RefCell::new(None) };
}

/// Reads the request whose services this thread is running, if any.
pub fn with_current<T>(read: impl FnOnce(Option<&Request>) -> T) -> T {
    let mut read = Some(read);
    // Inside a swap (never calls out) or after the thread's slot is gone:
    // no request.
    let found = CURRENT.try_with(|current| {
        let current = current.try_borrow().ok();
        let read = read.take().expect("called once");
        read(current.as_ref().and_then(|c| c.as_ref()))
    });
    match found {
        Ok(value) => value,
        Err(_) => (read.take().expect("not called"))(None),
    }
}

/// Where a request's log lines find its fields while its services run.
pub(crate) enum Scope {
    Span(Span),
    /// `None` while entered: the request is in the thread's slot.
    Request(Option<Request>),
}

impl Scope {
    /// No fields: the lines logged are the request's lines without them.
    pub(crate) fn none() -> Scope {
        Scope::Span(Span::none())
    }

    /// The scope of `request` as the process's log reads it; none when
    /// the access log is off (the span would be disabled).
    pub(crate) fn of(request: Request) -> Scope {
        match REQUEST_LOG.get() {
            // Enabled as the span would be (its target is the edge's).
            Some(RequestLog::Scope) => {
                if tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
                    Scope::Request(Some(request))
                } else {
                    Scope::none()
                }
            }
            None | Some(RequestLog::Span) => Scope::Span(tracing::info_span!(
                target: ACCESS_TARGET,
                "request",
                method = request.method(),
                path = request.path(),
                request_id = request.id()
            )),
        }
    }

    /// Makes this the thread's current scope until the guard is dropped.
    pub(crate) fn enter(&mut self) -> Entered<'_> {
        match self {
            Scope::Span(span) => Entered::Span {
                _entered: span.enter(),
            },
            Scope::Request(slot) => {
                swap(slot);
                Entered::Request(slot)
            }
        }
    }
}

/// Puts `slot`'s request in the thread's slot and the one there in `slot`:
/// entering and leaving are the same move, and scopes entered within
/// scopes leave in order.
fn swap(slot: &mut Option<Request>) {
    CURRENT.with_borrow_mut(|current| std::mem::swap(current, slot));
}

/// Leaves the scope when dropped.
pub(crate) enum Entered<'a> {
    Span {
        _entered: tracing::span::Entered<'a>,
    },
    Request(&'a mut Option<Request>),
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Entered::Request(slot) = self {
            swap(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &'static str) -> Scope {
        Scope::Request(Some(Request::new(
            "GET",
            Some(PathAndQuery::from_static("/a?b=c")),
            HeaderValue::from_static(id),
        )))
    }

    fn current_id() -> Option<String> {
        with_current(|r| r.map(|r| r.id().to_owned()))
    }

    #[test]
    fn a_scope_is_current_while_entered_and_scopes_within_scopes_leave_in_order() {
        let (mut outer, mut inner) = (request("outer"), request("inner"));
        assert_eq!(current_id(), None);
        {
            let _outer = outer.enter();
            assert_eq!(current_id().as_deref(), Some("outer"));
            {
                let _inner = inner.enter();
                assert_eq!(current_id().as_deref(), Some("inner"));
            }
            assert_eq!(current_id().as_deref(), Some("outer"));
        }
        assert_eq!(current_id(), None);
        // Each scope holds its own request again, ready to be entered anew.
        let _again = inner.enter();
        assert_eq!(current_id().as_deref(), Some("inner"));
        let path = with_current(|r| r.map(|r| r.path().to_owned()));
        assert_eq!(path.as_deref(), Some("/a"));
    }

    #[test]
    fn a_panic_inside_a_scope_leaves_it() {
        let mut scope = request("panics");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _entered = scope.enter();
            panic!("inside");
        }));
        assert!(caught.is_err());
        assert_eq!(current_id(), None);
    }
}
