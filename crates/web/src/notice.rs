//! Confirmations and failures after a form POST, carried by a flash cookie.
//! The POST answers 303 to the page and sets `jit_flash` (a notice code and,
//! for admin notices, an email; or a failure's public text), MAC'd with a
//! key made when the process starts; the page shows the message for it and
//! clears the cookie, so a reload neither posts again nor repeats it. A link
//! cannot make a page say something (a query string is never read), and a
//! cookie from anywhere else, expired, or from another process (a restart,
//! another replica) shows nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, IntoResponseParts, Redirect, Response, ResponseParts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jit_domain::Email;
use serde::{Deserialize, Serialize};

use crate::AppState;

const COOKIE: &str = "jit_flash";
/// Long enough to follow the redirect, short enough not to resurface later.
const LIFETIME: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    Requested,
    /// Approved at once by one of the resource's auto-approve rules.
    AutoApproved,
    AlreadyPending,
    AlreadyActive,
    NothingOpen,
    Withdrawn,
    GaveUp,
    /// The requester asked for more time; approvers decide.
    ExtensionAsked,
    /// The requester extended their own access (self-extension).
    Extended,
    Approved,
    /// An approval recorded, not yet enough: `have` of `need`.
    Reviewed {
        have: u8,
        need: u8,
    },
    Rejected,
    Revoked,
    ExtensionApproved,
    ExtensionReviewed {
        have: u8,
        need: u8,
    },
    ExtensionDeclined,
    /// Access given to someone who had not asked.
    Granted,
    /// How many grants a bulk revocation ended.
    RevokedAll(u16),
    /// An approver's "Sync now" completed.
    Synced,
}

impl Notice {
    #[cfg(test)]
    const ALL: [Notice; 20] = [
        Notice::Requested,
        Notice::AutoApproved,
        Notice::AlreadyPending,
        Notice::AlreadyActive,
        Notice::NothingOpen,
        Notice::Withdrawn,
        Notice::GaveUp,
        Notice::ExtensionAsked,
        Notice::Extended,
        Notice::Approved,
        Notice::Reviewed { have: 1, need: 2 },
        Notice::Rejected,
        Notice::Revoked,
        Notice::ExtensionApproved,
        Notice::ExtensionReviewed { have: 2, need: 3 },
        Notice::ExtensionDeclined,
        Notice::Granted,
        Notice::RevokedAll(0),
        Notice::RevokedAll(12),
        Notice::Synced,
    ];

    /// The notice in the cookie: a word, and numbers after `-`.
    fn code(self) -> String {
        match self {
            Notice::Requested => "requested".into(),
            Notice::AutoApproved => "auto_approved".into(),
            Notice::AlreadyPending => "already_pending".into(),
            Notice::AlreadyActive => "already_active".into(),
            Notice::NothingOpen => "nothing_open".into(),
            Notice::Withdrawn => "withdrawn".into(),
            Notice::GaveUp => "gave_up".into(),
            Notice::ExtensionAsked => "extension_asked".into(),
            Notice::Extended => "extended".into(),
            Notice::Approved => "approved".into(),
            Notice::Reviewed { have, need } => format!("reviewed-{have}-{need}"),
            Notice::Rejected => "rejected".into(),
            Notice::Revoked => "revoked".into(),
            Notice::ExtensionApproved => "extension_approved".into(),
            Notice::ExtensionReviewed { have, need } => {
                format!("extension_reviewed-{have}-{need}")
            }
            Notice::ExtensionDeclined => "extension_declined".into(),
            Notice::Granted => "granted".into(),
            Notice::RevokedAll(n) => format!("revoked_all-{n}"),
            Notice::Synced => "synced".into(),
        }
    }

