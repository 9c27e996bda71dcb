//! Approving from Slack through the real binary: Slack's calls replayed
//! with correct and forged signatures, against a fake Slack on loopback
//! that receives the answers (response_url) and serves users.info.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use jit_fakes::pomerium::TestUser;
use serde_json::{Value, json};

use crate::harness::{App, Env, is_granted, is_pending};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const BOT_TOKEN: &str = "xoxb-test-token";

const FILE: &str = r#"
[[resource]]
name = "default"
title = "Protected app"
policy = { name = "jit-example" }

[[resource]]
name = "prod-db"
title = "Production database"
policy = { name = "jit-prod-db" }
approvers = { emails = ["carol@example.com", "dave@example.com", "alice@example.com"] }
approvals_needed = 2
"#;

const TABLE: &str = r#"
[slack]
users = { UCAROL = "carol@example.com", UDAVE = "dave@example.com", UBOB = "bob@example.com", UALICE = "alice@example.com" }
"#;

/// What the fake Slack saw.
#[derive(Default)]
struct Seen {
    /// Bodies posted to response_urls, by the URL's last segment.
    replies: Vec<(String, Value)>,
    /// users.info calls: the user asked for and the Authorization header.
    lookups: Vec<(String, String)>,
}

/// Slack's side: response_url receivers and users.info, on loopback.
struct FakeSlack {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

impl FakeSlack {
    async fn start() -> FakeSlack {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .route(
                "/hooks/{id}",
                post(
                    |State(seen): State<Arc<Mutex<Seen>>>,
                     Path(id): Path<String>,
                     Json(body): Json<Value>| async move {
                        seen.lock().unwrap().replies.push((id, body));
                        "ok"
                    },
                ),
            )
            .route(
                "/api/users.info",
                get(
                    |State(seen): State<Arc<Mutex<Seen>>>,
                     headers: HeaderMap,
                     Query(q): Query<HashMap<String, String>>| async move {
                        let user = q.get("user").cloned().unwrap_or_default();
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock()
                            .unwrap()
                            .lookups
                            .push((user.clone(), auth.clone()));
                        if auth != format!("Bearer {BOT_TOKEN}") {
                            return Json(json!({ "ok": false, "error": "invalid_auth" }));
                        }
                        Json(match user.as_str() {
                            "UCAROL" => json!({ "ok": true, "user": {
                                "id": "UCAROL", "deleted": false, "is_bot": false,
                                "is_email_confirmed": true,
                                "profile": { "email": "carol@example.com" } } }),
                            "UGONE" => json!({ "ok": true, "user": {
                                "id": "UGONE", "deleted": true,
                                "profile": { "email": "dave@example.com" } } }),
                            _ => json!({ "ok": false, "error": "user_not_found" }),
                        })
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeSlack {
            base: format!("http://{addr}"),
            seen,
        }
    }

    /// The app's settings for this fake, the secret and the file.
    fn env(&self, env: &Env, file: &str) -> Vec<(String, String)> {
        let path = env.dir.path().join("resources.toml");
        std::fs::write(&path, file).unwrap();
        vec![
            ("CONFIG_FILE".into(), path.display().to_string()),
            ("SLACK_SIGNING_SECRET".into(), SECRET.into()),
            (
                "SLACK_RESPONSE_URL_BASE".into(),
                format!("{}/hooks/", self.base),
            ),
        ]
    }

    /// Waits for the answer posted to the response_url ending in `id`.
    async fn reply(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((_, v)) = self
                .seen
                .lock()
                .unwrap()
                .replies
                .iter()
                .find(|(i, _)| i == id)
            {
                return v.clone();
            }
            assert!(Instant::now() < deadline, "no answer posted to {id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn replies(&self) -> usize {
        self.seen.lock().unwrap().replies.len()
    }
}

fn spawn(env: &Env, settings: &[(String, String)]) -> App {
    let extra: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.spawn(&extra)
}

/// A click as Slack sends it: the form body and its headers.
struct Click {
    body: String,
    timestamp: i64,
}

impl Click {
    fn new(slack: &FakeSlack, user: &str, action_id: &str, request: &str, hook: &str) -> Click {
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "team_id": "T1" },
            "team": { "id": "T1", "domain": "example" },
            "api_app_id": "A1",
            "token": "deprecated-verification-token",
            "trigger_id": "1.2.3",
            "response_url": format!("{}/hooks/{hook}", slack.base),
            "actions": [{
                "action_id": action_id, "block_id": "decide", "type": "button",
                "value": request, "action_ts": "1700000000.000100",
                "text": { "type": "plain_text", "text": "Approve" }
            }],
        });
        let mut form = reqwest::Url::parse("http://x/").unwrap();
        form.query_pairs_mut()
            .append_pair("payload", &payload.to_string());
        Click {
            body: form.query().unwrap().to_owned(),
            timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    fn signature(&self, secret: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let tag = hmac::sign(
            &key,
            format!("v0:{}:{}", self.timestamp, self.body).as_bytes(),
        );
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("v0={hex}")
    }

    /// Sends it with these headers (none of Pomerium's, as Pomerium's
    /// public route forwards it).
    async fn send_with(&self, app: &App, headers: &[(&str, String)], body: &str) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .post(app.url("/slack/actions"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn send(&self, app: &App) -> (u16, String) {
        let headers = [
            ("X-Slack-Request-Timestamp", self.timestamp.to_string()),
            ("X-Slack-Signature", self.signature(SECRET)),
        ];
        self.send_with(app, &headers, &self.body).await
    }
}

/// Alice asks for `resource`; her request's id.
async fn request(env: &Env, app: &App, resource: &str) -> String {
    let alice = env.token(&TestUser::alice());
    let (status, body) = app
        .post(
            "/request-access",
            &alice,
            &[("resource", resource), ("reason", "deploy")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    mine(env, app, resource).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Alice's latest request on `resource`, as the API shows it.
async fn mine(env: &Env, app: &App, resource: &str) -> Value {
    let (_, me) = app
        .get("/api/v1/me", Some(&env.token(&TestUser::alice())))
        .await;
    let me: Value = serde_json::from_str(&me).unwrap();
    me["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == resource)
        .cloned()
        .unwrap_or(Value::Null)
}

fn text(reply: &Value) -> &str {
    reply["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_signed_approve_from_a_mapped_approver_approves_once_and_updates_the_message() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    let app = spawn(&env, &slack.env(&env, &format!("{FILE}{TABLE}")));
    let id = request(&env, &app, "default").await;

    let click = Click::new(&slack, "UCAROL", "jit_approve", &id, "one");
    let (status, body) = click.send(&app).await;
    assert_eq!(status, 200, "{body}");
    let reply = slack.reply("one").await;
    assert_eq!(reply["replace_original"], true, "{reply}");
    assert!(
        text(&reply).starts_with(
            "Approved by carol@example.com: alice@example.com has access to Protected app until "
        ),
        "{reply}"
    );
    assert_eq!(reply["blocks"][0]["type"], "section");
    assert!(is_granted(&env.ppl().unwrap(), "alice@example.com"));
    // The audit trail says where it was decided.
    let (status, history) = app
        .get("/admin/history.jsonl", Some(&env.token(&TestUser::admin())))
        .await;
    assert_eq!(status, 200);
    let approved: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e.to_string().contains("\"approved\""))
        .collect();
    assert_eq!(approved.len(), 1, "{history}");
    assert_eq!(approved[0]["details"]["via"], "slack", "{history}");
    assert!(
        approved[0].to_string().contains("carol@example.com"),
        "{history}"
    );

    // The same request again, byte for byte: a replay.
    let (status, body) = click.send(&app).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("already received"), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.replies(), 1);
}

#[tokio::test]
async fn forged_stale_or_unsigned_calls_are_refused_and_change_nothing() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    let app = spawn(&env, &slack.env(&env, &format!("{FILE}{TABLE}")));
    let id = request(&env, &app, "default").await;
    let click = Click::new(&slack, "UCAROL", "jit_approve", &id, "forged");
    let ts = click.timestamp.to_string();
    let good = click.signature(SECRET);

    let mut stale = Click::new(&slack, "UCAROL", "jit_approve", &id, "forged");
    stale.timestamp -= 6 * 60;
    let mut ahead = Click::new(&slack, "UCAROL", "jit_approve", &id, "forged");
    ahead.timestamp += 6 * 60;
    let other_user = click.body.replace("UCAROL", "UDAVE");
    for (what, headers, body, needle) in [
        (
            "wrong secret",
            vec![
                ("X-Slack-Request-Timestamp", ts.clone()),
                ("X-Slack-Signature", click.signature("not-the-secret")),
            ],
            click.body.clone(),
            "does not match",
        ),
        (
            "body changed after signing",
            vec![
                ("X-Slack-Request-Timestamp", ts.clone()),
                ("X-Slack-Signature", good.clone()),
            ],
            other_user,
            "does not match",
        ),
        (
            "6 minutes old",
            vec![
                ("X-Slack-Request-Timestamp", stale.timestamp.to_string()),
                ("X-Slack-Signature", stale.signature(SECRET)),
            ],
            stale.body.clone(),
            "more than 5 minutes",
        ),
        (
            "6 minutes ahead",
            vec![
                ("X-Slack-Request-Timestamp", ahead.timestamp.to_string()),
                ("X-Slack-Signature", ahead.signature(SECRET)),
            ],
            ahead.body.clone(),
            "ahead of this clock",
        ),
        (
            "no signature",
            vec![("X-Slack-Request-Timestamp", ts.clone())],
            click.body.clone(),
            "no X-Slack-Signature",
        ),
        (
            "garbled signature",
            vec![
                ("X-Slack-Request-Timestamp", ts.clone()),
                ("X-Slack-Signature", "v0=zz".into()),
            ],
            click.body.clone(),
            "not v0=",
        ),
        (
            "no timestamp",
            vec![("X-Slack-Signature", good.clone())],
            click.body.clone(),
            "no X-Slack-Request-Timestamp",
        ),
    ] {
        let (status, answer) = click.send_with(&app, &headers, &body).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert!(answer.contains(needle), "{what}: {answer}");
    }
    // A body past the cap is refused whole, before its signature is read.
    let padded = format!("{}&pad={}", click.body, "x".repeat(20_000));
    let signed = [
        ("X-Slack-Request-Timestamp", ts.clone()),
        ("X-Slack-Signature", good.clone()),
    ];
    let (status, answer) = click.send_with(&app, &signed, &padded).await;
    assert_eq!(status, 413, "{answer}");
    // A Pomerium assertion does not stand in for Slack's signature.
    let carol = env.token(&TestUser::admin());
    let (status, _) = click
        .send_with(&app, &[("X-Pomerium-Jwt-Assertion", carol)], &click.body)
        .await;
    assert_eq!(status, 401);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.replies(), 0);
    let r = mine(&env, &app, "default").await;
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["approvals"], json!([]), "{r}");
    assert!(is_pending(&env.ppl().unwrap(), "alice@example.com"));
    let (_, history) = app
        .get("/admin/history.jsonl", Some(&env.token(&TestUser::admin())))
        .await;
    assert!(
        !history.contains("\"approved\"") && !history.contains("slack"),
        "{history}"
    );

    // The genuine click still works afterwards.
    let (status, _) = click.send(&app).await;
    assert_eq!(status, 200);
    assert_eq!(slack.reply("forged").await["replace_original"], true);
}

#[tokio::test]
async fn unmapped_users_and_non_approvers_are_told_why_and_nothing_changes() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    let app = spawn(&env, &slack.env(&env, &format!("{FILE}{TABLE}")));
    let id = request(&env, &app, "default").await;

    let (status, _) = Click::new(&slack, "UNOBODY", "jit_approve", &id, "nobody")
        .send(&app)
        .await;
    assert_eq!(status, 200);
    let reply = slack.reply("nobody").await;
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    assert_eq!(reply["replace_original"], false, "{reply}");
    assert!(
        text(&reply).contains("Your Slack account (UNOBODY) is not in the [slack] users table"),
        "{reply}"
    );

    // Bob is mapped but approves nothing; rejecting is refused the same way.
    for (action, hook) in [("jit_approve", "bob1"), ("jit_reject", "bob2")] {
        let (status, _) = Click::new(&slack, "UBOB", action, &id, hook)
            .send(&app)
            .await;
        assert_eq!(status, 200);
        let reply = slack.reply(hook).await;
        assert_eq!(reply["response_type"], "ephemeral", "{reply}");
        assert_eq!(
            text(&reply),
            "You are not an approver of Protected app, so nothing was changed.",
            "{reply}"
        );
    }
    let r = mine(&env, &app, "default").await;
    assert_eq!(r["status"], "pending", "{r}");

    // Carol rejects; a late approve finds it no longer pending.
    Click::new(&slack, "UCAROL", "jit_reject", &id, "reject")
        .send(&app)
        .await;
    let reply = slack.reply("reject").await;
    assert_eq!(
        text(&reply),
        "Rejected by carol@example.com: alice@example.com's request for Protected app.",
        "{reply}"
    );
    assert_eq!(reply["replace_original"], true);
    Click::new(&slack, "UCAROL", "jit_approve", &id, "late")
        .send(&app)
        .await;
    let reply = slack.reply("late").await;
    assert!(
        text(&reply).starts_with("This request changed: it is no longer open"),
        "{reply}"
    );
    assert_eq!(mine(&env, &app, "default").await["status"], "rejected");

    // A button that is not the app's: answered, ignored.
    let (status, _) = Click::new(&slack, "UCAROL", "open_link", "", "link")
        .send(&app)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !slack
            .seen
            .lock()
            .unwrap()
            .replies
            .iter()
            .any(|(h, _)| h == "link")
    );
}

#[tokio::test]
async fn two_of_n_needs_two_distinct_slack_approvers_and_never_the_requester() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    let app = spawn(&env, &slack.env(&env, &format!("{FILE}{TABLE}")));
    let id = request(&env, &app, "prod-db").await;

    // Alice is an approver of prod-db, but this is her own request.
    Click::new(&slack, "UALICE", "jit_approve", &id, "self")
        .send(&app)
        .await;
    let reply = slack.reply("self").await;
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        text(&reply).contains("you cannot approve your own request"),
        "{reply}"
    );

    Click::new(&slack, "UCAROL", "jit_approve", &id, "carol")
        .send(&app)
        .await;
    let reply = slack.reply("carol").await;
    assert_eq!(
        text(&reply),
        "Approved by carol@example.com (1 of 2): Production database for alice@example.com waits for another approver.",
        "{reply}"
    );
    // The message and its buttons stay for the next approver.
    assert_eq!(reply["replace_original"], false);
    assert_eq!(reply["response_type"], "in_channel");
    assert_eq!(mine(&env, &app, "prod-db").await["status"], "pending");

    Click::new(&slack, "UCAROL", "jit_approve", &id, "carol-again")
        .send(&app)
        .await;
    let reply = slack.reply("carol-again").await;
    assert!(
        text(&reply).contains("you already approved this"),
        "{reply}"
    );
    assert_eq!(mine(&env, &app, "prod-db").await["status"], "pending");

    Click::new(&slack, "UDAVE", "jit_approve", &id, "dave")
        .send(&app)
        .await;
    let reply = slack.reply("dave").await;
    assert!(
        text(&reply).starts_with(
            "Approved by dave@example.com (2 of 2): alice@example.com has access to Production database until "
        ),
        "{reply}"
    );
    assert_eq!(reply["replace_original"], true);
    let r = mine(&env, &app, "prod-db").await;
    assert_eq!(r["status"], "active", "{r}");
    let by: Vec<&str> = r["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["carol@example.com", "dave@example.com"], "{r}");
}

#[tokio::test]
async fn users_info_maps_slack_users_by_their_profile_email() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    // No table: every Slack user is looked up.
    let mut settings = slack.env(&env, FILE);
    settings.push(("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()));
    settings.push(("SLACK_API_BASE_URL".into(), format!("{}/api", slack.base)));
    let app = spawn(&env, &settings);
    let id = request(&env, &app, "default").await;

    for (user, hook, needle) in [
        ("UNOBODY", "nobody", "user_not_found"),
        ("UGONE", "gone", "a deactivated account or a bot"),
    ] {
        Click::new(&slack, user, "jit_approve", &id, hook)
            .send(&app)
            .await;
        let reply = slack.reply(hook).await;
        assert!(text(&reply).contains(needle), "{reply}");
        assert_eq!(reply["response_type"], "ephemeral");
    }
    assert_eq!(mine(&env, &app, "default").await["status"], "pending");

    Click::new(&slack, "UCAROL", "jit_approve", &id, "carol")
        .send(&app)
        .await;
    let reply = slack.reply("carol").await;
    assert!(
        text(&reply).starts_with("Approved by carol@example.com"),
        "{reply}"
    );
    assert_eq!(mine(&env, &app, "default").await["status"], "active");
    // Cached: a second click by carol asks Slack nothing more.
    Click::new(&slack, "UCAROL", "jit_approve", &id, "carol-again")
        .send(&app)
        .await;
    slack.reply("carol-again").await;
    let lookups = slack.seen.lock().unwrap().lookups.clone();
    let carols: Vec<_> = lookups.iter().filter(|(u, _)| u == "UCAROL").collect();
    assert_eq!(carols.len(), 1, "{lookups:?}");
    assert!(
        lookups
            .iter()
            .all(|(_, auth)| auth == &format!("Bearer {BOT_TOKEN}")),
        "{lookups:?}"
    );
    assert!(!app.log_text().contains(BOT_TOKEN));
    assert!(!app.log_text().contains(SECRET));
}

#[tokio::test]
async fn without_slack_settings_the_endpoint_is_not_there() {
    let env = Env::new().await;
    let slack = FakeSlack::start().await;
    let app = env.spawn(&[]);
    let click = Click::new(&slack, "UCAROL", "jit_approve", "x", "none");
    let (status, _) = click.send(&app).await;
    assert_eq!(status, 404);
}
