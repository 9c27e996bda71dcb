//! The approvers' page shows long lists a page at a time.

use axum::http::StatusCode;
use jit_domain::Rules;
use jit_fakes::pomerium::TestUser;

use crate::admin::section;
use crate::harness::{App, Options, resource};

/// The emails of the requests a list shows, in order.
fn shown(list: &str) -> Vec<&str> {
    list.split(r#"<span class="vh"> of the request from "#)
        .skip(1)
        .map(|rest| &rest[..rest.find('<').unwrap()])
        .collect()
}

fn user(i: usize) -> String {
    format!("user{i:03}@example.com")
}

#[tokio::test]
async fn a_long_pending_list_is_paged_and_other_lists_keep_their_place() {
    let app = App::with(Options {
        resources: vec![
            resource("app", "Protected app", None, Rules::default()),
            resource("db", "Database", None, Rules::default()),
        ],
        ..Options::default()
    })
    .await;
    let admin = TestUser::admin();
    for i in 0..120 {
        let u = TestUser::new(format!("u{i}"), user(i));
        let a = app
            .post("/request-access", &u, &[("resource", "app")])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
    for i in 0..3 {
        let u = TestUser::new(format!("d{i}"), user(500 + i));
        let a = app.post("/request-access", &u, &[("resource", "db")]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
    let emails = |range: std::ops::Range<usize>| range.map(user).collect::<Vec<_>>();

    let page = app.get("/admin", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("(120 pending, 0 active)"),
        "{}",
        page.body
    );
    let pending = section(&page.body, "pending-title-app");
    assert!(
        pending.contains(r#"<span class="count">120</span>"#),
        "{pending}"
    );
    assert_eq!(shown(pending), emails(0..50), "the oldest 50, oldest first");
    assert!(
        pending.contains(
            r#"<nav class="pager" aria-label="Pages of the pending requests for Protected app">"#
        ),
        "{pending}"
    );
    assert!(pending.contains("Requests 1–50 of 120"), "{pending}");
    assert!(
        pending.contains(r#"<a href="/admin?pending.app=50#pending-title-app" rel="next">Newer"#),
        "{pending}"
    );
    assert!(!pending.contains(r#"rel="prev""#), "{pending}");
    let db = section(&page.body, "pending-title-db");
    assert!(db.contains(r#"<span class="count">3</span>"#), "{db}");
    assert_eq!(shown(db), emails(500..503));
    assert!(!db.contains("pager"), "a short list has no pages: {db}");

    // The next page keeps the database list where it was.
    let page = app
        .get("/admin?pending.app=50&pending.db=2", Some(&admin))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let pending = section(&page.body, "pending-title-app");
    assert_eq!(shown(pending), emails(50..100));
    assert!(pending.contains("Requests 51–100 of 120"), "{pending}");
    assert!(
        pending.contains(r#"<a href="/admin?pending.db=2#pending-title-app" rel="prev">← Older"#),
        "{pending}"
    );
    assert!(
        pending.contains(
            r#"<a href="/admin?pending.app=100&#38;pending.db=2#pending-title-app" rel="next">"#
        ),
        "{pending}"
    );
    let db = section(&page.body, "pending-title-db");
    assert!(db.contains(r#"<span class="count">3</span>"#), "{db}");
    assert_eq!(shown(db), emails(502..503));
    assert!(
        db.contains(r#"<a href="/admin?pending.app=50#pending-title-db" rel="prev">"#),
        "{db}"
    );

    // The last page holds the rest; past the end shows the last page too.
    for query in ["pending.app=100", "pending.app=5000"] {
        let page = app.get(&format!("/admin?{query}"), Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK, "{query}");
        let pending = section(&page.body, "pending-title-app");
        assert_eq!(shown(pending), emails(100..120), "{query}");
        assert!(pending.contains("Requests 101–120 of 120"), "{pending}");
        assert!(!pending.contains(r#"rel="next""#), "{pending}");
        assert!(
            pending.contains(r#"<a href="/admin?pending.app=50#pending-title-app" rel="prev">"#),
            "{pending}"
        );
        let db = section(&page.body, "pending-title-db");
        assert_eq!(shown(db), emails(500..503), "{query}");
    }

    // The JSON API pages by cursor: 50 by default.
    let api = app.get("/admin/api/v1/requests", Some(&admin)).await;
    assert_eq!(api.json()["items"].as_array().unwrap().len(), 50);
    assert!(api.json()["next"].is_string());
}

#[tokio::test]
async fn a_wrong_page_parameter_is_refused_with_what_to_do() {
    let app = App::start().await;
    let admin = TestUser::admin();
    for (query, says) in [
        ("pending.default=next", "must be how many rows to skip"),
        ("active.default=-50", "must be how many rows to skip"),
        ("pending.Not%20a%20name=50", "names no resource"),
        (
            "pending.other=50",
            "names a resource you do not approve here",
        ),
        ("active.default=50&active.default=100", "is given twice"),
    ] {
        let page = app.get(&format!("/admin?{query}"), Some(&admin)).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert!(page.body.contains(says), "{query}: {}", page.body);
    }
    let page = app
        .get("/admin?active.default=0&utm_source=mail", Some(&admin))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test]
async fn a_long_active_list_is_paged_soonest_end_first() {
    let app = App::start().await;
    let admin = TestUser::admin();
    for i in 0..51 {
        let a = app
            .post(
                "/admin/grant-access",
                &admin,
                &[("email", &user(i)), ("reason", "drill"), ("duration", "1h")],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
    let page = app.get("/admin", Some(&admin)).await;
    let active = section(&page.body, "active-title-default");
    assert!(
        active.contains(r#"<span class="count">51</span>"#),
        "{active}"
    );
    assert_eq!(active.matches("Details<span").count(), 50, "{active}");
    assert!(active.contains(&user(0)) && !active.contains(&user(50)));
    assert!(
        active.contains("Grants 1–50 of 51, soonest to end first."),
        "{active}"
    );
    assert!(
        active.contains(
            r#"<a href="/admin?active.default=50#active-title-default" rel="next">Ending later"#
        ),
        "{active}"
    );

    let page = app.get("/admin?active.default=50", Some(&admin)).await;
    let active = section(&page.body, "active-title-default");
    assert_eq!(active.matches("Details<span").count(), 1, "{active}");
    assert!(active.contains(&user(50)), "{active}");
    assert!(
        active.contains(r#"<a href="/admin#active-title-default" rel="prev">← Ending sooner"#),
        "{active}"
    );
}

/// A change made by another replica, then a burst of page loads: every
/// page shows it, and the snapshot is read from the store once, not once
/// per page (each read is every open request).
#[tokio::test]
async fn a_burst_of_pages_after_a_change_elsewhere_reloads_the_snapshot_once() {
    use jit_domain::{Ask, Email};
    let app = App::start().await;
    let admin = TestUser::admin();
    let elsewhere = app.other_replica().await;
    let email = Email::parse(&user(7)).unwrap();
    let rules = Rules::default();
    elsewhere
        .decide(&rules.resource, &email, |open| {
            rules.request(
                open,
                &email,
                Ask::default(),
                time::OffsetDateTime::now_utc(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    let before = app.service.snapshot_reloads();
    let pages =
        futures_util::future::join_all((0..16).map(|_| app.get("/admin", Some(&admin)))).await;
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&user(7)), "{}", page.body);
    }
    assert_eq!(app.service.snapshot_reloads() - before, 1);
}
