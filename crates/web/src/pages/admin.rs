//! `GET /admin` and the approvers' actions. The page has one section per
//! resource the caller approves; the service checks approver rights on
//! every call (403 otherwise), whatever Pomerium's route policy let
//! through. The page's forms carry the resource and the request id they
//! show, so a decision on a request that changed meanwhile is refused (409).
//! Revocations go through a confirmation page first (see `confirm`).
//!
//! Each list shows at most [`PAGE`] rows, with links to the rows before
//! and after it (`?pending.<resource>=<rows skipped>`, `active.…` alike)
//! that keep the other lists where they are.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jit_domain::{
    Actor, Email, Reason, Request, Resource, ResourceName, Seen, State as RequestState, Status,
    Ticket,
};
use jit_service::{
    AdminView, Caller, Decision, List, Outcome, ResourceView, RevokeScope, Span, SyncFailure,
    SyncStatus, Window,
};
use time::OffsetDateTime;

use super::index::reason_help;
use super::{
    Choice, Chrome, actor_label, approvals_text, approvers_label, choices, duration_label,
    ends_soon, require_applied, resource_or_first, seen, status_label,
};
use crate::auth::SignedIn;
use crate::input::{AdminPages, Approval, Form, GrantForm, Params, RevokeAll, Subject};
use crate::notice::{Flash, Flasher, Notice, Shown};
use crate::sync::{failure_code, failure_text};
use crate::text::{Breakable, Excerpt, Slug};
use crate::when::When;
use crate::{AppState, WebError};

#[derive(Debug, Template)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage {
    chrome: Chrome,
    notice: Option<Shown>,
    sync: SyncPanel,
    sections: Vec<Section>,
    ended: Vec<EndedRow>,
    reason_max: usize,
    ticket_max: usize,
    /// Admins only: each notification channel's state.
    notifications: Vec<ChannelRow>,
}

/// One notification channel on the admin page.
#[derive(Debug)]
struct ChannelRow {
    name: String,
    kind: String,
    pending: u64,
    dead: u64,
    success: Option<When>,
    error: Option<ChannelError>,
}

#[derive(Debug)]
struct ChannelError {
    text: String,
    at: When,
}

impl ChannelRow {
    fn of(c: &jit_service::ChannelView, now: OffsetDateTime) -> Self {
        let s = &c.status;
        ChannelRow {
            name: c.name.clone(),
            kind: c.kind.clone(),
            pending: s.pending,
            dead: s.dead,
            success: s.last_success_at.map(|at| When::new(at, now)),
            error: s.last_error.as_ref().map(|(text, at)| ChannelError {
                text: text.clone(),
                at: When::new(*at, now),
            }),
        }
    }
}

/// One resource the viewer approves.
#[derive(Debug)]
struct Section {
    /// As the forms send it.
    name: Slug,
    title: String,
    /// "Needs 2 approvals from different approvers."
    rule: String,
    pending: Vec<PendingRow>,
    /// The whole list's length, as the heading shows it ("1,234").
    pending_total: String,
    /// Links to the rows around these, when the list is longer than a page.
    pending_pages: Option<Pager>,
    active: Vec<ActiveRow>,
    active_total: String,
    active_pages: Option<Pager>,
    grant_durations: Vec<Choice>,
    reason_help: String,
    /// The ticket field's label, if the resource has one.
    ticket: Option<String>,
}

/// Rows per list on the page.
const PAGE: NonZeroUsize = NonZeroUsize::new(50).expect("not zero");

/// Where a list's shown rows sit, and the links to those around them.
#[derive(Debug)]
struct Pager {
    /// 1-based, as people count rows.
    first: usize,
    last: usize,
    total: String,
    /// The page before, if any.
    previous: Option<String>,
    /// The page after, if any.
    next: Option<String>,
}

impl Pager {
    /// `None` when the whole list fits on one page.
    fn of(span: Span, shown: usize, list: List, resource: &str, asked: &Offsets) -> Option<Pager> {
        let page = PAGE.get();
        if span.offset == 0 && span.total <= page {
            return None;
        }
        let href = |offset: usize| asked.href(resource, list, offset);
        let end = span.offset + shown;
        Some(Pager {
            first: span.offset + 1,
            last: end,
            total: thousands(span.total),
            previous: (span.offset > 0).then(|| href(span.offset.saturating_sub(page))),
            next: (end < span.total).then(|| href(end)),
        })
    }
}

