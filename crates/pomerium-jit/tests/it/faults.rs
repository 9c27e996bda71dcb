use std::time::Duration;

use http::StatusCode;
use jit_fakes::pomerium::TestUser;
use jit_fakes::zero::RetryAfter;

use crate::harness::{Env, is_granted, is_pending, rule_for};

async fn requested(env: &Env, app: &crate::harness::App, user: &TestUser) {
    assert_eq!(
        app.post("/request-access", &env.token(user), &[]).await.0,
        303
    );
    env.wait_ppl("pending", |p| is_pending(p, &user.email))
        .await;
}

#[tokio::test]
async fn approvals_survive_errors_rate_limits_and_dropped_connections() {
    let env = Env::new().await;
    let app = env.spawn(&[("APPLY_WAIT", "10s")]);
    let admin = env.token(&TestUser::admin());
    let users: Vec<TestUser> = (0..3)
        .map(|i| TestUser::new(format!("f{i}"), format!("f{i}@example.com")))
        .collect();
    for u in &users {
        requested(&env, &app, u).await;
    }

    env.zero.fail_next(2, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.post(
            "/admin/approve-access",
            &admin,
            &[("email", &users[0].email)]
        )
        .await
        .0,
        303
    );
    assert!(is_granted(&env.ppl().unwrap(), &users[0].email));

    env.zero.rate_limit_next(1, RetryAfter::Seconds(1));
    assert_eq!(
        app.post(
            "/admin/approve-access",
            &admin,
            &[("email", &users[1].email)]
        )
        .await
        .0,
        303
    );
    assert!(is_granted(&env.ppl().unwrap(), &users[1].email));

    env.zero.drop_next(2);
    assert_eq!(
        app.post(
            "/admin/approve-access",
            &admin,
            &[("email", &users[2].email)]
        )
        .await
        .0,
        303
    );
    assert!(is_granted(&env.ppl().unwrap(), &users[2].email));
}

#[tokio::test]
async fn id_token_revoked_mid_run() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    requested(&env, &app, &alice).await;
    let exchanges = env.zero.token_exchanges();
    env.zero.revoke_id_tokens();
    assert_eq!(
        app.post(
            "/admin/approve-access",
            &env.token(&TestUser::admin()),
            &[("email", &alice.email)]
        )
        .await
        .0,
        303
    );
    assert!(is_granted(&env.ppl().unwrap(), &alice.email));
    assert!(
        env.zero.token_exchanges() > exchanges,
        "a new id token was exchanged"
    );
}

/// With Zero failing every call, an admin approves `user`: the page must say
/// the decision is saved (503) and the policy must not grant yet.
async fn approve_while_zero_is_down(env: &Env, app: &crate::harness::App, user: &TestUser) {
    env.zero
        .fail_next(1_000_000, StatusCode::SERVICE_UNAVAILABLE);
    let (status, page) = app
        .post(
            "/admin/approve-access",
            &env.token(&TestUser::admin()),
            &[("email", &user.email)],
        )
        .await;
    assert_eq!(status, 503);
    assert!(
        page.to_lowercase().contains("saved"),
        "says the decision is saved: {page}"
    );
    assert!(!is_granted(&env.ppl().unwrap(), &user.email));
}

#[tokio::test]
async fn a_decision_saved_while_zero_is_down_is_applied_later() {
    let env = Env::new().await;
    let app = env.spawn(&[("APPLY_WAIT", "1s"), ("SYNC_INTERVAL", "1s")]);
    let alice = TestUser::alice();
    requested(&env, &app, &alice).await;
    approve_while_zero_is_down(&env, &app, &alice).await;
    env.zero.clear_faults();
    env.wait_ppl("applied once Zero answers", |p| is_granted(p, &alice.email))
        .await;
}

#[tokio::test]
async fn killed_between_saving_and_applying_converges_after_restart() {
    let env = Env::new().await;
    let app = env.spawn(&[("APPLY_WAIT", "500ms")]);
    let alice = TestUser::alice();
    requested(&env, &app, &alice).await;
    approve_while_zero_is_down(&env, &app, &alice).await;
    app.kill9();
    env.zero.clear_faults();
    let _app = env.spawn(&[]);
    env.wait_ppl("granted after restart", |p| is_granted(p, &alice.email))
        .await;
}

#[tokio::test]
async fn a_refused_api_token_shows_on_admin_and_readyz() {
    let env = Env::new().await;
    // Every load of /admin refreshes the sync in the background.
    let app = env.spawn(&[("SYNC_MAX_AGE", "0s"), ("READY_SYNC_GRACE", "0s")]);
    let alice = TestUser::alice();
    requested(&env, &app, &alice).await;
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 200);

    env.zero.revoke_api_token();
    env.zero.revoke_id_tokens();
    // The page answers from the store at once; the refresh it started
    // fails, and the next load says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, page) = loop {
        let (status, page) = app
            .get("/admin", Some(&env.token(&TestUser::admin())))
            .await;
        if status != 200 || tokio::time::Instant::now() > deadline {
            break (status, page);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "monitors see it");
    assert!(
        page.contains(&alice.email),
        "the store's view is still shown"
    );
    assert!(
        page.contains("API_USER_TOKEN") || page.to_lowercase().contains("token"),
        "banner names it: {page}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503);
    assert!(
        !body.contains(&alice.email) && !body.contains(env.zero.api_user_token()),
        "readyz reveals nothing"
    );
}

