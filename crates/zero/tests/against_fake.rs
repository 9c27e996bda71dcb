//! The client against the fake Zero API (`jit_fakes::zero`), which speaks
//! the wire format of docs/pomerium.md §3 from raw JSON.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use jit_fakes::zero::{FakeZero, FakeZeroConfig, RetryAfter};
use jit_zero::{
    ChangesetStatus, Operation, Policy, PolicyProperties, PolicyRef, RetryPolicy, ZeroClient,
    ZeroConfig, ZeroError,
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, json};

async fn fake(config: FakeZeroConfig) -> FakeZero {
    FakeZero::start(config).await.expect("fake Zero starts")
}

/// Fast retries so the tests do not sleep for long.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: NonZeroU32::new(4).unwrap(),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
    }
}

fn client_with(zero: &FakeZero, adjust: impl FnOnce(&mut ZeroConfig)) -> ZeroClient {
    let mut config = ZeroConfig::new(
        zero.api_user_token().to_owned().into(),
        zero.organization_id(),
    );
    config.base_url = zero.base_url().parse().unwrap();
    config.request_timeout = Duration::from_secs(5);
    config.retry = fast_retry();
    adjust(&mut config);
    ZeroClient::new(config).unwrap()
}

/// A fake Zero, a client of it, and the id of a policy `p` created there.
async fn with_policy() -> (FakeZero, ZeroClient, String) {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let id = create_p(&zero, &zc).await;
    (zero, zc, id)
}

/// Creates policy `p` through `zc`; its id.
async fn create_p(zero: &FakeZero, zc: &ZeroClient) -> String {
    zc.create_policy::<PolicyRef>(&props(zero, "p"))
        .await
        .unwrap()
        .id
}

fn client(zero: &FakeZero) -> ZeroClient {
    client_with(zero, |_| {})
}

fn props(zero: &FakeZero, name: &str) -> PolicyProperties {
    PolicyProperties {
        name: name.to_owned(),
        namespace_id: zero.namespace_id().to_owned(),
        description: "managed by pomerium-jit".to_owned(),
        enforced: false,
        explanation: String::new(),
        remediation: String::new(),
        ppl: json!([]).into(),
        originator_id: None,
        extra: Map::new(),
    }
}

/// Statuses the fake sent (None = connection dropped) for `method` `path`.
fn statuses(zero: &FakeZero, method: &Method, path_suffix: &str) -> Vec<Option<u16>> {
    zero.requests()
        .iter()
        .filter(|r| r.method == *method && r.path.ends_with(path_suffix))
        .map(|r| r.status.map(|s| s.as_u16()))
        .collect()
}

#[tokio::test]
async fn one_token_exchange_serves_many_calls() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    for _ in 0..5 {
        zc.list_policies(zero.namespace_id()).await.unwrap();
    }
    zc.clone()
        .get_cluster_settings(zero.cluster_id())
        .await
        .unwrap();
    assert_eq!(zero.token_exchanges(), 1);
    let token_calls = statuses(&zero, &Method::POST, "/api/v0/token");
    assert_eq!(token_calls, [Some(200)]);
}

/// A policy of thousands of rules arrives in many pieces; the answer is
/// read whole, each piece in its place.
#[tokio::test]
async fn a_policy_of_megabytes_is_read_back_whole() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let rules: Vec<_> = (0..12_000)
        .map(|i| {
            json!({"allow": {"and": [
                {"email": {"is": format!("person{i}@example.com")}},
                {"date": {"before": "2026-12-01T12:00:00Z"}}
            ]}})
        })
        .collect();
    let ppl = serde_json::Value::Array(rules);
    let mut big = props(&zero, "big");
    big.ppl = ppl.clone().into();
    assert!(big.ppl.as_str().len() > 1_000_000);
    let id = zc.create_policy::<PolicyRef>(&big).await.unwrap().id;
    let read = zc.get_policy(&id).await.unwrap();
    assert_eq!(read.properties().ppl.to_value(), ppl);
}

