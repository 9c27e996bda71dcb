//! Wire models of the management API (camelCase JSON, pomerium.md §3).
//!
//! Every model keeps the fields it does not know in `extra`, so that a value
//! read from the server and written back loses nothing the server added
//! after this client was written.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::Ppl;

/// The writable part of a policy: the body of create (POST) and update (PUT,
/// a full replace).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyProperties {
    /// Display name; not known to be unique.
    pub name: String,
    /// The namespace the policy lives in (in the docs' examples, the cluster id).
    pub namespace_id: String,
    /// Free text. Tolerated when absent (sent back as `""`).
    #[serde(default)]
    pub description: String,
    /// `true` attaches the policy to every route in the cluster.
    pub enforced: bool,
    /// Shown to users who are denied. Tolerated when absent.
    #[serde(default)]
    pub explanation: String,
    /// Shown to users who are denied. Tolerated when absent.
    #[serde(default)]
    pub remediation: String,
    /// Optional provenance field of newer API versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator_id: Option<String>,
    /// Fields this client does not know, sent back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The PPL document: one rule object or an array of them. Kept as
    /// JSON text; interpreting it is the `jit-ppl` crate's job. Declared
    /// last, so it is written last: a body can be made around its text
    /// (see the client's `replace_policy`).
    pub ppl: Ppl,
}

impl PolicyProperties {
    /// About how long these properties are as JSON: the text fields and
    /// the PPL, plus room for the keys and the rest. A hint for sizing a
    /// buffer, never a limit.
    pub(crate) fn json_len_hint(&self) -> usize {
        let text = [
            &self.name,
            &self.namespace_id,
            &self.description,
            &self.explanation,
            &self.remediation,
        ];
        text.iter().map(|t| t.len()).sum::<usize>() + self.ppl.as_str().len() + 512
    }
}

/// A reference to a route, as listed in a policy's `routes`/`enforcedRoutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    /// Route id.
    pub id: String,
    /// Route name.
    #[serde(default)]
    pub name: String,
    /// Unknown fields (e.g. `updatedAt` in newer API versions).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A policy's answer read for its id alone: what a writer needs back from
/// a create or an update. Zero answers a write with the whole stored policy;
/// reading only the id skips its PPL (`serde` ignores the other fields
/// without copying them), which at thousands of grants is a megabyte held
/// while the write completes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyRef {
    /// Policy id.
    pub id: String,
}

/// A stored policy: its properties plus the fields the server computes.
///
/// Unknown top-level fields land in the properties' `extra` and are
/// therefore sent back by [`Policy::into_properties`]; the known computed
/// fields (`id`, timestamps, routes) are not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Policy id (27-character base58 in the docs' examples).
    pub id: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last modification; the only version-like field the API offers.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Routes the policy is attached to.
    #[serde(default)]
    pub routes: Vec<RouteRef>,
    /// Routes it applies to because it is enforced.
    #[serde(default)]
    pub enforced_routes: Vec<RouteRef>,
    #[serde(flatten)]
    properties: PolicyProperties,
}

impl Policy {
    /// The writable part, e.g. to inspect `ppl`.
    pub fn properties(&self) -> &PolicyProperties {
        &self.properties
    }

    /// The writable part, owned: change what you need (typically `ppl`) and
    /// pass it to `update_policy`; everything else goes back unchanged.
    pub fn into_properties(self) -> PolicyProperties {
        self.properties
    }

