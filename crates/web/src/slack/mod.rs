//! `POST /slack/actions`: the buttons of a request's Slack message
//! (approve, reject, and the same for an extension), served only when
//! Slack is configured.
//!
//! Pomerium exposes this one path without sign-in, so the app checks that
//! Slack sent it: the signature over the raw body, before anything is
//! parsed, a timestamp within 5 minutes, each signature accepted once (see
//! [`signature`]). The clicking Slack user is mapped to an email (and
//! groups) by [`users`], and the decision goes through the same service
//! call, with the same rules, as the approvers' page: approver set, N of M,
//! self-approval. Admin rights of the open admin mode (no admin lists) exist
//! only on Pomerium's `/admin` route, never here.
//!
//! Slack wants an answer within 3 seconds, so the request is answered 200
//! once verified and read, and the outcome is posted to the message's
//! `response_url`: the message is replaced by the decision, an approval
//! still short of N is posted beside it (the buttons stay for the next
//! approver), a refusal is shown only to the one who clicked. Only
//! `response_url`s under the allowed base (`https://hooks.slack.com/`) are
//! ever called.

mod signature;
mod users;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jit_domain::{DomainError, Email, Profile, Request, RequestId, Status};
use jit_service::{Applied, Caller, Decision, Outcome, Route, Service, ServiceError};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use self::signature::{Refused, Replays, SigningKey};
use self::users::{Directory, Unmapped};
pub use self::users::{SlackPerson, SlackUserId, UsersInfo};
use crate::when::When;

/// The one path Slack calls.
pub(crate) const PATH: &str = "/slack/actions";
/// Slack's Web API.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";
/// Where Slack's `response_url`s point.
pub const DEFAULT_RESPONSE_BASE: &str = "https://hooks.slack.com/";
/// How long posting an answer to a `response_url` may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Approving from Slack, checked: the signing secret, the mapping sources
/// (at least one) and where answers may be posted.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    signing_secret: SecretString,
    users: BTreeMap<SlackUserId, SlackPerson>,
    users_info: Option<UsersInfo>,
    response_base: Url,
    http: reqwest::Client,
}

/// Why the Slack settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SlackConfigError {
    #[error("the signing secret is empty")]
    EmptySecret,
    #[error(
        "no Slack user can be mapped to an email: list them under [slack] users in CONFIG_FILE, \
         or set SLACK_BOT_TOKEN to look them up with Slack's users.info"
    )]
    NoMapping,
    #[error("cannot build the HTTP client for Slack: {0}")]
    HttpClient(reqwest::Error),
}

impl SlackConfig {
    pub fn new(
        signing_secret: SecretString,
        users: BTreeMap<SlackUserId, SlackPerson>,
        users_info: Option<UsersInfo>,
        response_base: Url,
    ) -> Result<SlackConfig, SlackConfigError> {
        if signing_secret.expose_secret().is_empty() {
            return Err(SlackConfigError::EmptySecret);
        }
        if users.is_empty() && users_info.is_none() {
            return Err(SlackConfigError::NoMapping);
        }
        let http = jit_http::client()
            .connect_timeout(Duration::from_secs(5))
            // A redirect could carry the bot token, or an answer, elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pomerium-jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SlackConfigError::HttpClient)?;
        Ok(SlackConfig {
            signing_secret,
            users,
            users_info,
            response_base,
            http,
        })
    }
}

