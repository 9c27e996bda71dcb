//! The use cases of pomerium-jit, between the web edge and the store.
//!
//! Every change follows one path ([`Service::decide`]): the domain rules
//! decide inside one store transaction (state + audit event), the reconciler
//! is nudged, and the caller waits a bounded time for the change to reach
//! Pomerium Zero. Either way the decision is already durable; [`Applied`]
//! says whether it is in force yet.
//!
//! Hot reads (the index page's "your status") come from an in-memory
//! snapshot, updated by this process's own commits at once and reloaded
//! within a second when the store's generation moves (another replica, or
//! edits adopted from Zero).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jit_domain::{DomainError, Email, GrantDuration, Reason, Request, Rules, Seen, Transition};
use jit_reconcile::Reconciler;
use jit_store::{Store, StoreError};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

mod admins;
mod audit;

pub use admins::{Admins, Caller, Route};
pub use audit::AuditCheck;
pub use jit_store::{AuditQuery, AuditRecord, ChainReport};
// What the edge shows about syncing, so it needs neither the reconciler nor the store.
pub use jit_reconcile::{FailureKind, SyncFailure, SyncStatus};
pub use jit_store::SyncState;

/// Whether a durable decision is in force in Pomerium yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The policy in Zero now says so.
    Applied,
    /// Saved, but not yet in the policy within the wait; the reconciler keeps
    /// trying. Carries the latest sync failure, if that is why.
    Saved(Option<SyncFailure>),
}

/// The result of a change: the request as it now stands, and whether it is applied.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request: Request,
    pub applied: Applied,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(
        "only admins can do this; ask an admin to add your email to ADMIN_EMAILS or one of your groups to ADMIN_GROUPS"
    )]
    NotAdmin,
    /// Open admin mode, reached outside Pomerium's `/admin` route.
    #[error(
        "no ADMIN_EMAILS or ADMIN_GROUPS are set, so admin rights exist only on Pomerium's /admin route"
    )]
    AdminRouteOnly,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decisions without a `seen` (the Go original's email-only forms) act on
/// whatever is open.
fn check_seen(
    seen: Option<Seen>,
    open: Option<&Request>,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    seen.map_or(Ok(()), |s| s.check(open, email, now))
}

/// Everything the admin page shows.
#[derive(Debug, Clone)]
pub struct AdminView {
    pub pending: Vec<Request>,
    pub active: Vec<Request>,
    pub ended: Vec<Request>,
    pub sync: SyncStatus,
    /// The result of the sync made for this view.
    pub fresh: Result<(), SyncFailure>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: Rules,
    pub admins: Admins,
    /// How long a change waits to be applied before answering.
    pub apply_wait: Duration,
    /// How many ended requests the admin page and snapshot keep.
    pub recent_ended: usize,
    /// How old a check of the audit trail may be before the audit page
    /// redoes it (a full walk and replay).
    pub audit_check_max_age: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rules: Rules::default(),
            admins: Admins::default(),
            apply_wait: Duration::from_secs(5),
            recent_ended: 200,
            audit_check_max_age: Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    reconciler: Reconciler,
    settings: Settings,
    snapshot: RwLock<Arc<Snapshot>>,
    last_audit_check: audit::LastCheck,
}

/// The latest request per email (open, or recently ended), with the store
/// generation it reflects.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    generation: u64,
    by_email: HashMap<Email, (u64, Request)>,
}

