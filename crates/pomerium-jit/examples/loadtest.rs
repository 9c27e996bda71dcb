//! The load test behind the README's performance table:
//! `scripts/load-test.sh` builds this and the binary in release mode and
//! runs it. Loopback only, every run bounded in time.
//!
//! It starts the fake Pomerium Zero and the fake signer in this process,
//! spawns the release `pomerium-jit` binary against them (its log, the
//! access log included, goes to a file, as in production), and measures
//! with `wrk` (which must be on PATH):
//! - start-up to listening (median of 5 starts on a fresh database),
//! - idle RSS (VmRSS 2 s after start, with its anonymous and file parts),
//! - `GET /` at concurrency 64 against a minimal axum server answering a
//!   body of the same size (this program, run as `loadtest minimal BYTES`,
//!   in a process of its own), alternating, `PJ_RUNS` times each; and, as a
//!   reference rather than a target, against the same server answering
//!   with the headers the app adds to a page (its security headers and
//!   request id, read off one of its answers), which the client must parse
//!   too,
//! - peak RSS (VmHWM) under that load, and at the end,
//! - `GET /admin` at concurrency 16 with 1,000 and with 10,000 people's
//!   requests in the store (half pending, half active), with the page's
//!   size and how many policy writes Zero saw around the larger load,
//! - the upstream writes and wall time of a burst of 100 approvals.
//!
//! Every request carries a different assertion: wrk's Lua script rotates
//! through thousands minted beforehand (distinct `jti`), so the first
//! use of each is a full signature check and later ones hit the app's
//! verified-token cache, as with Pomerium's per-session assertions.
//!
//! Settings (environment): `PJ_BIN` (the binary), `PJ_SECONDS` (per wrk
//! run, default 10), `PJ_RUNS` (alternating runs of `GET /`, default 3),
//! `PJ_ADMIN_USERS` (the larger `/admin` row, default 10000),
//! `LOG_FORMAT` (passed on), `PJ_HOLD` (seconds to keep the app running
//! after its idle RSS is read, before the load: for a look at
//! `/proc/<pid>/smaps`, or a profiler; it prints the `wrk` command).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_fakes::zero::{FakeZero, FakeZeroConfig};

