//! Forms and query strings, parsed straight into domain types: a handler
//! receives an [`Email`] or a [`GrantDuration`], never a string to check.
//!
//! Every field is read as an optional string first, so a missing or wrong
//! field is reported by name ("the field `email` is missing") rather than as
//! a deserializer's complaint.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use jit_domain::{Email, GrantDuration, Reason, RequestId};
use serde::de::DeserializeOwned;

use crate::WebError;

/// A typed input built from its raw, all-optional form.
pub(crate) trait Input: Sized {
    type Raw: DeserializeOwned + Default;
    fn parse(raw: Self::Raw) -> Result<Self, WebError>;
}

/// A form body (`application/x-www-form-urlencoded`), parsed into `T`. An
/// empty body needs no content type: the Go original's "Request access"
/// button sent none, and neither does `curl -X POST`.
#[derive(Debug)]
pub(crate) struct Form<T>(pub T);

impl<S: Send + Sync, T: Input> FromRequest<S> for Form<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        let is_form = request.headers().get(header::CONTENT_TYPE).map(|ct| {
            ct.to_str().is_ok_and(|ct| {
                let essence = ct.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    WebError::TooLarge
                } else {
                    WebError::Unreadable {
                        what: "form",
                        message: rejection.body_text(),
                    }
                }
            })?;
        let raw = match is_form {
            Some(true) => {
                serde_urlencoded::from_bytes(&body).map_err(|e| WebError::Unreadable {
                    what: "form",
                    message: e.to_string(),
                })?
            }
            None if body.is_empty() => T::Raw::default(),
            _ => return Err(WebError::UnsupportedMediaType),
        };
        T::parse(raw).map(Form)
    }
}

/// A query string parsed into `T`; absent means all fields absent.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: Input> FromRequestParts<S> for Params<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        let raw =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).map_err(|e| {
                WebError::Unreadable {
                    what: "query string",
                    message: e.to_string(),
                }
            })?;
        T::parse(raw).map(Params)
    }
}

/// `Some(value)` unless absent or blank.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn required_email(field: &'static str, value: Option<String>) -> Result<Email, WebError> {
    let value = present(value).ok_or_else(|| WebError::field(field, "it is missing"))?;
    Email::from_input(&value).map_err(|e| WebError::field(field, e))
}

/// The request a decision is about, as the page showed it; absent in the Go
/// original's forms, which name only the email.
fn optional_request(value: Option<String>) -> Result<Option<RequestId>, WebError> {
    present(value)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                WebError::field("request", "it must be a request id from the admin page")
            })
        })
        .transpose()
}

pub(crate) fn optional_email(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<Email>, WebError> {
    present(value)
        .map(|v| Email::from_input(&v).map_err(|e| WebError::field(field, e)))
        .transpose()
}

/// `POST /request-access`: an optional reason.
#[derive(Debug)]
pub(crate) struct AccessRequest {
    pub reason: Option<Reason>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawAccessRequest {
    reason: Option<String>,
}

impl Input for AccessRequest {
    type Raw = RawAccessRequest;
    fn parse(raw: RawAccessRequest) -> Result<Self, WebError> {
        let reason = Reason::parse(raw.reason.as_deref().unwrap_or_default())
            .map_err(|e| WebError::field("reason", e))?;
        Ok(AccessRequest { reason })
    }
}

/// A form with no fields (`POST /cancel-request`); extra fields are ignored.
#[derive(Debug)]
pub(crate) struct Empty;

impl Input for Empty {
    type Raw = serde::de::IgnoredAny;
    fn parse(_: serde::de::IgnoredAny) -> Result<Self, WebError> {
        Ok(Empty)
    }
}

/// `POST /admin/approve-access`: whose request, for how long (the
/// configured default when absent), and which request the page showed.
#[derive(Debug)]
pub(crate) struct Approval {
    pub email: Email,
    pub duration: Option<GrantDuration>,
    pub request: Option<RequestId>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawApproval {
    email: Option<String>,
    duration: Option<String>,
    request: Option<String>,
}

impl Input for Approval {
    type Raw = RawApproval;
    fn parse(raw: RawApproval) -> Result<Self, WebError> {
        let email = required_email("email", raw.email)?;
        let duration = present(raw.duration)
            .map(|d| {
                d.parse::<GrantDuration>()
                    .map_err(|e| WebError::field("duration", e))
            })
            .transpose()?;
        Ok(Approval {
            email,
            duration,
            request: optional_request(raw.request)?,
        })
    }
}

/// `POST /admin/revoke-access` and `/admin/reject-access`: whose, and which
/// request the page showed.
#[derive(Debug)]
pub(crate) struct Subject {
    pub email: Email,
    pub request: Option<RequestId>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawSubject {
    email: Option<String>,
    request: Option<String>,
}

impl Input for Subject {
    type Raw = RawSubject;
    fn parse(raw: RawSubject) -> Result<Self, WebError> {
        Ok(Subject {
            email: required_email("email", raw.email)?,
            request: optional_request(raw.request)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    async fn form<T: Input>(content_type: Option<&str>, body: &str) -> Result<T, WebError> {
        let mut b = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let request = b.body(Body::from(body.to_owned())).unwrap();
        Form::<T>::from_request(request, &()).await.map(|Form(t)| t)
    }

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[tokio::test]
    async fn parses_an_approval() {
        let a: Approval = form(FORM, "email=alice%40example.com&duration=4h")
            .await
            .unwrap();
        assert_eq!(a.email.as_str(), "alice@example.com");
        assert_eq!(a.duration.unwrap().whole_minutes(), 240);
        let a: Approval = form(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            "email=a@b.c&duration=",
        )
        .await
        .unwrap();
        assert_eq!(a.duration, None, "blank means the default");
    }

    #[tokio::test]
    async fn names_the_wrong_field() {
        for (body, field) in [
            ("", "email"),
            ("email=", "email"),
            ("email=not-an-address", "email"),
            ("email=a@b.c&duration=soon", "duration"),
            ("email=a@b.c&duration=0m", "duration"),
            ("email=a@b.c&request=42", "request"),
        ] {
            match form::<Approval>(FORM, body).await {
                Err(WebError::Field { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let long = format!("reason={}", "x".repeat(600));
        assert!(matches!(
            form::<AccessRequest>(FORM, &long).await,
            Err(WebError::Field {
                field: "reason",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_empty_body_needs_no_content_type_but_a_full_one_does() {
        let r: AccessRequest = form(None, "").await.unwrap();
        assert!(r.reason.is_none());
        assert!(form::<Empty>(None, "").await.is_ok());
        assert!(matches!(
            form::<AccessRequest>(Some("application/json"), "{}").await,
            Err(WebError::UnsupportedMediaType)
        ));
        assert!(matches!(
            form::<AccessRequest>(None, "reason=x").await,
            Err(WebError::UnsupportedMediaType)
        ));
    }

    #[tokio::test]
    async fn a_duplicated_field_is_unreadable() {
        assert!(matches!(
            form::<Subject>(FORM, "email=a@b.c&email=d@e.f").await,
            Err(WebError::Unreadable { .. })
        ));
    }

    #[tokio::test]
    async fn a_blank_reason_is_no_reason() {
        let r: AccessRequest = form(FORM, "reason=+++").await.unwrap();
        assert!(r.reason.is_none());
        let r: AccessRequest = form(FORM, "reason=ticket+OPS-42").await.unwrap();
        assert_eq!(r.reason.unwrap().as_str(), "ticket OPS-42");
    }
}