    /// Reads a policy from a whole answer, its PPL moved into place within
    /// the answer's own buffer instead of copied out of it: the rest of the
    /// object is read from a copy with the PPL left out (a few hundred
    /// bytes), so a large policy is held once while it is read, not as the
    /// answer and a copy beside it (two megabytes at 5,000 grants, on every
    /// sync). An answer not read that way is read as usual, and its error
    /// comes back with the answer, for the message.
    pub(crate) fn from_answer(answer: Bytes) -> Result<Policy, (serde_json::Error, Bytes)> {
        #[derive(Deserialize)]
        struct PplAt<'a> {
            #[serde(borrow)]
            ppl: &'a RawValue,
        }
        let span = serde_json::from_slice::<PplAt>(&answer).ok().map(|at| {
            let start = at.ppl.get().as_ptr() as usize - answer.as_ptr() as usize;
            start..start + at.ppl.get().len()
        });
        let read = |text: &[u8]| serde_json::from_slice::<Policy>(text);
        let Some(span) = span else {
            return read(&answer).map_err(|e| (e, answer));
        };
        let rest = [&answer[..span.start], b"null", &answer[span.end..]].concat();
        let Ok(mut policy) = read(&rest) else {
            return read(&answer).map_err(|e| (e, answer));
        };
        // The answer is no longer shared: this takes its buffer, uncopied.
        let mut text = Vec::from(answer);
        text.truncate(span.end);
        text.drain(..span.start);
        let text = String::from_utf8(text)
            .map_err(|e| (de::Error::custom(e.utf8_error()), Bytes::new()))?;
        policy.properties.ppl = Ppl::from_json(text).map_err(|e| (e, Bytes::new()))?;
        Ok(policy)
    }
}

// Policies are read field by field rather than with `#[serde(flatten)]`,
// which first buffers the whole object as a tree (for a large policy, many
// times the size of its text) and cannot hand the PPL over as text.

impl<'de> Deserialize<'de> for PolicyProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PolicyVisitor(Properties::default(), PhantomData))
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PolicyVisitor(Computed::default(), PhantomData))
    }
}

/// Reads one policy object into `R`, which knows its fields.
struct PolicyVisitor<R, T>(R, PhantomData<T>);

trait Reader<T> {
    /// Reads the value of `key`.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: String, map: &mut A) -> Result<(), A::Error>;
    fn finish<E: de::Error>(self) -> Result<T, E>;
}

impl<'de, R: Reader<T>, T> Visitor<'de> for PolicyVisitor<R, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a policy object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<T, A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.0.read(key, &mut map)?;
        }
        self.0.finish()
    }
}

fn once<'de, V: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<V>,
    field: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

fn required<V, E: de::Error>(slot: Option<V>, field: &'static str) -> Result<V, E> {
    slot.ok_or_else(|| E::missing_field(field))
}

/// The properties' fields; any other field is kept in `extra`.
#[derive(Default)]
struct Properties {
    name: Option<String>,
    namespace_id: Option<String>,
    description: Option<String>,
    enforced: Option<bool>,
    explanation: Option<String>,
    remediation: Option<String>,
    ppl: Option<Ppl>,
    originator_id: Option<Option<String>>,
    extra: Map<String, Value>,
}

impl Reader<PolicyProperties> for Properties {
    fn read<'de, A: MapAccess<'de>>(&mut self, key: String, map: &mut A) -> Result<(), A::Error> {
        match key.as_str() {
            "name" => once(&mut self.name, "name", map),
            "namespaceId" => once(&mut self.namespace_id, "namespaceId", map),
            "description" => once(&mut self.description, "description", map),
            "enforced" => once(&mut self.enforced, "enforced", map),
            "explanation" => once(&mut self.explanation, "explanation", map),
            "remediation" => once(&mut self.remediation, "remediation", map),
            "ppl" => once(&mut self.ppl, "ppl", map),
            "originatorId" => once(&mut self.originator_id, "originatorId", map),
            _ => {
                let value = map.next_value()?;
                self.extra.insert(key, value);
                Ok(())
            }
        }
    }

    fn finish<E: de::Error>(self) -> Result<PolicyProperties, E> {
        Ok(PolicyProperties {
            name: required(self.name, "name")?,
            namespace_id: required(self.namespace_id, "namespaceId")?,
            description: self.description.unwrap_or_default(),
            enforced: required(self.enforced, "enforced")?,
            explanation: self.explanation.unwrap_or_default(),
            remediation: self.remediation.unwrap_or_default(),
            ppl: required(self.ppl, "ppl")?,
            originator_id: self.originator_id.flatten(),
            extra: self.extra,
        })
    }
}

/// A stored policy's fields: the computed ones, then the properties.
#[derive(Default)]
struct Computed {
    id: Option<String>,
    created_at: Option<Rfc3339>,
    updated_at: Option<Rfc3339>,
    routes: Option<Vec<RouteRef>>,
    enforced_routes: Option<Vec<RouteRef>>,
    properties: Properties,
}