/// Rotated through by `wrk`, one per request.
const LUA: &str = r#"
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("GET", args[2], {["X-Pomerium-Jwt-Assertion"] = line})
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("minimal") {
        let bytes = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(13);
        return minimal(bytes, args.get(3..).unwrap_or_default()).await;
    }
    let seconds: u64 = setting("PJ_SECONDS", 10);
    let runs: usize = setting("PJ_RUNS", 3);
    let admin_users: usize = setting("PJ_ADMIN_USERS", 10_000);
    let bin = std::env::var("PJ_BIN").unwrap_or_else(|_| "target/release/pomerium-jit".into());
    let bin = std::fs::canonicalize(&bin)
        .unwrap_or_else(|e| panic!("{bin}: {e} (build it: cargo build --release)"));
    // The binary's pages as a deployment maps them, read from disk. A file
    // the linker just wrote sits in the page cache in larger pieces, and a
    // fault maps the whole piece around it (the same build read 6.2 MB of
    // file pages at idle after a read from disk, 6.9 MB just after a copy),
    // so without this the RSS rows depend on whether a build or a run came
    // last.
    evict_from_page_cache(&bin);

    let zero = FakeZero::start(FakeZeroConfig::default())
        .await
        .expect("fake zero");
    let signer = Signer::new(Alg::Es256).expect("signer");
    let jwks = JwksServer::start(signer.clone()).await.expect("jwks");
    let host = jwks.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let fakes = Fakes {
        zero: &zero,
        jwks_url: jwks.url(),
        dir: dir.path(),
        bin: &bin,
    };
    let mut table = Table::default();

    // Start-up: from spawn to a connection accepted. The first start
    // creates and migrates the database; restarts find it ready.
    let mut app = fakes.spawn("app");
    let first = app.started.as_secs_f64() * 1000.0;
    app.stop();
    let mut starts = Vec::new();
    for _ in 0..5 {
        let mut app = fakes.spawn("app");
        starts.push(app.started.as_secs_f64() * 1000.0);
        app.stop();
    }
    let startup = median(&mut starts);
    table.row(
        "start-up to listening",
        format!(
            "{startup:.1} ms (median of 5 restarts, {}; first start, migrating: {first:.1} ms)",
            spread(&starts, "ms")
        ),
        "<= 50 ms",
        startup <= 50.0,
    );

    let mut app = fakes.spawn("app");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{}", app.port);
    wait_healthy(&http, &base).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = app.rss();
    let idle_mb = mb(idle.now);
    table.row(
        "idle RSS",
        format!(
            "{idle_mb:.1} MB (anonymous {:.1} MB, files {:.1} MB)",
            mb(idle.anon),
            mb(idle.file)
        ),
        "<= 10 MB",
        idle_mb <= 10.0,
    );

    // GET /: many people, each request a different assertion.
    let people: Vec<TestUser> = (0..1000)
        .map(|i| TestUser::new(format!("load{i}"), format!("load{i}@example.com")))
        .collect();
    let index_tokens = write_tokens(
        dir.path(),
        "index",
        people
            .iter()
            .cycle()
            .take(4000)
            .map(|u| signer.mint(&host, u)),
    );
    let response = http
        .get(format!("{base}/"))
        .header("X-Pomerium-Jwt-Assertion", signer.mint(&host, &people[0]))
        .send()
        .await
        .expect("GET /");
    // What the app adds to a page (its security headers, the request id),
    // for the minimal server's `/headed`; each server writes its own date,
    // length and type.
    let added: Vec<String> = response
        .headers()
        .iter()
        .filter(|(name, _)| !["date", "content-length", "content-type"].contains(&name.as_str()))
        .map(|(name, value)| format!("{name}: {}", value.to_str().expect("a text header")))
        .collect();
    let page = response.bytes().await.expect("the index page");
    let lua = dir.path().join("rotate.lua");
    std::fs::write(&lua, LUA).expect("lua script");
    if let Some(hold) = std::env::var("PJ_HOLD").ok().and_then(|s| s.parse().ok()) {
        println!(
            "app: pid {}, {base}; load it with: wrk -s {} {base}/ -- {} /; held {hold} s",
            app.child.id(),
            lua.display(),
            index_tokens.display()
        );
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    let exe = std::env::current_exe().expect("this program");
    let mut baseline = Command::new(exe)
        .args(["minimal", &page.len().to_string()])
        .args(&added)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the minimal server");
    let mut line = String::new();
    BufReader::new(baseline.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its port");
    let minimal_url = format!("http://127.0.0.1:{}/", line.trim());
    let headed_url = format!("{minimal_url}headed");
    let log_before = app.log_len();
    let (mut minimal_runs, mut headed_runs, mut app_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        minimal_runs.push(wrk(
            baseline.id(),
            &lua,
            &minimal_url,
            &index_tokens,
            64,
            seconds,
        ));
        headed_runs.push(wrk(
            baseline.id(),
            &lua,
            &headed_url,
            &index_tokens,
            64,
            seconds,
        ));
        app_runs.push(wrk(
            app.child.id(),
            &lua,
            &format!("{base}/"),
            &index_tokens,
            64,
            seconds,
        ));
    }
    let _ = baseline.kill();
    let _ = baseline.wait();
    let logged = app.log_len() - log_before;
    let minimal = Load::median(&minimal_runs);
    let headed = Load::median(&headed_runs);
    let index = Load::median(&app_runs);
    for (label, runs) in [
        ("minimal", &minimal_runs),
        ("headed", &headed_runs),
        ("GET /", &app_runs),
    ] {
        let rates: Vec<f64> = runs.iter().map(|r| r.rps).collect();
        println!("{label:8} runs: {}", list(&rates));
    }
    let share = 100.0 * index.rps / minimal.rps;
    let headed_share = 100.0 * headed.rps / minimal.rps;
    table.row(
        "minimal axum, same body size, c64",
        minimal.to_string(),
        "",
        true,
    );
    // Not a target: how much of the gap is the headers' cost to the client
    // (wrk parses every byte of them) and to hyper, not the app's work.
    table.row(
        "minimal axum, same body and the app's headers, c64",
        format!("{headed}, {headed_share:.0}% of the minimal server"),
        "",
        true,
    );
    table.row(
        "GET / c64 (vs minimal)",
        format!(
            "{index}, {share:.0}% ({:.0}% of the minimal server with the app's headers)",
            100.0 * index.rps / headed.rps
        ),
        ">= 60%, p99 < 5 ms",
        share >= 60.0 && index.p99_ms < 5.0,
    );
    let under_load = mb(app.rss().peak);
    table.row(
        "peak RSS under GET / load",
        format!("{under_load:.1} MB"),
        "<= 25 MB",
        under_load <= 25.0,
    );
    println!(
        "access log during GET /: {:.1} MB for {} requests",
        logged as f64 / 1e6,
        app_runs.iter().map(|r| r.requests).sum::<u64>()
    );

    // GET /admin with 1,000 people, then the burst, then more people.
    // Assertions live 5 minutes: minted just before each run.
    let admin = || signer.mint(&host, &TestUser::admin());
    let admin_tokens = || write_tokens(dir.path(), "admin", (0..2000).map(|_| admin()));
    let store =
        jit_store::Store::connect(&format!("sqlite://{}", dir.path().join("app.db").display()))
            .await
            .expect("the app's database");
    seed(&store, 0..1000).await;
    wait_loaded(&http, &base, &admin(), 1000).await;
    let admin_load = || {
        wrk(
            app.child.id(),
            &lua,
            &format!("{base}/admin"),
            &admin_tokens(),
            16,
            seconds,
        )
    };
    let small = admin_load();
    table.row(
        "GET /admin c16, 1,000 people",
        small.to_string(),
        ">= 450 req/s (10x 45)",
        small.rps >= 450.0,
    );

    let more: Vec<TestUser> = (0..100)
        .map(|i| TestUser::new(format!("burst{i}"), format!("burst{i}@example.com")))
        .collect();
    for u in &more {
        post(&http, &base, "/request-access", &signer.mint(&host, u), &[]).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let burst = approve(&http, &base, &admin(), &more, &zero).await;
    table.row("burst of 100 concurrent approvals", burst, "all 303", true);

    let writes = zero.policy_writes();
    seed(&store, 1000..admin_users).await;
    wait_loaded(&http, &base, &admin(), admin_users).await;
    let seeded = zero.policy_writes();
    let large = admin_load();
    println!(
        "policy writes: {} from seeding to the load at {} people, {} during it",
        seeded - writes,
        thousands(admin_users),
        zero.policy_writes() - seeded
    );
    table.row(
        &format!("GET /admin c16, {} people", thousands(admin_users)),
        large.to_string(),
        "p99 < 50 ms",
        large.p99_ms < 50.0,
    );
    let peak = mb(app.rss().peak);
    table.row(
        "peak RSS, whole run",
        format!("{peak:.1} MB"),
        "<= 25 MB",
        peak <= 25.0,
    );
    app.stop();
    table.print();
}

/// Writes requests for people `range` straight into the store, as the
/// app's own decisions would (filing through the pages waits for each to
/// reach Zero: minutes for thousands); every other one approved: half
/// pending, half active. The app sees them within a second.
async fn seed(store: &jit_store::Store, range: std::ops::Range<usize>) {
    use jit_domain::{Ask, Email, Reason, ResourceName, Rules};
    let started = Instant::now();
    let rules = Rules::default();
    let resource = ResourceName::parse(ResourceName::DEFAULT).expect("resource");
    let admin = Email::parse(&TestUser::admin().email).expect("email");
    let reason = Reason::parse("load test").expect("reason");
    let n = range.len();
    for i in range {
        let email = Email::parse(&format!("load{i}@example.com")).expect("email");
        let now = time::OffsetDateTime::now_utc();
        store
            .decide(&resource, &email, |open| {
                rules.request(open, &email, Ask::from(reason.clone()), now)
            })
            .await
            .expect("store")
            .expect("filed");
        if i % 2 == 0 {
            store
                .decide(&resource, &email, |open| {
                    rules.approve(open, &email, &admin, None, now)
                })
                .await
                .expect("store")
                .expect("approved");
        }
    }
    println!(
        "seeded {n} requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Waits until the approvers' page counts `people` open requests.
async fn wait_loaded(http: &reqwest::Client, base: &str, admin: &str, people: usize) {
    let pending = format!("{} pending", thousands(people / 2));
    for _ in 0..600 {
        let page = http
            .get(format!("{base}/admin"))
            .header("X-Pomerium-Jwt-Assertion", admin)
            .send()
            .await
            .expect("GET /admin")
            .text()
            .await
            .unwrap_or_default();
        if page.contains(&pending) {
            println!(
                "the approvers' page with {} people: {:.0} KB",
                thousands(people),
                page.len() as f64 / 1e3
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the approvers' page never showed {pending}");
}

/// Approves `users`' requests, 64 at a time; says how it went.
async fn approve(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    users: &[TestUser],
    zero: &FakeZero,
) -> String {
    let writes = zero.policy_writes();
    let started = Instant::now();
    let mut ok = 0;
    for batch in users.chunks(64.max(users.len().min(100))) {
        let tasks: Vec<_> = batch
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
        for t in tasks {
            if t.await.expect("approving") == 303 {
                ok += 1;
            }
        }
    }
    format!(
        "{ok}/{} answered 303 in {:.2} s, {} policy writes",
        users.len(),
        started.elapsed().as_secs_f64(),
        zero.policy_writes() - writes
    )
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

/// User + system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of proc_pid_stat(5); 11 and 12 here.
    field(11) + field(12)
}

/// `getconf CLK_TCK`: 100 on Linux, whatever the kernel's HZ.
const USER_HZ: f64 = 100.0;

/// What the app needs to run against the fakes.
struct Fakes<'a> {
    zero: &'a FakeZero,
    jwks_url: String,
    dir: &'a Path,
    bin: &'a Path,
}

impl Fakes<'_> {
    /// Spawns the app on a fresh database `name` and waits until it accepts
    /// connections. Its stdout and stderr (the log) go to `name.log`.
    fn spawn(&self, name: &str) -> App {
        let port = free_port();
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(self.bin);
        cmd.env_clear()
            .current_dir(self.dir)
            .env("API_USER_TOKEN", self.zero.api_user_token())
            .env("ORGANIZATION_ID", self.zero.organization_id())
            .env("CLUSTER_ID", self.zero.cluster_id())
            .env("JWKS_ENDPOINT", &self.jwks_url)
            .env("API_BASE_URL", self.zero.base_url())
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", self.dir.join(format!("{name}.db")).display()),
            )
            .env("ADMIN_EMAILS", TestUser::admin().email);
        if let Ok(format) = std::env::var("LOG_FORMAT") {
            cmd.env("LOG_FORMAT", format);
        }
        let started = Instant::now();
        let mut child = cmd
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn the release binary (build it first: cargo build --release)");
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("the app exited ({status}) before listening:\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the app did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        App {
            started: started.elapsed(),
            child,
            port,
            log: log_path,
        }
    }
}

/// Resident memory in KiB. The file part is mostly the binary's code and
/// read-only data, mapped from the page cache: how much of it a touch maps
/// depends on the kernel (fault-around, and on newer kernels the size of
/// the page cache's folios, which differs between a binary just written
/// by the linker and one read back from disk), so it moves between runs
/// more than the anonymous part does.
struct Rss {
    now: u64,
    peak: u64,
    anon: u64,
    file: u64,
}

struct App {
    child: Child,
    port: u16,
    log: PathBuf,
    started: Duration,
}

impl App {
    /// The app's memory from `/proc/<pid>/status`.
    fn rss(&self) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            now: field("VmRSS:"),
            peak: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run that panics (a target page never loads, wrk is missing) leaves no
/// app behind to skew the next one.
impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One wrk run's outcome.
#[derive(Clone, Copy)]
struct Load {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// The server's own CPU time (user + system) per request: steadier
    /// than the rate on a shared machine, where wrk takes a core too.
    cpu_us: f64,
}

impl Load {
    /// The run with the median rate.
    fn median(runs: &[Load]) -> Load {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        sorted[sorted.len() / 2]
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} µs CPU/request",
            self.rps, self.p50_ms, self.p99_ms, self.cpu_us
        )?;
        if self.errors > 0 {
            write!(f, ", {} errors/non-2xx", self.errors)?;
        }
        Ok(())
    }
}

fn wrk(server: u32, lua: &Path, url: &str, tokens: &Path, connections: u32, seconds: u64) -> Load {
    let cpu_before = cpu_ticks(server);
    let out = Command::new("wrk")
        .args(["-t2", "-c", &connections.to_string(), "-d"])
        .arg(format!("{seconds}s"))
        .arg("-s")
        .arg(lua)
        .arg(url)
        .arg("--")
        .arg(tokens)
        .arg(url_path(url))
        .output()
        .expect("wrk on PATH (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no RESULT from wrk:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let [requests, micros, p50, p99, errors] = fields[..] else {
        panic!("unexpected wrk RESULT: {text}");
    };
    let cpu = (cpu_ticks(server) - cpu_before) as f64 / USER_HZ;
    Load {
        cpu_us: cpu * 1e6 / requests.max(1.0),
        requests: requests as u64,
        rps: requests / (micros / 1e6),
        p50_ms: p50 / 1000.0,
        p99_ms: p99 / 1000.0,
        errors: errors as u64,
    }
}

fn url_path(url: &str) -> &str {
    let rest = url.trim_start_matches("http://");
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn write_tokens(dir: &Path, name: &str, tokens: impl Iterator<Item = String>) -> PathBuf {
    let path = dir.join(format!("{name}.tokens"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("token file"));
    for t in tokens {
        writeln!(file, "{t}").expect("token file");
    }
    file.flush().expect("token file");
    path
}

/// A minimal axum server answering `GET /` with `bytes` bytes of HTML, and
/// `GET /headed` with the same and the `headers` given (`name: value`);
/// prints its port.
async fn minimal(bytes: usize, headers: &[String]) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("{}", listener.local_addr().expect("address").port());
    let body: &'static str = "x".repeat(bytes).leak();
    let headers: axum::http::HeaderMap = headers
        .iter()
        .map(|h| {
            let (name, value) = h.split_once(": ").expect("name: value");
            (
                axum::http::HeaderName::try_from(name).expect("a header name"),
                axum::http::HeaderValue::try_from(value).expect("a header value"),
            )
        })
        .collect();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(body) }),
        )
        .route(
            "/headed",
            axum::routing::get(
                move || async move { (headers.clone(), axum::response::Html(body)) },
            ),
        );
    axum::serve(listener, app).await.expect("serve");
}

#[derive(Default)]
struct Table(Vec<[String; 4]>);

impl Table {
    fn row(&mut self, what: &str, measured: impl Into<String>, target: &str, ok: bool) {
        let verdict = match (target.is_empty(), ok) {
            (true, _) => "",
            (false, true) => "ok",
            (false, false) => "MISSED",
        };
        let row = [what, &measured.into(), target, verdict].map(str::to_owned);
        println!("{}: {} ({})", row[0], row[1], row[3]);
        self.0.push(row);
    }

    fn print(&self) {
        println!("\n| measure | result | target | |\n|---|---|---|---|");
        for [a, b, c, d] in &self.0 {
            println!("| {a} | {b} | {c} | {d} |");
        }
    }
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes out `path`'s dirty pages and drops the file from the page cache
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`, which needs no privileges).
fn evict_from_page_cache(path: &Path) {
    let evicted = std::fs::File::open(path).and_then(|file| {
        file.sync_all()?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).map_err(Into::into)
    });
    if let Err(e) = evicted {
        eprintln!(
            "note: {} stays in the page cache ({e}); its RSS rows may read higher",
            path.display()
        );
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64], unit: &str) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{min:.1}-{max:.1} {unit}")
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
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
