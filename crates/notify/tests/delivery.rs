//! The notifier against real receivers on loopback: a webhook receiver
//! that checks every signature, a Slack incoming-webhook stand-in, and a real
//! SMTP server (aiosmtpd, installed by `.ci/run`). Decisions go through the
//! store as the app makes them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use jit_domain::{Email, GrantDuration, Resource, ResourceName, Rules};
use jit_notify::{Notifier, NotifyConfig, RawNotifications};
use jit_store::Store;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "test-signing-secret";

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// The config of `channels` (TOML tables), paced for tests.
fn config(channels: &str) -> NotifyConfig {
    #[derive(serde::Deserialize)]
    struct File {
        notifications: RawNotifications,
    }
    let text = format!(
        "[notifications]\napp_url = \"https://jit.example.com\"\npoll_interval = \"50ms\"\n\
         retry_min = \"50ms\"\nretry_max = \"200ms\"\nmax_attempts = 1000\n{channels}"
    );
    let file: File = toml::from_str(&text).unwrap();
    let env = |k: &str| (k == "HOOK_SECRET").then(|| SECRET.to_owned());
    file.notifications
        .build(&[ResourceName::default()], &env)
        .unwrap()
}

async fn store(dir: &Path) -> Store {
    Store::connect(&format!("sqlite://{}", dir.join("jit.db").display()))
        .await
        .unwrap()
}

/// Approvers: the admins, carol and dave.
fn setup() -> (Vec<Resource>, Vec<Email>) {
    (
        vec![Resource::original("jit-example", Rules::default())],
        vec![email("carol@x.test"), email("dave@x.test")],
    )
}

async fn request(store: &Store, who: &Email) {
    let rules = Rules::default();
    let now = OffsetDateTime::now_utc();
    store
        .decide(&ResourceName::default(), who, |open| {
            rules.request(open, who, None, now)
        })
        .await
        .unwrap()
        .unwrap();
}

async fn approve(store: &Store, who: &Email, by: &Email) {
    let rules = Rules::default();
    let now = OffsetDateTime::now_utc();
    let d = GrantDuration::from_minutes(60).unwrap();
    store
        .decide(&ResourceName::default(), who, |open| {
            rules.approve(open, who, by, Some(d), now)
        })
        .await
        .unwrap()
        .unwrap();
}

/// What a receiver got: headers and body of each POST.
#[derive(Clone, Default)]
struct Got(Arc<Mutex<Vec<(HeaderMap, String)>>>);

