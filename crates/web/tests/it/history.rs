//! History people can read: `/admin/history` for approvers (filters, pages,
//! downloads, the timeline) and `/history` for each person's own.

use std::sync::Arc;

use axum::http::StatusCode;
use jit_domain::{Profile, Rules};
use jit_fakes::pomerium::TestUser;
use jit_service::{Admins, Caller, HistoryFilter, Route, Whose};

use crate::harness::{Answer, App, Options, email, resource};

/// The "About" cell of every event row, newest first.
fn subjects(body: &str) -> Vec<String> {
    body.split(r#"<td data-label="About" class="email">"#)
        .skip(1)
        .filter_map(|cell| cell.split_once("</td>"))
        .map(|(about, _)| about.replace("<wbr>", ""))
        .collect()
}

/// The "#" cell of every event row, newest first.
fn seqs(body: &str) -> Vec<u64> {
    body.split(r##"<td data-label="#" class="mono">"##)
        .skip(1)
        .filter_map(|cell| cell.split_once("</td>")?.0.parse().ok())
        .collect()
}

/// `body` with the escapes askama writes for `&` undone.
fn unescaped(body: &str) -> String {
    body.replace("&#38;", "&").replace("&amp;", "&")
}

/// The `href` of the link whose text is `text`, unescaped.
fn link(body: &str, text: &str) -> Option<String> {
    let end = body.find(&format!(">{text}</a>"))?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    let href = &body[start..];
    Some(unescaped(&href[..href.find('"')?]))
}

fn ok(a: &Answer) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// alice requests with `reason` and is approved, then bob requests.
async fn alice_approved_and_bob_pending(app: &App, reason: &str) {
    let a = app
        .post("/request-access", &TestUser::alice(), &[("reason", reason)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    app.approve(&TestUser::alice()).await;
    app.request(&TestUser::bob()).await;
}

#[tokio::test]
async fn approvers_filter_everyones_history() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let admin = TestUser::admin();
    let (alice, bob) = (TestUser::alice().email, TestUser::bob().email);

    let page = app.get("/admin/history", Some(&admin)).await;
    ok(&page);
    assert_eq!(subjects(&page.body), [bob.as_str(), &alice, &alice]);
    assert!(page.body.contains("<svg"), "the timeline is inline");
    assert!(page.body.contains("<title>alice@example.com</title>"));
    assert!(page.body.contains(r#"href="/admin/history.csv""#));

    let only = |q: &str| {
        let app = &app;
        let admin = admin.clone();
        let q = q.to_owned();
        async move {
            let page = app.get(&format!("/admin/history?{q}"), Some(&admin)).await;
            ok(&page);
            page
        }
    };
    assert_eq!(
        subjects(&only("person=alice%40example.com").await.body),
        [alice.as_str(), &alice]
    );
    let approvals = only("action=approved").await;
    assert_eq!(subjects(&approvals.body), [alice.as_str()]);
    assert!(
        approvals
            .body
            .contains(r#"<option value="approved" selected>"#)
    );
    assert_eq!(subjects(&only("resource=default").await.body).len(), 3);
    let none = only("resource=prod-db").await;
    assert!(subjects(&none.body).is_empty());
    assert!(
        none.body.contains("No events match these filters"),
        "{}",
        none.body
    );
    assert!(
        subjects(&only("to=2000-01-01").await.body).is_empty(),
        "a range before everything"
    );
    assert_eq!(subjects(&only("from=2000-01-01").await.body).len(), 3);
    // The download links carry the filters.
    let filtered = only("person=alice%40example.com&action=approved").await;
    assert_eq!(
        link(&filtered.body, "Download CSV").unwrap(),
        "/admin/history.csv?person=alice%40example.com&action=approved"
    );
}

#[tokio::test]
async fn pages_go_older_and_back_newer() {
    let app = App::start().await;
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    // 26 requests withdrawn: 52 events.
    for _ in 0..26 {
        app.request(&alice).await;
        let a = app.post("/cancel-request", &alice, &[]).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
    let first = app.get("/admin/history", Some(&admin)).await;
    ok(&first);
    assert_eq!(seqs(&first.body), (3..=52).rev().collect::<Vec<_>>());
    assert!(link(&first.body, "← Newer").is_none());
    let older = link(&first.body, "Older →").expect("an older page");
    assert_eq!(older, "/admin/history?before=3");

    let second = app.get(&older, Some(&admin)).await;
    ok(&second);
    assert_eq!(seqs(&second.body), [2, 1]);
    assert!(link(&second.body, "Older →").is_none());
    let newer = link(&second.body, "← Newer").expect("a newer page");
    assert_eq!(newer, "/admin/history?after=2");
    let back = app.get(&newer, Some(&admin)).await;
    assert_eq!(seqs(&back.body), seqs(&first.body));

    // Filters stay on the links.
    let withdrawn = app
        .get("/admin/history?action=cancelled", Some(&admin))
        .await;
    assert_eq!(seqs(&withdrawn.body).len(), 26);
    assert!(link(&withdrawn.body, "Older →").is_none());
}

#[tokio::test]
async fn bad_filters_answer_400_saying_what_to_write() {
    let app = App::start().await;
    let admin = TestUser::admin();
    for (query, says) in [
        ("from=yesterday", "write a date as 2026-11-30"),
        ("to=2026-02-30", "write a date as 2026-11-30"),
        ("action=deleted", "write one of requested, approved"),
        ("person=nobody", "person"),
        ("resource=Prod%20DB", "write a resource"),
        ("from=2026-11-30&to=2026-11-01", "it must be after `from`"),
        ("before=3&after=1", "not both"),
        ("before=latest", "event number"),
    ] {
        let a = app
            .get(&format!("/admin/history?{query}"), Some(&admin))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
        assert!(a.body.contains(says), "{query}: {}", a.body);
        let a = app
            .get(&format!("/admin/history.csv?{query}"), Some(&admin))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn only_approvers_reach_everyones_history() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let bob = TestUser::bob();
    for path in [
        "/admin/history",
        "/admin/history.csv",
        "/admin/history.jsonl",
        "/admin/history/timeline.svg",
    ] {
        let a = app.get(path, Some(&bob)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!a.body.contains("alice@"), "{path}: {}", a.body);
    }
}

#[tokio::test]
async fn each_person_sees_only_their_own_history() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let (alice, bob) = (TestUser::alice(), TestUser::bob());

    let mine = app.get("/history", Some(&alice)).await;
    ok(&mine);
    assert_eq!(subjects(&mine.body), [alice.email.as_str(), &alice.email]);
    assert!(!mine.body.contains("bob@"), "{}", mine.body);
    assert!(!mine.body.contains(r#"name="person""#), "no person filter");
    assert!(
        !mine.body.contains("history.csv"),
        "no everyone's downloads"
    );
    assert!(
        mine.body.contains("<title>alice@example.com</title>"),
        "her grant is drawn"
    );

    let bobs = app.get("/history", Some(&bob)).await;
    assert_eq!(subjects(&bobs.body), [bob.email.as_str()]);
    assert!(!bobs.body.contains("alice@"), "{}", bobs.body);
    assert!(
        bobs.body.contains("No access was held in this period."),
        "{}",
        bobs.body
    );

    let a = app
        .get("/history?person=alice%40example.com", Some(&bob))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("/admin/history"), "{}", a.body);
    let a = app.get("/history?action=approved", Some(&alice)).await;
    assert_eq!(subjects(&a.body), [alice.email.as_str()]);
}

#[tokio::test]
async fn downloads_hold_every_filtered_event_as_attachments() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "=HYPERLINK(\"http://evil.test\")").await;
    let admin = TestUser::admin();

    let csv = app.get("/admin/history.csv", Some(&admin)).await;
    ok(&csv);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    let disposition = csv.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"pomerium-jit-history-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let lines: Vec<&str> = csv.body.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "seq,at,actor,action,subject,resource,request_id,details,hash"
    );
    assert_eq!(lines.len(), 4, "{}", csv.body);
    assert!(lines[1].starts_with("1,"), "oldest first: {}", lines[1]);
    assert!(lines[1].contains(",requested,alice@example.com,default,"));
    // The reason is quoted inside the details' JSON, in a quoted cell.
    assert!(
        lines[1].contains(r#"""reason"":""=HYPERLINK(\""http://evil.test\"")"""#),
        "{}",
        lines[1]
    );

    let jsonl = app
        .get(
            "/admin/history.jsonl?person=alice%40example.com",
            Some(&admin),
        )
        .await;
    ok(&jsonl);
    assert_eq!(
        jsonl.header("content-type"),
        "application/jsonl; charset=utf-8"
    );
    assert!(jsonl.header("content-disposition").ends_with(".jsonl\""));
    let events: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["action"], "requested");
    assert_eq!(
        events[0]["details"]["reason"],
        "=HYPERLINK(\"http://evil.test\")"
    );
    assert_eq!(events[1]["action"], "approved");
    assert!(events.iter().all(|e| e["subject"] == "alice@example.com"));
    assert!(events.iter().all(|e| e["resource"] == "default"));
}

#[tokio::test]
async fn the_timeline_draws_who_held_access_as_svg() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let admin = TestUser::admin();
    let svg = app.get("/admin/history/timeline.svg", Some(&admin)).await;
    ok(&svg);
    assert_eq!(svg.header("content-type"), "image/svg+xml; charset=utf-8");
    assert!(
        svg.body
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(svg.body.contains("<title>alice@example.com</title>"));
    assert!(
        svg.body.contains("alice@example.com on default: from "),
        "{}",
        svg.body
    );
    assert!(!svg.body.contains("bob@"), "bob holds nothing yet");
    assert!(!svg.body.contains("<script"));

    let past = app
        .get(
            "/admin/history/timeline.svg?from=2000-01-01&to=2000-01-02",
            Some(&admin),
        )
        .await;
    ok(&past);
    assert!(past.body.contains("No access was held in this period."));
    assert!(past.body.contains(">2000-01-01</text>"), "{}", past.body);
    // A start still to come draws a week from it, not an empty period.
    let future = app
        .get("/admin/history/timeline.svg?from=2999-01-01", Some(&admin))
        .await;
    assert!(
        future.body.contains(">2999-01-08</text>"),
        "{}",
        future.body
    );
    assert!(!future.body.contains("The period is empty"));
}

#[tokio::test]
async fn open_admin_mode_shows_everyones_history_only_under_admin() {
    let app = App::with(Options {
        admins: Admins::default(),
        ..Options::default()
    })
    .await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let bob = TestUser::bob();
    let all = app.get("/admin/history", Some(&bob)).await;
    ok(&all);
    assert_eq!(subjects(&all.body).len(), 3);
    let mine = app.get("/history", Some(&bob)).await;
    ok(&mine);
    assert_eq!(subjects(&mine.body), [bob.email.as_str()]);
}

#[tokio::test]
async fn an_approver_of_one_resource_sees_only_its_history() {
    let dana = TestUser::new("dana", "dana@example.com");
    let app = App::with(Options {
        resources: vec![
            resource("default", "Default app", None, Rules::default()),
            resource(
                "prod-db",
                "Production DB",
                Some(&[&dana.email]),
                Rules::default(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let (alice, bob, admin) = (TestUser::alice(), TestUser::bob(), TestUser::admin());
    let a = app
        .post("/request-access", &alice, &[("resource", "default")])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = app
        .post("/request-access", &bob, &[("resource", "prod-db")])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);

    let all = app.get("/admin/history", Some(&admin)).await;
    assert_eq!(subjects(&all.body), [bob.email.as_str(), &alice.email]);
    assert!(
        all.body
            .contains(r#"<option value="prod-db">Production DB</option>"#)
    );

    let hers = app.get("/admin/history", Some(&dana)).await;
    ok(&hers);
    assert_eq!(subjects(&hers.body), [bob.email.as_str()]);
    let csv = app.get("/admin/history.csv", Some(&dana)).await;
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(!csv.body.contains("alice@"), "{}", csv.body);

    let refused = app
        .get("/admin/history?resource=default", Some(&dana))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Default app"), "{}", refused.body);
}

#[tokio::test]
async fn an_export_past_its_bound_is_refused_not_cut() {
    let app = App::start().await;
    alice_approved_and_bob_pending(&app, "deploy").await;
    let admin = Caller {
        profile: Arc::new(Profile {
            email: email(&TestUser::admin().email),
            groups: Arc::new([]),
            claims: Arc::default(),
        }),
        route: Route::Admin,
    };
    let export = |max| {
        app.service
            .history_export(&admin, Whose::Everyone, HistoryFilter::default(), max)
    };
    let all = export(3).await.unwrap().expect("3 events fit");
    let seqs: Vec<u64> = all.iter().map(|e| e.record.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "oldest first");
    assert!(export(2).await.unwrap().is_none(), "more than 2");
    // The bound counts what the filter selects.
    let bobs = app
        .service
        .history_export(
            &admin,
            Whose::Everyone,
            HistoryFilter {
                person: Some(email(&TestUser::bob().email)),
                ..HistoryFilter::default()
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(bobs.map(|v| v.len()), Some(1));
}
