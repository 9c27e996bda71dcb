//! `pomerium-jit demo`: the whole product on one machine with nothing to
//! configure. It starts the fake Pomerium Zero (auto-apply on), the fake
//! Pomerium signer and its JWKS endpoint, and the real app talking to both
//! over HTTP exactly as in production; in front of them a small simulated
//! Pomerium on loopback: a sign-in page, a session cookie, a reverse proxy
//! that adds a freshly minted `X-Pomerium-Jwt-Assertion`, an admin-only
//! `/admin` route, and a sample protected app at `/protected/` whose access
//! is decided on every request by evaluating the deployed policy.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::Args;
use jit_domain::{Email, GrantDuration, Resource};
use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_fakes::zero::{FakeZero, FakeZeroConfig};
use jit_identity::{Verifier, VerifierConfig};
use jit_ppl::Policy;
use jit_ppl::eval::{Decision, Subject, evaluate};
use jit_ppl::jit::DecodeOptions;
use jit_service::Admins;
use jit_zero::{ZeroClient, ZeroConfig};
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Port of the simulated Pomerium (where you point the browser).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Loopback address to listen on; anything else is refused.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Keep the demo's SQLite database here instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Length of a grant, short so that expiry can be watched.
    #[arg(long, default_value = "2m")]
    pub grant_duration: GrantDuration,
}

const POLICY_NAME: &str = "jit-example";
const SESSION_COOKIE: &str = "_pomerium_demo";

struct Person {
    key: &'static str,
    name: &'static str,
    email: &'static str,
    admin: bool,
    /// Groups besides `admins`, as the IdP would list them.
    groups: &'static [&'static str],
}

const PEOPLE: [Person; 4] = [
    Person {
        key: "alice",
        name: "Alice",
        email: "alice@example.com",
        admin: false,
        groups: &[],
    },
    Person {
        key: "bob",
        name: "Bob",
        email: "bob@example.com",
        admin: false,
        groups: &["oncall"],
    },
    Person {
        key: "carol",
        name: "Carol",
        email: "carol@example.com",
        admin: true,
        groups: &[],
    },
    // A second admin: Carol's own requests need someone else, and the
    // production database needs two approvals.
    Person {
        key: "dave",
        name: "Dave",
        email: "dave@example.com",
        admin: true,
        groups: &[],
    },
];

/// The demo's resources, read by the same code as a `CONFIG_FILE`. The
/// first is the original's; `{default}` and `{max}` come from
/// `--grant-duration`.
const RESOURCES: &str = r#"
[[resource]]
name = "default"
title = "Protected app"
description = "The sample app at /protected/, through the Pomerium policy jit-example."
policy = { name = "jit-example" }

[resource.durations]
default = "{default}"
max = "{max}"

[[resource]]
name = "prod-db"
title = "Production database"
description = "Read-write access to the production database. Two admins must approve; name the change ticket."
policy = { name = "jit-prod-db" }
approvals_needed = 2
pending_ttl = "1d"
max_extensions = 2

[resource.durations]
default = "30m"
max = "4h"
presets = ["15m", "30m", "1h", "4h"]

[resource.reason]
required = true
min_length = 10
hint = "say what you will change and why"

[resource.ticket]
label = "Change ticket"
required = true
pattern = "CHG-[0-9]+"

[[resource]]
name = "staging"
title = "Staging"
description = "The staging cluster. Choose how long you need; people on call (Bob) are approved at once."
policy = { name = "jit-staging" }
auto_approve = [{ name = "on-call", group = "oncall" }]
max_extensions = 3
self_extension = true

[resource.durations]
default = "1h"
max = "1d"
presets = ["30m", "1h", "4h", "1d"]
requester_chooses = true
"#;

/// The demo's resources, the first lasting `grant` by default.
fn resources(grant: GrantDuration) -> anyhow::Result<Vec<Resource>> {
    let max = grant.max(GrantDuration::ONE_HOUR);
    let text = RESOURCES
        .replace("{default}", &grant.to_string())
        .replace("{max}", &max.to_string());
    crate::resources::parse(&text)
        .map(|file| file.resources)
        .map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect();
            anyhow::anyhow!("the demo's resources: {}", lines.join("; "))
        })
}

pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    if !args.bind.is_loopback() {
        bail!(
            "the demo only listens on loopback addresses (127.0.0.1 or ::1), not {}",
            args.bind
        );
    }
    let proxy_listener = TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .await
        .with_context(|| format!("port {} is taken; choose another with --port", args.port))?;

    let zero = Arc::new(
        FakeZero::start(FakeZeroConfig::default())
            .await
            .context("starting the fake Pomerium Zero")?,
    );
    let signer = Signer::new(Alg::Es256).context("generating the demo signing key")?;
    let jwks = JwksServer::start(signer.clone())
        .await
        .context("starting the JWKS endpoint")?;

    let (data_dir, _temp) = match args.data_dir {
        Some(dir) => (dir, None),
        None => {
            let t = tempfile::tempdir().context("creating a temporary data directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let admins = PEOPLE
        .iter()
        .filter(|p| p.admin)
        .map(|p| Email::parse(p.email))
        .collect::<Result<Vec<_>, _>>()?;
    let mut zero_config = ZeroConfig::new(
        SecretString::from(zero.api_user_token().to_owned()),
        zero.organization_id(),
    );
    zero_config.base_url = zero.base_url().parse().context("fake Zero URL")?;
    let settings = Settings {
        listen: SocketAddr::new(args.bind, 0),
        metrics: None,
        // The assertion's audience is the host the browser uses: loopback.
        verifier: Verifier::new(
            VerifierConfig::new(&jwks.url())?
                .with_audience(host_of(args.bind))
                .with_issuer(host_of(args.bind)),
        )?,
        zero: ZeroClient::new(zero_config)?,
        cluster_id: zero.cluster_id().to_owned(),
        namespace_id: zero.namespace_id().to_owned(),
        database_url: crate::config::default_database_url(&data_dir).into(),
        resources: resources(args.grant_duration)?,
        admins: Admins::new(admins, []),
        sync_interval: Duration::from_secs(5),
        sync_max_age: Duration::from_secs(5),
        ready_sync_grace: Duration::from_secs(120),
        apply_wait: Duration::from_secs(5),
        apply_changesets: false,
        decode: DecodeOptions::default(),
        slack: None,
        // Notifications are off in the demo: there is nobody to tell.
        notifications: None,
    };
    let app_listener = TcpListener::bind(settings.listen).await?;
    let app_addr = app_listener.local_addr()?;
    let app = crate::serve::App::open(settings, true).await?;
    let app = tokio::spawn(app.serve(app_listener, shutdown.child_token()));

    let state = Arc::new(Proxy {
        app: format!("http://{app_addr}"),
        host: host_of(args.bind),
        signer,
        zero: zero.clone(),
        sessions: Mutex::default(),
        http: jit_http::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    });
    let url = format!("http://{}", proxy_listener.local_addr()?);
    println!(
        "\npomerium-jit demo is running: open {url}\n\n\
         Try the whole loop:\n\
         1. Sign in as Alice, open {url}/protected/ (denied), then click \"Request access\".\n\
         2. Sign out, sign in as Carol (the admin), open {url}/admin and approve Alice ({}).\n\
         3. Sign in as Alice again: {url}/protected/ now allows her, until the grant expires.\n\
         4. As Carol, revoke Alice's access, or just wait for it to expire: access ends on time.\n\n\
         Also: the production database needs two admins (Carol and Dave) to approve, a reason and a\n\
         change ticket like CHG-1; Bob is on call, so his staging requests are approved at once.\n\n\
         Data: {}\nStop with Ctrl-C.\n",
        args.grant_duration,
        data_dir.display()
    );
    let router = proxy_router(state);
    jit_web::serve(proxy_listener, router, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    app.await.context("the app task")??;
    drop(jwks);
    Ok(())
}

fn host_of(ip: IpAddr) -> String {
    ip.to_string()
}

struct Proxy {
    app: String,
    host: String,
    signer: Signer,
    zero: Arc<FakeZero>,
    sessions: Mutex<HashMap<String, TestUser>>,
    http: reqwest::Client,
}

type Shared = Arc<Proxy>;

fn proxy_router(state: Shared) -> Router {
    Router::new()
        .route("/.pomerium/sign_in", get(sign_in_page).post(sign_in))
        .route("/.pomerium/sign_out", post(sign_out))
        .route("/protected", get(protected))
        .route("/protected/", get(protected))
        .route("/protected/{*rest}", get(protected))
        .fallback(forward)
        .with_state(state)
}

#[derive(Template)]
#[template(path = "demo_sign_in.html")]
struct SignInPage<'a> {
    who: Option<String>,
    people: &'a [Person],
    redirect: String,
}

#[derive(Template)]
#[template(path = "demo_protected.html")]
struct ProtectedPage {
    who: Option<String>,
    email: String,
    allowed: bool,
    reason: String,
    policy_name: &'static str,
}

#[derive(Template)]
#[template(path = "demo_denied.html")]
struct DeniedPage {
    who: Option<String>,
    message: String,
}

#[derive(Deserialize)]
struct RedirectQuery {
    redirect: Option<String>,
}

/// Only local paths, so the sign-in page cannot bounce users elsewhere.
fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn sign_in_page(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RedirectQuery>,
) -> Response {
    let who = session(&s, &headers).map(|u| u.email);
    page(
        StatusCode::OK,
        SignInPage {
            who,
            people: &PEOPLE,
            redirect: local_path(q.redirect.as_deref()),
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    who: Option<String>,
    email: Option<String>,
    redirect: Option<String>,
}

async fn sign_in(State(s): State<Shared>, Form(f): Form<SignInForm>) -> Response {
    let user = match (f.who.as_deref(), f.email.as_deref()) {
        (Some(key), _) => match PEOPLE.iter().find(|p| p.key == key) {
            Some(p) => {
                let admin = p.admin.then_some("admins");
                TestUser::new(format!("demo-{}", p.key), p.email)
                    .with_name(p.name)
                    .with_groups(admin.into_iter().chain(p.groups.iter().copied()))
            }
            None => {
                return denied(
                    None,
                    "Unknown demo identity.".into(),
                    StatusCode::BAD_REQUEST,
                );
            }
        },
        (None, Some(email)) => match Email::from_input(email) {
            Ok(e) => TestUser::new(format!("demo-{}", e.as_str()), e.as_str()),
            Err(e) => {
                return denied(
                    None,
                    format!("That email cannot be used: {e}."),
                    StatusCode::BAD_REQUEST,
                );
            }
        },
        (None, None) => return denied(None, "Choose an identity.".into(), StatusCode::BAD_REQUEST),
    };
    let id = format!("{:032x}", rand::random::<u128>());
    s.sessions
        .lock()
        .expect("sessions")
        .insert(id.clone(), user);
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
    let mut resp = Redirect::to(&local_path(f.redirect.as_deref())).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie"),
    );
    resp
}

async fn sign_out(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        s.sessions.lock().expect("sessions").remove(&id);
    }
    let mut resp = Redirect::to("/.pomerium/sign_in").into_response();
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).expect("cookie"),
    );
    resp
}

