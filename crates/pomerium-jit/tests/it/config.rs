//! The resources file through the real binary: `config check`, start-up
//! with a file (valid, invalid, alongside the settings it replaces), and the
//! one original resource without a file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::TestUser;

use crate::harness::{Env, POLICY, is_granted, is_pending};
use crate::startup::exit_of;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/resources.toml");

const TWO: &str = r#"
[[resource]]
name = "default"
title = "Protected app"
policy = { name = "jit-example" }

[[resource]]
name = "staging"
title = "Staging"
policy = { name = "jit-staging" }
"#;

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .args(["config", "check"])
        .arg(file)
        .env_remove("CLUSTER_ID")
        .env_remove("NAMESPACE_ID")
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_file_passes_config_check() {
    let out = check(Path::new(EXAMPLE));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(stdout.contains(": ok\n3 resources:\n"), "{stdout}");
    for name in ["- default (", "- prod-db (", "- staging ("] {
        assert!(stdout.contains(name), "{name}: {stdout}");
    }
}

#[test]
fn config_check_names_each_problem_with_its_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        &format!(
            "{TWO}approvals_needed = 0\n\n[[resource]]\nname = \"staging\"\ntitle = \"Again\"\npolicy = {{ name = \"jit-other\" }}\n"
        ),
    );
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    let shown = path.display();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("error: {shown}:11:20: `approvals_needed` is 0")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "error: {shown}:14:8: a second resource is named `staging` (the first is on line 8)"
        )),
        "{stderr}"
    );

    // A syntax error, a typo'd key, a missing file: the same, exit 2.
    for (text, needle) in [
        ("[[resource]\n", ":1:"),
        (
            "[[resource]]\nname = \"a\"\ntitel = \"x\"\n",
            ":3:1: unknown field `titel`",
        ),
    ] {
        let path = write(dir.path(), "bad.toml", text);
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}{needle}", path.display())),
            "{stderr}"
        );
    }
    let out = check(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[tokio::test]
async fn an_invalid_file_stops_the_start_with_exit_2_naming_the_line() {
    let env = Env::new().await;
    let path = write(
        env.dir.path(),
        "resources.toml",
        &TWO.replace(
            "[[resource]]\nname = \"staging\"",
            "[[resource]]\nname = \"Staging\"",
        ),
    );
    let (code, stderr) = exit_of(env.command(&[("CONFIG_FILE", path.to_str().unwrap())]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {}:8:8: ", path.display()))
            && stderr.contains("lowercase"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    // Nothing was written to Zero.
    assert!(env.zero.policy_by_name(POLICY).is_none());
}

#[tokio::test]
async fn with_a_file_each_resource_writes_its_own_policy() {
    let env = Env::new().await;
    let path = write(env.dir.path(), "resources.toml", TWO);
    // `--config` works as well as CONFIG_FILE.
    let mut cmd = env.command(&[("POLICY_NAME", "ignored-policy")]);
    cmd.args(["--config", path.to_str().unwrap()]);
    let app = crate::harness::App::start(cmd);
    let warned: Vec<String> = app
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("POLICY_NAME is set but CONFIG_FILE lists the resources"))
        .cloned()
        .collect();
    assert_eq!(warned.len(), 1, "{}", app.log_text());

    let alice = env.token(&TestUser::alice());
    let (status, body) = app
        .post("/request-access", &alice, &[("resource", "staging")])
        .await;
    assert!(status == 303 || status == 200, "{status}: {body}");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let staging = env
            .zero
            .policy_by_name("jit-staging")
            .map(|p| p["ppl"].clone());
        if staging
            .as_ref()
            .is_some_and(|ppl| is_pending(ppl, "alice@example.com"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pending rule in jit-staging: {staging:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other resource's policy holds nothing of Alice's, and no policy
    // is written under the ignored POLICY_NAME.
    assert!(
        env.ppl()
            .is_none_or(|ppl| !is_pending(&ppl, "alice@example.com"))
    );
    assert!(env.zero.policy_by_name("ignored-policy").is_none());
}

#[tokio::test]
async fn without_a_file_the_original_resource_writes_policy_name() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    assert!(
        !app.log_text().contains("CONFIG_FILE"),
        "{}",
        app.log_text()
    );
    let alice = env.token(&TestUser::alice());
    let (status, body) = app.post("/request-access", &alice, &[]).await;
    assert!(status == 303 || status == 200, "{status}: {body}");
    env.wait_ppl("Alice pending on jit-example", |ppl| {
        is_pending(ppl, "alice@example.com")
    })
    .await;
    let (_, me) = app.get("/api/v1/me", Some(&alice)).await;
    assert!(me.contains("\"default\""), "{me}");
}

#[tokio::test]
async fn auto_approve_rules_match_groups_and_the_assertions_other_claims() {
    let env = Env::new().await;
    let path = write(
        env.dir.path(),
        "resources.toml",
        &TWO.replace(
            "policy = { name = \"jit-staging\" }",
            "policy = { name = \"jit-staging\" }\nauto_approve = [\n  { name = \"sre\", claim = \"team\", value = \"sre\" },\n  { name = \"on-call\", group = \"oncall\" },\n]",
        ),
    );
    let app = env.spawn(&[("CONFIG_FILE", path.to_str().unwrap())]);
    let host = env.jwks.host();
    // Alice's IdP adds `"team": ["web", "sre"]` to her assertion.
    let mut claims = env.signer.claims(&host, &TestUser::alice());
    claims["team"] = serde_json::json!(["web", "sre"]);
    let alice = env.signer.mint_raw(
        &env.signer.header(),
        &claims,
        jit_fakes::pomerium::SignWith::Current,
    );
    let bob = env.token(&TestUser::bob().with_groups(["oncall"]));
    // Carol's team is another, and she is in no on-call group.
    let mut claims = env.signer.claims(&host, &TestUser::admin());
    claims["team"] = serde_json::json!("dba");
    let carol = env.signer.mint_raw(
        &env.signer.header(),
        &claims,
        jit_fakes::pomerium::SignWith::Current,
    );
    for token in [&alice, &bob, &carol] {
        let (status, body) = app
            .post("/request-access", token, &[("resource", "staging")])
            .await;
        assert!(status == 303 || status == 200, "{status}: {body}");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let ppl = env
            .zero
            .policy_by_name("jit-staging")
            .map(|p| p["ppl"].clone());
        if let Some(ppl) = &ppl
            && is_granted(ppl, "alice@example.com")
            && is_granted(ppl, "bob@example.com")
            && is_pending(ppl, "carol@example.com")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alice (claim) and Bob (group) auto-approved, Carol pending: {ppl:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_worker_count_that_is_not_a_positive_number_stops_the_start_with_exit_2() {
    let env = Env::new().await;
    for bad in ["0", "two", "-1"] {
        let (code, stderr) = exit_of(env.command(&[("TOKIO_WORKER_THREADS", bad)]));
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert_eq!(
            stderr.trim(),
            "error: TOKIO_WORKER_THREADS must be a whole number of worker threads, 1 or more; \
             unset it for one per core",
            "{bad}"
        );
    }
}
