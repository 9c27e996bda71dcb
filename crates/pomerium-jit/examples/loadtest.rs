//! The load test behind the numbers in the closing notes and the README:
//! `scripts/load-test.sh` builds this in release mode and runs it.
//!
//! It starts the fake Pomerium Zero and the fake signer in this process,
//! spawns the release `pomerium-jit` binary against them on loopback, and
//! measures with `oha` (which must be on PATH):
//! - a minimal axum hello-world (served here) as the machine's baseline,
//! - `GET /` at concurrency 64,
//! - `GET /admin` with 1,000 entries,
//! - the upstream writes and wall time of a burst of 100 approvals,
//! - the app's idle and peak RSS (VmRSS / VmHWM from /proc).
//!
//! Every load run is bounded in time and targets 127.0.0.1 only.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_fakes::zero::{FakeZero, FakeZeroConfig};

const SECONDS: &str = "10s";

#[tokio::main]
async fn main() {
    let zero = FakeZero::start(FakeZeroConfig::default())
        .await
        .expect("fake zero");
    let signer = Signer::new(Alg::Es256).expect("signer");
    let jwks = JwksServer::start(signer.clone()).await.expect("jwks");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bin = std::env::var("PJ_BIN").unwrap_or_else(|_| "target/release/pomerium-jit".into());
    let mut app = Command::new(bin)
        .env("API_USER_TOKEN", zero.api_user_token())
        .env("ORGANIZATION_ID", zero.organization_id())
        .env("CLUSTER_ID", zero.cluster_id())
        .env("JWKS_ENDPOINT", jwks.url())
        .env("API_BASE_URL", zero.base_url())
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("jit.db").display()),
        )
        .env("ADMIN_EMAILS", TestUser::admin().email)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the release binary (build it first: cargo build --release)");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_healthy(&http, &base).await;
    let host = jwks.host();
    let user = signer.mint(&host, &TestUser::alice());
    // A token lives 5 minutes: mint fresh ones per phase.
    let admin = || signer.mint(&host, &TestUser::admin());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(&app);
    println!("idle RSS: {:.1} MB", idle.0 as f64 / 1024.0);

    let hello = hello_world().await;
    let r_hello = oha(&format!("http://{hello}/"), None, 64);
    let r_index = oha(&format!("{base}/"), Some(&user), 64);
    println!("hello-world c=64: {r_hello}");
    println!("GET / c=64:       {r_index}");
    println!(
        "GET / vs hello-world: {:.0}%",
        100.0 * r_index.rps / r_hello.rps
    );

    // 1,000 entries: 500 pending, 500 granted.
    let users: Vec<TestUser> = (0..1000)
        .map(|i| TestUser::new(format!("load{i}"), format!("load{i}@example.com")))
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in users.chunks(50) {
        let tokens: Vec<String> = chunk.iter().map(|u| signer.mint(&host, u)).collect();
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for t in tokens {
                post(&http, &base, "/request-access", &t, &[]).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "1,000 requests filed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    approve_burst(
        &http,
        &base,
        &admin(),
        &users[..500],
        &zero,
        "500 approvals (seeding)",
    )
    .await;

    let r_admin = oha(&format!("{base}/admin"), Some(&admin()), 16);
    println!("GET /admin, 1,000 entries, c=16: {r_admin}");

    // The burst the issue asks about: 100 concurrent approvals.
    let more: Vec<TestUser> = (0..100)
        .map(|i| TestUser::new(format!("burst{i}"), format!("burst{i}@example.com")))
        .collect();
    for u in &more {
        post(&http, &base, "/request-access", &signer.mint(&host, u), &[]).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    approve_burst(
        &http,
        &base,
        &admin(),
        &more,
        &zero,
        "burst of 100 approvals",
    )
    .await;

    let (rss, hwm) = rss_kib(&app);
    println!(
        "RSS now: {:.1} MB, peak: {:.1} MB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let _ = app.kill();
    let _ = app.wait();
}

async fn approve_burst(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    users: &[TestUser],
    zero: &FakeZero,
    label: &str,
) {
    let writes = zero.policy_writes();
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            let (http, base, admin, email) = (
                http.clone(),
                base.to_owned(),
                admin.to_owned(),
                u.email.clone(),
            );
            tokio::spawn(async move {
                post(
                    &http,
                    &base,
                    "/admin/approve-access",
                    &admin,
                    &[("email", &email)],
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 303 {
            ok += 1;
        }
    }
    println!(
        "{label}: {ok}/{} answered 303 (applied) in {:.2} s with {} upstream policy writes",
        users.len(),
        started.elapsed().as_secs_f64(),
        zero.policy_writes() - writes
    );
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    form: &[(&str, &str)],
) -> u16 {
    http.post(format!("{base}{path}"))
        .header("X-Pomerium-Jwt-Assertion", token)
        .header("Sec-Fetch-Site", "same-origin")
        .form(form)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: f64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, success {:.1}%",
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.ok * 100.0
        )
    }
}

fn oha(url: &str, token: Option<&str>, concurrency: u32) -> Load {
    let mut cmd = Command::new("oha");
    cmd.args([
        "-z",
        SECONDS,
        "-c",
        &concurrency.to_string(),
        "--no-tui",
        "--output-format",
        "json",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Pomerium-Jwt-Assertion: {t}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("oha on PATH (cargo install oha)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oha JSON");
    Load {
        rps: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: v["latencyPercentiles"]["p50"].as_f64().unwrap_or(0.0) * 1000.0,
        p99_ms: v["latencyPercentiles"]["p99"].as_f64().unwrap_or(0.0) * 1000.0,
        ok: v["summary"]["successRate"].as_f64().unwrap_or(0.0),
    }
}

async fn hello_world() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app did not become healthy");
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(child: &Child) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