/// A base URL for Slack (`name` is the setting, for the message): https,
/// or plain http to a loopback host (tests), no credentials, query or
/// fragment.
pub fn base_url(name: &str, raw: &str) -> Result<Url, String> {
    let bad = |why: &str| format!("{name}: `{raw}` {why}");
    let url = Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let Some(host) = url.host_str() else {
        return Err(bad("has no host"));
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must use https (plain http only to a loopback host)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not hold credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

/// The route, with what it needs; added to the app only when Slack is configured.
pub(crate) fn router<S>(config: SlackConfig, service: Service) -> Router<S> {
    let slack = Slack {
        key: SigningKey::new(config.signing_secret.expose_secret().as_bytes()),
        replays: Replays::default(),
        directory: Directory::new(config.users, config.users_info, config.http.clone()),
        response_base: config.response_base,
        http: config.http,
        service,
    };
    // Slack's body is read whole (its signature covers the bytes), capped
    // here: the pages' and the API's cap is their extractors' own.
    Router::new()
        .route(PATH, post(actions))
        .layer(axum::extract::DefaultBodyLimit::max(crate::BODY_LIMIT))
        .with_state(Arc::new(slack))
}

#[derive(Debug)]
struct Slack {
    key: SigningKey,
    replays: Replays,
    directory: Directory,
    response_base: Url,
    http: reqwest::Client,
    service: Service,
}

/// Verifies, reads, answers 200 and decides in the background.
async fn actions(State(slack): State<Arc<Slack>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let checked = slack
        .key
        .verify(&headers, &body, now)
        .and_then(|signed| slack.replays.first_time(signed, now));
    if let Err(refused) = checked {
        tracing::info!(reason = %refused, "slack request refused");
        let status = match refused {
            Refused::Full => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        return answer(status, "slack-signature", &refused);
    }
    let click = match Click::read(&headers, &body, &slack.response_base) {
        Ok(Some(click)) => click,
        Ok(None) => return StatusCode::OK.into_response(),
        Err(e) => {
            tracing::info!(error = %e, "slack request unreadable");
            return answer(e.status(), "slack-payload", &e);
        }
    };
    tokio::spawn(async move {
        let reply = slack.decide(&click).await;
        slack.post(&click.response_url, &reply).await;
    });
    StatusCode::OK.into_response()
}

/// A refusal as JSON (drawn as is by the error layer): the code and why.
fn answer(status: StatusCode, code: &str, why: &dyn fmt::Display) -> Response {
    let body = json!({ "error": code, "detail": why.to_string() });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A button the app knows, clicked.
#[derive(Debug)]
struct Click {
    user: SlackUserId,
    action: Action,
    request: RequestId,
    response_url: Url,
}

/// The buttons, by `action_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Approve,
    Reject,
    ApproveExtension,
    RejectExtension,
}

impl Action {
    fn of(action_id: &str) -> Option<Action> {
        Some(match action_id {
            "jit_approve" => Action::Approve,
            "jit_reject" => Action::Reject,
            "jit_approve_extension" => Action::ApproveExtension,
            "jit_reject_extension" => Action::RejectExtension,
            _ => return None,
        })
    }

    /// The status the message showed the request in: a decision applies
    /// only while it still holds (a reject never revokes a grant).
    fn shown(self) -> Status {
        match self {
            Action::Approve | Action::Reject => Status::Pending,
            Action::ApproveExtension | Action::RejectExtension => Status::Active,
        }
    }

    fn decision(self) -> Decision {
        match self {
            Action::Approve => Decision::Approve { duration: None },
            Action::Reject => Decision::Revoke { comment: None },
            Action::ApproveExtension => Decision::ApproveExtension,
            Action::RejectExtension => Decision::RejectExtension { comment: None },
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::ApproveExtension => "approve-extension",
            Action::RejectExtension => "reject-extension",
        }
    }
}

/// Why a verified request cannot be read.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("the body must be application/x-www-form-urlencoded")]
    MediaType,
    #[error("the body is not a form with a `payload` field: {0}")]
    Form(serde_urlencoded::de::Error),
    #[error("the payload is not the JSON of an interaction: {0}")]
    Json(serde_json::Error),
    #[error("only block_actions interactions are handled, not `{0}`")]
    Kind(String),
    #[error("the payload names no action")]
    NoAction,
    #[error("the button's value is not a request id")]
    RequestId,
    #[error("the payload's user.id: {0}")]
    User(String),
    #[error("the response_url is missing or not under the allowed base")]
    ResponseUrl,
}

impl Unreadable {
    fn status(&self) -> StatusCode {
        match self {
            Unreadable::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Deserialize)]
struct Form {
    payload: String,
}

/// The parts of a `block_actions` payload used here.
#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: PayloadUser,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<PayloadAction>,
}

#[derive(Deserialize)]
struct PayloadUser {
    id: String,
}

#[derive(Deserialize)]
struct PayloadAction {
    action_id: String,
    value: Option<String>,
}

impl Click {
    /// The click, or `None` for a button that is not the app's (a link in
    /// the same message also calls here).
    fn read(headers: &HeaderMap, body: &[u8], base: &Url) -> Result<Option<Click>, Unreadable> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(Unreadable::MediaType);
        }
        let form: Form = serde_urlencoded::from_bytes(body).map_err(Unreadable::Form)?;
        let payload: Payload = serde_json::from_str(&form.payload).map_err(Unreadable::Json)?;
        if payload.kind != "block_actions" {
            return Err(Unreadable::Kind(payload.kind.chars().take(40).collect()));
        }
        let first = payload.actions.first().ok_or(Unreadable::NoAction)?;
        let Some(action) = Action::of(&first.action_id) else {
            return Ok(None);
        };
        let request = first
            .value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or(Unreadable::RequestId)?;
        let user = payload.user.id.parse().map_err(Unreadable::User)?;
        let response_url = payload
            .response_url
            .as_deref()
            .and_then(|u| allowed(u, base))
            .ok_or(Unreadable::ResponseUrl)?;
        Ok(Some(Click {
            user,
            action,
            request,
            response_url,
        }))
    }
}

