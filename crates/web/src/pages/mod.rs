//! The HTML pages. Each handler parses its input, calls the service once and
//! renders a compiled template from a view made here, so templates hold no
//! logic beyond showing what they are given.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod history;
pub(crate) mod history;
pub(crate) mod index;

use jit_domain::{Actor, Email, Status};
use jit_service::{Applied, Caller, Outcome};

use crate::text::Breakable;
use crate::{AppState, WebError, assets};

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub demo: bool,
    /// The signed-in email, wrapping after `@` and `.`.
    pub signed_in: Option<Breakable>,
    pub admin: bool,
    /// The navigation entry to mark as current: `home`, `admin`, `audit`.
    pub section: &'static str,
    pub css: &'static str,
    pub icon: &'static str,
}

impl Chrome {
    /// For pages shown before (or without) knowing who is asking.
    pub fn anonymous(demo: bool) -> Chrome {
        Chrome {
            demo,
            signed_in: None,
            admin: false,
            section: "",
            css: assets::css_href(),
            icon: assets::icon_href(),
        }
    }

    pub fn signed_in(state: &AppState, caller: &Caller, section: &'static str) -> Chrome {
        Chrome {
            signed_in: Some(Breakable(caller.email.to_string())),
            // In open mode Pomerium decides who reaches /admin; the link is harmless.
            admin: state.service.is_admin(caller) || state.service.settings().admins.is_open(),
            section,
            ..Chrome::anonymous(state.demo)
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_read_in_sentence_case() {
        assert_eq!(status_label(Status::Cancelled), "Withdrawn");
        assert_eq!(status_label(Status::Expired), "Expired");
        assert_eq!(status_label(Status::Revoked), "Revoked");
        assert_eq!(sentence_case("gave back"), "Gave back");
        assert_eq!(sentence_case("ticket_url"), "Ticket url");
        assert_eq!(sentence_case(""), "");
    }
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
