//! The fake's data: tokens, policies, changesets, faults and the request
//! log, all plain data behind one mutex (no I/O here).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

/// Fields the server computes; ignored when a client sends them.
const COMPUTED_FIELDS: [&str; 5] = ["id", "createdAt", "updatedAt", "routes", "enforcedRoutes"];

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A 27-character base58 id like the ones in the Zero docs.
pub(crate) fn new_id() -> String {
    random_string(BASE58, 27)
}

/// An opaque random token.
pub(crate) fn new_token() -> String {
    random_string(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        43,
    )
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("times from the system clock are RFC 3339 formattable")
}

/// What `Retry-After` says in an injected 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Delta-seconds, e.g. `Retry-After: 2`.
    Seconds(u64),
    /// An HTTP-date, e.g. `Retry-After: Sun, 06 Nov 1994 08:49:37 GMT`.
    HttpDate(SystemTime),
}

impl RetryAfter {
    pub(crate) fn header_value(self) -> String {
        match self {
            RetryAfter::Seconds(s) => s.to_string(),
            RetryAfter::HttpDate(t) => httpdate::fmt_http_date(t),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: Method,
    /// Path, e.g. `/api/v0/organizations/o/policies`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Status sent, or `None` when the connection was dropped instead.
    pub status: Option<StatusCode>,
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FaultKind {
    /// Answer with this status without processing the request.
    Status(StatusCode),
    /// Answer 429 with this `Retry-After` without processing.
    RateLimit(RetryAfter),
    /// Close the connection without processing or answering.
    Drop,
    /// Process the request, then close the connection without answering.
    DropAfterProcessing,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone)]
pub(crate) enum FaultTarget {
    /// Management API calls (everything but `/token`), optionally one method.
    Api(Option<Method>),
    /// `POST /token`.
    Token,
}

#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) target: FaultTarget,
    pub(crate) remaining: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Create,
    Update,
    Delete,
}

impl Activity {
    fn as_str(self) -> &'static str {
        match self {
            Activity::Create => "create",
            Activity::Update => "update",
            Activity::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangesetStatus {
    Pending,
    Applied,
    Current,
}

impl ChangesetStatus {
    fn as_str(self) -> &'static str {
        match self {
            ChangesetStatus::Pending => "pending",
            ChangesetStatus::Applied => "applied",
            ChangesetStatus::Current => "current",
        }
    }
}

/// One mutation, captured as a changeset.
#[derive(Debug)]
struct ChangesetRecord {
    id: String,
    status: ChangesetStatus,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    log_id: String,
    activity: Activity,
    policy_id: String,
    /// The full policy after the change; `None` for a delete.
    snapshot: Option<Value>,
}

#[derive(Debug, Clone)]
struct StoredPolicy {
    id: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    /// Everything the client sent except the computed fields, in order.
    properties: Map<String, Value>,
}

impl StoredPolicy {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("createdAt".into(), json!(rfc3339(self.created_at)));
        out.insert("updatedAt".into(), json!(rfc3339(self.updated_at)));
        out.extend(self.properties.clone());
        out.insert("routes".into(), json!([]));
        out.insert("enforcedRoutes".into(), json!([]));
        Value::Object(out)
    }

    fn name(&self) -> Option<&str> {
        self.properties.get("name").and_then(Value::as_str)
    }
}

/// Why an API or console mutation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The policy properties are not acceptable (maps to 400).
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// No such policy (maps to 404).
    #[error("policy {0} not found")]
    UnknownPolicy(String),
}

/// The whole fake server state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) api_user_token: String,
    pub(crate) api_token_revoked: bool,
    pub(crate) organization_id: String,
    pub(crate) cluster_id: String,
    pub(crate) id_token_ttl: Duration,
    pub(crate) auto_apply: bool,
    pub(crate) latency: Duration,
    pub(crate) faults: Vec<Fault>,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) policy_writes: u64,
    pub(crate) token_exchanges: u64,
    id_tokens: HashMap<String, Instant>,
    policies: Vec<StoredPolicy>,
    /// Policies as of the last applied changeset, in creation order.
    effective: Vec<Value>,
    changesets: Vec<ChangesetRecord>,
}

