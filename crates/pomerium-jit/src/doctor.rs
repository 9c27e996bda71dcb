//! `pomerium-jit doctor`: checks a deployment end to end with `serve`'s
//! settings and prints one line per check, changing nothing: no policy is
//! written, no changeset applied, the database is opened read-only and
//! never created or migrated.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use jit_domain::Resource;
use jit_identity::JwksError;
use jit_store::{Store, StoreError};
use jit_zero::{ChangesetStatus, ZeroError};
use secrecy::ExposeSecret;

use crate::config::{ServeArgs, Settings};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// How long each check may wait on Pomerium, Zero or the database before
    /// it is reported as failed.
    #[arg(long, env = "DOCTOR_TIMEOUT", default_value = "10s")]
    timeout: String,
}

/// What one check found.
enum Verdict {
    Ok(String),
    Fail {
        problem: String,
        fix: String,
    },
    /// A setting `serve` would refuse at start-up (exit status 2).
    BadSetting {
        problem: String,
        fix: String,
    },
}

impl Verdict {
    fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Verdict::Fail {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn not_checked(because: &str) -> Self {
        Verdict::fail(
            format!("not checked: {because}"),
            format!("fix {because} first"),
        )
    }
}

/// The worst verdict so far, which decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Passed,
    Failed,
    Unusable,
}

impl From<Health> for ExitCode {
    fn from(health: Health) -> Self {
        match health {
            Health::Passed => ExitCode::SUCCESS,
            Health::Failed => ExitCode::from(1),
            Health::Unusable => ExitCode::from(2),
        }
    }
}

/// Prints each verdict as it comes, so a slow check shows what passed before it.
struct Report {
    health: Health,
}

impl Report {
    fn line(&mut self, check: impl fmt::Display, verdict: &Verdict) {
        let (health, line) = match verdict {
            Verdict::Ok(detail) => (Health::Passed, format!("ok   {check}: {detail}")),
            Verdict::Fail { problem, fix } => {
                (Health::Failed, format!("FAIL {check}: {problem} — {fix}"))
            }
            Verdict::BadSetting { problem, fix } => {
                (Health::Unusable, format!("FAIL {check}: {problem} — {fix}"))
            }
        };
        println!("{line}");
        self.health = self.health.max(health);
    }
}

/// Runs every check; exit status 0 when all passed, 1 when one failed, 2
/// when the settings are unusable.
pub fn run(args: DoctorArgs) -> ExitCode {
    let mut report = Report {
        health: Health::Passed,
    };
    let timeout = humantime::parse_duration(args.timeout.trim()).map_err(|e| {
        format!(
            "DOCTOR_TIMEOUT: `{}` is not a duration like 10s ({e})",
            args.timeout
        )
    });
    let settings = args.serve.settings();
    let (settings, timeout) = match (settings, timeout) {
        (Ok(settings), Ok(timeout)) => (settings, timeout),
        (settings, timeout) => {
            let problems = settings.err().into_iter().flatten().chain(timeout.err());
            for problem in problems {
                report.line(
                    "settings",
                    &Verdict::BadSetting {
                        problem,
                        fix:
                            "set it in the environment or as a flag (`pomerium-jit doctor --help`)"
                                .into(),
                    },
                );
            }
            return report.health.into();
        }
    };
    report.line("settings", &Verdict::Ok(settings_summary(&settings)));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(check_all(&settings, timeout, &mut report));
    report.health.into()
}

fn settings_summary(s: &Settings) -> String {
    let names: Vec<&str> = s.resources.iter().map(|r| r.name.as_str()).collect();
    format!(
        "{} resource{} ({}), organization {}, cluster {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        s.zero.organization_id(),
        s.cluster_id
    )
}

