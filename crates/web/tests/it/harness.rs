//! A real app in-process: SQLite in a temporary directory, the fake Pomerium
//! Zero behind the real client, the reconciler running, the real verifier
//! against the fake signer's JWKS, and the router driven with `oneshot`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use jit_domain::{Approvers, Email, Resource, ResourceName, Rules};
use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_fakes::zero::{FakeZero, FakeZeroConfig};
use jit_identity::{Verifier, VerifierConfig};
use jit_reconcile::Reconciler;
use jit_service::{Admins, Desk, Service, Settings};
use jit_store::Store;
use jit_web::{WebConfig, router};
use jit_zero::{ZeroClient, ZeroConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The host users reach the app on; the assertion's `aud` and `iss`.
pub const HOST: &str = "jit.example.com";

pub struct Options {
    pub admins: Admins,
    pub apply_wait: Duration,
    pub demo: bool,
    /// The rules of the original's one resource, when `resources` is empty.
    pub rules: Rules,
    /// The catalog, in order; empty: the original's one resource.
    pub resources: Vec<Resource>,
    /// The reconcilers' periodic interval.
    pub sync_interval: Duration,
    /// How stale a sync may be before an admin page load refreshes it.
    pub sync_max_age: Duration,
    /// How long syncs may fail before `/readyz` does.
    pub ready_sync_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            admins: Admins::new([email(&TestUser::admin().email)], []),
            apply_wait: Duration::from_secs(5),
            demo: false,
            rules: Rules::default(),
            resources: Vec::new(),
            sync_interval: Duration::from_secs(1),
            sync_max_age: Settings::default().sync_max_age,
            ready_sync_grace: Duration::ZERO,
        }
    }
}

/// A resource named `name` (its policy `jit-<name>`) with `rules`,
/// approved by `approvers` (`None`: the admins).
pub fn resource(name: &str, title: &str, approvers: Option<&[&str]>, rules: Rules) -> Resource {
    let name = ResourceName::parse(name).unwrap();
    let mut r = Resource::original(
        format!("jit-{name}"),
        Rules {
            resource: name.clone(),
            ..rules
        },
    );
    r.name = name;
    r.title = title.to_owned();
    r.description = format!("The {title}, for tests.");
    if let Some(emails) = approvers {
        r.approvers = Approvers::Listed {
            emails: emails.iter().map(|e| email(e)).collect(),
            groups: Default::default(),
        };
    }
    r
}

/// The app as `router` builds it, boxed so that it can be named.
pub type Router = tower::util::BoxCloneSyncService<
    Request<Body>,
    axum::response::Response,
    std::convert::Infallible,
>;

pub struct App {
    pub router: Router,
    pub service: Service,
    pub zero: FakeZero,
    pub signer: Signer,
    _jwks: JwksServer,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
}

pub fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// What came back.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The `name=value` of the cookie set by this answer, as a browser sends it back.
    pub fn cookie(&self) -> &str {
        self.header("set-cookie")
            .split(';')
            .next()
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl App {
    pub async fn start() -> App {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> App {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("jit.db").display()))
            .await
            .unwrap();
        let zero = FakeZero::start(FakeZeroConfig::default()).await.unwrap();
        let mut zero_config = ZeroConfig::new(
            SecretString::from(zero.api_user_token().to_owned()),
            zero.organization_id(),
        );
        zero_config.base_url = zero.base_url().parse().unwrap();
        zero_config.retry.base_delay = Duration::from_millis(20);
        let client = ZeroClient::new(zero_config).unwrap();
        let resources = if options.resources.is_empty() {
            vec![Resource::original("jit-example", options.rules)]
        } else {
            options.resources
        };
        let desks: Vec<Desk> = resources
            .into_iter()
            .map(|resource| {
                let mut rc = jit_reconcile::Config::new(&resource.policy.name, zero.cluster_id());
                rc.namespace_id = zero.namespace_id().to_owned();
                rc.interval = options.sync_interval;
                let reconciler =
                    Reconciler::new(rc, store.clone(), client.clone(), resource.rules.clone());
                Desk {
                    resource,
                    reconciler,
                }
            })
            .collect();
        let reconcilers: Vec<Reconciler> = desks.iter().map(|d| d.reconciler.clone()).collect();
        let settings = Settings {
            admins: options.admins,
            apply_wait: options.apply_wait,
            sync_max_age: options.sync_max_age,
            ready_sync_grace: options.ready_sync_grace,
            ..Default::default()
        };
        let service = Service::new(store, desks, settings).await.unwrap();
        let shutdown = CancellationToken::new();
        for reconciler in reconcilers {
            tokio::spawn(reconciler.run(shutdown.child_token()));
        }

        let signer = Signer::new(Alg::Es256).unwrap();
        let jwks = JwksServer::start(signer.clone()).await.unwrap();
        let verifier = Verifier::new(
            VerifierConfig::new(&jwks.url())
                .unwrap()
                .with_audience(HOST)
                .with_issuer(HOST),
        )
        .unwrap();
        let router = Router::new(router(WebConfig {
            verifier,
            service: service.clone(),
            demo: options.demo,
            slack: None,
            metrics: false,
        }));
        App {
            router,
            service,
            zero,
            signer,
            _jwks: jwks,
            shutdown,
            dir,
        }
    }

    /// The app's database as another replica sees it.
    pub async fn other_replica(&self) -> Store {
        Store::connect(&format!(
            "sqlite://{}",
            self.dir.path().join("jit.db").display()
        ))
        .await
        .unwrap()
    }

    pub fn token(&self, user: &TestUser) -> String {
        self.signer.mint(HOST, user)
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A page as a browser loads it.
    pub async fn get(&self, path: &str, user: Option<&TestUser>) -> Answer {
        let mut b = Request::get(path)
            .header(header::HOST, HOST)
            .header(header::ACCEPT, "text/html,*/*;q=0.8");
        if let Some(u) = user {
            b = b.header("x-pomerium-jwt-assertion", self.token(u));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    /// Follows a POST's redirect as a browser does, sending back its cookie.
    pub async fn follow(&self, answer: &Answer, user: &TestUser) -> Answer {
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let request = Request::get(answer.location())
            .header(header::HOST, HOST)
            .header(header::ACCEPT, "text/html,*/*;q=0.8")
            .header(header::COOKIE, answer.cookie())
            .header("x-pomerium-jwt-assertion", self.token(user));
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// A form POST as the app's own pages send it from a modern browser.
    pub async fn post(&self, path: &str, user: &TestUser, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, user, form, &[("sec-fetch-site", "same-origin")])
            .await
    }

    /// A form POST as a browser sends it from the app's pages: it reads HTML.
    pub async fn browser_post(&self, path: &str, user: &TestUser, form: &[(&str, &str)]) -> Answer {
        let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        self.post_with(
            path,
            user,
            form,
            &[("sec-fetch-site", "same-origin"), ("accept", accept)],
        )
        .await
    }

    pub async fn post_with(
        &self,
        path: &str,
        user: &TestUser,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-pomerium-jwt-assertion", self.token(user));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// Requests access as `user` and checks the 303.
    pub async fn request(&self, user: &TestUser) {
        let a = self.post("/request-access", user, &[]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }

    /// Approves `user` as the admin and checks the 303.
    pub async fn approve(&self, user: &TestUser) {
        let a = self
            .post(
                "/admin/approve-access",
                &TestUser::admin(),
                &[("email", &user.email)],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