/// The sample app: Pomerium's decision for this request, from the policy
/// Zero has deployed, evaluated now.
async fn protected(State(s): State<Shared>, req: Request) -> Response {
    let Some(user) = session(&s, req.headers()) else {
        return to_sign_in(req.uri().path());
    };
    let ppl = s
        .zero
        .effective_policy_by_name(POLICY_NAME)
        .map(|p| p["ppl"].clone());
    let subject = Subject {
        user: user.id.clone(),
        email: user.email.clone(),
        groups: user.groups.clone(),
        claims: Default::default(),
    };
    let (allowed, reason) = match ppl.as_ref().map(Policy::parse) {
        None => (
            false,
            format!("denied: there is no {POLICY_NAME} policy yet"),
        ),
        Some(Err(e)) => (false, format!("denied: the policy cannot be read: {e}")),
        Some(Ok(policy)) => {
            let e = evaluate(
                &policy,
                &subject,
                OffsetDateTime::now_utc(),
                &DecodeOptions::default(),
            );
            (e.decision == Decision::Allow, e.reason)
        }
    };
    let status = if allowed {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    page(
        status,
        ProtectedPage {
            who: Some(user.email.clone()),
            email: user.email,
            allowed,
            reason,
            policy_name: POLICY_NAME,
        },
    )
}

/// Everything else goes to the app, as Pomerium would send it: with a fresh
/// signed assertion (any client-sent one is dropped), and `/admin` only for
/// admins (the route policy the original's README sets up).
async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let public = path.starts_with("/assets/") || path == "/healthz" || path == "/readyz";
    let user = session(&s, req.headers());
    if user.is_none() && !public {
        return if req.method() == Method::GET {
            to_sign_in(&path)
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        };
    }
    if (path == "/admin" || path.starts_with("/admin/"))
        && !user
            .as_ref()
            .is_some_and(|u| PEOPLE.iter().any(|p| p.admin && p.email == u.email))
    {
        let who = user.map(|u| u.email);
        return denied(
            who,
            "The /admin route's policy allows admins only. Sign in as Carol or Dave to try it."
                .into(),
            StatusCode::FORBIDDEN,
        );
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let target = format!(
        "{}{}",
        s.app,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut out = s.http.request(parts.method.clone(), target);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str())
            && name != "x-pomerium-jwt-assertion"
            && name != header::COOKIE
        {
            out = out.header(name, value);
        }
    }
    // Like Pomerium: the app's own cookies (its flash notices) pass, the session's does not.
    let app_cookies: Vec<&str> = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split_once('=').is_none_or(|(k, _)| k != SESSION_COOKIE))
        .collect();
    if !app_cookies.is_empty() {
        out = out.header(header::COOKIE, app_cookies.join("; "));
    }
    if let Some(u) = &user {
        out = out.header("x-pomerium-jwt-assertion", s.signer.mint(&s.host, u));
    }
    match out.body(body).send().await {
        Ok(resp) => {
            let mut builder = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if !is_hop_by_hop(name.as_str()) {
                    builder = builder.header(name, value);
                }
            }
            let bytes: Bytes = resp.bytes().await.unwrap_or_default();
            builder
                .body(Body::from(bytes))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_owned())
        })
}