/// The page's query as asked, to link to another page of one list while
/// keeping the others where they are.
#[derive(Debug)]
struct Offsets(HashMap<(ResourceName, List), usize>);

impl Offsets {
    fn href(&self, resource: &str, list: List, offset: usize) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|((r, l), _)| !(r.as_str() == resource && *l == list))
            .map(|((r, l), o)| (format!("{}.{r}", l.as_str()), o.to_string()))
            .collect();
        if offset > 0 {
            pairs.push((format!("{}.{resource}", list.as_str()), offset.to_string()));
        }
        pairs.sort();
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let anchor = format!("#{}-title-{resource}", list.as_str());
        if query.is_empty() {
            format!("/admin{anchor}")
        } else {
            format!("/admin?{query}{anchor}")
        }
    }
}

/// `1234` as "1,234".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[derive(Debug)]
struct PendingRow {
    id: String,
    /// As the forms send it.
    email: String,
    /// As the table shows it.
    name: Breakable,
    requested: When,
    reason: Option<Excerpt>,
    ticket: Option<String>,
    duration: Option<String>,
    starts: Option<When>,
    /// The approver who asked on the person's behalf.
    on_behalf: Option<Breakable>,
    /// "1 of 2: alice@example.com".
    approvals: String,
    /// Why the viewer has no approve button, if they have none.
    blocked: Option<&'static str>,
    durations: Vec<Choice>,
}

#[derive(Debug)]
struct ActiveRow {
    id: String,
    email: String,
    name: Breakable,
    reason: Option<Excerpt>,
    approved_by: Breakable,
    until: When,
    /// A start in the future.
    from: Option<When>,
    /// Past its expiry but not swept yet; Pomerium already denies it.
    lapsed: bool,
    /// Ends within ten minutes.
    soon: bool,
    extension: Option<ExtensionRow>,
    /// The query of its confirmation page.
    confirm: String,
    /// The query of the page confirming all of this person's grants.
    confirm_person: String,
}

#[derive(Debug)]
struct ExtensionRow {
    duration: String,
    reason: Option<Excerpt>,
    asked: When,
    approvals: String,
    blocked: Option<&'static str>,
}

#[derive(Debug)]
struct EndedRow {
    id: String,
    name: Breakable,
    resource: String,
    /// The badge's style.
    status: &'static str,
    /// The badge's text.
    label: String,
    /// Nobody for an expiry or a time-out.
    by: Option<Breakable>,
    comment: Option<Excerpt>,
    when: When,
}

#[derive(Debug)]
struct SyncPanel {
    /// The oldest of the shown resources' last successful syncs.
    last_success: Option<When>,
    /// The latest sync's failure, if it failed.
    failure: Option<Banner>,
    /// The cluster does not apply changesets on its own.
    auto_apply_off: bool,
}

#[derive(Debug)]
struct Banner {
    code: &'static str,
    text: &'static str,
    /// The reconciler's own words, written for operators.
    message: String,
}

impl SyncPanel {
    fn of<'a>(
        statuses: impl IntoIterator<Item = &'a SyncStatus>,
        fresh: &Result<(), SyncFailure>,
        now: OffsetDateTime,
    ) -> SyncPanel {
        let statuses: Vec<&SyncStatus> = statuses.into_iter().collect();
        let last_success = statuses
            .iter()
            .map(|s| s.last_success_at)
            .collect::<Option<Vec<_>>>()
            .and_then(|all| all.into_iter().min());
        SyncPanel {
            last_success: last_success.map(|at| When::new(at, now)),
            failure: fresh.as_ref().err().map(|f| Banner {
                code: failure_code(f.kind),
                text: failure_text(f.kind),
                message: f.message.clone(),
            }),
            auto_apply_off: statuses.iter().any(|s| s.auto_apply == Some(false)),
        }
    }
}

