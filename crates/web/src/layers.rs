//! The layers around every route, outermost first (see the crate docs for why
//! in this order).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use metrics::{Label, SharedString};
use pin_project_lite::pin_project;
use tokio::time::{Instant as Deadline, Sleep};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::csrf::{Csrf, CsrfLayer};

use crate::scope::{self, Scope};
use crate::{AppState, auth, error};

/// Pomerium's identity header.
pub(crate) const ASSERTION: HeaderName = HeaderName::from_static("x-pomerium-jwt-assertion");
/// Kept when a proxy in front (Pomerium's Envoy) set one, so logs line up.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// No script anywhere, styles and images only from this origin, forms only
/// to this origin, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Whether a metrics recorder is installed (`METRICS_ADDR`): without one
/// the edge skips building labels, which allocate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics(pub bool);

/// The routes inside every layer, outermost first.
pub(crate) type Layered = AroundService<
    Edge,
    AroundService<error::Render, WithDeadline<Csrf<auth::Authenticate<Router>>>>,
>;

pub(crate) fn wrap(
    routes: Router<AppState>,
    state: AppState,
    timeout: Duration,
    metrics: Metrics,
) -> Layered {
    // The layers wrap the router, once, rather than each route: a layer
    // given to `Router::layer` is boxed into every route, and the router
    // clones that box (and the app state in each layer of it) for every
    // request it routes. None of the layers is `from_fn`, which clones the
    // rest of the stack, boxes it and boxes its future on every request.
    // The caller is checked before routing: a stranger learns nothing of
    // which routes exist, and an oversized body is refused as a stranger's.
    // Every body is read by an extractor (`Form`, `JsonBody`, Slack's
    // `Bytes`), which stops at the cap with 413: a cap wrapping the body
    // would box the request's and the response's bodies again on every
    // request.
    //
    // Only the router knows which route matched: with a recorder, a hook
    // on each route hands its pattern out to the edge.
    let routes = if metrics.0 {
        routes.route_layer(AroundLayer(Matched))
    } else {
        routes
    };
    ServiceBuilder::new()
        // Outermost, so the status counted and logged is the one sent
        // (timeouts and rendered errors included).
        .layer(AroundLayer(Edge(metrics)))
        .layer(AroundLayer(error::Render(state.clone())))
        .layer(DeadlineLayer(timeout))
        .layer(CsrfLayer::new())
        .layer(auth::AuthenticateLayer(state.clone()))
        .service(routes.with_state(state))
}

/// Work done before and after the services inside, without waiting.
pub(crate) trait Around: Clone + Send + Sync + 'static {
    /// What [`Around::after`] needs to know of the request.
    type Seen: Send + 'static;
    /// Reads (and may change) the request; the scope returned is entered
    /// whenever the services inside run, and around `after`.
    fn before(&self, request: &mut Request) -> (Self::Seen, Scope);
    fn after(&self, seen: Self::Seen, response: Response) -> Response;
}

/// An [`Around`] as a layer.
#[derive(Debug, Clone)]
pub(crate) struct AroundLayer<A>(pub A);

impl<A: Around, S> Layer<S> for AroundLayer<A> {
    type Service = AroundService<A, S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            around: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AroundService<A, S> {
    around: A,
    inner: S,
}

impl<A, S> Service<Request> for AroundService<A, S>
where
    A: Around,
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AroundFuture<A, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let (seen, mut scope) = self.around.before(&mut request);
        let inner = {
            let _entered = scope.enter();
            self.inner.call(request)
        };
        AroundFuture {
            inner,
            scope,
            around: self.around.clone(),
            seen: Some(seen),
        }
    }
}

pin_project! {
    pub(crate) struct AroundFuture<A: Around, F> {
        #[pin]
        inner: F,
        scope: Scope,
        around: A,
        seen: Option<A::Seen>,
    }
}

impl<A, F, E> Future for AroundFuture<A, F>
where
    A: Around,
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.scope.enter();
        let result = ready!(this.inner.poll(cx));
        let seen = this
            .seen
            .take()
            .expect("an AroundFuture polled after it finished");
        Poll::Ready(result.map(|response| this.around.after(seen, response)))
    }
}

