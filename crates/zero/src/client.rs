//! The HTTP client: token handling, the retry loop, and the operations.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::Ppl;
use crate::config::{ConfigError, RetryPolicy, ZeroConfig};
use crate::error::{Idempotency, Operation, ZeroError, error_body};
use crate::model::{
    Changeset, ChangesetComparison, ChangesetStatus, ClusterSettings, Policy, PolicyProperties,
};
use crate::token::{IdToken, TokenCache, TokenResponse};

/// A client for the Pomerium Zero management API. Cheap to clone (clones
/// share the HTTP connection pool and the ID token).
#[derive(Clone)]
pub struct ZeroClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_root: Url,
    organization_id: String,
    api_user_token: SecretString,
    request_timeout: Duration,
    retry: RetryPolicy,
    tokens: TokenCache,
}

/// One logical call, possibly sent several times.
struct ApiRequest {
    op: Operation,
    method: Method,
    url: Url,
    /// Shared by every attempt, not copied: a policy may be megabytes.
    body: Option<Bytes>,
    answer: Answer,
}

/// What becomes of a successful answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Read whole, for the caller.
    Keep,
    /// Read to its end and dropped as it arrives (a failure's is kept).
    Drop,
}

/// The most a response's announced length reserves at once.
const BODY_RESERVE_MAX: u64 = 16 * 1024 * 1024;

/// A complete HTTP response to one attempt.
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
}

/// The final response of a call, after retries.
struct RawResponse {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
    /// When the attempt that produced this response was sent.
    sent_at: Instant,
    /// How many attempts it took.
    attempts: u32,
}

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A complete response with this status.
    Status(StatusCode),
    /// Connecting failed: the request surely did not reach the server.
    NotSent,
    /// Sent, but no complete response within the timeout.
    TimedOut,
    /// Sent, but the connection broke before a complete response.
    Interrupted,
}

impl Outcome {
    /// The `status` label: the HTTP status code, or how the attempt failed.
    fn label(self) -> String {
        match self {
            Outcome::Status(status) => status.as_u16().to_string(),
            Outcome::NotSent => "unreachable".into(),
            Outcome::TimedOut => "timeout".into(),
            Outcome::Interrupted => "interrupted".into(),
        }
    }
}

/// Whether an attempt may be repeated.
///
/// Idempotent calls retry on 429, 500, 502, 503, 504, connection failures
/// and timeouts. Creating a policy is only retried when the server cannot
/// have acted on it: the connection was never established, or the answer
/// was 429 or 503 (a refusal to process). A create that timed out or lost
/// its connection after sending is *not* repeated, so it is never
/// duplicated; the caller sees an error with
/// [`ZeroError::outcome_unknown`] and must look the policy up by name.
fn should_retry(idempotency: Idempotency, outcome: Outcome) -> bool {
    let idempotent = idempotency == Idempotency::Idempotent;
    match outcome {
        Outcome::NotSent => true,
        Outcome::Status(status) => match status.as_u16() {
            429 | 503 => true,
            500 | 502 | 504 => idempotent,
            _ => false,
        },
        Outcome::TimedOut | Outcome::Interrupted => idempotent,
    }
}

/// `Retry-After` as delta-seconds or as an HTTP-date (RFC 9110 §10.2.3); a
/// date in the past means "now". Unparseable values are ignored.
fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest<'a> {
    refresh_token: &'a str,
}

