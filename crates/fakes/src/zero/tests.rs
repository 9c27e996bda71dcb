//! The fake's own behaviour, checked with a plain HTTP client.

use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

struct Api {
    http: reqwest::Client,
    zero: FakeZero,
    token: String,
}

impl Api {
    async fn start(config: FakeZeroConfig) -> Api {
        let zero = FakeZero::start(config).await.unwrap();
        let http = reqwest::Client::new();
        let mut api = Api {
            http,
            zero,
            token: String::new(),
        };
        let (status, body) = api.exchange(api.zero.api_user_token()).await;
        assert_eq!(status, 200, "{body}");
        api.token = body["idToken"].as_str().unwrap().to_owned();
        api
    }

    async fn exchange(&self, refresh_token: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v0/token", self.zero.base_url()))
            .json(&json!({ "refreshToken": refresh_token }))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    fn org_url(&self, rest: &str) -> String {
        format!(
            "{}/api/v0/organizations/{}{rest}",
            self.zero.base_url(),
            self.zero.organization_id()
        )
    }

    async fn call(&self, method: Method, rest: &str, body: Option<Value>) -> (u16, Value) {
        self.call_url(method, &self.org_url(rest), body).await
    }

    async fn call_url(&self, method: Method, url: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn props(&self, name: &str) -> Value {
        json!({"name": name, "namespaceId": self.zero.namespace_id(), "description": "d",
               "enforced": false, "explanation": "e", "remediation": "r",
               "ppl": {"allow": {"or": [{"accept": true}]}}})
    }
}

#[tokio::test]
async fn token_exchange_and_authentication() {
    let api = Api::start(FakeZeroConfig::default()).await;
    let (_, good) = api.exchange(api.zero.api_user_token()).await;
    assert_eq!(good["expiresInSeconds"], "3600");
    assert_eq!(api.zero.token_exchanges(), 2);

    let (status, body) = api.exchange("wrong").await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());

    let bad_json = api
        .http
        .post(format!("{}/api/v0/token", api.zero.base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);

    let ns = format!("/policies?namespaceId={}", api.zero.namespace_id());
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 200);
    let anonymous = api.http.get(api.org_url(&ns)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let other_org = format!("{}/api/v0/organizations/nope{ns}", api.zero.base_url());
    assert_eq!(api.call_url(Method::GET, &other_org, None).await.0, 403);

    api.zero.revoke_id_tokens();
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 401);
    api.zero.revoke_api_token();
    assert_eq!(api.exchange(api.zero.api_user_token()).await.0, 401);
}

#[tokio::test]
async fn id_tokens_expire() {
    let api = Api::start(FakeZeroConfig {
        id_token_ttl: Duration::ZERO,
        ..FakeZeroConfig::default()
    })
    .await;
    let ns = format!("/policies?namespaceId={}", api.zero.namespace_id());
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 401);
}

