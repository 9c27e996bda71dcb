use std::time::Duration;

use jit_fakes::pomerium::TestUser;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Env, POLICY, is_granted, is_pending, rule_for};

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

#[tokio::test]
async fn the_whole_flow() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    let admin = TestUser::admin();

    let (status, page) = app.get("/", Some(&env.token(&alice))).await;
    assert_eq!(status, 200);
    // Shown with a line-break opportunity after "@" and each ".".
    assert!(page.contains("alice@<wbr>example.<wbr>com"));

    let (status, _) = app.post("/request-access", &env.token(&alice), &[]).await;
    assert_eq!(status, 303);
    env.wait_ppl("alice pending", |p| is_pending(p, "alice@example.com"))
        .await;

    let before = OffsetDateTime::now_utc();
    let (status, _) = app
        .post(
            "/admin/approve-access",
            &env.token(&admin),
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    let ppl = env.ppl().unwrap();
    assert!(
        is_granted(&ppl, "alice@example.com"),
        "applied before answering: {ppl}"
    );
    let until = rule_for(&ppl, "alice@example.com").unwrap()["allow"]["and"][1]["date"]["before"]
        .as_str()
        .unwrap();
    let until = OffsetDateTime::parse(until, &Rfc3339).unwrap();
    let hour = until - before;
    assert!(
        hour > time::Duration::minutes(59) && hour <= time::Duration::minutes(61),
        "one hour: {hour}"
    );

    let (status, page) = app.get("/", Some(&env.token(&alice))).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(
            &until
                .format(&time::macros::format_description!("[hour]:[minute]"))
                .unwrap()
        )
    );

    let (status, _) = app
        .post(
            "/admin/revoke-access",
            &env.token(&admin),
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(rule_for(&env.ppl().unwrap(), "alice@example.com").is_none());

    // Nothing to revoke any more: a clear 404, nothing changes.
    let writes = env.zero.policy_writes();
    let (status, page) = app
        .post(
            "/admin/revoke-access",
            &env.token(&admin),
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(status, 404);
    assert!(page.contains("alice@example.com"));
    assert_eq!(env.zero.policy_writes(), writes);

    // Every decision is in the audit trail.
    let (status, audit) = app.get("/admin/audit", Some(&env.token(&admin))).await;
    assert_eq!(status, 200);
    for action in ["requested", "approved", "revoked"] {
        assert!(audit.contains(action), "audit lacks {action}");
    }

    // SIGTERM: graceful, status 0.
    assert!(app.terminate().await.success());
}

#[tokio::test]
async fn requesting_again_keeps_an_active_grant() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    app.post("/request-access", &env.token(&alice), &[]).await;
    app.post(
        "/admin/approve-access",
        &env.token(&TestUser::admin()),
        &[("email", "alice@example.com")],
    )
    .await;
    let granted = env.ppl().unwrap();
    assert!(is_granted(&granted, "alice@example.com"));
    let (status, _) = app.post("/request-access", &env.token(&alice), &[]).await;
    assert!(status == 303 || status == 409, "status {status}");
    assert_eq!(
        env.ppl().unwrap(),
        granted,
        "the original revoked the grant here"
    );
}

#[tokio::test]
async fn adopts_an_existing_policy_and_keeps_foreign_rules() {
    let env = Env::new().await;
    let now = OffsetDateTime::now_utc();
    let foreign = json!({"deny":{"or":[{"email":{"ends_with":"@contractor.test"}}]}});
    env.zero
        .insert_policy(json!({
            "name": POLICY, "namespaceId": env.zero.namespace_id(), "description": "made by the Go original",
            "enforced": false, "explanation": "", "remediation": "",
            "ppl": [
                {"allow":{"and":[{"email":"bob@example.com"},{"reject":true}]}},
                foreign,
                {"allow":{"and":[{"email":"alice@example.com"},{"date":{"before": rfc3339(now + time::Duration::minutes(30))}}]}},
                {"allow":{"and":[{"email":"dave@example.com"},{"date":{"before": rfc3339(now - time::Duration::hours(2))}}]}}
            ]
        }))
        .unwrap();
    let app = env.spawn(&[]);
    let (status, page) = app
        .get("/admin", Some(&env.token(&TestUser::admin())))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("bob@example.com") && page.contains("alice@example.com"));
    env.wait_ppl("expired dave removed", |p| {
        rule_for(p, "dave@example.com").is_none()
    })
    .await;
    let ppl = env.ppl().unwrap();
    assert_eq!(ppl[0], foreign, "foreign rule kept verbatim, first");
    assert!(is_pending(&ppl, "bob@example.com"));
    assert_eq!(
        rule_for(&ppl, "alice@example.com").unwrap()["allow"]["and"][1]["date"]["before"],
        rfc3339(now + time::Duration::minutes(30)),
        "imported with its expiry"
    );
    let policies = env.zero.policies();
    assert_eq!(
        policies.iter().filter(|p| p["name"] == POLICY).count(),
        1,
        "reused, not duplicated"
    );
    assert_eq!(
        policies[0]["description"], "made by the Go original",
        "other fields untouched"
    );

    // Alice's imported grant shows on her page.
    let (_, page) = app.get("/", Some(&env.token(&TestUser::alice()))).await;
    assert!(page.to_lowercase().contains("access"));
}