/// Renders the store's view at once; a stale sync is refreshed in the
/// background. When the latest sync failed the banner says why and the
/// status is 503, so monitors notice.
pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    Params(AdminPages { offsets }): Params<AdminPages>,
    mut flash: Flash,
) -> Result<Response, WebError> {
    let notice = flash.shown.take();
    let window = Window {
        size: Some(PAGE),
        offsets,
    };
    let view = app.service.admin_window(&admin, &window).await?;
    if let Some((resource, list)) = window
        .offsets
        .keys()
        .find(|(r, _)| !view.resources.iter().any(|v| &v.resource.name == r))
    {
        return Err(WebError::field(
            list.as_str(),
            format!(
                "`{}.{resource}` names a resource you do not approve here; use the links on the page",
                list.as_str()
            ),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let status = if view.fresh.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let chrome = Chrome::signed_in(&app, &admin, "admin");
    let asked = Offsets(window.offsets);
    let mut page = AdminPage::new(chrome, notice, &view, &asked, &admin.email, now);
    if app.service.is_admin(&admin) {
        let status = app.service.notification_status(&admin).await?;
        page.notifications = status
            .channels
            .iter()
            .map(|c| ChannelRow::of(c, now))
            .collect();
    }
    Ok((status, flash, page).into_response())
}

/// "Sync now": syncs the resources the caller approves with Zero and waits
/// (a bounded time), then goes back to the page.
pub(crate) async fn sync_now(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
) -> Result<Response, WebError> {
    match app.service.sync_now(&admin).await? {
        Ok(()) => Ok(flasher.redirect("/admin", Notice::Synced, None)),
        Err(f) => Err(WebError::SyncFailed(f)),
    }
}

/// The query string naming one grant, for its confirmation page.
pub(crate) fn confirm_query(r: &Request) -> String {
    serde_urlencoded::to_string([
        ("resource", r.resource.as_str()),
        ("email", r.email.as_str()),
        ("request", &r.id.to_string()),
    ])
    // Plain strings always encode.
    .unwrap_or_default()
}

/// Why `me` may not approve what is open on `r`, if they may not.
fn blocked(r: &Request, resource: &Resource, me: &Email) -> Option<&'static str> {
    if &r.email == me && !resource.rules.allow_self_approval {
        Some("Your own request: another approver must approve it.")
    } else if r.approvals.iter().any(|a| &a.by == me) {
        Some("You approved it; another approver must approve it too.")
    } else {
        None
    }
}

super::html_pages!(AdminPage);

impl AdminPage {
    fn new(
        chrome: Chrome,
        notice: Option<Shown>,
        view: &AdminView,
        asked: &Offsets,
        me: &Email,
        now: OffsetDateTime,
    ) -> AdminPage {
        let sections = view
            .resources
            .iter()
            .map(|v| section(v, asked, me, now))
            .collect();
        let title = |r: &Request| {
            view.resources
                .iter()
                .find(|v| v.resource.name == r.resource)
                .map_or_else(|| r.resource.to_string(), |v| v.resource.title.clone())
        };
        let ended = view
            .ended
            .iter()
            .filter_map(|r| ended_row(r, title(r), me, now))
            .collect();
        AdminPage {
            chrome,
            notice,
            sync: SyncPanel::of(view.resources.iter().map(|v| &v.sync), &view.fresh, now),
            sections,
            ended,
            reason_max: Reason::MAX_LEN,
            ticket_max: Ticket::MAX_LEN,
            notifications: Vec::new(),
        }
    }
}

fn section(v: &ResourceView, asked: &Offsets, me: &Email, now: OffsetDateTime) -> Section {
    let when = |at| When::new(at, now);
    let resource = &v.resource;
    let rules = &resource.rules;
    let needed = rules.approvals_needed;
    let pending = v
        .pending
        .iter()
        .map(|r| PendingRow {
            id: r.id.to_string(),
            email: r.email.to_string(),
            name: Breakable(r.email.to_string()),
            requested: when(r.requested_at),
            reason: r.reason().map(|x| Excerpt::of(x.as_str())),
            ticket: r.ask.ticket.as_ref().map(|t| t.as_str().to_owned()),
            duration: r.ask.duration.map(duration_label),
            starts: r.ask.starts_at.map(when),
            on_behalf: match &r.requested_by {
                Actor::User(by) if by != &r.email => {
                    Some(Breakable(actor_label(&r.requested_by, me)))
                }
                _ => None,
            },
            approvals: approvals_text(&r.approvals, needed, me),
            blocked: blocked(r, resource, me),
            durations: choices(rules, r.ask.duration),
        })
        .collect::<Vec<_>>();
    let active = v
        .active
        .iter()
        .filter_map(|r| {
            let g = r.state.grant()?;
            Some(ActiveRow {
                id: r.id.to_string(),
                email: r.email.to_string(),
                name: Breakable(r.email.to_string()),
                reason: r.reason().map(|x| Excerpt::of(x.as_str())),
                approved_by: Breakable(approvers_label(r, g, me)),
                until: when(g.expires_at),
                from: g.starts_at.filter(|s| *s > now).map(when),
                lapsed: g.expires_at <= now,
                soon: ends_soon(g.expires_at, now),
                extension: r.extension.as_ref().map(|x| ExtensionRow {
                    duration: duration_label(x.duration),
                    reason: x.reason.as_ref().map(|x| Excerpt::of(x.as_str())),
                    asked: when(x.asked_at),
                    approvals: approvals_text(&r.approvals, needed, me),
                    blocked: blocked(r, resource, me),
                }),
                confirm: confirm_query(r),
                confirm_person: serde_urlencoded::to_string([("person", r.email.as_str())])
                    .unwrap_or_default(),
            })
        })
        .collect::<Vec<_>>();
    let name = resource.name.as_str();
    let mut rule = if needed.get() == 1 {
        "Needs 1 approval".to_owned()
    } else {
        format!("Needs {needed} approvals from different approvers")
    };
    rule.push_str(if rules.allow_self_approval {
        "; requesters may approve their own (flagged in the trail)."
    } else {
        "; nobody approves their own request."
    });
    Section {
        name: Slug(resource.name.clone()),
        title: resource.title.clone(),
        rule,
        pending_total: thousands(v.pending_span.total),
        pending_pages: Pager::of(v.pending_span, pending.len(), List::Pending, name, asked),
        pending,
        active_total: thousands(v.active_span.total),
        active_pages: Pager::of(v.active_span, active.len(), List::Active, name, asked),
        active,
        grant_durations: choices(rules, None),
        reason_help: reason_help(rules, true),
        ticket: rules.ticket.as_ref().map(|t| t.label.clone()),
    }
}

fn ended_row(r: &Request, resource: String, me: &Email, now: OffsetDateTime) -> Option<EndedRow> {
    let by = match &r.state {
        RequestState::Expired(_) => None,
        RequestState::Cancelled { .. } if r.timed_out() => None,
        RequestState::Revoked { by, .. }
        | RequestState::Rejected { by, .. }
        | RequestState::Cancelled { by, .. } => Some(Breakable(actor_label(by, me))),
        RequestState::Pending | RequestState::Active(_) => return None,
    };
    Some(EndedRow {
        id: r.id.to_string(),
        name: Breakable(r.email.to_string()),
        resource,
        status: r.state.status().as_str(),
        label: if r.timed_out() {
            "Timed out".to_owned()
        } else {
            status_label(r.state.status())
        },
        by,
        comment: r.comment.as_ref().map(|c| Excerpt::of(c.as_str())),
        when: When::new(r.state.ended_at()?, now),
    })
}

/// An approval: the request is approved once enough distinct approvers
/// have approved; until then the notice says how many have.
pub(crate) async fn approve(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(Approval {
        resource,
        email,
        duration,
        request,
    }): Form<Approval>,
) -> Result<Response, WebError> {
    let seen = seen(request, Status::Pending);
    let decision = Decision::Approve { duration };
    let (resource, outcome) = decided(&app, &admin, resource, &email, seen, decision).await?;
    let notice = progress(&app, &resource, &outcome.request, Notice::Approved)?;
    Ok(flasher.redirect("/admin", notice, Some(&email)))
}

/// Makes `decision` on the resource named (the first one if none, as the
/// original's forms name none); answers once it is applied.
async fn decided(
    app: &AppState,
    admin: &Caller,
    resource: Option<ResourceName>,
    email: &Email,
    seen: Option<Seen>,
    decision: Decision,
) -> Result<(String, Outcome), WebError> {
    let resource = resource_or_first(app, resource);
    let outcome = app
        .service
        .decide_as(admin, &resource, email, seen, decision)
        .await?;
    require_applied(&outcome)?;
    Ok((resource, outcome))
}

/// `done` when the decision took effect, else how many approvals it has.
fn progress(app: &AppState, resource: &str, r: &Request, done: Notice) -> Result<Notice, WebError> {
    let need = app.service.resource(resource)?.rules.approvals_needed.get();
    let have = u8::try_from(r.approvals.len()).unwrap_or(u8::MAX);
    let waiting = match done {
        Notice::ExtensionApproved => r.extension.is_some(),
        _ => r.state.status() == Status::Pending,
    };
    Ok(match (waiting, done) {
        (false, _) => done,
        (true, Notice::ExtensionApproved) => Notice::ExtensionReviewed { have, need },
        (true, _) => Notice::Reviewed { have, need },
    })
}

/// `revoke-access`: ends the access the page showed, with an optional
/// comment. With only an email (the original's form), it ends whatever is
/// open on the first resource, like `reject-access`.
pub(crate) async fn revoke(
    state: State<AppState>,
    signed_in: SignedIn,
    flasher: Flasher,
    Form(subject): Form<Subject>,
) -> Result<Response, WebError> {
    end(state, signed_in, flasher, subject, Status::Active).await
}

/// `reject-access`: rejects the pending request the page showed.
pub(crate) async fn reject(
    state: State<AppState>,
    signed_in: SignedIn,
    flasher: Flasher,
    Form(subject): Form<Subject>,
) -> Result<Response, WebError> {
    end(state, signed_in, flasher, subject, Status::Pending).await
}

/// Ends whatever is open for the email, a pending request (rejected) or
/// access (revoked), like the original's `revoke-access`, unless the page
/// showed another request or status. The confirmation says which it was.
async fn end(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Subject {
        resource,
        email,
        request,
        comment,
    }: Subject,
    shown: Status,
) -> Result<Response, WebError> {
    let decision = Decision::Revoke { comment };
    let (_, outcome) = decided(
        &app,
        &admin,
        resource,
        &email,
        seen(request, shown),
        decision,
    )
    .await?;
    let notice = if outcome.request.state.status() == Status::Rejected {
        Notice::Rejected
    } else {
        Notice::Revoked
    };
    Ok(flasher.redirect("/admin", notice, Some(&email)))
}

/// Approves the extension the page showed.
pub(crate) async fn approve_extension(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(Subject {
        resource,
        email,
        request,
        ..
    }): Form<Subject>,
) -> Result<Response, WebError> {
    let seen = seen(request, Status::Active);
    let decision = Decision::ApproveExtension;
    let (resource, outcome) = decided(&app, &admin, resource, &email, seen, decision).await?;
    let notice = progress(&app, &resource, &outcome.request, Notice::ExtensionApproved)?;
    Ok(flasher.redirect("/admin", notice, Some(&email)))
}

/// Declines the extension the page showed, with an optional comment.
pub(crate) async fn reject_extension(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(Subject {
        resource,
        email,
        request,
        comment,
    }): Form<Subject>,
) -> Result<Response, WebError> {
    let seen = seen(request, Status::Active);
    let decision = Decision::RejectExtension { comment };
    decided(&app, &admin, resource, &email, seen, decision).await?;
    Ok(flasher.redirect("/admin", Notice::ExtensionDeclined, Some(&email)))
}

/// Grants a resource to someone who did not ask, with a reason.
pub(crate) async fn grant(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(GrantForm {
        resource,
        email,
        ask,
    }): Form<GrantForm>,
) -> Result<Response, WebError> {
    let decision = Decision::Grant { ask };
    let (resource, outcome) = decided(&app, &admin, resource, &email, None, decision).await?;
    let notice = progress(&app, &resource, &outcome.request, Notice::Granted)?;
    Ok(flasher.redirect("/admin", notice, Some(&email)))
}

/// Revokes every active grant of one person (on the resources the caller
/// approves), of one resource, or of one person on one resource.
pub(crate) async fn revoke_all(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(RevokeAll {
        person,
        resource,
        comment,
    }): Form<RevokeAll>,
) -> Result<Response, WebError> {
    let scope = RevokeScope { person, resource };
    let outcomes = app.service.revoke_all(&admin, &scope, comment).await?;
    for outcome in &outcomes {
        require_applied(outcome)?;
    }
    let count = u16::try_from(outcomes.len()).unwrap_or(u16::MAX);
    Ok(flasher.redirect("/admin", Notice::RevokedAll(count), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_thousands_separators() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (120_345, "120,345"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }
}
