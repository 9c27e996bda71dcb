//! `GET /`: the catalog. Each resource with the caller's status on it (from
//! the service's memory, no database query) and the caller's actions:
//! request, withdraw, give back, ask for more time.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jit_domain::{
    Actor, DomainError, Email, Grant, Reason, Request, Resource, Rules, State as RequestState,
    Status, Ticket,
};
use jit_service::ServiceError;
use time::OffsetDateTime;

use super::{
    Choice, Chrome, actor_label, approvals_text, approvers_label, choices, duration_label,
    ends_soon, require_applied, resource_or_first,
};
use crate::auth::SignedIn;
use crate::input::{AccessRequest, Extension, Form, Mine as MineForm};
use crate::notice::{Flash, Flasher, Notice, Shown};
use crate::text::{Breakable, Escaped, Slug};
use crate::when::{Stamp, When};
use crate::{AppState, WebError};

super::html_pages!(IndexPage<'_>);

#[derive(Debug, Template)]
#[template(path = "index.html")]
pub(crate) struct IndexPage<'a> {
    chrome: Chrome,
    notice: Option<Shown>,
    cards: Vec<Card<'a>>,
    reason_max: usize,
    /// "2026-11-30 02:50 UTC", beside the start field.
    now: Stamp,
}

/// One resource of the catalog, as the caller stands on it; what every
/// caller sees alike is borrowed from the [`Offer`] (each shared part taken
/// by reference count moved its count's cache line between the workers on
/// every page).
#[derive(Debug)]
struct Card<'a> {
    /// As the forms send it.
    name: &'a Slug,
    title: &'a Escaped,
    description: &'a Escaped,
    mine: Mine,
    /// The caller's latest request's own page.
    link: Option<String>,
    /// Offered when nothing is open.
    ask: Option<&'a AskHtml>,
    /// Offered while access is active and extensions remain.
    extend: Option<&'a ExtendForm>,
    /// How many extensions remain, or why none do; for active access.
    extensions: Option<String>,
}

/// The request form of a resource, drawn when the app starts: only the
/// clock beside its start field changes from page to page. Most callers of
/// `GET /` have nothing open, and drawing the form on each page was half
/// of the page's work (its name alone is written nine times).
#[derive(Debug)]
struct AskHtml {
    /// Up to the clock.
    head: Box<str>,
    /// After the clock.
    tail: Box<str>,
}

impl AskHtml {
    fn of(name: &Slug, title: &str, f: &AskForm) -> Self {
        let head = AskHead {
            n: name,
            f,
            reason_max: Reason::MAX_LEN,
            ticket_max: Ticket::MAX_LEN,
        };
        let tail = AskTail { f, title };
        // Rendering into a String fails only if a value's Display fails,
        // and none of these does.
        let text = |r: askama::Result<String>| r.expect("the request form renders").into();
        Self {
            head: text(head.render()),
            tail: text(tail.render()),
        }
    }
}

#[derive(Template)]
#[template(path = "ask_head.html")]
struct AskHead<'a> {
    n: &'a Slug,
    f: &'a AskForm,
    reason_max: usize,
    ticket_max: usize,
}

#[derive(Template)]
#[template(path = "ask_tail.html")]
struct AskTail<'a> {
    f: &'a AskForm,
    title: &'a str,
}

#[derive(Debug)]
struct AskForm {
    button: &'static str,
    reason_required: bool,
    reason_min: usize,
    reason_help: String,
    /// `None`: the approver chooses.
    durations: Option<Vec<Choice>>,
    ticket: Option<TicketField>,
}

#[derive(Debug)]
struct TicketField {
    label: String,
    required: bool,
    help: String,
}

#[derive(Debug)]
struct ExtendForm {
    durations: Vec<Choice>,
    reason_required: bool,
    reason_help: String,
    /// Extended at once, or waiting for approvers.
    at_once: bool,
}

/// Where the caller stands on one resource, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mine {
    Nothing,
    Pending {
        since: When,
        reason: Option<String>,
        /// "1 of 2: alice@example.com".
        approvals: String,
        duration: Option<String>,
        starts: Option<When>,
        ticket: Option<String>,
        /// When it closes unanswered, if the resource has a time to live.
        lapses: Option<When>,
    },
    /// Approved with a start in the future.
    Scheduled {
        from: When,
        until: When,
        approved_by: Breakable,
    },
    Active {
        until: When,
        approved_by: Breakable,
        /// Ends within ten minutes: highlighted.
        soon: bool,
        extension: Option<AskedExtension>,
        /// An approver's comment on a declined extension.
        comment: Option<String>,
    },
    Ended {
        what: String,
        when: When,
        comment: Option<String>,
    },
}

