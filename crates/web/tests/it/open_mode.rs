//! Open admin mode (no ADMIN_EMAILS, no ADMIN_GROUPS): Pomerium's admin
//! route guards only the `/admin` prefix, so admin power exists only there.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use jit_fakes::pomerium::TestUser;
use jit_service::Admins;

use crate::harness::{App, HOST, Options};

async fn open_app() -> App {
    App::with(Options {
        admins: Admins::default(),
        ..Options::default()
    })
    .await
}

/// Every route outside `/admin` (the ones any signed-in user reaches), as
/// bob, while alice has a pending request and erin has access: nothing
/// about them comes back.
#[tokio::test]
async fn outside_admin_a_user_sees_only_their_own_data() {
    let app = open_app().await;
    let (alice, bob, erin, carol) = (
        TestUser::alice(),
        TestUser::bob(),
        TestUser::new("erin", "erin@example.com"),
        TestUser::admin(),
    );
    app.post("/request-access", &alice, &[("reason", "secret reason")])
        .await;
    app.request(&erin).await;
    let a = app
        .post("/admin/approve-access", &carol, &[("email", &erin.email)])
        .await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "the admin route carries admin rights"
    );
    app.request(&bob).await;

    let mut answers = Vec::new();
    for path in [
        "/",
        "/api/v1/me",
        "/api/v1/requests",
        "/nope",
        "/api/v1/nope",
        "/healthz",
        "/readyz",
        "/assets/app.css",
    ] {
        answers.push((path, app.get(path, Some(&bob)).await));
    }
    for path in ["/request-access", "/cancel-request", "/cancel-request"] {
        answers.push((path, app.post(path, &bob, &[]).await));
    }
    let json = Request::get("/api/v1/requests")
        .header(header::HOST, HOST)
        .header(header::ACCEPT, "application/json")
        .header("x-pomerium-jwt-assertion", app.token(&bob))
        .body(Body::empty())
        .unwrap();
    answers.push(("/api/v1/requests (JSON)", app.send(json).await));
    for (path, a) in &answers {
        for other in ["alice@", "erin@", "carol@", "secret reason"] {
            assert!(!a.body.contains(other), "{path} shows {other}: {}", a.body);
            for (name, value) in &a.headers {
                let value = value.to_str().unwrap_or_default();
                assert!(
                    !value.contains(other),
                    "{path}: header {name} shows {other}"
                );
            }
        }
    }

    let me = app.get("/api/v1/me", Some(&bob)).await.json();
    assert_eq!(
        (me["email"].as_str(), me["admin"].as_bool()),
        (Some("bob@example.com"), Some(false))
    );
    let a = &answers.last().unwrap().1;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let p = a.json();
    assert_eq!(p["type"], "urn:pomerium-jit:problem:admin-route-only");
    assert!(
        p["hint"].as_str().unwrap().contains("/admin/api/v1/")
            && p["detail"].as_str().unwrap().contains("ADMIN_EMAILS"),
        "{p}"
    );
}

#[tokio::test]
async fn under_admin_the_admin_api_answers() {
    let app = open_app().await;
    app.request(&TestUser::alice()).await;
    let a = app
        .get("/admin/api/v1/requests", Some(&TestUser::bob()))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.header("content-type"), "application/json");
    assert_eq!(a.json()["items"][0]["email"], "alice@example.com");
    let a = app.get("/admin/api/v1/nope", Some(&TestUser::bob())).await;
    assert_eq!(a.header("content-type"), "application/problem+json");
}

#[tokio::test]
async fn with_admin_lists_both_api_addresses_check_the_list() {
    let app = App::start().await;
    for path in ["/api/v1/requests", "/admin/api/v1/requests"] {
        let a = app.get(path, Some(&TestUser::admin())).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        let a = app.get(path, Some(&TestUser::bob())).await;
        assert_eq!(
            (a.status, a.json()["type"].as_str()),
            (
                StatusCode::FORBIDDEN,
                Some("urn:pomerium-jit:problem:not-admin")
            ),
            "{path}"
        );
    }
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/me")
        .header(header::HOST, HOST)
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::admin()))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.json()["admin"], true);
}
