//! Requests and grants: asking, deciding, listing. A request is addressed
//! by its id, and each change is made only if the request is still as the
//! caller addressed it (the pages' `seen` check): a decision on a request
//! that was decided, replaced or ended meanwhile answers 409 `changed`.

use axum::Json;
use axum::extract::{MatchedPath, Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use jit_domain::{GrantDuration, Reason, Request, RequestId, Seen, Status};
use jit_service::{Caller, Decision, ServiceError, Whose};
use utoipa::ToSchema;

use super::lists::{Page, RawRequestQuery, RequestQuery, next_request};
use super::{RequestJson, changed};
use crate::auth::SignedIn;
use crate::error::ProblemJson;
use crate::input::{
    AccessRequest, Input, JsonBody, Params, RawAccessRequest, optional_duration, optional_text,
};
use crate::pages::resource_or_first;
use crate::{AppState, WebError};

/// The request `id`, if the caller may see it (its requester, or an
/// approver of its resource); else 404, whether or not it exists.
async fn load(app: &AppState, caller: &Caller, id: &str) -> Result<Request, WebError> {
    let id: RequestId = id.parse().map_err(|_| ServiceError::NoSuchRequest)?;
    Ok(app.service.request_by_id(caller, id).await?)
}

/// The decision addressed to `request` as loaded: only while it is still
/// the open request, in the status it had.
fn seen(request: &Request) -> Seen {
    Seen {
        id: request.id,
        status: request.state.status(),
    }
}

async fn page(
    app: &AppState,
    caller: &Caller,
    whose: Whose,
    query: RequestQuery,
) -> Result<Json<Page<RequestJson>>, WebError> {
    let page = app
        .service
        .requests(caller, whose, query.filter, query.after, query.limit)
        .await?;
    Ok(Json(Page {
        items: page.requests.iter().map(RequestJson::of).collect(),
        next: page.next.map(next_request),
    }))
}

/// Everyone's requests on the resources the caller approves, any state,
/// newest first.
#[utoipa::path(get, path = "/requests", tag = "requests", params(RawRequestQuery), responses(
    (status = 200, body = Page<RequestJson>),
    (status = 400, description = "A wrong filter, limit or cursor", body = ProblemJson, content_type = "application/problem+json"),
    (status = 403, description = "Not an approver (`not-admin`), or open admin mode outside `/admin/api/v1` (`admin-route-only`), or a resource not yours to approve (`not-approver`)", body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn list(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(query): Params<RequestQuery>,
) -> Result<Json<Page<RequestJson>>, WebError> {
    page(&app, &caller, Whose::Everyone, query).await
}

/// The caller's own requests, any state, newest first.
#[utoipa::path(get, path = "/me/requests", tag = "me", params(RawRequestQuery), responses(
    (status = 200, body = Page<RequestJson>),
    (status = 400, description = "A wrong filter, limit or cursor; `person` is refused", body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn mine(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(query): Params<RequestQuery>,
) -> Result<Json<Page<RequestJson>>, WebError> {
    if query.filter.person.is_some() {
        return Err(WebError::field(
            "person",
            "this list holds only your own requests; approvers list anyone's at /requests",
        ));
    }
    page(&app, &caller, Whose::Own, query).await
}

/// Grants in force on the resources the caller approves: the active
/// requests, newest first. Takes the filters of `/requests` but `status`.
#[utoipa::path(get, path = "/grants", tag = "grants", params(RawRequestQuery), responses(
    (status = 200, body = Page<RequestJson>),
    (status = 400, body = ProblemJson, content_type = "application/problem+json"),
    (status = 403, body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn grants(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(mut query): Params<RequestQuery>,
) -> Result<Json<Page<RequestJson>>, WebError> {
    if query.filter.status.is_some() {
        return Err(WebError::field(
            "status",
            "grants are the active requests; list other states at /requests",
        ));
    }
    query.filter.status = Some(Status::Active);
    page(&app, &caller, Whose::Everyone, query).await
}

/// One request, to its requester and the approvers of its resource.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = RequestJson),
        (status = 404, description = "No such request, or not yours to see (`no-such-request`)", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<RequestJson>, WebError> {
    Ok(Json(RequestJson::of(&load(&app, &caller, &id).await?)))
}

/// Asks for access to a resource, as the caller. Approved at once where
/// an auto-approve rule of the resource says so.
#[utoipa::path(post, path = "/requests", tag = "requests", request_body = RawAccessRequest, responses(
    (status = 201, description = "Asked (or approved at once, and applied)", body = RequestJson),
    (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
    (status = 400, description = "A wrong field (`invalid-field`) or body (`unreadable`)", body = ProblemJson, content_type = "application/problem+json"),
    (status = 404, description = "No such resource (`unknown-resource`)", body = ProblemJson, content_type = "application/problem+json"),
    (status = 409, description = "Already pending or active (`already-pending`, `already-active`)", body = ProblemJson, content_type = "application/problem+json"),
    (status = 415, body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn create(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    // The route's whole path, prefix included (`/api/v1/requests` or
    // `/admin/api/v1/requests`): it has no parameters.
    route: MatchedPath,
    JsonBody(AccessRequest { resource, ask }): JsonBody<AccessRequest>,
) -> Result<Response, WebError> {
    let resource = resource_or_first(&app, resource);
    let outcome = app.service.request_access(&caller, &resource, ask).await?;
    let mut response = changed(&outcome, StatusCode::CREATED);
    if let Ok(location) = format!("{}/{}", route.as_str(), outcome.request.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The body of an approval.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub(crate) struct RawApprove {
    /// As `30m`, `1h`, `1d`; default: the asked or the resource's default.
    /// Ignored for an extension.
    duration: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Approve {
    duration: Option<GrantDuration>,
}

impl Input for Approve {
    type Raw = RawApprove;
    fn parse(raw: RawApprove) -> Result<Self, WebError> {
        Ok(Approve {
            duration: optional_duration("duration", raw.duration)?,
        })
    }
}

/// The body of a rejection or revocation.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub(crate) struct RawComment {
    /// For the requester to read.
    comment: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Comment {
    comment: Option<Reason>,
}

impl Input for Comment {
    type Raw = RawComment;
    fn parse(raw: RawComment) -> Result<Self, WebError> {
        Ok(Comment {
            comment: optional_text("comment", raw.comment)?,
        })
    }
}

/// An approver's decision on the request `id`, checked as the pages check
/// theirs: approver rights first (so open admin mode outside `/admin`
/// says so), then visibility (404), then the rules. `choose` says what to
/// decide and in which status the request must still be (else 409).
async fn decide(
    app: &AppState,
    caller: &Caller,
    id: &str,
    choose: impl FnOnce(&Request) -> (Status, Decision),
) -> Result<Response, WebError> {
    app.service.require_approver(caller)?;
    let request = load(app, caller, id).await?;
    let (status, decision) = choose(&request);
    let seen = Seen {
        id: request.id,
        status,
    };
    let outcome = app
        .service
        .decide_as(
            caller,
            request.resource.as_str(),
            &request.email,
            Some(seen),
            decision,
        )
        .await?;
    Ok(changed(&outcome, StatusCode::OK))
}

/// Whether an approver's approve or reject is about an asked extension:
/// else it is about the pending request, and a request no longer pending
/// answers 409 `changed`.
fn about_extension(r: &Request) -> bool {
    r.state.status() == Status::Active && r.extension.is_some()
}

const DECIDED: &str = "The request as it now stands";

/// Approves a pending request, or the extension asked on an active one
/// (an active request with none asked answers 409 `changed`). With N of M approvers it records this approval and stays pending until
/// enough approved.
#[utoipa::path(post, path = "/requests/{id}/approve", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = RawApprove, description = "Optional"),
    responses(
        (status = 200, description = DECIDED, body = RequestJson),
        (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
        (status = 403, description = "`not-admin`, `admin-route-only`, `not-approver`, `self-approval`", body = ProblemJson, content_type = "application/problem+json"),
        (status = 404, description = "`no-such-request`, `no-extension-asked`", body = ProblemJson, content_type = "application/problem+json"),
        (status = 409, description = "`changed` since it was read, `already-approved`", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn approve(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
    JsonBody(Approve { duration }): JsonBody<Approve>,
) -> Result<Response, WebError> {
    decide(&app, &caller, &id, |r| {
        if about_extension(r) {
            (Status::Active, Decision::ApproveExtension)
        } else {
            (Status::Pending, Decision::Approve { duration })
        }
    })
    .await
}

/// Rejects a pending request, or declines the extension asked on an
/// active one (the access runs on). Ends no access: see
/// `/grants/{id}/revoke`.
#[utoipa::path(post, path = "/requests/{id}/reject", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = RawComment, description = "Optional"),
    responses(
        (status = 200, description = DECIDED, body = RequestJson),
        (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
        (status = 403, body = ProblemJson, content_type = "application/problem+json"),
        (status = 404, body = ProblemJson, content_type = "application/problem+json"),
        (status = 409, description = "`changed` since it was read", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reject(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
    JsonBody(Comment { comment }): JsonBody<Comment>,
) -> Result<Response, WebError> {
    decide(&app, &caller, &id, |r| {
        if about_extension(r) {
            (Status::Active, Decision::RejectExtension { comment })
        } else {
            (Status::Pending, Decision::Revoke { comment })
        }
    })
    .await
}

/// Revokes a grant (an active request) before its end.
#[utoipa::path(post, path = "/grants/{id}/revoke", tag = "grants",
    params(("id" = String, Path, description = "The grant's request id")),
    request_body(content = RawComment, description = "Optional"),
    responses(
        (status = 200, description = DECIDED, body = RequestJson),
        (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
        (status = 403, body = ProblemJson, content_type = "application/problem+json"),
        (status = 404, body = ProblemJson, content_type = "application/problem+json"),
        (status = 409, description = "`changed`: not active any more, or never was", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
    JsonBody(Comment { comment }): JsonBody<Comment>,
) -> Result<Response, WebError> {
    // Only a grant: a request seen pending or ended answers `changed`.
    decide(&app, &caller, &id, |_| {
        (Status::Active, Decision::Revoke { comment })
    })
    .await
}

/// The caller's own request `id`, or why not.
async fn own(app: &AppState, caller: &Caller, id: &str) -> Result<Request, WebError> {
    let request = load(app, caller, id).await?;
    if request.email != caller.email {
        return Err(WebError::NotYours);
    }
    Ok(request)
}

/// Withdraws the caller's pending request, or gives back their access.
#[utoipa::path(post, path = "/requests/{id}/withdraw", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = DECIDED, body = RequestJson),
        (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
        (status = 403, description = "`not-yours`", body = ProblemJson, content_type = "application/problem+json"),
        (status = 404, body = ProblemJson, content_type = "application/problem+json"),
        (status = 409, description = "`changed`: it ended meanwhile", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn withdraw(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let request = own(&app, &caller, &id).await?;
    let outcome = app
        .service
        .cancel(&caller, request.resource.as_str(), Some(seen(&request)))
        .await?;
    Ok(changed(&outcome, StatusCode::OK))
}

/// The body of an extension.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
pub(crate) struct RawExtend {
    /// How much longer, as `30m`, `1h`, `1d`.
    duration: Option<String>,
    /// Why.
    reason: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Extend {
    duration: GrantDuration,
    reason: Option<Reason>,
}

impl Input for Extend {
    type Raw = RawExtend;
    fn parse(raw: RawExtend) -> Result<Self, WebError> {
        Ok(Extend {
            duration: optional_duration("duration", raw.duration)?.ok_or_else(|| {
                WebError::field("duration", "it is missing: say how much longer, like 1h")
            })?,
            reason: optional_text("reason", raw.reason)?,
        })
    }
}

/// Asks for more time on the caller's active access: extended at once
/// where the resource allows self-extension, else waiting for approvers.
#[utoipa::path(post, path = "/requests/{id}/extend", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body = RawExtend,
    responses(
        (status = 200, description = DECIDED, body = RequestJson),
        (status = 202, description = "Saved; Pomerium Zero has not applied it yet", body = RequestJson),
        (status = 400, description = "`invalid-field`", body = ProblemJson, content_type = "application/problem+json"),
        (status = 403, description = "`not-yours`", body = ProblemJson, content_type = "application/problem+json"),
        (status = 404, body = ProblemJson, content_type = "application/problem+json"),
        (status = 409, description = "`changed`, `extension-pending`, `too-many-extensions`", body = ProblemJson, content_type = "application/problem+json"),
    ))]
pub(crate) async fn extend(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
    JsonBody(Extend { duration, reason }): JsonBody<Extend>,
) -> Result<Response, WebError> {
    let request = own(&app, &caller, &id).await?;
    let outcome = app
        .service
        .extend(
            &caller,
            request.resource.as_str(),
            Some(seen(&request)),
            duration,
            reason,
        )
        .await?;
    Ok(changed(&outcome, StatusCode::OK))
}
