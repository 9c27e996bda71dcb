//! Who is asking: the caller as vouched for by Pomerium's signed assertion,
//! and nothing else (no unsigned `X-Pomerium-Claim-*` header, no form field).
//!
//! The assertion is checked before routing ([`authenticate`]), so without one
//! every address but the health checks and the assets answers the same 403,
//! and which routes exist stays hidden.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jit_domain::Email;
use jit_service::{Caller, Route};

use crate::error::Unverified;
use crate::layers::ASSERTION;
use crate::{AppState, WebError};

/// Verifies the assertion of every request to a non-public path and hands
/// the [`Caller`] to the handler; refuses it (403, or 503 when Pomerium's
/// keys cannot be loaded) otherwise.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if is_public(path) {
        return next.run(request).await;
    }
    let route = route_of(path);
    match verify(&state, request.headers(), route).await {
        Ok(caller) => {
            // Shared, not copied: handlers and the error page read it.
            let caller = Arc::new(caller);
            request.extensions_mut().insert(caller.clone());
            let mut response = next.run(request).await;
            // For the error page drawn outside, so it keeps "Signed in as".
            response.extensions_mut().insert(caller);
            response
        }
        Err(e) => e.into_response(),
    }
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

async fn verify(state: &AppState, headers: &HeaderMap, route: Route) -> Result<Caller, WebError> {
    let mut values = headers.get_all(&ASSERTION).iter();
    let value = values.next().ok_or(Unverified::Missing)?;
    // Pomerium sends exactly one; two means something in between added one.
    if values.next().is_some() {
        return Err(Unverified::Repeated.into());
    }
    let token = value.to_str().map_err(|_| Unverified::NotText)?;
    let identity = state
        .verifier
        .verify(token)
        .await
        .map_err(Unverified::Token)?;
    let email = identity.email().map_err(Unverified::Token)?;
    let email = Email::parse(email).map_err(Unverified::Email)?;
    Ok(Caller {
        email,
        groups: identity.groups().clone(),
        claims: identity.claims().clone(),
        route,
    })
}

/// The verified [`Caller`], as [`authenticate`] left it.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(pub Arc<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        // Absent only on a public path, where no handler asks for it.
        let caller = parts
            .extensions
            .get::<Arc<Caller>>()
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
