//! The catalog, requests and approvals across several resources with their
//! own rules: N-of-M approvals, comments, grants on behalf, confirmations,
//! bulk revocation, extensions and scheduled starts.

use std::num::NonZeroU8;

use axum::http::StatusCode;
use jit_domain::{Request, Rules, Status, TicketRule};
use jit_fakes::pomerium::TestUser;
use jit_service::Admins;
use time::OffsetDateTime;

use crate::harness::{App, Options, email, resource};

fn dave() -> TestUser {
    TestUser::new("user-dave", "dave@example.com")
}

fn erin() -> TestUser {
    TestUser::new("user-erin", "erin@example.com")
}

/// `app`: the original's rules with one extension, approved by the admins
/// (carol). `db`: two approvals from carol, dave or bob, a required reason
/// of at least 5 characters, a duration the requester picks, an incident
/// field. `ops`: dave alone approves; holders extend it themselves, twice.
async fn catalog() -> App {
    let app_rules = Rules {
        max_extensions: 1,
        ..Rules::default()
    };
    let mut db = Rules {
        approvals_needed: NonZeroU8::new(2).unwrap(),
        ticket: Some(TicketRule {
            label: "Incident".into(),
            required: false,
            pattern: None,
        }),
        ..Rules::default()
    };
    db.durations.requester_chooses = true;
    db.reason.required = true;
    db.reason.min_chars = 5;
    App::with(Options {
        admins: Admins::new([email("carol@example.com")], []),
        resources: vec![
            resource("app", "Protected app", None, app_rules),
            resource(
                "db",
                "Database",
                Some(&["carol@example.com", "dave@example.com", "bob@example.com"]),
                db,
            ),
            resource(
                "ops",
                "Ops console",
                Some(&["dave@example.com"]),
                Rules {
                    max_extensions: 2,
                    self_extension: true,
                    ..Rules::default()
                },
            ),
        ],
        ..Options::default()
    })
    .await
}

fn on(app: &App, user: &TestUser, resource: &str) -> Option<Request> {
    app.service
        .status_of(&email(&user.email))
        .into_iter()
        .find(|r| r.resource.as_str() == resource)
        .map(|r| Request::clone(&r))
}

fn status(app: &App, user: &TestUser, resource: &str) -> Option<Status> {
    on(app, user, resource).map(|r| r.state.status())
}