#[tokio::test]
async fn adopts_console_edits_and_removes_expired_grants() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    let alice = TestUser::alice();
    let admin = TestUser::admin();
    app.post("/request-access", &env.token(&alice), &[]).await;
    app.post(
        "/admin/approve-access",
        &env.token(&admin),
        &[("email", "alice@example.com")],
    )
    .await;
    let id = env.zero.policy_by_name(POLICY).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // In the console: remove alice's grant, add one for erin that ends in 3 s,
    // and a rule of someone else's.
    let soon = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let theirs = json!({"allow":{"or":[{"groups":{"has":"oncall"}}]}});
    env.zero
        .set_ppl(
            &id,
            json!([theirs, {"allow":{"and":[{"email":{"is":"erin@example.com"}},{"date":{"before": rfc3339(soon)}}]}}]),
        )
        .unwrap();

    // Alice's revocation is adopted into the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, audit) = app
            .get(
                "/admin/audit?email=alice@example.com",
                Some(&env.token(&admin)),
            )
            .await;
        if audit.contains("revoked") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "console revocation not adopted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Erin's grant is adopted, then removed once it expires; the foreign rule stays.
    env.wait_ppl("erin's expired grant removed", |p| {
        rule_for(p, "erin@example.com").is_none()
            && p.as_array().is_some_and(|a| a.contains(&theirs))
    })
    .await;
    assert!(
        rule_for(&env.ppl().unwrap(), "alice@example.com").is_none(),
        "not resurrected"
    );
    let (_, audit) = app
        .get(
            "/admin/audit?email=erin@example.com",
            Some(&env.token(&admin)),
        )
        .await;
    assert!(audit.contains("expired"), "expiry audited");
}

#[tokio::test]
async fn concurrent_requests_and_approvals_all_land() {
    let env = Env::new().await;
    env.zero.set_latency(Duration::from_millis(50));
    let app = std::sync::Arc::new(env.spawn(&[]));
    let users: Vec<TestUser> = (0..20)
        .map(|i| TestUser::new(format!("u{i}"), format!("user{i}@example.com")))
        .collect();
    let mut tasks = Vec::new();
    for u in &users {
        let (app, token) = (app.clone(), env.token(u));
        tasks.push(tokio::spawn(async move {
            app.post("/request-access", &token, &[]).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 303);
    }
    env.wait_ppl("20 pending", |p| {
        users.iter().all(|u| is_pending(p, &u.email))
    })
    .await;

    let admin_token = env.token(&TestUser::admin());
    let mut tasks = Vec::new();
    for u in &users[..10] {
        let (app, token, email) = (app.clone(), admin_token.clone(), u.email.clone());
        tasks.push(tokio::spawn(async move {
            app.post("/admin/approve-access", &token, &[("email", &email)])
                .await
                .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 303);
    }
    let ppl = env.ppl().unwrap();
    for (i, u) in users.iter().enumerate() {
        if i < 10 {
            assert!(is_granted(&ppl, &u.email), "{} granted", u.email);
        } else {
            assert!(is_pending(&ppl, &u.email), "{} pending", u.email);
        }
    }
    assert_eq!(ppl.as_array().unwrap().len(), 20, "no duplicates");
}