impl ZeroClient {
    /// Builds a client; no request is made until the first call.
    pub fn new(config: ZeroConfig) -> Result<Self, ConfigError> {
        if config.api_user_token.expose_secret().trim().is_empty() {
            return Err(ConfigError::EmptyApiUserToken);
        }
        let org = &config.organization_id;
        if org.is_empty() || org.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::InvalidOrganizationId(org.clone()));
        }
        if config.request_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let http = jit_http::client()
            .connect_timeout(config.request_timeout)
            // A redirect could carry the bearer token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pomerium-jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ConfigError::HttpClient)?;
        Ok(ZeroClient {
            inner: Arc::new(Inner {
                http,
                api_root: config.base_url.as_url().clone(),
                organization_id: config.organization_id,
                api_user_token: config.api_user_token,
                request_timeout: config.request_timeout,
                retry: config.retry,
                tokens: TokenCache::default(),
            }),
        })
    }

    /// The configured organization.
    pub fn organization_id(&self) -> &str {
        &self.inner.organization_id
    }

    /// Exchanges the API user token for an ID token, unless a fresh one is
    /// held: proves the token is accepted without touching anything else.
    pub async fn authenticate(&self) -> Result<(), ZeroError> {
        self.id_token().await.map(drop)
    }

    /// All policies in a namespace (`GET /organizations/{org}/policies`).
    /// The API returns a bare array without paging metadata.
    pub async fn list_policies(&self, namespace_id: &str) -> Result<Vec<Policy>, ZeroError> {
        let op = Operation::ListPolicies;
        non_empty(op, "namespace id", namespace_id)?;
        let req = self.org_request(
            op,
            Method::GET,
            &["policies"],
            &[("namespaceId", namespace_id)],
            None,
        );
        self.call_json(req).await
    }

    /// One policy; [`ZeroError::NotFound`] when it does not exist.
    pub async fn get_policy(&self, policy_id: &str) -> Result<Policy, ZeroError> {
        let op = Operation::GetPolicy;
        non_empty(op, "policy id", policy_id)?;
        let req = self.org_request(op, Method::GET, &["policies", policy_id], &[], None);
        let (resp, token) = self.call_with_token(req).await?;
        Policy::from_answer(resp.body).map_err(|(source, body)| ZeroError::Decode {
            op,
            status: resp.status,
            body: self.redacted_body(&body, Some(&token)),
            source,
        })
    }

    /// Creates a policy (the API answers 201 with the stored policy), read as
    /// `A`: [`Policy`], or [`PolicyRef`](crate::PolicyRef) for its id alone.
    ///
    /// Not idempotent, so it is retried only when the server surely did not
    /// act on it (see [`ZeroError::outcome_unknown`]).
    pub async fn create_policy<A: DeserializeOwned>(
        &self,
        properties: &PolicyProperties,
    ) -> Result<A, ZeroError> {
        let op = Operation::CreatePolicy;
        let req = self.org_request(
            op,
            Method::POST,
            &["policies"],
            &[],
            Some(to_json(properties, properties.json_len_hint())),
        );
        self.call_json(req).await
    }

    /// Replaces a policy's properties (PUT is a full replace: send what
    /// [`Policy::into_properties`] gave you, with your change). The answer,
    /// the stored policy, is read as `A`: [`Policy`], or
    /// [`PolicyRef`](crate::PolicyRef) for its id alone.
    pub async fn update_policy<A: DeserializeOwned>(
        &self,
        policy_id: &str,
        properties: &PolicyProperties,
    ) -> Result<A, ZeroError> {
        let body = to_json(properties, properties.json_len_hint());
        let req = self.update_request(policy_id, body)?;
        self.call_json(req).await
    }

    /// [`ZeroClient::update_policy`] for a caller that needs neither the
    /// properties afterwards nor the answer: the PPL's own text becomes the
    /// request body ([`into_json`]), and the answer (the stored policy, as
    /// large as what was sent) is read and let go piece by piece, so a
    /// megabyte of PPL is held once, not three times (the text, the body,
    /// the answer). A failure's answer is kept for its error, as always.
    pub async fn replace_policy(
        &self,
        policy_id: &str,
        properties: PolicyProperties,
    ) -> Result<(), ZeroError> {
        let mut req = self.update_request(policy_id, into_json(properties))?;
        req.answer = Answer::Drop;
        self.call(req).await.map(drop)
    }

    fn update_request(&self, policy_id: &str, body: Bytes) -> Result<ApiRequest, ZeroError> {
        let op = Operation::UpdatePolicy;
        non_empty(op, "policy id", policy_id)?;
        Ok(self.org_request(op, Method::PUT, &["policies", policy_id], &[], Some(body)))
    }

    /// Deletes a policy.
    pub async fn delete_policy(&self, policy_id: &str) -> Result<(), ZeroError> {
        let op = Operation::DeletePolicy;
        non_empty(op, "policy id", policy_id)?;
        let req = self.org_request(op, Method::DELETE, &["policies", policy_id], &[], None);
        self.call(req).await.map(drop)
    }

    /// Changesets of a cluster, optionally only those with `status`. No
    /// paging parameters are sent; the server's default page applies.
    pub async fn list_changesets(
        &self,
        cluster_id: &str,
        status: Option<&ChangesetStatus>,
    ) -> Result<Vec<Changeset>, ZeroError> {
        let op = Operation::ListChangesets;
        non_empty(op, "cluster id", cluster_id)?;
        let mut query = vec![("clusterId", cluster_id)];
        query.extend(status.map(|s| ("status", s.as_str())));
        let req = self.org_request(op, Method::GET, &["changesets"], &query, None);
        self.call_json(req).await
    }

    /// The changes between two changesets of a cluster; `None` for
    /// `first_id` compares from the beginning, for `second_id` up to the
    /// latest.
    pub async fn compare_changesets(
        &self,
        cluster_id: &str,
        first_id: Option<&str>,
        second_id: Option<&str>,
    ) -> Result<ChangesetComparison, ZeroError> {
        let op = Operation::CompareChangesets;
        non_empty(op, "cluster id", cluster_id)?;
        let mut query = vec![("clusterId", cluster_id)];
        query.extend(first_id.map(|id| ("firstId", id)));
        query.extend(second_id.map(|id| ("secondId", id)));
        let req = self.org_request(op, Method::GET, &["changesets", "compare"], &query, None);
        self.call_json(req).await
    }

    /// Applies a pending changeset (needed when the cluster's
    /// `autoApplyChangesets` is off). Applying twice is harmless, so it is
    /// retried like a GET.
    pub async fn apply_changeset(&self, changeset_id: &str) -> Result<Changeset, ZeroError> {
        let op = Operation::ApplyChangeset;
        non_empty(op, "changeset id", changeset_id)?;
        let segments = ["changesets", changeset_id, "apply"];
        let req = self.org_request(op, Method::POST, &segments, &[], None);
        self.call_json(req).await
    }

    /// A cluster's settings; the app needs `autoApplyChangesets`.
    pub async fn get_cluster_settings(
        &self,
        cluster_id: &str,
    ) -> Result<ClusterSettings, ZeroError> {
        let op = Operation::GetClusterSettings;
        non_empty(op, "cluster id", cluster_id)?;
        let segments = ["clusters", cluster_id, "settings"];
        let req = self.org_request(op, Method::GET, &segments, &[], None);
        self.call_json(req).await
    }

    /// A request under `/organizations/{org}/…`; ids are percent-encoded as
    /// path segments, so no id can change the path.
    fn org_request(
        &self,
        op: Operation,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> ApiRequest {
        let org = self.inner.organization_id.as_str();
        let mut path = vec!["organizations", org];
        path.extend_from_slice(segments);
        ApiRequest {
            op,
            method,
            url: self.url(&path, query),
            body,
            answer: Answer::Keep,
        }
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.api_root.clone();
        url.path_segments_mut()
            .expect("the validated base URL is http(s) and has a path")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The path below the API root, for messages and logs.
    fn relative_path<'a>(&self, url: &'a Url) -> &'a str {
        url.path()
            .strip_prefix(self.inner.api_root.path())
            .unwrap_or(url.path())
    }

    async fn call_json<T: DeserializeOwned>(&self, req: ApiRequest) -> Result<T, ZeroError> {
        let op = req.op;
        let (resp, token) = self.call_with_token(req).await?;
        serde_json::from_slice(&resp.body).map_err(|source| ZeroError::Decode {
            op,
            status: resp.status,
            body: self.redacted_body(&resp.body, Some(&token)),
            source,
        })
    }

    async fn call(&self, req: ApiRequest) -> Result<RawResponse, ZeroError> {
        self.call_with_token(req).await.map(|(resp, _)| resp)
    }

    /// Sends an authenticated request; on 401 refreshes the ID token once
    /// and repeats (a 401 means the request was not processed).
    async fn call_with_token(&self, req: ApiRequest) -> Result<(RawResponse, IdToken), ZeroError> {
        let mut token = self.id_token().await?;
        let mut resp = self.execute(&req, Some(&token)).await?;
        if resp.status == StatusCode::UNAUTHORIZED {
            tracing::debug!(op = %req.op, "ID token refused; exchanging the API token again");
            self.inner.tokens.invalidate(&token).await;
            token = self.id_token().await?;
            resp = self.execute(&req, Some(&token)).await?;
        }
        if resp.status.is_success() {
            return Ok((resp, token));
        }
        let body = self.redacted_body(&resp.body, Some(&token));
        let op = req.op;
        Err(match resp.status {
            StatusCode::UNAUTHORIZED => ZeroError::Unauthorized { op, body },
            StatusCode::FORBIDDEN => ZeroError::Forbidden {
                op,
                organization_id: self.inner.organization_id.clone(),
                body,
            },
            StatusCode::NOT_FOUND => ZeroError::NotFound {
                op,
                path: self.relative_path(&req.url).to_owned(),
                body,
            },
            StatusCode::TOO_MANY_REQUESTS => ZeroError::RateLimited {
                op,
                attempts: resp.attempts,
                retry_after: resp.retry_after,
                body,
            },
            status => ZeroError::Status {
                op,
                status,
                attempts: resp.attempts,
                body,
            },
        })
    }

    async fn id_token(&self) -> Result<IdToken, ZeroError> {
        self.inner.tokens.get(|| self.exchange_token()).await
    }

    /// `POST /token`: API user token → ID token.
    async fn exchange_token(&self) -> Result<IdToken, ZeroError> {
        let op = Operation::ExchangeToken;
        let refresh_token = self.inner.api_user_token.expose_secret();
        let body = to_json(&TokenRequest { refresh_token }, refresh_token.len() + 32);
        let req = ApiRequest {
            op,
            method: Method::POST,
            url: self.url(&["token"], &[]),
            body: Some(body),
            answer: Answer::Keep,
        };
        let resp = self.execute(&req, None).await?;
        match resp.status {
            status if status.is_success() => {
                // The body holds the new token: never copy it into an error.
                let decode = |source| ZeroError::Decode {
                    op,
                    status,
                    body: String::new(),
                    source,
                };
                let parsed: TokenResponse = serde_json::from_slice(&resp.body).map_err(decode)?;
                IdToken::new(parsed, resp.sent_at)
                    .map_err(|msg| decode(<serde_json::Error as serde::de::Error>::custom(msg)))
            }
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(ZeroError::TokenRefused {
                    status: resp.status,
                    body: self.redacted_body(&resp.body, None),
                })
            }
            StatusCode::TOO_MANY_REQUESTS => Err(ZeroError::RateLimited {
                op,
                attempts: resp.attempts,
                retry_after: resp.retry_after,
                body: self.redacted_body(&resp.body, None),
            }),
            status => Err(ZeroError::Status {
                op,
                status,
                attempts: resp.attempts,
                body: self.redacted_body(&resp.body, None),
            }),
        }
    }

    fn redacted_body(&self, body: &[u8], token: Option<&IdToken>) -> String {
        let api_token = self.inner.api_user_token.expose_secret();
        let id_token = token.map(IdToken::secret).unwrap_or_default();
        error_body(body, &[api_token, id_token])
    }

    /// The retry loop: sends `req` until it gets a response that is not
    /// worth retrying or the attempts run out. Returns the last response
    /// whatever its status; transport failures become errors.
    async fn execute(
        &self,
        req: &ApiRequest,
        token: Option<&IdToken>,
    ) -> Result<RawResponse, ZeroError> {
        let policy = &self.inner.retry;
        let path = self.relative_path(&req.url);
        let mut attempt = 1;
        loop {
            let sent_at = Instant::now();
            let result = self.send_once(req, token).await;
            let elapsed_ms = sent_at.elapsed().as_millis() as u64;
            let outcome = match &result {
                Ok(resp) => Outcome::Status(resp.status),
                Err(e) if e.is_connect() => Outcome::NotSent,
                Err(e) if e.is_timeout() => Outcome::TimedOut,
                Err(_) => Outcome::Interrupted,
            };
            match &result {
                Ok(resp) => tracing::debug!(
                    op = %req.op, method = %req.method, path, status = resp.status.as_u16(),
                    attempt, elapsed_ms, "Pomerium Zero API call"
                ),
                Err(error) => tracing::debug!(
                    op = %req.op, method = %req.method, path, ?outcome, %error,
                    attempt, elapsed_ms, "Pomerium Zero API call failed"
                ),
            }
            metrics::counter!(
                "pomerium_jit_upstream_requests_total",
                "operation" => operation_label(req.op),
                "status" => outcome.label(),
            )
            .increment(1);
            metrics::histogram!(
                "pomerium_jit_upstream_request_duration_seconds",
                "operation" => operation_label(req.op),
            )
            .record(sent_at.elapsed().as_secs_f64());
            let retry_after = result.as_ref().ok().and_then(|r| r.retry_after);
            let delay = (attempt < policy.max_attempts.get()
                && should_retry(req.op.idempotency(), outcome))
            .then(|| policy.delay(attempt, retry_after))
            .flatten();
            match (result, delay) {
                (_, Some(delay)) => {
                    tracing::debug!(op = %req.op, path, attempt, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                (Ok(reply), None) => {
                    return Ok(RawResponse {
                        status: reply.status,
                        retry_after: reply.retry_after,
                        body: reply.body,
                        sent_at,
                        attempts: attempt,
                    });
                }
                (Err(_), None) if outcome == Outcome::TimedOut => {
                    return Err(ZeroError::Timeout {
                        op: req.op,
                        attempts: attempt,
                        timeout: self.inner.request_timeout,
                    });
                }
                (Err(source), None) => {
                    return Err(ZeroError::Transport {
                        op: req.op,
                        attempts: attempt,
                        source,
                    });
                }
            }
        }
    }

    async fn send_once(
        &self,
        req: &ApiRequest,
        token: Option<&IdToken>,
    ) -> Result<Reply, reqwest::Error> {
        let mut builder = self
            .inner
            .http
            .request(req.method.clone(), req.url.clone())
            .timeout(self.inner.request_timeout);
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, token.authorization().clone());
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut response = builder.send().await?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        let body = match response.content_length() {
            // Read to the end all the same: the connection is reused, and
            // an answer cut short is a failed attempt.
            _ if req.answer == Answer::Drop && status.is_success() => {
                while response.chunk().await?.is_some() {}
                Bytes::new()
            }
            // Read into one buffer of the announced size, each piece dropped
            // as it is copied: `bytes()` holds every piece and then copies
            // them all into one, twice the policy (a megabyte at thousands
            // of grants) at once. A false length only costs growing.
            Some(len) => {
                let mut body = BytesMut::with_capacity(len.min(BODY_RESERVE_MAX) as usize);
                while let Some(piece) = response.chunk().await? {
                    body.extend_from_slice(&piece);
                }
                body.freeze()
            }
            None => response.bytes().await?,
        };
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

impl fmt::Debug for ZeroClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroClient")
            .field("api_root", &self.inner.api_root.as_str())
            .field("organization_id", &self.inner.organization_id)
            .field("api_user_token", &"[redacted]")
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .field("tokens", &self.inner.tokens)
            .finish()
    }
}