/// Two replicas on one PostgreSQL database, approvals on both at once: every
/// one lands, one writer at a time, and the audit trail is one chain.
#[tokio::test]
async fn two_replicas_share_one_postgres_without_losing_updates() {
    let Some(db) = crate::harness::PgDatabase::create().await else {
        return;
    };
    let env = Env::new().await;
    env.zero.set_latency(Duration::from_millis(20));
    let a = std::sync::Arc::new(env.spawn(&[("DATABASE_URL", &db.url)]));
    let b = std::sync::Arc::new(env.spawn(&[("DATABASE_URL", &db.url)]));
    let users: Vec<TestUser> = (0..12)
        .map(|i| TestUser::new(format!("r{i}"), format!("r{i}@example.com")))
        .collect();
    for (i, u) in users.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.post("/request-access", &env.token(u), &[]).await.0, 303);
    }
    let admin = env.token(&TestUser::admin());
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let app = if i % 2 == 0 { b.clone() } else { a.clone() };
            let (admin, email) = (admin.clone(), u.email.clone());
            tokio::spawn(async move {
                app.post("/admin/approve-access", &admin, &[("email", &email)])
                    .await
                    .0
            })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 303 || status == 503, "approval answered {status}");
    }
    env.wait_ppl("all 12 granted", |p| {
        users.iter().all(|u| is_granted(p, &u.email))
    })
    .await;
    assert_eq!(env.ppl().unwrap().as_array().unwrap().len(), 12);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .args(["audit", "verify"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("24 events"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A cluster that does not auto-apply changesets: the admin page says so, and
/// with APPLY_CHANGESETS=true the app applies its own pending changeset (and
/// only one that holds nothing but its policy).
#[tokio::test]
async fn changesets_are_reported_and_applied_when_asked() {
    use jit_fakes::zero::FakeZeroConfig;
    let env = Env::with_zero(FakeZeroConfig {
        auto_apply_changesets: false,
        ..Default::default()
    })
    .await;
    let alice = TestUser::alice();
    let admin = env.token(&TestUser::admin());

    let app = env.spawn(&[]);
    requested(&env, &app, &alice).await;
    let (_, page) = app.get("/admin", Some(&admin)).await;
    assert!(
        page.to_lowercase().contains("changeset"),
        "the admin page says changesets are not auto-applied"
    );
    let effective = |env: &Env| {
        env.zero
            .effective_policy_by_name(crate::harness::POLICY)
            .map(|p| p["ppl"].clone())
    };
    assert!(
        effective(&env).is_none_or(|p| !is_pending(&p, &alice.email)),
        "not deployed without apply"
    );
    drop(app);

    let app = env.spawn(&[("APPLY_CHANGESETS", "true")]);
    assert_eq!(
        app.post("/admin/approve-access", &admin, &[("email", &alice.email)])
            .await
            .0,
        303
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !effective(&env).is_some_and(|p| is_granted(&p, &alice.email)) {
        assert!(
            std::time::Instant::now() < deadline,
            "changeset not applied: {:?}",
            env.zero.changesets()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The hardening issue's reproduction: every policy update lands in Zero
/// but its answer is lost, so the app's base never learns of Alice's
/// request or grant. Then the admin revokes. Before write intents, the next
/// run read Alice's grant in Zero as a console edit, adopted it, and she
/// kept access; the revoke must stand and nothing be attributed to Zero.
#[tokio::test]
async fn a_revoke_after_lost_answers_stands() {
    let env = Env::new().await;
    // The wait (300 ms) is shorter than the shortest retry after a failed
    // run (1 s with this interval): a retry reads the landed policy back and
    // confirms it, which would answer 303 and teach the base the grant.
    let app = env.spawn(&[("APPLY_WAIT", "300ms"), ("SYNC_INTERVAL", "3s")]);
    let alice = TestUser::alice();
    let admin = env.token(&TestUser::admin());
    env.wait_ppl("the policy is created", |_| true).await;

    env.zero
        .drop_after_processing_next_method(http::Method::PUT, 1_000_000);
    let (status, _) = app.post("/request-access", &env.token(&alice), &[]).await;
    assert_eq!(status, 503, "the answer was lost: saved, not known applied");
    env.wait_ppl("the request landed", |p| is_pending(p, &alice.email))
        .await;
    let approve = [("email", alice.email.as_str())];
    let (status, _) = app.post("/admin/approve-access", &admin, &approve).await;
    assert_eq!(status, 503);
    env.wait_ppl("the grant landed", |p| is_granted(p, &alice.email))
        .await;
    // Retries (the first at least 1 s after the failed run) read nothing
    // until the revoke is saved, so the first policy the app reads after it
    // holds a grant its base never saw: the case where the grant used to be
    // adopted as a console edit.
    env.zero.fail_next_method(
        http::Method::GET,
        1_000_000,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    env.zero.clear_faults();
    // Saved either way; 303 only if the run ends within the 300 ms wait,
    // which a loaded machine does not promise.
    let (status, page) = app.post("/admin/revoke-access", &admin, &approve).await;
    assert!(matches!(status, 303 | 503), "{status}: {page}");
    env.wait_ppl("the revoke is applied", |p| {
        rule_for(p, &alice.email).is_none()
    })
    .await;
    // More syncs (every 3 s): it stays revoked.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(rule_for(&env.ppl().unwrap(), &alice.email).is_none());
    let (_, audit) = app
        .get("/admin/audit?email=alice@example.com", Some(&admin))
        .await;
    assert!(
        !audit.contains("an edit in Pomerium Zero"),
        "nothing the app wrote is adopted: {audit}"
    );
}
