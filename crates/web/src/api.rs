//! A small read-only JSON API for scripts: `GET /api/v1/me` (the caller's
//! own status) and, for admins, `GET /admin/api/v1/requests` (everyone's).
//! `GET /api/v1/requests` answers admins too when admin lists are set; in
//! open admin mode it is outside Pomerium's admin route, so it answers 403.
//! Errors are `application/problem+json`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jit_domain::{Request, State as RequestState};
use jit_service::ResourceView;
use serde::Serialize;
use time::OffsetDateTime;

use crate::auth::SignedIn;
use crate::sync::SyncJson;
use crate::when::rfc3339;
use crate::{AppState, WebError};

/// One request as the API shows it; times in RFC 3339 UTC, actors as
/// `user:<email>`, `system` or `zero`.
#[derive(Debug, Serialize)]
struct RequestJson {
    id: String,
    resource: String,
    email: String,
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

#[derive(Debug, Serialize)]
struct AskJson {
    /// As `30m`, `1h`, `1d`.
    duration: Option<String>,
    starts_at: Option<String>,
    ticket: Option<String>,
}

#[derive(Debug, Serialize)]
struct ApprovalJson {
    by: String,
    at: String,
}

#[derive(Debug, Serialize)]
struct ExtensionJson {
    duration: String,
    reason: Option<String>,
    asked_at: String,
}

impl RequestJson {
    fn of(r: &Request) -> RequestJson {
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

#[derive(Debug, Serialize)]
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

pub(crate) async fn me(State(app): State<AppState>, SignedIn(caller): SignedIn) -> Json<Me> {
    let mine = app.service.status_of(&caller.email);
    let first = app.service.resources().next().map(|r| r.name.clone());
    let request = mine.iter().find(|r| Some(&r.resource) == first.as_ref());
    Json(Me {
        has_access: request.is_some_and(|r| r.grants_access_at(OffsetDateTime::now_utc())),
        admin: app.service.is_admin(&caller),
        request: request.map(RequestJson::of),
        requests: mine.iter().map(RequestJson::of).collect(),
        email: caller.email.to_string(),
        groups: caller.groups,
    })
}

/// A resource the caller approves and its approval rule.
#[derive(Debug, Serialize)]
struct ResourceJson {
    name: String,
    title: String,
    approvals_needed: u8,
}

#[derive(Debug, Serialize)]
struct Requests {
    resources: Vec<ResourceJson>,
    pending: Vec<RequestJson>,
    active: Vec<RequestJson>,
    ended: Vec<RequestJson>,
    sync: SyncJson,
}

/// Like `/admin`: the store's view, with status 503 when the sync made for
/// it failed. Unlike the page it is not paged: it lists every open request.
pub(crate) async fn requests(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
) -> Result<Response, WebError> {
    let view = app.service.admin_view(&admin).await?;
    let status = if view.fresh.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let all = |pick: fn(&ResourceView) -> &[Request]| {
        view.resources
            .iter()
            .flat_map(|v| pick(v).iter().map(RequestJson::of))
            .collect()
    };
    let body = Requests {
        resources: view
            .resources
            .iter()
            .map(|v| ResourceJson {
                name: v.resource.name.to_string(),
                title: v.resource.title.clone(),
                approvals_needed: v.resource.rules.approvals_needed.get(),
            })
            .collect(),
        pending: all(|v| &v.pending),
        active: all(|v| &v.active),
        ended: view.ended.iter().map(RequestJson::of).collect(),
        sync: SyncJson::all(
            &view
                .resources
                .iter()
                .map(|v| SyncJson::of(&v.sync, None))
                .collect::<Vec<_>>(),
        ),
    };
    Ok((status, Json(body)).into_response())
}
