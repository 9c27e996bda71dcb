use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jit_fakes::pomerium::TestUser;

use crate::harness::{App, HOST, Options};

#[tokio::test]
async fn errors_are_problem_json_for_json_clients() {
    let app = App::start().await;
    let request = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.header("content-type"), "application/problem+json");
    let p = a.json();
    assert_eq!(p["type"], "urn:pomerium-jit:problem:unverified");
    assert_eq!(p["title"], "Sign-in not verified");
    assert_eq!(p["status"], 403);
    assert_eq!(
        p["detail"],
        "Your Pomerium sign-in could not be verified: no identity assertion was sent."
    );

    let a = app.get("/api/v1/nope", Some(&TestUser::alice())).await;
    assert_eq!(
        (a.status, a.json()["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let a = app.get("/api/v1/requests", Some(&TestUser::bob())).await;
    assert_eq!(a.json()["type"], "urn:pomerium-jit:problem:not-admin");

    let mut request = Request::post("/admin/approve-access")
        .header(header::HOST, HOST)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::admin()))
        .body(Body::from("email=nobody%40example.com"))
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["type"], "urn:pomerium-jit:problem:no-open-request");
    request = Request::post("/request-access")
        .header(header::HOST, HOST)
        .header(header::ACCEPT, "application/json")
        .header("sec-fetch-site", "cross-site")
        .header("x-pomerium-jwt-assertion", app.token(&TestUser::alice()))
        .body(Body::empty())
        .unwrap();
    let a = app.send(request).await;
    assert_eq!(
        (a.status, a.json()["type"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("urn:pomerium-jit:problem:cross-site")
        )
    );
}

