use axum::http::StatusCode;
use jit_fakes::pomerium::TestUser;

use crate::harness::{App, Options, email};

#[tokio::test]
async fn the_index_follows_a_request_through_every_status() {
    let app = App::start().await;
    let alice = TestUser::alice();
    let admin = TestUser::admin();

    let page = app.get("/", Some(&alice)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Signed in as <strong>alice@<wbr>example.<wbr>com</strong>")
    );
    assert!(
        page.body
            .contains("You have no access right now and no pending request.")
    );
    assert!(
        page.body.contains(r#"action="/request-access""#) && page.body.contains(r#"name="reason""#)
    );
    assert!(
        !page.body.contains(r#"href="/admin""#),
        "no admin link for a non-admin"
    );

    let a = app
        .post(
            "/request-access",
            &alice,
            &[("reason", "Deploy hotfix <OPS-42>")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location(), "/");
    let page = app.follow(&a, &alice).await;
    assert!(page.body.contains("Your request was sent."));
    assert!(
        page.body
            .contains("Your request is waiting for an approver.")
    );
    assert!(
        page.body.contains(" UTC (just now)"),
        "absolute and relative time"
    );
    assert!(
        page.body.contains("Deploy hotfix &#60;OPS-42&#62;"),
        "the reason, escaped"
    );
    assert!(page.body.contains("Withdraw request"));

    app.approve(&alice).await;
    let page = app.get("/", Some(&alice)).await;
    assert!(page.body.contains("Access granted"));
    let until = app
        .service
        .status_of(&email(&alice.email))
        .into_iter()
        .next()
        .unwrap()
        .state
        .grant()
        .unwrap()
        .expires_at;
    let at = format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        until.year(),
        until.month() as u8,
        until.day(),
        until.hour(),
        until.minute()
    );
    assert!(
        page.body.contains(&format!(
            "You have access until <strong>{at}</strong> (in 1 h)"
        )),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Approved by</dt>\n    <dd>carol@<wbr>example.<wbr>com")
    );
    assert!(page.body.contains("Give up access"));

    let a = app
        .post("/admin/revoke-access", &admin, &[("email", &alice.email)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let page = app.get("/", Some(&alice)).await;
    assert!(
        page.body
            .contains("Your access was revoked by carol@example.com"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Request again"));

    app.request(&alice).await;
    let a = app.post("/cancel-request", &alice, &[]).await;
    assert_eq!(a.location(), "/");
    let page = app.follow(&a, &alice).await;
    assert!(page.body.contains("Your request was withdrawn."));
    assert!(page.body.contains("You withdrew your request"));
}

#[tokio::test]
async fn giving_up_access_ends_it() {
    let app = App::start().await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    app.approve(&alice).await;
    let a = app.post("/cancel-request", &alice, &[]).await;
    assert_eq!(a.location(), "/");
    let page = app.get("/", Some(&alice)).await;
    assert!(page.body.contains("You gave up your access"));
    let policy = app.zero.policy_by_name("jit-example").unwrap();
    assert!(
        !policy["ppl"].to_string().contains("alice@example.com"),
        "gone from the policy"
    );
}

#[tokio::test]
async fn double_submits_are_answered_kindly() {
    let app = App::start().await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    let a = app.post("/request-access", &alice, &[]).await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/"));
    let page = app.follow(&a, &alice).await;
    assert!(page.body.contains("You already have a pending request"));

    app.approve(&alice).await;
    let a = app.post("/request-access", &alice, &[]).await;
    assert!(
        app.follow(&a, &alice)
            .await
            .body
            .contains("You already have access, so no new request was made.")
    );
    assert!(
        app.service
            .status_of(&email(&alice.email))
            .into_iter()
            .next()
            .unwrap()
            .is_open(),
        "the grant is kept"
    );

    app.post("/cancel-request", &alice, &[]).await;
    let a = app.post("/cancel-request", &alice, &[]).await;
    assert!(
        app.follow(&a, &alice)
            .await
            .body
            .contains("There was no pending request or access left to end.")
    );
}

#[tokio::test]
async fn the_go_originals_empty_post_works_without_a_content_type() {
    let app = App::start().await;
    let request = axum::http::Request::post("/request-access")
        .header("host", crate::harness::HOST)
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::bob()))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn admins_see_a_link_to_the_admin_page() {
    let app = App::start().await;
    let page = app.get("/", Some(&TestUser::admin())).await;
    assert!(
        page.body
            .contains(r#"<a href="/admin">review requests</a>"#)
    );
}

#[tokio::test]
async fn the_demo_banner_is_on_every_page() {
    let app = App::with(Options {
        demo: true,
        ..Options::default()
    })
    .await;
    for (path, user) in [("/", Some(TestUser::alice())), ("/nope", None), ("/", None)] {
        let page = app.get(path, user.as_ref()).await;
        assert!(
            page.body
                .contains("Pomerium and Pomerium Zero are simulated locally"),
            "{path}"
        );
    }
    let app = App::start().await;
    assert!(
        !app.get("/", Some(&TestUser::alice()))
            .await
            .body
            .contains("simulated locally")
    );
}
