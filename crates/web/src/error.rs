//! One error type for the whole edge, shown as an HTML page or as
//! `application/problem+json` (RFC 9457), whichever the client reads.
//!
//! A [`WebError`] turns into a bare response carrying a [`Problem`]: the
//! status and a public text, with the internals logged (in the request's
//! span, so with its request id) and left behind. The [`render`] middleware,
//! which sees the request, then draws the problem in the client's format.
//! Responses made by layers (cross-site refusal, timeout, body limit) are
//! drawn the same way, so every failure looks alike.
//!
//! A browser's form POST that fails is not answered with a page at the POST
//! address (a reload would post again): it is sent back (303) to the page
//! the form is on, which shows the failure once from a flash cookie. API
//! callers and scripts (no `text/html` in `Accept`) get the status as ever.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jit_domain::{Change, DomainError, EmailError};
use jit_identity::VerifyError;
use jit_service::{Caller, ServiceError, SyncFailure};
use serde::Serialize;
use time::OffsetDateTime;
use tower_http::csrf::ProtectionError;

use crate::AppState;
use crate::layers::Around;
use crate::notice::{Failure, Flasher};
use crate::pages::Chrome;
use crate::scope::Scope;
use crate::sync::{failure_code, failure_text};
use crate::when::When;

/// Why the caller's identity could not be established.
#[derive(Debug, thiserror::Error)]
pub enum Unverified {
    #[error("no X-Pomerium-Jwt-Assertion header")]
    Missing,
    #[error("more than one X-Pomerium-Jwt-Assertion header")]
    Repeated,
    #[error("the X-Pomerium-Jwt-Assertion header is not visible ASCII")]
    NotText,
    #[error(transparent)]
    Token(#[from] VerifyError),
    #[error("the assertion's email claim is not a usable address: {0}")]
    Email(EmailError),
}

impl Unverified {
    /// A short public reason; never the token, never the email.
    pub fn reason(&self) -> &'static str {
        match self {
            Unverified::Missing => "no identity assertion was sent",
            Unverified::Repeated => "more than one identity assertion was sent",
            Unverified::NotText => "malformed token",
            Unverified::Token(e) => e.reason(),
            Unverified::Email(_) => "the email in the token is not a valid address",
        }
    }
}

