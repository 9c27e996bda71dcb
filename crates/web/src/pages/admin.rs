//! `GET /admin` and the admin actions. The service checks admin rights on
//! every call (`ServiceError::NotAdmin` → 403), whatever Pomerium's route
//! policy let through. The page's forms carry the request id they show, so
//! a decision on a request that changed meanwhile is refused (409).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jit_domain::{
    Email, GrantDuration, Request, RequestId, Rules, Seen, State as RequestState, Status,
};
use jit_service::{AdminView, SyncFailure, SyncStatus};
use time::OffsetDateTime;

use super::{Chrome, actor_label, require_applied, status_label};
use crate::auth::SignedIn;
use crate::input::{Approval, Form, Subject};
use crate::notice::{Flash, Flasher, Notice, Shown};
use crate::sync::{failure_code, failure_text};
use crate::text::{Breakable, Excerpt};
use crate::when::When;
use crate::{AppState, WebError};

#[derive(Debug, Template, WebTemplate)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage {
    chrome: Chrome,
    notice: Option<Shown>,
    sync: SyncPanel,
    pending: Vec<PendingRow>,
    active: Vec<ActiveRow>,
    ended: Vec<EndedRow>,
    durations: Vec<Choice>,
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
    /// The viewer's own request, which they may not approve.
    own: bool,
}

#[derive(Debug)]
struct ActiveRow {
    id: String,
    email: String,
    name: Breakable,
    reason: Option<Excerpt>,
    approved_by: Breakable,
    until: When,
    /// A start in the future, from a console edit.
    from: Option<When>,
    /// Past its expiry but not swept yet; Pomerium already denies it.
    lapsed: bool,
}

#[derive(Debug)]
struct EndedRow {
    name: Breakable,
    /// The badge's style.
    status: &'static str,
    /// The badge's text.
    label: String,
    /// Nobody for an expiry.
    by: Option<Breakable>,
    when: When,
}

/// One option of the approval's duration list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Debug)]
struct SyncPanel {
    last_success: Option<When>,
    /// The failure of the sync made for this page.
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
    fn of(status: &SyncStatus, fresh: &Result<(), SyncFailure>, now: OffsetDateTime) -> SyncPanel {
        SyncPanel {
            last_success: status.last_success_at.map(|at| When::new(at, now)),
            failure: fresh.as_ref().err().map(|f| Banner {
                code: failure_code(f.kind),
                text: failure_text(f.kind),
                message: f.message.clone(),
            }),
            auto_apply_off: status.auto_apply == Some(false),
        }
    }
}

/// Always renders the store's view; when the sync made for this page failed
/// the banner says why and the status is 503, so monitors notice.
pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    mut flash: Flash,
) -> Result<Response, WebError> {
    let notice = flash.shown.take();
    let view = app.service.admin_view(&admin).await?;
    let now = OffsetDateTime::now_utc();
    let status = if view.fresh.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let chrome = Chrome::signed_in(&app, &admin, "admin");
    let page = AdminPage::new(
        chrome,
        notice,
        &view,
        &admin.email,
        &view.resources[0].resource.rules,
        now,
    );
    Ok((status, flash, page).into_response())
}

impl AdminPage {
    fn new(
        chrome: Chrome,
        notice: Option<Shown>,
        view: &AdminView,
        me: &Email,
        rules: &Rules,
        now: OffsetDateTime,
    ) -> AdminPage {
        let when = |at| When::new(at, now);
        let pending = view
            .resources
            .iter()
            .flat_map(|v| &v.pending)
            .map(|r| PendingRow {
                id: r.id.to_string(),
                email: r.email.to_string(),
                name: Breakable(r.email.to_string()),
                requested: when(r.requested_at),
                reason: r.reason().map(|x| Excerpt::of(x.as_str())),
                own: &r.email == me && !rules.allow_self_approval,
            })
            .collect();
        let active = view
            .resources
            .iter()
            .flat_map(|v| &v.active)
            .filter_map(|r| {
                let g = r.state.grant()?;
                Some(ActiveRow {
                    id: r.id.to_string(),
                    email: r.email.to_string(),
                    name: Breakable(r.email.to_string()),
                    reason: r.reason().map(|x| Excerpt::of(x.as_str())),
                    approved_by: Breakable(actor_label(&g.approved_by, me)),
                    until: when(g.expires_at),
                    from: g.starts_at.filter(|s| *s > now).map(when),
                    lapsed: g.expires_at <= now,
                })
            })
            .collect();
        let ended = view
            .ended
            .iter()
            .filter_map(|r| ended_row(r, me, now))
            .collect();
        AdminPage {
            chrome,
            notice,
            sync: SyncPanel::of(&view.resources[0].sync, &view.fresh, now),
            pending,
            active,
            ended,
            durations: choices(rules),
        }
    }
}

