//! `pomerium-jit doctor` through the real binary against the fakes: every
//! check passes on a healthy deployment, then each fails in turn with its
//! own FAIL line and exit status 1 (2 for unusable settings).

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::TestUser;
use jit_fakes::zero::FakeZeroConfig;
use serde_json::json;

use crate::harness::{Env, POLICY, PgDatabase};

const CHECKS: [&str; 7] = [
    "settings",
    "jwks",
    "token exchange",
    "policy jit-example",
    "changesets",
    "database",
    "audit chain",
];

struct Doctor {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Doctor {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The FAIL lines, each `FAIL check: …`.
    fn failures(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("FAIL "))
            .collect()
    }

    /// Exactly one check failed, `check`, with a line containing `needle`
    /// and advice after the dash; the others passed; exit status 1.
    fn fails_only(&self, check: &str, needle: &str) {
        assert_eq!(self.code, Some(1), "{}{}", self.stdout, self.stderr);
        let failures = self.failures();
        assert_eq!(failures.len(), 1, "{}", self.stdout);
        let line = failures[0];
        assert!(
            line.starts_with(&format!("FAIL {check}: ")),
            "{}",
            self.stdout
        );
        assert!(line.contains(needle), "{needle}: {line}");
        assert!(line.contains(" — "), "no advice: {line}");
        assert_eq!(self.lines().len(), CHECKS.len(), "{}", self.stdout);
    }

    fn line(&self, check: &str) -> &str {
        self.lines()
            .into_iter()
            .find(|l| l[5..].starts_with(&format!("{check}: ")))
            .unwrap_or_else(|| panic!("no {check} line in {}", self.stdout))
    }
}

