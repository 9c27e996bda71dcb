//! The HTML pages. Each handler parses its input, calls the service once and
//! renders a compiled template from a view made here, so templates hold no
//! logic beyond showing what they are given.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod confirm;
pub(crate) mod history;
pub(crate) mod index;
pub(crate) mod request;

use std::cell::RefCell;
use std::num::NonZeroU8;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use askama::Template;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};

use jit_domain::{
    Actor, Approval, Email, Grant, GrantDuration, Profile, Request, RequestId, ResourceName, Rules,
    Seen, Status,
};
use jit_service::{Applied, Caller, Outcome};
use time::OffsetDateTime;

use crate::text::{Breakable, Escaped};
use crate::{AppState, WebError, assets};

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub demo: bool,
    /// Who is signed in; shown by [`Chrome::address`].
    pub who: Option<Arc<Profile>>,
    pub admin: bool,
    /// The navigation entry to mark as current: `home`, `admin`, `audit`.
    pub section: &'static str,
    pub css: &'static Escaped,
    pub icon: &'static Escaped,
}

impl Chrome {
    /// For pages shown before (or without) knowing who is asking.
    pub fn anonymous(demo: bool) -> Chrome {
        Chrome {
            demo,
            who: None,
            admin: false,
            section: "",
            css: assets::css_href(),
            icon: assets::icon_href(),
        }
    }

    pub fn signed_in(state: &AppState, caller: &Caller, section: &'static str) -> Chrome {
        Chrome {
            who: Some(Arc::clone(&caller.profile)),
            // In open mode Pomerium decides who reaches /admin; the link is harmless.
            admin: state.service.is_admin(caller) || state.service.settings().admins.is_open(),
            section,
            ..Chrome::anonymous(state.demo)
        }
    }

    /// The signed-in address, wrapping after `@` and `.`.
    pub fn address(&self) -> Option<Breakable<&str>> {
        self.who.as_ref().map(|who| Breakable(who.email.as_str()))
    }
}

/// A page as the response. The HTML is written into room for the length
/// the same page had lately (`last_len`, plus a sixteenth): grown by
/// doubling, a buffer is copied several times per page and holds up to
/// twice the page (at thousands of people the approvers' page is a few
/// hundred kilobytes, and sixteen are drawn at once). Pages up to
/// [`SHARED_PAGE`] bytes are cut from their thread's [`ROOM`] instead of a
/// block each. The headers are a copy of [`PAGE_HEADERS`], with room for
/// what is added later: a map grown there reallocated on every page, 3% of
/// `GET /`'s CPU time (perf).
pub(crate) fn html(page: &impl Template, last_len: &AtomicUsize) -> Response {
    let last = last_len.load(Ordering::Relaxed);
    let room = last + last / 16;
    let body = if room <= SHARED_PAGE {
        ROOM.with_borrow_mut(|shared| render_into(page, room, shared))
    } else {
        render_into(page, room, &mut BytesMut::new())
    };
    let Some(body) = body else {
        return WebError::Status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    // Stored only when the room would no longer fit or is far too large:
    // both workers read it on every page, and a store on each (the index
    // page's length changes with the signed-in email) moved its cache line
    // from one core to the other.
    let len = body.len();
    if len > room || len < last - last / 8 {
        last_len.store(len, Ordering::Relaxed);
    }
    let mut headers = PAGE_HEADERS.clone();
    // Replaces the length in place (axum would add one to the end), its
    // digits copied into a block of their own (`HeaderValue::from(len)`
    // makes a `BytesMut` of it, freed at a higher price).
    let digits = HeaderValue::from_str(itoa::Buffer::new().format(len))
        .expect("decimal digits are a header value");
    headers.insert(header::CONTENT_LENGTH, digits);
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}

/// Every page's headers before its own: the content type, a length to be
/// replaced, and the edge's ([`crate::layers::secured_headers`]), with room
/// for a notice's cookie.
static PAGE_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut h = crate::layers::secured_headers(3);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    h
});

/// The largest page cut from a thread's [`ROOM`]: the usual pages, not the
/// approvers' list at thousands of people, which would keep its size
/// resident in every thread that drew it. A page not yet sent keeps its
/// whole room: four times its size for a page this large, twelve times
/// for the index page (Pomerium's proxy reads each response at once, so
/// none waits long).
const SHARED_PAGE: usize = 8 * 1024;

