//! Confirmations after a form POST. The POST answers 303 to the page with a
//! fixed code (`?notice=approved&email=…`); the page shows the message for
//! that code. Unknown codes show nothing, and the only text taken from the
//! query is an email, parsed as one and escaped like everything else.

use jit_domain::Email;

use crate::WebError;
use crate::input::{Input, optional_email};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    Requested,
    AlreadyPending,
    AlreadyActive,
    NothingOpen,
    Withdrawn,
    GaveUp,
    Approved,
    Rejected,
    Revoked,
}

impl Notice {
    const ALL: [Notice; 9] = [
        Notice::Requested,
        Notice::AlreadyPending,
        Notice::AlreadyActive,
        Notice::NothingOpen,
        Notice::Withdrawn,
        Notice::GaveUp,
        Notice::Approved,
        Notice::Rejected,
        Notice::Revoked,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Notice::Requested => "requested",
            Notice::AlreadyPending => "already_pending",
            Notice::AlreadyActive => "already_active",
            Notice::NothingOpen => "nothing_open",
            Notice::Withdrawn => "withdrawn",
            Notice::GaveUp => "gave_up",
            Notice::Approved => "approved",
            Notice::Rejected => "rejected",
            Notice::Revoked => "revoked",
        }
    }

    fn parse(code: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.code() == code)
    }

    /// The page address that shows this notice, about `email` if given.
    pub fn location(self, page: &str, email: Option<&Email>) -> String {
        let mut pairs = vec![("notice", self.code())];
        if let Some(e) = email {
            pairs.push(("email", e.as_str()));
        }
        // Serializing plain string pairs cannot fail.
        let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
        format!("{page}?{query}")
    }

    fn message(self, email: Option<&Email>) -> String {
        let who = |text: &str, fallback: &str| match email {
            Some(e) => text.replace("{}", e.as_str()),
            None => fallback.to_owned(),
        };
        match self {
            Notice::Requested => {
                "Your request was sent. An admin will review it; this page shows the outcome."
                    .into()
            }
            Notice::AlreadyPending => {
                "You already have a pending request, so no new one was made.".into()
            }
            Notice::AlreadyActive => "You already have access, so no new request was made.".into(),
            Notice::NothingOpen => "There was no pending request or access left to end.".into(),
            Notice::Withdrawn => "Your request was withdrawn.".into(),
            Notice::GaveUp => "Your access has ended. Pomerium no longer lets you through.".into(),
            Notice::Approved => who(
                "Approved access for {}. Pomerium now lets them through.",
                "Approved.",
            ),
            Notice::Rejected => who("Rejected the request from {}.", "Rejected."),
            Notice::Revoked => who(
                "Revoked access for {}. Pomerium no longer lets them through.",
                "Revoked.",
            ),
        }
    }

    /// `success` for a change made, `info` for nothing to do.
    fn tone(self) -> &'static str {
        match self {
            Notice::AlreadyPending | Notice::AlreadyActive | Notice::NothingOpen => "info",
            _ => "success",
        }
    }
}

/// What a page shows at the top, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    pub text: String,
    pub tone: &'static str,
}

/// The `notice` and `email` query parameters of a page.
#[derive(Debug, Default)]
pub(crate) struct NoticeQuery(pub Option<Shown>);

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RawNoticeQuery {
    notice: Option<String>,
    email: Option<String>,
}

impl Input for NoticeQuery {
    type Raw = RawNoticeQuery;
    fn parse(raw: RawNoticeQuery) -> Result<Self, WebError> {
        let Some(notice) = raw.notice.as_deref().and_then(Notice::parse) else {
            return Ok(NoticeQuery(None));
        };
        // A bad email in a confirmation link is dropped, not an error page.
        let email = optional_email("email", raw.email).ok().flatten();
        Ok(NoticeQuery(Some(Shown {
            text: notice.message(email.as_ref()),
            tone: notice.tone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(query: &str) -> Option<Shown> {
        NoticeQuery::parse(serde_urlencoded::from_str(query).unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn every_code_round_trips_through_its_location() {
        let email = Email::parse("a+b@example.com").unwrap();
        for n in Notice::ALL {
            let location = n.location("/admin", Some(&email));
            let query = location.strip_prefix("/admin?").unwrap();
            let s = shown(query).unwrap();
            assert_eq!(s.text, n.message(Some(&email)));
        }
        assert_eq!(
            Notice::Approved.location("/admin", Some(&email)),
            "/admin?notice=approved&email=a%2Bb%40example.com"
        );
    }

    #[test]
    fn unknown_codes_and_bad_emails_show_nothing_arbitrary() {
        assert_eq!(shown("notice=<b>hi</b>"), None);
        assert_eq!(shown(""), None);
        let s = shown("notice=approved&email=not+an+email").unwrap();
        assert_eq!(s.text, "Approved.");
    }
}