/// Runs `doctor` off the test's runtime, which serves the fakes meanwhile.
async fn doctor(env: &Env, extra: &[(&str, &str)]) -> Doctor {
    let mut cmd = env.command(extra);
    cmd.arg("doctor").stdout(Stdio::piped());
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run pomerium-jit doctor");
    Doctor {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A deployment `serve` ran on once: the policy exists and the database
/// is migrated, with `extra` settings for both.
async fn served(env: &Env, extra: &[(&str, &str)]) {
    let app = env.spawn(extra);
    env.wait_ppl("the policy is created", |_| true).await;
    assert!(app.terminate().await.success());
}

#[tokio::test]
async fn a_healthy_deployment_passes_every_check_and_nothing_changes() {
    let env = Env::new().await;
    let db = env.dir.path().join("jit.db");

    // Before the first start: no policy (creatable) and no database, which
    // doctor reports but never creates.
    let before = doctor(&env, &[]).await;
    assert_eq!(before.code, Some(1), "{}", before.stdout);
    assert!(
        before
            .line("policy jit-example")
            .starts_with("ok   policy jit-example: not in namespace"),
        "{}",
        before.stdout
    );
    assert!(
        before.line("database").contains("there is no database at"),
        "{}",
        before.stdout
    );
    assert!(
        before
            .line("audit chain")
            .starts_with("FAIL audit chain: not checked"),
        "{}",
        before.stdout
    );
    assert!(!db.exists(), "doctor created the database");
    assert!(env.zero.policies().is_empty(), "doctor created the policy");

    served(&env, &[]).await;
    let (writes, changesets) = (env.zero.policy_writes(), env.zero.changesets().len());
    let db_bytes = std::fs::read(&db).unwrap();
    let out = doctor(&env, &[]).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let lines = out.lines();
    assert_eq!(lines.len(), CHECKS.len(), "{}", out.stdout);
    for (line, check) in lines.iter().zip(CHECKS) {
        assert!(
            line.starts_with(&format!("ok   {check}: ")),
            "{check}: {}",
            out.stdout
        );
    }
    assert!(
        out.line("jwks").contains("1 usable key at"),
        "{}",
        out.stdout
    );
    assert!(
        out.line("policy jit-example")
            .contains("found in namespace")
    );
    assert_eq!(env.zero.policy_writes(), writes, "doctor wrote a policy");
    assert_eq!(env.zero.changesets().len(), changesets);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_bytes,
        "doctor changed the database"
    );
}

#[tokio::test]
async fn unusable_settings_are_named_as_serve_names_them_and_exit_2() {
    let env = Env::new().await;
    let out = doctor(&env, &[("JWKS_ENDPOINT", ""), ("DOCTOR_TIMEOUT", "soon")]).await;
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    let failures = out.failures();
    assert_eq!(failures.len(), 2, "{}", out.stdout);
    assert!(failures[0].starts_with("FAIL settings: JWKS_ENDPOINT is not set"));
    assert!(failures[1].starts_with("FAIL settings: DOCTOR_TIMEOUT: `soon`"));
    assert_eq!(out.lines().len(), 2, "stops after the settings");

    // A resources file is read as serve reads it: problems with their line.
    let file = env.dir.path().join("resources.toml");
    std::fs::write(&file, "[[resource]]\nname = \"db\"\n").unwrap();
    let out = doctor(&env, &[("CONFIG_FILE", file.to_str().unwrap())]).await;
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with(&format!("FAIL settings: {}:1:1: ", file.display())),
        "{}",
        out.stdout
    );

    // A database URL the store cannot read is a setting too.
    served(&env, &[]).await;
    let out = doctor(&env, &[("DATABASE_URL", "mysql://db/jit")]).await;
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(
        out.line("database")
            .starts_with("FAIL database: DATABASE_URL: unsupported database URL scheme"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_config_file_gets_one_policy_line_per_resource() {
    let env = Env::new().await;
    served(&env, &[]).await;
    let file = env.dir.path().join("resources.toml");
    std::fs::write(
        &file,
        "[[resource]]\nname = \"default\"\ntitle = \"App\"\npolicy = { name = \"jit-example\" }\n\n\
         [[resource]]\nname = \"staging\"\ntitle = \"Staging\"\npolicy = { name = \"jit-staging\" }\n",
    )
    .unwrap();
    let out = doctor(&env, &[("CONFIG_FILE", file.to_str().unwrap())]).await;
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.line("settings")
            .contains("2 resources (default, staging)")
    );
    assert!(
        out.line("policy jit-example")
            .contains("found in namespace")
    );
    assert!(
        out.line("policy jit-staging")
            .contains("the first sync creates it (resource staging)"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn open_requests_on_a_resource_no_longer_listed_fail() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    assert_eq!(
        app.post("/request-access", &env.token(&alice), &[]).await.0,
        303
    );
    assert!(app.terminate().await.success());
    let file = env.dir.path().join("resources.toml");
    std::fs::write(
        &file,
        "[[resource]]\nname = \"staging\"\ntitle = \"Staging\"\npolicy = { name = \"jit-staging\" }\n",
    )
    .unwrap();
    let out = doctor(&env, &[("CONFIG_FILE", file.to_str().unwrap())]).await;
    out.fails_only(
        "database",
        "no longer list: default (1); serve refuses to start",
    );
}

#[tokio::test]
async fn an_unreachable_jwks_or_one_without_keys_fails() {
    let env = Env::new().await;
    served(&env, &[]).await;
    let closed = "http://127.0.0.1:1/.well-known/pomerium/jwks.json";
    doctor(&env, &[("JWKS_ENDPOINT", closed)])
        .await
        .fails_only("jwks", closed);

    env.jwks.set_body(Some(r#"{"keys":[]}"#.into()));
    doctor(&env, &[])
        .await
        .fails_only("jwks", "no usable ES256/RS256 signing key");
}

#[tokio::test]
async fn a_revoked_api_token_fails_the_exchange_and_skips_what_needs_it() {
    let env = Env::new().await;
    served(&env, &[]).await;
    env.zero.revoke_api_token();
    let out = doctor(&env, &[]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let failures = out.failures();
    assert!(
        failures[0].starts_with("FAIL token exchange: Pomerium Zero refused API_USER_TOKEN (HTTP 401) — create a new API user token"),
        "{}",
        out.stdout
    );
    for check in ["policy jit-example", "changesets"] {
        assert!(
            out.line(check)
                .starts_with(&format!("FAIL {check}: not checked: the token exchange")),
            "{}",
            out.stdout
        );
    }
    assert_eq!(failures.len(), 3, "{}", out.stdout);
}

#[tokio::test]
async fn two_policies_with_the_name_fail() {
    let env = Env::new().await;
    served(&env, &[]).await;
    let first = env.zero.policy_by_name(POLICY).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = env.zero.insert_policy(json!({"name": POLICY})).unwrap();
    let out = doctor(&env, &[]).await;
    out.fails_only(
        "policy jit-example",
        "2 policies have this name in namespace",
    );
    let line = out.line("policy jit-example");
    assert!(line.contains(&first) && line.contains(&second), "{line}");
    assert!(line.contains("delete or rename all but one"), "{line}");
}

#[tokio::test]
async fn changesets_that_nobody_applies_fail() {
    let env = Env::with_zero(FakeZeroConfig {
        auto_apply_changesets: false,
        ..FakeZeroConfig::default()
    })
    .await;
    served(&env, &[]).await;
    doctor(&env, &[]).await.fails_only(
        "changesets",
        "does not auto-apply changesets and APPLY_CHANGESETS is false",
    );

    // With APPLY_CHANGESETS, what is pending decides: the policy's own
    // changes are applied by the next sync; anything else blocks.
    let ours = doctor(&env, &[("APPLY_CHANGESETS", "true")]).await;
    assert_eq!(ours.code, Some(0), "{}", ours.stdout);
    assert!(
        ours.line("changesets").contains("holds only policy"),
        "{}",
        ours.stdout
    );
    env.zero
        .insert_policy(json!({"name": "someone-elses"}))
        .unwrap();
    doctor(&env, &[("APPLY_CHANGESETS", "true")])
        .await
        .fails_only(
            "changesets",
            "holds other changes than one pomerium-jit policy's",
        );
    env.zero.apply_all_pending();
    let applied = doctor(&env, &[("APPLY_CHANGESETS", "true")]).await;
    assert_eq!(applied.code, Some(0), "{}", applied.stdout);
    assert!(applied.line("changesets").contains("nothing is pending"));
}

#[tokio::test]
async fn a_missing_database_fails_and_is_not_created() {
    let env = Env::new().await;
    served(&env, &[]).await;
    let nowhere = env.dir.path().join("nowhere/jit.db");
    let url = format!("sqlite://{}", nowhere.display());
    let out = doctor(&env, &[("DATABASE_URL", &url)]).await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.line("database")
            .starts_with("FAIL database: there is no database at"),
        "{}",
        out.stdout
    );
    assert!(
        out.line("audit chain")
            .starts_with("FAIL audit chain: not checked: the database"),
        "{}",
        out.stdout
    );
    assert_eq!(out.failures().len(), 2, "{}", out.stdout);
    assert!(!nowhere.parent().unwrap().exists(), "doctor created files");
}

#[tokio::test]
async fn a_stalled_zero_is_reported_within_the_timeout() {
    let env = Env::new().await;
    served(&env, &[]).await;
    env.zero.set_latency(Duration::from_secs(5));
    let started = Instant::now();
    let out = doctor(&env, &[("DOCTOR_TIMEOUT", "1s")]).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited on Zero: {:?}",
        started.elapsed()
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.line("token exchange").starts_with(
            "FAIL token exchange: no answer from Pomerium Zero (API_BASE_URL) within 1s — "
        ),
        "{}",
        out.stdout
    );
    assert!(out.line("database").starts_with("ok   "), "{}", out.stdout);
}

/// On PostgreSQL: a grant lengthened in the table breaks the audit check.
#[tokio::test]
async fn a_tampered_audit_row_fails() {
    use sqlx::Connection;
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let env = Env::new().await;
    let settings = [("DATABASE_URL", db.url.as_str())];
    let app = env.spawn(&settings);
    let (alice, admin) = (TestUser::alice(), TestUser::admin());
    assert_eq!(
        app.post("/request-access", &env.token(&alice), &[]).await.0,
        303
    );
    let approved = app
        .post(
            "/admin/approve-access",
            &env.token(&admin),
            &[("email", &alice.email)],
        )
        .await
        .0;
    assert!(approved == 303 || approved == 503, "approval: {approved}");
    assert!(app.terminate().await.success());
    let out = doctor(&env, &settings).await;
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.line("audit chain").contains("2 events intact"));

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("UPDATE requests SET expires_at = expires_at + 86400000")
        .execute(&mut conn)
        .await
        .unwrap();
    doctor(&env, &settings)
        .await
        .fails_only("audit chain", "column expires_at is");
}