thread_local! {
    /// What this thread's small pages are written into, each page cut off
    /// as it is done. Every page was a block of its own, larger than
    /// malloc's per-thread cache takes (1 KiB), so each one took its
    /// arena's lock. Once the pages cut from it are
    /// sent, the room is used again from its start; while some are still
    /// being sent, a new one is taken and the old one goes with its last
    /// page.
    static ROOM: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(4 * SHARED_PAGE));
}

/// `page` rendered into `buffer` (with `room` reserved first), cut off as
/// its own bytes; on failure what was written is dropped and the failure
/// logged.
fn render_into(page: &impl Template, room: usize, buffer: &mut BytesMut) -> Option<Bytes> {
    buffer.reserve(room);
    match page.render_into(&mut *buffer) {
        Ok(()) => Some(buffer.split().freeze()),
        Err(e) => {
            buffer.clear();
            let page = std::any::type_name_of_val(page);
            tracing::error!(error = %e, page, "a page failed to render");
            None
        }
    }
}

/// Makes each page type a response through [`html`], with its own length
/// remembered.
macro_rules! html_pages {
    ($($page:ty),+ $(,)?) => {$(
        impl axum::response::IntoResponse for $page {
            fn into_response(self) -> axum::response::Response {
                static LAST_LEN: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                $crate::pages::html(&self, &LAST_LEN)
            }
        }
    )+};
}
pub(crate) use html_pages;

/// A change that is durable but not yet in Pomerium Zero's policy answers
/// with the "saved, not applied" page instead of a confirmation.
pub(crate) fn require_applied(outcome: &Outcome) -> Result<(), WebError> {
    match &outcome.applied {
        Applied::Applied => Ok(()),
        Applied::Saved(failure) => Err(WebError::NotApplied(failure.clone())),
    }
}

/// Who did something, as a person reads it; "you" for the viewer.
pub(crate) fn actor_label(actor: &Actor, viewer: &Email) -> String {
    match actor {
        Actor::User(e) if e == viewer => "you".to_owned(),
        other => other.label(),
    }
}

/// Who approved a grant, as a person reads it: every approver of an N-of-M
/// approval ("carol@… and you"), else the one who approved it.
pub(crate) fn approvers_label(r: &Request, g: &Grant, viewer: &Email) -> String {
    let by_them = r.extension.is_none()
        && r.approvals.len() > 1
        && r.approvals
            .iter()
            .any(|a| g.approved_by == Actor::User(a.by.clone()));
    if !by_them {
        return actor_label(&g.approved_by, viewer);
    }
    let names: Vec<String> = r
        .approvals
        .iter()
        .map(|a| actor_label(&Actor::User(a.by.clone()), viewer))
        .collect();
    match names.split_last() {
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => actor_label(&g.approved_by, viewer),
    }
}

/// A status as its badge reads, in sentence case like every badge: a
/// request the requester took back reads "Withdrawn", as on their page.
pub(crate) fn status_label(status: Status) -> String {
    match status.as_str() {
        "cancelled" => "Withdrawn".to_owned(),
        other => sentence_case(other),
    }
}

