//! The operator commands through the real binary, on a SQLite database
//! prepared by running the app, and against the fake Zero: `grants list`,
//! `revoke`, `grant` (break-glass), `history export` and `explain`.

use std::process::{Output, Stdio};

use jit_fakes::pomerium::TestUser;
use serde_json::{Value, json};

use crate::harness::{Env, POLICY, is_granted, is_pending};

/// Runs `pomerium-jit ARGS` with the app's settings plus `extra`, off the
/// test's runtime (which serves the fake Zero meanwhile).
async fn cli(env: &Env, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = env.command(&[]);
    cmd.args(args)
        .env("USER", "ops-lead")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run pomerium-jit")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Fails with exit status `code` and one line on stderr containing `needle`.
fn fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{}{err}", stdout(out));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{needle}: {err}");
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Alice holds access (asked, approved by Carol), Bob's request is pending;
/// the app is stopped again, so only the commands touch the database.
async fn prepared(env: &Env) {
    let app = env.spawn(&[]);
    let (alice, bob) = (TestUser::alice(), TestUser::bob());
    let reason = [("reason", "deploy the fix")];
    assert_eq!(
        app.post("/request-access", &env.token(&alice), &reason)
            .await
            .0,
        303
    );
    assert_eq!(
        app.post("/request-access", &env.token(&bob), &reason)
            .await
            .0,
        303
    );
    let approve = [("email", "alice@example.com")];
    let admin = env.token(&TestUser::admin());
    assert_eq!(
        app.post("/admin/approve-access", &admin, &approve).await.0,
        303
    );
    env.wait_ppl("alice granted, bob pending", |p| {
        is_granted(p, "alice@example.com") && is_pending(p, "bob@example.com")
    })
    .await;
    assert!(app.terminate().await.success());
}

#[tokio::test]
async fn grants_list_revoke_and_history_export() {
    let env = Env::new().await;
    prepared(&env).await;

    // A table for people: active grants only, unless --pending.
    let table = ok(&cli(&env, &[], &["grants", "list"]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("EMAIL") && lines[0].contains("APPROVED BY"),
        "{table}"
    );
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[1].starts_with("alice@example.com  default"),
        "{table}"
    );
    assert!(lines[1].contains("user:carol@example.com"), "{table}");
    let with_pending = ok(&cli(&env, &[], &["grants", "list", "--pending"]).await);
    assert!(with_pending.contains("bob@example.com"), "{with_pending}");

    // JSON for scripts.
    let listed: Value =
        serde_json::from_str(&ok(&cli(&env, &[], &["grants", "list", "--json"]).await)).unwrap();
    let [grant] = listed.as_array().unwrap().as_slice() else {
        panic!("{listed}");
    };
    assert_eq!(grant["email"], "alice@example.com");
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["approved_by"], "user:carol@example.com");
    assert_eq!(grant["reason"], "deploy the fix");
    let left = grant["seconds_left"].as_i64().unwrap();
    assert!((3500..=3600).contains(&left), "{grant}");

    // Bad usage changes nothing: no confirmation, an unknown resource or
    // person, no database.
    let revoke = [
        "revoke",
        "--email",
        "alice@example.com",
        "--resource",
        "default",
        "--reason",
        "left the team",
    ];
    fails(&cli(&env, &[], &revoke).await, 2, "--yes");
    let mut unknown = revoke.to_vec();
    unknown[4] = "prod";
    unknown.push("--yes");
    fails(
        &cli(&env, &[], &unknown).await,
        2,
        "no resource named `prod`",
    );
    let mut nobody = revoke.to_vec();
    nobody[2] = "dave@example.com";
    nobody.push("--yes");
    fails(
        &cli(&env, &[], &nobody).await,
        1,
        "dave@example.com has no pending request or active access",
    );
    let elsewhere = env.dir.path().join("elsewhere.db");
    let elsewhere = format!("sqlite://{}", elsewhere.display());
    fails(
        &cli(&env, &[("DATABASE_URL", &elsewhere)], &["grants", "list"]).await,
        1,
        "there is no database at",
    );
    assert!(is_granted(&env.ppl().unwrap(), "alice@example.com"));

    // Revoked in the store as the operator, and in the policy at once.
    let mut confirmed = revoke.to_vec();
    confirmed.push("--yes");
    let said = ok(&cli(&env, &[], &confirmed).await);
    assert!(
        said.starts_with("revoked: alice@example.com on default"),
        "{said}"
    );
    assert!(
        said.contains(&format!("applied: policy {POLICY}")),
        "{said}"
    );
    let ppl = env.ppl().unwrap();
    assert!(!is_granted(&ppl, "alice@example.com"), "{ppl}");
    assert!(is_pending(&ppl, "bob@example.com"), "{ppl}");
    let listed = ok(&cli(&env, &[], &["grants", "list"]).await);
    assert_eq!(listed.trim(), "no active grants");

    // The history, as the web's downloads: JSON lines and CSV, filtered.
    let all = json_lines(&ok(&cli(&env, &[], &["history", "export"]).await));
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["requested", "requested", "approved", "revoked"],
        "{all:?}"
    );
    let revoked = json_lines(&ok(&cli(
        &env,
        &[],
        &["history", "export", "--action", "revoked"],
    )
    .await));
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actor"], "cli:ops-lead");
    assert_eq!(revoked[0]["subject"], "alice@example.com");
    assert_eq!(revoked[0]["resource"], "default");
    assert_eq!(revoked[0]["details"]["comment"], "left the team");
    let bobs = json_lines(&ok(&cli(
        &env,
        &[],
        &[
            "history",
            "export",
            "--email",
            "bob@example.com",
            "--from",
            "2020-01-01",
        ],
    )
    .await));
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    let file = env.dir.path().join("history.csv");
    let csv_args = [
        "history",
        "export",
        "--format",
        "csv",
        "--output",
        file.to_str().unwrap(),
    ];
    ok(&cli(&env, &[], &csv_args).await);
    let csv = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        rows[0],
        "seq,at,actor,action,subject,resource,request_id,details,hash"
    );
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(
        rows[4].contains(",cli:ops-lead,revoked,alice@example.com,default,"),
        "{csv}"
    );
    fails(
        &cli(&env, &[], &["history", "export", "--from", "yesterday"]).await,
        2,
        "--from",
    );
    fails(
        &cli(&env, &[], &["history", "export", "--action", "deleted"]).await,
        2,
        "--action",
    );

    // The audit trail holds the operator's revoke and is intact.
    let verify = ok(&cli(&env, &[], &["audit", "verify"]).await);
    assert!(
        verify.starts_with("audit trail intact: 4 events"),
        "{verify}"
    );
}

