use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_fakes::zero::{FakeZero, FakeZeroConfig};
use serde_json::Value;

pub const POLICY: &str = "jit-example";

/// The world around the app: fake Zero, fake Pomerium keys, a data directory.
pub struct Env {
    pub zero: FakeZero,
    pub signer: Signer,
    pub jwks: JwksServer,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Env {
        Self::with_zero(FakeZeroConfig::default()).await
    }

    pub async fn with_zero(config: FakeZeroConfig) -> Env {
        let zero = FakeZero::start(config).await.expect("fake zero");
        let signer = Signer::new(Alg::Es256).expect("signer");
        let jwks = JwksServer::start(signer.clone()).await.expect("jwks");
        Env {
            zero,
            signer,
            jwks,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Starts the app with the original's environment plus `extra`.
    pub fn spawn(&self, extra: &[(&str, &str)]) -> App {
        App::start(self.command(extra))
    }

    /// The app's command line with the original's environment plus `extra`,
    /// stderr piped.
    pub fn command(&self, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pomerium-jit"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("API_USER_TOKEN", self.zero.api_user_token())
            .env("ORGANIZATION_ID", self.zero.organization_id())
            .env("CLUSTER_ID", self.zero.cluster_id())
            .env("JWKS_ENDPOINT", self.jwks.url())
            .env("API_BASE_URL", self.zero.base_url())
            .env("PORT", "0")
            .env("BIND_ADDRESS", "127.0.0.1")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", self.dir.path().join("jit.db").display()),
            )
            .env("ADMIN_EMAILS", TestUser::admin().email)
            .env("SYNC_INTERVAL", "2s")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// A fresh assertion for `user`, minted as Pomerium would for the app's host.
    pub fn token(&self, user: &TestUser) -> String {
        self.signer.mint(&self.jwks.host(), user)
    }

    /// The JIT policy's PPL as Zero holds it.
    pub fn ppl(&self) -> Option<Value> {
        self.zero.policy_by_name(POLICY).map(|p| p["ppl"].clone())
    }

    /// Waits until `check` holds for the policy's PPL.
    pub async fn wait_ppl(&self, what: &str, check: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(ppl) = self.ppl()
                && check(&ppl)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}; policy is {:?}",
                self.ppl()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running `pomerium-jit` process; killed on drop.
pub struct App {
    child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl App {
    /// Spawns `cmd` and waits for it to log that it listens.
    pub fn start(mut cmd: Command) -> App {
        let mut child = cmd.spawn().expect("spawn pomerium-jit");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(address);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "pomerium-jit did not start; logs: {:#?}",
                    logs.lock().unwrap()
                );
            }
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        App {
            child,
            base: format!("http://{addr}"),
            logs,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.header("X-Pomerium-Jwt-Assertion", t);
        }
        let resp = req.send().await.expect("GET");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    /// A same-origin form POST, as the app's own pages send it.
    pub async fn post(&self, path: &str, token: &str, form: &[(&str, &str)]) -> (u16, String) {
        self.post_with(path, token, form, &[("Sec-Fetch-Site", "same-origin")])
            .await
    }

    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("X-Pomerium-Jwt-Assertion", token)
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("POST");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    /// Like [`App::post`], but a connection that fails (a killed process)
    /// is an error rather than a panic.
    pub async fn try_post(
        &self,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<(u16, String)> {
        let resp = self
            .http
            .post(self.url(path))
            .header("X-Pomerium-Jwt-Assertion", token)
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name `kill` knows: STOP, CONT, KILL) to the process
    /// without taking it, for an app shared between tasks.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// SIGKILL: no graceful anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// The address in the line saying the app listens, in the JSON log or
/// the text log (`… pomerium-jit listening address=127.0.0.1:4000`).
fn listening_address(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        return (v["message"] == "pomerium-jit listening")
            .then(|| v["address"].as_str().unwrap_or_default().to_owned());
    }
    let (_, fields) = line.split_once("pomerium-jit listening ")?;
    let address = fields.strip_prefix("address=")?;
    Some(address.split_whitespace().next()?.to_owned())
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JIT rule for `email` in `ppl`, if any.
pub fn rule_for<'a>(ppl: &'a Value, email: &str) -> Option<&'a Value> {
    ppl.as_array()?
        .iter()
        .find(|r| r["allow"]["and"][0]["email"] == email)
}

pub fn is_pending(ppl: &Value, email: &str) -> bool {
    rule_for(ppl, email).is_some_and(|r| r["allow"]["and"][1]["reject"] == true)
}

pub fn is_granted(ppl: &Value, email: &str) -> bool {
    rule_for(ppl, email).is_some_and(|r| r["allow"]["and"][1]["date"]["before"].is_string())
}

/// A fresh PostgreSQL database on `TEST_DATABASE_URL`, dropped on drop.
/// Without the variable: `None` (the test is skipped with a note), but a
/// failure under CI, which must not skip.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        use sqlx::Connection;
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("skipping: set TEST_DATABASE_URL to run the PostgreSQL replica test");
            return None;
        };
        let name = format!("jit_it_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("TEST_DATABASE_URL has no database part"),
        };
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop from a fresh runtime: this may run while the test's runtime shuts down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