impl Got {
    fn all(&self) -> Vec<(HeaderMap, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// Serves POST / on `listener`, recording each request.
fn receive(listener: tokio::net::TcpListener, got: Got) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                got.0.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

/// Checks `X-Jit-Signature: t=…,v1=…` as the README tells receivers to.
fn signed(headers: &HeaderMap, body: &str) -> bool {
    let Some(sig) = headers.get("x-jit-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let parts: BTreeMap<&str, &str> = sig.split(',').filter_map(|p| p.split_once('=')).collect();
    let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else {
        return false;
    };
    let age = OffsetDateTime::now_utc().unix_timestamp() - t.parse::<i64>().unwrap_or(0);
    let Ok(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    age.abs() < 300 && hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

async fn until<F: Fn() -> bool>(what: &str, f: F) {
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gets_each_event_once_signed_after_an_outage_with_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(&format!(
        "[[notifications.channel]]\nname = \"hook\"\ntype = \"webhook\"\n\
         url = \"http://127.0.0.1:{port}/\"\nsecret_env = \"HOOK_SECRET\"\n"
    ));
    let (resources, admins) = setup();
    let shutdown = CancellationToken::new();
    // Two replicas, each with its own connection pool.
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let s = store(dir.path()).await;
        let n = Notifier::new(s, cfg.clone(), &resources, &admins).unwrap();
        replicas.push(tokio::spawn(n.run(shutdown.child_token())));
    }
    let s = store(dir.path()).await;
    let people: Vec<Email> = (0..5).map(|i| email(&format!("p{i}@x.test"))).collect();
    for p in &people {
        request(&s, p).await;
        approve(&s, p, &email("carol@x.test")).await;
    }
    // Failing meanwhile: retried, and the error is on record.
    let failing = async {
        loop {
            let (status, _) = s.notification_status().await.unwrap();
            if status
                .first()
                .is_some_and(|c| c.last_error.is_some() && c.pending == 10)
            {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(10), failing)
        .await
        .expect("failures recorded");
    assert_eq!(status[0].pending, 10);
    assert!(
        status[0]
            .last_error
            .as_ref()
            .unwrap()
            .0
            .contains("cannot connect"),
        "{status:?}"
    );

    // The receiver comes back on its address.
    let got = Got::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = receive(listener, got.clone());
    until("ten notices", || got.all().len() >= 10).await;
    // Time for any repeat to show up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = got.all();
    let keys: BTreeSet<String> = all
        .iter()
        .map(|(h, _)| h["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!((all.len(), keys.len()), (10, 10), "each once: {keys:?}");
    assert!(
        all.iter().all(|(h, b)| signed(h, b)),
        "every message signed"
    );
    let actions: Vec<String> = all
        .iter()
        .map(|(h, b)| {
            let v: Value = serde_json::from_str(b).unwrap();
            assert_eq!(v["idempotency_key"], h["idempotency-key"].to_str().unwrap());
            v["event"]["action"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "requested").count(), 5);
    assert_eq!(actions.iter().filter(|a| *a == "approved").count(), 5);
    // A tampered body fails the check.
    assert!(!signed(&all[0].0, &all[0].1.replace('p', "q")));

    let (status, unexpanded) = s.notification_status().await.unwrap();
    assert_eq!((status[0].pending, unexpanded), (0, 0));
    assert!(status[0].last_success_at.is_some());
    shutdown.cancel();
    for r in replicas {
        r.await.unwrap();
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_asks_with_buttons_then_follow_ups() {
    let dir = tempfile::tempdir().unwrap();
    let got = Got::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = receive(listener, got.clone());
    let cfg = config(&format!(
        "[[notifications.channel]]\nname = \"ops\"\ntype = \"slack\"\nurl = \"http://{addr}/\"\n"
    ));
    let (resources, admins) = setup();
    let s = store(dir.path()).await;
    let shutdown = CancellationToken::new();
    let n = Notifier::new(s.clone(), cfg, &resources, &admins).unwrap();
    let worker = tokio::spawn(n.run(shutdown.child_token()));

    let alice = email("alice@x.test");
    request(&s, &alice).await;
    until("the ask", || got.all().len() == 1).await;
    approve(&s, &alice, &email("carol@x.test")).await;
    until("the follow-up", || got.all().len() == 2).await;
    let id = s
        .request_for(&ResourceName::default(), &alice)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let msgs: Vec<Value> = got
        .all()
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    let ask = &msgs[0]["blocks"][1];
    assert_eq!(ask["type"], "actions");
    assert_eq!(ask["elements"][0]["action_id"], "jit_approve");
    assert_eq!(ask["elements"][1]["action_id"], "jit_reject");
    assert_eq!(ask["elements"][0]["value"], id.as_str());
    let follow = msgs[1]["text"].as_str().unwrap();
    assert!(
        follow.starts_with("carol@x.test approved alice@x.test's access to Protected app"),
        "{follow}"
    );
    assert_eq!(msgs[1]["blocks"].as_array().unwrap().len(), 1, "no buttons");
    assert!(
        msgs[1]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("https://jit.example.com/admin/requests/{id}"))
    );
    shutdown.cancel();
    worker.await.unwrap();
    server.abort();
}

/// aiosmtpd on a free loopback port, writing each message into a maildir.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn smtp_server() -> Option<SmtpServer> {
    let have = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but aiosmtpd is missing: `.ci/run` installs it with pip"
        );
        eprintln!("note: python3 -m aiosmtpd is not installed; skipping (pip install aiosmtpd)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .spawn()
        .unwrap();
    let server = SmtpServer {
        child,
        port,
        maildir,
    };
    until("aiosmtpd to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    Some(server)
}

/// Each mail in the maildir: (To, Message-ID, Subject, body).
fn mails(dir: &Path) -> Vec<(String, String, String, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join("mail").join("new")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        out.push((
            header("To"),
            header("Message-ID"),
            header("Subject"),
            body.to_owned(),
        ));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_asks_the_approvers_and_tells_the_requester_over_real_smtp() {
    let Some(smtp) = smtp_server().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "[[notifications.channel]]\nname = \"mail\"\ntype = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {}\ntls = \"none\"\nfrom = \"pomerium-jit <jit@x.test>\"\n",
        smtp.port
    ));
    let (resources, admins) = setup();
    let s = store(dir.path()).await;
    let shutdown = CancellationToken::new();
    let n = Notifier::new(s.clone(), cfg, &resources, &admins).unwrap();
    let worker = tokio::spawn(n.run(shutdown.child_token()));

    let alice = email("alice@x.test");
    request(&s, &alice).await;
    until("mail to both approvers", || {
        mails(smtp.maildir.path()).len() == 2
    })
    .await;
    approve(&s, &alice, &email("carol@x.test")).await;
    // Alice is told; dave hears carol acted; carol is not mailed about her act.
    until("mail about the approval", || {
        mails(smtp.maildir.path()).len() == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = mails(smtp.maildir.path());
    let to: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        to,
        ["alice@x.test", "carol@x.test", "dave@x.test", "dave@x.test"],
        "{got:#?}"
    );
    let ids: BTreeSet<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), 4, "one Message-ID per delivery");
    let alice_mail = &got[0];
    assert!(
        alice_mail
            .2
            .starts_with("carol@x.test approved alice@x.test's access"),
        "{alice_mail:?}"
    );
    assert!(
        alice_mail.3.contains("https://jit.example.com/requests/"),
        "{alice_mail:?}"
    );
    shutdown.cancel();
    worker.await.unwrap();
}
