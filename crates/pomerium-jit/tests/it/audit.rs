//! `pomerium-jit audit verify|export`: read-only, clear about a database
//! that is missing, unmigrated or empty, and able to tell a tampered grant
//! or a removed tail.

use std::process::{Command, Output};

use jit_fakes::pomerium::TestUser;

use crate::harness::{Env, PgDatabase};

fn audit(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .arg("audit")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run pomerium-jit audit")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with one line on stderr containing `needle`.
fn fails_saying(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "succeeded: {}", stdout(out));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn a_missing_database_is_named_and_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nowhere/jit.db");
    let url = format!("sqlite://{}", file.display());
    for args in [&["verify"][..], &["export"]] {
        let out = audit(&url, args);
        fails_saying(&out, "there is no database at");
        assert!(stderr(&out).contains("DATABASE_URL"));
        assert!(!file.parent().unwrap().exists(), "{args:?} created files");
    }
}

#[test]
fn an_unmigrated_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jit.db");
    std::fs::write(&file, b"").unwrap();
    let url = format!("sqlite://{}", file.display());
    for args in [&["verify"][..], &["export"]] {
        fails_saying(&audit(&url, args), "has no pomerium-jit schema");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "it was migrated"
    );
}

#[tokio::test]
async fn an_empty_database_is_refused() {
    let env = Env::new().await;
    let url = format!("sqlite://{}", env.dir.path().join("jit.db").display());
    assert!(env.spawn(&[]).terminate().await.success());
    for args in [&["verify"][..], &["export"]] {
        fails_saying(&audit(&url, args), "holds no audit events");
    }
}

/// On PostgreSQL: an unmigrated database is refused; a grant extended in
/// the table is named; a kept head hash shows a removed tail.
#[tokio::test]
async fn verify_names_a_tampered_grant_and_checks_anchors() {
    use sqlx::Connection;
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    fails_saying(&audit(&db.url, &["verify"]), "has no pomerium-jit schema");

    let env = Env::new().await;
    let app = env.spawn(&[("DATABASE_URL", &db.url)]);
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
    assert!(
        approved == 303 || approved == 503,
        "approval answered {approved}"
    );
    assert!(app.terminate().await.success());

    let out = audit(&db.url, &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("intact: 2 events, 1 requests match"),
        "{}",
        stdout(&out)
    );
    let out = audit(&db.url, &["export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
    let anchor = stderr(&out)
        .split("hash ")
        .nth(1)
        .and_then(|s| s.get(..64))
        .expect("export prints the head hash")
        .to_owned();
    let out = audit(&db.url, &["verify", "--anchor", &anchor]);
    assert!(
        stdout(&out).contains("anchor found at event 2"),
        "{}",
        stdout(&out)
    );

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (id,): (String,) = sqlx::query_as("SELECT id FROM requests")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql("UPDATE requests SET expires_at = expires_at + 86400000")
        .execute(&mut conn)
        .await
        .unwrap();
    let out = audit(&db.url, &["verify"]);
    fails_saying(&out, &format!("request {id}: column expires_at is"));

    // Undo that, then remove the approval and point the head before it.
    sqlx::raw_sql(
        "UPDATE requests SET expires_at = NULL, approved_by = NULL, approved_at = NULL, \
         approvals = '[]', status = 'pending'; \
         DROP TRIGGER audit_events_no_update_or_delete ON audit_events; \
         DELETE FROM audit_events WHERE seq = 2; \
         UPDATE store_head SET audit_seq = 1, \
         audit_hash = (SELECT hash FROM audit_events WHERE seq = 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let out = audit(&db.url, &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    fails_saying(
        &audit(&db.url, &["verify", "--anchor", &anchor]),
        &format!("audit anchor {anchor} is not in the chain"),
    );
}
