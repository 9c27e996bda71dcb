//! The pages as a new user meets them: one time format with the date, long
//! emails and reasons that wrap and fold, labelled audit details, badges in
//! one casing, failures that keep the navigation and never leave the browser
//! on a POST address.

use axum::http::StatusCode;
use jit_domain::Status;
use jit_fakes::pomerium::TestUser;

use crate::harness::{App, email};

fn status(app: &App, user: &TestUser) -> Status {
    app.service
        .status_of(&email(&user.email))
        .into_iter()
        .next()
        .unwrap()
        .state
        .status()
}

#[tokio::test]
async fn a_failed_form_post_goes_back_to_its_page_with_the_error_once() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;

    let a = app
        .browser_post(
            "/admin/approve-access",
            &admin,
            &[("email", &alice.email), ("duration", "2d")],
        )
        .await;
    assert_eq!(
        (a.status, a.location()),
        (StatusCode::SEE_OTHER, "/admin"),
        "{}",
        a.body
    );
    assert_eq!(status(&app, &alice), Status::Pending, "nothing changed");
    let page = app.follow(&a, &admin).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"<div class="notice error" role="alert">"#)
            && page.body.contains("<strong>Invalid input.</strong>")
            && page.body.contains("The field `duration` is invalid"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Reference: <code>"), "{}", page.body);
    let again = app.get("/admin", Some(&admin)).await;
    assert!(!again.body.contains("`duration`"), "shown once");

    // A decision on what changed meanwhile comes back to the admin page too.
    let shown = app
        .service
        .status_of(&email(&alice.email))
        .into_iter()
        .next()
        .unwrap()
        .id
        .to_string();
    app.approve(&alice).await;
    let form = [("email", alice.email.as_str()), ("request", shown.as_str())];
    let a = app
        .browser_post("/admin/reject-access", &admin, &form)
        .await;
    assert_eq!(a.location(), "/admin");
    let page = app.follow(&a, &admin).await;
    assert!(
        page.body.contains("Changed since you looked."),
        "{}",
        page.body
    );
    assert_eq!(status(&app, &alice), Status::Active, "nothing changed");

    // From the index, back to the index.
    let bob = TestUser::bob();
    let a = app
        .browser_post("/request-access", &bob, &[("reason", &"x".repeat(501))])
        .await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/"));
    let page = app.follow(&a, &bob).await;
    assert!(
        page.body.contains("longer than 500") && page.body.contains("Request access"),
        "{}",
        page.body
    );
    assert!(app.service.status_of(&email(&bob.email)).is_empty());

    // Scripts that do not read HTML keep the status.
    let a = app
        .post("/request-access", &bob, &[("reason", &"x".repeat(501))])
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn error_pages_keep_the_navigation_and_who_is_signed_in() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    let page = app.get("/nope", Some(&alice)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains("Signed in as <strong>alice@<wbr>example.<wbr>com</strong>")
            && page.body.contains(r#"<nav class="nav" aria-label="Main">"#),
        "{}",
        page.body
    );
    let page = app.get("/nope", Some(&admin)).await;
    assert!(
        page.body
            .contains(r#"<a href="/admin/audit">Audit trail</a>"#)
    );

    // Refusals about who is asking stay where they are: the form's page
    // would refuse the same way.
    app.request(&alice).await;
    let a = app
        .browser_post("/admin/approve-access", &alice, &[("email", &alice.email)])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("Admins only") && a.body.contains("Signed in as"));
    assert_eq!(status(&app, &alice), Status::Pending);
    let a = app.get("/", None).await;
    assert!(!a.body.contains("Signed in as"), "nobody is known");
}

#[tokio::test]
async fn long_emails_wrap_after_at_and_dots_and_long_reasons_fold() {
    let app = App::start().await;
    let admin = TestUser::admin();
    let long = TestUser::new(
        "long",
        "alexandria.ocasio-hernandez-wellington@engineering.example.com",
    );
    let reason = format!("<b>{}</b> the end", "word ".repeat(60));
    app.post("/request-access", &long, &[("reason", &reason)])
        .await;
    let page = app.get("/admin", Some(&admin)).await;
    assert!(
        page.body.contains(
            "alexandria.<wbr>ocasio-hernandez-wellington@<wbr>engineering.<wbr>example.<wbr>com"
        ),
        "{}",
        page.body
    );
    let escaped = format!("&#60;b&#62;{}&#60;/b&#62; the end", "word ".repeat(60));
    assert!(
        page.body
            .contains(r#"<details class="reason"><summary>&#60;b&#62;word word"#)
            && page.body.contains(&format!("<p>{escaped}</p></details>")),
        "the full text, escaped, a click away: {}",
        page.body
    );
    assert!(!page.body.contains("<b>"), "escaped");
    let css = app.get("/assets/app.css", None).await.body;
    assert!(
        !css.contains("overflow-wrap: anywhere; font-weight: 600"),
        "emails do not break mid-word"
    );

    // Short reasons stay whole.
    app.post(
        "/request-access",
        &TestUser::bob(),
        &[("reason", "ticket 7")],
    )
    .await;
    let page = app.get("/admin", Some(&admin)).await;
    assert!(
        page.body
            .contains(r#"<span class="reason">ticket 7</span>"#)
    );
}

#[tokio::test]
async fn the_active_list_shows_the_reason() {
    let app = App::start().await;
    let alice = TestUser::alice();
    app.post("/request-access", &alice, &[("reason", "incident 99")])
        .await;
    app.approve(&alice).await;
    let page = app.get("/admin", Some(&TestUser::admin())).await;
    let active = crate::admin::section(&page.body, "active-title");
    assert!(
        active.contains(r#"<td data-label="Reason"><span class="reason">incident 99</span></td>"#),
        "{active}"
    );
}

#[tokio::test]
async fn times_carry_the_date_and_a_fresh_two_minute_grant_reads_two_minutes() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    app.request(&alice).await;
    let a = app
        .post(
            "/admin/approve-access",
            &admin,
            &[("email", &alice.email), ("duration", "2m")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = app.get("/", Some(&alice)).await;
    assert!(
        page.body.contains(" UTC</strong> (in 2 min)"),
        "{}",
        page.body
    );
    let admin_page = app.get("/admin", Some(&admin)).await;
    assert!(admin_page.body.contains("in 2 min"), "{}", admin_page.body);

    // Every absolute time on the pages is dated: "2026-11-30 23:55 UTC".
    let audit = app.get("/admin/audit", Some(&admin)).await;
    for body in [&page.body, &admin_page.body, &audit.body] {
        for (i, _) in body.match_indices(" UTC") {
            let before = &body[i.saturating_sub(16)..i];
            if before.ends_with("Times are in") {
                continue; // the footer
            }
            let dated = before.len() == 16
                && before.as_bytes()[4] == b'-'
                && before.as_bytes()[7] == b'-'
                && before.as_bytes()[10] == b' '
                && before.as_bytes()[13] == b':';
            assert!(dated, "undated time {before:?} in {body}");
        }
    }
    // The audit "When" column shows the date.
    let when = audit
        .body
        .split(r#"<td data-label="When">"#)
        .nth(1)
        .unwrap();
    assert!(when.contains(" UTC</time>") && when.contains("-"), "{when}");
}

#[tokio::test]
async fn audit_details_are_labelled_and_their_times_dated() {
    let app = App::start().await;
    let alice = TestUser::alice();
    app.post("/request-access", &alice, &[("reason", "ticket 7")])
        .await;
    app.approve(&alice).await;
    let page = app.get("/admin/audit", Some(&TestUser::admin())).await;
    for label in [
        "<dt>Expires</dt>",
        "<dt>Duration</dt>",
        "<dt>Reason</dt>",
        "<dt>Request</dt>",
    ] {
        assert!(page.body.contains(label), "{label}: {}", page.body);
    }
    assert!(!page.body.contains("expires_at"), "{}", page.body);
    let expires = page.body.split("<dt>Expires</dt>").nth(1).unwrap();
    assert!(
        expires.starts_with(r#"<dd><time datetime="20"#) && expires.contains(" UTC</time></dd>"),
        "{expires}"
    );
}

#[tokio::test]
async fn badges_are_in_sentence_case_everywhere() {
    let app = App::start().await;
    let (alice, bob, admin) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    app.request(&alice).await;
    app.post("/cancel-request", &alice, &[]).await;
    app.request(&bob).await;
    app.approve(&bob).await;
    app.post("/cancel-request", &bob, &[]).await;
    let css = app.get("/assets/app.css", None).await.body;
    assert!(!css.contains("capitalize"), "the text is the casing");
    for path in ["/admin", "/admin/audit"] {
        let page = app.get(path, Some(&admin)).await;
        let badges: Vec<&str> = page
            .body
            .split(r#"<span class="badge "#)
            .skip(1)
            .filter_map(|b| b.split_once('>')?.1.split_once("</span>"))
            .map(|(text, _)| text)
            .collect();
        assert!(badges.len() >= 2, "{path}: {}", page.body);
        for text in badges {
            let mut words = text.split(' ');
            let first = words.next().unwrap();
            assert!(
                first.starts_with(|c: char| c.is_uppercase())
                    && words.all(|w| w.starts_with(|c: char| c.is_lowercase())),
                "{path}: {text:?}"
            );
        }
        if path == "/admin" {
            assert!(page.body.contains(">Withdrawn</span>"), "{}", page.body);
        }
    }
}

#[tokio::test]
async fn stacked_cards_do_not_touch() {
    let app = App::start().await;
    let css = app.get("/assets/app.css", None).await.body;
    assert!(css.contains(".card + .card { margin-top: 1rem; }"), "{css}");
}