/// The `operation` label of the upstream metrics.
fn operation_label(op: Operation) -> &'static str {
    match op {
        Operation::ExchangeToken => "exchange_token",
        Operation::ListPolicies => "list_policies",
        Operation::GetPolicy => "get_policy",
        Operation::CreatePolicy => "create_policy",
        Operation::UpdatePolicy => "update_policy",
        Operation::DeletePolicy => "delete_policy",
        Operation::ListChangesets => "list_changesets",
        Operation::CompareChangesets => "compare_changesets",
        Operation::ApplyChangeset => "apply_changeset",
        Operation::GetClusterSettings => "get_cluster_settings",
    }
}

fn non_empty(op: Operation, what: &'static str, value: &str) -> Result<(), ZeroError> {
    if value.is_empty() {
        Err(ZeroError::EmptyArgument { op, what })
    } else {
        Ok(())
    }
}

/// Serializes a request body (structs of strings, bools and `serde_json`
/// values, which always serialize) into a buffer of `capacity` bytes first:
/// grown by doubling, a megabyte of PPL took two megabytes, and three while
/// it grew.
fn to_json<T: Serialize>(value: &T, capacity: usize) -> Bytes {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).expect("request bodies serialize to JSON");
    body.into()
}

/// The JSON of `properties` made around their PPL's own buffer: the other
/// fields are written first (`ppl` is declared, so written, last), moved
/// in front of the text, and the object closed after it. The same bytes as
/// [`to_json`], without holding the PPL twice.
fn into_json(mut properties: PolicyProperties) -> Bytes {
    /// How the other fields' JSON ends, with `null` standing in for the PPL.
    const TAIL: &[u8] = b"null}";
    let ppl = std::mem::replace(
        &mut properties.ppl,
        Ppl::from_value(&serde_json::Value::Null),
    );
    let mut head = serde_json::to_vec(&properties).expect("request bodies serialize to JSON");
    assert!(head.ends_with(TAIL), "`ppl` is written last");
    head.truncate(head.len() - TAIL.len());
    let mut body = ppl.into_string().into_bytes();
    let len = body.len();
    body.reserve_exact(head.len() + 1);
    body.resize(head.len() + len, 0);
    body.copy_within(..len, head.len());
    body[..head.len()].copy_from_slice(&head);
    body.push(b'}');
    body.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_made_around_the_ppl_is_the_serialized_properties() {
        let mut extra = serde_json::Map::new();
        extra.insert("labels".into(), serde_json::json!({"team": "sre \"a\""}));
        let properties = PolicyProperties {
            name: "jit-example".into(),
            namespace_id: "ns".into(),
            description: "managed by pomerium-jit".into(),
            enforced: false,
            explanation: "ask on /".into(),
            remediation: String::new(),
            ppl: serde_json::json!([{"allow": {"and": [{"email": {"is": "a@example.com"}}]}}])
                .into(),
            originator_id: Some("console-user".into()),
            extra,
        };
        let expected = to_json(&properties, 0);
        assert_eq!(into_json(properties), expected);
    }

    #[test]
    fn metric_labels_are_codes_or_failure_kinds() {
        assert_eq!(Outcome::Status(StatusCode::CONFLICT).label(), "409");
        assert_eq!(Outcome::NotSent.label(), "unreachable");
        assert_eq!(Outcome::TimedOut.label(), "timeout");
        assert_eq!(Outcome::Interrupted.label(), "interrupted");
        assert_eq!(operation_label(Operation::UpdatePolicy), "update_policy");
        assert_eq!(operation_label(Operation::ExchangeToken), "exchange_token");
    }
    use reqwest::header::HeaderValue;

    #[test]
    fn create_is_retried_only_when_the_server_did_not_act() {
        use Idempotency::*;
        let status = |code| Outcome::Status(StatusCode::from_u16(code).unwrap());
        for (outcome, idempotent, create) in [
            (Outcome::NotSent, true, true),
            (status(429), true, true),
            (status(503), true, true),
            (status(500), true, false),
            (status(502), true, false),
            (status(504), true, false),
            (Outcome::TimedOut, true, false),
            (Outcome::Interrupted, true, false),
            (status(400), false, false),
            (status(401), false, false),
            (status(403), false, false),
            (status(404), false, false),
            (status(409), false, false),
            (status(200), false, false),
            (status(201), false, false),
        ] {
            assert_eq!(should_retry(Idempotent, outcome), idempotent, "{outcome:?}");
            assert_eq!(should_retry(NotIdempotent, outcome), create, "{outcome:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        let parse = |v: &str| parse_retry_after(&headers(v), now);
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    fn client(base: &str) -> ZeroClient {
        let mut cfg = ZeroConfig::new(SecretString::from("api-token"), "org 1".replace(' ', ""));
        cfg.base_url = base.parse().unwrap();
        ZeroClient::new(cfg).unwrap()
    }

    #[test]
    fn ids_are_encoded_as_path_segments() {
        let c = client("https://console.pomerium.app/");
        let req = c.org_request(
            Operation::GetPolicy,
            Method::GET,
            &["policies", "../x?y#z"],
            &[("namespaceId", "a&b")],
            None,
        );
        assert_eq!(
            req.url.as_str(),
            "https://console.pomerium.app/api/v0/organizations/org1/policies/..%2Fx%3Fy%23z?namespaceId=a%26b"
        );
        assert_eq!(
            c.relative_path(&req.url),
            "/organizations/org1/policies/..%2Fx%3Fy%23z"
        );
        assert_eq!(
            c.url(&["token"], &[]).as_str(),
            "https://console.pomerium.app/api/v0/token"
        );
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let cfg = |token: &str, org: &str| ZeroConfig::new(SecretString::from(token), org);
        assert!(matches!(
            ZeroClient::new(cfg(" ", "org")),
            Err(ConfigError::EmptyApiUserToken)
        ));
        assert!(matches!(
            ZeroClient::new(cfg("t", "")),
            Err(ConfigError::InvalidOrganizationId(_))
        ));
        assert!(matches!(
            ZeroClient::new(cfg("t", "org id")),
            Err(ConfigError::InvalidOrganizationId(_))
        ));
        let mut zero = cfg("t", "org");
        zero.request_timeout = Duration::ZERO;
        assert!(matches!(
            ZeroClient::new(zero),
            Err(ConfigError::ZeroTimeout)
        ));
    }

    #[tokio::test]
    async fn empty_ids_are_rejected_before_any_request() {
        let c = client("http://127.0.0.1:9");
        let err = c.get_policy("").await.unwrap_err();
        assert!(matches!(
            err,
            ZeroError::EmptyArgument {
                op: Operation::GetPolicy,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "get policy: the policy id must not be empty"
        );
    }

    #[test]
    fn client_is_cheap_to_share_across_tasks() {
        fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
        assert_shareable::<ZeroClient>();
    }

    #[test]
    fn debug_hides_the_api_token() {
        let c = client("https://console.pomerium.app");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("api-token"), "{dbg}");
        assert!(dbg.contains("org1"), "{dbg}");
    }
}
