use axum::http::StatusCode;
use jit_fakes::pomerium::TestUser;
use jit_service::Admins;

use crate::harness::{App, Options, email};

#[tokio::test]
async fn the_admin_page_lists_pending_active_and_ended_with_empty_states() {
    let app = App::start().await;
    let admin = TestUser::admin();
    let page = app.get("/admin", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    for empty in [
        "No pending requests.",
        "Nobody has access right now.",
        "Nothing has ended yet.",
    ] {
        assert!(page.body.contains(empty), "{empty}");
    }

    let (alice, bob, erin) = (
        TestUser::alice(),
        TestUser::bob(),
        TestUser::new("erin", "erin@example.com"),
    );
    app.post("/request-access", &alice, &[("reason", "on call")])
        .await;
    app.request(&bob).await;
    app.request(&erin).await;
    app.approve(&bob).await;
    let a = app
        .post("/admin/reject-access", &admin, &[("email", &erin.email)])
        .await;
    assert_eq!(a.location(), "/admin");

    let page = app.follow(&a, &admin).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Rejected the request from erin@example.com.")
    );
    let pending = section(&page.body, "pending-title");
    assert!(pending.contains("alice@example.com") && pending.contains("on call"));
    assert!(
        pending.contains(r#"<option value="1h" selected>1 hour</option>"#),
        "{pending}"
    );
    assert!(
        pending.contains(r#"<option value="1d">1 day</option>"#)
            && !pending.contains(r#"value="2d""#)
    );
    let active = section(&page.body, "active-title");
    assert!(
        active.contains("bob@example.com") && active.contains("in 1 h<"),
        "a fresh hour reads as an hour: {active}"
    );
    assert!(active.contains("you"), "{active}");
    let ended = section(&page.body, "ended-title");
    assert!(
        ended.contains("erin@<wbr>example.<wbr>com") && ended.contains(">Rejected<"),
        "{ended}"
    );
    assert!(page.body.contains("Last synced with Pomerium Zero"));
}

/// The part of the page from the heading whose id starts with `id` (the
/// first resource's, for the per-resource lists) to the next heading.
pub(crate) fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!(r#"id="{id}"#))
        .unwrap_or_else(|| panic!("no {id}"));
    let rest = &page[start..];
    let end = ["<h3", "<h2", "</section>", "<details"]
        .iter()
        .filter_map(|m| rest[1..].find(m))
        .min()
        .unwrap();
    &rest[..=end]
}

#[tokio::test]
async fn approve_with_a_duration_then_revoke() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    let a = app
        .post(
            "/admin/approve-access",
            &admin,
            &[("email", &alice.email), ("duration", "4h")],
        )
        .await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/admin"));
    let page = app.follow(&a, &admin).await;
    assert!(page.body.contains("Approved access for alice@example.com."));
    assert!(section(&page.body, "active-title").contains("in 4 h<"));

    let a = app
        .post("/admin/revoke-access", &admin, &[("email", &alice.email)])
        .await;
    assert_eq!(a.location(), "/admin");
    let status = app
        .service
        .status_of(&email(&alice.email))
        .into_iter()
        .next()
        .unwrap()
        .state
        .status();
    assert_eq!(status, jit_domain::Status::Revoked);

    let a = app
        .post("/admin/revoke-access", &admin, &[("email", &alice.email)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.body
            .contains("There is no pending request or active access for alice@example.com.")
    );
}

#[tokio::test]
async fn non_admins_are_refused_and_nothing_changes() {
    let app = App::start().await;
    let (alice, bob) = (TestUser::alice(), TestUser::bob());
    app.request(&alice).await;
    let page = app.get("/admin", Some(&bob)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("ADMIN_EMAILS"), "says how to become one");
    assert!(
        page.body
            .contains(r#"<a class="button" href="/">Back to your access</a>"#),
        "not back to /admin"
    );
    assert_eq!(
        app.get("/admin/audit", Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/requests", Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );
    for path in [
        "/admin/approve-access",
        "/admin/revoke-access",
        "/admin/reject-access",
    ] {
        let a = app.post(path, &bob, &[("email", &alice.email)]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
    }
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
async fn admins_may_be_named_by_group() {
    let app = App::with(Options {
        admins: Admins::new([], ["security".to_owned()]),
        ..Options::default()
    })
    .await;
    let dana = TestUser::new("dana", "dana@example.com").with_groups(["staff", "security"]);
    assert_eq!(app.get("/admin", Some(&dana)).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/admin", Some(&TestUser::admin())).await.status,
        StatusCode::FORBIDDEN,
        "not in the group"
    );
}

#[tokio::test]
async fn an_admin_cannot_approve_their_own_request() {
    let app = App::start().await;
    let admin = TestUser::admin();
    app.request(&admin).await;
    let page = app.get("/admin", Some(&admin)).await;
    let pending = section(&page.body, "pending-title");
    assert!(
        pending.contains("another approver must approve it")
            && !pending.contains("/admin/approve-access")
    );
    let a = app
        .post("/admin/approve-access", &admin, &[("email", &admin.email)])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("You cannot approve your own request."));
}

#[tokio::test]
async fn bad_forms_are_400_pages_naming_the_field() {
    let app = App::start().await;
    let admin = TestUser::admin();
    app.request(&TestUser::alice()).await;
    for (form, field) in [
        (vec![], "`email`"),
        (vec![("email", "not-an-email")], "`email`"),
        (
            vec![("email", "alice@example.com"), ("duration", "soon")],
            "`duration`",
        ),
        (
            vec![("email", "alice@example.com"), ("duration", "2d")],
            "`duration`",
        ),
    ] {
        let a = app.post("/admin/approve-access", &admin, &form).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(a.body.contains(field), "{form:?}: {}", a.body);
        assert!(a.body.contains(r#"href="/admin""#), "links back");
    }
    let a = app
        .post(
            "/request-access",
            &TestUser::bob(),
            &[("reason", &"x".repeat(501))],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("`reason`") && a.body.contains("longer than 500"));
    let a = app
        .post(
            "/admin/revoke-access",
            &admin,
            &[("email", "a@b.c"), ("email", "d@e.f")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("duplicate field `email`"), "{}", a.body);
}

#[tokio::test]
async fn emails_are_escaped() {
    let app = App::start().await;
    let evil = TestUser::new("evil", "<script>alert(1)</script>@evil.test");
    app.request(&evil).await;
    let page = app.get("/admin", Some(&TestUser::admin())).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>"), "raw script in page");
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;@evil.test")
    );
    let a = app
        .post(
            "/admin/approve-access",
            &TestUser::admin(),
            &[("email", &evil.email)],
        )
        .await;
    let page = app.follow(&a, &TestUser::admin()).await;
    assert!(
        !page.body.contains("<script>")
            && page.body.contains("Approved access for &#60;script&#62;")
    );
    let audit = app.get("/admin/audit", Some(&TestUser::admin())).await;
    assert!(!audit.body.contains("<script>"));
}

#[tokio::test]
async fn the_audit_trail_is_listed_filtered_paged_and_verified() {
    let app = App::start().await;
    let (alice, bob, admin) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    app.post("/request-access", &alice, &[("reason", "ticket 7")])
        .await;
    app.request(&bob).await;
    app.approve(&alice).await;

    let page = app.get("/admin/audit", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Chain intact") && page.body.contains("all 3 events"),
        "{}",
        page.body
    );
    let (approved, requested) = (
        page.body.find(">Approved<").unwrap(),
        page.body.find(">Requested<").unwrap(),
    );
    assert!(approved < requested, "newest first");
    assert!(
        page.body.contains("ticket 7")
            && page
                .body
                .contains(r#"<dt>Duration</dt><dd><span class="reason">1h</span></dd>"#),
        "{}",
        page.body
    );

    let page = app
        .get("/admin/audit?email=bob%40example.com", Some(&admin))
        .await;
    assert!(page.body.contains("bob@example.com") && !page.body.contains("alice@example.com"));
    let page = app.get("/admin/audit?before=2", Some(&admin)).await;
    assert!(
        page.body.contains(r##"data-label="#" class="mono">1<"##)
            && !page.body.contains(">Approved<")
    );
    assert!(page.body.contains(r#"<a href="/admin/audit">← Newest</a>"#));
    let page = app
        .get("/admin/audit?email=carol%40example.com", Some(&admin))
        .await;
    assert!(page.body.contains("No events about carol@example.com."));

    let a = app.get("/admin/audit?before=yesterday", Some(&admin)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("`before`"));
}

#[tokio::test]
async fn a_decision_on_a_request_that_changed_since_the_page_was_shown_is_refused() {
    let (carol, dave) = (TestUser::admin(), TestUser::new("dave", "dave@example.com"));
    let app = App::with(Options {
        admins: Admins::new([email(&carol.email), email(&dave.email)], []),
        ..Options::default()
    })
    .await;
    let alice = TestUser::alice();
    app.request(&alice).await;
    let shown = app
        .service
        .status_of(&email(&alice.email))
        .into_iter()
        .next()
        .unwrap()
        .id
        .to_string();
    let page = app.get("/admin", Some(&carol)).await;
    assert!(
        page.body
            .contains(&format!(r#"name="request" value="{shown}""#))
    );

    // Approved meanwhile by another admin: rejecting what the page showed is refused.
    app.post("/admin/approve-access", &dave, &[("email", &alice.email)])
        .await;
    let form = [("email", alice.email.as_str()), ("request", shown.as_str())];
    let a = app.post("/admin/reject-access", &carol, &form).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(
        a.body
            .contains("was approved meanwhile by dave@example.com"),
        "{}",
        a.body
    );
    let a = app.post("/admin/approve-access", &carol, &form).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let status = |app: &App| {
        app.service
            .status_of(&email(&alice.email))
            .into_iter()
            .next()
            .unwrap()
            .state
            .status()
    };
    assert_eq!(status(&app), jit_domain::Status::Active, "nothing changed");

    // Revoked and requested again: the old page's revoke does not touch the new request.
    let a = app.post("/admin/revoke-access", &carol, &form).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "as shown: {}", a.body);
    app.request(&alice).await;
    let a = app.post("/admin/revoke-access", &carol, &form).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(a.body.contains("a newer one made 20"), "dated: {}", a.body);
    assert!(a.body.contains("(just now) is now pending"), "{}", a.body);
    assert_eq!(status(&app), jit_domain::Status::Pending, "nothing changed");

    // The Go original's email-only forms act on whatever is open.
    let a = app
        .post("/admin/revoke-access", &carol, &[("email", &alice.email)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(status(&app), jit_domain::Status::Rejected);
    let a = app.post("/admin/reject-access", &carol, &form).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "ended: {}", a.body);
    assert!(a.body.contains("is no longer open"), "{}", a.body);
}