    fn parse(code: &str) -> Option<Notice> {
        let mut parts = code.split('-');
        let word = parts.next()?;
        let numbers: Vec<u16> = parts.map(str::parse).collect::<Result<_, _>>().ok()?;
        let counts = || match numbers.as_slice() {
            [have, need] => Some((u8::try_from(*have).ok()?, u8::try_from(*need).ok()?)),
            _ => None,
        };
        let plain = |n: Notice| numbers.is_empty().then_some(n);
        match word {
            "requested" => plain(Notice::Requested),
            "auto_approved" => plain(Notice::AutoApproved),
            "already_pending" => plain(Notice::AlreadyPending),
            "already_active" => plain(Notice::AlreadyActive),
            "nothing_open" => plain(Notice::NothingOpen),
            "withdrawn" => plain(Notice::Withdrawn),
            "gave_up" => plain(Notice::GaveUp),
            "extension_asked" => plain(Notice::ExtensionAsked),
            "extended" => plain(Notice::Extended),
            "approved" => plain(Notice::Approved),
            "reviewed" => counts().map(|(have, need)| Notice::Reviewed { have, need }),
            "rejected" => plain(Notice::Rejected),
            "revoked" => plain(Notice::Revoked),
            "extension_approved" => plain(Notice::ExtensionApproved),
            "extension_reviewed" => {
                counts().map(|(have, need)| Notice::ExtensionReviewed { have, need })
            }
            "extension_declined" => plain(Notice::ExtensionDeclined),
            "granted" => plain(Notice::Granted),
            "synced" => plain(Notice::Synced),
            "revoked_all" => match numbers.as_slice() {
                [n] => Some(Notice::RevokedAll(*n)),
                _ => None,
            },
            _ => None,
        }
    }

    fn message(self, email: Option<&Email>) -> String {
        let who = |text: &str, fallback: &str| match email {
            Some(e) => text.replace("{}", e.as_str()),
            None => fallback.to_owned(),
        };
        let more = |need: u8, have: u8| {
            let left = need.saturating_sub(have);
            if left == 1 {
                "One more approver must approve it.".to_owned()
            } else {
                format!("{left} more approvers must approve it.")
            }
        };
        match self {
            Notice::Requested => {
                "Your request was sent. An approver will review it; this page shows the outcome."
                    .into()
            }
            Notice::AutoApproved => {
                "Your request was approved at once by one of the resource's rules.".into()
            }
            Notice::AlreadyPending => {
                "You already have a pending request, so no new one was made.".into()
            }
            Notice::AlreadyActive => "You already have access, so no new request was made.".into(),
            Notice::NothingOpen => "There was no pending request or access left to end.".into(),
            Notice::Withdrawn => "Your request was withdrawn.".into(),
            Notice::GaveUp => "Your access has ended. Pomerium no longer lets you through.".into(),
            Notice::ExtensionAsked => {
                "Extension asked. An approver will review it; your access runs on meanwhile.".into()
            }
            Notice::Extended => "Extended: your access now lasts longer.".into(),
            Notice::Approved => who(
                "Approved access for {}. Pomerium now lets them through.",
                "Approved.",
            ),
            Notice::Reviewed { have, need } => format!(
                "{} {}",
                who(
                    &format!("Approval recorded for {{}}: {have} of {need}."),
                    &format!("Approval recorded: {have} of {need}."),
                ),
                more(need, have)
            ),
            Notice::Rejected => who("Rejected the request from {}.", "Rejected."),
            Notice::Revoked => who(
                "Revoked access for {}. Pomerium no longer lets them through.",
                "Revoked.",
            ),
            Notice::ExtensionApproved => who("Extended the access of {}.", "Extended."),
            Notice::ExtensionReviewed { have, need } => format!(
                "{} {}",
                who(
                    &format!("Approval of the extension for {{}} recorded: {have} of {need}."),
                    &format!("Approval of the extension recorded: {have} of {need}."),
                ),
                more(need, have)
            ),
            Notice::ExtensionDeclined => who(
                "Declined the extension for {}; their access runs on to its current end.",
                "Declined the extension.",
            ),
            Notice::Granted => who(
                "Granted access to {}. Pomerium now lets them through.",
                "Granted.",
            ),
            Notice::RevokedAll(0) => "No active grant matched, so nothing was revoked.".into(),
            Notice::RevokedAll(1) => {
                "Revoked 1 grant. Pomerium no longer lets them through.".into()
            }
            Notice::RevokedAll(n) => {
                format!("Revoked {n} grants. Pomerium no longer lets them through.")
            }
            Notice::Synced => {
                "Synced with Pomerium Zero: the page shows every change made there.".into()
            }
        }
    }

    /// `success` for a change made, `info` for nothing to do.
    fn tone(self) -> &'static str {
        match self {
            Notice::AlreadyPending
            | Notice::AlreadyActive
            | Notice::NothingOpen
            | Notice::RevokedAll(0) => "info",
            _ => "success",
        }
    }
}

/// A failed form POST, as the page it came from shows it: the public face
/// of the error, never its internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub title: String,
    pub detail: String,
    pub hint: Option<String>,
    /// The request id, to quote to an admin.
    pub reference: Option<String>,
    /// `warning` for a change that was saved but not applied, else `error`.
    pub warning: bool,
}