/// The card of one resource on the index page.
fn card<'a>(page: &'a str, resource: &str) -> &'a str {
    let start = page
        .find(&format!(r#"id="r-{resource}""#))
        .unwrap_or_else(|| panic!("no card for {resource}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap()]
}

/// A grant's length in minutes, to the nearest (times are stored to the
/// millisecond).
fn lasts(r: &Request) -> i64 {
    let g = r.state.grant().unwrap();
    ((g.expires_at - g.approved_at).whole_seconds() + 30) / 60
}

async fn ask_db(app: &App, user: &TestUser) {
    let a = app
        .post(
            "/request-access",
            user,
            &[
                ("resource", "db"),
                ("reason", "migrate the schema"),
                ("duration", "2h"),
                ("ticket", "INC-7"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
}

async fn ok(app: &App, path: &str, user: &TestUser, form: &[(&str, &str)]) -> String {
    let a = app.post(path, user, form).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}: {}", a.body);
    app.follow(&a, user).await.body
}

#[tokio::test]
async fn the_catalog_shows_each_resource_and_a_person_holds_two_open_requests() {
    let app = catalog().await;
    let alice = TestUser::alice();
    let page = app.get("/", Some(&alice)).await;
    for (name, title) in [
        ("app", "Protected app"),
        ("db", "Database"),
        ("ops", "Ops console"),
    ] {
        let c = card(&page.body, name);
        assert!(c.contains(title) && c.contains("No access"), "{c}");
        assert!(
            c.contains(&format!(r#"name="resource" value="{name}""#)),
            "{c}"
        );
        assert!(c.contains(r#"type="datetime-local""#) && c.contains("read as UTC"));
    }
    let db = card(&page.body, "db");
    assert!(
        db.contains("Incident") && db.contains(r#"name="ticket""#),
        "{db}"
    );
    assert!(db.contains(r#"name="duration""#) && db.contains("At least 5 characters"));
    assert!(db.contains(" required"), "the reason is required: {db}");
    let plain = card(&page.body, "app");
    assert!(!plain.contains(r#"name="ticket""#) && !plain.contains(r#"name="duration""#));

    app.post(
        "/request-access",
        &alice,
        &[("resource", "app"), ("reason", "deploy")],
    )
    .await;
    ask_db(&app, &alice).await;
    assert_eq!(status(&app, &alice, "app"), Some(Status::Pending));
    assert_eq!(status(&app, &alice, "db"), Some(Status::Pending));
    let page = app.get("/", Some(&alice)).await;
    let db = card(&page.body, "db");
    assert!(db.contains("Pending") && db.contains("0 of 2"), "{db}");
    assert!(db.contains("INC-7") && db.contains("2 hours"), "{db}");
    assert!(card(&page.body, "app").contains("Pending"));
    assert!(card(&page.body, "ops").contains("No access"));

    let me = app.get("/api/v1/me", Some(&alice)).await.json();
    let requests = me["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["resource"], "db");
    assert_eq!(requests[1]["ask"]["duration"], "2h");
    assert_eq!(requests[1]["ask"]["ticket"], "INC-7");
    assert_eq!(
        me["request"]["resource"], "app",
        "the original's field: the first resource"
    );

    // Withdrawing one leaves the other.
    ok(&app, "/cancel-request", &alice, &[("resource", "db")]).await;
    assert_eq!(status(&app, &alice, "db"), Some(Status::Cancelled));
    assert_eq!(status(&app, &alice, "app"), Some(Status::Pending));
}

#[tokio::test]
async fn two_distinct_approvers_are_needed_and_the_requester_is_not_one() {
    let app = catalog().await;
    let (alice, carol, bob) = (TestUser::alice(), TestUser::admin(), TestUser::bob());
    ask_db(&app, &alice).await;
    let id = on(&app, &alice, "db").unwrap().id.to_string();
    let form = [
        ("resource", "db"),
        ("email", "alice@example.com"),
        ("request", id.as_str()),
    ];
    let page = ok(&app, "/admin/approve-access", &carol, &form).await;
    assert!(
        page.contains(
            "Approval recorded for alice@example.com: 1 of 2. One more approver must approve it."
        ),
        "{page}"
    );
    assert!(page.contains("1 of 2: you"), "{page}");
    assert!(page.contains("You approved it; another approver must approve it too."));
    assert_eq!(status(&app, &alice, "db"), Some(Status::Pending));

    let json = app
        .get("/admin/api/v1/requests?status=pending", Some(&carol))
        .await
        .json();
    let pending = &json["items"][0];
    assert_eq!(
        (
            &pending["resource"],
            &pending["approvals"][0]["by"],
            &pending["ask"]["ticket"]
        ),
        (&"db".into(), &"carol@example.com".into(), &"INC-7".into())
    );

    let twice = app.post("/admin/approve-access", &carol, &form).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(status(&app, &alice, "db"), Some(Status::Pending));

    // Bob approves db requests, but not his own.
    ask_db(&app, &bob).await;
    let own = app
        .post(
            "/admin/approve-access",
            &bob,
            &[("resource", "db"), ("email", "bob@example.com")],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    let admin_page = app.get("/admin", Some(&bob)).await;
    assert!(
        admin_page
            .body
            .contains("Your own request: another approver must approve it.")
    );

    let page = ok(&app, "/admin/approve-access", &bob, &form).await;
    assert!(
        page.contains("Approved access for alice@example.com."),
        "{page}"
    );
    let granted = on(&app, &alice, "db").unwrap();
    assert_eq!(lasts(&granted), 120, "the requested duration");
    let index = app.get("/", Some(&alice)).await;
    assert!(card(&index.body, "db").contains("Access granted"));
}

#[tokio::test]
async fn a_rejection_comment_reaches_the_requester_and_the_request_page() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.post(
        "/request-access",
        &alice,
        &[("resource", "app"), ("reason", "x".repeat(300).as_str())],
    )
    .await;
    let id = on(&app, &alice, "app").unwrap().id;
    let admin = app.get("/admin", Some(&carol)).await;
    assert!(
        admin
            .body
            .contains(&format!(r#"href="/admin/requests/{id}""#)),
        "the row links to the full request"
    );
    ok(
        &app,
        "/admin/reject-access",
        &carol,
        &[
            ("resource", "app"),
            ("email", "alice@example.com"),
            ("comment", "use staging"),
        ],
    )
    .await;
    let page = app.get("/", Some(&alice)).await;
    let c = card(&page.body, "app");
    assert!(
        c.contains("Your request was rejected by carol@example.com") && c.contains("use staging"),
        "{c}"
    );

    let own = app.get(&format!("/requests/{id}"), Some(&alice)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("use staging") && own.body.contains(&"x".repeat(300)));
    assert!(
        !own.body.contains("Its audit events"),
        "events are for approvers"
    );
    let approver = app
        .get(&format!("/admin/requests/{id}"), Some(&carol))
        .await;
    assert!(approver.body.contains("Its audit events") && approver.body.contains("rejected"));
    let stranger = app
        .get(&format!("/requests/{id}"), Some(&TestUser::bob()))
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let junk = app.get("/requests/not-an-id", Some(&alice)).await;
    assert_eq!(junk.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoking_asks_for_confirmation_first() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    app.approve(&alice).await;
    let id = on(&app, &alice, "app").unwrap().id.to_string();
    let admin = app.get("/admin", Some(&carol)).await;
    let link = format!(
        "/admin/confirm-revoke?resource=app&#38;email=alice%40example.com&#38;request={id}"
    );
    assert!(admin.body.contains(&link), "{}", admin.body);
    assert!(
        !admin.body.contains(r#"action="/admin/revoke-access""#),
        "no one-click revoke"
    );

    let confirm = app.get(&link.replace("&#38;", "&"), Some(&carol)).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm.body.contains("Revoke access?")
            && confirm.body.contains(r#"action="/admin/revoke-access""#)
    );
    assert!(
        confirm
            .body
            .contains(&format!(r#"name="request" value="{id}""#))
    );
    assert_eq!(
        status(&app, &alice, "app"),
        Some(Status::Active),
        "looking changes nothing"
    );

    ok(
        &app,
        "/admin/revoke-access",
        &carol,
        &[
            ("resource", "app"),
            ("email", "alice@example.com"),
            ("request", id.as_str()),
            ("comment", "done here"),
        ],
    )
    .await;
    assert_eq!(status(&app, &alice, "app"), Some(Status::Revoked));
    assert!(card(&app.get("/", Some(&alice)).await.body, "app").contains("done here"));
    let gone = app.get(&link.replace("&#38;", "&"), Some(&carol)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "nothing left to revoke");
}

#[tokio::test]
async fn an_approver_grants_to_someone_who_did_not_ask() {
    let app = catalog().await;
    let carol = TestUser::admin();
    let no_reason = app
        .post(
            "/admin/grant-access",
            &carol,
            &[("resource", "app"), ("email", "erin@example.com")],
        )
        .await;
    assert_eq!(
        no_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_reason.body
    );
    assert_eq!(status(&app, &erin(), "app"), None);

    let page = ok(
        &app,
        "/admin/grant-access",
        &carol,
        &[
            ("resource", "app"),
            ("email", "erin@example.com"),
            ("reason", "on call tonight"),
            ("duration", "4h"),
        ],
    )
    .await;
    assert!(
        page.contains("Granted access to erin@example.com."),
        "{page}"
    );
    assert_eq!(lasts(&on(&app, &erin(), "app").unwrap()), 240);

    // Two approvals needed: the grant waits for a second approver.
    let page = ok(
        &app,
        "/admin/grant-access",
        &carol,
        &[
            ("resource", "db"),
            ("email", "erin@example.com"),
            ("reason", "restore backups"),
        ],
    )
    .await;
    assert!(
        page.contains("Approval recorded for erin@example.com: 1 of 2."),
        "{page}"
    );
    assert!(page.contains("asked by you"), "{page}");
    assert_eq!(status(&app, &erin(), "db"), Some(Status::Pending));
}

/// Alice holds app and db, bob holds app.
async fn three_grants(app: &App) {
    let (alice, bob, carol) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    app.request(&alice).await;
    app.approve(&alice).await;
    app.request(&bob).await;
    app.approve(&bob).await;
    let grant = [
        ("resource", "db"),
        ("email", "alice@example.com"),
        ("reason", "restore backups"),
    ];
    ok(app, "/admin/grant-access", &carol, &grant).await;
    ok(
        app,
        "/admin/approve-access",
        &dave(),
        &[("resource", "db"), ("email", "alice@example.com")],
    )
    .await;
    assert_eq!(status(app, &alice, "db"), Some(Status::Active));
}

#[tokio::test]
async fn revoke_all_of_one_person_then_of_one_resource() {
    let app = catalog().await;
    three_grants(&app).await;
    let (alice, bob, carol) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    let confirm = app
        .get(
            "/admin/confirm-revoke-all?person=alice%40example.com",
            Some(&carol),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("Revoke 2 grants") && confirm.body.contains("Database"));
    assert!(!confirm.body.contains("bob@"), "only alice's");
    assert_eq!(
        status(&app, &alice, "app"),
        Some(Status::Active),
        "looking changes nothing"
    );

    let page = ok(
        &app,
        "/admin/revoke-all",
        &carol,
        &[
            ("person", "alice@example.com"),
            ("comment", "left the team"),
        ],
    )
    .await;
    assert!(page.contains("Revoked 2 grants."), "{page}");
    assert_eq!(status(&app, &alice, "app"), Some(Status::Revoked));
    assert_eq!(status(&app, &alice, "db"), Some(Status::Revoked));
    assert_eq!(
        on(&app, &alice, "db").unwrap().comment.unwrap().as_str(),
        "left the team"
    );
    assert_eq!(status(&app, &bob, "app"), Some(Status::Active));

    let admin = app.get("/admin", Some(&carol)).await;
    assert!(
        admin
            .body
            .contains("/admin/confirm-revoke-all?resource=app")
    );
    let confirm = app
        .get("/admin/confirm-revoke-all?resource=app", Some(&carol))
        .await;
    assert!(confirm.body.contains("Revoke 1 grant<") && confirm.body.contains("bob@"));
    let page = ok(&app, "/admin/revoke-all", &carol, &[("resource", "app")]).await;
    assert!(page.contains("Revoked 1 grant."), "{page}");
    assert_eq!(status(&app, &bob, "app"), Some(Status::Revoked));

    let nothing = app
        .post("/admin/revoke-all", &carol, &[("comment", "all")])
        .await;
    assert_eq!(
        nothing.status,
        StatusCode::BAD_REQUEST,
        "a scope is required"
    );
}

#[tokio::test]
async fn an_extension_is_asked_approved_and_limited() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    app.approve(&alice).await;
    let before = on(&app, &alice, "app")
        .unwrap()
        .state
        .grant()
        .unwrap()
        .expires_at;
    let index = app.get("/", Some(&alice)).await;
    let c = card(&index.body, "app");
    assert!(
        c.contains(r#"action="/extend-access""#) && c.contains("1 extension left."),
        "{c}"
    );
    assert!(!card(&index.body, "db").contains("extend-access"));

    let page = ok(
        &app,
        "/extend-access",
        &alice,
        &[
            ("resource", "app"),
            ("duration", "1h"),
            ("reason", "still fixing"),
        ],
    )
    .await;
    assert!(page.contains("Extension asked."), "{page}");
    assert!(
        card(&page, "app").contains("Extension asked")
            && !card(&page, "app").contains(r#"action="/extend-access""#)
    );

    let admin = app.get("/admin", Some(&carol)).await;
    assert!(admin.body.contains("Extension asked:") && admin.body.contains("still fixing"));
    assert!(admin.body.contains(r#"action="/admin/approve-extension""#));
    let page = ok(
        &app,
        "/admin/approve-extension",
        &carol,
        &[("resource", "app"), ("email", "alice@example.com")],
    )
    .await;
    assert!(
        page.contains("Extended the access of alice@example.com."),
        "{page}"
    );
    let after = on(&app, &alice, "app")
        .unwrap()
        .state
        .grant()
        .unwrap()
        .expires_at;
    assert_eq!(after - before, time::Duration::hours(1));

    let index = app.get("/", Some(&alice)).await;
    let c = card(&index.body, "app");
    assert!(
        c.contains("No extensions left") && !c.contains(r#"action="/extend-access""#),
        "{c}"
    );
    let more = app
        .post("/extend-access", &alice, &[("duration", "1h")])
        .await;
    assert_eq!(more.status, StatusCode::CONFLICT, "{}", more.body);
    assert_eq!(
        on(&app, &alice, "app")
            .unwrap()
            .state
            .grant()
            .unwrap()
            .expires_at,
        after
    );
}

#[tokio::test]
async fn a_declined_extension_carries_its_comment() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    app.approve(&alice).await;
    ok(&app, "/extend-access", &alice, &[("duration", "30m")]).await;
    let page = ok(
        &app,
        "/admin/reject-extension",
        &carol,
        &[
            ("resource", "app"),
            ("email", "alice@example.com"),
            ("comment", "wrap up now"),
        ],
    )
    .await;
    assert!(
        page.contains("Declined the extension for alice@example.com"),
        "{page}"
    );
    let c = app.get("/", Some(&alice)).await.body;
    assert!(card(&c, "app").contains("wrap up now"));
}

#[tokio::test]
async fn a_start_in_the_past_or_unreadable_is_refused_and_changes_nothing() {
    let app = catalog().await;
    let alice = TestUser::alice();
    let a = app
        .browser_post(
            "/request-access",
            &alice,
            &[("resource", "app"), ("starts_at", "2020-01-01T09:00")],
        )
        .await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/"));
    let page = app.follow(&a, &alice).await;
    assert!(
        page.body
            .contains("The field `starts_at` is invalid: the start time is in the past"),
        "{}",
        page.body
    );
    let a = app
        .browser_post(
            "/request-access",
            &alice,
            &[("resource", "app"), ("starts_at", "next tuesday")],
        )
        .await;
    let page = app.follow(&a, &alice).await;
    assert!(
        page.body
            .contains("it must be a date and time in UTC like 2026-12-01T09:30"),
        "{}",
        page.body
    );
    assert!(
        app.service.status_of(&email(&alice.email)).is_empty(),
        "nothing changed"
    );

    // A start ahead is kept, and the grant is scheduled.
    let start = OffsetDateTime::now_utc() + time::Duration::hours(3);
    let value = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        start.year(),
        u8::from(start.month()),
        start.day(),
        start.hour(),
        start.minute()
    );
    ok(
        &app,
        "/request-access",
        &alice,
        &[("resource", "app"), ("starts_at", &value)],
    )
    .await;
    app.approve(&alice).await;
    let page = app.get("/", Some(&alice)).await;
    assert!(
        card(&page.body, "app").contains("Scheduled"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn approvers_see_only_their_resources_and_others_are_refused() {
    let app = catalog().await;
    let (alice, dave) = (TestUser::alice(), dave());
    app.request(&alice).await;
    let page = app.get("/admin", Some(&dave)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"id="res-db""#) && page.body.contains(r#"id="res-ops""#));
    assert!(
        !page.body.contains(r#"id="res-app""#) && !page.body.contains("alice@"),
        "{}",
        page.body
    );
    let json = app.get("/admin/api/v1/resources", Some(&dave)).await.json();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["approver"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "ops"]);
    assert_eq!(json[1]["approvals_needed"], 2, "{json}");

    let refused = app
        .post(
            "/admin/approve-access",
            &dave,
            &[("resource", "app"), ("email", "alice@example.com")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = app
        .get("/admin/confirm-revoke-all?resource=app", Some(&dave))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(status(&app, &alice, "app"), Some(Status::Pending));

    assert_eq!(
        app.get("/admin", Some(&alice)).await.status,
        StatusCode::FORBIDDEN
    );
    let id = on(&app, &alice, "app").unwrap().id;
    assert_eq!(
        app.get(&format!("/admin/requests/{id}"), Some(&dave))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "not an approver of app"
    );
}

#[tokio::test]
async fn a_grant_ending_within_ten_minutes_is_highlighted() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    ok(
        &app,
        "/admin/approve-access",
        &carol,
        &[("email", "alice@example.com"), ("duration", "5m")],
    )
    .await;
    let c = app.get("/", Some(&alice)).await.body;
    assert!(
        card(&c, "app").contains(r#"<strong class="soon">Expires in 5 min</strong>"#),
        "{c}"
    );
    let admin = app.get("/admin", Some(&carol)).await.body;
    assert!(admin.contains(r#"class="soon-row""#) && admin.contains("Expires in 5 min"));
    let me = app.get("/api/v1/me", Some(&alice)).await.json();
    assert_eq!(me["request"]["approvals"][0]["by"], "carol@example.com");
}

#[tokio::test]
async fn the_new_forms_refuse_cross_site_posts() {
    let app = catalog().await;
    let (alice, carol) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    app.approve(&alice).await;
    let cross = [("sec-fetch-site", "cross-site")];
    for (path, user, form) in [
        ("/extend-access", &alice, vec![("duration", "1h")]),
        (
            "/admin/grant-access",
            &carol,
            vec![("email", "erin@example.com"), ("reason", "evil")],
        ),
        (
            "/admin/revoke-all",
            &carol,
            vec![("person", "alice@example.com")],
        ),
        (
            "/admin/approve-extension",
            &carol,
            vec![("email", "alice@example.com")],
        ),
        (
            "/admin/reject-extension",
            &carol,
            vec![("email", "alice@example.com")],
        ),
    ] {
        let a = app.post_with(path, user, &form, &cross).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
    }
    let r = on(&app, &alice, "app").unwrap();
    assert_eq!((r.state.status(), r.extension), (Status::Active, None));
    assert_eq!(status(&app, &erin(), "app"), None);
}

#[tokio::test]
async fn where_the_resource_allows_it_the_holder_extends_at_once() {
    let app = catalog().await;
    let alice = TestUser::alice();
    ok(&app, "/request-access", &alice, &[("resource", "ops")]).await;
    ok(
        &app,
        "/admin/approve-access",
        &dave(),
        &[("resource", "ops"), ("email", "alice@example.com")],
    )
    .await;
    let before = on(&app, &alice, "ops")
        .unwrap()
        .state
        .grant()
        .unwrap()
        .expires_at;
    let page = ok(
        &app,
        "/extend-access",
        &alice,
        &[("resource", "ops"), ("duration", "30m")],
    )
    .await;
    assert!(
        page.contains("Extended: your access now lasts longer."),
        "{page}"
    );
    assert!(card(&page, "ops").contains("1 extension left."));
    let after = on(&app, &alice, "ops")
        .unwrap()
        .state
        .grant()
        .unwrap()
        .expires_at;
    assert_eq!(after - before, time::Duration::minutes(30));
}