#[tokio::test]
async fn token_is_refreshed_a_minute_before_expiry() {
    // 62 s of life: usable for two seconds, then due for refresh while the
    // fake would still accept it.
    let zero = fake(FakeZeroConfig {
        id_token_ttl: Duration::from_secs(62),
        ..FakeZeroConfig::default()
    })
    .await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert_eq!(zero.token_exchanges(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert_eq!(zero.token_exchanges(), 2);
    assert!(
        zero.requests()
            .iter()
            .all(|r| r.status != Some(StatusCode::UNAUTHORIZED)),
        "the refresh was proactive, not forced by a 401"
    );
}

#[tokio::test]
async fn very_short_lived_tokens_are_reused_for_half_their_life() {
    let zero = fake(FakeZeroConfig {
        id_token_ttl: Duration::from_secs(4),
        ..FakeZeroConfig::default()
    })
    .await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert_eq!(zero.token_exchanges(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert_eq!(zero.token_exchanges(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_token_exchange() {
    let zero = fake(FakeZeroConfig::default()).await;
    // A slow exchange widens the window in which callers pile up.
    zero.set_latency(Duration::from_millis(100));
    let zc = client(&zero);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let zc = zc.clone();
            let ns = zero.namespace_id().to_owned();
            tokio::spawn(async move { zc.list_policies(&ns).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(zero.token_exchanges(), 1);
}

#[tokio::test]
async fn rejected_id_token_is_refreshed_and_the_call_retried_once() {
    let (zero, zc, id) = with_policy().await;
    zero.revoke_id_tokens();
    let mut changed = zc.get_policy(&id).await.unwrap().into_properties();
    changed.description = "after refresh".to_owned();
    zero.revoke_id_tokens();
    let updated = zc.update_policy::<Policy>(&id, &changed).await.unwrap();
    assert_eq!(updated.properties().description, "after refresh");
    assert_eq!(zero.token_exchanges(), 3);
    assert_eq!(statuses(&zero, &Method::PUT, &id), [Some(401), Some(200)]);
}

#[tokio::test]
async fn revoked_api_token_gives_a_clear_error() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    zero.revoke_api_token();
    zero.revoke_id_tokens();
    let err = zc.list_policies(zero.namespace_id()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::TokenRefused {
                status: StatusCode::UNAUTHORIZED,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("Account → API Tokens"), "{message}");
    assert!(!message.contains(zero.api_user_token()), "{message}");
    // Refused credentials are not retried.
    assert_eq!(
        statuses(&zero, &Method::POST, "/token"),
        [Some(200), Some(401)]
    );

    let wrong = client_with(&zero, |c| {
        c.api_user_token = "not-the-token".to_owned().into()
    });
    let err = wrong.get_policy("x").await.unwrap_err();
    assert!(matches!(err, ZeroError::TokenRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn token_exchange_is_retried_on_server_errors() {
    let zero = fake(FakeZeroConfig::default()).await;
    zero.fail_token_exchange_next(2, StatusCode::SERVICE_UNAVAILABLE);
    client(&zero)
        .list_policies(zero.namespace_id())
        .await
        .unwrap();
    let exchanges = statuses(&zero, &Method::POST, "/token");
    assert_eq!(exchanges, [Some(503), Some(503), Some(200)]);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let id = zero.insert_policy(json!({"name": "p"})).unwrap();
    zero.fail_next(2, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(zc.get_policy(&id).await.unwrap().id, id);
    assert_eq!(
        statuses(&zero, &Method::GET, &id),
        [Some(500), Some(500), Some(200)]
    );
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_max_attempts() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zero.fail_next(10, StatusCode::BAD_GATEWAY);
    let err = zc.list_policies(zero.namespace_id()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::Status {
                status: StatusCode::BAD_GATEWAY,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("try again later"), "{err}");
}

#[tokio::test]
async fn create_is_not_retried_after_a_500_but_is_after_a_503() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();

    zero.fail_next_method(Method::POST, 1, StatusCode::INTERNAL_SERVER_ERROR);
    let err = zc
        .create_policy::<PolicyRef>(&props(&zero, "a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZeroError::Status { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(zero.policy_writes(), 0);

    zero.fail_next_method(Method::POST, 1, StatusCode::SERVICE_UNAVAILABLE);
    zc.create_policy::<PolicyRef>(&props(&zero, "b"))
        .await
        .unwrap();
    assert_eq!(zero.policy_writes(), 1);
    assert_eq!(zero.policies().len(), 1);
}

#[tokio::test]
async fn rate_limits_honour_retry_after_in_seconds() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    zero.rate_limit_next(1, RetryAfter::Seconds(1));
    let started = Instant::now();
    create_p(&zero, &zc).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        statuses(&zero, &Method::POST, "/policies"),
        [Some(429), Some(201)]
    );
}

#[tokio::test]
async fn rate_limits_honour_retry_after_as_http_date() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    // HTTP-dates have one-second resolution: now + 2 s means a wait of
    // more than one second.
    zero.rate_limit_next(
        1,
        RetryAfter::HttpDate(SystemTime::now() + Duration::from_secs(2)),
    );
    let started = Instant::now();
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn too_long_a_retry_after_fails_at_once_with_the_delay() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zero.rate_limit_next(1, RetryAfter::Seconds(120));
    let started = Instant::now();
    let err = zc.list_policies(zero.namespace_id()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(
        matches!(err, ZeroError::RateLimited { attempts: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn dropped_connections_are_retried_for_get_and_put() {
    let (zero, zc, id) = with_policy().await;

    zero.drop_next(1);
    let policy = zc.get_policy(&id).await.unwrap();
    assert_eq!(statuses(&zero, &Method::GET, &id), [None, Some(200)]);

    // A lost response to a PUT: it is repeated, which is harmless.
    zero.drop_after_processing_next(1);
    let mut changed = policy.into_properties();
    changed.ppl = json!({"allow": {"or": [{"accept": true}]}}).into();
    let updated = zc.update_policy::<Policy>(&id, &changed).await.unwrap();
    assert_eq!(updated.properties().ppl, changed.ppl);
    assert_eq!(statuses(&zero, &Method::PUT, &id), [None, Some(200)]);
    assert_eq!(zero.policy_writes(), 3);

    zero.drop_next(1);
    zc.delete_policy(&id).await.unwrap();
    assert_eq!(statuses(&zero, &Method::DELETE, &id), [None, Some(204)]);
}

#[tokio::test]
async fn create_is_never_duplicated_when_its_response_is_lost() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();

    zero.drop_after_processing_next(1);
    let err = zc
        .create_policy::<PolicyRef>(&props(&zero, "jit"))
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert!(
        matches!(err, ZeroError::Transport { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(zero.policy_writes(), 1);
    // The documented recovery: look it up by name.
    let found = zc.list_policies(zero.namespace_id()).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].properties().name, "jit");

    // Dropped before processing looks the same to the client: not retried.
    zero.drop_next(1);
    let err = zc
        .create_policy::<PolicyRef>(&props(&zero, "other"))
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert_eq!(zero.policies().len(), 1);
}

#[tokio::test]
async fn create_is_retried_when_the_connection_cannot_be_made() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    zc.list_policies(zero.namespace_id()).await.unwrap();
    let policy = props(&zero, "p");
    // With a valid token in hand, the server goes away: connecting is refused.
    drop(zero);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = zc.create_policy::<PolicyRef>(&policy).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::Transport {
                op: Operation::CreatePolicy,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !err.outcome_unknown(),
        "a refused connection never reached the server"
    );
}

#[tokio::test]
async fn latency_is_tolerated_and_timeouts_are_enforced() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client_with(&zero, |c| {
        c.request_timeout = Duration::from_millis(400);
        c.retry.max_attempts = NonZeroU32::new(2).unwrap();
    });
    zc.list_policies(zero.namespace_id()).await.unwrap();

    zero.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    zc.list_policies(zero.namespace_id()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));

    zero.set_latency(Duration::from_secs(3));
    let started = Instant::now();
    let err = zc.list_policies(zero.namespace_id()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::Timeout {
                attempts: 2,
                op: Operation::ListPolicies,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.outcome_unknown());

    let err = zc
        .create_policy::<PolicyRef>(&props(&zero, "slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZeroError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.outcome_unknown());
}

#[tokio::test]
async fn unknown_fields_survive_a_read_modify_write() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let id = zero
        .insert_policy(json!({
            "name": "jit-example",
            "description": "from the console",
            "enforced": true,
            "originatorId": "console-user",
            "labels": {"team": "sre"},
            "futureField": [1, {"deep": null}],
            "ppl": {"deny": {"or": [{"email": {"is": "mallory@example.com"}}]}}
        }))
        .unwrap();
    let before = zero.policy(&id).unwrap();

    let mut props = zc.get_policy(&id).await.unwrap().into_properties();
    props.ppl = json!([{"allow": {"and": [{"email": {"is": "a@example.com"}}]}}]).into();
    zc.update_policy::<PolicyRef>(&id, &props).await.unwrap();

    let after = zero.policy(&id).unwrap();
    for field in [
        "name",
        "namespaceId",
        "description",
        "enforced",
        "explanation",
        "remediation",
        "originatorId",
        "labels",
        "futureField",
        "createdAt",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["ppl"], props.ppl);
    assert_ne!(after["updatedAt"], before["updatedAt"]);
}

/// A writer that asks for the id alone gets the id of what it wrote, from
/// answers carrying the whole policy (here with a thousand grants in it).
#[tokio::test]
async fn a_write_can_be_answered_with_the_id_alone() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let mut p = props(&zero, "jit");
    let rules: Vec<_> = (0..1000)
        .map(|i| json!({"allow": {"and": [{"email": {"is": format!("u{i}@example.com")}}]}}))
        .collect();
    p.ppl = json!(rules).into();
    let created = zc.create_policy::<PolicyRef>(&p).await.unwrap();
    let stored = zc.get_policy(&created.id).await.unwrap();
    assert_eq!(stored.properties(), &p);
    p.description = "changed".to_owned();
    let updated = zc
        .update_policy::<PolicyRef>(&created.id, &p)
        .await
        .unwrap();
    assert_eq!(updated, created);
    assert_eq!(
        zc.get_policy(&created.id)
            .await
            .unwrap()
            .properties()
            .description,
        "changed"
    );
}

#[tokio::test]
async fn create_answers_201_with_the_stored_policy() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);
    let created = zc
        .create_policy::<Policy>(&props(&zero, "jit"))
        .await
        .unwrap();
    assert_eq!(created.id.len(), 27);
    assert_eq!(created.properties(), &props(&zero, "jit"));
    assert!(created.routes.is_empty());
    assert_eq!(statuses(&zero, &Method::POST, "/policies"), [Some(201)]);
    assert_eq!(zc.get_policy(&created.id).await.unwrap(), created);
}

#[tokio::test]
async fn changesets_can_be_listed_compared_and_applied() {
    let zero = fake(FakeZeroConfig {
        auto_apply_changesets: false,
        ..FakeZeroConfig::default()
    })
    .await;
    let zc = client(&zero);
    let cluster = zero.cluster_id();
    assert!(
        !zc.get_cluster_settings(cluster)
            .await
            .unwrap()
            .auto_apply_changesets
    );

    let mut p = props(&zero, "jit");
    p.ppl = json!([{"allow": {"and": [{"email": {"is": "a@example.com"}}]}}]).into();
    let created = zc.create_policy::<Policy>(&p).await.unwrap();
    assert_eq!(
        zero.effective_ppl(&created.id),
        None,
        "saved but not enforced"
    );

    let pending = zc
        .list_changesets(cluster, Some(&ChangesetStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].namespace_id, zero.namespace_id());

    let comparison = zc
        .compare_changesets(cluster, None, Some(&pending[0].id))
        .await
        .unwrap();
    assert_eq!(comparison.end_changeset.id, pending[0].id);
    assert_eq!(comparison.entities[0][0].entity.id, created.id);

    let applied = zc.apply_changeset(&pending[0].id).await.unwrap();
    assert!(applied.status.is_effective(), "{:?}", applied.status);
    assert_eq!(zero.effective_ppl(&created.id), Some(p.ppl.to_value()));
    // Applying again is a harmless no-op.
    assert_eq!(
        zc.apply_changeset(&pending[0].id).await.unwrap().id,
        applied.id
    );
    assert!(
        zc.list_changesets(cluster, Some(&ChangesetStatus::Pending))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(zc.list_changesets(cluster, None).await.unwrap().len(), 1);

    zero.set_auto_apply(true);
    assert!(
        zc.get_cluster_settings(cluster)
            .await
            .unwrap()
            .auto_apply_changesets
    );
}

#[tokio::test]
async fn not_found_forbidden_and_invalid_are_typed_and_not_retried() {
    let zero = fake(FakeZeroConfig::default()).await;
    let zc = client(&zero);

    let err = zc.get_policy("gone").await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::NotFound {
                op: Operation::GetPolicy,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("deleted in the console"), "{err}");
    assert_eq!(statuses(&zero, &Method::GET, "/gone"), [Some(404)]);

    let mut bad = props(&zero, "bad");
    bad.ppl = json!("allow everyone").into();
    let err = zc.create_policy::<PolicyRef>(&bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::Status {
                status: StatusCode::BAD_REQUEST,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("ppl"), "the body explains: {err}");

    let other_org = client_with(&zero, |c| c.organization_id = "someone-elses".to_owned());
    let err = other_org
        .list_policies(zero.namespace_id())
        .await
        .unwrap_err();
    assert!(matches!(err, ZeroError::Forbidden { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("lacks permission for organization someone-elses"),
        "{err}"
    );
}

/// Writes log output into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_show_each_call_but_never_a_token() {
    let zero = fake(FakeZeroConfig::default()).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let zc = client(&zero);
    let id = create_p(&zero, &zc).await;
    zero.revoke_id_tokens();
    zero.fail_next(1, StatusCode::BAD_GATEWAY);
    zc.get_policy(&id).await.unwrap();
    let debug = format!("{zc:?}");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Pomerium Zero API call"), "{logs}");
    assert!(
        logs.contains("status=502") && logs.contains("attempt=2"),
        "{logs}"
    );
    assert!(!logs.contains(zero.api_user_token()), "{logs}");
    assert!(!logs.contains("Bearer"), "{logs}");
    assert!(!debug.contains(zero.api_user_token()), "{debug}");
}

/// A replace lets a success's answer go (the stored policy, as large as
/// what was sent) but keeps a refusal's, for its error; an answer lost
/// after the write is repeated, as any PUT's.
#[tokio::test]
async fn a_replace_lets_the_answer_go_but_not_a_refusal() {
    let (zero, zc, id) = with_policy().await;
    let mut changed = props(&zero, "p");
    changed.ppl = json!([{"allow": {"and": [{"email": {"is": "a@example.com"}}]}}]).into();
    let ppl = changed.ppl.clone();
    zc.replace_policy(&id, changed.clone()).await.unwrap();
    assert_eq!(zero.policy(&id).unwrap()["ppl"], ppl);
    assert_eq!(statuses(&zero, &Method::PUT, &id), [Some(200)]);

    zero.drop_after_processing_next(1);
    zc.replace_policy(&id, changed.clone()).await.unwrap();
    assert_eq!(
        statuses(&zero, &Method::PUT, &id),
        [Some(200), None, Some(200)]
    );

    let mut bad = changed;
    bad.ppl = json!("allow everyone").into();
    let err = zc.replace_policy(&id, bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZeroError::Status {
                status: StatusCode::BAD_REQUEST,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("ppl"), "the body explains: {err}");
    assert_eq!(zero.policy(&id).unwrap()["ppl"], ppl, "nothing changed");
}
