//! The HTML pages. Each handler parses its input, calls the service once and
//! renders a compiled template from a view made here, so templates hold no
//! logic beyond showing what they are given.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod index;

use jit_domain::{Actor, Email};
use jit_service::{Applied, Caller, Outcome};

use crate::{AppState, WebError, assets};

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub demo: bool,
    pub signed_in: Option<String>,
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
            signed_in: Some(caller.email.to_string()),
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