impl Service {
    /// Builds the service and loads the snapshot.
    pub async fn new(
        store: Store,
        reconciler: Reconciler,
        settings: Settings,
    ) -> Result<Self, StoreError> {
        let service = Self {
            inner: Arc::new(Inner {
                store,
                reconciler,
                settings,
                snapshot: RwLock::new(Arc::default()),
                last_audit_check: audit::LastCheck::default(),
            }),
        };
        service.reload().await?;
        Ok(service)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn is_admin(&self, caller: &Caller) -> bool {
        self.inner.settings.admins.allows(caller)
    }

    pub fn sync_status(&self) -> SyncStatus {
        self.inner.reconciler.status()
    }

    /// The store's record of the last sync by any replica; reading it also
    /// shows that the store answers.
    pub async fn recorded_sync(&self) -> Result<SyncState, StoreError> {
        let policy = &self.inner.reconciler.config().policy_name;
        self.inner.store.sync_state(policy).await
    }

    /// The caller's latest request: open, or recently ended. From memory.
    pub fn status_of(&self, email: &Email) -> Option<Request> {
        let snap = self.inner.snapshot.read().expect("snapshot lock").clone();
        snap.by_email.get(email).map(|(_, r)| r.clone())
    }

    pub async fn request_access(
        &self,
        caller: &Caller,
        reason: Option<Reason>,
    ) -> Result<Outcome, ServiceError> {
        let rules = &self.inner.settings.rules;
        let now = OffsetDateTime::now_utc();
        self.decide(&caller.email, |open| {
            rules.request(open, &caller.email, reason, now)
        })
        .await
    }

    /// The caller withdraws their pending request or gives up their access.
    pub async fn cancel(&self, caller: &Caller) -> Result<Outcome, ServiceError> {
        let rules = &self.inner.settings.rules;
        let now = OffsetDateTime::now_utc();
        self.decide(&caller.email, |open| rules.cancel(open, &caller.email, now))
            .await
    }

    /// Approves the email's pending request; when `seen` is given, only if
    /// it is still the request the admin saw, as they saw it.
    pub async fn approve(
        &self,
        admin: &Caller,
        email: &Email,
        duration: Option<GrantDuration>,
        seen: Option<Seen>,
    ) -> Result<Outcome, ServiceError> {
        self.require_admin(admin)?;
        let rules = &self.inner.settings.rules;
        let now = OffsetDateTime::now_utc();
        self.decide(email, |open| {
            check_seen(seen, open, email, now)?;
            rules.approve(open, email, &admin.email, duration, now)
        })
        .await
    }

    /// Rejects a pending request or revokes active access; when `seen` is
    /// given, only if it is still the request the admin saw, as they saw it.
    pub async fn revoke(
        &self,
        admin: &Caller,
        email: &Email,
        seen: Option<Seen>,
    ) -> Result<Outcome, ServiceError> {
        self.require_admin(admin)?;
        let rules = &self.inner.settings.rules;
        let now = OffsetDateTime::now_utc();
        self.decide(email, |open| {
            check_seen(seen, open, email, now)?;
            rules.revoke(open, email, &admin.email, now)
        })
        .await
    }

    /// Syncs with Zero first (sharing a run with concurrent page loads), then
    /// reads the store. A failed sync still yields the store's view, with the
    /// failure in [`AdminView::fresh`].
    pub async fn admin_view(&self, admin: &Caller) -> Result<AdminView, ServiceError> {
        self.require_admin(admin)?;
        // Another replica writing right now is as fresh as it gets.
        // The run goes on in the background if Zero is slow; the page waits
        // at most `apply_wait` and then shows the store's view.
        let reconciler = self.inner.reconciler.clone();
        let run = tokio::spawn(async move { reconciler.sync_now().await });
        let fresh = match tokio::time::timeout(self.inner.settings.apply_wait, run).await {
            Ok(Ok(Err(f))) if f.kind != jit_reconcile::FailureKind::Busy => Err(f),
            Ok(_) => Ok(()),
            Err(_) => Err(SyncFailure {
                kind: jit_reconcile::FailureKind::ZeroUnavailable,
                message: format!(
                    "Pomerium Zero did not answer within {} s; showing what the database knows",
                    self.inner.settings.apply_wait.as_secs()
                ),
            }),
        };
        let (open, ended) = self.reload().await?;
        let (mut pending, mut active): (Vec<_>, Vec<_>) = open
            .into_iter()
            .partition(|r| r.state.status() == jit_domain::Status::Pending);
        pending.sort_by_key(|r| r.requested_at);
        active.sort_by_key(|r| r.state.grant().map(|g| g.expires_at));
        Ok(AdminView {
            pending,
            active,
            ended,
            sync: self.inner.reconciler.status(),
            fresh,
        })
    }

    /// Keeps the snapshot current with changes made elsewhere; returns on shutdown.
    pub async fn watch_store(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let current = self
                .inner
                .snapshot
                .read()
                .expect("snapshot lock")
                .generation;
            match self.inner.store.generation().await {
                Ok(g) if g != current => {
                    if let Err(e) = self.reload().await.map(drop) {
                        tracing::warn!(error = %e, "could not reload the request snapshot");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the store generation"),
            }
        }
    }

    fn require_admin(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.inner.settings.admins.check(caller)
    }

    /// The one path of every change: decide and commit, update the snapshot,
    /// nudge the reconciler, wait a bounded time for it to be applied.
    async fn decide(
        &self,
        email: &Email,
        f: impl FnOnce(Option<&Request>) -> Result<Vec<Transition>, DomainError> + Send,
    ) -> Result<Outcome, ServiceError> {
        let committed = self.inner.store.decide(email, f).await??;
        self.remember(
            committed.generation,
            committed.transitions.iter().map(|t| &t.request),
        );
        self.inner.reconciler.nudge();
        let request = committed
            .transitions
            .last()
            .map(|t| t.request.clone())
            .ok_or_else(|| {
                // The rules always return a move on success; an empty list would be a bug there.
                ServiceError::Domain(DomainError::NoOpenRequest {
                    email: email.clone(),
                })
            })?;
        let wait = self.inner.settings.apply_wait;
        let applied = if self
            .inner
            .reconciler
            .wait_applied(committed.generation, wait)
            .await
        {
            Applied::Applied
        } else {
            Applied::Saved(self.inner.reconciler.status().last_error)
        };
        Ok(Outcome { request, applied })
    }

    fn remember<'a>(&self, generation: u64, requests: impl Iterator<Item = &'a Request>) {
        let mut guard = self.inner.snapshot.write().expect("snapshot lock");
        let snap = Arc::make_mut(&mut guard);
        for r in requests {
            let newer = snap
                .by_email
                .get(&r.email)
                .is_none_or(|(g, _)| *g <= generation);
            if newer {
                snap.by_email
                    .insert(r.email.clone(), (generation, r.clone()));
            }
        }
    }

    /// Reloads the snapshot; returns the open and recently ended requests it read.
    async fn reload(&self) -> Result<(Vec<Request>, Vec<Request>), StoreError> {
        let store = &self.inner.store;
        let generation = store.generation().await?;
        let ended = store.recent_ended(self.inner.settings.recent_ended).await?;
        let open = store.open_requests().await?;
        let mut by_email = HashMap::with_capacity(open.len() + ended.len());
        // Oldest first, so the latest request per email wins; open ones last.
        for r in ended.iter().rev().chain(&open) {
            by_email.insert(r.email.clone(), (generation, r.clone()));
        }
        let mut guard = self.inner.snapshot.write().expect("snapshot lock");
        // Keep what this process committed after the read above.
        for (email, (g, r)) in &guard.by_email {
            if *g > generation {
                by_email.insert(email.clone(), (*g, r.clone()));
            }
        }
        *guard = Arc::new(Snapshot {
            generation,
            by_email,
        });
        Ok((open, ended))
    }
}