/// Answers 503 when the services inside take longer than the timeout from
/// the request's arrival. The timer is only armed if they do not answer at
/// their first poll: a page drawn from memory (most `GET /`s) never enters
/// the runtime's timer wheel, which tower-http's timeout entered and left
/// on every request (its clock is polled first), under a lock both workers
/// share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineLayer(pub Duration);

impl<S> Layer<S> for DeadlineLayer {
    type Service = WithDeadline<S>;

    fn layer(&self, inner: S) -> WithDeadline<S> {
        WithDeadline {
            inner,
            timeout: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct WithDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<Request> for WithDeadline<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(request),
            at: Deadline::now() + self.timeout,
            timer: None,
        }
    }
}

pin_project! {
    pub(crate) struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        at: Deadline,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep_until(*this.at)));
        }
        let timer = this.timer.as_pin_mut().expect("armed above");
        ready!(timer.poll(cx));
        // A bare status: the error layer outside draws the page.
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Poll::Ready(Ok(response))
    }
}

/// What every response goes through, in one layer: identity headers marked
/// sensitive, a request id, the request's scope (see [`crate::scope`]) and
/// its access-log line, the metrics, security headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge(Metrics);

pub(crate) struct EdgeSeen {
    started: Instant,
    id: HeaderValue,
    /// With a recorder: where the route that matches leaves its pattern.
    route: Option<RouteSlot>,
    method: &'static str,
}

impl Around for Edge {
    type Seen = EdgeSeen;

    fn before(&self, request: &mut Request) -> (EdgeSeen, Scope) {
        let started = Instant::now();
        let headers = request.headers_mut();
        // One pass over a request's few headers, the request id's first
        // value found on the way: a lookup by name hashes it, and `entry`
        // makes room for an insert first.
        let mut sent = None;
        for (name, value) in headers.iter_mut() {
            if *name == ASSERTION || *name == header::AUTHORIZATION || *name == header::COOKIE {
                value.set_sensitive(true);
            } else if sent.is_none() && *name == REQUEST_ID {
                sent = Some(value.clone());
            }
        }
        let id = match sent {
            Some(id) => id,
            None => {
                let id = next_request_id();
                headers.insert(REQUEST_ID, id.clone());
                id
            }
        };
        let Edge(Metrics(counted)) = *self;
        let route = counted.then(|| {
            let slot = RouteSlot::default();
            request.extensions_mut().insert(slot.clone());
            slot
        });
        let method = method_label(request.method());
        let path = request.uri().path_and_query().cloned();
        let scope = Scope::of(scope::Request::new(method, path, id.clone()));
        let seen = EdgeSeen {
            started,
            id,
            route,
            method,
        };
        (seen, scope)
    }

    fn after(&self, seen: EdgeSeen, mut response: Response) -> Response {
        let elapsed = seen.started.elapsed();
        let status = response.status();
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        scope::log_served(status.as_u16(), latency_us);
        if let Some(route) = seen.route {
            let labels = [
                Label::new("route", route.label()),
                Label::from_static_parts("method", seen.method),
                Label::new("status", status_label(status)),
            ];
            metrics::counter!("pomerium_jit_http_requests_total", labels.iter()).increment(1);
            metrics::histogram!("pomerium_jit_http_request_duration_seconds", labels.iter())
                .record(elapsed.as_secs_f64());
        }
        edge_headers(response.headers_mut(), seen.id);
        response
    }
}

/// The request id and the security headers, in room made at once rather
/// than by doubling. A page's headers hold the security headers already
/// ([`secured_headers`]): inserting them, each name hashed, was 2,100 of
/// `GET /`'s 47,400 instructions (callgrind).
fn edge_headers(h: &mut HeaderMap, id: HeaderValue) {
    if !is_secured(h) {
        h.reserve(EDGE_HEADERS);
        security_headers(h);
    }
    h.insert(REQUEST_ID, id);
}

