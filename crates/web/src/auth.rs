//! Who is asking: the caller as vouched for by Pomerium's signed assertion,
//! and nothing else (no unsigned `X-Pomerium-Claim-*` header, no form field).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jit_domain::Email;
use jit_service::Caller;

use crate::error::Unverified;
use crate::layers::ASSERTION;
use crate::{AppState, WebError};

/// Extracts the verified [`Caller`]; refuses the request (403, or 503 when
/// Pomerium's keys cannot be loaded) when there is none.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(pub Caller);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let mut values = parts.headers.get_all(&ASSERTION).iter();
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
        Ok(SignedIn(Caller {
            email,
            groups: identity.groups().to_vec(),
        }))
    }
}
