//! Forms and query strings, parsed straight into domain types: a handler
//! receives an [`Email`] or a [`GrantDuration`], never a string to check.
//!
//! Every field is read as an optional string first, so a missing or wrong
//! field is reported by name ("the field `email` is missing") rather than as
//! a deserializer's complaint.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use jit_domain::{Ask, Email, GrantDuration, Reason, RequestId, ResourceName, Ticket};
use jit_service::List;
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

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

    async fn from_request(request: Request, _state: &S) -> Result<Self, WebError> {
        let what = "form";
        let (typed, body) = read_body(request, what, |essence| {
            essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .await?;
        let raw = match typed {
            Some(true) => {
                serde_urlencoded::from_bytes(&body).map_err(|e| WebError::Unreadable {
                    what,
                    message: e.to_string(),
                })?
            }
            None if body.is_empty() => T::Raw::default(),
            _ => return Err(WebError::UnsupportedMediaType),
        };
        T::parse(raw).map(Form)
    }
}

/// A JSON body (`application/json`), parsed into `T` the same way as a
/// form, so the API checks each field as the pages do. An empty body needs
/// no content type.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: Input> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, WebError> {
        let what = "JSON body";
        let (typed, body) = read_body(request, what, |essence| {
            let essence = essence.to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
        .await?;
        let raw = match typed {
            Some(true) => serde_json::from_slice(&body).map_err(|e| WebError::Unreadable {
                what,
                message: e.to_string(),
            })?,
            None if body.is_empty() => T::Raw::default(),
            _ => return Err(WebError::NotJson),
        };
        T::parse(raw).map(JsonBody)
    }
}

/// Reads a body (within the size limit) and whether its content type's
/// essence is one `accepts`; `None` when it has no content type.
async fn read_body(
    request: Request,
    what: &'static str,
    accepts: impl Fn(&str) -> bool,
) -> Result<(Option<bool>, Bytes), WebError> {
    let typed = request.headers().get(header::CONTENT_TYPE).map(|ct| {
        ct.to_str()
            .is_ok_and(|ct| accepts(ct.split(';').next().unwrap_or_default().trim()))
    });
    // The cap is applied here rather than by a layer around every route
    // (`DefaultBodyLimit`, an allocation on each request, bodies or not).
    let body = Limited::new(request.into_body(), crate::BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                WebError::TooLarge
            } else {
                WebError::Unreadable {
                    what,
                    message: e.to_string(),
                }
            }
        })?
        .to_bytes();
    Ok((typed, body))
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

/// The resource a form acts on; absent in the Go original's forms, which
/// act on the first resource.
fn optional_resource(value: Option<String>) -> Result<Option<ResourceName>, WebError> {
    present(value)
        .map(|v| ResourceName::parse(v.trim()).map_err(|e| WebError::field("resource", e)))
        .transpose()
}