/// More time asked and not yet decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AskedExtension {
    duration: String,
    asked: When,
    approvals: String,
}

impl Mine {
    pub fn of(request: Option<&Request>, rules: &Rules, me: &Email, now: OffsetDateTime) -> Mine {
        let Some(request) = request else {
            return Mine::Nothing;
        };
        let when = |at| When::new(at, now);
        let by = |actor| actor_label(actor, me);
        let comment = request.comment.as_ref().map(|c| c.as_str().to_owned());
        let expired = |g: &Grant| Mine::Ended {
            what: "Your access expired".into(),
            when: when(g.expires_at),
            comment: None,
        };
        let is_me = |actor: &Actor| matches!(actor, Actor::User(e) if e == me);
        match &request.state {
            RequestState::Pending => Mine::Pending {
                since: when(request.requested_at),
                reason: request.reason().map(|r| r.as_str().to_owned()),
                approvals: approvals_text(&request.approvals, rules.approvals_needed, me),
                duration: request.ask.duration.map(duration_label),
                starts: request.ask.starts_at.map(when),
                ticket: request.ask.ticket.as_ref().map(|t| t.as_str().to_owned()),
                lapses: rules.deadline(request).map(when),
            },
            RequestState::Expired(g) => expired(g),
            // Lapsed but not swept yet: Pomerium already denies it.
            RequestState::Active(g) if g.expires_at <= now => expired(g),
            RequestState::Active(g) => match g.starts_at {
                Some(start) if start > now => Mine::Scheduled {
                    from: when(start),
                    until: when(g.expires_at),
                    approved_by: Breakable(approvers_label(request, g, me)),
                },
                _ => Mine::Active {
                    until: when(g.expires_at),
                    approved_by: Breakable(approvers_label(request, g, me)),
                    soon: ends_soon(g.expires_at, now),
                    extension: request.extension.as_ref().map(|x| AskedExtension {
                        duration: duration_label(x.duration),
                        asked: when(x.asked_at),
                        approvals: approvals_text(&request.approvals, rules.approvals_needed, me),
                    }),
                    comment,
                },
            },
            RequestState::Revoked { by: actor, at, .. } => Mine::Ended {
                what: if is_me(actor) {
                    "You gave up your access".into()
                } else {
                    format!("Your access was revoked by {}", by(actor))
                },
                when: when(*at),
                comment,
            },
            RequestState::Rejected { by: actor, at } => Mine::Ended {
                what: format!("Your request was rejected by {}", by(actor)),
                when: when(*at),
                comment,
            },
            RequestState::Cancelled { at, .. } if request.timed_out() => Mine::Ended {
                what: "Your request timed out unanswered".into(),
                when: when(*at),
                comment: None,
            },
            RequestState::Cancelled { by: actor, at } => Mine::Ended {
                what: if is_me(actor) {
                    "You withdrew your request".into()
                } else {
                    format!("Your request was withdrawn by {}", by(actor))
                },
                when: when(*at),
                comment: None,
            },
        }
    }

    fn is_open(&self) -> bool {
        !matches!(self, Mine::Nothing | Mine::Ended { .. })
    }
}

/// What the reason field says it needs; `required` where the form needs
/// one whatever the resource says (an approver's grant).
pub(crate) fn reason_help(rules: &Rules, required: bool) -> String {
    let r = &rules.reason;
    let mut parts = vec![if required || r.required {
        "Required.".to_owned()
    } else {
        "Optional.".to_owned()
    }];
    if r.min_chars > 0 {
        parts.push(format!("At least {} characters.", r.min_chars));
    }
    match (&r.hint, &r.pattern) {
        (Some(hint), _) => {
            // A hint also ends the domain's "does not have the expected
            // form: …"; here it is a sentence of its own.
            let hint = hint.trim_end_matches('.');
            let mut chars = hint.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            parts.push(format!("{}{}.", first.unwrap_or_default(), chars.as_str()));
        }
        (None, Some(p)) => parts.push(format!("It must match `{}`.", p.as_str())),
        (None, None) => {}
    }
    parts.push(format!("At most {} characters.", Reason::MAX_LEN));
    parts.join(" ")
}