/// `url` if it is under `base`: same scheme, host and port, no
/// credentials, the base's path as a prefix. Nothing else is ever called.
fn allowed(url: &str, base: &Url) -> Option<Url> {
    let url = Url::parse(url).ok()?;
    let same = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path().starts_with(base.path());
    same.then_some(url)
}

/// What is posted to the `response_url`.
#[derive(Debug, Serialize)]
struct Reply {
    response_type: &'static str,
    replace_original: bool,
    text: String,
    blocks: Vec<serde_json::Value>,
}

impl Reply {
    /// Replaces the message (and its buttons): the request is decided.
    fn decided(text: String) -> Reply {
        Reply::new("in_channel", true, text)
    }

    /// Beside the message, whose buttons stay for the next approver.
    fn progress(text: String) -> Reply {
        Reply::new("in_channel", false, text)
    }

    /// Only to the one who clicked; the message stays.
    fn refused(text: String) -> Reply {
        Reply::new("ephemeral", false, text)
    }

    fn new(response_type: &'static str, replace_original: bool, text: String) -> Reply {
        let blocks = vec![json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": escape(&text) },
        })];
        Reply {
            response_type,
            replace_original,
            text,
            blocks,
        }
    }
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    async fn decide(&self, click: &Click) -> Reply {
        let person = match self.directory.person(&click.user).await {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(slack_user = %click.user, error = %e, "slack user not mapped");
                return Reply::refused(unmapped_text(&click.user, &e));
            }
        };
        let caller = Caller {
            profile: Arc::new(Profile {
                email: person.email,
                groups: person.groups.into(),
                claims: Arc::default(),
            }),
            // Never the admin route: open admin mode grants nothing here.
            route: Route::Public,
        };
        let decided = self
            .service
            .decide_on(
                &caller,
                click.request,
                click.action.shown(),
                click.action.decision(),
                "slack",
            )
            .await;
        let result = match &decided {
            Ok(_) => "decided",
            Err(_) => "refused",
        };
        tracing::info!(
            slack_user = %click.user,
            request = %click.request,
            action = click.action.as_str(),
            result,
            "slack action"
        );
        match decided {
            Ok(outcome) => self.outcome(click.action, &caller.email, &outcome),
            Err(e) => Reply::refused(refusal_text(&e)),
        }
    }

    /// "Approved by carol@example.com (1 of 2)…", and whether it is final.
    fn outcome(&self, action: Action, by: &Email, outcome: &Outcome) -> Reply {
        let r = &outcome.request;
        let now = OffsetDateTime::now_utc();
        let (title, need) = match self.service.resource(r.resource.as_str()) {
            Ok(res) => (res.title.clone(), res.rules.approvals_needed.get()),
            Err(_) => (r.resource.to_string(), 1),
        };
        let until = |r: &Request| {
            r.state
                .grant()
                .map_or_else(String::new, |g| When::new(g.expires_at, now).abs)
        };
        let of = |have: usize| {
            if need > 1 {
                format!(" ({have} of {need})")
            } else {
                String::new()
            }
        };
        let who = &r.email;
        let waiting = match action {
            Action::Approve => r.state.status() == Status::Pending,
            Action::ApproveExtension => r.extension.is_some(),
            Action::Reject | Action::RejectExtension => false,
        };
        let (reply, text): (fn(String) -> Reply, String) = match action {
            _ if waiting => (
                Reply::progress,
                format!(
                    "{} by {by}{}: {title} for {who} waits for another approver.",
                    if action == Action::Approve {
                        "Approved"
                    } else {
                        "Extension approved"
                    },
                    of(r.approvals.len()),
                ),
            ),
            Action::Approve => (
                Reply::decided,
                format!(
                    "Approved by {by}{}: {who} has access to {title} until {}.",
                    of(need.into()),
                    until(r)
                ),
            ),
            Action::Reject => (
                Reply::decided,
                format!("Rejected by {by}: {who}'s request for {title}."),
            ),
            Action::ApproveExtension => (
                Reply::decided,
                format!(
                    "Extension approved by {by}{}: {who} has access to {title} until {}.",
                    of(need.into()),
                    until(r)
                ),
            ),
            Action::RejectExtension => (
                Reply::decided,
                format!(
                    "Extension declined by {by}: {who}'s access to {title} runs on until {}.",
                    until(r)
                ),
            ),
        };
        match outcome.applied {
            Applied::Applied => reply(text),
            Applied::Saved(_) => reply(format!(
                "{text} Saved; Pomerium Zero has not applied it yet, and will without anyone clicking again."
            )),
        }
    }

    async fn post(&self, url: &Url, reply: &Reply) {
        let sent = self
            .http
            .post(url.clone())
            .json(reply)
            .timeout(REPLY_TIMEOUT)
            .send()
            .await;
        // The URL is a credential of sorts: never logged.
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = r.status().as_u16(), "slack refused the answer"),
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "the answer could not be posted to slack")
            }
        }
    }
}

