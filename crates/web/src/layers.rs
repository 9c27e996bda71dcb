//! The layers around every route, outermost first (see the crate docs for why
//! in this order).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::{AppState, BODY_LIMIT, auth, error};

/// Pomerium's identity header.
pub(crate) const ASSERTION: HeaderName = HeaderName::from_static("x-pomerium-jwt-assertion");
/// Kept when a proxy in front (Pomerium's Envoy) set one, so logs line up.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// No script anywhere, styles and images only from this origin, forms only
/// to this origin, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn wrap(routes: Router<AppState>, state: AppState, timeout: Duration) -> Router {
    let layers = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            ASSERTION,
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span)
                .on_response(access_log),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(map_response(security_headers))
        .layer(from_fn_with_state(state.clone(), error::render))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CsrfLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT));
    routes
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(layers)
        // Outermost, so the status counted is the one sent (timeouts and
        // rendered errors included). `Router::layer` wraps each route, so the
        // matched route is known here.
        .layer(from_fn(count))
        .with_state(state)
}

/// Requests by route, method and status, and their latency. The route is
/// the pattern matched (`/requests/{id}`), never the path asked for, so the
/// label set stays small whatever the traffic.
async fn count(request: Request, next: Next) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("pomerium_jit_http_requests_total", &labels).increment(1);
    metrics::histogram!("pomerium_jit_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The matched route, or `unmatched` for paths no route knows (404s).
fn route_label(matched: Option<&MatchedPath>) -> String {
    matched.map_or("unmatched", MatchedPath::as_str).to_owned()
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
#[derive(Debug, Clone)]
struct RequestIds(Arc<(String, AtomicU64)>);

impl RequestIds {
    fn new() -> Self {
        let mut prefix = [0u8; 6];
        // Only fails if the operating system has no randomness to give.
        aws_lc_rs::rand::fill(&mut prefix)
            .expect("the operating system's random number generator failed");
        let prefix = prefix.iter().map(|b| format!("{b:02x}")).collect();
        RequestIds(Arc::new((prefix, AtomicU64::new(1))))
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let (prefix, counter) = &*self.0;
        let n = counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{prefix}-{n:x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// The access log line, inside the request's span (method, path, id):
/// the status and the latency in microseconds, as numbers.
fn access_log(response: &Response, latency: Duration, _: &tracing::Span) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        status = response.status().as_u16(),
        latency_us = micros,
        "served"
    );
}

/// Method, path and request id: no query (it may hold an email), no headers.
fn span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), path = request.uri().path(), request_id = id)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
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
    // Pages show who has access; only the assets say they may be cached.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(route_label(None), "unmatched");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("a method token")),
            "other"
        );
    }

    #[tokio::test]
    async fn the_route_label_is_the_pattern_not_the_path() {
        use tower::ServiceExt;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let sink = seen.clone();
        let app: Router = Router::new()
            .route("/requests/{id}", axum::routing::get(|| async { "ok" }))
            .layer(from_fn(move |request: Request, next: Next| {
                let sink = sink.clone();
                async move {
                    *sink.lock().expect("label") =
                        Some(route_label(request.extensions().get::<MatchedPath>()));
                    next.run(request).await
                }
            }));
        let request = Request::get("/requests/42").body(axum::body::Body::empty());
        app.oneshot(request.expect("request"))
            .await
            .expect("response");
        assert_eq!(
            seen.lock().expect("label").as_deref(),
            Some("/requests/{id}")
        );
    }
}