fn ask_form(rules: &Rules, again: bool) -> AskForm {
    AskForm {
        button: if again {
            "Request again"
        } else {
            "Request access"
        },
        reason_required: rules.reason.required,
        reason_min: rules.reason.min_chars,
        reason_help: reason_help(rules, false),
        durations: rules
            .durations
            .requester_chooses
            .then(|| choices(rules, None)),
        ticket: rules.ticket.as_ref().map(|t| TicketField {
            label: t.label.clone(),
            required: t.required,
            help: match &t.pattern {
                Some(p) => format!(
                    "{} It must match `{}`.",
                    if t.required { "Required." } else { "Optional." },
                    p.as_str()
                ),
                None if t.required => "Required.".into(),
                None => "Optional.".into(),
            },
        }),
    }
}

/// What the index page shows of a resource whatever the caller's state:
/// its texts and forms, made once when the app starts rather than on every
/// page (8 of the 49 allocations a `GET /` made).
#[derive(Debug)]
pub(crate) struct Offer {
    name: Slug,
    title: Escaped,
    description: Escaped,
    ask: AskHtml,
    ask_again: AskHtml,
    extend: ExtendForm,
}

impl Offer {
    pub(crate) fn of(resource: &Resource) -> Self {
        let rules = &resource.rules;
        let name = Slug(resource.name.clone());
        let ask = |again| AskHtml::of(&name, resource.title.as_str(), &ask_form(rules, again));
        Self {
            title: Escaped::new(resource.title.as_str()),
            description: Escaped::new(resource.description.as_str()),
            ask: ask(false),
            ask_again: ask(true),
            extend: ExtendForm {
                durations: choices(rules, None),
                reason_required: rules.reason.required,
                reason_help: reason_help(rules, false),
                at_once: rules.self_extension,
            },
            name,
        }
    }
}

fn card<'a>(
    resource: &Resource,
    offer: &'a Offer,
    request: Option<&Request>,
    me: &Email,
    now: OffsetDateTime,
) -> Card<'a> {
    let rules = &resource.rules;
    let mine = Mine::of(request, rules, me, now);
    let active = matches!(
        mine,
        Mine::Active {
            extension: None,
            ..
        }
    );
    let used = request.map_or(0, |r| r.extensions);
    let left = rules.max_extensions.saturating_sub(used);
    let extensions =
        matches!(mine, Mine::Active { .. }).then(|| match (rules.max_extensions, left) {
            (0, _) => "This resource allows no extensions.".to_owned(),
            (max, 0) => format!(
                "No extensions left: this access was extended {max} times, the most allowed."
            ),
            (_, 1) => "1 extension left.".to_owned(),
            (_, n) => format!("{n} extensions left."),
        });
    Card {
        name: &offer.name,
        title: &offer.title,
        description: &offer.description,
        link: request.map(|r| format!("/requests/{}", r.id)),
        ask: (!mine.is_open()).then(|| {
            if request.is_some() {
                &offer.ask_again
            } else {
                &offer.ask
            }
        }),
        extend: (active && left > 0).then_some(&offer.extend),
        extensions,
        mine,
    }
}

pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    mut flash: Flash,
) -> Response {
    let notice = flash.shown.take();
    let now = OffsetDateTime::now_utc();
    let mine = app.service.status_of(&caller.email);
    let cards = app
        .service
        .resources()
        .zip(&app.offers)
        .map(|(resource, offer)| {
            let request = mine.iter().find(|r| r.resource == resource.name);
            card(resource, offer, request.map(|r| &**r), &caller.email, now)
        })
        .collect();
    let page = IndexPage {
        chrome: Chrome::signed_in(&app, &caller, "home"),
        notice,
        cards,
        reason_max: Reason::MAX_LEN,
        now: Stamp::of(now),
    };
    // Drawn here: the page borrows the app's offers.
    (flash, page).into_response()
}

/// Asking twice is not an error for a person double-clicking: they are sent
/// back with a notice that nothing new was needed.
pub(crate) async fn request_access(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    flasher: Flasher,
    Form(AccessRequest { resource, ask }): Form<AccessRequest>,
) -> Result<Response, WebError> {
    let resource = resource_or_first(&app, resource);
    let notice = match app.service.request_access(&caller, &resource, ask).await {
        Ok(outcome) => {
            require_applied(&outcome)?;
            if outcome.request.state.status() == Status::Active {
                Notice::AutoApproved
            } else {
                Notice::Requested
            }
        }
        Err(ServiceError::Domain(DomainError::AlreadyPending { .. })) => Notice::AlreadyPending,
        Err(ServiceError::Domain(DomainError::AlreadyActive { .. })) => Notice::AlreadyActive,
        Err(e) => return Err(e.into()),
    };
    Ok(flasher.redirect("/", notice, None))
}

