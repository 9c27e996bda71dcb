//! `pomerium-jit explain`: reads each resource's policy as deployed in
//! Pomerium Zero, evaluates it for one person with the PPL evaluator, says
//! which rule decides and whether pomerium-jit wrote it, and compares the
//! policy's JIT entry with the store's grant to show drift.

use anyhow::{Context, bail};
use clap::Args;
use jit_domain::{Email, Request, Resource, State};
use jit_ppl::Policy;
use jit_ppl::eval::{Decision, Subject, evaluate};
use jit_ppl::jit::{DecodeOptions, JitRule, split};
use jit_web::export::{self, Edge};
use jit_web::when::{When, rfc3339};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::{OpsSettings, ServeArgs, ZeroSettings};
use crate::ops::{aligned, email_arg, known_resource, open_read, ops_settings};
use crate::serve::BadSetting;

#[derive(Debug, Args)]
#[command(after_long_help = "\
For each resource (or --resource), reads its policy from Pomerium Zero (needs
API_USER_TOKEN, ORGANIZATION_ID, CLUSTER_ID) and evaluates it for the person as
Pomerium would, with the groups given: which rule decides (rules counted from 0,
as in the policy), what matched, whether pomerium-jit wrote that rule (a JIT
rule) or someone else did (a foreign rule), and whether the policy's JIT entry
agrees with the store (drift otherwise). Criteria that depend on the request
(path, device, …) cannot be evaluated and are taken as not matching in allow
rules and matching in deny rules; `user` is compared with the email, since the
user id is not known here.

With --json: one JSON array, an object per resource with resource, policy,
decision (allow/deny), rule (index or null), rule_kind (jit, foreign or null),
reason, expires_at, store (active, pending or none), store_expires_at, drift
(bool) and drift_reason.

Example:
  pomerium-jit explain --email alice@example.com --resource prod-db --groups dba")]
pub struct ExplainArgs {
    #[command(flatten)]
    settings: Box<ServeArgs>,
    /// Whose access to explain.
    #[arg(long)]
    email: String,
    /// Only this resource [default: every resource].
    #[arg(long)]
    resource: Option<String>,
    /// The person's groups, comma-separated, as Pomerium's `groups` claim lists them.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Evaluate at this UTC time (2026-11-30T14:00) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// One JSON array, for scripts.
    #[arg(long)]
    json: bool,
}

/// What one resource's policy says about the person.
struct Finding {
    resource: String,
    policy: String,
    decision: Decision,
    rule: Option<usize>,
    /// `Some(true)`: the deciding rule is a JIT rule.
    jit: Option<bool>,
    reason: String,
    /// The end of the deciding JIT grant.
    expires_at: Option<OffsetDateTime>,
    store: Store,
    drift: Option<String>,
}

/// Where the store has the person on a resource at the instant asked.
enum Store {
    Active(OffsetDateTime),
    Pending,
    None,
}

pub async fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let settings = ops_settings(&args.settings)?;
    let email = email_arg(&args.email)?;
    let Some(zero) = &settings.zero else {
        return Err(BadSetting(
            "explain reads the deployed policy from Pomerium Zero: set API_USER_TOKEN, \
             ORGANIZATION_ID and CLUSTER_ID as for `serve`"
                .into(),
        )
        .into());
    };
    let at = match &args.at {
        Some(v) => export::parse_instant(v.trim(), Edge::Start).ok_or_else(|| {
            BadSetting(format!(
                "--at: `{v}` is not a time; write a UTC time as 2026-11-30T14:00"
            ))
        })?,
        None => OffsetDateTime::now_utc(),
    };
    let resources: Vec<&Resource> = match &args.resource {
        Some(r) => {
            let name = known_resource(&settings.resources, r)?;
            settings
                .resources
                .iter()
                .filter(|r| r.name == name)
                .collect()
        }
        None => settings.resources.iter().collect(),
    };
    let store = open_read(&settings).await?;
    let open: Vec<Request> = store
        .open_requests()
        .await?
        .into_iter()
        .filter(|r| r.email == email)
        .collect();
    let subject = Subject {
        // The user id is not known here; see --help.
        user: email.to_string(),
        email: email.to_string(),
        groups: args.groups.clone(),
        claims: Default::default(),
    };
    let mut findings = Vec::new();
    for resource in resources {
        let held = open.iter().find(|r| r.resource == resource.name);
        findings.push(explain(&settings, zero, resource, &subject, held, at).await?);
    }
    let now = OffsetDateTime::now_utc();
    if args.json {
        let items: Vec<Value> = findings.iter().map(|f| f.json()).collect();
        println!("{}", Value::Array(items));
    } else {
        print_findings(&email, at, now, &findings);
    }
    Ok(())
}

