//! The JSON API for scripts and tools, served twice: under `/api/v1`
//! (admin rights from ADMIN_EMAILS/ADMIN_GROUPS or a resource's listed
//! approvers) and under `/admin/api/v1` (behind Pomerium's admin route,
//! where open admin mode grants them too). Identity is Pomerium's assertion,
//! as for the pages; service accounts carry one too.
//!
//! Handlers are thin: each parses its input into domain types and calls one
//! use case of [`jit_service::Service`]. Lists are newest first and paged by
//! opaque cursors ([`lists`]). Errors are [`WebError`]s, drawn as
//! `application/problem+json`.
//!
//! The OpenAPI 3.1 document (`/api/v1/openapi.json`) is generated from the
//! same handlers that [`router`] registers (utoipa-axum), so it cannot list
//! a route that is not served or miss one that is.

mod history;
mod lists;
mod requests;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use jit_domain::{Request, State as RequestState};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ProblemJson;
use crate::when::rfc3339;

/// Where the API is served; the document's `servers`.
pub(crate) const PREFIXES: [&str; 2] = ["/api/v1", "/admin/api/v1"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pomerium-jit",
        description = "Just-in-time access for Pomerium: request, approve and revoke access to resources. \
            Every call needs Pomerium's `X-Pomerium-Jwt-Assertion` (sent by Pomerium for users and service \
            accounts). Admin and approver calls work under `/api/v1` when ADMIN_EMAILS/ADMIN_GROUPS or a \
            resource's approvers list the caller, and under `/admin/api/v1` (Pomerium's admin route) also in \
            open admin mode. Errors are `application/problem+json` (RFC 9457) with a stable `type`."
    ),
    servers(
        (url = "/api/v1", description = "Any signed-in caller; admin rights from the admin lists or listed approvers"),
        (url = "/admin/api/v1", description = "The same API behind Pomerium's admin route (admin rights in open mode)"),
    ),
    tags(
        (name = "me", description = "The caller's own status, requests and history"),
        (name = "requests", description = "Asking for access, and approvers deciding"),
        (name = "grants", description = "Access in force"),
        (name = "history", description = "The audit events, filtered"),
    ),
    components(schemas(ProblemJson))
)]
struct ApiDoc;

/// The API's routes and its document, from one list of handlers.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(requests::mine))
        .routes(routes!(history::mine))
        .routes(routes!(resources))
        .routes(routes!(requests::list, requests::create))
        .routes(routes!(requests::get))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::reject))
        .routes(routes!(requests::withdraw))
        .routes(routes!(requests::extend))
        .routes(routes!(requests::grants))
        .routes(routes!(requests::revoke))
        .routes(routes!(history::list))
        .routes(routes!(history::export))
}

/// Every API route under both prefixes, and the document at
/// `<prefix>/openapi.json`.
pub(crate) fn router() -> Router<AppState> {
    let (routes, doc) = api().split_for_parts();
    // Kept as the JSON it serializes to, made once: the document's tree is
    // many times larger, and was cloned for every request.
    let json =
        axum::body::Bytes::from(serde_json::to_vec(&doc).expect("the OpenAPI document serializes"));
    let routes = routes.route(
        "/openapi.json",
        axum::routing::get(move || {
            let json = json.clone();
            async move { ([(CONTENT_TYPE, "application/json")], json).into_response() }
        }),
    );
    PREFIXES
        .iter()
        .fold(Router::new(), |r, prefix| r.nest(prefix, routes.clone()))
}