#[tokio::test]
async fn policy_crud_behaves_like_the_api() {
    let api = Api::start(FakeZeroConfig::default()).await;
    let mut props = api.props("p1");
    props["futureField"] = json!({"kept": [1, 2]});
    props["id"] = json!("forged-id");

    let (status, created) = api.call(Method::POST, "/policies", Some(props)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 27);
    assert_eq!(created["futureField"], json!({"kept": [1, 2]}));
    assert_eq!(created["routes"], json!([]));
    assert_eq!(created["enforcedRoutes"], json!([]));
    time::OffsetDateTime::parse(
        created["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    assert_eq!(api.call(Method::GET, "/policies", None).await.0, 400);
    let ns = format!("/policies?namespaceId={}", api.zero.namespace_id());
    let (_, list) = api.call(Method::GET, &ns, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, other) = api.call(Method::GET, "/policies?namespaceId=x", None).await;
    assert_eq!(other, json!([]));

    let mut replacement = api.props("p1-renamed");
    replacement["ppl"] = json!([]);
    let path = format!("/policies/{id}");
    let (status, updated) = api.call(Method::PUT, &path, Some(replacement)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert_ne!(updated["updatedAt"], created["updatedAt"]);
    assert!(
        updated.get("futureField").is_none(),
        "PUT is a full replace"
    );
    assert_eq!(api.call(Method::GET, &path, None).await.1, updated);

    let mut bad = api.props("p1");
    bad["ppl"] = json!("allow everyone");
    let (status, body) = api.call(Method::PUT, &path, Some(bad)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("ppl"), "{body}");
    let missing = json!({"name": "x", "ppl": {}});
    assert_eq!(api.call(Method::PUT, &path, Some(missing)).await.0, 400);
    let unknown = api
        .call(Method::PUT, "/policies/nope", Some(api.props("x")))
        .await;
    assert_eq!(unknown.0, 404);

    assert_eq!(api.call(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(api.call(Method::GET, &path, None).await.0, 404);
    assert_eq!(api.call(Method::DELETE, &path, None).await.0, 404);
    assert_eq!(api.zero.policy_writes(), 3);
}

#[tokio::test]
async fn changesets_wait_for_apply_when_auto_apply_is_off() {
    let api = Api::start(FakeZeroConfig {
        auto_apply_changesets: false,
        ..FakeZeroConfig::default()
    })
    .await;
    let cluster = api.zero.cluster_id().to_owned();
    let (_, settings) = api
        .call(Method::GET, &format!("/clusters/{cluster}/settings"), None)
        .await;
    assert_eq!(settings["autoApplyChangesets"], false);
    assert_eq!(
        api.call(Method::GET, "/clusters/x/settings", None).await.0,
        404
    );

    let (_, created) = api
        .call(Method::POST, "/policies", Some(api.props("p")))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(api.zero.effective_ppl(id), None);
    assert!(api.zero.effective_policy_by_name("p").is_none());

    let (_, pending) = api
        .call(
            Method::GET,
            &format!("/changesets?clusterId={cluster}&status=pending"),
            None,
        )
        .await;
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["namespaceId"], cluster.as_str());
    let changeset = pending[0]["id"].as_str().unwrap();

    let (_, compared) = api
        .call(
            Method::GET,
            &format!("/changesets/compare?clusterId={cluster}"),
            None,
        )
        .await;
    assert_eq!(compared["endChangeset"]["id"], changeset);
    assert_eq!(compared["entities"][0][0]["entity"]["id"], id);

    let (status, applied) = api
        .call(
            Method::POST,
            &format!("/changesets/{changeset}/apply"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(applied["status"], "current");
    assert_eq!(api.zero.effective_ppl(id), Some(created["ppl"].clone()));
    assert_eq!(
        api.call(Method::POST, "/changesets/nope/apply", None)
            .await
            .0,
        404
    );
    let bogus = api
        .call(Method::GET, "/changesets?status=bogus", None)
        .await;
    assert_eq!(bogus.0, 400);

    // A console edit is saved but not enforced until applied.
    api.zero.set_ppl(id, json!([])).unwrap();
    assert_eq!(api.zero.policy(id).unwrap()["ppl"], json!([]));
    assert_eq!(api.zero.effective_ppl(id), Some(created["ppl"].clone()));
    assert_eq!(api.zero.apply_all_pending(), 1);
    assert_eq!(api.zero.effective_ppl(id), Some(json!([])));
}

#[tokio::test]
async fn console_edits() {
    let api = Api::start(FakeZeroConfig::default()).await;
    let id = api
        .zero
        .insert_policy(json!({"name": "console", "labels": ["x"]}))
        .unwrap();
    let stored = api.zero.policy_by_name("console").unwrap();
    assert_eq!(stored["id"], id.as_str());
    assert_eq!(stored["labels"], json!(["x"]));
    assert_eq!(stored["ppl"], json!([]));
    assert_eq!(
        api.zero.effective_policy_by_name("console").unwrap()["id"],
        id.as_str()
    );
    assert!(matches!(
        api.zero.insert_policy(json!({"ppl": {}})),
        Err(Rejection::Invalid(_))
    ));
    assert!(matches!(
        api.zero.set_ppl("nope", json!([])),
        Err(Rejection::UnknownPolicy(_))
    ));
    assert!(api.zero.remove_policy(&id));
    assert!(!api.zero.remove_policy(&id));
    assert_eq!(
        api.zero.policy_writes(),
        0,
        "console edits are not API writes"
    );
}

#[tokio::test]
async fn injected_faults() {
    let api = Api::start(FakeZeroConfig::default()).await;
    let ns = format!("/policies?namespaceId={}", api.zero.namespace_id());

    api.zero
        .fail_next_method(Method::PUT, 1, StatusCode::BAD_GATEWAY);
    api.zero.fail_next(1, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 503);
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 200);
    let put = api
        .call(Method::PUT, "/policies/x", Some(api.props("x")))
        .await;
    assert_eq!(put.0, 502);

    api.zero
        .fail_token_exchange_next(1, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.exchange(api.zero.api_user_token()).await.0, 500);
    assert_eq!(api.exchange(api.zero.api_user_token()).await.0, 200);

    let date = SystemTime::now() + Duration::from_secs(30);
    api.zero.rate_limit_next(1, RetryAfter::Seconds(7));
    api.zero.rate_limit_next(1, RetryAfter::HttpDate(date));
    for expected in ["7".to_owned(), httpdate::fmt_http_date(date)] {
        let resp = api
            .http
            .get(api.org_url(&ns))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], expected.as_str());
    }

    api.zero.drop_next(1);
    let dropped = api
        .http
        .get(api.org_url(&ns))
        .bearer_auth(&api.token)
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(api.zero.policy_writes(), 0);

    api.zero.drop_after_processing_next(1);
    let lost = api
        .http
        .post(api.org_url("/policies"))
        .bearer_auth(&api.token)
        .json(&api.props("lost"))
        .send()
        .await;
    assert!(lost.is_err(), "{lost:?}");
    assert!(api.zero.policy_by_name("lost").is_some());
    assert_eq!(api.zero.policy_writes(), 1);

    // Only the method named loses its answer.
    api.zero.drop_after_processing_next_method(Method::PUT, 1);
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 200);
    let id = api.zero.policy_by_name("lost").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lost = api
        .http
        .put(api.org_url(&format!("/policies/{id}")))
        .bearer_auth(&api.token)
        .json(&api.props("lost-renamed"))
        .send()
        .await;
    assert!(lost.is_err(), "{lost:?}");
    assert!(
        api.zero.policy_by_name("lost-renamed").is_some(),
        "it landed"
    );

    let log = api.zero.requests();
    let dropped: Vec<_> = log.iter().filter(|r| r.status.is_none()).collect();
    assert_eq!(dropped.len(), 3);
    assert_eq!(dropped[1].method, Method::POST);
    assert!(
        log.iter()
            .any(|r| r.query.as_deref() == Some(&ns[ns.find('?').unwrap() + 1..]))
    );

    api.zero.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(api.call(Method::GET, &ns, None).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn stops_when_dropped() {
    let api = Api::start(FakeZeroConfig::default()).await;
    let Api { http, zero, .. } = api;
    let url = format!("{}/api/v0/token", zero.base_url());
    drop(zero);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(http.post(url).body("{}").send().await.is_err());
}

#[test]
fn debug_output_hides_the_api_token() {
    let config = FakeZeroConfig {
        api_user_token: "top-secret-token".into(),
        ..FakeZeroConfig::default()
    };
    assert!(!format!("{config:?}").contains("top-secret"));
}
