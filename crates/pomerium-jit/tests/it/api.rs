//! The JSON API through the real binary: every endpoint, problem types,
//! cursors and filters, the open-mode rule, and that nobody but approvers
//! sees anyone else's requests.

use jit_fakes::pomerium::TestUser;
use serde_json::{Value, json};

use crate::harness::{App, Env};

/// An API caller as a script is: JSON bodies, no `Origin`, no Fetch Metadata.
struct Api<'a> {
    app: &'a App,
    http: reqwest::Client,
}

/// A status, the content type and the body read as JSON (`Null` if not).
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: String,
    json: Value,
}

impl Answer {
    fn problem(&self) -> &str {
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        self.json["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:pomerium-jit:problem:"))
            .unwrap_or_else(|| panic!("no problem type: {}", self.body))
    }
}

impl<'a> Api<'a> {
    fn new(app: &'a App) -> Self {
        Api {
            app,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> Answer {
        let resp = request
            .header("X-Pomerium-Jwt-Assertion", token)
            .send()
            .await
            .expect("API call");
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(reqwest::header::LOCATION);
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Answer {
            status,
            content_type,
            location,
            json: serde_json::from_str(&body).unwrap_or(Value::Null),
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(self.http.get(self.app.url(path)), token).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        let request = self
            .http
            .post(self.app.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.send(request, token).await
    }
}

fn emails(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect()
}

/// The original's one resource, with extensions allowed.
const EXTENDABLE: &str = r#"
[[resource]]
name = "default"
title = "Protected app"
policy = { name = "jit-example" }
max_extensions = 2
"#;

#[tokio::test]
async fn requests_are_asked_decided_and_listed_through_the_api() {
    let env = Env::new().await;
    let config = env.dir.path().join("resources.toml");
    std::fs::write(&config, EXTENDABLE).unwrap();
    let app = env.spawn(&[("CONFIG_FILE", config.to_str().unwrap())]);
    let api = Api::new(&app);
    let (alice, bob, carol) = (
        env.token(&TestUser::alice()),
        env.token(&TestUser::bob()),
        env.token(&TestUser::admin()),
    );

    // Asked by a script: no Origin, no Sec-Fetch-Site.
    let asked = api
        .post(
            "/api/v1/requests",
            &alice,
            json!({ "reason": "secret reason" }),
        )
        .await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = asked.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        asked.location.as_deref(),
        Some(format!("/api/v1/requests/{id}").as_str())
    );
    assert_eq!(asked.json["status"], "pending");
    let again = api
        .post("/api/v1/requests", &alice, json!({ "reason": "again" }))
        .await;
    assert_eq!((again.status, again.problem()), (409, "already-pending"));

    // Bad input: named, and nothing changes.
    let wrong = api
        .post("/api/v1/requests", &bob, json!({ "starts_at": "tomorrow" }))
        .await;
    assert_eq!((wrong.status, wrong.problem()), (400, "invalid-field"));
    assert!(wrong.json["detail"].as_str().unwrap().contains("starts_at"));
    let unreadable = api
        .send(
            api.http
                .post(app.url("/api/v1/requests"))
                .header("Content-Type", "application/json")
                .body("{"),
            &bob,
        )
        .await;
    assert_eq!(
        (unreadable.status, unreadable.problem()),
        (400, "unreadable")
    );
    let form = api
        .send(
            api.http
                .post(app.url("/api/v1/requests"))
                .header("Content-Type", "text/plain")
                .body("reason"),
            &bob,
        )
        .await;
    assert_eq!(
        (form.status, form.problem()),
        (415, "unsupported-media-type")
    );
    // A browser on another site is refused, as for the pages.
    let cross = api
        .send(
            api.http
                .post(app.url("/api/v1/requests"))
                .header("Content-Type", "application/json")
                .header("Sec-Fetch-Site", "cross-site")
                .body("{}"),
            &bob,
        )
        .await;
    assert_eq!((cross.status, cross.problem()), (403, "cross-site"));
    let mine = api.get("/api/v1/me/requests", &bob).await;
    assert_eq!(emails(&mine.json), Vec::<&str>::new(), "bob asked nothing");

    // Bob is no approver: he never sees Alice's request, whatever he asks.
    let one = format!("/api/v1/requests/{id}");
    for (path, status, problem) in [
        ("/api/v1/requests", 403, "not-admin"),
        ("/api/v1/grants", 403, "not-admin"),
        ("/api/v1/history", 403, "not-admin"),
        ("/api/v1/history/export", 403, "not-admin"),
        (one.as_str(), 404, "no-such-request"),
    ] {
        let a = api.get(path, &bob).await;
        assert_eq!((a.status, a.problem()), (status, problem), "{path}");
    }
    for path in ["/api/v1/me", "/api/v1/me/requests", "/api/v1/me/history"] {
        let a = api.get(path, &bob).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert!(!a.body.contains("alice"), "{path}: {}", a.body);
    }
    let a = api
        .get("/api/v1/me/requests?person=alice%40example.com", &bob)
        .await;
    assert_eq!((a.status, a.problem()), (400, "invalid-field"));
    for action in ["approve", "reject", "withdraw"] {
        let a = api.post(&format!("{one}/{action}"), &bob, json!({})).await;
        assert!(
            [403, 404].contains(&a.status) && !a.body.contains("alice"),
            "{action}: {}",
            a.body
        );
    }
    let a = api.post(&format!("{one}/approve"), &bob, json!({})).await;
    assert_eq!(a.problem(), "not-admin");

    // Carol approves; her second approval finds it changed.
    let pending = api.get("/api/v1/requests?status=pending", &carol).await;
    assert_eq!(emails(&pending.json), ["alice@example.com"]);
    let own = api
        .post(&format!("{one}/withdraw"), &carol, json!({}))
        .await;
    assert_eq!((own.status, own.problem()), (403, "not-yours"));
    let approved = api
        .post(
            &format!("{one}/approve"),
            &carol,
            json!({ "duration": "4h" }),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.json["status"], "active");
    assert_eq!(approved.json["approved_by"], "user:carol@example.com");
    let twice = api.post(&format!("{one}/approve"), &carol, json!({})).await;
    assert_eq!((twice.status, twice.problem()), (409, "changed"));
    assert!(
        twice.json["detail"]
            .as_str()
            .unwrap()
            .contains("approved meanwhile")
    );
    let me = api.get("/api/v1/me", &alice).await;
    assert_eq!(me.json["has_access"], true, "{}", me.body);
    assert_eq!(api.get(&one, &alice).await.json["status"], "active");

    // Extension asked, then declined; the access runs on.
    let missing = api.post(&format!("{one}/extend"), &alice, json!({})).await;
    assert_eq!((missing.status, missing.problem()), (400, "invalid-field"));
    let extend = api
        .post(
            &format!("{one}/extend"),
            &alice,
            json!({ "duration": "30m", "reason": "more" }),
        )
        .await;
    assert_eq!(extend.status, 200, "{}", extend.body);
    assert_eq!(extend.json["extension"]["duration"], "30m");
    let declined = api
        .post(
            &format!("{one}/reject"),
            &carol,
            json!({ "comment": "enough" }),
        )
        .await;
    assert_eq!(declined.status, 200, "{}", declined.body);
    assert_eq!(
        (&declined.json["status"], &declined.json["extension"]),
        (&json!("active"), &Value::Null)
    );

    // Grants: listed, revoked; a second revoke finds it changed.
    let grants = api.get("/api/v1/grants", &carol).await;
    assert_eq!(emails(&grants.json), ["alice@example.com"]);
    let a = api.get("/api/v1/grants?status=pending", &carol).await;
    assert_eq!((a.status, a.problem()), (400, "invalid-field"));
    let revoked = api
        .post(
            &format!("/api/v1/grants/{id}/revoke"),
            &carol,
            json!({ "comment": "done" }),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json["status"], "revoked");
    let again = api
        .post(&format!("/api/v1/grants/{id}/revoke"), &carol, json!({}))
        .await;
    assert_eq!((again.status, again.problem()), (409, "changed"));

    // Withdrawn by its requester; a second withdrawal finds it changed.
    let bobs = api.post("/api/v1/requests", &bob, json!({})).await;
    let bobs = format!("/api/v1/requests/{}", bobs.json["id"].as_str().unwrap());
    let gone = api.post(&format!("{bobs}/withdraw"), &bob, json!({})).await;
    assert_eq!(gone.json["status"], "cancelled", "{}", gone.body);
    let again = api.post(&format!("{bobs}/withdraw"), &bob, json!({})).await;
    assert_eq!((again.status, again.problem()), (409, "changed"));
    let rejected = api.post(&format!("{bobs}/reject"), &carol, json!({})).await;
    assert_eq!((rejected.status, rejected.problem()), (409, "changed"));
}

#[tokio::test]
async fn lists_page_by_cursor_and_filter_like_the_history() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let api = Api::new(&app);
    let carol = env.token(&TestUser::admin());
    let people: Vec<String> = (0..5).map(|i| format!("user{i}@example.com")).collect();
    for (i, email) in people.iter().enumerate() {
        let token = env.token(&TestUser::new(format!("u{i}"), email.clone()));
        let a = api.post("/api/v1/requests", &token, json!({})).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/requests?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&path, &carol).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        let items = emails(&page.json);
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e.to_string()));
        match page.json["next"].as_str() {
            Some(next) => path = format!("/api/v1/requests?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = people.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "each once, newest first");

    let one = api
        .get(
            "/api/v1/requests?person=user3%40example.com&status=pending&resource=default",
            &carol,
        )
        .await;
    assert_eq!(emails(&one.json), ["user3@example.com"]);
    let none = api.get("/api/v1/requests?status=active", &carol).await;
    assert_eq!(emails(&none.json), Vec::<&str>::new());
    let later = api.get("/api/v1/requests?from=2999-01-01", &carol).await;
    assert_eq!(emails(&later.json), Vec::<&str>::new());

    for (query, problem) in [
        ("cursor=bm90LWEtY3Vyc29y", "invalid-cursor"),
        ("cursor=%21%21", "invalid-cursor"),
        ("limit=0", "invalid-field"),
        ("limit=500", "invalid-field"),
        ("status=sleeping", "invalid-field"),
        ("from=yesterday", "invalid-field"),
        ("person=nobody", "invalid-field"),
        ("colour=blue", "unreadable"),
    ] {
        let a = api.get(&format!("/api/v1/requests?{query}"), &carol).await;
        assert_eq!((a.status, a.problem()), (400, problem), "{query}");
    }
    // A history cursor is no requests cursor.
    let history = api.get("/api/v1/history?limit=2", &carol).await;
    assert_eq!(history.json["items"].as_array().unwrap().len(), 2);
    let next = history.json["next"].as_str().unwrap();
    let a = api
        .get(&format!("/api/v1/requests?cursor={next}"), &carol)
        .await;
    assert_eq!(a.problem(), "invalid-cursor");
    let older = api
        .get(&format!("/api/v1/history?limit=2&cursor={next}"), &carol)
        .await;
    let seqs = |v: &Value| -> Vec<u64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let (first, second) = (seqs(&history.json), seqs(&older.json));
    assert!(
        first.iter().all(|s| second.iter().all(|o| o < s)),
        "{first:?} {second:?}"
    );

    let about = api
        .get(
            "/api/v1/history?person=user1%40example.com&action=requested",
            &carol,
        )
        .await;
    let subjects: Vec<&str> = about.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["user1@example.com"]);
    let csv = api
        .get(
            "/api/v1/history/export?format=csv&person=user1%40example.com",
            &carol,
        )
        .await;
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    let jsonl = api.get("/api/v1/history/export", &carol).await;
    assert_eq!(jsonl.body.lines().count(), 5, "{}", jsonl.body);
    let a = api.get("/api/v1/history/export?format=xml", &carol).await;
    assert_eq!((a.status, a.problem()), (400, "invalid-field"));

    let resources = api.get("/api/v1/resources", &carol).await;
    assert_eq!(resources.json[0]["name"], "default", "{}", resources.body);
    assert_eq!(resources.json[0]["approver"], true);
}

/// Open admin mode (no ADMIN_EMAILS/ADMIN_GROUPS): admin rights exist only
/// under `/admin`, so `/api/v1` refuses every approver call with where to
/// go instead, and `/admin/api/v1` answers.
#[tokio::test]
async fn in_open_mode_approver_calls_need_the_admin_route() {
    let env = Env::new().await;
    let mut cmd = env.command(&[]);
    cmd.env_remove("ADMIN_EMAILS");
    let app = App::start(cmd);
    let api = Api::new(&app);
    let (alice, bob) = (env.token(&TestUser::alice()), env.token(&TestUser::bob()));
    let asked = api
        .post(
            "/api/v1/requests",
            &alice,
            json!({ "reason": "secret reason" }),
        )
        .await;
    let id = asked.json["id"].as_str().unwrap().to_owned();

    for path in ["/api/v1/requests", "/api/v1/grants", "/api/v1/history"] {
        let a = api.get(path, &bob).await;
        assert_eq!((a.status, a.problem()), (403, "admin-route-only"), "{path}");
        assert!(a.json["hint"].as_str().unwrap().contains("/admin/api/v1/"));
        assert!(!a.body.contains("alice"));
    }
    for path in [
        format!("/api/v1/requests/{id}/approve"),
        format!("/api/v1/requests/{id}/reject"),
        format!("/api/v1/grants/{id}/revoke"),
    ] {
        let a = api.post(&path, &bob, json!({})).await;
        assert_eq!((a.status, a.problem()), (403, "admin-route-only"), "{path}");
    }
    let a = api.get(&format!("/api/v1/requests/{id}"), &bob).await;
    assert_eq!((a.status, a.problem()), (404, "no-such-request"));
    assert_eq!(
        api.get(&format!("/api/v1/requests/{id}"), &alice)
            .await
            .json["status"],
        "pending"
    );

    // Behind Pomerium's admin route, the same calls work.
    let list = api.get("/admin/api/v1/requests", &bob).await;
    assert_eq!(emails(&list.json), ["alice@example.com"]);
    let approved = api
        .post(
            &format!("/admin/api/v1/requests/{id}/approve"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.json["status"], "active");
}

/// The document lists what is served, under both prefixes: every path and
/// method it names is routed (no `not-found`, no 405), and an undocumented
/// path is not.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let api = Api::new(&app);
    let carol = env.token(&TestUser::admin());
    let doc = api.get("/api/v1/openapi.json", &carol).await;
    assert_eq!(doc.status, 200, "{}", doc.body);
    assert_eq!(doc.json["openapi"], "3.1.0");
    assert_eq!(
        api.get("/admin/api/v1/openapi.json", &carol).await.json,
        doc.json
    );
    let paths = doc.json["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{}", doc.body);
    let unknown = uuid_like();
    for prefix in ["/api/v1", "/admin/api/v1"] {
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let url = format!("{prefix}{}", path.replace("{id}", &unknown));
                let a = match method.as_str() {
                    "get" => api.get(&url, &carol).await,
                    "post" => api.post(&url, &carol, json!({})).await,
                    other => panic!("{other} {path}: a method the test does not know"),
                };
                assert_ne!(a.status, 405, "{method} {url}: {}", a.body);
                assert!(
                    a.json["type"] != "urn:pomerium-jit:problem:not-found",
                    "{method} {url} is documented but not routed: {}",
                    a.body
                );
            }
        }
        let a = api.get(&format!("{prefix}/undocumented"), &carol).await;
        assert_eq!((a.status, a.problem()), (404, "not-found"));
    }
}

/// A request id no request has.
fn uuid_like() -> String {
    "00000000-0000-7000-8000-000000000000".to_owned()
}
