//! Who is asking: the caller as vouched for by Pomerium's signed assertion,
//! and nothing else (no unsigned `X-Pomerium-Claim-*` header, no form field).
//!
//! The assertion is checked before routing ([`Authenticate`]), so without one
//! every address but the health checks and the assets answers the same 403,
//! and which routes exist stays hidden.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use jit_identity::{Identity, VerifyError};
use jit_service::{Caller, Route};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Unverified;
use crate::layers::ASSERTION;
use crate::{AppState, WebError};

/// Verifies the assertion of every request to a non-public path and hands
/// the [`Caller`] to the handler; refuses it (403, or 503 when Pomerium's
/// keys cannot be loaded) otherwise.
#[derive(Debug, Clone)]
pub(crate) struct AuthenticateLayer(pub AppState);

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate {
            state: self.0.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Authenticate<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Authenticated<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let path = request.uri().path();
        if is_public(path) {
            return Authenticated::Admitted {
                inner: self.inner.call(request),
                caller: None,
            };
        }
        let route = route_of(path);
        // A token seen before is answered from the cache without waiting;
        // only a new one (a signature check, perhaps a key fetch) needs a
        // future of its own.
        let known = match assertion(request.headers()) {
            Ok(token) => self
                .state
                .verifier
                .verify_known(token, |identity| caller_of(identity, route))
                .map(|v| v.map_err(untrusted).flatten()),
            Err(e) => Some(Err(e)),
        };
        match known {
            Some(Ok(caller)) => {
                let caller = admit(&mut request, caller);
                Authenticated::Admitted {
                    inner: self.inner.call(request),
                    caller: Some(caller),
                }
            }
            Some(Err(e)) => Authenticated::Refused {
                response: Some(e.into_response()),
            },
            None => {
                // The service that was made ready goes; a clone stays.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                let state = self.state.clone();
                Authenticated::Checking {
                    future: Box::pin(async move {
                        let verified = match assertion(request.headers()) {
                            Ok(token) => state.verifier.verify(token).await.map_err(untrusted),
                            Err(e) => Err(e),
                        };
                        match verified.and_then(|identity| caller_of(&identity, route)) {
                            Ok(caller) => {
                                let caller = admit(&mut request, caller);
                                let response = inner.call(request).await?;
                                Ok(keep_for_error_page(response, caller))
                            }
                            Err(e) => Ok(e.into_response()),
                        }
                    }),
                }
            }
        }
    }
}

/// Hands the caller to the handler; the error page may read it too. A
/// clone is one reference count, on a line this request has just read.
fn admit(request: &mut Request, caller: Caller) -> Caller {
    request.extensions_mut().insert(caller.clone());
    caller
}

pin_project! {
    /// The response of [`Authenticate`].
    #[project = Projected]
    pub(crate) enum Authenticated<F, E> {
        Admitted { #[pin] inner: F, caller: Option<Caller> },
        Refused { response: Option<Response> },
        Checking { future: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>> },
    }
}

impl<F, E> Future for Authenticated<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Admitted { inner, caller } => inner.poll(cx).map(|result| {
                result.map(|response| match caller.take() {
                    Some(caller) => keep_for_error_page(response, caller),
                    None => response,
                })
            }),
            Projected::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a refusal polled after it finished"))),
            Projected::Checking { future } => future.as_mut().poll(cx),
        }
    }
}

/// An error page drawn outside keeps the navigation and "Signed in as";
/// other responses carry nothing more.
fn keep_for_error_page(mut response: Response, caller: Caller) -> Response {
    if crate::error::is_failure(&response) {
        response.extensions_mut().insert(caller);
    }
    response
}

/// Paths anyone may reach: they reveal nothing about anyone. Slack's
/// endpoint checks Slack's signature instead (404 when Slack is not set up).
fn is_public(path: &str) -> bool {
    path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/assets/")
        || path == crate::slack::PATH
}

/// The same raw path the router matches on, so whatever a handler under
/// `/admin` serves came through Pomerium's `/admin` route.
fn route_of(path: &str) -> Route {
    if path == "/admin" || path.starts_with("/admin/") {
        Route::Admin
    } else {
        Route::Public
    }
}

/// The one assertion Pomerium sent, as text.
fn assertion(headers: &HeaderMap) -> Result<&str, WebError> {
    let mut values = headers.get_all(&ASSERTION).iter();
    let value = values.next().ok_or(Unverified::Missing)?;
    // Pomerium sends exactly one; two means something in between added one.
    if values.next().is_some() {
        return Err(Unverified::Repeated.into());
    }
    Ok(value.to_str().map_err(|_| Unverified::NotText)?)
}

fn untrusted(e: VerifyError) -> WebError {
    Unverified::Token(e).into()
}

/// Who a verified assertion vouches for.
fn caller_of(identity: &Identity, route: Route) -> Result<Caller, WebError> {
    let profile = match identity.profile() {
        Some(Ok(profile)) => Arc::clone(profile),
        Some(Err(e)) => return Err(Unverified::Email(e.clone()).into()),
        None => return Err(Unverified::Token(VerifyError::MissingEmail).into()),
    };
    Ok(Caller { profile, route })
}

/// The verified [`Caller`], as [`Authenticate`] left it.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        // Absent only on a public path, where no handler asks for it.
        let caller = parts
            .extensions
            .get::<Caller>()
            .ok_or(Unverified::Missing)?;
        Ok(SignedIn(caller.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_prefix_is_the_admin_route() {
        for path in [
            "/admin",
            "/admin/",
            "/admin/api/v1/requests",
            "/admin/audit",
        ] {
            assert_eq!(route_of(path), Route::Admin, "{path}");
        }
        for path in [
            "/",
            "/administrator",
            "/api/v1/requests",
            "//admin/x",
            "/x/admin",
        ] {
            assert_eq!(route_of(path), Route::Public, "{path}");
        }
    }

    #[test]
    fn only_health_checks_assets_and_slacks_endpoint_are_public() {
        for path in ["/healthz", "/readyz", "/assets/app.css", "/slack/actions"] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/",
            "/nope",
            "/healthz/x",
            "/assets",
            "/api/v1/me",
            "/admin",
            "/slack",
            "/slack/",
            "/slack/actions/",
            "/slack/actions/x",
            "/slack/other",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }
}
