//! The demo driven in a real browser: headless Chromium through Debian's
//! ChromeDriver walks what a newcomer would: the catalog, a request that
//! needs two approvers, an extension, and the original loop (denied →
//! request → approve → allowed → revoke on its confirmation page → denied).
//! axe-core checks every page state it reaches (WCAG 2.2 A/AA and best
//! practices), also on a phone-sized window and in the dark colour scheme,
//! and the test fails on any violation. Screenshots are kept as test output
//! in `target/tmp/screenshots/`; with `UPDATE_SCREENSHOTS=1` they also
//! replace the ones under `docs/screenshots/` that the README shows.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use thirtyfour::common::command::{Command as WebDriverCommand, ExtensionCommand};
use thirtyfour::prelude::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_demo(port: u16, data: &Path) -> Killed {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--grant-duration",
            "2m",
            "--data-dir",
        ])
        .arg(data)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("demo is running") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the demo did not start");
    Killed(child)
}

async fn start_driver() -> (Killed, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Killed(child), url)
}

/// axe-core's browser bundle, installed by `npm ci --prefix crates/pomerium-jit/tests/axe`.
const AXE_JS: &str = "tests/axe/node_modules/axe-core/axe.min.js";

/// WCAG 2.2 A and AA (with the 2.0 and 2.1 rules it builds on) plus axe's
/// best practices. The callback is the WebDriver async-script callback.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] }
}).then(
  r => done({ violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    targets: v.nodes.map(n => n.target.join(' '))
  })) }),
  e => done({ error: String(e) })
);
"#;

/// The axe bundle, or `None` (with a notice) where it is not installed
/// outside CI; CI must have it, as it must have Chromium.
fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE_JS);
    match std::fs::read_to_string(&path) {
        Ok(js) => Some(js),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "axe-core is missing ({}: {e}); CI must run `npm ci --prefix crates/pomerium-jit/tests/axe`",
                path.display()
            );
            eprintln!(
                "skipping the accessibility checks: run `npm ci --prefix crates/pomerium-jit/tests/axe` to install axe-core"
            );
            None
        }
    }
}

/// A Chrome DevTools Protocol command through ChromeDriver's
/// `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl ExtensionCommand for Cdp {
    fn parameters_json(&self) -> Option<serde_json::Value> {
        Some(self.0.clone())
    }

    fn method(&self) -> http::Method {
        http::Method::POST
    }

    fn endpoint(&self) -> Arc<str> {
        Arc::from("/goog/cdp/execute")
    }
}

/// The part of a page under the heading `title`: a catalog card on `/`, a
/// resource's section on `/admin`.
fn section(title: &str) -> String {
    format!("//section[h2[normalize-space()={}]]", literal(title))
}

/// `text` as an XPath string literal.
fn literal(text: &str) -> String {
    assert!(!text.contains('\''), "XPath literal {text:?} has a quote");
    format!("'{text}'")
}

struct Browser {
    driver: WebDriver,
    base: String,
    shots: PathBuf,
    axe: Option<String>,
    /// Every accessibility violation found so far, one readable line each.
    violations: RefCell<Vec<String>>,
}

