//! The reconciler: makes the Pomerium Zero policy a projection of the store.
//!
//! Every run (after each change, and periodically) does, under a lease so
//! only one replica writes at a time:
//!
//! 1. **Sweep**: grants past their expiry are marked expired (Pomerium
//!    already denies them on time through `date.before`; this is housekeeping).
//! 2. **Read** the policy named [`Config::policy_name`] in the namespace:
//!    reused if it exists, created once if not, a loud error if there are two.
//! 3. **Adopt** what changed outside the app: the remote policy is compared
//!    with the *base*, the PPL this app last applied (like `kubectl apply`'s
//!    last-applied configuration). JIT entries added, removed or changed in
//!    the console since then are written to the store as audited changes by
//!    Zero. Rules that are not JIT rules are carried over verbatim.
//! 4. **Render** foreign rules + the store's pending requests and active
//!    grants, and write only if it differs from the remote, after re-reading
//!    the remote right before the write to keep the lost-update window small.
//! 5. **Remember** what was written as the new base, with the store
//!    generation it reflects, so waiters know their change is applied.
//!
//! Runs are serialized and coalesced: changes that arrive during a run are
//! picked up by the next one, so a burst of approvals becomes few writes.
//! Every step is idempotent; a crash anywhere converges on the next run.
//!
//! If the policy is deleted in Zero, the next run re-creates it from the
//! store (the database is the truth); the deletion is not read as revoking
//! every grant.

mod merge;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_domain::{Request, Rules, desired_entries};
use jit_ppl::Policy;
use jit_ppl::jit::DecodeOptions;
use jit_store::{Store, StoreError};
use jit_zero::{ChangesetStatus, Policy as ZeroPolicy, PolicyProperties, ZeroClient, ZeroError};
use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify, watch};
use tokio_util::sync::CancellationToken;

pub use merge::{Observed, outside_changes, render};

/// What the reconciler needs to know about its policy and pace.
#[derive(Debug, Clone)]
pub struct Config {
    /// The policy's name in Zero; the Go original's is `jit-example`.
    pub policy_name: String,
    /// Namespace holding the policy (the original passes `CLUSTER_ID`).
    pub namespace_id: String,
    /// Cluster whose changesets and settings are checked.
    pub cluster_id: String,
    /// Time between periodic runs when nothing happens.
    pub interval: Duration,
    /// Apply a pending changeset that holds only this policy's change.
    pub apply_changesets: bool,
    /// How dates without an offset in the remote policy are read.
    pub decode: DecodeOptions,
    /// This replica's name for the writer lease.
    pub holder: String,
    /// How long the writer lease lasts without renewal; renewed every third
    /// of it during a run, so a crashed writer blocks others this long at most.
    pub lease_ttl: Duration,
}

impl Config {
    pub fn new(policy_name: impl Into<String>, cluster_id: impl Into<String>) -> Self {
        let cluster_id = cluster_id.into();
        Self {
            policy_name: policy_name.into(),
            namespace_id: cluster_id.clone(),
            cluster_id,
            interval: Duration::from_secs(30),
            apply_changesets: false,
            decode: DecodeOptions::default(),
            holder: format!(
                "pomerium-jit-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ),
            lease_ttl: Duration::from_secs(15),
        }
    }
}

/// Why a run failed, in a form that can be shown and cloned to every waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Zero refused our credentials: the API token is wrong, revoked or lacks permission.
    ZeroRefused,
    /// Zero could not be reached or kept failing: retried later.
    ZeroUnavailable,
    /// Zero answered something we cannot act on (bad request, unreadable policy, duplicates).
    ZeroInconsistent,
    /// The database failed.
    Store,
    /// Another replica is writing right now.
    Busy,
}

impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The last known state of synchronisation, for pages, `/readyz` and tests.
#[derive(Debug, Clone, Default)]
pub struct SyncStatus {
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    /// Set when the latest run failed; cleared by the next success.
    pub last_error: Option<SyncFailure>,
    /// The store generation the remote policy is known to reflect.
    pub applied_generation: u64,
    pub policy_id: Option<String>,
    /// Whether the cluster auto-applies changesets (`None` until known).
    pub auto_apply: Option<bool>,
    /// Policy writes (create or update) made by this process.
    pub writes: u64,
}

/// What one successful run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub expired: usize,
    pub adopted: usize,
    pub wrote: bool,
    pub generation: u64,
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Zero(#[from] ZeroError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "there are {} policies named `{name}` in namespace {namespace} ({}); delete or rename all but one in the Zero console",
        ids.len(), ids.join(", ")
    )]
    Duplicates {
        name: String,
        namespace: String,
        ids: Vec<String>,
    },
    #[error(
        "the PPL of policy `{name}` ({id}) cannot be read, so it is left untouched: {error}; fix it in the Zero console"
    )]
    Unreadable {
        name: String,
        id: String,
        error: jit_ppl::ParseError,
    },
    #[error("the policy kept changing while being written; will try again")]
    KeptChanging,
    #[error("another replica is updating the policy")]
    Busy,
    #[error(
        "the writer lease could not be renewed (database unreachable or taken over); the run was stopped"
    )]
    LostLease,
}

impl SyncError {
    fn failure(&self) -> SyncFailure {
        let kind = match self {
            SyncError::Zero(
                ZeroError::TokenRefused { .. }
                | ZeroError::Unauthorized { .. }
                | ZeroError::Forbidden { .. },
            ) => FailureKind::ZeroRefused,
            SyncError::Zero(
                ZeroError::RateLimited { .. }
                | ZeroError::Timeout { .. }
                | ZeroError::Transport { .. },
            ) => FailureKind::ZeroUnavailable,
            SyncError::Zero(ZeroError::Status { status, .. }) if status.is_server_error() => {
                FailureKind::ZeroUnavailable
            }
            SyncError::Zero(_) | SyncError::Duplicates { .. } | SyncError::Unreadable { .. } => {
                FailureKind::ZeroInconsistent
            }
            SyncError::KeptChanging => FailureKind::ZeroUnavailable,
            SyncError::Store(_) | SyncError::LostLease => FailureKind::Store,
            SyncError::Busy => FailureKind::Busy,
        };
        SyncFailure {
            kind,
            message: self.to_string(),
        }
    }
}

/// Handle to the reconciler; cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    store: Store,
    zero: ZeroClient,
    rules: Rules,
    wake: Notify,
    /// Serializes runs and remembers the last one, so that concurrent
    /// callers of [`Reconciler::sync_now`] share a run.
    last_run: Mutex<Option<(Instant, Result<SyncReport, SyncFailure>)>>,
    status: watch::Sender<SyncStatus>,
}

const POLICY_DESCRIPTION: &str = "Just-in-time access managed by pomerium-jit. Rules that are not JIT entries \
    (email + reject, or email + date) are kept as they are.";