#[tokio::test]
async fn break_glass_grant_is_marked_applied_and_bounded() {
    let env = Env::new().await;
    prepared(&env).await;
    let grant = |email: &'static str, duration: &'static str| {
        vec![
            "grant",
            "--email",
            email,
            "--resource",
            "default",
            "--duration",
            duration,
            "--reason",
            "INC-1: outage",
            "--yes",
            "--as",
            "oncall@example.com",
        ]
    };

    fails(
        &cli(&env, &[], &grant("dave@example.com", "forever")).await,
        2,
        "--duration",
    );
    fails(
        &cli(&env, &[], &grant("dave@example.com", "2d")).await,
        1,
        "1d",
    );
    fails(
        &cli(&env, &[], &grant("alice@example.com", "30m")).await,
        1,
        "already has access",
    );
    let mut unnamed = grant("dave@example.com", "30m");
    unnamed.truncate(unnamed.len() - 2);
    fails(&cli(&env, &[("USER", "")], &unnamed).await, 2, "--as");
    assert!(!is_granted(&env.ppl().unwrap(), "dave@example.com"));

    // Dave, who never asked, and Bob, who did: both at once, loudly.
    for who in ["dave@example.com", "bob@example.com"] {
        let out = cli(&env, &[], &grant(who, "30m")).await;
        let said = ok(&out);
        assert!(
            said.starts_with(&format!("granted (break-glass): {who} on default")),
            "{said}"
        );
        let err = stderr(&out);
        assert!(err.contains("WARNING: break-glass"), "{err}");
        assert!(
            err.contains("WARN") && err.contains("access given without approval"),
            "{err}"
        );
        assert!(is_granted(&env.ppl().unwrap(), who), "{who}");
    }
    let approved = json_lines(&ok(&cli(
        &env,
        &[],
        &["history", "export", "--action", "approved"],
    )
    .await));
    let marked: Vec<&Value> = approved
        .iter()
        .filter(|e| e["details"]["break_glass"] == true)
        .collect();
    assert_eq!(marked.len(), 2, "{approved:?}");
    for e in marked {
        assert_eq!(e["actor"], "cli:oncall@example.com");
        assert_eq!(e["details"]["reason"], "INC-1: outage");
        assert_eq!(e["details"]["duration"], "30m");
    }
    let listed: Value = serde_json::from_str(&ok(&cli(
        &env,
        &[],
        &["grants", "list", "--json", "--email", "dave@example.com"],
    )
    .await))
    .unwrap();
    assert_eq!(listed[0]["approved_by"], "cli:oncall@example.com");
    assert!(ok(&cli(&env, &[], &["audit", "verify"]).await).starts_with("audit trail intact"));

    // Without Zero settings it is saved for the running service to apply.
    let out = cli(
        &env,
        &[
            ("API_USER_TOKEN", ""),
            ("ORGANIZATION_ID", ""),
            ("CLUSTER_ID", ""),
        ],
        &[
            "revoke",
            "--email",
            "dave@example.com",
            "--resource",
            "default",
            "--reason",
            "done",
            "--yes",
        ],
    )
    .await;
    assert!(
        ok(&out).contains("the running service writes policy"),
        "{}",
        stdout(&out)
    );
    assert!(is_granted(&env.ppl().unwrap(), "dave@example.com"));
}

