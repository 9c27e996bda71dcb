//! Confirmation pages for revocations, without script: a GET page saying
//! what will end, whose form POSTs the revocation with an optional comment.
//! Loading one changes nothing.

use askama::Template;
use axum::extract::State;
use jit_domain::{DomainError, Reason, Request, Status};
use jit_service::ServiceError;
use time::OffsetDateTime;

use super::{Chrome, approvers_label, resource_or_first};
use crate::auth::SignedIn;
use crate::input::{Params, RevokeAll, Subject};
use crate::text::{Breakable, Excerpt};
use crate::when::When;
use crate::{AppState, WebError};

/// One grant a revocation will end.
#[derive(Debug)]
struct Target {
    id: String,
    email: String,
    name: Breakable,
    resource: String,
    title: String,
    reason: Option<Excerpt>,
    approved_by: Breakable,
    until: When,
}

impl Target {
    fn of(
        r: &Request,
        title: &str,
        viewer: &jit_domain::Email,
        now: OffsetDateTime,
    ) -> Option<Target> {
        let g = r.state.grant()?;
        Some(Target {
            id: r.id.to_string(),
            email: r.email.to_string(),
            name: Breakable(r.email.to_string()),
            resource: r.resource.to_string(),
            title: title.to_owned(),
            reason: r.reason().map(|x| Excerpt::of(x.as_str())),
            approved_by: Breakable(approvers_label(r, g, viewer)),
            until: When::new(g.expires_at, now),
        })
    }
}

super::html_pages!(ConfirmRevoke, ConfirmRevokeAll);

#[derive(Debug, Template)]
#[template(path = "confirm_revoke.html")]
pub(crate) struct ConfirmRevoke {
    chrome: Chrome,
    target: Target,
    reason_max: usize,
}

/// `GET /admin/confirm-revoke?resource=..&email=..&request=..`: the grant
/// the admin page showed, if it is still active.
pub(crate) async fn revoke(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(Subject {
        resource,
        email,
        request,
        ..
    }): Params<Subject>,
) -> Result<ConfirmRevoke, WebError> {
    let name = resource_or_first(&app, resource);
    let resource = app.service.resource(&name)?;
    app.service.approves(&caller, resource)?;
    let current = app
        .service
        .status_of(&email)
        .into_iter()
        .find(|r| r.resource == resource.name)
        .filter(|r| r.state.status() == Status::Active)
        .filter(|r| request.is_none_or(|id| r.id == id));
    let now = OffsetDateTime::now_utc();
    let target = current
        .as_ref()
        .and_then(|r| Target::of(r, &resource.title, &caller.email, now))
        .ok_or_else(|| ServiceError::Domain(DomainError::NoOpenRequest { email }))?;
    Ok(ConfirmRevoke {
        chrome: Chrome::signed_in(&app, &caller, "admin"),
        target,
        reason_max: Reason::MAX_LEN,
    })
}

#[derive(Debug, Template)]
#[template(path = "confirm_revoke_all.html")]
pub(crate) struct ConfirmRevokeAll {
    chrome: Chrome,
    /// "every grant of alice@example.com", "every grant on Database".
    scope: String,
    person: Option<String>,
    resource: Option<String>,
    targets: Vec<Target>,
    reason_max: usize,
}

/// `GET /admin/confirm-revoke-all?person=..` and/or `resource=..`: every
/// active grant in that scope on the resources the caller approves.
pub(crate) async fn revoke_all(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Params(RevokeAll {
        person, resource, ..
    }): Params<RevokeAll>,
) -> Result<ConfirmRevokeAll, WebError> {
    let title = match &resource {
        Some(name) => {
            let r = app.service.resource(name.as_str())?;
            app.service.approves(&caller, r)?;
            Some(r.title.clone())
        }
        None => None,
    };
    let view = app.service.admin_view(&caller).await?;
    let now = OffsetDateTime::now_utc();
    let targets = view
        .resources
        .iter()
        .filter(|v| resource.as_ref().is_none_or(|n| &v.resource.name == n))
        .flat_map(|v| {
            v.active
                .iter()
                .filter(|r| person.as_ref().is_none_or(|p| &r.email == p))
                .filter_map(|r| Target::of(r, &v.resource.title, &caller.email, now))
        })
        .collect();
    let scope = match (&person, &title) {
        (Some(p), Some(t)) => format!("every grant of {p} on {t}"),
        (Some(p), None) => format!("every grant of {p} on the resources you approve"),
        (None, Some(t)) => format!("every grant on {t}"),
        // The input needs one or the other.
        (None, None) => "every grant on the resources you approve".to_owned(),
    };
    Ok(ConfirmRevokeAll {
        chrome: Chrome::signed_in(&app, &caller, "admin"),
        scope,
        person: person.map(|p| p.to_string()),
        resource: resource.map(|r| r.to_string()),
        targets,
        reason_max: Reason::MAX_LEN,
    })
}