impl Reconciler {
    pub fn new(config: Config, store: Store, zero: ZeroClient, rules: Rules) -> Self {
        let (status, _) = watch::channel(SyncStatus::default());
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                zero,
                rules,
                wake: Notify::new(),
                last_run: Mutex::new(None),
                status,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn status(&self) -> SyncStatus {
        self.inner.status.borrow().clone()
    }

    /// Asks for a run soon; many nudges during a run become one more run.
    pub fn nudge(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs a sync now, or joins one that started after this call: concurrent
    /// callers (page loads) share one run.
    pub async fn sync_now(&self) -> Result<SyncReport, SyncFailure> {
        let asked = Instant::now();
        let mut last = self.inner.last_run.lock().await;
        if let Some((started, result)) = last.as_ref()
            && *started >= asked
        {
            return result.clone();
        }
        let started = Instant::now();
        let result = self.run_once().await.map_err(|e| e.failure());
        *last = Some((started, result.clone()));
        result
    }

    /// Waits until the remote policy reflects store generation `generation`
    /// (written by this or another replica), or `timeout` passes.
    pub async fn wait_applied(&self, generation: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.status.subscribe();
        loop {
            if rx.borrow_and_update().applied_generation >= generation {
                return true;
            }
            let other_replica = self
                .inner
                .store
                .sync_state(&self.inner.config.policy_name)
                .await;
            if other_replica.is_ok_and(|s| s.applied_generation >= generation) {
                return true;
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// The background loop: runs after nudges, periodically, and just after
    /// the next grant expires; backs off after failures. Returns on shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            // A run cut short by shutdown is safe: every step is idempotent
            // and the next start converges. Only the lease is handed back.
            let result = tokio::select! {
                r = self.sync_now() => r,
                _ = shutdown.cancelled() => {
                    let _ = self.inner.store.release_lease(&self.lease_name(), &self.inner.config.holder).await;
                    return;
                }
            };
            let delay = match result {
                Ok(_) => {
                    failures = 0;
                    self.until_next_due().await
                }
                Err(f) if f.kind == FailureKind::Busy => Duration::from_millis(500),
                Err(f) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff(failures, self.inner.config.interval);
                    tracing::warn!(error = %f, retry_in_ms = delay.as_millis() as u64, "policy sync failed");
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn lease_name(&self) -> String {
        format!("reconcile:{}", self.inner.config.policy_name)
    }

    async fn until_next_due(&self) -> Duration {
        let interval = self.inner.config.interval;
        match self.inner.store.next_expiry().await {
            Ok(Some(at)) => {
                let wait = at - OffsetDateTime::now_utc() + time::Duration::SECOND;
                Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .min(interval)
            }
            _ => interval,
        }
    }

    async fn run_once(&self) -> Result<SyncReport, SyncError> {
        let inner = &self.inner;
        let now = OffsetDateTime::now_utc();
        inner.status.send_modify(|s| s.last_attempt_at = Some(now));
        let lease = self.lease_name();
        if !inner
            .store
            .try_lease(&lease, &inner.config.holder, inner.config.lease_ttl, now)
            .await?
        {
            return Err(SyncError::Busy);
        }
        // Renew the lease while the run lasts, so that a short TTL both
        // covers slow runs and frees the lease soon after a crash.
        let renew = async {
            loop {
                tokio::time::sleep(inner.config.lease_ttl / 3).await;
                let now = OffsetDateTime::now_utc();
                if !matches!(
                    inner
                        .store
                        .try_lease(&lease, &inner.config.holder, inner.config.lease_ttl, now)
                        .await,
                    Ok(true)
                ) {
                    return SyncError::LostLease;
                }
            }
        };
        let result = tokio::select! {
            r = self.converge() => r,
            e = renew => Err(e),
        };
        if let Err(e) = inner
            .store
            .release_lease(&lease, &inner.config.holder)
            .await
        {
            tracing::warn!(error = %e, "could not release the reconciler lease; it will expire");
        }
        let name = &inner.config.policy_name;
        match &result {
            Ok(report) => {
                tracing::debug!(?report, "policy in sync");
                inner.status.send_modify(|s| {
                    s.last_success_at = Some(OffsetDateTime::now_utc());
                    s.last_error = None;
                    s.applied_generation = s.applied_generation.max(report.generation);
                });
            }
            Err(e) => {
                let failure = e.failure();
                if let Err(store_err) = inner
                    .store
                    .record_sync_failure(name, &failure.message, now)
                    .await
                {
                    tracing::warn!(error = %store_err, "could not record the sync failure");
                }
                inner.status.send_modify(|s| s.last_error = Some(failure));
            }
        }
        result
    }

    async fn converge(&self) -> Result<SyncReport, SyncError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let rules = &inner.rules;
        let mut report = SyncReport::default();

        let now = OffsetDateTime::now_utc();
        // The sweep takes the write lock, so only when a grant is due.
        if inner.store.next_expiry().await?.is_some_and(|at| at <= now) {
            let swept = inner
                .store
                .decide_all(|open: &[Request]| {
                    open.iter()
                        .flat_map(|r| rules.expire(Some(r), now))
                        .collect()
                })
                .await?;
            report.expired = swept.transitions.len();
        }

        let state = inner.store.sync_state(&cfg.policy_name).await?;
        let base = state
            .base_ppl
            .as_ref()
            .and_then(|v| Policy::parse(v).ok())
            .map(|p| Observed::of(&p, &cfg.decode))
            .unwrap_or_default();
        let mut remote = self.find_policy(state.policy_id.as_deref()).await?;

        for _ in 0..3 {
            let remote_seen = match &remote {
                Some(p) => Observed::of(&self.parse_remote(p)?, &cfg.decode),
                None => Observed::default(),
            };
            let now = OffsetDateTime::now_utc();
            // Read the generation before the state it stands for; adopt (under
            // the write lock, deciding again on fresh state) only when the
            // remote differs from the base, which is rare.
            let mut generation = inner.store.generation().await?;
            let mut open = inner.store.open_requests().await?;
            let desired_now: BTreeMap<_, _> = desired_entries(&open, now).into_iter().collect();
            if !outside_changes(&base, &remote_seen, &desired_now).is_empty() {
                let adopted = inner
                    .store
                    .decide_all(|open: &[Request]| {
                        let desired: BTreeMap<_, _> =
                            desired_entries(open, now).into_iter().collect();
                        outside_changes(&base, &remote_seen, &desired)
                            .into_iter()
                            .flat_map(|(email, entry)| {
                                let current = open.iter().find(|r| r.email == email);
                                rules.adopt(current, &email, entry, now)
                            })
                            .collect()
                    })
                    .await?;
                report.adopted += adopted.transitions.len();
                tracing::info!(
                    changes = adopted.transitions.len(),
                    "adopted changes made in Pomerium Zero"
                );
                generation = adopted.generation;
                open = inner.store.open_requests().await?;
            }
            let desired = render(&remote_seen.foreign, &desired_entries(&open, now)).to_value();
            report.generation = generation;

            let policy_id = match &remote {
                Some(p) if p.properties().ppl == desired => p.id.clone(),
                Some(p) => {
                    let fresh = inner.zero.get_policy(&p.id).await?;
                    if fresh.properties().ppl != p.properties().ppl {
                        remote = Some(fresh);
                        continue;
                    }
                    let mut props = fresh.into_properties();
                    props.ppl = desired.clone();
                    let written = inner.zero.update_policy(&p.id, &props).await?;
                    self.count_write();
                    report.wrote = true;
                    written.id
                }
                None => {
                    let created = inner
                        .zero
                        .create_policy(&self.new_policy(desired.clone()))
                        .await?;
                    self.count_write();
                    report.wrote = true;
                    // A person or an old replica may have created one at the same time.
                    self.find_policy(None).await?;
                    created.id
                }
            };
            let unchanged = state.last_error.is_none()
                && state.policy_id.as_deref() == Some(policy_id.as_str())
                && state.applied_generation >= generation
                && state.base_ppl.as_ref() == Some(&desired);
            if !unchanged {
                inner
                    .store
                    .record_sync_success(&cfg.policy_name, &policy_id, &desired, generation, now)
                    .await?;
            }
            inner
                .status
                .send_modify(|s| s.policy_id = Some(policy_id.clone()));
            self.check_changesets(&policy_id).await;
            return Ok(report);
        }
        Err(SyncError::KeptChanging)
    }

    fn parse_remote(&self, p: &ZeroPolicy) -> Result<Policy, SyncError> {
        Policy::parse(&p.properties().ppl).map_err(|error| SyncError::Unreadable {
            name: self.inner.config.policy_name.clone(),
            id: p.id.clone(),
            error,
        })
    }

    /// The policy by remembered id, else by name in the namespace.
    async fn find_policy(&self, known_id: Option<&str>) -> Result<Option<ZeroPolicy>, SyncError> {
        let cfg = &self.inner.config;
        if let Some(id) = known_id {
            match self.inner.zero.get_policy(id).await {
                Ok(p)
                    if p.properties().name == cfg.policy_name
                        && p.properties().namespace_id == cfg.namespace_id =>
                {
                    return Ok(Some(p));
                }
                Ok(_) => tracing::warn!(
                    id,
                    "the remembered policy was renamed or moved; looking it up by name"
                ),
                Err(ZeroError::NotFound { .. }) => {
                    tracing::warn!(
                        id,
                        "the policy was deleted in Zero; it will be re-created from the store"
                    )
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut named: Vec<ZeroPolicy> = self
            .inner
            .zero
            .list_policies(&cfg.namespace_id)
            .await?
            .into_iter()
            .filter(|p| p.properties().name == cfg.policy_name)
            .collect();
        match named.len() {
            0 | 1 => Ok(named.pop()),
            _ => Err(SyncError::Duplicates {
                name: cfg.policy_name.clone(),
                namespace: cfg.namespace_id.clone(),
                ids: named.into_iter().map(|p| p.id).collect(),
            }),
        }
    }

    fn new_policy(&self, ppl: serde_json::Value) -> PolicyProperties {
        let cfg = &self.inner.config;
        PolicyProperties {
            name: cfg.policy_name.clone(),
            namespace_id: cfg.namespace_id.clone(),
            description: POLICY_DESCRIPTION.into(),
            // Like the original: attach it to routes explicitly.
            enforced: false,
            explanation: String::new(),
            remediation: String::new(),
            ppl,
            originator_id: None,
            extra: Default::default(),
        }
    }

    fn count_write(&self) {
        self.inner.status.send_modify(|s| s.writes += 1);
    }

    /// Learns whether the cluster auto-applies changesets and, when it does
    /// not and [`Config::apply_changesets`] is on, applies the pending
    /// changesets if together they hold nothing but this policy's changes
    /// (applying one deploys every earlier pending one too). Failures here
    /// never fail the run: the policy is saved; the status says what is missing.
    async fn check_changesets(&self, policy_id: &str) {
        let inner = &self.inner;
        let cluster = &inner.config.cluster_id;
        let auto = match inner.zero.get_cluster_settings(cluster).await {
            Ok(settings) => settings.auto_apply_changesets,
            Err(e) => {
                tracing::debug!(error = %e, "could not read cluster settings");
                return;
            }
        };
        inner.status.send_modify(|s| s.auto_apply = Some(auto));
        if auto || !inner.config.apply_changesets {
            return;
        }
        match self.apply_own_changesets(policy_id).await {
            Ok(true) => tracing::info!("applied the pending changeset holding the policy change"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply the pending changeset"),
        }
    }

    async fn apply_own_changesets(&self, policy_id: &str) -> Result<bool, ZeroError> {
        let zero = &self.inner.zero;
        let cluster = &self.inner.config.cluster_id;
        let all = zero.list_changesets(cluster, None).await?;
        let Some(newest) = all
            .iter()
            .filter(|c| c.status == ChangesetStatus::Pending)
            .max_by_key(|c| c.created_at)
        else {
            return Ok(false);
        };
        let live = all
            .iter()
            .filter(|c| c.status.is_effective())
            .max_by_key(|c| c.created_at)
            .map(|c| c.id.as_str());
        let diff = zero
            .compare_changesets(cluster, live, Some(&newest.id))
            .await?;
        let logs: Vec<_> = diff.entities.iter().flatten().collect();
        let only_ours = !logs.is_empty() && logs.iter().all(|l| l.entity.id == policy_id);
        if !only_ours {
            tracing::warn!(
                changeset = %newest.id,
                "a pending changeset holds changes besides this policy's; apply it in the Zero console"
            );
            return Ok(false);
        }
        zero.apply_changeset(&newest.id).await?;
        Ok(true)
    }
}

/// Exponential backoff with full jitter, from 1 s up to `cap`.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.min(10))
        .min(cap.max(Duration::from_secs(1)));
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}