/// Everything that can go wrong at the edge. Each maps to one status and a
/// public text; internal detail goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("your Pomerium sign-in could not be verified: {0}")]
    Unverified(#[from] Unverified),
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A field of a form or query that does not parse into its domain type.
    #[error("the field `{field}` is invalid: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// A form or query string that cannot be read at all.
    #[error("the {what} could not be read: {message}")]
    Unreadable { what: &'static str, message: String },
    /// Durable, but not in Pomerium Zero's policy yet.
    #[error("the decision is saved but not applied yet")]
    NotApplied(Option<SyncFailure>),
    /// An approver's "Sync now" could not complete.
    #[error("the sync with Pomerium Zero failed")]
    SyncFailed(SyncFailure),
    #[error("cross-site request refused")]
    CrossSite,
    #[error("no such page")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    TooLarge,
    #[error("forms must be sent as application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// A JSON API body of another type.
    #[error("the body must be sent as application/json")]
    NotJson,
    /// A list's `cursor` that no page of that list gave.
    #[error("the cursor is not one this list gave")]
    Cursor,
    /// A change only the requester may make, asked by an approver.
    #[error("only the requester can do this")]
    NotYours,
    #[error("the request took too long")]
    Timeout,
    /// A failure status from somewhere below with no more to say.
    #[error("the request failed with status {0}")]
    Status(StatusCode),
}

impl WebError {
    pub(crate) fn field(field: &'static str, error: impl std::fmt::Display) -> WebError {
        WebError::Field {
            field,
            message: error.to_string(),
        }
    }

    /// The public face of the error.
    pub(crate) fn problem(&self) -> Problem {
        use StatusCode as S;
        let p = Problem::new;
        match self {
            WebError::Unverified(u) => {
                let unavailable = matches!(u, Unverified::Token(e) if e.is_unavailable());
                let (status, hint) = if unavailable {
                    (
                        S::SERVICE_UNAVAILABLE,
                        "Pomerium's signing keys could not be loaded, so no sign-in can be checked right now. \
                         Try again in a minute; if it persists, tell an admin (check JWKS_ENDPOINT).",
                    )
                } else {
                    (
                        S::FORBIDDEN,
                        "Reload this page through its Pomerium address, and sign in again if asked. If you \
                         opened the app directly rather than through Pomerium, use the Pomerium address.",
                    )
                };
                p(status, "unverified", "Sign-in not verified")
                    .detail(format!("Your Pomerium sign-in could not be verified: {}.", u.reason()))
                    .hint(hint)
                    .stays()
            }
            WebError::Service(ServiceError::NotAdmin) => p(S::FORBIDDEN, "not-admin", "Admins only")
                .detail("This page and its actions are for admins only.")
                .hint(
                    "To become an admin, ask an existing admin to add your email to ADMIN_EMAILS, or one \
                     of your groups to ADMIN_GROUPS, in this app's configuration.",
                )
                .back("/")
                .stays(),
            WebError::Service(ServiceError::AdminRouteOnly) => {
                p(S::FORBIDDEN, "admin-route-only", "Admins only, under /admin")
                    .detail(
                        "No ADMIN_EMAILS or ADMIN_GROUPS are set, so admin rights exist only under /admin/, \
                         where Pomerium's admin route checks them.",
                    )
                    .hint(
                        "Use the same address under /admin (the JSON API is at /admin/api/v1/), or set \
                         ADMIN_EMAILS or ADMIN_GROUPS so the app checks admin rights itself.",
                    )
                    .back("/")
                    .stays()
            }
            WebError::Service(ServiceError::NotApprover { title }) => {
                p(S::FORBIDDEN, "not-approver", "Approvers only")
                    .detail(format!("Only the approvers of {title} can decide requests on it."))
                    .hint("Ask one of its approvers; the resource's page lists who approves it.")
                    .back("/")
                    .stays()
            }
            WebError::Service(ServiceError::UnknownResource(name)) => {
                p(S::NOT_FOUND, "unknown-resource", "No such resource")
                    .detail(format!("There is no resource named `{name}`."))
                    .hint("Pick one from the catalog on the home page.")
                    .back("/")
            }
            WebError::Service(ServiceError::NoSuchRequest) => {
                p(S::NOT_FOUND, "no-such-request", "No such request")
                    .detail("That request does not exist, or is not yours to see.")
                    .hint("Requests are visible to their requester and to the approvers of their resource.")
                    .back("/")
            }
            WebError::Service(ServiceError::Domain(e)) => domain_problem(e),
            WebError::Service(ServiceError::Store(_)) => {
                p(S::INTERNAL_SERVER_ERROR, "store", "Database unavailable")
                    .detail("The database could not complete the request, so nothing was changed.")
                    .hint("Try again in a moment. If it keeps failing, tell an admin.")
            }
            WebError::Field { field, message } => p(S::BAD_REQUEST, "invalid-field", "Invalid input")
                .detail(format!("The field `{field}` is invalid: {message}."))
                .hint("Go back, correct it and try again."),
            WebError::Unreadable { what, message } => p(S::BAD_REQUEST, "unreadable", "Invalid input")
                .detail(format!("The {what} could not be read: {message}."))
                .hint("Go back and submit the form from the page again."),
            WebError::NotApplied(failure) => {
                let why = match failure {
                    Some(f) => format!(
                        "Pomerium Zero has not applied it yet ({}): {}",
                        failure_code(f.kind),
                        failure_text(f.kind)
                    ),
                    None => "Pomerium Zero did not confirm it in time.".to_owned(),
                };
                p(S::SERVICE_UNAVAILABLE, "not-applied", "Saved, not applied yet")
                    .detail(format!("Your decision is SAVED. {why}"))
                    .hint(
                        "It will be applied as soon as Pomerium Zero answers; there is no need to submit it \
                         again. Until then Pomerium still enforces the previous policy.",
                    )
            }
            WebError::SyncFailed(f) => p(S::SERVICE_UNAVAILABLE, "sync-failed", "Sync failed")
                .detail(format!(
                    "The sync with Pomerium Zero failed ({}): {}",
                    failure_code(f.kind),
                    failure_text(f.kind)
                ))
                .hint(
                    "The page shows what the database holds; decisions are saved and applied once \
                     Pomerium Zero answers. The app keeps retrying on its own.",
                ),
            WebError::CrossSite => p(S::FORBIDDEN, "cross-site", "Cross-site request refused")
                .detail("This change was sent from another site, so it was refused and nothing was changed.")
                .hint("Make changes from this app's own pages.")
                .stays(),
            WebError::NotFound => p(S::NOT_FOUND, "not-found", "Page not found")
                .detail("There is no page at this address."),
            WebError::MethodNotAllowed => p(S::METHOD_NOT_ALLOWED, "method-not-allowed", "Not allowed")
                .detail("This address does not accept that kind of request.")
                .hint("Use the buttons on the app's pages."),
            WebError::TooLarge => p(S::PAYLOAD_TOO_LARGE, "too-large", "Too much data")
                .detail(format!("The request is larger than the {} KiB limit.", crate::BODY_LIMIT / 1024)),
            WebError::UnsupportedMediaType => {
                p(S::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported form encoding")
                    .detail("Forms must be sent as application/x-www-form-urlencoded.")
            }
            WebError::NotJson => {
                p(S::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported body type")
                    .detail("The JSON API reads bodies sent as application/json.")
                    .hint("Send `Content-Type: application/json` with a JSON object, or no body at all.")
            }
            WebError::Cursor => p(S::BAD_REQUEST, "invalid-cursor", "Invalid cursor")
                .detail("The `cursor` parameter is not one this list gave.")
                .hint("Pass the `next` value of the previous page unchanged, with the same filters, or leave it out for the first page."),
            WebError::NotYours => p(S::FORBIDDEN, "not-yours", "Only the requester can do this")
                .detail("Only the person who asked can withdraw or extend a request.")
                .hint("Approvers end requests with reject, and access with the grant's revoke."),
            WebError::Timeout => p(S::SERVICE_UNAVAILABLE, "timeout", "Took too long")
                .detail("The server took too long to answer.")
                .hint("If you made a change it may have been saved; reload the page to see where things stand."),
            WebError::Status(status) => p(*status, "failed", "Something went wrong")
                    .detail("The request could not be completed.")
                .hint("Try again. If it keeps failing, tell an admin and quote the reference below."),
        }
    }

    /// Logs what the page does not show. Refused sign-ins are logged too
    /// (failed access attempts), without token or email.
    fn log(&self, status: StatusCode) {
        match self {
            WebError::Unverified(u) => {
                tracing::info!(reason = u.reason(), detail = %u, "assertion refused");
            }
            WebError::Service(ServiceError::NotAdmin | ServiceError::AdminRouteOnly) => {
                tracing::info!("admin action refused: not an admin")
            }
            WebError::Service(ServiceError::Store(e)) => {
                tracing::error!(error = %e, "store failed")
            }
            WebError::SyncFailed(f) => {
                tracing::warn!(failure = failure_code(f.kind), "sync now failed")
            }
            WebError::NotApplied(failure) => tracing::warn!(
                failure = failure.as_ref().map(|f| failure_code(f.kind)),
                "decision saved but not applied within the wait"
            ),
            WebError::CrossSite => tracing::info!("cross-site request refused"),
            _ if status.is_server_error() => tracing::warn!(error = %self, "request failed"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
    }
}

fn domain_problem(e: &DomainError) -> Problem {
    use StatusCode as S;
    let now = OffsetDateTime::now_utc();
    match e {
        DomainError::NoOpenRequest { email } => {
            Problem::new(S::NOT_FOUND, "no-open-request", "Nothing to change")
                .detail(format!(
                    "There is no pending request or active access for {email}."
                ))
                .hint("Someone may have acted on it already; the list is up to date on reload.")
        }
        DomainError::AlreadyPending { email, since } => {
            let since = When::new(*since, now);
            Problem::new(S::CONFLICT, "already-pending", "Already requested").detail(format!(
                "{email} already has a pending request, made {since}."
            ))
        }
        DomainError::AlreadyActive { email, until } => {
            let until = When::new(*until, now);
            Problem::new(S::CONFLICT, "already-active", "Access already granted")
                .detail(format!("{email} already has access until {until}."))
        }
        DomainError::SelfApproval => Problem::new(
            S::FORBIDDEN,
            "self-approval",
            "Cannot approve your own request",
        )
        .detail("You cannot approve your own request.")
        .hint("Ask another admin to approve it."),
        DomainError::Changed { email, change } => {
            let what = match change {
                Change::Ended => format!(
                    "The request from {email} shown on your page is no longer open: it was decided, \
                     withdrawn or expired since."
                ),
                Change::Approved { by, at } => {
                    let at = When::new(*at, now);
                    format!(
                        "The request from {email} shown on your page was approved meanwhile by {}, at {at}.",
                        by.label(),
                    )
                }
                Change::Replaced {
                    status,
                    requested_at,
                } => {
                    let at = When::new(*requested_at, now);
                    format!(
                        "The request from {email} shown on your page has ended, and a newer one made {at} \
                         is now {}.",
                        status.as_str()
                    )
                }
            };
            Problem::new(S::CONFLICT, "changed", "Changed since you looked")
                .detail(format!("{what} Nothing was changed."))
                .hint("Reload the admin page to see where things stand now, then decide again.")
        }
        DomainError::Duration(d) => Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid input")
            .detail(format!("The field `duration` is invalid: {d}."))
            .hint("Choose one of the offered durations."),
        DomainError::DurationNotChoosable => {
            Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid input")
                .detail(format!("The field `duration` is invalid: {e}."))
                .hint("Leave the duration empty; the approver chooses it.")
        }
        DomainError::Reason(m) => Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid input")
            .detail(format!("The field `reason` is invalid: {m}."))
            .hint("Go back, correct it and try again."),
        DomainError::Ticket(m) => Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid input")
            .detail(format!("The field `ticket` is invalid: {m}."))
            .hint("Go back, correct it and try again."),
        DomainError::StartInPast | DomainError::StartTooFar { .. } => {
            Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid input")
                .detail(format!("The field `starts_at` is invalid: {e}."))
                .hint("Choose a start between now and the next few weeks, or leave it empty.")
        }
        DomainError::AlreadyApproved { .. } => {
            Problem::new(S::CONFLICT, "already-approved", "Already approved by you")
                .detail(format!("{e}."))
                .hint("Another approver has to approve it too.")
        }
        DomainError::TooManyExtensions { .. } => {
            Problem::new(S::CONFLICT, "too-many-extensions", "No more extensions")
                .detail(format!("{e}."))
        }
        DomainError::ExtensionPending { .. } => {
            Problem::new(S::CONFLICT, "extension-pending", "Extension already asked")
                .detail(format!("{e}."))
        }
        DomainError::NoExtensionAsked { .. } => {
            Problem::new(S::NOT_FOUND, "no-extension-asked", "No extension to decide")
                .detail(format!("{e}."))
                .hint("Someone may have decided it already; the list is up to date on reload.")
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        self.log(problem.status);
        problem.into_response()
    }
}

/// The public face of a failure: what the page or problem document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub status: StatusCode,
    /// Stable identifier, the tail of the problem `type`.
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// What to do about it.
    pub hint: Option<&'static str>,
    /// Where "back" leads when the section's own page would fail the same way.
    pub back: Option<&'static str>,
    /// Shown where it happened, never carried back to a form's page: it is
    /// about who is asking, so that page would fail the same way (or, for a
    /// cross-site POST, the answer must set nothing).
    pub stays: bool,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str) -> Problem {
        Problem {
            status,
            code,
            title,
            detail: String::new(),
            hint: None,
            back: None,
            stays: false,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = detail.into();
        self
    }

    fn hint(mut self, hint: &'static str) -> Problem {
        self.hint = Some(hint);
        self
    }

    fn back(mut self, back: &'static str) -> Problem {
        self.back = Some(back);
        self
    }

    fn stays(mut self) -> Problem {
        self.stays = true;
        self
    }

    /// What the form's page shows about it.
    fn failure(&self, reference: Option<&str>) -> Failure {
        Failure {
            title: self.title.to_owned(),
            detail: self.detail.clone(),
            hint: self.hint.map(str::to_owned),
            reference: reference.map(str::to_owned),
            warning: self.code == "not-applied",
        }
    }
}

/// A bare response that [`render`] will draw.
impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// What the client reads, known from the request before it is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reader {
    json: bool,
    /// A browser's form POST: sent back to the form's page on failure.
    form_post: bool,
    /// Where "back" leads: the admin page for admin routes, else home.
    back: &'static str,
    /// Shared with the request's headers, not copied.
    request_id: Option<HeaderValue>,
}

impl Reader {
    fn of(request: &Request) -> Reader {
        let path = request.uri().path();
        let json = path.starts_with("/api/")
            || path.starts_with("/admin/api/")
            || prefers_json(request.headers());
        Reader {
            json,
            form_post: request.method() == Method::POST && !json && reads_html(request.headers()),
            back: if path == "/admin" || path.starts_with("/admin/") {
                "/admin"
            } else {
                "/"
            },
            request_id: request.headers().get(crate::layers::REQUEST_ID).cloned(),
        }
    }

    fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }
}

/// True when `Accept` names a JSON type and not HTML: browsers always list
/// `text/html`, API clients ask for JSON.
fn prefers_json(headers: &HeaderMap) -> bool {
    accept_names(headers, b"json") && !accept_names(headers, b"text/html")
}

/// True when `Accept` names HTML, as a browser's navigation always does.
fn reads_html(headers: &HeaderMap) -> bool {
    accept_names(headers, b"text/html")
}

/// Whether any `Accept` header holds `needle` (lower case), ignoring case;
/// read on every request, so without copying the headers.
fn accept_names(headers: &HeaderMap, needle: &[u8]) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// Draws every failure, whoever produced it, as the client prefers.
#[derive(Debug, Clone)]
pub(crate) struct Render(pub AppState);

impl Around for Render {
    /// The flasher only for a browser's form post: no other failure is
    /// sent back with a notice (and its header lookup is spared).
    type Seen = (Reader, Option<Flasher>);

    fn before(&self, request: &mut Request) -> (Self::Seen, Scope) {
        let reader = Reader::of(request);
        let flasher = reader
            .form_post
            .then(|| Flasher::new(&self.0, request.headers()));
        ((reader, flasher), Scope::none())
    }

    fn after(&self, (reader, flasher): Self::Seen, mut response: Response) -> Response {
        let problem = if let Some(problem) = response.extensions_mut().remove::<Problem>() {
            problem
        } else if response.extensions().get::<ProtectionError>().is_some() {
            let error = WebError::CrossSite;
            error.log(StatusCode::FORBIDDEN);
            error.problem()
        } else if is_bare_failure(&response) {
            let error = bare_failure(response.status());
            error.log(response.status());
            error.problem()
        } else {
            return response;
        };
        if let Some(flasher) = flasher
            && !problem.stays
        {
            let failure = problem.failure(reader.request_id());
            return flasher.fail(problem.back.unwrap_or(reader.back), failure);
        }
        // Set by `authenticate` once the caller is known: the page keeps the
        // navigation and "Signed in as".
        let chrome = match response.extensions().get::<Caller>() {
            Some(caller) => Chrome::signed_in(&self.0, caller, ""),
            None => Chrome::anonymous(self.0.demo),
        };
        draw(&problem, &reader, chrome)
    }
}

/// Whether `render` will draw a page for this response (the caller is
/// kept on it for that page only).
pub(crate) fn is_failure(response: &Response) -> bool {
    response.extensions().get::<Problem>().is_some() || is_bare_failure(response)
}

/// A failure from a layer or a library, with no page of its own.
fn is_bare_failure(response: &Response) -> bool {
    let status = response.status();
    // The status first: every response is asked, few are failures.
    let drawn = || {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/html") || ct.contains("json"))
    };
    (status.is_client_error() || status.is_server_error()) && !drawn()
}

fn bare_failure(status: StatusCode) -> WebError {
    match status {
        StatusCode::NOT_FOUND => WebError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => WebError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => WebError::UnsupportedMediaType,
        // The timeout layer answers 503 with an empty body.
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => WebError::Timeout,
        other => WebError::Status(other),
    }
}

/// An error, as RFC 9457 has it; `type` is
/// `urn:pomerium-jit:problem:<code>`, one code per kind of error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProblemJson<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    problem: &'a Problem,
    back: &'static str,
    request_id: Option<&'a str>,
}

fn draw(problem: &Problem, reader: &Reader, chrome: Chrome) -> Response {
    let request_id = reader.request_id();
    if reader.json {
        let body = ProblemJson {
            r#type: format!("urn:pomerium-jit:problem:{}", problem.code),
            title: problem.title,
            status: problem.status.as_u16(),
            detail: &problem.detail,
            hint: problem.hint,
            request_id,
        };
        let mut response = (problem.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return response;
    }
    let page = ErrorPage {
        chrome,
        problem,
        back: problem.back.unwrap_or(reader.back),
        request_id,
    };
    match page.render() {
        Ok(html) => (problem.status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (problem.status, problem.detail.clone()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(path: &str, accept: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path);
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn json_for_api_paths_and_json_clients_html_for_browsers() {
        assert!(Reader::of(&request("/api/v1/me", None)).json);
        assert!(Reader::of(&request("/", Some("application/json"))).json);
        assert!(Reader::of(&request("/", Some("application/problem+json"))).json);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(!Reader::of(&request("/", Some(browser))).json);
        assert!(!Reader::of(&request("/", Some("*/*"))).json);
        assert!(!Reader::of(&request("/", None)).json);
    }

    #[test]
    fn only_a_browsers_post_is_sent_back_to_its_page() {
        let post = |path: &str, accept: &str| {
            let r = Request::post(path)
                .header(header::ACCEPT, accept)
                .body(Body::empty())
                .unwrap();
            Reader::of(&r).form_post
        };
        let browser = "text/html,application/xhtml+xml,*/*;q=0.8";
        assert!(post("/admin/approve-access", browser));
        assert!(!post("/admin/approve-access", "*/*"), "a script");
        assert!(!post("/api/v1/me", browser), "the API");
        assert!(
            !Reader::of(&request("/admin", Some(browser))).form_post,
            "a GET"
        );
        assert!(WebError::CrossSite.problem().stays);
        assert!(WebError::from(ServiceError::NotAdmin).problem().stays);
        assert!(!WebError::field("email", "bad").problem().stays);
        let saved = WebError::NotApplied(None).problem().failure(Some("id-1"));
        assert!(saved.warning && saved.detail.contains("SAVED"));
        assert_eq!(saved.reference.as_deref(), Some("id-1"));
    }

    #[test]
    fn back_leads_to_the_section() {
        assert_eq!(
            Reader::of(&request("/admin/approve-access", None)).back,
            "/admin"
        );
        assert_eq!(Reader::of(&request("/admin", None)).back, "/admin");
        assert_eq!(Reader::of(&request("/administrator", None)).back, "/");
        assert_eq!(Reader::of(&request("/request-access", None)).back, "/");
    }

    #[test]
    fn statuses_follow_the_mapping() {
        let email = jit_domain::Email::parse("a@b.c").unwrap();
        let now = OffsetDateTime::now_utc();
        let cases: Vec<(WebError, u16)> = vec![
            (Unverified::Missing.into(), 403),
            (Unverified::Token(VerifyError::Expired).into(), 403),
            (Unverified::Token(VerifyError::KeysUnavailable).into(), 503),
            (ServiceError::NotAdmin.into(), 403),
            (
                ServiceError::Domain(DomainError::NoOpenRequest {
                    email: email.clone(),
                })
                .into(),
                404,
            ),
            (
                ServiceError::Domain(DomainError::AlreadyPending {
                    email: email.clone(),
                    since: now,
                })
                .into(),
                409,
            ),
            (
                ServiceError::Domain(DomainError::AlreadyActive {
                    email: email.clone(),
                    until: now,
                })
                .into(),
                409,
            ),
            (ServiceError::Domain(DomainError::SelfApproval).into(), 403),
            (
                ServiceError::Domain(DomainError::Duration(jit_domain::DurationError::TooShort))
                    .into(),
                400,
            ),
            (WebError::field("email", "bad"), 400),
            (WebError::NotApplied(None), 503),
            (
                WebError::SyncFailed(SyncFailure {
                    kind: jit_service::FailureKind::ZeroUnavailable,
                    message: "down".into(),
                }),
                503,
            ),
            (WebError::CrossSite, 403),
            (WebError::NotFound, 404),
            (WebError::TooLarge, 413),
            (WebError::Timeout, 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.problem().status.as_u16(), status, "{error:?}");
            assert!(
                !error.problem().detail.is_empty(),
                "{error:?} explains itself"
            );
        }
    }

    #[test]
    fn the_public_reason_names_the_failure_but_not_the_token() {
        let p = WebError::from(Unverified::Token(VerifyError::Expired)).problem();
        assert_eq!(
            p.detail,
            "Your Pomerium sign-in could not be verified: token expired."
        );
        assert!(p.hint.unwrap().contains("through its Pomerium address"));
    }

    #[test]
    fn not_applied_says_saved_and_names_the_failure() {
        let failure = SyncFailure {
            kind: jit_service::FailureKind::ZeroRefused,
            message: "secret detail".into(),
        };
        let p = WebError::NotApplied(Some(failure)).problem();
        assert!(
            p.detail.contains("SAVED") && p.detail.contains("zero_refused"),
            "{}",
            p.detail
        );
        assert!(
            !p.detail.contains("secret detail"),
            "internal text stays in the log"
        );
    }
}
