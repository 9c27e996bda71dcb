//! `GET /requests/{id}` (and `/admin/requests/{id}`, for approvers in open
//! admin mode): one request in full, to its requester and to the approvers
//! of its resource; with its audit events for approvers.

use askama::Template;
use axum::extract::{Path, State};
use jit_domain::{Actor, Request, RequestId, State as RequestState};
use jit_service::{AuditQuery, ServiceError};
use time::OffsetDateTime;

use super::{Chrome, actor_label, approvers_label, duration_label, ends_soon, status_label};
use crate::auth::SignedIn;
use crate::text::Breakable;
use crate::when::When;
use crate::{AppState, WebError};

/// At most this many of the person's latest events are searched for the
/// request's own.
const EVENTS: usize = 200;

super::html_pages!(RequestPage);

#[derive(Debug, Template)]
#[template(path = "request.html")]
pub(crate) struct RequestPage {
    chrome: Chrome,
    title: String,
    name: Breakable,
    status: &'static str,
    label: String,
    requested: When,
    /// The approver who asked on the person's behalf.
    on_behalf: Option<Breakable>,
    reason: Option<String>,
    ticket: Option<String>,
    duration: Option<String>,
    starts: Option<When>,
    /// "1 of 2".
    approvals_count: String,
    approvals: Vec<(Breakable, When)>,
    grant: Option<GrantFacts>,
    extension: Option<ExtensionFacts>,
    extensions: String,
    comment: Option<String>,
    ended: Option<(String, When)>,
    /// `None`: not shown to this viewer.
    events: Option<Vec<EventRow>>,
    back: &'static str,
}

#[derive(Debug)]
struct GrantFacts {
    approved_by: Breakable,
    approved: When,
    from: Option<When>,
    until: When,
    soon: bool,
}

#[derive(Debug)]
struct ExtensionFacts {
    duration: String,
    reason: Option<String>,
    asked: When,
}

#[derive(Debug)]
struct EventRow {
    when: When,
    who: Breakable,
    what: &'static str,
}

pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> Result<RequestPage, WebError> {
    let id: RequestId = id.parse().map_err(|_| ServiceError::NoSuchRequest)?;
    let r = app.service.request_by_id(&caller, id).await?;
    let resource = app.service.resource(r.resource.as_str())?;
    let approver = app.service.approves(&caller, resource).is_ok();
    let events = if approver {
        let query = AuditQuery {
            subject: Some(r.email.clone()),
            before: None,
            limit: EVENTS,
        };
        let mut events = app.service.audit_events(&caller, query).await?;
        events.retain(|e| e.event.request_id == r.id);
        events.reverse();
        Some(events)
    } else {
        None
    };
    let now = OffsetDateTime::now_utc();
    let me = &caller.email;
    let when = |at| When::new(at, now);
    let rules = &resource.rules;
    let events = events.map(|events| {
        events
            .iter()
            .map(|e| EventRow {
                when: when(e.event.at),
                who: Breakable(actor_label(&e.event.actor, me)),
                what: e.event.action.word(),
            })
            .collect()
    });
    Ok(RequestPage {
        chrome: Chrome::signed_in(&app, &caller, ""),
        title: resource.title.clone(),
        name: Breakable(r.email.to_string()),
        status: r.state.status().as_str(),
        label: if r.timed_out() {
            "Timed out".to_owned()
        } else {
            status_label(r.state.status())
        },
        requested: when(r.requested_at),
        on_behalf: match &r.requested_by {
            Actor::User(by) if by != &r.email => Some(Breakable(actor_label(&r.requested_by, me))),
            _ => None,
        },
        reason: r.reason().map(|x| x.as_str().to_owned()),
        ticket: r.ask.ticket.as_ref().map(|t| t.as_str().to_owned()),
        duration: r.ask.duration.map(duration_label),
        starts: r.ask.starts_at.map(when),
        approvals_count: format!("{} of {}", r.approvals.len(), rules.approvals_needed),
        approvals: r
            .approvals
            .iter()
            .map(|a| {
                (
                    Breakable(actor_label(&Actor::User(a.by.clone()), me)),
                    when(a.at),
                )
            })
            .collect(),
        grant: r.state.grant().map(|g| GrantFacts {
            approved_by: Breakable(approvers_label(&r, g, me)),
            approved: when(g.approved_at),
            from: g.starts_at.map(when),
            until: when(g.expires_at),
            soon: matches!(r.state, RequestState::Active(_)) && ends_soon(g.expires_at, now),
        }),
        extension: r.extension.as_ref().map(|x| ExtensionFacts {
            duration: duration_label(x.duration),
            reason: x.reason.as_ref().map(|x| x.as_str().to_owned()),
            asked: when(x.asked_at),
        }),
        extensions: format!("{} of {}", r.extensions, rules.max_extensions),
        comment: r.comment.as_ref().map(|c| c.as_str().to_owned()),
        ended: ended(&r, me).map(|(what, at)| (what, when(at))),
        events,
        back: if approver && &r.email != me {
            "/admin"
        } else {
            "/"
        },
    })
}

fn ended(r: &Request, me: &jit_domain::Email) -> Option<(String, OffsetDateTime)> {
    let at = r.state.ended_at()?;
    let what = match &r.state {
        RequestState::Expired(_) => "Expired".to_owned(),
        _ if r.timed_out() => "Timed out unanswered".to_owned(),
        RequestState::Revoked { by, .. } => format!("Revoked by {}", actor_label(by, me)),
        RequestState::Rejected { by, .. } => format!("Rejected by {}", actor_label(by, me)),
        RequestState::Cancelled { by, .. } => format!("Withdrawn by {}", actor_label(by, me)),
        RequestState::Pending | RequestState::Active(_) => return None,
    };
    Some((what, at))
}
