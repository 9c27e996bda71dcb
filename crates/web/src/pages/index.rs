//! `GET /`: the caller's own status, the hot path (from the service's memory,
//! no database query), and the caller's own actions.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::Response;
use jit_domain::{DomainError, Email, Grant, Reason, Request, State as RequestState, Status};
use jit_service::ServiceError;
use time::OffsetDateTime;

use super::{Chrome, actor_label, require_applied};
use crate::auth::SignedIn;
use crate::input::{AccessRequest, Empty, Form};
use crate::notice::{Flash, Flasher, Notice, Shown};
use crate::text::Breakable;
use crate::when::When;
use crate::{AppState, WebError};

#[derive(Debug, Template, WebTemplate)]
#[template(path = "index.html")]
pub(crate) struct IndexPage {
    chrome: Chrome,
    notice: Option<Shown>,
    mine: Mine,
    reason_max: usize,
}

/// Where the caller stands, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mine {
    Nothing,
    Pending {
        since: When,
        reason: Option<String>,
    },
    /// Approved with a start in the future (only from a console edit).
    Scheduled {
        from: When,
        until: When,
        approved_by: Breakable,
    },
    Active {
        until: When,
        approved_by: Breakable,
    },
    Ended {
        what: String,
        when: When,
    },
}

impl Mine {
    pub fn of(request: Option<&Request>, me: &Email, now: OffsetDateTime) -> Mine {
        let Some(request) = request else {
            return Mine::Nothing;
        };
        let when = |at| When::new(at, now);
        let by = |actor| actor_label(actor, me);
        let approver = |actor| Breakable(by(actor));
        let expired = |g: &Grant| Mine::Ended {
            what: "Your access expired".into(),
            when: when(g.expires_at),
        };
        match &request.state {
            RequestState::Pending => Mine::Pending {
                since: when(request.requested_at),
                reason: request.reason().map(|r| r.as_str().to_owned()),
            },
            RequestState::Expired(g) => expired(g),
            // Lapsed but not swept yet: Pomerium already denies it.
            RequestState::Active(g) if g.expires_at <= now => expired(g),
            RequestState::Active(g) => match g.starts_at {
                Some(start) if start > now => Mine::Scheduled {
                    from: when(start),
                    until: when(g.expires_at),
                    approved_by: approver(&g.approved_by),
                },
                _ => Mine::Active {
                    until: when(g.expires_at),
                    approved_by: approver(&g.approved_by),
                },
            },
            RequestState::Revoked { by: actor, at, .. } => Mine::Ended {
                what: if matches!(actor, jit_domain::Actor::User(e) if e == me) {
                    "You gave up your access".into()
                } else {
                    format!("Your access was revoked by {}", by(actor))
                },
                when: when(*at),
            },
            RequestState::Rejected { by: actor, at } => Mine::Ended {
                what: format!("Your request was rejected by {}", by(actor)),
                when: when(*at),
            },
            RequestState::Cancelled { by: actor, at } => Mine::Ended {
                what: if matches!(actor, jit_domain::Actor::User(e) if e == me) {
                    "You withdrew your request".into()
                } else {
                    format!("Your request was withdrawn by {}", by(actor))
                },
                when: when(*at),
            },
        }
    }
}

pub(crate) async fn page(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    mut flash: Flash,
) -> (Flash, IndexPage) {
    let notice = flash.shown.take();
    let first = super::first_resource(&app);
    let mine = app.service.status_of(&caller.email);
    let mine = Mine::of(
        mine.iter().find(|r| r.resource.as_str() == first),
        &caller.email,
        OffsetDateTime::now_utc(),
    );
    let page = IndexPage {
        chrome: Chrome::signed_in(&app, &caller, "home"),
        notice,
        mine,
        reason_max: Reason::MAX_LEN,
    };
    (flash, page)
}

/// Asking twice is not an error for a person double-clicking: they are sent
/// back with a notice that nothing new was needed.
pub(crate) async fn request_access(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    flasher: Flasher,
    Form(AccessRequest { reason }): Form<AccessRequest>,
) -> Result<Response, WebError> {
    let first = super::first_resource(&app);
    let notice = match app.service.request_access(&caller, &first, reason.into()).await {
        Ok(outcome) => {
            require_applied(&outcome)?;
            Notice::Requested
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
    Form(Empty): Form<Empty>,
) -> Result<Response, WebError> {
    let first = super::first_resource(&app);
    let notice = match app.service.cancel(&caller, &first).await {
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

#[cfg(test)]
mod tests {
    use jit_domain::{Actor, RequestId};
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
            email: me(),
            reason: Reason::parse("ticket 42").unwrap(),
            requested_at: NOW - Duration::minutes(3),
            requested_by: Actor::User(me()),
            state,
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

    #[test]
    fn each_status_reads_right() {
        assert_eq!(Mine::of(None, &me(), NOW), Mine::Nothing);
        let Mine::Pending { since, reason } =
            Mine::of(Some(&request(RequestState::Pending)), &me(), NOW)
        else {
            panic!()
        };
        assert_eq!(
            (since.rel.as_str(), since.abs.as_str(), reason.as_deref()),
            ("3 min ago", "2026-11-28 14:02 UTC", Some("ticket 42"))
        );

        let active = request(RequestState::Active(grant(NOW + Duration::minutes(54))));
        let Mine::Active { until, approved_by } = Mine::of(Some(&active), &me(), NOW) else {
            panic!()
        };
        assert_eq!(
            (until.rel.as_str(), until.abs.as_str()),
            ("in 54 min", "2026-11-28 14:59 UTC")
        );
        assert_eq!(approved_by.0, "carol@example.com");

        let lapsed = request(RequestState::Active(grant(NOW - Duration::minutes(1))));
        assert!(
            matches!(Mine::of(Some(&lapsed), &me(), NOW), Mine::Ended { what, .. } if what == "Your access expired")
        );

        let revoked = RequestState::Revoked {
            grant: grant(NOW),
            by: admin(),
            at: NOW - Duration::minutes(1),
        };
        assert!(matches!(Mine::of(Some(&request(revoked)), &me(), NOW),
            Mine::Ended { what, .. } if what == "Your access was revoked by carol@example.com"));
        let gave_up = RequestState::Revoked {
            grant: grant(NOW + Duration::hours(1)),
            by: Actor::User(me()),
            at: NOW,
        };
        assert!(matches!(Mine::of(Some(&request(gave_up)), &me(), NOW),
            Mine::Ended { what, .. } if what == "You gave up your access"));
        let rejected = RequestState::Rejected {
            by: Actor::Zero,
            at: NOW,
        };
        assert!(matches!(Mine::of(Some(&request(rejected)), &me(), NOW),
            Mine::Ended { what, .. } if what == "Your request was rejected by an edit in Pomerium Zero"));
        let withdrawn = RequestState::Cancelled {
            by: Actor::User(me()),
            at: NOW,
        };
        assert!(matches!(Mine::of(Some(&request(withdrawn)), &me(), NOW),
            Mine::Ended { what, .. } if what == "You withdrew your request"));
    }

    #[test]
    fn a_future_start_is_scheduled() {
        let mut g = grant(NOW + Duration::hours(3));
        g.starts_at = Some(NOW + Duration::hours(1));
        assert!(matches!(
            Mine::of(Some(&request(RequestState::Active(g))), &me(), NOW),
            Mine::Scheduled { .. }
        ));
    }
}