/// One request as the API shows it; times in RFC 3339 UTC, actors as
/// `user:<email>`, `system` or `zero`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RequestJson {
    id: String,
    resource: String,
    email: String,
    /// `pending`, `active`, `expired`, `revoked`, `rejected` or `cancelled`.
    status: &'static str,
    reason: Option<String>,
    requested_at: String,
    requested_by: String,
    approved_by: Option<String>,
    approved_at: Option<String>,
    starts_at: Option<String>,
    expires_at: Option<String>,
    ended_by: Option<String>,
    ended_at: Option<String>,
    /// What was asked beyond the reason.
    ask: AskJson,
    /// Approvals so far toward what is open (the request, or an asked extension).
    approvals: Vec<ApprovalJson>,
    /// An extension asked and not yet decided.
    extension: Option<ExtensionJson>,
    /// How many times the grant was extended.
    extensions: u32,
    /// The approver's comment on the last rejection, revocation or declined extension.
    comment: Option<String>,
    /// Closed unanswered when its time to live passed.
    timed_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct AskJson {
    /// As `30m`, `1h`, `1d`.
    duration: Option<String>,
    starts_at: Option<String>,
    ticket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ApprovalJson {
    by: String,
    at: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ExtensionJson {
    duration: String,
    reason: Option<String>,
    asked_at: String,
}

impl RequestJson {
    pub(crate) fn of(r: &Request) -> RequestJson {
        let grant = r.state.grant();
        let ended_by = match &r.state {
            RequestState::Revoked { by, .. }
            | RequestState::Rejected { by, .. }
            | RequestState::Cancelled { by, .. } => Some(by.to_string()),
            RequestState::Pending | RequestState::Active(_) | RequestState::Expired(_) => None,
        };
        RequestJson {
            id: r.id.to_string(),
            email: r.email.to_string(),
            status: r.state.status().as_str(),
            resource: r.resource.to_string(),
            reason: r.reason().map(|x| x.as_str().to_owned()),
            requested_at: rfc3339(r.requested_at),
            requested_by: r.requested_by.to_string(),
            approved_by: grant.map(|g| g.approved_by.to_string()),
            approved_at: grant.map(|g| rfc3339(g.approved_at)),
            starts_at: grant.and_then(|g| g.starts_at).map(rfc3339),
            expires_at: grant.map(|g| rfc3339(g.expires_at)),
            ended_by,
            ended_at: r.state.ended_at().map(rfc3339),
            ask: AskJson {
                duration: r.ask.duration.map(|d| d.to_string()),
                starts_at: r.ask.starts_at.map(rfc3339),
                ticket: r.ask.ticket.as_ref().map(|t| t.as_str().to_owned()),
            },
            approvals: r
                .approvals
                .iter()
                .map(|a| ApprovalJson {
                    by: a.by.to_string(),
                    at: rfc3339(a.at),
                })
                .collect(),
            extension: r.extension.as_ref().map(|x| ExtensionJson {
                duration: x.duration.to_string(),
                reason: x.reason.as_ref().map(|x| x.as_str().to_owned()),
                asked_at: rfc3339(x.asked_at),
            }),
            extensions: r.extensions,
            comment: r.comment.as_ref().map(|c| c.as_str().to_owned()),
            timed_out: r.timed_out(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    email: String,
    groups: Vec<String>,
    admin: bool,
    /// Whether Pomerium lets the caller through the first resource now, by
    /// the app's records (the original's one policy).
    has_access: bool,
    /// The caller's latest request on the first resource.
    request: Option<RequestJson>,
    /// The caller's latest request on each resource where they have one.
    requests: Vec<RequestJson>,
}

/// The caller: email, groups, whether an admin here, and their latest
/// request on each resource.
#[utoipa::path(get, path = "/me", tag = "me", responses(
    (status = 200, body = Me),
    (status = "4XX", body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn me(State(app): State<AppState>, SignedIn(caller): SignedIn) -> Json<Me> {
    let mine = app.service.status_of(&caller.email);
    let first = app.service.resources().next().map(|r| r.name.clone());
    let request = mine.iter().find(|r| Some(&r.resource) == first.as_ref());
    Json(Me {
        has_access: request.is_some_and(|r| r.grants_access_at(OffsetDateTime::now_utc())),
        admin: app.service.is_admin(&caller),
        request: request.map(|r| RequestJson::of(r)),
        requests: mine.iter().map(|r| RequestJson::of(r)).collect(),
        email: caller.email.to_string(),
        groups: caller.groups.to_vec(),
    })
}

/// A resource of the catalog and how it is approved.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceJson {
    name: String,
    title: String,
    description: String,
    /// Distinct approvals a request or an extension needs.
    approvals_needed: u8,
    /// Whether the caller decides requests on it (here: under this prefix).
    approver: bool,
    /// As `30m`, `1h`, `1d`: granted when no one chooses.
    default_duration: String,
    /// The longest grant, and the longest single extension.
    max_duration: String,
    /// The durations offered.
    durations: Vec<String>,
    /// Whether requesters may propose a duration.
    requester_chooses_duration: bool,
    reason_required: bool,
    /// Whether requests carry a ticket, such as a change number.
    ticket: bool,
    /// How many times one grant may be extended.
    max_extensions: u32,
}

/// Every resource of the catalog, in its order.
#[utoipa::path(get, path = "/resources", tag = "me", responses(
    (status = 200, body = [ResourceJson]),
    (status = "4XX", body = ProblemJson, content_type = "application/problem+json"),
))]
pub(crate) async fn resources(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
) -> Json<Vec<ResourceJson>> {
    let service = &app.service;
    Json(
        service
            .resources()
            .map(|r| {
                let d = &r.rules.durations;
                ResourceJson {
                    name: r.name.to_string(),
                    title: r.title.clone(),
                    description: r.description.clone(),
                    approvals_needed: r.rules.approvals_needed.get(),
                    approver: service.approves(&caller, r).is_ok(),
                    default_duration: d.default.to_string(),
                    max_duration: d.max.to_string(),
                    durations: d.presets.iter().map(ToString::to_string).collect(),
                    requester_chooses_duration: d.requester_chooses,
                    reason_required: r.rules.reason.required,
                    ticket: r.rules.ticket.is_some(),
                    max_extensions: r.rules.max_extensions,
                }
            })
            .collect(),
    )
}

/// A change's answer: the request as it now stands, 200 (or `created`)
/// once Pomerium Zero applied it, 202 when it is saved and not applied yet.
fn changed(outcome: &jit_service::Outcome, created: axum::http::StatusCode) -> Response {
    use axum::http::StatusCode;
    let status = match outcome.applied {
        jit_service::Applied::Applied => created,
        jit_service::Applied::Saved(_) => StatusCode::ACCEPTED,
    };
    (status, Json(RequestJson::of(&outcome.request))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document comes from the handlers `router` registers; this pins
    /// what it says, so a route added or dropped shows up here and in the
    /// README's table.
    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_route() {
        let doc = serde_json::to_value(api().into_openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let servers: Vec<&str> = doc["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["url"].as_str().unwrap())
            .collect();
        assert_eq!(servers, PREFIXES);
        let mut routes: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| format!("{} {path}", method.to_uppercase()))
            })
            .collect();
        routes.sort();
        assert_eq!(
            routes,
            [
                "GET /grants",
                "GET /history",
                "GET /history/export",
                "GET /me",
                "GET /me/history",
                "GET /me/requests",
                "GET /requests",
                "GET /requests/{id}",
                "GET /resources",
                "POST /grants/{id}/revoke",
                "POST /requests",
                "POST /requests/{id}/approve",
                "POST /requests/{id}/extend",
                "POST /requests/{id}/reject",
                "POST /requests/{id}/withdraw",
            ]
        );
        let problem = &doc["components"]["schemas"]["ProblemJson"];
        assert!(problem["properties"]["type"].is_object(), "{problem}");
    }
}
