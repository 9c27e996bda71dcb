use std::process::Command;

use jit_fakes::pomerium::{Alg, Signer, TestUser};

use crate::harness::{Env, rule_for};

#[tokio::test]
async fn only_signed_assertions_get_in() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    assert_eq!(app.get("/", None).await.0, 403);
    let forger = Signer::new(Alg::Es256).unwrap();
    let forged = forger.mint(&env.jwks.host(), &TestUser::admin());
    let (status, page) = app.get("/admin", Some(&forged)).await;
    assert_eq!(status, 403);
    assert!(!page.contains(&forged));
    let other_host = env.signer.mint("other.example.com", &TestUser::admin());
    assert_eq!(
        app.get("/", Some(&other_host)).await.0,
        403,
        "wrong audience"
    );
    assert_eq!(app.get("/healthz", None).await.0, 200);
    assert!(!app.log_text().contains(&forged), "tokens never logged");
}

/// Every line logged while a request is served names it: in the text log
/// (the request's scope, written by the app's format) as in the JSON log
/// (a tracing span), with the id a proxy in front sent.
#[tokio::test]
async fn the_log_names_the_request_of_each_line_in_text_and_json() {
    let env = Env::new().await;
    let client = reqwest::Client::new();
    let token = env.token(&TestUser::alice());
    for format in ["text", "json"] {
        let app = env.spawn(&[("LOG_FORMAT", format)]);
        for (id, token) in [("good-1", token.as_str()), ("forged-2", "not.a.token")] {
            let response = client
                .get(app.url("/requests/7?x=1"))
                .header("X-Pomerium-Jwt-Assertion", token)
                .header("X-Request-Id", id)
                .send()
                .await
                .expect("GET");
            assert_eq!(response.headers()["x-request-id"], id);
        }
        // The access line is written within 10 ms of the answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while app.log_text().matches("served").count() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let log = app.log_text();
        let line = |needle: &str| {
            log.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{format}: no line with {needle:?} in\n{log}"))
                .to_owned()
        };
        match format {
            "text" => {
                let scope = |id| {
                    format!(r#"request{{method="GET" path="/requests/7" request_id="{id}"}}: "#)
                };
                let refused = line("assertion refused");
                assert!(refused.contains(&scope("forged-2")), "{refused}");
                let served = line(r#"request_id="good-1"}: jit_web::layers: served status="#);
                assert!(served.contains(&scope("good-1")), "{served}");
            }
            _ => {
                let refused: serde_json::Value =
                    serde_json::from_str(&line("assertion refused")).unwrap();
                assert_eq!(refused["span"]["request_id"], "forged-2", "{refused}");
                assert_eq!(refused["span"]["path"], "/requests/7", "{refused}");
                let served: serde_json::Value =
                    serde_json::from_str(&line(r#""request_id":"good-1""#)).unwrap();
                assert_eq!(served["message"], "served", "{served}");
                assert_eq!(served["span"]["method"], "GET", "{served}");
            }
        }
    }
}

#[tokio::test]
async fn admin_rights_are_checked_in_the_app() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    let bob = TestUser::bob();
    app.post("/request-access", &env.token(&alice), &[]).await;
    assert_eq!(app.get("/admin", Some(&env.token(&bob))).await.0, 403);
    let before = env.ppl();
    let (status, _) = app
        .post(
            "/admin/approve-access",
            &env.token(&bob),
            &[("email", &alice.email)],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(env.ppl(), before, "nothing changed");
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = env.token(&TestUser::alice());
    let (status, _) = app
        .post_with(
            "/request-access",
            &alice,
            &[],
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post_with(
            "/request-access",
            &alice,
            &[],
            &[("Origin", "https://evil.test")],
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        env.ppl()
            .is_none_or(|p| rule_for(&p, "alice@example.com").is_none()),
        "nothing changed"
    );
}

#[tokio::test]
async fn emails_are_escaped() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let evil = TestUser::new("evil", "<script>alert(1)</script>@evil.test");
    assert_eq!(
        app.post("/request-access", &env.token(&evil), &[]).await.0,
        303
    );
    let (status, page) = app
        .get("/admin", Some(&env.token(&TestUser::admin())))
        .await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("<script>alert(1)</script>"),
        "raw script in page"
    );
    assert!(page.contains("alert(1)"), "shown as text");
}

#[test]
fn missing_settings_exit_2_naming_each_and_the_demo() {
    let out = Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .env_clear()
        .env("PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "API_USER_TOKEN",
        "ORGANIZATION_ID",
        "CLUSTER_ID",
        "JWKS_ENDPOINT",
        "PORT",
        "pomerium-jit demo",
    ] {
        assert!(err.contains(name), "stderr lacks {name}: {err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        5,
        "one line per problem: {err}"
    );
}

/// Open admin mode (no ADMIN_EMAILS, no ADMIN_GROUPS), as the original runs:
/// Pomerium guards only `/admin`, so outside it nobody sees anyone else.
#[tokio::test]
async fn open_admin_mode_shows_nobody_else_outside_admin() {
    let env = Env::new().await;
    let mut cmd = env.command(&[]);
    cmd.env_remove("ADMIN_EMAILS");
    let app = crate::harness::App::start(cmd);
    let (alice, bob, carol) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    app.post(
        "/request-access",
        &env.token(&alice),
        &[("reason", "secret reason")],
    )
    .await;
    let bob_token = env.token(&bob);
    app.post("/request-access", &bob_token, &[]).await;
    for path in ["/", "/api/v1/me", "/api/v1/requests", "/nope"] {
        let (status, body) = app.get(path, Some(&bob_token)).await;
        assert!(
            !body.contains("alice") && !body.contains("secret reason"),
            "{path} ({status}): {body}"
        );
    }
    let (status, body) = app.get("/api/v1/requests", Some(&bob_token)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("/admin/api/v1/"), "{body}");
    let (_, body) = app.get("/api/v1/me", Some(&bob_token)).await;
    assert!(body.contains(r#""admin":false"#), "{body}");

    // Under /admin (Pomerium's admin route) the admin sees everyone.
    let carol_token = env.token(&carol);
    let (status, body) = app.get("/admin/api/v1/requests", Some(&carol_token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("alice@example.com") && body.contains("bob@example.com"));
    let (_, body) = app
        .get(
            "/admin?notice=approved&email=mallory%40evil.example",
            Some(&carol_token),
        )
        .await;
    assert!(!body.contains("mallory"), "a link makes no notice: {body}");
    for path in ["/nope", "/admin/nope", "/api/v1/requests"] {
        assert_eq!(
            app.get(path, None).await.0,
            403,
            "{path} without an assertion"
        );
    }
}

/// What a kept-alive connection costs the app: Pomerium's Envoy keeps its
/// upstream connections open. axum rebuilds a `Router` served as it is for
/// every connection it accepts (each route cloned, its state applied again:
/// 37 KB of heap per connection with this app's routes, never given back);
/// served as one shared service, a connection costs what hyper needs
/// (15-16 KB in a debug build, 55 KB before).
#[tokio::test]
async fn an_open_connection_costs_kilobytes_not_a_copy_of_the_router() {
    use std::io::{Read, Write};
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let addr = app.base.trim_start_matches("http://").to_owned();
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // Warm up: the first requests allocate what every later one reuses.
    let _ = app.get("/healthz", None).await;
    let before = rss();
    const CONNECTIONS: u64 = 400;
    let open: Vec<std::net::TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: app\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    for mut c in &open {
        let mut answer = [0u8; 512];
        let n = c.read(&mut answer).unwrap();
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            &answer[..n]
        );
    }
    let per_connection = rss().saturating_sub(before) / CONNECTIONS;
    assert!(
        per_connection < 30,
        "{per_connection} KB of RSS per open connection"
    );
    drop(open);
}