fn session(s: &Proxy, headers: &HeaderMap) -> Option<TestUser> {
    let id = session_id(headers)?;
    s.sessions.lock().expect("sessions").get(&id).cloned()
}

fn to_sign_in(path: &str) -> Response {
    let q = serde_urlencoded::to_string([("redirect", path)]).unwrap_or_default();
    Redirect::to(&format!("/.pomerium/sign_in?{q}")).into_response()
}

fn denied(who: Option<String>, message: String, status: StatusCode) -> Response {
    page(status, DeniedPage { who, message })
}

fn page(status: StatusCode, t: impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut resp = (status, Html(html)).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_domain::{Approvers, Person as Requester};

    #[test]
    fn the_demo_resources_read_as_a_config_file() {
        let grant: GrantDuration = "2m".parse().unwrap();
        let rs = resources(grant).unwrap();
        let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["default", "prod-db", "staging"]);

        // The original's resource first, lasting --grant-duration.
        let default = &rs[0];
        assert_eq!(default.policy.name, POLICY_NAME);
        assert_eq!(default.rules.durations.default, grant);
        assert_eq!(default.rules.durations.max, GrantDuration::ONE_HOUR);
        assert!(default.rules.durations.presets.contains(&grant));

        // N of M: two of the admins, and there are two.
        let prod = &rs[1];
        assert_eq!(prod.rules.approvals_needed.get(), 2);
        assert_eq!(prod.approvers, Approvers::Admins);
        assert!(PEOPLE.iter().filter(|p| p.admin).count() >= 2);
        assert!(prod.rules.reason.required);
        assert!(prod.rules.ticket.as_ref().unwrap().required);
        assert!(prod.rules.max_extensions > 0);

        // Staging: Bob, on call, is auto-approved; Alice is not.
        let staging = &rs[2];
        assert!(staging.rules.durations.requester_chooses);
        let no_claims = Default::default();
        let approval = |key: &str| {
            let p = PEOPLE.iter().find(|p| p.key == key).unwrap();
            let groups: Vec<String> = p.groups.iter().map(|g| g.to_string()).collect();
            let requester = Requester {
                email: &Email::parse(p.email).unwrap(),
                groups: &groups,
                claims: &no_claims,
            };
            staging.auto_approval(&requester).map(|r| r.name.clone())
        };
        assert_eq!(approval("bob").as_deref(), Some("on-call"));
        assert!(approval("alice").is_none());

        // Each resource writes its own policy.
        let mut policies: Vec<&str> = rs.iter().map(|r| r.policy.name.as_str()).collect();
        policies.dedup();
        assert_eq!(policies.len(), rs.len());
    }

    #[test]
    fn a_long_grant_duration_raises_the_default_resources_maximum() {
        let rs = resources("3h".parse().unwrap()).unwrap();
        assert_eq!(rs[0].rules.durations.max.to_string(), "3h");
    }
}