fn ended_row(r: &Request, me: &Email, now: OffsetDateTime) -> Option<EndedRow> {
    let by = match &r.state {
        RequestState::Expired(_) => None,
        RequestState::Revoked { by, .. }
        | RequestState::Rejected { by, .. }
        | RequestState::Cancelled { by, .. } => Some(Breakable(actor_label(by, me))),
        RequestState::Pending | RequestState::Active(_) => return None,
    };
    Some(EndedRow {
        name: Breakable(r.email.to_string()),
        status: r.state.status().as_str(),
        label: status_label(r.state.status()),
        by,
        when: When::new(r.state.ended_at()?, now),
    })
}

/// Usual lengths up to the configured maximum, plus the default and the
/// maximum themselves; the default is preselected.
fn choices(rules: &Rules) -> Vec<Choice> {
    let mut all: Vec<GrantDuration> = [15, 60, 4 * 60, 8 * 60, 24 * 60]
        .into_iter()
        .filter_map(|m| GrantDuration::from_minutes(m).ok())
        .chain([rules.durations.default, rules.durations.max])
        .filter(|d| *d <= rules.durations.max)
        .collect();
    all.sort();
    all.dedup();
    all.into_iter()
        .map(|d| Choice {
            value: d.to_string(),
            label: label(d),
            selected: d == rules.durations.default,
        })
        .collect()
}

fn label(d: GrantDuration) -> String {
    let m = d.whole_minutes();
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match m {
        _ if m % (24 * 60) == 0 => plural(m / (24 * 60), "day"),
        _ if m % 60 == 0 => plural(m / 60, "hour"),
        _ if m < 60 => plural(m, "minute"),
        _ => format!("{} h {} min", m / 60, m % 60),
    }
}

pub(crate) async fn approve(
    State(app): State<AppState>,
    SignedIn(admin): SignedIn,
    flasher: Flasher,
    Form(Approval {
        email,
        duration,
        request,
    }): Form<Approval>,
) -> Result<Response, WebError> {
    let seen = seen(request, Status::Pending);
    let first = super::first_resource(&app);
    let outcome = app
        .service
        .approve(&admin, &first, &email, duration, seen)
        .await?;
    require_applied(&outcome)?;
    Ok(flasher.redirect("/admin", Notice::Approved, Some(&email)))
}

/// A decision on the request the page showed: pending for approve and
/// reject, active for revoke.
fn seen(request: Option<RequestId>, status: Status) -> Option<Seen> {
    request.map(|id| Seen { id, status })
}

/// `revoke-access`: ends the access the page showed. With only an email
/// (the original's form), it ends whatever is open, like `reject-access`.
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
    Subject { email, request }: Subject,
    shown: Status,
) -> Result<Response, WebError> {
    let first = super::first_resource(&app);
    let outcome = app
        .service
        .revoke(&admin, &first, &email, None, seen(request, shown))
        .await?;
    require_applied(&outcome)?;
    let notice = if outcome.request.state.status() == Status::Rejected {
        Notice::Rejected
    } else {
        Notice::Revoked
    };
    Ok(flasher.redirect("/admin", notice, Some(&email)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(m: u32) -> GrantDuration {
        GrantDuration::from_minutes(m).unwrap()
    }

    #[test]
    fn durations_are_bounded_by_the_maximum_and_preselect_the_default() {
        let rules = Rules::default();
        let values: Vec<_> = choices(&rules)
            .into_iter()
            .map(|c| (c.value, c.label, c.selected))
            .collect();
        assert_eq!(
            values,
            [
                ("15m".into(), "15 minutes".into(), false),
                ("1h".into(), "1 hour".into(), true),
                ("4h".into(), "4 hours".into(), false),
                ("8h".into(), "8 hours".into(), false),
                ("1d".into(), "1 day".into(), false),
            ]
        );
        let short = Rules {
            default_duration: minutes(2),
            max_duration: minutes(90),
            ..Rules::default()
        };
        let values: Vec<_> = choices(&short).into_iter().map(|c| c.label).collect();
        assert_eq!(values, ["2 minutes", "15 minutes", "1 hour", "1 h 30 min"]);
    }
}
