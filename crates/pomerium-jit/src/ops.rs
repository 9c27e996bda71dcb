//! The operator commands, on the store and the live policy: `grants list`,
//! `revoke`, `grant` (break-glass), `history export` and `explain`. They
//! read `serve`'s settings but need only the database and the resources,
//! and Pomerium Zero where they read or apply a policy. Exit status 0 when
//! done, 1 on a failure, 2 on bad usage or settings, with one line on
//! stderr saying what and what to do.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use futures_util::future::BoxFuture;
use jit_domain::{
    Action, Ask, Email, GrantDuration, Operator, Reason, Request, Resource, ResourceName, State,
    Ticket,
};
use jit_reconcile::{FailureKind, PolicyApi, Reconciler};
use jit_service::{Desk, HistoryFilter, Outcome, Service};
use jit_store::{Store, StoreError};
use jit_web::export::{self, Edge};
use jit_web::when::{When, rfc3339};
use jit_zero::{
    Changeset, ChangesetComparison, ChangesetStatus, ClusterSettings, Operation,
    Policy as ZeroPolicy, PolicyProperties, PolicyRef, ZeroError,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::{OpsSettings, ServeArgs};
use crate::serve::{BadSetting, Policies};

/// Most events one `history export` holds (in memory, then written).
const EXPORT_MAX: usize = 1_000_000;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  pomerium-jit grants list
  pomerium-jit grants list --resource prod-db --pending --json")]
pub struct GrantsArgs {
    #[command(subcommand)]
    command: GrantsCommand,
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// Active grants from the store, soonest end first (with --pending, also
    /// requests awaiting approval).
    #[command(after_long_help = "\
Prints a table: email, resource, status, since, expires, time left, approved by.
With --json: one JSON array of objects with the keys email, resource, status
(active or pending), request_id, requested_at, since, expires_at (RFC 3339 UTC;
null while pending), seconds_left, approved_by (`user:<email>`, `system`, `zero`,
`cli:<name>`), approvals (emails), reason and ticket.

Example:
  pomerium-jit grants list --resource prod-db --pending")]
    List {
        #[command(flatten)]
        settings: Box<ServeArgs>,
        /// Only grants on this resource.
        #[arg(long)]
        resource: Option<String>,
        /// Only this person's grants.
        #[arg(long)]
        email: Option<String>,
        /// Include requests awaiting approval.
        #[arg(long)]
        pending: bool,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Who the operator is, and whether they confirmed.
#[derive(Debug, Args)]
pub struct Acting {
    /// Your name in the audit trail, recorded as `cli:<NAME>` [default: $USER].
    #[arg(long = "as", value_name = "NAME")]
    operator: Option<String>,
    /// Do it without asking (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    /// Print the outcome as one JSON object, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Ends the person's active access (revoked) or pending request (rejected), audited
as `cli:<your name>` with the reason as the comment, exactly as an approver's
revoke on /admin. With Pomerium Zero settings (API_USER_TOKEN, ORGANIZATION_ID,
CLUSTER_ID) it then updates each affected policy at once; without them, the
running service applies it within SYNC_INTERVAL.

Example:
  pomerium-jit revoke --email alice@example.com --resource prod-db \\
      --reason \"left the incident\" --yes")]
pub struct RevokeArgs {
    #[command(flatten)]
    settings: Box<ServeArgs>,
    /// Whose access to end.
    #[arg(long)]
    email: String,
    /// The resource.
    #[arg(long, required_unless_present = "all_resources")]
    resource: Option<String>,
    /// Every resource where they hold access or a pending request.
    #[arg(long, conflicts_with = "resource")]
    all_resources: bool,
    /// Why; shown to the person and kept in the audit trail.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    acting: Acting,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Break-glass: grants access at once, bypassing approvals. The person's pending
request is approved, or one is made on their behalf. Loud on purpose: a warning
is printed and logged, and the grant's audit event is by `cli:<your name>` with
\"break_glass\": true, which notifies every approver. The resource's reason and
ticket rules and its longest grant (durations.max) still apply; there is no way
around the maximum. Applied like `revoke`.

Example:
  pomerium-jit grant --email alice@example.com --resource prod-db --duration 1h \\
      --reason \"INC-42: database down, DBA unreachable\" --ticket CHG-7 --yes")]
pub struct GrantArgs {
    #[command(flatten)]
    settings: Box<ServeArgs>,
    /// Who gets access.
    #[arg(long)]
    email: String,
    /// The resource.
    #[arg(long)]
    resource: String,
    /// How long, e.g. 30m, 1h, 1h30m (at most the resource's maximum).
    #[arg(long)]
    duration: String,
    /// Why; required, kept in the audit trail.
    #[arg(long)]
    reason: String,
    /// The ticket, where the resource takes one.
    #[arg(long)]
    ticket: Option<String>,
    #[command(flatten)]
    acting: Acting,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  pomerium-jit history export --format csv --from 2026-11-01 --to 2026-11-30 --output nov.csv
  pomerium-jit history export --email alice@example.com --action revoked")]
pub struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Every event the filters select, oldest first, as JSON lines or CSV:
    /// the files of /admin/history (seq, at, actor, action, subject,
    /// resource, request_id, details, hash).
    #[command(after_long_help = "\
Example:
  pomerium-jit history export --format csv --resource prod-db --from 2026-11-01 --output nov.csv")]
    Export {
        #[command(flatten)]
        settings: Box<ServeArgs>,
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// From this date (2026-11-30) or UTC time (2026-11-30T14:00), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Up to this date (the whole day) or UTC time, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only events about this person's access.
        #[arg(long)]
        email: Option<String>,
        /// Only events on this resource.
        #[arg(long)]
        resource: Option<String>,
        /// Only this action (requested, approved, revoked, expired, …).
        #[arg(long)]
        action: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// `grants list`.
pub async fn grants(args: GrantsArgs) -> anyhow::Result<()> {
    let GrantsCommand::List {
        settings,
        resource,
        email,
        pending,
        json,
    } = args.command;
    let settings = ops_settings(&settings)?;
    let resource = resource
        .map(|r| known_resource(&settings.resources, &r))
        .transpose()?;
    let email = email.map(|e| email_arg(&e)).transpose()?;
    let store = open_read(&settings).await?;
    let now = OffsetDateTime::now_utc();
    let mut rows: Vec<Request> = store
        .open_requests()
        .await?
        .into_iter()
        .filter(|r| pending || r.state.grant().is_some())
        .filter(|r| resource.as_ref().is_none_or(|n| &r.resource == n))
        .filter(|r| email.as_ref().is_none_or(|e| &r.email == e))
        .collect();
    rows.sort_by_key(|r| (r.state.grant().map(|g| g.expires_at), r.requested_at, r.id));
    if json {
        let items: Vec<Value> = rows.iter().map(|r| request_json(r, now)).collect();
        println!("{}", Value::Array(items));
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no {}",
            if pending {
                "grants or pending requests"
            } else {
                "active grants"
            }
        );
        return Ok(());
    }
    let mut table = vec![
        [
            "EMAIL",
            "RESOURCE",
            "STATUS",
            "SINCE",
            "EXPIRES",
            "LEFT",
            "APPROVED BY",
        ]
        .map(String::from),
    ];
    for r in &rows {
        let (since, expires, left, by) = match r.state.grant() {
            Some(g) => (
                When::new(g.starts_at.unwrap_or(g.approved_at), now).abs,
                When::new(g.expires_at, now).abs,
                When::new(g.expires_at, now).rel,
                approvers(r),
            ),
            None => (
                When::new(r.requested_at, now).abs,
                "-".into(),
                "-".into(),
                format!("{} so far", r.approvals.len()),
            ),
        };
        table.push([
            r.email.to_string(),
            r.resource.to_string(),
            r.state.status().to_string(),
            since,
            expires,
            left,
            by,
        ]);
    }
    print!("{}", aligned(&table));
    Ok(())
}

/// Who approved a grant: every approver of an N-of-M approval, else the actor.
fn approvers(r: &Request) -> String {
    match r.state.grant() {
        Some(_) if r.approvals.len() > 1 => r
            .approvals
            .iter()
            .map(|a| a.by.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Some(g) => g.approved_by.to_string(),
        None => String::new(),
    }
}

fn request_json(r: &Request, now: OffsetDateTime) -> Value {
    let grant = r.state.grant();
    json!({
        "email": r.email.as_str(),
        "resource": r.resource.as_str(),
        "status": r.state.status().as_str(),
        "request_id": r.id.to_string(),
        "requested_at": rfc3339(r.requested_at),
        "since": grant.map(|g| rfc3339(g.starts_at.unwrap_or(g.approved_at))),
        "expires_at": grant.map(|g| rfc3339(g.expires_at)),
        "seconds_left": grant.map(|g| (g.expires_at - now).whole_seconds().max(0)),
        "approved_by": grant.map(|g| g.approved_by.to_string()),
        "approvals": r.approvals.iter().map(|a| a.by.as_str()).collect::<Vec<_>>(),
        "reason": r.reason().map(Reason::as_str),
        "ticket": r.ask.ticket.as_ref().map(Ticket::as_str),
    })
}

/// `revoke`.
pub async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let settings = ops_settings(&args.settings)?;
    let email = email_arg(&args.email)?;
    let comment = reason_arg(&args.reason)?;
    let operator = operator_arg(args.acting.operator.as_deref())?;
    let scope = match &args.resource {
        Some(r) => Some(known_resource(&settings.resources, r)?),
        None => None,
    };
    let ops = Ops::open(settings).await?;
    let targets: Vec<Request> = ops
        .store
        .open_requests()
        .await?
        .into_iter()
        .filter(|r| r.email == email)
        .filter(|r| scope.as_ref().is_none_or(|n| &r.resource == n))
        .collect();
    if targets.is_empty() {
        let place = scope.map_or_else(|| "any resource".into(), |n| n.to_string());
        bail!(
            "{email} has no pending request or active access on {place}; \
             `pomerium-jit grants list --pending` shows who holds what"
        );
    }
    let what: Vec<String> = targets
        .iter()
        .map(|r| format!("{} on {}", r.state.status(), r.resource))
        .collect();
    confirm(&args.acting, &format!("End {email}'s {}?", what.join(", ")))?;
    let mut ended = Vec::new();
    for r in &targets {
        let outcome = ops
            .service
            .revoke_as_operator(&operator, r.resource.as_str(), &email, comment.clone())
            .await?;
        ended.push(outcome);
    }
    let applied = ops.apply(ended.iter().map(|o| &o.request.resource)).await;
    report(&args.acting, "revoked", &ended, applied)
}

/// `grant`: break-glass.
pub async fn grant(args: GrantArgs) -> anyhow::Result<()> {
    let settings = ops_settings(&args.settings)?;
    let email = email_arg(&args.email)?;
    let resource = known_resource(&settings.resources, &args.resource)?;
    let duration: GrantDuration = args
        .duration
        .parse()
        .map_err(|e| BadSetting(format!("--duration: {e}")))?;
    let reason = reason_arg(&args.reason)?;
    let ticket = args
        .ticket
        .as_deref()
        .map(Ticket::parse)
        .transpose()
        .map_err(|e| BadSetting(format!("--ticket: {e}")))?
        .flatten();
    let operator = operator_arg(args.acting.operator.as_deref())?;
    confirm(
        &args.acting,
        &format!("Break-glass: give {email} {resource} for {duration} without any approval?"),
    )?;
    let ops = Ops::open(settings).await?;
    let ask = Ask {
        reason,
        ticket,
        ..Ask::default()
    };
    let outcome = ops
        .service
        .break_glass(&operator, resource.as_str(), &email, ask, duration)
        .await?;
    eprintln!(
        "WARNING: break-glass: {email} got {resource} for {duration} without any approval; \
         audited as break-glass by cli:{operator}, and every approver is notified"
    );
    let applied = ops.apply([&resource]).await;
    report(&args.acting, "granted (break-glass)", &[outcome], applied)
}

/// Prints what was changed and whether it is in force; a failure to apply
/// it is the command's failure (the change itself is saved).
fn report(
    acting: &Acting,
    did: &str,
    outcomes: &[Outcome],
    applied: Vec<Applied>,
) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    if acting.json {
        let out = json!({
            "changed": outcomes.iter().map(|o| request_json(&o.request, now)).collect::<Vec<_>>(),
            "applied": applied.iter().map(|a| json!({
                "resource": a.resource.as_str(),
                "policy": a.policy,
                "applied": a.result.is_ok(),
                "note": match &a.result { Ok(note) | Err(note) => note },
            })).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for o in outcomes {
            let r = &o.request;
            let status = r.state.status();
            let until = match &r.state {
                State::Active(g) => format!(" until {}", When::new(g.expires_at, now)),
                _ => String::new(),
            };
            println!(
                "{did}: {} on {} (request {}, now {status}{until})",
                r.email, r.resource, r.id
            );
        }
        for a in &applied {
            if let Ok(note) = &a.result {
                println!("{}: {note}", a.resource);
            }
        }
    }
    match applied
        .into_iter()
        .find_map(|a| a.result.err().map(|e| (a.resource, e)))
    {
        Some((resource, e)) => bail!("{resource}: {e}"),
        None => Ok(()),
    }
}

/// `history export`.
pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let HistoryCommand::Export {
        settings,
        format,
        from,
        to,
        email,
        resource,
        action,
        output,
    } = args.command;
    let settings = ops_settings(&settings)?;
    let instant = |flag: &str, value: Option<String>, edge| {
        value
            .map(|v| {
                export::parse_instant(v.trim(), edge).ok_or_else(|| {
                    BadSetting(format!(
                        "{flag}: `{v}` is not a date or time; write a date as 2026-11-30, or a \
                         time in UTC as 2026-11-30T14:00"
                    ))
                })
            })
            .transpose()
    };
    let filter = HistoryFilter {
        person: email.map(|e| email_arg(&e)).transpose()?,
        resources: resource
            .map(|r| known_resource(&settings.resources, &r).map(|n| vec![n]))
            .transpose()?,
        action: action
            .map(|a| {
                a.parse::<Action>().map_err(|_| {
                    let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                    BadSetting(format!(
                        "--action: `{a}` is not an action; write one of {}",
                        known.join(", ")
                    ))
                })
            })
            .transpose()?,
        from: instant("--from", from, Edge::Start)?,
        to: instant("--to", to, Edge::End)?,
    };
    if let (Some(f), Some(t)) = (filter.from, filter.to)
        && t <= f
    {
        return Err(BadSetting("--to must be after --from".into()).into());
    }
    let store = open_read(&settings).await?;
    let (service, _) = service(&settings, store).await?;
    let entries = service
        .export_all(filter, EXPORT_MAX)
        .await?
        .with_context(|| {
            format!(
                "the filters select more than {EXPORT_MAX} events; export a shorter range \
                 (--from, --to) at a time"
            )
        })?;
    let text = match format {
        Format::Jsonl => export::jsonl(&entries),
        Format::Csv => export::csv(&entries),
    };
    match output {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {} events to {}", entries.len(), path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The store, the service over it and each resource's reconciler, for the
/// commands that change something.
struct Ops {
    store: Store,
    service: Service,
    /// Each resource's reconciler.
    reconcilers: Vec<(ResourceName, Reconciler)>,
    zero: bool,
}

/// Whether a resource's change is in its policy: a note for people, or why not.
struct Applied {
    resource: ResourceName,
    policy: String,
    result: Result<String, String>,
}

impl Ops {
    /// Opens the existing database for writing (checked read-only first,
    /// so a wrong DATABASE_URL never creates or migrates one).
    async fn open(settings: OpsSettings) -> anyhow::Result<Ops> {
        open_read(&settings).await?.close().await;
        let store = Store::connect(settings.database_url.expose_secret())
            .await
            .context("opening the database (DATABASE_URL)")?;
        let zero = settings.zero.is_some();
        let (service, reconcilers) = service(&settings, store.clone()).await?;
        Ok(Ops {
            store,
            service,
            reconcilers,
            zero,
        })
    }

    /// One sync of each resource's policy, so the change is in force now
    /// rather than at the running service's next sync.
    async fn apply<'a>(
        &self,
        resources: impl IntoIterator<Item = &'a ResourceName>,
    ) -> Vec<Applied> {
        let mut names: Vec<&ResourceName> = resources.into_iter().collect();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let Some((_, reconciler)) = self.reconcilers.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let policy = reconciler.config().policy_name.clone();
            let result = if self.zero {
                sync(reconciler).await
            } else {
                Ok(format!(
                    "saved; no Pomerium Zero settings here, so the running service writes policy \
                     {policy} within SYNC_INTERVAL"
                ))
            };
            out.push(Applied {
                resource: name.clone(),
                policy,
                result,
            });
        }
        out
    }
}

/// Runs one sync, waiting a little for another replica's run to end.
async fn sync(reconciler: &Reconciler) -> Result<String, String> {
    let policy = &reconciler.config().policy_name;
    for _ in 0..5 {
        match reconciler.sync_now().await {
            Ok(_) => {
                return Ok(format!(
                    "applied: policy {policy} in Pomerium Zero is up to date"
                ));
            }
            Err(f) if f.kind == FailureKind::Busy => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(f) => {
                return Err(format!(
                    "saved in the store, but policy {policy} could not be updated: {}; the running \
                     service keeps trying (`pomerium-jit doctor` checks the Zero settings)",
                    f.message
                ));
            }
        }
    }
    Ok(format!(
        "saved; another replica is writing policy {policy} right now and applies it within \
         SYNC_INTERVAL"
    ))
}

/// The service over `store`, each resource with its reconciler (through
/// Zero when its settings are present). Changes do not wait to be applied:
/// [`Ops::apply`] runs the sync itself.
async fn service(
    settings: &OpsSettings,
    store: Store,
) -> anyhow::Result<(Service, Vec<(ResourceName, Reconciler)>)> {
    let (cluster, namespace, apply_changesets) = match &settings.zero {
        Some(z) => (
            z.cluster_id.as_str(),
            z.namespace_id.as_str(),
            z.apply_changesets,
        ),
        None => ("", "", false),
    };
    let policies = Policies {
        cluster_id: cluster,
        namespace_id: namespace,
        interval: Duration::from_secs(30),
        apply_changesets,
        decode: settings.decode,
    };
    let desks: Vec<Desk> = settings
        .resources
        .iter()
        .map(|r| match &settings.zero {
            Some(z) => policies.desk(r.clone(), &store, z.client.clone()),
            None => policies.desk(r.clone(), &store, NoZero),
        })
        .collect();
    let reconcilers = desks
        .iter()
        .map(|d| (d.resource.name.clone(), d.reconciler.clone()))
        .collect();
    let service = Service::new(
        store,
        desks,
        jit_service::Settings {
            apply_wait: Duration::ZERO,
            ..Default::default()
        },
    )
    .await
    .context("reading the requests from the database")?;
    Ok((service, reconcilers))
}

/// Stands in for Pomerium Zero without its settings: the commands then
/// never sync (no reconciler runs), and would be told why if they did.
struct NoZero;

fn no_zero<'a, T: Send + 'a>(op: Operation) -> BoxFuture<'a, Result<T, ZeroError>> {
    Box::pin(async move {
        Err(ZeroError::EmptyArgument {
            op,
            what: "API_USER_TOKEN (no Pomerium Zero settings)",
        })
    })
}

impl PolicyApi for NoZero {
    fn list_policies<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ZeroPolicy>, ZeroError>> {
        no_zero(Operation::ListPolicies)
    }
    fn get_policy<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<ZeroPolicy, ZeroError>> {
        no_zero(Operation::GetPolicy)
    }
    fn create_policy<'a>(
        &'a self,
        _: &'a PolicyProperties,
    ) -> BoxFuture<'a, Result<PolicyRef, ZeroError>> {
        no_zero(Operation::CreatePolicy)
    }
    fn update_policy<'a>(
        &'a self,
        _: &'a str,
        _: PolicyProperties,
    ) -> BoxFuture<'a, Result<(), ZeroError>> {
        no_zero(Operation::UpdatePolicy)
    }
    fn get_cluster_settings<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<ClusterSettings, ZeroError>> {
        no_zero(Operation::GetClusterSettings)
    }
    fn list_changesets<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a ChangesetStatus>,
    ) -> BoxFuture<'a, Result<Vec<Changeset>, ZeroError>> {
        no_zero(Operation::ListChangesets)
    }
    fn compare_changesets<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChangesetComparison, ZeroError>> {
        no_zero(Operation::CompareChangesets)
    }
    fn apply_changeset<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Changeset, ZeroError>> {
        no_zero(Operation::ApplyChangeset)
    }
}

