//! The demo driven in a real browser: headless Chromium through Debian's
//! ChromeDriver walks the whole loop a newcomer would (denied → request →
//! approve → allowed → revoke → denied). Screenshots are kept as test output
//! in `target/tmp/screenshots/`; with `UPDATE_SCREENSHOTS=1` they also
//! replace the ones under `docs/screenshots/` that the README shows.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

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

struct Browser {
    driver: WebDriver,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(&self, path: &str) {
        self.driver
            .goto(format!("{}{path}", self.base))
            .await
            .expect("goto");
    }

    async fn click(&self, label: &str) {
        let xpath = format!("//button[starts-with(normalize-space(.), '{label}')]");
        self.driver
            .find(By::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// The page's text; empty while a navigation replaces the page.
    async fn text(&self) -> String {
        match self.driver.find(By::Tag("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn expect(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Compared without case: CSS may capitalise what is shown.
            let text = self.text().await;
            if text.to_lowercase().contains(&needle.to_lowercase()) {
                return;
            }
            assert!(Instant::now() < deadline, "page lacks {needle:?}:\n{text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn sign_in(&self, name: &str) {
        self.driver.delete_all_cookies().await.unwrap();
        self.open("/.pomerium/sign_in").await;
        self.click(&format!("Sign in as {name}")).await;
        self.expect("Signed in as").await;
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
    };

    let outcome = async {
        // Alice is denied, then asks for access.
        b.sign_in("Alice").await;
        b.open("/protected/").await;
        b.expect("Denied").await;
        b.open("/").await;
        b.shot("1-no-access.png").await;
        b.click("Request access").await;
        b.expect("Pending").await;
        b.shot("2-requested.png").await;

        // Bob, not an admin, is stopped at /admin by Pomerium's route policy.
        b.sign_in("Bob").await;
        b.open("/admin").await;
        b.expect("admins only").await;

        // Carol, the admin, approves.
        b.sign_in("Carol").await;
        b.open("/admin").await;
        b.expect("alice@example.com").await;
        b.shot("3-admin-pending.png").await;
        b.click("Approve").await;
        b.expect("Active").await;
        b.shot("4-admin-approved.png").await;

        // Alice is allowed now.
        b.sign_in("Alice").await;
        b.open("/protected/").await;
        b.expect("Allowed").await;
        b.shot("5-protected-allowed.png").await;
        b.open("/").await;
        b.expect("Access granted").await;
        b.shot("6-access-granted.png").await;

        // Carol revokes; Alice is denied again at once.
        b.sign_in("Carol").await;
        b.open("/admin").await;
        b.click("Revoke").await;
        b.expect("Recently ended").await;
        b.sign_in("Alice").await;
        b.open("/protected/").await;
        b.expect("Denied").await;
        b.shot("7-protected-denied.png").await;
    }
    .await;
    b.driver.quit().await.unwrap();
    outcome
}