/// "gave back" → "Gave back", "expires_at" → "Expires at".
pub(crate) fn sentence_case(text: &str) -> String {
    let text = text.replace(['_', '-'], " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The resource a form named, or the first one for the original's forms.
pub(crate) fn resource_or_first(state: &AppState, named: Option<ResourceName>) -> String {
    named.map_or_else(|| first_resource(state), |n| n.to_string())
}

/// A decision on the request the page showed, in the status it showed.
pub(crate) fn seen(request: Option<RequestId>, status: Status) -> Option<Seen> {
    request.map(|id| Seen { id, status })
}

/// One option of a duration list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The resource's presets, its default and its maximum, shortest first;
/// `preselect` (when within the maximum) or else the default is selected.
pub(crate) fn choices(rules: &Rules, preselect: Option<GrantDuration>) -> Vec<Choice> {
    let d = &rules.durations;
    let selected = preselect.filter(|p| *p <= d.max).unwrap_or(d.default);
    let mut all: Vec<GrantDuration> = d
        .presets
        .iter()
        .copied()
        .chain([d.default, d.max, selected])
        .filter(|x| *x <= d.max)
        .collect();
    all.sort();
    all.dedup();
    all.into_iter()
        .map(|x| Choice {
            value: x.to_string(),
            label: duration_label(x),
            selected: x == selected,
        })
        .collect()
}

/// "1 hour", "90 minutes" reads as "1 h 30 min", "2 days".
pub(crate) fn duration_label(d: GrantDuration) -> String {
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

/// "1 of 2: alice@example.com", or "0 of 2" before anyone approved.
pub(crate) fn approvals_text(approvals: &[Approval], needed: NonZeroU8, viewer: &Email) -> String {
    let count = format!("{} of {}", approvals.len(), needed);
    if approvals.is_empty() {
        return count;
    }
    let who: Vec<String> = approvals
        .iter()
        .map(|a| actor_label(&Actor::User(a.by.clone()), viewer))
        .collect();
    format!("{count}: {}", who.join(", "))
}

/// Within this of its end a grant is highlighted, on the holder's page and
/// the approvers'.
pub(crate) const SOON: time::Duration = time::Duration::minutes(10);

/// Whether a grant ending at `until` ends soon (and has not ended).
pub(crate) fn ends_soon(until: OffsetDateTime, now: OffsetDateTime) -> bool {
    until > now && until - now <= SOON
}

/// The first resource of the catalog: the original's one policy, which the
/// original's email-only forms act on.
pub(crate) fn first_resource(state: &AppState) -> String {
    state
        .service
        .resources()
        .next()
        .map(|r| r.name.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    /// A page of `0` characters.
    #[derive(Template)]
    #[template(source = "{% for _ in 0..len %}0{% endfor %}", ext = "html")]
    struct Zeros {
        len: usize,
    }

    /// Where a page's bytes are, and the page.
    async fn drawn(len: usize, last: &AtomicUsize) -> (usize, bytes::Bytes) {
        let body = to_bytes(html(&Zeros { len }, last).into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.len(), len);
        (body.as_ptr() as usize, body)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn small_pages_share_their_threads_room_and_reuse_it_once_sent() {
        let last = AtomicUsize::new(0);
        let (first, a) = drawn(3000, &last).await;
        let (second, b) = drawn(3000, &last).await;
        assert_eq!(
            second,
            first + 3000,
            "cut from the same room, one after the other"
        );
        drop((a, b));
        // Each page sent before the next: once the room's end is reached,
        // it starts again from its beginning instead of taking a new block.
        let mut at = Vec::new();
        for _ in 0..3 * (4 * SHARED_PAGE / 3000) {
            at.push(drawn(3000, &last).await.0);
        }
        assert!(
            at.contains(&first),
            "the room was not used again: {first:#x} not in {at:x?}"
        );
        assert!(
            at.iter()
                .all(|p| (first..first + 4 * SHARED_PAGE).contains(p))
        );

        let large = AtomicUsize::new(SHARED_PAGE + 1);
        let (big, _held) = drawn(SHARED_PAGE + 1, &large).await;
        assert!(
            !(first..first + 4 * SHARED_PAGE).contains(&big),
            "a large page has a block of its own"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pages_length_is_stored_only_when_its_room_no_longer_fits() {
        let last = AtomicUsize::new(0);
        drawn(1600, &last).await;
        assert_eq!(last.load(Ordering::Relaxed), 1600, "the first page sets it");
        // The index page's length moves with the signed-in address: within
        // the room (a sixteenth more) and an eighth less, nothing is stored.
        for len in [1700, 1601, 1599, 1400] {
            drawn(len, &last).await;
            assert_eq!(last.load(Ordering::Relaxed), 1600, "after {len}");
        }
        drawn(1701, &last).await;
        assert_eq!(last.load(Ordering::Relaxed), 1701, "past the room");
        drawn(1400, &last).await;
        assert_eq!(last.load(Ordering::Relaxed), 1400, "far smaller");
    }

    fn minutes(m: u32) -> GrantDuration {
        GrantDuration::from_minutes(m).unwrap()
    }

    #[test]
    fn durations_are_the_presets_bounded_by_the_maximum() {
        let rules = Rules::default();
        let values: Vec<_> = choices(&rules, None)
            .into_iter()
            .map(|c| (c.value, c.label, c.selected))
            .collect();
        assert_eq!(
            values,
            [
                ("30m".into(), "30 minutes".into(), false),
                ("1h".into(), "1 hour".into(), true),
                ("4h".into(), "4 hours".into(), false),
                ("1d".into(), "1 day".into(), false),
            ]
        );
        let mut short = Rules::default();
        short.durations.default = minutes(2);
        short.durations.max = minutes(90);
        let values: Vec<_> = choices(&short, None).into_iter().map(|c| c.label).collect();
        assert_eq!(values, ["2 minutes", "30 minutes", "1 hour", "1 h 30 min"]);
        let asked: Vec<_> = choices(&short, Some(minutes(45)))
            .into_iter()
            .filter(|c| c.selected)
            .map(|c| c.label)
            .collect();
        assert_eq!(
            asked,
            ["45 minutes"],
            "the requested duration is offered and chosen"
        );
        let too_long = choices(&short, Some(minutes(600)));
        assert!(too_long.iter().all(|c| c.value != "10h"));
        assert!(too_long.iter().any(|c| c.selected && c.value == "2m"));
    }

    #[test]
    fn approvals_read_as_a_count_and_who() {
        let two = NonZeroU8::new(2).unwrap();
        let me = Email::parse("me@example.com").unwrap();
        assert_eq!(approvals_text(&[], two, &me), "0 of 2");
        let at = OffsetDateTime::UNIX_EPOCH;
        let a = |e: &str| Approval {
            by: Email::parse(e).unwrap(),
            at,
        };
        assert_eq!(
            approvals_text(&[a("alice@example.com"), a("me@example.com")], two, &me),
            "2 of 2: alice@example.com, you"
        );
    }

    #[test]
    fn a_grant_ends_soon_within_ten_minutes() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(ends_soon(now + time::Duration::minutes(10), now));
        assert!(!ends_soon(now + time::Duration::minutes(11), now));
        assert!(!ends_soon(now, now), "ended already");
    }

    #[test]
    fn badges_read_in_sentence_case() {
        assert_eq!(status_label(Status::Cancelled), "Withdrawn");
        assert_eq!(status_label(Status::Expired), "Expired");
        assert_eq!(status_label(Status::Revoked), "Revoked");
        assert_eq!(sentence_case("gave back"), "Gave back");
        assert_eq!(sentence_case("ticket_url"), "Ticket url");
        assert_eq!(sentence_case(""), "");
    }

    #[test]
    fn every_approver_of_an_n_of_m_grant_is_named() {
        use jit_domain::{Ask, ExtensionAsk, State};
        let at = OffsetDateTime::UNIX_EPOCH;
        let e = |s: &str| Email::parse(s).unwrap();
        let grant = Grant {
            approved_by: Actor::User(e("dave@example.com")),
            approved_at: at,
            starts_at: None,
            expires_at: at + time::Duration::HOUR,
        };
        let mut r = Request {
            id: RequestId::new(),
            resource: ResourceName::default(),
            email: e("alice@example.com"),
            ask: Ask::default(),
            requested_at: at,
            requested_by: Actor::User(e("alice@example.com")),
            state: State::Active(grant.clone()),
            approvals: ["carol@example.com", "dave@example.com"]
                .map(|by| Approval { by: e(by), at })
                .to_vec(),
            extension: None,
            extensions: 0,
            comment: None,
        };
        let me = e("dave@example.com");
        assert_eq!(
            approvers_label(&r, &grant, &me),
            "carol@example.com and you"
        );
        // An asked extension's approvals are not the grant's approvers.
        r.extension = Some(Box::new(ExtensionAsk {
            duration: GrantDuration::ONE_HOUR,
            reason: None,
            asked_at: at,
        }));
        assert_eq!(approvers_label(&r, &grant, &me), "you");
        r.extension = None;
        r.approvals.truncate(1);
        assert_eq!(
            approvers_label(&r, &grant, &e("x@example.com")),
            "dave@example.com"
        );
    }
}
