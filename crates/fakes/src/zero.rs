//! A fake Pomerium Zero management API (v0) on a loopback port, for tests
//! and the local demo.
//!
//! It speaks raw JSON (it never uses `jit-zero`'s types), so it checks the
//! client against the wire format of docs/pomerium.md §3 rather than
//! against itself.
//!
//! # Behaviour that follows the real API (confirmed by the docs or by
//! clients generated from the live OpenAPI spec)
//! - `POST /api/v0/token` `{"refreshToken"}` → `{"idToken","expiresInSeconds"}`
//!   with the seconds as a JSON *string*. Every other endpoint needs
//!   `Authorization: Bearer <live id token>`.
//! - Policies: `GET/POST …/organizations/{org}/policies` (list needs
//!   `namespaceId`, answers a bare array; create answers **201** with the
//!   full policy), `GET/PUT/DELETE …/policies/{id}` (PUT is a full replace
//!   and moves `updatedAt`). Policies carry `id`, `createdAt`, `updatedAt`
//!   (RFC 3339), `routes: []`, `enforcedRoutes: []` and the properties. Ids
//!   are 27-character base58 strings. The namespace id equals the cluster
//!   id, as in the docs' examples.
//! - Changesets: every mutation creates one. With `autoApplyChangesets`
//!   it is applied at once (`current`, the previous one becomes `applied`);
//!   otherwise it stays `pending` until `POST …/changesets/{id}/apply`.
//!   `GET …/changesets?clusterId=&status=`, `GET …/changesets/compare` and
//!   `GET …/clusters/{cluster}/settings` (`autoApplyChangesets`) exist.
//!
//! # Choices where the real API is unconfirmed
//! - Error bodies are `{"error": "<message>"}` (the shape of the cluster
//!   API's `/token` errors); the management API declares none.
//! - A wrong or revoked refresh token → 401; malformed JSON or a missing
//!   `refreshToken` → 400. An unknown, expired or revoked ID token → 401.
//!   Revoking the API user token does not end ID tokens already issued.
//! - An unknown organization → 403 (as for an organization the user is not
//!   in). An unknown policy → 404 (one third-party client reports 403 for
//!   deleted resources; 404 is the likelier and more useful answer).
//!   DELETE → 204.
//! - Create and PUT validate: `name`, `namespaceId`, `description`,
//!   `explanation`, `remediation` (strings), `enforced` (bool) and `ppl`
//!   are required; `ppl` must be structurally PPL (a rule object or array
//!   of them, `allow`/`deny` → `and`/`or`/`not`/`nor` → one-key criteria).
//!   Every other field the client sends is stored and echoed back.
//! - Applying a changeset deploys it together with all earlier pending
//!   ones (each records the configuration as of its creation); the
//!   *effective* policies are those as of the last applied changeset.
//!   Changeset lists are newest first. Compare returns the activity after
//!   `firstId` up to `secondId`, grouped per entity.
//!
//! # Test controls
//! Console edits ([`FakeZero::insert_policy`], [`FakeZero::set_ppl`],
//! [`FakeZero::remove_policy`], [`FakeZero::set_auto_apply`],
//! [`FakeZero::apply_all_pending`]), fault knobs (`fail_*`,
//! [`FakeZero::rate_limit_next`], [`FakeZero::drop_next`],
//! [`FakeZero::drop_after_processing_next`], [`FakeZero::set_latency`],
//! token revocation) and observation ([`FakeZero::requests`],
//! [`FakeZero::policy_writes`], [`FakeZero::token_exchanges`]). Faults
//! apply to management API calls, not `/token`, unless they say otherwise;
//! they are consumed in the order they were added. Latency applies to every
//! request. The server stops when the [`FakeZero`] is dropped.

mod server;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use state::{LoggedRequest, Rejection, RetryAfter};

use server::Shared;
use state::{Fault, FaultKind, FaultTarget, State};