/// A header map with the security headers in it, an empty request id that
/// the edge replaces, and room for `more`; for responses made often, as
/// clones. A clone copies the headers without hashing a name, and the
/// edge, finding this app's policy there, only fills in the id: a clone's
/// list of headers is exactly as long as the original's, and an insert
/// that lengthened it reallocated it on every page. Nothing else in the
/// app sets `Content-Security-Policy`, so its value says the rest were put
/// in with it.
pub(crate) fn secured_headers(more: usize) -> HeaderMap {
    // One more: a map grows at an insert when full, even one that replaces.
    let mut h = HeaderMap::with_capacity(EDGE_HEADERS + more + 1);
    security_headers(&mut h);
    h.insert(REQUEST_ID, HeaderValue::from_static(""));
    h
}

fn is_secured(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_SECURITY_POLICY)
        .is_some_and(|csp| csp.as_bytes() == CSP.as_bytes())
}

/// Where the route that matched a request leaves its pattern for the
/// edge, which runs outside the router: shared, as the router's answer may
/// be replaced on its way out (the error pages).
#[derive(Debug, Clone, Default)]
struct RouteSlot(Arc<OnceLock<SharedString>>);

impl RouteSlot {
    /// The matched route's pattern; `unmatched` for paths no route knows
    /// (404s) and for requests refused before routing.
    fn label(&self) -> SharedString {
        self.0
            .get()
            .cloned()
            .unwrap_or(SharedString::const_str("unmatched"))
    }
}

/// Put on each route when requests are counted: hands the route's pattern
/// to the edge's [`RouteSlot`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matched;

impl Around for Matched {
    type Seen = ();

    fn before(&self, request: &mut Request) -> ((), Scope) {
        let extensions = request.extensions();
        if let (Some(slot), Some(matched)) = (
            extensions.get::<RouteSlot>(),
            extensions.get::<MatchedPath>(),
        ) {
            let _ = slot.0.set(SharedString::from(matched.as_str().to_owned()));
        }
        ((), Scope::none())
    }

    fn after(&self, (): (), response: Response) -> Response {
        response
    }
}

/// The statuses this app sends, without an allocation; any other by number.
fn status_label(status: StatusCode) -> SharedString {
    const KNOWN: [&str; 17] = [
        "200", "204", "303", "304", "400", "403", "404", "405", "409", "413", "415", "422", "429",
        "500", "502", "503", "504",
    ];
    let code = status.as_str();
    match KNOWN.iter().find(|k| **k == code) {
        Some(k) => SharedString::const_str(k),
        None => SharedString::from(code.to_owned()),
    }
}