async fn check_all(s: &Settings, timeout: Duration, report: &mut Report) {
    let bounded = Bounded(timeout);
    report.line(
        "jwks",
        &bounded.run(check_jwks(s), "Pomerium's JWKS_ENDPOINT").await,
    );

    let token = bounded
        .run(check_token(s), "Pomerium Zero (API_BASE_URL)")
        .await;
    let zero_ok = matches!(token, Verdict::Ok(_));
    report.line("token exchange", &token);

    let mut policy_ids = BTreeSet::new();
    for resource in &s.resources {
        let check = format!("policy {}", resource.policy.name);
        let verdict = if zero_ok {
            bounded
                .run(check_policy(s, resource, &mut policy_ids), "Pomerium Zero")
                .await
        } else {
            Verdict::not_checked("the token exchange")
        };
        report.line(check, &verdict);
    }

    let changesets = if zero_ok {
        bounded
            .run(check_changesets(s, &policy_ids), "Pomerium Zero")
            .await
    } else {
        Verdict::not_checked("the token exchange")
    };
    report.line("changesets", &changesets);

    let (verdict, store) = tokio::time::timeout(timeout, check_database(s))
        .await
        .unwrap_or_else(|_| (stalled(timeout, "the database (DATABASE_URL)"), None));
    report.line("database", &verdict);
    let audit = match &store {
        Some(store) => {
            bounded
                .run(check_audit(store), "the database (DATABASE_URL)")
                .await
        }
        None => Verdict::not_checked("the database"),
    };
    report.line("audit chain", &audit);

    if let Some(n) = &s.notifications {
        check_notifications(n, &bounded, report).await;
    }
}

/// One line per notification channel: does it answer (an HTTP `HEAD` to a
/// webhook, SMTP's greeting, `EHLO` and `NOOP` for mail)? Nothing is sent.
async fn check_notifications(n: &jit_notify::NotifyConfig, bounded: &Bounded, report: &mut Report) {
    let sender = match jit_notify::Sender::new(&n.channels) {
        Ok(sender) => sender,
        Err(e) => {
            report.line(
                "notifications",
                &Verdict::BadSetting {
                    problem: e.to_string(),
                    fix: "fix the channel in the config file's [notifications]".into(),
                },
            );
            return;
        }
    };
    for ch in &n.channels {
        let check = format!("notify {} ({})", ch.name, ch.kind.as_str());
        let probe = async {
            match sender.probe(&ch.name).await {
                Ok(detail) => Verdict::Ok(detail),
                Err(problem) => Verdict::fail(
                    problem,
                    "check the channel's address in [notifications] and that it is reachable from here",
                ),
            }
        };
        report.line(&check, &bounded.run(probe, &check).await);
    }
}

/// Each check's deadline, so a stalled upstream is reported, not waited on.
struct Bounded(Duration);

impl Bounded {
    async fn run(&self, check: impl Future<Output = Verdict>, upstream: &str) -> Verdict {
        tokio::time::timeout(self.0, check)
            .await
            .unwrap_or_else(|_| stalled(self.0, upstream))
    }
}

fn stalled(timeout: Duration, upstream: &str) -> Verdict {
    Verdict::fail(
        format!(
            "no answer from {upstream} within {}",
            humantime::format_duration(timeout)
        ),
        "check that it is up and reachable from here (a slower link: raise DOCTOR_TIMEOUT)",
    )
}

async fn check_jwks(s: &Settings) -> Verdict {
    let url = s.verifier.jwks_url();
    match s.verifier.refresh_keys().await {
        Ok(n) => Verdict::Ok(format!(
            "{n} usable key{} at {url}",
            if n == 1 { "" } else { "s" }
        )),
        Err(e @ JwksError::NoUsableKeys { .. }) => Verdict::fail(
            format!("{url}: {e}"),
            "point JWKS_ENDPOINT at Pomerium's key set \
             (https://<this app's route>/.well-known/pomerium/jwks.json)",
        ),
        Err(e) => Verdict::fail(
            format!("{url}: {}", chain(&e)),
            "check JWKS_ENDPOINT: Pomerium's https://<this app's route>/.well-known/pomerium/jwks.json, \
             reachable from here",
        ),
    }
}

async fn check_token(s: &Settings) -> Verdict {
    match s.zero.authenticate().await {
        Ok(()) => Verdict::Ok("Pomerium Zero accepted API_USER_TOKEN".into()),
        Err(e) => zero_failure(&e),
    }
}