impl State {
    pub(crate) fn new(
        api_user_token: String,
        organization_id: String,
        cluster_id: String,
        id_token_ttl: Duration,
        auto_apply: bool,
    ) -> Self {
        State {
            api_user_token,
            api_token_revoked: false,
            organization_id,
            cluster_id,
            id_token_ttl,
            auto_apply,
            latency: Duration::ZERO,
            faults: Vec::new(),
            log: Vec::new(),
            policy_writes: 0,
            token_exchanges: 0,
            id_tokens: HashMap::new(),
            policies: Vec::new(),
            effective: Vec::new(),
            changesets: Vec::new(),
        }
    }

    /// The namespace equals the cluster id, as in the docs' examples.
    pub(crate) fn namespace_id(&self) -> &str {
        &self.cluster_id
    }

    // ---- tokens ----

    /// Exchanges the API user token for a new ID token, or `None` when the
    /// refresh token is wrong or revoked.
    pub(crate) fn issue_id_token(&mut self, refresh_token: &str) -> Option<String> {
        if self.api_token_revoked || refresh_token != self.api_user_token {
            return None;
        }
        let token = new_token();
        self.id_tokens
            .insert(token.clone(), Instant::now() + self.id_token_ttl);
        self.token_exchanges += 1;
        Some(token)
    }

    pub(crate) fn id_token_is_live(&mut self, token: &str) -> bool {
        let now = Instant::now();
        self.id_tokens.retain(|_, expiry| *expiry > now);
        self.id_tokens.contains_key(token)
    }

    pub(crate) fn revoke_id_tokens(&mut self) {
        self.id_tokens.clear();
    }

    // ---- faults ----