#[derive(Deserialize)]
struct Rfc3339(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

impl Reader<Policy> for Computed {
    fn read<'de, A: MapAccess<'de>>(&mut self, key: String, map: &mut A) -> Result<(), A::Error> {
        match key.as_str() {
            "id" => once(&mut self.id, "id", map),
            "createdAt" => once(&mut self.created_at, "createdAt", map),
            "updatedAt" => once(&mut self.updated_at, "updatedAt", map),
            "routes" => once(&mut self.routes, "routes", map),
            "enforcedRoutes" => once(&mut self.enforced_routes, "enforcedRoutes", map),
            _ => self.properties.read(key, map),
        }
    }

    fn finish<E: de::Error>(self) -> Result<Policy, E> {
        Ok(Policy {
            id: required(self.id, "id")?,
            created_at: required(self.created_at, "createdAt")?.0,
            updated_at: required(self.updated_at, "updatedAt")?.0,
            routes: self.routes.unwrap_or_default(),
            enforced_routes: self.enforced_routes.unwrap_or_default(),
            properties: self.properties.finish()?,
        })
    }
}

/// Lifecycle of a changeset (pomerium.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangesetStatus {
    /// Waiting for someone (or auto-apply) to apply it.
    Pending,
    /// Being applied.
    Applying,
    /// Was applied; a later changeset has been applied since.
    Applied,
    /// The most recently applied changeset: what the cluster runs.
    Current,
    /// Applying failed (see `failureMessage`).
    Failed,
    /// Rejected by a reviewer.
    Rejected,
    /// A status this client does not know.
    #[serde(untagged)]
    Other(String),
}

impl ChangesetStatus {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            ChangesetStatus::Pending => "pending",
            ChangesetStatus::Applying => "applying",
            ChangesetStatus::Applied => "applied",
            ChangesetStatus::Current => "current",
            ChangesetStatus::Failed => "failed",
            ChangesetStatus::Rejected => "rejected",
            ChangesetStatus::Other(s) => s,
        }
    }

    /// Whether the changeset's content is live on the cluster.
    pub fn is_effective(&self) -> bool {
        matches!(self, ChangesetStatus::Applied | ChangesetStatus::Current)
    }
}

/// A changeset: one batch of configuration changes for a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changeset {
    /// Changeset id.
    pub id: String,
    /// The cluster's namespace.
    pub namespace_id: String,
    /// Where it is in its lifecycle.
    pub status: ChangesetStatus,
    /// Why applying it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last status change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What an activity log entry did to its entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityType {
    /// The entity was created.
    Create,
    /// The entity was changed.
    Update,
    /// The entity was deleted.
    Delete,
    /// An activity this client does not know.
    #[serde(untagged)]
    Other(String),
}