#[tokio::test]
async fn me_and_requests() {
    let app = App::start().await;
    let alice = TestUser::alice();
    let me = app.get("/api/v1/me", Some(&alice)).await.json();
    assert_eq!(
        (
            me["email"].as_str(),
            me["admin"].as_bool(),
            me["has_access"].as_bool()
        ),
        (Some("alice@example.com"), Some(false), Some(false))
    );
    assert!(me["request"].is_null());
    app.post("/request-access", &alice, &[("reason", "why not")])
        .await;
    app.approve(&alice).await;
    let me = app.get("/api/v1/me", Some(&alice)).await.json();
    assert_eq!(me["has_access"], true);
    assert_eq!(me["request"]["status"], "active");
    assert_eq!(me["request"]["approved_by"], "user:carol@example.com");
    assert_eq!(me["request"]["reason"], "why not");

    let a = app.get("/api/v1/requests", Some(&TestUser::admin())).await;
    assert_eq!(a.status, StatusCode::OK);
    let all = a.json();
    assert_eq!(all["items"][0]["email"], "alice@example.com");
    assert_eq!(all["items"][0]["status"], "active");
    assert_eq!(all["next"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_refused_api_token_shows_on_admin_and_readyz() {
    let app = App::start().await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    // Right away: the store's record is written before the reconciler's memory.
    let a = app.get("/readyz", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["store"], "ok");
    assert_eq!(a.json()["sync"]["ok"], true);

    app.zero.revoke_api_token();
    app.zero.revoke_id_tokens();
    // The page never waits on Zero; "Sync now" does, and says it failed.
    let synced = app.post("/admin/sync-now", &TestUser::admin(), &[]).await;
    assert_eq!(
        synced.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        synced.body
    );
    assert!(synced.body.contains("Sync failed"), "{}", synced.body);
    assert!(synced.body.contains("zero_refused"), "{}", synced.body);
    let page = app.get("/admin", Some(&TestUser::admin())).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "monitors see it"
    );
    assert!(
        page.body
            .contains("Pomerium Zero is out of reach (zero_refused)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("API_USER_TOKEN"));
    assert!(
        page.body.contains("alice@example.com"),
        "the store's view is still shown"
    );

    let a = app.get("/readyz", None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = a.json();
    assert_eq!(r["store"], "ok");
    assert_eq!(r["sync"]["ok"], false);
    assert_eq!(r["sync"]["failure"], "zero_refused");
    assert!(r["sync"]["last_success_at"].is_string());
    assert!(
        !a.body.contains("alice") && !a.body.contains(app.zero.api_user_token()),
        "readyz reveals nothing"
    );
    assert_eq!(
        app.get("/api/v1/requests", Some(&TestUser::admin()))
            .await
            .status,
        StatusCode::OK,
        "the API lists the store, as the page does; /readyz tells monitors"
    );
}

#[tokio::test]
async fn a_decision_saved_while_zero_is_down_says_so() {
    let app = App::with(Options {
        apply_wait: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    app.zero
        .fail_next(1_000_000, StatusCode::SERVICE_UNAVAILABLE);
    let a = app
        .post(
            "/admin/approve-access",
            &TestUser::admin(),
            &[("email", &alice.email)],
        )
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("Your decision is SAVED."), "{}", a.body);
    assert!(a.body.contains(r#"href="/admin""#), "links back");
    let status = app
        .service
        .status_of(&crate::harness::email(&alice.email))
        .into_iter()
        .next()
        .unwrap()
        .state
        .status();
    assert_eq!(status, jit_domain::Status::Active, "durable");
}

/// With several resources, readiness names each policy's sync and is ready
/// only when every one of them is.
#[tokio::test]
async fn readyz_covers_every_resources_policy() {
    use crate::harness::resource;
    let app = App::with(Options {
        resources: vec![
            resource("alpha", "Alpha", None, Default::default()),
            resource("beta", "Beta", None, Default::default()),
        ],
        apply_wait: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // Two `jit-beta` policies made in the console: beta's reconciler refuses
    // to guess which one to write; alpha's goes on.
    let twin = app
        .zero
        .insert_policy(serde_json::json!({ "name": "jit-beta" }))
        .unwrap();
    app.zero
        .insert_policy(serde_json::json!({ "name": "jit-beta" }))
        .unwrap();
    let alice = TestUser::alice();
    let a = app
        .post("/request-access", &alice, &[("resource", "alpha")])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = app
        .post("/request-access", &alice, &[("resource", "beta")])
        .await;
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "saved, not applied: {}",
        a.body
    );

    let a = app.get("/readyz", None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    let r = a.json();
    assert_eq!(r["resources"]["alpha"]["ok"], true, "{r}");
    assert_eq!(r["resources"]["beta"]["ok"], false, "{r}");
    assert_eq!(
        r["resources"]["beta"]["failure"], "zero_inconsistent",
        "{r}"
    );
    assert_eq!(r["sync"]["ok"], false, "one failing policy is enough");

    // One twin removed: beta's retries converge and the service is ready.
    assert!(app.zero.remove_policy(&twin));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = app.get("/readyz", None).await;
        if a.status == StatusCode::OK {
            assert_eq!(a.json()["resources"]["beta"]["ok"], true);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready: {}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A short Zero outage does not take the service out of rotation: readiness
/// fails only once syncs have failed for longer than the grace.
#[tokio::test]
async fn readyz_tolerates_failing_syncs_for_the_grace() {
    let grace = Duration::from_secs(2);
    let app = App::with(Options {
        ready_sync_grace: grace,
        sync_interval: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    let synced_at = tokio::time::Instant::now();
    app.zero.revoke_api_token();
    app.zero.revoke_id_tokens();
    let failed = app.post("/admin/sync-now", &TestUser::admin(), &[]).await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.body
    );

    let a = app.get("/readyz", None).await;
    assert!(
        synced_at.elapsed() < grace,
        "the test ran too slowly to check the grace"
    );
    assert_eq!(a.status, StatusCode::OK, "within the grace: {}", a.body);
    assert_eq!(a.json()["sync"]["ok"], false, "still says the sync fails");

    tokio::time::sleep_until(synced_at + grace + Duration::from_millis(200)).await;
    let a = app.get("/readyz", None).await;
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "past the grace: {}",
        a.body
    );
}
