use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jit_fakes::pomerium::TestUser;

use crate::harness::{Answer, App, HOST, email};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

#[tokio::test]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let app = App::start().await;
    let alice = TestUser::alice();
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.test")],
        vec![("origin", "null")],
    ] {
        let a = app
            .post_with("/request-access", &alice, &[], &headers)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            a.body.contains("Cross-site request refused"),
            "{headers:?}: {}",
            a.body
        );
        assert!(
            app.service.status_of(&email(&alice.email)).is_empty(),
            "nothing changed"
        );
    }
    let admin = TestUser::admin();
    app.request(&alice).await;
    let a = app
        .post_with(
            "/admin/approve-access",
            &admin,
            &[("email", &alice.email)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.service
            .status_of(&email(&alice.email))
            .into_iter()
            .next()
            .unwrap()
            .state
            .status(),
        jit_domain::Status::Pending
    );
}

#[tokio::test]
async fn same_origin_and_non_browser_posts_work() {
    let app = App::start().await;
    let users: Vec<TestUser> = (0..3)
        .map(|i| TestUser::new(format!("u{i}"), format!("u{i}@example.com")))
        .collect();
    let cases: [&[(&str, &str)]; 3] = [
        &[("sec-fetch-site", "same-origin")],
        &[("origin", "https://jit.example.com")],
        &[],
    ];
    for (user, headers) in users.iter().zip(cases) {
        let a = app.post_with("/request-access", user, &[], headers).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{headers:?}: {}", a.body);
    }
}

fn assert_security_headers(a: &Answer, what: &str) {
    assert_eq!(a.header("content-security-policy"), CSP, "{what}");
    assert_eq!(a.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(a.header("referrer-policy"), "same-origin", "{what}");
    assert_eq!(a.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(
        a.header("strict-transport-security"),
        "max-age=31536000",
        "{what}"
    );
    assert!(!a.header("x-request-id").is_empty(), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = App::start().await;
    let alice = TestUser::alice();
    let answers = [
        ("index", app.get("/", Some(&alice)).await),
        ("403", app.get("/", None).await),
        ("unknown", app.get("/nope", None).await),
        ("healthz", app.get("/healthz", None).await),
        ("readyz", app.get("/readyz", None).await),
        ("css", app.get("/assets/app.css", None).await),
        ("303", app.post("/request-access", &alice, &[]).await),
        (
            "csrf",
            app.post_with(
                "/cancel-request",
                &alice,
                &[],
                &[("sec-fetch-site", "cross-site")],
            )
            .await,
        ),
    ];
    for (what, a) in &answers {
        assert_security_headers(a, what);
        if *what == "css" {
            assert_eq!(
                a.header("cache-control"),
                "public, max-age=31536000, immutable"
            );
        } else {
            assert_eq!(a.header("cache-control"), "no-store", "{what}");
        }
    }
    let index = &answers[0].1;
    assert!(
        !index.body.contains("<script")
            && !index.body.contains("style=")
            && !index.body.contains("<style")
    );
    assert!(index.body.contains(r#"<html lang="en">"#));
    assert!(
        !index.body.contains("http://") && !index.body.contains("https://"),
        "nothing loaded from elsewhere"
    );
}

#[tokio::test]
async fn an_incoming_request_id_is_kept_and_shown_on_error_pages() {
    let app = App::start().await;
    let request = Request::get("/")
        .header(header::HOST, HOST)
        .header("x-request-id", "req-123")
        .body(Body::empty())
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(a.header("x-request-id"), "req-123");
    assert!(a.body.contains("<code>req-123</code>"));
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_big_bodies_get_pages() {
    let app = App::start().await;
    let alice = TestUser::alice();
    let a = app.get("/no/such/page", Some(&alice)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("Page not found") && a.header("content-type").starts_with("text/html"));
    let a = app.get("/request-access", Some(&alice)).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.body.contains("does not accept that kind of request"));
    let a = app
        .post(
            "/request-access",
            &alice,
            &[("reason", &"x".repeat(20_000))],
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.body.contains("16 KiB"), "{}", a.body);
    assert!(app.service.status_of(&email(&alice.email)).is_empty());
    // A stranger is refused as a stranger, whatever the body's size, even
    // when its length is announced up front.
    let body = format!("reason={}", "x".repeat(20_000));
    let stranger = Request::post("/request-access")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, body.len())
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.send(stranger).await.status, StatusCode::FORBIDDEN);
    let a = app.get("/assets/nope.js", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_revalidate_with_their_etag() {
    let app = App::start().await;
    let a = app.get("/assets/app.css", None).await;
    let etag = a.header("etag").to_owned();
    assert!(etag.starts_with('"'));
    let request = Request::get("/assets/app.css")
        .header("if-none-match", &etag)
        .body(Body::empty())
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());
    let page = app.get("/", Some(&TestUser::alice())).await;
    assert!(
        page.body
            .contains(&format!("/assets/app.css?v={}", etag.trim_matches('"'))),
        "the page links this version"
    );
}

#[tokio::test]
async fn without_an_assertion_only_health_checks_and_assets_answer() {
    let app = App::start().await;
    for path in [
        "/",
        "/nope",
        "/admin",
        "/admin/nope",
        "/admin/api/v1/requests",
        "/api/v1/nope",
        "/request-access",
    ] {
        let a = app.get(path, None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            a.body.contains("Sign-in not verified"),
            "{path}: {}",
            a.body
        );
    }
    let request = Request::put("/no/such/route")
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
    for (path, status) in [
        ("/healthz", StatusCode::OK),
        ("/assets/app.css", StatusCode::OK),
        ("/assets/nope.js", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(app.get(path, None).await.status, status, "{path}");
    }
    assert_ne!(app.get("/readyz", None).await.status, StatusCode::FORBIDDEN);
    let a = app.get("/nope", Some(&TestUser::alice())).await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "signed in, unknown paths are 404"
    );
}

#[tokio::test]
async fn a_link_cannot_make_a_page_announce_anything() {
    let app = App::start().await;
    let admin = TestUser::admin();
    for path in [
        "/admin?notice=approved&email=mallory%40evil.example",
        "/?notice=gave_up",
    ] {
        let a = app.get(path, Some(&admin)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(
            !a.body.contains("mallory") && !a.body.contains(r#"role="status""#),
            "{path}: {}",
            a.body
        );
    }
    let forged = Request::get("/admin")
        .header(header::HOST, HOST)
        .header(
            header::COOKIE,
            "jit_flash=4102444800.approved.bWFsbG9yeUBldmlsLmV4YW1wbGU.AAAA",
        )
        .header("x-pomerium-jwt-assertion", app.token(&admin))
        .body(Body::empty())
        .unwrap();
    let a = app.send(forged).await;
    assert!(!a.body.contains("mallory") && !a.body.contains(r#"role="status""#));
    assert!(a.header("set-cookie").contains("Max-Age=0"), "cleared");

    // The real thing: shown once, then cleared.
    let alice = TestUser::alice();
    app.request(&alice).await;
    let a = app
        .post("/admin/approve-access", &admin, &[("email", &alice.email)])
        .await;
    assert_eq!(a.location(), "/admin");
    let flash = a.header("set-cookie");
    assert!(
        flash.starts_with("jit_flash=")
            && flash.ends_with("; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"),
        "{flash}"
    );
    let page = app.follow(&a, &admin).await;
    assert!(page.body.contains("Approved access for alice@example.com."));
    assert_eq!(
        page.header("set-cookie"),
        "jit_flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    );
}