#[tokio::test]
async fn explain_names_the_deciding_rule_and_drift() {
    let env = Env::new().await;
    prepared(&env).await;
    let explain = |email: &'static str, groups: &'static str| {
        let env = &env;
        async move {
            let out = cli(
                env,
                &[],
                &["explain", "--email", email, "--groups", groups, "--json"],
            )
            .await;
            let all: Value = serde_json::from_str(&ok(&out)).unwrap();
            assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
            all[0].clone()
        }
    };

    // Allowed by its JIT rule, in agreement with the store.
    let alice = explain("alice@example.com", "").await;
    assert_eq!(alice["decision"], "allow", "{alice}");
    assert_eq!(alice["rule_kind"], "jit");
    assert_eq!(alice["store"], "active");
    assert_eq!(alice["drift"], false);
    assert!(
        alice["reason"]
            .as_str()
            .unwrap()
            .starts_with("allowed by rule"),
        "{alice}"
    );
    assert_eq!(alice["expires_at"], alice["store_expires_at"]);

    // Pending: the rule grants nothing.
    let bob = explain("bob@example.com", "").await;
    assert_eq!(bob["decision"], "deny", "{bob}");
    assert_eq!(bob["rule"], Value::Null);
    assert_eq!(bob["store"], "pending");

    // A console rule for a group, and a JIT entry the store does not hold.
    let policy = env.zero.policy_by_name(POLICY).unwrap();
    let mut rules = policy["ppl"].as_array().unwrap().clone();
    rules.insert(0, json!({"allow": {"or": [{"groups": {"has": "sre"}}]}}));
    rules.push(json!({"allow": {"and": [{"email": "dave@example.com"}, {"date": {"before": "2099-01-01T00:00:00Z"}}]}}));
    env.zero
        .set_ppl(policy["id"].as_str().unwrap(), Value::Array(rules))
        .unwrap();

    let carol = explain("erin@example.com", "dev,sre").await;
    assert_eq!(carol["decision"], "allow", "{carol}");
    assert_eq!(carol["rule"], 0);
    assert_eq!(carol["rule_kind"], "foreign");
    assert_eq!(carol["drift"], false);
    let dave = explain("dave@example.com", "").await;
    assert_eq!(dave["decision"], "allow", "{dave}");
    assert_eq!(dave["rule_kind"], "jit");
    assert_eq!(dave["store"], "none");
    assert_eq!(dave["drift"], true);
    assert!(
        dave["drift_reason"]
            .as_str()
            .unwrap()
            .contains("store holds no active grant"),
        "{dave}"
    );
    let nobody = explain("frank@example.com", "dev").await;
    assert_eq!(nobody["decision"], "deny");
    assert_eq!(nobody["reason"], "denied: no allow rule matched");

    // For people: a table and the reasons.
    let text = ok(&cli(&env, &[], &["explain", "--email", "dave@example.com"]).await);
    assert!(
        text.contains("RESOURCE") && text.contains("DRIFT"),
        "{text}"
    );
    assert!(
        text.contains("a JIT rule written by pomerium-jit"),
        "{text}"
    );
    assert!(
        text.contains("default: drift: policy jit-example grants access"),
        "{text}"
    );

    // Zero settings are needed, and a resource must exist.
    fails(
        &cli(
            &env,
            &[
                ("API_USER_TOKEN", ""),
                ("ORGANIZATION_ID", ""),
                ("CLUSTER_ID", ""),
            ],
            &["explain", "--email", "a@example.com"],
        )
        .await,
        2,
        "API_USER_TOKEN",
    );
    fails(
        &cli(
            &env,
            &[],
            &["explain", "--email", "a@example.com", "--resource", "nope"],
        )
        .await,
        2,
        "no resource named `nope`",
    );
}

#[test]
fn every_operator_command_has_help_with_an_example() {
    for args in [
        &["grants", "list", "--help"][..],
        &["revoke", "--help"],
        &["grant", "--help"],
        &["history", "export", "--help"],
        &["explain", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        let help = stdout(&out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(help.contains("Example"), "{args:?}: {help}");
        assert!(
            help.contains(&format!("pomerium-jit {}", args[0])),
            "{args:?}: {help}"
        );
    }
}