/// Withdraws a pending request or gives up access, whichever is open.
pub(crate) async fn cancel_request(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    flasher: Flasher,
    Form(MineForm { resource }): Form<MineForm>,
) -> Result<Response, WebError> {
    let resource = resource_or_first(&app, resource);
    let notice = match app.service.cancel(&caller, &resource, None).await {
        Ok(outcome) => {
            require_applied(&outcome)?;
            if outcome.request.state.status() == Status::Cancelled {
                Notice::Withdrawn
            } else {
                Notice::GaveUp
            }
        }
        Err(ServiceError::Domain(DomainError::NoOpenRequest { .. })) => Notice::NothingOpen,
        Err(e) => return Err(e.into()),
    };
    Ok(flasher.redirect("/", notice, None))
}

/// Asks for more time on active access: extended at once where the
/// resource allows self-extension, else waiting for approvers.
pub(crate) async fn extend_access(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    flasher: Flasher,
    Form(Extension {
        resource,
        duration,
        reason,
    }): Form<Extension>,
) -> Result<Response, WebError> {
    let resource = resource_or_first(&app, resource);
    let outcome = app
        .service
        .extend(&caller, &resource, None, duration, reason)
        .await?;
    require_applied(&outcome)?;
    let notice = if outcome.request.extension.is_some() {
        Notice::ExtensionAsked
    } else {
        Notice::Extended
    };
    Ok(flasher.redirect("/", notice, None))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use jit_domain::{Approval, Ask, ExtensionAsk, GrantDuration, RequestId, ResourceName};
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-28 14:05:00 UTC);

    fn me() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    fn admin() -> Actor {
        Actor::User(Email::parse("carol@example.com").unwrap())
    }

    fn request(state: RequestState) -> Request {
        Request {
            id: RequestId::new(),
            resource: ResourceName::parse("default").unwrap(),
            email: me(),
            ask: Ask::from(Reason::parse("ticket 42").unwrap()),
            requested_at: NOW - Duration::minutes(3),
            requested_by: Actor::User(me()),
            state,
            approvals: Vec::new(),
            extension: None,
            extensions: 0,
            comment: None,
        }
    }

    fn grant(expires_at: OffsetDateTime) -> Grant {
        Grant {
            approved_by: admin(),
            approved_at: NOW - Duration::minutes(6),
            starts_at: None,
            expires_at,
        }
    }

    fn of(r: Option<&Request>) -> Mine {
        Mine::of(r, &Rules::default(), &me(), NOW)
    }

    #[test]
    fn each_status_reads_right() {
        assert_eq!(of(None), Mine::Nothing);
        let mut pending = request(RequestState::Pending);
        pending.approvals.push(Approval {
            by: Email::parse("bob@example.com").unwrap(),
            at: NOW,
        });
        let two = Rules {
            approvals_needed: NonZeroU8::new(2).unwrap(),
            pending_ttl: Some(GrantDuration::ONE_HOUR),
            ..Rules::default()
        };
        let Mine::Pending {
            since,
            reason,
            approvals,
            lapses,
            ..
        } = Mine::of(Some(&pending), &two, &me(), NOW)
        else {
            panic!()
        };
        assert_eq!(
            (since.rel.as_str(), since.abs.as_str(), reason.as_deref()),
            ("3 min ago", "2026-11-28 14:02 UTC", Some("ticket 42"))
        );
        assert_eq!(approvals, "1 of 2: bob@example.com");
        assert_eq!(lapses.unwrap().rel, "in 57 min");

        let active = request(RequestState::Active(grant(NOW + Duration::minutes(54))));
        let Mine::Active {
            until,
            approved_by,
            soon,
            ..
        } = of(Some(&active))
        else {
            panic!()
        };
        assert_eq!(
            (until.rel.as_str(), until.abs.as_str(), soon),
            ("in 54 min", "2026-11-28 14:59 UTC", false)
        );
        assert_eq!(approved_by.0, "carol@example.com");
        let ending = request(RequestState::Active(grant(
            NOW + Duration::minutes(3) + Duration::seconds(30),
        )));
        assert!(
            matches!(of(Some(&ending)), Mine::Active { soon: true, until, .. } if until.rel == "in 4 min")
        );

        let lapsed = request(RequestState::Active(grant(NOW - Duration::minutes(1))));
        assert!(
            matches!(of(Some(&lapsed)), Mine::Ended { what, .. } if what == "Your access expired")
        );

        let mut revoked = request(RequestState::Revoked {
            grant: Box::new(grant(NOW)),
            by: admin(),
            at: NOW - Duration::minutes(1),
        });
        revoked.comment = Reason::parse("project over").unwrap();
        assert!(matches!(of(Some(&revoked)),
            Mine::Ended { what, comment: Some(c), .. }
                if what == "Your access was revoked by carol@example.com" && c == "project over"));
        let gave_up = RequestState::Revoked {
            grant: Box::new(grant(NOW + Duration::hours(1))),
            by: Actor::User(me()),
            at: NOW,
        };
        assert!(matches!(of(Some(&request(gave_up))),
            Mine::Ended { what, .. } if what == "You gave up your access"));
        let rejected = RequestState::Rejected {
            by: Actor::Zero,
            at: NOW,
        };
        assert!(matches!(of(Some(&request(rejected))),
            Mine::Ended { what, .. } if what == "Your request was rejected by an edit in Pomerium Zero"));
        let withdrawn = RequestState::Cancelled {
            by: Actor::User(me()),
            at: NOW,
        };
        assert!(matches!(of(Some(&request(withdrawn))),
            Mine::Ended { what, .. } if what == "You withdrew your request"));
        let timed_out = RequestState::Cancelled {
            by: Actor::System,
            at: NOW,
        };
        assert!(matches!(of(Some(&request(timed_out))),
            Mine::Ended { what, .. } if what == "Your request timed out unanswered"));
    }

    #[test]
    fn a_future_start_is_scheduled() {
        let mut g = grant(NOW + Duration::hours(3));
        g.starts_at = Some(NOW + Duration::hours(1));
        assert!(matches!(
            of(Some(&request(RequestState::Active(g)))),
            Mine::Scheduled { .. }
        ));
    }

    #[test]
    fn extensions_left_are_counted_and_an_asked_one_hides_the_form() {
        let resource = Resource::original(
            "p",
            Rules {
                max_extensions: 2,
                ..Rules::default()
            },
        );
        let offer = Offer::of(&resource);
        let mut active = request(RequestState::Active(grant(NOW + Duration::hours(1))));
        let c = card(&resource, &offer, Some(&active), &me(), NOW);
        assert!(c.extend.is_some() && c.ask.is_none());
        assert_eq!(c.extensions.as_deref(), Some("2 extensions left."));
        active.extensions = 2;
        let c = card(&resource, &offer, Some(&active), &me(), NOW);
        assert!(c.extend.is_none());
        assert!(c.extensions.unwrap().starts_with("No extensions left"));
        active.extensions = 1;
        active.extension = Some(Box::new(ExtensionAsk {
            duration: GrantDuration::ONE_HOUR,
            reason: None,
            asked_at: NOW,
        }));
        let c = card(&resource, &offer, Some(&active), &me(), NOW);
        assert!(c.extend.is_none(), "one ask at a time");
        assert!(
            matches!(c.mine, Mine::Active { extension: Some(ref x), .. } if x.duration == "1 hour")
        );
        let plain = Resource::original("p", Rules::default());
        let plain_offer = Offer::of(&plain);
        let none = card(&plain, &plain_offer, Some(&active), &me(), NOW);
        assert_eq!(
            none.extensions.as_deref(),
            Some("This resource allows no extensions.")
        );
    }

    #[test]
    fn the_reason_help_says_what_is_needed() {
        let mut rules = Rules::default();
        assert_eq!(
            reason_help(&rules, false),
            "Optional. At most 500 characters."
        );
        assert_eq!(
            reason_help(&rules, true),
            "Required. At most 500 characters."
        );
        rules.reason.required = true;
        rules.reason.min_chars = 10;
        rules.reason.hint = Some("name the incident, like INC-123".into());
        assert_eq!(
            reason_help(&rules, false),
            "Required. At least 10 characters. Name the incident, like INC-123. At most 500 characters."
        );
    }
}