async fn explain(
    settings: &OpsSettings,
    zero: &ZeroSettings,
    resource: &Resource,
    subject: &Subject,
    held: Option<&Request>,
    at: OffsetDateTime,
) -> anyhow::Result<Finding> {
    let name = &resource.policy.name;
    let namespace = resource
        .policy
        .namespace
        .as_deref()
        .unwrap_or(&zero.namespace_id);
    let mut named: Vec<_> = zero
        .client
        .list_policies(namespace)
        .await
        .with_context(|| format!("reading policy {name} from Pomerium Zero"))?
        .into_iter()
        .filter(|p| p.properties().name == *name)
        .collect();
    let store = match held.map(|r| &r.state) {
        Some(State::Active(g)) if held.is_some_and(|r| r.grants_access_at(at)) => {
            Store::Active(g.expires_at)
        }
        Some(State::Pending) => Store::Pending,
        _ => Store::None,
    };
    let policy = match named.len() {
        0 => None,
        1 => {
            let remote = named.remove(0);
            let ppl = &remote.properties().ppl;
            Some(Policy::from_json_str(ppl.as_str()).with_context(|| {
                format!(
                    "policy {name} ({}) in Pomerium Zero cannot be read",
                    remote.id
                )
            })?)
        }
        n => bail!(
            "{n} policies are named {name} in namespace {namespace}; delete or rename all but \
             one in the Zero console (`pomerium-jit doctor` lists them)"
        ),
    };
    let Some(policy) = policy else {
        let drift = matches!(store, Store::Active(_)).then(|| {
            format!("the store holds an active grant but policy {name} is not in Pomerium Zero yet; the next sync creates it")
        });
        return Ok(Finding {
            resource: resource.name.to_string(),
            policy: name.clone(),
            decision: Decision::Deny,
            rule: None,
            jit: None,
            reason: format!("denied: policy {name} is not in namespace {namespace}"),
            expires_at: None,
            store,
            drift,
        });
    };
    let decode = &settings.decode;
    let evaluation = evaluate(&policy, subject, at, decode);
    let rule = evaluation.decided_by.map(|r| r.index);
    let deciding = rule.and_then(|i| policy.rules().get(i));
    let jit = deciding.map(|r| JitRule::decode(r, decode).is_some());
    let expires_at = deciding
        .and_then(|r| JitRule::decode(r, decode))
        .and_then(|e| match e {
            JitRule::Grant { before, .. } => Some(before.get()),
            JitRule::Pending { .. } => None,
        });
    let drift = drift(&policy, decode, &subject.email, &store, at, name);
    Ok(Finding {
        resource: resource.name.to_string(),
        policy: name.clone(),
        decision: evaluation.decision,
        rule,
        jit,
        reason: evaluation.reason,
        expires_at,
        store,
        drift,
    })
}

/// Whether the policy's JIT grant for `email` (in force at `at`) and the
/// store's disagree, and how.
fn drift(
    policy: &Policy,
    decode: &DecodeOptions,
    email: &str,
    store: &Store,
    at: OffsetDateTime,
    name: &str,
) -> Option<String> {
    let in_policy = split(policy, decode)
        .jit
        .into_iter()
        .find_map(|(_, entry)| match entry {
            JitRule::Grant {
                email: e,
                after,
                before,
            } if e == email && after.is_none_or(|a| a.get() < at) && at < before.get() => {
                Some(before.get())
            }
            _ => None,
        });
    match (store, in_policy) {
        (Store::Active(until), None) => Some(format!(
            "the store holds an active grant until {} but policy {name} does not grant it; the \
             next sync writes it",
            rfc3339(*until)
        )),
        (Store::Active(until), Some(end)) if *until != end => Some(format!(
            "the store's grant ends {} but policy {name}'s ends {}; the next sync writes the \
             store's",
            rfc3339(*until),
            rfc3339(end)
        )),
        (Store::Pending | Store::None, Some(end)) => Some(format!(
            "policy {name} grants access until {} but the store holds no active grant; the next \
             sync removes it (or adopts it, if it was added in the Zero console)",
            rfc3339(end)
        )),
        _ => None,
    }
}

impl Finding {
    fn kind(&self) -> Option<&'static str> {
        self.jit.map(|jit| if jit { "jit" } else { "foreign" })
    }

    fn json(&self) -> Value {
        let (store, store_expires_at) = match &self.store {
            Store::Active(t) => ("active", Some(rfc3339(*t))),
            Store::Pending => ("pending", None),
            Store::None => ("none", None),
        };
        json!({
            "resource": self.resource,
            "policy": self.policy,
            "decision": match self.decision { Decision::Allow => "allow", Decision::Deny => "deny" },
            "rule": self.rule,
            "rule_kind": self.kind(),
            "reason": self.reason,
            "expires_at": self.expires_at.map(rfc3339),
            "store": store,
            "store_expires_at": store_expires_at,
            "drift": self.drift.is_some(),
            "drift_reason": self.drift,
        })
    }
}

fn print_findings(email: &Email, at: OffsetDateTime, now: OffsetDateTime, findings: &[Finding]) {
    println!("{email} at {}:", When::new(at, now).abs);
    let mut table =
        vec![["RESOURCE", "POLICY", "DECISION", "RULE", "STORE", "DRIFT"].map(String::from)];
    for f in findings {
        let decision = match f.decision {
            Decision::Allow => "allowed",
            Decision::Deny => "denied",
        };
        let rule = match (f.rule, f.kind()) {
            (Some(i), Some(kind)) => format!("{i} ({kind})"),
            _ => "-".into(),
        };
        let store = match &f.store {
            Store::Active(until) => format!("active until {}", When::new(*until, now).abs),
            Store::Pending => "pending".into(),
            Store::None => "none".into(),
        };
        let drift = if f.drift.is_some() { "DRIFT" } else { "no" };
        table.push([
            f.resource.clone(),
            f.policy.clone(),
            decision.into(),
            rule,
            store,
            drift.into(),
        ]);
    }
    print!("{}", aligned(&table));
    for f in findings {
        let whose = match f.kind() {
            Some("jit") => "; a JIT rule written by pomerium-jit",
            Some(_) => "; a foreign rule, not written by pomerium-jit (kept as is)",
            None => "",
        };
        let expires = f
            .expires_at
            .map(|t| format!(" (expires {})", When::new(t, now)))
            .unwrap_or_default();
        println!("{}: {}{expires}{whose}", f.resource, f.reason);
        if let Some(d) = &f.drift {
            println!("{}: drift: {d}", f.resource);
        }
    }
}