/// What a page shows at the top, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    /// A failure's title, shown in bold before the text.
    pub title: Option<String>,
    pub text: String,
    pub hint: Option<String>,
    pub reference: Option<String>,
    /// `success`, `info`, `warning` or `error`.
    pub tone: &'static str,
}

impl Shown {
    fn notice(notice: Notice, email: Option<&Email>) -> Shown {
        Shown {
            title: None,
            text: notice.message(email),
            hint: None,
            reference: None,
            tone: notice.tone(),
        }
    }

    fn failure(f: Failure) -> Shown {
        Shown {
            title: Some(f.title),
            text: f.detail,
            hint: f.hint,
            reference: f.reference,
            tone: if f.warning { "warning" } else { "error" },
        }
    }

    /// Failures interrupt; confirmations wait their turn.
    pub fn role(&self) -> &'static str {
        if self.tone == "error" {
            "alert"
        } else {
            "status"
        }
    }
}

/// A cookie's message: a notice about someone, or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flashed {
    Notice(Notice, Option<Email>),
    Failure(Failure),
}

/// The code of a failure in the cookie; no notice has it.
const FAILURE: &str = "failure";

/// The per-process key that signs flash cookies. Shared, not copied: the
/// app state (and so this key) is cloned for every request, and copying an
/// HMAC context each time showed in the profile of `GET /`.
#[derive(Clone)]
pub(crate) struct FlashKey(std::sync::Arc<hmac::Key>);

impl std::fmt::Debug for FlashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlashKey(redacted)")
    }
}

impl FlashKey {
    pub fn generate() -> FlashKey {
        // Only fails if the operating system has no randomness to give.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the operating system's random number generator failed");
        FlashKey(std::sync::Arc::new(key))
    }

    /// The cookie value: `expiry.code.argument.mac`, every part free of `.`,
    /// `;`, `,` and spaces; the argument is the email, or the failure as
    /// JSON, in base64.
    fn seal(&self, flashed: &Flashed, expires: u64) -> String {
        let (code, argument) = match flashed {
            Flashed::Notice(notice, email) => (
                notice.code(),
                email
                    .as_ref()
                    .map_or_else(String::new, |e| B64.encode(e.as_str())),
            ),
            // Serializing plain strings cannot fail.
            Flashed::Failure(f) => (
                FAILURE.to_owned(),
                B64.encode(serde_json::to_vec(f).expect("a failure serializes")),
            ),
        };
        let payload = format!("{expires}.{code}.{argument}");
        let tag = hmac::sign(&self.0, payload.as_bytes());
        format!("{payload}.{}", B64.encode(tag.as_ref()))
    }

    /// The message in a cookie value, if this process sealed it and it has not expired.
    fn open(&self, value: &str, now: u64) -> Option<Shown> {
        let (payload, tag) = value.rsplit_once('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.0, payload.as_bytes(), &tag).ok()?;
        let mut parts = payload.splitn(3, '.');
        let expires: u64 = parts.next()?.parse().ok()?;
        let code = parts.next()?;
        let argument = B64.decode(parts.next()?).ok()?;
        if now >= expires {
            return None;
        }
        if code == FAILURE {
            return Some(Shown::failure(serde_json::from_slice(&argument).ok()?));
        }
        let notice = Notice::parse(code)?;
        let email = match argument.as_slice() {
            [] => None,
            e => Some(Email::parse(std::str::from_utf8(e).ok()?).ok()?),
        };
        Some(Shown::notice(notice, email.as_ref()))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Behind Pomerium the app speaks plain HTTP; the browser's scheme is in
/// `X-Forwarded-Proto`. The cookie is `Secure` whenever the browser used HTTPS.
fn is_https(headers: &HeaderMap) -> bool {
    // A name made once: a `&str` is parsed and checked on every lookup.
    const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    headers
        .get(FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    );
    // Every part is ASCII without control characters.
    HeaderValue::from_str(&cookie).expect("a flash cookie is a valid header value")
}

/// What a POST handler needs to answer with a notice.
#[derive(Debug)]
pub(crate) struct Flasher {
    key: FlashKey,
    secure: bool,
}

impl FromRequestParts<AppState> for Flasher {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Flasher::new(state, &parts.headers))
    }
}

impl Flasher {
    pub fn new(state: &AppState, headers: &HeaderMap) -> Flasher {
        Flasher {
            key: state.flash.clone(),
            secure: is_https(headers),
        }
    }

    /// 303 to `page`, which will show `notice` (about `email`, if given) once.
    pub fn redirect(&self, page: &str, notice: Notice, email: Option<&Email>) -> Response {
        self.send(page, &Flashed::Notice(notice, email.cloned()))
    }