/// The settings the operator commands need, every problem on one line.
pub(crate) fn ops_settings(args: &ServeArgs) -> anyhow::Result<OpsSettings> {
    args.ops_settings().map_err(|problems| {
        BadSetting(format!(
            "{}; set them in the environment as for `serve`, or as flags (--help)",
            problems.join("; ")
        ))
        .into()
    })
}

/// Opens the existing database read-only: never created or migrated.
pub(crate) async fn open_read(settings: &OpsSettings) -> anyhow::Result<Store> {
    Store::open_read_only(settings.database_url.expose_secret())
        .await
        .map_err(|e| match e {
            StoreError::UnsupportedScheme { .. } | StoreError::InvalidUrl { .. } => {
                BadSetting(format!("DATABASE_URL: {e}")).into()
            }
            e => anyhow::Error::new(e).context(
                "opening the database (DATABASE_URL; run this where the service's settings are set)",
            ),
        })
}

pub(crate) fn known_resource(resources: &[Resource], name: &str) -> anyhow::Result<ResourceName> {
    match resources.iter().find(|r| r.name.as_str() == name.trim()) {
        Some(r) => Ok(r.name.clone()),
        None => {
            let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
            Err(BadSetting(format!(
                "there is no resource named `{name}`; the resources are {} (CONFIG_FILE)",
                names.join(", ")
            ))
            .into())
        }
    }
}