/// A Zero error as a verdict; most of Zero's messages already say what to
/// do, so only the causes operators meet first get their own advice.
fn zero_failure(e: &ZeroError) -> Verdict {
    match e {
        ZeroError::TokenRefused { status, .. } => Verdict::fail(
            format!(
                "Pomerium Zero refused API_USER_TOKEN (HTTP {})",
                status.as_u16()
            ),
            "create a new API user token in the Zero console (Account → API Tokens) and set \
             API_USER_TOKEN",
        ),
        ZeroError::Timeout { .. } | ZeroError::Transport { .. } => Verdict::fail(
            chain(e),
            "check API_BASE_URL and that Pomerium Zero is reachable from here",
        ),
        _ => Verdict::fail(
            chain(e),
            "check ORGANIZATION_ID, CLUSTER_ID and the API user's role in the Zero console",
        ),
    }
}

/// The policy the resource writes, looked up as the reconciler does: by
/// name in its namespace, which must hold it at most once.
async fn check_policy(s: &Settings, r: &Resource, ids: &mut BTreeSet<String>) -> Verdict {
    let name = &r.policy.name;
    let namespace = r.policy.namespace.as_deref().unwrap_or(&s.namespace_id);
    let listed = match s.zero.list_policies(namespace).await {
        Ok(listed) => listed,
        Err(e) => {
            return Verdict::fail(
                format!(
                    "cannot list the policies of namespace {namespace}: {}",
                    chain(&e)
                ),
                "check the namespace (NAMESPACE_ID, or the resource's policy.namespace; \
                 CLUSTER_ID by default) and the API user's role",
            );
        }
    };
    let mut named: Vec<_> = listed
        .into_iter()
        .filter(|p| p.properties().name == *name)
        .collect();
    match named.len() {
        0 => Verdict::Ok(format!(
            "not in namespace {namespace} yet; the first sync creates it (resource {})",
            r.name
        )),
        1 => {
            let policy = named.remove(0);
            ids.insert(policy.id.clone());
            match jit_ppl::Policy::from_json_str(policy.properties().ppl.as_str()) {
                Ok(_) => Verdict::Ok(format!(
                    "found in namespace {namespace} (id {}, resource {})",
                    policy.id, r.name
                )),
                Err(e) => Verdict::fail(
                    format!(
                        "its PPL (id {}) cannot be read, so pomerium-jit will not write it: {e}",
                        policy.id
                    ),
                    "fix the policy in the Zero console",
                ),
            }
        }
        n => {
            let ids: Vec<String> = named.into_iter().map(|p| p.id).collect();
            Verdict::fail(
                format!(
                    "{n} policies have this name in namespace {namespace} ({}), so pomerium-jit \
                     cannot tell which to write",
                    ids.join(", ")
                ),
                "delete or rename all but one in the Zero console",
            )
        }
    }
}

