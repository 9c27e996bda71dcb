//! Start-up as an operator sees it: bad settings fail before the port is
//! bound, "listening" comes last, secrets on the command line are flagged.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use jit_fakes::pomerium::TestUser;

use crate::harness::{App, Env};

#[tokio::test]
async fn a_bad_database_url_exits_2_before_anything_listens() {
    let env = Env::new().await;
    // Hold the port: an app that bound before opening the store would fail
    // on the port (exit 1) instead of naming the setting.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (url, needle) in [
        (
            "mysql://root:hunter2@db.internal/jit",
            "unsupported database URL scheme `mysql`",
        ),
        ("sqlite://jit.db?bogus=1", "is invalid"),
    ] {
        let out = env
            .command(&[("DATABASE_URL", url), ("PORT", &port)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(
            lines[0].starts_with("error: DATABASE_URL: ") && lines[0].contains(needle),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "password shown: {err}");
        assert!(!err.contains("listening"), "{err}");
    }
}

#[tokio::test]
async fn listening_is_the_last_start_up_line() {
    let env = Env::new().await;
    let mut cmd = env.command(&[]);
    // Open admin mode: its warning is a start-up line.
    cmd.env_remove("ADMIN_EMAILS");
    let app = App::start(cmd);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = app.logs.lock().unwrap().clone();
    let position = |needle: &str| {
        logs.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {logs:#?}"))
    };
    assert!(
        position("ADMIN_EMAILS and ADMIN_GROUPS are not set") < position("pomerium-jit listening"),
        "{logs:#?}"
    );
}

/// Logs going to a file or a collector carry no terminal colour codes.
#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let env = Env::new().await;
    let mut child = env
        .command(&[("LOG_FORMAT", "text")])
        .spawn()
        .expect("spawn pomerium-jit");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let listening = line.contains("pomerium-jit listening");
            let _ = tx.send(line);
            if listening {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("pomerium-jit listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
}

#[tokio::test]
async fn a_secret_given_as_a_flag_is_warned_about_without_showing_it() {
    let env = Env::new().await;
    let token = env.zero.api_user_token().to_owned();
    for subcommand in [None, Some("serve")] {
        let mut cmd = env.command(&[]);
        cmd.env_remove("API_USER_TOKEN");
        // `=`: a random token may start with `-`, which would read as a flag.
        cmd.args(subcommand)
            .arg(format!("--api-user-token={token}"));
        let app = App::start(cmd);
        let warning = app
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("command-line flag"))
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(warning.len(), 1, "{:#?}", app.logs.lock().unwrap());
        for needle in ["API_USER_TOKEN", "API_USER_TOKEN_FILE", "WARN"] {
            assert!(warning[0].contains(needle), "{needle}: {}", warning[0]);
        }
        assert!(!app.log_text().contains(&token), "{}", app.log_text());
    }

    // Set in the environment: no warning.
    let app = env.spawn(&[]);
    assert!(!app.log_text().contains("command-line flag"));
}

/// Runs `cmd` (stderr piped) until it exits: its status code and stderr.
/// One that is still running after 30 s started when it should not have:
/// it is killed and the test fails.
pub fn exit_of(mut cmd: Command) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after 30 s: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[tokio::test]
async fn open_requests_on_a_resource_the_config_dropped_stop_the_start() {
    let env = Env::new().await;
    let file = env.dir.path().join("resources.toml");
    let resource = |name: &str| {
        format!(
            "[[resource]]\nname = \"{name}\"\ntitle = \"T\"\npolicy = {{ name = \"jit-{name}\" }}\n"
        )
    };
    std::fs::write(&file, [resource("default"), resource("old-db")].concat()).unwrap();
    let config = [("CONFIG_FILE", file.to_str().unwrap())];
    let app = env.spawn(&config);
    for user in [TestUser::alice(), TestUser::bob()] {
        let (status, body) = app
            .post(
                "/request-access",
                &env.token(&user),
                &[("resource", "old-db")],
            )
            .await;
        assert!(status == 303 || status == 200, "{status}: {body}");
    }
    assert!(app.terminate().await.success());

    // `old-db` dropped from the file, or the file dropped altogether.
    for config in [vec![("CONFIG_FILE", file.to_str().unwrap())], vec![]] {
        if !config.is_empty() {
            std::fs::write(&file, resource("default")).unwrap();
        }
        let (code, err) = exit_of(env.command(&config));
        assert_eq!(code, Some(2), "{err}");
        for needle in [
            "`old-db` (2 open requests)",
            "Add the resource back",
            "revoke them first",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(!err.contains("listening"), "{err}");
    }

    // Listed again: it starts, and the requests are still there.
    std::fs::write(&file, [resource("default"), resource("old-db")].concat()).unwrap();
    let app = env.spawn(&config);
    let (_, me) = app
        .get("/api/v1/me", Some(&env.token(&TestUser::alice())))
        .await;
    assert!(me.contains("old-db"), "{me}");
}

#[cfg(feature = "demo")]
#[test]
fn the_demo_is_built_in_by_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--grant-duration"));
}

#[cfg(not(feature = "demo"))]
#[test]
fn without_the_demo_feature_the_demo_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .arg("demo")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without the demo"), "{err}");
}

/// The system's CA roots are read at the first TLS handshake, once for every
/// client, not by each client as it is built: a service whose upstreams are
/// all plain HTTP (here the fakes) starts and works without any CA bundle.
/// Before, start-up failed ("No CA certificates were loaded from the
/// system"), having read the bundle for each of its four clients.
#[tokio::test]
async fn the_ca_bundle_is_not_read_until_a_tls_upstream_needs_it() {
    let env = Env::new().await;
    let missing = "/nonexistent/ca-certificates.crt";
    let app = env.spawn(&[("SSL_CERT_FILE", missing), ("SSL_CERT_DIR", "/nonexistent")]);
    let (status, page) = app.get("/", Some(&env.token(&TestUser::alice()))).await;
    assert_eq!(status, 200, "{page}");
    env.wait_ppl("the policy synced over plain HTTP", |_| true)
        .await;
}