    /// 303 to `page`, which will show the failure once.
    pub fn fail(&self, page: &str, failure: Failure) -> Response {
        self.send(page, &Flashed::Failure(failure))
    }

    fn send(&self, page: &str, flashed: &Flashed) -> Response {
        let value = self.key.seal(flashed, unix_now() + LIFETIME.as_secs());
        (
            [(header::SET_COOKIE, cookie(&value, LIFETIME, self.secure))],
            Redirect::to(page),
        )
            .into_response()
    }
}

/// The notice a page was sent with, if any; as a response part it clears
/// the cookie, so a reload shows nothing.
#[derive(Debug, Default)]
pub(crate) struct Flash {
    pub shown: Option<Shown>,
    sent: bool,
    secure: bool,
}

impl FromRequestParts<AppState> for Flash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .collect();
        // Most pages come without one: no clock, no further header lookup.
        if values.is_empty() {
            return Ok(Flash::default());
        }
        let now = unix_now();
        Ok(Flash {
            shown: values.iter().find_map(|v| state.flash.open(v, now)),
            sent: true,
            secure: is_https(&parts.headers),
        })
    }
}

impl IntoResponseParts for Flash {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if self.sent {
            res.headers_mut()
                .append(header::SET_COOKIE, cookie("", Duration::ZERO, self.secure));
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn every_notice_round_trips_through_its_cookie() {
        let key = FlashKey::generate();
        let email = Email::parse("a+b@example.com").unwrap();
        for n in Notice::ALL {
            let value = key.seal(&Flashed::Notice(n, Some(email.clone())), NOW + 60);
            assert!(
                !value.contains([';', ',', ' ', '"', '\\']),
                "{value} is a valid cookie value"
            );
            let shown = key.open(&value, NOW).unwrap();
            assert_eq!(
                (shown.text, shown.tone),
                (n.message(Some(&email)), n.tone())
            );
        }
        let shown = key.open(
            &key.seal(&Flashed::Notice(Notice::Approved, None), NOW + 60),
            NOW,
        );
        assert_eq!(shown.unwrap().text, "Approved.");
        for junk in [
            "reviewed",
            "reviewed-1",
            "approved-1",
            "reviewed-1-x",
            "revoked_all-",
            "x",
        ] {
            assert_eq!(Notice::parse(junk), None, "{junk}");
        }
        assert_eq!(
            Notice::Reviewed { have: 1, need: 2 }.message(Some(&email)),
            "Approval recorded for a+b@example.com: 1 of 2. One more approver must approve it."
        );
    }

    #[test]
    fn a_failure_round_trips_with_its_text_intact() {
        let key = FlashKey::generate();
        let failure = Failure {
            title: "Changed since you looked".into(),
            detail: "The request from a.b@c.d; changed. <b>&</b>".into(),
            hint: Some("Reload.".into()),
            reference: Some("abc-123".into()),
            warning: false,
        };
        let value = key.seal(&Flashed::Failure(failure.clone()), NOW + 60);
        assert!(!value.contains([';', ',', ' ', '"', '\\']), "{value}");
        let shown = key.open(&value, NOW).unwrap();
        assert_eq!(shown, Shown::failure(failure.clone()));
        assert_eq!((shown.tone, shown.role()), ("error", "alert"));
        let saved = Failure {
            warning: true,
            ..failure
        };
        let shown = key.open(&key.seal(&Flashed::Failure(saved), NOW + 60), NOW);
        assert_eq!(shown.unwrap().tone, "warning");
    }

    #[test]
    fn forged_altered_foreign_and_expired_cookies_show_nothing() {
        let key = FlashKey::generate();
        let mallory = Email::parse("mallory@evil.example").unwrap();
        let value = key.seal(&Flashed::Notice(Notice::Rejected, Some(mallory)), NOW + 60);
        let altered = value.replacen("rejected", "approved", 1);
        assert_eq!(key.open(&altered, NOW), None);
        assert_eq!(
            FlashKey::generate().open(&value, NOW),
            None,
            "another process"
        );
        assert_eq!(key.open(&value, NOW + 60), None, "expired");
        for junk in ["", ".", "approved", "1.approved..", "x.y.z.w"] {
            assert_eq!(key.open(junk, NOW), None, "{junk}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = cookie("v", LIFETIME, false);
        assert_eq!(
            c,
            "jit_flash=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(
            cookie("v", LIFETIME, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let mut headers = HeaderMap::new();
        assert!(!is_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&headers));
    }
}