/// How to start a [`FakeZero`]; `Default` gives random ids and token.
#[derive(Clone)]
pub struct FakeZeroConfig {
    /// The API user token `/token` accepts.
    pub api_user_token: String,
    /// The only organization that exists.
    pub organization_id: String,
    /// The only cluster; also its namespace id.
    pub cluster_id: String,
    /// Lifetime of issued ID tokens (the real API: one hour).
    pub id_token_ttl: Duration,
    /// The cluster's `autoApplyChangesets` setting.
    pub auto_apply_changesets: bool,
}

impl Default for FakeZeroConfig {
    fn default() -> Self {
        FakeZeroConfig {
            api_user_token: state::new_token(),
            organization_id: state::new_id(),
            cluster_id: state::new_id(),
            id_token_ttl: Duration::from_secs(3600),
            auto_apply_changesets: true,
        }
    }
}

impl fmt::Debug for FakeZeroConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeZeroConfig")
            .field("api_user_token", &"[redacted]")
            .field("organization_id", &self.organization_id)
            .field("cluster_id", &self.cluster_id)
            .field("id_token_ttl", &self.id_token_ttl)
            .field("auto_apply_changesets", &self.auto_apply_changesets)
            .finish()
    }
}

/// A running fake Pomerium Zero API on `127.0.0.1`.
pub struct FakeZero {
    addr: SocketAddr,
    api_user_token: String,
    organization_id: String,
    cluster_id: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FakeZero {
    /// Binds `127.0.0.1:0` and starts serving; must run inside a Tokio
    /// runtime.
    pub async fn start(config: FakeZeroConfig) -> std::io::Result<FakeZero> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(State::new(
            config.api_user_token.clone(),
            config.organization_id.clone(),
            config.cluster_id.clone(),
            config.id_token_ttl,
            config.auto_apply_changesets,
        )));
        let server = tokio::spawn(server::serve(listener, server::router(shared.clone())));
        Ok(FakeZero {
            addr,
            api_user_token: config.api_user_token,
            organization_id: config.organization_id,
            cluster_id: config.cluster_id,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`; clients append `/api/v0`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API user token `/token` accepts.
    pub fn api_user_token(&self) -> &str {
        &self.api_user_token
    }

    /// The organization id.
    pub fn organization_id(&self) -> &str {
        &self.organization_id
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The cluster's namespace id (equal to the cluster id).
    pub fn namespace_id(&self) -> &str {
        &self.cluster_id
    }

    // ---- observation ----

    /// All policies as `GET …/policies/{id}` would return them, oldest first.
    pub fn policies(&self) -> Vec<Value> {
        self.shared.lock().policies()
    }

    /// One policy as the API would return it.
    pub fn policy(&self, id: &str) -> Option<Value> {
        self.shared.lock().policy(id)
    }

    /// The oldest policy with this name.
    pub fn policy_by_name(&self, name: &str) -> Option<Value> {
        self.shared.lock().policy_by_name(name)
    }

    /// The oldest policy with this name as the cluster enforces it (as of
    /// the last applied changeset).
    pub fn effective_policy_by_name(&self, name: &str) -> Option<Value> {
        self.shared.lock().effective_policy_by_name(name)
    }

    /// The `ppl` the cluster enforces for a policy, `None` if the policy is
    /// not deployed.
    pub fn effective_ppl(&self, id: &str) -> Option<Value> {
        self.shared.lock().effective_ppl(id)
    }

    /// All changesets as the API lists them (newest first).
    pub fn changesets(&self) -> Vec<Value> {
        self.shared.lock().changesets(None)
    }

    /// Every request so far, in order of completion.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Successful policy creates, updates and deletes through the API
    /// (including those whose response was then dropped).
    pub fn policy_writes(&self) -> u64 {
        self.shared.lock().policy_writes
    }

    /// ID tokens issued by `/token`.
    pub fn token_exchanges(&self) -> u64 {
        self.shared.lock().token_exchanges
    }

    // ---- console edits ----

    /// Creates a policy the way a person in the console would. Only `name`
    /// is required; `namespaceId` defaults to the cluster's, the texts to
    /// `""`, `enforced` to false and `ppl` to `[]`; other fields are kept.
    /// Returns the new id.
    pub fn insert_policy(&self, policy: Value) -> Result<String, Rejection> {
        let mut state = self.shared.lock();
        let Value::Object(given) = policy else {
            return Err(Rejection::Invalid("a policy must be a JSON object".into()));
        };
        let mut full = Map::new();
        full.insert("namespaceId".into(), json!(state.namespace_id()));
        for text in ["description", "explanation", "remediation"] {
            full.insert(text.into(), json!(""));
        }
        full.insert("enforced".into(), json!(false));
        full.insert("ppl".into(), json!([]));
        full.extend(given);
        let properties = state.validate(Value::Object(full))?;
        let created = state.create_policy(properties);
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Replaces a policy's `ppl`, as a console edit (creates a changeset).
    pub fn set_ppl(&self, id: &str, ppl: Value) -> Result<(), Rejection> {
        self.shared.lock().set_ppl(id, ppl)
    }

    /// Deletes a policy in the console; false if it did not exist.
    pub fn remove_policy(&self, id: &str) -> bool {
        self.shared.lock().delete_policy(id).is_ok()
    }

    /// Toggles the cluster's "Auto-apply changesets" setting.
    pub fn set_auto_apply(&self, on: bool) {
        self.shared.lock().auto_apply = on;
    }

    /// Presses "apply" in the console: deploys every pending changeset.
    /// Returns how many there were.
    pub fn apply_all_pending(&self) -> usize {
        self.shared.lock().apply_all_pending()
    }

    // ---- faults ----

    /// Zero recovers: every pending fault is dropped (latency stays).
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    fn add_fault(&self, n: u32, kind: FaultKind, target: FaultTarget) {
        if n > 0 {
            self.shared.lock().faults.push(Fault {
                kind,
                target,
                remaining: n,
            });
        }
    }

    /// The next `n` API calls get `status` without being processed.
    pub fn fail_next(&self, n: u32, status: StatusCode) {
        self.add_fault(n, FaultKind::Status(status), FaultTarget::Api(None));
    }

    /// The next `n` API calls with `method` get `status` without being
    /// processed.
    pub fn fail_next_method(&self, method: Method, n: u32, status: StatusCode) {
        self.add_fault(n, FaultKind::Status(status), FaultTarget::Api(Some(method)));
    }

    /// The next `n` token exchanges get `status`.
    pub fn fail_token_exchange_next(&self, n: u32, status: StatusCode) {
        self.add_fault(n, FaultKind::Status(status), FaultTarget::Token);
    }

    /// The next `n` API calls get 429 with this `Retry-After`.
    pub fn rate_limit_next(&self, n: u32, retry_after: RetryAfter) {
        self.add_fault(n, FaultKind::RateLimit(retry_after), FaultTarget::Api(None));
    }

    /// The next `n` API calls have their connection closed without being
    /// processed or answered.
    pub fn drop_next(&self, n: u32) {
        self.add_fault(n, FaultKind::Drop, FaultTarget::Api(None));
    }

    /// The next `n` API calls are processed (mutations take effect), then
    /// their connection is closed without an answer: a lost response.
    pub fn drop_after_processing_next(&self, n: u32) {
        self.add_fault(n, FaultKind::DropAfterProcessing, FaultTarget::Api(None));
    }

    /// The next `n` API calls with `method` are processed, then their
    /// connection is closed without an answer: e.g. a policy update that
    /// lands while the app never learns it did.
    pub fn drop_after_processing_next_method(&self, method: Method, n: u32) {
        self.add_fault(
            n,
            FaultKind::DropAfterProcessing,
            FaultTarget::Api(Some(method)),
        );
    }

    /// Delays every request (including `/token`) by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Every ID token issued so far stops working (401).
    pub fn revoke_id_tokens(&self) {
        self.shared.lock().revoke_id_tokens();
    }

    /// `/token` refuses the API user token from now on (401).
    pub fn revoke_api_token(&self) {
        self.shared.lock().api_token_revoked = true;
    }
}

impl Drop for FakeZero {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl fmt::Debug for FakeZero {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeZero")
            .field("addr", &self.addr)
            .field("api_user_token", &"[redacted]")
            .field("organization_id", &self.organization_id)
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

#[cfg(test)]
mod tests;