pub(crate) fn optional_duration(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<GrantDuration>, WebError> {
    present(value)
        .map(|d| {
            d.parse::<GrantDuration>()
                .map_err(|e| WebError::field(field, e))
        })
        .transpose()
}

pub(crate) fn optional_text(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<Reason>, WebError> {
    Reason::parse(value.as_deref().unwrap_or_default()).map_err(|e| WebError::field(field, e))
}

fn optional_ticket(value: Option<String>) -> Result<Option<Ticket>, WebError> {
    Ticket::parse(value.as_deref().unwrap_or_default()).map_err(|e| WebError::field("ticket", e))
}

/// A start from `<input type="datetime-local">`, which sends no zone: read
/// as UTC, as the form says.
fn optional_start(value: Option<String>) -> Result<Option<OffsetDateTime>, WebError> {
    let Some(value) = present(value) else {
        return Ok(None);
    };
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let value = value.trim();
    PrimitiveDateTime::parse(value, minutes)
        .or_else(|_| PrimitiveDateTime::parse(value, seconds))
        .map(PrimitiveDateTime::assume_utc)
        // What API clients send: an instant with its offset.
        .or_else(|_| OffsetDateTime::parse(value, &Rfc3339))
        .map(Some)
        .map_err(|_| {
            WebError::field(
                "starts_at",
                "it must be a date and time in UTC like 2026-12-01T09:30, or empty to start on approval",
            )
        })
}

/// `POST /request-access`: which resource (the first when absent), and
/// the ask: a reason, and where the form offers them a duration, a ticket
/// and a start.
#[derive(Debug)]
pub(crate) struct AccessRequest {
    pub resource: Option<ResourceName>,
    pub ask: Ask,
}

/// The form, or the API's JSON body; every field a string.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct RawAccessRequest {
    /// The resource's name (default: the first of the catalog).
    resource: Option<String>,
    /// Why; required where the resource says so.
    reason: Option<String>,
    /// As `30m`, `1h`, `1d`, where the resource lets requesters choose.
    duration: Option<String>,
    /// Where the resource asks for one, such as a change number.
    ticket: Option<String>,
    /// A later start: RFC 3339 (`2026-12-01T09:30:00Z`) or a UTC time
    /// (`2026-12-01T09:30`); absent: on approval.
    starts_at: Option<String>,
}

impl RawAccessRequest {
    fn ask(self) -> Result<Ask, WebError> {
        Ok(Ask {
            reason: optional_text("reason", self.reason)?,
            duration: optional_duration("duration", self.duration)?,
            starts_at: optional_start(self.starts_at)?,
            ticket: optional_ticket(self.ticket)?,
        })
    }
}

impl Input for AccessRequest {
    type Raw = RawAccessRequest;
    fn parse(mut raw: RawAccessRequest) -> Result<Self, WebError> {
        Ok(AccessRequest {
            resource: optional_resource(raw.resource.take())?,
            ask: raw.ask()?,
        })
    }
}

/// A form naming only a resource (`POST /cancel-request`): the first when
/// absent; other fields are ignored.
#[derive(Debug)]
pub(crate) struct Mine {
    pub resource: Option<ResourceName>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawMine {
    resource: Option<String>,
}

impl Input for Mine {
    type Raw = RawMine;
    fn parse(raw: RawMine) -> Result<Self, WebError> {
        Ok(Mine {
            resource: optional_resource(raw.resource)?,
        })
    }
}

/// `POST /extend-access`: how much more time, and why.
#[derive(Debug)]
pub(crate) struct Extension {
    pub resource: Option<ResourceName>,
    pub duration: GrantDuration,
    pub reason: Option<Reason>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawExtension {
    resource: Option<String>,
    duration: Option<String>,
    reason: Option<String>,
}

impl Input for Extension {
    type Raw = RawExtension;
    fn parse(raw: RawExtension) -> Result<Self, WebError> {
        Ok(Extension {
            resource: optional_resource(raw.resource)?,
            duration: optional_duration("duration", raw.duration)?.ok_or_else(|| {
                WebError::field("duration", "it is missing: choose how much longer")
            })?,
            reason: optional_text("reason", raw.reason)?,
        })
    }
}

/// `POST /admin/approve-access`: whose request, for how long (the
/// requested or configured default when absent), and which request the
/// page showed.
#[derive(Debug)]
pub(crate) struct Approval {
    pub resource: Option<ResourceName>,
    pub email: Email,
    pub duration: Option<GrantDuration>,
    pub request: Option<RequestId>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawApproval {
    resource: Option<String>,
    email: Option<String>,
    duration: Option<String>,
    request: Option<String>,
}

impl Input for Approval {
    type Raw = RawApproval;
    fn parse(raw: RawApproval) -> Result<Self, WebError> {
        let email = required_email("email", raw.email)?;
        Ok(Approval {
            resource: optional_resource(raw.resource)?,
            email,
            duration: optional_duration("duration", raw.duration)?,
            request: optional_request(raw.request)?,
        })
    }
}

/// `POST /admin/revoke-access`, `/admin/reject-access` and the extension
/// decisions: whose, which request the page showed, and an optional comment
/// for the requester. `GET /admin/confirm-revoke` reads it from its query.
#[derive(Debug)]
pub(crate) struct Subject {
    pub resource: Option<ResourceName>,
    pub email: Email,
    pub request: Option<RequestId>,
    pub comment: Option<Reason>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawSubject {
    resource: Option<String>,
    email: Option<String>,
    request: Option<String>,
    comment: Option<String>,
}

impl Input for Subject {
    type Raw = RawSubject;
    fn parse(raw: RawSubject) -> Result<Self, WebError> {
        Ok(Subject {
            email: required_email("email", raw.email)?,
            resource: optional_resource(raw.resource)?,
            request: optional_request(raw.request)?,
            comment: optional_text("comment", raw.comment)?,
        })
    }
}

/// `POST /admin/grant-access`: access for someone who did not ask, with a
/// reason (the resource's other fields as on the request form).
#[derive(Debug)]
pub(crate) struct GrantForm {
    pub resource: Option<ResourceName>,
    pub email: Email,
    pub ask: Ask,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawGrantForm {
    email: Option<String>,
    resource: Option<String>,
    reason: Option<String>,
    duration: Option<String>,
    ticket: Option<String>,
    starts_at: Option<String>,
}

impl Input for GrantForm {
    type Raw = RawGrantForm;
    fn parse(raw: RawGrantForm) -> Result<Self, WebError> {
        let ask = RawAccessRequest {
            resource: None,
            reason: raw.reason,
            duration: raw.duration,
            ticket: raw.ticket,
            starts_at: raw.starts_at,
        };
        Ok(GrantForm {
            email: required_email("email", raw.email)?,
            resource: optional_resource(raw.resource)?,
            ask: ask.ask()?,
        })
    }
}

/// `POST /admin/revoke-all` (and its confirmation page's query): one
/// person's grants, one resource's, or one person's on one resource; never
/// everything at once by accident.
#[derive(Debug)]
pub(crate) struct RevokeAll {
    pub person: Option<Email>,
    pub resource: Option<ResourceName>,
    pub comment: Option<Reason>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawRevokeAll {
    person: Option<String>,
    resource: Option<String>,
    comment: Option<String>,
}

impl Input for RevokeAll {
    type Raw = RawRevokeAll;
    fn parse(raw: RawRevokeAll) -> Result<Self, WebError> {
        let person = optional_email("person", raw.person)?;
        let resource = optional_resource(raw.resource)?;
        if person.is_none() && resource.is_none() {
            return Err(WebError::field(
                "person",
                "name a person or a resource (or both) whose grants to revoke",
            ));
        }
        Ok(RevokeAll {
            person,
            resource,
            comment: optional_text("comment", raw.comment)?,
        })
    }
}

/// `GET /admin`'s query: where each list of each resource starts, as
/// `pending.<resource>=<rows skipped>` and `active.<resource>=…`; absent
/// lists start at their first row. Other parameters are ignored.
#[derive(Debug, Default)]
pub(crate) struct AdminPages {
    pub offsets: HashMap<(ResourceName, List), usize>,
}

impl Input for AdminPages {
    type Raw = Vec<(String, String)>;
    fn parse(raw: Vec<(String, String)>) -> Result<Self, WebError> {
        let mut offsets = HashMap::new();
        for (key, value) in raw {
            let Some((list, resource)) = key.split_once('.') else {
                continue;
            };
            let (field, list) = match list {
                "pending" => ("pending", List::Pending),
                "active" => ("active", List::Active),
                _ => continue,
            };
            let resource = ResourceName::parse(resource)
                .map_err(|e| WebError::field(field, format!("`{key}` names no resource: {e}")))?;
            let offset = value.trim().parse::<usize>().map_err(|_| {
                WebError::field(
                    field,
                    format!(
                        "`{key}` must be how many rows to skip, a whole number like 50, not `{value}`"
                    ),
                )
            })?;
            if offsets.insert((resource, list), offset).is_some() {
                return Err(WebError::field(
                    field,
                    format!("`{key}` is given twice; give it once"),
                ));
            }
        }
        Ok(AdminPages { offsets })
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
        assert!(r.ask.reason.is_none() && r.resource.is_none());
        assert!(form::<Mine>(None, "").await.unwrap().resource.is_none());
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
        assert!(r.ask.reason.is_none());
        let r: AccessRequest = form(FORM, "reason=ticket+OPS-42").await.unwrap();
        assert_eq!(r.ask.reason.unwrap().as_str(), "ticket OPS-42");
    }

    #[tokio::test]
    async fn a_start_is_read_as_utc_and_a_wrong_one_is_named() {
        let r: AccessRequest = form(
            FORM,
            "resource=db&reason=x&duration=2h&ticket=INC-1&starts_at=2026-12-01T09%3A30",
        )
        .await
        .unwrap();
        assert_eq!(r.resource.unwrap().as_str(), "db");
        assert_eq!(
            r.ask.starts_at,
            Some(time::macros::datetime!(2026-12-01 09:30 UTC))
        );
        assert_eq!(r.ask.duration.unwrap().whole_minutes(), 120);
        assert_eq!(r.ask.ticket.unwrap().as_str(), "INC-1");
        let r: AccessRequest = form(FORM, "starts_at=2026-12-01T09%3A30%3A15")
            .await
            .unwrap();
        assert_eq!(
            r.ask.starts_at,
            Some(time::macros::datetime!(2026-12-01 09:30:15 UTC))
        );
        for bad in [
            "tomorrow",
            "2026-12-01",
            "2026-13-01T09%3A30",
            "2026-12-01+09%3A30",
        ] {
            match form::<AccessRequest>(FORM, &format!("starts_at={bad}")).await {
                Err(WebError::Field { field, message }) => {
                    assert_eq!(field, "starts_at");
                    assert!(message.contains("UTC like 2026-12-01T09:30"), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            form::<AccessRequest>(FORM, "resource=Not+A+Slug").await,
            Err(WebError::Field {
                field: "resource",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_extension_needs_a_duration_and_revoke_all_a_scope() {
        assert!(matches!(
            form::<Extension>(FORM, "reason=more").await,
            Err(WebError::Field {
                field: "duration",
                ..
            })
        ));
        let e: Extension = form(FORM, "duration=30m").await.unwrap();
        assert_eq!(e.duration.whole_minutes(), 30);
        assert!(matches!(
            form::<RevokeAll>(FORM, "comment=all").await,
            Err(WebError::Field {
                field: "person",
                ..
            })
        ));
        let r: RevokeAll = form(FORM, "person=a%40b.c&comment=left").await.unwrap();
        assert_eq!(
            (
                r.person.unwrap().as_str(),
                r.resource,
                r.comment.unwrap().as_str()
            ),
            ("a@b.c", None, "left")
        );
        let g: GrantForm = form(FORM, "email=a%40b.c&resource=db&reason=on+call&duration=1h")
            .await
            .unwrap();
        assert_eq!(g.ask.reason.unwrap().as_str(), "on call");
        assert_eq!(g.resource.unwrap().as_str(), "db");
    }

    #[test]
    fn admin_pages_read_each_lists_offset_and_name_a_wrong_one() {
        let pages = |q: &str| AdminPages::parse(serde_urlencoded::from_str(q).unwrap());
        let p = pages("pending.prod-db=50&active.default=100&utm=x").unwrap();
        let at = |list, name| {
            p.offsets
                .get(&(ResourceName::parse(name).unwrap(), list))
                .copied()
        };
        assert_eq!(at(List::Pending, "prod-db"), Some(50));
        assert_eq!(at(List::Active, "default"), Some(100));
        assert_eq!(at(List::Active, "prod-db"), None);
        for (query, field, says) in [
            ("pending.prod-db=-1", "pending", "whole number"),
            ("active.prod-db=next", "active", "whole number"),
            ("pending.Prod%20DB=50", "pending", "names no resource"),
            ("pending.db=1&pending.db=2", "pending", "given twice"),
        ] {
            match pages(query) {
                Err(WebError::Field { field: f, message }) => {
                    assert_eq!(f, field, "{query}");
                    assert!(message.contains(says), "{query}: {message}");
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }
}
