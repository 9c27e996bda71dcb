use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jit_fakes::pomerium::{Alg, Signer, TestUser};

use crate::harness::{App, HOST};

#[tokio::test]
async fn no_assertion_is_refused_with_a_reason_and_what_to_do() {
    let app = App::start().await;
    let a = app.get("/", None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.body
            .contains("could not be verified: no identity assertion was sent"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("through its Pomerium address"),
        "says what to do"
    );
    assert_eq!(app.get("/admin", None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/admin/audit", None).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn forged_and_misaddressed_assertions_are_refused_and_never_echoed() {
    let app = App::start().await;
    let forger = Signer::new(Alg::Es256).unwrap();
    for (token, reason) in [
        (
            forger.mint(HOST, &TestUser::admin()),
            "signing key not found",
        ),
        (
            app.signer.mint("other.example.com", &TestUser::alice()),
            "wrong issuer",
        ),
        (app.token(&TestUser::service_account()), "email missing"),
        ("not-a-token".to_owned(), "malformed token"),
    ] {
        let request = Request::get("/admin")
            .header(header::HOST, HOST)
            .header("x-pomerium-jwt-assertion", &token)
            .body(Body::empty())
            .unwrap();
        let a = app.send(request).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{reason}");
        assert!(a.body.contains(reason), "{reason}: {}", a.body);
        assert!(!a.body.contains(&token), "the token is never echoed");
    }
}

#[tokio::test]
async fn two_assertions_are_refused() {
    let app = App::start().await;
    let request = Request::get("/")
        .header(header::HOST, HOST)
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::alice()))
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::bob()))
        .body(Body::empty())
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("more than one identity assertion"));
}

#[tokio::test]
async fn unsigned_claim_headers_do_not_make_an_identity() {
    let app = App::start().await;
    let request = Request::get("/admin")
        .header(header::HOST, HOST)
        .header("x-pomerium-claim-email", "carol@example.com")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn health_and_assets_need_no_assertion() {
    let app = App::start().await;
    let a = app.get("/healthz", None).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));
    let a = app.get("/assets/app.css", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("content-type").starts_with("text/css"));
    assert!(a.header("cache-control").starts_with("public, max-age="));
    assert!(a.body.contains(":focus-visible"));
    assert_eq!(
        app.get("/readyz", None).await.headers["content-type"],
        "application/json"
    );
}

#[tokio::test]
async fn the_assertions_email_is_taken_exactly_never_trimmed() {
    // Pomerium matches `is` exactly: " alice@example.com " is not Alice, and
    // trimming it would show this caller Alice's requests.
    let app = App::start().await;
    let spaced = TestUser::new("u-spaced", " alice@example.com ");
    let a = app.get("/", Some(&spaced)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.body
            .contains("the email in the token is not a valid address"),
        "{}",
        a.body
    );
}