impl Browser {
    async fn open(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.base))
            .await
            .expect("goto");
    }

    /// Clicks the button, link or disclosure under `scope` whose text starts
    /// with `label`.
    async fn click_in(&self, scope: &str, label: &str) {
        let xpath = format!(
            "{scope}//*[self::button or self::a or self::summary][starts-with(normalize-space(.), {})]",
            literal(label)
        );
        self.driver
            .find(By::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button or link {label:?} in {scope}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn click(&self, label: &str) {
        self.click_in("", label).await;
    }

    /// Types `value` into the form field named `name` under `scope`.
    async fn fill(&self, scope: &str, name: &str, value: &str) {
        let xpath = format!("{scope}//*[@name={}]", literal(name));
        let field = self
            .driver
            .find(By::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no field {name:?} in {scope}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// The text under `scope`; empty while a navigation replaces the page.
    async fn text_in(&self, scope: &str) -> String {
        let xpath = if scope.is_empty() { "//body" } else { scope };
        match self.driver.find(By::XPath(xpath)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the text under `scope` does (`present`) or does not hold
    /// `needle`, compared without case: CSS may capitalise what is shown.
    async fn wait_for(&self, scope: &str, needle: &str, present: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text_in(scope).await;
            if !text.is_empty() && text.to_lowercase().contains(&needle.to_lowercase()) == present {
                return;
            }
            if Instant::now() > deadline {
                let what = if present { "lacks" } else { "still has" };
                let page = self.text_in("").await;
                panic!("{scope} {what} {needle:?}:\n{text}\n\nThe whole page:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn expect(&self, needle: &str) {
        self.wait_for("", needle, true).await;
    }

    async fn expect_in(&self, scope: &str, needle: &str) {
        self.wait_for(scope, needle, true).await;
    }

    /// When the grant shown under `scope` ends, from its `datetime`.
    async fn ends(&self, scope: &str) -> OffsetDateTime {
        let xpath = format!("{scope}//dt[normalize-space()='Ends']/following-sibling::dd[1]//time");
        let at = self
            .driver
            .find(By::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no end time in {scope}: {e}"))
            .attr("datetime")
            .await
            .unwrap()
            .expect("a datetime attribute");
        OffsetDateTime::parse(&at, &Rfc3339).unwrap_or_else(|e| panic!("{at:?}: {e}"))
    }

    async fn sign_in(&self, name: &str) {
        self.driver.delete_all_cookies().await.unwrap();
        self.open("/.pomerium/sign_in").await;
        self.axe("sign-in page").await;
        self.click(&format!("Sign in as {name}")).await;
        self.expect("Signed in as").await;
    }

    /// Runs axe-core on the page as it is now and records what it finds
    /// under `state`.
    async fn axe(&self, state: &str) {
        let Some(js) = &self.axe else { return };
        let loaded = self
            .driver
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .unwrap();
        if loaded.json() != &serde_json::Value::Bool(true) {
            self.driver.execute(js.as_str(), vec![]).await.unwrap();
        }
        let result = self
            .driver
            .execute_async(AXE_RUN, vec![])
            .await
            .unwrap_or_else(|e| panic!("axe on {state}: {e}"));
        let result = result.json();
        if let Some(error) = result.get("error") {
            panic!("axe failed on {state}: {error}");
        }
        let url = self.driver.current_url().await.unwrap();
        for v in result["violations"].as_array().expect("violations") {
            let targets: Vec<&str> = v["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t.as_str())
                .collect();
            let line = format!(
                "{state} ({}): {} ({}) at {}: {} <{}>",
                url.path(),
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                targets.join(", "),
                v["help"].as_str().unwrap_or("?"),
                v["url"].as_str().unwrap_or("?"),
            );
            eprintln!("axe: {line}");
            self.violations.borrow_mut().push(line);
        }
    }

    /// Emulates `prefers-color-scheme: dark` (or clears it) and checks the
    /// page sees it.
    async fn dark(&self, on: bool) {
        let features = if on {
            json!([{ "name": "prefers-color-scheme", "value": "dark" }])
        } else {
            json!([])
        };
        self.driver
            .handle()
            .cmd(WebDriverCommand::ExtensionCommand(Box::new(Cdp(json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": features }
            })))))
            .await
            .expect("CDP Emulation.setEmulatedMedia");
        let seen = self
            .driver
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(seen.json(), &json!(on), "the dark colour scheme emulation");
    }

    /// A screenshot with the element at `xpath` at the top of the window.
    async fn shot_at(&self, xpath: &str, name: &str) {
        let element = self
            .driver
            .find(By::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("nothing at {xpath}: {e}"));
        self.driver
            .execute(
                "arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -16);",
                vec![element.to_json().unwrap()],
            )
            .await
            .unwrap();
        self.shot(name).await;
    }

    async fn shot(&self, name: &str) {
        let png = self.driver.screenshot_as_png().await.expect("screenshot");
        std::fs::write(self.shots.join(name), &png).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), &png).unwrap();
        }
    }
}

#[tokio::test]
async fn the_whole_loop_in_a_real_browser() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver"
        );
        eprintln!("skipping: apt-get install chromium chromium-driver to run the browser test");
        return;
    }
    let axe = axe_source();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let _demo = start_demo(port, data.path());
    let (_chromedriver, driver_url) = start_driver().await;

    let profile = tempfile::tempdir().unwrap();
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,900",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
        .unwrap();
    let driver = WebDriver::new(&driver_url, caps)
        .await
        .expect("a Chromium session");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let b = Browser {
        driver,
        base: format!("http://127.0.0.1:{port}"),
        shots,
        axe,
        violations: RefCell::new(Vec::new()),
    };
    let started = Instant::now();
    walk(&b).await;
    eprintln!("the browser walk took {:?}", started.elapsed());
    b.driver.quit().await.unwrap();
    let violations = b.violations.into_inner();
    assert!(
        violations.is_empty(),
        "axe-core found {} accessibility violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

async fn walk(b: &Browser) {
    let app = section("Protected app");
    let prod = section("Production database");
    let staging = section("Staging");

    // Alice is denied, sees every resource, and asks for two of them.
    b.sign_in("Alice").await;
    b.open("/protected/").await;
    b.expect("Denied").await;
    b.axe("protected app, denied").await;
    b.open("/").await;
    for card in [&app, &prod, &staging] {
        b.expect_in(card, "No access").await;
    }
    b.axe("catalog, nothing asked").await;
    b.fill(&prod, "reason", "Run the CHG-1 migration on orders")
        .await;
    b.fill(&prod, "ticket", "CHG-1").await;
    // A tall window shows the catalog down to the filled-in form.
    b.driver.set_window_rect(0, 0, 1200, 1700).await.unwrap();
    b.shot_at("//body", "1-catalog.png").await;
    b.driver.set_window_rect(0, 0, 1200, 900).await.unwrap();
    b.click_in(&prod, "Request access").await;
    b.expect_in(&prod, "Pending").await;
    b.expect_in(&prod, "0 of 2").await;
    b.click_in(&app, "Request access").await;
    b.expect_in(&app, "Pending").await;
    b.axe("catalog, two requests pending").await;

    // Bob, not an admin, is stopped at /admin by Pomerium's route policy.
    b.sign_in("Bob").await;
    b.open("/admin").await;
    b.expect("admins only").await;
    b.axe("admin route, denied").await;

    // Carol approves both: the original's request is granted, the production
    // database's waits for a second approver.
    b.sign_in("Carol").await;
    b.open("/admin").await;
    b.expect_in(&prod, "alice@example.com").await;
    b.expect_in(&app, "alice@example.com").await;
    b.axe("approvers' page, two pending").await;
    b.click_in(&app, "Approve").await;
    b.expect_in(&app, "Active 1").await;
    b.click_in(&prod, "Approve").await;
    b.expect_in(&prod, "1 of 2").await;
    b.shot_at(&prod, "2-admin-two-approvers.png").await;
    b.axe("approvers' page, one of two approvals").await;

    // Alice sees the progress on her request's own page.
    b.sign_in("Alice").await;
    b.open("/").await;
    b.click_in(&prod, "Details of your latest request").await;
    b.expect("1 of 2").await;
    b.axe("a request's page, one of two approvals").await;

    // Dave's approval is the second: Alice has access.
    b.sign_in("Dave").await;
    b.open("/admin").await;
    b.click_in(&prod, "Approve").await;
    b.expect_in(&prod, "Active 1").await;
    b.axe("approvers' page, both granted").await;

    b.sign_in("Alice").await;
    b.open("/protected/").await;
    b.expect("Allowed").await;
    b.shot("3-protected-allowed.png").await;
    b.axe("protected app, allowed").await;
    b.open("/").await;
    b.expect_in(&prod, "Access granted").await;
    b.expect_in(&app, "Access granted").await;
    b.axe("catalog, access granted").await;

    // Alice asks for more time on the database; both approvers agree and
    // her access ends later.
    let before = b.ends(&prod).await;
    b.click_in(&prod, "Ask for more time").await;
    let extend = format!("{prod}//details[summary[normalize-space()='Ask for more time']]");
    b.fill(&extend, "reason", "The migration needs another pass")
        .await;
    b.axe("catalog, extension form open").await;
    b.click_in(&format!("{extend}//form"), "Ask for more time")
        .await;
    b.expect_in(&prod, "Extension asked").await;
    b.axe("catalog, extension asked").await;

    b.sign_in("Carol").await;
    b.open("/admin").await;
    b.expect_in(&prod, "Extension asked").await;
    b.axe("approvers' page, extension asked").await;
    b.click_in(&prod, "Approve extension").await;
    b.expect_in(&prod, "Approvals: 1 of 2").await;
    b.shot_at(
        &format!("{prod}/h3[starts-with(normalize-space(), 'Active')]"),
        "4-extension.png",
    )
    .await;
    b.sign_in("Dave").await;
    b.open("/admin").await;
    b.click_in(&prod, "Approve extension").await;
    b.wait_for(&prod, "Extension asked", false).await;

    b.sign_in("Alice").await;
    b.open("/").await;
    b.expect_in(&prod, "Access granted").await;
    let after = b.ends(&prod).await;
    assert!(
        after > before,
        "the extension moved the end from {before} to {after}"
    );
    b.axe("catalog, extended").await;

    // The same pages on a phone and in the dark.
    b.driver.set_window_rect(0, 0, 390, 844).await.unwrap();
    b.axe("catalog on a phone").await;
    b.dark(true).await;
    b.axe("catalog on a phone, dark").await;
    b.driver.set_window_rect(0, 0, 1200, 900).await.unwrap();
    b.axe("catalog, dark").await;
    b.sign_in("Carol").await;
    b.open("/admin").await;
    b.expect_in(&prod, "Active 1").await;
    b.axe("approvers' page, dark").await;
    b.driver.set_window_rect(0, 0, 390, 844).await.unwrap();
    b.axe("approvers' page on a phone, dark").await;
    b.dark(false).await;
    b.axe("approvers' page on a phone").await;
    b.driver.set_window_rect(0, 0, 1200, 900).await.unwrap();

    // Carol revokes the original's grant through its confirmation page;
    // Alice is denied again at once.
    b.click_in(&app, "Revoke…").await;
    b.expect("Revoke access?").await;
    b.fill("", "comment", "Done for today").await;
    b.axe("revoke confirmation").await;
    b.click("Revoke access").await;
    b.expect_in(&app, "Active 0").await;
    b.expect_in(&section("Recently ended"), "Done for today")
        .await;
    b.axe("approvers' page, revoked").await;

    // The approvers' other pages, with this walk's trail in them.
    b.click_in(&prod, "Details").await;
    b.expect("Request for Production database").await;
    b.axe("approvers' view of a request").await;
    b.open("/admin/audit").await;
    b.expect_in("//main", "Audit trail").await;
    b.axe("audit trail").await;
    b.open("/admin/history").await;
    b.expect_in("//main", "History").await;
    b.axe("history with its timeline").await;

    b.sign_in("Alice").await;
    b.open("/protected/").await;
    b.expect("Denied").await;
    b.open("/").await;
    b.expect_in(&app, "Done for today").await;
    b.axe("catalog, revoked with a comment").await;
    b.open("/history").await;
    b.expect("Your history").await;
    b.axe("a person's own history").await;
}
