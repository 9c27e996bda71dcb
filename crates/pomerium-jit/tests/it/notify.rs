//! Notifications through the real binary: a config file naming a webhook
//! channel, a receiver on loopback that checks every signature, a request
//! and its approval told; the admin page's channel table; `doctor` checking
//! each channel, failing for one that does not answer.

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use jit_fakes::pomerium::TestUser;
use serde_json::Value;

use crate::harness::Env;

const SECRET: &str = "notify-test-secret";

/// Bodies the receiver got whose signature checked out, and how many did not.
#[derive(Clone, Default)]
struct Receiver {
    good: Arc<Mutex<Vec<(String, Value)>>>,
    bad: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Serves `POST /hook` on a loopback port; returns its URL.
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    if verified(&headers, &body) {
                        me.good
                            .lock()
                            .unwrap()
                            .push((key, serde_json::from_str(&body).unwrap()));
                    } else {
                        *me.bad.lock().unwrap() += 1;
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    async fn wait(&self, what: &str, n: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.good.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `X-Jit-Signature: t=…,v1=…` checked as the README shows.
fn verified(headers: &HeaderMap, body: &str) -> bool {
    let Some(sig) = headers.get("x-jit-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut t = "";
    let mut v1 = "";
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => v1 = v,
            _ => {}
        }
    }
    let tag: Option<Vec<u8>> = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2)?, 16).ok())
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    tag.is_some_and(|tag| hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok())
}

/// The config file: the one resource and a webhook channel to `url`.
fn config(env: &Env, url: &str) -> Vec<(String, String)> {
    let path = env.dir.path().join("jit.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[resource]]
name = "default"
title = "Protected app"
policy = {{ name = "jit-example" }}

[notifications]
app_url = "https://jit.example.com"
poll_interval = "100ms"
retry_min = "100ms"
retry_max = "1s"

[[notifications.channel]]
name = "audit-hook"
type = "webhook"
url = "{url}"
secret_env = "JIT_WEBHOOK_SECRET"
"#
        ),
    )
    .unwrap();
    vec![
        ("CONFIG_FILE".into(), path.display().to_string()),
        ("JIT_WEBHOOK_SECRET".into(), SECRET.into()),
    ]
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn a_request_and_its_approval_reach_a_signed_webhook_once() {
    let env = Env::new().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let settings = config(&env, &url);
    let app = env.spawn(&pairs(&settings));
    let (alice, admin) = (TestUser::alice(), TestUser::admin());

    let (status, _) = app.post("/request-access", &env.token(&alice), &[]).await;
    assert_eq!(status, 303);
    let got = receiver.wait("the request", 1).await;
    let (key, asked) = &got[0];
    assert_eq!(asked["event"]["action"], "requested");
    assert_eq!(asked["request"]["email"], "alice@example.com");
    assert_eq!(&asked["idempotency_key"], key.as_str());

    let (status, _) = app
        .post(
            "/admin/approve-access",
            &env.token(&admin),
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    let got = receiver.wait("the approval", 2).await;
    let told = &got[1].1;
    assert_eq!(told["event"]["action"], "approved");
    assert_eq!(told["event"]["actor"], "user:carol@example.com");
    assert_eq!(told["request"]["status"], "active");
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .starts_with("carol@example.com approved alice@example.com's access to Protected app"),
        "{told}"
    );
    // Nothing twice, nothing unsigned.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.good.lock().unwrap().len(), 2);
    assert_eq!(*receiver.bad.lock().unwrap(), 0);

    // Admins see the channel on /admin.
    let (status, page) = app.get("/admin", Some(&env.token(&admin))).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<h2 id="notify-title">Notifications</h2>"#),
        "{page}"
    );
    assert!(
        page.contains("audit-hook <span class=\"muted\">(webhook)</span>"),
        "{page}"
    );
}

#[tokio::test]
async fn doctor_checks_each_channel_and_fails_one_that_does_not_answer() {
    let env = Env::new().await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let doctor = |settings: Vec<(String, String)>| {
        let mut cmd = env.command(&pairs(&settings));
        cmd.arg("doctor").stdout(Stdio::piped());
        async move {
            let Output { stdout, .. } = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&stdout).into_owned()
        }
    };
    let line = |out: &str| {
        out.lines()
            .find(|l| l.contains("notify audit-hook (webhook): "))
            .unwrap_or_else(|| panic!("no notify line in {out}"))
            .to_owned()
    };
    let up = doctor(config(&env, &url)).await;
    assert!(line(&up).starts_with("ok   "), "{up}");

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = doctor(config(&env, &format!("http://127.0.0.1:{port}/hook"))).await;
    let l = line(&down);
    assert!(
        l.starts_with("FAIL ") && l.contains("cannot connect"),
        "{down}"
    );
    // Nothing was sent by either check.
    assert!(receiver.good.lock().unwrap().is_empty());
}