pub(crate) fn email_arg(raw: &str) -> anyhow::Result<Email> {
    Email::from_input(raw).map_err(|e| BadSetting(format!("--email: `{raw}`: {e}")).into())
}

fn reason_arg(raw: &str) -> anyhow::Result<Option<Reason>> {
    match Reason::parse(raw) {
        Ok(Some(r)) => Ok(Some(r)),
        Ok(None) => Err(BadSetting(
            "--reason is empty; say why, it is kept in the audit trail".into(),
        )
        .into()),
        Err(e) => Err(BadSetting(format!("--reason: {e}")).into()),
    }
}

/// `--as`, else the login name: who the audit trail names.
fn operator_arg(given: Option<&str>) -> anyhow::Result<Operator> {
    let from_env = || {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
    };
    let Some(name) = given.map(str::to_owned).or_else(from_env) else {
        return Err(BadSetting(
            "who are you? $USER is not set; name yourself for the audit trail with --as NAME"
                .into(),
        )
        .into());
    };
    Operator::parse(name.trim()).map_err(|e| BadSetting(format!("--as: {e}")).into())
}

/// Asks at a terminal unless `--yes`; refuses without a terminal.
fn confirm(acting: &Acting, question: &str) -> anyhow::Result<()> {
    if acting.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(BadSetting(format!(
            "{question} Pass --yes to confirm (stdin is not a terminal to ask)"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed; nothing changed")
    }
}

/// Rows as columns padded to their widest cell, two spaces apart.
pub(crate) fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