/// Standard methods by name; any other token a client invents is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Request ids for requests that come without one: a random prefix per
/// process and a counter, unique across replicas and restarts without a
/// draw from the operating system's random source per request.
fn next_request_id() -> HeaderValue {
    static IDS: LazyLock<(String, AtomicU64)> = LazyLock::new(|| {
        let mut prefix = [0u8; 6];
        // Only fails if the operating system has no randomness to give.
        aws_lc_rs::rand::fill(&mut prefix)
            .expect("the operating system's random number generator failed");
        let prefix = prefix.iter().map(|b| format!("{b:02x}")).collect();
        (prefix, AtomicU64::new(1))
    });
    thread_local! {
        /// This thread's next number and the end of its block.
        static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    let (prefix, counter) = &*IDS;
    let n = BLOCK.with(|block| {
        let (next, end) = block.get();
        let (n, end) = if next < end {
            (next, end)
        } else {
            take_block(counter)
        };
        block.set((n + 1, end));
        n
    });
    request_id(prefix, n)
}

/// How many request numbers a thread takes at once: the counter is written
/// by every worker, and taking one number per request moved its cache
/// line between the cores on every request.
const ID_BLOCK: u64 = 1024;

/// The next block of numbers, as its first and the end past its last.
fn take_block(counter: &AtomicU64) -> (u64, u64) {
    let first = counter.fetch_add(ID_BLOCK, Ordering::Relaxed);
    (first, first + ID_BLOCK)
}

/// `{prefix}-{n:x}`, the digits put in place: `format!` was 800 of
/// `GET /`'s 70,000 instructions (callgrind).
fn request_id(prefix: &str, n: u64) -> HeaderValue {
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('-');
    let digits = (u64::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for at in (0..digits).rev() {
        let nibble = (n >> (at * 4)) & 0xf;
        id.push(char::from_digit(nibble as u32, 16).expect("a nibble is a hex digit"));
    }
    HeaderValue::try_from(id).expect("hex digits and a dash")
}

/// How many headers [`security_headers`] may add.
const SECURITY_HEADERS: usize = 8;
/// How many headers the edge may add to a response: those and the request id.
pub(crate) const EDGE_HEADERS: usize = SECURITY_HEADERS + 1;

/// No script, no framing, no sniffing; pages are never cached unless they
/// say otherwise (the assets do).
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks taken by threads in turn never overlap, and a thread's ids
    /// are all different.
    #[test]
    fn request_numbers_come_in_blocks_that_never_overlap() {
        let counter = AtomicU64::new(1);
        let (a, b) = (take_block(&counter), take_block(&counter));
        assert_eq!(a, (1, 1 + ID_BLOCK));
        assert_eq!(b, (1 + ID_BLOCK, 1 + 2 * ID_BLOCK));
        let ids: std::collections::HashSet<_> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        (0..3 * ID_BLOCK)
                            .map(|_| next_request_id())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("thread"))
                .collect()
        });
        assert_eq!(ids.len(), 6 * ID_BLOCK as usize);
    }

    proptest::proptest! {
        #[test]
        fn request_ids_are_the_prefix_and_the_counter_in_hex(n: u64) {
            let id = request_id("0a1b2c3d4e5f", n);
            proptest::prop_assert_eq!(id.to_str().unwrap(), format!("0a1b2c3d4e5f-{n:x}"));
        }
    }

    /// A service that answers after `delay` (never, if `None`).
    fn answering_after(
        delay: Option<Duration>,
    ) -> WithDeadline<tower::util::BoxCloneSyncService<Request, Response, std::convert::Infallible>>
    {
        let inner = tower::service_fn(move |_: Request| async move {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
            Ok(Response::new(axum::body::Body::from("done")))
        });
        DeadlineLayer(Duration::from_secs(30)).layer(tower::util::BoxCloneSyncService::new(inner))
    }

    async fn status(
        mut service: impl Service<Request, Response = Response, Error = std::convert::Infallible>,
    ) -> StatusCode {
        let request = Request::new(axum::body::Body::empty());
        // Past the deadline and then some: a deadline that never fires fails here.
        tokio::time::timeout(Duration::from_secs(60), service.call(request))
            .await
            .expect("answered by the deadline")
            .expect("infallible")
            .status()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_deadline_is_cut_off_with_503() {
        let started = tokio::time::Instant::now();
        assert_eq!(
            status(answering_after(None)).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn answers_within_the_deadline_pass_through() {
        for delay in [Duration::ZERO, Duration::from_secs(29)] {
            assert_eq!(status(answering_after(Some(delay))).await, StatusCode::OK);
        }
    }

    /// A page, with a notice's cookie, takes the edge's headers without its
    /// header map growing (a reallocation on every page).
    #[test]
    fn pages_come_with_room_for_the_edges_headers() {
        #[derive(askama::Template)]
        #[template(source = "<p>{{ who }}</p>", ext = "html")]
        struct Probe {
            who: &'static str,
        }
        let last = std::sync::atomic::AtomicUsize::new(0);
        let mut response = crate::pages::html(&Probe { who: "a&b" }, &last);
        assert_eq!(last.load(Ordering::Relaxed), "<p>a&#38;b</p>".len());
        let h = response.headers_mut();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("notice=x"));
        let room = h.capacity();
        edge_headers(h, HeaderValue::from_static("id"));
        assert_eq!(h.len(), 3 + EDGE_HEADERS);
        assert_eq!(h.capacity(), room, "the header map grew");
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CONTENT_LENGTH], "14");
        assert_eq!(h[REQUEST_ID], "id");
    }

    /// The headers, sorted, that the edge leaves on `h`.
    fn after_the_edge(mut h: HeaderMap) -> Vec<(String, HeaderValue)> {
        edge_headers(&mut h, HeaderValue::from_static("id"));
        let mut all: Vec<_> = h.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// A response made from [`secured_headers`] leaves the edge with the
    /// same headers as one the edge secures itself.
    #[test]
    fn secured_headers_are_the_edges_own() {
        let secured = after_the_edge(secured_headers(0));
        assert_eq!(secured, after_the_edge(HeaderMap::new()));
        assert_eq!(secured.len(), EDGE_HEADERS);
    }

    /// A response with a policy of its own, or with some of the headers
    /// only, gets all of the edge's, its policy replaced.
    #[test]
    fn only_the_apps_own_policy_counts_as_secured() {
        let mut own = HeaderMap::new();
        own.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src *"),
        );
        own.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        assert_eq!(after_the_edge(own), after_the_edge(HeaderMap::new()));
    }

    /// Every value of the identity headers is marked sensitive (kept out
    /// of any `Debug` of the request), and nothing else is; a request
    /// without an id gets one.
    #[test]
    fn identity_headers_are_marked_sensitive_every_value_of_them() {
        let mut request = Request::get("/")
            .header(ASSERTION, "token")
            .header(header::COOKIE, "a=1")
            .header(header::HOST, "app")
            .header(header::COOKIE, "b=2")
            .header(header::AUTHORIZATION, "Bearer x")
            .body(axum::body::Body::empty())
            .expect("request");
        let (seen, _scope) = Edge(Metrics(false)).before(&mut request);
        let headers = request.headers();
        let sensitive = |name| headers.get_all(name).iter().map(HeaderValue::is_sensitive);
        assert_eq!(sensitive(ASSERTION).collect::<Vec<_>>(), [true]);
        assert_eq!(sensitive(header::COOKIE).collect::<Vec<_>>(), [true, true]);
        assert_eq!(sensitive(header::AUTHORIZATION).collect::<Vec<_>>(), [true]);
        assert_eq!(sensitive(header::HOST).collect::<Vec<_>>(), [false]);
        assert_eq!(headers[&REQUEST_ID], seen.id);
        assert!(!format!("{headers:?}").contains("token"));
    }

    /// A proxy's id is kept (its first, if it sent two), not replaced.
    #[test]
    fn a_request_id_sent_is_kept() {
        let mut request = Request::get("/")
            .header(header::HOST, "app")
            .header(REQUEST_ID, "first")
            .header(ASSERTION, "token")
            .header(REQUEST_ID, "second")
            .body(axum::body::Body::empty())
            .expect("request");
        let (seen, _scope) = Edge(Metrics(false)).before(&mut request);
        assert_eq!(seen.id, "first");
        let ids: Vec<_> = request.headers().get_all(&REQUEST_ID).iter().collect();
        assert_eq!(ids, ["first", "second"]);
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(&*RouteSlot::default().label(), "unmatched");
        assert_eq!(&*status_label(StatusCode::SEE_OTHER), "303");
        assert_eq!(&*status_label(StatusCode::IM_A_TEAPOT), "418");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("a method token")),
            "other"
        );
    }

    /// Outside the router as the edge is: gives each request a slot and
    /// keeps the label the response came back with.
    #[derive(Clone)]
    struct Probe(Arc<std::sync::Mutex<Vec<String>>>);

    impl Around for Probe {
        type Seen = RouteSlot;

        fn before(&self, request: &mut Request) -> (RouteSlot, Scope) {
            let slot = RouteSlot::default();
            request.extensions_mut().insert(slot.clone());
            (slot, Scope::none())
        }

        fn after(&self, slot: RouteSlot, _response: Response) -> Response {
            self.0
                .lock()
                .expect("labels")
                .push(slot.label().into_owned());
            // As the error pages do: the router's answer is replaced.
            Response::new(axum::body::Body::empty())
        }
    }

    #[tokio::test]
    async fn the_route_label_is_the_pattern_not_the_path() {
        use tower::ServiceExt;
        let labels = Arc::new(std::sync::Mutex::new(Vec::new()));
        let routes = Router::new()
            .route("/requests/{id}", axum::routing::get(|| async { "ok" }))
            .route_layer(AroundLayer(Matched));
        let app = AroundLayer(Probe(labels.clone())).layer(routes);
        for path in ["/requests/42", "/no/such/page"] {
            let request = Request::get(path).body(axum::body::Body::empty());
            app.clone()
                .oneshot(request.expect("request"))
                .await
                .expect("response");
        }
        assert_eq!(
            *labels.lock().expect("labels"),
            ["/requests/{id}", "unmatched"]
        );
    }
}