fn unmapped_text(user: &SlackUserId, e: &Unmapped) -> String {
    let what = format!(
        "Your Slack account ({user}) {e}, so this app cannot tell who you are and changed nothing."
    );
    if e.is_transient() {
        format!("{what} Try again in a minute.")
    } else {
        format!(
            "{what} Ask an admin of this app to map your Slack member ID to the email you sign in with \
             ([slack] users in its config file)."
        )
    }
}

fn refusal_text(e: &ServiceError) -> String {
    match e {
        ServiceError::NotApprover { title } => {
            format!("You are not an approver of {title}, so nothing was changed.")
        }
        ServiceError::AdminRouteOnly => "You are not an approver here: with no ADMIN_EMAILS or ADMIN_GROUPS set, \
             admin rights exist only on Pomerium's /admin route, never in Slack. Nothing was changed; decide on the \
             app's /admin page, or ask for your email in ADMIN_EMAILS or the resource's approvers."
            .to_owned(),
        ServiceError::NoSuchRequest => "This request no longer exists. Nothing was changed.".to_owned(),
        ServiceError::UnknownResource(name) => format!(
            "This request's resource `{name}` is no longer configured. Nothing was changed."
        ),
        ServiceError::Domain(DomainError::Changed { change, .. }) => {
            format!("This request changed: {change}. Nothing was changed.")
        }
        ServiceError::Domain(d) => format!("Nothing was changed: {d}."),
        ServiceError::NotAdmin | ServiceError::Store(_) => {
            "The decision could not be saved, so nothing was changed. Try again in a moment.".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_response_urls_under_the_base_are_called() {
        let base = Url::parse(DEFAULT_RESPONSE_BASE).unwrap();
        assert!(allowed("https://hooks.slack.com/actions/T1/2/abc", &base).is_some());
        for bad in [
            "http://hooks.slack.com/actions/T1/2/abc",
            "https://hooks.slack.com.evil.example/actions",
            "https://evil.example/https://hooks.slack.com/",
            "https://user@hooks.slack.com/actions",
            "https://hooks.slack.com:8443/actions",
            "https://169.254.169.254/latest/meta-data",
            "not a url",
        ] {
            assert!(allowed(bad, &base).is_none(), "{bad}");
        }
        let local = Url::parse("http://127.0.0.1:9999/hooks/").unwrap();
        assert!(allowed("http://127.0.0.1:9999/hooks/x", &local).is_some());
        assert!(allowed("http://127.0.0.1:9999/other/x", &local).is_none());
        assert!(allowed("http://127.0.0.1:9998/hooks/x", &local).is_none());
    }

    #[test]
    fn base_urls_need_https_except_to_loopback() {
        assert!(base_url("X", DEFAULT_API_BASE).is_ok());
        assert!(base_url("X", "http://127.0.0.1:8080/api").is_ok());
        assert!(base_url("X", "http://localhost:8080/").is_ok());
        for bad in [
            "http://slack.com/api",
            "ftp://slack.com/api",
            "https://u:p@slack.com/api",
            "https://slack.com/api?x=1",
            "slack.com",
        ] {
            let e = base_url("SLACK_API_BASE_URL", bad).unwrap_err();
            assert!(e.starts_with("SLACK_API_BASE_URL: "), "{e}");
        }
    }

    fn form(payload: &serde_json::Value) -> Vec<u8> {
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap()
            .into_bytes()
    }

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        h
    }

    fn payload(action_id: &str, value: &str) -> serde_json::Value {
        json!({
            "type": "block_actions",
            "user": { "id": "U012AB3CD", "username": "carol" },
            "team": { "id": "T1" },
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "actions": [{ "action_id": action_id, "value": value, "type": "button" }],
        })
    }

    #[test]
    fn a_click_is_read_from_the_form() {
        let base = Url::parse(DEFAULT_RESPONSE_BASE).unwrap();
        let id = RequestId::new();
        let click = Click::read(
            &form_headers(),
            &form(&payload("jit_reject_extension", &id.to_string())),
            &base,
        )
        .unwrap()
        .unwrap();
        assert_eq!(click.action, Action::RejectExtension);
        assert_eq!(click.request, id);
        assert_eq!(click.user.to_string(), "U012AB3CD");
        // Another button of the message: not ours, nothing to do.
        let other = Click::read(&form_headers(), &form(&payload("open_app", "")), &base).unwrap();
        assert!(other.is_none());
    }

    #[test]
    fn unreadable_clicks_say_what_is_wrong() {
        let base = Url::parse(DEFAULT_RESPONSE_BASE).unwrap();
        let id = RequestId::new().to_string();
        let read = |h: &HeaderMap, body: &[u8]| Click::read(h, body, &base).unwrap_err();
        assert!(matches!(
            read(&HeaderMap::new(), &form(&payload("jit_approve", &id))),
            Unreadable::MediaType
        ));
        let h = form_headers();
        assert!(matches!(
            read(&h, b"payload"),
            Unreadable::Form(_) | Unreadable::Json(_)
        ));
        assert!(matches!(read(&h, b"payload=%7B"), Unreadable::Json(_)));
        let mut p = payload("jit_approve", &id);
        p["type"] = "view_submission".into();
        assert!(matches!(read(&h, &form(&p)), Unreadable::Kind(_)));
        assert!(matches!(
            read(&h, &form(&payload("jit_approve", "42"))),
            Unreadable::RequestId
        ));
        let mut p = payload("jit_approve", &id);
        p["actions"] = json!([]);
        assert!(matches!(read(&h, &form(&p)), Unreadable::NoAction));
        let mut p = payload("jit_approve", &id);
        p["user"]["id"] = "carol@example.com".into();
        assert!(matches!(read(&h, &form(&p)), Unreadable::User(_)));
        let mut p = payload("jit_approve", &id);
        p["response_url"] = "https://evil.example/x".into();
        assert!(matches!(read(&h, &form(&p)), Unreadable::ResponseUrl));
    }

    #[test]
    fn message_text_is_escaped_for_slack() {
        let r = Reply::refused("a <b> & c".into());
        assert_eq!(r.blocks[0]["text"]["text"], "a &lt;b&gt; &amp; c");
        assert_eq!(r.text, "a <b> & c");
    }
}