    /// Takes one use of the first fault that matches the request.
    pub(crate) fn take_fault(&mut self, method: &Method, is_token: bool) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| match &f.target {
            FaultTarget::Token => is_token,
            FaultTarget::Api(m) => !is_token && m.as_ref().is_none_or(|m| m == method),
        })?;
        let fault = &mut self.faults[index];
        fault.remaining -= 1;
        let kind = fault.kind;
        if fault.remaining == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    // ---- policies ----

    pub(crate) fn policies(&self) -> Vec<Value> {
        self.policies.iter().map(StoredPolicy::to_json).collect()
    }

    pub(crate) fn policies_in(&self, namespace_id: &str) -> Vec<Value> {
        self.policies
            .iter()
            .filter(|p| {
                p.properties.get("namespaceId").and_then(Value::as_str) == Some(namespace_id)
            })
            .map(StoredPolicy::to_json)
            .collect()
    }

    pub(crate) fn policy(&self, id: &str) -> Option<Value> {
        self.policies
            .iter()
            .find(|p| p.id == id)
            .map(StoredPolicy::to_json)
    }

    pub(crate) fn policy_by_name(&self, name: &str) -> Option<Value> {
        self.policies
            .iter()
            .find(|p| p.name() == Some(name))
            .map(StoredPolicy::to_json)
    }

    pub(crate) fn effective_policy_by_name(&self, name: &str) -> Option<Value> {
        self.effective
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .cloned()
    }

    pub(crate) fn effective_ppl(&self, id: &str) -> Option<Value> {
        self.effective
            .iter()
            .find(|p| p["id"].as_str() == Some(id))
            .map(|p| p["ppl"].clone())
    }

    /// Checks a create/replace body the way the API does; returns the
    /// properties to store.
    pub(crate) fn validate(&self, body: Value) -> Result<Map<String, Value>, Rejection> {
        let Value::Object(mut props) = body else {
            return Err(Rejection::Invalid("the body must be a JSON object".into()));
        };
        for computed in COMPUTED_FIELDS {
            props.remove(computed);
        }
        let mut problems = Vec::new();
        for key in [
            "name",
            "namespaceId",
            "description",
            "explanation",
            "remediation",
        ] {
            match props.get(key) {
                Some(Value::String(_)) => {}
                Some(_) => problems.push(format!("{key} must be a string")),
                None => problems.push(format!("{key} is required")),
            }
        }
        if props.get("name").and_then(Value::as_str) == Some("") {
            problems.push("name must not be empty".into());
        }
        match props.get("enforced") {
            Some(Value::Bool(_)) => {}
            Some(_) => problems.push("enforced must be a boolean".into()),
            None => problems.push("enforced is required".into()),
        }
        if props.get("originatorId").is_some_and(|v| !v.is_string()) {
            problems.push("originatorId must be a string".into());
        }
        match props.get("ppl") {
            Some(ppl) => {
                if let Err(problem) = validate_ppl(ppl) {
                    problems.push(problem);
                }
            }
            None => problems.push("ppl is required".into()),
        }
        if let Some(ns) = props.get("namespaceId").and_then(Value::as_str)
            && ns != self.namespace_id()
        {
            problems.push(format!("namespace {ns:?} not found"));
        }
        if problems.is_empty() {
            Ok(props)
        } else {
            Err(Rejection::Invalid(problems.join("; ")))
        }
    }

    pub(crate) fn create_policy(&mut self, properties: Map<String, Value>) -> Value {
        let now = OffsetDateTime::now_utc();
        let policy = StoredPolicy {
            id: new_id(),
            created_at: now,
            updated_at: now,
            properties,
        };
        let json = policy.to_json();
        self.record(Activity::Create, &policy.id, Some(json.clone()));
        self.policies.push(policy);
        json
    }

    pub(crate) fn replace_policy(
        &mut self,
        id: &str,
        properties: Map<String, Value>,
    ) -> Result<Value, Rejection> {
        let policy = self
            .policies
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| Rejection::UnknownPolicy(id.to_owned()))?;
        policy.properties = properties;
        // Strictly increasing, even when the clock's resolution is coarse.
        let now = OffsetDateTime::now_utc();
        policy.updated_at = now.max(policy.updated_at + time::Duration::microseconds(1));
        let json = policy.to_json();
        self.record(Activity::Update, id, Some(json.clone()));
        Ok(json)
    }

    pub(crate) fn delete_policy(&mut self, id: &str) -> Result<(), Rejection> {
        let index = self
            .policies
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| Rejection::UnknownPolicy(id.to_owned()))?;
        self.policies.remove(index);
        self.record(Activity::Delete, id, None);
        Ok(())
    }

    /// A console edit: only `ppl` changes.
    pub(crate) fn set_ppl(&mut self, id: &str, ppl: Value) -> Result<(), Rejection> {
        validate_ppl(&ppl).map_err(Rejection::Invalid)?;
        let mut properties = self
            .policies
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Rejection::UnknownPolicy(id.to_owned()))?
            .properties
            .clone();
        properties.insert("ppl".into(), ppl);
        self.replace_policy(id, properties).map(drop)
    }

    // ---- changesets ----

    /// Every mutation becomes a changeset; auto-apply applies it at once.
    fn record(&mut self, activity: Activity, policy_id: &str, snapshot: Option<Value>) {
        let now = OffsetDateTime::now_utc();
        self.changesets.push(ChangesetRecord {
            id: new_id(),
            status: ChangesetStatus::Pending,
            created_at: now,
            updated_at: now,
            log_id: new_id(),
            activity,
            policy_id: policy_id.to_owned(),
            snapshot,
        });
        if self.auto_apply {
            self.apply_through(self.changesets.len() - 1);
        }
    }

    /// Applies changeset `index` and every pending one before it (each
    /// changeset records the configuration as of its creation, so applying
    /// it means deploying everything saved up to then). It becomes
    /// `current`; the previous `current` becomes `applied`.
    fn apply_through(&mut self, index: usize) {
        if self.changesets[index].status != ChangesetStatus::Pending {
            return;
        }
        let now = OffsetDateTime::now_utc();
        for record in &mut self.changesets {
            if record.status == ChangesetStatus::Current {
                record.status = ChangesetStatus::Applied;
                record.updated_at = now;
            }
        }
        for record in &mut self.changesets[..=index] {
            if record.status != ChangesetStatus::Pending {
                continue;
            }
            let deployed = self
                .effective
                .iter()
                .position(|p| p["id"].as_str() == Some(record.policy_id.as_str()));
            match (&record.snapshot, deployed) {
                (Some(policy), Some(i)) => self.effective[i] = policy.clone(),
                (Some(policy), None) => self.effective.push(policy.clone()),
                (None, Some(i)) => drop(self.effective.remove(i)),
                (None, None) => {}
            }
            record.status = ChangesetStatus::Applied;
            record.updated_at = now;
        }
        self.changesets[index].status = ChangesetStatus::Current;
    }

    /// Applies a changeset by id; `None` if it does not exist.
    pub(crate) fn apply_changeset(&mut self, id: &str) -> Option<Value> {
        let index = self.changesets.iter().position(|c| c.id == id)?;
        self.apply_through(index);
        Some(self.changeset_json(&self.changesets[index]))
    }

    /// Applies everything pending; returns how many changesets that was.
    pub(crate) fn apply_all_pending(&mut self) -> usize {
        let pending = self
            .changesets
            .iter()
            .filter(|c| c.status == ChangesetStatus::Pending)
            .count();
        if pending > 0 {
            self.apply_through(self.changesets.len() - 1);
        }
        pending
    }

    fn changeset_json(&self, c: &ChangesetRecord) -> Value {
        json!({
            "id": c.id,
            "namespaceId": self.namespace_id(),
            "status": c.status.as_str(),
            "createdAt": rfc3339(c.created_at),
            "updatedAt": rfc3339(c.updated_at),
        })
    }

    /// Newest first (the order is unconfirmed for the real API).
    pub(crate) fn changesets(&self, status: Option<&str>) -> Vec<Value> {
        self.changesets
            .iter()
            .rev()
            .filter(|c| status.is_none_or(|s| c.status.as_str() == s))
            .map(|c| self.changeset_json(c))
            .collect()
    }

    /// `GET …/changesets/compare`: the activity after `first_id` (exclusive,
    /// or from the start) up to `second_id` (inclusive, or the latest),
    /// grouped per entity. `Err` names the unknown id.
    pub(crate) fn compare(
        &self,
        first_id: Option<&str>,
        second_id: Option<&str>,
    ) -> Result<Value, String> {
        let position = |id: &str| {
            self.changesets
                .iter()
                .position(|c| c.id == id)
                .ok_or_else(|| format!("changeset {id} not found"))
        };
        let end = match second_id {
            Some(id) => position(id)?,
            None => self
                .changesets
                .len()
                .checked_sub(1)
                .ok_or_else(|| "the cluster has no changesets".to_owned())?,
        };
        let start = first_id.map(position).transpose()?;
        let from = start.map_or(0, |s| s + 1);
        let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
        for record in self.changesets.get(from..=end).unwrap_or_default() {
            let log = self.activity_json(record);
            match groups.iter_mut().find(|(id, _)| *id == record.policy_id) {
                Some((_, logs)) => logs.push(log),
                None => groups.push((record.policy_id.clone(), vec![log])),
            }
        }
        let mut out = Map::new();
        if let Some(s) = start {
            out.insert(
                "startChangeset".into(),
                self.changeset_json(&self.changesets[s]),
            );
        }
        out.insert(
            "endChangeset".into(),
            self.changeset_json(&self.changesets[end]),
        );
        let entities: Vec<Value> = groups.into_iter().map(|(_, logs)| json!(logs)).collect();
        out.insert("entities".into(), json!(entities));
        Ok(Value::Object(out))
    }

    fn activity_json(&self, c: &ChangesetRecord) -> Value {
        let mut entity = json!({"id": c.policy_id, "type": "policy"});
        if let Some(snapshot) = &c.snapshot {
            entity["data"] = snapshot.clone();
        }
        let mut applied = json!({"by": {}, "changesetId": c.id});
        if c.status != ChangesetStatus::Pending {
            applied["at"] = json!(rfc3339(c.updated_at));
        }
        json!({
            "id": c.log_id,
            "activityType": c.activity.as_str(),
            "applied": applied,
            "createdAt": rfc3339(c.created_at),
            "updatedAt": rfc3339(c.created_at),
            "entity": entity,
            "namespace": {"id": self.namespace_id()},
            "user": {"id": "fake-api-user", "displayName": "Fake API user"},
        })
    }

    pub(crate) fn settings_json(&self) -> Value {
        json!({
            "address": ":443",
            "autoApplyChangesets": self.auto_apply,
            "cookieName": "_pomerium",
            "cookieHttpOnly": true,
            "logLevel": "info",
        })
    }
}