/// The entity an activity log entry is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEntity {
    /// Entity id (e.g. a policy id).
    pub id: String,
    /// Entity type, e.g. `"policy"`.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// A snapshot of the entity, when the server includes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One change inside a changeset comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityLog {
    /// Log entry id.
    pub id: String,
    /// What happened.
    pub activity_type: ActivityType,
    /// To what.
    pub entity: ActivityEntity,
    /// Unknown fields (`applied`, `user`, `namespace`, timestamps, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer of `compare_changesets`: the changes between two changesets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesetComparison {
    /// The older end, absent when comparing from the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_changeset: Option<Changeset>,
    /// The newer end.
    pub end_changeset: Changeset,
    /// The changes, grouped per entity.
    #[serde(default)]
    pub entities: Vec<Vec<ActivityLog>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The part of a cluster's settings this client needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSettings {
    /// When false, every change waits in a pending changeset until someone
    /// applies it, so a saved policy is not yet enforced.
    pub auto_apply_changesets: bool,
    /// All other settings.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy_json() -> Value {
        json!({
            "id": "bgrXNgrJFJmMZvPsVsbZHGWxVWP",
            "createdAt": "2024-11-05T10:00:00Z",
            "updatedAt": "2024-11-05T10:00:01.123456Z",
            "name": "jit-example",
            "namespaceId": "ns1",
            "description": "d",
            "enforced": false,
            "explanation": "e",
            "remediation": "r",
            "ppl": [{"allow": {"and": [{"email": {"is": "a@b.c"}}]}}],
            "originatorId": "orig",
            "routes": [{"id": "r1", "name": "route", "updatedAt": "2026-01-01T00:00:00Z"}],
            "enforcedRoutes": [],
            "futureField": {"nested": [1, 2.5, "x", null]},
            "labels": ["a"]
        })
    }

    #[test]
    fn a_policy_body_fits_the_buffer_sized_for_it() {
        let policy: Policy = serde_json::from_value(policy_json()).unwrap();
        let mut props = policy.into_properties();
        let rule = r#"{"allow":{"and":[{"email":{"is":"someone@example.com"}},{"date":{"before":"2026-12-01T10:00:00Z"}}]}}"#;
        let rules = vec![rule; 5000].join(",");
        for ppl in ["[]".to_owned(), format!("[{rules}]")] {
            props.ppl = crate::Ppl::from_json(ppl).unwrap();
            let len = serde_json::to_vec(&props).unwrap().len();
            let hint = props.json_len_hint();
            // Never grown (that doubles the buffer), and not far too large.
            assert!(len <= hint && hint - len < 1024, "{len} bytes, hint {hint}");
        }
    }

    #[test]
    fn policy_round_trip_keeps_unknown_fields_and_drops_computed_ones() {
        let policy: Policy = serde_json::from_value(policy_json()).unwrap();
        assert_eq!(policy.id, "bgrXNgrJFJmMZvPsVsbZHGWxVWP");
        assert_eq!(policy.routes[0].extra["updatedAt"], "2026-01-01T00:00:00Z");
        assert_eq!(policy.properties().originator_id.as_deref(), Some("orig"));

        let mut props = policy.into_properties();
        props.ppl = json!({"allow": {"or": [{"accept": true}]}}).into();
        let sent = serde_json::to_value(&props).unwrap();
        let mut expected = policy_json();
        let obj = expected.as_object_mut().unwrap();
        for computed in ["id", "createdAt", "updatedAt", "routes", "enforcedRoutes"] {
            obj.remove(computed);
        }
        obj["ppl"] = json!({"allow": {"or": [{"accept": true}]}});
        assert_eq!(sent, expected);
    }

    #[test]
    fn policy_tolerates_missing_optional_fields() {
        let policy: Policy = serde_json::from_value(json!({
            "id": "p", "createdAt": "2024-11-05T10:00:00+01:00", "updatedAt": "2024-11-05T10:00:00Z",
            "name": "n", "namespaceId": "ns", "enforced": true, "ppl": {}
        }))
        .unwrap();
        assert!(policy.routes.is_empty());
        let sent = serde_json::to_value(policy.properties()).unwrap();
        assert_eq!(
            sent,
            json!({"name": "n", "namespaceId": "ns", "description": "", "enforced": true,
                   "explanation": "", "remediation": "", "ppl": {}})
        );
    }

    #[test]
    fn policy_keeps_its_ppl_as_the_text_received() {
        let text = r#"{"id":"p","createdAt":"2024-11-05T10:00:00Z","updatedAt":"2024-11-05T10:00:00Z",
            "name":"n","namespaceId":"ns","enforced":false,"originatorId":null,
            "ppl": [ {"allow":{"or":[{"accept":true}]}} ],"x":1}"#;
        let policy: Policy = serde_json::from_str(text).unwrap();
        let ppl = r#"[ {"allow":{"or":[{"accept":true}]}} ]"#;
        assert_eq!(policy.properties().ppl.as_str(), ppl);
        assert_eq!(policy.properties().extra["x"], 1);
        assert_eq!(policy.properties().originator_id, None);
        let props: PolicyProperties = serde_json::from_str(text).unwrap();
        assert_eq!(props.ppl.as_str(), ppl);
        assert_eq!(props.extra["id"], "p");

        let twice = text.replace(r#""x":1"#, r#""name":"m""#);
        let err = serde_json::from_str::<Policy>(&twice).unwrap_err();
        assert!(err.to_string().contains("duplicate field `name`"), "{err}");
    }

    #[test]
    fn a_policy_read_around_its_ppl_is_the_policy_read_as_usual() {
        let head = r#""id":"p","createdAt":"2024-11-05T10:00:00Z","updatedAt":"2024-11-05T10:00:00Z","name":"n \"ppl\": [","namespaceId":"ns","enforced":false"#;
        let ppl = r#"[ {"allow": {"and": [{"email": {"is": "\u00e9\"@x"}}, {"ppl": "]}"}]}} ]"#;
        for answer in [
            format!(r#"{{"ppl":{ppl},{head}}}"#),
            format!(r#"{{{head},"ppl":{ppl},"labels":{{"ppl":1}}}}"#),
            format!(r#" {{ {head} , "ppl" :  {ppl} }} "#),
        ] {
            let usual: Policy = serde_json::from_str(&answer).unwrap();
            let body = Bytes::from(answer.clone().into_bytes());
            let buffer = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
            let read = Policy::from_answer(body).unwrap();
            assert_eq!(read, usual, "{answer}");
            assert_eq!(read.properties().ppl.as_str(), ppl, "the text as received");
            // Moved within the answer's buffer, not copied out of it.
            let text = read.properties().ppl.as_str().as_ptr() as usize;
            assert!(buffer.contains(&text), "{answer}");
        }
        for bad in [
            r#"{"id":"p","ppl":[]}"#.to_owned(),
            format!(r#"{{{head},"ppl":[],"ppl":{{}}}}"#),
            format!(r#"{{{head},"ppl":[}}"#),
            "not JSON".to_owned(),
        ] {
            let usual = serde_json::from_str::<Policy>(&bad)
                .unwrap_err()
                .to_string();
            let (error, body) = Policy::from_answer(Bytes::from(bad.clone())).unwrap_err();
            assert_eq!(error.to_string(), usual, "{bad}");
            assert_eq!(
                body,
                bad.as_bytes(),
                "the answer comes back for the message"
            );
        }
    }

    #[test]
    fn policy_without_ppl_is_rejected() {
        let err = serde_json::from_value::<Policy>(json!({
            "id": "p", "createdAt": "2024-11-05T10:00:00Z", "updatedAt": "2024-11-05T10:00:00Z",
            "name": "n", "namespaceId": "ns", "enforced": true
        }))
        .unwrap_err();
        assert!(err.to_string().contains("ppl"), "{err}");
    }

    #[test]
    fn changeset_status_knows_the_documented_values_and_keeps_others() {
        for (wire, status) in [
            ("pending", ChangesetStatus::Pending),
            ("applying", ChangesetStatus::Applying),
            ("applied", ChangesetStatus::Applied),
            ("current", ChangesetStatus::Current),
            ("failed", ChangesetStatus::Failed),
            ("rejected", ChangesetStatus::Rejected),
            ("superseded", ChangesetStatus::Other("superseded".into())),
        ] {
            let parsed: ChangesetStatus = serde_json::from_value(json!(wire)).unwrap();
            assert_eq!(parsed, status);
            assert_eq!(parsed.as_str(), wire);
            assert_eq!(serde_json::to_value(&parsed).unwrap(), json!(wire));
        }
        assert!(ChangesetStatus::Current.is_effective());
        assert!(!ChangesetStatus::Pending.is_effective());
    }

    #[test]
    fn comparison_and_settings_parse() {
        let cs = json!({"id": "c1", "namespaceId": "ns", "status": "current",
                        "createdAt": "2024-11-05T10:00:00Z", "updatedAt": "2024-11-05T10:00:00Z"});
        let cmp: ChangesetComparison = serde_json::from_value(json!({
            "endChangeset": cs,
            "entities": [[{"id": "l1", "activityType": "update",
                           "entity": {"id": "p1", "type": "policy", "data": {"name": "n"}},
                           "applied": {"changesetId": "c1", "by": {}}}]]
        }))
        .unwrap();
        assert!(cmp.start_changeset.is_none());
        let log = &cmp.entities[0][0];
        assert_eq!(log.activity_type, ActivityType::Update);
        assert_eq!(log.entity.entity_type, "policy");
        assert!(log.extra.contains_key("applied"));

        let settings: ClusterSettings =
            serde_json::from_value(json!({"address": ":443", "autoApplyChangesets": false}))
                .unwrap();
        assert!(!settings.auto_apply_changesets);
        assert_eq!(settings.extra["address"], ":443");
    }
}