/// What the reconciler does with changesets: nothing when the cluster
/// auto-applies them; otherwise, with APPLY_CHANGESETS, it applies the
/// newest pending one when everything pending changes its own policy only.
async fn check_changesets(s: &Settings, policy_ids: &BTreeSet<String>) -> Verdict {
    let zero = &s.zero;
    let cluster = &s.cluster_id;
    let auto = match zero.get_cluster_settings(cluster).await {
        Ok(settings) => settings.auto_apply_changesets,
        Err(e) => return zero_failure(&e),
    };
    if auto {
        return Verdict::Ok("the cluster auto-applies changesets".into());
    }
    if !s.apply_changesets {
        return Verdict::fail(
            "the cluster does not auto-apply changesets and APPLY_CHANGESETS is false, so every \
             grant and revocation waits in a pending changeset until someone applies it in the \
             Zero console",
            "turn on auto-apply in the cluster's settings in the Zero console, or set \
             APPLY_CHANGESETS=true to let pomerium-jit apply pending changesets that hold only \
             its policy's changes",
        );
    }
    let all = match zero.list_changesets(cluster, None).await {
        Ok(all) => all,
        Err(e) => return zero_failure(&e),
    };
    let Some(newest) = all
        .iter()
        .filter(|c| c.status == ChangesetStatus::Pending)
        .max_by_key(|c| c.created_at)
    else {
        return Verdict::Ok(
            "auto-apply is off; APPLY_CHANGESETS is on and nothing is pending".into(),
        );
    };
    let live = all
        .iter()
        .filter(|c| c.status.is_effective())
        .max_by_key(|c| c.created_at)
        .map(|c| c.id.as_str());
    let diff = match zero
        .compare_changesets(cluster, live, Some(&newest.id))
        .await
    {
        Ok(diff) => diff,
        Err(e) => return zero_failure(&e),
    };
    let changed: BTreeSet<&str> = diff
        .entities
        .iter()
        .flatten()
        .map(|l| l.entity.id.as_str())
        .collect();
    match changed.iter().next() {
        Some(only) if changed.len() == 1 && policy_ids.contains(*only) => Verdict::Ok(format!(
            "auto-apply is off; the pending changeset {} holds only policy {only}'s changes, \
             which the next sync applies (APPLY_CHANGESETS)",
            newest.id
        )),
        _ => Verdict::fail(
            format!(
                "auto-apply is off and the pending changeset {} holds other changes than one \
                 pomerium-jit policy's, so pomerium-jit will not apply it and grants wait behind it",
                newest.id
            ),
            "apply or discard the pending changes in the Zero console, or turn on auto-apply",
        ),
    }
}

/// Opens the database read-only (a missing or unmigrated one is reported,
/// never created or migrated) and checks that `serve` would start on it:
/// it refuses open requests on a resource the settings no longer list.
async fn check_database(s: &Settings) -> (Verdict, Option<Store>) {
    let store = match Store::open_read_only(s.database_url.expose_secret()).await {
        Ok(store) => store,
        Err(e) => return (store_failure(e), None),
    };
    let open = match store.open_resources().await {
        Ok(open) => open,
        Err(e) => return (store_failure(e), Some(store)),
    };
    let orphans: Vec<String> = open
        .into_iter()
        .filter(|(name, _)| !s.resources.iter().any(|r| r.name.as_str() == name))
        .map(|(name, n)| format!("{name} ({n})"))
        .collect();
    let verdict = if orphans.is_empty() {
        Verdict::Ok(format!(
            "the {} database answers and its schema is up to date",
            store.backend()
        ))
    } else {
        Verdict::fail(
            format!(
                "it holds pending or active requests on resources the settings no longer list: \
                 {}; serve refuses to start",
                orphans.join(", ")
            ),
            "add the resources back to CONFIG_FILE, or start once with the previous settings \
             and revoke them first",
        )
    };
    (verdict, Some(store))
}

fn store_failure(e: StoreError) -> Verdict {
    match e {
        StoreError::UnsupportedScheme { .. } | StoreError::InvalidUrl { .. } => {
            Verdict::BadSetting {
                problem: format!("DATABASE_URL: {e}"),
                fix: "fix DATABASE_URL".into(),
            }
        }
        StoreError::Missing { .. } | StoreError::Unmigrated { .. } => Verdict::fail(
            e.to_string(),
            "if this is a new deployment, `pomerium-jit serve` creates and migrates it on its \
             first start",
        ),
        e => Verdict::fail(chain(&e), "check DATABASE_URL and that the database is up"),
    }
}

async fn check_audit(store: &Store) -> Verdict {
    match store.verify_audit_chain().await {
        Ok(report) => match report.problem() {
            None => Verdict::Ok(format!(
                "{} events intact, {} requests match",
                report.verified, report.requests_checked
            )),
            Some(problem) => Verdict::fail(
                format!("{problem} ({} events verified before it)", report.verified),
                "restore the database from a backup and investigate; \
                 `pomerium-jit audit export` shows the trail",
            ),
        },
        Err(e) => Verdict::fail(chain(&e), "check that the database is up"),
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