/// Structural PPL check (docs/pomerium.md §2.1): a rule object or an array
/// of them; a rule maps `allow`/`deny` to an object of `and`/`or`/`not`/`nor`
/// arrays whose criteria are objects with exactly one key.
pub(crate) fn validate_ppl(ppl: &Value) -> Result<(), String> {
    match ppl {
        Value::Object(rule) => validate_rule(rule, "ppl"),
        Value::Array(rules) => rules
            .iter()
            .enumerate()
            .try_for_each(|(i, rule)| match rule {
                Value::Object(rule) => validate_rule(rule, &format!("ppl[{i}]")),
                _ => Err(format!("ppl[{i}] must be a rule object")),
            }),
        _ => Err("ppl must be a rule object or an array of rule objects".into()),
    }
}

fn validate_rule(rule: &Map<String, Value>, at: &str) -> Result<(), String> {
    for (action, body) in rule {
        if action != "allow" && action != "deny" {
            return Err(format!(
                "{at}: unknown action {action:?} (expected allow or deny)"
            ));
        }
        let Value::Object(body) = body else {
            return Err(format!("{at}.{action} must be an object"));
        };
        for (operator, criteria) in body {
            if !["and", "or", "not", "nor"].contains(&operator.as_str()) {
                return Err(format!(
                    "{at}.{action}: unknown operator {operator:?} (expected and, or, not or nor)"
                ));
            }
            let Value::Array(criteria) = criteria else {
                return Err(format!("{at}.{action}.{operator} must be an array"));
            };
            for (i, criterion) in criteria.iter().enumerate() {
                if criterion.as_object().is_none_or(|c| c.len() != 1) {
                    return Err(format!(
                        "{at}.{action}.{operator}[{i}] must be an object with exactly one criterion"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(auto_apply: bool) -> State {
        State::new(
            "api".into(),
            "org".into(),
            "cluster".into(),
            Duration::from_secs(60),
            auto_apply,
        )
    }

    fn props(name: &str, ppl: Value) -> Value {
        json!({"name": name, "namespaceId": "cluster", "description": "", "enforced": false,
               "explanation": "", "remediation": "", "ppl": ppl})
    }

    #[test]
    fn ids_look_like_zero_ids() {
        let id = new_id();
        assert_eq!(id.len(), 27);
        assert!(id.bytes().all(|b| BASE58.contains(&b)));
        assert_ne!(new_id(), id);
    }

    #[test]
    fn ppl_structure_is_checked() {
        for ok in [
            json!({}),
            json!([]),
            json!({"allow": {"and": [{"email": {"is": "a@b.c"}}, {"date": {"before": "2150-01-01T00:00:00Z"}}]}}),
            json!([{"allow": {"or": [{"accept": true}]}, "deny": {"not": [{"groups": {"has": "x"}}]}}]),
        ] {
            assert_eq!(validate_ppl(&ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            (json!("allow"), "rule object"),
            (json!([1]), "ppl[0] must be a rule object"),
            (json!({"permit": {}}), "unknown action"),
            (json!({"allow": []}), "must be an object"),
            (json!({"allow": {"xor": []}}), "unknown operator"),
            (json!({"allow": {"and": {}}}), "must be an array"),
            (
                json!({"allow": {"and": [{"a": 1, "b": 2}]}}),
                "exactly one criterion",
            ),
            (
                json!({"allow": {"and": ["email"]}}),
                "exactly one criterion",
            ),
        ] {
            let err = validate_ppl(&bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn validation_lists_every_problem_and_strips_computed_fields() {
        let s = state(true);
        let err = s
            .validate(json!({"name": "", "namespaceId": "other", "enforced": "yes", "ppl": 3}))
            .unwrap_err();
        let Rejection::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        for needle in [
            "description is required",
            "name must not be empty",
            "enforced must be a boolean",
            "ppl must be",
            "namespace \"other\" not found",
        ] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
        let mut body = props("p", json!({}));
        body["id"] = json!("forged");
        body["routes"] = json!([{"id": "r"}]);
        body["futureField"] = json!(1);
        let stored = s.validate(body).unwrap();
        assert!(!stored.contains_key("id") && !stored.contains_key("routes"));
        assert_eq!(stored["futureField"], 1);
    }

    #[test]
    fn effective_state_follows_applied_changesets() {
        let mut s = state(false);
        let created = s.create_policy(s.validate(props("p", json!({}))).unwrap());
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(s.effective_ppl(&id), None);
        s.set_ppl(&id, json!([{"allow": {"or": [{"accept": true}]}}]))
            .unwrap();
        let pending = s.changesets(Some("pending"));
        assert_eq!(pending.len(), 2);

        // Applying the older changeset deploys the state as of that one.
        let older = pending[1]["id"].as_str().unwrap().to_owned();
        let applied = s.apply_changeset(&older).unwrap();
        assert_eq!(applied["status"], "current");
        assert_eq!(s.effective_ppl(&id), Some(json!({})));
        assert_eq!(s.apply_all_pending(), 1);
        assert_eq!(
            s.effective_ppl(&id),
            Some(json!([{"allow": {"or": [{"accept": true}]}}]))
        );
        let statuses: Vec<Value> = s
            .changesets(None)
            .iter()
            .map(|c| c["status"].clone())
            .collect();
        assert_eq!(statuses, [json!("current"), json!("applied")]);

        s.auto_apply = true;
        s.delete_policy(&id).unwrap();
        assert_eq!(s.effective_ppl(&id), None);
        assert_eq!(
            s.delete_policy(&id),
            Err(Rejection::UnknownPolicy(id.clone()))
        );
    }

    #[test]
    fn compare_groups_activity_per_entity() {
        let mut s = state(true);
        let a = s.create_policy(s.validate(props("a", json!({}))).unwrap());
        let a_id = a["id"].as_str().unwrap().to_owned();
        let first = s.changesets(None)[0]["id"].as_str().unwrap().to_owned();
        s.create_policy(s.validate(props("b", json!({}))).unwrap());
        s.set_ppl(&a_id, json!([])).unwrap();

        let all = s.compare(None, None).unwrap();
        assert!(all.get("startChangeset").is_none());
        let entities = all["entities"].as_array().unwrap();
        assert_eq!(entities.len(), 2);
        assert_eq!(entities[0].as_array().unwrap().len(), 2);
        assert_eq!(entities[0][1]["activityType"], "update");

        let since = s.compare(Some(&first), None).unwrap();
        assert_eq!(since["startChangeset"]["id"], first.as_str());
        assert_eq!(since["entities"].as_array().unwrap().len(), 2);
        assert!(s.compare(Some("nope"), None).unwrap_err().contains("nope"));
    }

    #[test]
    fn faults_match_by_target_and_run_out() {
        let mut s = state(true);
        s.faults.push(Fault {
            kind: FaultKind::Status(StatusCode::BAD_GATEWAY),
            target: FaultTarget::Api(Some(Method::PUT)),
            remaining: 2,
        });
        assert!(s.take_fault(&Method::GET, false).is_none());
        assert!(s.take_fault(&Method::PUT, true).is_none());
        assert!(s.take_fault(&Method::PUT, false).is_some());
        assert!(s.take_fault(&Method::PUT, false).is_some());
        assert!(s.take_fault(&Method::PUT, false).is_none());
        assert!(s.faults.is_empty());
    }
}
